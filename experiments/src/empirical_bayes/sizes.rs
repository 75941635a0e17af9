//! Sizes and parameters of `empirical-bayes` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Dimension of the tokens.
    pub d: usize,
    /// Noise level: every token is y = x + sigma eps, eps ~ N(0, I).
    pub sigma: f64,
    /// The Gaussian prior N(0, tau^2 I).
    pub tau: f64,
    /// The mixture prior (1/2) N(mu e_1, s^2 I) + (1/2) N(-mu e_1, s^2 I): mu.
    pub mixture_mu: f64,
    /// The mixture prior: each component's standard deviation s.
    pub mixture_s: f64,
    /// Context length (noisy tokens) of the depth scans.
    pub n: usize,
    /// Held-out query tokens per context.
    pub queries: usize,
    /// Independent contexts per bandwidth.
    pub draws: usize,
    /// Stage-1 kernel bandwidths h (inverse temperature beta = 1 / h^2).
    pub bandwidths: Vec<f64>,
    /// Residual step of one stage-1 layer (depth t = layers x dt).
    pub dt: f64,
    /// Stage-1 layers of the depth scans.
    pub layers: usize,
    /// Context lengths of the convergence study (Gaussian prior).
    pub conv_ns: Vec<usize>,
    /// Independent contexts per n in the convergence study.
    pub conv_draws: usize,
    /// Stage-1 bandwidth of the convergence study.
    pub conv_bandwidth: f64,
    /// Layers of the convergence study (their step is set so that the mean-field context
    /// reaches the prior at the last one).
    pub conv_layers: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let base = Sizes {
            d: 1,
            sigma: 1.0,
            tau: 1.0,
            mixture_mu: 2.0,
            mixture_s: 0.5,
            n: 512,
            queries: 256,
            draws: 16,
            bandwidths: vec![0.5, 0.7, 1.0],
            dt: 0.1,
            layers: 60,
            conv_ns: vec![32, 64, 128, 256, 512],
            conv_draws: 24,
            conv_bandwidth: 0.7,
            conv_layers: 10,
        };
        if quick {
            base
        } else {
            Sizes {
                n: 1024,
                queries: 1024,
                draws: 48,
                bandwidths: vec![0.4, 0.5, 0.6, 0.7, 0.85, 1.0],
                layers: 80,
                conv_ns: vec![32, 64, 128, 256, 512, 1024, 2048],
                conv_draws: 48,
                ..base
            }
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    count("d", 1, 1024, "the dimension of the tokens"),
    real("sigma", 0.0, 100.0, true, "the noise level"),
    real(
        "tau",
        0.0,
        100.0,
        true,
        "the Gaussian prior's standard deviation",
    ),
    real(
        "mixture_mu",
        0.0,
        100.0,
        false,
        "the mixture prior's centres +-mu e_1",
    ),
    real(
        "mixture_s",
        0.0,
        100.0,
        true,
        "the mixture components' standard deviation",
    ),
    count("n", 1, 4_194_304, "the context length of the depth scans"),
    count("queries", 1, 4_194_304, "held-out queries per context"),
    count("draws", 3, 100_000, "contexts per bandwidth"),
    reals(
        "bandwidths",
        0.0,
        100.0,
        true,
        "stage-1 kernel bandwidths (beta = 1 / h^2)",
    ),
    real(
        "dt",
        0.0,
        1.0,
        true,
        "the residual step of one stage-1 layer",
    ),
    count("layers", 2, 1_000_000, "stage-1 layers of the depth scans"),
    counts(
        "conv_ns",
        1,
        4_194_304,
        "context lengths of the convergence study",
    ),
    count(
        "conv_draws",
        3,
        100_000,
        "contexts per n in the convergence study",
    ),
    real(
        "conv_bandwidth",
        0.0,
        100.0,
        true,
        "the convergence study's bandwidth",
    ),
    count(
        "conv_layers",
        1,
        1_000_000,
        "layers of the convergence study",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.bandwidths.len() < 2 || self.conv_ns.len() < 3 {
            return Err(refuse(format!(
                "empirical-bayes: bandwidths has {} values and conv_ns {}: a fit needs at least \
                 2 bandwidths and 3 context lengths",
                self.bandwidths.len(),
                self.conv_ns.len()
            )));
        }
        let tokens = self.n.saturating_add(self.queries.saturating_mul(3));
        array(
            "empirical-bayes: the depth scans",
            &[
                ("draws", self.draws),
                ("n + 3 queries", tokens),
                ("d", self.d),
            ],
            16,
        )?;
        for &n in &self.conv_ns {
            array(
                "empirical-bayes: the convergence study",
                &[
                    ("conv_draws", self.conv_draws),
                    (
                        "n + 3 queries",
                        n.saturating_add(self.queries.saturating_mul(3)),
                    ),
                    ("d", self.d),
                ],
                16,
            )?;
        }
        Ok(())
    }
}
