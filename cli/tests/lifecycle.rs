//! The run lifecycle: nothing lost, nothing half-written, no panic on hostile input. Each test
//! names the defect it guards against (issue "Run lifecycle"); each failed before the output
//! module (`attnflow::output`) and the size checks existed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cmd::*;

/// Every file of a folder (recursively, hidden ones skipped) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const SMALL: [&str; 10] = [
    "run",
    "--n",
    "24",
    "--steps",
    "6",
    "--save-every",
    "2",
    "--backend",
    "cpu",
    "--quiet",
];

fn small(out: &str) -> Vec<&str> {
    let mut v = SMALL.to_vec();
    v.extend(["--out", out]);
    v
}

/// Was: `--force` deleted the old results before the new run finished, so a rerun that blew
/// up left no final.npy and no traj.npy.
#[test]
fn a_failed_forced_rerun_leaves_the_earlier_results_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    ok(&small("a"), dir.path());
    let a = dir.path().join("a");
    let before = snapshot(&a);
    assert!(before.keys().any(|p| p.ends_with("traj.npy")));
    // USA at beta 1000 overflows at once (e^1000; the scores themselves are in f32's range,
    // so the run starts).
    let mut bad = small("a");
    bad.extend(["--force", "--model", "usa", "--beta", "1000"]);
    let err = fails(&bad, dir.path());
    assert!(err.contains("NaN or infinite"), "{err}");
    assert_eq!(snapshot(&a), before, "the earlier results changed");
    assert!(
        !a.join(attnflow::output::STAGING).exists(),
        "staging left behind"
    );
    // And a successful forced rerun replaces them, dropping files it no longer writes.
    let rerun = [
        "run",
        "--n",
        "24",
        "--steps",
        "6",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        "a",
        "--force",
        "--seed",
        "3",
    ];
    ok(&rerun, dir.path());
    assert_eq!(
        names(&a),
        [".attnflow.lock", "final.npy", "metrics.csv", "run.toml"]
    );
}

/// Was: `attend --force` and `cfm --force` into a run folder deleted or replaced that run's
/// files, including the file they read as input.
#[test]
fn attend_and_cfm_never_replace_another_commands_files_or_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    ok(&small("a"), dir.path());
    let a = dir.path().join("a");
    let run_files = snapshot(&a);
    // attend writes its own files beside the run's and leaves those as they were.
    ok(
        &[
            "attend",
            "--keys",
            "a/final.npy",
            "--beta",
            "2",
            "--backend",
            "cpu",
            "--out",
            "a",
            "--force",
        ],
        dir.path(),
    );
    let after = snapshot(&a);
    for (p, bytes) in &run_files {
        assert_eq!(after.get(p), Some(bytes), "{} changed", p.display());
    }
    assert!(a.join("outputs.npy").exists() && a.join("attend.toml").exists());
    // cfm would replace the run's final.npy and traj.npy (one of them its input): refused.
    for extra in [&["--context", "a/final.npy"][..], &[][..]] {
        let mut args = vec![
            "cfm",
            "--m",
            "4",
            "--n",
            "24",
            "--steps",
            "2",
            "--backend",
            "cpu",
            "--out",
            "a",
            "--force",
        ];
        args.extend(extra);
        let err = fails(&args, dir.path());
        assert!(
            err.contains("run.toml") && err.contains("final.npy"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&a).len(), after.len());
    for (p, bytes) in &run_files {
        assert_eq!(std::fs::read(p).unwrap(), *bytes, "{} changed", p.display());
    }
    // A run replaying its own run.toml into its own folder with --force would replace its
    // input: refused.
    let err = fails(
        &[
            "run",
            "--config",
            "a/run.toml",
            "--out",
            "a",
            "--force",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(err.contains("run.toml") && err.contains("input"), "{err}");
}

/// Was: `--force` deleted or replaced files of attnflow's names that no attnflow command wrote
/// (a folder holding only the user's Q.npy, K.npy, V.npy lost them to `run --force`; the user's
/// context.npy and traj.npy to `cfm --force`).
#[test]
fn force_never_deletes_or_replaces_files_attnflow_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let qkv = dir.path().join("qkv");
    std::fs::create_dir(&qkv).unwrap();
    for f in ["Q.npy", "K.npy", "V.npy", "notes.txt"] {
        std::fs::write(qkv.join(f), format!("the user's {f}")).unwrap();
    }
    let before = snapshot(&qkv);
    // Nothing of attnflow's names is in the way: the run writes beside the user's files and
    // keeps them.
    ok(&[&small("qkv")[..], &["--force"]].concat(), dir.path());
    let after = snapshot(&qkv);
    for (p, bytes) in &before {
        assert_eq!(after.get(p), Some(bytes), "{} changed", p.display());
    }
    assert!(qkv.join("final.npy").is_file() && qkv.join("run.toml").is_file());
    // A forced rerun replaces the run's own files and still keeps the user's.
    ok(
        &[&small("qkv")[..], &["--force", "--beta", "2"]].concat(),
        dir.path(),
    );
    let again = snapshot(&qkv);
    for (p, bytes) in &before {
        assert_eq!(again.get(p), Some(bytes), "{} changed", p.display());
    }
    // Files of cfm's names that no cfm.toml names: refused, nothing touched.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for f in ["context.npy", "traj.npy", "notes.txt"] {
        std::fs::write(data.join(f), format!("the user's {f}")).unwrap();
    }
    let before = snapshot(&data);
    let err = fails(
        &[
            "cfm",
            "--n",
            "8",
            "--m",
            "2",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--out",
            "data",
            "--force",
        ],
        dir.path(),
    );
    assert!(
        err.contains("traj.npy")
            && !err.contains("context.npy")
            && err.contains("no attnflow command wrote"),
        "{err}"
    );
    assert_eq!(snapshot(&data), before);
    assert_eq!(
        names(&data),
        [".attnflow.lock", "context.npy", "notes.txt", "traj.npy"]
    );
    // The user's context.npy alone is not in the way of a CLI cfm (it keeps no arrays): the
    // forced cfm writes beside it and keeps it.
    std::fs::remove_file(data.join("traj.npy")).unwrap();
    ok(
        &[
            "cfm",
            "--n",
            "8",
            "--m",
            "2",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--out",
            "data",
            "--force",
        ],
        dir.path(),
    );
    assert_eq!(
        std::fs::read(data.join("context.npy")).unwrap(),
        b"the user's context.npy"
    );
    assert!(data.join("cfm.toml").is_file());
}

