//! `attnflow view`: one self-contained HTML page to explore an output folder's trajectory.
//!
//! The page (assets/viewer/) holds its JavaScript, three.js (vendored, assets/viewer/three/)
//! and the folder's data, so it opens from disk with no network and no server. Tokens are
//! embedded as int16 (a per-file scale: coordinates to within 3e-5 of the largest), at most
//! [`MAX_TOKENS`] of them (an evenly spaced sample, stated on the page) and as many evenly
//! spaced snapshots as fit in [`DATA_BUDGET`] bytes. Cluster labels of every embedded snapshot
//! are computed here with the union-find of [`crate::model::observables`] at
//! [`CLUSTER_COS`]; principal directions for d > 3 too. Attention weights are recomputed in
//! the page from the tokens and the model in run.toml (docs/model.md §1).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;

use crate::config::{ConfigLayer, resolve};
use crate::error::{Result, file_error, input};
use crate::model::observables::{CLUSTER_COS, cluster_labels_grid};
use crate::npy;

/// The most tokens a page shows (a larger run is shown through an evenly spaced sample).
pub const MAX_TOKENS: usize = 65_536;
/// The bytes of token data (before base64) a page may hold: the page stays under ~20 MB.
pub const DATA_BUDGET: usize = 12 << 20;

const TEMPLATE: &str = include_str!("../assets/viewer/viewer.html");
const VIEWER_JS: &str = include_str!("../assets/viewer/viewer.js");
const THREE_CORE: &str = include_str!("../assets/viewer/three/three.core.min.js");
const THREE_MODULE: &str = include_str!("../assets/viewer/three/three.module.min.js");
const ORBIT: &str = include_str!("../assets/viewer/three/OrbitControls.js");
/// The version of three.js the page embeds (assets/viewer/three/VERSION.md).
pub const THREE_VERSION: &str = "0.181.0";

/// What `view` was asked for.
#[derive(Clone, Debug)]
pub struct ViewOptions {
    /// The page to write [default: DIR/view.html].
    pub out: Option<PathBuf>,
    /// At most this many tokens (<= [`MAX_TOKENS`]).
    pub max_tokens: usize,
    /// Replace an existing page that attnflow did not write.
    pub force: bool,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            out: None,
            max_tokens: MAX_TOKENS,
            force: false,
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct ViewSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub n: usize,
    pub shown: usize,
    pub d: usize,
    pub batch: usize,
    pub snapshots: usize,
    pub snapshots_shown: usize,
    /// Cluster count (cos >= [`CLUSTER_COS`], among the shown tokens) of each system at the
    /// last shown snapshot.
    pub final_clusters: Vec<usize>,
    /// Whether traj.npy was missing and only final.npy is shown.
    pub final_only: bool,
    pub notes: Vec<String>,
}

/// Per-system metrics.csv columns.
#[derive(Serialize, Default, Clone)]
struct SystemMetrics {
    t: Vec<f64>,
    energy: Vec<f64>,
    mean_cos: Vec<f64>,
    min_cos: Vec<f64>,
}

#[derive(Serialize)]
struct Attention {
    available: bool,
    /// Why the page cannot recompute the weights (when not available).
    reason: String,
    /// What the page should say about the weights it shows (head 0 of several, a sample).
    note: String,
    kind: &'static str,
    mask: &'static str,
    alibi_slope: f64,
    alibi_excludes_self: bool,
    /// Q and K of head 0 of each system, row-major d x d.
    q: Vec<Vec<f64>>,
    k: Vec<Vec<f64>>,
}

#[derive(Serialize)]
struct Meta {
    attnflow: &'static str,
    three: &'static str,
    source: &'static str,
    folder: String,
    description: String,
    n: usize,
    shown: usize,
    d: usize,
    batch: usize,
    snapshots: usize,
    geometry: &'static str,
    times: Vec<f64>,
    /// Index into the folder's snapshots of each shown one.
    snapshot_index: Vec<usize>,
    betas: Vec<f64>,
    /// Original index of each shown token (None: all tokens, in order).
    token_index: Option<Vec<usize>>,
    scale: f64,
    positions: String,
    labels: String,
    counts: Vec<Vec<usize>>,
    cluster_cos: f64,
    /// Top 3 principal directions (rows of length d) of each system's first and last shown
    /// snapshot (d > 3 only).
    pca_start: Vec<Vec<f64>>,
    pca_end: Vec<Vec<f64>>,
    metrics: Vec<SystemMetrics>,
    attention: Attention,
    notes: Vec<String>,
    final_only: bool,
}

