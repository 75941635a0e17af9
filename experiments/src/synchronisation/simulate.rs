//! The simulation of `synchronisation`: one ensemble of `systems` systems of n tokens driven by
//! the perceptron and noise of one kind, observed every `observe_every` steps; each observation
//! is reduced on the host (f64) to pair averages per system.

use rayon::prelude::*;

use super::analyse::{mlp_field, stretching};
use super::sizes::Sizes;
use crate::memo::Debugged;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Mlp, Model, Noise, Shape};

/// The pair averages of every system at every observation time.
#[derive(Clone)]
pub struct Arm {
    pub times: Vec<f64>,
    /// log_u[s][k]: the mean over pairs i < j of system s of log u_ij, u = |x_i - x_j|^2 / 2
    /// = 1 - <x_i, x_j> (computed from the difference: no cancellation near merging).
    pub log_u: Vec<Vec<f64>>,
    /// u[s][k]: the mean over pairs of u_ij.
    pub u: Vec<Vec<f64>>,
    /// stretch[s][k]: the mean over pairs of the drift's term 2 <f(x_j) - f(x_i), x_j - x_i>
    /// / |x_j - x_i|^2 in d log u_ij.
    pub stretch: Vec<Vec<f64>>,
    /// The least log u_ij of any pair at any time.
    pub min_log_u: f64,
}

/// The model: no attention (V = 0, so the attention output vanishes and tokens interact only
/// through the noise they share), the perceptron, and noise of level sigma, common (one dB per
/// system) or independent (one per token).
pub fn model(sz: &Sizes, d: usize, mlp: &Mlp, sigma: f64, common: bool, noise_seed: u64) -> Model {
    let weights = Weights {
        v: vec![0.0; d * d],
        ..Weights::identity(d)
    };
    let mut m = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        weights,
        vec![0.0; sz.systems],
    );
    m.mlp = Some(mlp.clone());
    m.noise = Some(Noise {
        sigma,
        common,
        seed: noise_seed,
    });
    m
}

/// Runs one arm from x0 (systems x n x d on the sphere; d = mlp's dimension).
#[allow(clippy::too_many_arguments)]
pub fn run_arm(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    d: usize,
    mlp: &Mlp,
    x0: &[f64],
    sigma: f64,
    common: bool,
    noise_seed: u64,
) -> Result<Arm> {
    // Through the memo with every input in its key (tests share it between the quick run and
    // the mutations it does not reach: see [`Setup::memo_with`]).
    setup.memo_with(
        report,
        "synchronisation/arm",
        &(sz, d, Debugged(mlp), x0, sigma, common, noise_seed),
        |setup, report, &(sz, d, Debugged(mlp), x0, sigma, common, noise_seed)| {
            compute_arm(setup, report, sz, d, mlp, x0, sigma, common, noise_seed)
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn compute_arm(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    d: usize,
    mlp: &Mlp,
    x0: &[f64],
    sigma: f64,
    common: bool,
    noise_seed: u64,
) -> Result<Arm> {
    let n = sz.n;
    let shape = Shape::new(sz.systems, n, d)?;
    let model = model(sz, d, mlp, sigma, common, noise_seed);
    let h = sz.h(sigma);
    let every = sz.observe_every.max(1);
    let at: Vec<usize> = (1..=sz.steps(d) / every).map(|k| k * every).collect();
    let mut arm = Arm {
        times: Vec::new(),
        log_u: vec![Vec::new(); sz.systems],
        u: vec![Vec::new(); sz.systems],
        stretch: vec![Vec::new(); sz.systems],
        min_log_u: f64::INFINITY,
    };
    simulate(
        setup,
        report,
        &model,
        shape,
        x0,
        Integrator::Euler,
        h,
        &at,
        |step, x| {
            arm.times.push(step as f64 * h);
            let rows: Vec<(f64, f64, f64, f64)> = (0..sz.systems)
                .into_par_iter()
                .map(|s| pair_means(mlp, &x[s * n * d..(s + 1) * n * d], d))
                .collect();
            for (s, (lu, u, st, least)) in rows.into_iter().enumerate() {
                arm.min_log_u = arm.min_log_u.min(least);
                arm.log_u[s].push(lu);
                arm.u[s].push(u);
                arm.stretch[s].push(st);
            }
        },
    )?;
    Ok(arm)
}

/// The f32 state resolves u down to about 1e-14 (coordinates to 6e-8); pairs merged to f32
/// precision (u = 0) are counted at this floor rather than at log 0.
const U_FLOOR: f64 = 1e-14;

/// The means over pairs i < j of one system's tokens (n x d, renormalised here in f64) of
/// log u_ij, u_ij and the stretching term, and the least log u_ij.
pub fn pair_means(mlp: &Mlp, x: &[f64], d: usize) -> (f64, f64, f64, f64) {
    let tokens: Vec<Vec<f64>> = x
        .chunks(d)
        .map(|t| {
            let r = t.iter().map(|v| v * v).sum::<f64>().sqrt();
            t.iter().map(|v| v / r).collect()
        })
        .collect();
    let fields: Vec<Vec<f64>> = tokens.iter().map(|t| mlp_field(mlp, t)).collect();
    let n = tokens.len();
    let (mut lu, mut uu, mut st, mut pairs) = (0.0, 0.0, 0.0, 0.0);
    let mut least = f64::INFINITY;
    for i in 0..n {
        for j in i + 1..n {
            let u = (0.5
                * tokens[i]
                    .iter()
                    .zip(&tokens[j])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>())
            .max(U_FLOOR);
            lu += u.ln();
            least = least.min(u.ln());
            uu += u;
            st += stretching(&tokens[i], &fields[i], &tokens[j], &fields[j]);
            pairs += 1.0;
        }
    }
    (lu / pairs, uu / pairs, st / pairs, least)
}
