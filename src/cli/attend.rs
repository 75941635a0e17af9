//! `attnflow attend`: one attention layer, no dynamics.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use attnflow::attend::{self, LayerShape, Tokens, derived_seed};
use attnflow::config::BetaRule;

use attnflow::npy;
use attnflow::output::{Kind, Output};

use super::options::{BackendOpt, LayerOpts, OutputOpts};

#[derive(Args, Debug)]
pub struct AttendArgs {
    /// The keys (and values): a .npy file ([n, d], or [seeds, n, d]), or drawn:
    /// uniform:N, gaussian:N or vmf:KAPPA[:MU1,MU2,...]:N.
    #[arg(long)]
    keys: String,
    /// The queries, in the same forms [default: the keys themselves, i.e. self-attention].
    #[arg(long)]
    queries: Option<String>,
    /// Dimension of drawn tokens (files set their own) [default: 3].
    #[arg(long)]
    d: Option<usize>,
    #[command(flatten)]
    layer: LayerOpts,
    /// Q, K, V of the single head: identity, random:SEED, or a folder with Q.npy, K.npy, V.npy.
    #[arg(long, default_value = "identity")]
    qkv: String,
    /// Also write the k largest weights of every query to stats.csv.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Skip stats.csv (it costs an f64 pass over all keys per query on the CPU).
    #[arg(long)]
    no_stats: bool,
    #[command(flatten)]
    backend: BackendOpt,
    #[command(flatten)]
    output: OutputOpts,
}

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
    device: String,
    attnflow_version: &'static str,
    elapsed_s: f64,
}

