//! The `run` job: build a backend, integrate, and write the output folder
//! (final.npy, metrics.csv, run.toml, and traj.npy + traj_t.npy when snapshots are asked for).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::config::{BackendChoice, Resolved, RunConfig};
use crate::cpu::CpuBackend;
use crate::error::{Error, Result, file_error};
use crate::gpu::{GpuBackend, GpuContext};
use crate::integrate::{self, Backend, Tokens};
use crate::model::observables::{Metrics, summarise};
use crate::model::{Attention, Geometry, Mask, Model, Shape};
use crate::npy;
use crate::output::Output;
use crate::reference::ReferenceBackend;

/// Progress callbacks (the CLI draws a bar; the library prints nothing).
pub trait Progress {
    fn start(&mut self, _total_steps: u64) {}
    fn step(&mut self, _done: u64) {}
    fn finish(&mut self) {}
}

/// No progress display.
pub struct Silent;
impl Progress for Silent {}

/// A backend ready to run, with what was chosen and why.
pub struct Chosen {
    pub backend: Box<dyn Backend>,
    /// The backend actually used (never `auto`).
    pub kind: BackendChoice,
    /// Said to the user when `auto` did not get a hardware GPU.
    pub note: Option<String>,
}

/// Which backend a request resolves to: the kind, its GPU device when it is `gpu`, and
/// what to tell the user when `auto` did not get a hardware GPU.
pub struct Picked {
    pub kind: BackendChoice,
    pub gpu: Option<Arc<GpuContext>>,
    pub note: Option<String>,
}

/// Resolves a backend request. `auto` takes a hardware GPU adapter when there is one; with
/// only a software adapter (llvmpipe, far slower than the native CPU path) or none, it picks
/// `cpu` and says so.
pub fn pick_backend(choice: BackendChoice) -> Result<Picked> {
    let picked = |kind, gpu, note| Picked { kind, gpu, note };
    match choice {
        BackendChoice::Reference | BackendChoice::Cpu => Ok(picked(choice, None, None)),
        BackendChoice::Gpu => Ok(picked(choice, Some(Arc::new(GpuContext::new()?)), None)),
        BackendChoice::Auto => {
            let note = match GpuContext::new() {
                Ok(ctx) if !ctx.is_software() => {
                    return Ok(picked(BackendChoice::Gpu, Some(Arc::new(ctx)), None));
                }
                Ok(ctx) => format!(
                    "no hardware GPU found (only the software adapter {}); falling back to the \
                     cpu backend, which is faster here. Use --backend gpu to run on it anyway.",
                    ctx.describe()
                ),
                Err(e) => format!("{e}; falling back to the cpu backend"),
            };
            Ok(picked(BackendChoice::Cpu, None, Some(note)))
        }
    }
}

/// Builds the requested backend (see [`pick_backend`] for `auto`).
pub fn create_backend(
    choice: BackendChoice,
    model: &Model,
    shape: Shape,
    x0: &[f64],
) -> Result<Chosen> {
    let Picked { kind, gpu, note } = pick_backend(choice)?;
    let backend: Box<dyn Backend> = match (kind, gpu) {
        (BackendChoice::Reference, _) => Box::new(ReferenceBackend::new(model, shape, x0)?),
        (BackendChoice::Gpu, Some(ctx)) => Box::new(GpuBackend::new(ctx, model, shape, x0)?),
        _ => Box::new(CpuBackend::new(model, shape, x0)?),
    };
    Ok(Chosen {
        backend,
        kind,
        note,
    })
}

/// Pair interactions in one evaluation of the vector field: batch * sum_i |J(i)|.
pub fn pairs_per_eval(model: &Model, shape: Shape) -> f64 {
    let n = shape.n as f64;
    let per_system = match model.mask {
        Mask::Full => n * n,
        Mask::Causal => n * (n + 1.0) / 2.0,
    };
    per_system * shape.batch as f64 * model.head_count() as f64
}

