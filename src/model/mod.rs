//! The problem attnflow solves, independent of any backend (docs/model.md §1).
//!
//! An ensemble of `batch` independent systems, each of `n` tokens in R^d, evolves by
//! self-attention dynamics. Every backend implements exactly this definition.

pub mod checkpoint;
pub mod geometry;
pub mod init;
pub mod linalg;
pub mod observables;
pub mod rng;
pub mod stability;
pub mod weights;

use serde::{Deserialize, Serialize};

/// Q, K and V of one attention head, d x d, row-major, (Q x)_r = sum_c Q[r][c] x_c (docs/model.md
/// §1). Defined here beside [`Mlp`] so that the files that produce weights (weights.rs from
/// specs and folders, checkpoint.rs from GPT-2 files) both depend on it and not on each other;
/// its methods are in weights.rs.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub d: usize,
    pub q: Vec<f64>,
    pub k: Vec<f64>,
    pub v: Vec<f64>,
}

use crate::error::{Result, input};

/// Softmax (transformer) or unnormalised attention weights (docs/model.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Attention {
    /// SA: w_ij = exp(s_ij) / sum_k exp(s_ik).
    Sa,
    /// USA: w_ij = exp(s_ij) / |J(i)|.
    Usa,
}

/// Where the tokens live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Geometry {
    /// Unit sphere: tangent projection, renormalised after every step.
    Sphere,
    /// R^d, no normalisation.
    Euclidean,
}

/// Which keys a query sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Mask {
    /// Every token sees every token.
    Full,
    /// Token i sees tokens 1..=i (decoder transformers).
    Causal,
}

impl Attention {
    pub fn name(self) -> &'static str {
        match self {
            Attention::Sa => "sa",
            Attention::Usa => "usa",
        }
    }
}
/// How a layer updates the tokens (docs/model.md §3). `ode`: the flow dx/dt = P_x a(x)
/// integrated by the chosen Runge-Kutta method, renormalised on the sphere after each step.
/// The others are one residual update per layer (Euler), the layer maps of simuformer's
/// `SimuXForm.step` (`--norm`), with a the block output (attention, plus the perceptron):
/// - `post-ln`: x <- normalise(x + h a(x)), a not projected (also the rotf scripts' layer);
///   on the sphere it agrees with `ode` to O(h^2) per layer.
/// - `pre-ln`: x <- x + h a(normalise(x)): the residual stream lives in R^d, attention (and
///   the perceptron) see the normalised tokens.
/// - `peri-ln`: x <- x + h N(a(normalise(x))), N(a) = a / (|a| + 1e-9): Pre-LN with the block
///   output normalised too.
/// - `ngpt`: x <- normalise(x + h alpha N(a(x))): nGPT's normalised output with its eigen
///   learning rate alpha (`LayerMap::Ngpt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum LayerKind {
    #[default]
    #[serde(rename = "ode")]
    #[value(name = "ode")]
    Ode,
    #[serde(rename = "post-ln")]
    #[value(name = "post-ln")]
    PostLn,
    #[serde(rename = "pre-ln")]
    #[value(name = "pre-ln")]
    PreLn,
    #[serde(rename = "peri-ln")]
    #[value(name = "peri-ln")]
    PeriLn,
    #[serde(rename = "ngpt")]
    #[value(name = "ngpt")]
    Ngpt,
}

/// ALiBi's positional bias of causal attention: scores lose (slope / n)(i - j).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alibi {
    /// lambda.
    pub slope: f64,
    /// USA only: leave token i out of its own positional normaliser (sum over k < i, the
    /// lost-in-the-middle code's convention) instead of k <= i.
    pub excludes_self: bool,
}

impl Alibi {
    /// The bias of slope `slope`, the normaliser over k <= i.
    pub fn new(slope: f64) -> Self {
        Alibi {
            slope,
            excludes_self: false,
        }
    }
}

