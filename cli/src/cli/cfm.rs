//! `attnflow cfm`: contextual flow maps, with the exact infinite-context twin for a vMF or
//! uniform context (the library's [`attnflow::jobs::cfm`]).

use anyhow::Result;
use clap::Args;

use attnflow::jobs::cfm::{self, CfmOptions};
use attnflow::options::OutputOpts;

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

pub fn cfm(args: CfmArgs) -> Result<()> {
    let command = attnflow::output::shell_command(&std::env::args().collect::<Vec<_>>());
    let mut bar = super::StepBar::new(!args.quiet, None);
    let result = cfm::run(
        &args.options,
        &args.output,
        &command,
        &mut |line| outln!("{line}"),
        &mut bar,
    )?;
    outln!(
        "time: {:.3} s, {:.3e} pair interactions/s",
        result.elapsed_s,
        result.pairs / result.elapsed_s.max(1e-9)
    );
    outln!(
        "wrote {}: {}",
        args.output.out.display(),
        result.files.join(", ")
    );
    Ok(())
}
