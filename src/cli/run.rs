//! `attnflow run`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;

use attnflow::config::{self, BetaSpec, ConfigLayer};
use attnflow::output::{Kind, Output};
use attnflow::run::{self, Progress};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A TOML file of options (same names as the flags, with _ for -); flags override it.
    /// A run.toml written by attnflow reproduces that run.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output folder [default: runs/run-NNN, the next free number].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overwrite attnflow's files in an existing, non-empty output folder.
    #[arg(long)]
    force: bool,
    /// Number of tokens per system [default: 4096, or from an --init file].
    #[arg(long)]
    n: Option<usize>,
    /// Token dimension, 2 or more [default: 3, or from an --init file].
    #[arg(long)]
    d: Option<usize>,
    /// Number of independent systems in the ensemble [default: 1, or the number of --beta
    /// values].
    #[arg(long)]
    batch: Option<usize>,
    /// Attention: sa (softmax) or usa (unnormalised) [default: sa].
    #[arg(long, value_parser = ["sa", "usa"])]
    model: Option<String>,
    /// Geometry: sphere (tangent projection + renormalisation) or euclidean [default: sphere].
    #[arg(long, value_parser = ["sphere", "euclidean"])]
    geometry: Option<String>,
    /// Mask: full or causal (token i sees tokens 1..i) [default: full].
    #[arg(long, value_parser = ["full", "causal"])]
    mask: Option<String>,
    /// Inverse temperature: one value, or one per system separated by commas
    /// (--beta 0.5,1,2) [default: 1].
    #[arg(long, allow_hyphen_values = true)]
    beta: Option<String>,
    /// Q, K, V: identity, random:SEED (iid N(0, 1/d) entries, fixed over depth),
    /// redraw:SEED (random deep attention: redrawn at every layer and head), or a folder with
    /// Q.npy, K.npy, V.npy, each [d, d] or [heads, d, d]; the score is beta <Q x_i, K x_j>, the
    /// value V x_j [default: identity].
    #[arg(long)]
    qkv: Option<String>,
    /// Attention heads (with identity, random:SEED or redraw:SEED; a folder sets its own)
    /// [default: 1].
    #[arg(long)]
    heads: Option<usize>,
    /// How heads combine: sum or mean of their outputs [default: sum].
    #[arg(long, value_parser = ["sum", "mean"])]
    head_combine: Option<String>,
    /// Scale of redrawn weights: entries N(0, scale^2 / d) [default: 1].
    #[arg(long)]
    weight_scale: Option<f64>,
    /// Perceptron block dx/dt = P(attention + W sigma(A x + b)): random:M[:SEED] (hidden width
    /// M) or a folder with W.npy [d, M], A.npy [M, d], b.npy [M] [default: none].
    #[arg(long)]
    mlp: Option<String>,
    /// The perceptron's sigma: relu or gelu (tanh form) [default: relu].
    #[arg(long, value_parser = ["relu", "gelu"])]
    activation: Option<String>,
    /// Noise strength sigma: dx = f dt + sigma P dB, Euler-Maruyama (needs --integrator
    /// euler), seeded by --seed [default: 0].
    #[arg(long, allow_hyphen_values = true)]
    noise: Option<f64>,
    /// Noise per token (independent) or one dB for all tokens of a system (common)
    /// [default: independent].
    #[arg(long, value_parser = ["independent", "common"])]
    noise_kind: Option<String>,
    /// ALiBi positional bias of causal attention: scores lose (lambda / n)(i - j)
    /// [default: none].
    #[arg(long, value_name = "LAMBDA", allow_hyphen_values = true)]
    alibi: Option<f64>,
    /// Temperature rule: const (beta as given), log (beta = gamma log n) or selective
    /// (beta = gamma n^(2/(d-1))), with gamma the --beta values [default: const].
    #[arg(long, value_parser = ["const", "log", "selective"])]
    beta_rule: Option<String>,
    /// Integrator: euler, heun (RK2) or rk4 [default: rk4].
    #[arg(long, value_parser = ["euler", "heun", "rk4"])]
    integrator: Option<String>,
    /// Final time T (depth) [default: 10].
    #[arg(long, allow_hyphen_values = true)]
    t_end: Option<f64>,
    /// Number of steps (layers); h = T / steps [default: 100].
    #[arg(long)]
    steps: Option<usize>,
    /// Initial tokens: uniform (on the sphere), gaussian, vmf:KAPPA[:MU1,MU2,...] (mean
    /// direction e_1 unless given), or file:PATH.npy ([n, d] shared by all systems, or
    /// [batch, n, d]; f32 or f64) [default: uniform].
    #[arg(long)]
    init: Option<String>,
    /// Random seed of the initial tokens [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Backend: auto (a hardware GPU if present, else cpu), gpu, cpu or reference (f64)
    /// [default: auto].
    #[arg(long, value_parser = ["auto", "gpu", "cpu", "reference"])]
    backend: Option<String>,
    /// Save a snapshot every K steps to traj.npy (and its times to traj_t.npy); 0 = none
    /// [default: 0].
    #[arg(long, value_name = "K")]
    save_every: Option<usize>,
    /// Write a metrics.csv row every M steps; 0 writes only the first and last (each row
    /// costs one O(n^2) pass) [default: about 100 rows per run].
    #[arg(long, value_name = "M")]
    metrics_every: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Run even when an input file (--init, --qkv or --mlp files) differs from the one the
    /// --config run.toml recorded (by SHA-256).
    #[arg(long)]
    allow_changed_inputs: bool,
}

