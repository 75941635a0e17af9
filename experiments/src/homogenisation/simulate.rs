//! The runs of `homogenisation`: random deep multi-head attention on the sphere (SA, full
//! attention, one Euler step = one residual layer), Q, K, V redrawn at every layer and head by
//! the engine's `RandomHeads`, with the experiment's mutations applied to the model.

use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, HeadCombine, Mask, Model, RandomHeads, Shape};

/// One run's observed states: times t_k (t_0 = 0) and the states [batch, n, d] at them.
#[derive(Clone)]
pub struct Run {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
}

/// What one run simulates.
#[derive(serde::Serialize)]
pub struct Spec {
    pub batch: usize,
    pub n: usize,
    pub d: usize,
    /// One beta per system (length batch).
    pub betas: Vec<f64>,
    pub heads: usize,
    /// Mean over heads (c = 1/H) instead of the sum (c = 1).
    pub mean: bool,
    pub scale: f64,
    pub h: f64,
    pub steps: usize,
    /// Observation points (number, evenly spaced; the last is `steps`).
    pub observe: usize,
    /// Seed of the weights and of the initial tokens.
    pub seed: u64,
}

/// The model of a spec and the step the engine takes, with the mutations:
/// `fixed-over-depth` draws the heads once (layer 0) and keeps them at every layer;
/// `heads-identical` uses one head H times (H copies of the same Q, K, V: the sum is H times
/// one head, an Euler step of H h; the mean is one head).
fn model(setup: &Setup, s: &Spec) -> (Model, f64) {
    let random = RandomHeads::redrawn(s.heads, s.scale, s.seed);
    let heads0 = random.layer(s.d, 0);
    let mut m = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(s.d),
        s.betas.clone(),
    );
    m.combine = if s.mean {
        HeadCombine::Mean
    } else {
        HeadCombine::Sum
    };
    let mut h = s.h;
    if setup.mutated("fixed-over-depth") {
        m.heads = heads0;
    } else if setup.mutated("heads-identical") {
        let one = RandomHeads { heads: 1, ..random };
        m.heads = one.layer(s.d, 0);
        m.random = Some(one);
        m.combine = HeadCombine::Sum;
        if !s.mean {
            h *= s.heads as f64;
        }
    } else {
        m.heads = heads0;
        m.random = Some(random);
    }
    (m, h)
}

/// Runs a spec from iid uniform tokens (seed `s.seed`, one stream per system), through the
/// memo with the spec its key (tests share it between the quick run and the mutations it
/// does not reach: see [`Setup::memo_with`]).
pub fn run(setup: &Setup, report: &mut Report, s: &Spec) -> Result<Run> {
    setup.memo_with(report, "homogenisation/run", s, compute)
}

fn compute(setup: &Setup, report: &mut Report, s: &Spec) -> Result<Run> {
    let shape = Shape::new(s.batch, s.n, s.d)?;
    let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, s.seed)?;
    let (m, h_engine) = model(setup, s);
    let k = s.observe.clamp(1, s.steps);
    let mut at: Vec<usize> = (1..=k).map(|j| (j * s.steps).div_ceil(k)).collect();
    at.dedup();
    let mut times = Vec::new();
    let mut states = Vec::new();
    simulate(
        setup,
        report,
        &m,
        shape,
        &x0,
        Integrator::Euler,
        h_engine,
        &at,
        |step, x| {
            times.push(step as f64 * s.h);
            states.push(x.to_vec());
        },
    )?;
    Ok(Run { times, states })
}

/// A seed for run `r` of part `part`, distinct across parts and runs.
pub fn run_seed(seed: u64, part: u64, r: usize) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(part * 10_007)
        .wrapping_add(r as u64 + 1)
}
