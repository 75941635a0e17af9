//! Sizes of `clustering`.

/// The quick and default sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub n: usize,
    pub d: usize,
    /// SA betas (one ensemble).
    pub betas_sa: Vec<f64>,
    /// USA betas (one run each: USA at large beta sits in metastable clusters far longer, its
    /// inter-cluster weights are e^{beta (cos - 1)} smaller, so it gets smaller betas).
    pub betas_usa: Vec<f64>,
    pub t_end: f64,
    pub h: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                n: 48,
                d: 3,
                betas_sa: vec![0.5, 1.0, 2.0],
                betas_usa: vec![0.5, 1.0],
                t_end: 30.0,
                h: 0.05,
            }
        } else {
            Sizes {
                n: 2048,
                d: 3,
                betas_sa: vec![0.25, 0.5, 1.0, 2.0],
                betas_usa: vec![0.5, 1.0, 2.0],
                t_end: 80.0,
                h: 0.05,
            }
        }
    }
}
