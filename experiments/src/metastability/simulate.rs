//! The simulation of `metastability`: one ensemble of every beta and start, observed at
//! log-spaced times, and the two-cluster merge systems. Both integrate with dopri5
//! (`AdaptiveStepper`: each system its own steps, the observations from the dense output) or,
//! with `--set integrator=rk4`, the fixed steps the study used before.

use super::CLUSTER_COS;
use super::sizes::Sizes;
use crate::{Report, Setup, backend};
use attnflow::error::Result;
use attnflow::integrate::{AdaptiveOptions, AdaptiveStepper, Backend, Integrator};
use attnflow::model::init::InitSpec;
use attnflow::model::observables::{cluster_count, summarise};
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};
use attnflow::stats::mean;

/// The observations of every system s = (beta index) * replicates + r at every time.
#[derive(Clone)]
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
    pub cost: Cost,
}

/// What an integration cost: field evaluations summed over systems, and the steps of the
/// system that took most.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Cost {
    pub field_evaluations: u64,
    pub most_steps: u64,
    pub rejected_steps: u64,
}

impl Cost {
    fn add(&mut self, o: Cost) {
        self.field_evaluations += o.field_evaluations;
        self.most_steps = self.most_steps.max(o.most_steps);
        self.rejected_steps += o.rejected_steps;
    }
}

/// Whether the study integrates adaptively (dopri5) or with the old fixed RK4 steps.
pub fn adaptive(sz: &Sizes) -> bool {
    sz.integrator != "rk4"
}

/// The cost of an adaptive integration so far.
fn adaptive_cost(stepper: &AdaptiveStepper) -> Cost {
    let s = stepper.systems();
    Cost {
        field_evaluations: s.iter().map(|s| s.stats.evaluations).sum(),
        most_steps: s.iter().map(|s| s.stats.accepted).max().unwrap_or(0),
        rejected_steps: s.iter().map(|s| s.stats.rejected).sum(),
    }
}

/// Refuses a state that is no longer finite.
fn finite(x: &[f64], t: f64) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(attnflow::error::Error::NonFinite(format!(
            "coordinate {i} became {} by t = {t}",
            x[i]
        ))),
        None => Ok(()),
    }
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
    let weights = setup.identity_weights(d, "repel");
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        weights,
        dynamics_betas(setup, &system_beta),
    );
    let mut b = backend(setup, report, &model, shape, &x0)?;
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
        "SA on the circle: n = {n}, beta {:?} x {replicates} starts, t up to {} ({})",
        sz.betas, sz.t_end, sz.integrator
    ));
    observe(&x0);
    let cost = if adaptive(sz) {
        let opts = AdaptiveOptions {
            rtol: sz.rtol,
            atol: sz.atol,
            ..AdaptiveOptions::default()
        };
        let mut stepper = AdaptiveStepper::new(&model, shape, Integrator::Dopri5, opts)?;
        stepper.prepare(b.as_mut())?;
        let outputs = &times[1..];
        stepper.advance(b.as_mut(), sz.t_end, outputs, &mut |k, x| {
            finite(x, outputs[k])?;
            observe(x);
            if (k + 1) % sz.per_decade == 0 {
                setup.say(&format!("t = {:.1}", outputs[k]));
            }
            Ok(())
        })?;
        adaptive_cost(&stepper)
    } else {
        let stepper = attnflow::integrate::Stepper::new(&model, Integrator::Rk4)?;
        stepper.prepare(b.as_mut())?;
        let (mut t, mut layer) = (0.0f64, 0u32);
        for (k, &target) in times.iter().enumerate().skip(1) {
            while t < target - 1e-9 {
                let h = (sz.h_rel * t).clamp(sz.h_min, sz.h_max).min(target - t);
                stepper.step(b.as_mut(), h, layer)?;
                layer += 1;
                t += h;
            }
            let x = b.read_state()?.to_f64();
            finite(&x, t)?;
            observe(&x);
            if k % sz.per_decade == 0 {
                setup.say(&format!("t = {t:.1} ({layer} steps)"));
            }
        }
        Cost {
            field_evaluations: 4 * layer as u64 * batch as u64,
            most_steps: layer as u64,
            rejected_steps: 0,
        }
    };
    Ok(Observations {
        times,
        system_beta,
        energy,
        normalised,
        clusters,
        cost,
    })
}

