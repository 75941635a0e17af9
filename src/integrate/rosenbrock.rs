//! A stiff method (docs/adaptive.md, "A stiff method"): Shampine's Rosenbrock 2(3), the formula
//! of MATLAB's ode23s (Shampine & Reichelt, SIAM J. Sci. Comput. 18, 1997), with its linear
//! systems solved matrix-free by GMRES, on the f64 reference field.
//!
//! Why: once tokens cluster, the attraction within a cluster relaxes at a rate of order 1 while
//! the metastable states last e^(c beta). An explicit pair's step is then capped by stability
//! (about 4 for dopri5 at n = 256, beta = 36), so its evaluations grow like T; a Rosenbrock
//! method is L-stable and its step follows the accuracy of the slow drift, so its evaluations
//! grow like the number of decades of time and the merges on the way.
//!
//! One step of size h from x with f0 = f(x), W = I - h g J (g = 1 / (2 + sqrt 2), J the
//! Jacobian of the field at x):
//!   k1 = W^-1 f0,   f1 = f(x + h k1 / 2),   k2 = W^-1 (f1 - k1) + k1,
//!   x_new = x + h k2 (renormalised on the sphere),   f2 = f(x_new),
//!   k3 = W^-1 (f2 - e32 (k2 - f1) - 2 (k1 - f0)),   e32 = 6 + sqrt 2,
//!   error estimate e = h (k1 - 2 k2 + k3) / 6,
//! the error norm that of the explicit pairs (RMS over a system's n d components of
//! e / (atol + rtol max(|x|, |x_new|))), an integral controller with exponent 1/3 (safety 0.9,
//! factors in [0.2, 5], no growth after a rejection), f2 the next step's f0, and the dense
//! output x + h (s (1 - s) k1 + s (s - 2g) k2) / (1 - 2g) at s in [0, 1] (order 2,
//! renormalised on the sphere).
//!
//! The solution is of order 2 for any W (a W-method), so J need not be exact: J v is the
//! finite difference (f(x + e v) - f0) / e, e = 1e-7 (1 + |x|) / |v|, and each W^-1 r is GMRES
//! (restarted every 30 vectors) stopped when its residual's RMS is below
//! 0.05 (atol + rtol rms(x)) / h, a twentieth of what the error control resolves in h k. Memory
//! is O(30 n d) per system: no n x n or (n d)^2 matrix is formed. Each GMRES iteration is one
//! field evaluation; the statistics count them with f1 and f2.
//!
//! Each system of an ensemble is integrated on its own (its own steps), so an ensemble equals
//! its systems alone. [`Ros23Stepper`] steps an ensemble one attempt of every system at a
//! time and can pause between attempts (`attnflow run --integrator ros23`, its checkpoints
//! and `--resume`): its controller state is each system's [`SystemState`] (time, next step,
//! whether the last attempt was rejected, statistics), and f(x) at a resumed state is
//! evaluated again (uncounted) to the same bits as the run never stopped.

use super::adaptive::{
    Cursor, Options, Partial, Sink, SystemState, SystemStats, check_cursor, check_restored, emit,
};
use crate::error::{Error, Result, input};
use crate::model::linalg::{dot, norm};
use crate::model::{Model, Shape};

/// Vectors of the Krylov space before GMRES restarts.
const RESTART: usize = 30;
/// The most GMRES iterations of one linear solve before the step is retried with h / 2.
const MAX_KRYLOV: usize = 300;
/// The residual GMRES leaves, relative to what the error control resolves.
const LINEAR_TOL: f64 = 0.05;

/// What a ros23 run did per system: the steps (as for the explicit pairs; `evaluations`
/// counts every field evaluation, those of the Jacobian-vector products included) and the
/// GMRES iterations among them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RosStats {
    pub steps: SystemStats,
    pub krylov: u64,
}

/// Integrates a model's state x0 [batch, n, d] from t = 0 to `t_end` with ros23 on the f64
/// reference field and returns the state at each of `outputs` (non-decreasing, within
/// [0, t_end]; by the dense output) with each system's statistics.
pub fn integrate_ros23(
    model: &Model,
    shape: Shape,
    x0: &[f64],
    opts: Options,
    t_end: f64,
    outputs: &[f64],
) -> Result<(Vec<Vec<f64>>, Vec<RosStats>)> {
    check(model, shape, x0, &opts, t_end, outputs)?;
    let per = shape.n * shape.d;
    let mut states = vec![vec![0.0; x0.len()]; outputs.len()];
    let mut stats = Vec::with_capacity(shape.batch);
    for b in 0..shape.batch {
        let system = one_system(model, b);
        let mut ros = Ros23 {
            model: &system,
            shape: Shape { batch: 1, ..shape },
            opts,
            state: SystemState::new(0.0),
            system: b,
        };
        let range = b * per..(b + 1) * per;
        let saved = ros.integrate(&x0[range.clone()], t_end, outputs)?;
        for (state, x) in states.iter_mut().zip(saved) {
            state[range.clone()].copy_from_slice(&x);
        }
        let mut steps = ros.state.stats;
        let krylov = std::mem::take(&mut steps.krylov);
        stats.push(RosStats { steps, krylov });
    }
    Ok((states, stats))
}