/// The tokens of a folder: [frames, batch, n, d].
struct Frames {
    data: Vec<f64>,
    times: Vec<f64>,
    frames: usize,
    batch: usize,
    n: usize,
    d: usize,
}

fn split_shape(path: &Path, shape: &[u64], frames: bool) -> Result<(usize, usize, usize, usize)> {
    let s: Vec<usize> = shape.iter().map(|&v| v as usize).collect();
    Ok(match (frames, s.as_slice()) {
        (true, [f, n, d]) => (*f, 1, *n, *d),
        (true, [f, b, n, d]) => (*f, *b, *n, *d),
        (false, [n, d]) => (1, 1, *n, *d),
        (false, [b, n, d]) => (1, *b, *n, *d),
        (_, other) => {
            return Err(file_error(
                path,
                format!(
                    "has shape {other:?}, expected {}",
                    if frames {
                        "[snapshots, n, d] or [snapshots, batch, n, d]"
                    } else {
                        "[n, d] or [batch, n, d]"
                    }
                ),
            ));
        }
    })
}

fn read_frames(dir: &Path) -> Result<(Frames, bool)> {
    let traj = dir.join("traj.npy");
    if traj.is_file() {
        let arr = npy::read_f64(&traj)?;
        let (frames, batch, n, d) = split_shape(&traj, &arr.shape, true)?;
        let t_path = dir.join("traj_t.npy");
        if !t_path.is_file() {
            return Err(file_error(
                &t_path,
                "is missing: traj.npy needs the times of its snapshots",
            ));
        }
        let t = npy::read_f64(&t_path)?;
        if t.data.len() != frames {
            return Err(file_error(
                &t_path,
                format!(
                    "holds {} times but traj.npy holds {frames} snapshots",
                    t.data.len()
                ),
            ));
        }
        return Ok((
            Frames {
                data: arr.data,
                times: t.data,
                frames,
                batch,
                n,
                d,
            },
            false,
        ));
    }
    let fin = dir.join("final.npy");
    if !fin.is_file() {
        return Err(file_error(
            dir,
            "holds no trajectory (traj.npy) and no final state (final.npy): give an output \
             folder of `attnflow run --save-every K` or `attnflow cfm`",
        ));
    }
    let arr = npy::read_f64(&fin)?;
    let (frames, batch, n, d) = split_shape(&fin, &arr.shape, false)?;
    Ok((
        Frames {
            data: arr.data,
            times: vec![f64::NAN],
            frames,
            batch,
            n,
            d,
        },
        true,
    ))
}

fn read_metrics(path: &Path, batch: usize) -> Vec<SystemMetrics> {
    let mut out = vec![SystemMetrics::default(); batch];
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(ct), Some(cs), Some(ce), Some(cm), Some(cn)) = (
        col("t"),
        col("system"),
        col("energy"),
        col("mean_cos"),
        col("min_cos"),
    ) else {
        return Vec::new();
    };
    for line in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        let (Some(t), Some(s), Some(e), Some(m), Some(mn)) =
            (num(ct), num(cs), num(ce), num(cm), num(cn))
        else {
            continue;
        };
        if let Some(sys) = out.get_mut(s as usize) {
            sys.t.push(t);
            sys.energy.push(e);
            sys.mean_cos.push(m);
            sys.min_cos.push(mn);
        }
    }
    out
}

