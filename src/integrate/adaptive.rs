//! The one adaptive engine (docs/model.md §2, "Adaptive steps"): an embedded Runge-Kutta pair
//! ([`Pair`]: bosh3, dopri5, tsit5, dop853) with error control, driving any backend through
//! [`Backend`]'s per-system operations. Each system of an ensemble has its own step size,
//! controller and acceptance (or one shared step, [`Options::shared_step`]).
//!
//! - Error norm: per system, the RMS over its n d components (all the components the backend
//!   steps: [`Backend::norm_components`]) of
//!   e_i / (atol + rtol max(|x_i|, |x_new_i|)), e = h sum_s (b_s - b_hat_s) k_s: the
//!   convention of diffrax and torchdiffeq. A step is accepted when it is <= 1.
//! - Controller: Söderlind's PI3040 (h <- h * safety * err^(-0.7/k) * err_prev^(0.4/k),
//!   k = the embedded order + 1), factors within [0.2, 10], no growth right after a rejection;
//!   a rejection shrinks by safety * err^(-1/k), at least to 0.2 h.
//! - First step: Hairer's (Solving ODEs I, II.4), per system.
//! - Output: pairs with dense output interpolate at the asked times (renormalised on the
//!   sphere) and never shorten a step for them; others (dop853) shorten steps to land on them.
//! - A step below the minimum stops the run with an error naming the time, system and error.
//!
//! The infinite-context twins (`meanfield`) and integrator-order's truth run DOP853 on it
//! through [`Dop853`], on the host in f64 ([`OdeField`]).

use serde::{Deserialize, Serialize};

use super::tableau::{ErrorWeights, Pair};
use super::{Backend, Slot, Tokens};
use crate::error::{Error, Result, input};
use crate::model::linalg::norm;
use crate::model::{Model, Shape};

/// Tolerances and limits of an adaptive run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub rtol: f64,
    pub atol: f64,
    /// The largest step (infinite: none).
    pub h_max: f64,
    /// The smallest step before the run stops with an error (at least 1e-14 max(1, |t|)).
    pub h_min: f64,
    /// One step size and one acceptance for the whole ensemble (the largest error decides).
    pub shared_step: bool,
    /// The most step attempts (accepted and rejected) of one system in one `advance`, a
    /// guard against a run that crawls (torchdiffeq's and diffrax's max_steps).
    pub max_steps: u64,
}

/// The smallest rtol an f32 backend (cpu, gpu) is held to: below it the error estimate is
/// f32 rounding and steps shrink without end.
pub const F32_MIN_RTOL: f64 = 1e-6;

impl Default for Options {
    fn default() -> Self {
        Options {
            rtol: 1e-6,
            atol: 1e-9,
            h_max: f64::INFINITY,
            h_min: 0.0,
            shared_step: false,
            max_steps: 10_000_000,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        if !(self.rtol > 0.0 && self.rtol.is_finite() && self.atol > 0.0 && self.atol.is_finite()) {
            return Err(input(format!(
                "--rtol and --atol must be positive and finite, got rtol = {}, atol = {}",
                self.rtol, self.atol
            )));
        }
        if self.h_max.is_nan() || self.h_max <= 0.0 {
            return Err(input(format!(
                "--h-max must be positive, got {}",
                self.h_max
            )));
        }
        if !(self.h_min >= 0.0 && self.h_min.is_finite() && self.h_min < self.h_max) {
            return Err(input(format!(
                "the minimum step must be >= 0, finite and below --h-max, got {}",
                self.h_min
            )));
        }
        Ok(())
    }
}

/// What a system's steps were: the numbers run.toml records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemStats {
    pub accepted: u64,
    pub rejected: u64,
    /// The smallest and largest accepted step (a last step shortened to land on the end time
    /// counts only when it is the only one).
    pub h_smallest: f64,
    pub h_largest: f64,
    /// Field evaluations while the system was being stepped.
    pub evaluations: u64,
    /// ros23 only: the GMRES iterations among the evaluations (each one field evaluation
    /// of a Jacobian-vector product); absent for the explicit pairs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub krylov: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One system's time, proposed step and controller memory: the state of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemState {
    pub t: f64,
    /// The next step to try (0 before the first step is chosen).
    pub h: f64,
    /// The last accepted error norm (at least 1e-4), for the PI controller.
    pub err_prev: f64,
    pub rejected_last: bool,
    pub stats: SystemStats,
}

impl SystemState {
    pub(crate) fn new(t: f64) -> Self {
        SystemState {
            t,
            h: 0.0,
            err_prev: 1.0,
            rejected_last: false,
            stats: SystemStats::default(),
        }
    }
}

/// The step-size controller: h_new = h * safety * err^(-alpha) * err_prev^beta within
/// [min_factor, max_factor]; after a rejection, h * max(min_factor, safety * err^(-reject)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Controller {
    pub safety: f64,
    pub min_factor: f64,
    pub max_factor: f64,
    pub alpha: f64,
    pub beta: f64,
    pub reject: f64,
    /// No growth on the step right after a rejection (Hairer's rule).
    pub hold_after_reject: bool,
}

impl Controller {
    /// Söderlind's PI3040 for a pair whose error estimate is of order k = error_order + 1.
    pub fn pi(pair: &Pair) -> Self {
        let k = f64::from(pair.error_order + 1);
        Controller {
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 10.0,
            alpha: 0.7 / k,
            beta: 0.4 / k,
            reject: 1.0 / k,
            hold_after_reject: true,
        }
    }

    /// The integral controller of the DOP853 twins (exponent 1/8), kept so that their
    /// results did not move when they came onto this engine.
    pub fn dop853_twins() -> Self {
        Controller {
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 10.0,
            alpha: 1.0 / 8.0,
            beta: 0.0,
            reject: 1.0 / 8.0,
            hold_after_reject: false,
        }
    }
}

