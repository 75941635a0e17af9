//! `attnflow._attnflow`: the Python extension. It calls the library's jobs (the run job, one
//! attention layer, the experiments) with options in the same names and meanings as the
//! CLI's TOML layer; the Python package `attnflow` wraps it with numpy, progress bars and
//! result objects. The GIL is released while anything is computed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyTypeError, PyValueError};
use pyo3::prelude::*;

use attnflow::Error;
use attnflow::config::{self, ConfigLayer};
use attnflow::output::{Kind, Output};
use attnflow::run::{self, Interrupt, Progress};

create_exception!(_attnflow, AttnflowError, PyException);

/// Bad input is a ValueError with the CLI's one-line message; everything else (a blow-up, an
/// I/O or device failure) an AttnflowError.
fn to_py(e: Error) -> PyErr {
    let message = python_names(&e.to_string());
    match e {
        Error::Input(_) | Error::Limit(_) => PyValueError::new_err(message),
        _ => AttnflowError::new_err(message),
    }
}

/// A message in Python's names: the CLI's `--force` and `--out` are the keyword arguments
/// `force=True` and `out=` here.
fn python_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let word_end = |w: &str| {
            tail.strip_prefix(w)
                .is_some_and(|t| !t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
        };
        if word_end("--force") {
            out.push_str("force=True");
            rest = &tail["--force".len()..];
        } else if let Some(t) = tail.strip_prefix("--set: ") {
            // An experiment's parameters are keyword arguments in Python.
            rest = t;
        } else if let Some(t) = tail.strip_prefix("--set ") {
            rest = t;
        } else if word_end("--out") {
            out.push_str("out=");
            rest = &tail["--out".len()..];
        } else {
            out.push_str("--");
            rest = &tail[2..];
        }
    }
    out.push_str(rest);
    out
}

/// Reports progress to a Python callable and watches for Ctrl-C, at most every 0.1 s: each
/// time it attaches to the interpreter briefly, calls `callback(done, total)` and runs the
/// signal handlers; a KeyboardInterrupt stops the run at the step in progress (complete
/// files are still written) and is raised once the run has returned.
struct PyProgress {
    callback: Option<Py<PyAny>>,
    total: u64,
    last: Instant,
    interrupted: Option<PyErr>,
    failed: Option<PyErr>,
}

impl PyProgress {
    fn new(callback: Option<Py<PyAny>>) -> Self {
        PyProgress {
            callback,
            total: 0,
            last: Instant::now() - Duration::from_secs(1),
            interrupted: None,
            failed: None,
        }
    }

    fn report(&mut self, done: u64, force: bool) {
        if !force && self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        Python::attach(|py| {
            if self.interrupted.is_none()
                && let Err(e) = py.check_signals()
            {
                self.interrupted = Some(e);
            }
            if let Some(cb) = &self.callback
                && self.failed.is_none()
                && let Err(e) = cb.call1(py, (done, self.total))
            {
                self.failed = Some(e);
            }
        });
    }
}

impl Progress for PyProgress {
    fn start(&mut self, total_steps: u64) {
        self.total = total_steps;
        self.report(0, true);
    }
    fn step(&mut self, done: u64) {
        self.report(done, false);
    }
    fn finish(&mut self) {
        self.report(self.total, true);
    }
    fn interrupted(&self) -> Option<Interrupt> {
        (self.interrupted.is_some() || self.failed.is_some()).then_some(Interrupt::Int)
    }
}

