//! Sizes of `phase-diagram`.

/// The quick and default sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub n: usize,
    pub dims: [usize; 2],
    pub t_end: f64,
    pub h: f64,
    /// Observe every this many steps (every 0.5 time units).
    pub observe_every: usize,
    /// Betas from 0.1 to 9 in equal steps.
    pub beta_count: usize,
    /// Starts per beta for d = 8 and d = 128 (the low-d mean fraction is noisier, and cheaper).
    pub starts_by_d: [usize; 2],
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (beta_count, starts_by_d) = if quick { (19, [8, 4]) } else { (90, [32, 32]) };
        Sizes {
            n: 32,
            dims: [8, 128],
            t_end: 30.0,
            h: 0.1,
            observe_every: 5,
            beta_count,
            starts_by_d,
        }
    }

    pub fn betas(&self) -> Vec<f64> {
        (0..self.beta_count)
            .map(|k| 0.1 + (9.0 - 0.1) * k as f64 / (self.beta_count - 1) as f64)
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