/// The top 3 principal directions (of the uncentred second moment, as for points on the
/// sphere about its centre) of `x` [m, d] by subspace iteration; rows of length d.
fn principal_directions(x: &[f64], d: usize) -> Vec<f64> {
    let m = x.len() / d;
    let mut c = vec![0.0; d * d];
    for t in x.chunks(d) {
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += t[a] * t[b];
            }
        }
    }
    c.iter_mut().for_each(|v| *v /= m.max(1) as f64);
    let k = 3.min(d);
    // Start from the coordinate axes; 300 rounds of multiply + Gram-Schmidt.
    let mut v: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            (0..d)
                .map(|j| {
                    if i == j {
                        1.0
                    } else {
                        1e-3 * ((i * 7 + j * 3) % 5) as f64
                    }
                })
                .collect()
        })
        .collect();
    for _ in 0..300 {
        for vi in v.iter_mut() {
            let w: Vec<f64> = (0..d)
                .map(|a| (0..d).map(|b| c[a * d + b] * vi[b]).sum())
                .collect();
            *vi = w;
        }
        for i in 0..k {
            for j in 0..i {
                let p: f64 = (0..d).map(|a| v[i][a] * v[j][a]).sum();
                let vj = v[j].clone();
                v[i].iter_mut().zip(&vj).for_each(|(a, b)| *a -= p * b);
            }
            let nrm = v[i].iter().map(|a| a * a).sum::<f64>().sqrt();
            if nrm > 0.0 {
                v[i].iter_mut().for_each(|a| *a /= nrm);
            }
        }
    }
    v.concat()
}

/// Evenly spaced picks of `count` out of `total` (first and last included).
fn even_picks(total: usize, count: usize) -> Vec<usize> {
    if count >= total {
        return (0..total).collect();
    }
    if count <= 1 {
        return vec![total - 1];
    }
    let mut p: Vec<usize> = (0..count)
        .map(|k| ((k as f64) * (total - 1) as f64 / (count - 1) as f64).round() as usize)
        .collect();
    p.dedup();
    p
}

/// Writes the page of the output folder `dir` (see the module's documentation).
pub fn write_view(dir: &Path, opts: &ViewOptions) -> Result<ViewSummary> {
    let out = page_path(dir, opts)?;
    // Held until the page is written.
    let _lock = lock_to_read(dir)?;
    let Inputs {
        source,
        tokens,
        final_only,
    } = read_inputs(dir)?;
    let (frames, batch, n, d) = (tokens.frames, tokens.batch, tokens.n, tokens.d);
    let sample = choose_sample(&tokens, opts.max_tokens, final_only);
    let shown = sample.shown;
    let snapshots_shown = sample.picks.len();
    let data = token_data(tokens, &sample);
    let final_clusters = data.counts.last().cloned().unwrap_or_default();
    let model = model_view(dir, source, batch, n, d, shown);
    let metrics = read_metrics(&dir.join("metrics.csv"), batch);

    let b64 = base64::engine::general_purpose::STANDARD;
    let meta = Meta {
        attnflow: env!("CARGO_PKG_VERSION"),
        three: THREE_VERSION,
        source,
        folder: dir
            .canonicalize()
            .unwrap_or_else(|_| dir.to_path_buf())
            .display()
            .to_string(),
        description: model.description,
        n,
        shown,
        d,
        batch,
        snapshots: frames,
        geometry: model.geometry,
        times: sample.times,
        snapshot_index: sample.picks,
        betas: model.betas,
        token_index: sample.token_index,
        scale: data.scale,
        positions: b64.encode(&data.positions),
        labels: b64.encode(&data.labels),
        counts: data.counts,
        cluster_cos: CLUSTER_COS,
        pca_start: data.pca_start,
        pca_end: data.pca_end,
        metrics,
        attention: model.attention,
        notes: sample.notes.clone(),
        final_only,
    };
    let page = render_page(&meta)?;
    crate::output::write_atomic(&out, |tmp| {
        std::fs::write(tmp, page.as_bytes())
            .map_err(|e| file_error(&out, format!("cannot write: {e}")))
    })?;
    Ok(ViewSummary {
        bytes: page.len() as u64,
        path: out,
        n,
        shown,
        d,
        batch,
        snapshots: frames,
        snapshots_shown,
        final_clusters,
        final_only,
        notes: sample.notes,
    })
}

/// Checks the request (a folder, a token limit, a page to write) and returns the page's path.
fn page_path(dir: &Path, opts: &ViewOptions) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(file_error(
            dir,
            "is not a folder: give an output folder of `attnflow run` or `attnflow cfm`",
        ));
    }
    if opts.max_tokens == 0 || opts.max_tokens > MAX_TOKENS {
        return Err(input(format!(
            "--max-tokens takes 1 to {MAX_TOKENS}, got {}",
            opts.max_tokens
        )));
    }
    let out = opts.out.clone().unwrap_or_else(|| dir.join("view.html"));
    check_html_out(&out, opts.force)?;
    Ok(out)
}