fn spawn(args: &[&str], cwd: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `path` exists (the other command has locked its folder and started).
fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A run long enough to be caught in the middle (several seconds on the CI machine).
const LONG: [&str; 12] = [
    "run",
    "--n",
    "3000",
    "--steps",
    "400",
    "--save-every",
    "50",
    "--metrics-every",
    "0",
    "--backend",
    "cpu",
    "--quiet",
];

/// Was: two runs started at once into the same new --out both succeeded and left a
/// metrics.csv interleaved from both.
#[test]
fn a_second_command_into_a_busy_folder_fails_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = LONG.to_vec();
    args.extend(["--out", "busy"]);
    let mut first = spawn(&args, dir.path());
    wait_for(&dir.path().join("busy").join(attnflow::output::STAGING));
    let t = Instant::now();
    let err = fails(&small("busy"), dir.path());
    assert!(
        err.contains("in use by another attnflow command")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "it waited");
    // render reads the folder and writes into it: refused too while the run holds it.
    let err = fails(&["render", "busy"], dir.path());
    assert!(
        err.contains("in use by another attnflow command")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let _ = first.kill();
    let _ = first.wait();
}

/// Was: a kill left a traj.npy whose header promised every snapshot (np.load failed) and a
/// run.toml saying "running"; a killed forced rerun lost the earlier results.
#[test]
fn a_killed_command_leaves_the_old_results_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Into a new folder: nothing of it appears.
    let mut args = LONG.to_vec();
    args.extend(["--out", "k"]);
    let mut child = spawn(&args, dir.path());
    let k = dir.path().join("k");
    wait_for(&k.join(attnflow::output::STAGING).join("traj.npy"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        snapshot(&k).is_empty(),
        "files after a kill: {:?}",
        names(&k)
    );
    // Over earlier results: they stay as they were, and the next command cleans up.
    ok(&small("k"), dir.path());
    let before = snapshot(&k);
    let mut forced = LONG.to_vec();
    forced.extend(["--out", "k", "--force"]);
    let mut child = spawn(&forced, dir.path());
    wait_for(&k.join(attnflow::output::STAGING).join("traj.npy"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(snapshot(&k), before);
    assert!(
        k.join(attnflow::output::STAGING).exists(),
        "the kill left its staging"
    );
    let mut again = small("k");
    again.push("--force");
    ok(&again, dir.path());
    assert!(
        !k.join(attnflow::output::STAGING).exists(),
        "stale staging not removed"
    );
}

/// Was: stdout closed or a broken pipe (`attnflow run ... | head -c1`) panicked with exit 101
/// before writing anything.
#[test]
fn a_broken_pipe_on_stdout_is_silent_and_the_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(small("p"))
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once: every write to stdout fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(dir.path().join("p/final.npy").exists());
    // And with stdout closed outright (`attnflow ... >&-`): every write fails with EBADF.
    let mut args = small("closed");
    args.retain(|a| *a != "--quiet");
    let out = Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(&args)
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .pre_exec_close_stdout()
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(dir.path().join("closed/final.npy").exists());
}

/// Closes the child's stdout (fd 1) before it starts, as the shell's `>&-` does.
trait CloseStdout {
    fn pre_exec_close_stdout(&mut self) -> &mut Self;
}

impl CloseStdout for Command {
    fn pre_exec_close_stdout(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: close(2) is async-signal-safe, as pre_exec requires.
        unsafe {
            self.pre_exec(|| {
                libc::close(1);
                Ok(())
            })
        }
    }
}

/// Was: n = 1e12, d = 1e6, batch = 1e11, heads = 1e11, --mlp random:1e12 aborted on a failed
/// allocation (exit 134); d = 1e11 panicked with "capacity overflow"; attend and cfm alike.
#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        ["--n", "1000000000000"],
        ["--d", "1000000"],
        ["--batch", "100000000000"],
        ["--heads", "100000000000"],
        ["--mlp", "random:1000000000000"],
        ["--d", "100000000000"],
    ] {
        let mut args = vec!["run", "--steps", "1", "--out", "big", "--quiet"];
        args.extend(extra);
        let t = Instant::now();
        let err = fails(&args, dir.path());
        assert!(
            err.contains("GiB") || err.contains("overflows"),
            "{extra:?}: {err}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{extra:?} took {:?}",
            t.elapsed()
        );
        assert!(!dir.path().join("big").exists(), "{extra:?} left a folder");
    }
    for args in [
        &["attend", "--keys", "uniform:1000000000000", "--out", "x"][..],
        &["cfm", "--n", "1000000000000", "--m", "4", "--out", "x"][..],
        &[
            "attend",
            "--keys",
            "uniform:100",
            "--d",
            "100000000000",
            "--out",
            "x",
        ][..],
    ] {
        let err = fails(args, dir.path());
        assert!(
            err.contains("GiB") || err.contains("overflows"),
            "{args:?}: {err}"
        );
    }
    // Was: --top-k 18446744073709551615 wrote 3.9 GB of zero-padded stats.csv.
    let err = fails(
        &[
            "attend",
            "--keys",
            "uniform:100",
            "--top-k",
            "18446744073709551615",
            "--out",
            "x",
        ],
        dir.path(),
    );
    assert!(err.contains("--top-k"), "{err}");
}

