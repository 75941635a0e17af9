//! Sizes of `selectivity`.

/// The quick and default sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub dims: Vec<usize>,
    /// Key counts per d.
    pub ns: Vec<Vec<usize>>,
    /// Independent key sets per d and n.
    pub seeds: Vec<Vec<usize>>,
    /// Monte Carlo samples of the limit process.
    pub limit_samples: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                dims: vec![3],
                ns: vec![vec![1000, 10_000, 100_000]],
                seeds: vec![vec![200, 200, 200]],
                limit_samples: 2000,
            }
        } else {
            Sizes {
                dims: vec![3, 2],
                ns: vec![
                    vec![1000, 10_000, 100_000, 1_000_000],
                    vec![1000, 10_000, 100_000],
                ],
                seeds: vec![vec![1000, 1000, 1000, 1000], vec![1000, 1000, 1000]],
                limit_samples: 20_000,
            }
        }
    }

    /// lambda four per decade up to 10^2, from 10^-2 (d = 3) or 10^-4 (d = 2: the effective
    /// number of keys grows like lambda^{-(d-1)/2} as lambda -> 0).
    pub fn lambdas(d: usize) -> Vec<f64> {
        let low = if d == 2 { -4.0 } else { -2.0 };
        (0..=((2.0 - low) * 4.0) as usize)
            .map(|k| 10f64.powf(low + k as f64 / 4.0))
            .collect()
    }

    /// beta = lambda n^{2/(d-1)}: the factor n^{2/(d-1)}.
    pub fn scale(n: usize, d: usize) -> f64 {
        (n as f64).powf(2.0 / (d as f64 - 1.0))
    }
}
