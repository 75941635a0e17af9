//! `attnflow view`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use attnflow::model::observables::CLUSTER_COS;
use attnflow::view::{MAX_TOKENS, ViewOptions, write_view};

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// An output folder of `attnflow run --save-every K` (or `attnflow cfm`).
    #[arg(required_unless_present = "live", conflicts_with = "live")]
    dir: Option<PathBuf>,
    /// Write the live page instead: SA/USA on the sphere (d = 2, 3, n up to 65536) simulated
    /// in the browser with WebGPU on attnflow's own kernels, with a playback of a precomputed
    /// run where the browser has no WebGPU.
    #[arg(long)]
    live: bool,
    /// The page to write [default: DIR/view.html; with --live, live.html].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Show at most this many tokens (an evenly spaced sample of a larger run; at most 65536).
    #[arg(long, value_name = "N", default_value_t = MAX_TOKENS, conflicts_with = "live")]
    max_tokens: usize,
    /// Replace an existing page that attnflow did not write (a page attnflow wrote is
    /// replaced without it).
    #[arg(long)]
    force: bool,
}

/// Writes the page and says what it shows, with the cluster count of each system at the last
/// snapshot (the same count the page shows).
pub fn view(args: ViewArgs) -> Result<()> {
    if args.live {
        return live(
            args.out.unwrap_or_else(|| PathBuf::from("live.html")),
            args.force,
        );
    }
    let dir = args.dir.expect("clap requires DIR without --live");
    let opts = ViewOptions {
        out: args.out,
        max_tokens: args.max_tokens,
        force: args.force,
    };
    let s = write_view(&dir, &opts)?;
    outln!(
        "wrote {} ({:.1} MB): {} of {} tokens, d = {}, {} of {} snapshot{}{}",
        s.path.display(),
        s.bytes as f64 / 1e6,
        s.shown,
        s.n,
        s.d,
        s.snapshots_shown,
        s.snapshots,
        if s.snapshots == 1 { "" } else { "s" },
        if s.batch > 1 {
            format!(", {} systems", s.batch)
        } else {
            String::new()
        }
    );
    for note in &s.notes {
        outln!("note: {note}");
    }
    let counts: Vec<String> = s.final_clusters.iter().map(|c| c.to_string()).collect();
    outln!(
        "clusters at the last snapshot (cos >= {CLUSTER_COS}): {}",
        counts.join(" ")
    );
    Ok(())
}

#[cfg(feature = "gpu")]
fn live(out: PathBuf, force: bool) -> Result<()> {
    let bytes = attnflow::live::write_live(&out, force)?;
    outln!(
        "wrote {} ({:.1} MB): the live page (SA/USA on the sphere, d = 2 or 3, n up to {}, in \
         the browser with WebGPU on attnflow's kernels; playback where the browser has none)",
        out.display(),
        bytes as f64 / 1e6,
        attnflow::live::LIVE_MAX_N
    );
    Ok(())
}

#[cfg(not(feature = "gpu"))]
fn live(_out: PathBuf, _force: bool) -> Result<()> {
    anyhow::bail!(
        "this attnflow was built without the gpu feature: it has no kernels for the live page"
    )
}
