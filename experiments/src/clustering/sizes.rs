//! Sizes and physical parameters of `clustering` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Tokens per system.
    pub n: usize,
    /// Dimension (tokens on S^{d-1}).
    pub d: usize,
    /// SA betas (one ensemble).
    pub betas_sa: Vec<f64>,
    /// USA betas (one run each: USA at large beta sits in metastable clusters far longer, its
    /// inter-cluster weights are e^{beta (cos - 1)} smaller, so it gets smaller betas).
    pub betas_usa: Vec<f64>,
    /// Final time.
    pub t_end: f64,
    /// RK4 step (USA runs use min(h, 0.25 e^-beta)).
    pub h: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                n: 48,
                d: 3,
                betas_sa: vec![0.5, 1.0, 2.0],
                betas_usa: vec![0.5, 1.0],
                t_end: 30.0,
                h: 0.05,
            }
        } else {
            Sizes {
                n: 2048,
                d: 3,
                betas_sa: vec![0.25, 0.5, 1.0, 2.0],
                betas_usa: vec![0.5, 1.0, 2.0],
                t_end: 80.0,
                h: 0.05,
            }
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("n", 2, 4_194_304, "tokens per system"),
    count("d", 2, 4096, "the dimension: tokens on S^{d-1}"),
    reals(
        "betas_sa",
        0.0,
        1e3,
        false,
        "inverse temperatures of the SA ensemble",
    ),
    reals(
        "betas_usa",
        0.0,
        50.0,
        false,
        "inverse temperatures of the USA runs, each stepping at min(h, 0.25 e^-beta)",
    ),
    real("t_end", 0.0, 1e6, true, "the final time"),
    real(
        "h",
        0.0,
        1.0,
        true,
        "the RK4 step: positive, and at most 1 for RK4 to follow the flow",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        let batch = self.betas_sa.len().max(1);
        memory("clustering: the SA ensemble", batch, self.n, self.d, 1)?;
        steps("clustering: t_end / h", self.t_end, self.h)?;
        for &b in &self.betas_usa {
            steps(
                &format!(
                    "clustering: betas_usa holds {b}, whose USA run steps at min(h, 0.25 e^-beta)"
                ),
                self.t_end,
                self.h.min(0.25 * f64::exp(-b)),
            )?;
        }
        Ok(())
    }
}