/// System `b` of a model alone (its beta).
fn one_system(model: &Model, b: usize) -> Model {
    let mut system = model.clone();
    system.betas = vec![model.betas[b]];
    system
}

/// Refuses a model ros23 does not integrate, with the reason and what to do.
pub fn check_model(model: &Model) -> Result<()> {
    if model.noise.is_some() {
        return Err(input(
            "--integrator ros23 controls the error of an ODE, and --noise makes an SDE \
             (integrated by Euler-Maruyama): drop --noise, or use --integrator euler",
        ));
    }
    if !model.layer.is_ode() {
        return Err(input(format!(
            "--layer {} is one residual update per layer: it has no time step for \
             --integrator ros23 to adapt; use --integrator euler",
            model.layer.name()
        )));
    }
    if model.weights_change() || model.random.is_some() {
        return Err(input(
            "--integrator ros23 integrates the ODE with fixed heads shared by the systems: \
             --qkv redraw:SEED, random-per-system:SEED, redraw-per-system:SEED and per-layer \
             weights are not supported; use --integrator dopri5 for heads drawn per system, \
             a fixed-step integrator (rk4) with --steps for redrawn or per-layer ones",
        ));
    }
    Ok(())
}

/// Refuses what ros23 does not integrate, with the reason.
fn check(
    model: &Model,
    shape: Shape,
    x0: &[f64],
    opts: &Options,
    t_end: f64,
    outputs: &[f64],
) -> Result<()> {
    opts.validate()?;
    check_model(model)?;
    if x0.len() != shape.len() || model.betas.len() != shape.batch {
        return Err(input(format!(
            "ros23: {} values and {} betas for a state of shape [{}, {}, {}]",
            x0.len(),
            model.betas.len(),
            shape.batch,
            shape.n,
            shape.d
        )));
    }
    if !(t_end.is_finite() && t_end >= 0.0) {
        return Err(input(format!(
            "the end time must be finite and >= 0, got {t_end}"
        )));
    }
    check_outputs(outputs, t_end)
}

fn check_outputs(outputs: &[f64], t_end: f64) -> Result<()> {
    let mut prev = 0.0;
    for &t in outputs {
        if !(t.is_finite() && t >= prev && t <= t_end) {
            return Err(input(format!(
                "output times must be finite, non-decreasing and within [0, {t_end}] (got {t} \
                 after {prev})"
            )));
        }
        prev = t;
    }
    Ok(())
}

/// Steps an ensemble with ros23, one attempt of every system not yet at the end at a time,
/// on its own host state (f64). Make it with [`Ros23Stepper::new`], continue a checkpoint
/// with [`Ros23Stepper::restore`], then [`Ros23Stepper::advance_until`].
pub struct Ros23Stepper {
    /// Each system's model (its beta).
    models: Vec<Model>,
    /// One system's shape.
    shape: Shape,
    opts: Options,
    systems: Vec<SystemState>,
    x: Vec<f64>,
    /// f(x) of each system, once evaluated.
    f0: Vec<Option<Vec<f64>>>,
    /// Whether the next f(x) only recomputes what the run had before a restore (uncounted).
    restored: bool,
}

impl Ros23Stepper {
    /// The stepper of a model's ensemble at state `x0` [batch, n, d], at t = 0.
    pub fn new(model: &Model, shape: Shape, x0: Vec<f64>, opts: Options) -> Result<Self> {
        check(model, shape, &x0, &opts, 0.0, &[])?;
        if opts.shared_step {
            return Err(input(
                "--shared-step: --integrator ros23 steps each system of an ensemble on its own; \
                 drop --shared-step",
            ));
        }
        Ok(Ros23Stepper {
            models: (0..shape.batch).map(|b| one_system(model, b)).collect(),
            shape: Shape { batch: 1, ..shape },
            opts,
            systems: vec![SystemState::new(0.0); shape.batch],
            x: x0,
            f0: vec![None; shape.batch],
            restored: false,
        })
    }

