//! A memo of simulations shared by the runs of one process that ask for it ([`Setup::memo`],
//! used when [`Tracking::share`] is set: the quick runs of the tests and their `--mutate`
//! variants, never the CLI or Python). A study's unmutated quick run and each of its mutated
//! runs whose mutation does not reach a simulation then compute that simulation once.
//!
//! Soundness with mutations: a study's control flow is a deterministic function of its
//! [`Setup`] (seed, size, backend, parameters) and of the answers of [`Setup::mutated`]. A run
//! with mutation m answers every query as the unmutated run does up to its first query of m.
//! So a request of run m may use an entry when m was not queried in that run before the
//! request (its inputs are those of the unmutated run) and not during the computation the
//! entry holds (that computation's queries are recorded with it). Entries are filled only by
//! computations that satisfy the same two conditions, which therefore equal the unmutated
//! one. The caller's part: `label` and `args` name the simulation and every input that is not
//! a field of the key (seed, quick, backend, params) nor decided by a query of `mutated`.
//!
//! [`Setup::memo_with`] takes a function that captures nothing, and its inputs as the key: the
//! inputs are then known exactly, and the first condition is not needed (a mutation asked about
//! in the analysis of an earlier part still gets the later simulations from the memo).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

use attnflow::error::Result;

use crate::{Report, Setup};

/// A value in a memo key by its `Debug` form (every field, floats in their shortest form that
/// reads back exactly), for inputs whose type does not serialise.
pub struct Debugged<'a, T: std::fmt::Debug>(pub &'a T);

impl<T: std::fmt::Debug> serde::Serialize for Debugged<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0))
    }
}

/// What a run records about itself while it runs, shared by the clones of its [`Setup`]
/// (the staged setup of [`crate::run`] and any study's copy): whether it applied the user's
/// parameters, which mutations it asked about, whether its simulations may be shared.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Set once the experiment has applied `params` (see [`Setup::sizes`]): parameters that
    /// no sizes took are an error, never silently ignored.
    pub applied: AtomicBool,
    /// Share simulations through the memo (tests only).
    share: AtomicBool,
    /// Each mutation name [`Setup::mutated`] was asked about, with how many times.
    queried: Mutex<BTreeMap<String, usize>>,
    /// Simulations of this run served from the memo, and those it asked the memo for.
    hits: AtomicUsize,
    requests: AtomicUsize,
}

impl Tracking {
    /// Whether the run's simulations may be shared through the memo.
    pub fn share(&self) -> bool {
        self.share.load(Ordering::Relaxed)
    }
    /// Lets (or stops) the run share its simulations through the memo.
    pub fn set_share(&self, share: bool) {
        self.share.store(share, Ordering::Relaxed);
    }
    /// Records a query of the mutation `name`.
    pub(crate) fn record(&self, name: &str) {
        *lock(&self.queried).entry(name.to_string()).or_default() += 1;
    }
    fn queried(&self) -> BTreeMap<String, usize> {
        lock(&self.queried).clone()
    }
    /// (served from the memo, asked for): the run's simulations requested through the memo.
    pub fn memo_counts(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
        )
    }
}

/// A computed simulation: its value, the mutations queried while it was computed, and the
/// backend line the computation set in the report (before and after).
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    during: BTreeSet<String>,
    backend_before: Option<String>,
    backend_after: Option<String>,
}

enum State {
    Empty,
    Pending,
    Done(Arc<Entry>),
}

struct Slot {
    state: Mutex<State>,
    ready: Condvar,
}

static MEMO: LazyLock<Mutex<HashMap<String, Arc<Slot>>>> = LazyLock::new(Default::default);

/// Simulations computed through the memo in this process (to be shared), and those served
/// from it, for the tests' report.
static COMPUTED: AtomicUsize = AtomicUsize::new(0);
static SERVED: AtomicUsize = AtomicUsize::new(0);

/// A lock that a panic elsewhere does not poison for the other tests.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn slot(key: &str) -> Arc<Slot> {
    lock(&MEMO)
        .entry(key.to_string())
        .or_insert_with(|| {
            Arc::new(Slot {
                state: Mutex::new(State::Empty),
                ready: Condvar::new(),
            })
        })
        .clone()
}

/// Sets a slot back to empty and wakes its waiters unless the computation filled it (so a
/// failed or panicked computation leaves the next request to compute).
struct Claim<'a> {
    slot: &'a Slot,
    filled: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.filled {
            *lock(&self.slot.state) = State::Empty;
            self.slot.ready.notify_all();
        }
    }
}

/// (served from the memo, computed to be shared): the simulations of this process so far.
pub fn process_counts() -> (usize, usize) {
    (
        SERVED.load(Ordering::Relaxed),
        COMPUTED.load(Ordering::Relaxed),
    )
}

