//! Sizes of `critical-scaling`.

/// The quick and default sizes.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub d: usize,
    pub c0s: Vec<f64>,
    /// Key counts of the one-layer runs.
    pub layer_ns: Vec<usize>,
    /// Queries of the one-layer runs (the first tokens).
    pub queries: usize,
    pub flow_ns: Vec<usize>,
    /// The gammas after gamma = 0.
    pub gammas: Vec<f64>,
    /// The flow runs every this many gammas of the layer.
    pub flow_every: usize,
    pub t_end: f64,
    pub h: f64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                d: 64,
                c0s: vec![0.2, 0.4, 0.6],
                layer_ns: vec![256, 1024, 4096, 16384],
                queries: 128,
                flow_ns: vec![128, 256, 512],
                gammas: (1..=40).map(|k| 0.1 * k as f64).collect(),
                flow_every: 2,
                t_end: 1.0,
                h: 0.25,
            }
        } else {
            Sizes {
                d: 64,
                c0s: vec![0.1, 0.2, 0.4, 0.6, 0.75],
                layer_ns: vec![1000, 10_000, 100_000, 1_000_000],
                queries: 256,
                flow_ns: vec![1024, 4096, 16384],
                gammas: (1..=60).map(|k| 0.1 * k as f64).collect(),
                flow_every: 2,
                t_end: 1.0,
                h: 0.25,
            }
        }
    }

    /// gamma = 0 (uniform attention) first: the collapsed end of every curve.
    pub fn layer_gammas(&self) -> Vec<f64> {
        let mut gammas = vec![0.0];
        gammas.extend(&self.gammas);
        gammas
    }

    /// Every `flow_every`-th gamma of the layer.
    pub fn flow_gammas(&self) -> Vec<f64> {
        self.layer_gammas()
            .iter()
            .enumerate()
            .filter(|(k, _)| k % self.flow_every == 0)
            .map(|(_, g)| *g)
            .collect()
    }
}
