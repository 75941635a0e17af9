//! `run` with an adaptive integrator (bosh3, dopri5, tsit5, ros23; docs/adaptive.md): the
//! engine of `integrate::adaptive` (or ros23's, `integrate::rosenbrock`, on the f64 reference
//! field), snapshots and metrics rows at the asked times through the method's dense output,
//! and the step statistics of every system in run.toml's [adaptive] table.
//! The same files as a fixed-step run (final.npy, metrics.csv, run.toml, traj.npy and
//! traj_t.npy); metrics.csv's `step` column counts output times.
//!
//! Its lifecycle is a fixed-step run's (docs/reliability-resume.md): a stop (SIGINT, SIGTERM)
//! ends it at a step boundary with complete files, `--checkpoint-every K` saves a checkpoint
//! every K step attempts of the ensemble, and `--resume` continues either to the bits of the
//! run never stopped. What continues it beside the state is [`ResumeState`]: each system's
//! time, next step and controller memory, and the outputs that some systems of an ensemble
//! have passed and others not yet (`partial.npy`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::checkpoint::{
    Checkpoint, Resume, RunRecord, checkpoint_table, commit_checkpoint, commit_outputs,
    outputs_table,
};
use super::driver::{Checkpoints, with_progress};
use super::report::{Interrupt, Progress, RunSummary, pairs_per_eval};
use crate::config::{Resolved, RunConfig, parse_times};
use crate::csv::CsvWriter;
use crate::error::{Error, Result, file_error};
use crate::integrate::adaptive::{
    AdaptiveStepper, Cursor, Partial, Sink, SystemState, SystemStats,
};
use crate::integrate::rosenbrock::Ros23Stepper;
use crate::integrate::{Backend, Integrator, Tokens};
use crate::model::observables::PairStats;
use crate::model::observables::{Metrics, summarise};
use crate::model::{Model, Shape};
use crate::npy;
use crate::output::Output;

const HEADER: &str = "step,t,system,beta,energy,mean_cos,min_cos,log_energy";

/// What continues a stopped adaptive run beside its state: the `[adaptive.state]` table of
/// run.toml (a run stopped by a signal) or of a checkpoint's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Step attempts of the ensemble so far (the record's `steps_done`).
    pub attempts: u64,
    /// The outputs handed out (metrics rows and snapshots written).
    pub next_output: usize,
    /// The file of the partial outputs' states ([k, batch n d], f64) and its SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_sha256: Option<String>,
    /// Outputs some systems have passed and others not yet: their index and the systems
    /// gathered.
    #[serde(default)]
    pub partial: Vec<PartialRecord>,
    /// Each system's time, next step, controller memory and statistics.
    pub systems: Vec<SystemState>,
}

/// One output gathered in part (its state is a row of the partial file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialRecord {
    pub index: usize,
    pub filled: usize,
}

/// The output times of an adaptive run: snapshots, metrics rows, and both with the end.
struct Times {
    save: Vec<f64>,
    metrics: Vec<f64>,
    all: Vec<f64>,
}

impl Times {
    fn of(config: &RunConfig) -> Result<Self> {
        let t_end = config.t_end;
        let save: Vec<f64> = match &config.save_times {
            Some(s) => parse_times("save-times", s, t_end)?,
            None => Vec::new(),
        };
        let metrics: Vec<f64> = match &config.metrics_times {
            Some(s) => parse_times("metrics-times", s, t_end)?,
            None => {
                let mut m = vec![0.0, t_end];
                m.extend(&save);
                m.sort_by(f64::total_cmp);
                m.dedup();
                m
            }
        };
        let mut all: Vec<f64> = save.iter().chain(&metrics).copied().collect();
        all.push(t_end);
        all.sort_by(f64::total_cmp);
        all.dedup();
        Ok(Times { save, metrics, all })
    }

    fn is_save(&self, t: f64) -> bool {
        self.save.binary_search_by(|s| s.total_cmp(&t)).is_ok()
    }

    fn is_metrics(&self, t: f64) -> bool {
        self.metrics.binary_search_by(|s| s.total_cmp(&t)).is_ok()
    }

    /// Snapshots and metrics rows among the first `outputs` output times.
    fn written(&self, outputs: usize) -> (usize, usize) {
        let done = &self.all[..outputs];
        (
            done.iter().filter(|&&t| self.is_save(t)).count(),
            done.iter().filter(|&&t| self.is_metrics(t)).count(),
        )
    }
}