/// Runs the configuration `config_toml` (a config file as the CLI reads one: the keys of
/// run.toml, the CLI's flags with `_`) into the folder `out` and returns a JSON summary. Raises
/// KeyboardInterrupt after writing complete files when interrupted.
///
/// `x0`: initial tokens as a C-contiguous float32 or float64 array [n, d] or [B, n, d], read in
/// place (no file, no copy on the Python side: the run's state is the only copy).
/// `keep_inputs`: the results are the user's (an `out` folder): the given tokens are kept
/// beside them as x0.npy, and Q.npy, K.npy, V.npy of the temporary folder `qkv_dir` (arrays the
/// user passed as qkv) are moved in, and run.toml names these copies, so that it replays.
#[pyfunction]
#[pyo3(signature = (config_toml, out, force, progress=None, x0=None, keep_inputs=false, qkv_dir=None))]
#[allow(clippy::too_many_arguments)]
fn run_job(
    py: Python<'_>,
    config_toml: &str,
    out: PathBuf,
    force: bool,
    progress: Option<Py<PyAny>>,
    x0: Option<Bound<'_, PyAny>>,
    keep_inputs: bool,
    qkv_dir: Option<PathBuf>,
) -> PyResult<String> {
    use attnflow::model::init::{InitSpec, TokenSlice};
    // An unknown keyword is named with the options there are (not the fields attnflow writes
    // into a run.toml, which the TOML layer also reads).
    let table: toml::Table = toml::from_str(config_toml)
        .map_err(|e| PyValueError::new_err(format!("invalid option: {}", e.message())))?;
    let known = ConfigLayer::python_keywords();
    if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(PyValueError::new_err(format!(
            "unknown option `{key}`: attnflow.run takes x0, out, force, progress and the \
             options {}",
            known.join(", ")
        )));
    }
    let mut layer: ConfigLayer = toml::from_str(config_toml)
        .map_err(|e| PyValueError::new_err(format!("invalid option: {}", e.message())))?;
    // The array, borrowed read-only for the whole run.
    let x0 = x0.as_ref().map(|a| Borrowed::new("x0", a)).transpose()?;
    let x0_shape: Option<Vec<usize>> = x0.as_ref().map(Borrowed::shape);
    let tokens = x0.as_ref().map(|a| a.tokens("x0")).transpose()?;
    if let Some(shape) = &x0_shape {
        if layer.init.is_some() {
            return Err(PyValueError::new_err("give either x0 or init, not both"));
        }
        match shape.as_slice() {
            [n, d] => {
                layer.n.get_or_insert(*n);
                layer.d.get_or_insert(*d);
            }
            [b, n, d] => {
                layer.batch.get_or_insert(*b);
                layer.n.get_or_insert(*n);
                layer.d.get_or_insert(*d);
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "x0 must have 2 or 3 dimensions ([n, d] or [B, n, d]), got shape {other:?}"
                )));
            }
        }
    }
    let mut progress = PyProgress::new(progress);
    let summary = py.detach(|| -> attnflow::Result<run::RunSummary> {
        let mut resolved = config::resolve(&layer)?;
        let output = Output::open(&out, Kind::Run, force, &resolved.input_files())?;
        let start = match (tokens, &x0_shape) {
            (Some(t), Some(shape)) => {
                let x =
                    InitSpec::from_tokens("x0", shape, t, resolved.shape, resolved.model.geometry)?;
                if keep_inputs {
                    output.claim("x0.npy")?;
                    let path = output.path("x0.npy");
                    match t {
                        TokenSlice::F64(v) => attnflow::npy::write(&path, shape, v)?,
                        TokenSlice::F32(v) => attnflow::npy::write(&path, shape, v)?,
                    }
                    record_kept(&mut resolved, &output, "x0.npy")?;
                    resolved.config.init = format!("file:{}", kept_path(&output, "x0.npy")?);
                }
                run::Start::Tokens(x)
            }
            _ => run::Start::Init,
        };
        if keep_inputs && let Some(dir) = &qkv_dir {
            let from = std::fs::canonicalize(dir)
                .map_err(|e| attnflow::error::file_error(dir, format!("cannot open: {e}")))?;
            for name in ["Q.npy", "K.npy", "V.npy"] {
                output.claim(name)?;
                let src = from.join(name);
                std::fs::copy(&src, output.path(name))
                    .map_err(|e| attnflow::error::file_error(&src, format!("cannot copy: {e}")))?;
                record_kept(&mut resolved, &output, name)?;
            }
            // The temporary folder's files are not what the record should name.
            resolved
                .config
                .inputs
                .retain(|k, _| !(Path::new(k).starts_with(&from) || Path::new(k).starts_with(dir)));
            let dir = std::fs::canonicalize(output.dir())
                .map_err(|e| attnflow::error::file_error(output.dir(), format!("{e}")))?;
            resolved.config.qkv = dir.display().to_string();
        }
        run::execute_from(
            &resolved,
            output,
            "attnflow.run (Python)",
            &mut progress,
            start,
        )
    });
    drop(x0);
    let summary = summary.map_err(to_py)?;
    if let Some(e) = progress.failed {
        return Err(e);
    }
    if let Some(e) = progress.interrupted {
        return Err(e);
    }
    if summary.interrupted.is_some() {
        return Err(PyKeyboardInterrupt::new_err("interrupted"));
    }
    Ok(serde_json::json!({
        "backend": summary.backend,
        "kind": summary.kind.name(),
        "note": summary.note,
        "elapsed_s": summary.elapsed_s,
        "pairs_per_second": summary.pairs_per_second,
        "steps_done": summary.steps_done,
    })
    .to_string())
}

