//! Sizes and parameters of `synchronisation` (each can be set with `--set KEY=VALUE`).

use serde::{Deserialize, Serialize};

use crate::params::*;
use attnflow::model::Activation;

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Dimensions: tokens live on S^{d-1}; every sigma runs at every d (the law's variable:
    /// at d = 3 alone -(d - 1) and the wrong -(d + 1)/2 agree).
    pub ds: Vec<usize>,
    /// Tokens per system (all pairs are measured; they share the system's noise).
    pub n: usize,
    /// Independent systems per noise level and arm (each its own start and noise).
    pub systems: usize,
    /// Noise levels sigma (dx = f dt + sigma P^perp dB).
    pub sigmas: Vec<f64>,
    /// Duration in e-folds of u = 1 - <x_i, x_j> under pure common noise: each sigma runs to
    /// T = efolds / (sigma^2 (d - 1)).
    pub efolds: f64,
    /// sigma^2 h: the step in units of the noise's time scale (Euler-Maruyama).
    pub sigma2_h: f64,
    /// Steps between observations (the stretching integral is a trapezoid over them).
    pub observe_every: usize,
    /// Hidden width of the random perceptron (random:M, seed derived from the run's seed).
    pub mlp_hidden: usize,
    /// The perceptron's output weights W are multiplied by this (1: the engine's random MLP,
    /// W iid N(0, 1/M), A iid N(0, 1/d), b iid N(0, 1)). At 1 its sinks dominate noise of
    /// order 1 (tokens merge to f32 precision, independent noise cannot keep them apart);
    /// 0.3 keeps the noise in charge at sigma >= 0.7 while its stretching stays measurable.
    pub mlp_gain: f64,
    pub activation: Activation,
    /// The noise level of the pure-noise arm (no perceptron) run at every d: its rate is
    /// -sigma^2 (d - 1) with no drift term measured along the paths.
    pub pure_sigma: f64,
    /// Independent noise keeps the distance of order one only where the noise dominates the
    /// perceptron: that check runs at sigma >= this (stated in advance, not measured).
    pub independent_sigma_min: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                ds: vec![3, 6],
                n: 8,
                systems: 96,
                sigmas: vec![0.7, 1.4],
                efolds: 6.0,
                sigma2_h: 0.005,
                observe_every: 2,
                mlp_hidden: 32,
                mlp_gain: 0.3,
                activation: Activation::Gelu,
                pure_sigma: 1.0,
                independent_sigma_min: 0.7,
            }
        } else {
            Sizes {
                ds: vec![3, 5, 8],
                n: 8,
                systems: 512,
                sigmas: vec![0.5, 0.7, 1.0, 1.4, 2.0],
                efolds: 6.0,
                sigma2_h: 0.002,
                observe_every: 2,
                mlp_hidden: 32,
                mlp_gain: 0.3,
                activation: Activation::Gelu,
                pure_sigma: 1.0,
                independent_sigma_min: 0.7,
            }
        }
    }

    /// The step of noise level sigma.
    pub fn h(&self, sigma: f64) -> f64 {
        self.sigma2_h / (sigma * sigma)
    }

    /// Steps per run at dimension d (the same for every sigma).
    pub fn steps(&self, d: usize) -> usize {
        (self.efolds / ((d as f64 - 1.0) * self.sigma2_h)).round() as usize
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    counts("ds", 2, 1024, "the dimensions: tokens on S^{d-1}"),
    count("n", 2, 65_536, "tokens per system"),
    count("systems", 3, 100_000, "systems per noise level and arm"),
    reals("sigmas", 0.0, 100.0, true, "noise levels"),
    real(
        "efolds",
        0.0,
        100.0,
        true,
        "the duration in e-folds of the common noise",
    ),
    real(
        "sigma2_h",
        0.0,
        1.0,
        true,
        "sigma^2 h, the Euler-Maruyama step in the noise's time scale",
    ),
    count("observe_every", 1, 10_000_000, "steps between observations"),
    count("mlp_hidden", 1, 65_536, "hidden units of the perceptron"),
    real(
        "mlp_gain",
        0.0,
        100.0,
        false,
        "the factor of the perceptron's output weights",
    ),
    real(
        "pure_sigma",
        0.0,
        100.0,
        true,
        "the noise level of the pure-noise arm",
    ),
    real(
        "independent_sigma_min",
        0.0,
        100.0,
        false,
        "the least sigma at which independent noise must keep the distance",
    ),
    Param {
        name: "activation",
        ty: Ty::Choice(&["relu", "gelu"]),
        why: "the perceptron's nonlinearity",
    },
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        let mut distinct = self.ds.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 {
            return Err(refuse(
                "synchronisation: ds needs at least two distinct dimensions (the d-scan)",
            ));
        }
        for &d in &self.ds {
            let total = steps(
                "synchronisation: efolds / ((d - 1) sigma2_h)",
                self.efolds,
                (d as f64 - 1.0) * self.sigma2_h,
            )?;
            if total < 3 * self.observe_every {
                return Err(refuse(format!(
                    "synchronisation: {total} steps at d = {d} give fewer than 3 observations \
                     at observe_every = {}",
                    self.observe_every
                )));
            }
            memory("synchronisation", self.systems, self.n, d, 1)?;
        }
        array(
            "synchronisation: the perceptron",
            &[
                ("systems", self.systems),
                ("n", self.n),
                ("mlp_hidden", self.mlp_hidden),
            ],
            4,
        )?;
        Ok(())
    }
}