impl Setup {
    /// The simulation `label` with inputs `args`: computed by `f`, or, when the run shares
    /// ([`Tracking::share`]) and an identical simulation was computed in this process, that
    /// one's value (see the module's soundness argument). `label` names the study and the
    /// simulation; `args` (serialised to JSON for the key) holds every input of `f` beyond the
    /// setup's seed, size, backend and parameters, and beyond the answers of
    /// [`Setup::mutated`]. A request for a simulation being computed waits for it, except on a
    /// rayon worker (which computes it itself, so that no pool can block on itself).
    pub fn memo<A, T>(
        &self,
        report: &mut Report,
        label: &str,
        args: &A,
        f: impl FnOnce(&mut Report) -> Result<T> + Send,
    ) -> Result<T>
    where
        A: serde::Serialize + Sync + ?Sized,
        T: Clone + Send + Sync + 'static,
    {
        self.memo_inner(report, label, args, false, f)
    }

    /// [`Setup::memo`] for a simulation whose every input is `inputs` (a function that
    /// captures nothing: it sees only the setup, the report and `inputs`). The key holds the
    /// inputs themselves, so a run whose mutation was asked about before the request (in the
    /// analysis of an earlier part, say) may still be served, as long as the mutation is not
    /// asked about during the computation.
    pub fn memo_with<A, T>(
        &self,
        report: &mut Report,
        label: &str,
        inputs: &A,
        f: fn(&Setup, &mut Report, &A) -> Result<T>,
    ) -> Result<T>
    where
        A: serde::Serialize + Sync + ?Sized,
        T: Clone + Send + Sync + 'static,
    {
        self.memo_inner(report, label, inputs, true, |report| {
            f(self, report, inputs)
        })
    }