/// Was: --init vmf:1e16 (any kappa >= 1e16) looped forever in run, attend and cfm.
#[test]
fn huge_vmf_concentrations_finish() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &[
            "run", "--n", "10", "--steps", "1", "--init", "vmf:1e16", "--out", "v1", "--quiet",
        ][..],
        &[
            "run",
            "--n",
            "10",
            "--steps",
            "1",
            "--init",
            "vmf:1e300",
            "--out",
            "v2",
            "--quiet",
        ][..],
        &[
            "attend",
            "--keys",
            "vmf:1e20:40",
            "--backend",
            "cpu",
            "--out",
            "v3",
        ][..],
        &[
            "cfm",
            "--n",
            "10",
            "--m",
            "3",
            "--steps",
            "1",
            "--context",
            "vmf:1e16",
            "--queries",
            "vmf:1e300",
            "--backend",
            "cpu",
            "--out",
            "v4",
            "--quiet",
        ][..],
    ] {
        let t = Instant::now();
        ok(args, dir.path());
        assert!(t.elapsed() < Duration::from_secs(20), "{args:?}");
    }
}

/// Was: a run.toml with `beta` edited but the old `gamma` left ran with the old beta; a replay
/// after the --init file changed gave a different result without a word.
#[test]
fn replays_refuse_what_would_not_reproduce_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&small("a"), d);
    // An --init file, recorded by SHA-256.
    ok(
        &[
            "run",
            "--init",
            "file:a/final.npy",
            "--steps",
            "2",
            "--backend",
            "cpu",
            "--out",
            "b",
            "--quiet",
        ],
        d,
    );
    let toml = std::fs::read_to_string(d.join("b/run.toml")).unwrap();
    assert!(toml.contains("sha256:"), "{toml}");
    // Replaying after the file changed is refused, unless allowed.
    let mut other = small("c");
    other.extend(["--seed", "5"]);
    ok(&other, d);
    std::fs::copy(d.join("c/final.npy"), d.join("a/final.npy")).unwrap();
    let err = fails(
        &["run", "--config", "b/run.toml", "--out", "b2", "--quiet"],
        d,
    );
    assert!(
        err.contains("changed since") && err.contains("--allow-changed-inputs"),
        "{err}"
    );
    ok(
        &[
            "run",
            "--config",
            "b/run.toml",
            "--out",
            "b3",
            "--quiet",
            "--allow-changed-inputs",
        ],
        d,
    );
    // beta edited beside the old gamma.
    let edited = std::fs::read_to_string(d.join("c/run.toml"))
        .unwrap()
        .replace("beta = [1.0]", "beta = [3.0]");
    std::fs::write(d.join("edited.toml"), edited).unwrap();
    let err = fails(
        &["run", "--config", "edited.toml", "--out", "e", "--quiet"],
        d,
    );
    assert!(err.contains("gamma") && err.contains("beta"), "{err}");
}

/// Was: the energy column was `inf` for beta above about 710 (E_beta overflows f64).
#[test]
fn log_energy_is_finite_for_any_beta() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        &[
            "run",
            "--n",
            "8",
            "--beta",
            "1000",
            "--steps",
            "1",
            "--t-end",
            "1e-6",
            "--backend",
            "reference",
            "--out",
            "hot",
            "--quiet",
        ],
        dir.path(),
    );
    let csv = std::fs::read_to_string(dir.path().join("hot/metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "log_energy").unwrap();
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[4], "inf", "E_beta itself overflows here: {line}");
        let log: f64 = cells[col].parse().unwrap();
        // log E = log sum_ij e^{beta <x_i, x_j>} - log(2 beta n^2), at least beta - log(2 beta n)
        // (the n diagonal terms) and at most beta - log(2 beta).
        let (beta, n) = (1000.0f64, 8.0f64);
        assert!(
            log.is_finite()
                && log >= beta - (2.0 * beta * n).ln() - 1e-9
                && log <= beta - (2.0 * beta).ln() + 1e-9,
            "{line}"
        );
    }
}

/// Was: with --metrics-every 0 a blow-up was placed "between step 0 and step 100".
#[test]
fn a_blow_up_names_its_step_with_metrics_off() {
    let dir = tempfile::tempdir().unwrap();
    for backend in ["cpu", "reference"] {
        let err = fails(
            &[
                "run",
                "--n",
                "32",
                "--model",
                "usa",
                "--beta",
                "60",
                "--geometry",
                "euclidean",
                "--t-end",
                "40",
                "--steps",
                "40",
                "--metrics-every",
                "0",
                "--backend",
                backend,
                "--out",
                "blow",
                "--quiet",
            ],
            dir.path(),
        );
        assert!(
            err.contains("in step ") && !err.contains("between step 0"),
            "{backend}: {err}"
        );
        assert!(
            err.contains("euclidean") || err.contains("f32"),
            "{backend}: {err}"
        );
    }
}

