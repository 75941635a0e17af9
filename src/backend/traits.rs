//! The two interfaces every backend implements: [`Backend`], a particle system stepped by the
//! engine of [`crate::integrate`], and [`Attend`], one attention layer with separate queries
//! and keys (the engine of `attnflow attend` and of contextual flow maps). Nothing in them is
//! specific to one backend.

use crate::error::{Result, input};
use crate::model::observables::PairStats;
use crate::model::{Model, Shape};

/// Which state buffer an operation reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The state x at the start of the step (updated in place at the end of the step).
    State,
    /// The input of the current Runge-Kutta stage, x + h sum_j a_sj k_j.
    Stage,
}

/// The tokens of an ensemble read back from a backend, in the backend's precision.
#[derive(Clone, Debug)]
pub enum Tokens {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Tokens {
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Tokens::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Tokens::F64(v) => v.clone(),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Tokens::F32(v) => v.len(),
            Tokens::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Index of the first NaN or infinite value, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        match self {
            Tokens::F32(v) => v.iter().position(|x| !x.is_finite()),
            Tokens::F64(v) => v.iter().position(|x| !x.is_finite()),
        }
    }
}

/// The noise term of one Euler-Maruyama step: amplitude sigma sqrt(h) times standard normal
/// draws (docs/model.md §3), keyed by (seed, step) so every backend draws the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseStep {
    pub amplitude: f64,
    pub common: bool,
    pub seed: u64,
    pub step: u32,
}

impl NoiseStep {
    /// The standard normal for coordinate c of token i of system b.
    pub fn draw(&self, b: usize, i: usize, d: usize, c: usize) -> f64 {
        use crate::model::rng::{Stream, normal};
        if self.common {
            normal(
                self.seed,
                Stream::CommonNoise,
                self.step,
                b as u32,
                c as u32,
            )
        } else {
            normal(
                self.seed,
                Stream::Noise,
                self.step,
                b as u32,
                (i * d + c) as u32,
            )
        }
    }
}

/// What a backend does. Buffers: the state, the stage input and one k buffer per stage, all
/// of shape [batch, n, d]; the engine says which to combine and which to evaluate.
pub trait Backend {
    /// Human-readable name, e.g. "cpu (2 threads)" or "gpu: llvmpipe (Vulkan)".
    fn describe(&self) -> String;
    fn shape(&self) -> Shape;
    /// Makes room for `stages` k buffers. Called once before stepping.
    fn prepare(&mut self, stages: usize) -> Result<()>;
    /// k[stage] = f(input): attention followed by the tangent projection on the sphere.
    fn field(&mut self, input: Slot, stage: usize) -> Result<()>;
    /// dst = state + sum_(s, c) c * k[s] (+ the noise of an Euler-Maruyama step, projected
    /// at the state); renormalise each token afterwards if asked. With dst = State this is
    /// the update at the end of a step.
    fn combine(
        &mut self,
        dst: Slot,
        terms: &[(usize, f64)],
        renormalise: bool,
        noise: Option<NoiseStep>,
    ) -> Result<()>;
    /// Makes room for `stages` k buffers and whatever the per-system operations of adaptive
    /// stepping below need (the GPU's pipelines and buffers): called once before stepping
    /// adaptively, instead of `prepare`.
    fn prepare_adaptive(&mut self, stages: usize) -> Result<()> {
        self.prepare(stages)
    }
    /// Whether the backend has the per-system operations of adaptive stepping below.
    fn supports_adaptive(&self) -> bool {
        false
    }
    /// The components per system that [`Backend::scaled_sums`] sums over: the error norm is
    /// the RMS over them. The state's n d, unless the backend controls more than the state
    /// it reads back (a contextual flow map with an evolving context: queries and context).
    fn norm_components(&self) -> usize {
        let shape = self.shape();
        shape.n * shape.d
    }
    /// Adaptive stepping (`integrate::adaptive`), with a coefficient per system: `coeffs` is
    /// [batch][stages.len()]. stage <- state + sum_j coeffs[b][j] k[stages[j]] for every system
    /// b, each token renormalised if asked.
    fn combine_systems(
        &mut self,
        _stages: &[usize],
        _coeffs: &[f64],
        _renormalise: bool,
    ) -> Result<()> {
        Err(no_adaptive(&self.describe()))
    }
    /// Per system b into out[b]: the sum over its components of
    /// (v_i / (atol + rtol max(|x_i|, |s_i|)))^2, with v = (x if `with_state`) +
    /// sum_j coeffs[b][j] k[stages[j]], x the state and s the stage buffer (the new solution).
    #[allow(clippy::too_many_arguments)]
    fn scaled_sums(
        &mut self,
        _stages: &[usize],
        _coeffs: &[f64],
        _with_state: bool,
        _atol: f64,
        _rtol: f64,
        _out: &mut [f64],
    ) -> Result<()> {
        Err(no_adaptive(&self.describe()))
    }
    /// For each system with accepted[b]: state <- stage, and k[to] <- k[from] where `copy` is
    /// (from, to) (the last stage of an FSAL pair is the next step's first).
    fn accept_systems(&mut self, _accepted: &[bool], _copy: Option<(usize, usize)>) -> Result<()> {
        Err(no_adaptive(&self.describe()))
    }
    /// state + sum_j coeffs[b][j] k[stages[j]] per system (renormalised if asked), read back in
    /// f64: the dense output at an output time.
    fn interpolate(
        &mut self,
        _stages: &[usize],
        _coeffs: &[f64],
        _renormalise: bool,
    ) -> Result<Vec<f64>> {
        Err(no_adaptive(&self.describe()))
    }
    /// Called before every step with its layer index (random models redraw their weights).
    fn begin_step(&mut self, _layer: u32) -> Result<()> {
        Ok(())
    }
    /// Starts timing every field evaluation on the device, where the backend can (GPU
    /// timestamp queries). Returns whether it does.
    fn enable_timing(&mut self) -> bool {
        false
    }
    /// Device seconds of the last field evaluation, with timing enabled (waits for it).
    fn last_field_seconds(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }
    /// What the backend holds on a device, where it has one.
    fn device_usage(&self) -> Option<DeviceUsage> {
        None
    }
    /// Waits until all queued work is done (the GPU queues; the others are synchronous).
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    /// Waits for queued work and reads the state back.
    fn read_state(&mut self) -> Result<Tokens>;
    /// Reads back k[stage], the last vector field evaluated into that stage (for tests that
    /// compare one kernel at a time against its reference twin).
    fn read_field(&mut self, stage: usize) -> Result<Tokens>;
    /// The per-token pair statistics of the current state (see `observables`).
    fn pair_stats(&mut self) -> Result<Vec<PairStats>>;
    /// Whether any value of the state has become NaN or infinite since the last check.
    fn non_finite(&mut self) -> Result<bool> {
        Ok(self.read_state()?.first_non_finite().is_some())
    }
    /// The layer (step index, from 0) in which the state first became NaN or infinite, where
    /// the backend tracks it at every step (after `non_finite` said so).
    fn first_non_finite_layer(&mut self) -> Option<u32> {
        None
    }
}