/// The epsilon of the output normalisation N(a) = a / (|a| + eps) of `peri-ln` and `ngpt`
/// (simuformer's).
pub const OUTPUT_NORM_EPS: f64 = 1e-9;

/// nGPT's eigen learning rate alpha when none is given (simuformer's fixed 0.2).
pub const DEFAULT_NGPT_ALPHA: f64 = 0.2;

impl LayerKind {
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Ode => "ode",
            LayerKind::PostLn => "post-ln",
            LayerKind::PreLn => "pre-ln",
            LayerKind::PeriLn => "peri-ln",
            LayerKind::Ngpt => "ngpt",
        }
    }
    pub fn is_ode(&self) -> bool {
        *self == LayerKind::Ode
    }
    /// Whether the block (attention and perceptron) sees normalise(x) rather than x: the
    /// Pre-LN family, whose residual stream leaves the sphere.
    pub fn normalises_input(self) -> bool {
        matches!(self, LayerKind::PreLn | LayerKind::PeriLn)
    }
    /// Whether the block output is normalised, N(a) = a / (|a| + 1e-9).
    pub fn normalises_output(self) -> bool {
        matches!(self, LayerKind::PeriLn | LayerKind::Ngpt)
    }
    /// The update rule in words, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            LayerKind::Ode => "dx/dt = P_x a(x)",
            LayerKind::PostLn => "x <- normalise(x + h a(x))",
            LayerKind::PreLn => "x <- x + h a(normalise(x))",
            LayerKind::PeriLn => "x <- x + h N(a(normalise(x)))",
            LayerKind::Ngpt => "x <- normalise(x + h alpha N(a(x)))",
        }
    }
}

/// The layer map a model runs: a [`LayerKind`] with its parameter (nGPT's alpha).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum LayerMap {
    #[default]
    #[serde(rename = "ode")]
    Ode,
    #[serde(rename = "post-ln")]
    PostLn,
    #[serde(rename = "pre-ln")]
    PreLn,
    #[serde(rename = "peri-ln")]
    PeriLn,
    /// nGPT with its eigen learning rate alpha.
    #[serde(rename = "ngpt")]
    Ngpt { alpha: f64 },
}

impl LayerMap {
    /// The map of kind `kind`; `ngpt_alpha` is nGPT's alpha (unused by the others).
    pub fn new(kind: LayerKind, ngpt_alpha: f64) -> Self {
        match kind {
            LayerKind::Ode => LayerMap::Ode,
            LayerKind::PostLn => LayerMap::PostLn,
            LayerKind::PreLn => LayerMap::PreLn,
            LayerKind::PeriLn => LayerMap::PeriLn,
            LayerKind::Ngpt => LayerMap::Ngpt { alpha: ngpt_alpha },
        }
    }
    pub fn kind(self) -> LayerKind {
        match self {
            LayerMap::Ode => LayerKind::Ode,
            LayerMap::PostLn => LayerKind::PostLn,
            LayerMap::PreLn => LayerKind::PreLn,
            LayerMap::PeriLn => LayerKind::PeriLn,
            LayerMap::Ngpt { .. } => LayerKind::Ngpt,
        }
    }
    pub fn name(self) -> &'static str {
        self.kind().name()
    }
    pub fn is_ode(&self) -> bool {
        *self == LayerMap::Ode
    }
    /// See [`LayerKind::normalises_input`].
    pub fn normalises_input(self) -> bool {
        self.kind().normalises_input()
    }
    /// See [`LayerKind::normalises_output`].
    pub fn normalises_output(self) -> bool {
        self.kind().normalises_output()
    }
    /// The update rule in words, for messages.
    pub fn rule(self) -> &'static str {
        self.kind().rule()
    }
}

impl Geometry {
    pub fn name(self) -> &'static str {
        match self {
            Geometry::Sphere => "sphere",
            Geometry::Euclidean => "euclidean",
        }
    }
}
impl Mask {
    pub fn name(self) -> &'static str {
        match self {
            Mask::Full => "full",
            Mask::Causal => "causal",
        }
    }
}

