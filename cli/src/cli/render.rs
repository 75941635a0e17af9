//! `attnflow render`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use attnflow::config::{ConfigLayer, resolve};
use attnflow::npy;
use attnflow::render::MAX_ATTENTION_N;

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// An output folder of `attnflow run`.
    dir: PathBuf,
    /// Which system of an ensemble to draw (0-based).
    #[arg(long, default_value_t = 0)]
    system: usize,
    /// The PNG of up to four snapshots side by side [default: DIR/tokens.png].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write one PNG per snapshot of traj.npy: DIR/frames/frame_0000.png, ... (all in
    /// one view).
    #[arg(long)]
    frames: bool,
    /// Also write DIR/tokens.gif, an animation of every snapshot of traj.npy.
    #[arg(long)]
    gif: bool,
    /// Time each GIF frame is shown, in milliseconds (GIF rounds it to 10 ms).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    delay_ms: u32,
    /// Also write DIR/attention.png: heat maps of the attention matrix w_ij of the first
    /// snapshot and of the final state, computed in f64 from the model in DIR/run.toml
    /// (head 0 of a multi-head model; n <= 2048).
    #[arg(long)]
    attention: bool,
    /// Replace pictures of the names render writes (tokens.png, tokens.gif, attention.png,
    /// frames/frame_NNNN.png, the --out file) that render did not draw, or that were changed
    /// since it drew them. Without it such a file is refused: it is the user's.
    #[arg(long)]
    force: bool,
}

/// The record of the pictures render drew in a folder: each name with the SHA-256 of the
/// bytes it wrote, so that a rerun replaces its own pictures and never a user's file that
/// happens to have the same name (or one of its pictures the user has since edited).
const RECORD: &str = ".attnflow-render.json";

/// The record that covers `path` and the picture's key in it: the record of the folder the
/// picture is in, except for frames, recorded in the run folder (`frames/frame_0000.png`), so
/// that frames/ holds nothing but the frames.
fn record_of(path: &Path) -> (PathBuf, String) {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if folder.file_name().is_some_and(|f| f == "frames") && name.starts_with("frame_") {
        let root = folder.parent().filter(|p| !p.as_os_str().is_empty());
        return (
            root.unwrap_or(Path::new(".")).join(RECORD),
            format!("frames/{name}"),
        );
    }
    (folder.join(RECORD), name)
}

fn read_record(record: &Path) -> serde_json::Map<String, serde_json::Value> {
    std::fs::read_to_string(record)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("drawn").and_then(|d| d.as_object()).cloned())
        .unwrap_or_default()
}

/// Whether render drew the file at `path` as it is now.
fn drawn_by_render(path: &Path) -> bool {
    let (record, name) = record_of(path);
    let Some(sum) = read_record(&record)
        .get(&name)
        .and_then(|v| v.as_str().map(String::from))
    else {
        return false;
    };
    attnflow::output::sha256_file(path).is_ok_and(|s| s == sum)
}

/// Refuses, before anything is drawn, to write over `path` when it is not a picture render
/// drew there (unless `force`), and always when it is not a regular file.
fn guard(path: &Path, force: bool) -> Result<()> {
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(());
    };
    if !meta.is_file() {
        bail!(
            "{} exists and is not a regular file (a folder, a link or a device): render \
             replaces only pictures; move it or give --out another file",
            path.display()
        );
    }
    if !force && !drawn_by_render(path) {
        bail!(
            "{} exists and render did not draw it (or it was changed since): it is kept; \
             use --force to replace it, or give --out another file",
            path.display()
        );
    }
    Ok(())
}

/// Records the pictures just written (see [`RECORD`]), one record per folder, written
/// atomically.
fn remember(paths: &[PathBuf]) -> Result<()> {
    let mut by_record: std::collections::BTreeMap<PathBuf, Vec<(String, &Path)>> =
        Default::default();
    for p in paths {
        let (record, name) = record_of(p);
        by_record.entry(record).or_default().push((name, p));
    }
    for (record, files) in by_record {
        let mut drawn = read_record(&record);
        // Entries of pictures that are gone say nothing any more.
        let folder = record.parent().unwrap_or(Path::new("."));
        drawn.retain(|key, _| folder.join(key).is_file());
        for (name, path) in files {
            drawn.insert(name, attnflow::output::sha256_file(path)?.into());
        }
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "written_by": "attnflow render",
            "drawn": drawn,
        }))?;
        attnflow::output::write_atomic(&record, |tmp| {
            std::fs::write(tmp, &text).map_err(|e| attnflow::error::file_error(tmp, e))
        })?;
    }
    Ok(())
}

