//! Sizes and parameters of `homogenisation` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
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
    /// Part a: the dimensions of the scan in d (at det_h_heads heads, step det_h): the
    /// factor (d - 1) / d of the displacement, against the wrong (d + 1) / (2 d).
    pub det_ds: Vec<usize>,
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
                det_ds: vec![4, 16],
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
                det_ds: vec![3, 4, 16, 32],
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

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("d", 3, 1024, "the dimension: tokens on S^{d-1}"),
    count("n", 2, 65_536, "tokens per system"),
    real(
        "beta",
        0.0,
        100.0,
        false,
        "the inverse temperature of parts a and b",
    ),
    real(
        "weight_scale",
        0.0,
        100.0,
        true,
        "s: Q, K, V entries are N(0, s^2 / d)",
    ),
    count("batch", 1, 100_000, "systems per run"),
    count(
        "runs",
        3,
        10_000,
        "independent runs (standard errors are taken over them)",
    ),
    count("gram_draws", 1, 1_000_000, "draws of (Q, K) per Gram entry"),
    real("det_t", 0.0, 1e3, true, "part a's depth time"),
    real(
        "det_h",
        0.0,
        1.0,
        true,
        "part a's step of the scan in heads",
    ),
    counts("det_heads", 1, 65_536, "part a's numbers of heads"),
    reals("det_hs", 0.0, 1.0, true, "part a's steps of the scan in h"),
    count("det_h_heads", 1, 65_536, "part a's heads of the scan in h"),
    counts("det_ds", 3, 1024, "part a's dimensions of the scan in d"),
    real(
        "sigma2",
        0.0,
        100.0,
        true,
        "part b's diffusion scale h H s^2",
    ),
    real("noise_t", 0.0, 1e3, true, "part b's depth time"),
    reals(
        "noise_hs",
        0.0,
        1.0,
        true,
        "part b's steps (H = sigma2 / (h s^2) heads)",
    ),
    count("observe", 2, 100_000, "observation times per run"),
    real("collapse_t", 0.0, 1e3, true, "part c's depth time"),
    real(
        "collapse_h",
        0.0,
        1.0,
        true,
        "part c's step (H = sigma2 / (h s^2) heads)",
    ),
    counts("ds", 2, 1024, "part c's dimensions"),
    counts("ns", 2, 65_536, "part c's context lengths"),
    reals("betas", 0.0, 100.0, false, "part c's inverse temperatures"),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.det_heads.len() < 3 || self.det_hs.len() < 3 || self.ns.len() < 2 {
            return Err(refuse(format!(
                "homogenisation: det_heads has {}, det_hs {} and ns {} values: the fits need at \
                 least 3, 3 and 2",
                self.det_heads.len(),
                self.det_hs.len(),
                self.ns.len()
            )));
        }
        let mut det_ds = self.det_ds.clone();
        det_ds.sort_unstable();
        det_ds.dedup();
        if det_ds.len() < 2 {
            return Err(refuse(
                "homogenisation: det_ds needs at least two distinct dimensions (the d-scan)",
            ));
        }
        steps("homogenisation: det_t / det_h", self.det_t, self.det_h)?;
        for &h in &self.det_hs {
            steps("homogenisation: det_t / det_hs", self.det_t, h)?;
        }
        for &h in &self.noise_hs {
            steps("homogenisation: noise_t / noise_hs", self.noise_t, h)?;
        }
        steps(
            "homogenisation: collapse_t / collapse_h",
            self.collapse_t,
            self.collapse_h,
        )?;
        let s2 = self.weight_scale * self.weight_scale;
        let mut heads = self
            .det_heads
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(self.det_h_heads);
        for &h in self.noise_hs.iter().chain([&self.collapse_h]) {
            let k = (self.sigma2 / (h * s2)).round();
            if k.is_nan() || k > 65_536.0 {
                return Err(refuse(format!(
                    "homogenisation: step {h} gives sigma2 / (h s^2) = {k:e} heads, more than \
                     65536; raise the step or weight_scale, or lower sigma2"
                )));
            }
            heads = heads.max(k as usize);
        }
        memory(
            "homogenisation: parts a and b",
            self.batch,
            self.n,
            self.d,
            heads,
        )?;
        let d = self
            .ds
            .iter()
            .chain(&self.det_ds)
            .copied()
            .max()
            .unwrap_or(2)
            .max(self.d);
        let n = self.ns.iter().copied().max().unwrap_or(2).max(self.n);
        memory("homogenisation: part c", self.batch, n, d, heads)?;
        Ok(())
    }
}
