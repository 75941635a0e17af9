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
use crate::output::{Output, Provenance};

pub use super::checkpoint::{CHECKPOINT_INTERVAL_S, Checkpoint, Digest, Outputs, Resume};
use super::checkpoint::{checkpoint_files, checkpoint_table, commit_checkpoint, outputs_table};
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
    let changed = |path: &Path, what: String| {
        file_error(
            path,
            format!(
                "{what}: it changed since the run wrote it, and a resume would continue from \
                 other data; restore it, or start a new run"
            ),
        )
    };
    let size = |path: &Path| -> Result<u64> {
        std::fs::symlink_metadata(path)
            .map_err(|e| file_error(path, format!("cannot resume from it: {e}")))
            .map(|m| m.len())
    };
    let edited = |step: usize| {
        file_error(
            record,
            format!(
                "records steps_done = {steps_done}, but the files it covers hold step {step}: \
                 the record was edited; cannot resume from it (restore it, or start a new run)"
            ),
        )
    };
    match checkpoint {
        Some(c) => {
            if c.step != steps_done {
                return Err(edited(c.step));
            }
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
        }
        None => {
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
                return Err(edited(outputs.step));
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
    let Resolved { shape, model, .. } = resolved;
    let shape = *shape;
    let mut config = resolved.config.clone();
    let (x0, resume) = match start {
        Start::Init => (
            resolved.init.generate(shape, model.geometry, config.seed)?,
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
    };
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
    let chosen = crate::backend::build_dynamics(config.backend, model, shape, &x0)?;
    drop(x0);
    let crate::backend::Chosen {
        mut backend,
        kind,
        note,
    } = chosen;
    let requested = config.backend;
    config.backend = kind;
    let started = crate::output::unix_now();
    let h = config.t_end / config.steps as f64;
    let record_text =
        |status: String, steps_done: usize, elapsed_s: f64, device: String| -> Result<String> {
            let provenance = Provenance {
                status,
                steps_done: Some(steps_done),
                t_done: Some(steps_done as f64 * h),
                resumed_from_step: (first_step > 0).then_some(first_step),
                ..Provenance::finished(requested.name(), device, started, elapsed_s, command)
            };
            crate::output::record_toml(&config, &provenance)
        };
    let device = backend.describe();

    let cfg = &config;
    let stepper = integrate::Stepper::new(model, cfg.integrator)?;
    stepper.prepare(backend.as_mut())?;

    let metrics_path = out.path("metrics.csv");
    let mut metrics_file = match &resume {
        // The earlier rows, up to the step resumed from.
        Some(r) => {
            let text = r.earlier_metrics()?;
            // The rows the run never stopped would have: the first, and every
            // metrics_every-th up to the step resumed from (not the row of the step a stop
            // or the end of a shorter run added).
            let every = config.metrics_every;
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
            f
        }
        None => CsvWriter::create(
            &metrics_path,
            "step,t,system,beta,energy,mean_cos,min_cos,log_energy",
        )?,
    };

    let mut frame = vec![shape.n, shape.d];
    if shape.batch > 1 {
        frame.insert(0, shape.batch);
    }
    let traj_path = out.path("traj.npy");
    let mut times = Vec::new();
    let mut traj = if cfg.save_every > 0 {
        match &resume {
            Some(r) if r.dir.join("traj.npy").exists() => {
                // The earlier snapshots (those up to the step resumed from).
                std::fs::copy(r.dir.join("traj.npy"), &traj_path)
                    .map_err(|e| file_error(&traj_path, format!("cannot copy: {e}")))?;
                let t = match &r.checkpoint {
                    Some(c) => c.times.clone(),
                    None => npy::read_as::<f64>(&r.dir.join("traj_t.npy"))?.1,
                };
                // The snapshots the run never stopped would have: every save_every-th step up
                // to the one resumed from (not the last step of a shorter run).
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
                let (traj, _) =
                    Trajectory::append(&traj_path, &frame, Some(keep), backend.as_mut())?;
                times = t[..keep].to_vec();
                Some(traj)
            }
            _ => Some(Trajectory::create(&traj_path, &frame, backend.as_mut())?),
        }
    } else {
        None
    };

    let record_metrics = |metrics_file: &mut CsvWriter,
                          backend: &mut dyn Backend,
                          step: usize|
     -> Result<Vec<Metrics>> {
        let rows = backend.pair_stats()?;
        let metrics: Vec<Metrics> = rows
            .chunks(shape.n)
            .zip(&model.betas)
            .map(|(r, &beta)| summarise(r, beta))
            .collect();
        for (b, m) in metrics.iter().enumerate() {
            metrics_file.line(format_args!(
                "{step},{},{b},{},{:.12e},{:.12e},{:.12e},{:.15e}",
                step as f64 * h,
                model.betas[b],
                m.energy,
                m.mean_cos,
                m.min_cos,
                m.log_energy
            ))?;
        }
        metrics_file.flush()?;
        Ok(metrics)
    };

    let t1 = Instant::now();
    // A resumed run's first row is that of its state (written already when it stopped).
    let initial = if resume.is_some() {
        let rows = backend.pair_stats()?;
        rows.chunks(shape.n)
            .zip(&model.betas)
            .map(|(r, &beta)| summarise(r, beta))
            .collect()
    } else {
        record_metrics(&mut metrics_file, backend.as_mut(), 0)?
    };
    let mut metrics_s = t1.elapsed().as_secs_f64();
    let mut last = initial.clone();
    if resume.is_none()
        && let Some(t) = traj.as_mut()
    {
        t.push(backend.as_mut())?;
        times.push(0.0);
    }
    progress.start(cfg.steps as u64);
    progress.step(first_step as u64);
    let clock = Instant::now();
    let mut stepping_s = 0.0;
    let mut checked = first_step;
    let mut last_checkpoint = Instant::now();
    let mut steps_done = cfg.steps;
    let mut interrupted = None;
    for step in first_step + 1..=cfg.steps {
        let t0 = Instant::now();
        stepper.step(backend.as_mut(), h, (step - 1) as u32)?;
        // A stop asked for: this step is the last, and gets a metrics row.
        let stop = progress.interrupted();
        let metrics_now = (cfg.metrics_every > 0 && step.is_multiple_of(cfg.metrics_every))
            || step == cfg.steps
            || stop.is_some();
        let snapshot_now =
            cfg.save_every > 0 && (step.is_multiple_of(cfg.save_every) || step == cfg.steps);
        let checkpoint_now = step < cfg.steps
            && stop.is_none()
            && match cfg.checkpoint_every {
                Some(0) => false,
                Some(k) => step.is_multiple_of(k),
                None => last_checkpoint.elapsed().as_secs_f64() >= CHECKPOINT_INTERVAL_S,
            };
        if metrics_now || snapshot_now || checkpoint_now {
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
            last = record_metrics(&mut metrics_file, backend.as_mut(), step)?;
            metrics_s += t1.elapsed().as_secs_f64();
        }
        if snapshot_now && let Some(t) = traj.as_mut() {
            t.push(backend.as_mut())?;
            times.push(step as f64 * h);
        }
        if checkpoint_now {
            // Everything up to this step on disk, then the record that names it, renamed into
            // place last: a kill at any moment leaves the previous checkpoint or this one.
            let metrics_bytes = metrics_file.sync()?;
            let metrics_sha256 = crate::output::sha256_range(&metrics_path, 0, metrics_bytes)?;
            let (frames, (traj_bytes, traj_sha256)) = match traj.as_mut() {
                Some(t) => (t.sync()?, t.data_digest()),
                None => (0, (0, crate::output::sha256_hex(Default::default()))),
            };
            let state = format!(".checkpoint-{step}.npy");
            let state_path = out.path(&state);
            match backend.read_state()? {
                Tokens::F32(v) => npy::write(&state_path, &frame, &v)?,
                Tokens::F64(v) => npy::write(&state_path, &frame, &v)?,
            }
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
                times: times.clone(),
            };
            let mut text = record_text(
                format!("interrupted at step {step} of {}", cfg.steps),
                step,
                clock.elapsed().as_secs_f64(),
                device.clone(),
            )?;
            text.push('\n');
            text.push_str(&checkpoint_table(&checkpoint)?);
            commit_checkpoint(&out, &[checkpoint.state.as_str()], text)?;
            last_checkpoint = Instant::now();
        }
        progress.step(step as u64);
        if let Some(signal) = stop {
            steps_done = step;
            interrupted = Some(signal);
            break;
        }
    }
    progress.finish();
    let elapsed_s = clock.elapsed().as_secs_f64();

    let final_path = out.path("final.npy");
    match backend.read_state()? {
        Tokens::F32(v) => npy::write(&final_path, &frame, &v)?,
        Tokens::F64(v) => npy::write(&final_path, &frame, &v)?,
    }
    if let Some(t) = traj {
        t.finish()?;
        npy::write(&out.path("traj_t.npy"), &[times.len()], &times)?;
    }
    metrics_file.finish()?;
    let status = match interrupted {
        Some(_) => format!("interrupted at step {steps_done} of {}", cfg.steps),
        None => "finished".to_string(),
    };
    let mut text = record_text(status, steps_done, elapsed_s, device.clone())?;
    text.push('\n');
    text.push_str(&outputs_table(
        &out,
        steps_done,
        &["final.npy", "metrics.csv", "traj.npy", "traj_t.npy"],
    )?);
    let path = out.path("run.toml");
    std::fs::write(&path, text).map_err(|e| file_error(&path, format!("cannot write: {e}")))?;
    // The checkpoint's files are not results.
    for name in checkpoint_files(out.staging()) {
        let _ = std::fs::remove_file(out.staging().join(name));
    }
    let dir = out.dir().to_path_buf();
    let files = out.commit()?.iter().map(|f| dir.join(f)).collect();
    let pairs = pairs_per_eval(model, shape)
        * (stepper.tableau().stages() * (steps_done - first_step)) as f64;
    Ok(RunSummary {
        backend: device,
        kind,
        note,
        elapsed_s,
        pairs_per_second: pairs / stepping_s.max(1e-12),
        dynamics_s: stepping_s,
        metrics_s,
        start_step: first_step,
        steps_done,
        t_done: steps_done as f64 * h,
        interrupted,
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
    // The field's growth bound (model/stability.rs), shared with cfm.
    let growth = crate::model::stability::Growth::of(model, cfg.n);
    let (exponent, lipschitz) = (growth.exponent, growth.lipschitz);
    let alibi_exponent = growth.alibi_exponent;
    // The option that scales the weights, named in a remedy when it is what grew them.
    let scale = if model.random.is_some() && cfg.weight_scale > 1.0 {
        format!(", a smaller --weight-scale (now {})", t(cfg.weight_scale))
    } else {
        String::new()
    };
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
    let hint = if alibi_exponent > 5.0 && alibi_exponent >= exponent {
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
    } else if model.attention == Attention::Usa && exponent > 700.0 {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{e_str}, beyond even f64 (e^709); \
             use a smaller beta{scale} or SA"
        )
    } else if model.attention == Attention::Usa
        && f32_backend
        && exponent > 85.0
        && steps_hint.is_empty()
    {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{e_str}, beyond the f32 range (e^88), \
             and in f64 only steps below about {stable_h:.3e} would be stable; use a smaller \
             beta{scale} or SA"
        )
    } else if model.attention == Attention::Usa && f32_backend && exponent > 85.0 {
        format!(
            "USA weights exp(beta <Qx, Kx>) reach about e^{e_str}, beyond the f32 range \
             (e^88); use --backend reference (f64){steps_hint}, a smaller beta{scale}, or SA"
        )
    } else if cfg.noise > 0.0 {
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
    } else {
        if h > stable_h {
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
    };
    Error::NonFinite(format!("{when}: {hint}"))
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
