//! The `run` job: build a backend, integrate, and write the output folder
//! (final.npy, metrics.csv, run.toml, and traj.npy + traj_t.npy when snapshots are asked for).

use std::path::Path;
use std::time::Instant;

use crate::config::{BackendChoice, Resolved, RunConfig};
use crate::csv::CsvWriter;
use crate::error::{Error, Result, file_error};
use crate::integrate::{self, Backend, Tokens};
use crate::model::observables::{Metrics, summarise};
use crate::model::{Attention, Geometry, Model};
use crate::npy;
use crate::output::Output;

pub use super::checkpoint::{CHECKPOINT_INTERVAL_S, Checkpoint, Digest, Outputs, Resume};
use super::checkpoint::{
    RunRecord, checkpoint_table, commit_checkpoint, commit_outputs, outputs_table,
};
use super::driver::{Boundary, Driven, Saves, Schedule, StepLoop};
pub use super::report::{Interrupt, Progress, RunSummary, Silent, pairs_per_eval};

/// Refuses a resume whose files are not those its record covers (run.toml's `[outputs]`, or
/// a checkpoint's `[checkpoint]` table): a file cut, edited or replaced since, or a record
/// whose `steps_done` is not the step its files hold. `source` holds the files.
pub fn verify_resume(
    record: &Path,
    source: &Path,
    steps_done: usize,
    checkpoint: Option<&Checkpoint>,
) -> Result<()> {
    match checkpoint {
        Some(c) if c.step != steps_done => Err(edited(record, steps_done, c.step)),
        Some(c) => verify_checkpoint(source, c),
        None => verify_outputs(record, source, steps_done),
    }
}

/// A file of a resume that changed since the run wrote it.
fn changed(path: &Path, what: String) -> Error {
    file_error(
        path,
        format!(
            "{what}: it changed since the run wrote it, and a resume would continue from \
             other data; restore it, or start a new run"
        ),
    )
}

fn size(path: &Path) -> Result<u64> {
    std::fs::symlink_metadata(path)
        .map_err(|e| file_error(path, format!("cannot resume from it: {e}")))
        .map(|m| m.len())
}

/// A record whose `steps_done` is not the `step` its files hold.
fn edited(record: &Path, steps_done: usize, step: usize) -> Error {
    file_error(
        record,
        format!(
            "records steps_done = {steps_done}, but the files it covers hold step {step}: \
             the record was edited; cannot resume from it (restore it, or start a new run)"
        ),
    )
}

/// The checks of [`verify_resume`] against a checkpoint's record.
fn verify_checkpoint(source: &Path, c: &Checkpoint) -> Result<()> {
    let state = source.join(&c.state);
    let len = size(&state)?;
    if len != c.state_bytes {
        return Err(changed(
            &state,
            format!("has {len} bytes, its checkpoint recorded {}", c.state_bytes),
        ));
    }
    if crate::output::sha256_file(&state)? != c.state_sha256 {
        return Err(changed(
            &state,
            "its SHA-256 differs from the one its checkpoint recorded".into(),
        ));
    }
    let metrics = source.join("metrics.csv");
    let len = size(&metrics)?;
    if len < c.metrics_bytes {
        return Err(changed(
            &metrics,
            format!(
                "has {len} bytes, fewer than the {} its checkpoint recorded",
                c.metrics_bytes
            ),
        ));
    }
    if crate::output::sha256_range(&metrics, 0, c.metrics_bytes)? != c.metrics_sha256 {
        return Err(changed(
            &metrics,
            format!(
                "its first {} bytes differ from those its checkpoint recorded",
                c.metrics_bytes
            ),
        ));
    }
    let traj = source.join("traj.npy");
    if c.frames > 0 {
        let len = size(&traj)?;
        let start = npy::data_start(&traj)?;
        if len < start + c.traj_bytes {
            return Err(changed(
                &traj,
                format!(
                    "holds {} bytes of snapshots, fewer than the {} ({} snapshots) its \
                     checkpoint recorded",
                    len.saturating_sub(start),
                    c.traj_bytes,
                    c.frames
                ),
            ));
        }
        if crate::output::sha256_range(&traj, start, c.traj_bytes)? != c.traj_sha256 {
            return Err(changed(
                &traj,
                format!(
                    "its first {} snapshots differ from those its checkpoint recorded",
                    c.frames
                ),
            ));
        }
    }
    Ok(())
}

