//! Sizes and physical parameters of `lost-in-the-middle` (each can be set with
//! `--set KEY=VALUE`, e.g. `--set lambda=1 --set beta=1 --set n=256`).

use crate::params::*;
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

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    real("beta", 0.0, 100.0, false, "the inverse temperature"),
    real("lambda", 0.0, 1e3, false, "the ALiBi slope"),
    real("h", 0.0, 1.0, true, "the RK4 step"),
    reals("times", 0.0, 1e4, true, "the observed depths, increasing"),
    count(
        "n",
        8,
        4096,
        "the prompt length N (a prompt runs as N systems of N tokens)",
    ),
    count("prompts", 1, 100_000, "independent prompts"),
    count(
        "w",
        1,
        4096,
        "the smoothing window of the argmin, at most n",
    ),
    count("modes", 1, 4096, "Fourier modes measured, at most n"),
    real(
        "soft_accuracy_m",
        0.0,
        1e3,
        true,
        "the resolution M of the soft accuracy",
    ),
    real(
        "end_window",
        0.0,
        1.0,
        true,
        "the fraction of positions of the right-end fit",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.times.windows(2).any(|t| t[0] >= t[1]) {
            return Err(refuse(format!(
                "lost-in-the-middle: times must increase, got {:?}",
                self.times
            )));
        }
        if self.w > self.n || self.modes > self.n {
            return Err(refuse(format!(
                "lost-in-the-middle: w = {} and modes = {} must be at most n = {}",
                self.w, self.modes, self.n
            )));
        }
        let last = self.times.last().copied().unwrap_or(0.0);
        steps("lost-in-the-middle: the last time / h", last, self.h)?;
        memory(
            "lost-in-the-middle: the perturbed prompts",
            self.prompts.saturating_mul(self.n),
            self.n,
            2,
            1,
        )?;
        Ok(())
    }
}
