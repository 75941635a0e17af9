//! Sizes and physical parameters of `phase-diagram` (the keys of `--set`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    pub n: usize,
    /// The dimensions: one below 64 (several metastable clusters at large beta) and one at
    /// least 64 (compared with the symmetric reduction).
    pub dims: Vec<usize>,
    pub t_end: f64,
    pub h: f64,
    /// Observe every this many steps (every 0.5 time units).
    pub observe_every: usize,
    /// Betas from beta_min to beta_max in equal steps.
    pub beta_count: usize,
    pub beta_min: f64,
    pub beta_max: f64,
    /// Starts per beta for each d (the low-d mean fraction is noisier, and cheaper).
    pub starts_by_d: Vec<usize>,
    /// A pair is close when <x_i, x_j> >= threshold (the rotf script's 0.999).
    pub threshold: f64,
    /// The d-scan of the finite-d offset: the betas from SLOPE_FROM that collapse at the
    /// high d are rerun at these dimensions (the same starts per beta), and the offset of
    /// ln t_c at the high d is extrapolated from them with the 1/d law.
    pub scan_dims: Vec<usize>,
    /// The layer map: ode (RK4 on the flow, the default) or post-ln (x <- normalise(x + h a),
    /// one Euler layer per step: the scheme of rotf's phase-diagrams.py, docs/peers.md).
    pub layer: attnflow::model::LayerMap,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (beta_count, starts_by_d) = if quick {
            (19, vec![8, 4])
        } else {
            (90, vec![32, 32])
        };
        Sizes {
            n: 32,
            dims: vec![8, 128],
            t_end: 30.0,
            h: 0.1,
            observe_every: 5,
            beta_count,
            beta_min: 0.1,
            beta_max: 9.0,
            starts_by_d,
            threshold: 0.999,
            scan_dims: vec![512],
            layer: attnflow::model::LayerMap::Ode,
        }
    }

    pub fn betas(&self) -> Vec<f64> {
        let (lo, hi) = (self.beta_min, self.beta_max);
        (0..self.beta_count)
            .map(|k| lo + (hi - lo) * k as f64 / (self.beta_count.max(2) - 1) as f64)
            .collect()
    }

    /// The observed steps (after step 0).
    pub fn at(&self) -> Vec<usize> {
        let steps = (self.t_end / self.h).round() as usize;
        (1..=steps)
            .filter(|s| s % self.observe_every == 0)
            .collect()
    }

    /// The observation times, 0 first.
    pub fn times(&self) -> Vec<f64> {
        std::iter::once(0.0)
            .chain(self.at().iter().map(|&s| s as f64 * self.h))
            .collect()
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("n", 2, 1_048_576, "tokens per system"),
    counts("dims", 2, 4096, "the dimensions: tokens on S^{d-1}"),
    real("t_end", 0.0, 1e6, true, "the final time"),
    real("h", 0.0, 1.0, true, "the step: positive, and at most 1"),
    count("observe_every", 1, 10_000_000, "steps between observations"),
    count("beta_count", 2, 10_000, "betas from beta_min to beta_max"),
    real("beta_min", 0.0, 1e3, false, "the smallest beta"),
    real("beta_max", 0.0, 1e3, false, "the largest beta"),
    counts(
        "starts_by_d",
        1,
        100_000,
        "starts per beta, one count per dimension",
    ),
    real(
        "threshold",
        0.0,
        1.0,
        true,
        "a pair is close when <x_i, x_j> >= threshold",
    ),
    counts(
        "scan_dims",
        2,
        4096,
        "the dimensions of the d-scan of the finite-d offset",
    ),
    Param {
        name: "layer",
        ty: Ty::Choice(&["ode", "post-ln", "pre-ln", "peri-ln", "ngpt"]),
        why: "the layer map",
    },
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.beta_min > self.beta_max {
            return Err(refuse(format!(
                "phase-diagram: beta_min = {} is above beta_max = {}",
                self.beta_min, self.beta_max
            )));
        }
        if self.threshold >= 1.0 {
            return Err(refuse(format!(
                "phase-diagram: threshold = {} must be below 1 (a cosine threshold in (0, 1))",
                self.threshold
            )));
        }
        if self.starts_by_d.len() != self.dims.len() {
            return Err(refuse(format!(
                "phase-diagram: starts_by_d has {} counts but dims has {} dimensions: give one \
                 count per dimension",
                self.starts_by_d.len(),
                self.dims.len()
            )));
        }
        let total = steps("phase-diagram: t_end / h", self.t_end, self.h)?;
        if self.observe_every > total {
            return Err(refuse(format!(
                "phase-diagram: observe_every = {} is more than the {total} steps of t_end / h",
                self.observe_every
            )));
        }
        let high = self.dims.iter().copied().max().unwrap_or(0);
        if let Some(&d) = self.scan_dims.iter().find(|&&d| d <= high) {
            return Err(refuse(format!(
                "phase-diagram: scan_dims = {:?}: each must be above the largest of dims ({high}), \
                 got {d}",
                self.scan_dims
            )));
        }
        for &d in &self.scan_dims {
            memory(
                &format!("phase-diagram: the d-scan at d = {d}"),
                self.beta_count
                    .saturating_mul(self.starts_by_d.iter().copied().max().unwrap_or(1)),
                self.n,
                d,
                1,
            )?;
        }
        for (&d, &starts) in self.dims.iter().zip(&self.starts_by_d) {
            memory(
                &format!("phase-diagram at d = {d}"),
                self.beta_count.saturating_mul(starts),
                self.n,
                d,
                1,
            )?;
        }
        Ok(())
    }
}
