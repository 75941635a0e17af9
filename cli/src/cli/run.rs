//! `attnflow run`.

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use clap::Args;

use attnflow::config::{self, ConfigLayer, Resolved, RunConfig};
use attnflow::output::{Kind, Output};
use attnflow::run::{self, Interrupt, Resume};

use super::Stopped;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A TOML file of options (same names as the flags, with _ for -); flags override it.
    /// A run.toml written by attnflow reproduces that run.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overwrite attnflow's files in an existing, non-empty output folder.
    #[arg(long, help_heading = "Output")]
    force: bool,
    /// Every option of a run (also the keys of a --config file).
    #[command(flatten)]
    options: ConfigLayer,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Continue the run in DIR where it stopped (SIGINT or SIGTERM), or extend a finished one
    /// with a larger --t-end or --steps (same step size); everything else comes from
    /// DIR/run.toml. The result is bit for bit the run that was never stopped, on the same
    /// backend.
    // Every option whose role is not resumable (`attnflow::options::OptionRole`) conflicts
    // with it, from the one list of options.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["config", "force"],
        conflicts_with_all = ConfigLayer::refused_on_resume()
    )]
    resume: Option<PathBuf>,
}

impl super::Interrupts for Signals {
    fn interrupted(&self) -> Option<Interrupt> {
        if self.int.load(Ordering::Relaxed) {
            Some(Interrupt::Int)
        } else if self.term.load(Ordering::Relaxed) {
            Some(Interrupt::Term)
        } else {
            None
        }
    }
}

/// SIGINT and SIGTERM seen: the first asks the run to stop after the step in progress
/// (with complete files); a second one of either ends the process at once, which leaves the
/// output folder as it was (the run's files are only staged until it commits).
#[derive(Clone)]
struct Signals {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;
        let any = Arc::new(AtomicBool::new(false));
        let signals = Signals {
            int: Arc::new(AtomicBool::new(false)),
            term: Arc::new(AtomicBool::new(false)),
        };
        for (signal, code, seen) in [(SIGINT, 130, &signals.int), (SIGTERM, 143, &signals.term)] {
            // Handlers run in the order registered: the exit fires only on a second signal.
            flag::register_conditional_shutdown(signal, code, Arc::clone(&any))?;
            flag::register(signal, Arc::clone(seen))?;
            flag::register(signal, Arc::clone(&any))?;
        }
        Ok(signals)
    }
}

/// The configuration, the opened output folder and the checkpoint of `--resume DIR`.
fn prepare_resume(args: &RunArgs, dir: &Path) -> Result<(Resolved, Output, Resume)> {
    check_resume_folder(dir)?;
    refuse_fixed_options(args, dir)?;
    let saved = read_saved_run(dir)?;
    let (t_end, steps) = resumed_length(args, dir, &saved)?;
    refuse_other_backend(args, dir, &saved.layer)?;
    let Saved {
        mut out,
        done,
        checkpoint,
        source,
        layer,
        ..
    } = saved;
    let resolved = resolve_resumed(args, layer, t_end, steps, &mut out)?;
    let state = read_resumed_state(&resolved, dir, &source, checkpoint.as_ref())?;
    let resume = Resume {
        step: done,
        state,
        dir: source,
        checkpoint,
    };
    Ok((resolved, out, resume))
}

/// Refuses a `--resume DIR` that is no folder, or one holding another command's results.
fn check_resume_folder(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "{}: is not a folder: --resume takes a folder written by attnflow run",
            dir.display()
        );
    }
    if !dir.join("run.toml").is_file()
        && !dir.join(attnflow::output::CHECKPOINT).is_dir()
        && !dir.join(attnflow::output::STAGING).is_dir()
        && let Some(other) = Kind::ALL
            .into_iter()
            .find(|k| *k != Kind::Run && dir.join(k.record()).is_file())
    {
        bail!(
            "{}: holds the results of attnflow {} ({}), not of a run: --resume continues a \
             folder written by attnflow run",
            dir.display(),
            other.name(),
            other.record()
        );
    }
    Ok(())
}

