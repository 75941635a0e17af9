//! attnflow: transformers as interacting particle systems on the sphere.
//!
//! Tokens x_1..x_n are particles; depth is time; self-attention is the interaction
//! (docs/model.md §1). One model definition ([`model::Model`]) runs on three backends: `gpu` (wgpu
//! compute), `cpu` (multithreaded f32) and `reference` (plain f64, the truth in tests), driven
//! by one Runge-Kutta stepping engine ([`integrate`]).

pub mod attend;
pub mod backend;
pub mod cfm;
pub mod config;
pub mod csv;
pub mod error;
pub mod figures;
pub mod integrate;
pub mod jobs;
pub mod limits;
#[cfg(feature = "gpu")]
pub mod live;
pub mod model;
pub mod npy;
pub mod options;
pub mod output;
pub mod render;
pub mod stats;
pub mod theory;
pub mod view;

/// The infinite-context references (kept at the crate root for its users; see [`theory`]).
pub use theory::meanfield;

pub use error::{Error, Result};

/// The backends live under [`backend`]; their modules stay reachable at the crate root.
#[cfg(feature = "gpu")]
pub use backend::gpu;
pub use backend::{cpu, reference};
/// The jobs live under [`jobs`]; `run` and `bench` stay reachable at the crate root.
pub use jobs::{bench, run};