/// The checks of [`verify_resume`] against run.toml's `[outputs]`.
fn verify_outputs(record: &Path, source: &Path, steps_done: usize) -> Result<()> {
    let text = std::fs::read_to_string(record)
        .map_err(|e| file_error(record, format!("cannot read: {e}")))?;
    let outputs = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|mut t| t.remove("outputs"))
        .and_then(|o| o.try_into::<Outputs>().ok())
        .ok_or_else(|| {
            file_error(
                record,
                "records no valid [outputs] table (the size and SHA-256 of each file \
                 the run wrote, which a resume checks): it was written by an older \
                 attnflow or edited; start a new run",
            )
        })?;
    if outputs.step != steps_done {
        return Err(edited(record, steps_done, outputs.step));
    }
    for name in ["final.npy", "metrics.csv"] {
        if !outputs.files.contains_key(name) {
            return Err(file_error(
                record,
                format!("its [outputs] table names no {name}; cannot resume from it"),
            ));
        }
    }
    for (name, digest) in &outputs.files {
        let path = source.join(name);
        let len = size(&path)?;
        if len != digest.bytes {
            return Err(changed(
                &path,
                format!("has {len} bytes, run.toml recorded {}", digest.bytes),
            ));
        }
        if crate::output::sha256_file(&path)? != digest.sha256 {
            return Err(changed(
                &path,
                "its SHA-256 differs from the one run.toml recorded".into(),
            ));
        }
    }
    Ok(())
}

/// Reads the `[checkpoint]` table of a checkpoint record.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    #[derive(serde::Deserialize)]
    struct Record {
        checkpoint: Checkpoint,
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let record: Record = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|mut t| t.remove("checkpoint"))
        .and_then(|c| {
            toml::Table::try_from(c)
                .ok()
                .map(|c| toml::Table::from_iter([("checkpoint".to_string(), c.into())]))
        })
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| file_error(path, "holds no valid [checkpoint] table"))?;
    Ok(record.checkpoint)
}

/// The step count and status recorded in a run record (run.toml or a checkpoint's record:
/// `steps_done` and `status` of its provenance).
pub fn recorded_progress(path: &Path) -> Result<(usize, String)> {
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| file_error(path, format!("invalid: {e}")))?;
    let provenance = table.get("provenance").and_then(|p| p.as_table());
    let status = provenance
        .and_then(|p| p.get("status"))
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string();
    let steps = provenance
        .and_then(|p| p.get("steps_done"))
        .and_then(|s| s.as_integer())
        .ok_or_else(|| {
            file_error(
                path,
                "records no steps_done: it was written before runs could be resumed",
            )
        })?;
    Ok((steps as usize, status))
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
    let stepper = integrate::Stepper::new(model, integrator)?;
    stepper.prepare(backend)?;
    stepper.steps(backend, h, 0..steps as u32)
}

/// Runs a resolved configuration and writes its output folder through `out` (opened with
/// [`Output::open`] for `Kind::Run` before the work; committed here when the run succeeds).
pub fn execute(
    resolved: &Resolved,
    out: Output,
    command: &str,
    progress: &mut dyn Progress,
) -> Result<RunSummary> {
    execute_from(resolved, out, command, progress, Start::Init)
}

/// Where a run starts.
pub enum Start {
    /// From the configuration's --init.
    Init,
    /// From tokens handed over in memory (a binding's array), made by
    /// [`InitSpec::from_tokens`](crate::model::init::InitSpec::from_tokens); the caller records
    /// where they are kept in the configuration's `init`.
    Tokens(Vec<f64>),
    /// Continuing a stopped run: its state, its step count (the next step is layer
    /// `resume.step`, so that noise and redraws continue their streams), its metrics.csv and
    /// trajectory (copied into the staging folder and extended). The result is bit for bit the
    /// run that was never stopped, on the same backend.
    Resume(Resume),
}

