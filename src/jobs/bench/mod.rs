//! Throughput measurement behind `attnflow bench`: field evaluations and RK4 steps, timed
//! after a warm-up, reported as medians with their spread in pair interactions per second
//! (one query-key interaction of one evaluation; an RK4 step is four evaluations).

#[cfg(feature = "gpu")]
pub mod baselines;
#[cfg(feature = "gpu")]
pub mod report;

use std::time::Instant;

use serde::Serialize;

use crate::config::BackendChoice;
use crate::error::{Error, Result};
use crate::integrate::{self, Integrator, Slot};
use crate::model::init::InitSpec;
use crate::model::{Attention, Geometry, Mask, Model, Shape, Weights};
use crate::run::pairs_per_eval;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub backend: BackendChoice,
    pub n: usize,
    pub d: usize,
    pub batch: usize,
    /// Timed evaluations.
    pub evals: usize,
    /// Timed RK4 steps (0: none).
    pub steps: usize,
    pub mask: Mask,
}

/// Median and spread of repeated timings, in seconds.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Interquartile range.
    pub q1: f64,
    pub q3: f64,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Self {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (s.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
        };
        Stats {
            median: at(0.5),
            min: s[0],
            max: s[s.len() - 1],
            q1: at(0.25),
            q3: at(0.75),
        }
    }
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub backend: &'static str,
    /// The device: adapter name, type, API and driver for the GPU; the kernel and threads
    /// for the CPU.
    pub adapter: String,
    pub n: usize,
    pub d: usize,
    pub batch: usize,
    pub evals: usize,
    /// Pair interactions in one evaluation of the field.
    pub pairs_per_eval: f64,
    /// Median pair interactions per second of one field evaluation (host clock).
    pub pairs_per_second: f64,
    /// Median seconds per field evaluation (host clock, including submission and waiting).
    pub seconds_per_eval: f64,
    pub eval_seconds: Stats,
    /// Median seconds per RK4 step (4 evaluations, stage combinations, renormalisation),
    /// when steps were timed.
    pub seconds_per_step: Option<f64>,
    pub step_seconds: Option<Stats>,
    pub step_pairs_per_second: Option<f64>,
    /// GPU-side seconds per evaluation from timestamp queries, where the adapter has them.
    pub gpu_seconds_per_eval: Option<Stats>,
    pub gpu_pairs_per_second: Option<f64>,
    /// Keys per streaming dispatch (GPU).
    pub chunk_keys: Option<usize>,
    /// Peak resident memory of this process so far (VmHWM), bytes.
    pub peak_host_bytes: Option<u64>,
    /// Device memory the GPU backend allocated, bytes.
    pub device_bytes: Option<u64>,
}

/// Peak resident set size of this process (Linux), in bytes.
pub fn peak_host_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The benchmark's model: SA on the sphere, Q = K = V = I, beta = 1, uniform tokens.
pub fn bench_model(d: usize, batch: usize, mask: Mask) -> Model {
    Model::new(
        Attention::Sa,
        Geometry::Sphere,
        mask,
        Weights::identity(d),
        vec![1.0; batch],
    )
}

/// Runs one measurement. `gpu` is the context to use for the GPU backend (made if None).
pub fn run(config: &BenchConfig, gpu: Option<crate::backend::GpuDevice>) -> Result<BenchReport> {
    if config.evals == 0 {
        return Err(Error::Input("--evals must be at least 1".into()));
    }
    let shape = Shape::new(config.batch, config.n, config.d)?;
    let model = bench_model(config.d, config.batch, config.mask);
    let x0 = InitSpec::Uniform.generate(shape, model.geometry, 1)?;
    let pairs = pairs_per_eval(&model, shape);
    // `auto` means what it means for every command (crate::backend::select).
    let picked = crate::backend::select_sharing(config.backend, gpu)?;
    let name = picked.kind.name();
    let mut backend = crate::backend::dynamics_on(&picked, &model, shape, &x0)?;
    backend.enable_timing();
    let adapter = backend.describe();
    let stepper = integrate::Stepper::new(&model, Integrator::Rk4)?;
    stepper.prepare(backend.as_mut())?;

    // Warm-up: one evaluation and one step.
    backend.field(Slot::State, 0)?;
    backend.sync()?;
    if config.steps > 0 {
        stepper.step(backend.as_mut(), 1e-3, 0)?;
        backend.sync()?;
    }

    let mut eval_s = Vec::with_capacity(config.evals);
    let mut gpu_s = Vec::new();
    for _ in 0..config.evals {
        let t = Instant::now();
        backend.field(Slot::State, 0)?;
        backend.sync()?;
        eval_s.push(t.elapsed().as_secs_f64());
        if let Some(s) = backend.last_field_seconds()? {
            gpu_s.push(s);
        }
    }
    let mut step_s = Vec::with_capacity(config.steps);
    for _ in 0..config.steps {
        let t = Instant::now();
        stepper.step(backend.as_mut(), 1e-3, 0)?;
        backend.sync()?;
        step_s.push(t.elapsed().as_secs_f64());
    }
    let usage = backend.device_usage();
    let (chunk_keys, device_bytes) = (usage.map(|u| u.chunk_keys), usage.map(|u| u.device_bytes));
    let eval = Stats::of(&eval_s);
    let step = (!step_s.is_empty()).then(|| Stats::of(&step_s));
    let gpu_stats = (!gpu_s.is_empty()).then(|| Stats::of(&gpu_s));
    Ok(BenchReport {
        backend: name,
        adapter,
        n: config.n,
        d: config.d,
        batch: config.batch,
        evals: config.evals,
        pairs_per_eval: pairs,
        pairs_per_second: pairs / eval.median,
        seconds_per_eval: eval.median,
        eval_seconds: eval,
        seconds_per_step: step.map(|s| s.median),
        step_seconds: step,
        step_pairs_per_second: step.map(|s| 4.0 * pairs / s.median),
        gpu_seconds_per_eval: gpu_stats,
        gpu_pairs_per_second: gpu_stats.map(|s| pairs / s.median),
        chunk_keys,
        peak_host_bytes: peak_host_bytes(),
        device_bytes,
    })
}

/// Least-squares slope of log(seconds) against log(n): the cost exponent (2 expected).
pub fn fitted_exponent(ns: &[usize], seconds: &[f64]) -> f64 {
    let ns: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    crate::stats::fit_loglog(&ns, seconds).slope
}