/// Called with (output index, the whole ensemble's state at that time, in f64).
pub type Sink<'a> = dyn FnMut(usize, &[f64]) -> Result<()> + 'a;

/// Where the outputs of an [`AdaptiveStepper::advance_until`] stand at a pause: what a
/// checkpoint keeps beside the systems' [`SystemState`] and the backend's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cursor {
    /// The outputs handed to the sink so far.
    pub next: usize,
    /// Step attempts of the ensemble so far.
    pub attempts: u64,
    /// Outputs some systems have passed and others not yet (with a step per system).
    pub partial: Vec<Partial>,
}

/// An output gathered in part: the ensemble's state with the parts of the `filled` systems
/// that have passed its time (the others' parts are zero).
#[derive(Clone, Debug, PartialEq)]
pub struct Partial {
    pub index: usize,
    pub filled: usize,
    pub state: Vec<f64>,
}

/// Where the outputs of one [`AdaptiveStepper::advance_until`] call stand while it steps:
/// the asked times, the outputs gathered so far and the counters a pause keeps in the
/// [`Cursor`].
struct Progress<'a> {
    outputs: &'a [f64],
    t_end: f64,
    /// Whether the pair interpolates the outputs (else steps are cut to land on them).
    dense: bool,
    /// Outputs gathered system by system (state, systems filled); emitted in order once
    /// complete.
    pending: Vec<Option<(Vec<f64>, usize)>>,
    /// The next output to hand the sink.
    next_emit: usize,
    /// The first output not yet complete.
    first_open: usize,
    /// Step attempts of the ensemble so far.
    attempts: u64,
}

impl Progress<'_> {
    /// A system's target: the end, or (without dense output) its next output time.
    fn target(&self, s: &SystemState) -> f64 {
        if self.dense {
            self.t_end
        } else {
            self.outputs
                .iter()
                .copied()
                .find(|&o| o > s.t)
                .unwrap_or(self.t_end)
        }
    }

    /// Moves past the outputs every system has filled and hands the sink those complete,
    /// in order.
    fn emit_complete(&mut self, batch: usize, sink: &mut Sink<'_>) -> Result<()> {
        while self.first_open < self.outputs.len()
            && self.pending[self.first_open]
                .as_ref()
                .is_some_and(|(_, filled)| *filled >= batch)
        {
            self.first_open += 1;
        }
        emit(&mut self.pending, &mut self.next_emit, batch, sink)
    }

    /// At a pause: keeps in `cursor` the outputs handed out, the attempts and the outputs
    /// gathered in part.
    fn pause_into(self, cursor: &mut Cursor) {
        cursor.next = self.next_emit;
        cursor.attempts = self.attempts;
        cursor.partial = self
            .pending
            .into_iter()
            .enumerate()
            .skip(self.next_emit)
            .filter_map(|(index, p)| {
                p.map(|(state, filled)| Partial {
                    index,
                    filled,
                    state,
                })
            })
            .collect();
    }
}

/// Steps a backend adaptively. Make it with [`AdaptiveStepper::new`] (a model's run) or
/// [`AdaptiveStepper::with_pair`], call [`AdaptiveStepper::prepare`] once, then
/// [`AdaptiveStepper::advance`] to each end time.
pub struct AdaptiveStepper {
    pair: Pair,
    ctrl: Controller,
    opts: Options,
    renormalise: bool,
    systems: Vec<SystemState>,
    /// Components per system (n d).
    components: usize,
    /// Whether k[0] holds f(state).
    k0_current: bool,
    /// Whether the next evaluation of k[0] only recomputes what the run had before a
    /// [`AdaptiveStepper::restore`] (an FSAL copy): not counted, so that a resumed run's
    /// statistics are those of the run never stopped.
    k0_restored: bool,
    // Work arrays, sized once.
    stage_ids: Vec<usize>,
    coeffs: Vec<f64>,
    sums: Vec<f64>,
    sums2: Vec<f64>,
    h_step: Vec<f64>,
    clipped: Vec<bool>,
    err: Vec<f64>,
    accepted: Vec<bool>,
    /// Which systems step in the current attempt (not yet at their target).
    active: Vec<bool>,
    weights: Vec<f64>,
}

impl AdaptiveStepper {
    /// The stepper of a model's run with an adaptive integrator; refuses what it cannot
    /// integrate (noise, the discrete layer maps, weights that change from step to step).
    pub fn new(
        model: &Model,
        shape: Shape,
        integrator: super::Integrator,
        opts: Options,
    ) -> Result<Self> {
        let name = integrator.name();
        let Some(pair) = integrator.pair() else {
            return Err(input(format!(
                "--integrator {name} has fixed steps: adaptive stepping needs bosh3, dopri5 or tsit5"
            )));
        };
        if model.noise.is_some() {
            return Err(input(format!(
                "--integrator {name} controls the error of an ODE, and --noise makes an SDE \
                 (integrated by Euler-Maruyama): drop --noise, or use --integrator euler with \
                 --steps"
            )));
        }
        if !model.layer.is_ode() {
            return Err(input(format!(
                "--layer {} is one residual update per layer, {}: it has no time step to adapt; \
                 use --integrator euler",
                model.layer.name(),
                model.layer.rule()
            )));
        }
        if model.weights_change() {
            return Err(input(format!(
                "--integrator {name} needs weights that stay fixed in time; redrawn or per-layer \
                 weights change at every step of a fixed grid: use a fixed-step integrator \
                 (rk4) with --steps"
            )));
        }
        let mut stepper = Self::with_pair(pair, model.renormalises(), shape, opts)?;
        stepper.ctrl = Controller::pi(&stepper.pair);
        Ok(stepper)
    }

