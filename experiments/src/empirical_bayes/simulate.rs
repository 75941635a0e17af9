//! The two-stage denoiser of `empirical-bayes` on the engine's attention layer.
//!
//! Gaussian-kernel attention exp(-beta |z - x|^2 / 2) (beta = 1 / bandwidth^2) is softmax
//! attention with the key bias -beta |x|^2 / 2 (the query's own |z|^2 cancels in the softmax).
//! The engine's euclidean SA layer (Q = K = V = I, raw outputs) computes it on tokens of
//! dimension d + 1: a query z enters as (z, 1), a key x as (x, -|x|^2 / 2); the first d output
//! coordinates are the kernel-weighted mean of the keys and the last is dropped.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::analyse::{Prior, posterior_mean};
use crate::{Report, Setup};
use attnflow::attend::{Attend, LayerShape};
use attnflow::error::Result;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model};

/// One ensemble: `bandwidths.len()` independent systems (one stage-1 bandwidth each), each a
/// context of n noisy tokens and q held-out query pairs (clean x*, noisy y* = x* + sigma eps).
#[derive(serde::Serialize)]
pub struct Ensemble<'a> {
    pub prior: Prior,
    pub sigma: f64,
    pub d: usize,
    pub n: usize,
    pub q: usize,
    /// The stage-1 bandwidth h of each system.
    pub bandwidths: &'a [f64],
    /// The residual step of one stage-1 layer: x <- x + dt (m_h(x) - x).
    pub dt: f64,
    pub layers: usize,
    /// Evaluate stage 2 after every layer (else only after the last).
    pub every_layer: bool,
    /// Random stream of the draws (distinct per ensemble).
    pub stream: u64,
}

