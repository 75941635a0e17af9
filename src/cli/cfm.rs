//! `attnflow cfm`: contextual flow maps, with the exact infinite-context twin for a vMF or
//! uniform context.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use attnflow::attend::{LayerShape, Tokens, derived_seed};
use attnflow::cfm::{Cfm, ContextMode, distances};
use attnflow::integrate::Integrator;
use attnflow::meanfield::VmfLaw;
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model};
use attnflow::npy;
use attnflow::output::{Kind, Output};

use super::options::{BackendOpt, LayerOpts, OutputOpts};

#[derive(Args, Debug)]
pub struct CfmArgs {
    /// Number of query tokens per draw (ignored with a --queries file).
    #[arg(long, default_value_t = 64)]
    m: usize,
    /// Number of context tokens per draw (ignored with a --context file).
    #[arg(long, default_value_t = 10000)]
    n: usize,
    /// Token dimension (files set their own).
    #[arg(long, default_value_t = 3)]
    d: usize,
    /// The context law: uniform, gaussian, vmf:KAPPA[:MU1,MU2,...] (mean direction e_1 unless
    /// given), or file:PATH.npy ([n, d], or [seeds, n, d]).
    #[arg(long, visible_alias = "context-law", default_value = "uniform")]
    context: String,
    /// The queries' law, in the same forms.
    #[arg(long, default_value = "uniform")]
    queries: String,
    /// frozen: the context stays as drawn; evolving: it moves by self-attention (SA of the
    /// same model), O(n^2) per evaluation.
    #[arg(long, default_value = "frozen", value_parser = ["frozen", "evolving"])]
    context_mode: String,
    #[command(flatten)]
    layer: LayerOpts,
    /// Geometry: sphere or euclidean.
    #[arg(long, default_value = "sphere", value_parser = ["sphere", "euclidean"])]
    geometry: String,
    /// Q, K, V: identity, random:SEED, or a folder with Q.npy, K.npy, V.npy.
    #[arg(long, default_value = "identity")]
    qkv: String,
    /// Integrator: euler, heun or rk4.
    #[arg(long, default_value = "rk4", value_parser = ["euler", "heun", "rk4"])]
    integrator: String,
    /// Final time T.
    #[arg(long, default_value_t = 5.0, allow_hyphen_values = true)]
    t_end: f64,
    /// Number of steps; h = T / steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Save the queries every K steps (and at t = 0) [default: about 10 saves].
    #[arg(long, value_name = "K")]
    save_every: Option<usize>,
    /// Also solve the infinite-context twin of every query (the context law in place of the
    /// sample; needs a uniform or vmf context, frozen, SA on the sphere) with an adaptive
    /// 8th-order integrator to --tol, and write the distances to it.
    #[arg(long)]
    infinite: bool,
    /// Tolerance of the infinite-context integrator (relative and absolute).
    #[arg(long, default_value_t = 1e-12)]
    tol: f64,
    #[command(flatten)]
    backend: BackendOpt,
    #[command(flatten)]
    output: OutputOpts,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Serialize)]
struct Record<'a> {
    m: usize,
    n: usize,
    d: usize,
    context: &'a str,
    queries: &'a str,
    context_mode: &'a str,
    seeds: usize,
    seed: u64,
    model: &'a str,
    geometry: &'a str,
    qkv: &'a str,
    beta_rule: &'a str,
    gamma: f64,
    beta: f64,
    integrator: &'a str,
    t_end: f64,
    steps: usize,
    save_every: usize,
    infinite: bool,
    tol: f64,
    backend: &'a str,
    device: String,
    attnflow_version: &'static str,
    elapsed_s: f64,
}

fn tokens(spec: &str, count: usize, what: &str) -> Result<Tokens> {
    let spec = spec.trim();
    Ok(if spec.starts_with("file:") || spec.ends_with(".npy") {
        Tokens::parse(spec, what)?
    } else {
        Tokens::parse(&format!("{spec}:{count}"), what)?
    })
}