/// [`execute`] from the given start.
pub fn execute_from(
    resolved: &Resolved,
    out: Output,
    command: &str,
    progress: &mut dyn Progress,
    start: Start,
) -> Result<RunSummary> {
    let (x0, resume) = initial_state(resolved, start)?;
    let config = &resolved.config;
    if config.integrator.is_adaptive() {
        return super::adaptive_run::execute(resolved, out, command, progress, x0, resume);
    }
    let first_step = resume.as_ref().map_or(0, |r| r.step);
    if first_step > config.steps {
        return Err(Error::Input(format!(
            "the run already did {first_step} steps; --steps {} would be fewer",
            config.steps
        )));
    }
    let (model, shape) = (&resolved.model, resolved.shape);
    let chosen = crate::backend::build_dynamics(config.backend, model, shape, &x0)?;
    drop(x0);
    let crate::backend::Chosen {
        mut backend,
        kind,
        note,
    } = chosen;
    let resumed_from = (first_step > 0).then_some(first_step);
    let record = RunRecord::new(config, kind, command, resumed_from, backend.describe());
    let cfg = &record.config;
    let h = cfg.t_end / cfg.steps as f64;
    let stepper = integrate::Stepper::new(model, cfg.integrator)?;
    stepper.prepare(backend.as_mut())?;
    let metrics_file = open_metrics(&out, resume.as_ref(), cfg.metrics_every)?;
    let mut frame = vec![shape.n, shape.d];
    if shape.batch > 1 {
        frame.insert(0, shape.batch);
    }
    let (traj, times) = open_trajectory(&out, &frame, resume.as_ref(), cfg, backend.as_mut())?;
    let mut fixed = Fixed {
        backend: backend.as_mut(),
        stepper: &stepper,
        model,
        shape,
        kind,
        h,
        record: &record,
        out: &out,
        frame,
        metrics_path: out.path("metrics.csv"),
        metrics_file,
        traj,
        times,
        last: Vec::new(),
        metrics_s: 0.0,
        clock: Instant::now(),
    };
    let initial = fixed.initial(resume.is_some())?;
    let schedule = Schedule {
        first: first_step,
        steps: cfg.steps,
        metrics_every: cfg.metrics_every,
        saves: Saves::Every(cfg.save_every),
        checkpoint_every: cfg.checkpoint_every,
        check_every_step: false,
    };
    fixed.clock = Instant::now();
    let driven = super::driver::drive(&schedule, progress, &mut fixed)?;
    let elapsed_s = fixed.clock.elapsed().as_secs_f64();
    let (last, metrics_s) = (std::mem::take(&mut fixed.last), fixed.metrics_s);
    fixed.finish(&driven, elapsed_s)?;
    let files = commit_outputs(out)?;
    let pairs = pairs_per_eval(model, shape)
        * (stepper.tableau().stages() * (driven.steps_done - first_step)) as f64;
    Ok(RunSummary {
        backend: record.device,
        kind,
        note,
        elapsed_s,
        pairs_per_second: pairs / driven.stepping_s.max(1e-12),
        dynamics_s: driven.stepping_s,
        metrics_s,
        start_step: first_step,
        steps_done: driven.steps_done,
        t_done: driven.steps_done as f64 * h,
        interrupted: driven.interrupted,
        initial,
        last,
        files,
    })
}

/// The state a run starts from, and the run it continues.
fn initial_state(resolved: &Resolved, start: Start) -> Result<(Vec<f64>, Option<Resume>)> {
    let shape = resolved.shape;
    Ok(match start {
        Start::Init => (
            resolved
                .init
                .generate(shape, resolved.model.geometry, resolved.config.seed)?,
            None,
        ),
        Start::Tokens(x) => {
            if x.len() != shape.len() {
                return Err(Error::Input(format!(
                    "the initial state holds {} values but the run's shape needs {}",
                    x.len(),
                    shape.len()
                )));
            }
            (x, None)
        }
        Start::Resume(r) => (r.state.clone(), Some(r)),
    })
}