/// Integrates `steps` steps of size h (layers 0, 1, ...) with no output: the engine behind
/// `run`, for library users and tests. With noise the integrator must be Euler.
pub fn integrate_steps(
    backend: &mut dyn Backend,
    model: &Model,
    integrator: integrate::Integrator,
    h: f64,
    steps: usize,
) -> Result<()> {
    let tableau = integrator.tableau();
    backend.prepare(tableau.stages())?;
    for layer in 0..steps {
        let sphere = model.geometry == Geometry::Sphere;
        integrate::step(
            backend,
            &tableau,
            h,
            sphere,
            layer as u32,
            model.noise.as_ref(),
        )?;
    }
    Ok(())
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub backend: String,
    pub kind: BackendChoice,
    pub note: Option<String>,
    pub elapsed_s: f64,
    /// Pair interactions per second over the whole run (observables excluded).
    pub pairs_per_second: f64,
    /// Seconds the dynamics took (steps and the checks of the state), and the observables
    /// (every metrics.csv row, the initial one included).
    pub dynamics_s: f64,
    pub metrics_s: f64,
    pub initial: Vec<Metrics>,
    pub last: Vec<Metrics>,
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Provenance {
    attnflow_version: &'static str,
    requested_backend: &'static str,
    device: String,
    status: &'static str,
    started_unix_s: u64,
    elapsed_s: f64,
    command: String,
}

#[derive(Serialize)]
struct RunRecord<'a> {
    #[serde(flatten)]
    config: &'a RunConfig,
    provenance: Provenance,
}