/// Stage-2 measurements of one system at one depth (per coordinate, averaged over queries).
#[derive(Clone, Copy, Debug, Default)]
pub struct Measure {
    /// E|x_hat - x*|^2 / d.
    pub mse: f64,
    /// E|x_hat_B(y*) - x*|^2 / d: the Bayes posterior mean's error on the same queries.
    pub bayes_mse: f64,
    /// E|x_hat - x_hat_B(y*)|^2 / d.
    pub to_bayes: f64,
    /// The context's variance per coordinate (its empirical measure's spread).
    pub context_var: f64,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A clean token of the prior.
fn clean(p: Prior, d: usize, rng: &mut ChaCha8Rng, out: &mut [f64]) {
    let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
    for (i, o) in out.iter_mut().enumerate().take(d) {
        *o = p.s * normal(rng) + if i == 0 { sign * p.mu } else { 0.0 };
    }
}

/// Tokens [k, d] -> keys [k, d + 1] (x, -|x|^2 / 2).
fn as_keys(x: &[f64], d: usize, out: &mut Vec<f64>) {
    for t in x.chunks(d) {
        out.extend_from_slice(t);
        out.push(-0.5 * t.iter().map(|v| v * v).sum::<f64>());
    }
}

/// Tokens [k, d] -> queries [k, d + 1] (z, 1).
fn as_queries(z: &[f64], d: usize, out: &mut Vec<f64>) {
    for t in z.chunks(d) {
        out.extend_from_slice(t);
        out.push(1.0);
    }
}

/// Outputs [k, d + 1] -> kernel means [k, d].
fn means(a: &[f64], d: usize) -> Vec<f64> {
    a.chunks(d + 1).flat_map(|t| t[..d].to_vec()).collect()
}

/// A Gaussian-kernel attention layer: `betas[s]` = 1 / bandwidth^2 of system s, m queries
/// against n keys.
fn kernel_layer(
    setup: &Setup,
    report: &mut Report,
    betas: Vec<f64>,
    (m, n, d): (usize, usize, usize),
) -> Result<Box<dyn Attend>> {
    let batch = betas.len();
    let model = Model::new(
        Attention::Sa,
        Geometry::Euclidean,
        Mask::Full,
        Weights::identity(d + 1),
        betas,
    );
    let shape = LayerShape {
        batch,
        m,
        n,
        d: d + 1,
    };
    let (layer, _, note) = attnflow::backend::build_layer(setup.backend, &model, shape)?;
    if report.backend.is_none() {
        if let Some(note) = note {
            setup.say(&format!("note: {note}"));
        }
        report.backend = Some(layer.describe());
    }
    Ok(layer)
}

/// [`compute`] through the memo, the ensemble its key (tests share it between the quick run and
/// the mutations it does not reach: see [`Setup::memo_with`]).
pub fn run(setup: &Setup, report: &mut Report, e: &Ensemble) -> Result<Vec<Vec<Measure>>> {
    setup.memo_with(report, "empirical-bayes/run", e, compute)
}

/// Runs the two stages on every system: measures[system][depth] (depth 0..=layers when
/// `every_layer`, else one entry, after the last layer).
///
/// Mutations: `wrong-bandwidth` gives stage 2 the stage-1 bandwidth h instead of the noise
/// level sigma (one fixed kernel throughout); `query-refined` lets the query tokens flow with
/// the context through stage 1 (dz/dt = m_h(z) - z against the context) and uses the refined
/// z in stage 2 instead of the noisy input the long skip connection carries;
/// `clean-context` leaves the context tokens uncorrupted (clean in-context examples, only the
/// query noisy: not the seed's all-token corruption), with the same draws.
fn compute(setup: &Setup, report: &mut Report, e: &Ensemble) -> Result<Vec<Vec<Measure>>> {
    let (d, n, q) = (e.d, e.n, e.q);
    let systems = e.bandwidths.len();
    let wrong_bandwidth = setup.mutated("wrong-bandwidth");
    let query_refined = setup.mutated("query-refined");
    let wrong_prior = setup.mutated("wrong-prior");
    let context_noise = if setup.mutated("clean-context") {
        0.0
    } else {
        e.sigma
    };
    // Draws: noisy contexts y [systems, n, d]; query pairs x*, y* [systems, q, d].
    let (mut x, mut xq, mut yq) = (
        vec![0.0; systems * n * d],
        vec![0.0; systems * q * d],
        vec![0.0; systems * q * d],
    );
    for s in 0..systems {
        let mut rng = ChaCha8Rng::seed_from_u64(setup.seed);
        rng.set_stream(e.stream * 1_000_003 + s as u64);
        let mut t = vec![0.0; d];
        for j in 0..n {
            clean(e.prior, d, &mut rng, &mut t);
            let row = &mut x[(s * n + j) * d..(s * n + j + 1) * d];
            for (o, v) in row.iter_mut().zip(&t) {
                *o = v + context_noise * normal(&mut rng);
            }
        }
        for j in 0..q {
            clean(e.prior, d, &mut rng, &mut t);
            let r = (s * q + j) * d..(s * q + j + 1) * d;
            xq[r.clone()].copy_from_slice(&t);
            for (o, v) in yq[r].iter_mut().zip(&t) {
                *o = v + e.sigma * normal(&mut rng);
            }
        }
    }
    let mut bayes = vec![0.0; systems * q * d];
    for (o, y) in bayes.chunks_mut(d).zip(yq.chunks(d)) {
        posterior_mean(e.prior, e.sigma, y, wrong_prior, o);
    }
    let stage1_betas: Vec<f64> = e.bandwidths.iter().map(|h| 1.0 / (h * h)).collect();
    let stage2_betas: Vec<f64> = if wrong_bandwidth {
        stage1_betas.clone()
    } else {
        vec![1.0 / (e.sigma * e.sigma); systems]
    };
    let mut stage1 = kernel_layer(setup, report, stage1_betas.clone(), (n, n, d))?;
    let mut stage2 = kernel_layer(setup, report, stage2_betas, (q, n, d))?;
    let mut flow_queries = if query_refined {
        Some(kernel_layer(setup, report, stage1_betas, (q, n, d))?)
    } else {
        None
    };
    let mut z = yq.clone();
    let mut out = vec![Vec::new(); systems];
    let (mut keys, mut qs) = (Vec::new(), Vec::new());
    for layer in 0..=e.layers {
        keys.clear();
        as_keys(&x, d, &mut keys);
        if e.every_layer || layer == e.layers {
            stage2.set_keys(&keys)?;
            qs.clear();
            as_queries(&z, d, &mut qs);
            let xhat = means(&stage2.run(&qs)?, d);
            for (s, o) in out.iter_mut().enumerate() {
                let r = s * q * d..(s + 1) * q * d;
                let sq = |a: &[f64], b: &[f64]| {
                    a.iter().zip(b).map(|(u, v)| (u - v).powi(2)).sum::<f64>() / (q * d) as f64
                };
                let ctx = &x[s * n * d..(s + 1) * n * d];
                let mut var = 0.0;
                for i in 0..d {
                    let m = ctx.iter().skip(i).step_by(d).sum::<f64>() / n as f64;
                    var += ctx
                        .iter()
                        .skip(i)
                        .step_by(d)
                        .map(|v| (v - m).powi(2))
                        .sum::<f64>();
                }
                o.push(Measure {
                    mse: sq(&xhat[r.clone()], &xq[r.clone()]),
                    bayes_mse: sq(&bayes[r.clone()], &xq[r.clone()]),
                    to_bayes: sq(&xhat[r.clone()], &bayes[r]),
                    context_var: var / (n * d) as f64,
                });
            }
        }
        if layer == e.layers {
            break;
        }
        // Stage 1: one residual attention layer of the context on itself (the queries, when
        // they flow, move against the same context before it moves).
        if let Some(fq) = flow_queries.as_mut() {
            fq.set_keys(&keys)?;
            qs.clear();
            as_queries(&z, d, &mut qs);
            let m = means(&fq.run(&qs)?, d);
            z.iter_mut()
                .zip(&m)
                .for_each(|(v, m)| *v += e.dt * (m - *v));
        }
        stage1.set_keys(&keys)?;
        qs.clear();
        as_queries(&x, d, &mut qs);
        let m = means(&stage1.run(&qs)?, d);
        x.iter_mut()
            .zip(&m)
            .for_each(|(v, m)| *v += e.dt * (m - *v));
    }
    Ok(out)
}
