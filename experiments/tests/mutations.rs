//! Every check of an experiment can fail: each experiment names deliberate errors in its
//! physics (`--mutate`: a wrong rule, a wrong sign, a missing term), and under each of them at
//! least one of its checks at the quick size must be false. An experiment without mutations
//! fails this test.
//!
//! One test per experiment, so that the harness runs them side by side; the mutated runs of
//! an experiment are independent and run in parallel too (rayon). The unmutated quick run of
//! each experiment, with every check true, is its own unit test (`quick_run_checked`).

use attnflow::config::BackendChoice;
use attnflow_experiments::{self as experiments, Setup};
use rayon::prelude::*;

fn failed_checks(name: &str, mutation: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        quick: true,
        backend: BackendChoice::Cpu,
        mutate: Some(mutation.into()),
        ..Setup::new(dir.path().join("out"))
    };
    let summary = experiments::run(name, &setup)
        .unwrap_or_else(|e| panic!("{name} --mutate {mutation} did not run: {e}"));
    let checks = summary["checks"].as_object().expect("checks");
    assert!(!checks.is_empty(), "{name}: no checks");
    checks
        .iter()
        .filter(|(_, v)| v.as_bool() != Some(true))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Runs every mutation of `name` (in parallel) and asserts each fails a check.
fn every_mutation_fails_a_check(name: &str) {
    let mutations = experiments::find(name).unwrap().mutations;
    assert!(!mutations.is_empty(), "{name} has no mutations");
    let report: Vec<String> = mutations
        .par_iter()
        .map(|m| {
            let failed = failed_checks(name, m);
            assert!(
                !failed.is_empty(),
                "{name} --mutate {m}: every check still holds"
            );
            format!("{name} --mutate {m}: fails {}", failed.join(", "))
        })
        .collect();
    eprintln!("{}", report.join("\n"));
}

macro_rules! mutation_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                every_mutation_fails_a_check($name);
            }
        )*

        /// The tests above cover every experiment of the registry, and no other name.
        #[test]
        fn every_experiment_has_a_mutation_test() {
            let tested = [$($name),*];
            let registered = experiments::names();
            assert_eq!(tested.len(), registered.len(), "{tested:?} against {registered:?}");
            for name in registered {
                assert!(tested.contains(&name), "{name} has no mutation test here");
            }
        }
    };
}

mutation_tests! {
    clustering => "clustering",
    metastability => "metastability",
    phase_diagram => "phase-diagram",
    critical_scaling => "critical-scaling",
    selectivity => "selectivity",
    chaos => "chaos",
    lost_in_the_middle => "lost-in-the-middle",
    integrator_order => "integrator-order",
    kde_modes => "kde-modes",
    homogenisation => "homogenisation",
    empirical_bayes => "empirical-bayes",
    synchronisation => "synchronisation",
    value_spectrum => "value-spectrum",
    transport => "transport",
    perceptron_equilibria => "perceptron-equilibria",
}

#[test]
fn an_unknown_mutation_is_refused_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        quick: true,
        mutate: Some("no-such-thing".into()),
        ..Setup::new(dir.path().join("out"))
    };
    let e = experiments::run("clustering", &setup)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--mutate no-such-thing"), "{e}");
    assert!(!dir.path().join("out").exists());
}