    /// Each system's time, step and statistics (a checkpoint's controller state).
    pub fn systems(&self) -> &[SystemState] {
        &self.systems
    }

    /// The ensemble's state [batch, n, d].
    pub fn state(&self) -> &[f64] {
        &self.x
    }

    /// Continues from a checkpoint's controller state (the stepper made at its state).
    pub fn restore(&mut self, systems: Vec<SystemState>) -> Result<()> {
        check_restored(self.systems.len(), &systems)?;
        self.systems = systems;
        self.f0 = vec![None; self.systems.len()];
        self.restored = true;
        Ok(())
    }

    /// Integrates every system to `t_end`, handing `sink` the ensemble's state at each time
    /// of `outputs` (non-decreasing, within [0, t_end]) in order, as
    /// [`super::AdaptiveStepper::advance_until`] does: after every attempt of the ensemble,
    /// `pause(attempts, outputs handed out)` is asked, and when it says yes this returns
    /// `Ok(false)` with `cursor` holding where the outputs stand; called again with the same
    /// `t_end`, `outputs` and `cursor` (after a pause, or after a restore) it continues to the
    /// bits of a run never paused; `Ok(true)` once every system is at `t_end`.
    pub fn advance_until(
        &mut self,
        t_end: f64,
        outputs: &[f64],
        cursor: &mut Cursor,
        sink: &mut Sink<'_>,
        pause: &mut dyn FnMut(u64, usize) -> bool,
    ) -> Result<bool> {
        let fresh = cursor.attempts == 0 && cursor.next == 0 && cursor.partial.is_empty();
        if !(t_end.is_finite() && self.systems.iter().all(|s| s.t <= t_end)) {
            return Err(input(format!(
                "the end time must be finite and not before the systems' times, got {t_end}"
            )));
        }
        check_outputs(outputs, t_end)?;
        let batch = self.systems.len();
        let per = self.shape.n * self.shape.d;
        check_cursor(cursor, outputs.len(), batch * per)?;
        let mut pending: Vec<Option<(Vec<f64>, usize)>> = vec![None; outputs.len()];
        for p in cursor.partial.drain(..) {
            pending[p.index] = Some((p.state, p.filled));
        }
        let mut next_emit = cursor.next;
        if fresh {
            let t0 = self.systems[0].t;
            for slot in pending.iter_mut().zip(outputs).filter(|(_, o)| **o <= t0) {
                *slot.0 = Some((self.x.clone(), batch));
            }
        }
        emit(&mut pending, &mut next_emit, batch, sink)?;
        let mut attempts = cursor.attempts;
        loop {
            if self.systems.iter().all(|s| s.t >= t_end) {
                cursor.next = next_emit;
                cursor.attempts = attempts;
                return Ok(true);
            }
            for b in 0..batch {
                if self.systems[b].t >= t_end {
                    continue;
                }
                let range = b * per..(b + 1) * per;
                let mut ros = Ros23 {
                    model: &self.models[b],
                    shape: self.shape,
                    opts: self.opts,
                    state: self.systems[b].clone(),
                    system: b,
                };
                let mut x = self.x[range.clone()].to_vec();
                let mut f0 = match self.f0[b].take() {
                    Some(f0) => f0,
                    None => {
                        let f0 = ros.f(&x);
                        if self.restored {
                            ros.state.stats.evaluations -= 1;
                        }
                        f0
                    }
                };
                let t = ros.state.t;
                let step = ros.attempt(&mut x, &mut f0, t_end);
                self.systems[b] = ros.state;
                self.f0[b] = Some(f0);
                if let Some(step) = step? {
                    // The outputs this step passed, by its dense output.
                    let first = outputs.partition_point(|&o| o <= t);
                    for (j, &o) in outputs.iter().enumerate().skip(first) {
                        if !(o <= t + step.h || step.last) {
                            break;
                        }
                        let y = step.dense(o, &x);
                        let (state, filled) =
                            pending[j].get_or_insert_with(|| (vec![0.0; batch * per], 0));
                        state[range.clone()].copy_from_slice(&y);
                        *filled += 1;
                    }
                    self.x[range].copy_from_slice(&x);
                }
            }
            self.restored = false;
            attempts += 1;
            emit(&mut pending, &mut next_emit, batch, sink)?;
            let done = self.systems.iter().all(|s| s.t >= t_end);
            if !done && pause(attempts, next_emit) {
                cursor.next = next_emit;
                cursor.attempts = attempts;
                cursor.partial = pending
                    .into_iter()
                    .enumerate()
                    .filter_map(|(index, p)| {
                        p.map(|(state, filled)| Partial {
                            index,
                            filled,
                            state,
                        })
                    })
                    .collect();
                return Ok(false);
            }
        }
    }
}

