//! `run` with an adaptive integrator (bosh3, dopri5, tsit5; docs/adaptive.md): the engine of
//! `integrate::adaptive`, snapshots and metrics rows at the asked times through the pair's
//! dense output, and the step statistics of every system in run.toml's [adaptive] table.
//! The same files as a fixed-step run (final.npy, metrics.csv, run.toml, traj.npy and
//! traj_t.npy); metrics.csv's `step` column counts output times.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use super::report::{Progress, RunSummary, pairs_per_eval};
use crate::config::{Resolved, parse_times};
use crate::error::{Error, Result, file_error};
use crate::integrate::Tokens;
use crate::integrate::adaptive::{AdaptiveStepper, SystemStats};
use crate::model::observables::{Metrics, summarise};
use crate::npy;
use crate::output::{Output, Provenance};

/// Runs a resolved configuration whose integrator is adaptive, from state `x0`.
pub(super) fn execute(
    resolved: &Resolved,
    out: Output,
    command: &str,
    progress: &mut dyn Progress,
    x0: Vec<f64>,
) -> Result<RunSummary> {
    let Resolved { shape, model, .. } = resolved;
    let shape = *shape;
    let mut config = resolved.config.clone();
    let opts = config.adaptive_options().expect("an adaptive integrator");
    let t_end = config.t_end;
    let save: Vec<f64> = match &config.save_times {
        Some(s) => parse_times("save-times", s, t_end)?,
        None => Vec::new(),
    };
    let metrics_at: Vec<f64> = match &config.metrics_times {
        Some(s) => parse_times("metrics-times", s, t_end)?,
        None => {
            let mut m = vec![0.0, t_end];
            m.extend(&save);
            m.sort_by(f64::total_cmp);
            m.dedup();
            m
        }
    };
    let mut outputs: Vec<f64> = save.iter().chain(&metrics_at).copied().collect();
    outputs.push(t_end);
    outputs.sort_by(f64::total_cmp);
    outputs.dedup();

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
    let device = backend.describe();
    let mut stepper = AdaptiveStepper::new(model, shape, config.integrator, opts)?;
    stepper.prepare(backend.as_mut())?;

    let mut frame = vec![shape.n, shape.d];
    if shape.batch > 1 {
        frame.insert(0, shape.batch);
    }
    let mut traj: Vec<f64> = Vec::new();
    let mut csv = String::from("step,t,system,beta,energy,mean_cos,min_cos,log_energy\n");
    let mut rows = 0usize;
    let mut initial: Vec<Metrics> = Vec::new();
    let mut last: Vec<Metrics> = Vec::new();
    let mut metrics_s = 0.0;
    progress.start(outputs.len() as u64);
    let clock = Instant::now();
    let mut done = 0usize;
    let result = stepper.advance(backend.as_mut(), t_end, &outputs, &mut |j, x| {
        let t = outputs[j];
        if save.binary_search_by(|s| s.total_cmp(&t)).is_ok() {
            traj.extend_from_slice(x);
        }
        if metrics_at.binary_search_by(|s| s.total_cmp(&t)).is_ok() {
            let t1 = Instant::now();
            // The dense output is a host state: its observables from the f64 twin.
            let stats = crate::reference::pair_stats(&model.betas, shape, x);
            let metrics: Vec<Metrics> = stats
                .chunks(shape.n)
                .zip(&model.betas)
                .map(|(r, &beta)| summarise(r, beta))
                .collect();
            for (b, m) in metrics.iter().enumerate() {
                let _ = writeln!(
                    csv,
                    "{rows},{t},{b},{},{:.12e},{:.12e},{:.12e},{:.15e}",
                    model.betas[b], m.energy, m.mean_cos, m.min_cos, m.log_energy
                );
            }
            rows += 1;
            if initial.is_empty() {
                initial = metrics.clone();
            }
            last = metrics;
            metrics_s += t1.elapsed().as_secs_f64();
        }
        done += 1;
        progress.step(done as u64);
        if let Some(signal) = progress.interrupted() {
            return Err(Error::Interrupted(format!(
                "stopped ({signal:?}) at t = {t}: an adaptive run keeps no partial results yet; \
                 nothing was written"
            )));
        }
        Ok(())
    });
    progress.finish();
    result?;
    let elapsed_s = clock.elapsed().as_secs_f64();

    let final_path = out.path("final.npy");
    match backend.read_state()? {
        Tokens::F32(v) => npy::write(&final_path, &frame, &v)?,
        Tokens::F64(v) => npy::write(&final_path, &frame, &v)?,
    }
    if !save.is_empty() {
        let mut shape_t = vec![save.len()];
        shape_t.extend(&frame);
        npy::write(&out.path("traj.npy"), &shape_t, &traj)?;
        npy::write(&out.path("traj_t.npy"), &[save.len()], &save)?;
    }
    let metrics_path = out.path("metrics.csv");
    std::fs::write(&metrics_path, &csv)
        .map_err(|e| file_error(&metrics_path, format!("cannot write: {e}")))?;

    let systems: Vec<SystemStats> = stepper.systems().iter().map(|s| s.stats.clone()).collect();
    let accepted: u64 = systems.iter().map(|s| s.accepted).max().unwrap_or(0);
    let provenance = Provenance {
        steps_done: Some(accepted as usize),
        t_done: Some(t_end),
        ..Provenance::finished(
            requested.name(),
            device.clone(),
            started,
            elapsed_s,
            command,
        )
    };
    #[derive(Serialize)]
    struct Table<'a> {
        /// One entry per system: accepted and rejected steps, the smallest and largest
        /// accepted step, field evaluations.
        adaptive: Adaptive<'a>,
    }
    #[derive(Serialize)]
    struct Adaptive<'a> {
        pair: &'a str,
        systems: &'a [SystemStats],
    }
    let mut text = crate::output::record_toml(&config, &provenance)?;
    text.push('\n');
    text.push_str(
        &toml::to_string(&Table {
            adaptive: Adaptive {
                pair: stepper.pair().name,
                systems: &systems,
            },
        })
        .map_err(|e| Error::Input(format!("cannot serialise the step statistics: {e}")))?,
    );
    let path = out.path("run.toml");
    std::fs::write(&path, text).map_err(|e| file_error(&path, format!("cannot write: {e}")))?;
    let dir = out.dir().to_path_buf();
    let files = out.commit()?.iter().map(|f| dir.join(f)).collect();
    let evaluations: u64 = systems.iter().map(|s| s.evaluations).max().unwrap_or(0);
    let pairs = pairs_per_eval(model, shape) * evaluations as f64;
    Ok(RunSummary {
        backend: device,
        kind,
        note,
        elapsed_s,
        pairs_per_second: pairs / elapsed_s.max(1e-12),
        dynamics_s: elapsed_s - metrics_s,
        metrics_s,
        start_step: 0,
        steps_done: accepted as usize,
        interrupted: None,
        initial,
        last,
        files,
    })
}
