//! Sizes and physical parameters of `lost-in-the-middle` (each can be set with
//! `--set KEY=VALUE`, e.g. `--set lambda=1 --set beta=1 --set n=256`).

use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Inverse temperature (model time = the research's time times beta).
    pub beta: f64,
    /// The ALiBi slope.
    pub lambda: f64,
    /// RK4 step.
    pub h: f64,
    /// The observed depths (increasing; the right-end slope is followed across them).
    pub times: Vec<f64>,
    /// Prompt length N.
    pub n: usize,
    /// Independent prompts.
    pub prompts: usize,
    /// Smoothing window (positions) of the argmin.
    pub w: usize,
    /// Fourier modes measured (the critical time of each, and of their sum).
    pub modes: usize,
    /// Resolution M of the soft accuracy sum_k e^{-pi^2 k^2 / (2 M^2)} (mode k profile).
    pub soft_accuracy_m: f64,
    /// The right-end slope is fitted over the last end_window N positions.
    pub end_window: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (n, prompts) = if quick { (32, 256) } else { (256, 512) };
        Sizes {
            beta: 1.0,
            lambda: 2.0,
            h: 0.2,
            times: vec![1.0, 2.0, 2.4, 2.8, 3.2, 3.6, 4.0, 8.0],
            n,
            prompts,
            w: (n / 16).max(3),
            modes: 3,
            soft_accuracy_m: 8.0,
            end_window: 0.25,
        }
    }
}