/// Was: every blow-up said "reduce the step size or beta", whatever drove it. Each cause is
/// named, and the stable step the message proposes does run.
#[test]
fn each_blow_up_names_its_cause_and_the_proposed_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = |extra: &[&'static str]| {
        let mut v = vec!["run", "--n", "32", "--out", "blow", "--force", "--quiet"];
        v.extend_from_slice(extra);
        v
    };
    // A step too long for USA at beta 1 (T = 100 in 2 steps of the f64 reference).
    let step = [
        "--model",
        "usa",
        "--beta",
        "1",
        "--t-end",
        "100",
        "--backend",
        "reference",
    ];
    let mut args = base(&step);
    args.extend(["--steps", "2"]);
    let err = fails(&args, dir.path());
    assert!(err.contains("h = 50 is too long"), "{err}");
    let steps: String = err
        .split("--steps ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no step count proposed: {err}"))
        .to_string();
    let proposed: usize = steps.parse().unwrap();
    assert!((100..100_000).contains(&proposed), "{err}");
    let mut args = base(&step);
    args.extend(["--steps", &steps]);
    ok(&args, dir.path());
    // Noise, weight scale, and f32 overflow of USA weights with the exponent reached.
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &[
                "--noise",
                "1e38",
                "--integrator",
                "euler",
                "--steps",
                "5",
                "--backend",
                "cpu",
            ],
            &["--noise 1.000e38", "smaller --noise"],
        ),
        (
            &[
                "--qkv",
                "redraw:1",
                "--weight-scale",
                "1e3",
                "--model",
                "usa",
                "--beta",
                "0.001",
                "--steps",
                "5",
                "--backend",
                "reference",
            ],
            &["e^1000", "smaller --weight-scale (now 1000)"],
        ),
        (
            &[
                "--model",
                "usa",
                "--beta",
                "100",
                "--steps",
                "5",
                "--backend",
                "cpu",
            ],
            // Was: "use --backend reference", where f64 fails the same way (no practical step
            // follows weights of e^100).
            &[
                "e^100,",
                "f32 range",
                "in f64 only steps below",
                "smaller beta",
            ],
        ),
    ];
    for (extra, wants) in cases {
        let err = fails(&base(extra), dir.path());
        for want in wants {
            assert!(err.contains(want), "{extra:?}: wanted {want:?} in {err}");
        }
        assert!(!err.contains("--backend reference"), "{err}");
    }
    // Was: USA at beta 1-50 on an f32 backend blamed the f32 range; the cause is the step.
    let err = fails(
        &base(&["--model", "usa", "--beta", "20", "--backend", "cpu"]),
        dir.path(),
    );
    assert!(err.contains("is too long") && !err.contains("f32"), "{err}");
    // Was: an ALiBi blow-up got "reduce the step size or beta" and proposed a step count that
    // failed the same way; it names ALiBi's self-weight e^(lambda / n) now.
    let alibi = [
        "--mask",
        "causal",
        "--model",
        "usa",
        "--alibi-excludes-self",
        "--backend",
        "reference",
        "--steps",
        "100",
        "--alibi",
    ];
    for (lambda, want) in [("1e4", "e^312.5"), ("1e39", "beyond even f64")] {
        let mut args = base(&alibi);
        args.push(lambda);
        let err = fails(&args, dir.path());
        assert!(
            err.contains("--alibi-excludes-self gives a token a USA weight on itself")
                && err.contains(want)
                && !err.contains("--steps 1")
                && !err.contains("--steps 2"),
            "{err}"
        );
    }
    // Was: a beta beyond f32's range was blamed on the step (run, cfm) or the keys (attend);
    // refused before running now, and the f64 reference runs it.
    let huge = ["--beta", "1e39", "--backend", "cpu"];
    for args in [
        base(&huge),
        [
            &["attend", "--keys", "uniform:32", "--out", "a39", "--force"][..],
            &huge,
        ]
        .concat(),
        [
            &[
                "cfm", "--n", "32", "--m", "4", "--steps", "2", "--out", "c39", "--force",
            ][..],
            &huge,
        ]
        .concat(),
    ] {
        let err = fails(&args, dir.path());
        assert!(
            err.contains("reach about 1.000e39") && err.contains("f32 range"),
            "{args:?}: {err}"
        );
        let reference: Vec<&str> = args
            .iter()
            .map(|a| if *a == "cpu" { "reference" } else { a })
            .collect();
        ok(&reference, dir.path());
    }
    // Was: cfm blamed USA weights beyond the floating point range at beta 3 (e^3), where the
    // cause is the step h = 50.
    let err = fails(
        &[
            "cfm",
            "--n",
            "32",
            "--m",
            "4",
            "--steps",
            "2",
            "--beta",
            "3",
            "--model",
            "usa",
            "--t-end",
            "100",
            "--backend",
            "reference",
            "--out",
            "c3",
            "--force",
        ],
        dir.path(),
    );
    assert!(
        err.contains("h = 50 is too long") && !err.contains("USA weights"),
        "{err}"
    );
    // One diagnosis (model/stability.rs): the run of the same model and step proposes the
    // same stable step as cfm, L = (1 + 2 * 3) e^3 and RK4's 2 / L.
    let run = fails(
        &[
            "run",
            "--n",
            "32",
            "--steps",
            "2",
            "--beta",
            "3",
            "--model",
            "usa",
            "--t-end",
            "100",
            "--backend",
            "reference",
            "--out",
            "r3",
            "--force",
        ],
        dir.path(),
    );
    let below = |e: &str| -> f64 {
        let at = e.find("below about ").expect(e) + "below about ".len();
        e[at..]
            .split([' ', ')', ':', ';'])
            .next()
            .unwrap()
            .parse()
            .expect(e)
    };
    let want = 2.0 / (7.0 * 3f64.exp());
    for e in [&err, &run] {
        assert!((below(e) / want - 1.0).abs() < 1e-3, "{e}");
    }
}

/// Was: `render --out` with a bad path printed an internal error dump.
#[test]
fn render_to_a_bad_path_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    ok(&small("a"), dir.path());
    let err = fails(
        &["render", "a", "--out", "no/such/folder/x.png"],
        dir.path(),
    );
    assert!(
        err.contains("does not exist") && !err.contains("Os {"),
        "{err}"
    );
    let err = fails(&["render", "a", "--out", "a"], dir.path());
    assert!(err.contains(".png"), "{err}");
    // Was: a folder one may not write (or a file given as the folder) printed the drawing
    // library's nested error dump.
    let err = fails(&["render", "a", "--out", "a/final.npy/x.png"], dir.path());
    assert!(err.contains("is a file, not a folder"), "{err}");
    let err = fails(&["render", "a", "--out", "/proc/x.png"], dir.path());
    assert!(
        err.contains("/proc/x.png: cannot write")
            && !err.contains("Os {")
            && err.lines().count() == 1,
        "{err}"
    );
}