/// The files an adaptive run writes as its outputs are handed out.
struct Files {
    metrics_path: PathBuf,
    metrics: CsvWriter,
    traj: Option<npy::FrameWriter<f64>>,
    rows: usize,
    initial: Vec<Metrics>,
    last: Vec<Metrics>,
    metrics_s: f64,
}

impl Files {
    /// New files, or those of the run resumed (metrics.csv and traj.npy cut to what its
    /// record covers).
    fn open(
        out: &Output,
        frame: &[usize],
        times: &Times,
        resume: Option<(&Resume, usize)>,
    ) -> Result<Self> {
        let metrics_path = out.path("metrics.csv");
        let traj_path = out.path("traj.npy");
        let Some((r, outputs)) = resume else {
            let traj = if times.save.is_empty() {
                None
            } else {
                Some(npy::FrameWriter::create(&traj_path, frame)?)
            };
            return Ok(Files {
                metrics: CsvWriter::create(&metrics_path, HEADER)?,
                metrics_path,
                traj,
                rows: 0,
                initial: Vec::new(),
                last: Vec::new(),
                metrics_s: 0.0,
            });
        };
        let (frames, rows) = times.written(outputs);
        let source = r.dir.join("metrics.csv");
        let text = r.earlier_metrics()?;
        let lines = text.bytes().filter(|&b| b == b'\n').count();
        let batch = if frame.len() == 3 { frame[0] } else { 1 };
        if lines != rows * batch + 1 || !text.ends_with('\n') {
            return Err(file_error(
                &source,
                format!(
                    "holds {} rows, but the run's record says it wrote {}: cannot resume from it",
                    lines.saturating_sub(1),
                    rows * batch
                ),
            ));
        }
        let mut csv = CsvWriter::create_empty(&metrics_path)?;
        for line in text.lines() {
            csv.line(format_args!("{line}"))?;
        }
        let traj = if times.save.is_empty() {
            None
        } else if frames == 0 && !r.dir.join("traj.npy").exists() {
            Some(npy::FrameWriter::create(&traj_path, frame)?)
        } else {
            let from = r.dir.join("traj.npy");
            std::fs::copy(&from, &traj_path)
                .map_err(|e| file_error(&traj_path, format!("cannot copy: {e}")))?;
            let (w, kept) = npy::FrameWriter::append(&traj_path, frame, Some(frames))?;
            if kept != frames {
                return Err(file_error(
                    &from,
                    format!("holds {kept} snapshots, the run's record says {frames}"),
                ));
            }
            Some(w)
        };
        Ok(Files {
            metrics_path,
            metrics: csv,
            traj,
            rows,
            initial: Vec::new(),
            last: Vec::new(),
            metrics_s: 0.0,
        })
    }