/// A trajectory (or the final state alone) as read from an output folder.
struct Snapshots {
    /// [frames, batch, n, d] flattened.
    data: Vec<f64>,
    /// Time of each frame (NaN: the final state, time unknown).
    times: Vec<f64>,
    frames: usize,
    batch: usize,
    n: usize,
    d: usize,
    /// Whether this came from traj.npy (else final.npy).
    trajectory: bool,
}

impl Snapshots {
    fn frame(&self, k: usize, system: usize) -> &[f64] {
        let (n, d) = (self.n, self.d);
        let start = (k * self.batch + system) * n * d;
        &self.data[start..start + n * d]
    }
}

/// Splits a shape [frames, (batch,) n, d] (or [(batch,) n, d] with `frames` false).
fn split_shape(path: &Path, shape: &[u64], frames: bool) -> Result<(usize, usize, usize, usize)> {
    let s: Vec<usize> = shape.iter().map(|&v| v as usize).collect();
    Ok(match (frames, s.as_slice()) {
        (true, [f, n, d]) => (*f, 1, *n, *d),
        (true, [f, b, n, d]) => (*f, *b, *n, *d),
        (false, [n, d]) => (1, 1, *n, *d),
        (false, [b, n, d]) => (1, *b, *n, *d),
        (true, other) => bail!(
            "{}: shape {other:?}, expected [snapshots, n, d] or [snapshots, batch, n, d]",
            path.display()
        ),
        (false, other) => bail!(
            "{}: shape {other:?}, expected [n, d] or [batch, n, d]",
            path.display()
        ),
    })
}

fn read_trajectory(dir: &Path) -> Result<Snapshots> {
    let path = dir.join("traj.npy");
    let arr = npy::read_f64(&path)?;
    let (frames, batch, n, d) = split_shape(&path, &arr.shape, true)?;
    let t_path = dir.join("traj_t.npy");
    let t = npy::read_f64(&t_path)
        .with_context(|| format!("{} needs its traj_t.npy", path.display()))?;
    if t.data.len() != frames {
        bail!(
            "{} holds {} times but traj.npy holds {frames} snapshots",
            t_path.display(),
            t.data.len()
        );
    }
    Ok(Snapshots {
        data: arr.data,
        times: t.data,
        frames,
        batch,
        n,
        d,
        trajectory: true,
    })
}

fn read_final(dir: &Path) -> Result<Snapshots> {
    let path = dir.join("final.npy");
    let arr = npy::read_f64(&path)?;
    let (frames, batch, n, d) = split_shape(&path, &arr.shape, false)?;
    Ok(Snapshots {
        data: arr.data,
        times: vec![f64::NAN],
        frames,
        batch,
        n,
        d,
        trajectory: false,
    })
}