    /// The engine for any pair on `shape.batch` systems of n d components.
    pub fn with_pair(pair: Pair, renormalise: bool, shape: Shape, opts: Options) -> Result<Self> {
        opts.validate()?;
        let opts = Options {
            rtol: opts.rtol.max(1e-15),
            ..opts
        };
        let batch = shape.batch;
        let stages = pair.stages();
        Ok(AdaptiveStepper {
            ctrl: Controller::pi(&pair),
            pair,
            opts,
            renormalise,
            systems: vec![SystemState::new(0.0); batch],
            components: shape.n * shape.d,
            k0_current: false,
            k0_restored: false,
            stage_ids: Vec::with_capacity(stages),
            coeffs: Vec::with_capacity(batch * stages),
            sums: vec![0.0; batch],
            sums2: vec![0.0; batch],
            h_step: vec![0.0; batch],
            clipped: vec![false; batch],
            err: vec![0.0; batch],
            accepted: vec![false; batch],
            active: Vec::with_capacity(batch),
            weights: vec![0.0; stages],
        })
    }

    /// The same stepper with another controller.
    pub fn with_controller(self, ctrl: Controller) -> Self {
        AdaptiveStepper { ctrl, ..self }
    }

    pub fn pair(&self) -> &Pair {
        &self.pair
    }

    /// Each system's time, step and statistics (a checkpoint's controller state).
    pub fn systems(&self) -> &[SystemState] {
        &self.systems
    }

    /// Continues from a checkpoint's controller state (the backend holding its state).
    pub fn restore(&mut self, systems: Vec<SystemState>) -> Result<()> {
        check_restored(self.systems.len(), &systems)?;
        self.systems = systems;
        self.k0_current = false;
        self.k0_restored = true;
        Ok(())
    }

    /// Makes room in the backend for the pair's stages; call once before stepping.
    pub fn prepare(&mut self, backend: &mut dyn Backend) -> Result<()> {
        if !backend.supports_adaptive() {
            return Err(input(format!(
                "--integrator {} is not available on {} yet: use --backend cpu, gpu or reference",
                self.pair.name,
                backend.describe()
            )));
        }
        let shape = backend.shape();
        if shape.batch != self.systems.len() || shape.n * shape.d != self.components {
            return Err(input(
                "the backend's shape is not the one the stepper was made for",
            ));
        }
        if self.opts.rtol < F32_MIN_RTOL && matches!(backend.read_state()?, Tokens::F32(_)) {
            return Err(input(format!(
                "--rtol {:e} is below what the f32 arithmetic of {} resolves: use --rtol {:e} \
                 or more, or --backend reference (f64)",
                self.opts.rtol,
                backend.describe(),
                F32_MIN_RTOL
            )));
        }
        self.k0_current = false;
        backend.prepare_adaptive(self.pair.stages())
    }

    /// The common time of all systems (they meet at the end of every `advance`).
    pub fn time(&self) -> f64 {
        self.systems[0].t
    }

    /// Integrates every system to `t_end`, handing `sink` the ensemble's state at each time
    /// of `outputs` (non-decreasing, within [now, t_end]) in order.
    pub fn advance(
        &mut self,
        backend: &mut dyn Backend,
        t_end: f64,
        outputs: &[f64],
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let mut cursor = Cursor::default();
        self.advance_until(backend, t_end, outputs, &mut cursor, sink, &mut |_, _| {
            false
        })?;
        Ok(())
    }

    /// [`AdaptiveStepper::advance`] that can pause at a step boundary: after every step
    /// attempt of the ensemble, `pause(attempts, outputs handed out)` is asked, and when it
    /// says yes this returns `Ok(false)` with `cursor` holding where the outputs stand (a
    /// checkpoint saves it with [`AdaptiveStepper::systems`] and the backend's state).
    /// Called again with the same `t_end`, `outputs` and `cursor` (after a pause, or after
    /// [`AdaptiveStepper::restore`] on a backend holding the saved state) it continues to the
    /// bits of a run never paused; `Ok(true)` once every system is at `t_end`.
    pub fn advance_until(
        &mut self,
        backend: &mut dyn Backend,
        t_end: f64,
        outputs: &[f64],
        cursor: &mut Cursor,
        sink: &mut Sink<'_>,
        pause: &mut dyn FnMut(u64, usize) -> bool,
    ) -> Result<bool> {
        let mut run = self.open(backend, t_end, outputs, cursor, sink)?;
        let batch = self.systems.len();
        // The work array of active systems, held outside `self` while the attempt borrows it.
        let mut active = std::mem::take(&mut self.active);
        loop {
            active.clear();
            active.extend(self.systems.iter().map(|s| s.t < run.target(s)));
            if !active.iter().any(|&a| a) {
                break;
            }
            self.step(backend, &active, &mut run)?;
            run.emit_complete(batch, sink)?;
            let done = self.systems.iter().all(|s| s.t >= run.target(s));
            if !done && pause(run.attempts, run.next_emit) {
                run.pause_into(cursor);
                self.active = active;
                return Ok(false);
            }
        }
        self.active = active;
        self.finish(backend, run, cursor, sink)?;
        Ok(true)
    }