    /// Output `j` (at `times.all[j]`): a snapshot, a metrics row, or both.
    fn output(
        &mut self,
        model: &Model,
        shape: Shape,
        times: &Times,
        j: usize,
        x: &[f64],
    ) -> Result<()> {
        let t = times.all[j];
        if times.is_save(t)
            && let Some(w) = self.traj.as_mut()
        {
            w.push(x)?;
        }
        if times.is_metrics(t) {
            let t1 = Instant::now();
            // The dense output is a host state: its observables from the f64 twin.
            let metrics = metrics_of(
                model,
                shape,
                &crate::reference::pair_stats(&model.betas, shape, x),
            );
            for (b, m) in metrics.iter().enumerate() {
                self.metrics.line(format_args!(
                    "{},{t},{b},{},{:.12e},{:.12e},{:.12e},{:.15e}",
                    self.rows, model.betas[b], m.energy, m.mean_cos, m.min_cos, m.log_energy
                ))?;
            }
            self.metrics.flush()?;
            self.rows += 1;
            if self.initial.is_empty() {
                self.initial = metrics.clone();
            }
            self.last = metrics;
            self.metrics_s += t1.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// What a checkpoint covers of metrics.csv and traj.npy (both synced to the disk).
    fn covered(&mut self) -> Result<(u64, String, usize, u64, String)> {
        let metrics_bytes = self.metrics.sync()?;
        let metrics_sha256 = crate::output::sha256_range(&self.metrics_path, 0, metrics_bytes)?;
        let (frames, (traj_bytes, traj_sha256)) = match self.traj.as_mut() {
            Some(t) => {
                t.sync()?;
                (t.frames(), t.data_digest())
            }
            None => (0, (0, crate::output::sha256_hex(Default::default()))),
        };
        Ok((
            metrics_bytes,
            metrics_sha256,
            frames,
            traj_bytes,
            traj_sha256,
        ))
    }
}

fn metrics_of(
    model: &Model,
    shape: Shape,
    stats: &[crate::model::observables::PairStats],
) -> Vec<Metrics> {
    stats
        .chunks(shape.n)
        .zip(&model.betas)
        .map(|(r, &beta)| summarise(r, beta))
        .collect()
}

/// The state of a stopped run or checkpoint to continue from: its record's
/// `[adaptive.state]` and the partial outputs, checked against their record.
fn read_resume(r: &Resume, times: &Times, len: usize) -> Result<(Vec<SystemState>, Cursor)> {
    let record = match &r.checkpoint {
        Some(_) => r.dir.join(crate::output::CHECKPOINT_RECORD),
        None => r.dir.join("run.toml"),
    };
    let text = std::fs::read_to_string(&record)
        .map_err(|e| file_error(&record, format!("cannot read: {e}")))?;
    let state: ResumeState = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|mut t| t.remove("adaptive"))
        .and_then(|a| a.as_table().and_then(|a| a.get("state")).cloned())
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            file_error(
                &record,
                "records no valid [adaptive.state] table (the step control of each system, \
                 which continues an adaptive run): it finished, was written by an older \
                 attnflow, or was edited; start a new run",
            )
        })?;
    if state.attempts as usize != r.step || state.next_output > times.all.len() {
        return Err(file_error(
            &record,
            format!(
                "its [adaptive.state] ({} step attempts, {} outputs) does not match steps_done \
                 = {} and the run's {} output times: it was edited; start a new run",
                state.attempts,
                state.next_output,
                r.step,
                times.all.len()
            ),
        ));
    }
    let mut partial = Vec::new();
    if !state.partial.is_empty() {
        let name = state.partial_file.as_deref().unwrap_or("partial.npy");
        if name.contains('/') || name.contains('\\') {
            return Err(file_error(
                &record,
                format!("names a partial file {name:?} outside its folder"),
            ));
        }
        let path = r.dir.join(name);
        if state.partial_sha256.as_deref() != Some(crate::output::sha256_file(&path)?.as_str()) {
            return Err(file_error(
                &path,
                "its SHA-256 differs from the one its record holds: it changed since the run \
                 wrote it; restore it, or start a new run",
            ));
        }
        let (shape, data): (Vec<u64>, Vec<f64>) = npy::read_as(&path)?;
        if shape != [state.partial.len() as u64, len as u64] {
            return Err(file_error(
                &path,
                format!(
                    "has shape {shape:?}, its record names {} outputs of {len} values",
                    state.partial.len()
                ),
            ));
        }
        for (p, x) in state.partial.iter().zip(data.chunks(len)) {
            partial.push(Partial {
                index: p.index,
                filled: p.filled,
                state: x.to_vec(),
            });
        }
    }
    let cursor = Cursor {
        next: state.next_output,
        attempts: state.attempts,
        partial,
    };
    Ok((state.systems, cursor))
}

/// What steps an adaptive run: an embedded pair on a backend, or ros23 on its own f64 state.
enum Engine {
    Pair {
        backend: Box<dyn Backend>,
        stepper: Box<AdaptiveStepper>,
    },
    Ros23(Ros23Stepper),
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Pair { stepper, .. } => stepper.pair().name,
            Engine::Ros23(_) => Integrator::Ros23.name(),
        }
    }

    fn systems(&self) -> &[SystemState] {
        match self {
            Engine::Pair { stepper, .. } => stepper.systems(),
            Engine::Ros23(s) => s.systems(),
        }
    }

    fn read_state(&mut self) -> Result<Tokens> {
        match self {
            Engine::Pair { backend, .. } => backend.read_state(),
            Engine::Ros23(s) => Ok(Tokens::F64(s.state().to_vec())),
        }
    }

    fn pair_stats(&mut self, model: &Model, shape: Shape) -> Result<Vec<PairStats>> {
        match self {
            Engine::Pair { backend, .. } => backend.pair_stats(),
            Engine::Ros23(s) => Ok(crate::reference::pair_stats(&model.betas, shape, s.state())),
        }
    }

    fn advance_until(
        &mut self,
        t_end: f64,
        outputs: &[f64],
        cursor: &mut Cursor,
        sink: &mut Sink<'_>,
        pause: &mut dyn FnMut(u64, usize) -> bool,
    ) -> Result<bool> {
        match self {
            Engine::Pair { backend, stepper } => {
                stepper.advance_until(backend.as_mut(), t_end, outputs, cursor, sink, pause)
            }
            Engine::Ros23(s) => s.advance_until(t_end, outputs, cursor, sink, pause),
        }
    }
}

