//! `attnflow experiment NAME`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use attnflow::options::BackendOpt;
use attnflow_experiments::{self as experiments, Setup};

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// The experiment: clustering, metastability, phase-diagram, critical-scaling,
    /// selectivity, chaos, lost-in-the-middle, integrator-order, kde-modes, homogenisation,
    /// empirical-bayes, synchronisation, value-spectrum, transport, perceptron-equilibria.
    name: String,
    /// The small size (under a minute on the CPU) instead of the default (meant for a GPU).
    #[arg(long)]
    quick: bool,
    /// Random seed of every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    backend: BackendOpt,
    /// Output folder [default: runs/NAME].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overwrite attnflow's files in an existing, non-empty output folder.
    #[arg(long)]
    force: bool,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
    /// Set a size or physical parameter of the experiment, replacing the quick or default
    /// value (repeatable): --set n=256 --set lambda=1 --set d=8,128. The names are the keys of
    /// summary.json's config; an unknown name lists the experiment's parameters.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_param)]
    set: Vec<(String, String)>,
    /// Run with a deliberate error in the physics (a wrong rule, a wrong sign, a missing term),
    /// to see at least one check fail; the experiment's mutations are listed on a wrong name.
    #[arg(long, value_name = "NAME")]
    mutate: Option<String>,
}

fn parse_param(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().replace('-', "_"), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

pub fn experiment(args: ExperimentArgs) -> Result<()> {
    experiments::find(&args.name)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}", args.name)));
    let backend = args.backend.choice;
    outln!(
        "attnflow experiment {}{} (seed {}) -> {}",
        args.name,
        if args.quick { " --quick" } else { "" },
        args.seed,
        out.display()
    );
    let setup = Setup {
        out: out.clone(),
        force: args.force,
        quick: args.quick,
        seed: args.seed,
        backend,
        progress: !args.quiet,
        params: args.set.iter().cloned().collect(),
        mutate: args.mutate.clone(),
        applied: Default::default(),
        command: attnflow::output::shell_command(&std::env::args().collect::<Vec<_>>()),
    };
    let summary = experiments::run(&args.name, &setup)?;
    outln!("backend: {}", summary["backend"].as_str().unwrap_or("?"));
    for (k, v) in summary["measured"].as_object().into_iter().flatten() {
        let text = v.to_string();
        if text.len() <= 160 {
            outln!("  {k}: {text}");
        }
    }
    for line in experiments::check_lines(&summary) {
        outln!("  {line}");
    }
    let files: Vec<&str> = summary["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .collect();
    outln!(
        "wrote {} in {:.1} s: summary.json, {}",
        out.display(),
        summary["provenance"]["elapsed_s"].as_f64().unwrap_or(0.0),
        files.join(", ")
    );
    Ok(())
}
