//! Sizes and physical parameters of `metastability` (the keys of `--set`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes, the step-size rule, the observation times, and the merge-law
/// systems (two tight clusters on the circle).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    pub n: usize,
    pub d: usize,
    pub betas: Vec<f64>,
    /// Starts per beta (the same starts for every beta).
    pub replicates: usize,
    pub t_end: f64,
    /// Steps: h = clamp(h_rel t, h_min, h_max). The fast phase grows at rate <= 2/e and the
    /// clusters then contract at rate 1 (SA linearised at a cluster), well inside RK4's
    /// stability bound 2.78 at h = 2 (|R(-2)| = 1/3); a run with h_max = 0.25, 0.02 t gave the
    /// same energies to 4 digits and the same cluster counts.
    pub h_min: f64,
    pub h_max: f64,
    pub h_rel: f64,
    /// Observations per decade of t, from t_first on.
    pub per_decade: usize,
    pub t_first: f64,
    /// Merge law: tokens per system (two clusters of merge_n / 2 on the circle).
    pub merge_n: usize,
    /// The angle between the two clusters' centres at t = 0 (radians).
    pub merge_phi0: f64,
    /// Half-width of each cluster at t = 0 (radians; tokens drawn uniformly within it).
    pub merge_spread: f64,
    /// One system per beta.
    pub merge_betas: Vec<f64>,
    /// RK4 step of the merge systems (the clusters contract at rate about 1).
    pub merge_h: f64,
    /// Give up after this time (a system not merged by then fails the merge law).
    pub merge_t_max: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (n, betas, replicates, t_end) = if quick {
            (
                256usize,
                vec![4.0f64, 9.0, 16.0, 25.0, 36.0, 64.0, 100.0],
                2,
                3000.0f64,
            )
        } else {
            (
                1024,
                vec![4.0, 9.0, 16.0, 25.0, 36.0, 64.0, 100.0, 144.0],
                4,
                1e4,
            )
        };
        Sizes {
            n,
            d: 2,
            betas,
            replicates,
            t_end,
            h_min: 0.05,
            h_max: 2.0,
            h_rel: 0.1,
            per_decade: 20,
            t_first: 1.0,
            merge_n: 8,
            merge_phi0: 1.2,
            merge_spread: 0.02,
            merge_betas: vec![8.0, 10.0, 12.0, 14.0, 16.0],
            merge_h: 0.25,
            merge_t_max: 1e4,
        }
    }

    /// The observation times: 0, then `per_decade` per decade from t_first to t_end.
    pub fn times(&self) -> Vec<f64> {
        let (t_first, t_end) = (self.t_first, self.t_end);
        let decades = (t_end / t_first).log10();
        let count = (decades * self.per_decade as f64).round() as usize;
        let mut times = vec![0.0];
        times
            .extend((0..=count).map(|k| t_first * (t_end / t_first).powf(k as f64 / count as f64)));
        times
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("n", 2, 4_194_304, "tokens per system"),
    count("d", 2, 4096, "the dimension: tokens on S^{d-1}"),
    reals("betas", 0.0, 1e4, false, "inverse temperatures"),
    count("replicates", 1, 100_000, "starts per beta"),
    real("t_end", 0.0, 1e7, true, "the final time"),
    real(
        "h_min",
        0.0,
        10.0,
        true,
        "the smallest step of h = clamp(h_rel t, h_min, h_max)",
    ),
    real(
        "h_max",
        0.0,
        10.0,
        true,
        "the largest step (RK4 is stable up to about 2.78 at rate 1)",
    ),
    real(
        "h_rel",
        0.0,
        10.0,
        true,
        "the step relative to the time reached",
    ),
    count("per_decade", 1, 1000, "observations per decade of t"),
    real(
        "t_first",
        0.0,
        1e7,
        true,
        "the first observation time after 0",
    ),
    count(
        "merge_n",
        2,
        65_536,
        "tokens per merge system (two clusters of merge_n / 2)",
    ),
    real(
        "merge_phi0",
        0.0,
        std::f64::consts::PI,
        true,
        "the angle between the two clusters (radians)",
    ),
    real(
        "merge_spread",
        0.0,
        1.0,
        false,
        "the half-width of each cluster (radians)",
    ),
    reals(
        "merge_betas",
        0.0,
        1e3,
        false,
        "inverse temperatures of the merge systems",
    ),
    real(
        "merge_h",
        0.0,
        10.0,
        true,
        "the RK4 step of the merge systems",
    ),
    real(
        "merge_t_max",
        0.0,
        1e7,
        true,
        "the time after which a merge system gives up",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.h_min > self.h_max {
            return Err(refuse(format!(
                "metastability: h_min = {} is above h_max = {}: the step is clamp(h_rel t, h_min, h_max)",
                self.h_min, self.h_max
            )));
        }
        if self.t_first >= self.t_end {
            return Err(refuse(format!(
                "metastability: t_first = {} must be below t_end = {}",
                self.t_first, self.t_end
            )));
        }
        if !self.merge_n.is_multiple_of(2) {
            return Err(refuse(format!(
                "metastability: merge_n = {} must be even (two clusters of merge_n / 2)",
                self.merge_n
            )));
        }
        let batch = self.betas.len().saturating_mul(self.replicates);
        memory("metastability: the runs", batch, self.n, self.d, 1)?;
        steps("metastability: t_end / h_min", self.t_end, self.h_min)?;
        steps(
            "metastability: merge_t_max / merge_h",
            self.merge_t_max,
            self.merge_h,
        )?;
        Ok(())
    }
}