/// The partial outputs' file (`name`, [k, batch n d] f64) and what the record says of it.
fn write_partial(
    out: &Output,
    name: &str,
    cursor: &Cursor,
    stepper: &Engine,
) -> Result<ResumeState> {
    let mut state = ResumeState {
        attempts: cursor.attempts,
        next_output: cursor.next,
        partial_file: None,
        partial_sha256: None,
        partial: cursor
            .partial
            .iter()
            .map(|p| PartialRecord {
                index: p.index,
                filled: p.filled,
            })
            .collect(),
        systems: stepper.systems().to_vec(),
    };
    if let Some(first) = cursor.partial.first() {
        let path = out.path(name);
        let data: Vec<f64> = cursor
            .partial
            .iter()
            .flat_map(|p| p.state.iter().copied())
            .collect();
        npy::write(&path, &[cursor.partial.len(), first.state.len()], &data)?;
        state.partial_file = Some(name.to_string());
        state.partial_sha256 = Some(crate::output::sha256_file(&path)?);
    }
    Ok(state)
}

/// The `[adaptive]` table: the pair (or ros23), each system's statistics, and what
/// continues a stopped run.
fn adaptive_table(stepper: &Engine, state: Option<&ResumeState>) -> Result<String> {
    #[derive(Serialize)]
    struct Table<'a> {
        /// One entry per system: accepted and rejected steps, the smallest and largest
        /// accepted step, field evaluations (and ros23's GMRES iterations among them).
        adaptive: Adaptive<'a>,
    }
    #[derive(Serialize)]
    struct Adaptive<'a> {
        pair: &'a str,
        systems: &'a [SystemStats],
        #[serde(skip_serializing_if = "Option::is_none")]
        state: Option<&'a ResumeState>,
    }
    let systems: Vec<SystemStats> = stepper.systems().iter().map(|s| s.stats.clone()).collect();
    toml::to_string(&Table {
        adaptive: Adaptive {
            pair: stepper.name(),
            systems: &systems,
            state,
        },
    })
    .map_err(|e| Error::Input(format!("cannot serialise the step statistics: {e}")))
}

fn write_state(path: &Path, frame: &[usize], engine: &mut Engine) -> Result<()> {
    match engine.read_state()? {
        Tokens::F32(v) => npy::write(path, frame, &v),
        Tokens::F64(v) => npy::write(path, frame, &v),
    }
}

/// The time the ensemble reached: its slowest system's.
fn t_reached(stepper: &Engine) -> f64 {
    stepper
        .systems()
        .iter()
        .map(|s| s.t)
        .fold(f64::INFINITY, f64::min)
}