/// The merge times of the two-cluster systems, `[beta index][replicate]`, read three ways:
/// `times` (clusters of half-width merge_spread, the gap read at every output), `coarse` (the
/// same systems, the gap read at every other output: the interpolation's error) and `narrow`
/// (the same draws at half the width: the width's effect). None: not merged by merge_t_max.
#[derive(Clone)]
pub struct Merges {
    pub times: Vec<Vec<Option<f64>>>,
    pub coarse: Vec<Vec<Option<f64>>>,
    pub narrow: Vec<Vec<Option<f64>>>,
    pub cost: Cost,
    pub backend: String,
}

/// Readings of the gap per advance of the merge systems (dopri5).
const READS_PER_ADVANCE: usize = 4096;

/// Where each system's gap first fell below `target`, interpolated linearly in t between
/// consecutive readings, and between every other reading (`coarse`).
struct Crossings {
    target: f64,
    prev: Vec<Option<(f64, f64)>>,
    prev_even: Vec<Option<(f64, f64)>>,
    fine: Vec<Option<f64>>,
    coarse: Vec<Option<f64>>,
}

impl Crossings {
    fn new(batch: usize, target: f64) -> Self {
        Crossings {
            target,
            prev: vec![None; batch],
            prev_even: vec![None; batch],
            fine: vec![None; batch],
            coarse: vec![None; batch],
        }
    }

    fn cross(&self, a: Option<(f64, f64)>, t: f64, g: f64) -> Option<f64> {
        let (t0, g0) = a?;
        if g >= self.target || g0 < self.target {
            return None;
        }
        Some(t0 + (t - t0) * (g0 - self.target) / (g0 - g))
    }

    /// The k-th reading: the gaps of every system at time t.
    fn see(&mut self, k: usize, t: f64, gaps: &[f64]) {
        for (s, &g) in gaps.iter().enumerate() {
            if self.fine[s].is_none() {
                self.fine[s] = self.cross(self.prev[s], t, g);
            }
            self.prev[s] = Some((t, g));
            if k.is_multiple_of(2) {
                if self.coarse[s].is_none() {
                    self.coarse[s] = self.cross(self.prev_even[s], t, g);
                }
                self.prev_even[s] = Some((t, g));
            }
        }
    }

    fn done(&self) -> bool {
        self.fine.iter().all(Option::is_some) && self.coarse.iter().all(Option::is_some)
    }
}