/// Refuses every option given that a resumed run cannot change (only resumable ones pass).
fn refuse_fixed_options(args: &RunArgs, dir: &Path) -> Result<()> {
    // Clap refuses the options that are the run's own by name (from the same list); this
    // also covers a caller that builds the options without clap.
    let given = toml::Table::try_from(&args.options)?;
    if let Some(key) = given
        .keys()
        .find(|k| !ConfigLayer::role(k).is_some_and(|r| r.resumable()))
    {
        let changes: Vec<String> = ConfigLayer::options_where(|r| r.resumable())
            .iter()
            .map(|k| format!("--{}", k.replace('_', "-")))
            .collect();
        bail!(
            "--{} cannot change on --resume: a resumed run keeps every option of {} but {}; \
             start a new run to change it",
            key.replace('_', "-"),
            dir.display(),
            changes.join(", ")
        );
    }
    Ok(())
}

/// The run saved in a `--resume` folder: the locked folder, its progress, the checkpoint
/// kept (if any), the folder holding the files resumed from, and its recorded options.
struct Saved {
    out: Output,
    done: usize,
    status: String,
    checkpoint: Option<run::Checkpoint>,
    source: PathBuf,
    layer: ConfigLayer,
    old_t: f64,
    old_steps: usize,
}

/// Locks the folder, then reads and checks its record (run.toml or a checkpoint's).
fn read_saved_run(dir: &Path) -> Result<Saved> {
    // Lock first: nothing else writes while the run is read, and a killed run's staging
    // folder with a checkpoint is kept as the folder's checkpoint.
    let out = Output::open(dir, Kind::Run, true, &[])?;
    let kept = out.checkpoint();
    let record = match &kept {
        Some(c) => c.join(attnflow::output::CHECKPOINT_RECORD),
        None => dir.join("run.toml"),
    };
    if !record.is_file() {
        bail!(
            "{}: holds no run.toml and no checkpoint: --resume takes a folder written by \
             attnflow run",
            dir.display()
        );
    }
    let (done, status) = run::recorded_progress(&record)?;
    let checkpoint = kept
        .as_ref()
        .map(|_| run::read_checkpoint(&record))
        .transpose()?;
    // Nothing is trusted unchecked: the files resumed from are those the record covers.
    let source = kept.clone().unwrap_or_else(|| dir.to_path_buf());
    run::verify_resume(&record, &source, done, checkpoint.as_ref())?;
    let layer = ConfigLayer::from_file(&record)?;
    let (Some(old_t), Some(old_steps)) = (layer.t_end, layer.steps) else {
        bail!("{}: records no t_end and steps", record.display());
    };
    Ok(Saved {
        out,
        done,
        status,
        checkpoint,
        source,
        layer,
        old_t,
        old_steps,
    })
}

/// The resumed run's t_end and steps: the saved run's step size kept, and longer than done.
fn resumed_length(args: &RunArgs, dir: &Path, saved: &Saved) -> Result<(f64, usize)> {
    let (old_t, old_steps, done, status) =
        (saved.old_t, saved.old_steps, saved.done, &saved.status);
    let h = old_t / old_steps as f64;
    let adaptive = saved.layer.integrator.is_some_and(|i| i.is_adaptive());
    if adaptive {
        // An adaptive run's steps depend on T (its last one lands on it): only the same T
        // continues it to the bits of the run never stopped, and a finished one cannot grow.
        if args.options.t_end.is_some_and(|t| t != old_t) || args.options.steps.is_some() {
            bail!(
                "--t-end and --steps cannot change on --resume of an adaptive run (its steps \
                 depend on t_end = {old_t}): resume without them, or start a new run"
            );
        }
        if status == "finished" {
            bail!(
                "{}: the adaptive run is finished: its last step was shortened to land on \
                 t_end = {old_t}, so a longer run takes other steps; start a new run with the \
                 larger --t-end",
                dir.display()
            );
        }
    }
    // The step size stays: only then is the continued run the one never stopped.
    let (t_end, steps) = match (args.options.t_end, args.options.steps) {
        _ if adaptive => (old_t, old_steps),
        (None, None) => (old_t, old_steps),
        (None, Some(s)) => (s as f64 * h, s),
        (Some(t), None) => {
            let s = (t / h).round();
            if !((1.0..1e15).contains(&s) && (s * h - t).abs() <= 1e-9 * t.abs()) {
                bail!(
                    "--t-end {t} is not a whole number of steps of the run's h = {h}: give \
                     --steps too, or a --t-end that is"
                );
            }
            (t, s as usize)
        }
        (Some(t), Some(s)) => {
            if ((t / s as f64) - h).abs() > 1e-12 * h {
                bail!(
                    "--t-end {t} in {s} steps is h = {}, but the run in {} used h = {h}: a \
                     resumed run keeps its step size",
                    t / s as f64,
                    dir.display()
                );
            }
            (t, s)
        }
    };
    if !adaptive && steps < done {
        bail!(
            "{}: the run already did {done} steps; --steps {steps} would be fewer",
            dir.display()
        );
    }
    if !adaptive && steps == done {
        bail!(
            "{}: the run is {status} ({done} of {old_steps} steps): give a larger --t-end or \
             --steps to extend it",
            dir.display()
        );
    }
    Ok((t_end, steps))
}