/// Hands the outputs every system has filled, in order, to the sink.
/// One system in progress: its model (one beta), time, next step and statistics.
struct Ros23<'a> {
    model: &'a Model,
    shape: Shape,
    opts: Options,
    state: SystemState,
    system: usize,
}

/// An accepted step from `t` of size `h` (the last one, to the end time, when `last`): what
/// its dense output needs.
struct Accepted {
    t: f64,
    h: f64,
    last: bool,
    x: Vec<f64>,
    k1: Vec<f64>,
    k2: Vec<f64>,
    renormalise: bool,
    d: usize,
}

impl Accepted {
    /// The state at time `o` in [t, t + h] (`x_new` at its end).
    fn dense(&self, o: f64, x_new: &[f64]) -> Vec<f64> {
        let s = ((o - self.t) / self.h).clamp(0.0, 1.0);
        if s == 1.0 {
            return x_new.to_vec();
        }
        let (w1, w2) = (
            s * (1.0 - s) / (1.0 - 2.0 * G),
            s * (s - 2.0 * G) / (1.0 - 2.0 * G),
        );
        let mut y: Vec<f64> = (0..self.x.len())
            .map(|i| self.x[i] + self.h * (w1 * self.k1[i] + w2 * self.k2[i]))
            .collect();
        if self.renormalise {
            crate::model::geometry::normalise_tokens(&mut y, self.d);
        }
        y
    }
}

const G: f64 = 0.292_893_218_813_452_5; // 1 / (2 + sqrt 2)
const E32: f64 = 7.414_213_562_373_095; // 6 + sqrt 2