    /// The memo: `exact` when `args` are every input of `f` beyond the setup.
    fn memo_inner<A, T>(
        &self,
        report: &mut Report,
        label: &str,
        args: &A,
        exact: bool,
        f: impl FnOnce(&mut Report) -> Result<T> + Send,
    ) -> Result<T>
    where
        A: serde::Serialize + Sync + ?Sized,
        T: Clone + Send + Sync + 'static,
    {
        // Every computation runs on a worker of rayon's pool: the backends' passes over the
        // tokens then run in place instead of being handed over (`on_worker`). A request that
        // waits for another's computation waits on its own thread, never on a worker.
        let f = move |report: &mut Report| attnflow::backend::on_worker(|| f(report));
        let tracking = &self.applied;
        if !tracking.share() {
            return f(report);
        }
        tracking.requests.fetch_add(1, Ordering::Relaxed);
        let mutation = self.mutate.as_deref();
        // A run whose mutation was asked about already may have other inputs than the
        // unmutated run (unless they are all in the key): it computes its own, shares nothing.
        if !exact && mutation.is_some_and(|m| tracking.queried().contains_key(m)) {
            return f(report);
        }
        let key = format!(
            "{label}|{}|seed {}|quick {}|{:?}|{:?}",
            serde_json::to_string(args).expect("memo: arguments serialise"),
            self.seed,
            self.quick,
            self.backend,
            self.params,
        );
        let slot = slot(&key);
        let mut state = lock(&slot.state);
        loop {
            match &*state {
                State::Done(e) => {
                    if mutation.is_some_and(|m| e.during.contains(m)) {
                        drop(state);
                        return f(report);
                    }
                    let value = e
                        .value
                        .downcast_ref::<T>()
                        .unwrap_or_else(|| panic!("memo: {label} asked for with two types"))
                        .clone();
                    if report.backend.is_none() || report.backend == e.backend_before {
                        report.backend.clone_from(&e.backend_after);
                    }
                    tracking.hits.fetch_add(1, Ordering::Relaxed);
                    SERVED.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
                State::Pending if rayon::current_thread_index().is_some() => {
                    drop(state);
                    return f(report);
                }
                State::Pending => {
                    state = slot.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                State::Empty => {
                    *state = State::Pending;
                    break;
                }
            }
        }
        drop(state);
        let mut claim = Claim {
            slot: &slot,
            filled: false,
        };
        let before = tracking.queried();
        let backend_before = report.backend.clone();
        COMPUTED.fetch_add(1, Ordering::Relaxed);
        let value = f(report)?;
        let during: BTreeSet<String> = tracking
            .queried()
            .into_iter()
            .filter(|(k, n)| before.get(k) != Some(n))
            .map(|(k, _)| k)
            .collect();
        if mutation.is_none_or(|m| !during.contains(m)) {
            *lock(&slot.state) = State::Done(Arc::new(Entry {
                value: Arc::new(value.clone()),
                during,
                backend_before,
                backend_after: report.backend.clone(),
            }));
            claim.filled = true;
            slot.ready.notify_all();
        }
        drop(claim);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnflow::config::BackendChoice;

    /// A setup that shares, with `mutation`.
    fn sharing(mutation: Option<&str>) -> Setup {
        let s = Setup {
            quick: true,
            seed: 0x5eed_0e0e,
            backend: BackendChoice::Cpu,
            mutate: mutation.map(String::from),
            ..Setup::new("unused")
        };
        s.applied.set_share(true);
        s
    }

    /// A simulation that asks about "in-sim" and counts how often it runs.
    fn sim(setup: &Setup, report: &mut Report, runs: &AtomicUsize, label: &str) -> Result<f64> {
        setup.memo(report, label, &[1, 2, 3], |report| {
            runs.fetch_add(1, Ordering::SeqCst);
            report.backend = Some("test backend".into());
            std::thread::sleep(std::time::Duration::from_millis(30));
            Ok(if setup.mutated("in-sim") { -1.0 } else { 1.0 })
        })
    }

    #[test]
    fn a_mutation_asked_during_the_simulation_recomputes_one_not_asked_is_served() {
        let runs = AtomicUsize::new(0);
        let label = "memo-test/mutations";
        let mut r = Report::default();
        let plain = sharing(None);
        assert_eq!(sim(&plain, &mut r, &runs, label).unwrap(), 1.0);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(plain.applied.memo_counts(), (0, 1));

        // Asked during the simulation: computed again, with the mutated answer.
        let m = sharing(Some("in-sim"));
        let mut rm = Report::default();
        assert_eq!(sim(&m, &mut rm, &runs, label).unwrap(), -1.0);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(m.applied.memo_counts(), (0, 1));
        // ... and it did not replace the unmutated entry.
        let again = sharing(None);
        assert_eq!(
            sim(&again, &mut Report::default(), &runs, label).unwrap(),
            1.0
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        // Never asked during the simulation: served, with the backend line restored.
        let a = sharing(Some("analysis-only"));
        let mut ra = Report::default();
        assert_eq!(sim(&a, &mut ra, &runs, label).unwrap(), 1.0);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(a.applied.memo_counts(), (1, 1));
        assert_eq!(ra.backend.as_deref(), Some("test backend"));

        // Asked before the request (its inputs may differ): computed, not served ...
        let b = sharing(Some("analysis-only"));
        assert!(b.mutated("analysis-only"));
        assert_eq!(sim(&b, &mut Report::default(), &runs, label).unwrap(), 1.0);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(b.applied.memo_counts(), (0, 1));
        // ... unless every input is in the key (memo_with): then served.
        let pure = |s: &Setup, _: &mut Report, x: &f64| -> Result<f64> {
            Ok(if s.mutated("in-sim") { -x } else { *x })
        };
        let plain = sharing(None);
        assert_eq!(
            plain
                .memo_with(&mut r, "memo-test/with", &2.5, pure)
                .unwrap(),
            2.5
        );
        assert_eq!(plain.applied.memo_counts(), (0, 1));
        let c = sharing(Some("analysis-only"));
        assert!(c.mutated("analysis-only"));
        assert_eq!(
            c.memo_with(&mut r, "memo-test/with", &2.5, pure).unwrap(),
            2.5
        );
        assert_eq!(c.applied.memo_counts(), (1, 1));
        let d = sharing(Some("in-sim"));
        assert_eq!(
            d.memo_with(&mut r, "memo-test/with", &2.5, pure).unwrap(),
            -2.5
        );
        assert_eq!(d.applied.memo_counts(), (0, 1));
        assert_eq!(
            plain
                .memo_with(&mut r, "memo-test/with", &2.0, pure)
                .unwrap(),
            2.0
        );
        assert_eq!(plain.applied.memo_counts(), (0, 2));

        // Another seed is another simulation; a run that does not share never uses the memo.
        let other = Setup {
            seed: 7,
            ..sharing(None)
        };
        sim(&other, &mut Report::default(), &runs, label).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        let private = sharing(None);
        private.applied.set_share(false);
        sim(&private, &mut Report::default(), &runs, label).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 5);
        assert_eq!(private.applied.memo_counts(), (0, 0));
    }

    #[test]
    fn concurrent_unmutated_requests_compute_once() {
        let runs = AtomicUsize::new(0);
        let label = "memo-test/concurrent";
        let values: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let runs = &runs;
                    s.spawn(move || {
                        // Half of them mutated in a way the simulation never asks about.
                        let setup = sharing(if i % 2 == 0 { None } else { Some("analysis") });
                        let mut r = Report::default();
                        let v = sim(&setup, &mut r, runs, label).unwrap();
                        assert_eq!(r.backend.as_deref(), Some("test backend"));
                        v
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(values, vec![1.0; 6]);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_computation_leaves_the_next_request_to_compute() {
        let label = "memo-test/failure";
        let setup = sharing(None);
        let e = setup
            .memo(&mut Report::default(), label, &(), |_| -> Result<u8> {
                Err(attnflow::error::input("deliberate"))
            })
            .unwrap_err();
        assert!(e.to_string().contains("deliberate"), "{e}");
        let v = setup
            .memo(&mut Report::default(), label, &(), |_| Ok(4u8))
            .unwrap();
        assert_eq!(v, 4);
    }
}