/// Locks the folder while it is read, or not at all when it may only be read.
fn lock_to_read(dir: &Path) -> Result<Option<std::fs::File>> {
    // A run into the folder meanwhile fails at once, and view fails while one is in
    // progress; a folder one may only read is viewed without the lock.
    match crate::output::lock_folder(dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(e) if e.to_string().contains("in use by another attnflow command") => Err(e),
        Err(_) => Ok(None),
    }
}

/// What the page is made from: which command wrote the folder, and its tokens.
struct Inputs {
    /// "run", "cfm", or "tokens" (.npy files only).
    source: &'static str,
    tokens: Frames,
    /// Whether traj.npy was missing and only final.npy is shown.
    final_only: bool,
}

/// Reads the folder's kind and tokens, or says why the folder cannot be viewed.
fn read_inputs(dir: &Path) -> Result<Inputs> {
    let source = if dir.join("run.toml").is_file() {
        "run"
    } else if dir.join("cfm.toml").is_file() {
        "cfm"
    } else if dir.join("summary.json").is_file() && !dir.join("traj.npy").is_file() {
        return Err(file_error(
            dir,
            "is an experiment's folder: experiments keep their data as CSV and figures, not \
             token trajectories; view the folder of an `attnflow run --save-every K` instead",
        ));
    } else if dir.join("traj.npy").is_file() || dir.join("final.npy").is_file() {
        "tokens"
    } else {
        return Err(file_error(
            dir,
            "is not an output folder of attnflow (no run.toml, cfm.toml, traj.npy or \
             final.npy): give the folder of `attnflow run --out DIR --save-every K`",
        ));
    };
    let (tokens, final_only) = read_frames(dir)?;
    let (frames, batch, n, d) = (tokens.frames, tokens.batch, tokens.n, tokens.d);
    if frames == 0 || n == 0 || batch == 0 || d < 2 {
        return Err(file_error(
            dir,
            format!("nothing to show ({frames} snapshots of n = {n} tokens in d = {d})"),
        ));
    }
    Ok(Inputs {
        source,
        tokens,
        final_only,
    })
}

/// The tokens and snapshots a page shows, and the notes that tell the reader.
struct Sample {
    /// How many tokens are shown (of n).
    shown: usize,
    /// Original index of each shown token (None: all tokens, in order).
    token_index: Option<Vec<usize>>,
    /// Index into the folder's snapshots of each shown one.
    picks: Vec<usize>,
    /// The time of each shown snapshot.
    times: Vec<f64>,
    notes: Vec<String>,
}

/// Chooses the tokens shown, then the snapshots: as many as fit in [`DATA_BUDGET`].
fn choose_sample(tokens: &Frames, max_tokens: usize, final_only: bool) -> Sample {
    let (frames, batch, n, d) = (tokens.frames, tokens.batch, tokens.n, tokens.d);
    let mut notes = Vec::new();
    if final_only {
        notes.push(
            "This folder holds no trajectory (traj.npy): only the final state is shown. Run \
             with --save-every K to save a snapshot every K steps."
                .to_string(),
        );
    }
    let mut shown = n.min(max_tokens);
    let per_token = batch * d * 2 + batch * 2;
    let min_frames = frames.min(2);
    if shown * per_token * min_frames > DATA_BUDGET {
        shown = (DATA_BUDGET / (per_token * min_frames)).max(1);
    }
    let token_index: Option<Vec<usize>> = (shown < n).then(|| {
        (0..shown)
            .map(|k| ((k as u128 * n as u128) / shown as u128) as usize)
            .collect()
    });
    if shown < n {
        notes.push(format!(
            "Showing {shown} of {n} tokens (evenly spaced by index, one in {:.1}); clusters \
             and attention weights are those of the shown tokens.",
            n as f64 / shown as f64
        ));
    }
    let per_frame = shown * per_token;
    let keep = (DATA_BUDGET / per_frame).clamp(min_frames, frames);
    let picks = even_picks(frames, keep);
    if picks.len() < frames {
        notes.push(format!(
            "Showing {} of the folder's {frames} snapshots (evenly spaced) to keep the page small.",
            picks.len()
        ));
    }
    Sample {
        shown,
        token_index,
        times: picks.iter().map(|&f| tokens.times[f]).collect(),
        picks,
        notes,
    }
}

