//! Sizes and physical parameters of `integrator-order` (each can be set with `--set KEY=VALUE`).

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
