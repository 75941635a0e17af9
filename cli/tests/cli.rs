//! The `attnflow` command end to end: output files and their shapes, reproducibility from
//! run.toml, config files with flags on top, and one-line errors (never a panic) for bad input.

mod common;

use attnflow::npy;
use common::cmd::{attnflow, ok, stderr};

#[test]
fn run_writes_final_metrics_config_and_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        &[
            "run",
            "--n",
            "40",
            "--d",
            "3",
            "--beta",
            "0.5,2",
            "--steps",
            "10",
            "--t-end",
            "1",
            "--save-every",
            "4",
            "--metrics-every",
            "5",
            "--backend",
            "cpu",
            "--out",
            "a",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(out.contains("batch = 2"), "{out}");
    let a = dir.path().join("a");
    let (shape, x) = npy::read_as::<f32>(&a.join("final.npy")).unwrap();
    assert_eq!(shape, [2, 40, 3]);
    assert!(
        x.chunks(3)
            .all(|t| (t.iter().map(|v| v * v).sum::<f32>().sqrt() - 1.0).abs() < 1e-6)
    );
    // Snapshots at steps 0, 4, 8 and the last step 10.
    let (tshape, _) = npy::read_as::<f32>(&a.join("traj.npy")).unwrap();
    assert_eq!(tshape, [4, 2, 40, 3]);
    let (_, times) = npy::read_as::<f64>(&a.join("traj_t.npy")).unwrap();
    assert_eq!(times, [0.0, 0.4, 0.8, 1.0]);
    // The last snapshot is the final state.
    let (_, traj) = npy::read_as::<f32>(&a.join("traj.npy")).unwrap();
    assert_eq!(&traj[3 * 240..], &x[..]);
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "step,t,system,beta,energy,mean_cos,min_cos,log_energy"
    );
    // Steps 0, 5, 10, two systems each.
    assert_eq!(lines.len(), 1 + 3 * 2, "{csv}");
    assert!(lines[2].starts_with("0,0,1,2,"), "{}", lines[2]);
    let run = std::fs::read_to_string(a.join("run.toml")).unwrap();
    let table: toml::Table = toml::from_str(&run).unwrap();
    assert_eq!(table["beta"].as_array().unwrap().len(), 2);
    assert_eq!(table["backend"].as_str(), Some("cpu"));
    assert_eq!(table["provenance"]["status"].as_str(), Some("finished"));
}

#[test]
fn run_toml_reproduces_the_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        &[
            "run",
            "--n",
            "30",
            "--d",
            "4",
            "--model",
            "usa",
            "--mask",
            "causal",
            "--qkv",
            "random:5",
            "--init",
            "vmf:2",
            "--seed",
            "9",
            "--steps",
            "6",
            "--t-end",
            "0.3",
            "--backend",
            "cpu",
            "--out",
            "first",
            "--quiet",
        ],
        dir.path(),
    );
    ok(
        &[
            "run",
            "--config",
            "first/run.toml",
            "--out",
            "again",
            "--quiet",
        ],
        dir.path(),
    );
    let read = |p: &str| std::fs::read(dir.path().join(p).join("final.npy")).unwrap();
    assert_eq!(read("first"), read("again"));
}

#[test]
fn flags_override_the_config_file_and_the_reference_writes_f64() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("my.toml"),
        "n = 12\nd = 5\nbeta = [1.0, 3.0]\nsteps = 3\nt_end = 0.1\nbackend = \"cpu\"\ngeometry = \"euclidean\"\n",
    )
    .unwrap();
    ok(
        &[
            "run",
            "--config",
            "my.toml",
            "--backend",
            "reference",
            "--n",
            "9",
            "--out",
            "r",
            "--quiet",
        ],
        dir.path(),
    );
    let (shape, _) = npy::read_as::<f64>(&dir.path().join("r/final.npy")).unwrap();
    assert_eq!(shape, [2, 9, 5]);
    let run = std::fs::read_to_string(dir.path().join("r/run.toml")).unwrap();
    assert!(
        run.contains("backend = \"reference\"") && run.contains("geometry = \"euclidean\""),
        "{run}"
    );
}