/// What the page shows of the sampled tokens.
struct TokenData {
    /// The coordinate of an int16 unit (the largest coordinate is 32767 units).
    scale: f64,
    /// [picks, batch, shown, d] as little-endian int16.
    positions: Vec<u8>,
    /// The cluster of every shown token, [picks, batch, shown] as little-endian u16.
    labels: Vec<u8>,
    /// Cluster count of each system at each shown snapshot.
    counts: Vec<Vec<usize>>,
    /// Top 3 principal directions of each system's first and last shown snapshot (d > 3).
    pca_start: Vec<Vec<f64>>,
    pca_end: Vec<Vec<f64>>,
}

/// Gathers the sample's tokens, quantizes them, and computes their clusters and principal
/// directions.
fn token_data(tokens: Frames, sample: &Sample) -> TokenData {
    let (batch, n, d) = (tokens.batch, tokens.n, tokens.d);
    let (shown, picks) = (sample.shown, &sample.picks);
    // Gather [picks, batch, shown, d] in f64.
    let mut sel = Vec::with_capacity(picks.len() * batch * shown * d);
    for &f in picks {
        for s in 0..batch {
            let base = (f * batch + s) * n * d;
            match &sample.token_index {
                None => sel.extend_from_slice(&tokens.data[base..base + n * d]),
                Some(idx) => {
                    for &i in idx {
                        sel.extend_from_slice(&tokens.data[base + i * d..base + (i + 1) * d]);
                    }
                }
            }
        }
    }
    drop(tokens);
    let largest = sel.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let scale = if largest > 0.0 {
        largest / 32767.0
    } else {
        1.0
    };
    let mut positions = Vec::with_capacity(sel.len() * 2);
    for v in &sel {
        let q = (v / scale).round().clamp(-32767.0, 32767.0) as i16;
        positions.extend_from_slice(&q.to_le_bytes());
    }

    let block = shown * d;
    let mut labels = Vec::with_capacity(picks.len() * batch * shown * 2);
    let mut counts = Vec::with_capacity(picks.len());
    for k in 0..picks.len() {
        let mut row = Vec::with_capacity(batch);
        for s in 0..batch {
            let x = &sel[(k * batch + s) * block..(k * batch + s + 1) * block];
            let (system_labels, count) = cluster_labels_grid(x, d, CLUSTER_COS);
            for l in system_labels {
                labels.extend_from_slice(&(l as u16).to_le_bytes());
            }
            row.push(count);
        }
        counts.push(row);
    }

    let (mut pca_start, mut pca_end) = (Vec::new(), Vec::new());
    if d > 3 {
        let last = picks.len() - 1;
        for s in 0..batch {
            pca_start.push(principal_directions(&sel[s * block..(s + 1) * block], d));
            let e = (last * batch + s) * block;
            pca_end.push(principal_directions(&sel[e..e + block], d));
        }
    }
    TokenData {
        scale,
        positions,
        labels,
        counts,
        pca_start,
        pca_end,
    }
}

/// What the page knows of the model.
struct ModelView {
    betas: Vec<f64>,
    description: String,
    geometry: &'static str,
    attention: Attention,
}

impl ModelView {
    /// A model the page cannot show the weights of, for `reason` (empty: not yet known).
    fn unknown(batch: usize, reason: String) -> Self {
        ModelView {
            betas: vec![f64::NAN; batch],
            description: String::new(),
            geometry: "sphere",
            attention: Attention {
                available: false,
                reason,
                note: String::new(),
                kind: "sa",
                mask: "full",
                alibi_slope: 0.0,
                alibi_excludes_self: false,
                q: Vec::new(),
                k: Vec::new(),
            },
        }
    }
}