/// Sizes of an ensemble: `batch` systems of `n` tokens in dimension `d`, stored
/// contiguously as `[batch, n, d]` (row-major).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub n: usize,
    pub d: usize,
}

impl Shape {
    pub fn new(batch: usize, n: usize, d: usize) -> Result<Self> {
        if batch == 0 {
            return Err(input("batch must be at least 1"));
        }
        if n == 0 {
            return Err(input("n must be at least 1 (the number of tokens)"));
        }
        if d < 2 {
            return Err(input(format!(
                "d = {d} is too small: tokens live in R^d with d >= 2"
            )));
        }
        batch
            .checked_mul(n)
            .and_then(|t| t.checked_mul(d))
            .ok_or_else(|| input("batch * n * d overflows"))?;
        Ok(Shape { batch, n, d })
    }
    /// Number of tokens over all systems.
    pub fn tokens(&self) -> usize {
        self.batch * self.n
    }
    /// Number of scalars in the state.
    pub fn len(&self) -> usize {
        self.batch * self.n * self.d
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the outputs of several heads combine: a_i = sum_h a_i^h, or their mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum HeadCombine {
    Sum,
    Mean,
}

/// Random multi-head attention drawn from a counter-based generator keyed by
/// (seed, layer, head), entries iid N(0, scale^2 / d), so every backend draws the same
/// weights (docs/model.md §3). `redraw`: random deep attention, every head redrawn at every
/// layer (= step); otherwise one draw (layer 0) kept over depth. `per_system`: every system b
/// of the ensemble draws its own heads, from the seed `rng::system_seed(seed, b)`, so that
/// system b's weights do not depend on the batch size; otherwise the systems share them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomHeads {
    pub heads: usize,
    pub scale: f64,
    pub seed: u64,
    pub redraw: bool,
    pub per_system: bool,
}

impl RandomHeads {
    /// Heads redrawn at every layer and shared by the systems (`--qkv redraw:SEED`).
    pub fn redrawn(heads: usize, scale: f64, seed: u64) -> Self {
        RandomHeads {
            heads,
            scale,
            seed,
            redraw: true,
            per_system: false,
        }
    }

    /// Entry `index` (row-major) of matrix `stream` of `head` at `layer`.
    pub fn entry(&self, d: usize, layer: u32, head: u32, stream: rng::Stream, index: u32) -> f64 {
        self.scale / (d as f64).sqrt() * rng::normal(self.seed, stream, layer, head, index)
    }

    /// The weights of every head drawn with key `layer` from `seed` (neither redraw nor
    /// per-system rules applied: the generator itself).
    pub fn layer(&self, d: usize, layer: u32) -> Vec<Weights> {
        (0..self.heads as u32)
            .map(|h| {
                let draw = |stream| {
                    (0..(d * d) as u32)
                        .map(|i| self.entry(d, layer, h, stream, i))
                        .collect()
                };
                Weights {
                    d,
                    q: draw(rng::Stream::Query),
                    k: draw(rng::Stream::Key),
                    v: draw(rng::Stream::Value),
                }
            })
            .collect()
    }