/// Was: the provenance command line was not shell-quoted.
#[test]
fn the_recorded_command_line_is_shell_quoted() {
    let dir = tempfile::tempdir().unwrap();
    ok(&small("a b"), dir.path());
    let toml = std::fs::read_to_string(dir.path().join("a b/run.toml")).unwrap();
    let table: toml::Table = toml::from_str(&toml).unwrap();
    let command = table["provenance"]["command"].as_str().unwrap();
    assert!(command.ends_with("--out 'a b'"), "{command}");
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on a child we spawned and have not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// A run of a few seconds with snapshots and metrics rows at steps that an interrupt falls
/// between.
fn resumable(out: &str, backend: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "run",
        "--n",
        "2000",
        "--steps",
        "400",
        "--t-end",
        "8",
        "--save-every",
        "7",
        "--metrics-every",
        "3",
        "--quiet",
        "--backend",
        backend,
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if backend != "cpu" {
        // f64 (or the GPU), with every random stream a resume must continue: noise and
        // redrawn weights (drawn on the device by the gpu backend).
        // (llvmpipe's GPU takes about 10 ms a step: a third of the steps.)
        let fast = if backend == "gpu" {
            ["--n", "300", "--steps", "1000", "--t-end", "2"]
        } else {
            ["--n", "300", "--steps", "3000", "--t-end", "6"]
        };
        for pair in fast.chunks(2) {
            let i = v.iter().position(|a| a == pair[0]).unwrap();
            v[i + 1] = pair[1].to_string();
        }
        v.extend(
            [
                "--integrator",
                "euler",
                "--noise",
                "0.2",
                "--qkv",
                "redraw:3",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    }
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn same_files(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} of {} and {} differ",
            a.display(),
            b.display()
        );
    }
}

/// Was: a kill left a traj.npy numpy could not load and a run.toml saying "running", and a
/// stopped run could only start over. SIGINT (exit 130) or SIGTERM (143) now finish the step
/// in progress and write complete files; `--resume` continues to the very bits of the run
/// that was never stopped (cpu: f32 state; reference: f64 with noise and redrawn weights).
#[test]
fn an_interrupted_run_resumes_to_the_bits_of_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut backends = vec![
        ("cpu", libc::SIGINT, 130),
        ("reference", libc::SIGTERM, 143),
    ];
    if common::gpu().is_some() {
        backends.push(("gpu", libc::SIGINT, 130));
    }
    for (backend, sig, code) in backends {
        let full = format!("full-{backend}");
        let part = format!("part-{backend}");
        ok(&strs(&resumable(&full, backend)), d);
        let child = spawn(&strs(&resumable(&part, backend)), d);
        wait_for(
            &d.join(&part)
                .join(attnflow::output::STAGING)
                .join("traj.npy"),
        );
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{backend}: {err}");
        assert!(
            err.contains("interrupted at step") && err.contains(&format!("--resume {part}")),
            "{err}"
        );
        // Complete files for the step it stopped at.
        let p = d.join(&part);
        let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
        let table: toml::Table = toml::from_str(&record).unwrap();
        let prov = table["provenance"].as_table().unwrap();
        let steps = table["steps"].as_integer().unwrap();
        let k = prov["steps_done"].as_integer().unwrap();
        assert!(0 < k && k < steps, "{record}");
        assert_eq!(
            prov["status"].as_str().unwrap(),
            format!("interrupted at step {k} of {steps}")
        );
        let h = table["t_end"].as_float().unwrap() / steps as f64;
        assert!((prov["t_done"].as_float().unwrap() - k as f64 * h).abs() < 1e-12);
        let traj = attnflow::npy::read_f64(&p.join("traj.npy")).unwrap();
        let (_, times) = attnflow::npy::read_as::<f64>(&p.join("traj_t.npy")).unwrap();
        assert_eq!(traj.shape[0] as usize, times.len());
        assert_eq!(traj.shape[0] as i64, k / 7 + 1, "one snapshot per 7 steps");
        let metrics = std::fs::read_to_string(p.join("metrics.csv")).unwrap();
        let last = metrics.lines().last().unwrap();
        assert!(last.starts_with(&format!("{k},")), "{last}");
        attnflow::npy::read_f64(&p.join("final.npy")).unwrap();
        // Continue it: every result file is the uninterrupted run's, bit for bit, metrics.csv
        // included (was: it kept one more row, that of the step it stopped at).
        let said = ok(&["run", "--resume", &part, "--quiet"], d);
        assert!(said.contains(&format!("at step {k} of {steps}")), "{said}");
        same_files(
            &d.join(&full),
            &p,
            &["final.npy", "traj.npy", "traj_t.npy", "metrics.csv"],
        );
        let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
        assert!(
            record.contains("status = \"finished\"")
                && record.contains(&format!("resumed_from_step = {k}")),
            "{record}"
        );
    }
}

