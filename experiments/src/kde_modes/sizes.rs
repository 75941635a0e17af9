//! Sizes and parameters of `kde-modes` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Sample sizes: n iid uniform angles per draw.
    pub ns: Vec<usize>,
    /// Inverse squared bandwidths: a beta is used for a given n only inside the window
    /// n^c <= beta <= n^(2 - c).
    pub betas: Vec<f64>,
    /// The window's margin c.
    pub c: f64,
    /// Draws (seeds) per (n, beta).
    pub draws: usize,
    /// Grid points per bandwidth beta^(-1/2) on which the sign of f' is read (quick, seed 0:
    /// 16 and 64 give the same mean counts within 0.05 modes at every beta).
    pub grid_per_bandwidth: f64,
    /// A beta far below 1, where the estimate has one mode.
    pub beta_small: f64,
    /// The line (the seed's setting): sample sizes n of N(0, 1) samples, each at
    /// beta = n^line_beta_exponent (inside the theorem's window n^c <= beta <= n^(2 - c)).
    pub line_ns: Vec<usize>,
    pub line_beta_exponent: f64,
    /// The dense region of the line: expected samples per bandwidth at least this, where the
    /// central limit behind the Kac-Rice count is meant to hold.
    pub line_per_bandwidth: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                ns: vec![1000, 4000],
                betas: vec![8.0, 32.0, 128.0, 512.0, 2048.0, 8192.0],
                c: 0.25,
                draws: 40,
                grid_per_bandwidth: 16.0,
                beta_small: 0.01,
                line_ns: vec![1000, 4000, 16000],
                line_beta_exponent: 1.0,
                line_per_bandwidth: 4.0,
            }
        } else {
            Sizes {
                ns: vec![1000, 10000, 100000],
                betas: vec![
                    8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
                    16384.0, 65536.0,
                ],
                c: 0.25,
                draws: 64,
                grid_per_bandwidth: 24.0,
                beta_small: 0.01,
                line_ns: vec![1000, 4000, 16000, 64000, 256000],
                line_beta_exponent: 1.0,
                line_per_bandwidth: 4.0,
            }
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    counts("ns", 2, 16_777_216, "sample sizes"),
    reals("betas", 0.0, 1e9, true, "inverse squared bandwidths"),
    real(
        "c",
        0.0,
        0.99,
        false,
        "the window's margin: n^c <= beta <= n^(2 - c)",
    ),
    count("draws", 2, 100_000, "draws per (n, beta)"),
    real(
        "grid_per_bandwidth",
        2.0,
        1024.0,
        false,
        "grid points per bandwidth",
    ),
    real(
        "beta_small",
        0.0,
        1e3,
        true,
        "a beta far below 1, where the estimate has one mode",
    ),
    counts("line_ns", 2, 16_777_216, "sample sizes on the line"),
    real(
        "line_beta_exponent",
        0.0,
        2.0,
        true,
        "beta = n^line_beta_exponent on the line",
    ),
    real(
        "line_per_bandwidth",
        0.0,
        1e6,
        true,
        "expected samples per bandwidth at the edge of the line's dense region",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        for &n in &self.ns {
            array("kde-modes: the samples", &[("n", n)], 32)?;
        }
        let beta = self.betas.iter().copied().fold(self.beta_small, f64::max);
        let grid = (std::f64::consts::TAU * beta.sqrt() * self.grid_per_bandwidth).ceil();
        if grid.is_nan() || grid > 1e9 {
            return Err(refuse(format!(
                "kde-modes: a grid of {grid:e} points (2 pi sqrt(beta) grid_per_bandwidth at \
                 beta = {beta}) is more than 1e9; lower betas or grid_per_bandwidth"
            )));
        }
        array("kde-modes: the grid", &[("points", grid as usize)], 32)?;
        for &n in &self.line_ns {
            array("kde-modes: the line's samples", &[("n", n)], 32)?;
            // The grid spans the samples (|x| < 7 for n < 1e10) plus margins.
            let beta = (n as f64).powf(self.line_beta_exponent);
            let points = 16.0 * beta.sqrt() * self.grid_per_bandwidth;
            if points.is_nan() || points > 1e9 {
                return Err(refuse(format!(
                    "kde-modes: the line at n = {n} needs a grid of {points:e} points; lower \
                     line_ns, line_beta_exponent or grid_per_bandwidth"
                )));
            }
        }
        Ok(())
    }
}
