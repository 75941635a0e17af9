//! Sizes and physical parameters of `phase-diagram` (the keys of `--set`).

use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    pub n: usize,
    /// The dimensions: one below 64 (several metastable clusters at large beta) and one at
    /// least 64 (compared with the symmetric reduction).
    pub dims: Vec<usize>,
    pub t_end: f64,
    pub h: f64,
    /// Observe every this many steps (every 0.5 time units).
    pub observe_every: usize,
    /// Betas from beta_min to beta_max in equal steps.
    pub beta_count: usize,
    pub beta_min: f64,
    pub beta_max: f64,
    /// Starts per beta for each d (the low-d mean fraction is noisier, and cheaper).
    pub starts_by_d: Vec<usize>,
    /// A pair is close when <x_i, x_j> >= threshold (the rotf script's 0.999).
    pub threshold: f64,
    /// The layer map: ode (RK4 on the flow, the default) or post-ln (x <- normalise(x + h a),
    /// one Euler layer per step: the scheme of rotf's phase-diagrams.py, docs/peers.md).
    pub layer: attnflow::model::LayerMap,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (beta_count, starts_by_d) = if quick {
            (19, vec![8, 4])
        } else {
            (90, vec![32, 32])
        };
        Sizes {
            n: 32,
            dims: vec![8, 128],
            t_end: 30.0,
            h: 0.1,
            observe_every: 5,
            beta_count,
            beta_min: 0.1,
            beta_max: 9.0,
            starts_by_d,
            threshold: 0.999,
            layer: attnflow::model::LayerMap::Ode,
        }
    }

    pub fn betas(&self) -> Vec<f64> {
        let (lo, hi) = (self.beta_min, self.beta_max);
        (0..self.beta_count)
            .map(|k| lo + (hi - lo) * k as f64 / (self.beta_count.max(2) - 1) as f64)
            .collect()
    }

    /// The observed steps (after step 0).
    pub fn at(&self) -> Vec<usize> {
        let steps = (self.t_end / self.h).round() as usize;
        (1..=steps)
            .filter(|s| s % self.observe_every == 0)
            .collect()
    }

    /// The observation times, 0 first.
    pub fn times(&self) -> Vec<f64> {
        std::iter::once(0.0)
            .chain(self.at().iter().map(|&s| s as f64 * self.h))
            .collect()
    }
}