/// Was: a SIGKILL or a power cut lost all of a long run. With --checkpoint-every the run
/// continues from its last checkpoint, to the bits of the run never stopped; a plain rerun
/// into the folder does not silently throw the checkpoint away.
#[test]
fn a_killed_run_continues_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&strs(&resumable("full", "cpu")), d);
    let mut args = resumable("k", "cpu");
    args.extend(["--checkpoint-every".into(), "20".into()]);
    let mut child = spawn(&strs(&args), d);
    let staging = d.join("k").join(attnflow::output::STAGING);
    wait_for(&staging.join(attnflow::output::CHECKPOINT_RECORD));
    child.kill().unwrap();
    child.wait().unwrap();
    let err = fails(&strs(&resumable("k", "cpu")), d);
    assert!(err.contains("--resume k"), "{err}");
    let said = ok(&["run", "--resume", "k", "--quiet"], d);
    assert!(
        said.contains("from the checkpoint of a killed run"),
        "{said}"
    );
    same_files(
        &d.join("full"),
        &d.join("k"),
        &["final.npy", "traj.npy", "traj_t.npy", "metrics.csv"],
    );
    assert_eq!(
        names(&d.join("k")),
        [
            ".attnflow.lock",
            "final.npy",
            "metrics.csv",
            "run.toml",
            "traj.npy",
            "traj_t.npy"
        ],
        "the checkpoint is gone once the run is complete"
    );
}

/// An adaptive run of two systems (their steps differ) of a few seconds on the cpu backend,
/// with snapshots so close that a stop usually falls between the two systems' passing of one
/// (partial.npy; measured: a SIGTERM after 1.5 s left one).
fn adaptive_resumable(out: &str) -> Vec<String> {
    [
        "run",
        "--n",
        "1500",
        "--d",
        "2",
        "--beta",
        "4,9",
        "--t-end",
        "40",
        "--integrator",
        "dopri5",
        "--rtol",
        "1e-6",
        "--atol",
        "1e-8",
        "--save-times",
        "log:1e-2:40:400",
        "--metrics-times",
        "log:1e-2:40:20",
        "--quiet",
        "--backend",
        "cpu",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Was: an interrupted adaptive run wrote nothing, and --resume refused adaptive runs. Now a
/// stop (SIGTERM) ends it after the step attempt in progress with complete files and the
/// controller state in run.toml; a kill leaves its last checkpoint (--checkpoint-every
/// counts step attempts); and --resume continues either to the bits of the run never
/// stopped: final.npy, traj.npy, traj_t.npy, metrics.csv and the step statistics.
#[test]
fn an_interrupted_or_killed_adaptive_run_resumes_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&strs(&adaptive_resumable("full")), d);
    let stats = |p: &Path| {
        let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
        let table: toml::Table = toml::from_str(&record).unwrap();
        table["adaptive"]["systems"].clone()
    };
    let files = ["final.npy", "traj.npy", "traj_t.npy", "metrics.csv"];
    // Stopped by SIGTERM once it writes its snapshots.
    let child = spawn(&strs(&adaptive_resumable("int")), d);
    wait_for(
        &d.join("int")
            .join(attnflow::output::STAGING)
            .join("traj.npy"),
    );
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("interrupted at t = ") && err.contains("--resume int"),
        "{err}"
    );
    let p = d.join("int");
    let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
    let table: toml::Table = toml::from_str(&record).unwrap();
    let state = table["adaptive"]["state"].as_table().expect(&record);
    let k = table["provenance"]["steps_done"].as_integer().unwrap();
    assert_eq!(state["attempts"].as_integer(), Some(k), "{record}");
    assert_eq!(state["systems"].as_array().unwrap().len(), 2, "{record}");
    let t_done = table["provenance"]["t_done"].as_float().unwrap();
    assert!(0.0 < t_done && t_done < 40.0, "{record}");
    // Complete files: the snapshots up to the stop, their times, every metrics row.
    let traj = attnflow::npy::read_f64(&p.join("traj.npy")).unwrap();
    let (_, times) = attnflow::npy::read_as::<f64>(&p.join("traj_t.npy")).unwrap();
    assert_eq!(traj.shape[0] as usize, times.len());
    assert!(
        times.iter().all(|&t| t <= t_done),
        "{times:?} past {t_done}"
    );
    let said = ok(&["run", "--resume", "int", "--quiet"], d);
    assert!(said.contains(&format!("after {k} step attempts")), "{said}");
    same_files(&d.join("full"), &p, &files);
    assert_eq!(stats(&d.join("full")), stats(&p));
    let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
    assert!(
        record.contains("status = \"finished\"")
            && record.contains(&format!("resumed_from_step = {k}"))
            && !p.join("partial.npy").exists(),
        "{record}"
    );
    // A finished adaptive run cannot be extended (its last step landed on T).
    let err = fails(&["run", "--resume", "int", "--t-end", "80"], d);
    assert!(err.contains("cannot change on --resume"), "{err}");
    let err = fails(&["run", "--resume", "int"], d);
    assert!(err.contains("the adaptive run is finished"), "{err}");
    // Killed after a checkpoint.
    let mut args = adaptive_resumable("kill");
    args.extend(["--checkpoint-every".into(), "5".into()]);
    let mut child = spawn(&strs(&args), d);
    let staging = d.join("kill").join(attnflow::output::STAGING);
    wait_for(&staging.join(attnflow::output::CHECKPOINT_RECORD));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let said = ok(&["run", "--resume", "kill", "--quiet"], d);
    assert!(
        said.contains("from the checkpoint of a killed run"),
        "{said}"
    );
    same_files(&d.join("full"), &d.join("kill"), &files);
    assert_eq!(stats(&d.join("full")), stats(&d.join("kill")));
    assert_eq!(
        names(&d.join("kill")),
        [
            ".attnflow.lock",
            "final.npy",
            "metrics.csv",
            "run.toml",
            "traj.npy",
            "traj_t.npy"
        ]
    );
}

/// A ros23 run of two systems of about 2.5 s (measured 2.55 s wall, 1.7 s of CPU on the test
/// machine), snapshots at 400 log-spaced times.
fn ros23_resumable(out: &str) -> Vec<String> {
    let mut args = adaptive_resumable(out);
    let at = |args: &[String], flag: &str| args.iter().position(|a| a == flag).unwrap() + 1;
    let (n, integrator, backend) = (
        at(&args, "--n"),
        at(&args, "--integrator"),
        at(&args, "--backend"),
    );
    args[n] = "128".into();
    args[integrator] = "ros23".into();
    args[backend] = "reference".into();
    args
}