/// metrics.csv: new, or a resumed run's earlier rows up to the step resumed from.
fn open_metrics(out: &Output, resume: Option<&Resume>, every: usize) -> Result<CsvWriter> {
    let metrics_path = out.path("metrics.csv");
    let Some(r) = resume else {
        return CsvWriter::create(
            &metrics_path,
            "step,t,system,beta,energy,mean_cos,min_cos,log_energy",
        );
    };
    let text = r.earlier_metrics()?;
    // The rows the run never stopped would have: the first, and every metrics_every-th up
    // to the step resumed from (not the row of the step a stop or the end of a shorter run
    // added).
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(k, l)| {
            *k == 0
                || l.split(',')
                    .next()
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_some_and(|s| {
                        s <= r.step && (s == 0 || (every > 0 && s.is_multiple_of(every)))
                    })
        })
        .map(|(_, l)| l)
        .collect();
    let mut f = CsvWriter::create_empty(&metrics_path)?;
    for l in kept {
        f.line(format_args!("{l}"))?;
    }
    Ok(f)
}

/// traj.npy (with `save_every`): new, or a resumed run's earlier snapshots up to the step
/// resumed from; and their times.
fn open_trajectory(
    out: &Output,
    frame: &[usize],
    resume: Option<&Resume>,
    cfg: &RunConfig,
    backend: &mut dyn Backend,
) -> Result<(Option<Trajectory>, Vec<f64>)> {
    if cfg.save_every == 0 {
        return Ok((None, Vec::new()));
    }
    let traj_path = out.path("traj.npy");
    let r = match resume {
        Some(r) if r.dir.join("traj.npy").exists() => r,
        _ => {
            let traj = Trajectory::create(&traj_path, frame, backend)?;
            return Ok((Some(traj), Vec::new()));
        }
    };
    // The earlier snapshots (those up to the step resumed from).
    std::fs::copy(r.dir.join("traj.npy"), &traj_path)
        .map_err(|e| file_error(&traj_path, format!("cannot copy: {e}")))?;
    let t = match &r.checkpoint {
        Some(c) => c.times.clone(),
        None => npy::read_as::<f64>(&r.dir.join("traj_t.npy"))?.1,
    };
    // The snapshots the run never stopped would have: every save_every-th step up to the one
    // resumed from (not the last step of a shorter run).
    let keep = match &r.checkpoint {
        Some(c) => c.frames,
        None => r.step.checked_div(cfg.save_every).unwrap_or(0) + 1,
    };
    if t.len() < keep {
        return Err(file_error(
            r.dir.join("traj_t.npy"),
            format!(
                "holds {} times, fewer than the {keep} snapshots of step {}",
                t.len(),
                r.step
            ),
        ));
    }
    let (traj, _) = Trajectory::append(&traj_path, frame, Some(keep), backend)?;
    Ok((Some(traj), t[..keep].to_vec()))
}

/// A fixed-step run in progress: the backend and its stepper, and the files the driver's
/// boundaries write (metrics rows, snapshots, checkpoints).
struct Fixed<'a> {
    backend: &'a mut dyn Backend,
    stepper: &'a integrate::Stepper,
    model: &'a Model,
    shape: crate::model::Shape,
    kind: BackendChoice,
    h: f64,
    record: &'a RunRecord<'a>,
    out: &'a Output,
    frame: Vec<usize>,
    metrics_path: std::path::PathBuf,
    metrics_file: CsvWriter,
    traj: Option<Trajectory>,
    times: Vec<f64>,
    last: Vec<Metrics>,
    metrics_s: f64,
    clock: Instant,
}