    /// The heads of system `system` at step `layer`: keyed by the layer only when redrawn,
    /// drawn from the system's own seed only when per system.
    pub fn draw(&self, d: usize, layer: u32, system: usize) -> Vec<Weights> {
        let seed = if self.per_system {
            rng::system_seed(self.seed, system as u32)
        } else {
            self.seed
        };
        let layer = if self.redraw { layer } else { 0 };
        RandomHeads { seed, ..*self }.layer(d, layer)
    }
}

/// Weights that change with depth (docs/model.md §3, "Per-layer weights"): L layers of heads
/// and/or perceptrons, layer l used on the l-th of L equal pieces of [0, T]. With S steps
/// (S a multiple of L) step k, at time k h, uses layer floor(k L / S) = floor(k / (S / L)) for
/// all its Runge-Kutta stages, so a step never straddles two pieces. Steps past S (none in a
/// run) keep the last layer.
#[derive(Clone, Debug, PartialEq)]
pub struct PerLayer {
    /// S / L.
    pub steps_per_layer: u32,
    /// The heads of every layer, [L][H] (None: the model's fixed or random heads).
    pub heads: Option<Vec<Vec<Weights>>>,
    /// The perceptron of every layer, [L] (None: the model's fixed perceptron, if any).
    pub mlps: Option<Vec<Mlp>>,
    /// The layer whose weights the model's `heads` and `mlp` hold now (0 when built).
    pub selected: usize,
}

impl PerLayer {
    /// L (the heads' and the perceptrons' agree).
    pub fn layers(&self) -> usize {
        self.heads
            .as_ref()
            .map(Vec::len)
            .or(self.mlps.as_ref().map(Vec::len))
            .unwrap_or(1)
    }

    /// The layer of step `step`: floor(step / (S / L)), at most L - 1.
    pub fn layer_of(&self, step: u32) -> usize {
        ((step / self.steps_per_layer.max(1)) as usize).min(self.layers() - 1)
    }

    /// The schedule of `steps` steps over `layers` layers, or the line that refuses it.
    pub fn steps_per_layer(steps: usize, layers: usize) -> Result<u32> {
        if layers == 0 || !steps.is_multiple_of(layers) {
            return Err(input(format!(
                "the weights hold {layers} layers, each used for an equal piece of [0, T]: \
                 --steps {steps} is not a multiple of {layers} (use e.g. --steps {})",
                steps.div_ceil(layers.max(1)) * layers.max(1)
            )));
        }
        u32::try_from(steps / layers).map_err(|_| input("--steps / layers overflows"))
    }
}

/// The perceptron block (docs/model.md §3): x' += W sigma(A x + b), hidden width m.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub hidden: usize,
    /// d x m, row-major.
    pub w: Vec<f64>,
    /// m x d, row-major.
    pub a: Vec<f64>,
    /// m.
    pub b: Vec<f64>,
    pub activation: Activation,
}

/// The perceptron's nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    /// GELU in its tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the same on
    /// every backend (WGSL has no erf).
    Gelu,
}

impl Activation {
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Gelu => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }
}

impl Mlp {
    /// W sigma(A x + b) added to `out`.
    pub fn add_to(&self, x: &[f64], out: &mut [f64]) {
        let d = x.len();
        let m = self.hidden;
        let hidden: Vec<f64> = (0..m)
            .map(|k| {
                let z: f64 = (0..d).map(|c| self.a[k * d + c] * x[c]).sum::<f64>() + self.b[k];
                self.activation.apply(z)
            })
            .collect();
        for (o, w_row) in out.iter_mut().zip(self.w.chunks(m)) {
            *o += w_row.iter().zip(&hidden).map(|(w, h)| w * h).sum::<f64>();
        }
    }
}

/// Noise of the dynamics (docs/model.md §3): dx = f dt + sigma P^perp dB, integrated by
/// Euler-Maruyama, with independent dB per token or one common dB per system.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Noise {
    pub sigma: f64,
    pub common: bool,
    pub seed: u64,
}

/// The full model: what the vector field is (docs/model.md §1, §3). Backends take this and
/// nothing else:
///   f_i = P^perp_{x_i} ( sum_h c_h a_i^h + W sigma(A x_i + b) )   (no P on euclidean)
/// with c_h = 1 (sum) or 1/H (mean), a^h the attention output of head h, scores
/// beta <Q_h x_i, K_h x_j> - (lambda / n)(i - j) with ALiBi.
#[derive(Clone, Debug)]
pub struct Model {
    pub attention: Attention,
    pub geometry: Geometry,
    pub mask: Mask,
    /// The heads (at least one); a random model draws its own at every layer instead; with
    /// per-layer weights, those of the current layer (`select_layer`; layer 0 at first).
    pub heads: Vec<Weights>,
    pub combine: HeadCombine,
    pub random: Option<RandomHeads>,
    /// ALiBi's positional bias (causal mask only).
    pub alibi: Option<Alibi>,
    /// The perceptron; with per-layer perceptrons, that of the current layer.
    pub mlp: Option<Mlp>,
    /// Weights that change with depth, read from files with a leading layer axis.
    pub per_layer: Option<PerLayer>,
    /// Noise: the dynamics become an SDE (Euler-Maruyama only).
    pub noise: Option<Noise>,
    /// Inverse temperature of each system (length = batch).
    pub betas: Vec<f64>,
    /// The layer map: the ODE's tangent field, or a residual layer (docs/model.md §3).
    pub layer: LayerMap,
}

