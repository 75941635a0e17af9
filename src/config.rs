//! Run configuration: defaults <- TOML file <- command-line flags, resolved into a model, a
//! shape and initial tokens. The resolved form is written to run.toml and can be read back
//! with `--config` to reproduce a run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, file_error, input};
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::weights::{MlpSpec, QkvSpec};
use crate::model::{
    Activation, Attention, Geometry, HeadCombine, LayerKind, LayerMap, Mask, Model, Noise,
    RandomHeads, Shape,
};

pub use crate::backend::BackendChoice;
/// A parsed TOML document (run.toml), for the bindings.
pub use toml::Table as TomlTable;

// The option values below are declared with the options (so that options.rs needs nothing
// from here); this module resolves them.
pub use crate::options::{BetaRule, BetaSpec, ConfigLayer, NoiseKind};

/// The fully resolved configuration: what run.toml records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub n: usize,
    pub d: usize,
    pub batch: usize,
    pub model: Attention,
    pub geometry: Geometry,
    pub mask: Mask,
    /// One value per system.
    pub beta: Vec<f64>,
    pub qkv: String,
    pub integrator: Integrator,
    /// The layer map (omitted from run.toml when it is the ODE's, as before it existed).
    #[serde(default, skip_serializing_if = "LayerKind::is_ode")]
    pub layer: LayerKind,
    /// nGPT's eigen learning rate alpha (recorded with --layer ngpt only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngpt_alpha: Option<f64>,
    pub t_end: f64,
    pub steps: usize,
    pub init: String,
    /// The prompt's token ids of an --init safetensors:FILE:TENSOR (comma-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<String>,
    pub seed: u64,
    pub backend: BackendChoice,
    pub save_every: usize,
    pub metrics_every: usize,
    /// A checkpoint every K steps (0: none); unset: about every 10 minutes of work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<usize>,
    pub heads: usize,
    pub head_combine: HeadCombine,
    /// Scale of redrawn weights (entries N(0, scale^2 / d)), with --qkv redraw:SEED.
    pub weight_scale: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlp: Option<String>,
    pub activation: Activation,
    /// Euler-Maruyama noise strength sigma (0: deterministic).
    pub noise: f64,
    pub noise_kind: NoiseKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alibi: Option<f64>,
    /// USA's ALiBi normaliser over k < i (omitted when false, as before it existed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alibi_excludes_self: bool,
    /// How `beta` was made from `gamma` (written for the record; `beta` is what runs).
    pub beta_rule: BetaRule,
    pub gamma: Vec<f64>,
    /// The SHA-256 of every input file (the --init file, Q/K/V.npy, W/A/b.npy) by path.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, String>,
    // Adaptive stepping (an adaptive --integrator only; docs/adaptive.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_step: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_times: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_times: Option<String>,
}

impl RunConfig {
    /// The options of an adaptive run (None with a fixed-step integrator).
    pub fn adaptive_options(&self) -> Option<crate::integrate::AdaptiveOptions> {
        self.integrator
            .is_adaptive()
            .then(|| crate::integrate::AdaptiveOptions {
                rtol: self.rtol.unwrap_or(1e-6),
                atol: self.atol.unwrap_or(1e-9),
                h_max: self.h_max.unwrap_or(f64::INFINITY),
                shared_step: self.shared_step.unwrap_or(false),
                ..Default::default()
            })
    }
}

