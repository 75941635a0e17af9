//! Command-line front end.

/// Like `println!`, for standard output that may be closed or a broken pipe
/// (`attnflow run ... | head -c1`): the message is dropped and the command carries on and
/// writes its files, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Like `print!`, see [`outln`].
#[cfg_attr(not(feature = "gpu"), allow(unused_macros))]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($arg)*);
        let _ = stdout.flush();
    }};
}

mod attend;
mod bench;
mod cfm;
mod experiment;
mod kernels;
mod render;
mod run;
mod view;

use attnflow::backend::on_worker;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "attnflow",
    version,
    about = "Transformers as interacting particle systems: self-attention dynamics of tokens on \
             the sphere, on the GPU, the CPU, or an f64 reference",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Integrate the self-attention dynamics and write final.npy, metrics.csv, run.toml
    /// (and traj.npy with --save-every) to an output folder.
    Run(Box<run::RunArgs>),
    /// One attention layer, no dynamics: outputs.npy (the output of every query) and
    /// stats.csv (largest weight, effective number of keys, entropy, top-k weights).
    Attend(Box<attend::AttendArgs>),
    /// Contextual flow map: m queries evolve against a frozen or evolving context of n tokens;
    /// with --infinite, also the exact infinite-context twin of each query and the distance.
    Cfm(Box<cfm::CfmArgs>),
    /// Run one study of the research end to end (--quick: under a minute on the CPU) and
    /// write summary.json, CSV data and PNG figures.
    Experiment(experiment::ExperimentArgs),
    /// Measure throughput: field evaluations and RK4 steps in pair interactions per second.
    Bench(bench::BenchArgs),
    /// Draw a run's tokens: up to four snapshots as a PNG, and with --frames, --gif or
    /// --attention one PNG per snapshot, an animated GIF, the attention matrix.
    Render(render::RenderArgs),
    /// Write DIR/view.html: one self-contained page to explore a run's tokens in a browser
    /// (sphere, time slider, clusters, attention of a clicked token, metrics).
    View(view::ViewArgs),
    /// List the GPU adapters wgpu sees, best first.
    Adapters,
    /// List the GPU kernel specialisations each adapter profile gets (kernel, tile shape,
    /// workgroup memory, subgroups); with --emit DIR, write their WGSL.
    Kernels(kernels::KernelsArgs),
}

/// Runs the CLI and returns the process exit code: 0 success, 1 a failed job, 2 bad usage.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                };
            }
            eprintln!("{}", one_line(&e.render().to_string()));
            return 2;
        }
    };
    // The commands that step or draw tokens run on a worker of rayon's pool, so that the
    // backends' passes over the tokens run in place instead of being handed over to it
    // (`on_worker`); the signal handlers only set flags, on whichever thread.
    let result = match cli.command {
        Command::Run(args) => on_worker(|| run::run(*args)),
        Command::Render(args) => on_worker(|| render::render(args)),
        Command::Attend(args) => on_worker(|| attend::attend(*args)),
        Command::Cfm(args) => on_worker(|| cfm::cfm(*args)),
        Command::Experiment(args) => on_worker(|| experiment::experiment(args)),
        Command::Bench(args) => on_worker(|| bench::bench(args)),
        Command::View(args) => view::view(args),
        Command::Adapters => adapters(),
        Command::Kernels(args) => kernels::kernels(args),
    };
    match result {
        Ok(()) => 0,
        Err(e) if e.downcast_ref::<Stopped>().is_some() => {
            let stopped = e.downcast_ref::<Stopped>().expect("checked");
            eprintln!("{}", stopped.message);
            stopped.code
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            1
        }
    }
}

/// Where a command learns that a stop was asked for (the run's signal handlers).
pub(crate) trait Interrupts {
    fn interrupted(&self) -> Option<attnflow::run::Interrupt>;
}

/// The step count of a run or a flow map as a bar on stderr (none when `show` is false), and
/// the stop requests of `interrupts`.
pub(crate) struct StepBar {
    bar: Option<indicatif::ProgressBar>,
    interrupts: Option<Box<dyn Interrupts>>,
}

impl StepBar {
    pub(crate) fn new(show: bool, interrupts: Option<Box<dyn Interrupts>>) -> Self {
        let bar = show.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} steps, {per_sec}, eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        StepBar { bar, interrupts }
    }
}

impl attnflow::run::Progress for StepBar {
    fn start(&mut self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.reset();
        }
    }
    fn step(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
    fn interrupted(&self) -> Option<attnflow::run::Interrupt> {
        self.interrupts.as_ref().and_then(|i| i.interrupted())
    }
}

/// A command that stopped on request (a signal) after writing complete files: its message
/// is said and the process exits with `code`.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Stopped {}

/// Folds a multi-line message into one line (clap's usage hints are dropped).
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(not(feature = "gpu"))]
fn adapters() -> anyhow::Result<()> {
    outln!("this attnflow was built without the gpu feature: no GPU adapters");
    Ok(())
}

#[cfg(feature = "gpu")]
fn adapters() -> anyhow::Result<()> {
    let all = attnflow::gpu::context::adapters();
    if all.is_empty() {
        outln!("no GPU adapters found (on Debian/Ubuntu: apt-get install mesa-vulkan-drivers)");
    }
    for (i, a) in all.iter().enumerate() {
        let info = a.get_info();
        let limits = a.limits();
        outln!(
            "{i}: {}{}\n   max storage binding {} MiB, workgroup memory {} KiB, {} workgroups per dimension",
            attnflow::gpu::context::describe(&info),
            if i == 0 { "  <- chosen" } else { "" },
            limits.max_storage_buffer_binding_size >> 20,
            limits.max_compute_workgroup_storage_size >> 10,
            limits.max_compute_workgroups_per_dimension
        );
        let profile = attnflow::gpu::profiles::profile_of_adapter(a);
        outln!(
            "   kernels of profile {} (attnflow kernels --profile {})",
            profile.name,
            profile.name
        );
    }
    Ok(())
}