/// Runs a resolved configuration whose integrator is adaptive, from state `x0` (a resumed
/// run's state, with `resume`).
pub(super) fn execute(
    resolved: &Resolved,
    out: Output,
    command: &str,
    progress: &mut dyn Progress,
    x0: Vec<f64>,
    resume: Option<Resume>,
) -> Result<RunSummary> {
    let Resolved { shape, model, .. } = resolved;
    let shape = *shape;
    let config = &resolved.config;
    let opts = config.adaptive_options().expect("an adaptive integrator");
    let times = Times::of(config)?;
    let saved = resume
        .as_ref()
        .map(|r| read_resume(r, &times, shape.len()))
        .transpose()?;

    let (mut engine, kind, note, device) = if config.integrator == Integrator::Ros23 {
        // ros23 steps its own f64 state on the reference field (the configuration refused
        // another backend).
        let device = format!(
            "reference (f64, {} threads; ros23, matrix-free GMRES)",
            rayon::current_num_threads()
        );
        let stepper = Ros23Stepper::new(model, shape, x0, opts)?;
        (
            Engine::Ros23(stepper),
            crate::backend::BackendChoice::Reference,
            None,
            device,
        )
    } else {
        let chosen = crate::backend::build_dynamics(config.backend, model, shape, &x0)?;
        drop(x0);
        let crate::backend::Chosen {
            mut backend,
            kind,
            note,
        } = chosen;
        let mut stepper = AdaptiveStepper::new(model, shape, config.integrator, opts)?;
        stepper.prepare(backend.as_mut())?;
        let device = backend.describe();
        (
            Engine::Pair {
                backend,
                stepper: Box::new(stepper),
            },
            kind,
            note,
            device,
        )
    };
    let resumed_from = resume.as_ref().map(|r| r.step);
    let record = RunRecord::new(config, kind, command, resumed_from, device);
    let mut cursor = Cursor::default();
    if let Some((systems, c)) = saved {
        match &mut engine {
            Engine::Pair { stepper, .. } => stepper.restore(systems)?,
            Engine::Ros23(s) => s.restore(systems)?,
        }
        cursor = c;
    }
    let first_attempt = cursor.attempts as usize;

    let mut frame = vec![shape.n, shape.d];
    if shape.batch > 1 {
        frame.insert(0, shape.batch);
    }
    let mut files = Files::open(
        &out,
        &frame,
        &times,
        resume.as_ref().map(|r| (r, cursor.next)),
    )?;
    if resume.is_some() {
        // A resumed run's first row is that of its state.
        files.initial = metrics_of(model, shape, &engine.pair_stats(model, shape)?);
        files.last = files.initial.clone();
    }
    let mut run = Adaptive {
        engine,
        cursor,
        files,
        times: &times,
        model,
        shape,
        frame,
        out: &out,
        record: &record,
        clock: Instant::now(),
    };
    let (total, done) = (times.all.len() as u64, run.cursor.next as u64);
    run.clock = Instant::now();
    let interrupted = with_progress(progress, total, done, |progress| run.advance(progress))?;
    let elapsed_s = run.clock.elapsed().as_secs_f64();
    let ended = run.finish(interrupted, elapsed_s)?;
    let written = commit_outputs(out)?;
    let pairs = pairs_per_eval(model, shape) * ended.evaluations as f64;
    Ok(RunSummary {
        backend: record.device,
        kind,
        note,
        elapsed_s,
        pairs_per_second: pairs / elapsed_s.max(1e-12),
        dynamics_s: elapsed_s - ended.metrics_s,
        metrics_s: ended.metrics_s,
        start_step: first_attempt,
        steps_done: ended.attempts,
        t_done: ended.t_done,
        interrupted,
        initial: ended.initial,
        last: ended.last,
        files: written,
    })
}

/// What an adaptive run's end reports: the time reached, the step attempts, the most field
/// evaluations of a system, and the observables (first and last rows, their seconds).
struct Ended {
    t_done: f64,
    attempts: usize,
    evaluations: u64,
    initial: Vec<Metrics>,
    last: Vec<Metrics>,
    metrics_s: f64,
}

/// An adaptive run in progress: the backend and its stepper, the outputs handed out
/// ([`Cursor`]) and the files they go to.
struct Adaptive<'a> {
    engine: Engine,
    cursor: Cursor,
    files: Files,
    times: &'a Times,
    model: &'a Model,
    shape: Shape,
    frame: Vec<usize>,
    out: &'a Output,
    record: &'a RunRecord<'a>,
    clock: Instant,
}