impl Fixed<'_> {
    /// The observables of the state.
    fn metrics(&mut self) -> Result<Vec<Metrics>> {
        let rows = self.backend.pair_stats()?;
        Ok(rows
            .chunks(self.shape.n)
            .zip(&self.model.betas)
            .map(|(r, &beta)| summarise(r, beta))
            .collect())
    }

    /// The observables of the state after `step`, as metrics.csv's rows.
    fn metrics_row(&mut self, step: usize) -> Result<Vec<Metrics>> {
        let metrics = self.metrics()?;
        for (b, m) in metrics.iter().enumerate() {
            self.metrics_file.line(format_args!(
                "{step},{},{b},{},{:.12e},{:.12e},{:.12e},{:.15e}",
                step as f64 * self.h,
                self.model.betas[b],
                m.energy,
                m.mean_cos,
                m.min_cos,
                m.log_energy
            ))?;
        }
        self.metrics_file.flush()?;
        Ok(metrics)
    }

    /// The initial observables: a new run's first row and snapshot (a resumed run's first
    /// row is that of its state, written already when it stopped).
    fn initial(&mut self, resumed: bool) -> Result<Vec<Metrics>> {
        let t1 = Instant::now();
        let initial = if resumed {
            self.metrics()?
        } else {
            self.metrics_row(0)?
        };
        self.metrics_s = t1.elapsed().as_secs_f64();
        self.last = initial.clone();
        if !resumed && let Some(t) = self.traj.as_mut() {
            t.push(self.backend)?;
            self.times.push(0.0);
        }
        Ok(initial)
    }

    /// A checkpoint after `step`: everything up to this step on disk, then the record that
    /// names it, renamed into place last, so that a kill at any moment leaves the previous
    /// checkpoint or this one.
    fn checkpoint(&mut self, step: usize) -> Result<()> {
        let metrics_bytes = self.metrics_file.sync()?;
        let metrics_sha256 = crate::output::sha256_range(&self.metrics_path, 0, metrics_bytes)?;
        let (frames, (traj_bytes, traj_sha256)) = match self.traj.as_mut() {
            Some(t) => (t.sync()?, t.data_digest()),
            None => (0, (0, crate::output::sha256_hex(Default::default()))),
        };
        let state = format!(".checkpoint-{step}.npy");
        let state_path = self.out.path(&state);
        write_state(&state_path, &self.frame, self.backend)?;
        let state_bytes = std::fs::metadata(&state_path)
            .map_err(|e| file_error(&state_path, format!("cannot read: {e}")))?
            .len();
        let checkpoint = Checkpoint {
            step,
            state,
            state_bytes,
            state_sha256: crate::output::sha256_file(&state_path)?,
            metrics_bytes,
            metrics_sha256,
            frames,
            traj_bytes,
            traj_sha256,
            times: self.times.clone(),
        };
        let mut text = self.record.text(
            format!("interrupted at step {step} of {}", self.record.config.steps),
            step,
            step as f64 * self.h,
            self.clock.elapsed().as_secs_f64(),
        )?;
        text.push('\n');
        text.push_str(&checkpoint_table(&checkpoint)?);
        commit_checkpoint(self.out, &[checkpoint.state.as_str()], text)
    }

    /// The output files of a run that ended after `driven.steps_done` steps: final.npy,
    /// traj.npy and traj_t.npy, metrics.csv and run.toml.
    fn finish(self, driven: &Driven, elapsed_s: f64) -> Result<()> {
        let out = self.out;
        write_state(&out.path("final.npy"), &self.frame, self.backend)?;
        if let Some(t) = self.traj {
            t.finish()?;
            npy::write(&out.path("traj_t.npy"), &[self.times.len()], &self.times)?;
        }
        self.metrics_file.finish()?;
        let steps_done = driven.steps_done;
        let status = match driven.interrupted {
            Some(_) => format!(
                "interrupted at step {steps_done} of {}",
                self.record.config.steps
            ),
            None => "finished".to_string(),
        };
        let t_done = steps_done as f64 * self.h;
        let mut text = self.record.text(status, steps_done, t_done, elapsed_s)?;
        text.push('\n');
        text.push_str(&outputs_table(
            out,
            steps_done,
            &["final.npy", "metrics.csv", "traj.npy", "traj_t.npy"],
        )?);
        let path = out.path("run.toml");
        std::fs::write(&path, text).map_err(|e| file_error(&path, format!("cannot write: {e}")))
    }
}