/// Refuses a `--backend` other than the one the saved run ran on (`auto` passes).
fn refuse_other_backend(args: &RunArgs, dir: &Path, layer: &ConfigLayer) -> Result<()> {
    // Only the backend it ran on continues it bit for bit (and reads its files' precision).
    if let Some(asked) = args.options.backend
        && let Some(ran) = layer.backend
        && asked != ran
        && asked != attnflow::config::BackendChoice::Auto
    {
        bail!(
            "{}: the run ran on the {} backend: resume on the backend it ran on (--backend {}), \
             or start a new run",
            dir.display(),
            ran.name(),
            ran.name()
        );
    }
    Ok(())
}

/// The resumed run's configuration: the saved options with the resumable ones given applied.
fn resolve_resumed(
    args: &RunArgs,
    layer: ConfigLayer,
    t_end: f64,
    steps: usize,
    out: &mut Output,
) -> Result<Resolved> {
    // Every resumable option given is applied (the others were refused above): t_end and
    // steps as just checked, `auto` as the backend the run ran on.
    let mut changes = args.options.clone();
    changes.t_end = Some(t_end);
    changes.steps = Some(steps);
    if changes.backend == Some(attnflow::config::BackendChoice::Auto) {
        changes.backend = None;
    }
    let mut layer = layer.overlay(changes);
    // The initial tokens come from final.npy: an --init file need not exist any more.
    let init = layer.init.take();
    let init_file = init
        .as_deref()
        .and_then(|s| s.strip_prefix("file:"))
        .map(str::to_string);
    if init_file.is_none() {
        layer.init.clone_from(&init);
    }
    let mut resolved = config::resolve(&layer)?;
    if let (Some(init), Some(path)) = (init, init_file) {
        resolved.config.init = init;
        if let Some(hash) = layer.inputs.as_ref().and_then(|r| r.get(&path)) {
            resolved.config.inputs.insert(path, hash.clone());
        }
    }
    out.add_inputs(&resolved.input_files())?;
    Ok(resolved)
}

/// The tokens resumed from (final.npy, or the checkpoint's state), checked against the shape.
fn read_resumed_state(
    resolved: &Resolved,
    dir: &Path,
    source: &Path,
    checkpoint: Option<&run::Checkpoint>,
) -> Result<Vec<f64>> {
    let final_path = match checkpoint {
        Some(c) => source.join(&c.state),
        None => dir.join("final.npy"),
    };
    let attnflow::npy::Array { shape, data, .. } = attnflow::npy::read_f64(&final_path)?;
    let c = &resolved.config;
    let expected: Vec<u64> = if c.batch > 1 {
        vec![c.batch as u64, c.n as u64, c.d as u64]
    } else {
        vec![c.n as u64, c.d as u64]
    };
    if shape != expected {
        bail!(
            "{}: has shape {shape:?}, but run.toml says {expected:?}",
            final_path.display()
        );
    }
    Ok(data)
}