/// A time for a title: at most 4 decimals, trailing zeros dropped.
fn time_label(t: f64) -> String {
    if t.is_nan() {
        return "final".into();
    }
    let s = format!("{t:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("t = {s}")
}

/// Draws up to four snapshots of traj.npy (or final.npy alone) side by side into
/// DIR/tokens.png; with --frames, --gif and --attention also one PNG per snapshot, an
/// animated GIF and attention heat maps.
pub fn render(args: RenderArgs) -> Result<()> {
    let dir = &args.dir;
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: give an output folder of `attnflow run`",
            dir.display()
        );
    }
    // The run folder's lock, held while its files are read and the pictures written: a run
    // or rerun into it meanwhile fails at once (and render fails while one is in progress). A
    // folder one may only read (archived results, pictures drawn elsewhere with --out) is
    // rendered without it.
    let _lock = match attnflow::output::lock_folder(dir) {
        Ok(lock) => Some(lock),
        Err(e) if e.to_string().contains("in use by another attnflow command") => {
            return Err(e.into());
        }
        Err(_) => None,
    };
    let has_traj = dir.join("traj.npy").exists();
    if (args.frames || args.gif) && !has_traj {
        let flag = if args.frames { "--frames" } else { "--gif" };
        bail!(
            "{flag} needs a trajectory but {} has no traj.npy: run `attnflow run --save-every K` to save a snapshot every K steps",
            dir.display()
        );
    }
    if args.gif && !(10..=655_350).contains(&args.delay_ms) {
        bail!(
            "--delay-ms takes 10 to 655350 milliseconds (GIF counts in hundredths of a second), got {}",
            args.delay_ms
        );
    }
    let snaps = if has_traj {
        read_trajectory(dir)?
    } else {
        read_final(dir)
            .with_context(|| format!("{} holds neither traj.npy nor final.npy", dir.display()))?
    };
    let (batch, n, d) = (snaps.batch, snaps.n, snaps.d);
    if args.system >= batch {
        bail!(
            "--system {} but {} holds {batch} system{} (0 to {})",
            args.system,
            dir.display(),
            if batch == 1 { "" } else { "s" },
            batch - 1
        );
    }
    if snaps.frames == 0 || n == 0 || d < 2 {
        bail!(
            "{}: nothing to draw ({} snapshots of n = {n} tokens in d = {d})",
            dir.display(),
            snaps.frames
        );
    }
    if args.attention && n > MAX_ATTENTION_N {
        bail!(
            "--attention draws the n x n attention matrix for n <= {MAX_ATTENTION_N} tokens; this run has n = {n}"
        );
    }
    let sys = args.system;
    let title = |k: usize| {
        let t = time_label(snaps.times[k]);
        if batch > 1 {
            format!("system {sys}, {t}")
        } else {
            t
        }
    };
    // The model is read before anything is written, so that a bad run.toml fails early.
    let attention = if args.attention {
        Some(attention_panels(&args, &snaps)?)
    } else {
        None
    };

    // Up to four snapshots, evenly spaced, first and last included.
    let frames = snaps.frames;
    let mut picks: Vec<usize> = (0..4.min(frames))
        .map(|k| if frames <= 4 { k } else { k * (frames - 1) / 3 })
        .collect();
    picks.dedup();
    let panels: Vec<(String, Vec<f64>)> = picks
        .into_iter()
        .map(|k| (title(k), snaps.frame(k, sys).to_vec()))
        .collect();
    let out = args.out.clone().unwrap_or_else(|| dir.join("tokens.png"));
    check_png_path(&out)?;
    // Every file this render would replace or remove is checked before anything is drawn.
    guard(&out, args.force)?;
    let frames_dir = dir.join("frames");
    if args.frames {
        if frames_dir.symlink_metadata().is_ok() && !frames_dir.is_dir() {
            bail!(
                "{} exists and is not a folder: --frames writes its pictures there; move it",
                frames_dir.display()
            );
        }
        let earlier = std::fs::read_dir(&frames_dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("frame_"))
                    .and_then(|n| n.strip_suffix(".png"))
                    .is_some_and(|k| k.len() >= 4 && k.bytes().all(|b| b.is_ascii_digit()))
            });
        for p in earlier {
            guard(&p, args.force)?;
        }
    }
    if args.gif {
        guard(&dir.join("tokens.gif"), args.force)?;
    }
    if args.attention {
        guard(&dir.join("attention.png"), args.force)?;
    }
    // Each picture is written beside its place and renamed into it when complete.
    attnflow::output::write_atomic(&out, |tmp| attnflow::render::token_panels(tmp, &panels, d))?;
    remember(std::slice::from_ref(&out))?;
    outln!("wrote {}", out.display());

    let all: Vec<(String, &[f64])> = (0..frames)
        .map(|k| (title(k), snaps.frame(k, sys)))
        .collect();
    if args.frames {
        let written = attnflow::render::token_frames(&frames_dir, &all, d)?;
        remember(&written)?;
        outln!(
            "wrote {} frames: {} ... {}",
            written.len(),
            frames_dir.join(attnflow::render::frame_name(0)).display(),
            attnflow::render::frame_name(written.len() - 1)
        );
    }
    if args.gif {
        let gif = dir.join("tokens.gif");
        attnflow::output::write_atomic(&gif, |tmp| {
            attnflow::render::token_gif(tmp, &all, d, args.delay_ms)
        })?;
        remember(std::slice::from_ref(&gif))?;
        outln!(
            "wrote {} ({} frames, {} ms each)",
            gif.display(),
            all.len(),
            (args.delay_ms + 5) / 10 * 10
        );
    }
    if let Some(panels) = attention {
        let path = dir.join("attention.png");
        attnflow::output::write_atomic(&path, |tmp| {
            attnflow::render::attention_panels(tmp, &panels, n)
        })?;
        remember(std::slice::from_ref(&path))?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}

