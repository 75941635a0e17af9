//! The one step driver: what every step loop (run's fixed steps, cfm, the experiments'
//! simulations) shares, and the parts the adaptive loops share with it. It owns the progress
//! reports, a stop asked for (SIGINT, SIGTERM, read through [`Progress::interrupted`]) taken
//! at a step boundary, the finite-state check, the cadence of checkpoints and of the
//! boundaries that save something (metrics rows, snapshots); what is saved, and how, is the
//! loop's own ([`StepLoop`]). A leaf of `jobs`, public for the experiments.

use std::time::Instant;

use super::checkpoint::CHECKPOINT_INTERVAL_S;
use super::report::{Interrupt, Progress};
use crate::error::Result;

/// When checkpoints are due: `--checkpoint-every K` (`Some(K)` every K steps, `Some(0)`
/// never) or, unset, every [`CHECKPOINT_INTERVAL_S`] seconds of work since the last one.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoints {
    every: Option<usize>,
    last: Instant,
}

impl Checkpoints {
    pub fn new(every: Option<usize>) -> Self {
        Checkpoints {
            every,
            last: Instant::now(),
        }
    }

    /// Whether a checkpoint is due after `step` steps (or step attempts).
    pub fn due(&self, step: u64) -> bool {
        match self.every {
            Some(0) => false,
            Some(k) => step.is_multiple_of(k as u64),
            None => self.last.elapsed().as_secs_f64() >= CHECKPOINT_INTERVAL_S,
        }
    }

    /// A checkpoint was written: the interval starts again.
    pub fn written(&mut self) {
        self.last = Instant::now();
    }
}

/// Runs `work` between `progress.start(total)` (with `done` steps done already) and
/// `progress.finish()`, which comes however the work ends (done, stopped, or failed), so that
/// a progress bar never outlives its loop.
pub fn with_progress<T>(
    progress: &mut dyn Progress,
    total: u64,
    done: u64,
    work: impl FnOnce(&mut dyn Progress) -> Result<T>,
) -> Result<T> {
    progress.start(total);
    progress.step(done);
    let result = work(progress);
    progress.finish();
    result
}

/// Which steps save a snapshot.
#[derive(Clone, Copy, Debug)]
pub enum Saves<'a> {
    /// None.
    Never,
    /// Every K-th step and the last (K = 0: none).
    Every(usize),
    /// The steps listed (sorted).
    At(&'a [usize]),
}

impl Saves<'_> {
    fn includes(&self, step: usize, last: bool) -> bool {
        match *self {
            Saves::Never => false,
            Saves::Every(k) => k > 0 && (step.is_multiple_of(k) || last),
            Saves::At(at) => at.binary_search(&step).is_ok(),
        }
    }
}

/// A fixed-step loop's plan: from step `first` (0, or the step a resumed run continues) to
/// step `steps`, which boundaries save what, and when the state is checked.
#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    pub first: usize,
    pub steps: usize,
    /// A metrics row every K-th step (0: none), besides the last step's and a stop's.
    pub metrics_every: usize,
    pub saves: Saves<'a>,
    /// See [`Checkpoints`]; never at the last step, nor at a stop's.
    pub checkpoint_every: Option<usize>,
    /// Whether the state is checked after every step; otherwise only at the boundaries that
    /// save something (where it is read anyway).
    pub check_every_step: bool,
}

impl Schedule<'_> {
    fn boundary(
        &self,
        step: usize,
        stop: Option<Interrupt>,
        checkpoints: &Checkpoints,
    ) -> Boundary {
        let last = step == self.steps;
        let every = self.metrics_every;
        Boundary {
            step,
            metrics: (every > 0 && step.is_multiple_of(every)) || last || stop.is_some(),
            snapshot: self.saves.includes(step, last),
            checkpoint: !last && stop.is_none() && checkpoints.due(step as u64),
            stop,
        }
    }
}

/// What the boundary after step `step` saves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boundary {
    pub step: usize,
    pub metrics: bool,
    pub snapshot: bool,
    pub checkpoint: bool,
    /// A stop asked for: this step is the last (and gets a metrics row).
    pub stop: Option<Interrupt>,
}

impl Boundary {
    fn saves(&self) -> bool {
        self.metrics || self.snapshot || self.checkpoint
    }
}

/// The work of a fixed-step loop, which the driver calls in order: a step, the check of the
/// state, then what the boundary saves.
pub trait StepLoop {
    /// Advances the state from step `step - 1` to step `step`.
    fn step(&mut self, step: usize) -> Result<()>;
    /// Fails (with [`crate::Error::NonFinite`]) when the state after `step` is NaN or
    /// infinite; `checked` is the last step found finite.
    fn check_finite(&mut self, checked: usize, step: usize) -> Result<()>;
    /// Saves what `at` asks for (a metrics row, a snapshot, a checkpoint).
    fn observe(&mut self, at: &Boundary) -> Result<()>;
}