impl StepLoop for Fixed<'_> {
    fn step(&mut self, step: usize) -> Result<()> {
        self.stepper.step(self.backend, self.h, (step - 1) as u32)
    }

    fn check_finite(&mut self, checked: usize, step: usize) -> Result<()> {
        if !self.backend.non_finite()? {
            return Ok(());
        }
        let first = self.backend.first_non_finite_layer();
        let cfg = &self.record.config;
        let (model, kind, h) = (self.model, self.kind, self.h);
        Err(non_finite_error(
            model,
            cfg,
            kind,
            (checked, step),
            first,
            h,
        ))
    }

    fn observe(&mut self, at: &Boundary) -> Result<()> {
        let step = at.step;
        if at.metrics {
            let t1 = Instant::now();
            self.last = self.metrics_row(step)?;
            self.metrics_s += t1.elapsed().as_secs_f64();
        }
        if at.snapshot
            && let Some(t) = self.traj.as_mut()
        {
            t.push(self.backend)?;
            self.times.push(step as f64 * self.h);
        }
        if at.checkpoint {
            self.checkpoint(step)?;
        }
        Ok(())
    }
}

/// A state file (final.npy, a checkpoint's) in the backend's precision.
fn write_state(path: &Path, frame: &[usize], backend: &mut dyn Backend) -> Result<()> {
    match backend.read_state()? {
        Tokens::F32(v) => npy::write(path, frame, &v),
        Tokens::F64(v) => npy::write(path, frame, &v),
    }
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
    let t = short;
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
    let hint = blow_up_hint(model, cfg, kind, h);
    Error::NonFinite(format!("{when}: {hint}"))
}

/// A number for a message: plain in [1e-4, 1e6) (and 0), else in scientific notation.
fn short(x: f64) -> String {
    if x == 0.0 || (1e-4..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:.3e}")
    }
}

/// The likely cause of a blow-up at step h and its remedy, read from the field's growth bound
/// (model/stability.rs, shared with cfm) and the options.
fn blow_up_hint(model: &Model, cfg: &RunConfig, kind: BackendChoice, h: f64) -> String {
    let t = short;
    let growth = crate::model::stability::Growth::of(model, cfg.n);
    let (exponent, alibi_exponent) = (growth.exponent, growth.alibi_exponent);
    // The option that scales the weights, named in a remedy when it is what grew them.
    let scale = if model.random.is_some() && cfg.weight_scale > 1.0 {
        format!(", a smaller --weight-scale (now {})", t(cfg.weight_scale))
    } else {
        String::new()
    };
    let stable_h = growth.stable_h(cfg.integrator);
    let stable_steps = (cfg.t_end / stable_h).ceil();
    let e_str = if exponent < 1e6 {
        format!("{exponent:.0}")
    } else {
        format!("{exponent:.1e}")
    };
    let f32_backend = kind != BackendChoice::Reference;
    let steps_hint = if stable_steps.is_finite() && stable_steps < 1e12 {
        format!(" with steps below about {stable_h:.3e} (--steps {stable_steps} or more)")
    } else {
        String::new()
    };
    let usa = model.attention == Attention::Usa;
    if alibi_exponent > 5.0 && alibi_exponent >= exponent {
        let lambda = model.alibi.map_or(0.0, |a| a.slope);
        let reach = if alibi_exponent > 709.0 {
            "beyond even f64 (e^709)".to_string()
        } else if h > stable_h && !steps_hint.is_empty() {
            format!(
                "so steps below about {stable_h:.3e} (--steps {stable_steps} or more) would be stable"
            )
        } else if h > stable_h {
            format!("so only steps below about {stable_h:.3e} would be stable")
        } else {
            "which the step cannot follow".to_string()
        };
        format!(
            "--alibi {} with --alibi-excludes-self gives a token a USA weight on itself of up to \
             e^(lambda / n) = e^{} (its normaliser sums only the earlier tokens), {reach}; use a \
             smaller --alibi (lambda / n of a few units) or drop --alibi-excludes-self",
            t(lambda),
            t(alibi_exponent)
        )
    } else if usa && exponent > 700.0 {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{e_str}, beyond even f64 (e^709); \
             use a smaller beta{scale} or SA"
        )
    } else if usa && f32_backend && exponent > 85.0 && steps_hint.is_empty() {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{e_str}, beyond the f32 range (e^88), \
             and in f64 only steps below about {stable_h:.3e} would be stable; use a smaller \
             beta{scale} or SA"
        )
    } else if usa && f32_backend && exponent > 85.0 {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{e_str}, beyond the f32 range \
             (e^88); use --backend reference (f64){steps_hint}, a smaller beta{scale}, or SA"
        )
    } else {
        step_hint(model, cfg, h, &growth)
    }
}