/// Output times as a user writes them: "0,1,2.5,10" or "log:START:END:COUNT" (COUNT
/// log-spaced times from START to END, both > 0). Sorted; each within [0, t_end].
pub fn parse_times(flag: &str, spec: &str, t_end: f64) -> Result<Vec<f64>> {
    let bad = |why: &str| {
        input(format!(
            "--{flag} {spec:?}: {why}; write times as T1,T2,... or log:START:END:COUNT \
             (e.g. log:1e-2:1e4:60)"
        ))
    };
    let mut times: Vec<f64> = if let Some(rest) = spec.strip_prefix("log:") {
        let parts: Vec<&str> = rest.split(':').collect();
        let [a, b, c] = parts[..] else {
            return Err(bad("log: takes START:END:COUNT"));
        };
        let (a, b): (f64, f64) = (
            a.parse().map_err(|_| bad("START is not a number"))?,
            b.parse().map_err(|_| bad("END is not a number"))?,
        );
        let count: usize = c.parse().map_err(|_| bad("COUNT is not a whole number"))?;
        if !(a > 0.0 && b > a && a.is_finite() && b.is_finite()) || count < 2 {
            return Err(bad("log-spacing needs 0 < START < END and COUNT >= 2"));
        }
        (0..count)
            .map(|k| {
                if k + 1 == count {
                    b
                } else {
                    a * (b / a).powf(k as f64 / (count - 1) as f64)
                }
            })
            .collect()
    } else {
        spec.split(',')
            .map(|v| v.trim().parse::<f64>().map_err(|_| bad("not a number")))
            .collect::<Result<_>>()?
    };
    if times
        .iter()
        .any(|t| !(t.is_finite() && *t >= 0.0 && *t <= t_end))
    {
        return Err(bad(&format!(
            "every time must be within [0, --t-end {t_end}]"
        )));
    }
    times.sort_by(f64::total_cmp);
    times.dedup();
    Ok(times)
}

/// The embedded default job: n = 4096 tokens on S^2, SA, beta = 1, RK4.
pub const DEFAULT_N: usize = 4096;
pub const DEFAULT_D: usize = 3;
pub const DEFAULT_T_END: f64 = 10.0;
pub const DEFAULT_STEPS: usize = 100;

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub config: RunConfig,
    pub shape: Shape,
    pub model: Model,
    pub init: InitSpec,
    pub qkv: QkvSpec,
}

impl Resolved {
    pub fn step_size(&self) -> f64 {
        self.config.t_end / self.config.steps as f64
    }

    /// The files the run reads: the --init file, Q/K/V.npy of a --qkv folder, W/A/b.npy of a
    /// --mlp folder.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(p) = self.init.path() {
            files.push(p.to_path_buf());
        }
        files.extend(self.qkv.files());
        if let Some(mlp) = &self.config.mlp
            && let Ok(spec) = crate::model::weights::MlpSpec::parse(mlp)
        {
            files.extend(spec.files());
        }
        files
    }
}

/// The tokens' side of a configuration: where the initial tokens come from and the sizes
/// they imply.
struct TokensPart {
    init: InitSpec,
    n: usize,
    d: usize,
    /// The batch of an [batch, n, d] --init file.
    file_batch: Option<usize>,
}

/// The temperatures: one beta per system (after the rule), the gamma values it scaled.
struct BetaPart {
    rule: BetaRule,
    gammas: Vec<f64>,
    betas: Vec<f64>,
}

/// Depth: how far, in how many steps, by which integrator, with which noise.
struct TimePart {
    steps: usize,
    t_end: f64,
    integrator: Integrator,
    sigma: f64,
    noise_kind: NoiseKind,
}

/// The weights: Q, K, V heads (drawn or read), the perceptron, per-layer weights.
struct WeightsPart {
    qkv: QkvSpec,
    heads: Vec<crate::model::Weights>,
    random: Option<RandomHeads>,
    mlp_spec: Option<MlpSpec>,
    activation: Activation,
    mlp: Option<crate::model::Mlp>,
    per_layer: Option<crate::model::PerLayer>,
}