#[test]
fn init_file_sets_n_and_d_and_is_shared_by_the_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<f64> = (0..7 * 3)
        .map(|i| ((i * 37 % 11) as f64) - 5.0 + 0.5)
        .collect();
    npy::write(&dir.path().join("x.npy"), &[7, 3], &tokens).unwrap();
    ok(
        &[
            "run",
            "--init",
            "file:x.npy",
            "--batch",
            "2",
            "--steps",
            "1",
            "--t-end",
            "1e-9",
            "--backend",
            "reference",
            "--out",
            "o",
            "--quiet",
        ],
        dir.path(),
    );
    let (shape, x) = npy::read_as::<f64>(&dir.path().join("o/final.npy")).unwrap();
    assert_eq!(shape, [2, 7, 3]);
    // Normalised on input, then barely moved; both systems start from the file.
    let norm = (tokens[0] * tokens[0] + tokens[1] * tokens[1] + tokens[2] * tokens[2]).sqrt();
    assert!((x[0] - tokens[0] / norm).abs() < 1e-6 && (x[21] - tokens[0] / norm).abs() < 1e-6);
}

#[test]
fn auto_backend_says_which_backend_it_uses() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        &["run", "--n", "16", "--steps", "1", "--out", "o", "--quiet"],
        dir.path(),
    );
    let chosen = out
        .lines()
        .find(|l| l.starts_with("backend: "))
        .expect("a backend line");
    assert!(
        chosen.starts_with("backend: gpu") || chosen.starts_with("backend: cpu"),
        "{out}"
    );
    if chosen.starts_with("backend: cpu") {
        assert!(
            out.contains("falling back to the cpu backend"),
            "the fallback is said plainly:\n{out}"
        );
    }
}

#[test]
fn an_existing_output_folder_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--n",
        "8",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--out",
        "o",
        "--quiet",
    ];
    ok(&args, dir.path());
    std::fs::write(dir.path().join("o/notes.txt"), "mine").unwrap();
    let o = attnflow(&args, dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let mut forced = args.to_vec();
    forced.push("--force");
    ok(&forced, dir.path());
    // --force replaces attnflow's files only.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o/notes.txt")).unwrap(),
        "mine"
    );
}