/// [`blow_up_hint`] where neither ALiBi nor USA's range explains it: noise, scaled weights,
/// R^d, or a step too long for the field.
fn step_hint(
    model: &Model,
    cfg: &RunConfig,
    h: f64,
    growth: &crate::model::stability::Growth,
) -> String {
    let t = short;
    let lipschitz = growth.lipschitz;
    let stable_h = growth.stable_h(cfg.integrator);
    let stable_steps = (cfg.t_end / stable_h).ceil();
    let usa = if model.attention == Attention::Usa {
        " times USA's weights, up to e^(beta |K^T Q|)"
    } else {
        ""
    };
    let alibi = model
        .alibi
        .map(|a| {
            format!(
                " (--alibi {} concentrates the weights and does not raise it)",
                a.slope
            )
        })
        .unwrap_or_default();
    if cfg.noise > 0.0 {
        format!(
            "Euler-Maruyama with --noise {} and h = {}: use more --steps or a smaller --noise",
            t(cfg.noise),
            t(h)
        )
    } else if model.random.is_some() && cfg.weight_scale > 1.0 {
        format!(
            "weights redrawn with --weight-scale {} at h = {}: use more --steps or a smaller \
             --weight-scale",
            t(cfg.weight_scale),
            t(h)
        )
    } else if model.geometry == Geometry::Euclidean {
        format!(
            "in R^d (--geometry euclidean) attention can grow the tokens without bound: a \
             shorter --t-end, more --steps (h = {h} now), or --geometry sphere"
        )
    } else if h > stable_h {
        format!(
            "the step h = {h} is too long for this field: its speed changes by up to about \
             {lipschitz:.3e} per unit move ((2 beta |K^T Q| + 1) |V|{usa}){alibi}, so steps \
             below about {stable_h:.3e} (--steps {stable_steps} or more) would be stable; \
             or use a smaller beta"
        )
    } else {
        format!(
            "the step h = {h} is already below the field's stability bound (about \
             {stable_h:.3e}){alibi}: check the input tokens and weights, or use more \
             --steps"
        )
    }
}

/// traj.npy written snapshot by snapshot in the backend's precision; its header names the
/// snapshots written (see `npy::FrameWriter`).
enum Trajectory {
    F32(npy::FrameWriter<f32>),
    F64(npy::FrameWriter<f64>),
}