/// Fills defaults, infers n, d and batch where they are implied (an init file, a beta list),
/// and checks every value: the tokens, the temperatures, the sizes against the machine, depth,
/// the weights, then the options that could not change the result.
pub fn resolve(layer: &ConfigLayer) -> Result<Resolved> {
    let tokens = resolve_tokens(layer)?;
    let (n, d) = (tokens.n, tokens.d);
    let (given_betas, batch) = beta_values(layer, &tokens)?;
    let shape = Shape::new(batch, n, d)?;
    // Refuse sizes the machine cannot hold before anything of them is allocated.
    let hidden = match layer.mlp.as_deref().map(MlpSpec::parse).transpose()? {
        Some(MlpSpec::Random { hidden, .. }) => hidden,
        _ => 0,
    };
    crate::limits::ensure_memory(
        "the run",
        crate::limits::run_bytes(batch, n, d, layer.heads.unwrap_or(1), hidden)?,
    )?;
    let beta = resolve_beta(layer, given_betas, shape)?;
    let time = resolve_time(layer)?;
    let weights = resolve_weights(layer, shape, time.steps)?;
    refuse_moot(layer, &time, &weights)?;
    let seed = layer.seed.unwrap_or(0);
    let layer_map = layer.layer.unwrap_or_default();
    if layer.ngpt_alpha.is_some() && layer_map != LayerKind::Ngpt {
        return Err(input(format!(
            "--ngpt-alpha is the eigen learning rate of --layer ngpt, not of --layer {}",
            layer_map.name()
        )));
    }
    let config = RunConfig {
        n,
        d,
        batch,
        model: layer.model.unwrap_or(Attention::Sa),
        geometry: layer.geometry.unwrap_or(Geometry::Sphere),
        mask: layer.mask.unwrap_or(Mask::Full),
        beta: beta.betas.clone(),
        qkv: weights.qkv.to_config_string(),
        integrator: time.integrator,
        layer: layer_map,
        ngpt_alpha: (layer_map == LayerKind::Ngpt)
            .then(|| layer.ngpt_alpha.unwrap_or(crate::model::DEFAULT_NGPT_ALPHA)),
        t_end: time.t_end,
        steps: time.steps,
        init: tokens.init.to_config_string(),
        tokens: layer.tokens.clone(),
        seed,
        // ros23 runs on the f64 reference field: `auto` (and no --backend) picks it.
        backend: match (time.integrator, layer.backend) {
            (Integrator::Ros23, None | Some(BackendChoice::Auto)) => BackendChoice::Reference,
            (_, backend) => backend.unwrap_or(BackendChoice::Auto),
        },
        save_every: layer.save_every.unwrap_or(0),
        // About 100 rows; 0 keeps only the first and last (each row is an O(n^2) pass).
        metrics_every: layer.metrics_every.unwrap_or(time.steps.div_ceil(100)),
        checkpoint_every: layer.checkpoint_every,
        heads: weights.heads.len(),
        head_combine: layer.head_combine.unwrap_or(HeadCombine::Sum),
        weight_scale: layer.weight_scale.unwrap_or(1.0),
        mlp: weights.mlp_spec.as_ref().map(MlpSpec::to_config_string),
        activation: weights.activation,
        noise: time.sigma,
        noise_kind: time.noise_kind,
        alibi: layer.alibi,
        alibi_excludes_self: layer.alibi_excludes_self.unwrap_or(false),
        beta_rule: beta.rule,
        gamma: beta.gammas,
        inputs: std::collections::BTreeMap::new(),
        rtol: layer.rtol,
        atol: layer.atol,
        h_max: layer.h_max,
        shared_step: layer.shared_step,
        save_times: layer.save_times.clone(),
        metrics_times: layer.metrics_times.clone(),
    };
    check_adaptive(layer, &config)?;
    let model = Model {
        attention: config.model,
        geometry: config.geometry,
        mask: config.mask,
        heads: weights.heads,
        combine: config.head_combine,
        random: weights.random,
        alibi: config.alibi.map(|slope| crate::model::Alibi {
            slope,
            excludes_self: config.alibi_excludes_self,
        }),
        mlp: weights.mlp,
        per_layer: weights.per_layer,
        noise: (time.sigma > 0.0).then_some(Noise {
            sigma: time.sigma,
            common: time.noise_kind == NoiseKind::Common,
            seed,
        }),
        betas: beta.betas,
        layer: LayerMap::new(
            config.layer,
            config
                .ngpt_alpha
                .unwrap_or(crate::model::DEFAULT_NGPT_ALPHA),
        ),
    };
    model.validate(shape)?;
    if config.integrator == Integrator::Ros23 {
        crate::integrate::rosenbrock::check_model(&model)?;
    }
    let mut resolved = Resolved {
        config,
        shape,
        model,
        init: tokens.init,
        qkv: weights.qkv,
    };
    record_inputs(layer, &mut resolved)?;
    Ok(resolved)
}

