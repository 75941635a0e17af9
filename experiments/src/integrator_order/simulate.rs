//! The simulations of `integrator-order`: the state at T for every backend, integrator and
//! step size, and the true solution (DOP853 with error control, f64, on the host).

use super::sizes::Sizes;
use crate::Setup;
use attnflow::backend::reference;
use attnflow::config::BackendChoice;
use attnflow::error::Result;
use attnflow::integrate::adaptive::{Adaptive, Dop853, OdeField};
use attnflow::integrate::{Integrator, Stepper, Tableau};
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// The integrators with their theoretical orders.
pub const METHODS: [(Integrator, f64); 3] = [
    (Integrator::Euler, 1.0),
    (Integrator::Heun, 2.0),
    (Integrator::Rk4, 4.0),
];

/// The error curve of one backend and integrator: (h, max_i |x_i(T) - x_i^ref(T)|).
#[derive(Clone)]
pub struct Errors {
    pub backend: BackendChoice,
    pub integrator: Integrator,
    pub order: f64,
    pub points: Vec<(f64, f64)>,
}

/// The particle system's field (the reference backend's f64 field) as an [`OdeField`] for
/// the adaptive engine, with the model's own renormalisation: each token back on the unit
/// sphere after every accepted step (none in euclidean geometry), as the fixed-step engine does.
pub struct ParticleField<'a> {
    pub model: &'a Model,
    pub shape: Shape,
}

impl<'a> ParticleField<'a> {
    pub fn new(model: &'a Model, shape: Shape) -> Self {
        ParticleField { model, shape }
    }
}

impl OdeField for ParticleField<'_> {
    fn dim(&self) -> usize {
        self.shape.len()
    }
    fn velocity(&mut self, z: &[f64], out: &mut [f64]) {
        reference::field(self.model, self.shape, z, out);
    }
    fn renormalise(&self, z: &mut [f64]) {
        if self.model.geometry == Geometry::Sphere {
            attnflow::model::geometry::normalise_tokens(z, self.shape.d);
        }
    }
}

/// The true state at t_end: DOP853 at the given tolerance, from x0 (unit tokens).
pub fn truth(model: &Model, shape: Shape, x0: &[f64], t_end: f64, tol: f64) -> Vec<f64> {
    let mut field = ParticleField::new(model, shape);
    let mut engine = Dop853::new(shape.len(), &Adaptive::uniform(tol));
    engine.run(&mut field, x0, &[t_end]).remove(0)
}

/// The tableau a run uses: the integrator's own, or with a deliberate error (`--mutate`):
/// `rk4-wrong-a43` puts the fourth RK4 stage at x + h k3 / 2 instead of x + h k3 (the method
/// drops to order 1), `heun-wrong-weights` weighs Heun's stages 1/4, 3/4 instead of 1/2, 1/2
/// (order 1).
pub fn tableau(setup: &Setup, integrator: Integrator) -> Tableau {
    let mut t = integrator.tableau();
    match integrator {
        Integrator::Rk4 if setup.mutated("rk4-wrong-a43") => t.a[3][2] = 0.5,
        Integrator::Heun if setup.mutated("heun-wrong-weights") => t.b = vec![0.25, 0.75],
        _ => {}
    }
    t
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
    let evolve =
        |choice: BackendChoice, integrator: Integrator, steps: usize| -> Result<Vec<f64>> {
            let mut b = attnflow::backend::build_dynamics(choice, &model, shape, &x0)?.backend;
            let stepper =
                Stepper::new(&model, integrator)?.with_tableau(tableau(setup, integrator));
            stepper.prepare(b.as_mut())?;
            stepper.steps(b.as_mut(), t_end / steps as f64, 0..steps as u32)?;
            Ok(b.read_state()?.to_f64())
        };
    setup.say(&format!(
        "true solution: DOP853 at tolerance {:e} (f64)",
        sz.truth_tolerance
    ));
    let truth = truth(&model, shape, &x0, t_end, sz.truth_tolerance);
    let mut backends = vec![BackendChoice::Reference];
    let chosen = attnflow::backend::select(setup.backend)?.kind;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adaptive_truth_agrees_with_a_fine_rk4_run() {
        // 6 tokens on S^2 under SA with random weights: RK4 at h = 1/512 is ~1e-12 accurate,
        // DOP853 at 1e-13 as well; they agree to 1e-10, and tokens stay on the sphere.
        let shape = Shape::new(1, 6, 3).unwrap();
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Causal,
            Weights::random(3, 5),
            vec![2.0],
        );
        let x0 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 5)
            .unwrap();
        let t = truth(&model, shape, &x0, 1.0, 1e-13);
        let mut b = attnflow::backend::build_dynamics(BackendChoice::Reference, &model, shape, &x0)
            .unwrap()
            .backend;
        attnflow::run::integrate_steps(b.as_mut(), &model, Integrator::Rk4, 1.0 / 512.0, 512)
            .unwrap();
        let x = b.read_state().unwrap().to_f64();
        let err = x
            .iter()
            .zip(&t)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-10, "{err}");
        assert!(err > 0.0);
        for tok in t.chunks(3) {
            let r: f64 = tok.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((r - 1.0).abs() < 1e-9, "{r}");
        }
        // The moved state differs from the start: the field is not trivially zero.
        let moved = x0
            .iter()
            .zip(&t)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(moved > 1e-2, "{moved}");
    }
}
