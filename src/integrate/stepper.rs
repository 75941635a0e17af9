//! The one fixed-step engine: a tableau, the renormalisation the model's geometry asks for,
//! and the model's noise (Euler-Maruyama, docs/model.md §2-3). Every caller that advances a
//! particle system (run, experiments, bench, tests, examples) goes through [`Stepper`].

use super::{Backend, Integrator, NoiseStep, Slot, Tableau};
use crate::error::{Result, input};
use crate::model::{Model, Noise};

/// The rule of noisy runs: noise is integrated by Euler-Maruyama, so it needs Euler.
pub fn check_noise(integrator: Integrator, sigma: f64) -> Result<()> {
    if sigma > 0.0 && integrator != Integrator::Euler {
        return Err(input(
            "noise is integrated by Euler-Maruyama: add --integrator euler",
        ));
    }
    Ok(())
}

/// Advances a backend's state one step at a time.
#[derive(Clone, Debug)]
pub struct Stepper {
    tableau: Tableau,
    renormalise: bool,
    noise: Option<Noise>,
}

impl Stepper {
    /// The stepper of a model: tokens renormalised on the sphere, the model's noise drawn.
    pub fn new(model: &Model, integrator: Integrator) -> Result<Self> {
        if integrator.is_adaptive() {
            return Err(input(format!(
                "--integrator {} steps adaptively, and this job takes fixed steps: use euler, \
                 heun or rk4 here",
                integrator.name()
            )));
        }
        check_noise(integrator, model.noise.as_ref().map_or(0.0, |n| n.sigma))?;
        if !model.layer.is_ode() && integrator != Integrator::Euler {
            return Err(input(format!(
                "--layer {} is one residual update per layer, {}: add --integrator euler",
                model.layer.name(),
                model.layer.rule()
            )));
        }
        Ok(Stepper {
            tableau: integrator.tableau(),
            renormalise: model.renormalises(),
            noise: model.noise,
        })
    }

    /// The same stepper with another tableau (an experiment's deliberately wrong method).
    pub fn with_tableau(self, tableau: Tableau) -> Self {
        Stepper { tableau, ..self }
    }

    pub fn tableau(&self) -> &Tableau {
        &self.tableau
    }

    /// Makes room in the backend for the tableau's stages; call once before stepping.
    pub fn prepare(&self, backend: &mut dyn Backend) -> Result<()> {
        backend.prepare(self.tableau.stages())
    }

    /// Advances the state by step number `layer` (from 0; random models redraw their weights
    /// and the noise its draws by it) of size h.
    pub fn step(&self, backend: &mut dyn Backend, h: f64, layer: u32) -> Result<()> {
        let tableau = &self.tableau;
        backend.begin_step(layer)?;
        let mut terms = Vec::with_capacity(tableau.stages());
        for s in 0..tableau.stages() {
            let input = if s == 0 {
                Slot::State
            } else {
                terms.clear();
                terms.extend(
                    tableau.a[s]
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| **a != 0.0)
                        .map(|(j, a)| (j, h * a)),
                );
                backend.combine(Slot::Stage, &terms, false, None)?;
                Slot::Stage
            };
            backend.field(input, s)?;
        }
        terms.clear();
        terms.extend(
            tableau
                .b
                .iter()
                .enumerate()
                .filter(|(_, b)| **b != 0.0)
                .map(|(j, b)| (j, h * b)),
        );
        let noise = self.noise.as_ref().map(|n| NoiseStep {
            amplitude: n.sigma * h.sqrt(),
            common: n.common,
            seed: n.seed,
            step: layer,
        });
        backend.combine(Slot::State, &terms, self.renormalise, noise)
    }

    /// Steps `layers` (e.g. 0..steps) of size h.
    pub fn steps(
        &self,
        backend: &mut dyn Backend,
        h: f64,
        layers: std::ops::Range<u32>,
    ) -> Result<()> {
        for layer in layers {
            self.step(backend, h, layer)?;
        }
        Ok(())
    }
}
