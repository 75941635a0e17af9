//! Sizes and parameters of `homogenisation` (each can be set with `--set KEY=VALUE`).

use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Dimension of the tokens (parts a and b, and the base point of the collapse scans).
    pub d: usize,
    /// Tokens per system (parts a and b, and the base point of the collapse scans).
    pub n: usize,
    /// Inverse temperature of parts a and b.
    pub beta: f64,
    /// s: Q, K, V entries are iid N(0, s^2 / d), redrawn at every layer and head.
    pub weight_scale: f64,
    /// Independent systems per run (they share the layer's weights, and differ in their
    /// initial tokens).
    pub batch: usize,
    /// Independent runs (weights and tokens from their own seed); standard errors are taken
    /// over runs.
    pub runs: usize,
    /// Draws of (Q, K) per evaluation of G_ik = E<y_i, y_k> (beta > 0).
    pub gram_draws: usize,
    /// Part a (deterministic limit, mean over heads): depth time T.
    pub det_t: f64,
    /// Part a: the step of the scan in H.
    pub det_h: f64,
    /// Part a: the numbers of heads H of the scan at step det_h.
    pub det_heads: Vec<usize>,
    /// Part a: the steps h of the scan at det_h_heads heads.
    pub det_hs: Vec<f64>,
    /// Part a: the number of heads of the scan in h.
    pub det_h_heads: usize,
    /// Part b (common-noise limit, sum over heads, h H s^2 = sigma2): the diffusion scale.
    pub sigma2: f64,
    /// Part b: depth time T.
    pub noise_t: f64,
    /// Part b: the steps h (H = sigma2 / (h s^2) heads, rounded).
    pub noise_hs: Vec<f64>,
    /// Observation times per run in parts b and c (evenly spaced up to T).
    pub observe: usize,
    /// Part c (collapse, common-noise regime): depth time T.
    pub collapse_t: f64,
    /// Part c: the step h (H = sigma2 / (h s^2) heads).
    pub collapse_h: f64,
    /// Part c: dimensions at (n, beta = 0).
    pub ds: Vec<usize>,
    /// Part c: context lengths at (d, beta = 0).
    pub ns: Vec<usize>,
    /// Part c: inverse temperatures at (n, d).
    pub betas: Vec<f64>,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                d: 8,
                n: 8,
                beta: 1.0,
                weight_scale: 1.0,
                batch: 32,
                runs: 8,
                gram_draws: 32,
                det_t: 1.0,
                det_h: 0.1,
                det_heads: vec![1, 2, 4, 8, 16],
                det_hs: vec![0.2, 0.1, 0.05, 0.025],
                det_h_heads: 4,
                sigma2: 1.0,
                noise_t: 1.0,
                noise_hs: vec![0.1, 0.05, 0.025],
                observe: 8,
                collapse_t: 1.0,
                collapse_h: 0.05,
                ds: vec![4, 8, 16],
                ns: vec![4, 8, 16],
                betas: vec![0.0, 1.0, 4.0],
            }
        } else {
            Sizes {
                d: 8,
                n: 8,
                beta: 1.0,
                weight_scale: 1.0,
                batch: 64,
                runs: 24,
                gram_draws: 64,
                det_t: 1.0,
                det_h: 0.1,
                det_heads: vec![1, 2, 4, 8, 16, 32, 64],
                det_hs: vec![0.4, 0.2, 0.1, 0.05, 0.025, 0.0125],
                det_h_heads: 4,
                sigma2: 1.0,
                noise_t: 1.0,
                noise_hs: vec![0.1, 0.05, 0.025, 0.0125],
                observe: 16,
                collapse_t: 2.0,
                collapse_h: 0.025,
                ds: vec![3, 4, 8, 16, 32],
                ns: vec![4, 8, 16, 32, 64],
                betas: vec![0.0, 0.5, 1.0, 2.0, 4.0, 8.0],
            }
        }
    }
}
