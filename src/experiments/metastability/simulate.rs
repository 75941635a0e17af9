//! The simulation of `metastability`: one ensemble of every beta and start, observed at
//! log-spaced times.

use super::CLUSTER_COS;
use super::sizes::Sizes;
use crate::error::Result;
use crate::experiments::{Report, Setup, backend};
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::observables::{cluster_count, summarise};
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

/// The observations of every system s = (beta index) * replicates + r at every time.
pub struct Observations {
    pub times: Vec<f64>,
    /// The beta of each system.
    pub system_beta: Vec<f64>,
    /// E_beta(t): energy[s][k].
    pub energy: Vec<Vec<f64>>,
    /// E_beta(t) / E_beta(one cluster).
    pub normalised: Vec<Vec<f64>>,
    /// Connected components of cos >= CLUSTER_COS.
    pub clusters: Vec<Vec<usize>>,
    pub steps_taken: u32,
}

pub fn observe(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Observations> {
    let (n, d, replicates) = (sz.n, sz.d, sz.replicates);
    let times = sz.times();
    let batch = sz.betas.len() * replicates;
    let shape = Shape::new(batch, n, d)?;
    // System b = (beta index) * replicates + r; every beta gets the same R starts.
    let starts =
        InitSpec::Uniform.generate(Shape::new(replicates, n, d)?, Geometry::Sphere, setup.seed)?;
    let mut x0 = Vec::with_capacity(batch * n * d);
    let mut system_beta = Vec::with_capacity(batch);
    for &beta in &sz.betas {
        for r in 0..replicates {
            x0.extend_from_slice(&starts[r * n * d..(r + 1) * n * d]);
            system_beta.push(beta);
        }
    }
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        system_beta.clone(),
    );
    let mut b = backend(setup, report, &model, shape, &x0)?;
    let stepper = crate::integrate::Stepper::new(&model, Integrator::Rk4)?;
    stepper.prepare(b.as_mut())?;
    // energy[s][k], normalised[s][k], clusters[s][k] for system s at times[k].
    let mut energy = vec![Vec::new(); batch];
    let mut normalised = vec![Vec::new(); batch];
    let mut clusters = vec![Vec::new(); batch];
    let mut observe = |x: &[f64]| {
        let rows = crate::reference::pair_stats(&system_beta, shape, x);
        for s in 0..batch {
            let beta = system_beta[s];
            let m = summarise(&rows[s * n..(s + 1) * n], beta);
            energy[s].push(m.energy);
            // E / E(one cluster) with E(one cluster) = e^beta / (2 beta), in logs.
            normalised[s].push((m.energy.ln() + (2.0 * beta).ln() - beta).exp());
            clusters[s].push(cluster_count(
                &x[s * n * d..(s + 1) * n * d],
                d,
                CLUSTER_COS,
            ));
        }
    };
    setup.say(&format!(
        "SA on the circle: n = {n}, beta {:?} x {replicates} starts, t up to {}",
        sz.betas, sz.t_end
    ));
    observe(&x0);
    let (mut t, mut layer) = (0.0f64, 0u32);
    for (k, &target) in times.iter().enumerate().skip(1) {
        while t < target - 1e-9 {
            let h = (sz.h_rel * t).clamp(sz.h_min, sz.h_max).min(target - t);
            stepper.step(b.as_mut(), h, layer)?;
            layer += 1;
            t += h;
        }
        let x = b.read_state()?.to_f64();
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(crate::error::Error::NonFinite(format!(
                "coordinate {i} became {} by t = {t}",
                x[i]
            )));
        }
        observe(&x);
        if k % sz.per_decade == 0 {
            setup.say(&format!("t = {t:.1} ({layer} steps)"));
        }
    }
    Ok(Observations {
        times,
        system_beta,
        energy,
        normalised,
        clusters,
        steps_taken: layer,
    })
}
