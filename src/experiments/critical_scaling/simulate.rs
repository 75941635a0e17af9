//! The simulations of `critical-scaling`: the mean pairwise cosine of the outputs of one
//! attention layer and of a short flow, for every gamma of beta = gamma ln n.

use crate::attend::LayerShape;
use crate::error::Result;
use crate::experiments::{Report, Setup, simulate};
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::observables::order_parameter;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

/// Mean pairwise cosine of the rows of x [k, d] after normalising them:
/// (k |mean|^2 - 1) / (k - 1).
pub fn mean_pair_cos(x: &[f64], d: usize) -> f64 {
    let unit: Vec<f64> = x
        .chunks(d)
        .flat_map(|t| {
            let r = t.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
            t.iter().map(move |v| v / r)
        })
        .collect();
    let k = (x.len() / d) as f64;
    let r = order_parameter(&unit, d);
    (k * r * r - 1.0) / (k - 1.0)
}

/// n tokens x = sqrt(c0) e_1 + sqrt(1 - c0) u with u uniform on the sphere of e_1^perp.
pub fn tokens(n: usize, d: usize, c0: f64, seed: u64) -> Result<Vec<f64>> {
    let u = InitSpec::Uniform.generate(Shape::new(1, n, d - 1)?, Geometry::Sphere, seed)?;
    let (a, b) = (c0.sqrt(), (1.0 - c0).sqrt());
    let mut x = Vec::with_capacity(n * d);
    for t in u.chunks(d - 1) {
        x.push(a);
        x.extend(t.iter().map(|v| b * v));
    }
    Ok(x)
}

/// One layer (SA, euclidean, raw outputs), the first m tokens attending to all n of x [n, d]:
/// the mean output cosine at every gamma (beta = gamma ln n), in batches of gammas.
pub fn layer(
    setup: &Setup,
    report: &mut Report,
    x: &[f64],
    (m, n, d): (usize, usize, usize),
    gammas: &[f64],
) -> Result<Vec<f64>> {
    let per = ((1usize << 22) / (n * d)).clamp(1, gammas.len());
    let mut c_out = Vec::with_capacity(gammas.len());
    for chunk in gammas.chunks(per) {
        let b = chunk.len();
        let betas: Vec<f64> = chunk.iter().map(|g| g * (n as f64).ln()).collect();
        let model = Model::new(
            Attention::Sa,
            Geometry::Euclidean,
            Mask::Full,
            Weights::identity(d),
            betas,
        );
        let shape = LayerShape { batch: b, m, n, d };
        let (mut layer, _, note) = crate::backend::build_layer(setup.backend, &model, shape)?;
        if report.backend.is_none() {
            if let Some(note) = note {
                setup.say(&format!("note: {note}"));
            }
            report.backend = Some(layer.describe());
        }
        layer.set_keys(&x.repeat(b))?;
        let out = layer.run(&x[..m * d].repeat(b))?;
        for sys in out.chunks(m * d) {
            c_out.push(mean_pair_cos(sys, d));
        }
    }
    Ok(c_out)
}

/// The SA flow on the sphere (RK4, steps of h to t_end) of x [n, d]: the mean cosine at t_end
/// for every gamma, in batches of gammas.
pub fn flow(
    setup: &Setup,
    report: &mut Report,
    x: &[f64],
    (n, d): (usize, usize),
    gammas: &[f64],
    (t_end, h): (f64, f64),
) -> Result<Vec<f64>> {
    let steps = (t_end / h).round() as usize;
    let per = ((1usize << 22) / (n * d)).clamp(1, gammas.len());
    let mut c_out = Vec::with_capacity(gammas.len());
    for chunk in gammas.chunks(per) {
        let b = chunk.len();
        let betas: Vec<f64> = chunk.iter().map(|g| g * (n as f64).ln()).collect();
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            betas,
        );
        let shape = Shape::new(b, n, d)?;
        let fin = simulate(
            setup,
            report,
            &model,
            shape,
            &x.repeat(b),
            Integrator::Rk4,
            h,
            &[steps],
            |_, _| {},
        )?;
        for sys in fin.chunks(n * d) {
            c_out.push(mean_pair_cos(sys, d));
        }
    }
    Ok(c_out)
}
