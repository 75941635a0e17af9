//! The `attend` job: one attention layer, no dynamics. Queries attend to keys (drawn or read
//! from .npy files) on any backend; the job writes outputs.npy, stats.csv (how concentrated
//! each query's weights are) and attend.toml.

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::attend::{self, AttentionStats, LayerShape, OneLayer, TokenSource, derived_seed};
use crate::backend::BackendChoice;
use crate::config::BetaRule;
use crate::error::{Result, file_error, input};
use crate::model::Attention;
use crate::npy;
use crate::options::{BackendOpt, LayerOpts, OutputOpts};
use crate::output::{Kind, Output, Provenance};

/// Everything `attnflow attend` takes but the output folder.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttendOptions {
    /// The keys (and values): a .npy file ([n, d], or [seeds, n, d]), or drawn:
    /// uniform:N, gaussian:N or vmf:KAPPA[:MU1,MU2,...]:N.
    #[arg(long)]
    pub keys: String,
    /// The queries, in the same forms [default: the keys themselves, i.e. self-attention].
    #[arg(long)]
    pub queries: Option<String>,
    /// Dimension of drawn tokens (files set their own) [default: 3].
    #[arg(long)]
    pub d: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub layer: LayerOpts,
    /// Q, K, V of the single head: identity, random:SEED, or a folder with Q.npy, K.npy, V.npy.
    #[arg(long, default_value = "identity")]
    pub qkv: String,
    /// Also write the k largest weights of every query to stats.csv.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Skip stats.csv (it costs an f64 pass over all keys per query on the CPU).
    #[arg(long)]
    pub no_stats: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub backend: BackendOpt,
}

/// What attend.toml records besides the provenance: the resolved layer.
#[derive(Serialize)]
struct Record<'a> {
    keys: String,
    queries: String,
    n: usize,
    m: usize,
    d: usize,
    seeds: usize,
    seed: u64,
    model: &'a str,
    qkv: &'a str,
    beta_rule: &'a str,
    gamma: f64,
    beta: f64,
    backend: &'a str,
}

/// The layer evaluated: its outputs and statistics, and what ran.
#[derive(Clone, Debug)]
pub struct AttendResult {
    pub shape: LayerShape,
    /// The outputs [seeds, m, d] (tangent-projected on the sphere), rounded to f32 when the
    /// backend computes in f32 (see `f64`).
    pub outputs: Vec<f64>,
    pub f64: bool,
    /// Per query (draw t / m, query t % m), unless `no_stats`.
    pub stats: Option<Vec<AttentionStats>>,
    pub beta: f64,
    pub rule: BetaRule,
    pub backend: BackendChoice,
    pub device: String,
    /// Why `auto` ran where it did, when that needs saying.
    pub note: Option<String>,
    /// Seconds of the layer itself (keys set and queries run).
    pub elapsed_s: f64,
    /// The files written, in order.
    pub files: Vec<String>,
}

impl AttendResult {
    /// Mean over queries of a statistic.
    pub fn mean_stat(&self, f: fn(&AttentionStats) -> f64) -> Option<f64> {
        let rows = self.stats.as_ref()?;
        Some(rows.iter().map(f).sum::<f64>() / rows.len() as f64)
    }
}

