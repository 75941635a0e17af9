//! The simulations of `integrator-order`: the state at T for every backend, integrator and
//! step size, and the f64 reference solution.

use super::sizes::Sizes;
use crate::config::BackendChoice;
use crate::error::Result;
use crate::experiments::Setup;
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

/// The integrators with their theoretical orders.
pub const METHODS: [(Integrator, f64); 3] = [
    (Integrator::Euler, 1.0),
    (Integrator::Heun, 2.0),
    (Integrator::Rk4, 4.0),
];

/// The error curve of one backend and integrator: (h, max_i |x_i(T) - x_i^ref(T)|).
pub struct Errors {
    pub backend: BackendChoice,
    pub integrator: Integrator,
    pub order: f64,
    pub points: Vec<(f64, f64)>,
}

/// The errors of every backend (reference f64 first, then the chosen one if it differs) and
/// integrator at every step size, and the name of the chosen backend.
pub fn errors(setup: &Setup, sz: &Sizes) -> Result<(Vec<Errors>, BackendChoice)> {
    let (n, d, t_end) = (sz.n, sz.d, sz.t_end);
    let shape = Shape::new(1, n, d)?;
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Causal,
        Weights::random(d, setup.seed),
        vec![sz.beta],
    );
    let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, setup.seed)?;
    let evolve = |choice: BackendChoice,
                  integrator: Integrator,
                  steps: usize|
     -> Result<Vec<f64>> {
        let mut b = crate::backend::build_dynamics(choice, &model, shape, &x0)?.backend;
        crate::run::integrate_steps(b.as_mut(), &model, integrator, t_end / steps as f64, steps)?;
        Ok(b.read_state()?.to_f64())
    };
    let reference_steps = sz.reference_steps();
    setup.say(&format!(
        "reference solution: RK4 with {reference_steps} steps (f64)"
    ));
    let truth = evolve(BackendChoice::Reference, Integrator::Rk4, reference_steps)?;
    let mut backends = vec![BackendChoice::Reference];
    let chosen = crate::backend::select(setup.backend)?.kind;
    if chosen != BackendChoice::Reference {
        backends.push(chosen);
    }
    let mut out = Vec::new();
    for &choice in &backends {
        for (integrator, order) in METHODS {
            let mut points = Vec::new();
            for &s in &sz.steps {
                let x = evolve(choice, integrator, s)?;
                let err = x
                    .iter()
                    .zip(&truth)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                points.push((t_end / s as f64, err));
            }
            out.push(Errors {
                backend: choice,
                integrator,
                order,
                points,
            });
        }
    }
    Ok((out, chosen))
}