impl Ros23<'_> {
    fn f(&mut self, x: &[f64]) -> Vec<f64> {
        self.state.stats.evaluations += 1;
        let mut out = vec![0.0; x.len()];
        crate::reference::field(self.model, self.shape, x, &mut out);
        out
    }

    fn renormalise(&self, x: &mut [f64]) {
        if self.model.renormalises() {
            crate::model::geometry::normalise_tokens(x, self.shape.d);
        }
    }

    /// RMS of e / (atol + rtol max(|x|, |y|)).
    fn error_norm(&self, e: &[f64], x: &[f64], y: &[f64]) -> f64 {
        let (atol, rtol) = (self.opts.atol, self.opts.rtol);
        let sum: f64 = e
            .iter()
            .zip(x.iter().zip(y))
            .map(|(e, (a, b))| (e / (atol + rtol * a.abs().max(b.abs()))).powi(2))
            .sum();
        (sum / e.len() as f64).sqrt()
    }

    /// The states at `outputs` of the system from `x0` at t = 0 to `t_end`.
    fn integrate(&mut self, x0: &[f64], t_end: f64, outputs: &[f64]) -> Result<Vec<Vec<f64>>> {
        let mut saved = Vec::with_capacity(outputs.len());
        let mut next = 0;
        let mut x = x0.to_vec();
        while next < outputs.len() && outputs[next] <= 0.0 {
            saved.push(x.clone());
            next += 1;
        }
        let mut f0 = self.f(&x);
        while self.state.t < t_end {
            if let Some(step) = self.attempt(&mut x, &mut f0, t_end)? {
                // Outputs inside the step, by the dense output; at its end, the new state.
                while next < outputs.len() && (outputs[next] <= step.t + step.h || step.last) {
                    saved.push(step.dense(outputs[next], &x));
                    next += 1;
                }
            }
        }
        while next < outputs.len() {
            saved.push(x.clone());
            next += 1;
        }
        Ok(saved)
    }

    /// One step attempt from the system's time towards `t_end`, x and f0 = f(x) updated
    /// when it is accepted (returned, with its dense output), the controller in both cases.
    fn attempt(
        &mut self,
        x: &mut Vec<f64>,
        f0: &mut Vec<f64>,
        t_end: f64,
    ) -> Result<Option<Accepted>> {
        let t = self.state.t;
        if self.state.h == 0.0 {
            // The first step (Hairer's first guess).
            let d0 = self.error_norm(x, x, x);
            let d1 = self.error_norm(f0, x, x);
            self.state.h = if d0 < 1e-5 || d1 < 1e-5 {
                1e-6
            } else {
                0.01 * d0 / d1
            };
        }
        let h = self.state.h.min(self.opts.h_max);
        self.state.h = h;
        let last = h >= t_end - t;
        let hs = if last { t_end - t } else { h };
        let floor = self.opts.h_min.max(1e-14 * t.abs().max(1.0));
        if !last && hs < floor {
            return Err(Error::NonFinite(format!(
                "ros23: the step size fell below {floor:.3e} at t = {t} in system {}: the \
                 solution is not smooth enough there, has blown up, or the tolerance \
                 (rtol = {}, atol = {}) is too tight",
                self.system, self.opts.rtol, self.opts.atol
            )));
        }
        let st = &self.state.stats;
        if st.accepted + st.rejected >= self.opts.max_steps {
            return Err(input(format!(
                "ros23: more than {} steps without reaching t = {t_end} (system {} is at t = \
                 {t}, step {hs:.3e})",
                self.opts.max_steps, self.system
            )));
        }
        let linear_tol = LINEAR_TOL * (self.opts.atol + self.opts.rtol * rms(x)) / hs;
        let Some((x_new, f2, err, k1, k2)) = self.step(x, f0, hs, linear_tol) else {
            // GMRES did not converge: a shorter step makes W better conditioned.
            self.state.stats.rejected += 1;
            self.state.h = hs * 0.5;
            self.state.rejected_last = true;
            return Ok(None);
        };
        if !(err.is_finite() && err <= 1.0) {
            self.state.stats.rejected += 1;
            let factor = if err.is_finite() {
                (0.9 * err.powf(-1.0 / 3.0)).max(0.2)
            } else {
                0.2
            };
            self.state.h = hs * factor;
            self.state.rejected_last = true;
            return Ok(None);
        }
        let st = &mut self.state.stats;
        st.accepted += 1;
        if !last || st.h_smallest == 0.0 {
            st.h_smallest = if st.h_smallest == 0.0 {
                hs
            } else {
                st.h_smallest.min(hs)
            };
        }
        st.h_largest = st.h_largest.max(hs);
        let mut factor = if err == 0.0 {
            5.0
        } else {
            (0.9 * err.powf(-1.0 / 3.0)).clamp(0.2, 5.0)
        };
        if self.state.rejected_last {
            factor = factor.min(1.0);
        }
        self.state.h = if last {
            h.max(hs * factor)
        } else {
            hs * factor
        };
        self.state.rejected_last = false;
        self.state.t = if last { t_end } else { t + hs };
        let x_old = std::mem::replace(x, x_new);
        *f0 = f2;
        Ok(Some(Accepted {
            t,
            h: hs,
            last,
            x: x_old,
            k1,
            k2,
            renormalise: self.model.renormalises(),
            d: self.shape.d,
        }))
    }
    /// One step of size h from x (f0 = f(x)), the linear systems solved to `linear_tol` (RMS
    /// of the residual): (x_new, f(x_new), the error norm, k1, k2), or None when GMRES did not
    /// converge.
    #[allow(clippy::type_complexity)]
    fn step(
        &mut self,
        x: &[f64],
        f0: &[f64],
        h: f64,
        linear_tol: f64,
    ) -> Option<(Vec<f64>, Vec<f64>, f64, Vec<f64>, Vec<f64>)> {
        let len = x.len();
        let tol = linear_tol * (len as f64).sqrt();
        let k1 = self.solve(x, f0, h * G, f0, tol)?;
        let half: Vec<f64> = (0..len).map(|i| x[i] + 0.5 * h * k1[i]).collect();
        let f1 = self.f(&half);
        let r2: Vec<f64> = (0..len).map(|i| f1[i] - k1[i]).collect();
        let mut k2 = self.solve(x, f0, h * G, &r2, tol)?;
        k2.iter_mut().zip(&k1).for_each(|(a, b)| *a += b);
        let mut x_new: Vec<f64> = (0..len).map(|i| x[i] + h * k2[i]).collect();
        self.renormalise(&mut x_new);
        let f2 = self.f(&x_new);
        let r3: Vec<f64> = (0..len)
            .map(|i| f2[i] - E32 * (k2[i] - f1[i]) - 2.0 * (k1[i] - f0[i]))
            .collect();
        let k3 = self.solve(x, f0, h * G, &r3, tol)?;
        let e: Vec<f64> = (0..len)
            .map(|i| h / 6.0 * (k1[i] - 2.0 * k2[i] + k3[i]))
            .collect();
        let err = self.error_norm(&e, x, &x_new);
        Some((x_new, f2, err, k1, k2))
    }

    /// GMRES for (I - g J) k = r with J v = (f(x + e v) - f0) / e, from k = 0, restarted every
    /// RESTART vectors, until the residual's 2-norm is at most `tol` (None after MAX_KRYLOV
    /// iterations).
    fn solve(&mut self, x: &[f64], f0: &[f64], g: f64, r: &[f64], tol: f64) -> Option<Vec<f64>> {
        let len = x.len();
        let x_norm = norm(x);
        let apply = |ros: &mut Self, v: &[f64]| -> Vec<f64> {
            let v_norm = norm(v);
            if v_norm == 0.0 {
                return vec![0.0; len];
            }
            let e = 1e-7 * (1.0 + x_norm) / v_norm;
            let moved: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + e * b).collect();
            let fv = ros.f(&moved);
            ros.state.stats.krylov += 1;
            (0..len).map(|i| v[i] - g * (fv[i] - f0[i]) / e).collect()
        };
        let mut k = vec![0.0; len];
        let mut residual = r.to_vec();
        let mut iterations = 0;
        loop {
            let beta = norm(&residual);
            if beta <= tol {
                return Some(k);
            }
            if iterations >= MAX_KRYLOV || !beta.is_finite() {
                return None;
            }
            // Arnoldi with modified Gram-Schmidt; the least-squares problem by Givens rotations.
            let mut basis: Vec<Vec<f64>> = vec![residual.iter().map(|a| a / beta).collect()];
            let mut hess = vec![vec![0.0; RESTART]; RESTART + 1];
            let (mut cs, mut sn) = (vec![0.0; RESTART], vec![0.0; RESTART]);
            let mut s = vec![0.0; RESTART + 1];
            s[0] = beta;
            let mut used = 0;
            for j in 0..RESTART {
                let mut w = apply(self, &basis[j]);
                iterations += 1;
                for (i, v) in basis.iter().enumerate() {
                    hess[i][j] = dot(&w, v);
                    w.iter_mut().zip(v).for_each(|(w, v)| *w -= hess[i][j] * v);
                }
                let w_norm = norm(&w);
                hess[j + 1][j] = w_norm;
                for i in 0..j {
                    let t = cs[i] * hess[i][j] + sn[i] * hess[i + 1][j];
                    hess[i + 1][j] = -sn[i] * hess[i][j] + cs[i] * hess[i + 1][j];
                    hess[i][j] = t;
                }
                let den = hess[j][j].hypot(hess[j + 1][j]);
                cs[j] = hess[j][j] / den;
                sn[j] = hess[j + 1][j] / den;
                hess[j][j] = den;
                hess[j + 1][j] = 0.0;
                s[j + 1] = -sn[j] * s[j];
                s[j] *= cs[j];
                used = j + 1;
                if s[j + 1].abs() <= tol || iterations >= MAX_KRYLOV || w_norm == 0.0 {
                    break;
                }
                basis.push(w.iter().map(|a| a / w_norm).collect());
            }
            let mut y = vec![0.0; used];
            for i in (0..used).rev() {
                let t = s[i] - (i + 1..used).map(|l| hess[i][l] * y[l]).sum::<f64>();
                y[i] = t / hess[i][i];
            }
            for (yi, v) in y.iter().zip(&basis) {
                k.iter_mut().zip(v).for_each(|(k, v)| *k += yi * v);
            }
            // The true residual (one more evaluation), for the restart and the test.
            let ak = apply(self, &k);
            iterations += 1;
            residual = (0..len).map(|i| r[i] - ak[i]).collect();
        }
    }
}