pub fn attend(args: AttendArgs) -> Result<()> {
    if args.layer.seeds == 0 {
        anyhow::bail!("--seeds must be at least 1");
    }
    let keys = Tokens::parse(&args.keys, "--keys")?;
    let queries = args
        .queries
        .as_deref()
        .map(|q| Tokens::parse(q, "--queries"))
        .transpose()?;
    let (n, d) = keys.size(args.d.unwrap_or(3))?;
    let (m, dq) = match &queries {
        Some(q) => q.size(d)?,
        None => (n, d),
    };
    if dq != d {
        anyhow::bail!("the queries have d = {dq} but the keys have d = {d}");
    }
    if args.top_k > n {
        anyhow::bail!("--top-k {} exceeds the number of keys n = {n}", args.top_k);
    }
    // Keys, queries and outputs in f64 (and their f32 copies), the d x d weights.
    let batch = args.layer.seeds;
    let tokens = attnflow::limits::product(
        "attend",
        &[("seeds", batch), ("n + m", n.saturating_add(m)), ("d", d)],
    )?;
    let weights = attnflow::limits::product("attend", &[("d", d), ("d", d)])?;
    attnflow::limits::ensure_memory(
        "attend",
        tokens
            .saturating_mul(24)
            .saturating_add(weights.saturating_mul(32)),
    )?;
    if let Some(dd) = args.d
        && dd != d
    {
        anyhow::bail!("--d {dd} but the keys file holds d = {d}");
    }
    let layer = super::one_layer(
        "attend",
        &args.layer.beta_rule,
        args.layer.beta,
        &args.layer.model,
        &args.qkv,
        n,
        d,
    )?;
    let (rule, beta, attention) = (layer.rule, layer.beta, layer.attention);
    let model = layer.attend_model(batch);
    // The folder is locked and checked before any work; the files read are never replaced.
    let mut inputs: Vec<std::path::PathBuf> = [Some(&keys), queries.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|t| t.file().map(|p| p.to_path_buf()))
        .collect();
    inputs.extend(attnflow::model::weights::QkvSpec::parse(&args.qkv)?.files());
    let out = Output::open(&args.output.out, Kind::Attend, args.output.force, &inputs)?;
    let y = keys.generate(batch, d, args.layer.seed)?;
    let z = match &queries {
        Some(q) => q.generate(batch, d, derived_seed(args.layer.seed, 1))?,
        None => y.clone(),
    };
    let choice = args.backend.choice()?;
    let shape = LayerShape { batch, m, n, d };
    outln!(
        "attnflow attend: {m} queries x {n} keys, d = {d}, {batch} draw(s), {} beta = {beta}{}",
        args.layer.model.to_uppercase(),
        if rule == BetaRule::Const {
            String::new()
        } else {
            format!(
                " ({} rule, gamma = {})",
                args.layer.beta_rule, args.layer.beta
            )
        }
    );
    let (mut layer, kind, note) = attnflow::backend::build_layer(choice, &model, shape)?;
    if let Some(note) = note {
        outln!("note: {note}");
    }
    outln!("backend: {}", layer.describe());
    let start = std::time::Instant::now();
    layer.set_keys(&y)?;
    let a = layer.run(&z)?;
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(bad) = a.iter().position(|v| !v.is_finite()) {
        let precision = if layer.is_f64() { "f64" } else { "f32" };
        let cause = if attention == attnflow::model::Attention::Usa {
            format!(
                "USA weights exp(beta s) overflow {precision} at beta = {beta}; use --model sa or \
                 a smaller beta"
            )
        } else {
            format!(
                "with SA it is a weighted mean of V y_j, so the keys or V exceed {precision}'s \
                 range"
            )
        };
        anyhow::bail!(
            "the output of query {} (draw {}) is not finite: {cause}",
            (bad / d) % m,
            bad / (m * d)
        );
    }
    let shape_out: Vec<usize> = if batch == 1 {
        vec![m, d]
    } else {
        vec![batch, m, d]
    };
    let path = out.path("outputs.npy");
    if layer.is_f64() {
        npy::write(&path, &shape_out, &a)?;
    } else {
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        npy::write(&path, &shape_out, &a32)?;
    }
    let mut files = vec!["outputs.npy"];
    if !args.no_stats {
        let rows = attend::batch_stats(&model, beta, &z, &y, (batch, m, n, d), args.top_k)?;
        let path = out.path("stats.csv");
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?,
        );
        write!(w, "draw,query,max_weight,effective_keys,entropy")?;
        for k in 1..=args.top_k {
            write!(w, ",top{k}")?;
        }
        writeln!(w)?;
        for (t, s) in rows.iter().enumerate() {
            write!(
                w,
                "{},{},{:.9e},{:.9e},{:.9e}",
                t / m,
                t % m,
                s.max_weight,
                s.effective_keys,
                s.entropy
            )?;
            for k in 0..args.top_k {
                write!(w, ",{:.9e}", s.top.get(k).copied().unwrap_or(0.0))?;
            }
            writeln!(w)?;
        }
        w.flush()?;
        files.push("stats.csv");
        let mean = |f: fn(&attend::AttentionStats) -> f64| {
            rows.iter().map(f).sum::<f64>() / rows.len() as f64
        };
        outln!(
            "mean over queries: largest weight {:.4}, effective keys {:.4}, entropy {:.4} nats (ln n = {:.4})",
            mean(|s| s.max_weight),
            mean(|s| s.effective_keys),
            mean(|s| s.entropy),
            (n as f64).ln()
        );
    }
    let record = Record {
        keys: keys.to_config_string(),
        queries: queries
            .as_ref()
            .map_or("keys".into(), |q| q.to_config_string()),
        n,
        m,
        d,
        seeds: batch,
        seed: args.layer.seed,
        model: &args.layer.model,
        qkv: &args.qkv,
        beta_rule: &args.layer.beta_rule,
        gamma: args.layer.beta,
        beta,
        backend: kind.name(),
        device: layer.describe(),
        attnflow_version: env!("CARGO_PKG_VERSION"),
        elapsed_s: elapsed,
    };
    std::fs::write(out.path("attend.toml"), toml::to_string(&record)?)?;
    files.push("attend.toml");
    out.commit()?;
    outln!(
        "time: {elapsed:.3} s, {:.3e} pair interactions/s",
        (batch * m * n) as f64 / elapsed.max(1e-9)
    );
    outln!("wrote {}: {}", args.output.out.display(), files.join(", "));
    Ok(())
}