    /// The start of [`AdaptiveStepper::advance_until`]: checks `t_end` and `outputs` against
    /// the systems' times and `cursor` against the run, then takes up where the outputs
    /// stand: a fresh run (an empty cursor) hands the sink the outputs at its start time, a
    /// resumed one takes the outputs gathered in part from `cursor`.
    fn open<'a>(
        &self,
        backend: &mut dyn Backend,
        t_end: f64,
        outputs: &'a [f64],
        cursor: &mut Cursor,
        sink: &mut Sink<'_>,
    ) -> Result<Progress<'a>> {
        let fresh = cursor.attempts == 0 && cursor.next == 0 && cursor.partial.is_empty();
        let t0 = if fresh {
            self.time()
        } else {
            self.systems
                .iter()
                .map(|s| s.t)
                .fold(f64::INFINITY, f64::min)
        };
        if !(t_end.is_finite() && t_end >= t0) {
            return Err(input(format!(
                "the end time must be finite and not before the current time {t0}, got {t_end}"
            )));
        }
        if fresh && self.systems.iter().any(|s| s.t != t0) {
            return Err(input(
                "the systems are not at one time: advance them to one first",
            ));
        }
        let mut prev = if fresh { t0 } else { f64::NEG_INFINITY };
        for &t in outputs {
            if !(t.is_finite() && t >= prev && t <= t_end) {
                return Err(input(format!(
                    "output times must be finite, non-decreasing and within [{t0}, {t_end}] \
                     (got {t} after {prev})"
                )));
            }
            prev = t;
        }
        let batch = self.systems.len();
        let len = batch * self.components;
        check_cursor(cursor, outputs.len(), len)?;
        let mut pending: Vec<Option<(Vec<f64>, usize)>> = vec![None; outputs.len()];
        for p in cursor.partial.drain(..) {
            pending[p.index] = Some((p.state, p.filled));
        }
        let mut run = Progress {
            outputs,
            t_end,
            dense: self.pair.dense.is_some(),
            pending,
            next_emit: cursor.next,
            first_open: cursor.next,
            attempts: cursor.attempts,
        };
        if fresh {
            // The outputs at the start time.
            while run.first_open < outputs.len() && outputs[run.first_open] <= t0 {
                let x = backend.read_state()?.to_f64();
                run.pending[run.first_open] = Some((x, batch));
                run.first_open += 1;
            }
            emit(&mut run.pending, &mut run.next_emit, batch, sink)?;
        }
        Ok(run)
    }

    /// One step attempt of the ensemble's active systems: propose their steps, evaluate the
    /// stages and the error norms, accept or reject each system (all together with
    /// [`Options::shared_step`]), gather the outputs inside the accepted steps (dense
    /// output), move the accepted systems to the end of their steps and set every active
    /// system's next step, then gather the outputs the steps landed on.
    fn step(
        &mut self,
        backend: &mut dyn Backend,
        active: &[bool],
        run: &mut Progress<'_>,
    ) -> Result<()> {
        self.propose(backend, active, run)?;
        run.attempts += 1;
        if run.attempts > self.opts.max_steps {
            let b = active.iter().position(|&a| a).unwrap_or(0);
            let t_end = run.t_end;
            return Err(input(format!(
                "{}: more than {} steps without reaching t = {t_end} (system {b} is at \
                 t = {}, step {:.3e}): loosen --rtol/--atol, or check that the model does \
                 not blow up",
                self.pair.name, self.opts.max_steps, self.systems[b].t, self.systems[b].h
            )));
        }
        self.attempt(backend, active)?;
        self.decide(active);
        // Dense output inside the accepted steps.
        if run.dense {
            self.interpolate_outputs(backend, run.outputs, run.first_open, &mut run.pending)?;
        }
        if self.accepted.iter().any(|&a| a) {
            let last = self.pair.stages() - 1;
            backend.accept_systems(&self.accepted, self.pair.fsal.then_some((last, 0)))?;
            if !self.pair.fsal {
                self.k0_current = false;
            }
        }
        if self.control(active, run)? {
            self.gather_landed(backend, run)?;
        }
        Ok(())
    }

    /// The steps of this attempt in `h_step`: k[0] = f(x) where it is not current, Hairer's
    /// first step for the active systems that have none, each one's proposed step within
    /// [`Options::h_max`], cut to land on its target (`clipped`), one step for all with
    /// [`Options::shared_step`]. A step below the minimum that is not cut is an error.
    fn propose(
        &mut self,
        backend: &mut dyn Backend,
        active: &[bool],
        run: &Progress<'_>,
    ) -> Result<()> {
        let batch = self.systems.len();
        if !self.k0_current {
            backend.field(Slot::State, 0)?;
            if !self.k0_restored {
                self.count(active);
            }
            self.k0_current = true;
            self.k0_restored = false;
        }
        if self
            .systems
            .iter()
            .zip(active)
            .any(|(s, &a)| a && s.h == 0.0)
        {
            self.first_step(backend, active)?;
        }
        for (b, &on) in active.iter().enumerate() {
            let s = &self.systems[b];
            if !on {
                self.h_step[b] = 0.0;
                self.clipped[b] = false;
                continue;
            }
            let remaining = run.target(s) - s.t;
            let h = s.h.min(self.opts.h_max);
            self.clipped[b] = h >= remaining;
            self.h_step[b] = if self.clipped[b] { remaining } else { h };
        }
        if self.opts.shared_step {
            let h = (0..batch)
                .filter(|&b| active[b])
                .map(|b| self.h_step[b])
                .fold(f64::INFINITY, f64::min);
            for b in (0..batch).filter(|&b| active[b]) {
                self.clipped[b] = self.clipped[b] && self.h_step[b] == h;
                self.h_step[b] = h;
            }
        }
        for b in (0..batch).filter(|&b| active[b] && !self.clipped[b]) {
            let (t, h) = (self.systems[b].t, self.h_step[b]);
            if h < self.h_floor(t) {
                return Err(self.too_small(b, t, h, self.systems[b].err_prev));
            }
        }
        Ok(())
    }

    /// Which active systems' steps are accepted (`accepted`: error norm <= 1); with
    /// [`Options::shared_step`] every active system takes the largest error norm (NaN if
    /// any is NaN).
    fn decide(&mut self, active: &[bool]) {
        let batch = self.systems.len();
        let shared_err =
            (0..batch)
                .filter(|&b| active[b])
                .map(|b| self.err[b])
                .fold(
                    0.0,
                    |m: f64, e| if e.is_nan() { f64::NAN } else { m.max(e) },
                );
        for (b, &on) in active.iter().enumerate() {
            if self.opts.shared_step && on {
                self.err[b] = shared_err;
            }
            self.accepted[b] = on && self.err[b] <= 1.0;
        }
    }

    /// The controller on each active system: an accepted one moves to the end of its step
    /// (exactly onto its target when the step was cut to land there) with its next step and
    /// statistics; a rejected one gets a shorter step, an error when it falls below the
    /// minimum. Returns whether any system moved.
    fn control(&mut self, active: &[bool], run: &Progress<'_>) -> Result<bool> {
        let batch = self.systems.len();
        let mut landed = false;
        for b in (0..batch).filter(|&b| active[b]) {
            let (h, err, clipped) = (self.h_step[b], self.err[b], self.clipped[b]);
            let tgt = run.target(&self.systems[b]);
            let ctrl = self.ctrl;
            let s = &mut self.systems[b];
            if self.accepted[b] {
                let mut factor = if err == 0.0 {
                    ctrl.max_factor
                } else {
                    (ctrl.safety * err.powf(-ctrl.alpha) * s.err_prev.powf(ctrl.beta))
                        .clamp(ctrl.min_factor, ctrl.max_factor)
                };
                if ctrl.hold_after_reject && s.rejected_last {
                    factor = factor.min(1.0);
                }
                // A step shortened only to land on a time says little about the step
                // the solution allows: keep at least the one proposed.
                s.h = if clipped {
                    (h * factor).max(s.h)
                } else {
                    h * factor
                };
                // A clipped step lands exactly on its target.
                s.t = if clipped { tgt } else { s.t + h };
                s.err_prev = err.max(1e-4);
                s.rejected_last = false;
                let st = &mut s.stats;
                st.accepted += 1;
                if !clipped || st.h_smallest == 0.0 {
                    st.h_smallest = if st.h_smallest == 0.0 {
                        h
                    } else {
                        st.h_smallest.min(h)
                    };
                }
                st.h_largest = st.h_largest.max(h);
                landed = true;
            } else {
                let factor = if err.is_finite() {
                    (ctrl.safety * err.powf(-ctrl.reject)).max(ctrl.min_factor)
                } else {
                    ctrl.min_factor
                };
                s.h = h * factor;
                s.rejected_last = true;
                s.stats.rejected += 1;
                let (t, next) = (s.t, s.h);
                if next < self.h_floor(t) {
                    return Err(self.too_small(b, t, h, err));
                }
            }
        }
        Ok(landed)
    }

    /// The open outputs exactly at an accepted system's new time (a step cut to land on
    /// them): that system's part of the state, read back once.
    fn gather_landed(&self, backend: &mut dyn Backend, run: &mut Progress<'_>) -> Result<()> {
        let batch = self.systems.len();
        let len = batch * self.components;
        let mut state: Option<Vec<f64>> = None;
        for j in run.first_open..run.outputs.len() {
            for b in 0..batch {
                let s = &self.systems[b];
                if !(self.accepted[b] && s.t == run.outputs[j]) {
                    continue;
                }
                let entry = run.pending[j].get_or_insert_with(|| (vec![0.0; len], 0));
                if entry.1 >= batch {
                    continue;
                }
                let x = match &state {
                    Some(x) => x,
                    None => state.insert(backend.read_state()?.to_f64()),
                };
                let r = b * self.components..(b + 1) * self.components;
                entry.0[r.clone()].copy_from_slice(&x[r]);
                entry.1 += 1;
            }
        }
        Ok(())
    }

    /// The end of [`AdaptiveStepper::advance_until`] once every system is at `t_end`: fills
    /// the outputs at `t_end` not yet complete (systems already there when asked) with the
    /// state, hands out the rest and records in `cursor` where the outputs stand.
    fn finish(
        &self,
        backend: &mut dyn Backend,
        mut run: Progress<'_>,
        cursor: &mut Cursor,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let batch = self.systems.len();
        for entry in run.pending.iter_mut().skip(run.first_open) {
            if entry.as_ref().is_some_and(|(_, f)| *f >= batch) {
                continue;
            }
            *entry = Some((backend.read_state()?.to_f64(), batch));
        }
        emit(&mut run.pending, &mut run.next_emit, batch, sink)?;
        cursor.next = run.next_emit;
        cursor.attempts = run.attempts;
        Ok(())
    }

    /// The smallest step allowed at time t.
    fn h_floor(&self, t: f64) -> f64 {
        self.opts.h_min.max(1e-14 * t.abs().max(1.0))
    }

    fn too_small(&self, b: usize, t: f64, h: f64, err: f64) -> Error {
        Error::NonFinite(format!(
            "{}: the step size fell below {:.3e} at t = {t} in system {b} (error norm \
             {err:.3e} at h = {h:.3e}): the solution is not smooth enough there, has blown up, \
             or the tolerance (rtol = {}, atol = {}) is too tight; loosen --rtol/--atol",
            self.pair.name,
            self.h_floor(t),
            self.opts.rtol,
            self.opts.atol
        ))
    }

    fn count(&mut self, active: &[bool]) {
        for (s, _) in self.systems.iter_mut().zip(active).filter(|(_, a)| **a) {
            s.stats.evaluations += 1;
        }
    }

    /// Fills `coeffs` ([batch][stage_ids]) with h_b * w_s for the given weights.
    fn set_coeffs(&mut self, weights: &[(usize, f64)], h: &[f64]) {
        self.stage_ids.clear();
        self.stage_ids.extend(weights.iter().map(|(s, _)| *s));
        self.coeffs.clear();
        for &hb in h {
            self.coeffs.extend(weights.iter().map(|(_, w)| hb * w));
        }
    }

    /// Per system, the RMS of the scaled vector whose coefficients are set.
    fn rms(&mut self, backend: &mut dyn Backend, with_state: bool, out_second: bool) -> Result<()> {
        let out = if out_second {
            &mut self.sums2
        } else {
            &mut self.sums
        };
        backend.scaled_sums(
            &self.stage_ids,
            &self.coeffs,
            with_state,
            self.opts.atol,
            self.opts.rtol,
            out,
        )
    }

    /// Hairer's starting step for the active systems that have none (k[0] = f(x) given).
    fn first_step(&mut self, backend: &mut dyn Backend, active: &[bool]) -> Result<()> {
        let batch = self.systems.len();
        let n = backend.norm_components() as f64;
        let zeros = vec![0.0; batch];
        // stage <- x: the scale is atol + rtol |x|.
        self.set_coeffs(&[], &zeros);
        backend.combine_systems(&self.stage_ids, &self.coeffs, false)?;
        self.set_coeffs(&[], &zeros);
        self.rms(backend, true, false)?;
        let d0: Vec<f64> = self.sums.iter().map(|s| (s / n).sqrt()).collect();
        let ones = vec![1.0; batch];
        self.set_coeffs(&[(0, 1.0)], &ones);
        self.rms(backend, false, false)?;
        let d1: Vec<f64> = self.sums.iter().map(|s| (s / n).sqrt()).collect();
        let h0: Vec<f64> = (0..batch)
            .map(|b| {
                if d0[b] < 1e-5 || d1[b] < 1e-5 {
                    1e-6
                } else {
                    0.01 * d0[b] / d1[b]
                }
            })
            .collect();
        // k[1] <- f(x + h0 k[0]) (k[1] is free between steps).
        self.set_coeffs(&[(0, 1.0)], &h0);
        backend.combine_systems(&self.stage_ids, &self.coeffs, false)?;
        backend.field(Slot::Stage, 1)?;
        self.count(active);
        self.set_coeffs(&[], &zeros);
        backend.combine_systems(&self.stage_ids, &self.coeffs, false)?;
        let inv: Vec<f64> = h0.iter().map(|h| 1.0 / h).collect();
        self.set_coeffs(&[(1, 1.0), (0, -1.0)], &inv);
        self.rms(backend, false, false)?;
        let order = f64::from(self.pair.tableau.order);
        for b in 0..batch {
            if !active[b] || self.systems[b].h != 0.0 {
                continue;
            }
            let d2 = (self.sums[b] / n).sqrt();
            let m = d1[b].max(d2);
            let h1 = if m <= 1e-15 {
                (h0[b] * 1e-3).max(1e-6)
            } else {
                (0.01 / m).powf(1.0 / order)
            };
            self.systems[b].h = (100.0 * h0[b]).min(h1).min(self.opts.h_max);
        }
        Ok(())
    }

    /// One attempt of steps h_step (k[0] = f(x) given): the stages, the new solution in the
    /// stage buffer (renormalised where the model asks), the error norms in `err`.
    fn attempt(&mut self, backend: &mut dyn Backend, active: &[bool]) -> Result<()> {
        let stages = self.pair.stages();
        let h = std::mem::take(&mut self.h_step);
        for s in 1..stages {
            let row: Vec<(usize, f64)> = self.pair.tableau.a[s]
                .iter()
                .enumerate()
                .filter(|(_, a)| **a != 0.0)
                .map(|(j, a)| (j, *a))
                .collect();
            self.set_coeffs(&row, &h);
            let renormalise = self.renormalise && self.pair.fsal && s == stages - 1;
            backend.combine_systems(&self.stage_ids, &self.coeffs, renormalise)?;
            backend.field(Slot::Stage, s)?;
            self.count(active);
        }
        if !self.pair.fsal {
            let b: Vec<(usize, f64)> = nonzero(&self.pair.tableau.b);
            self.set_coeffs(&b, &h);
            backend.combine_systems(&self.stage_ids, &self.coeffs, self.renormalise)?;
        }
        let n = backend.norm_components() as f64;
        match self.pair.error.clone() {
            ErrorWeights::Single(e) => {
                self.set_coeffs(&nonzero(&e), &h);
                self.rms(backend, false, false)?;
                for (err, s) in self.err.iter_mut().zip(&self.sums) {
                    *err = (s / n).sqrt();
                }
            }
            ErrorWeights::Dop853 { e5, e3 } => {
                self.set_coeffs(&nonzero(&e5), &h);
                self.rms(backend, false, false)?;
                self.set_coeffs(&nonzero(&e3), &h);
                self.rms(backend, false, true)?;
                for ((err, e5), e3) in self.err.iter_mut().zip(&self.sums).zip(&self.sums2) {
                    let denom = e5 + 0.01 * e3;
                    *err = if denom > 0.0 {
                        e5 / (denom * n).sqrt()
                    } else {
                        0.0
                    };
                }
            }
        }
        self.h_step = h;
        Ok(())
    }

    /// For each open output inside an accepted step (before its end), the dense output of
    /// the systems whose step holds it.
    fn interpolate_outputs(
        &mut self,
        backend: &mut dyn Backend,
        outputs: &[f64],
        first_open: usize,
        pending: &mut [Option<(Vec<f64>, usize)>],
    ) -> Result<()> {
        let batch = self.systems.len();
        let len = batch * self.components;
        let stages = self.pair.stages();
        for j in first_open..outputs.len() {
            let t_out = outputs[j];
            let inside = |b: usize| {
                let s = &self.systems[b];
                self.accepted[b] && t_out > s.t && t_out < s.t + self.h_step[b]
            };
            if !(0..batch).any(inside) {
                if (0..batch).all(|b| t_out >= self.systems[b].t + self.h_step[b]) {
                    break;
                }
                continue;
            }
            self.stage_ids.clear();
            self.stage_ids.extend(0..stages);
            self.coeffs.clear();
            for b in 0..batch {
                if inside(b) {
                    let s = &self.systems[b];
                    let theta = (t_out - s.t) / self.h_step[b];
                    self.pair.dense_weights(theta, &mut self.weights);
                    let h = self.h_step[b];
                    self.coeffs.extend(self.weights.iter().map(|w| h * w));
                } else {
                    self.coeffs.extend(std::iter::repeat_n(0.0, stages));
                }
            }
            let x = backend.interpolate(&self.stage_ids, &self.coeffs, self.renormalise)?;
            let entry = pending[j].get_or_insert_with(|| (vec![0.0; len], 0));
            for b in (0..batch).filter(|&b| inside(b)) {
                let r = b * self.components..(b + 1) * self.components;
                entry.0[r.clone()].copy_from_slice(&x[r]);
                entry.1 += 1;
            }
        }
        Ok(())
    }
}