impl Trajectory {
    fn create(path: &Path, frame: &[usize], backend: &mut dyn Backend) -> Result<Self> {
        // The precision follows the backend: reference writes f64, the others f32.
        Ok(match backend.read_state()? {
            Tokens::F32(_) => Trajectory::F32(npy::FrameWriter::create(path, frame)?),
            Tokens::F64(_) => Trajectory::F64(npy::FrameWriter::create(path, frame)?),
        })
    }
    /// An earlier trajectory to extend, and its snapshot count.
    fn append(
        path: &Path,
        frame: &[usize],
        keep: Option<usize>,
        backend: &mut dyn Backend,
    ) -> Result<(Self, usize)> {
        Ok(match backend.read_state()? {
            Tokens::F32(_) => {
                let (w, k) = npy::FrameWriter::append(path, frame, keep)?;
                (Trajectory::F32(w), k)
            }
            Tokens::F64(_) => {
                let (w, k) = npy::FrameWriter::append(path, frame, keep)?;
                (Trajectory::F64(w), k)
            }
        })
    }
    fn push(&mut self, backend: &mut dyn Backend) -> Result<()> {
        match (self, backend.read_state()?) {
            (Trajectory::F32(w), Tokens::F32(v)) => w.push(&v),
            (Trajectory::F64(w), Tokens::F64(v)) => w.push(&v),
            _ => unreachable!("a backend's precision does not change"),
        }
    }
    fn sync(&mut self) -> Result<usize> {
        match self {
            Trajectory::F32(w) => w.sync().map(|()| w.frames()),
            Trajectory::F64(w) => w.sync().map(|()| w.frames()),
        }
    }
    fn data_digest(&self) -> (u64, String) {
        match self {
            Trajectory::F32(w) => w.data_digest(),
            Trajectory::F64(w) => w.data_digest(),
        }
    }
    fn finish(self) -> Result<()> {
        match self {
            Trajectory::F32(w) => w.finish(),
            Trajectory::F64(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigLayer, resolve};
    use crate::output::Kind;

    /// A progress that asks for a stop once `k` steps are done (the driver reads the stop
    /// after each step, before that step's report).
    struct StopAfter {
        k: u64,
        done: u64,
    }

    impl Progress for StopAfter {
        fn step(&mut self, done: u64) {
            self.done = done;
        }
        fn interrupted(&self) -> Option<Interrupt> {
            (self.done + 1 >= self.k).then_some(Interrupt::Int)
        }
    }

    fn resolved(t_end: f64, steps: usize) -> Resolved {
        let layer = ConfigLayer {
            n: Some(24),
            d: Some(3),
            t_end: Some(t_end),
            steps: Some(steps),
            save_every: Some(5),
            metrics_every: Some(3),
            backend: Some(BackendChoice::Reference),
            ..Default::default()
        };
        resolve(&layer).unwrap()
    }

    fn run_into(dir: &Path, r: &Resolved, progress: &mut dyn Progress, start: Start) -> RunSummary {
        let output = Output::open(dir, Kind::Run, false, &[]).unwrap();
        execute_from(r, output, "test", progress, start).unwrap()
    }

    fn same_files(a: &Path, b: &Path) {
        for name in ["final.npy", "metrics.csv", "traj.npy", "traj_t.npy"] {
            let (x, y) = (std::fs::read(a.join(name)), std::fs::read(b.join(name)));
            assert_eq!(x.unwrap(), y.unwrap(), "{name} differs");
        }
    }

    #[test]
    fn a_stop_after_step_k_leaves_the_files_of_a_run_to_k_and_resumes_bit_for_bit() {
        let tmp = tempfile::tempdir().unwrap();
        let (whole, to_k) = (resolved(10.0, 50), resolved(4.0, 20));
        assert_eq!(10.0 / 50.0, 4.0 / 20.0, "the same step h");
        let stopped_dir = tmp.path().join("stopped");
        let mut stop = StopAfter { k: 20, done: 0 };
        let stopped = run_into(&stopped_dir, &whole, &mut stop, Start::Init);
        assert_eq!(
            (stopped.steps_done, stopped.interrupted),
            (20, Some(Interrupt::Int))
        );
        let k_dir = tmp.path().join("to-k");
        let ran = run_into(&k_dir, &to_k, &mut Silent, Start::Init);
        assert_eq!((ran.steps_done, ran.interrupted), (20, None));
        // Rows at 0, 3, ..., 18 and the stop's (the last step's) at 20; snapshots every 5th.
        same_files(&stopped_dir, &k_dir);
        let metrics = std::fs::read_to_string(k_dir.join("metrics.csv")).unwrap();
        assert_eq!(metrics.lines().count(), 1 + 8);

        // Resumed to the end: the run never stopped, bit for bit.
        let state = npy::read_as::<f64>(&stopped_dir.join("final.npy"))
            .unwrap()
            .1;
        let resume = Resume {
            step: 20,
            state,
            dir: stopped_dir,
            checkpoint: None,
        };
        let resumed_dir = tmp.path().join("resumed");
        let resumed = run_into(&resumed_dir, &whole, &mut Silent, Start::Resume(resume));
        assert_eq!((resumed.start_step, resumed.steps_done), (20, 50));
        let whole_dir = tmp.path().join("whole");
        run_into(&whole_dir, &whole, &mut Silent, Start::Init);
        same_files(&resumed_dir, &whole_dir);
    }
}