impl Adaptive<'_> {
    /// Steps to the end, or to a stop asked for (returned), with checkpoints on the way at
    /// the cadence of the driver's [`Checkpoints`].
    fn advance(&mut self, progress: &mut dyn Progress) -> Result<Option<Interrupt>> {
        let mut checkpoints = Checkpoints::new(self.record.config.checkpoint_every);
        let (model, shape, times) = (self.model, self.shape, self.times);
        loop {
            let mut stop = None;
            let files = &mut self.files;
            let finished = self.engine.advance_until(
                self.record.config.t_end,
                &times.all,
                &mut self.cursor,
                &mut |j, x| files.output(model, shape, times, j, x),
                &mut |attempts, emitted| {
                    progress.step(emitted as u64);
                    stop = progress.interrupted();
                    stop.is_some() || checkpoints.due(attempts)
                },
            )?;
            if finished {
                return Ok(None);
            }
            if stop.is_some() {
                return Ok(stop);
            }
            self.checkpoint()?;
            checkpoints.written();
        }
    }

    /// A checkpoint: the files up to here, the state, the partial outputs, then the record.
    fn checkpoint(&mut self) -> Result<()> {
        let (metrics_bytes, metrics_sha256, frames, traj_bytes, traj_sha256) =
            self.files.covered()?;
        let step = self.cursor.attempts as usize;
        let state = format!(".checkpoint-{step}.npy");
        let state_path = self.out.path(&state);
        write_state(&state_path, &self.frame, &mut self.engine)?;
        let partial = format!(".checkpoint-{step}-partial.npy");
        let resume_state = write_partial(self.out, &partial, &self.cursor, &self.engine)?;
        let checkpoint = Checkpoint {
            step,
            state,
            state_bytes: std::fs::metadata(&state_path)
                .map_err(|e| file_error(&state_path, format!("cannot read: {e}")))?
                .len(),
            state_sha256: crate::output::sha256_file(&state_path)?,
            metrics_bytes,
            metrics_sha256,
            frames,
            traj_bytes,
            traj_sha256,
            times: self.times.save[..frames].to_vec(),
        };
        let t = t_reached(&self.engine);
        let mut text = self.record.text(
            format!("interrupted at t = {t} ({step} step attempts)"),
            step,
            t,
            self.clock.elapsed().as_secs_f64(),
        )?;
        text.push('\n');
        text.push_str(&checkpoint_table(&checkpoint)?);
        text.push('\n');
        text.push_str(&adaptive_table(&self.engine, Some(&resume_state))?);
        let mut names = vec![checkpoint.state.as_str()];
        if resume_state.partial_file.is_some() {
            names.push(partial.as_str());
        }
        commit_checkpoint(self.out, &names, text)
    }

    /// The output files of a run that ended (stopped, with `interrupted`): final.npy,
    /// traj.npy and traj_t.npy, metrics.csv, partial.npy of a stopped run, and run.toml.
    fn finish(mut self, interrupted: Option<Interrupt>, elapsed_s: f64) -> Result<Ended> {
        let out = self.out;
        write_state(&out.path("final.npy"), &self.frame, &mut self.engine)?;
        let Files {
            metrics,
            traj,
            initial,
            last,
            metrics_s,
            ..
        } = self.files;
        let frames = traj.as_ref().map_or(0, |t| t.frames());
        if let Some(t) = traj {
            t.finish()?;
            npy::write(
                &out.path("traj_t.npy"),
                &[frames],
                &self.times.save[..frames],
            )?;
        }
        metrics.finish()?;
        let attempts = self.cursor.attempts as usize;
        let (status, t_done, state) = match interrupted {
            Some(_) => {
                let t = t_reached(&self.engine);
                let state = write_partial(out, "partial.npy", &self.cursor, &self.engine)?;
                (
                    format!("interrupted at t = {t} ({attempts} step attempts)"),
                    t,
                    Some(state),
                )
            }
            None => ("finished".to_string(), self.record.config.t_end, None),
        };
        let mut text = self.record.text(status, attempts, t_done, elapsed_s)?;
        text.push('\n');
        text.push_str(&outputs_table(
            out,
            attempts,
            &[
                "final.npy",
                "metrics.csv",
                "partial.npy",
                "traj.npy",
                "traj_t.npy",
            ],
        )?);
        text.push('\n');
        text.push_str(&adaptive_table(&self.engine, state.as_ref())?);
        let path = out.path("run.toml");
        std::fs::write(&path, text).map_err(|e| file_error(&path, format!("cannot write: {e}")))?;
        let evaluations: u64 = self
            .engine
            .systems()
            .iter()
            .map(|s| s.stats.evaluations)
            .max()
            .unwrap_or(0);
        Ok(Ended {
            t_done,
            attempts,
            evaluations,
            initial,
            last,
            metrics_s,
        })
    }
}