fn nonzero(w: &[f64]) -> Vec<(usize, f64)> {
    w.iter()
        .enumerate()
        .filter(|(_, w)| **w != 0.0)
        .map(|(s, w)| (s, *w))
        .collect()
}

/// Integrates a model's state on `backend` from t = 0 to `t_end` with an adaptive integrator
/// and returns the state at each of `outputs` (dense output; the end state is read when
/// `outputs` is empty) with each system's step statistics: the engine behind `run
/// --integrator dopri5`, for library users, tests and benchmarks.
pub fn integrate_adaptive(
    backend: &mut dyn Backend,
    model: &Model,
    integrator: super::Integrator,
    opts: Options,
    t_end: f64,
    outputs: &[f64],
) -> Result<(Vec<Vec<f64>>, Vec<SystemState>)> {
    let mut stepper = AdaptiveStepper::new(model, backend.shape(), integrator, opts)?;
    stepper.prepare(backend)?;
    let mut states = Vec::with_capacity(outputs.len().max(1));
    let end = [t_end];
    let outputs = if outputs.is_empty() {
        &end[..]
    } else {
        outputs
    };
    stepper.advance(backend, t_end, outputs, &mut |_, x| {
        states.push(x.to_vec());
        Ok(())
    })?;
    Ok((states, stepper.systems().to_vec()))
}