/// Each bad input: non-zero exit, one line on stderr that starts with "error:" and names the
/// problem, and no panic.
#[test]
fn bad_input_gets_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    npy::write(&p.join("x_7x3.npy"), &[7, 3], &[0.5f64; 21]).unwrap();
    let mut nan = vec![0.5f32; 21];
    nan[10] = f32::NAN;
    npy::write(&p.join("nan.npy"), &[7, 3], &nan).unwrap();
    let mut inf = vec![0.5f64; 21];
    inf[4] = f64::INFINITY;
    npy::write(&p.join("inf.npy"), &[7, 3], &inf).unwrap();
    let mut zero = vec![0.5f64; 21];
    zero[6..9].fill(0.0);
    npy::write(&p.join("zero.npy"), &[7, 3], &zero).unwrap();
    npy::write(&p.join("four_d.npy"), &[1, 1, 7, 3], &[0.5f64; 21]).unwrap();
    let whole = std::fs::read(p.join("x_7x3.npy")).unwrap();
    std::fs::write(p.join("truncated.npy"), &whole[..whole.len() - 20]).unwrap();
    std::fs::write(p.join("not_npy.npy"), "hello").unwrap();
    std::fs::create_dir(p.join("qkv_bad")).unwrap();
    for m in ["Q", "K", "V"] {
        npy::write(
            &p.join(format!("qkv_bad/{m}.npy")),
            &[2, 2],
            &[1.0f64, 0.0, 0.0, 1.0],
        )
        .unwrap();
    }
    std::fs::create_dir(p.join("qkv_missing")).unwrap();
    npy::write(&p.join("qkv_missing/Q.npy"), &[3, 3], &[0.0f64; 9]).unwrap();
    // Weight files whose shapes disagree: 2 query heads, 3 key heads; a perceptron whose A
    // has 5 rows where W has 4 columns.
    std::fs::create_dir(p.join("qkv_heads")).unwrap();
    for (m, h) in [("Q", 2), ("K", 3), ("V", 2)] {
        let path = p.join(format!("qkv_heads/{m}.npy"));
        npy::write(&path, &[h, 3, 3], &vec![0.1f64; h * 9]).unwrap();
    }
    std::fs::create_dir(p.join("mlp_bad")).unwrap();
    npy::write(&p.join("mlp_bad/W.npy"), &[3, 4], &[0.1f64; 12]).unwrap();
    npy::write(&p.join("mlp_bad/A.npy"), &[5, 3], &[0.1f64; 15]).unwrap();
    npy::write(&p.join("mlp_bad/b.npy"), &[4], &[0.1f64; 4]).unwrap();
    std::fs::write(p.join("a_file"), "").unwrap();
    std::fs::write(p.join("bad.toml"), "n = 10\nspeed = 3\n").unwrap();

    let cases: &[(&[&str], &str)] = &[
        (&["--n", "0"], "n must be at least 1"),
        (&["--d", "1"], "d = 1 is too small"),
        (&["--steps", "0"], "steps must be at least 1"),
        (&["--beta", "nan"], "beta must be a finite number >= 0"),
        (&["--beta", "-1"], "beta must be a finite number >= 0"),
        (&["--beta", "one"], "--beta takes numbers"),
        (
            &["--beta", "1,2,3", "--batch", "2"],
            "--beta has 3 values but --batch is 2",
        ),
        (&["--t-end", "-2"], "t-end must be a finite number > 0"),
        (&["--model", "gpt"], "invalid value 'gpt' for '--model"),
        (&["--integrator", "rk45"], "invalid value 'rk45'"),
        (&["--init", "sobol"], "unknown --init 'sobol'"),
        (&["--init", "vmf:-3"], "kappa must be finite and >= 0"),
        (
            &["--init", "vmf:1:1,0"],
            "the mean direction has 2 coordinates but d = 3",
        ),
        (&["--qkv", "random"], "random:SEED"),
        (&["--qkv", "qkv_bad"], "expected [3, 3]"),
        (&["--qkv", "qkv_missing"], "K.npy: missing"),
        (&["--qkv", "no_such_dir"], "no_such_dir"),
        (
            &["--init", "file:x_7x3.npy", "--n", "8"],
            "holds n = 7 but the configuration asks for n = 8",
        ),
        (
            &["--init", "file:x_7x3.npy", "--d", "4"],
            "holds d = 3 but the configuration asks for d = 4",
        ),
        (
            &["--init", "file:four_d.npy"],
            "must be [n, d] or [batch, n, d]",
        ),
        (
            &["--init", "file:nan.npy"],
            "element [3, 1] (flat index 10) is NaN",
        ),
        (&["--init", "file:inf.npy"], "is inf: inputs must be finite"),
        (
            &["--init", "file:zero.npy"],
            "initial token 2 of system 0 is the zero vector",
        ),
        (&["--init", "file:truncated.npy"], "is truncated"),
        (&["--init", "file:not_npy.npy"], "not a valid .npy file"),
        (&["--init", "file:missing.npy"], "missing.npy"),
        (&["--out", "a_file/sub"], "cannot create the output folder"),
        (&["--out", "a_file"], "exists and is not a folder"),
        (&["--config", "bad.toml"], "unknown field `speed`"),
        (&["--config", "nope.toml"], "cannot read the config"),
        (&["--backend", "tpu"], "invalid value 'tpu'"),
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        // Research variants.
        (
            &["--noise", "-1", "--integrator", "euler"],
            "--noise takes a finite sigma >= 0, got -1",
        ),
        (&["--noise", "0.1"], "add --integrator euler"),
        (&["--mlp", "random:0"], "hidden width M >= 1"),
        (
            &["--mlp", "mlp_bad"],
            "A.npy [5, 3], b.npy [4]: expected [3, m], [m, 3]",
        ),
        (&["--beta-rule", "cubic"], "invalid value 'cubic'"),
        (&["--alibi", "1"], "add --mask causal"),
        (
            &["--alibi", "-1", "--mask", "causal"],
            "--alibi takes a finite slope >= 0",
        ),
        (&["--heads", "0"], "--heads must be at least 1"),
        (&["--qkv", "qkv_heads"], "hold 2, 3 and 2 heads"),
        (
            &["--qkv", "redraw:1", "--weight-scale", "0"],
            "a finite scale > 0",
        ),
    ];
    for (args, want) in cases {
        // Small defaults the case does not set itself (an init file sets n).
        let mut all = vec!["run", "--quiet"];
        for (flag, value) in [("--steps", "1"), ("--n", "7"), ("--out", "never")] {
            let init_file = args.iter().any(|a| a.starts_with("file:"));
            if !(args.contains(&flag) || flag == "--n" && init_file) {
                all.extend_from_slice(&[flag, value]);
            }
        }
        all.extend_from_slice(args);
        let o = attnflow(&all, p);
        let err = stderr(&o);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
            .collect();
        assert!(!o.status.success(), "{all:?} succeeded");
        assert!(!err.contains("panicked"), "{all:?} panicked:\n{err}");
        assert_eq!(lines.len(), 1, "{all:?}: not one line:\n{err}");
        assert!(lines[0].starts_with("error:"), "{all:?}: {}", lines[0]);
        assert!(
            lines[0].contains(want),
            "{all:?}: '{}' does not mention '{want}'",
            lines[0]
        );
    }
    assert!(
        !p.join("never").exists(),
        "no output folder is made for a failed run"
    );
}

