//! The jobs a user runs, as library functions taking typed options and returning typed
//! results: the CLI's subcommands and the Python package are thin layers over them.
//!
//! - [`run`]: integrate a particle system and write its folder (final.npy, metrics.csv,
//!   run.toml, traj.npy), with checkpoints and resume.
//! - [`attend`]: one attention layer with separate queries and keys (outputs.npy, stats.csv,
//!   attend.toml).
//! - [`cfm`]: a contextual flow map, with its infinite-context twin (final.npy, traj.npy,
//!   infinite.npy, distance.csv, cfm.toml).
//! - [`bench`]: the measurements behind `attnflow bench`.
//! - [`driver`]: the one step driver of their loops (progress, stop, finite check,
//!   checkpoints, what each boundary saves), also the experiments'.
//!
//! Every job writes through an [`crate::output::Output`] (staged, atomic) and records its
//! provenance in one form, [`crate::output::Provenance`].

mod adaptive_run;
pub mod attend;
pub mod bench;
pub mod cfm;
mod checkpoint;
pub mod driver;
mod report;
pub mod run;

pub use run::{Interrupt, Progress};
