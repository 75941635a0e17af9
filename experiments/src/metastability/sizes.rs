//! Sizes and physical parameters of `metastability` (the keys of `--set`).

use serde::{Deserialize, Serialize};

/// The quick and default sizes, the step-size rule, the observation times, and the merge-law
/// systems (two tight clusters on the circle).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    pub n: usize,
    pub d: usize,
    pub betas: Vec<f64>,
    /// Starts per beta (the same starts for every beta).
    pub replicates: usize,
    pub t_end: f64,
    /// Steps: h = clamp(h_rel t, h_min, h_max). The fast phase grows at rate <= 2/e and the
    /// clusters then contract at rate 1 (SA linearised at a cluster), well inside RK4's
    /// stability bound 2.78 at h = 2 (|R(-2)| = 1/3); a run with h_max = 0.25, 0.02 t gave the
    /// same energies to 4 digits and the same cluster counts.
    pub h_min: f64,
    pub h_max: f64,
    pub h_rel: f64,
    /// Observations per decade of t, from t_first on.
    pub per_decade: usize,
    pub t_first: f64,
    /// Merge law: tokens per system (two clusters of merge_n / 2 on the circle).
    pub merge_n: usize,
    /// The angle between the two clusters' centres at t = 0 (radians).
    pub merge_phi0: f64,
    /// Half-width of each cluster at t = 0 (radians; tokens drawn uniformly within it).
    pub merge_spread: f64,
    /// One system per beta.
    pub merge_betas: Vec<f64>,
    /// RK4 step of the merge systems (the clusters contract at rate about 1).
    pub merge_h: f64,
    /// Give up after this time (a system not merged by then fails the merge law).
    pub merge_t_max: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (n, betas, replicates, t_end) = if quick {
            (
                256usize,
                vec![4.0f64, 9.0, 16.0, 25.0, 36.0, 64.0, 100.0],
                2,
                3000.0f64,
            )
        } else {
            (
                1024,
                vec![4.0, 9.0, 16.0, 25.0, 36.0, 64.0, 100.0, 144.0],
                4,
                1e4,
            )
        };
        Sizes {
            n,
            d: 2,
            betas,
            replicates,
            t_end,
            h_min: 0.05,
            h_max: 2.0,
            h_rel: 0.1,
            per_decade: 20,
            t_first: 1.0,
            merge_n: 8,
            merge_phi0: 1.2,
            merge_spread: 0.02,
            merge_betas: vec![8.0, 10.0, 12.0, 14.0, 16.0],
            merge_h: 0.25,
            merge_t_max: 1e4,
        }
    }

    /// The observation times: 0, then `per_decade` per decade from t_first to t_end.
    pub fn times(&self) -> Vec<f64> {
        let (t_first, t_end) = (self.t_first, self.t_end);
        let decades = (t_end / t_first).log10();
        let count = (decades * self.per_decade as f64).round() as usize;
        let mut times = vec![0.0];
        times
            .extend((0..=count).map(|k| t_first * (t_end / t_first).powf(k as f64 / count as f64)));
        times
    }
}
