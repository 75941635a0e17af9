//! The simulation of `lost-in-the-middle`: every prompt with each earlier token rotated by
//! EPS, run as one batch, and the per-prompt samples of the estimators at each time.

use super::D;
use super::sizes::Sizes;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// The rotation of the derivative's forward difference.
pub const EPS: f64 = 1e-2;

/// Per-prompt samples at one time: `jac[g][p]`, `naive[g][p]`, `sens[g][p]` for the source
/// positions p = 0..N-2 (s = p + 1).
#[derive(Clone)]
pub struct Samples {
    pub jac: Vec<Vec<f64>>,
    pub naive: Vec<Vec<f64>>,
    pub sens: Vec<Vec<f64>>,
    /// phi0 = theta_s(0) - theta_N(0) (uniform: cos(k phi0) has mean 0).
    pub phi0: Vec<Vec<f64>>,
    /// The derivative estimator of Fourier mode k + 1, N E[cos((k + 1)(theta_N(t) -
    /// theta_s(0)))] = N E[(d theta_N / d theta_s) cos((k + 1)(...))] (the same identity):
    /// `modes[k][g][p]` for k = 0..sz.modes (mode 1 is `jac`).
    pub modes: Vec<Vec<Vec<f64>>>,
}

pub fn angle(x: &[f64]) -> f64 {
    x[1].atan2(x[0])
}

pub fn wrap(a: f64) -> f64 {
    let t = std::f64::consts::TAU;
    (a + std::f64::consts::PI).rem_euclid(t) - std::f64::consts::PI
}

pub fn influence(
    setup: &Setup,
    report: &mut Report,
    attention: Attention,
    sz: &Sizes,
) -> Result<Vec<Samples>> {
    let (n, prompts, beta, lambda, h) = (sz.n, sz.prompts, sz.beta, sz.lambda, sz.h);
    let times = &sz.times;
    // Prompt g occupies systems g*n .. g*n + n: system 0 is the prompt, system k >= 1 the
    // prompt with token k - 1 rotated by EPS.
    let batch = prompts * n;
    let base =
        InitSpec::Uniform.generate(Shape::new(prompts, n, D)?, Geometry::Sphere, setup.seed)?;
    let (ce, se) = (EPS.cos(), EPS.sin());
    let mut x0 = Vec::with_capacity(batch * n * D);
    for g in 0..prompts {
        let prompt = &base[g * n * D..(g + 1) * n * D];
        for k in 0..n {
            let start = x0.len();
            x0.extend_from_slice(prompt);
            if k > 0 {
                let t = &mut x0[start + (k - 1) * D..start + k * D];
                let (a, b) = (t[0], t[1]);
                t[0] = a * ce - b * se;
                t[1] = a * se + b * ce;
            }
        }
    }
    let mut model = Model::new(
        attention,
        Geometry::Sphere,
        Mask::Causal,
        Weights::identity(D),
        vec![beta; batch],
    );
    // The deliberate error `no-alibi`: no positional bias, every earlier token weighed alike.
    model.alibi = Some(attnflow::model::Alibi::new(if setup.mutated("no-alibi") {
        0.0
    } else {
        lambda
    }));
    let shape = Shape::new(batch, n, D)?;
    let at: Vec<usize> = times.iter().map(|t| (t / h).round() as usize).collect();
    let theta0: Vec<Vec<f64>> = (0..prompts)
        .map(|g| {
            (0..n)
                .map(|p| angle(&base[(g * n + p) * D..(g * n + p + 1) * D]))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let nf = n as f64;
    simulate(
        setup,
        report,
        &model,
        shape,
        &x0,
        Integrator::Rk4,
        h,
        &at,
        |step, x| {
            if step == 0 {
                return;
            }
            let last = |sys: usize| {
                let o = (sys * n + n - 1) * D;
                angle(&x[o..o + D])
            };
            let mut s = Samples {
                jac: Vec::with_capacity(prompts),
                naive: Vec::with_capacity(prompts),
                sens: Vec::with_capacity(prompts),
                phi0: Vec::with_capacity(prompts),
                modes: vec![Vec::with_capacity(prompts); sz.modes],
            };
            for (g, th0) in theta0.iter().enumerate() {
                let tn = last(g * n);
                let (mut jac, mut naive, mut sens) = (
                    Vec::with_capacity(n - 1),
                    Vec::with_capacity(n - 1),
                    Vec::with_capacity(n - 1),
                );
                let mut modes = vec![Vec::with_capacity(n - 1); sz.modes];
                for p in 0..n - 1 {
                    let deriv = wrap(last(g * n + p + 1) - tn) / EPS;
                    let c = (tn - th0[p]).cos();
                    jac.push(nf * deriv * c);
                    sens.push(nf * deriv);
                    naive.push(nf * (c - (th0[n - 1] - th0[p]).cos()));
                    for (k, m) in modes.iter_mut().enumerate() {
                        m.push(nf * deriv * ((k + 1) as f64 * (tn - th0[p])).cos());
                    }
                }
                for (k, m) in modes.into_iter().enumerate() {
                    s.modes[k].push(m);
                }
                s.jac.push(jac);
                s.naive.push(naive);
                s.sens.push(sens);
                s.phi0
                    .push((0..n - 1).map(|p| th0[p] - th0[n - 1]).collect());
            }
            out.push(s);
        },
    )?;
    Ok(out)
}
