//! Option groups shared by several subcommands, each defined once and flattened into them.

use std::path::PathBuf;

use clap::Args;

use attnflow::backend::BackendChoice;

/// `--backend`, for every command that computes.
#[derive(Args, Debug, Clone)]
pub struct BackendOpt {
    /// Backend: auto (a hardware GPU if present, else cpu), gpu, cpu or reference (f64).
    #[arg(id = "backend", long = "backend", value_name = "BACKEND", default_value = "auto", value_parser = BackendChoice::NAMES)]
    pub name: String,
}

impl BackendOpt {
    pub fn choice(&self) -> attnflow::Result<BackendChoice> {
        self.name.parse()
    }
}

/// The attention layer of `attend` and `cfm`: independent draws, their seed, the temperature
/// and its rule, SA or USA.
#[derive(Args, Debug, Clone)]
pub struct LayerOpts {
    /// Independent draws of keys (context) and queries, evaluated as one batch.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Random seed; draw s uses stream s of it, queries an independent derived seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Inverse temperature (gamma under --beta-rule log or selective).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub beta: f64,
    /// Temperature rule over the number n of keys (context tokens): const, log (gamma log n)
    /// or selective (gamma n^(2/(d-1))).
    #[arg(long, default_value = "const", value_parser = ["const", "log", "selective"])]
    pub beta_rule: String,
    /// Attention: sa (softmax) or usa (unnormalised: weights exp(s) / n).
    #[arg(long, default_value = "sa", value_parser = ["sa", "usa"])]
    pub model: String,
}

/// `--out DIR` and `--force`.
#[derive(Args, Debug, Clone)]
pub struct OutputOpts {
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite attnflow's files in an existing, non-empty output folder.
    #[arg(long)]
    pub force: bool,
}
