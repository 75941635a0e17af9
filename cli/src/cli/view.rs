//! `attnflow view`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use attnflow::model::observables::CLUSTER_COS;
use attnflow::view::{MAX_TOKENS, ViewOptions, write_view};

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// An output folder of `attnflow run --save-every K` (or `attnflow cfm`).
    dir: PathBuf,
    /// The page to write [default: DIR/view.html].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Show at most this many tokens (an evenly spaced sample of a larger run; at most 65536).
    #[arg(long, value_name = "N", default_value_t = MAX_TOKENS)]
    max_tokens: usize,
}

/// Writes the page and says what it shows, with the cluster count of each system at the last
/// snapshot (the same count the page shows).
pub fn view(args: ViewArgs) -> Result<()> {
    let opts = ViewOptions {
        out: args.out,
        max_tokens: args.max_tokens,
    };
    let s = write_view(&args.dir, &opts)?;
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