/// The configuration and the opened output folder of a new run (no `--resume`).
fn prepare_new(args: &RunArgs) -> Result<(Resolved, Output)> {
    let file = match &args.config {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    let layer = file.overlay(args.options.clone());
    let resolved = config::resolve(&layer)?;
    // The folder is locked and checked before any work; the files a run reads (the
    // config included) are never replaced by it.
    let mut inputs = resolved.input_files();
    inputs.extend(args.config.clone());
    let out = match layer.out.clone() {
        Some(dir) => Output::open(&dir, Kind::Run, args.force, &inputs)?,
        None => Output::open_numbered(Path::new("runs/run"), Kind::Run, &inputs)?,
    };
    Ok((resolved, out))
}

/// `attnflow run`: prepare the run (new or resumed), run it, and report its results.
pub fn run(args: RunArgs) -> Result<()> {
    let (resolved, out, resume) = match &args.resume {
        Some(dir) => {
            let (resolved, out, resume) = prepare_resume(&args, dir)?;
            (resolved, out, Some(resume))
        }
        None => {
            let (resolved, out) = prepare_new(&args)?;
            (resolved, out, None)
        }
    };
    // Installed once the inputs are read: a signal while they are read (a slow disk, a huge
    // file) ends the command at once, as nothing of the run exists yet.
    let signals = Signals::install()?;
    let out_dir = out.dir().to_path_buf();
    announce(&resolved, &out_dir, resume.as_ref());
    let mut bar = super::StepBar::new(!args.quiet, Some(Box::new(signals)));
    let command: Vec<String> = std::env::args().collect();
    let command = attnflow::output::shell_command(&command);
    let summary = run::execute_from(
        &resolved,
        out,
        &command,
        &mut bar,
        resume.map_or(run::Start::Init, run::Start::Resume),
    )?;
    report(&resolved, &summary, &out_dir);
    stopped(&resolved, &summary, &out_dir)
}

/// The betas of the run's header: one value, the list, or their count and range.
fn describe_betas(c: &RunConfig) -> String {
    if c.beta.iter().all(|b| *b == c.beta[0]) {
        format!("{}", c.beta[0])
    } else if c.beta.len() <= 6 {
        format!("{:?}", c.beta)
    } else {
        format!(
            "{} values in [{}, {}]",
            c.beta.len(),
            c.beta.iter().copied().fold(f64::INFINITY, f64::min),
            c.beta.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        )
    }
}

/// Prints the run's header line, and where a resumed run takes up.
fn announce(resolved: &Resolved, out_dir: &Path, resume: Option<&Resume>) {
    let c = &resolved.config;
    let betas = describe_betas(c);
    outln!(
        "attnflow run: n = {}, d = {}, batch = {}, {} {} {} mask, beta = {betas}, {} T = {} in {} steps, init {}, qkv {}",
        c.n,
        c.d,
        c.batch,
        c.model.name().to_uppercase(),
        c.geometry.name(),
        c.mask.name(),
        if c.layer.is_ode() {
            c.integrator.name().to_string()
        } else {
            format!("{} layers", c.layer.name())
        },
        c.t_end,
        // An adaptive run chooses its steps.
        if c.integrator.is_adaptive() {
            "adaptive".to_string()
        } else {
            c.steps.to_string()
        },
        c.init,
        c.qkv
    );
    if let Some(r) = resume
        && c.integrator.is_adaptive()
    {
        outln!(
            "resuming {}{} after {} step attempts of the adaptive ensemble",
            out_dir.display(),
            if r.checkpoint.is_some() {
                " from the checkpoint of a killed run"
            } else {
                ""
            },
            r.step
        );
    } else if let Some(r) = resume {
        outln!(
            "resuming {}{} at step {} of {} (t = {})",
            out_dir.display(),
            if r.checkpoint.is_some() {
                " from the checkpoint of a killed run"
            } else {
                ""
            },
            r.step,
            c.steps,
            r.step as f64 * resolved.step_size()
        );
    }
}

/// Prints the results: backend, timings, the metrics of (up to 8) systems, the files written.
fn report(resolved: &Resolved, summary: &run::RunSummary, out_dir: &Path) {
    if let Some(note) = &summary.note {
        outln!("note: {note}");
    }
    outln!("backend: {}", summary.backend);
    outln!(
        "time: {:.2} s, {:.3e} pair interactions/s; metrics {:.2} s ({:.2}x the dynamics' {:.2} s)",
        summary.elapsed_s,
        summary.pairs_per_second,
        summary.metrics_s,
        summary.metrics_s / summary.dynamics_s.max(1e-12),
        summary.dynamics_s
    );
    metrics_table(resolved, summary);
    let names: Vec<String> = summary
        .files
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    outln!("wrote {}: {}", out_dir.display(), names.join(", "));
}

/// Prints the first and last metrics of the first 8 systems (the rest are in metrics.csv).
fn metrics_table(resolved: &Resolved, summary: &run::RunSummary) {
    let c = &resolved.config;
    outln!(
        "{:>8} {:>10} {:>14} {:>12} {:>12}",
        "system",
        "t",
        "energy",
        "mean cos",
        "min cos"
    );
    let shown = summary.initial.len().min(8);
    for b in 0..shown {
        let h = resolved.step_size();
        for (t, m) in [
            (
                if c.integrator.is_adaptive() {
                    0.0
                } else {
                    summary.start_step as f64 * h
                },
                &summary.initial[b],
            ),
            (
                if c.integrator.is_adaptive() {
                    summary.t_done
                } else {
                    summary.steps_done as f64 * h
                },
                &summary.last[b],
            ),
        ] {
            outln!(
                "{:>8} {:>10.4} {:>14.6e} {:>12.6} {:>12.6}",
                b,
                t,
                m.energy,
                m.mean_cos,
                m.min_cos
            );
        }
    }
    if summary.initial.len() > shown {
        outln!(
            "... {} more systems in metrics.csv",
            summary.initial.len() - shown
        );
    }
}

/// The command's end: [`Stopped`] with the signal's exit status and how to continue when a
/// signal stopped the run, success otherwise.
fn stopped(resolved: &Resolved, summary: &run::RunSummary, out_dir: &Path) -> Result<()> {
    let c = &resolved.config;
    if let Some(signal) = summary.interrupted
        && c.integrator.is_adaptive()
    {
        return Err(Stopped {
            code: signal.exit_code(),
            message: format!(
                "interrupted at t = {} after {} step attempts: the files in {} hold that \
                 state; continue with: attnflow run --resume {}",
                summary.t_done,
                summary.steps_done,
                out_dir.display(),
                attnflow::output::shell_command(&[out_dir.display().to_string()])
            ),
        }
        .into());
    }
    if let Some(signal) = summary.interrupted {
        return Err(Stopped {
            code: signal.exit_code(),
            message: format!(
                "interrupted at step {} of {} (t = {}): the files in {} hold that state; \
                 continue with: attnflow run --resume {}",
                summary.steps_done,
                c.steps,
                summary.steps_done as f64 * resolved.step_size(),
                out_dir.display(),
                attnflow::output::shell_command(&[out_dir.display().to_string()])
            ),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use attnflow::options::ConfigLayer;
    use clap::CommandFactory;

    /// Every argument of `attnflow run` (clap's own list, so a new one is covered) is either
    /// refused with `--resume` or one of the options a resume applies.
    #[test]
    fn every_run_argument_is_resumable_or_refused_with_resume() {
        let cli = super::super::Cli::command();
        let run = cli.find_subcommand("run").expect("the run subcommand");
        let resume = run
            .get_arguments()
            .find(|a| a.get_id() == "resume")
            .expect("--resume");
        let refused: Vec<&str> = run
            .get_arg_conflicts_with(resume)
            .iter()
            .map(|a| a.get_id().as_str())
            .collect();
        let applied = ConfigLayer::options_where(|r| r.resumable());
        for arg in run.get_arguments() {
            let id = arg.get_id().as_str();
            if ["resume", "quiet", "help"].contains(&id) {
                continue;
            }
            assert!(
                refused.contains(&id) != applied.contains(&id),
                "--{id} is neither refused nor applied by --resume (or both)"
            );
        }
        // The three that a resume once ignored are refused by the parser.
        for (flag, value) in [
            ("--layer", Some("ngpt")),
            ("--ngpt-alpha", Some("0.5")),
            ("--alibi-excludes-self", None),
        ] {
            let mut line = vec!["attnflow", "run", "--resume", "dir", flag];
            line.extend(value);
            let err = super::super::Cli::command()
                .try_get_matches_from(line)
                .expect_err(flag);
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag}"
            );
        }
    }
}