/// Every research variant from the command line: the resolved options land in run.toml, the
/// temperature rule's beta is gamma log n or gamma n^(2/(d-1)), and the run finishes.
#[test]
fn variants_run_from_the_command_line_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "run",
        "--n",
        "100",
        "--d",
        "3",
        "--steps",
        "4",
        "--t-end",
        "0.4",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let run = |extra: &[&str], out: &str| -> toml::Table {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out]);
        ok(&args, dir.path());
        let text = std::fs::read_to_string(dir.path().join(out).join("run.toml")).unwrap();
        let x = npy::read_f64(&dir.path().join(out).join("final.npy")).unwrap();
        assert!(
            x.data.iter().all(|v| v.is_finite()),
            "{out}: final.npy not finite"
        );
        text.parse::<toml::Table>().unwrap()
    };
    let t = run(
        &[
            "--heads",
            "3",
            "--head-combine",
            "mean",
            "--qkv",
            "random:4",
            "--mlp",
            "random:16:2",
            "--activation",
            "gelu",
            "--mask",
            "causal",
            "--alibi",
            "2",
        ],
        "mixed",
    );
    assert_eq!(t["heads"].as_integer(), Some(3), "{t}");
    assert_eq!(t["head_combine"].as_str(), Some("mean"), "{t}");
    assert_eq!(t["alibi"].as_float(), Some(2.0), "{t}");
    assert!(t["mlp"].as_str().unwrap().starts_with("random:16"), "{t}");
    let t = run(
        &["--qkv", "redraw:5", "--heads", "2", "--weight-scale", "0.5"],
        "redraw",
    );
    assert_eq!(t["qkv"].as_str(), Some("redraw:5"), "{t}");
    let t = run(
        &[
            "--noise",
            "0.2",
            "--noise-kind",
            "common",
            "--integrator",
            "euler",
        ],
        "noise",
    );
    assert_eq!(t["noise_kind"].as_str(), Some("common"), "{t}");
    // Weights from folders: two heads [2, d, d] and a perceptron W [d, m], A [m, d], b [m].
    let p = dir.path();
    std::fs::create_dir(p.join("qkv2")).unwrap();
    for (m, scale) in [("Q", 1.0), ("K", 0.5), ("V", 1.0)] {
        let mut w = vec![0.0f64; 18];
        for h in 0..2 {
            for i in 0..3 {
                w[h * 9 + i * 3 + i] = scale * (h + 1) as f64;
            }
        }
        npy::write(&p.join(format!("qkv2/{m}.npy")), &[2, 3, 3], &w).unwrap();
    }
    std::fs::create_dir(p.join("mlp4")).unwrap();
    npy::write(&p.join("mlp4/W.npy"), &[3, 4], &[0.1f64; 12]).unwrap();
    npy::write(&p.join("mlp4/A.npy"), &[4, 3], &[0.2f64; 12]).unwrap();
    npy::write(&p.join("mlp4/b.npy"), &[4], &[0.0f64; 4]).unwrap();
    let t = run(&["--qkv", "qkv2", "--mlp", "mlp4"], "files");
    assert_eq!(t["heads"].as_integer(), Some(2), "{t}");
    assert!(t["mlp"].as_str().unwrap().ends_with("mlp4"), "{t}");
    let beta = |t: &toml::Table| t["beta"].as_array().unwrap()[0].as_float().unwrap();
    let t = run(&["--beta-rule", "log", "--beta", "0.5"], "log");
    assert!((beta(&t) - 0.5 * 100f64.ln()).abs() < 1e-12, "{t}");
    let t = run(&["--beta-rule", "selective", "--beta", "0.25"], "selective");
    assert!((beta(&t) - 0.25 * 100f64).abs() < 1e-12, "{t}");
}