fn rms(x: &[f64]) -> f64 {
    (dot(x, x) / x.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::Integrator;
    use crate::integrate::adaptive::integrate_adaptive;
    use crate::model::init::InitSpec;
    use crate::model::{Attention, Geometry, Mask, Weights};

    fn model(d: usize, betas: Vec<f64>) -> Model {
        Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            betas,
        )
    }

    /// dopri5 on the reference backend at rtol = atol = `tol`: the states at `outputs` and
    /// each system's evaluations.
    fn dopri5(
        model: &Model,
        shape: Shape,
        x0: &[f64],
        tol: (f64, f64),
        t_end: f64,
        outputs: &[f64],
    ) -> (Vec<Vec<f64>>, Vec<u64>) {
        let mut b = crate::reference::ReferenceBackend::new(model, shape, x0).unwrap();
        let o = Options {
            rtol: tol.0,
            atol: tol.1,
            ..Options::default()
        };
        let (x, s) =
            integrate_adaptive(&mut b, model, Integrator::Dopri5, o, t_end, outputs).unwrap();
        (x, s.iter().map(|s| s.stats.evaluations).collect())
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// Fixed steps with the linear systems solved to 1e-10 (RMS): the solution's global error falls
    /// like h^2 (a method of order 2) and the local error estimate like h^3 (its embedded
    /// formula of order 3, with an exact Jacobian up to the finite difference).
    #[test]
    fn ros23_has_order_two_and_an_order_three_error_estimate() {
        let (n, d) = (6, 3);
        let shape = Shape::new(1, n, d).unwrap();
        let model = model(d, vec![1.0]);
        let x0 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 3)
            .unwrap();
        let (truth, _) = dopri5(&model, shape, &x0, (1e-13, 1e-13), 1.0, &[1.0]);
        let mut ros = Ros23 {
            model: &model,
            shape,
            opts: Options::default(),
            state: SystemState::new(0.0),
            system: 0,
        };
        let (mut errors, mut estimates) = (Vec::new(), Vec::new());
        let steps = [8usize, 16, 32, 64];
        for &k in &steps {
            let h = 1.0 / k as f64;
            let mut x = x0.clone();
            let mut f0 = ros.f(&x);
            let mut first = None;
            for _ in 0..k {
                let (x_new, f2, err, _, _) = ros.step(&x, &f0, h, 1e-10).unwrap();
                first.get_or_insert(err);
                (x, f0) = (x_new, f2);
            }
            errors.push(max_diff(&x, &truth[0]));
            estimates.push(first.unwrap());
        }
        let slopes =
            |v: &[f64]| -> Vec<f64> { v.windows(2).map(|w| (w[0] / w[1]).log2()).collect() };
        let (order, estimate) = (slopes(&errors), slopes(&estimates));
        let e = |v: &[f64]| v.iter().map(|e| format!("{e:.3e}")).collect::<Vec<_>>();
        eprintln!(
            "ros23 errors {:?}: orders {order:.3?}; estimates {:?}: {estimate:.3?}",
            e(&errors),
            e(&estimates)
        );
        for o in order {
            assert!((1.8..=2.3).contains(&o), "order {o:.3} ({errors:.3?})");
        }
        for o in estimate {
            assert!(
                (2.7..=3.3).contains(&o),
                "estimate order {o:.3} ({estimates:.3?})"
            );
        }
    }

    /// The metastability setting at n = 32 (the circle, beta = 36, rtol = 1e-6, atol = 1e-8):
    /// once the tokens cluster, dopri5's steps are held by stability and its evaluations grow
    /// like T, while ros23's follow the slow drift. ros23's states at t = 1, 10, 100 (dense
    /// output) match dopri5 at 1e-11 to 1e-4; its evaluations from T = 1e2 to 1e4 grow by less
    /// than 3x (measured 3848 to 8156, the merges on the way) where dopri5's grow by more than
    /// 20x (560 to 18,902); an ensemble of two draws equals each alone.
    #[test]
    fn ros23_steps_over_metastable_times_at_a_cost_that_grows_slowly() {
        let (n, d) = (32, 2);
        let shape = Shape::new(1, n, d).unwrap();
        let single = model(d, vec![36.0]);
        let x0 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 1)
            .unwrap();
        let tol = Options {
            rtol: 1e-6,
            atol: 1e-8,
            ..Options::default()
        };
        let outputs = [1.0, 10.0, 100.0];
        let (truth, _) = dopri5(&single, shape, &x0, (1e-11, 1e-11), 100.0, &outputs);
        let (x, stats) = integrate_ros23(&single, shape, &x0, tol, 100.0, &outputs).unwrap();
        let errors: Vec<f64> = x.iter().zip(&truth).map(|(a, b)| max_diff(a, b)).collect();
        let e2 = stats[0].steps.evaluations;
        let (_, stats) = integrate_ros23(&single, shape, &x0, tol, 1e4, &[]).unwrap();
        let e4 = stats[0].steps.evaluations;
        let (_, d2) = dopri5(&single, shape, &x0, (1e-6, 1e-8), 100.0, &[]);
        let (_, d4) = dopri5(&single, shape, &x0, (1e-6, 1e-8), 1e4, &[]);
        eprintln!(
            "ros23 errors at t = 1, 10, 100: {:?}; evaluations T = 1e2: {e2}, 1e4: {e4} \
             (dopri5: {}, {})",
            errors
                .iter()
                .map(|e| format!("{e:.3e}"))
                .collect::<Vec<_>>(),
            d2[0],
            d4[0]
        );
        for e in &errors {
            assert!(*e < 1e-4, "{errors:?}");
        }
        assert!(
            e4 < 3 * e2 && 2 * e4 < d4[0],
            "ros23: {e2} then {e4} evaluations"
        );
        assert!(d4[0] > 20 * d2[0], "dopri5: {d2:?} then {d4:?} evaluations");
        // An ensemble: each system on its own.
        let two = Shape::new(2, n, d).unwrap();
        let x1 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 2)
            .unwrap();
        let both = [x0.clone(), x1.clone()].concat();
        let betas = model(d, vec![36.0, 9.0]);
        let (xb, sb) = integrate_ros23(&betas, two, &both, tol, 50.0, &[50.0]).unwrap();
        let alone = integrate_ros23(&model(d, vec![9.0]), shape, &x1, tol, 50.0, &[50.0]).unwrap();
        assert_eq!(xb[0][n * d..], alone.0[0][..]);
        assert_eq!(sb[1], alone.1[0]);
    }

    /// The stepper of `attnflow run --integrator ros23`: an ensemble of two systems (their
    /// steps differ) stepped one attempt of each at a time gives the bits of each system
    /// integrated alone (integrate_ros23) at every output, and paused after k attempts, its
    /// controller state and partial outputs handed to a new stepper made at the paused state
    /// (a checkpoint), it continues to the same bits and statistics.
    #[test]
    fn ros23_stepper_pauses_and_resumes_to_the_bits_of_each_system_alone() {
        let (n, d) = (12, 2);
        let shape = Shape::new(2, n, d).unwrap();
        let model = model(d, vec![4.0, 16.0]);
        let x0 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 5)
            .unwrap();
        let opts = Options {
            rtol: 1e-6,
            atol: 1e-8,
            ..Options::default()
        };
        let (t_end, outputs) = (8.0, [0.0, 0.3, 0.31, 2.0, 5.5, 8.0]);
        let (alone, stats) = integrate_ros23(&model, shape, &x0, opts, t_end, &outputs).unwrap();
        let run = |pause_at: Option<u64>| {
            let mut seen = Vec::new();
            let mut stepper = Ros23Stepper::new(&model, shape, x0.clone(), opts).unwrap();
            let mut cursor = Cursor::default();
            let mut sink = |j: usize, x: &[f64]| {
                seen.push((j, x.to_vec()));
                Ok(())
            };
            let finished = stepper
                .advance_until(t_end, &outputs, &mut cursor, &mut sink, &mut |a, _| {
                    Some(a) == pause_at
                })
                .unwrap();
            let partial = cursor.partial.len();
            if !finished {
                // A checkpoint: the state, the controller, the outputs in part.
                let mut resumed =
                    Ros23Stepper::new(&model, shape, stepper.state().to_vec(), opts).unwrap();
                resumed.restore(stepper.systems().to_vec()).unwrap();
                stepper = resumed;
                assert!(
                    stepper
                        .advance_until(t_end, &outputs, &mut cursor, &mut sink, &mut |_, _| false)
                        .unwrap()
                );
            }
            (
                seen,
                stepper.systems().to_vec(),
                stepper.state().to_vec(),
                partial,
            )
        };
        let (seen, systems, last, _) = run(None);
        assert_eq!(seen.len(), outputs.len());
        for ((j, x), want) in seen.iter().zip(&alone) {
            assert_eq!(x, want, "output {j}");
        }
        assert_eq!(last, alone[outputs.len() - 1]);
        for (s, want) in systems.iter().zip(&stats) {
            assert_eq!(s.stats.evaluations, want.steps.evaluations);
            assert_eq!(s.stats.krylov, want.krylov);
            assert_eq!(s.t, t_end);
        }
        let (a0, a1) = (stats[0].steps.accepted, stats[1].steps.accepted);
        assert_ne!(a0, a1, "the systems should take different steps");
        // Paused where one system has passed 0.3 and 0.31 and the other not (partial outputs),
        // and elsewhere.
        let mut partials = Vec::new();
        for k in [1, 3, 10, 20, 30, a0.min(a1) + 2] {
            let (seen_k, systems_k, last_k, partial) = run(Some(k));
            assert_eq!(seen_k, seen, "paused after {k} attempts");
            assert_eq!(systems_k, systems, "paused after {k} attempts");
            assert_eq!(last_k, last);
            partials.push(partial);
        }
        eprintln!("accepted steps {a0}, {a1}; outputs in part at each pause: {partials:?}");
        assert!(partials.iter().any(|&p| p > 0), "{partials:?}");
    }
}