impl Model {
    /// One head, no perceptron, no ALiBi: the core model.
    pub fn new(
        attention: Attention,
        geometry: Geometry,
        mask: Mask,
        weights: Weights,
        betas: Vec<f64>,
    ) -> Self {
        Model {
            attention,
            geometry,
            mask,
            heads: vec![weights],
            combine: HeadCombine::Sum,
            random: None,
            alibi: None,
            mlp: None,
            per_layer: None,
            noise: None,
            betas,
            layer: LayerMap::Ode,
        }
    }

    /// Whether the field is projected onto the sphere's tangent space: on the sphere, for the
    /// ODE (the residual layers add the block output as it is).
    pub fn projects(&self) -> bool {
        self.geometry == Geometry::Sphere && self.layer == LayerMap::Ode
    }

    /// Whether each step ends by renormalising the tokens: on the sphere, except the Pre-LN
    /// family, whose residual stream is in R^d.
    pub fn renormalises(&self) -> bool {
        self.geometry == Geometry::Sphere && !self.layer.normalises_input()
    }

    /// The scale s of the output normalisation f <- s f / (|f| + 1e-9) of the layer map:
    /// 1 for `peri-ln`, alpha for `ngpt`, none otherwise.
    pub fn output_scale(&self) -> Option<f64> {
        match self.layer {
            LayerMap::PeriLn => Some(1.0),
            LayerMap::Ngpt { alpha } => Some(alpha),
            _ => None,
        }
    }

    /// The update of token x from its block output f (attention plus perceptron, evaluated
    /// at x, or at normalise(x) for the Pre-LN family), in place: the tangent projection of
    /// the ODE on the sphere, the output normalisation of `peri-ln` and `ngpt`, nothing for
    /// `post-ln` and `pre-ln`. The one definition that the reference and cpu backends call
    /// per token; `shaders/tangent_project.wgsl` is its GPU twin.
    pub fn finish_token(&self, x: &[f64], f: &mut [f64]) {
        if self.projects() {
            geometry::tangent_project(x, f);
        }
        if let Some(s) = self.output_scale() {
            let norm = linalg::dot(f, f).sqrt();
            let scale = s / (norm + OUTPUT_NORM_EPS);
            f.iter_mut().for_each(|v| *v *= scale);
        }
    }

    /// Number of heads.
    pub fn head_count(&self) -> usize {
        self.random.map_or(self.heads.len(), |r| r.heads)
    }

    /// c_h: the weight of each head's output.
    pub fn head_weight(&self) -> f64 {
        match self.combine {
            HeadCombine::Sum => 1.0,
            HeadCombine::Mean => 1.0 / self.head_count() as f64,
        }
    }

    /// The heads at step `layer` (the fixed heads, a random model's draw, or the heads of the
    /// step's piece of the per-layer schedule); with heads drawn per system, system 0's.
    pub fn layer_heads(&self, d: usize, layer: u32) -> Vec<Weights> {
        self.system_heads(d, layer, 0)
    }

    /// The heads of system `system` at step `layer` (the same for every system unless a
    /// random model draws them per system).
    pub fn system_heads(&self, d: usize, layer: u32, system: usize) -> Vec<Weights> {
        match (&self.random, &self.per_layer) {
            (Some(r), _) => r.draw(d, layer, system),
            (None, Some(PerLayer { heads: Some(h), .. })) => {
                h[self.per_layer.as_ref().unwrap().layer_of(layer)].clone()
            }
            _ => self.heads.clone(),
        }
    }

