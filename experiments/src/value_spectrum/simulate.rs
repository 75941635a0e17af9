//! The simulation of `value-spectrum`: an ensemble of `systems` systems of n tokens in euclidean
//! geometry, dx_i/dt = sum_j P_ij V x_j with P_ij = softmax_j(beta <Q x_i, K x_j>) (docs/model.md
//! §1), integrated by RK4 on the chosen backend; the states at T - t_gap and T come back.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::sizes::Sizes;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::weights::{Weights, identity_matrix};
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// iid N(0, 1) coordinates for `systems` systems of n tokens in R^d (the first `live`
/// coordinates; the others 0): stream `case` of the seed.
pub fn initial(seed: u64, case: u64, sz: &Sizes, d: usize, live: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(case);
    let mut x = vec![0.0; sz.systems * sz.n * d];
    for t in x.chunks_mut(d) {
        for v in t.iter_mut().take(live) {
            *v = StandardNormal.sample(&mut rng);
        }
    }
    x
}

/// The states at T - t_gap and at T (systems x n x d, row-major) from x0 under V (d x d,
/// row-major), K = I and Q = q_sign I.
pub fn run(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    d: usize,
    v: Vec<f64>,
    q_sign: f64,
    x0: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    // Through the memo with every input in its key (tests share it between the quick run and
    // the mutations it does not reach: see [`Setup::memo_with`]).
    setup.memo_with(
        report,
        "value-spectrum/run",
        &(sz, d, v, q_sign, x0),
        |setup, report, (sz, d, v, q_sign, x0)| {
            compute(setup, report, sz, *d, v.clone(), *q_sign, x0)
        },
    )
}

fn compute(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    d: usize,
    v: Vec<f64>,
    q_sign: f64,
    x0: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let shape = Shape::new(sz.systems, sz.n, d)?;
    let weights = Weights {
        d,
        q: identity_matrix(d).iter().map(|e| q_sign * e).collect(),
        k: identity_matrix(d),
        v,
    };
    let model = Model::new(
        Attention::Sa,
        Geometry::Euclidean,
        Mask::Full,
        weights,
        vec![sz.beta; sz.systems],
    );
    let steps = (sz.t_end / sz.h).round() as usize;
    let gap = ((sz.t_gap / sz.h).round() as usize).clamp(1, steps);
    let at = [steps - gap, steps];
    let mut prev = Vec::new();
    let last = simulate(
        setup,
        report,
        &model,
        shape,
        x0,
        Integrator::Rk4,
        sz.h,
        &at,
        |step, x| {
            if step == steps - gap {
                prev = x.to_vec();
            }
        },
    )?;
    Ok((prev, last))
}