/// `--integrator ros23` has the lifecycle of the explicit pairs: Ctrl-C (SIGINT) ends it
/// after the attempt in progress with its controller state (each system's time, next step,
/// rejection flag and statistics) in run.toml, a kill leaves its last checkpoint, and
/// --resume continues either to the bits of the run never stopped, the step statistics and
/// GMRES counts included.
#[test]
fn an_interrupted_or_killed_ros23_run_resumes_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&strs(&ros23_resumable("full")), d);
    let stats = |p: &Path| {
        let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
        let table: toml::Table = toml::from_str(&record).unwrap();
        assert_eq!(table["adaptive"]["pair"].as_str(), Some("ros23"));
        table["adaptive"]["systems"].clone()
    };
    let files = ["final.npy", "traj.npy", "traj_t.npy", "metrics.csv"];
    let child = spawn(&strs(&ros23_resumable("int")), d);
    wait_for(
        &d.join("int")
            .join(attnflow::output::STAGING)
            .join("traj.npy"),
    );
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume int"), "{err}");
    let p = d.join("int");
    let record = std::fs::read_to_string(p.join("run.toml")).unwrap();
    let table: toml::Table = toml::from_str(&record).unwrap();
    let state = table["adaptive"]["state"].as_table().expect(&record);
    let k = table["provenance"]["steps_done"].as_integer().unwrap();
    assert_eq!(state["attempts"].as_integer(), Some(k), "{record}");
    let t_done = table["provenance"]["t_done"].as_float().unwrap();
    assert!(0.0 < t_done && t_done < 40.0, "{record}");
    let said = ok(&["run", "--resume", "int", "--quiet"], d);
    assert!(said.contains(&format!("after {k} step attempts")), "{said}");
    same_files(&d.join("full"), &p, &files);
    assert_eq!(stats(&d.join("full")), stats(&p));
    // Killed after a checkpoint.
    let mut args = ros23_resumable("kill");
    args.extend(["--checkpoint-every".into(), "5".into()]);
    let mut child = spawn(&strs(&args), d);
    let staging = d.join("kill").join(attnflow::output::STAGING);
    wait_for(&staging.join(attnflow::output::CHECKPOINT_RECORD));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let said = ok(&["run", "--resume", "kill", "--quiet"], d);
    assert!(
        said.contains("from the checkpoint of a killed run"),
        "{said}"
    );
    same_files(&d.join("full"), &d.join("kill"), &files);
    assert_eq!(stats(&d.join("full")), stats(&d.join("kill")));
}

/// A copy of a folder (hidden files and subfolders included).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Keeps the first `keep` bytes of a file.
fn cut(path: &Path, keep: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    assert!(f.metadata().unwrap().len() > keep, "{}", path.display());
    f.set_len(keep).unwrap();
}

/// Replaces `from` by `to` in a text file (which must hold it).
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}: {text}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `--resume` on a copy of `orig` spoiled by `spoil`: refused naming `names` (a file name),
/// and the copy's files are untouched (nothing zero-filled, nothing labelled finished).
fn refused_resume(d: &Path, orig: &str, case: &str, names: &str, spoil: impl Fn(&Path)) {
    let copy = d.join(case);
    copy_dir(&d.join(orig), &copy);
    spoil(&copy);
    let before = snapshot(&copy);
    let err = fails(&["run", "--resume", case, "--quiet"], d);
    assert!(
        err.contains(names) && err.lines().count() == 1 && !err.contains("panic"),
        "{case}: {err}"
    );
    assert!(
        err.contains("restore it, or start a new run") || err.contains("start a new run"),
        "{case}: {err}"
    );
    assert_eq!(
        snapshot(&copy),
        before,
        "{case}: a refused resume changed the folder"
    );
}