/// The model as the page shows it: betas for every kind of folder; attention for a run whose
/// weights the page can recompute.
fn model_view(
    dir: &Path,
    source: &str,
    batch: usize,
    n: usize,
    d: usize,
    shown: usize,
) -> ModelView {
    let mut view = match source {
        "run" => run_model_view(dir, batch, n, d),
        "cfm" => cfm_model_view(dir, batch),
        _ => ModelView::unknown(batch, "no run.toml: the model is unknown".into()),
    };
    let attention = &mut view.attention;
    if attention.available && shown < n {
        attention.note = [
            attention.note.as_str(),
            "over the shown tokens only (approximate)",
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    }
    view
}

/// The model of a run folder from its run.toml, with head 0's Q and K when they hold still.
fn run_model_view(dir: &Path, batch: usize, n: usize, d: usize) -> ModelView {
    let (resolved, description) = match run_model(dir, batch, n, d) {
        Ok(run) => run,
        Err(e) => {
            return ModelView::unknown(
                batch,
                format!("cannot rebuild the model from run.toml ({e}): weights not shown"),
            );
        }
    };
    let model = &resolved.model;
    let mut view = ModelView::unknown(batch, String::new());
    view.description = description;
    view.betas = model.betas.clone();
    view.geometry = match model.geometry {
        crate::model::Geometry::Sphere => "sphere",
        crate::model::Geometry::Euclidean => "euclidean",
    };
    let attention = &mut view.attention;
    attention.kind = match model.attention {
        crate::model::Attention::Sa => "sa",
        crate::model::Attention::Usa => "usa",
    };
    attention.mask = resolved.config.mask.name();
    attention.alibi_slope = model.alibi_slope(n);
    attention.alibi_excludes_self = model.alibi.is_some_and(|a| a.excludes_self);
    if model.weights_change() {
        attention.reason = "the attention weights of this run change with depth \
            (redrawn or per-layer Q, K): the page cannot recompute them"
            .into();
    } else {
        attention.available = true;
        for s in 0..batch {
            let head = model.system_heads(d, 0, s).swap_remove(0);
            attention.q.push(head.q.clone());
            attention.k.push(head.k.clone());
        }
        let heads = model.head_count();
        if heads > 1 {
            attention.note = format!("head 0 of {heads}");
        }
    }
    view
}

/// The model of a contextual flow map's folder from its cfm.toml (no weights to show).
fn cfm_model_view(dir: &Path, batch: usize) -> ModelView {
    let mut view = ModelView::unknown(
        batch,
        "a flow map's queries attend to the context, not to each \
         other: no weights to show"
            .into(),
    );
    if let Ok(text) = std::fs::read_to_string(dir.join("cfm.toml"))
        && let Ok(v) = text.parse::<toml::Table>()
    {
        if let Some(b) = v.get("beta").and_then(|b| b.as_float()) {
            view.betas = vec![b; batch];
        }
        let get = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
        view.description = format!(
            "contextual flow map: m = {} queries, n = {} context tokens ({}), model {}, \
             beta = {}, T = {}",
            get("m"),
            get("n"),
            get("context_mode").trim_matches('"'),
            get("model").trim_matches('"'),
            get("beta"),
            get("t_end")
        );
    }
    view
}

/// The page: the template with the import map, the data and the viewer's script put in.
fn render_page(meta: &Meta) -> Result<String> {
    let json = serde_json::to_string(meta)
        .map_err(|e| input(format!("cannot encode the page's data: {e}")))?
        // Inside <script>: no "</" may end the element early.
        .replace("</", "<\\/");
    Ok(TEMPLATE
        .replacen("/*@IMPORTMAP@*/", &import_map(), 1)
        .replacen("/*@DATA@*/", &json, 1)
        .replacen(
            "/*@VIEWER@*/",
            &VIEWER_JS.replace("</script", "<\\/script"),
            1,
        ))
}

/// The mark every page attnflow writes carries in its head: an existing file without it is a
/// user's, kept unless `--force`.
pub(crate) const GENERATOR: &str = r#"<meta name="generator" content="attnflow">"#;

/// Checks that `out` names a .html file in a folder that exists, and that a file already there
/// is a page attnflow wrote (or `force`): a user's file is never replaced unasked.
pub(crate) fn check_html_out(out: &Path, force: bool) -> Result<()> {
    if out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
        != Some("html".into())
    {
        return Err(input(format!("--out {}: name a .html file", out.display())));
    }
    if let Some(p) = out.parent().filter(|p| !p.as_os_str().is_empty())
        && !p.is_dir()
    {
        return Err(input(format!(
            "--out {}: the folder {} does not exist",
            out.display(),
            p.display()
        )));
    }
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(out, format!("cannot inspect: {e}"))),
        Ok(m) if !m.is_file() => {
            return Err(input(format!(
                "--out {}: exists and is not a regular file: it is kept; give --out another file",
                out.display()
            )));
        }
        Ok(_) if force => {}
        Ok(_) => {
            // The mark sits in the first lines of the head.
            let mut head = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(
                    std::fs::File::open(out)
                        .map_err(|e| file_error(out, format!("cannot read: {e}")))?,
                    4096,
                ),
                &mut head,
            )
            .map_err(|e| file_error(out, format!("cannot read: {e}")))?;
            if !String::from_utf8_lossy(&head).contains(GENERATOR) {
                return Err(input(format!(
                    "{}: exists and attnflow did not write it: it is kept; use --force to \
                     replace it, or give --out another file",
                    out.display()
                )));
            }
        }
    }
    Ok(())
}

