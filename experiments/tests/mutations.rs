//! Every check of an experiment can fail: each experiment names deliberate errors in its
//! physics (`--mutate`: a wrong rule, a wrong sign, a missing term, a wrong model named in
//! issue 24), and under each of them at least one of its evidence checks at the quick size
//! must be false. Every check that is evidence at the quick size (summary.json's
//! `check_details`) fails under at least one mutation, and under each mutation it says it
//! rejects; a check no mutation can fail must be labelled smoke (`"evidence": false`). An
//! experiment without mutations fails this test.
//!
//! One test per experiment, so that the harness runs them side by side; the mutated runs of
//! an experiment are independent and run in parallel too (rayon). The unmutated quick run of
//! each experiment, with every check true, is its own unit test (`quick_run_checked`).

use attnflow::config::BackendChoice;
use attnflow_experiments::{self as experiments, Setup};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// The summary of `name --quick --mutate mutation` on the CPU.
fn mutated_run(name: &str, mutation: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        quick: true,
        backend: BackendChoice::Cpu,
        mutate: Some(mutation.into()),
        ..Setup::new(dir.path().join("out"))
    };
    experiments::run(name, &setup)
        .unwrap_or_else(|e| panic!("{name} --mutate {mutation} did not run: {e}"))
}

/// The checks of a summary that failed, and whether each is evidence (from `check_details`).
fn failed_checks(name: &str, mutation: &str, summary: &Value) -> Vec<(String, bool)> {
    let checks = summary["checks"].as_object().expect("checks");
    assert!(!checks.is_empty(), "{name}: no checks");
    let details = summary["check_details"].as_object().expect("check_details");
    checks
        .iter()
        .map(|(k, v)| {
            let d = details
                .get(k)
                .unwrap_or_else(|| panic!("{name}: check {k} has no check_details entry"));
            assert_eq!(
                d["pass"].as_bool(),
                v.as_bool(),
                "{name} --mutate {mutation}: check {k} and its details disagree: {d}"
            );
            (
                k,
                v.as_bool() == Some(true),
                d["evidence"].as_bool() == Some(true),
            )
        })
        .filter(|(_, ok, _)| !ok)
        .map(|(k, _, evidence)| (k.clone(), evidence))
        .collect()
}

/// Runs every mutation of `name` (in parallel) and asserts that each fails an evidence
/// check; that every evidence check fails under some mutation (else it must be labelled
/// smoke); and that a typed check fails under each mutation it says it rejects.
fn every_mutation_fails_a_check(name: &str) {
    let mutations = experiments::find(name).unwrap().mutations;
    assert!(!mutations.is_empty(), "{name} has no mutations");
    let runs: Vec<(&str, Value)> = mutations
        .par_iter()
        .map(|m| (*m, mutated_run(name, m)))
        .collect();
    let mut report = Vec::new();
    let mut rejected: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut evidence: BTreeMap<String, bool> = BTreeMap::new();
    for (m, summary) in &runs {
        let failed = failed_checks(name, m, summary);
        for (k, d) in summary["check_details"].as_object().unwrap() {
            let e = d["evidence"].as_bool() == Some(true);
            let was = *evidence.entry(k.clone()).or_insert(e);
            assert_eq!(
                was, e,
                "{name}: check {k} is evidence in one run, smoke in another"
            );
            rejected.entry(k.clone()).or_default();
        }
        for (k, _) in &failed {
            rejected.get_mut(k).unwrap().push(m);
        }
        assert!(
            failed.iter().any(|(_, e)| *e),
            "{name} --mutate {m}: every evidence check still holds (failed: {failed:?})"
        );
        report.push(format!(
            "{name} --mutate {m}: fails {}",
            failed
                .iter()
                .map(|(k, e)| if *e {
                    k.clone()
                } else {
                    format!("{k} (smoke)")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    eprintln!("{}", report.join("\n"));
    let mut problems = Vec::new();
    for (k, by) in &rejected {
        if evidence[k] && by.is_empty() {
            problems.push(format!(
                "{name}: check {k} is evidence but no mutation fails it at quick size: \
                 give it a wrong model it rejects or label it smoke"
            ));
        }
    }
    for (_, summary) in runs.iter().take(1) {
        for (k, d) in summary["check_details"].as_object().unwrap() {
            for m in d["rejects"].as_array().into_iter().flatten() {
                let m = m.as_str().unwrap();
                assert!(
                    mutations.contains(&m),
                    "{name}: check {k} rejects an unknown mutation {m}"
                );
                if evidence[k] && !rejected[k].contains(&m) {
                    problems.push(format!(
                        "{name}: check {k} says it rejects --mutate {m}, but holds under it"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
