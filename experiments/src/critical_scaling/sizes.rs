//! Sizes and physical parameters of `critical-scaling` (each one a `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Which token models run: "simplex" (the paper's: n unit tokens with pairwise cosine
    /// exactly c0, in d = n + 1) and/or "random" (random directions in d = `random_d`).
    pub models: Vec<String>,
    /// The initial pairwise cosines.
    pub c0: Vec<f64>,
    /// Token counts of the simplex (each runs in d = n + 1).
    pub simplex_n: Vec<usize>,
    /// Dimension of the random-direction case.
    pub random_d: usize,
    /// Token counts of the random-direction case.
    pub random_n: Vec<usize>,
    /// Queries of the random-direction runs (the first tokens attend to all n).
    pub random_queries: usize,
    /// The coarse grid of gamma: 0, gamma_step, ..., gamma_max.
    pub gamma_max: f64,
    pub gamma_step: f64,
    /// Points of the fine grid inside the coarse bracket of each simplex crossing.
    pub fine_points: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                models: vec!["simplex".into(), "random".into()],
                c0: vec![0.2, 0.4, 0.6],
                simplex_n: vec![128, 512, 2048],
                random_d: 64,
                random_n: vec![256, 1024, 4096],
                random_queries: 128,
                gamma_max: 4.0,
                gamma_step: 0.1,
                fine_points: 21,
            }
        } else {
            Sizes {
                models: vec!["simplex".into(), "random".into()],
                c0: vec![0.1, 0.2, 0.4, 0.6, 0.75],
                simplex_n: vec![128, 512, 2048, 8192],
                random_d: 64,
                random_n: vec![1000, 10_000, 100_000, 1_000_000],
                random_queries: 256,
                gamma_max: 6.0,
                gamma_step: 0.1,
                fine_points: 41,
            }
        }
    }

    /// gamma = 0 (uniform attention: the collapsed end of every curve) first.
    pub fn gammas(&self) -> Vec<f64> {
        let k = (self.gamma_max / self.gamma_step).round() as usize;
        (0..=k).map(|i| self.gamma_step * i as f64).collect()
    }

    pub fn runs(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    Param {
        name: "models",
        ty: Ty::Choices(&["simplex", "random"]),
        why: "which token models run",
    },
    reals(
        "c0",
        0.0,
        0.99,
        false,
        "initial pairwise cosines, in [0, 1)",
    ),
    counts(
        "simplex_n",
        2,
        16_384,
        "token counts of the simplex, each in d = n + 1 (n^2 values)",
    ),
    count(
        "random_d",
        3,
        4096,
        "the dimension of the random-direction case",
    ),
    counts(
        "random_n",
        2,
        16_777_216,
        "token counts of the random-direction case",
    ),
    count(
        "random_queries",
        1,
        1_048_576,
        "queries of the random-direction runs",
    ),
    real(
        "gamma_max",
        0.0,
        100.0,
        true,
        "the end of the coarse gamma grid",
    ),
    real(
        "gamma_step",
        0.0,
        100.0,
        true,
        "the spacing of the coarse gamma grid",
    ),
    count("fine_points", 2, 10_000, "points of each fine grid"),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        let smallest = self.random_n.iter().copied().min().unwrap_or(0);
        if self.runs("random") && self.random_queries > smallest {
            return Err(refuse(format!(
                "critical-scaling: random_queries = {} is more than the smallest random_n = \
                 {smallest} (the queries are the first tokens)",
                self.random_queries
            )));
        }
        steps(
            "critical-scaling: gamma_max / gamma_step",
            self.gamma_max,
            self.gamma_step,
        )?;
        for &n in &self.simplex_n {
            array(
                "critical-scaling: the simplex",
                &[("n", n), ("d = n + 1", n + 1)],
                16,
            )?;
        }
        for &n in &self.random_n {
            array(
                "critical-scaling: the random directions",
                &[("random_n", n), ("random_d", self.random_d)],
                32,
            )?;
        }
        Ok(())
    }
}