/// A checkpoint's controller state for a run of `systems` systems: one entry each, with finite,
/// non-negative times and steps (a damaged checkpoint is refused, never stepped from). Shared
/// by every adaptive stepper's `restore`.
pub(crate) fn check_restored(systems: usize, saved: &[SystemState]) -> Result<()> {
    if saved.len() != systems {
        return Err(input(format!(
            "the checkpoint has {} systems' step control, the run {systems}",
            saved.len()
        )));
    }
    if saved
        .iter()
        .any(|s| !(s.t.is_finite() && s.t >= 0.0 && s.h.is_finite() && s.h >= 0.0))
    {
        return Err(input(
            "the checkpoint's step control holds a negative or non-finite time or step",
        ));
    }
    Ok(())
}

/// Where a paused run's outputs stand fits `outputs` output times and an ensemble state of
/// `len` values. Shared by every adaptive stepper's `advance_until`.
pub(crate) fn check_cursor(cursor: &Cursor, outputs: usize, len: usize) -> Result<()> {
    if cursor.next > outputs
        || cursor
            .partial
            .iter()
            .any(|p| p.index < cursor.next || p.index >= outputs || p.state.len() != len)
    {
        return Err(input(
            "the saved outputs do not fit this run's output times and shape",
        ));
    }
    Ok(())
}