/// `attend`: outputs.npy [m, d] (or [seeds, m, d]), stats.csv with top-k columns, attend.toml
/// with the resolved beta; the reference writes f64.
#[test]
fn attend_writes_outputs_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    ok(
        &[
            "attend",
            "--keys",
            "uniform:500",
            "--queries",
            "vmf:3:10",
            "--seeds",
            "2",
            "--d",
            "4",
            "--beta",
            "0.5",
            "--beta-rule",
            "log",
            "--top-k",
            "3",
            "--backend",
            "cpu",
            "--out",
            "a",
        ],
        p,
    );
    let a = npy::read_f64(&p.join("a/outputs.npy")).unwrap();
    assert_eq!(a.shape, vec![2, 10, 4]);
    assert_eq!(a.dtype, "float32");
    let stats = std::fs::read_to_string(p.join("a/stats.csv")).unwrap();
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(
        lines[0],
        "draw,query,max_weight,effective_keys,entropy,top1,top2,top3"
    );
    assert_eq!(lines.len(), 21);
    for line in &lines[1..] {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        assert!(
            v[2] > 0.0 && v[2] <= 1.0 && v[3] >= 1.0 && v[3] <= 500.0,
            "{line}"
        );
        assert_eq!(v[2], v[5], "the largest weight is top1: {line}");
        assert!(v[5] >= v[6] && v[6] >= v[7], "{line}");
    }
    let t: toml::Table = std::fs::read_to_string(p.join("a/attend.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (t["beta"].as_float().unwrap() - 0.5 * 500f64.ln()).abs() < 1e-12,
        "{t}"
    );
    // Self-attention of a key file on the reference: f64 outputs, one per key.
    npy::write(
        &p.join("k.npy"),
        &[6, 3],
        &[
            0.6f64, 0.8, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.6, 0.0, 0.8, 0.0, 0.6,
            0.8,
        ],
    )
    .unwrap();
    ok(
        &[
            "attend",
            "--keys",
            "k.npy",
            "--backend",
            "reference",
            "--out",
            "b",
            "--no-stats",
        ],
        p,
    );
    let b = npy::read_f64(&p.join("b/outputs.npy")).unwrap();
    assert_eq!((b.shape.clone(), b.dtype), (vec![6, 3], "float64"));
    assert!(!p.join("b/stats.csv").exists());
}

/// `cfm`: trajectories of the queries, and with --infinite the twins and distances, which
/// start at 0 and grow.
#[test]
fn cfm_writes_trajectories_and_distances_to_the_infinite_twin() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    ok(
        &[
            "cfm",
            "--m",
            "12",
            "--n",
            "3000",
            "--context-law",
            "vmf:2",
            "--infinite",
            "--seeds",
            "2",
            "--t-end",
            "2",
            "--steps",
            "20",
            "--save-every",
            "5",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "c",
        ],
        p,
    );
    let traj = npy::read_f64(&p.join("c/traj.npy")).unwrap();
    assert_eq!(traj.shape, vec![5, 2, 12, 3]);
    let inf = npy::read_f64(&p.join("c/infinite.npy")).unwrap();
    assert_eq!(inf.shape, traj.shape);
    let csv = std::fs::read_to_string(p.join("c/distance.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0][3] < 1e-6, "the twins start together: {csv}");
    assert!(rows[4][1] > 1e-4 && rows[4][1] < 0.2, "{csv}");
    ok(
        &[
            "cfm",
            "--m",
            "4",
            "--n",
            "50",
            "--context-mode",
            "evolving",
            "--steps",
            "3",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "e",
        ],
        p,
    );
    npy::write(
        &p.join("k.npy"),
        &[2, 3],
        &[1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0],
    )
    .unwrap();
    let ctx = npy::read_f64(&p.join("e/context_final.npy")).unwrap();
    assert_eq!(ctx.shape, vec![50, 3]);
    for (args, want) in [
        (&["--m", "0"][..], "m = 0"),
        (
            &["--infinite", "--context-mode", "evolving"],
            "--context-mode frozen",
        ),
        (&["--infinite", "--context", "file:k.npy"], "not a file"),
        (&["--context", "sobol"], "unknown --init 'sobol'"),
        (&["--tol", "0", "--infinite"], "--tol must be in (0, 1)"),
    ] {
        let mut all = vec![
            "cfm", "--n", "20", "--steps", "1", "--quiet", "--out", "never",
        ];
        all.extend_from_slice(args);
        let o = attnflow(&all, p);
        let err = stderr(&o);
        assert!(
            !o.status.success() && !err.contains("panicked"),
            "{all:?}: {err}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with("error:") && l.contains(want)),
            "{all:?}: {err}"
        );
    }
}

/// `experiment`: summary.json with checks, CSV and PNG; an unknown name is a one-line error.
#[test]
fn experiment_writes_a_summary_data_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = ok(
        &[
            "experiment",
            "integrator-order",
            "--quick",
            "--backend",
            "cpu",
            "--out",
            "e",
            "--quiet",
        ],
        p,
    );
    assert!(
        out.contains("check f64_orders_within_3se_plus_step_drift_of_1_2_4: yes"),
        "{out}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("e/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["experiment"], "integrator-order");
    assert_eq!(summary["quick"], true);
    let rk4 = summary["measured"]["fitted_orders"]["reference_rk4"]["order"]
        .as_f64()
        .unwrap();
    assert!((rk4 - 4.0).abs() < 0.2, "{rk4}");
    assert!(p.join("e/integrator_order.png").exists() && p.join("e/integrator_order.csv").exists());
    // The folder exists now: a second run needs --force.
    let again = attnflow(
        &["experiment", "integrator-order", "--quick", "--out", "e"],
        p,
    );
    assert!(!again.status.success() && stderr(&again).contains("--force"));
    let o = attnflow(&["experiment", "grokking", "--out", "x"], p);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown experiment 'grokking'"),
        "{}",
        stderr(&o)
    );
}