/// A float32 or float64 numpy array borrowed read-only (no copy) for as long as it lives.
enum Borrowed<'py> {
    F64(PyReadonlyArrayDyn<'py, f64>),
    F32(PyReadonlyArrayDyn<'py, f32>),
}

impl<'py> Borrowed<'py> {
    fn new(what: &str, a: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(v) = a.extract::<PyReadonlyArrayDyn<'py, f64>>() {
            return Ok(Borrowed::F64(v));
        }
        a.extract::<PyReadonlyArrayDyn<'py, f32>>()
            .map(Borrowed::F32)
            .map_err(|_| {
                PyValueError::new_err(format!("{what} must be a float32 or float64 numpy array"))
            })
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            Borrowed::F64(a) => a.shape().to_vec(),
            Borrowed::F32(a) => a.shape().to_vec(),
        }
    }

    /// The values as one f64 vector (the one copy a consumer that owns its tokens needs).
    fn to_f64(&self, what: &str) -> PyResult<Vec<f64>> {
        use attnflow::model::init::TokenSlice;
        Ok(match self.tokens(what)? {
            TokenSlice::F64(v) => v.to_vec(),
            TokenSlice::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        })
    }

    fn tokens(&self, what: &str) -> PyResult<attnflow::model::init::TokenSlice<'_>> {
        use attnflow::model::init::TokenSlice;
        let contiguous = || {
            PyValueError::new_err(format!(
                "{what} must be C-contiguous (numpy.ascontiguousarray)"
            ))
        };
        Ok(match self {
            Borrowed::F64(a) => TokenSlice::F64(a.as_slice().map_err(|_| contiguous())?),
            Borrowed::F32(a) => TokenSlice::F32(a.as_slice().map_err(|_| contiguous())?),
        })
    }
}

/// Where the kept input `name` lies once the run is committed (absolute).
fn kept_path(output: &Output, name: &str) -> attnflow::Result<String> {
    let dir = std::fs::canonicalize(output.dir())
        .map_err(|e| attnflow::error::file_error(output.dir(), format!("cannot open: {e}")))?;
    Ok(dir.join(name).display().to_string())
}

/// Records the SHA-256 of the staged input `name` under the path it will have.
fn record_kept(
    resolved: &mut attnflow::config::Resolved,
    output: &Output,
    name: &str,
) -> attnflow::Result<()> {
    let hash = attnflow::output::sha256_file(&output.path(name))?;
    resolved
        .config
        .inputs
        .insert(kept_path(output, name)?, hash);
    Ok(())
}