/// The initial tokens (`--init`, `--tokens`) and the sizes n, d (and batch) they imply,
/// checked against `--n`, `--d` and `--batch`.
fn resolve_tokens(layer: &ConfigLayer) -> Result<TokensPart> {
    let init = InitSpec::parse(layer.init.as_deref().unwrap_or("uniform"))?;
    let open = |p: &PathBuf| {
        std::fs::canonicalize(p)
            .map_err(|e| file_error(p, format!("cannot open the --init file: {e}")))
    };
    let init = match init {
        InitSpec::File(p) => InitSpec::File(open(&p)?),
        InitSpec::Embedding { file, tensor, .. } => {
            let tokens = layer.tokens.as_deref().ok_or_else(|| {
                input(format!(
                    "--init safetensors:{}:{tensor} needs --tokens ID,ID,... (the prompt's token ids)",
                    file.display()
                ))
            })?;
            InitSpec::Embedding {
                file: open(&file)?,
                tensor,
                tokens: crate::model::init::parse_tokens(tokens)?,
            }
        }
        other => other,
    };
    if layer.tokens.is_some() && !matches!(init, InitSpec::Embedding { .. }) {
        return Err(input(
            "--tokens names rows of an embedding: it needs --init safetensors:FILE:wte",
        ));
    }
    let file_shape = init.file_shape()?;
    let (file_batch, file_n, file_d) = match file_shape.as_deref() {
        None => (None, None, None),
        Some([n, d]) => (None, Some(*n as usize), Some(*d as usize)),
        Some([b, n, d]) => (Some(*b as usize), Some(*n as usize), Some(*d as usize)),
        Some(other) => {
            let path = init.path().expect("an init file");
            return Err(file_error(
                path,
                format!("has shape {other:?}; an --init file must be [n, d] or [batch, n, d]"),
            ));
        }
    };
    let check_file = |what: &str, flag: Option<usize>, file: Option<usize>| -> Result<()> {
        if let (Some(f), Some(v)) = (flag, file)
            && f != v
        {
            let path = init.path().expect("an init file");
            return Err(file_error(
                path,
                format!(
                    "holds {what} = {v} but the configuration asks for {what} = {f}: \
                     drop --{what} or use a matching file (shape {:?})",
                    file_shape.as_deref().unwrap_or(&[])
                ),
            ));
        }
        Ok(())
    };
    check_file("n", layer.n, file_n)?;
    check_file("d", layer.d, file_d)?;
    check_file("batch", layer.batch, file_batch)?;
    Ok(TokensPart {
        n: layer.n.or(file_n).unwrap_or(DEFAULT_N),
        d: layer.d.or(file_d).unwrap_or(DEFAULT_D),
        file_batch,
        init,
    })
}

/// The beta values given (or a run.toml's gamma, or a checkpoint's default) and the batch
/// they imply with the other options.
fn beta_values(layer: &ConfigLayer, tokens: &TokensPart) -> Result<(Vec<f64>, usize)> {
    let d = tokens.d;
    // A GPT-2 checkpoint's attention scale 1 / sqrt(d / H) is its default beta (docs/model.md §6).
    let checkpoint_qkv = matches!(
        layer.qkv.as_deref().map(QkvSpec::parse).transpose()?,
        Some(QkvSpec::Safetensors(_))
    );
    let default_beta = match (checkpoint_qkv, layer.heads) {
        (true, Some(h)) if h > 0 => (h as f64 / d as f64).sqrt(),
        _ => 1.0,
    };
    // A run.toml records gamma (what the rule scales) next to the resolved beta.
    let values = match &layer.gamma {
        Some(g) => g.clone(),
        None => layer
            .beta
            .clone()
            .unwrap_or(BetaSpec::One(default_beta))
            .values(),
    };
    let batch = layer.batch.or(tokens.file_batch).unwrap_or(values.len());
    Ok((values, batch))
}

