//! Sizes and parameters of `perceptron-equilibria` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Tokens per run (iid uniform on the circle).
    pub n: usize,
    /// Hidden widths M of the perceptron.
    pub widths: Vec<usize>,
    /// Weight draws per width simulated without attention (V = 0).
    pub draws: usize,
    /// Weight draws per width whose stable zeros are counted by root finding only.
    pub count_draws: usize,
    /// Standard deviation of the entries of A (input rows a_k in R^2).
    pub a_sd: f64,
    /// Standard deviation of the biases b_k.
    pub b_sd: f64,
    /// Output scales c_k ~ N(0, c_sd^2 / M); W = A^T diag(c) (tied: a gradient perceptron).
    pub c_sd: f64,
    /// The activation: "gelu" or "relu".
    pub activation: String,
    /// Attention strength v (V = v I, Q = K = I, SA) of the scan in beta.
    pub v: f64,
    /// Inverse temperatures of the scan in beta (attention on).
    pub betas: Vec<f64>,
    /// The width of the scan in beta.
    pub beta_width: usize,
    /// Weight draws of the scan in beta.
    pub beta_draws: usize,
    /// Depth T of every run.
    pub t_end: f64,
    /// RK4 steps per run: h (v + max |f'|) must stay inside RK4's stability interval (h = 0.4
    /// with v = 4 is not: two atoms then oscillate about one).
    pub steps: usize,
    /// Grid points of the root finder on [0, 2 pi) (then 60 bisections per zero).
    pub grid: usize,
    /// Tokens farther apart than this (radians) belong to different atoms.
    pub atom_gap: f64,
    /// Atomic: every token within this angle of its atom.
    pub atom_eps: f64,
    /// Simulated atoms within this angle of the predicted stable zeros.
    pub position_tol: f64,
    /// Stationary: the full field at every atom below this.
    pub residual_tol: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let base = Sizes {
            n: 64,
            widths: vec![2, 4, 8, 16, 32, 64],
            draws: 2,
            count_draws: 1000,
            a_sd: 1.0,
            b_sd: 1.0,
            c_sd: 1.0,
            activation: "gelu".into(),
            v: 4.0,
            betas: vec![0.0, 1.0, 4.0, 16.0, 64.0],
            beta_width: 16,
            beta_draws: 5,
            t_end: 150.0,
            steps: 750,
            grid: 2048,
            atom_gap: 0.05,
            atom_eps: 1e-3,
            position_tol: 1e-2,
            residual_tol: 5e-3,
        };
        if quick {
            base
        } else {
            Sizes {
                n: 128,
                widths: vec![2, 4, 8, 16, 32, 64, 128],
                draws: 8,
                count_draws: 2000,
                betas: vec![0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0],
                beta_draws: 12,
                grid: 8192,
                ..base
            }
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("n", 4, 65_536, "tokens per run"),
    counts("widths", 1, 65_536, "hidden widths M"),
    count("draws", 1, 100_000, "weight draws per width simulated"),
    count(
        "count_draws",
        2,
        1_000_000,
        "weight draws per width counted by root finding",
    ),
    real("a_sd", 0.0, 100.0, true, "the standard deviation of A"),
    real(
        "b_sd",
        0.0,
        100.0,
        false,
        "the standard deviation of the biases",
    ),
    real("c_sd", 0.0, 100.0, true, "the output scale"),
    Param {
        name: "activation",
        ty: Ty::Choice(&["gelu", "relu"]),
        why: "the perceptron's nonlinearity",
    },
    real("v", 0.0, 100.0, false, "the attention strength V = v I"),
    reals(
        "betas",
        0.0,
        1e3,
        false,
        "inverse temperatures of the scan in beta",
    ),
    count("beta_width", 1, 65_536, "the width of the scan in beta"),
    count("beta_draws", 2, 100_000, "weight draws of the scan in beta"),
    real("t_end", 0.0, 1e4, true, "the depth of every run"),
    count("steps", 1, 10_000_000, "RK4 steps per run"),
    count("grid", 64, 16_777_216, "grid points of the root finder"),
    real(
        "atom_gap",
        0.0,
        std::f64::consts::PI,
        true,
        "tokens farther apart belong to different atoms (radians)",
    ),
    real(
        "atom_eps",
        0.0,
        1.0,
        true,
        "every token within this angle of its atom",
    ),
    real(
        "position_tol",
        0.0,
        1.0,
        true,
        "atoms within this angle of the predicted zeros",
    ),
    real(
        "residual_tol",
        0.0,
        1.0,
        true,
        "the largest field at an atom",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.betas.len() < 2 || self.betas.windows(2).any(|w| w[1] <= w[0]) {
            return Err(refuse(format!(
                "perceptron-equilibria: betas = {:?}: the scan needs at least two increasing betas",
                self.betas
            )));
        }
        memory(
            "perceptron-equilibria",
            self.betas.len().max(1),
            self.n,
            2,
            1,
        )?;
        let widest = self
            .widths
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(self.beta_width);
        array(
            "perceptron-equilibria: the perceptron",
            &[("n", self.n), ("width", widest)],
            16,
        )?;
        array(
            "perceptron-equilibria: the root finder's grid",
            &[("grid", self.grid)],
            16,
        )?;
        Ok(())
    }
}
