//! Theory, apart from any simulation: closed forms, special functions and reduced equations
//! that the experiments and tests compare measurements with, each with unit tests of its own.
//!
//! - [`meanfield`]: the exact infinite-context field of a vMF context, A_d, and its flow.
//! - [`modes`]: growth rates of density modes of the uniform law (circle and S^2).
//! - [`symmetric`]: the symmetric (equal-cosine) reduction and its collapse time.

pub mod meanfield;
pub mod modes;
pub mod symmetric;
