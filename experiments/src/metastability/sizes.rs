//! Sizes and physical parameters of `metastability` (the keys of `--set`).

use crate::params::*;

/// The step dopri5 settles at on clustered tokens (stability bound at the contraction rate
/// 1, measured largest step 4.3, docs/adaptive.md), rounded down: the step-count guard.
pub const ADAPTIVE_STEP: f64 = 3.0;
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
    /// `dopri5` (adaptive, the default: each system its own steps, outputs by the dense
    /// output) or `rk4` (the fixed-step version the study ran before, kept for comparison).
    pub integrator: String,
    /// Tolerances of dopri5 on the observation run (the f32 backends refuse rtol < 1e-6).
    pub rtol: f64,
    pub atol: f64,
    /// rk4 steps: h = clamp(h_rel t, h_min, h_max). The fast phase grows at rate <= 2/e and the
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
    /// Independent draws of the merge systems (the tokens within each cluster and the
    /// rotation): the standard error of the merge slope is resampled over them.
    pub merge_replicates: usize,
    /// Tolerance (rtol = atol) of dopri5 on the merge systems (always the f64 reference
    /// backend: the weight e^{-beta (1 - cos phi)} one cluster puts on the other falls below
    /// f32's resolution at beta (1 - cos phi) ~ 16).
    pub merge_tol: f64,
    /// The interval at which dopri5's dense output reads the gap (the merge time is
    /// interpolated linearly in t between readings). A merge takes a window of about
    /// (1 + e^{beta (1 - cos(phi0 / 2))}) / (2 sin(phi0 / 2)) around the crossing (16 at beta
    /// 16, 120 at beta 28), so a reading on a log grid (a fixed fraction of t) would straddle
    /// the whole merge at large beta.
    pub merge_read_dt: f64,
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
                vec![4.0f64, 9.0, 16.0, 25.0, 36.0, 64.0, 100.0, 144.0],
                2,
                1e4f64,
            )
        } else {
            (
                1024,
                vec![4.0, 9.0, 16.0, 25.0, 36.0, 64.0, 100.0, 144.0, 196.0],
                4,
                3e4,
            )
        };
        let (merge_betas, merge_replicates, merge_t_max) = if quick {
            (vec![4.0f64, 8.0, 12.0, 16.0, 20.0], 4usize, 1e5f64)
        } else {
            (
                vec![
                    4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0,
                ],
                8,
                2e6,
            )
        };
        Sizes {
            n,
            d: 2,
            betas,
            replicates,
            t_end,
            integrator: "dopri5".into(),
            rtol: 1e-6,
            atol: 1e-7,
            h_min: 0.05,
            h_max: 2.0,
            h_rel: 0.1,
            per_decade: 20,
            t_first: 1.0,
            merge_n: 8,
            merge_phi0: 1.2,
            merge_spread: 0.02,
            merge_betas,
            merge_replicates,
            merge_tol: 1e-8,
            merge_read_dt: 0.25,
            merge_h: 0.25,
            merge_t_max,
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
    Param {
        name: "integrator",
        ty: Ty::Choice(&["dopri5", "rk4"]),
        why: "adaptive dopri5, or the fixed-step rk4 of h = clamp(h_rel t, h_min, h_max)",
    },
    real(
        "rtol",
        0.0,
        1e-2,
        true,
        "dopri5's relative tolerance (at least 1e-6 on the f32 backends)",
    ),
    real("atol", 0.0, 1e-2, true, "dopri5's absolute tolerance"),
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
    count(
        "merge_replicates",
        2,
        1000,
        "independent draws of the merge systems (the slope's standard error)",
    ),
    real(
        "merge_tol",
        0.0,
        1e-3,
        true,
        "dopri5's rtol = atol on the merge systems (f64)",
    ),
    real(
        "merge_read_dt",
        0.0,
        1e3,
        true,
        "the interval at which a merge system's gap is read",
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
        let merge_batch = self
            .merge_betas
            .len()
            .saturating_mul(self.merge_replicates)
            .saturating_mul(2);
        memory(
            "metastability: the merge systems",
            merge_batch,
            self.merge_n,
            2,
            1,
        )?;
        if self.integrator == "rk4" {
            steps("metastability: t_end / h_min", self.t_end, self.h_min)?;
            steps(
                "metastability: merge_t_max / merge_h",
                self.merge_t_max,
                self.merge_h,
            )?;
        } else {
            // dopri5 steps at most about ADAPTIVE_STEP once clustered (its stability bound at
            // the contraction rate 1; measured 4.3): a guard against hours-long runs.
            steps(
                "metastability: t_end / dopri5's step",
                self.t_end,
                ADAPTIVE_STEP,
            )?;
            steps(
                "metastability: merge_t_max / dopri5's step",
                self.merge_t_max,
                ADAPTIVE_STEP,
            )?;
            steps(
                "metastability: merge_t_max / merge_read_dt",
                self.merge_t_max,
                self.merge_read_dt,
            )?;
        }
        Ok(())
    }
}