/// How a loop ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Driven {
    /// The last step done (`steps`, or the step a stop ended at).
    pub steps_done: usize,
    pub interrupted: Option<Interrupt>,
    /// Seconds of the steps and the checks of the state (not of what the boundaries save).
    pub stepping_s: f64,
}

/// Drives `work` through `schedule`, reporting to `progress`: after each step the stop asked
/// for is read, the state checked where the schedule says, the boundary's savings made, and
/// the progress reported; a stop ends the loop after its step's savings (a metrics row).
pub fn drive(
    schedule: &Schedule<'_>,
    progress: &mut dyn Progress,
    work: &mut dyn StepLoop,
) -> Result<Driven> {
    with_progress(
        progress,
        schedule.steps as u64,
        schedule.first as u64,
        |progress| {
            let mut checkpoints = Checkpoints::new(schedule.checkpoint_every);
            let mut driven = Driven {
                steps_done: schedule.steps,
                interrupted: None,
                stepping_s: 0.0,
            };
            let mut checked = schedule.first;
            for step in schedule.first + 1..=schedule.steps {
                let t0 = Instant::now();
                work.step(step)?;
                let at = schedule.boundary(step, progress.interrupted(), &checkpoints);
                if schedule.check_every_step || at.saves() {
                    // The step's work is done before the check reads the state, so its time
                    // counts as the dynamics' and not the observables'.
                    work.check_finite(checked, step)?;
                    checked = step;
                }
                driven.stepping_s += t0.elapsed().as_secs_f64();
                work.observe(&at)?;
                if at.checkpoint {
                    checkpoints.written();
                }
                progress.step(step as u64);
                if at.stop.is_some() {
                    driven.steps_done = step;
                    driven.interrupted = at.stop;
                    break;
                }
            }
            Ok(driven)
        },
    )
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use super::*;

    /// A progress display that records its calls and asks for a stop once `stop_after`
    /// steps are done.
    struct Recorder {
        steps: Rc<Cell<usize>>,
        stop_after: Option<usize>,
        calls: Rc<RefCell<Vec<String>>>,
    }

    impl Progress for Recorder {
        fn start(&mut self, total: u64) {
            self.calls.borrow_mut().push(format!("start {total}"));
        }
        fn step(&mut self, done: u64) {
            self.calls.borrow_mut().push(format!("step {done}"));
        }
        fn finish(&mut self) {
            self.calls.borrow_mut().push("finish".into());
        }
        fn interrupted(&self) -> Option<Interrupt> {
            self.stop_after
                .is_some_and(|k| self.steps.get() >= k)
                .then_some(Interrupt::Term)
        }
    }

    /// A loop that records what the driver asks of it and blows up at `blow_up`.
    struct Work {
        steps: Rc<Cell<usize>>,
        blow_up: Option<usize>,
        stepped: Vec<usize>,
        checked: Vec<(usize, usize)>,
        seen: Vec<Boundary>,
    }

    impl StepLoop for Work {
        fn step(&mut self, step: usize) -> Result<()> {
            self.stepped.push(step);
            self.steps.set(step);
            Ok(())
        }
        fn check_finite(&mut self, checked: usize, step: usize) -> Result<()> {
            self.checked.push((checked, step));
            match self.blow_up {
                Some(b) if step >= b => Err(crate::Error::NonFinite(format!("step {step}"))),
                _ => Ok(()),
            }
        }
        fn observe(&mut self, at: &Boundary) -> Result<()> {
            self.seen.push(*at);
            Ok(())
        }
    }

    struct Outcome {
        result: Result<Driven>,
        work: Work,
        calls: Vec<String>,
    }

    fn run(schedule: Schedule<'_>, stop_after: Option<usize>, blow_up: Option<usize>) -> Outcome {
        let steps = Rc::new(Cell::new(schedule.first));
        let calls = Rc::new(RefCell::new(Vec::new()));
        let mut progress = Recorder {
            steps: steps.clone(),
            stop_after,
            calls: calls.clone(),
        };
        let mut work = Work {
            steps,
            blow_up,
            stepped: Vec::new(),
            checked: Vec::new(),
            seen: Vec::new(),
        };
        let result = drive(&schedule, &mut progress, &mut work);
        let calls = calls.borrow().clone();
        Outcome {
            result,
            work,
            calls,
        }
    }

    fn schedule(steps: usize) -> Schedule<'static> {
        Schedule {
            first: 0,
            steps,
            metrics_every: 0,
            saves: Saves::Never,
            checkpoint_every: Some(0),
            check_every_step: false,
        }
    }

    fn steps_where(seen: &[Boundary], f: impl Fn(&Boundary) -> bool) -> Vec<usize> {
        seen.iter().filter(|b| f(b)).map(|b| b.step).collect()
    }

    #[test]
    fn a_stop_after_step_k_ends_at_k_with_a_metrics_row_and_no_checkpoint() {
        let s = Schedule {
            metrics_every: 3,
            saves: Saves::Every(2),
            checkpoint_every: Some(4),
            ..schedule(10)
        };
        let o = run(s, Some(5), None);
        let driven = o.result.unwrap();
        assert_eq!(driven.steps_done, 5);
        assert_eq!(driven.interrupted, Some(Interrupt::Term));
        assert_eq!(o.work.stepped, vec![1, 2, 3, 4, 5]);
        assert_eq!(steps_where(&o.work.seen, |b| b.metrics), vec![3, 5]);
        assert_eq!(steps_where(&o.work.seen, |b| b.snapshot), vec![2, 4]);
        assert_eq!(steps_where(&o.work.seen, |b| b.checkpoint), vec![4]);
        assert_eq!(steps_where(&o.work.seen, |b| b.stop.is_some()), vec![5]);
        // The same boundaries up to step 5 as a run that was not stopped.
        let whole = run(s, None, None);
        assert_eq!(whole.result.unwrap().steps_done, 10);
        let before: Vec<Boundary> = whole.work.seen[..4].to_vec();
        assert_eq!(o.work.seen[..4], before[..]);
        let calls: Vec<String> = ["start 10", "step 0", "step 1", "step 2", "step 3"]
            .into_iter()
            .chain(["step 4", "step 5", "finish"])
            .map(String::from)
            .collect();
        assert_eq!(o.calls, calls);
    }

    #[test]
    fn the_last_step_saves_everything_but_a_checkpoint() {
        let s = Schedule {
            metrics_every: 4,
            saves: Saves::Every(4),
            checkpoint_every: Some(1),
            ..schedule(6)
        };
        let o = run(s, None, None);
        assert_eq!(steps_where(&o.work.seen, |b| b.metrics), vec![4, 6]);
        assert_eq!(steps_where(&o.work.seen, |b| b.snapshot), vec![4, 6]);
        assert_eq!(
            steps_where(&o.work.seen, |b| b.checkpoint),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn the_state_is_checked_where_a_boundary_saves_with_the_last_step_checked() {
        let s = Schedule {
            metrics_every: 3,
            saves: Saves::Every(5),
            ..schedule(10)
        };
        let o = run(s, None, None);
        assert_eq!(
            o.work.checked,
            vec![(0, 3), (3, 5), (5, 6), (6, 9), (9, 10)]
        );
        let every = run(
            Schedule {
                check_every_step: true,
                ..schedule(3)
            },
            None,
            None,
        );
        assert_eq!(every.work.checked, vec![(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn a_blow_up_ends_the_loop_before_its_boundary_and_ends_the_progress() {
        let s = Schedule {
            check_every_step: true,
            saves: Saves::Every(1),
            ..schedule(10)
        };
        let o = run(s, None, Some(4));
        let e = o.result.unwrap_err().to_string();
        assert!(e.contains("step 4"), "{e}");
        assert_eq!(o.work.stepped, vec![1, 2, 3, 4]);
        assert_eq!(steps_where(&o.work.seen, |b| b.snapshot), vec![1, 2, 3]);
        assert_eq!(o.calls.last().map(String::as_str), Some("finish"));
        assert_eq!(o.calls.iter().filter(|c| *c == "finish").count(), 1);
    }

    #[test]
    fn a_resumed_loop_starts_after_its_first_step_and_saves_the_listed_steps() {
        let at = [2, 5, 7];
        let s = Schedule {
            first: 4,
            saves: Saves::At(&at),
            ..schedule(8)
        };
        let o = run(s, None, None);
        assert_eq!(o.work.stepped, vec![5, 6, 7, 8]);
        assert_eq!(steps_where(&o.work.seen, |b| b.snapshot), vec![5, 7]);
        assert_eq!(o.calls[..2], ["start 8".to_string(), "step 4".to_string()]);
        // A loop resumed at its end does nothing.
        let done = run(Schedule { first: 8, ..s }, None, None);
        assert!(done.work.stepped.is_empty());
        assert_eq!(done.result.unwrap().steps_done, 8);
    }

    #[test]
    fn checkpoints_every_k_never_at_zero_and_by_time_when_unset() {
        let every = Checkpoints::new(Some(3));
        let due: Vec<u64> = (1..=10).filter(|&s| every.due(s)).collect();
        assert_eq!(due, vec![3, 6, 9]);
        assert!((1..=10).all(|s| !Checkpoints::new(Some(0)).due(s)));
        let mut timed = Checkpoints::new(None);
        assert!(!timed.due(1));
        let interval = std::time::Duration::from_secs_f64(CHECKPOINT_INTERVAL_S + 1.0);
        // (A machine up for less than the interval has no instant that early.)
        let Some(earlier) = timed.last.checked_sub(interval) else {
            return;
        };
        timed.last = earlier;
        assert!(timed.due(1));
        timed.written();
        assert!(!timed.due(2));
    }
}