/// Evaluates the layer and writes `out` (outputs.npy, stats.csv, attend.toml). `command` is
/// recorded in the provenance; `say` gets the lines a user sees while it works.
pub fn run(
    opts: &AttendOptions,
    out: &OutputOpts,
    command: &str,
    say: &mut dyn FnMut(String),
) -> Result<AttendResult> {
    if opts.layer.seeds == 0 {
        return Err(input("--seeds must be at least 1"));
    }
    let keys = TokenSource::parse(&opts.keys, "--keys")?;
    let queries = opts
        .queries
        .as_deref()
        .map(|q| TokenSource::parse(q, "--queries"))
        .transpose()?;
    let batch = opts.layer.seeds;
    let (n, m, d) = check_sizes(opts, &keys, queries.as_ref())?;
    let layer = attend::one_layer("attend", &opts.layer, &opts.qkv, n, d)?;
    // The folder is locked and checked before any work; the files read are never replaced.
    let mut inputs: Vec<std::path::PathBuf> = [Some(&keys), queries.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|t| t.file().map(|p| p.to_path_buf()))
        .collect();
    inputs.extend(crate::model::weights::QkvSpec::parse(&opts.qkv)?.files());
    let output = Output::open(&out.out, Kind::Attend, out.force, &inputs)?;
    let y = keys.generate(batch, d, opts.layer.seed)?;
    let z = match &queries {
        Some(q) => q.generate(batch, d, derived_seed(opts.layer.seed, 1))?,
        None => y.clone(),
    };
    let shape = LayerShape { batch, m, n, d };
    say(format!(
        "attnflow attend: {m} queries x {n} keys, d = {d}, {batch} draw(s), {} beta = {}{}",
        opts.layer.model.name().to_uppercase(),
        layer.beta,
        if layer.rule == BetaRule::Const {
            String::new()
        } else {
            format!(
                " ({} rule, gamma = {})",
                opts.layer.beta_rule.name(),
                opts.layer.beta
            )
        }
    ));
    let started = crate::output::unix_now();
    let mut result = evaluate(&layer, opts, shape, &y, &z, say)?;
    write_outputs(&output, &mut result, shape, opts.top_k)?;
    let record = Record {
        keys: keys.to_config_string(),
        queries: queries
            .as_ref()
            .map_or("keys".into(), |q| q.to_config_string()),
        n,
        m,
        d,
        seeds: batch,
        seed: opts.layer.seed,
        model: opts.layer.model.name(),
        qkv: &opts.qkv,
        beta_rule: opts.layer.beta_rule.name(),
        gamma: opts.layer.beta,
        beta: result.beta,
        backend: result.backend.name(),
    };
    let provenance = Provenance::finished(
        opts.backend.choice.name(),
        result.device.clone(),
        started,
        result.elapsed_s,
        command,
    );
    let path = output.path("attend.toml");
    std::fs::write(&path, crate::output::record_toml(&record, &provenance)?)
        .map_err(|e| file_error(&path, format!("cannot write: {e}")))?;
    result.files.push("attend.toml".into());
    output.commit()?;
    Ok(result)
}

/// The sizes of keys and queries (n, m, d), or why they are refused.
fn check_sizes(
    opts: &AttendOptions,
    keys: &TokenSource,
    queries: Option<&TokenSource>,
) -> Result<(usize, usize, usize)> {
    let (n, d) = keys.size(opts.d.unwrap_or(3))?;
    let (m, dq) = match queries {
        Some(q) => q.size(d)?,
        None => (n, d),
    };
    if dq != d {
        return Err(input(format!(
            "the queries have d = {dq} but the keys have d = {d}"
        )));
    }
    if opts.top_k > n {
        return Err(input(format!(
            "--top-k {} exceeds the number of keys n = {n}",
            opts.top_k
        )));
    }
    // Keys, queries and outputs in f64 (and their f32 copies), the d x d weights.
    crate::limits::ensure_layer_memory("attend", opts.layer.seeds, n, m, d, 24)?;
    if let Some(dd) = opts.d
        && dd != d
    {
        return Err(input(format!("--d {dd} but the keys file holds d = {d}")));
    }
    Ok((n, m, d))
}

/// outputs.npy (in the backend's precision) and stats.csv, named in `result.files`.
fn write_outputs(
    output: &Output,
    result: &mut AttendResult,
    shape: LayerShape,
    top_k: usize,
) -> Result<()> {
    let LayerShape { batch, m, d, .. } = shape;
    let shape_out: Vec<usize> = if batch == 1 {
        vec![m, d]
    } else {
        vec![batch, m, d]
    };
    let path = output.path("outputs.npy");
    if result.f64 {
        npy::write(&path, &shape_out, &result.outputs)?;
    } else {
        let a32: Vec<f32> = result.outputs.iter().map(|&v| v as f32).collect();
        npy::write(&path, &shape_out, &a32)?;
    }
    result.files.push("outputs.npy".into());
    if let Some(rows) = &result.stats {
        write_stats(&output.path("stats.csv"), rows, m, top_k)?;
        result.files.push("stats.csv".into());
    }
    Ok(())
}