/// Was: `--resume` trusted the files it continued from. A truncated traj.npy was zero-filled
/// (frames 4-15 of zeros, status finished), a cut metrics.csv kept a broken row, and an edited
/// `steps_done` ran one step and was labelled finished. Now run.toml's `[outputs]` and a
/// checkpoint's record hold the step and each file's size and SHA-256, and `--resume` refuses
/// what differs, naming the file; the unspoiled folder still resumes.
#[test]
fn a_resume_refuses_files_changed_since_their_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Stopped by SIGINT: complete files and run.toml.
    let child = spawn(&strs(&resumable("int", "cpu")), d);
    wait_for(
        &d.join("int")
            .join(attnflow::output::STAGING)
            .join("traj.npy"),
    );
    signal(&child, libc::SIGINT);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    let k = {
        let record = std::fs::read_to_string(d.join("int/run.toml")).unwrap();
        let table: toml::Table = toml::from_str(&record).unwrap();
        table["provenance"]["steps_done"].as_integer().unwrap()
    };
    refused_resume(d, "int", "int-traj", "traj.npy", |p| {
        cut(&p.join("traj.npy"), 500)
    });
    refused_resume(d, "int", "int-metrics", "metrics.csv", |p| {
        let len = std::fs::metadata(p.join("metrics.csv")).unwrap().len();
        cut(&p.join("metrics.csv"), len / 2 + 3)
    });
    refused_resume(d, "int", "int-final", "final.npy", |p| {
        let mut bytes = std::fs::read(p.join("final.npy")).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(p.join("final.npy"), bytes).unwrap();
    });
    refused_resume(d, "int", "int-steps", "run.toml", |p| {
        edit(
            &p.join("run.toml"),
            &format!("steps_done = {k}"),
            "steps_done = 399",
        )
    });

    // Killed (SIGKILL) after a checkpoint: the staging folder holds the checkpoint.
    let mut args = resumable("kill", "cpu");
    args.extend(["--checkpoint-every".into(), "5".into()]);
    let mut child = spawn(&strs(&args), d);
    let staging = d.join("kill").join(attnflow::output::STAGING);
    wait_for(&staging.join(attnflow::output::CHECKPOINT_RECORD));
    // A checkpoint with a few snapshots in it.
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(staging.join(attnflow::output::CHECKPOINT_RECORD))
            .unwrap_or_default();
        if text.contains("frames = ")
            && !text.contains("frames = 1\n")
            && !text.contains("frames = 0\n")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint with frames: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stage = attnflow::output::STAGING;
    let record = attnflow::output::CHECKPOINT_RECORD;
    refused_resume(d, "kill", "kill-traj", "traj.npy", |p| {
        cut(&p.join(stage).join("traj.npy"), 200)
    });
    refused_resume(d, "kill", "kill-metrics", "metrics.csv", |p| {
        cut(&p.join(stage).join("metrics.csv"), 300)
    });
    refused_resume(d, "kill", "kill-state", ".npy", |p| {
        let state = std::fs::read_dir(p.join(stage))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|e| e.to_string_lossy().contains(".checkpoint-"))
            .filter(|e| e.extension().is_some_and(|x| x == "npy"))
            .unwrap();
        let mut bytes = std::fs::read(&state).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&state, bytes).unwrap();
    });
    refused_resume(d, "kill", "kill-steps", record, |p| {
        let path = p.join(stage).join(record);
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let k = table["provenance"]["steps_done"].as_integer().unwrap();
        edit(
            &path,
            &format!("steps_done = {k}"),
            &format!("steps_done = {}", k + 2),
        );
    });
    // The folders as they were resume, to the uninterrupted run's bits.
    ok(&strs(&resumable("full", "cpu")), d);
    for part in ["int", "kill"] {
        ok(&["run", "--resume", part, "--quiet"], d);
        same_files(
            &d.join("full"),
            &d.join(part),
            &["final.npy", "traj.npy", "traj_t.npy", "metrics.csv"],
        );
    }
}

/// A finished run extends to a later time: the same bits as the longer run; what cannot be
/// the same run is refused in one line.
#[test]
fn a_finished_run_extends_bit_for_bit_and_mismatches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = [
        "run",
        "--n",
        "24",
        "--backend",
        "cpu",
        "--save-every",
        "2",
        "--quiet",
    ];
    let with = |extra: &[&'static str]| {
        let mut v = base.to_vec();
        v.extend(extra);
        v
    };
    ok(
        &with(&["--t-end", "5", "--steps", "10", "--out", "long"]),
        d,
    );
    ok(
        &with(&["--t-end", "3", "--steps", "6", "--out", "short"]),
        d,
    );
    ok(
        &with(&["--t-end", "3", "--steps", "6", "--out", "short2"]),
        d,
    );
    let err = fails(&["run", "--resume", "short", "--quiet"], d);
    assert!(err.contains("finished") && err.contains("--t-end"), "{err}");
    let err = fails(
        &["run", "--resume", "short", "--t-end", "5", "--steps", "7"],
        d,
    );
    assert!(err.contains("step size"), "{err}");
    let err = fails(&["run", "--resume", "short", "--t-end", "5.2"], d);
    assert!(err.contains("whole number of steps"), "{err}");
    let err = fails(&["run", "--resume", "short", "--steps", "4"], d);
    assert!(err.contains("fewer"), "{err}");
    let err = fails(&["run", "--resume", "nowhere"], d);
    assert!(err.contains("not a folder"), "{err}");
    let o = attnflow(&["run", "--resume", "short", "--n", "5"], d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    ok(&["run", "--resume", "short", "--t-end", "5", "--quiet"], d);
    ok(
        &["run", "--resume", "short2", "--steps", "10", "--quiet"],
        d,
    );
    for resumed in ["short", "short2"] {
        same_files(&d.join("long"), &d.join(resumed), &["final.npy"]);
    }
}

/// A second signal ends the command at once; the folder keeps the earlier results, byte for
/// byte (the stopped run's files were only staged).
#[test]
fn a_second_signal_exits_at_once_leaving_the_earlier_results() {
    let dir = tempfile::tempdir().unwrap();
    ok(&small("s"), dir.path());
    let before = snapshot(&dir.path().join("s"));
    let mut args = LONG.to_vec();
    args.extend(["--out", "s", "--force"]);
    let child = spawn(&args, dir.path());
    wait_for(
        &dir.path()
            .join("s")
            .join(attnflow::output::STAGING)
            .join("traj.npy"),
    );
    signal(&child, libc::SIGTERM);
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    // Whichever signal is handled second names the exit code: when both are pending at once,
    // Linux delivers the lower-numbered SIGINT first, and SIGTERM's 143 ends the process.
    assert!(
        matches!(out.status.code(), Some(130 | 143)),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("interrupted at"),
        "a second signal must not wait for the step: {}",
        stderr(&out)
    );
    assert_eq!(snapshot(&dir.path().join("s")), before);
}

/// Was: a full disk left a truncated final.npy. A file size limit (RLIMIT_FSIZE, with
/// SIGXFSZ ignored, so writes fail as on a full disk) makes the forced rerun fail in one line;
/// the earlier results stay byte for byte and no staging folder is left.
#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_earlier_results() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    ok(&small("f"), dir.path());
    let before = snapshot(&dir.path().join("f"));
    let mut args = LONG.to_vec();
    args.extend(["--out", "f", "--force"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_attnflow"));
    cmd.args(&args)
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 200_000,
                rlim_max: 200_000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("traj.npy") && err.contains("cannot write"),
        "{err}"
    );
    assert_eq!(snapshot(&dir.path().join("f")), before);
    assert!(
        !dir.path()
            .join("f")
            .join(attnflow::output::STAGING)
            .exists()
    );
}
