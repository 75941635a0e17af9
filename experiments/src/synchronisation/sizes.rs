//! Sizes and parameters of `synchronisation` (each can be set with `--set KEY=VALUE`).

use serde::{Deserialize, Serialize};

use attnflow::model::Activation;

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Dimension: tokens live on S^{d-1}.
    pub d: usize,
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
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                d: 3,
                n: 8,
                systems: 96,
                sigmas: vec![0.7, 1.0, 1.4],
                efolds: 6.0,
                sigma2_h: 0.005,
                observe_every: 2,
                mlp_hidden: 32,
                mlp_gain: 0.3,
                activation: Activation::Gelu,
            }
        } else {
            Sizes {
                d: 3,
                n: 8,
                systems: 512,
                sigmas: vec![0.5, 0.7, 1.0, 1.4, 2.0],
                efolds: 6.0,
                sigma2_h: 0.002,
                observe_every: 2,
                mlp_hidden: 32,
                mlp_gain: 0.3,
                activation: Activation::Gelu,
            }
        }
    }

    /// The step of noise level sigma.
    pub fn h(&self, sigma: f64) -> f64 {
        self.sigma2_h / (sigma * sigma)
    }

    /// Steps per run (the same for every sigma).
    pub fn steps(&self) -> usize {
        (self.efolds / ((self.d as f64 - 1.0) * self.sigma2_h)).round() as usize
    }
}