/// Every `attnflow run`, `attend` and `cfm` line of the README's and docs/'s examples runs as
/// written (the alibi example blew up in its first step for months): on the cpu backend (the
/// reference one for `--integrator ros23`, which runs there only), with
/// n, m and keys cut to at most 256 so that CI stays short (stability does not depend on n
/// here), the million-token contexts cut to 4096, and a command quoted on several pages run
/// once.
#[test]
fn the_readme_and_docs_examples_run() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    let mut seen = std::collections::HashSet::new();
    let lines: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    for line in &lines {
        // A command ends at a shell comment or at a second command.
        let line = line
            .split(" #")
            .next()
            .unwrap()
            .split("&&")
            .next()
            .unwrap()
            .trim();
        let Some(rest) = line.strip_prefix("attnflow ") else {
            continue;
        };
        let mut args: Vec<String> = rest.split_whitespace().map(String::from).collect();
        if !["run", "attend", "cfm"].contains(&args[0].as_str())
            || args.contains(&"--resume".into())
            || args.contains(&"--config".into())
            || line.ends_with('\\')
            || !seen.insert(args.clone())
        {
            continue;
        }
        // Files the examples assume exist (K.npy, Q.npy, weight folders, a GPT-2 checkpoint)
        // are skipped: the rest cover attend; tests/per_layer.rs and cli/tests/real_model.rs run
        // weight folders and a checkpoint written there.
        let weight_files = args.windows(2).any(|w| {
            ["--qkv", "--mlp"].contains(&w[0].as_str())
                && (w[1].contains('/') || w[1].starts_with("safetensors:"))
        });
        if weight_files
            || args
                .iter()
                .any(|a| a.ends_with(".npy") || a.starts_with("safetensors:"))
        {
            continue;
        }
        for i in 1..args.len() {
            let cap = |v: &str, cap: usize| v.parse::<usize>().map(|x| x.min(cap).to_string());
            if ["--n", "--m"].contains(&args[i - 1].as_str())
                && let Ok(v) = cap(&args[i], if args[0] == "cfm" { 4096 } else { 256 })
            {
                args[i] = v;
            }
            if ["--keys", "--queries"].contains(&args[i - 1].as_str())
                && let Some((law, n)) = args[i].rsplit_once(':')
                && let Ok(n) = cap(n, 4096)
            {
                args[i] = format!("{law}:{n}");
            }
        }
        // The cpu backend whatever the page asks for (a GPU page's --backend gpu included).
        let backend = if args
            .windows(2)
            .any(|w| w[0] == "--integrator" && w[1] == "ros23")
        {
            "reference"
        } else {
            "cpu"
        };
        if let Some(i) = args.iter().position(|a| a == "--backend") {
            args.drain(i..(i + 2).min(args.len()));
        }
        args.retain(|a| a != "--force");
        args.extend(["--backend", backend, "--force"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&args, dir.path());
        ran += 1;
    }
    assert!(ran >= 9, "only {ran} README and docs examples found");
}

/// A flag of `attnflow run` (its long name without `--`), a value it takes (None: a switch),
/// and the modes (extra arguments of a fresh run) that make it moot, each with what the
/// refusal says. An empty list: no mode makes it moot (every value changes the result, or it
/// names no computation: --out, --backend, ...).
type Rule = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static [&'static str], &'static str)],
);