/// Hands `sink` every output from `next` on that all `batch` systems have filled, in order.
/// Shared by every adaptive stepper's `advance_until`.
pub(crate) fn emit(
    pending: &mut [Option<(Vec<f64>, usize)>],
    next: &mut usize,
    batch: usize,
    sink: &mut Sink<'_>,
) -> Result<()> {
    while *next < pending.len() && pending[*next].as_ref().is_some_and(|(_, f)| *f >= batch) {
        let (x, _) = pending[*next].take().expect("complete");
        sink(*next, &x)?;
        *next += 1;
    }
    Ok(())
}

/// A vector field on a manifold the state is put back on after every accepted step (by
/// default the unit sphere of R^dim), evaluated on the host.
pub trait OdeField {
    fn dim(&self) -> usize;
    /// out <- f(z).
    fn velocity(&mut self, z: &[f64], out: &mut [f64]);
    /// Puts the state back on the field's manifold: the start, and the state after every
    /// accepted step. Default: z / |z| (the unit sphere of R^dim).
    fn renormalise(&self, z: &mut [f64]) {
        let n = norm(z);
        assert!(
            n > 0.0 && n.is_finite(),
            "the state must be a nonzero finite vector (|z| = {n})"
        );
        z.iter_mut().for_each(|v| *v /= n);
    }
}

/// Tolerances of the DOP853 twins: a step is accepted when its error estimate is below
/// atol + rtol * |z_i| per component (RMS over components). The default
/// rtol = atol = 1e-13 gives about 1e-10 absolute global accuracy (typically ~1e-12) on
/// t in [0, 10] for O(1) beta, kappa and weights. rtol below 1e-15 is raised to 1e-15.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive {
    pub rtol: f64,
    pub atol: f64,
}

impl Adaptive {
    /// rtol = atol = `tol`.
    pub fn uniform(tol: f64) -> Self {
        Adaptive {
            rtol: tol,
            atol: tol,
        }
    }
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive::uniform(1e-13)
    }
}

/// DOP853 on an [`OdeField`] in f64 on the host: the engine above with the twins' integral
/// controller, one system, steps shortened to land on each output time.
pub struct Dop853 {
    tol: Adaptive,
}

