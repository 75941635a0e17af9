//! Sizes and parameters of `value-spectrum` (each can be set with `--set KEY=VALUE`).

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
    /// Each check may be missed by at most ceil(miss_frac systems) systems (near-ties resolve
    /// arbitrarily late; the theorems are asymptotic).
    pub miss_frac: f64,
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
            miss_frac: 0.05,
            rank_tol: 1e-3,
        }
    }
}