const RULES: &[Rule] = &[
    ("out", Some("o2"), &[]),
    ("n", Some("8"), &[]),
    ("d", Some("4"), &[]),
    ("batch", Some("2"), &[]),
    ("model", Some("usa"), &[]),
    ("geometry", Some("euclidean"), &[]),
    ("mask", Some("causal"), &[]),
    ("beta", Some("2"), &[]),
    ("qkv", Some("random:1"), &[]),
    ("heads", Some("2"), &[]),
    ("head-combine", Some("mean"), &[(&[], "there is one head")]),
    (
        "weight-scale",
        Some("5"),
        &[
            (&[], "--qkv identity draws none"),
            (&["--qkv", "random:1"], "--qkv random:1 draws none"),
        ],
    ),
    ("mlp", Some("random:4"), &[]),
    (
        "activation",
        Some("gelu"),
        &[(&[], "there is no perceptron")],
    ),
    ("noise", Some("0.1"), &[]),
    (
        "noise-kind",
        Some("common"),
        &[
            (&[], "there is no noise"),
            (&["--noise", "0"], "there is no noise"),
        ],
    ),
    ("alibi", Some("1"), &[]),
    ("alibi-excludes-self", None, &[(&[], "there is no --alibi")]),
    ("beta-rule", Some("log"), &[]),
    ("layer", Some("post-ln"), &[]),
    ("ngpt-alpha", Some("0.5"), &[(&[], "of --layer ngpt")]),
    ("integrator", Some("heun"), &[]),
    ("t-end", Some("2"), &[]),
    ("steps", Some("6"), &[]),
    ("init", Some("gaussian"), &[]),
    (
        "tokens",
        Some("1,2"),
        &[(&[], "--tokens names rows of an embedding")],
    ),
    ("seed", Some("3"), &[]),
    ("backend", Some("cpu"), &[]),
    ("save-every", Some("1"), &[]),
    ("metrics-every", Some("1"), &[]),
    ("checkpoint-every", Some("1"), &[]),
    ("allow-changed-inputs", None, &[]),
    // Adaptive stepping's options: moot with a fixed-step integrator (rk4 by default).
    ("rtol", Some("1e-5"), &[(&[], "takes fixed steps")]),
    ("atol", Some("1e-8"), &[(&[], "takes fixed steps")]),
    ("h-max", Some("0.5"), &[(&[], "takes fixed steps")]),
    ("shared-step", None, &[(&[], "takes fixed steps")]),
    ("save-times", Some("0.5"), &[(&[], "takes fixed steps")]),
    ("metrics-times", Some("0.5"), &[(&[], "takes fixed steps")]),
];

