//! `attnflow attend`: one attention layer, no dynamics (the library's [`attnflow::jobs::attend`]).

use anyhow::Result;
use clap::Args;

use attnflow::jobs::attend::{self, AttendOptions};
use attnflow::options::OutputOpts;

#[derive(Args, Debug)]
pub struct AttendArgs {
    #[command(flatten)]
    options: AttendOptions,
    #[command(flatten)]
    output: OutputOpts,
}

pub fn attend(args: AttendArgs) -> Result<()> {
    let command = attnflow::output::shell_command(&std::env::args().collect::<Vec<_>>());
    let result = attend::run(&args.options, &args.output, &command, &mut |line| {
        outln!("{line}")
    })?;
    let LayerShape { batch, m, n, .. } = result.shape;
    outln!(
        "time: {:.3} s, {:.3e} pair interactions/s",
        result.elapsed_s,
        (batch * m * n) as f64 / result.elapsed_s.max(1e-9)
    );
    outln!(
        "wrote {}: {}",
        args.output.out.display(),
        result.files.join(", ")
    );
    Ok(())
}

use attnflow::attend::LayerShape;