/// Runs a resolved configuration and writes its output folder through `out` (opened with
/// [`Output::open`] for `Kind::Run` before the work; committed here when the run succeeds).
pub fn execute(
    resolved: &Resolved,
    out: Output,
    command: &str,
    progress: &mut dyn Progress,
) -> Result<RunSummary> {
    let Resolved { shape, model, .. } = resolved;
    let shape = *shape;
    let mut config = resolved.config.clone();
    let x0 = resolved.init.generate(shape, model.geometry, config.seed)?;
    let chosen = create_backend(config.backend, model, shape, &x0)?;
    drop(x0);
    let Chosen {
        mut backend,
        kind,
        note,
    } = chosen;
    let requested = config.backend;
    config.backend = kind;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let write_record = |status: &'static str, elapsed_s: f64, device: String| -> Result<()> {
        let record = RunRecord {
            config: &config,
            provenance: Provenance {
                attnflow_version: env!("CARGO_PKG_VERSION"),
                requested_backend: requested.name(),
                device,
                status,
                started_unix_s: started,
                elapsed_s,
                command: command.to_string(),
            },
        };
        let text = toml::to_string(&record)
            .map_err(|e| Error::Input(format!("cannot serialise run.toml: {e}")))?;
        let path = out.path("run.toml");
        std::fs::write(&path, text).map_err(|e| file_error(&path, format!("cannot write: {e}")))
    };
    let device = backend.describe();

    let cfg = &config;
    let h = cfg.t_end / cfg.steps as f64;
    let tableau = cfg.integrator.tableau();
    backend.prepare(tableau.stages())?;
    let sphere = model.geometry == Geometry::Sphere;

    let metrics_path = out.path("metrics.csv");
    let mut metrics_file = BufWriter::new(
        File::create(&metrics_path)
            .map_err(|e| file_error(&metrics_path, format!("cannot create: {e}")))?,
    );
    let csv_err = |e: std::io::Error| file_error(&metrics_path, format!("cannot write: {e}"));
    writeln!(
        metrics_file,
        "step,t,system,beta,energy,mean_cos,min_cos,log_energy"
    )
    .map_err(csv_err)?;

    let mut traj = if let Some(frames) = cfg.steps.checked_div(cfg.save_every) {
        let frames = frames + 1 + usize::from(!cfg.steps.is_multiple_of(cfg.save_every));
        let mut dims = vec![frames];
        if shape.batch > 1 {
            dims.push(shape.batch);
        }
        dims.extend([shape.n, shape.d]);
        Some(Trajectory::create(
            &out.path("traj.npy"),
            &dims,
            backend.as_mut(),
        )?)
    } else {
        None
    };
    let mut times = Vec::new();

    let mut record_metrics = |backend: &mut dyn Backend, step: usize| -> Result<Vec<Metrics>> {
        let rows = backend.pair_stats()?;
        let metrics: Vec<Metrics> = rows
            .chunks(shape.n)
            .zip(&model.betas)
            .map(|(r, &beta)| summarise(r, beta))
            .collect();
        for (b, m) in metrics.iter().enumerate() {
            writeln!(
                metrics_file,
                "{step},{},{b},{},{:.12e},{:.12e},{:.12e},{:.15e}",
                step as f64 * h,
                model.betas[b],
                m.energy,
                m.mean_cos,
                m.min_cos,
                m.log_energy
            )
            .map_err(csv_err)?;
        }
        metrics_file.flush().map_err(csv_err)?;
        Ok(metrics)
    };

    let t1 = Instant::now();
    let initial = record_metrics(backend.as_mut(), 0)?;
    let mut metrics_s = t1.elapsed().as_secs_f64();
    let mut last = initial.clone();
    if let Some(t) = traj.as_mut() {
        t.push(backend.as_mut())?;
        times.push(0.0);
    }
    progress.start(cfg.steps as u64);
    let clock = Instant::now();
    let mut stepping_s = 0.0;
    let mut checked = 0;
    for step in 1..=cfg.steps {
        let t0 = Instant::now();
        integrate::step(
            backend.as_mut(),
            &tableau,
            h,
            sphere,
            (step - 1) as u32,
            model.noise.as_ref(),
        )?;
        let metrics_now =
            (cfg.metrics_every > 0 && step.is_multiple_of(cfg.metrics_every)) || step == cfg.steps;
        let snapshot_now =
            cfg.save_every > 0 && (step.is_multiple_of(cfg.save_every) || step == cfg.steps);
        if metrics_now || snapshot_now {
            // The step's work is done before the check reads the state, so its time counts
            // as the dynamics' and not the observables'.
            if backend.non_finite()? {
                progress.finish();
                let first = backend.first_non_finite_layer();
                return Err(non_finite_error(
                    model,
                    cfg,
                    kind,
                    (checked, step),
                    first,
                    h,
                ));
            }
            checked = step;
        }
        stepping_s += t0.elapsed().as_secs_f64();
        if metrics_now {
            let t1 = Instant::now();
            last = record_metrics(backend.as_mut(), step)?;
            metrics_s += t1.elapsed().as_secs_f64();
        }
        if snapshot_now && let Some(t) = traj.as_mut() {
            t.push(backend.as_mut())?;
            times.push(step as f64 * h);
        }
        progress.step(step as u64);
    }
    progress.finish();
    let elapsed_s = clock.elapsed().as_secs_f64();

    let mut dims = vec![shape.n, shape.d];
    if shape.batch > 1 {
        dims.insert(0, shape.batch);
    }
    let final_path = out.path("final.npy");
    match backend.read_state()? {
        Tokens::F32(v) => npy::write(&final_path, &dims, &v)?,
        Tokens::F64(v) => npy::write(&final_path, &dims, &v)?,
    }
    if let Some(t) = traj {
        t.finish()?;
        npy::write(&out.path("traj_t.npy"), &[times.len()], &times)?;
    }
    metrics_file.flush().map_err(csv_err)?;
    drop(metrics_file);
    write_record("finished", elapsed_s, device.clone())?;
    let dir = out.dir().to_path_buf();
    let files = out.commit()?.iter().map(|f| dir.join(f)).collect();
    let pairs = pairs_per_eval(model, shape) * (tableau.stages() * cfg.steps) as f64;
    Ok(RunSummary {
        backend: device,
        kind,
        note,
        elapsed_s,
        pairs_per_second: pairs / stepping_s.max(1e-12),
        dynamics_s: stepping_s,
        metrics_s,
        initial,
        last,
        files,
    })
}

