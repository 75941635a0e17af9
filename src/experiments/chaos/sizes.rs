//! Sizes of `chaos`.

/// The frozen vMF context.
#[derive(Clone, Debug)]
pub struct Frozen {
    pub kappa: f64,
    pub beta: f64,
    pub t_end: f64,
    /// Queries (the same in every context).
    pub m: usize,
    /// Independent contexts per n.
    pub seeds: usize,
    pub ns: Vec<usize>,
    pub h: f64,
}

/// The evolving uniform context.
#[derive(Clone, Debug)]
pub struct Evolving {
    pub beta: f64,
    pub t_end: f64,
    /// The depth at which distances are compared across n.
    pub t_fit: f64,
    pub h: f64,
    pub m: usize,
    pub seeds: usize,
    pub ns: Vec<usize>,
}

impl Frozen {
    pub fn new(quick: bool) -> Self {
        let (m, seeds, ns, h): (usize, usize, Vec<usize>, f64) = if quick {
            (16, 24, (0..6).map(|k| 1000 << k).collect(), 0.1)
        } else {
            (16, 16, (0..11).map(|k| 1000 << k).collect(), 0.05)
        };
        Frozen {
            kappa: 1.0,
            beta: 2.0,
            t_end: 4.0,
            m,
            seeds,
            ns,
            h,
        }
    }

    pub fn steps(&self) -> usize {
        (self.t_end / self.h).round() as usize
    }
}

impl Evolving {
    pub fn new(quick: bool) -> Self {
        let (m, seeds, ns): (usize, usize, Vec<usize>) = if quick {
            (16, 8, (0..7).map(|k| 32 << k).collect())
        } else {
            (16, 8, (0..9).map(|k| 64 << k).collect())
        };
        Evolving {
            beta: 1.0,
            t_end: 4.0,
            t_fit: 2.0,
            h: 0.1,
            m,
            seeds,
            ns,
        }
    }

    pub fn steps(&self) -> usize {
        (self.t_end / self.h).round() as usize
    }

    /// The largest n is the reference; only n <= largest / 8 enter the fit.
    pub fn fit_max(&self) -> usize {
        self.ns.last().expect("sizes") / 8
    }
}
