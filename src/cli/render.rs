//! `attnflow render`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use attnflow::npy;

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// An output folder of `attnflow run`.
    dir: PathBuf,
    /// Which system of an ensemble to draw.
    #[arg(long, default_value_t = 0)]
    system: usize,
    /// The PNG to write [default: DIR/tokens.png].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Draws up to four snapshots of traj.npy (or final.npy alone) side by side.
pub fn render(args: RenderArgs) -> Result<()> {
    let traj = args.dir.join("traj.npy");
    let (shape, data, times) = if traj.exists() {
        let arr = npy::read_f64(&traj)?;
        let t =
            npy::read_f64(&args.dir.join("traj_t.npy")).context("traj.npy needs its traj_t.npy")?;
        (arr.shape, arr.data, t.data)
    } else {
        let arr = npy::read_f64(&args.dir.join("final.npy")).with_context(|| {
            format!(
                "{} holds neither traj.npy nor final.npy",
                args.dir.display()
            )
        })?;
        let mut shape = arr.shape;
        shape.insert(0, 1);
        (shape, arr.data, vec![f64::NAN])
    };
    // [frames, (batch,) n, d]
    let (frames, batch, n, d) = match shape.as_slice() {
        [f, n, d] => (*f as usize, 1, *n as usize, *d as usize),
        [f, b, n, d] => (*f as usize, *b as usize, *n as usize, *d as usize),
        other => bail!("unexpected array shape {other:?}"),
    };
    if args.system >= batch {
        bail!("--system {} but the run has {batch} systems", args.system);
    }
    let frame = |k: usize| {
        let start = (k * batch + args.system) * n * d;
        data[start..start + n * d].to_vec()
    };
    let title = |k: usize| {
        if times[k].is_nan() {
            "final".to_string()
        } else {
            format!("t = {}", times[k])
        }
    };
    // Up to four snapshots, evenly spaced, first and last included.
    let mut picks: Vec<usize> = (0..4.min(frames))
        .map(|k| if frames <= 4 { k } else { k * (frames - 1) / 3 })
        .collect();
    picks.dedup();
    let panels: Vec<(String, Vec<f64>)> = picks.into_iter().map(|k| (title(k), frame(k))).collect();
    let out = args.out.unwrap_or_else(|| args.dir.join("tokens.png"));
    attnflow::render::token_panels(&out, &panels, d)?;
    println!("wrote {}", out.display());
    Ok(())
}