/// The merge times of two tight clusters on the circle: for each beta of `sz.merge_betas`
/// one ensemble of merge_replicates draws, each twice (half-width merge_spread and half that):
/// merge_n / 2 tokens within about +-spread of angle 0 and as many of merge_phi0 (offsets
/// drawn uniformly, then centred per cluster), rotated at random (the same draws for every
/// beta). A system has merged when the angle
/// between its clusters' mean directions falls below merge_phi0 / 2. Each beta's ensemble
/// stops once all its systems have merged or at merge_t_max. dopri5 runs on the f64
/// reference backend; rk4 (the old version) on the experiment's backend.
pub fn merge_times(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Merges> {
    use rand::{RngExt, SeedableRng};
    let (n, d) = (sz.merge_n, 2usize);
    let (half, reps) = (n / 2, sz.merge_replicates);
    let batch = 2 * reps;
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(attnflow::attend::derived_seed(setup.seed, 0x3E26));
    // System 2 r: draw r at width merge_spread; system 2 r + 1: the same draw at half width.
    let mut x0 = Vec::with_capacity(batch * n * d);
    for _ in 0..reps {
        let rotation: f64 = std::f64::consts::TAU * rng.random::<f64>();
        let mut offsets: Vec<f64> = (0..n).map(|_| 2.0 * rng.random::<f64>() - 1.0).collect();
        // Each cluster's offsets centred (mean 0), so that its mean direction is its centre
        // to O(spread^3) and the gap starts at merge_phi0: d ln t / d phi0 = beta sin phi0,
        // so uncentred draws (a gap off by ~spread / sqrt(merge_n)) gave t = 896 to 1033 at
        // beta 16.
        for c in [0..half, half..n] {
            let m = mean(&offsets[c.clone()]);
            offsets[c].iter_mut().for_each(|o| *o -= m);
        }
        for width in [sz.merge_spread, 0.5 * sz.merge_spread] {
            for (i, o) in offsets.iter().enumerate() {
                let centre = if i < half { 0.0 } else { sz.merge_phi0 };
                let a = rotation + centre + width * o;
                x0.extend([a.cos(), a.sin()]);
            }
        }
    }
    let shape = Shape::new(batch, n, d)?;
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
        "two clusters of {half} at angle {} on the circle: beta {:?}, {reps} draws ({})",
        sz.merge_phi0, sz.merge_betas, sz.integrator
    ));
    let target = 0.5 * sz.merge_phi0;
    let mut out = Merges {
        times: Vec::new(),
        coarse: Vec::new(),
        narrow: Vec::new(),
        cost: Cost::default(),
        backend: String::new(),
    };
    for &beta in &sz.merge_betas {
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            dynamics_betas(setup, &vec![beta; batch]),
        );
        let c = if adaptive(sz) {
            let mut c = Crossings::new(batch, target);
            c.see(0, 0.0, &(0..batch).map(|s| gap(&x0, s)).collect::<Vec<_>>());
            let chosen = attnflow::backend::build_dynamics(
                attnflow::config::BackendChoice::Reference,
                &model,
                shape,
                &x0,
            )?;
            let mut b: Box<dyn Backend> = chosen.backend;
            out.backend = b.describe();
            let opts = AdaptiveOptions {
                rtol: sz.merge_tol,
                atol: sz.merge_tol,
                ..AdaptiveOptions::default()
            };
            let mut stepper = AdaptiveStepper::new(&model, shape, Integrator::Dopri5, opts)?;
            stepper.prepare(b.as_mut())?;
            // Readings every merge_read_dt, READS_PER_ADVANCE of them per advance.
            let dt = sz.merge_read_dt;
            let mut j = 0usize;
            while !c.done() && stepper.time() < sz.merge_t_max {
                let outs: Vec<f64> = (j..j + READS_PER_ADVANCE)
                    .map(|i| ((i + 1) as f64 * dt).min(sz.merge_t_max))
                    .collect();
                let end = *outs.last().unwrap_or(&sz.merge_t_max);
                stepper.advance(b.as_mut(), end, &outs, &mut |k, x| {
                    finite(x, outs[k])?;
                    let gaps: Vec<f64> = (0..batch).map(|s| gap(x, s)).collect();
                    c.see(j + k + 1, outs[k], &gaps);
                    Ok(())
                })?;
                j += READS_PER_ADVANCE;
            }
            out.cost.add(adaptive_cost(&stepper));
            c
        } else {
            let mut c = Crossings::new(batch, target);
            let mut b = backend(setup, report, &model, shape, &x0)?;
            out.backend = b.describe();
            let stepper = attnflow::integrate::Stepper::new(&model, Integrator::Rk4)?;
            stepper.prepare(b.as_mut())?;
            let h = sz.merge_h;
            let gaps: Vec<f64> = (0..batch).map(|s| gap(&x0, s)).collect();
            c.see(0, 0.0, &gaps);
            let mut k = 0u32;
            while !c.done() && (k as f64) * h < sz.merge_t_max {
                stepper.step(b.as_mut(), h, k)?;
                k += 1;
                let x = b.read_state()?.to_f64();
                let t = k as f64 * h;
                finite(&x, t)?;
                let gaps: Vec<f64> = (0..batch).map(|s| gap(&x, s)).collect();
                c.see(k as usize, t, &gaps);
            }
            out.cost.add(Cost {
                field_evaluations: 4 * k as u64 * batch as u64,
                most_steps: k as u64,
                rejected_steps: 0,
            });
            c
        };
        setup.say(&format!(
            "beta = {beta}: merged at {:?}",
            c.fine.iter().step_by(2).collect::<Vec<_>>()
        ));
        out.times.push(c.fine.iter().step_by(2).copied().collect());
        out.narrow
            .push(c.fine.iter().skip(1).step_by(2).copied().collect());
        out.coarse
            .push(c.coarse.iter().step_by(2).copied().collect());
    }
    Ok(out)
}

/// The betas the dynamics sees: the mutation `half-beta` halves them.
pub fn dynamics_betas(setup: &Setup, betas: &[f64]) -> Vec<f64> {
    let scale = if setup.mutated("half-beta") { 0.5 } else { 1.0 };
    betas.iter().map(|b| scale * b).collect()
}