/// One attention layer: keys [S, n, d] and queries [S, m, d] (f64), the layer's options as
/// JSON (beta, beta_rule, model, qkv, backend). Returns the outputs [S, m, d] and, when
/// `stats`, the per-query statistics as columns (draw, query, max_weight, effective_keys,
/// entropy, and top1..topk), the backend's description and its note.
#[pyfunction]
#[pyo3(signature = (keys, queries, beta, beta_rule, model, qkv, backend, stats, top_k))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn attend_layer<'py>(
    py: Python<'py>,
    keys: Bound<'py, PyAny>,
    queries: Bound<'py, PyAny>,
    beta: f64,
    beta_rule: &str,
    model: &str,
    qkv: &str,
    backend: &str,
    stats: bool,
    top_k: usize,
) -> PyResult<(
    Bound<'py, PyAny>,
    Vec<(String, Bound<'py, PyArray1<f64>>)>,
    String,
    Option<String>,
)> {
    use attnflow::attend::{AttentionStats, LayerShape, one_layer};
    use attnflow::jobs::attend::{self, AttendOptions};
    // Borrowed in place and copied once, in f64, into the layer's own (normalised) tokens.
    let (keys, queries) = (
        Borrowed::new("keys", &keys)?,
        Borrowed::new("queries", &queries)?,
    );
    let (ks, qs) = (keys.shape(), queries.shape());
    if ks.len() != 3 || qs.len() != 3 {
        return Err(PyValueError::new_err(format!(
            "keys and queries must be [S, n, d] arrays, got shapes {ks:?} and {qs:?}"
        )));
    }
    let (batch, n, d, m) = (ks[0], ks[1], ks[2], qs[1]);
    if qs[0] != batch || qs[2] != d {
        return Err(PyValueError::new_err(format!(
            "queries have shape {qs:?} but keys {ks:?}: the draws and d must agree"
        )));
    }
    let mut y = keys.to_f64("keys")?;
    let mut z = queries.to_f64("queries")?;
    // The checks of the CLI's .npy inputs: sizes, and every element finite.
    if n == 0 || m == 0 {
        return Err(PyValueError::new_err(
            "keys and queries need at least one token each",
        ));
    }
    if d < 2 {
        return Err(PyValueError::new_err(format!(
            "d = {d} is too small: tokens live in R^d with d >= 2"
        )));
    }
    for (what, v, count) in [("keys", &y, n), ("queries", &z, m)] {
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "{what}: element [{}, {}, {}] is {}",
                i / (count * d),
                (i / d) % count,
                i % d,
                v[i]
            )));
        }
    }
    // On the sphere, as the CLI's token files: each token normalised, a zero token refused.
    for (what, v) in [("keys", &mut y), ("queries", &mut z)] {
        if let Some(t) = v.chunks(d).position(|t| t.iter().all(|x| *x == 0.0)) {
            return Err(PyValueError::new_err(format!(
                "{what}: token {t} is the zero vector, which has no direction on the sphere"
            )));
        }
        attnflow::model::geometry::normalise_tokens(v, d);
    }
    use attnflow::options::{BackendOpt, LayerOpts, parse_name};
    let options = AttendOptions {
        keys: "array".into(),
        queries: None,
        d: Some(d),
        layer: LayerOpts {
            seeds: batch,
            seed: 0,
            beta,
            beta_rule: parse_name(beta_rule).map_err(to_py)?,
            model: parse_name(model).map_err(to_py)?,
        },
        qkv: qkv.into(),
        top_k,
        no_stats: !stats,
        backend: BackendOpt {
            choice: backend.parse().map_err(to_py)?,
        },
    };
    let layer = one_layer("attend", &options.layer, qkv, n, d).map_err(to_py)?;
    let shape = LayerShape { batch, m, n, d };
    let result = py
        .detach(|| attend::evaluate(&layer, &options, shape, &y, &z, &mut |_| {}))
        .map_err(to_py)?;
    let mut columns: Vec<(String, Vec<f64>)> = Vec::new();
    if let Some(rows) = &result.stats {
        let mut push = |name: String, f: &dyn Fn(usize, &AttentionStats) -> f64| {
            columns.push((
                name,
                rows.iter().enumerate().map(|(t, s)| f(t, s)).collect(),
            ));
        };
        push("draw".into(), &|t, _| (t / m) as f64);
        push("query".into(), &|t, _| (t % m) as f64);
        push("max_weight".into(), &|_, s| s.max_weight);
        push("effective_keys".into(), &|_, s| s.effective_keys);
        push("entropy".into(), &|_, s| s.entropy);
        for k in 0..top_k {
            push(format!("top{}", k + 1), &|_, s| s.top[k]);
        }
    }
    let (out, describe, note) = (result.outputs, result.device, result.note);
    let out = out.into_pyarray(py).reshape([batch, m, d])?.into_any();
    let columns = columns
        .into_iter()
        .map(|(name, c)| (name, c.into_pyarray(py)))
        .collect();
    Ok((out, columns, describe, note))
}

/// The `cfm` job: `args` are the CLI's flags (`["--m", "64", "--infinite", ...]`, parsed by
/// the CLI's own parser, so every option has its name, default and checks), written into
/// `out`. Returns a JSON summary (the record's resolved values, timings, the files).
#[pyfunction]
#[pyo3(signature = (args, out, force, progress=None, context=None, queries=None, keep_inputs=false))]
#[allow(clippy::too_many_arguments)]
fn cfm_job(
    py: Python<'_>,
    args: Vec<String>,
    out: PathBuf,
    force: bool,
    progress: Option<Py<PyAny>>,
    context: Option<Bound<'_, PyAny>>,
    queries: Option<Bound<'_, PyAny>>,
    keep_inputs: bool,
) -> PyResult<String> {
    use attnflow::jobs::cfm::{self, CfmOptions, Given};
    let options = CfmOptions::from_flags(&args).map_err(to_py)?;
    let output = attnflow::options::OutputOpts { out, force };
    let context = context
        .as_ref()
        .map(|a| Borrowed::new("context", a))
        .transpose()?;
    let queries = queries
        .as_ref()
        .map(|a| Borrowed::new("queries", a))
        .transpose()?;
    let shapes = [
        context.as_ref().map(Borrowed::shape),
        queries.as_ref().map(Borrowed::shape),
    ];
    let given = Given {
        context: match (&context, &shapes[0]) {
            (Some(a), Some(s)) => Some((s.as_slice(), a.tokens("context")?)),
            _ => None,
        },
        queries: match (&queries, &shapes[1]) {
            (Some(a), Some(s)) => Some((s.as_slice(), a.tokens("queries")?)),
            _ => None,
        },
        keep: keep_inputs,
    };
    let mut progress = PyProgress::new(progress);
    let result = py.detach(|| {
        cfm::run_with(
            &options,
            &output,
            "attnflow.cfm (Python)",
            &mut |_| {},
            &mut progress,
            given,
        )
    });
    // Ctrl-C (or a failing callback) stopped the flow: nothing was written.
    if let Some(e) = progress.failed {
        return Err(e);
    }
    if let Some(e) = progress.interrupted {
        return Err(e);
    }
    let result = result.map_err(to_py)?;
    let last = result.distance_summary.last();
    Ok(serde_json::json!({
        "backend": result.device,
        "kind": result.backend.name(),
        "note": result.note,
        "beta": result.beta,
        "elapsed_s": result.elapsed_s,
        "infinite_s": result.infinite_s,
        "pairs_per_second": result.pairs / result.elapsed_s.max(1e-9),
        "distance_at_end": last.map(|r| serde_json::json!({"mean": r.mean, "rms": r.rms, "max": r.max})),
        "files": result.files,
    })
    .to_string())
}