    /// Whether every system of the ensemble has its own heads (`--qkv random-per-system:SEED`
    /// or `redraw-per-system:SEED`).
    pub fn heads_per_system(&self) -> bool {
        self.random.is_some_and(|r| r.per_system)
    }

    /// The heads of every system at step `layer`, [systems][H]: one entry shared by all
    /// systems, or `batch` entries when the heads are drawn per system.
    pub fn heads_by_system(&self, d: usize, layer: u32, batch: usize) -> Vec<Vec<Weights>> {
        if self.heads_per_system() {
            (0..batch).map(|b| self.system_heads(d, layer, b)).collect()
        } else {
            vec![self.layer_heads(d, layer)]
        }
    }

    /// Whether a random model draws new heads at every step.
    pub fn redraws(&self) -> bool {
        self.random.is_some_and(|r| r.redraw)
    }

    /// Whether the weights change from step to step (redrawn, or per-layer).
    pub fn weights_change(&self) -> bool {
        self.redraws() || self.per_layer.is_some()
    }

    /// The one place that maps a step to the weights of its layer: makes `heads` and `mlp`
    /// those of step `step`'s piece of the per-layer schedule. Returns the layer index when
    /// the weights changed (None without per-layer weights, or when the step stays in the
    /// piece of the current weights). Backends call it at the start of every step.
    pub fn select_layer(&mut self, step: u32) -> Option<usize> {
        let per = self.per_layer.as_mut()?;
        let l = per.layer_of(step);
        if l == per.selected {
            return None;
        }
        per.selected = l;
        if let Some(h) = &per.heads {
            self.heads = h[l].clone();
        }
        if let Some(m) = &per.mlps {
            self.mlp = Some(m[l].clone());
        }
        Some(l)
    }

    /// The heads of every layer (the fixed heads without per-layer weights).
    pub fn every_layer_heads(&self) -> Vec<&Weights> {
        match self.per_layer.as_ref().and_then(|p| p.heads.as_ref()) {
            Some(layers) => layers.iter().flatten().collect(),
            None => self.heads.iter().collect(),
        }
    }

    /// A bound on the scores |beta <Q x, K y>| of unit tokens: the largest beta times the
    /// largest spectral norm of K^T Q over the heads of every layer (random heads: scale^2, their
    /// typical norm). f32 backends refuse a model whose scores leave f32's range
    /// ([`Model::ensure_f32_scores`]).
    pub fn largest_score(&self) -> f64 {
        let beta = self.betas.iter().copied().fold(0.0, f64::max);
        let norm = self
            .every_layer_heads()
            .iter()
            .map(|w| spectral_norm(&w.score_matrix(), w.d))
            .fold(0.0, f64::max)
            .max(self.random.as_ref().map_or(0.0, |r| r.scale * r.scale));
        beta * norm
    }

    /// Refuses, on a backend computing in f32 (`backend` names it), scores beyond f32's range:
    /// above 2e37 (f32 reaches 3.4e38; the kernels scale scores by up to log2 e and subtract
    /// maxima, which needs the headroom).
    pub fn ensure_f32_scores(&self, backend: &str) -> Result<()> {
        const LIMIT: f64 = 2e37;
        // First the cheap bound |K^T Q| <= |K|_F |Q|_F (O(d^2) a head): a real model's
        // thousands of heads cost no power iterations unless beta is absurd.
        let frobenius = |m: &[f64]| m.iter().map(|x| x * x).sum::<f64>().sqrt();
        let beta = self.betas.iter().copied().fold(0.0, f64::max);
        let cheap = beta
            * self
                .every_layer_heads()
                .iter()
                .map(|w| frobenius(&w.q) * frobenius(&w.k))
                .fold(0.0, f64::max)
                .max(
                    self.random
                        .as_ref()
                        .map_or(0.0, |r| r.scale * r.scale * 64.0),
                );
        if cheap <= LIMIT {
            return Ok(());
        }
        let score = self.largest_score();
        if score > LIMIT || score.is_nan() {
            return Err(input(format!(
                "the scores beta <Qx, Ky> reach about {score:.3e} (beta times |K^T Q|), beyond \
                 the f32 range the {backend} backend computes in (scores up to 2e37): use \
                 --backend reference (f64) or a smaller beta"
            )));
        }
        Ok(())
    }

