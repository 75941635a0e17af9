//! Explicit Runge-Kutta integration (docs/model.md §2): Butcher tableaux as data, and one
//! stepping engine ([`Stepper`]) that drives any backend through [`Backend`].

pub mod adaptive;
mod stepper;
pub mod tableau;

pub use stepper::{Stepper, check_noise};
pub use tableau::{Integrator, Tableau};

pub use crate::backend::traits::{Backend, DeviceUsage, Slot, Tokens};

/// The noise term of one Euler-Maruyama step: amplitude sigma sqrt(h) times standard normal
/// draws (docs/model.md §3), keyed by (seed, step) so every backend draws the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseStep {
    pub amplitude: f64,
    pub common: bool,
    pub seed: u64,
    pub step: u32,
}

impl NoiseStep {
    /// The standard normal for coordinate c of token i of system b.
    pub fn draw(&self, b: usize, i: usize, d: usize, c: usize) -> f64 {
        use crate::model::rng::{Stream, normal};
        if self.common {
            normal(
                self.seed,
                Stream::CommonNoise,
                self.step,
                b as u32,
                c as u32,
            )
        } else {
            normal(
                self.seed,
                Stream::Noise,
                self.step,
                b as u32,
                (i * d + c) as u32,
            )
        }
    }
}