pub fn cfm(args: CfmArgs) -> Result<()> {
    if args.layer.seeds == 0 {
        anyhow::bail!("--seeds must be at least 1");
    }
    if args.steps == 0 {
        anyhow::bail!("steps must be at least 1");
    }
    if !args.t_end.is_finite() || args.t_end <= 0.0 {
        anyhow::bail!("t-end must be a finite number > 0, got {}", args.t_end);
    }
    if args.m == 0 {
        anyhow::bail!("m = 0: a contextual flow map needs at least one query");
    }
    if args.n == 0 {
        anyhow::bail!("n = 0: a contextual flow map needs at least one context token");
    }
    let context = tokens(&args.context, args.n, "--context")?;
    let queries = tokens(&args.queries, args.m, "--queries")?;
    let (n, d) = context.size(args.d)?;
    let (m, dq) = queries.size(d)?;
    if dq != d {
        anyhow::bail!("the queries have d = {dq} but the context has d = {d}");
    }
    // Context and queries in f64 with a few stage copies, the d x d weights.
    let tokens = attnflow::limits::product(
        "cfm",
        &[
            ("seeds", args.layer.seeds),
            ("n + m", n.saturating_add(m)),
            ("d", d),
        ],
    )?;
    let weights = attnflow::limits::product("cfm", &[("d", d), ("d", d)])?;
    attnflow::limits::ensure_memory(
        "cfm",
        tokens
            .saturating_mul(64)
            .saturating_add(weights.saturating_mul(32)),
    )?;
    let super::OneLayer {
        rule: _,
        beta,
        attention,
        weights,
    } = super::one_layer(
        "cfm",
        &args.layer.beta_rule,
        args.layer.beta,
        &args.layer.model,
        &args.qkv,
        n,
        d,
    )?;
    let geometry = if args.geometry == "euclidean" {
        Geometry::Euclidean
    } else {
        Geometry::Sphere
    };
    let mode = if args.context_mode == "evolving" {
        ContextMode::Evolving
    } else {
        ContextMode::Frozen
    };
    let integrator = match args.integrator.as_str() {
        "euler" => Integrator::Euler,
        "heun" => Integrator::Heun,
        _ => Integrator::Rk4,
    };
    if d < 2 {
        anyhow::bail!("d = {d} is too small: tokens live in R^d with d >= 2");
    }
    // The population law of the context, for the infinite-context twin.
    let law = if args.infinite {
        if mode != ContextMode::Frozen || attention != Attention::Sa || geometry != Geometry::Sphere
        {
            anyhow::bail!(
                "--infinite solves the frozen-context SA flow on the sphere: use \
                 --context-mode frozen --model sa --geometry sphere"
            );
        }
        match &context {
            Tokens::Law {
                law: InitSpec::Uniform | InitSpec::Gaussian,
                ..
            } => Some(VmfLaw::uniform(d)),
            Tokens::Law {
                law: InitSpec::Vmf { kappa, mu },
                ..
            } => {
                let mu = mu.clone().unwrap_or_else(|| {
                    let mut e1 = vec![0.0; d];
                    e1[0] = 1.0;
                    e1
                });
                Some(VmfLaw::new(mu, *kappa).map_err(|e| anyhow::anyhow!("--context: {e}"))?)
            }
            _ => anyhow::bail!(
                "--infinite needs the context's law: --context uniform or vmf:KAPPA[:MU], not a file"
            ),
        }
    } else {
        None
    };
    if !(args.tol.is_finite() && args.tol > 0.0 && args.tol < 1.0) {
        anyhow::bail!("--tol must be in (0, 1), got {:e}", args.tol);
    }
    let batch = args.layer.seeds;
    let model = Model::new(attention, geometry, Mask::Full, weights, vec![beta; batch]);
    // The folder is locked and checked before any work; the files read are never replaced.
    let mut inputs: Vec<std::path::PathBuf> = [&context, &queries]
        .into_iter()
        .filter_map(|t| t.file().map(|p| p.to_path_buf()))
        .collect();
    inputs.extend(attnflow::model::weights::QkvSpec::parse(&args.qkv)?.files());
    let out = Output::open(&args.output.out, Kind::Cfm, args.output.force, &inputs)?;
    let y0 = context.generate(batch, d, args.layer.seed)?;
    let z0 = queries.generate(batch, d, derived_seed(args.layer.seed, 1))?;
    let choice = args.backend.choice()?;
    let shape = LayerShape { batch, m, n, d };
    outln!(
        "attnflow cfm: {m} queries against a {} context of {n} tokens, d = {d}, {batch} draw(s), \
         {} beta = {beta}, {} T = {} in {} steps",
        args.context_mode,
        args.layer.model.to_uppercase(),
        args.integrator,
        args.t_end,
        args.steps
    );
    let mut flow = Cfm::new(choice, &model, shape, mode, z0.clone(), y0)?;
    if let Some(note) = &flow.note {
        outln!("note: {note}");
    }
    outln!("backend: {}", flow.describe());
    let save_every = args.save_every.unwrap_or((args.steps / 10).max(1)).max(1);
    let h = args.t_end / args.steps as f64;
    let bar = (!args.quiet).then(|| {
        let bar = ProgressBar::new(args.steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} steps, {per_sec}, eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    });
    let start = std::time::Instant::now();
    let attnflow::cfm::Trajectory { times, snapshots } =
        flow.run(integrator, h, args.steps, save_every, |step| {
            if let Some(bar) = &bar {
                bar.set_position(step as u64);
            }
        })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let tokens_shape = |count: usize| -> Vec<usize> {
        if batch == 1 {
            vec![count, d]
        } else {
            vec![batch, count, d]
        }
    };
    let mut files = vec!["final.npy", "traj.npy", "traj_t.npy"];
    npy::write(&out.path("final.npy"), &tokens_shape(m), &flow.z)?;
    let mut traj_shape = vec![snapshots.len()];
    traj_shape.extend(tokens_shape(m));
    npy::write(&out.path("traj.npy"), &traj_shape, &snapshots.concat())?;
    npy::write(&out.path("traj_t.npy"), &[times.len()], &times)?;
    if mode == ContextMode::Evolving {
        npy::write(&out.path("context_final.npy"), &tokens_shape(n), &flow.y)?;
        files.push("context_final.npy");
    }
    if let Some(law) = law {
        let istart = std::time::Instant::now();
        let infinite =
            attnflow::cfm::infinite_twins(&law, &model.heads[0], beta, &z0, &times, args.tol);
        npy::write(&out.path("infinite.npy"), &traj_shape, &infinite)?;
        let per = batch * m * d;
        let mut dist = Vec::with_capacity(snapshots.len() * batch * m);
        let path = out.path("distance.csv");
        let mut csv = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?,
        );
        writeln!(csv, "t,mean,rms,max")?;
        for (s, snap) in snapshots.iter().enumerate() {
            let dd = distances(snap, &infinite[s * per..(s + 1) * per], d);
            let mean = dd.iter().sum::<f64>() / dd.len() as f64;
            let rms = (dd.iter().map(|v| v * v).sum::<f64>() / dd.len() as f64).sqrt();
            let max = dd.iter().copied().fold(0.0, f64::max);
            writeln!(csv, "{},{mean:.9e},{rms:.9e},{max:.9e}", times[s])?;
            dist.extend(dd);
        }
        csv.flush()?;
        let mut dshape = vec![snapshots.len()];
        if batch > 1 {
            dshape.push(batch);
        }
        dshape.push(m);
        npy::write(&out.path("distance.npy"), &dshape, &dist)?;
        files.extend(["infinite.npy", "distance.npy", "distance.csv"]);
        let last = &dist[dist.len() - batch * m..];
        outln!(
            "infinite-context twins: {} queries in {:.2} s (tol {:e}); at T = {}: distance mean {:.4e}, rms {:.4e}, max {:.4e}",
            batch * m,
            istart.elapsed().as_secs_f64(),
            args.tol,
            args.t_end,
            last.iter().sum::<f64>() / last.len() as f64,
            (last.iter().map(|v| v * v).sum::<f64>() / last.len() as f64).sqrt(),
            last.iter().copied().fold(0.0, f64::max)
        );
    }
    let record = Record {
        m,
        n,
        d,
        context: &context.to_config_string(),
        queries: &queries.to_config_string(),
        context_mode: &args.context_mode,
        seeds: batch,
        seed: args.layer.seed,
        model: &args.layer.model,
        geometry: &args.geometry,
        qkv: &args.qkv,
        beta_rule: &args.layer.beta_rule,
        gamma: args.layer.beta,
        beta,
        integrator: &args.integrator,
        t_end: args.t_end,
        steps: args.steps,
        save_every,
        infinite: args.infinite,
        tol: args.tol,
        backend: flow.kind.name(),
        device: flow.describe(),
        attnflow_version: env!("CARGO_PKG_VERSION"),
        elapsed_s: elapsed,
    };
    std::fs::write(out.path("cfm.toml"), toml::to_string(&record)?)?;
    files.push("cfm.toml");
    out.commit()?;
    outln!(
        "time: {elapsed:.3} s, {:.3e} pair interactions/s",
        flow.pairs_per_step(integrator) * args.steps as f64 / elapsed.max(1e-9)
    );
    outln!("wrote {}: {}", args.output.out.display(), files.join(", "));
    Ok(())
}