/// What to tell a user whose run blew up: when (the step, where the backend tracked it, or
/// the checks between which it happened) and the likely cause, from the model and the options.
fn non_finite_error(
    model: &Model,
    cfg: &RunConfig,
    kind: BackendChoice,
    (ok, bad): (usize, usize),
    first: Option<u32>,
    h: f64,
) -> Error {
    let t = |x: f64| {
        if x == 0.0 || (1e-4..1e6).contains(&x.abs()) {
            format!("{x}")
        } else {
            format!("{x:.3e}")
        }
    };
    let when = match first {
        Some(l) => format!(
            "the state became NaN or infinite in step {} (t = {} to {})",
            l + 1,
            t(f64::from(l) * h),
            t(f64::from(l + 1) * h)
        ),
        None => format!(
            "the state became NaN or infinite between step {ok} (t = {}) and step {bad} (t = {})",
            t(ok as f64 * h),
            t(bad as f64 * h)
        ),
    };
    let beta = model.betas.iter().copied().fold(0.0, f64::max);
    // The largest score beta <Qx, Kx> of unit tokens: beta times the spectral norm of K^T Q
    // (by power iteration; redrawn weights are about 1).
    let spectral = |m: &[f64], d: usize| {
        let mut v = vec![1.0 / (d as f64).sqrt(); d];
        let mut norm = 0.0;
        for _ in 0..50 {
            let mv: Vec<f64> = (0..d)
                .map(|r| (0..d).map(|c| m[r * d + c] * v[c]).sum())
                .collect();
            let mtmv: Vec<f64> = (0..d)
                .map(|c| (0..d).map(|r| m[r * d + c] * mv[r]).sum())
                .collect();
            let len = mtmv.iter().map(|x| x * x).sum::<f64>().sqrt();
            if len == 0.0 {
                return 0.0;
            }
            norm = len.sqrt();
            v = mtmv.iter().map(|x| x / len).collect();
        }
        norm
    };
    let norm = model
        .heads
        .iter()
        .map(|w| spectral(&w.score_matrix(), w.d))
        .fold(0.0, f64::max)
        .max(if model.random.is_some() { 1.0 } else { 0.0 });
    let exponent = beta * norm;
    let f32_backend = kind != BackendChoice::Reference;
    let hint = if model.attention == Attention::Usa && exponent > 700.0 {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{exponent:.0}, beyond even f64 (e^709); \
             use a smaller beta or SA"
        )
    } else if model.attention == Attention::Usa && f32_backend && exponent > 85.0 {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{exponent:.0}, beyond the f32 range \
             (e^88); use --backend reference (f64), a smaller beta, or SA"
        )
    } else if cfg.noise > 0.0 {
        format!(
            "Euler-Maruyama with --noise {} and h = {h}: use more --steps or a smaller --noise",
            cfg.noise
        )
    } else if model.random.is_some() && cfg.weight_scale > 1.0 {
        format!(
            "weights redrawn with --weight-scale {} at h = {h}: use more --steps or a smaller \
             --weight-scale",
            cfg.weight_scale
        )
    } else if model.geometry == Geometry::Euclidean {
        format!(
            "in R^d (--geometry euclidean) attention can grow the tokens without bound: a \
             shorter --t-end, more --steps (h = {h} now), or --geometry sphere"
        )
    } else {
        format!("the step h = {h} is too long for this beta: use more --steps or a smaller beta")
    };
    Error::NonFinite(format!("{when}: {hint}"))
}

/// traj.npy written snapshot by snapshot in the backend's precision.
enum Trajectory {
    F32(npy::StreamWriter<f32>),
    F64(npy::StreamWriter<f64>),
}

impl Trajectory {
    fn create(path: &Path, dims: &[usize], backend: &mut dyn Backend) -> Result<Self> {
        // The precision follows the backend: reference writes f64, the others f32.
        Ok(match backend.read_state()? {
            Tokens::F32(_) => Trajectory::F32(npy::StreamWriter::create(path, dims)?),
            Tokens::F64(_) => Trajectory::F64(npy::StreamWriter::create(path, dims)?),
        })
    }
    fn push(&mut self, backend: &mut dyn Backend) -> Result<()> {
        match (self, backend.read_state()?) {
            (Trajectory::F32(w), Tokens::F32(v)) => w.push(&v),
            (Trajectory::F64(w), Tokens::F64(v)) => w.push(&v),
            _ => unreachable!("a backend's precision does not change"),
        }
    }
    fn finish(self) -> Result<()> {
        match self {
            Trajectory::F32(w) => w.finish(),
            Trajectory::F64(w) => w.finish(),
        }
    }
}
