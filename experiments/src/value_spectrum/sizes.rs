//! Sizes and parameters of `value-spectrum` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Tokens per system (every case).
    pub n: usize,
    /// Systems (independent initial conditions) per case.
    pub systems: usize,
    /// Dimension of the polytope and hyperplane cases (2 or 3).
    pub d: usize,
    /// Inverse temperature: scores beta <Q x_i, K x_j>, Q = K = I.
    pub beta: f64,
    /// Final time T (depth).
    pub t_end: f64,
    /// The convergence of z is read between T - t_gap and T.
    pub t_gap: f64,
    /// Step of the RK4 integrator.
    pub h: f64,
    /// Spectrum of V in the hyperplane case (length d): a simple positive top eigenvalue; V =
    /// sum_k lambda_k phi_k phi_k^T with an orthonormal basis phi drawn from `basis_seed`.
    pub hyper_eigs: Vec<f64>,
    /// Seed of the eigenbasis of V in the hyperplane case.
    pub basis_seed: u64,
    /// V > 0 of the d = 1 case.
    pub v_1d: f64,
    /// Linkage distance of the clustering, as a fraction of the diameter of the final z.
    pub link_frac: f64,
    /// Every token must lie within this fraction of the diameter of its cluster's mean.
    pub radius_frac: f64,
    /// Largest relative change max_i |z_i(T) - z_i(T - t_gap)| / diam z(T) of a converged z.
    pub converge_tol: f64,
    /// Booleanness: 1 - max_j P_ij(T) at most this for every i (d = 1).
    pub bool_tol: f64,
    /// Numerical rank: singular values of P(T) above this (d = 1).
    pub rank_tol: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        Sizes {
            n: if quick { 32 } else { 256 },
            systems: if quick { 8 } else { 64 },
            d: 2,
            beta: 1.0,
            t_end: 8.0,
            t_gap: 1.0,
            h: if quick { 0.01 } else { 0.005 },
            hyper_eigs: vec![1.0, -0.5],
            basis_seed: 7,
            v_1d: 1.0,
            link_frac: 0.05,
            radius_frac: 0.01,
            // Measured at the quick size (seeds 0-2, cpu): at most 0.005; 0.6 when misrescaled.
            converge_tol: 0.02,
            bool_tol: 1e-3,
            rank_tol: 1e-3,
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("n", 4, 65_536, "tokens per system"),
    count("systems", 1, 100_000, "systems per case"),
    count(
        "d",
        2,
        3,
        "the dimension of the polytope and hyperplane cases",
    ),
    real("beta", 0.0, 100.0, false, "the inverse temperature"),
    real("t_end", 0.0, 1e4, true, "the final time"),
    real(
        "t_gap",
        0.0,
        1e4,
        true,
        "the span over which convergence is read, below t_end",
    ),
    real("h", 0.0, 1.0, true, "the RK4 step"),
    reals(
        "hyper_eigs",
        -100.0,
        100.0,
        false,
        "the spectrum of V in the hyperplane case, d values",
    ),
    Param {
        name: "basis_seed",
        ty: Ty::Seed,
        why: "the seed of V's eigenbasis",
    },
    real("v_1d", 0.0, 100.0, true, "V > 0 of the d = 1 case"),
    real(
        "link_frac",
        0.0,
        1.0,
        true,
        "the linkage distance, a fraction of the diameter",
    ),
    real(
        "radius_frac",
        0.0,
        1.0,
        true,
        "a cluster's radius, a fraction of the diameter",
    ),
    real(
        "converge_tol",
        0.0,
        1.0,
        true,
        "the largest relative change of a converged z",
    ),
    real("bool_tol", 0.0, 1.0, true, "booleanness of P(T)"),
    real(
        "rank_tol",
        0.0,
        1.0,
        true,
        "singular values above it count for the rank",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.t_gap >= self.t_end {
            return Err(refuse(format!(
                "value-spectrum: t_gap = {} must be below t_end = {}",
                self.t_gap, self.t_end
            )));
        }
        if self.hyper_eigs.len() != self.d {
            return Err(refuse(format!(
                "value-spectrum: hyper_eigs has {} values but d = {}: give one eigenvalue per \
                 dimension",
                self.hyper_eigs.len(),
                self.d
            )));
        }
        steps("value-spectrum: t_end / h", self.t_end, self.h)?;
        memory("value-spectrum", self.systems, self.n, self.d, 1)?;
        Ok(())
    }
}
