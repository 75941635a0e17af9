//! `attnflow cfm`: contextual flow maps, with the exact infinite-context twin for a vMF or
//! uniform context (the library's [`attnflow::jobs::cfm`]).

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use attnflow::jobs::cfm::{self, CfmOptions};
use attnflow::options::OutputOpts;
use attnflow::run::Progress;

#[derive(Args, Debug)]
pub struct CfmArgs {
    #[command(flatten)]
    options: CfmOptions,
    #[command(flatten)]
    output: OutputOpts,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The step count as a bar on stderr.
struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, total: u64) {
        self.0 = Some(ProgressBar::new(total));
        if let Some(bar) = &self.0 {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} steps, {per_sec}, eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
        }
    }
    fn step(&mut self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// No progress shown.
struct Quiet;
impl Progress for Quiet {}

pub fn cfm(args: CfmArgs) -> Result<()> {
    let command = attnflow::output::shell_command(&std::env::args().collect::<Vec<_>>());
    let (mut bar, mut quiet) = (Bar(None), Quiet);
    let progress: &mut dyn Progress = if args.quiet { &mut quiet } else { &mut bar };
    let result = cfm::run(
        &args.options,
        &args.output,
        &command,
        &mut |line| outln!("{line}"),
        progress,
    )?;
    outln!(
        "time: {:.3} s, {:.3e} pair interactions/s",
        result.elapsed_s,
        result.pairs_per_step * args.options.steps as f64 / result.elapsed_s.max(1e-9)
    );
    outln!(
        "wrote {}: {}",
        args.output.out.display(),
        result.files.join(", ")
    );
    Ok(())
}