fn parse_enum<T: DeserializeOwned>(v: Option<String>) -> Result<Option<T>> {
    v.map(|s| super::parse_value(&s)).transpose()
}

impl RunArgs {
    fn layer(&self) -> Result<ConfigLayer> {
        Ok(ConfigLayer {
            n: self.n,
            d: self.d,
            batch: self.batch,
            model: parse_enum(self.model.clone())?,
            geometry: parse_enum(self.geometry.clone())?,
            mask: parse_enum(self.mask.clone())?,
            beta: self.beta.as_deref().map(BetaSpec::parse).transpose()?,
            qkv: self.qkv.clone(),
            integrator: parse_enum(self.integrator.clone())?,
            t_end: self.t_end,
            steps: self.steps,
            init: self.init.clone(),
            seed: self.seed,
            backend: parse_enum(self.backend.clone())?,
            save_every: self.save_every,
            metrics_every: self.metrics_every,
            out: self.out.clone(),
            heads: self.heads,
            head_combine: parse_enum(self.head_combine.clone())?,
            weight_scale: self.weight_scale,
            mlp: self.mlp.clone(),
            activation: parse_enum(self.activation.clone())?,
            noise: self.noise,
            noise_kind: parse_enum(self.noise_kind.clone())?,
            alibi: self.alibi,
            beta_rule: parse_enum(self.beta_rule.clone())?,
            gamma: None,
            provenance: None,
            inputs: None,
            allow_changed_inputs: self.allow_changed_inputs.then_some(true),
        })
    }
}

struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.reset();
        }
    }
    fn step(&mut self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    let layer = file.overlay(args.layer()?);
    let resolved = config::resolve(&layer)?;
    // The folder is locked and checked before any work; the files a run reads (the config
    // included) are never replaced by it.
    let mut inputs = resolved.input_files();
    inputs.extend(args.config.clone());
    let out = match layer.out.clone() {
        Some(dir) => Output::open(&dir, Kind::Run, args.force, &inputs)?,
        None => Output::open_numbered(Path::new("runs/run"), Kind::Run, &inputs)?,
    };
    let out_dir = out.dir().to_path_buf();
    let c = &resolved.config;
    let betas = if c.beta.iter().all(|b| *b == c.beta[0]) {
        format!("{}", c.beta[0])
    } else if c.beta.len() <= 6 {
        format!("{:?}", c.beta)
    } else {
        format!(
            "{} values in [{}, {}]",
            c.beta.len(),
            c.beta.iter().copied().fold(f64::INFINITY, f64::min),
            c.beta.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        )
    };
    outln!(
        "attnflow run: n = {}, d = {}, batch = {}, {} {} {} mask, beta = {betas}, {} T = {} in {} steps, init {}, qkv {}",
        c.n,
        c.d,
        c.batch,
        c.model.name().to_uppercase(),
        c.geometry.name(),
        c.mask.name(),
        c.integrator.name(),
        c.t_end,
        c.steps,
        c.init,
        c.qkv
    );
    let bar = if args.quiet {
        Bar(None)
    } else {
        let bar = ProgressBar::new(c.steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} steps, {per_sec}, eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Bar(Some(bar))
    };
    let mut bar = bar;
    let command: Vec<String> = std::env::args().collect();
    let command = attnflow::output::shell_command(&command);
    let summary = run::execute(&resolved, out, &command, &mut bar)?;
    if let Some(note) = &summary.note {
        outln!("note: {note}");
    }
    outln!("backend: {}", summary.backend);
    outln!(
        "time: {:.2} s, {:.3e} pair interactions/s; metrics {:.2} s ({:.2}x the dynamics' {:.2} s)",
        summary.elapsed_s,
        summary.pairs_per_second,
        summary.metrics_s,
        summary.metrics_s / summary.dynamics_s.max(1e-12),
        summary.dynamics_s
    );
    outln!(
        "{:>8} {:>10} {:>14} {:>12} {:>12}",
        "system",
        "t",
        "energy",
        "mean cos",
        "min cos"
    );
    let shown = summary.initial.len().min(8);
    for b in 0..shown {
        for (t, m) in [(0.0, &summary.initial[b]), (c.t_end, &summary.last[b])] {
            outln!(
                "{:>8} {:>10.4} {:>14.6e} {:>12.6} {:>12.6}",
                b,
                t,
                m.energy,
                m.mean_cos,
                m.min_cos
            );
        }
    }
    if summary.initial.len() > shown {
        outln!(
            "... {} more systems in metrics.csv",
            summary.initial.len() - shown
        );
    }
    let names: Vec<String> = summary
        .files
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    outln!("wrote {}: {}", out_dir.display(), names.join(", "));
    Ok(())
}