    /// ALiBi's per-position slope lambda / n (0 without ALiBi).
    pub fn alibi_slope(&self, n: usize) -> f64 {
        self.alibi.map_or(0.0, |a| a.slope / n as f64)
    }

    /// log of the USA normaliser of query i: log |J(i)|, or with ALiBi
    /// log sum_{k in J(i)} exp(-(lambda / n)(i - k)); with `Alibi::excludes_self` the sum runs
    /// over k < i (the first token, whose only key is itself, keeps the normaliser 1: on the
    /// sphere its self-interaction is projected away).
    pub fn usa_log_normaliser(&self, i: usize, n_keys: usize) -> f64 {
        let seen = self.keys_seen(i, n_keys);
        let a = self.alibi_slope(n_keys);
        if self.alibi.is_some_and(|a| a.excludes_self) {
            if seen <= 1 {
                return 0.0;
            }
            // sum_{t=1}^{seen-1} e^{-a t} = e^{-a} (1 - e^{-a (seen-1)}) / (1 - e^{-a}).
            if a == 0.0 {
                return ((seen - 1) as f64).ln();
            }
            return -a + (-(-a * (seen - 1) as f64).exp_m1() / -(-a).exp_m1()).ln();
        }
        if a == 0.0 {
            return (seen as f64).ln();
        }
        // sum_{t=0}^{seen-1} e^{-a t} = (1 - e^{-a seen}) / (1 - e^{-a}), without cancellation.
        (-(-a * seen as f64).exp_m1() / -(-a).exp_m1()).ln()
    }

