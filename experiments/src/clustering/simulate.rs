//! The simulations of `clustering`: 1 - min_{i,j} <x_i, x_j> along the flow.

use super::sizes::Sizes;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// The smallest pairwise cosine of the n tokens of x [n, d].
pub fn min_cos(x: &[f64], d: usize) -> f64 {
    let n = x.len() / d;
    let mut m: f64 = 1.0;
    for i in 0..n {
        for j in i + 1..n {
            let c: f64 = (0..d).map(|k| x[i * d + k] * x[j * d + k]).sum();
            m = m.min(c);
        }
    }
    m
}

/// The gap curve (t, 1 - min cos) of one system.
#[derive(Clone)]
pub struct Curve {
    pub attention: Attention,
    pub beta: f64,
    pub points: Vec<(f64, f64)>,
}

/// Every system's gap curve: SA first (one ensemble of every beta), then USA beta by beta.
pub fn gap_curves(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Vec<Curve>> {
    let (n, d) = (sz.n, sz.d);
    // SA: one ensemble of every beta. USA moves e^beta times faster near collapse, so each
    // beta runs alone with h <= 0.25 e^-beta (RK4 stays accurate), over the same T.
    let mut groups: Vec<(Attention, Vec<f64>, f64)> =
        vec![(Attention::Sa, sz.betas_sa.clone(), sz.h)];
    for &beta in &sz.betas_usa {
        groups.push((Attention::Usa, vec![beta], sz.h.min(0.25 * f64::exp(-beta))));
    }
    let mut out = Vec::new();
    for (attention, betas, h_run) in groups {
        let steps = (sz.t_end / h_run).round() as usize;
        // Observe often enough to resolve the final decay e^{-2 c t} (c = 1 for SA, e^beta for
        // USA): at least ten points per e-fold, at most 2000 in all.
        let c = match attention {
            Attention::Sa => 1.0,
            Attention::Usa => f64::exp(betas[0]),
        };
        let every = ((0.05 / (c * h_run)) as usize).max(steps / 2000).max(1);
        let at: Vec<usize> = (1..=steps)
            .filter(|s| s % every == 0 || *s == steps)
            .collect();
        let shape = Shape::new(betas.len(), n, d)?;
        let weights = setup.identity_weights(d, "repel");
        let model = Model::new(
            attention,
            Geometry::Sphere,
            Mask::Full,
            weights,
            betas.clone(),
        );
        let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, setup.seed)?;
        let mut curves: Vec<Vec<(f64, f64)>> = vec![Vec::new(); betas.len()];
        setup.say(&format!(
            "{}: beta {betas:?}, n = {n}, h = {h_run:.4}",
            attention.name()
        ));
        simulate(
            setup,
            report,
            &model,
            shape,
            &x0,
            Integrator::Rk4,
            h_run,
            &at,
            |step, x| {
                for (b, curve) in curves.iter_mut().enumerate() {
                    let sys = &x[b * n * d..(b + 1) * n * d];
                    curve.push((step as f64 * h_run, 1.0 - min_cos(sys, d)));
                }
            },
        )?;
        for (points, &beta) in curves.into_iter().zip(&betas) {
            out.push(Curve {
                attention,
                beta,
                points,
            });
        }
    }
    Ok(out)
}