/// `--out` must name a .png file in a folder that exists.
fn check_png_path(out: &std::path::Path) -> Result<()> {
    if out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
        != Some("png".into())
    {
        bail!("--out {}: name a .png file", out.display());
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent
        && p.exists()
        && !p.is_dir()
    {
        bail!(
            "--out {}: {} is a file, not a folder",
            out.display(),
            p.display()
        );
    }
    if let Some(p) = parent
        && !p.is_dir()
    {
        bail!(
            "--out {}: the folder {} does not exist",
            out.display(),
            p.display()
        );
    }
    Ok(())
}

/// The attention matrices to draw (first snapshot and final state of the chosen system),
/// computed from the model recorded in DIR/run.toml.
fn attention_panels(args: &RenderArgs, snaps: &Snapshots) -> Result<Vec<(String, Vec<f64>)>> {
    let dir = &args.dir;
    let toml_path = dir.join("run.toml");
    if !toml_path.exists() {
        bail!(
            "--attention needs the model of the run, but {} has no run.toml",
            dir.display()
        );
    }
    let mut layer = ConfigLayer::from_file(&toml_path)?;
    // The attention matrix needs only the attention model: the initial tokens, the
    // perceptron and noise play no part (and an --init or --mlp file may be gone).
    layer.init = None;
    layer.mlp = None;
    layer.noise = None;
    let resolved = resolve(&layer).with_context(|| {
        format!(
            "{}: cannot rebuild the model of the run",
            toml_path.display()
        )
    })?;
    let (batch, n, d) = (snaps.batch, snaps.n, snaps.d);
    let shape = resolved.shape;
    if (shape.batch, shape.n, shape.d) != (batch, n, d) {
        bail!(
            "{} describes batch = {}, n = {}, d = {} but the saved tokens have batch = {batch}, n = {n}, d = {d}",
            toml_path.display(),
            shape.batch,
            shape.n,
            shape.d
        );
    }
    let model = &resolved.model;
    let config = &resolved.config;
    let beta = model.betas[args.system];
    let h = resolved.step_size();
    let heads = model.head_count();
    // A snapshot at time t meets layer round(t / h) next; the final state the last layer.
    let layer_at = |t: f64| -> u32 {
        let k = if t.is_nan() {
            config.steps
        } else {
            (t / h).round().max(0.0) as usize
        };
        k.min(config.steps - 1) as u32
    };
    let mut states: Vec<(f64, &[f64], bool)> = Vec::new();
    if snaps.trajectory {
        states.push((snaps.times[0], snaps.frame(0, args.system), false));
    }
    let final_path = dir.join("final.npy");
    let final_state;
    if final_path.exists() {
        let f = read_final(dir)?;
        if (f.batch, f.n, f.d) != (batch, n, d) {
            bail!(
                "{} holds batch = {}, n = {}, d = {} but traj.npy batch = {batch}, n = {n}, d = {d}",
                final_path.display(),
                f.batch,
                f.n,
                f.d
            );
        }
        final_state = f;
        states.push((config.t_end, final_state.frame(0, args.system), true));
    } else if snaps.trajectory {
        let k = snaps.frames - 1;
        states.push((snaps.times[k], snaps.frame(k, args.system), false));
    } else {
        bail!("{} holds no final.npy", dir.display());
    }
    let model_name = match config.model {
        attnflow::model::Attention::Sa => "SA",
        attnflow::model::Attention::Usa => "USA",
    };
    let mut out = Vec::new();
    for (t, x, is_final) in states {
        let layer = layer_at(if is_final { f64::NAN } else { t });
        let head = model.system_heads(d, layer, args.system).swap_remove(0);
        let w = attnflow::render::attention_matrix(model, &head, beta, x, d);
        let mut title = format!(
            "w_ij, {}{}: {model_name}, beta = {}, {} mask",
            if is_final { "final " } else { "" },
            time_label(t),
            fmt_beta(beta),
            config.mask.name()
        );
        if batch > 1 {
            title = format!("system {}, {title}", args.system);
        }
        if heads > 1 {
            title.push_str(&format!(", head 0 of {heads}"));
        }
        if model.redraws() {
            title.push_str(&format!(", layer {layer}"));
        }
        out.push((title, w));
    }
    Ok(out)
}

fn fmt_beta(b: f64) -> String {
    let s = format!("{b:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
