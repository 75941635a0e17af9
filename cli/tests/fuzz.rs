//! Property-based fuzzing (issue "Run lifecycle"): hostile command lines for run, attend and
//! cfm, hostile .npy headers and hostile TOML configs. Every case must end with exit code 0
//! (done), 1 (a refused job, in one line) or 2 (bad usage), within a minute, without a panic,
//! and touch no file outside its output folder (the input files stay byte for byte).
//!
//! The cases are drawn from a fixed seed so that CI is reproducible; set ATTNFLOW_FUZZ_SEED
//! (and ATTNFLOW_FUZZ_CASES, a multiplier) to explore further. A failure prints the smallest
//! failing command line proptest found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

/// What a case's folder holds before the command: input files it may name.
#[derive(Clone, Debug)]
struct Inputs {
    npy: Vec<u8>,
    toml: String,
}

fn runner(cases: u32) -> TestRunner {
    let seed = std::env::var("ATTNFLOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_202);
    let scale: u32 = std::env::var("ATTNFLOW_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    TestRunner::new(Config {
        cases: cases * scale,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 48,
        ..Config::default()
    })
}

/// Every file under `dir` (hidden ones included) with its bytes.
fn listing(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            listing(&path, root, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            out.insert(rel, std::fs::read(&path).unwrap_or_default());
        }
    }
}

/// A valid [24, 3] token file.
fn good_npy(path: &Path) {
    let x: Vec<f32> = (0..24)
        .flat_map(|i| {
            let t = i as f32 * 0.7;
            [t.cos() * 0.6, t.sin() * 0.6, 0.8]
        })
        .collect();
    attnflow::npy::write(path, &[24, 3], &x).unwrap();
}

