//! Every check of an experiment can fail: each experiment names deliberate errors in its
//! physics (`--mutate`: a wrong rule, a wrong sign, a missing term), and under each of them at
//! least one of its checks at the quick size must be false. An experiment without mutations
//! fails this test.

use attnflow::config::BackendChoice;
use attnflow::experiments::{self, NAMES, Setup};

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

#[test]
fn every_mutation_of_every_experiment_fails_a_check() {
    let mut report = Vec::new();
    for name in NAMES {
        let mutations = experiments::mutations(name);
        assert!(!mutations.is_empty(), "{name} has no mutations");
        for m in mutations {
            let failed = failed_checks(name, m);
            assert!(
                !failed.is_empty(),
                "{name} --mutate {m}: every check still holds"
            );
            report.push(format!("{name} --mutate {m}: fails {}", failed.join(", ")));
        }
    }
    eprintln!("{}", report.join("\n"));
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
