//! The simulations of `phase-diagram`: the mean close-pair fraction over starts, per beta and
//! time, for each d.

use super::sizes::Sizes;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::observables::close_pair_fraction;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// The close-pair fraction of one d: the mean over starts, [beta][time], and each start's,
/// [beta][start][time] (the starts are the independent units of the standard errors).
#[derive(Clone)]
pub struct Diagram {
    pub d: usize,
    pub fraction: Vec<Vec<f64>>,
    pub per_start: Vec<Vec<Vec<f64>>>,
}

/// One ensemble per d (one system per (beta, start), each beta with the same starts).
pub fn diagrams(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    betas: &[f64],
) -> Result<Vec<Diagram>> {
    let (n, beta_count) = (sz.n, betas.len());
    let at = sz.at();
    let times_len = at.len() + 1;
    let mut diagrams = Vec::new();
    for (&d, &starts) in sz.dims.iter().zip(&sz.starts_by_d) {
        let batch = beta_count * starts;
        let shape = Shape::new(batch, n, d)?;
        let one =
            InitSpec::Uniform.generate(Shape::new(starts, n, d)?, Geometry::Sphere, setup.seed)?;
        let mut x0 = Vec::with_capacity(batch * n * d);
        let mut system_beta = Vec::with_capacity(batch);
        for &beta in betas {
            x0.extend_from_slice(&one);
            system_beta.extend(std::iter::repeat_n(beta, starts));
        }
        let weights = setup.identity_weights(d, "repel");
        let mut model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            weights,
            // The mutations half-beta and beta-15pct: the dynamics at beta / 2 or 1.15 beta (a
            // wrong temperature scaling).
            system_beta
                .iter()
                .map(|b| {
                    if setup.mutated("half-beta") {
                        0.5 * b
                    } else if setup.mutated("beta-15pct") {
                        1.15 * b
                    } else {
                        *b
                    }
                })
                .collect(),
        );
        model.layer = sz.layer;
        // The mutation double-step: steps of 2h recorded as h (a wrong time scaling).
        let h = if setup.mutated("double-step") {
            2.0 * sz.h
        } else {
            sz.h
        };
        setup.say(&format!(
            "d = {d}: {beta_count} betas x {starts} starts of n = {n}, T = {}",
            sz.t_end
        ));
        // per_start[beta][start][time].
        let mut per_start = vec![vec![Vec::with_capacity(times_len); starts]; beta_count];
        simulate(
            setup,
            report,
            &model,
            shape,
            &x0,
            if sz.layer.is_ode() {
                Integrator::Rk4
            } else {
                Integrator::Euler
            },
            h,
            &at,
            |_, x| {
                for (bi, f) in per_start.iter_mut().enumerate() {
                    for (r, f) in f.iter_mut().enumerate() {
                        let s = bi * starts + r;
                        f.push(close_pair_fraction(
                            &x[s * n * d..(s + 1) * n * d],
                            d,
                            sz.threshold,
                        ));
                    }
                }
            },
        )?;
        let fraction = per_start.iter().map(|f| mean_over(f, None)).collect();
        diagrams.push(Diagram {
            d,
            fraction,
            per_start,
        });
    }
    Ok(diagrams)
}

/// The mean over starts of per-start curves [start][time], leaving out start `skip` if given
/// (a jackknife replicate).
pub fn mean_over(curves: &[Vec<f64>], skip: Option<usize>) -> Vec<f64> {
    let len = curves.first().map_or(0, Vec::len);
    let kept: Vec<&Vec<f64>> = curves
        .iter()
        .enumerate()
        .filter(|(r, _)| Some(*r) != skip)
        .map(|(_, c)| c)
        .collect();
    (0..len)
        .map(|k| kept.iter().map(|c| c[k]).sum::<f64>() / kept.len() as f64)
        .collect()
}