/// Runs `attnflow args` in a fresh folder holding `inputs`, and checks the contract.
fn check(args: &[String], inputs: &Inputs) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    good_npy(&d.join("good.npy"));
    std::fs::write(d.join("fuzz.npy"), &inputs.npy).unwrap();
    std::fs::write(d.join("fuzz.toml"), &inputs.toml).unwrap();
    std::fs::create_dir(d.join("qkv")).unwrap();
    for m in ["Q", "K", "V"] {
        let eye = [1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        attnflow::npy::write(&d.join("qkv").join(format!("{m}.npy")), &[3, 3], &eye).unwrap();
    }
    let mut before = BTreeMap::new();
    listing(d, d, &mut before);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(args)
        .current_dir(d)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestCaseError::fail(format!("hung: attnflow {args:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = std::fs::read_to_string(log.path()).unwrap_or_default();
    let code = status.code();
    if std::env::var_os("ATTNFLOW_FUZZ_SHOW").is_some() {
        eprintln!("exit {code:?}: {}  => {}", args.join(" "), err.trim_end());
    }
    prop_assert!(
        matches!(code, Some(0..=2)),
        "exit {code:?} (a signal or an abort): attnflow {args:?}\n{err}"
    );
    prop_assert!(!err.contains("panicked"), "attnflow {args:?}\n{err}");
    if code != Some(0) {
        prop_assert_eq!(
            err.trim_end().lines().count(),
            1,
            "not one line: attnflow {:?}\n{}",
            args,
            err
        );
    }
    let mut after = BTreeMap::new();
    listing(d, d, &mut after);
    for (path, bytes) in &before {
        prop_assert!(
            after.get(path) == Some(bytes),
            "{} changed: attnflow {args:?}",
            path.display()
        );
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        prop_assert!(
            path.starts_with("o"),
            "{} written outside the output folder: attnflow {args:?}",
            path.display()
        );
    }
    Ok(())
}

/// Values no option parses (clap's exit 2), drawn now and then in place of a listed one.
const JUNK: &[&str] = &["x", "-1", "", "18446744073709551616", "1e", "--force"];

/// A value from `values`, or now and then one from `JUNK`.
fn value(values: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        9 => prop::sample::select(values),
        1 => prop::sample::select(JUNK),
    ]
    .prop_map(str::to_string)
    .boxed()
}

/// `--flag value` with a value from `values`, or nothing.
fn opt(flag: &'static str, values: &'static [&'static str]) -> BoxedStrategy<Vec<String>> {
    prop::option::weighted(0.25, value(values))
        .prop_map(move |v| v.map(|v| vec![flag.to_string(), v]).unwrap_or_default())
        .boxed()
}

/// `--flag value`, always.
fn req(flag: &'static str, values: &'static [&'static str]) -> BoxedStrategy<Vec<String>> {
    value(values)
        .prop_map(move |v| vec![flag.to_string(), v])
        .boxed()
}

/// A switch, or nothing.
fn switch(flag: &'static str) -> BoxedStrategy<Vec<String>> {
    prop::bool::weighted(0.2)
        .prop_map(move |b| if b { vec![flag.to_string()] } else { vec![] })
        .boxed()
}

const COUNT: &[&str] = &[
    "0",
    "1",
    "2",
    "24",
    "1000000000000",
    "100000000000",
    "18446744073709551615",
];
const SMALL_N: &[&str] = &[
    "0",
    "1",
    "2",
    "24",
    "24",
    "300",
    "1000000000000",
    "18446744073709551615",
];
const DIM: &[&str] = &["0", "1", "2", "3", "3", "16", "100000000000", "1000000"];
const REAL: &[&str] = &["1", "0", "0.5", "2", "nan", "inf", "1e300", "1e-320"];
const BETA: &[&str] = &[
    "1", "0", "nan", "inf", "1e300", "800", "0.5,2", "1,", ",", "1,nan", "-0.5",
];
const STEPS: &[&str] = &["0", "1", "2", "3"];
const INIT: &[&str] = &[
    "uniform",
    "gaussian",
    "vmf:1e16",
    "vmf:1e300",
    "vmf:-1",
    "vmf:nan",
    "vmf:5:1,0,0",
    "vmf:5:0,0,0",
    "vmf:5:1,0",
    "file:good.npy",
    "file:fuzz.npy",
    "file:missing.npy",
    "file:qkv",
    "file:",
    "x",
];
const QKV: &[&str] = &[
    "identity", "random:1", "redraw:2", "qkv", "missing", "random:", "redraw:x", "good.npy",
];
const BACKEND: &[&str] = &["cpu", "reference"];

fn run_line() -> impl Strategy<Value = Vec<String>> {
    let parts: Vec<BoxedStrategy<Vec<String>>> = vec![
        req("--n", SMALL_N),
        req("--steps", STEPS),
        req("--backend", BACKEND),
        opt("--d", DIM),
        opt("--batch", &["0", "1", "2", "100000000000"]),
        opt("--model", &["sa", "usa"]),
        opt("--geometry", &["sphere", "euclidean"]),
        opt("--mask", &["full", "causal"]),
        opt("--beta", BETA),
        opt("--qkv", QKV),
        opt("--heads", &["0", "1", "3", "100000000000"]),
        opt("--head-combine", &["sum", "mean"]),
        opt("--weight-scale", REAL),
        opt(
            "--mlp",
            &[
                "random:4",
                "random:1000000000000",
                "random:0",
                "random:4:7",
                "qkv",
                "random:-3",
            ],
        ),
        opt("--activation", &["relu", "gelu"]),
        opt("--noise", REAL),
        opt("--noise-kind", &["independent", "common"]),
        opt("--alibi", REAL),
        opt("--beta-rule", &["const", "log", "selective"]),
        opt("--integrator", &["euler", "heun", "rk4"]),
        opt("--t-end", REAL),
        opt("--init", INIT),
        opt("--seed", &["0", "18446744073709551615"]),
        opt("--save-every", &["0", "1", "1000000000000000"]),
        opt("--metrics-every", &["0", "1"]),
        opt("--checkpoint-every", &["0", "1"]),
        opt("--config", &["fuzz.toml", "missing.toml", "good.npy"]),
        opt("--resume", &["o", "missing"]),
        switch("--force"),
        switch("--allow-changed-inputs"),
    ];
    parts.prop_map(|parts| {
        let mut v = vec![
            "run".to_string(),
            "--quiet".into(),
            "--out".into(),
            "o".into(),
        ];
        v.extend(parts.into_iter().flatten());
        v
    })
}

/// `--flag value` with a value from `values` (never junk), or nothing.
fn some(flag: &'static str, values: &'static [&'static str]) -> BoxedStrategy<Vec<String>> {
    prop::option::weighted(0.4, prop::sample::select(values))
        .prop_map(move |v| {
            v.map(|v| vec![flag.to_string(), v.to_string()])
                .unwrap_or_default()
        })
        .boxed()
}

/// `--flag value` with a value from `values`, always.
fn always(flag: &'static str, values: &'static [&'static str]) -> BoxedStrategy<Vec<String>> {
    prop::sample::select(values)
        .prop_map(move |v| vec![flag.to_string(), v.to_string()])
        .boxed()
}

/// Runs that mostly go through: every option valid on its own, in unusual combinations.
fn plausible_run_line() -> impl Strategy<Value = Vec<String>> {
    let parts: Vec<BoxedStrategy<Vec<String>>> = vec![
        always("--n", &["1", "2", "24", "300"]),
        always("--steps", &["1", "2", "3"]),
        always("--backend", BACKEND),
        some("--d", &["2", "3", "16"]),
        some("--batch", &["1", "2"]),
        some("--model", &["sa", "usa"]),
        some("--geometry", &["sphere", "euclidean"]),
        some("--mask", &["full", "causal"]),
        some("--beta", &["0", "1", "4", "100", "1e6", "0.5,2", "1,4,9"]),
        some(
            "--qkv",
            &[
                "identity",
                "random:1",
                "redraw:2",
                "random-per-system:3",
                "redraw-per-system:4",
                "qkv",
            ],
        ),
        some("--heads", &["1", "3"]),
        some("--head-combine", &["sum", "mean"]),
        some("--weight-scale", &["0", "1", "5"]),
        some("--mlp", &["random:4", "random:4:7", "random:1"]),
        some("--activation", &["relu", "gelu"]),
        some("--noise", &["0", "0.3", "30"]),
        some("--noise-kind", &["independent", "common"]),
        some("--alibi", &["0", "1", "-5", "1e6"]),
        some("--beta-rule", &["const", "log", "selective"]),
        some("--integrator", &["euler", "euler", "heun", "rk4"]),
        some("--t-end", &["0.001", "1", "100", "1e6"]),
        some(
            "--init",
            &[
                "uniform",
                "gaussian",
                "vmf:1e16",
                "vmf:5:1,0,0",
                "file:good.npy",
            ],
        ),
        some("--seed", &["0", "18446744073709551615"]),
        some("--save-every", &["0", "1", "2"]),
        some("--metrics-every", &["0", "1"]),
        some("--checkpoint-every", &["0", "1"]),
    ];
    parts.prop_map(|parts| {
        let mut v = vec![
            "run".to_string(),
            "--quiet".into(),
            "--out".into(),
            "o".into(),
        ];
        v.extend(parts.into_iter().flatten());
        v
    })
}

fn attend_line() -> impl Strategy<Value = Vec<String>> {
    const TOKENS: &[&str] = &[
        "uniform:24",
        "gaussian:24",
        "vmf:1e16:24",
        "vmf:-1:24",
        "uniform:0",
        "uniform:1000000000000",
        "uniform:1e3",
        "good.npy",
        "fuzz.npy",
        "missing.npy",
        "qkv",
    ];
    let parts: Vec<BoxedStrategy<Vec<String>>> = vec![
        req("--keys", TOKENS),
        req("--backend", BACKEND),
        opt("--queries", TOKENS),
        opt("--d", DIM),
        opt("--seeds", COUNT),
        opt("--beta", REAL),
        opt("--beta-rule", &["const", "log", "selective"]),
        opt("--model", &["sa", "usa"]),
        opt("--qkv", QKV),
        opt("--top-k", COUNT),
        switch("--no-stats"),
        switch("--force"),
    ];
    parts.prop_map(|parts| {
        let mut v = vec!["attend".to_string(), "--out".into(), "o".into()];
        v.extend(parts.into_iter().flatten());
        v
    })
}

fn cfm_line() -> impl Strategy<Value = Vec<String>> {
    const LAW: &[&str] = &[
        "uniform",
        "gaussian",
        "vmf:1e16",
        "vmf:5:1,0,0",
        "vmf:nan",
        "file:good.npy",
        "file:fuzz.npy",
        "file:missing.npy",
        "x",
    ];
    let parts: Vec<BoxedStrategy<Vec<String>>> = vec![
        req("--n", SMALL_N),
        req("--m", &["0", "1", "4", "100000000000"]),
        req("--steps", STEPS),
        req("--backend", BACKEND),
        opt("--d", DIM),
        opt("--context", LAW),
        opt("--queries", LAW),
        opt("--context-mode", &["frozen", "evolving"]),
        opt("--seeds", &["0", "1", "2", "100000000000"]),
        opt("--beta", REAL),
        opt("--beta-rule", &["const", "log", "selective"]),
        opt("--model", &["sa", "usa"]),
        opt("--geometry", &["sphere", "euclidean"]),
        opt("--qkv", QKV),
        opt("--integrator", &["euler", "heun", "rk4"]),
        opt("--t-end", REAL),
        opt("--save-every", &["0", "1", "1000000000000000"]),
        switch("--infinite"),
        opt("--tol", &["1e-6", "1e-300", "0", "nan", "1"]),
        switch("--force"),
    ];
    parts.prop_map(|parts| {
        let mut v = vec![
            "cfm".to_string(),
            "--quiet".into(),
            "--out".into(),
            "o".into(),
        ];
        v.extend(parts.into_iter().flatten());
        v
    })
}

/// A .npy file: magic, version, header length, header dictionary and data, each either right
/// or wrong.
fn npy_file() -> impl Strategy<Value = Vec<u8>> {
    const MAGIC: &[&[u8]] = &[b"\x93NUMPY", b"\x93NUMPX", b"", b"\x93NUM"];
    (
        prop::sample::select(MAGIC),
        prop::sample::select(&[[1u8, 0], [2, 0], [3, 0], [9, 9]][..]),
        prop::sample::select(
            &[
                "'<f4'", "'<f8'", "'>f4'", "'|u1'", "'<i8'", "'<c16'", "'<f2'", "x", "'<f4",
            ][..],
        ),
        prop::sample::select(&["False", "True", "'x'", "0"][..]),
        prop::sample::select(
            &[
                "(24, 3)",
                "(2, 24, 3)",
                "(1, 24, 3)",
                "()",
                "(0, 3)",
                "(24, 0)",
                "(24,)",
                "(24, 1)",
                "(1000000000000, 3)",
                "(3, 1000000000000)",
                "(-1, 3)",
                "(18446744073709551616, 3)",
                "(24, 3, 1, 1)",
                "24",
            ][..],
        ),
        prop::bool::weighted(0.15),
        prop::sample::select(&[0usize, 100, 288, 576, 1152][..]),
        prop::sample::select(&[0.5f32, 0.0, f32::NAN, f32::INFINITY, -1e-30][..]),
        prop::option::weighted(0.15, 0usize..200),
    )
        .prop_map(
            |(magic, version, descr, order, shape, extra, len, value, header_len)| {
                let extra = if extra { "'extra': 1, " } else { "" };
                let mut dict = format!(
                    "{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, {extra}}}"
                );
                while !(10 + dict.len() + 1).is_multiple_of(64) {
                    dict.push(' ');
                }
                dict.push('\n');
                let mut bytes = magic.to_vec();
                bytes.extend(version);
                let n = header_len.unwrap_or(dict.len());
                if version[0] == 1 {
                    bytes.extend((n as u16).to_le_bytes());
                } else {
                    bytes.extend((n as u32).to_le_bytes());
                }
                bytes.extend(dict.as_bytes());
                for k in 0..len / 4 {
                    let v = if k % 3 == 2 { 0.8f32 } else { value };
                    bytes.extend(v.to_le_bytes());
                }
                bytes
            },
        )
}

/// A TOML config of lines drawn from right and wrong ones.
fn toml_file() -> impl Strategy<Value = String> {
    const LINES: &[&str] = &[
        "n = 24",
        "n = 0",
        "n = -1",
        "n = 1000000000000",
        "n = \"x\"",
        "n = 1.5",
        "d = 3",
        "d = 0",
        "d = 100000000000",
        "steps = 2",
        "steps = 0",
        "beta = 1.0",
        "beta = [1.0, 2.0]",
        "beta = []",
        "beta = nan",
        "beta = inf",
        "beta = \"nan\"",
        "gamma = [2.0]",
        "beta_rule = \"log\"",
        "model = \"usa\"",
        "model = \"x\"",
        "t_end = nan",
        "t_end = 1e308",
        "init = \"file:good.npy\"",
        "init = \"file:fuzz.npy\"",
        "init = \"vmf:1e16\"",
        "qkv = \"qkv\"",
        "backend = \"reference\"",
        "backend = \"gpu\"",
        "out = \"elsewhere\"",
        "unknown = 1",
        "[provenance]",
        "[inputs]",
        "\"/abs/good.npy\" = \"sha256:0\"",
        "[[bad",
        "= 3",
    ];
    prop::collection::vec(prop::sample::select(LINES), 0..8).prop_map(|l| l.join("\n"))
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (npy_file(), toml_file()).prop_map(|(npy, toml)| Inputs { npy, toml })
}

#[test]
fn hostile_run_command_lines() {
    runner(200)
        .run(&(run_line(), inputs()), |(args, inputs)| {
            check(&args, &inputs)
        })
        .unwrap();
}

#[test]
fn plausible_run_command_lines() {
    runner(200)
        .run(&(plausible_run_line(), inputs()), |(args, inputs)| {
            check(&args, &inputs)
        })
        .unwrap();
}

#[test]
fn hostile_attend_and_cfm_command_lines() {
    runner(80)
        .run(&(attend_line(), inputs()), |(args, inputs)| {
            check(&args, &inputs)
        })
        .unwrap();
    runner(80)
        .run(&(cfm_line(), inputs()), |(args, inputs)| {
            check(&args, &inputs)
        })
        .unwrap();
}

/// The .npy and TOML readers behind --init, --keys and --config, on hostile files.
#[test]
fn hostile_npy_and_toml_files() {
    let lines = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let commands = [
        lines(&[
            "run",
            "--init",
            "file:fuzz.npy",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--out",
            "o",
            "--quiet",
        ]),
        lines(&[
            "attend",
            "--keys",
            "fuzz.npy",
            "--backend",
            "cpu",
            "--out",
            "o",
        ]),
        lines(&[
            "run",
            "--config",
            "fuzz.toml",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--out",
            "o",
            "--quiet",
        ]),
    ];
    runner(100)
        .run(
            &(prop::sample::select(commands.to_vec()), inputs()),
            |(args, inputs)| check(&args, &inputs),
        )
        .unwrap();
}

/// Command lines the fuzzing above once found to panic, kept whatever the seed draws.
#[test]
fn what_fuzzing_found_stays_fixed() {
    let inputs = Inputs {
        npy: Vec::new(),
        toml: String::new(),
    };
    let found: &[&[&str]] = &[
        // VmfLaw::uniform panicked on d = 0 (seed 3).
        &[
            "cfm",
            "--quiet",
            "--out",
            "o",
            "--n",
            "1",
            "--m",
            "1",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--d",
            "0",
            "--infinite",
        ],
    ];
    for args in found {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        check(&args, &inputs).unwrap();
    }
}

/// `attnflow ARGS` in `dir`, which must fail (exit 1, one line naming `names` and saying
/// `says`) within 30 s; killed and failed if it blocks.
fn refused_quickly(args: &[&str], dir: &Path, names: &str, says: &str) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("blocked for 30 s: attnflow {args:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(status.code(), Some(1), "attnflow {args:?}: {err}");
    assert!(
        err.trim_end().lines().count() == 1 && err.contains(names) && err.contains(says),
        "attnflow {args:?}: {err}"
    );
}

/// Was: `--qkv safetensors:/dev/zero:gpt2` and `--init safetensors:/dev/zero:wte` read until
/// the kernel killed the process (23 GB resident, SIGTERM ignored), and a FIFO given as a
/// .npy, safetensors or TOML file blocked in open() for over 10 minutes. Inputs are regular
/// files only (checked before the open, which cannot block), and a safetensors file's header
/// and size are checked before it is read.
#[test]
fn special_and_huge_input_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for fifo in ["fifo.npy", "fifo.safetensors", "fifo.toml"] {
        let path = std::ffi::CString::new(d.join(fifo).to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
    fn run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--n",
            "8",
            "--steps",
            "2",
            "--backend",
            "cpu",
            "--quiet",
        ];
        v.extend(extra);
        v.extend(["--out", "o"]);
        v
    }
    let device = "is a device: attnflow reads its inputs from regular files only";
    let fifo = "is a FIFO (named pipe): attnflow reads its inputs from regular files only";
    refused_quickly(
        &run(&["--qkv", "safetensors:/dev/zero:gpt2", "--heads", "1"]),
        d,
        "/dev/zero",
        device,
    );
    refused_quickly(
        &[
            "run",
            "--init",
            "safetensors:/dev/zero:wte",
            "--tokens",
            "1,2",
            "--steps",
            "2",
            "--out",
            "o",
        ],
        d,
        "/dev/zero",
        device,
    );
    refused_quickly(
        &run(&["--mlp", "safetensors:/dev/zero:gpt2"]),
        d,
        "/dev/zero",
        device,
    );
    refused_quickly(&run(&["--init", "file:/dev/zero"]), d, "/dev/zero", device);
    refused_quickly(&run(&["--init", "file:fifo.npy"]), d, "fifo.npy", fifo);
    refused_quickly(
        &run(&["--qkv", "safetensors:fifo.safetensors:gpt2", "--heads", "1"]),
        d,
        "fifo.safetensors",
        fifo,
    );
    refused_quickly(
        &[
            "run",
            "--init",
            "safetensors:fifo.safetensors:wte",
            "--tokens",
            "1",
            "--out",
            "o",
        ],
        d,
        "fifo.safetensors",
        fifo,
    );
    refused_quickly(
        &["run", "--config", "fifo.toml", "--out", "o"],
        d,
        "fifo.toml",
        fifo,
    );
    // A header longer than the file, and a 1 TiB (sparse) file: refused before reading.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend(b"{}");
    std::fs::write(d.join("long-header.safetensors"), bytes).unwrap();
    refused_quickly(
        &run(&[
            "--qkv",
            "safetensors:long-header.safetensors:gpt2",
            "--heads",
            "1",
        ]),
        d,
        "long-header.safetensors",
        "more than the 2 bytes that follow",
    );
    let huge = std::fs::File::create(d.join("huge.safetensors")).unwrap();
    huge.set_len(1 << 40).unwrap();
    drop(huge);
    refused_quickly(
        &run(&["--qkv", "safetensors:huge.safetensors:gpt2", "--heads", "1"]),
        d,
        "huge.safetensors",
        "GiB of memory",
    );
    assert!(
        !d.join("o").exists(),
        "nothing is written for a refused input"
    );
}

/// Runs `attnflow args` in `dir` with a 30 s bound and returns (exit code, stderr, seconds).
fn run_bounded(args: &[String], dir: &Path) -> (Option<i32>, String, f64) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = std::fs::read_to_string(log.path()).unwrap_or_default();
    (status.code(), err, started.elapsed().as_secs_f64())
}

/// Hostile values of a parameter of type `ty`: zero, negative, huge, non-finite, of the wrong
/// type, and just outside its declared range.
fn hostile_values(ty: &attnflow_experiments::params::Ty) -> Vec<String> {
    use attnflow_experiments::params::Ty;
    let mut v: Vec<String> = [
        "0",
        "-1",
        "-1e9",
        "1e20",
        "1e300",
        "1e400",
        "18446744073709551616",
        "inf",
        "-inf",
        "nan",
        "NaN",
        "abc",
        "",
        "true",
        "[[1]]",
        "{}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let fmt = |x: f64| format!("{x:?}");
    match *ty {
        Ty::Count { min, max } => {
            v.extend([format!("{}", max + 1), "2.5".into(), "[1]".into()]);
            if min > 0 {
                v.push(format!("{}", min - 1));
            }
        }
        Ty::Real { min, max, open } => {
            v.extend([fmt(max * 2.0 + 1.0), "[1]".into()]);
            v.push(if open { fmt(min) } else { fmt(min - 1.0) });
        }
        Ty::Counts { min, max, len } => {
            v.extend([format!("{}", max + 1), "[]".into(), "1,abc".into()]);
            v.push(vec!["2"; len + 1].join(","));
            if min > 0 {
                v.push(format!("{}", min - 1));
            }
        }
        Ty::Reals {
            min,
            max,
            open,
            len,
        } => {
            v.extend([
                fmt(max * 2.0 + 1.0),
                "[]".into(),
                "1,abc".into(),
                "1,inf".into(),
            ]);
            v.push(vec!["0.5"; len + 1].join(","));
            v.push(if open { fmt(min) } else { fmt(min - 1.0) });
        }
        Ty::CountLists { max, .. } => {
            v.extend([
                "[]".into(),
                "[[]]".into(),
                format!("[[{}]]", max + 1),
                "[[0]]".into(),
            ]);
        }
        Ty::Choice(_) | Ty::Choices(_) => v.extend(["nonsense".into(), "[]".into()]),
        Ty::Seed => v.extend(["-5".into(), "2.5".into()]),
    }
    v
}

/// Issue 22: every experiment's `--set` parameters (from the registry, not a hand list) with
/// hostile values. Was: panics (101), aborts on allocation (134), spins and results written.
/// Every value the declaration refuses is refused by the command before any work: exit 1,
/// one line naming the parameter, within seconds, no output folder. Huge, non-finite and
/// wrongly typed values must be refused by every declaration.
#[test]
fn every_experiment_parameter_refuses_hostile_values() {
    use attnflow_experiments::{EXPERIMENTS, check_params};
    let mut cases = Vec::new();
    for e in EXPERIMENTS {
        for p in e.params {
            for value in hostile_values(&p.ty) {
                let params = BTreeMap::from([(p.name.to_string(), value.clone())]);
                let refused = check_params(e, true, &params).is_err();
                let must = ["1e300", "1e400", "inf", "-inf", "nan", "abc", "{}", "[[1]]"]
                    .contains(&value.as_str())
                    && !matches!(p.ty, attnflow_experiments::params::Ty::CountLists { .. });
                assert!(
                    refused || !must,
                    "{} accepts --set {}={value}",
                    e.name,
                    p.name
                );
                if refused {
                    cases.push((e.name, p.name, value));
                }
            }
        }
    }
    assert!(cases.len() > 1500, "only {} cases", cases.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let dir = tempfile::tempdir().unwrap();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((name, key, value)) = cases.get(i) else {
                        break;
                    };
                    let args: Vec<String> = [
                        "experiment",
                        name,
                        "--quick",
                        "--backend",
                        "cpu",
                        "--quiet",
                        "--out",
                        "x",
                        "--set",
                        &format!("{key}={value}"),
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    let (code, err, secs) = run_bounded(&args, dir.path());
                    let ok = code == Some(1)
                        && err.trim_end().lines().count() == 1
                        && err.contains(key)
                        && !err.contains("panicked")
                        && secs < 20.0
                        && !dir.path().join("x").exists();
                    if !ok {
                        failures.lock().unwrap().push(format!(
                            "attnflow {}: exit {code:?} in {secs:.1} s: {err}",
                            args.join(" ")
                        ));
                        let _ = std::fs::remove_dir_all(dir.path().join("x"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The options that take an input file or folder, derived from each command's `--help`: a
/// value name FILE or DIR (not --out), an argument <DIR>, or a help text that names a file
/// form (`file:PATH`, `safetensors:FILE`, `a .npy file`, `a folder with`; `in the same forms`
/// takes the forms of the option before it). Each with the forms to give a path in.
fn input_options(command: &str) -> Vec<(String, Vec<(String, String)>)> {
    let help = Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args([command, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    // Entries: a line starting with spaces then `--name <VALUE>` or `<DIR>`, then its text.
    let mut entries: Vec<(String, String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        // A positional is `<DIR>`, or `[DIR]` where it is optional (`view DIR` or `--live`).
        if (2..=8).contains(&indent)
            && (t.starts_with("--") || t.starts_with('<') || t.starts_with('['))
        {
            let mut words = t.split_whitespace();
            let first = words.next().unwrap().trim_end_matches(',').to_string();
            let (name, value) = if first.starts_with('<') || first.starts_with('[') {
                (
                    String::new(),
                    format!("<{}>", first.trim_matches(&['<', '>', '[', ']'][..])),
                )
            } else {
                (first, words.next().unwrap_or("").to_string())
            };
            entries.push((name, value, words.collect::<Vec<_>>().join(" ")));
        } else if let Some(e) = entries.last_mut() {
            e.2.push(' ');
            e.2.push_str(t);
        }
    }
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (name, value, text) in entries {
        if name == "--out" || name == "--help" {
            continue;
        }
        let mut forms: Vec<(String, String)> = Vec::new();
        if value == "<FILE>" || value == "<DIR>" {
            forms.push((String::new(), String::new()));
        }
        if text.contains("file:PATH") {
            forms.push(("file:".into(), String::new()));
        }
        if text.contains("safetensors:FILE:wte") {
            forms.push(("safetensors:".into(), ":wte".into()));
        } else if text.contains("safetensors:FILE") {
            forms.push(("safetensors:".into(), ":gpt2".into()));
        }
        if text.contains(".npy file") || text.contains("a folder with") {
            forms.push((String::new(), String::new()));
        }
        if text.contains("in the same forms")
            && let Some(prev) = out.last()
        {
            forms.extend(prev.1.clone());
        }
        forms.dedup();
        if !forms.is_empty() {
            out.push((name, forms));
        }
    }
    out
}

/// Issue 22: a FIFO, /dev/zero, a folder and a dangling symlink given to every option that
/// takes an input file (found from the commands' --help, in every form its help names) are
/// refused at once: exit 1 or 2, one line, no panic, within 30 s, no output folder, the
/// special file still there.
#[test]
fn special_files_for_every_input_option_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    std::fs::create_dir(d.join("folder")).unwrap();
    std::os::unix::fs::symlink(d.join("gone.npy"), d.join("dangling")).unwrap();
    let specials = ["fifo", "/dev/zero", "folder", "dangling"];
    let base = |command: &str| -> Vec<&'static str> {
        match command {
            "run" => vec![
                "--n",
                "8",
                "--steps",
                "2",
                "--backend",
                "cpu",
                "--quiet",
                "--out",
                "o",
            ],
            "attend" => vec!["--backend", "cpu", "--out", "o"],
            "cfm" => vec![
                "--n",
                "8",
                "--m",
                "4",
                "--steps",
                "2",
                "--backend",
                "cpu",
                "--out",
                "o",
            ],
            _ => vec![],
        }
    };
    let mut tried = 0;
    let mut failures = Vec::new();
    let mut options_seen = Vec::new();
    for command in ["run", "attend", "cfm", "render", "view"] {
        for (option, forms) in input_options(command) {
            options_seen.push(format!("{command} {option}"));
            for (prefix, suffix) in &forms {
                for special in specials {
                    let mut args = vec![command.to_string()];
                    let value = format!("{prefix}{special}{suffix}");
                    if option.is_empty() {
                        args.push(value);
                    } else {
                        args.extend([option.clone(), value]);
                    }
                    if option == "--init" && prefix == "safetensors:" {
                        args.extend(["--tokens".into(), "1,2".into()]);
                    }
                    if option == "--qkv" && prefix == "safetensors:" {
                        args.extend(["--heads".into(), "1".into()]);
                    }
                    if command == "cfm" && option == "--queries" {
                        // --queries in the forms of --context needs a context of its dimension.
                        args.extend(["--d".into(), "3".into()]);
                    }
                    args.extend(base(command).iter().map(|s| s.to_string()));
                    let (code, err, secs) = run_bounded(&args, d);
                    tried += 1;
                    let ok = matches!(code, Some(1 | 2))
                        && err.trim_end().lines().count() == 1
                        && !err.contains("panicked")
                        && secs < 30.0
                        && !d.join("o").exists()
                        && (special.starts_with('/') || d.join(special).symlink_metadata().is_ok());
                    if !ok {
                        failures.push(format!(
                            "attnflow {}: exit {code:?} in {secs:.1} s: {err}",
                            args.join(" ")
                        ));
                        let _ = std::fs::remove_dir_all(d.join("o"));
                    }
                }
            }
        }
    }
    // The derivation finds the options the issue names (a --help rewording must not hide one).
    for want in [
        "run --config",
        "run --resume",
        "run --init",
        "run --qkv",
        "run --mlp",
        "attend --keys",
        "attend --queries",
        "attend --qkv",
        "cfm --context",
        "cfm --queries",
        "cfm --qkv",
        "render ",
        "view ",
    ] {
        assert!(
            options_seen
                .iter()
                .any(|o| o == want.trim_end() || o == want),
            "{want} not found among {options_seen:?}"
        );
    }
    assert!(tried >= 60, "only {tried} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