    /// Checks that the model is consistent with `shape`.
    pub fn validate(&self, shape: Shape) -> Result<()> {
        if self.heads.is_empty() {
            return Err(input("a model needs at least one head"));
        }
        if self.alibi.is_some_and(|a| a.excludes_self)
            && (self.attention != Attention::Usa || self.geometry != Geometry::Sphere)
        {
            return Err(input(
                "--alibi-excludes-self changes USA's positional normaliser: it needs --model usa \
                 --alibi LAMBDA on the sphere (where a token's pull on itself is projected away)",
            ));
        }
        if !self.layer.is_ode() && self.geometry != Geometry::Sphere {
            return Err(input(format!(
                "--layer {} ({}) normalises tokens onto the unit sphere: it needs --geometry sphere",
                self.layer.name(),
                self.layer.rule()
            )));
        }
        if let LayerMap::Ngpt { alpha } = self.layer
            && (!alpha.is_finite() || alpha <= 0.0)
        {
            return Err(input(format!(
                "--ngpt-alpha takes a finite alpha > 0, got {alpha}"
            )));
        }
        for (h, w) in self.heads.iter().enumerate() {
            if w.d != shape.d {
                return Err(input(format!(
                    "head {h}: Q, K, V are {0} x {0} but tokens have d = {1}",
                    w.d, shape.d
                )));
            }
        }
        if let Some(r) = &self.random
            && (r.heads == 0 || !r.scale.is_finite() || r.scale <= 0.0)
        {
            return Err(input(format!(
                "random heads need at least one head and a finite scale > 0, got {} heads, scale {}",
                r.heads, r.scale
            )));
        }
        if let Some(Alibi { slope: l, .. }) = self.alibi {
            if self.mask != Mask::Causal {
                return Err(input(
                    "ALiBi (--alibi) is a positional bias of causal attention: add --mask causal",
                ));
            }
            if !l.is_finite() || l < 0.0 {
                return Err(input(format!("--alibi takes a finite slope >= 0, got {l}")));
            }
        }
        let per_layer_mlps = self.per_layer.as_ref().and_then(|p| p.mlps.as_ref());
        for m in self.mlp.iter().chain(per_layer_mlps.into_iter().flatten()) {
            let (d, k) = (shape.d, m.hidden);
            if k == 0 || m.w.len() != d * k || m.a.len() != k * d || m.b.len() != k {
                return Err(input(format!(
                    "the perceptron needs W [{d}, {k}], A [{k}, {d}] and b [{k}] for hidden width {k}"
                )));
            }
        }
        if let Some(p) = &self.per_layer {
            let hidden = self.mlp.as_ref().map(|m| (m.hidden, m.activation));
            let heads = self.heads.len();
            let bad_heads = p.heads.as_ref().is_some_and(|l| {
                l.is_empty()
                    || self.random.is_some()
                    || l.iter()
                        .any(|h| h.len() != heads || h.iter().any(|w| w.d != shape.d))
            });
            let bad_mlps = p.mlps.as_ref().is_some_and(|l| {
                l.is_empty() || l.iter().any(|m| Some((m.hidden, m.activation)) != hidden)
            });
            let both = p.heads.as_ref().zip(p.mlps.as_ref());
            if bad_heads || bad_mlps || both.is_some_and(|(h, m)| h.len() != m.len()) {
                return Err(input(
                    "per-layer weights need the same heads (d x d) and perceptron width at \
                     every layer, and the same number of layers L for attention and perceptron",
                ));
            }
        }
        if let Some(noise) = &self.noise {
            check_sigma(noise.sigma)?;
        }
        if self.betas.len() != shape.batch {
            return Err(input(format!(
                "{} beta values for a batch of {} systems: give one value, or one per system",
                self.betas.len(),
                shape.batch
            )));
        }
        for &b in &self.betas {
            check_beta(b)?;
        }
        Ok(())
    }

    /// The number of keys token `i` (0-based) sees: |J(i)|.
    pub fn keys_seen(&self, i: usize, n: usize) -> usize {
        match self.mask {
            Mask::Full => n,
            Mask::Causal => i + 1,
        }
    }
}

/// The one check of an inverse temperature (or the gamma a rule scales), wherever one enters:
/// a finite number >= 0.
pub fn check_beta(beta: f64) -> Result<()> {
    if !beta.is_finite() || beta < 0.0 {
        return Err(input(format!(
            "beta must be a finite number >= 0, got {beta}"
        )));
    }
    Ok(())
}

/// The one check of a noise strength sigma: a finite number >= 0.
pub fn check_sigma(sigma: f64) -> Result<()> {
    if !sigma.is_finite() || sigma < 0.0 {
        return Err(input(format!(
            "--noise takes a finite sigma >= 0, got {sigma}"
        )));
    }
    Ok(())
}

/// The spectral norm of the d x d matrix `m` (row-major), by power iteration on m^T m.
pub fn spectral_norm(m: &[f64], d: usize) -> f64 {
    let mut v = vec![1.0 / (d as f64).sqrt(); d];
    let mut norm = 0.0;
    for _ in 0..50 {
        let mv: Vec<f64> = (0..d)
            .map(|r| (0..d).map(|c| m[r * d + c] * v[c]).sum())
            .collect();
        let mtmv: Vec<f64> = (0..d)
            .map(|c| (0..d).map(|r| m[r * d + c] * mv[r]).sum())
            .collect();
        let len = mtmv.iter().map(|x| x * x).sum::<f64>().sqrt();
        if len == 0.0 || !len.is_finite() {
            return if len == 0.0 { 0.0 } else { f64::INFINITY };
        }
        norm = len.sqrt();
        v = mtmv.iter().map(|x| x / len).collect();
    }
    norm
}
