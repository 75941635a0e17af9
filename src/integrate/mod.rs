//! Explicit Runge-Kutta integration (docs/model.md §2): Butcher tableaux as data, and one
//! stepping engine ([`Stepper`]) that drives any backend through [`Backend`]; and one stiff
//! method, [`rosenbrock`] (ros23, on the f64 reference field).

pub mod adaptive;
pub mod rosenbrock;
mod stepper;
pub mod tableau;

pub use adaptive::{AdaptiveStepper, Options as AdaptiveOptions};
pub use stepper::{Stepper, check_noise};
pub use tableau::{Integrator, Pair, Tableau};

// The interface the engine drives and the noise draws it hands to a step, defined with the
// backends that implement them (so that backend::traits needs nothing from here).
pub use crate::backend::traits::{Backend, DeviceUsage, NoiseStep, Slot, Tokens};
