//! `attnflow run --integrator dopri5` (docs/adaptive.md): the files, the step statistics in
//! run.toml, snapshots at the asked times by dense output, a replay of its run.toml, and the
//! refusals.

mod common;

use common::cmd::*;

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("attnflow-adaptive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn adaptive_run_writes_its_times_and_statistics() {
    let dir = tempdir("run");
    let args = [
        "run",
        "--n",
        "48",
        "--d",
        "2",
        "--beta",
        "4,9",
        "--t-end",
        "30",
        "--integrator",
        "dopri5",
        "--rtol",
        "1e-5",
        "--atol",
        "1e-7",
        "--save-times",
        "log:1e-2:30:12",
        "--backend",
        "reference",
        "--out",
        "a",
        "--quiet",
    ];
    ok(&args, &dir);
    let a = dir.join("a");
    let record = std::fs::read_to_string(a.join("run.toml")).unwrap();
    let table: toml::Table = record.parse().unwrap();
    let systems = table["adaptive"]["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2, "{record}");
    for s in systems {
        let accepted = s["accepted"].as_integer().unwrap();
        let evaluations = s["evaluations"].as_integer().unwrap();
        // Seven stages, the first shared with the last step (FSAL): about 6 per step.
        assert!(accepted > 5 && evaluations >= 6 * accepted, "{record}");
        let (lo, hi) = (
            s["h_smallest"].as_float().unwrap(),
            s["h_largest"].as_float().unwrap(),
        );
        assert!(0.0 < lo && lo <= hi, "{record}");
    }
    let (shape, t): (Vec<u64>, Vec<f64>) = attnflow::npy::read_as(&a.join("traj_t.npy")).unwrap();
    assert_eq!(shape, vec![12]);
    assert!((t[0] - 1e-2).abs() < 1e-15 && t[11] == 30.0, "{t:?}");
    let (shape, x): (Vec<u64>, Vec<f64>) = attnflow::npy::read_as(&a.join("traj.npy")).unwrap();
    assert_eq!(shape, vec![12, 2, 48, 2]);
    for tok in x.chunks(2) {
        let norm = (tok[0] * tok[0] + tok[1] * tok[1]).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-12,
            "snapshot token off the sphere: {norm}"
        );
    }
    // The last snapshot is the final state.
    let (_, last): (Vec<u64>, Vec<f64>) = attnflow::npy::read_as(&a.join("final.npy")).unwrap();
    let diff = x[11 * 2 * 48 * 2..]
        .iter()
        .zip(&last)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        diff < 1e-15,
        "last snapshot differs from final.npy by {diff:e}"
    );
    // metrics.csv: 0, the save times and T, per system.
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 13, "{csv}");
    // Replaying run.toml gives the same bits.
    ok(
        &["run", "--config", "a/run.toml", "--out", "b", "--quiet"],
        &dir,
    );
    for f in ["final.npy", "traj.npy", "metrics.csv"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(dir.join("b").join(f)).unwrap(),
            "{f} differs on replay"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn adaptive_options_are_refused_where_they_do_not_apply() {
    let dir = tempdir("refuse");
    let base = ["run", "--n", "16", "--d", "2", "--quiet"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    for (extra, want) in [
        (
            &["--rtol", "1e-6"][..],
            "--rtol is an option of adaptive stepping",
        ),
        (
            &["--integrator", "dopri5", "--save-every", "2"][..],
            "--save-times instead",
        ),
        (
            &["--integrator", "tsit5", "--save-times", "0,99"][..],
            "within [0, --t-end",
        ),
        (
            &["--integrator", "bosh3", "--save-times", "log:0:1:3"][..],
            "0 < START < END",
        ),
        (
            &["--integrator", "dopri5", "--layer", "ngpt"][..],
            "no time step to adapt",
        ),
        (
            &["--integrator", "dopri5", "--rtol", "0"][..],
            "positive and finite",
        ),
        (
            &[
                "--integrator",
                "dopri5",
                "--rtol",
                "1e-9",
                "--backend",
                "cpu",
            ][..],
            "f32",
        ),
    ] {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let err = fails(&args, &dir);
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