/// One beta per system (after the machine was found to hold the batch): the values given,
/// checked, the rule applied; an edited beta beside a recorded gamma is refused.
fn resolve_beta(layer: &ConfigLayer, values: Vec<f64>, shape: Shape) -> Result<BetaPart> {
    let Shape { batch, n, d } = shape;
    let gammas = match values.len() {
        1 => vec![values[0]; batch],
        len if len == batch => values,
        len => {
            return Err(input(format!(
                "--beta has {len} values but --batch is {batch}: give one value, or one per system"
            )));
        }
    };
    for &g in &gammas {
        crate::model::check_beta(g)?;
    }
    let rule = layer.beta_rule.unwrap_or(BetaRule::Const);
    let betas: Vec<f64> = gammas.iter().map(|&g| rule.apply(g, n, d)).collect();
    // A run.toml records both; an edited beta beside the old gamma must not run silently
    // with the old value.
    if let (Some(_), Some(given)) = (&layer.gamma, &layer.beta) {
        let given = given.clone().values();
        let given: Vec<f64> = match given.len() {
            1 => vec![given[0]; batch],
            _ => given,
        };
        let differs = given.len() != betas.len()
            || given
                .iter()
                .zip(&betas)
                .any(|(g, b)| (g - b).abs() > 1e-12 * b.abs().max(1e-300));
        if differs {
            return Err(input(format!(
                "the configuration gives beta = {given:?} and gamma = {gammas:?}, which under \
                 beta_rule = {} make beta = {betas:?}: edit gamma (what the rule scales) or \
                 remove it",
                rule.name()
            )));
        }
    }
    Ok(BetaPart {
        rule,
        gammas,
        betas,
    })
}

