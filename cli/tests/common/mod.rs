//! Helpers shared by the CLI's integration tests: the core's (the root package's
//! tests/common, compiled in here as well) and `cmd`, which runs this package's binary.
#![allow(dead_code, unused_imports)]

#[path = "../../../tests/common/mod.rs"]
mod shared;

pub mod cmd;

pub use shared::*;
