//! The simulations of `phase-diagram`: the mean close-pair fraction over starts, per beta and
//! time, for each d.

use super::sizes::Sizes;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::observables::close_pair_fraction;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// The mean close-pair fraction over starts, [beta][time], of one d.
pub struct Diagram {
    pub d: usize,
    pub fraction: Vec<Vec<f64>>,
}

/// One ensemble per d (one system per (beta, start), each beta with the same starts).
pub fn diagrams(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    betas: &[f64],
) -> Result<Vec<Diagram>> {
    let (n, beta_count) = (sz.n, sz.beta_count);
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
        let mut model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            // The mutation half-beta: the dynamics at beta / 2 (a wrong temperature scaling).
            system_beta
                .iter()
                .map(|b| {
                    if setup.mutated("half-beta") {
                        0.5 * b
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
        // fraction[beta][time], averaged over the starts.
        let mut fraction = vec![Vec::with_capacity(times_len); beta_count];
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
                for (bi, f) in fraction.iter_mut().enumerate() {
                    let mean = (0..starts)
                        .map(|r| {
                            let s = bi * starts + r;
                            close_pair_fraction(&x[s * n * d..(s + 1) * n * d], d, sz.threshold)
                        })
                        .sum::<f64>()
                        / starts as f64;
                    f.push(mean);
                }
            },
        )?;
        diagrams.push(Diagram { d, fraction });
    }
    Ok(diagrams)
}