/// The layer on keys `y` and queries `z` (both [batch, *, d], f64) with its statistics: the
/// job without files (the Python package's `attend`).
pub fn evaluate(
    layer: &OneLayer,
    opts: &AttendOptions,
    shape: LayerShape,
    y: &[f64],
    z: &[f64],
    say: &mut dyn FnMut(String),
) -> Result<AttendResult> {
    let LayerShape { batch, m, n, d } = shape;
    if opts.top_k > n {
        return Err(input(format!(
            "--top-k {} exceeds the number of keys n = {n}",
            opts.top_k
        )));
    }
    let model = layer.clone().attend_model(batch);
    let (mut backend, kind, note) =
        crate::backend::build_layer(opts.backend.choice, &model, shape)?;
    if let Some(note) = &note {
        say(format!("note: {note}"));
    }
    let device = backend.describe();
    say(format!("backend: {device}"));
    let start = std::time::Instant::now();
    backend.set_keys(y)?;
    let outputs = backend.run(z)?;
    let elapsed_s = start.elapsed().as_secs_f64();
    let f64 = backend.is_f64();
    if let Some(bad) = outputs.iter().position(|v| !v.is_finite()) {
        let precision = if f64 { "f64" } else { "f32" };
        let cause = if layer.attention == Attention::Usa {
            format!(
                "USA weights exp(beta s) overflow {precision} at beta = {}; use --model sa or \
                 a smaller beta",
                layer.beta
            )
        } else {
            format!(
                "with SA it is a weighted mean of V y_j, so the keys or V exceed {precision}'s \
                 range"
            )
        };
        return Err(crate::Error::NonFinite(format!(
            "the output of query {} (draw {}) is not finite: {cause}",
            (bad / d) % m,
            bad / (m * d)
        )));
    }
    let stats = if opts.no_stats {
        None
    } else {
        Some(attend::batch_stats(
            &model,
            layer.beta,
            z,
            y,
            (batch, m, n, d),
            opts.top_k,
        )?)
    };
    let result = AttendResult {
        shape,
        outputs,
        f64,
        stats,
        beta: layer.beta,
        rule: layer.rule,
        backend: kind,
        device,
        note,
        elapsed_s,
        files: Vec::new(),
    };
    if let (Some(s_max), Some(s_eff), Some(s_ent)) = (
        result.mean_stat(|s| s.max_weight),
        result.mean_stat(|s| s.effective_keys),
        result.mean_stat(|s| s.entropy),
    ) {
        say(format!(
            "mean over queries: largest weight {s_max:.4}, effective keys {s_eff:.4}, entropy \
             {s_ent:.4} nats (ln n = {:.4})",
            (n as f64).ln()
        ));
    }
    Ok(result)
}

fn write_stats(
    path: &std::path::Path,
    rows: &[AttentionStats],
    m: usize,
    top_k: usize,
) -> Result<()> {
    use std::fmt::Write as _;
    let mut header = "draw,query,max_weight,effective_keys,entropy".to_string();
    for k in 1..=top_k {
        let _ = write!(header, ",top{k}");
    }
    let mut w = crate::csv::CsvWriter::create(path, &header)?;
    let mut top = String::new();
    for (t, s) in rows.iter().enumerate() {
        top.clear();
        for k in 0..top_k {
            let _ = write!(top, ",{:.9e}", s.top.get(k).copied().unwrap_or(0.0));
        }
        w.line(format_args!(
            "{},{},{:.9e},{:.9e},{:.9e}{top}",
            t / m,
            t % m,
            s.max_weight,
            s.effective_keys,
            s.entropy
        ))?;
    }
    w.finish()
}