impl Dop853 {
    pub fn new(_d: usize, tol: &Adaptive) -> Self {
        assert!(
            tol.rtol > 0.0 && tol.atol > 0.0 && tol.rtol.is_finite() && tol.atol.is_finite(),
            "tolerances must be positive and finite, got rtol = {}, atol = {}",
            tol.rtol,
            tol.atol
        );
        Dop853 { tol: *tol }
    }

    /// z(t) for each t of `times` (non-decreasing, >= 0) from z0 (renormalised first).
    ///
    /// # Panics
    /// If dimensions disagree, the times are not as said, or the step size underflows.
    pub fn run(&mut self, field: &mut dyn OdeField, z0: &[f64], times: &[f64]) -> Vec<Vec<f64>> {
        let d = field.dim();
        assert_eq!(
            z0.len(),
            d,
            "z0 has dimension {} but the law has {d}",
            z0.len()
        );
        let mut prev = 0.0;
        for &t in times {
            assert!(
                t.is_finite() && t >= prev,
                "output times must be finite, >= 0 and non-decreasing (got {t} after {prev})"
            );
            prev = t;
        }
        let mut z = z0.to_vec();
        field.renormalise(&mut z);
        let shape = Shape { batch: 1, n: 1, d };
        let opts = Options {
            rtol: self.tol.rtol,
            atol: self.tol.atol,
            ..Options::default()
        };
        let mut stepper = AdaptiveStepper::with_pair(Pair::dop853(), true, shape, opts)
            .expect("valid tolerances")
            .with_controller(Controller::dop853_twins());
        let mut host = HostSystem::new(field, z);
        stepper.prepare(&mut host).expect("a host system");
        let mut out = Vec::with_capacity(times.len());
        let t_end = times.last().copied().unwrap_or(0.0);
        stepper
            .advance(&mut host, t_end, times, &mut |_, x| {
                out.push(x.to_vec());
                Ok(())
            })
            .unwrap_or_else(|e| panic!("integrate_infinite_cfm: {e}"));
        out
    }
}

/// One [`OdeField`] as a backend of one system, in f64 on the host.
struct HostSystem<'a> {
    field: &'a mut dyn OdeField,
    x: Vec<f64>,
    stage: Vec<f64>,
    k: Vec<Vec<f64>>,
}

impl<'a> HostSystem<'a> {
    fn new(field: &'a mut dyn OdeField, x: Vec<f64>) -> Self {
        let d = x.len();
        HostSystem {
            field,
            x,
            stage: vec![0.0; d],
            k: Vec::new(),
        }
    }

    fn combined(&self, stages: &[usize], coeffs: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&self.x);
        for (&s, &c) in stages.iter().zip(coeffs) {
            out.iter_mut()
                .zip(&self.k[s])
                .for_each(|(o, k)| *o += c * k);
        }
    }
}

impl Backend for HostSystem<'_> {
    fn describe(&self) -> String {
        "host (f64)".into()
    }
    fn shape(&self) -> Shape {
        Shape {
            batch: 1,
            n: 1,
            d: self.x.len(),
        }
    }
    fn prepare(&mut self, stages: usize) -> Result<()> {
        self.k = vec![vec![0.0; self.x.len()]; stages];
        Ok(())
    }
    fn field(&mut self, input: Slot, stage: usize) -> Result<()> {
        let src = match input {
            Slot::State => &self.x,
            Slot::Stage => &self.stage,
        };
        self.field.velocity(src, &mut self.k[stage]);
        Ok(())
    }
    fn combine(
        &mut self,
        _dst: Slot,
        _terms: &[(usize, f64)],
        _renormalise: bool,
        _noise: Option<super::NoiseStep>,
    ) -> Result<()> {
        Err(input("the host system steps adaptively only"))
    }
    fn supports_adaptive(&self) -> bool {
        true
    }
    fn combine_systems(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<()> {
        let mut stage = std::mem::take(&mut self.stage);
        self.combined(stages, coeffs, &mut stage);
        if renormalise {
            self.field.renormalise(&mut stage);
        }
        self.stage = stage;
        Ok(())
    }
    fn scaled_sums(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        with_state: bool,
        atol: f64,
        rtol: f64,
        out: &mut [f64],
    ) -> Result<()> {
        let mut sum = 0.0;
        for i in 0..self.x.len() {
            let mut v = if with_state { self.x[i] } else { 0.0 };
            for (&s, &c) in stages.iter().zip(coeffs) {
                v += c * self.k[s][i];
            }
            let sk = atol + rtol * self.x[i].abs().max(self.stage[i].abs());
            sum += (v / sk).powi(2);
        }
        out[0] = sum;
        Ok(())
    }
    fn accept_systems(&mut self, accepted: &[bool], copy: Option<(usize, usize)>) -> Result<()> {
        if accepted[0] {
            self.x.copy_from_slice(&self.stage);
            if let Some((from, to)) = copy {
                let k = self.k[from].clone();
                self.k[to].copy_from_slice(&k);
            }
        }
        Ok(())
    }
    fn interpolate(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<Vec<f64>> {
        let mut out = vec![0.0; self.x.len()];
        self.combined(stages, coeffs, &mut out);
        if renormalise {
            self.field.renormalise(&mut out);
        }
        Ok(out)
    }
    fn read_state(&mut self) -> Result<Tokens> {
        Ok(Tokens::F64(self.x.clone()))
    }
    fn read_field(&mut self, stage: usize) -> Result<Tokens> {
        Ok(Tokens::F64(self.k[stage].clone()))
    }
    fn pair_stats(&mut self) -> Result<Vec<crate::model::observables::PairStats>> {
        Err(input("the host system has no pair statistics"))
    }
}
