//! The problem attnflow solves, independent of any backend (docs/model.md §1).
//!
//! An ensemble of `batch` independent systems, each of `n` tokens in R^d, evolves by
//! self-attention dynamics. Every backend implements exactly this definition.

pub mod geometry;
pub mod init;
pub mod linalg;
pub mod observables;
pub mod rng;
pub mod weights;

use serde::{Deserialize, Serialize};

pub use weights::Weights;

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
///   learning rate alpha (`Model::ngpt_alpha`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum LayerMap {
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

/// The epsilon of the output normalisation N(a) = a / (|a| + eps) of `peri-ln` and `ngpt`
/// (simuformer's).
pub const OUTPUT_NORM_EPS: f64 = 1e-9;

/// nGPT's eigen learning rate alpha when none is given (simuformer's fixed 0.2).
pub const DEFAULT_NGPT_ALPHA: f64 = 0.2;

impl LayerMap {
    pub fn name(self) -> &'static str {
        match self {
            LayerMap::Ode => "ode",
            LayerMap::PostLn => "post-ln",
            LayerMap::PreLn => "pre-ln",
            LayerMap::PeriLn => "peri-ln",
            LayerMap::Ngpt => "ngpt",
        }
    }
    pub fn is_ode(&self) -> bool {
        *self == LayerMap::Ode
    }
    /// Whether the block (attention and perceptron) sees normalise(x) rather than x: the
    /// Pre-LN family, whose residual stream leaves the sphere.
    pub fn normalises_input(self) -> bool {
        matches!(self, LayerMap::PreLn | LayerMap::PeriLn)
    }
    /// Whether the block output is normalised, N(a) = a / (|a| + 1e-9).
    pub fn normalises_output(self) -> bool {
        matches!(self, LayerMap::PeriLn | LayerMap::Ngpt)
    }
    /// The update rule in words, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            LayerMap::Ode => "dx/dt = P_x a(x)",
            LayerMap::PostLn => "x <- normalise(x + h a(x))",
            LayerMap::PreLn => "x <- x + h a(normalise(x))",
            LayerMap::PeriLn => "x <- x + h N(a(normalise(x)))",
            LayerMap::Ngpt => "x <- normalise(x + h alpha N(a(x)))",
        }
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

/// Random deep multi-head attention (docs/model.md §3): every head's Q, K, V are redrawn at
/// every layer (= step), entries iid N(0, scale^2 / d), from a counter-based generator
/// keyed by (seed, layer, head), so every backend draws the same weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomHeads {
    pub heads: usize,
    pub scale: f64,
    pub seed: u64,
}

impl RandomHeads {
    /// Entry `index` (row-major) of matrix `stream` of `head` at `layer`.
    pub fn entry(&self, d: usize, layer: u32, head: u32, stream: rng::Stream, index: u32) -> f64 {
        self.scale / (d as f64).sqrt() * rng::normal(self.seed, stream, layer, head, index)
    }

    /// The weights of every head at `layer`.
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
    /// The heads (at least one); a random model draws its own at every layer instead.
    pub heads: Vec<Weights>,
    pub combine: HeadCombine,
    pub random: Option<RandomHeads>,
    /// ALiBi slope lambda (causal mask only).
    pub alibi: Option<f64>,
    /// USA with ALiBi: leave token i out of its own positional normaliser (sum over k < i, the
    /// lost-in-the-middle code's convention) instead of k <= i.
    pub alibi_excludes_self: bool,
    pub mlp: Option<Mlp>,
    /// Noise: the dynamics become an SDE (Euler-Maruyama only).
    pub noise: Option<Noise>,
    /// Inverse temperature of each system (length = batch).
    pub betas: Vec<f64>,
    /// The layer map: the ODE's tangent field, or a residual layer (docs/model.md §3).
    pub layer: LayerMap,
    /// nGPT's eigen learning rate alpha (`--layer ngpt` only).
    pub ngpt_alpha: f64,
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
            alibi_excludes_self: false,
            mlp: None,
            noise: None,
            betas,
            layer: LayerMap::Ode,
            ngpt_alpha: DEFAULT_NGPT_ALPHA,
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
            LayerMap::Ngpt => Some(self.ngpt_alpha),
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

    /// The heads at `layer` (the fixed heads, or a random model's draw).
    pub fn layer_heads(&self, d: usize, layer: u32) -> Vec<Weights> {
        match &self.random {
            Some(r) => r.layer(d, layer),
            None => self.heads.clone(),
        }
    }

    /// ALiBi's per-position slope lambda / n (0 without ALiBi).
    pub fn alibi_slope(&self, n: usize) -> f64 {
        self.alibi.map_or(0.0, |l| l / n as f64)
    }

    /// log of the USA normaliser of query i: log |J(i)|, or with ALiBi
    /// log sum_{k in J(i)} exp(-(lambda / n)(i - k)); with `alibi_excludes_self` the sum runs
    /// over k < i (the first token, whose only key is itself, keeps the normaliser 1: on the
    /// sphere its self-interaction is projected away).
    pub fn usa_log_normaliser(&self, i: usize, n_keys: usize) -> f64 {
        let seen = self.keys_seen(i, n_keys);
        let a = self.alibi_slope(n_keys);
        if self.alibi_excludes_self && self.alibi.is_some() {
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
        if self.alibi_excludes_self
            && (self.alibi.is_none()
                || self.attention != Attention::Usa
                || self.geometry != Geometry::Sphere)
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
        if self.layer == LayerMap::Ngpt && (!self.ngpt_alpha.is_finite() || self.ngpt_alpha <= 0.0)
        {
            return Err(input(format!(
                "--ngpt-alpha takes a finite alpha > 0, got {}",
                self.ngpt_alpha
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
        if let Some(l) = self.alibi {
            if self.mask != Mask::Causal {
                return Err(input(
                    "ALiBi (--alibi) is a positional bias of causal attention: add --mask causal",
                ));
            }
            if !l.is_finite() || l < 0.0 {
                return Err(input(format!("--alibi takes a finite slope >= 0, got {l}")));
            }
        }
        if let Some(m) = &self.mlp {
            let (d, k) = (shape.d, m.hidden);
            if k == 0 || m.w.len() != d * k || m.a.len() != k * d || m.b.len() != k {
                return Err(input(format!(
                    "the perceptron needs W [{d}, {k}], A [{k}, {d}] and b [{k}] for hidden width {k}"
                )));
            }
        }
        if let Some(noise) = &self.noise
            && (!noise.sigma.is_finite() || noise.sigma < 0.0)
        {
            return Err(input(format!(
                "--noise takes a finite sigma >= 0, got {}",
                noise.sigma
            )));
        }
        if self.betas.len() != shape.batch {
            return Err(input(format!(
                "{} beta values for a batch of {} systems: give one value, or one per system",
                self.betas.len(),
                shape.batch
            )));
        }
        for &b in &self.betas {
            if !b.is_finite() || b < 0.0 {
                return Err(input(format!("beta must be a finite number >= 0, got {b}")));
            }
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
