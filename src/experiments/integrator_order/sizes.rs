//! Sizes of `integrator-order`.

/// The quick and default sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub n: usize,
    pub d: usize,
    pub t_end: f64,
    /// Step counts of the tested runs (h = t_end / steps).
    pub steps: Vec<usize>,
    pub beta: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (n, d) = if quick { (32, 3) } else { (512, 16) };
        Sizes {
            n,
            d,
            t_end: 1.0,
            steps: vec![8, 16, 32, 64, 128],
            beta: 2.0,
        }
    }

    /// Steps of the reference solution: 16 times the finest tested.
    pub fn reference_steps(&self) -> usize {
        16 * self.steps[self.steps.len() - 1]
    }
}
