//! The problem attnflow solves, independent of any backend (MODELS.md §1).
//!
//! An ensemble of `batch` independent systems, each of `n` tokens in R^d, evolves by
//! self-attention dynamics. Every backend implements exactly this definition.

pub mod init;
pub mod observables;
pub mod weights;

use serde::{Deserialize, Serialize};

pub use weights::Weights;

use crate::error::{Result, input};

/// Softmax (transformer) or unnormalised attention weights (MODELS.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    /// SA: w_ij = exp(s_ij) / sum_k exp(s_ik).
    Sa,
    /// USA: w_ij = exp(s_ij) / |J(i)|.
    Usa,
}

/// Where the tokens live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Geometry {
    /// Unit sphere: tangent projection, renormalised after every step.
    Sphere,
    /// R^d, no normalisation.
    Euclidean,
}

/// Which keys a query sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mask {
    /// Every token sees every token.
    Full,
    /// Token i sees tokens 1..=i (decoder transformers).
    Causal,
}

impl Attention {
    pub fn name(self) -> &'static str {
        match self {
            Attention::Sa => "sa",
            Attention::Usa => "usa",
        }
    }
}
impl Geometry {
    pub fn name(self) -> &'static str {
        match self {
            Geometry::Sphere => "sphere",
            Geometry::Euclidean => "euclidean",
        }
    }
}
impl Mask {
    pub fn name(self) -> &'static str {
        match self {
            Mask::Full => "full",
            Mask::Causal => "causal",
        }
    }
}

/// Sizes of an ensemble: `batch` systems of `n` tokens in dimension `d`, stored
/// contiguously as `[batch, n, d]` (row-major).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub n: usize,
    pub d: usize,
}

impl Shape {
    pub fn new(batch: usize, n: usize, d: usize) -> Result<Self> {
        if batch == 0 {
            return Err(input("batch must be at least 1"));
        }
        if n == 0 {
            return Err(input("n must be at least 1 (the number of tokens)"));
        }
        if d < 2 {
            return Err(input(format!(
                "d = {d} is too small: tokens live in R^d with d >= 2"
            )));
        }
        batch
            .checked_mul(n)
            .and_then(|t| t.checked_mul(d))
            .ok_or_else(|| input("batch * n * d overflows"))?;
        Ok(Shape { batch, n, d })
    }
    /// Number of tokens over all systems.
    pub fn tokens(&self) -> usize {
        self.batch * self.n
    }
    /// Number of scalars in the state.
    pub fn len(&self) -> usize {
        self.batch * self.n * self.d
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The full model: what the vector field is. Backends take this and nothing else.
#[derive(Clone, Debug)]
pub struct Model {
    pub attention: Attention,
    pub geometry: Geometry,
    pub mask: Mask,
    pub weights: Weights,
    /// Inverse temperature of each system (length = batch).
    pub betas: Vec<f64>,
}

impl Model {
    /// Checks that the model is consistent with `shape`.
    pub fn validate(&self, shape: Shape) -> Result<()> {
        if self.weights.d != shape.d {
            return Err(input(format!(
                "Q, K, V are {0} x {0} but tokens have d = {1}",
                self.weights.d, shape.d
            )));
        }
        if self.betas.len() != shape.batch {
            return Err(input(format!(
                "{} beta values for a batch of {} systems: give one value, or one per system",
                self.betas.len(),
                shape.batch
            )));
        }
        for &b in &self.betas {
            if !b.is_finite() || b < 0.0 {
                return Err(input(format!("beta must be a finite number >= 0, got {b}")));
            }
        }
        Ok(())
    }

    /// The number of keys token `i` (0-based) sees: |J(i)|.
    pub fn keys_seen(&self, i: usize, n: usize) -> usize {
        match self.mask {
            Mask::Full => n,
            Mask::Causal => i + 1,
        }
    }

    /// The query matrix the fast backends use: s_ij = beta <Q x_i, K x_j> = <M x_i, x_j> / 1
    /// with M = K^T Q (row-major, d x d); each backend multiplies by its system's beta.
    pub fn score_matrix(&self) -> Vec<f64> {
        self.weights.score_matrix()
    }
}