/// Was: `run --resume DIR` with `--layer`, `--ngpt-alpha` or `--alibi-excludes-self` ran as a
/// plain resume, and `--weight-scale 5` with identity weights, `--activation gelu` without
/// `--mlp` and `--noise-kind common` without noise gave final.npy byte for byte the run without
/// them. Every option of `attnflow run` (listed from its clap definition, so that a new option
/// without a rule here fails this test) is refused, with the reason, in every mode that makes
/// it moot: on `--resume` all but the five a resume may change, and the modes of `RULES`.
#[test]
fn every_run_option_is_refused_where_it_cannot_change_the_result() {
    use clap::Args;
    let cmd = attnflow::options::ConfigLayer::augment_args(clap::Command::new("run"));
    let mut longs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    longs.sort();
    let mut ruled: Vec<String> = RULES.iter().map(|r| r.0.to_string()).collect();
    ruled.sort();
    assert_eq!(
        longs, ruled,
        "every option of attnflow run needs a rule in RULES"
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = [
        "run",
        "--n",
        "6",
        "--steps",
        "4",
        "--t-end",
        "1",
        "--backend",
        "cpu",
        "--quiet",
    ];
    ok(&[&base[..], &["--out", "r"]].concat(), d);
    let record = std::fs::read(d.join("r/run.toml")).unwrap();
    // What `--resume` may change, from the one list of options (their roles).
    let resumable: Vec<String> = attnflow::options::ConfigLayer::options_where(|r| r.resumable())
        .iter()
        .map(|k| k.replace('_', "-"))
        .collect();
    assert_eq!(
        resumable,
        [
            "t-end",
            "steps",
            "backend",
            "checkpoint-every",
            "allow-changed-inputs"
        ]
    );
    for (long, value, moot) in RULES {
        let flag = format!("--{long}");
        let mut given = vec![flag.as_str()];
        given.extend(value.iter());
        if !resumable.iter().any(|r| r == long) {
            let o = attnflow(&[&["run", "--resume", "r"], &given[..]].concat(), d);
            let err = stderr(&o);
            assert!(
                matches!(o.status.code(), Some(1 | 2))
                    && (err.contains("cannot be used with")
                        || err.contains("cannot change on --resume")),
                "run --resume r {given:?}: {err}"
            );
        }
        for (mode, says) in *moot {
            let args = [&base[..], mode, &given[..], &["--out", "m"]].concat();
            let o = attnflow(&args, d);
            let err = stderr(&o);
            assert!(
                o.status.code() == Some(1) && err.contains(says) && err.lines().count() == 1,
                "{args:?}: {err}"
            );
            assert!(!d.join("m").exists(), "{args:?} wrote its folder");
        }
    }
    assert_eq!(std::fs::read(d.join("r/run.toml")).unwrap(), record);
    // Every option `--resume` takes is applied: each extends a copy of the run (to 8 steps of
    // the same h = 0.25) and the record shows it.
    for (long, value, _) in RULES
        .iter()
        .filter(|r| resumable.contains(&r.0.to_string()))
    {
        let copy = format!("resume-{long}");
        std::fs::create_dir(d.join(&copy)).unwrap();
        for name in ["final.npy", "metrics.csv", "run.toml"] {
            std::fs::copy(d.join("r").join(name), d.join(&copy).join(name)).unwrap();
        }
        let (extend, value, recorded): (&[&str], &str, String) = match *long {
            "t-end" => (&[], "2", "t_end = 2.0".into()),
            "steps" => (&[], "8", "steps = 8".into()),
            _ => (
                &["--steps", "8"],
                value.unwrap_or(""),
                match *long {
                    "backend" => "backend = \"cpu\"".into(),
                    "checkpoint-every" => "checkpoint_every = 1".into(),
                    _ => "steps = 8".into(),
                },
            ),
        };
        let flag = format!("--{long}");
        let mut given = vec!["run", "--resume", copy.as_str(), "--quiet", flag.as_str()];
        if !value.is_empty() {
            given.push(value);
        }
        ok(&[&given[..], extend].concat(), d);
        let toml = std::fs::read_to_string(d.join(&copy).join("run.toml")).unwrap();
        assert!(
            toml.lines().any(|l| l == recorded) && toml.lines().any(|l| l == "steps = 8"),
            "{given:?}: {toml}"
        );
    }
    // The same options where they do act are taken.
    for args in [
        &["--qkv", "redraw:1", "--weight-scale", "2"][..],
        &["--mlp", "random:4", "--activation", "gelu"],
        &[
            "--integrator",
            "euler",
            "--noise",
            "0.1",
            "--noise-kind",
            "common",
        ],
        &[
            "--model",
            "usa",
            "--mask",
            "causal",
            "--alibi",
            "1",
            "--alibi-excludes-self",
        ],
        &[
            "--qkv",
            "random:1",
            "--heads",
            "2",
            "--head-combine",
            "mean",
        ],
    ] {
        let out = format!("ok{}", args.len());
        ok(&[&base[..], args, &["--out", &out, "--force"]].concat(), d);
    }
}

/// A .npy file of `descr` elements (raw little-endian `data`) of shape (rows, cols).
fn raw_npy(path: &std::path::Path, descr: &str, rows: usize, cols: usize, data: &[u8]) {
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while !(10 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// Was: an f16 or bool .npy was "truncated"; resuming a cpu run with --backend reference failed
/// naming an internal staging path; resuming a cfm folder talked about --out. Each now says
/// what is wrong and what to do.
#[test]
fn misleading_messages_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    raw_npy(&d.join("half.npy"), "<f2", 6, 3, &[0x00, 0x3c].repeat(18));
    raw_npy(&d.join("bool.npy"), "|b1", 6, 3, &[1u8; 18]);
    for (file, name) in [("half.npy", "float16"), ("bool.npy", "bool")] {
        let o = attnflow(
            &[
                "run",
                "--init",
                &format!("file:{file}"),
                "--steps",
                "1",
                "--out",
                "o",
            ],
            d,
        );
        let err = stderr(&o);
        assert!(
            o.status.code() == Some(1)
                && err.contains(name)
                && err.contains("float32 or float64")
                && !err.contains("truncated"),
            "{err}"
        );
    }
    ok(
        &[
            "run",
            "--n",
            "6",
            "--steps",
            "4",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "c",
        ],
        d,
    );
    let o = attnflow(
        &[
            "run",
            "--resume",
            "c",
            "--steps",
            "8",
            "--backend",
            "reference",
        ],
        d,
    );
    let err = stderr(&o);
    assert!(
        o.status.code() == Some(1)
            && err.contains("resume on the backend it ran on (--backend cpu), or start a new run")
            && !err.contains(".attnflow"),
        "{err}"
    );
    ok(
        &[
            "cfm",
            "--n",
            "4",
            "--m",
            "4",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "f",
        ],
        d,
    );
    let o = attnflow(&["run", "--resume", "f", "--steps", "8"], d);
    let err = stderr(&o);
    assert!(
        o.status.code() == Some(1)
            && err.contains("holds the results of attnflow cfm (cfm.toml), not of a run")
            && !err.contains("--out"),
        "{err}"
    );
}