/// The adaptive options: checked, and refused with a fixed-step integrator.
fn check_adaptive(layer: &ConfigLayer, config: &RunConfig) -> Result<()> {
    let integrator = config.integrator;
    match config.adaptive_options() {
        Some(o) => {
            o.validate()?;
            if integrator == Integrator::Ros23 {
                if config.backend != BackendChoice::Reference {
                    return Err(input(format!(
                        "--integrator ros23 runs on the f64 reference field only (a matrix-free \
                         Rosenbrock method, no cpu or gpu kernels), not --backend {}: use \
                         --backend reference, or leave --backend out (auto picks reference \
                         for ros23)",
                        config.backend.name()
                    )));
                }
                if o.shared_step {
                    return Err(input(
                        "--shared-step: --integrator ros23 steps each system of an ensemble \
                         on its own; drop --shared-step",
                    ));
                }
            }
            if layer.save_every.is_some_and(|k| k > 0) {
                return Err(input(format!(
                    "--save-every counts fixed steps; --integrator {} steps adaptively: give \
                     --save-times instead",
                    integrator.name()
                )));
            }
            for (flag, spec) in [
                ("save-times", &config.save_times),
                ("metrics-times", &config.metrics_times),
            ] {
                if let Some(spec) = spec {
                    parse_times(flag, spec, config.t_end)?;
                }
            }
        }
        None => {
            let given = [
                ("--rtol", layer.rtol.is_some()),
                ("--atol", layer.atol.is_some()),
                ("--h-max", layer.h_max.is_some()),
                ("--shared-step", layer.shared_step.is_some()),
                ("--save-times", layer.save_times.is_some()),
                ("--metrics-times", layer.metrics_times.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return Err(input(format!(
                    "{flag} is an option of adaptive stepping, and --integrator {} takes fixed \
                     steps: use --integrator bosh3, dopri5, tsit5 or ros23, or drop {flag}",
                    integrator.name()
                )));
            }
        }
    }
    Ok(())
}

/// Depth and the stepping scheme: steps, T, the integrator and the noise it integrates.
fn resolve_time(layer: &ConfigLayer) -> Result<TimePart> {
    let steps = layer.steps.unwrap_or(DEFAULT_STEPS);
    if steps == 0 {
        return Err(input("steps must be at least 1"));
    }
    let t_end = layer.t_end.unwrap_or(DEFAULT_T_END);
    if !t_end.is_finite() || t_end <= 0.0 {
        return Err(input(format!(
            "t-end must be a finite number > 0, got {t_end}"
        )));
    }
    let integrator = layer.integrator.unwrap_or(Integrator::Rk4);
    let sigma = layer.noise.unwrap_or(0.0);
    crate::model::check_sigma(sigma)?;
    crate::integrate::check_noise(integrator, sigma)?;
    Ok(TimePart {
        steps,
        t_end,
        integrator,
        sigma,
        noise_kind: layer.noise_kind.unwrap_or(NoiseKind::Independent),
    })
}

/// Q, K, V (drawn, a folder or a checkpoint), the perceptron and its activation, and the
/// per-layer weights of files with a leading layer axis (L equal pieces of the `steps`).
fn resolve_weights(layer: &ConfigLayer, shape: Shape, steps: usize) -> Result<WeightsPart> {
    let Shape { batch, n, d } = shape;
    let qkv = QkvSpec::parse(layer.qkv.as_deref().unwrap_or("identity"))?;
    let qkv = match qkv {
        QkvSpec::Dir(p) => QkvSpec::Dir(std::fs::canonicalize(&p).map_err(|e| {
            input(format!(
                "--qkv '{}' is neither identity, random:SEED, nor a readable folder holding Q.npy, K.npy and V.npy ({e})",
                p.display()
            ))
        })?),
        QkvSpec::Safetensors(p) => QkvSpec::Safetensors(
            std::fs::canonicalize(&p)
                .map_err(|e| file_error(&p, format!("cannot open the --qkv checkpoint: {e}")))?,
        ),
        other => other,
    };
    if matches!(qkv, QkvSpec::Safetensors(_)) && layer.head_combine == Some(HeadCombine::Mean) {
        return Err(input(
            "--head-combine mean with a GPT-2 checkpoint: its heads add up (concatenation \
             followed by c_proj), so they combine by sum",
        ));
    }
    let mut head_layers = qkv.resolve_layers(d, layer.heads)?;
    let heads = head_layers[0].clone();
    let (redraw, per_system, seed) = match qkv {
        QkvSpec::Redraw(seed) => (true, false, Some(seed)),
        QkvSpec::RandomPerSystem(seed) => (false, true, Some(seed)),
        QkvSpec::RedrawPerSystem(seed) => (true, true, Some(seed)),
        _ => (false, false, None),
    };
    let random = seed.map(|seed| RandomHeads {
        heads: heads.len(),
        scale: layer.weight_scale.unwrap_or(1.0),
        seed,
        redraw,
        per_system,
    });
    let mlp_spec = layer.mlp.as_deref().map(MlpSpec::parse).transpose()?;
    // A GPT-2 checkpoint's perceptron uses its tanh GELU unless told otherwise.
    let activation = layer.activation.unwrap_or(match mlp_spec {
        Some(MlpSpec::Safetensors(_)) => Activation::Gelu,
        _ => Activation::Relu,
    });
    let mlp_spec = match mlp_spec {
        Some(MlpSpec::Dir(p)) => Some(MlpSpec::Dir(std::fs::canonicalize(&p).map_err(|e| {
            input(format!(
                "--mlp '{}' is neither random:M[:SEED] nor a readable folder holding W.npy, A.npy and b.npy ({e})",
                p.display()
            ))
        })?)),
        Some(MlpSpec::Safetensors(p)) => Some(MlpSpec::Safetensors(
            std::fs::canonicalize(&p)
                .map_err(|e| file_error(&p, format!("cannot open the --mlp checkpoint: {e}")))?,
        )),
        other => other,
    };
    let mut mlp_layers = mlp_spec
        .as_ref()
        .map(|m| m.resolve_layers(d, activation))
        .transpose()?;
    let mlp = mlp_layers.as_ref().map(|l| l[0].clone());
    // Weights with a leading layer axis: L equal pieces of [0, T] (docs/model.md §3).
    let layers_of = |n: usize| (n > 1).then_some(n);
    let per_layer = match (
        layers_of(head_layers.len()),
        mlp_layers.as_ref().and_then(|l| layers_of(l.len())),
    ) {
        (None, None) => None,
        (Some(a), Some(b)) if a != b => {
            return Err(input(format!(
                "the --qkv files hold {a} layers but the --mlp files hold {b}: per-layer \
                 attention and perceptron need the same number of layers L"
            )));
        }
        (a, b) => {
            let layers = a.or(b).unwrap_or(1);
            let steps_per_layer = crate::model::PerLayer::steps_per_layer(steps, layers)?;
            let mlp_hidden = mlp.as_ref().map_or(0, |m| m.hidden);
            crate::limits::ensure_memory(
                "the run's per-layer weights",
                crate::limits::run_bytes(batch, n, d, layers * heads.len(), layers * mlp_hidden)?,
            )?;
            Some(crate::model::PerLayer {
                steps_per_layer,
                heads: a.map(|_| std::mem::take(&mut head_layers)),
                mlps: b.and_then(|_| mlp_layers.take()),
                selected: 0,
            })
        }
    };
    Ok(WeightsPart {
        qkv,
        heads,
        random,
        mlp_spec,
        activation,
        mlp,
        per_layer,
    })
}

/// An option that cannot change the result is refused with the reason (a run.toml records
/// the defaults, which stay accepted).
fn refuse_moot(layer: &ConfigLayer, time: &TimePart, weights: &WeightsPart) -> Result<()> {
    if time.noise_kind == NoiseKind::Common && time.sigma == 0.0 {
        return Err(input(
            "--noise-kind common shares the noise of a system's tokens, but there is no noise: \
             give --noise SIGMA > 0 (with --integrator euler), or drop --noise-kind",
        ));
    }
    if weights.mlp_spec.is_none() && weights.activation != Activation::Relu {
        return Err(input(
            "--activation gelu is the perceptron's, but there is no perceptron: give --mlp, or \
             drop --activation",
        ));
    }
    if let Some(scale) = layer.weight_scale
        && scale != 1.0
        && weights.random.is_none()
    {
        return Err(input(format!(
            "--weight-scale {scale} scales the weights --qkv redraw:SEED, \
             random-per-system:SEED and redraw-per-system:SEED draw, but --qkv {} draws none \
             it scales: use one of those, or drop --weight-scale",
            layer.qkv.as_deref().unwrap_or("identity")
        )));
    }
    if layer.alibi_excludes_self == Some(true) && layer.alibi.is_none() {
        return Err(input(
            "--alibi-excludes-self changes ALiBi's positional weights, but there is no --alibi: \
             give --alibi LAMBDA, or drop --alibi-excludes-self",
        ));
    }
    if layer.head_combine == Some(HeadCombine::Mean) && weights.heads.len() == 1 {
        return Err(input(
            "--head-combine mean averages the heads, but there is one head (the mean of one is \
             the sum): give --heads H > 1, or drop --head-combine",
        ));
    }
    Ok(())
}

/// Records what every input file held, and refuses a replay whose file changed since.
fn record_inputs(layer: &ConfigLayer, resolved: &mut Resolved) -> Result<()> {
    for path in resolved.input_files() {
        let key = path.display().to_string();
        let hash = crate::output::sha256_file(&path)?;
        if let Some(recorded) = layer.inputs.as_ref().and_then(|r| r.get(&key))
            && *recorded != hash
            && layer.allow_changed_inputs != Some(true)
        {
            return Err(file_error(
                &path,
                format!(
                    "changed since the run.toml that names it was written ({recorded}, now \
                     {hash}): the replay would not reproduce that run; restore the file or pass \
                     --allow-changed-inputs"
                ),
            ));
        }
        resolved.config.inputs.insert(key, hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::OptionRole;
    use crate::options::tests::struct_fields;

    fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
        v.sort();
        v
    }

    /// run.toml's keys (the resolved configuration) are the recorded options, gamma (the
    /// rule's values beside beta) and the input files' hashes.
    #[test]
    fn the_record_keys_are_the_recorded_options() {
        let mut keys = ConfigLayer::options_where(OptionRole::recorded);
        keys.extend(["gamma", "inputs"]);
        assert_eq!(struct_fields::<RunConfig>(), sorted(keys.clone()));
        // Each one is also a key of the TOML layer that reads a run.toml back.
        let layer = struct_fields::<ConfigLayer>();
        assert!(keys.iter().all(|k| layer.contains(k)), "{keys:?}");
    }
}
