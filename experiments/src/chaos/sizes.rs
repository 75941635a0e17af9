//! Sizes and physical parameters of `chaos`: one flat set of keys (`--set frozen_n=1000,2000`),
//! read by the frozen and the evolving parts through [`Frozen`] and [`Evolving`].

use crate::params::*;
use serde::{Deserialize, Serialize};

/// Every parameter of the experiment (the keys of `--set`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Concentration of the frozen vMF(e_1, kappa) context.
    pub frozen_kappa: f64,
    pub frozen_beta: f64,
    pub frozen_t_end: f64,
    /// Queries (the same in every context).
    pub frozen_m: usize,
    /// Independent contexts per n.
    pub frozen_seeds: usize,
    pub frozen_n: Vec<usize>,
    pub frozen_h: f64,
    pub evolving_beta: f64,
    pub evolving_t_end: f64,
    /// The depth at which distances are compared across n.
    pub evolving_t_fit: f64,
    /// The query speed's exponential rate is fitted over t in [this, evolving_t_end].
    pub evolving_rate_from: f64,
    pub evolving_h: f64,
    pub evolving_m: usize,
    pub evolving_seeds: usize,
    /// The largest is the reference; only n <= largest / 8 enter the fit against it.
    pub evolving_n: Vec<usize>,
}

/// The frozen vMF context.
#[derive(Clone, Debug, Serialize)]
pub struct Frozen {
    pub kappa: f64,
    pub beta: f64,
    pub t_end: f64,
    pub m: usize,
    pub seeds: usize,
    pub ns: Vec<usize>,
    pub h: f64,
}

/// The evolving uniform context.
#[derive(Clone, Debug, Serialize)]
pub struct Evolving {
    pub beta: f64,
    pub t_end: f64,
    pub t_fit: f64,
    pub rate_from: f64,
    pub h: f64,
    pub m: usize,
    pub seeds: usize,
    pub ns: Vec<usize>,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (frozen_seeds, frozen_n, frozen_h): (usize, Vec<usize>, f64) = if quick {
            (24, (0..6).map(|k| 1000 << k).collect(), 0.1)
        } else {
            (16, (0..11).map(|k| 1000 << k).collect(), 0.05)
        };
        // RK4 at h = 0.2 gives the quick distances and rates of h = 0.1 to 3 digits.
        let (evolving_seeds, evolving_n, evolving_h): (usize, Vec<usize>, f64) = if quick {
            (24, (0..7).map(|k| 32 << k).collect(), 0.2)
        } else {
            (32, (0..9).map(|k| 64 << k).collect(), 0.1)
        };
        Sizes {
            frozen_kappa: 1.0,
            frozen_beta: 2.0,
            frozen_t_end: 4.0,
            frozen_m: 16,
            frozen_seeds,
            frozen_n,
            frozen_h,
            evolving_beta: 1.0,
            evolving_t_end: 4.0,
            evolving_t_fit: 1.0,
            evolving_rate_from: 1.0,
            evolving_h,
            evolving_m: 16,
            evolving_seeds,
            evolving_n,
        }
    }

    pub fn frozen(&self) -> Frozen {
        Frozen {
            kappa: self.frozen_kappa,
            beta: self.frozen_beta,
            t_end: self.frozen_t_end,
            m: self.frozen_m,
            seeds: self.frozen_seeds,
            ns: self.frozen_n.clone(),
            h: self.frozen_h,
        }
    }

    pub fn evolving(&self) -> Evolving {
        Evolving {
            beta: self.evolving_beta,
            t_end: self.evolving_t_end,
            t_fit: self.evolving_t_fit,
            rate_from: self.evolving_rate_from,
            h: self.evolving_h,
            m: self.evolving_m,
            seeds: self.evolving_seeds,
            ns: self.evolving_n.clone(),
        }
    }
}

impl Frozen {
    pub fn steps(&self) -> usize {
        (self.t_end / self.h).round() as usize
    }
}

impl Evolving {
    pub fn steps(&self) -> usize {
        (self.t_end / self.h).round() as usize
    }

    /// The largest n is the reference; only n <= largest / 8 enter the fit.
    pub fn fit_max(&self) -> usize {
        self.ns.last().expect("sizes") / 8
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    real(
        "frozen_kappa",
        0.0,
        1e3,
        false,
        "the concentration of the frozen vMF context",
    ),
    real(
        "frozen_beta",
        0.0,
        100.0,
        false,
        "the frozen context's inverse temperature",
    ),
    real(
        "frozen_t_end",
        0.0,
        1e4,
        true,
        "the frozen runs' final time",
    ),
    count("frozen_m", 1, 1_048_576, "queries of the frozen runs"),
    count("frozen_seeds", 1, 100_000, "contexts per n"),
    counts(
        "frozen_n",
        1,
        67_108_864,
        "context sizes of the frozen runs",
    ),
    real("frozen_h", 0.0, 1.0, true, "the frozen runs' RK4 step"),
    real(
        "evolving_beta",
        0.0,
        100.0,
        false,
        "the evolving context's inverse temperature",
    ),
    real(
        "evolving_t_end",
        0.0,
        1e4,
        true,
        "the evolving runs' final time",
    ),
    real(
        "evolving_t_fit",
        0.0,
        1e4,
        true,
        "the depth at which distances are compared",
    ),
    real(
        "evolving_rate_from",
        0.0,
        1e4,
        false,
        "the start of the rate fit",
    ),
    real("evolving_h", 0.0, 1.0, true, "the evolving runs' RK4 step"),
    count("evolving_m", 1, 1_048_576, "queries of the evolving runs"),
    count("evolving_seeds", 1, 100_000, "contexts per n"),
    counts(
        "evolving_n",
        1,
        4_194_304,
        "context sizes of the evolving runs",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.evolving_t_fit > self.evolving_t_end
            || self.evolving_rate_from >= self.evolving_t_end
        {
            return Err(refuse(format!(
                "chaos: evolving_t_fit = {} and evolving_rate_from = {} must lie below \
                 evolving_t_end = {}",
                self.evolving_t_fit, self.evolving_rate_from, self.evolving_t_end
            )));
        }
        steps(
            "chaos: frozen_t_end / frozen_h",
            self.frozen_t_end,
            self.frozen_h,
        )?;
        steps(
            "chaos: evolving_t_end / evolving_h",
            self.evolving_t_end,
            self.evolving_h,
        )?;
        for &n in &self.frozen_n {
            memory(
                "chaos: the frozen contexts",
                self.frozen_seeds,
                n.saturating_add(self.frozen_m),
                3,
                1,
            )?;
        }
        for &n in &self.evolving_n {
            memory(
                "chaos: the evolving contexts",
                self.evolving_seeds,
                n.saturating_add(self.evolving_m),
                3,
                1,
            )?;
        }
        Ok(())
    }
}
