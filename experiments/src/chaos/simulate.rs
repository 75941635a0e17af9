//! The simulations of `chaos`: query trajectories in finite contexts (frozen vMF and evolving
//! uniform), and the infinite-context twins of the frozen ones.

use super::D;
use super::sizes::{Evolving, Frozen};
use crate::{Report, Setup};
use attnflow::attend::{LayerShape, derived_seed};
use attnflow::cfm::{Cfm, ContextMode};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::meanfield::{self, Adaptive, LawWeights, VmfLaw};
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// The same m queries in each of `seeds` systems.
fn queries(m: usize, seeds: usize, seed: u64) -> Result<(Vec<f64>, Vec<f64>)> {
    let z1 = InitSpec::Uniform.generate(Shape::new(1, m, D)?, Geometry::Sphere, seed)?;
    let z = (0..seeds).flat_map(|_| z1.iter().copied()).collect();
    Ok((z1, z))
}

/// Runs a contextual flow map for `steps` RK4 steps of size h and returns the queries at
/// every step (index 0 = the start).
#[allow(clippy::too_many_arguments)]
fn trajectory(
    setup: &Setup,
    report: &mut Report,
    beta: f64,
    shape: LayerShape,
    mode: ContextMode,
    z0: Vec<f64>,
    y0: Vec<f64>,
    h: f64,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let weights = setup.identity_weights(D, "repulsive-interaction");
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        weights,
        vec![beta; shape.batch],
    );
    let mut flow = Cfm::new(setup.backend, &model, shape, mode, z0, y0)?;
    if report.backend.is_none() {
        if let Some(note) = &flow.note {
            setup.say(&format!("note: {note}"));
        }
        report.backend = Some(flow.describe());
    }
    let mut silent = attnflow::run::Silent;
    let trajectory =
        attnflow::jobs::cfm::fixed_steps(&mut flow, Integrator::Rk4, h, steps, 1, &mut silent)?;
    Ok(trajectory.snapshots)
}

/// The queries of every n at every step: [n][step] = all queries of all contexts.
pub type Trajectories = Vec<Vec<Vec<f64>>>;

/// The frozen runs: the infinite-context twin of every query at every step ([step] = all
/// queries of all contexts), and the trajectories in finite contexts.
pub type FrozenRuns = (Vec<Vec<f64>>, Trajectories);

pub fn frozen(setup: &Setup, report: &mut Report, sz: &Frozen) -> Result<FrozenRuns> {
    let (m, seeds, steps) = (sz.m, sz.seeds, sz.steps());
    let times: Vec<f64> = (0..=steps).map(|k| k as f64 * sz.h).collect();
    let law = VmfLaw::new(vec![1.0, 0.0, 0.0], sz.kappa).map_err(attnflow::error::input)?;
    let (z1, z0) = queries(m, seeds, derived_seed(setup.seed, 0xC4A0))?;
    let starts: Vec<Vec<f64>> = z1.chunks(D).map(|c| c.to_vec()).collect();
    let twins = meanfield::integrate_infinite_cfm_many(
        &law,
        &LawWeights::identity(),
        sz.beta,
        &starts,
        &times,
        &Adaptive::uniform(1e-12),
    );
    // twin[k] = all queries of all contexts at time k.
    let twin_at: Vec<Vec<f64>> = (0..=steps)
        .map(|k| {
            let one: Vec<f64> = twins.iter().flat_map(|q| q[k].iter().copied()).collect();
            (0..seeds).flat_map(|_| one.iter().copied()).collect()
        })
        .collect();
    let context = InitSpec::Vmf {
        kappa: sz.kappa,
        mu: None,
    };
    let runs = Contexts {
        what: "frozen vMF",
        law: &context,
        seed_base: 0xF000,
        mode: ContextMode::Frozen,
        beta: sz.beta,
        h: sz.h,
        steps,
    };
    let trajs = runs.trajectories(setup, report, &sz.ns, m, seeds, &z0)?;
    Ok((twin_at, trajs))
}

/// Flow maps of the same queries in contexts of each size n drawn from `law` (context seeds
/// derived from `seed_base + n`): the trajectories [n][step].
struct Contexts<'a> {
    what: &'a str,
    law: &'a InitSpec,
    seed_base: u64,
    mode: ContextMode,
    beta: f64,
    h: f64,
    steps: usize,
}

impl Contexts<'_> {
    fn trajectories(
        &self,
        setup: &Setup,
        report: &mut Report,
        ns: &[usize],
        m: usize,
        seeds: usize,
        z0: &[f64],
    ) -> Result<Trajectories> {
        let mut trajs = Vec::new();
        for &n in ns {
            setup.say(&format!("{} context: n = {n}, {seeds} contexts", self.what));
            let y0 = self.law.generate(
                Shape::new(seeds, n, D)?,
                Geometry::Sphere,
                derived_seed(setup.seed, self.seed_base + n as u64),
            )?;
            let shape = LayerShape {
                batch: seeds,
                m,
                n,
                d: D,
            };
            trajs.push(trajectory(
                setup,
                report,
                self.beta,
                shape,
                self.mode,
                z0.to_vec(),
                y0,
                self.h,
                self.steps,
            )?);
        }
        Ok(trajs)
    }
}

/// The evolving runs: the queries' start (all contexts) and the trajectories [n][step].
pub fn evolving(
    setup: &Setup,
    report: &mut Report,
    sz: &Evolving,
) -> Result<(Vec<f64>, Trajectories)> {
    let (m, seeds) = (sz.m, sz.seeds);
    let (_, z0) = queries(m, seeds, derived_seed(setup.seed, 0xC4A1))?;
    let runs = Contexts {
        what: "evolving uniform",
        law: &InitSpec::Uniform,
        seed_base: 0xE000,
        mode: if setup.mutated("frozen-context") {
            ContextMode::Frozen
        } else {
            ContextMode::Evolving
        },
        beta: sz.beta,
        h: sz.h,
        steps: sz.steps(),
    };
    let trajs = runs.trajectories(setup, report, &sz.ns, m, seeds, &z0)?;
    Ok((z0, trajs))
}