fn no_adaptive(backend: &str) -> crate::Error {
    input(format!(
        "adaptive stepping is not available on {backend} yet: use --backend cpu, gpu or reference"
    ))
}

/// Device memory and the key chunk of a backend that runs on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceUsage {
    /// Keys per dispatch of the attention kernel.
    pub chunk_keys: usize,
    /// Bytes allocated on the device.
    pub device_bytes: u64,
}

/// Queries attend to keys: set the keys, then evaluate any number of query sets.
pub trait Attend {
    /// Backend and device, for the user.
    fn describe(&self) -> String;
    /// The keys (and values), [batch, n, d].
    fn set_keys(&mut self, y: &[f64]) -> Result<()>;
    /// The attention output of every query, [batch, m, d] (tangent-projected on the sphere).
    fn run(&mut self, z: &[f64]) -> Result<Vec<f64>>;
    /// Whether outputs are f64 (the reference) or f32 (cpu, gpu).
    fn is_f64(&self) -> bool {
        false
    }
}

/// Sizes of one attention layer: `batch` systems of `m` queries and `n` keys in dimension d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub d: usize,
}

impl LayerShape {
    /// Self-attention of `batch` systems of n tokens (the queries are the keys).
    pub fn square(batch: usize, n: usize, d: usize) -> Self {
        LayerShape { batch, m: n, n, d }
    }

    pub(crate) fn check(&self, model: &Model) -> Result<()> {
        if self.m == 0 {
            return Err(input("m = 0: attention needs at least one query"));
        }
        if self.n == 0 {
            return Err(input("n = 0: attention needs at least one key"));
        }
        model.validate(Shape::new(self.batch, self.m, self.d)?)?;
        if model.mlp.is_some()
            || model.noise.is_some()
            || model.weights_change()
            || model.heads_per_system()
        {
            return Err(input(
                "one attention layer takes fixed heads only (no perceptron, noise, redraws, \
                 per-system or per-layer weights)",
            ));
        }
        if model.mask == crate::model::Mask::Causal && self.m != self.n {
            return Err(input(
                "the causal mask needs the queries to be the keys (self-attention)",
            ));
        }
        Ok(())
    }
}
