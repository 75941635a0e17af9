//! Sizes and physical parameters of `integrator-order` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Tokens.
    pub n: usize,
    /// Dimension (tokens on S^{d-1}).
    pub d: usize,
    /// The time at which the error is measured.
    pub t_end: f64,
    /// Step counts of the tested runs (h = t_end / steps).
    pub steps: Vec<usize>,
    pub beta: f64,
    /// Tolerance (rtol = atol) of the DOP853 run that gives the true solution.
    pub truth_tolerance: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (n, d) = if quick { (32, 3) } else { (512, 16) };
        Sizes {
            n,
            d,
            t_end: 1.0,
            steps: vec![8, 16, 32, 64, 128],
            beta: 2.0,
            truth_tolerance: 1e-13,
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("n", 2, 1_048_576, "tokens"),
    count("d", 2, 4096, "the dimension: tokens on S^{d-1}"),
    real(
        "t_end",
        0.0,
        100.0,
        true,
        "the time at which the error is measured",
    ),
    counts(
        "steps",
        1,
        10_000_000,
        "step counts of the tested runs (h = t_end / steps)",
    ),
    real("beta", 0.0, 100.0, false, "the inverse temperature"),
    real(
        "truth_tolerance",
        1e-13,
        1e-2,
        false,
        "DOP853's tolerance for the true solution: below 1e-13 f64 cannot meet it",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        let mut distinct = self.steps.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 {
            return Err(refuse(format!(
                "integrator-order: steps = {:?}: an order is fitted from at least two distinct \
                 step counts",
                self.steps
            )));
        }
        memory("integrator-order", 1, self.n, self.d, 1)?;
        Ok(())
    }
}