/// The import map of the vendored three.js, every module as a data: URL (no network).
pub(crate) fn import_map() -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let module = |src: &str| format!("data:text/javascript;base64,{}", b64.encode(src));
    let three_module = THREE_MODULE.replace("\"./three.core.min.js\"", "\"three-core\"");
    serde_json::json!({
        "imports": {
            "three-core": module(THREE_CORE),
            "three": module(&three_module),
            "three/addons/controls/OrbitControls.js": module(ORBIT),
        }
    })
    .to_string()
}

/// The model of a run folder, checked against the saved tokens, and a line describing it.
fn run_model(
    dir: &Path,
    batch: usize,
    n: usize,
    d: usize,
) -> Result<(crate::config::Resolved, String)> {
    let toml_path = dir.join("run.toml");
    let mut layer = ConfigLayer::from_file(&toml_path)?;
    // Only the attention model is needed: the initial tokens, perceptron and noise play no
    // part (and an --init or --mlp file may be gone).
    layer.init = None;
    layer.mlp = None;
    layer.noise = None;
    let resolved = resolve(&layer)?;
    let shape = resolved.shape;
    if (shape.batch, shape.n, shape.d) != (batch, n, d) {
        return Err(file_error(
            &toml_path,
            format!(
                "describes batch = {}, n = {}, d = {} but the saved tokens have batch = {batch}, \
                 n = {n}, d = {d}",
                shape.batch, shape.n, shape.d
            ),
        ));
    }
    let c = &resolved.config;
    let m = &resolved.model;
    let desc = format!(
        "{} on the {}, {} mask, {} head{}, T = {}, {} steps",
        c.model.name().to_uppercase(),
        match m.geometry {
            crate::model::Geometry::Sphere => "sphere",
            crate::model::Geometry::Euclidean => "euclidean space",
        },
        c.mask.name(),
        m.head_count(),
        if m.head_count() == 1 { "" } else { "s" },
        c.t_end,
        c.steps,
    );
    Ok((resolved, desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_picks_keep_first_and_last() {
        assert_eq!(even_picks(10, 3), vec![0, 5, 9]);
        assert_eq!(even_picks(3, 5), vec![0, 1, 2]);
        assert_eq!(even_picks(7, 1), vec![6]);
    }

    #[test]
    fn principal_directions_find_the_spread() {
        // Points spread along e_2 most, then e_0, then e_3, in d = 5.
        let mut x = Vec::new();
        for k in 0..200 {
            let t = k as f64 / 200.0 - 0.5;
            x.extend_from_slice(&[
                2.0 * t,
                0.0,
                5.0 * (t * 7.0).sin(),
                (t * 13.0).cos() * 0.5,
                0.0,
            ]);
        }
        let v = principal_directions(&x, 5);
        assert!(v[2].abs() > 0.99, "{v:?}");
        assert!(v[5 + 3].abs() > 0.9 || v[5].abs() > 0.9, "{v:?}");
    }
}
