//! Sizes and physical parameters of `clustering` (each can be set with `--set KEY=VALUE`).

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
