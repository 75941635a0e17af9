//! Sizes of `lost-in-the-middle`.

/// The quick and default sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub beta: f64,
    /// The ALiBi slope.
    pub lambda: f64,
    pub h: f64,
    /// The observed depths.
    pub times: [f64; 5],
    /// Prompt length N.
    pub n: usize,
    pub prompts: usize,
    /// Smoothing window (positions).
    pub w: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (n, prompts) = if quick { (32, 256) } else { (256, 512) };
        Sizes {
            beta: 1.0,
            lambda: 2.0,
            h: 0.2,
            times: [1.0, 2.0, 3.0, 4.0, 8.0],
            n,
            prompts,
            w: (n / 16).max(3),
        }
    }
}