/// Runs the experiment `name` into `out` and returns its summary.json as text. `params` are
/// the CLI's `--set KEY=VALUE` (values as text), `mutate` its `--mutate NAME`.
#[pyfunction]
#[pyo3(signature = (name, out, quick, seed, backend, force, progress, params, mutate=None))]
#[allow(clippy::too_many_arguments)]
fn experiment_job(
    py: Python<'_>,
    name: &str,
    out: PathBuf,
    quick: bool,
    seed: u64,
    backend: &str,
    force: bool,
    progress: bool,
    params: std::collections::BTreeMap<String, String>,
    mutate: Option<String>,
) -> PyResult<String> {
    let backend = backend.parse().map_err(to_py)?;
    // The parameters are checked before any work, as the CLI does: a value of the wrong type
    // is a TypeError, one out of range a ValueError, each in Python's names (`n=0`).
    let experiment = attnflow_experiments::find(name).map_err(to_py)?;
    if let Err(r) = attnflow_experiments::check_params_typed(experiment, quick, &params) {
        let message = python_names(&r.error.to_string());
        return Err(if r.wrong_type {
            PyTypeError::new_err(message)
        } else {
            PyValueError::new_err(message)
        });
    }
    let setup = attnflow_experiments::Setup {
        out,
        force,
        quick,
        seed,
        backend,
        progress,
        params,
        mutate,
        applied: Default::default(),
        command: "attnflow.experiment (Python)".into(),
    };
    let summary = py
        .detach(|| attnflow_experiments::run(name, &setup))
        .map_err(to_py)?;
    Ok(summary.to_string())
}

/// Writes the `attnflow view` page of the output folder `dir` (to `out`, default
/// DIR/view.html) and returns its path, its size in bytes and the cluster count of each
/// system at the last shown snapshot.
#[pyfunction]
#[pyo3(signature = (dir, out=None, max_tokens=attnflow::view::MAX_TOKENS, force=false))]
fn view_page(
    py: Python<'_>,
    dir: PathBuf,
    out: Option<PathBuf>,
    max_tokens: usize,
    force: bool,
) -> PyResult<(String, u64, Vec<usize>)> {
    let opts = attnflow::view::ViewOptions {
        out,
        max_tokens,
        force,
    };
    let s = py
        .detach(|| attnflow::view::write_view(&dir, &opts))
        .map_err(to_py)?;
    Ok((s.path.display().to_string(), s.bytes, s.final_clusters))
}

/// A TOML document (run.toml) as JSON.
#[pyfunction]
fn toml_to_json(text: &str) -> PyResult<String> {
    let table: attnflow::config::TomlTable = text
        .parse()
        .map_err(|e| AttnflowError::new_err(format!("invalid TOML: {e}")))?;
    serde_json::to_string(&table).map_err(|e| AttnflowError::new_err(e.to_string()))
}

/// The GPU adapters wgpu sees, best first (empty without the gpu feature).
#[pyfunction]
fn adapters(py: Python<'_>) -> Vec<String> {
    py.detach(attnflow::backend::adapter_names)
}

#[pymodule]
fn _attnflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AttnflowError", m.py().get_type::<AttnflowError>())?;
    m.add_function(wrap_pyfunction!(run_job, m)?)?;
    m.add_function(wrap_pyfunction!(attend_layer, m)?)?;
    m.add_function(wrap_pyfunction!(cfm_job, m)?)?;
    m.add_function(wrap_pyfunction!(experiment_job, m)?)?;
    m.add_function(wrap_pyfunction!(toml_to_json, m)?)?;
    m.add_function(wrap_pyfunction!(view_page, m)?)?;
    m.add_function(wrap_pyfunction!(adapters, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
