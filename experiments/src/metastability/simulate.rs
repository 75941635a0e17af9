//! The simulation of `metastability`: one ensemble of every beta and start, observed at
//! log-spaced times.

use super::CLUSTER_COS;
use super::sizes::Sizes;
use crate::{Report, Setup, backend};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::observables::{cluster_count, summarise};
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

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
        dynamics_betas(setup, &system_beta),
    );
    let mut b = backend(setup, report, &model, shape, &x0)?;
    let stepper = attnflow::integrate::Stepper::new(&model, Integrator::Rk4)?;
    stepper.prepare(b.as_mut())?;
    // energy[s][k], normalised[s][k], clusters[s][k] for system s at times[k].
    let mut energy = vec![Vec::new(); batch];
    let mut normalised = vec![Vec::new(); batch];
    let mut clusters = vec![Vec::new(); batch];
    let mut observe = |x: &[f64]| {
        let rows = attnflow::reference::pair_stats(&system_beta, shape, x);
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
            return Err(attnflow::error::Error::NonFinite(format!(
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

/// The merge times of two tight clusters on the circle, one system per beta of
/// `sz.merge_betas`: merge_n / 2 tokens within +-merge_spread of angle 0 and as many within
/// +-merge_spread of merge_phi0 (the same draw, rotated at random, for every beta). A system
/// has merged when the angle between its clusters' mean directions falls below merge_phi0 / 2
/// (linear interpolation between steps); None if not by merge_t_max.
pub fn merge_times(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Vec<Option<f64>>> {
    use rand::{RngExt, SeedableRng};
    let (n, d, h) = (sz.merge_n, 2usize, sz.merge_h);
    let half = n / 2;
    let batch = sz.merge_betas.len();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(attnflow::attend::derived_seed(setup.seed, 0x3E26));
    let rotation: f64 = std::f64::consts::TAU * rng.random::<f64>();
    let angles: Vec<f64> = (0..n)
        .map(|i| {
            let centre = if i < half { 0.0 } else { sz.merge_phi0 };
            rotation + centre + sz.merge_spread * (2.0 * rng.random::<f64>() - 1.0)
        })
        .collect();
    let one: Vec<f64> = angles.iter().flat_map(|a| [a.cos(), a.sin()]).collect();
    let x0: Vec<f64> = (0..batch).flat_map(|_| one.iter().copied()).collect();
    let shape = Shape::new(batch, n, d)?;
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        dynamics_betas(setup, &sz.merge_betas),
    );
    let mut b = backend(setup, report, &model, shape, &x0)?;
    let stepper = attnflow::integrate::Stepper::new(&model, Integrator::Rk4)?;
    stepper.prepare(b.as_mut())?;
    // The angle between the mean directions of the two clusters of system s.
    let gap = |x: &[f64], s: usize| -> f64 {
        let sys = &x[s * n * d..(s + 1) * n * d];
        let mean = |r: std::ops::Range<usize>| {
            r.fold([0.0, 0.0], |m, i| {
                [m[0] + sys[2 * i], m[1] + sys[2 * i + 1]]
            })
        };
        let (a, c) = (mean(0..half), mean(half..n));
        (a[0] * c[1] - a[1] * c[0])
            .abs()
            .atan2(a[0] * c[0] + a[1] * c[1])
    };
    setup.say(&format!(
        "two clusters of {half} at angle {} on the circle: beta {:?}",
        sz.merge_phi0, sz.merge_betas
    ));
    let target = 0.5 * sz.merge_phi0;
    let mut merged: Vec<Option<f64>> = vec![None; batch];
    let mut last: Vec<f64> = (0..batch).map(|s| gap(&x0, s)).collect();
    let (mut t, mut layer) = (0.0f64, 0u32);
    while t < sz.merge_t_max && merged.iter().any(Option::is_none) {
        stepper.step(b.as_mut(), h, layer)?;
        layer += 1;
        t += h;
        let x = b.read_state()?.to_f64();
        for s in 0..batch {
            let g = gap(&x, s);
            if merged[s].is_none() && g < target {
                merged[s] = Some(t - h + h * (last[s] - target) / (last[s] - g));
            }
            last[s] = g;
        }
    }
    Ok(merged)
}

/// The betas the dynamics sees: the mutation `half-beta` halves them.
pub fn dynamics_betas(setup: &Setup, betas: &[f64]) -> Vec<f64> {
    let scale = if setup.mutated("half-beta") { 0.5 } else { 1.0 };
    betas.iter().map(|b| scale * b).collect()
}
