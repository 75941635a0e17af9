//! Sizes and parameters of `transport` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Standard deviation of the base measure N(0, base_sd^2 I) in R^2.
    pub base_sd: f64,
    /// The target's components sit at (+-separation, 0).
    pub separation: f64,
    /// Standard deviation of each (isotropic) component of the target.
    pub component_sd: f64,
    /// Switch budgets K (even): each K gets its own construction with K pieces.
    pub switches: Vec<usize>,
    /// The knots of x1's map sit at the base quantiles 1/2 +- (j / J)^knot_exponent / 2:
    /// crowded towards the centre, where the map jumps across the gap between the components.
    pub knot_exponent: f64,
    /// Samples of the base and of the target from which the controls are built (sorted
    /// coordinates: cheap, so large), and the linear-flow bound is computed.
    pub n_build: usize,
    /// Fresh samples per evaluation: W2 between n_eval pushed base points and n_eval fresh
    /// target points (exact assignment, O(n_eval^3)).
    pub n_eval: usize,
    /// Independent evaluations (fresh samples each) per budget: means and standard errors.
    pub reps: usize,
    /// Points the engine pushes through the K_max-piece flow (one system of one token each).
    pub n_engine: usize,
    /// RK4 steps per piece (each lasts time 1) of the engine on the chosen backend (f32 needs
    /// few: the error bound sum_k |c_k|^5 h^4 / 120 stays far below 1e-4).
    pub steps_per_piece: usize,
    /// RK4 steps per piece of the engine on the reference backend (f64, checked to 1e-9).
    pub steps_per_piece_reference: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let common = Sizes {
            base_sd: 1.0,
            separation: 3.0,
            component_sd: 0.5,
            switches: vec![0, 2, 4, 6, 10, 18, 34],
            knot_exponent: 2.0,
            n_build: 20000,
            n_eval: 256,
            reps: 4,
            n_engine: 64,
            steps_per_piece: 64,
            steps_per_piece_reference: 512,
        };
        if quick {
            common
        } else {
            Sizes {
                switches: vec![0, 2, 4, 6, 10, 18, 34, 66],
                n_build: 200_000,
                n_eval: 1024,
                reps: 8,
                n_engine: 128,
                steps_per_piece: 128,
                steps_per_piece_reference: 1024,
                ..common
            }
        }
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    real(
        "base_sd",
        0.0,
        100.0,
        true,
        "the base measure's standard deviation",
    ),
    real(
        "separation",
        0.0,
        100.0,
        false,
        "the target's components sit at (+-separation, 0)",
    ),
    real(
        "component_sd",
        0.0,
        100.0,
        true,
        "each target component's standard deviation",
    ),
    counts("switches", 0, 1024, "switch budgets K (even)"),
    real(
        "knot_exponent",
        1.0,
        100.0,
        false,
        "how the knots crowd towards the centre",
    ),
    count(
        "n_build",
        2,
        67_108_864,
        "samples the controls are built from",
    ),
    count(
        "n_eval",
        8,
        4096,
        "samples per W2 evaluation (exact assignment, O(n_eval^3))",
    ),
    count("reps", 2, 10_000, "evaluations per budget"),
    count("n_engine", 1, 1_048_576, "points the engine pushes"),
    count("steps_per_piece", 1, 1_000_000, "RK4 steps per piece"),
    count(
        "steps_per_piece_reference",
        1,
        1_000_000,
        "RK4 steps per piece on the reference backend",
    ),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if let Some(k) = self.switches.iter().find(|k| *k % 2 != 0) {
            return Err(refuse(format!(
                "transport: switches holds {k}: each switch budget K must be even"
            )));
        }
        let k_max = self.switches.last().copied().unwrap_or(0);
        if self.switches.first() != Some(&0)
            || !self.switches.windows(2).all(|w| w[1] > w[0])
            || k_max < 4
        {
            return Err(refuse(format!(
                "transport: switches = {:?}: the budgets increase from 0 to at least 4",
                self.switches
            )));
        }
        if self.n_build < 4 * k_max {
            return Err(refuse(format!(
                "transport: n_build = {} is below 4 x the largest switch budget ({k_max})",
                self.n_build
            )));
        }
        let pieces = self.switches.iter().copied().max().unwrap_or(0) as f64 + 1.0;
        for per in [self.steps_per_piece, self.steps_per_piece_reference] {
            steps(
                "transport: pieces x steps per piece",
                pieces,
                1.0 / per as f64,
            )?;
        }
        array(
            "transport: the samples",
            &[("n_build", self.n_build), ("coordinates", 2)],
            64,
        )?;
        array(
            "transport: the assignment",
            &[("n_eval", self.n_eval), ("n_eval", self.n_eval)],
            16,
        )?;
        memory("transport: the engine", self.n_engine, 1, 2, 1)?;
        Ok(())
    }
}
