//! What a run reports while and after it runs: the progress callbacks, why it stopped, its
//! summary and its pair count. A leaf of `jobs`, shared by the fixed-step and the adaptive
//! runs (`jobs::run` re-exports it).

use std::path::PathBuf;

use crate::config::BackendChoice;
use crate::model::observables::Metrics;
use crate::model::{Mask, Model, Shape};

/// Progress callbacks (the CLI draws a bar; the library prints nothing).
pub trait Progress {
    fn start(&mut self, _total_steps: u64) {}
    fn step(&mut self, _done: u64) {}
    fn finish(&mut self) {}
    /// A stop that was asked for (the CLI's SIGINT or SIGTERM): the run finishes the step in
    /// progress, writes complete files for it and returns.
    fn interrupted(&self) -> Option<Interrupt> {
        None
    }
}

/// Why a run stopped before its last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM.
    Term,
}

impl Interrupt {
    /// The exit code of a process stopped by this signal (128 + its number).
    pub fn exit_code(self) -> i32 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
        }
    }
}

/// No progress display.
pub struct Silent;
impl Progress for Silent {}

/// Pair interactions in one evaluation of the vector field: batch * sum_i |J(i)|.
pub fn pairs_per_eval(model: &Model, shape: Shape) -> f64 {
    let n = shape.n as f64;
    let per_system = match model.mask {
        Mask::Full => n * n,
        Mask::Causal => n * (n + 1.0) / 2.0,
    };
    per_system * shape.batch as f64 * model.head_count() as f64
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub backend: String,
    pub kind: BackendChoice,
    pub note: Option<String>,
    pub elapsed_s: f64,
    /// Pair interactions per second over the whole run (observables excluded).
    pub pairs_per_second: f64,
    /// Seconds the dynamics took (steps and the checks of the state), and the observables
    /// (every metrics.csv row, the initial one included).
    pub dynamics_s: f64,
    pub metrics_s: f64,
    /// The step the run started from (0, or the step a resumed run continued), the steps
    /// done (an adaptive run: the ensemble's step attempts), and why the run stopped before
    /// its last one, if it did.
    pub start_step: usize,
    pub steps_done: usize,
    /// The time reached (an adaptive ensemble stopped early: its slowest system's).
    pub t_done: f64,
    pub interrupted: Option<Interrupt>,
    pub initial: Vec<Metrics>,
    pub last: Vec<Metrics>,
    pub files: Vec<PathBuf>,
}
