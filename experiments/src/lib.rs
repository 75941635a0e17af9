//! Experiments that reproduce the research (docs/model.md §4-5): each runs one study
//! end to end from a seed and writes `summary.json` (measured quantities, fitted exponents with
//! standard errors, the theory's prediction beside them, qualitative checks, the resolved
//! configuration), the raw data as CSV and PNG figures into its output folder.
//!
//! Every experiment has a `quick` size (under a minute on the CPU; CI runs it and asserts the
//! `checks`) and a default size meant for a GPU.
//!
//! Each experiment is a folder: `mod.rs` (its `run`: orchestration, the typed summary and the
//! checks), `sizes.rs` (the quick and default sizes), `simulate.rs` (the simulations, which
//! produce raw measurements), `analyse.rs` (fits and theory beside the measurements: pure
//! functions, tested on synthetic data) and `figures.rs` (CSV and PNG) where it has enough of
//! them. The charts are drawn by [`attnflow::figures`], the statistics by [`attnflow::stats`].

pub mod chaos;
pub mod clustering;
pub mod critical_scaling;
pub mod empirical_bayes;
pub mod homogenisation;
pub mod integrator_order;
pub mod kde_modes;
pub mod lost_in_the_middle;
pub mod memo;
pub mod metastability;
pub mod params;
pub mod perceptron_equilibria;
pub mod phase_diagram;
pub mod selectivity;
pub mod synchronisation;
pub mod transport;
pub mod value_spectrum;

#[cfg(test)]
mod mutations;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use attnflow::config::BackendChoice;
use attnflow::error::{Result, file_error, input};
use attnflow::figures;
use attnflow::integrate::{Backend, Integrator};
use attnflow::jobs::driver::{self, StepLoop as _};
use attnflow::model::{Model, Shape};
use attnflow::output::{Kind, Output};
use attnflow::run::Progress;
pub use memo::Tracking;

/// One study: its name on the command line, its parameters (the quick or default size, each
/// settable with `--set KEY=VALUE`), its deliberate errors (`--mutate`) and its `run`.
#[derive(Clone, Copy)]
pub struct Experiment {
    pub name: &'static str,
    /// The quick (`true`) or default size as the map of parameter names to values that
    /// summary.json's `config` starts from and `--set` replaces.
    pub parameters: fn(quick: bool) -> Map<String, Value>,
    /// The deliberate errors the experiment knows (see [`Setup::mutate`]): a wrong rule, a
    /// wrong sign, a missing term. With each, at least one of its checks must fail.
    pub mutations: &'static [&'static str],
    /// The declared type and range of every parameter ([`params`]): each value is checked
    /// against it before any work.
    pub params: &'static [params::Param],
    /// The checks of a combination of parameters (memory estimate, step counts, constraints
    /// between parameters), before any work.
    pub check: fn(&Map<String, Value>) -> Result<()>,
    /// Runs the study into `setup.out`, filling the report.
    pub run: fn(&Setup, &mut Report) -> Result<()>,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("name", &self.name)
            .field("mutations", &self.mutations)
            .finish_non_exhaustive()
    }
}

macro_rules! experiment {
    ($name:literal, $module:ident) => {
        Experiment {
            name: $name,
            parameters: |quick| fields(&$module::sizes::Sizes::new(quick)),
            mutations: $module::MUTATIONS,
            params: $module::sizes::PARAMS,
            check: |map| {
                let sizes: $module::sizes::Sizes =
                    serde_json::from_value(Value::Object(map.clone()))
                        .map_err(|e| input(format!("--set: {e}")))?;
                sizes.check()
            },
            run: $module::run,
        }
    };
}

/// The experiments, in the order of the issue.
pub const EXPERIMENTS: &[Experiment] = &[
    experiment!("clustering", clustering),
    experiment!("metastability", metastability),
    experiment!("phase-diagram", phase_diagram),
    experiment!("critical-scaling", critical_scaling),
    experiment!("selectivity", selectivity),
    experiment!("chaos", chaos),
    experiment!("lost-in-the-middle", lost_in_the_middle),
    experiment!("integrator-order", integrator_order),
    experiment!("kde-modes", kde_modes),
    experiment!("homogenisation", homogenisation),
    experiment!("empirical-bayes", empirical_bayes),
    experiment!("synchronisation", synchronisation),
    experiment!("value-spectrum", value_spectrum),
    experiment!("transport", transport),
    experiment!("perceptron-equilibria", perceptron_equilibria),
];

/// The experiment called `name`, or an error that lists them.
pub fn find(name: &str) -> Result<&'static Experiment> {
    EXPERIMENTS.iter().find(|e| e.name == name).ok_or_else(|| {
        input(format!(
            "unknown experiment '{name}': one of {}",
            names().join(", ")
        ))
    })
}

/// The experiments' names, in the order of [`EXPERIMENTS`].
pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|e| e.name).collect()
}

/// What every experiment gets: where to write, which size, the seed, the backend.
#[derive(Clone, Debug)]
pub struct Setup {
    pub out: PathBuf,
    /// Replace an earlier experiment's files in `out` (see `output::Output`).
    pub force: bool,
    pub quick: bool,
    pub seed: u64,
    pub backend: BackendChoice,
    /// Print progress lines to stderr.
    pub progress: bool,
    /// The command line (or library call) recorded in the provenance.
    pub command: String,
    /// Parameters set by the user (`--set KEY=VALUE`), replacing those of the quick or
    /// default size: see [`Setup::sizes`].
    pub params: BTreeMap<String, String>,
    /// A deliberate error in the physics (`--mutate NAME`, one of the experiment's
    /// [`mutations`]): a test that at least one check of the experiment then fails.
    pub mutate: Option<String>,
    /// What the run records about itself, shared by the clones of this setup ([`Tracking`]):
    /// whether it applied `params` (see [`Setup::sizes`]: parameters that no sizes took are
    /// an error, never silently ignored), which mutations it asked about, and whether its
    /// simulations may be shared through the memo ([`Setup::memo`], tests only; off by
    /// default). The field keeps its name so that the struct literals of the CLI and Python
    /// (`applied: Default::default()`) stand.
    pub applied: std::sync::Arc<Tracking>,
}

/// What an experiment reports: it fills these maps and names the files it wrote.
#[derive(Debug, Default)]
pub struct Report {
    /// Parameters actually used (sizes, betas, times).
    pub config: Map<String, Value>,
    /// Measured quantities and fits.
    pub measured: Map<String, Value>,
    /// What the theory predicts for them.
    pub prediction: Map<String, Value>,
    /// The checks by name, each a typed [`Check`] (a measured value, its test and band, the
    /// wrong model it rejects): summary.json's `checks` (their outcomes) and `check_details`.
    /// [`Report::band_check`] is the only way in, so no check is a bare boolean.
    checks: BTreeMap<String, Check>,
    pub files: Vec<String>,
    /// The backend that ran (with the fallback note, if any).
    pub backend: Option<String>,
    /// Checks labelled smoke at this size: name -> why.
    smoke: BTreeMap<String, String>,
}

impl Report {
    pub fn config(&mut self, key: &str, v: impl serde::Serialize) {
        self.config.insert(key.into(), json!(v));
    }
    pub fn measured(&mut self, key: &str, v: impl serde::Serialize) {
        self.measured.insert(key.into(), json!(v));
    }
    pub fn prediction(&mut self, key: &str, v: impl serde::Serialize) {
        self.prediction.insert(key.into(), json!(v));
    }

    /// Records a typed check (its outcome is summary.json's `checks`, the rest
    /// `check_details`); returns whether it passed.
    pub fn band_check(&mut self, key: &str, c: Check) -> bool {
        let pass = c.pass;
        self.checks.insert(key.into(), c);
        pass
    }
    /// Labels the check `key` a smoke check (not evidence) at this size, saying why.
    pub fn smoke(&mut self, key: &str, why: impl Into<String>) {
        self.smoke.insert(key.into(), why.into());
    }

    /// Labels the check `key` smoke at the quick size (evidence at the default size).
    pub fn smoke_at_quick(&mut self, setup: &Setup, key: &str, why: &str) {
        if setup.quick {
            self.smoke(key, why);
        }
    }

    /// summary.json's `checks`: the outcome of every check by name.
    pub fn checks(&self) -> Map<String, Value> {
        self.checks
            .iter()
            .map(|(k, c)| (k.clone(), Value::Bool(c.pass)))
            .collect()
    }

    /// summary.json's `check_details`: every check with its band, whether it is evidence and
    /// the wrong model it rejects.
    pub fn check_details(&self) -> Map<String, Value> {
        for k in self.smoke.keys() {
            assert!(self.checks.contains_key(k), "smoke label for no check: {k}");
        }
        self.checks
            .iter()
            .map(|(k, c)| {
                let c = match self.smoke.get(k) {
                    Some(why) => c.clone().smoke_if(true, why.clone()),
                    None => c.clone(),
                };
                (k.clone(), json!(c))
            })
            .collect()
    }

    /// Adds every field of a typed summary (a struct that serialises to a JSON object) to the
    /// configuration. The maps keep their keys sorted, so summary.json does not depend on the
    /// order in which fields are declared or added.
    pub fn add_config(&mut self, v: &impl serde::Serialize) {
        self.config.extend(fields(v));
    }
    /// Adds every field of a typed summary to the measured quantities.
    pub fn add_measured(&mut self, v: &impl serde::Serialize) {
        self.measured.extend(fields(v));
    }
    /// Adds every field of a typed summary to the predictions.
    pub fn add_prediction(&mut self, v: &impl serde::Serialize) {
        self.prediction.extend(fields(v));
    }
}

/// How a check's band is built (summary.json `check_details`, docs/experiments.md): a
/// statistical part, k standard errors resampled over independent units (starts, seeds,
/// contexts), and a systematic part that only a derivation or a scan may supply.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Band {
    /// Standard errors in the band (3 unless the check says why).
    pub k: f64,
    /// The standard error of `measured - prediction`.
    pub se: f64,
    /// What the standard error was resampled over, and whether it is paired.
    pub se_from: String,
    /// k * se.
    pub statistical: f64,
    /// The systematic part of the band (0 when there is none).
    pub systematic: f64,
    /// Where the systematic part comes from: a derivation or a scan, or "none".
    pub systematic_from: String,
    /// statistical + systematic.
    pub half_width: f64,
}

impl Band {
    /// k standard errors resampled over `from`, no systematic part.
    pub fn stat(k: f64, se: f64, from: impl Into<String>) -> Self {
        Band {
            k,
            se,
            se_from: from.into(),
            statistical: k * se,
            systematic: 0.0,
            systematic_from: "none".into(),
            half_width: k * se,
        }
    }
    /// A band with no statistical part (an exact comparison or a fixed threshold).
    pub fn exact(tolerance: f64, from: impl Into<String>) -> Self {
        Band::stat(0.0, 0.0, "none (deterministic)").plus(tolerance, from)
    }
    /// Adds a systematic part of size `s` that `from` (a derivation or a scan) predicts.
    pub fn plus(mut self, s: f64, from: impl Into<String>) -> Self {
        self.systematic = s;
        self.systematic_from = from.into();
        self.half_width = self.statistical + s;
        self
    }
}

/// Gaussian elimination with partial pivoting (a ridge of 1e-12 keeps it regular).
pub fn solve<const K: usize>(mut a: [[f64; K]; K], mut b: [f64; K]) -> [f64; K] {
    let scale = (0..K).map(|k| a[k][k]).fold(0.0, f64::max).max(1e-300);
    for (k, row) in a.iter_mut().enumerate() {
        row[k] += 1e-12 * scale;
    }
    for c in 0..K {
        let piv = (c..K)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..K {
            let (upper, lower) = a.split_at_mut(r);
            let (pivot, row) = (&upper[c], &mut lower[0]);
            let f = row[c] / pivot[c];
            for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; K];
    for c in (0..K).rev() {
        let s: f64 = (c + 1..K).map(|k| a[c][k] * x[k]).sum();
        x[c] = (b[c] - s) / a[c][c];
    }
    x
}

/// Weighted least squares: the K coefficients c minimising sum_i w_i (y_i - rows_i . c)^2,
/// by the normal equations ([`solve`]), for a handful of regressors.
pub fn least_squares<const K: usize>(rows: &[[f64; K]], y: &[f64], w: &[f64]) -> [f64; K] {
    let mut a = [[0.0; K]; K];
    let mut b = [0.0; K];
    for ((r, &y), &w) in rows.iter().zip(y).zip(w) {
        for i in 0..K {
            for j in 0..K {
                a[i][j] += w * r[i] * r[j];
            }
            b[i] += w * r[i] * y;
        }
    }
    // Each column scaled to unit norm first, so that the ridge of `solve` is relative to
    // every column and not only the largest.
    let s: [f64; K] = std::array::from_fn(|i| a[i][i].sqrt().max(f64::MIN_POSITIVE));
    for i in 0..K {
        for j in 0..K {
            a[i][j] /= s[i] * s[j];
        }
        b[i] /= s[i];
    }
    let c = solve(a, b);
    std::array::from_fn(|i| c[i] / s[i])
}

/// The jackknife standard error of an estimate from its leave-one-out replicates (one per
/// independent unit left out): sqrt((m - 1) / m * sum (r - mean)^2).
pub fn jackknife_se(reps: &[f64]) -> f64 {
    let m = reps.len() as f64;
    let mean = reps.iter().sum::<f64>() / m;
    ((m - 1.0) / m * reps.iter().map(|r| (r - mean).powi(2)).sum::<f64>()).sqrt()
}

/// The standard error of the log-log slope of the mean over independent units against `x`,
/// by the jackknife over the units: `value(unit, k)` is that unit's value at x[k]; each
/// replicate leaves one unit out of the mean (summed over the others in order).
/// kde-modes (units: draws) and homogenisation (units: runs) use it.
pub fn jackknife_loglog_slope_se(
    x: &[f64],
    units: usize,
    value: impl Fn(usize, usize) -> f64,
) -> f64 {
    let slopes: Vec<f64> = (0..units)
        .map(|leave| {
            let mean: Vec<f64> = (0..x.len())
                .map(|k| {
                    (0..units)
                        .filter(|&u| u != leave)
                        .map(|u| value(u, k))
                        .sum::<f64>()
                        / (units - 1) as f64
                })
                .collect();
            attnflow::stats::fit_loglog(x, &mean).slope
        })
        .collect();
    jackknife_se(&slopes)
}

/// The k of a band whose standard error is estimated from `units` independent units: the
/// Student-t quantile with units - 1 degrees of freedom at the two-sided level of 3 normal
/// standard errors (99.73%), by the Cornish-Fisher expansion to 1/nu^3 (within 1% for
/// nu >= 7, tested): 4.5 for 8 units, 3.6 for 16, 3 as units grow.
pub fn student_k(units: usize) -> f64 {
    let nu = units.saturating_sub(1).max(1) as f64;
    let z: f64 = 3.0;
    z + (z.powi(3) + z) / (4.0 * nu)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * nu * nu)
        + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / (384.0 * nu.powi(3))
}

/// The standard normal upper tail P(Z > z) (erfc by its Chebyshev fit, relative error below
/// 1.2e-7: Numerical Recipes' erfcc).
pub fn normal_upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let erfc = if x >= 0.0 { y } else { 2.0 - y };
    0.5 * erfc
}

/// The k of each band in a family of `m` independent comparisons judged together (a check
/// that holds only if all m hold, "worst of m"): the k at which the chance that any of the m
/// exceeds its band is that of one comparison at 3 standard errors (0.27%), i.e.
/// 1 - (1 - 2 P(Z > k))^m = 2 P(Z > 3) (Sidak). 3 for m = 1, 3.32 for 3, 3.75 for 15.
pub fn family_k(m: usize) -> f64 {
    let single = 2.0 * normal_upper_tail(3.0);
    let each = 1.0 - (1.0 - single).powf(1.0 / m.max(1) as f64);
    let (mut lo, mut hi) = (0.0_f64, 12.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if 2.0 * normal_upper_tail(mid) > each {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// What a check tests of `measured` against `prediction` with its band w.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// |measured - prediction| <= w.
    Within,
    /// measured > prediction + w (significantly above).
    Above,
    /// measured < prediction - w (significantly below).
    Below,
    /// measured >= prediction - w (not significantly below).
    AtLeast,
    /// measured <= prediction + w (not significantly above).
    AtMost,
}

/// One typed check of summary.json's `check_details`: a measured number against a
/// prediction with a [`Band`], whether it is evidence or a smoke check, and the wrong models
/// (the experiment's `--mutate` names) it rejects.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub pass: bool,
    /// What is measured (one line).
    pub quantity: String,
    pub measured: f64,
    pub prediction: f64,
    pub test: Test,
    pub band: Band,
    /// Evidence (a wrong model fails it at this size) or a smoke check (`false`: it shows the
    /// run behaves, but no wrong model of the study fails it at this size).
    pub evidence: bool,
    /// The `--mutate` names of the wrong models this check is meant to reject.
    pub rejects: Vec<String>,
    /// The wrong model in words (or why the check is only smoke).
    pub wrong_model: String,
    /// How many comparisons the check aggregates (it shows its worst one).
    pub points: usize,
}

impl Check {
    /// A check of `measured` against `prediction` within `band`; evidence by default.
    pub fn new(
        quantity: impl Into<String>,
        measured: f64,
        test: Test,
        prediction: f64,
        band: Band,
    ) -> Self {
        let w = band.half_width;
        // A band or a value that is not a finite number (too few points for an error) fails.
        let pass = w.is_finite()
            && measured.is_finite()
            && match test {
                Test::Within => (measured - prediction).abs() <= w,
                Test::Above => measured > prediction + w,
                Test::Below => measured < prediction - w,
                Test::AtLeast => measured >= prediction - w,
                Test::AtMost => measured <= prediction + w,
            };
        Check {
            pass,
            quantity: quantity.into(),
            measured,
            prediction,
            test,
            band,
            evidence: true,
            rejects: Vec::new(),
            wrong_model: String::new(),
            points: 1,
        }
    }
    /// The wrong models it rejects: `--mutate` names and the model in words.
    pub fn rejects(mut self, mutations: &[&str], wrong_model: impl Into<String>) -> Self {
        self.rejects = mutations.iter().map(|m| m.to_string()).collect();
        self.wrong_model = wrong_model.into();
        self
    }
    /// Marks the check smoke (not evidence) when `smoke` holds, saying why.
    pub fn smoke_if(mut self, smoke: bool, why: impl Into<String>) -> Self {
        if smoke {
            self.evidence = false;
            let why = why.into();
            self.wrong_model = if self.wrong_model.is_empty() {
                format!("smoke: {why}")
            } else {
                format!("{} (smoke: {why})", self.wrong_model)
            };
        }
        self
    }
    /// How far outside its band the check is, in half-widths (> 1 fails for `Within`).
    fn badness(&self) -> f64 {
        let dev = match self.test {
            Test::Within => (self.measured - self.prediction).abs(),
            Test::Above | Test::AtLeast => self.prediction - self.measured,
            Test::Below | Test::AtMost => self.measured - self.prediction,
        };
        let w = self.band.half_width;
        if w > 0.0 {
            dev / w
        } else if dev > 0.0 {
            f64::INFINITY
        } else {
            dev
        }
    }
    /// Many comparisons as one check: it passes when all pass, and shows the worst one (a
    /// failing one first). None for an empty list.
    pub fn all(checks: Vec<Check>) -> Option<Check> {
        let points = checks.len();
        let pass = checks.iter().all(|c| c.pass);
        let mut worst = checks.into_iter().max_by(|a, b| {
            (!a.pass, a.badness())
                .partial_cmp(&(!b.pass, b.badness()))
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
        worst.pass = pass;
        worst.points = points;
        Some(worst)
    }
}

/// One line per check of a summary.json (its `checks` and `check_details`), as
/// `attnflow experiment` prints them: yes or NO, the measured value against the prediction and
/// its band (statistical and systematic parts), evidence or smoke, and the wrong model it
/// rejects.
pub fn check_lines(summary: &Value) -> Vec<String> {
    let details = summary["check_details"].as_object();
    let mut lines = Vec::new();
    for (k, ok) in summary["checks"].as_object().into_iter().flatten() {
        let mut s = format!(
            "check {k}: {}",
            if ok.as_bool() == Some(true) {
                "yes"
            } else {
                "NO"
            }
        );
        let d = details
            .and_then(|d| d.get(k))
            .cloned()
            .unwrap_or(Value::Null);
        let b = &d["band"];
        if b.is_object() {
            let num = |v: &Value| v.as_f64().map(fmt_num).unwrap_or_else(|| "?".into());
            let op = d["test"].as_str().unwrap_or("within").replace('_', " ");
            s += &format!(
                ": {} {} {op} {} +- {} ({} se of {} over {}",
                d["quantity"].as_str().unwrap_or("measured"),
                num(&d["measured"]),
                num(&d["prediction"]),
                num(&b["half_width"]),
                num(&b["k"]),
                num(&b["se"]),
                b["se_from"].as_str().unwrap_or("?"),
            );
            if b["systematic"].as_f64().unwrap_or(0.0) > 0.0 {
                s += &format!(
                    "; systematic {} from {}",
                    num(&b["systematic"]),
                    b["systematic_from"].as_str().unwrap_or("?")
                );
            }
            s += ")";
            if let Some(p) = d["points"].as_u64().filter(|&p| p > 1) {
                s += &format!(", worst of {p}");
            }
        } else {
            s += " (no band)";
        }
        s += if d["evidence"].as_bool() == Some(false) {
            "; smoke"
        } else {
            "; evidence"
        };
        if let Some(w) = d["wrong_model"].as_str().filter(|w| !w.is_empty()) {
            s += &format!("; rejects: {w}");
        }
        let rejects: Vec<&str> = d["rejects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        if !rejects.is_empty() {
            s += &format!(" [--mutate {}]", rejects.join(", "));
        }
        lines.push(s);
    }
    lines
}

/// A number in a check line: 4 significant digits.
fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    }
}

/// The keys of a map, comma-separated.
fn map_keys(m: &Map<String, Value>) -> String {
    m.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The fields of a value that serialises to a JSON object.
pub fn fields(v: &impl serde::Serialize) -> Map<String, Value> {
    match serde_json::to_value(v).expect("a summary serialises") {
        Value::Object(m) => m,
        other => panic!("a summary is a JSON object, not {other}"),
    }
}

/// The parameters `base` with the user's `--set KEY=VALUE` applied: a value is read as JSON
/// (`2`, `0.5`, `true`, `[1, 2]`), a list may also be written `8,128`, and anything else is a
/// string. An unknown key is an error that names the parameters.
pub fn apply(
    mut map: Map<String, Value>,
    params: &BTreeMap<String, String>,
) -> Result<Map<String, Value>> {
    let known = map_keys(&map);
    for (key, text) in params {
        let Some(old) = map.get(key) else {
            return Err(input(format!(
                "--set {key}: this experiment has no parameter '{key}'; it has: {known}"
            )));
        };
        let parse = |t: &str| -> Value {
            serde_json::from_str(t.trim()).unwrap_or_else(|_| Value::String(t.trim().into()))
        };
        let value = match old {
            Value::Array(_) if !text.trim_start().starts_with('[') => {
                Value::Array(text.split(',').map(parse).collect())
            }
            Value::String(_) => Value::String(text.clone()),
            _ => parse(text),
        };
        map.insert(key.clone(), value);
    }
    Ok(map)
}

/// Checks the parameters an experiment would run with (its quick or default size with the
/// user's `--set` applied) before any work: every value against its declared range, then
/// the memory estimate, the step counts and the constraints between parameters.
pub fn check_params(
    experiment: &Experiment,
    quick: bool,
    params: &BTreeMap<String, String>,
) -> Result<()> {
    check_params_typed(experiment, quick, params).map_err(|r| r.error)
}

/// [`check_params`], telling a value of the wrong type from one out of range (Python raises
/// TypeError for the first, ValueError for the second).
pub fn check_params_typed(
    experiment: &Experiment,
    quick: bool,
    params: &BTreeMap<String, String>,
) -> std::result::Result<(), params::Refusal> {
    let refusal = |error| params::Refusal {
        wrong_type: false,
        error,
    };
    // A name the experiment does not take is a wrong keyword (TypeError in Python).
    let map = apply((experiment.parameters)(quick), params).map_err(|error| params::Refusal {
        wrong_type: true,
        error,
    })?;
    params::check_typed(experiment.name, experiment.params, &map)?;
    (experiment.check)(&map).map_err(refusal)
}

impl Setup {
    /// A setup with the defaults of the CLI: default size, seed 0, `auto`, no progress, no
    /// parameters set, no mutation.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Setup {
            out: out.into(),
            force: false,
            quick: false,
            seed: 0,
            backend: BackendChoice::Auto,
            progress: false,
            command: String::new(),
            params: BTreeMap::new(),
            mutate: None,
            applied: Default::default(),
        }
    }

    /// Whether the deliberate error `name` is asked for. Every study reads its mutation through
    /// this (never `mutate` directly): the query is recorded, which tells the memo
    /// ([`Setup::memo`]) which simulations a mutation can reach.
    pub fn mutated(&self, name: &str) -> bool {
        self.applied.record(name);
        self.mutate.as_deref() == Some(name)
    }

    /// Q = K = V = I in dimension d, or, under the mutation `repel` (the wrong sign of the
    /// interaction), V = -I: every token pushed away from the weighted mean of the others.
    pub fn identity_weights(&self, d: usize, repel: &str) -> attnflow::model::weights::Weights {
        let mut weights = attnflow::model::weights::Weights::identity(d);
        if self.mutated(repel) {
            weights.v.iter_mut().for_each(|v| *v = -*v);
        }
        weights
    }

    /// The same setup, sharing its simulations through the memo ([`Setup::memo`]).
    pub fn shared(self) -> Self {
        self.applied.set_share(true);
        self
    }

    /// The experiment's sizes and physical parameters: `base` (its quick or default size) with
    /// the user's `--set KEY=VALUE` applied. `base` serialises to a JSON object whose keys are
    /// the parameter names; a value is read as JSON (`2`, `0.5`, `true`, `[1, 2]`), a list may
    /// also be written `8,128`, and anything else is a string. An unknown key or a value of the
    /// wrong type is an error that names the parameters.
    pub fn sizes<T: serde::Serialize + serde::de::DeserializeOwned>(&self, base: T) -> Result<T> {
        self.applied
            .applied
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if self.params.is_empty() {
            return Ok(base);
        }
        let map = apply(fields(&base), &self.params)?;
        serde_json::from_value(Value::Object(map)).map_err(|e| {
            input(format!(
                "--set: {e} (parameters: {})",
                map_keys(&fields(&base))
            ))
        })
    }

    /// A path in the output folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// Writes a CSV file (header + rows of numbers) and records it.
    pub fn csv(
        &self,
        report: &mut Report,
        name: &str,
        header: &[&str],
        rows: &[Vec<f64>],
    ) -> Result<()> {
        let mut w = attnflow::csv::CsvWriter::create(&self.path(name), &header.join(","))?;
        for row in rows {
            w.numbers(row)?;
        }
        w.finish()?;
        report.files.push(name.into());
        Ok(())
    }

    /// Draws a line chart (see [`figures::lines`]) into the output folder and records it.
    pub fn lines(
        &self,
        report: &mut Report,
        name: &str,
        axes: &figures::Axes,
        series: &[figures::Series],
    ) -> Result<()> {
        figures::lines(&self.path(name), axes, series)?;
        report.files.push(name.into());
        Ok(())
    }

    pub fn say(&self, msg: &str) {
        if self.progress {
            eprintln!("  {msg}");
        }
    }
}

/// Runs experiment `name`, writes `summary.json` and returns it. The folder is locked and its
/// files staged: they appear in `setup.out` only when the experiment succeeds.
pub fn run(name: &str, setup: &Setup) -> Result<Value> {
    let start = std::time::Instant::now();
    let started = attnflow::output::unix_now();
    let experiment = find(name)?;
    if let Some(m) = &setup.mutate
        && !experiment.mutations.contains(&m.as_str())
    {
        return Err(input(format!(
            "--mutate {m}: {name} knows the mutations: {}",
            experiment.mutations.join(", ")
        )));
    }
    // Every refusal of the parameters comes before the folder is touched.
    check_params(experiment, setup.quick, &setup.params)?;
    let output = Output::open(&setup.out, Kind::Experiment, setup.force, &[])?;
    let staged = Setup {
        out: output.staging().to_path_buf(),
        ..setup.clone()
    };
    let setup = &staged;
    let mut report = Report::default();
    (experiment.run)(setup, &mut report)?;
    if !setup.params.is_empty()
        && !setup
            .applied
            .applied
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(input(format!(
            "--set: {name} takes no parameters (it ignored {})",
            setup.params.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let summary = json!({
        "experiment": name,
        "quick": setup.quick,
        "seed": setup.seed,
        "backend": report.backend.clone().unwrap_or_else(|| setup.backend.name().into()),
        "config": report.config,
        "measured": report.measured,
        "prediction": report.prediction,
        "checks": report.checks(),
        "check_details": report.check_details(),
        "files": report.files,
        "params": setup.params,
        "mutation": setup.mutate,
        "provenance": attnflow::output::Provenance::finished(
            setup.backend.name(),
            report.backend.clone().unwrap_or_else(|| setup.backend.name().into()),
            started,
            start.elapsed().as_secs_f64(),
            &setup.command,
        ),
    });
    let path = setup.path("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("json"))
        .map_err(|e| file_error(&path, e))?;
    output.commit()?;
    Ok(summary)
}

pub use attnflow::stats::{Fit, fit_line, fit_loglog};

/// A backend for a simulation (the experiment's `--backend`), recording what ran.
pub fn backend(
    setup: &Setup,
    report: &mut Report,
    model: &Model,
    shape: Shape,
    x0: &[f64],
) -> Result<Box<dyn Backend>> {
    let chosen = attnflow::backend::build_dynamics(setup.backend, model, shape, x0)?;
    if report.backend.is_none() {
        if let Some(note) = &chosen.note {
            setup.say(&format!("note: {note}"));
        }
        report.backend = Some(chosen.backend.describe());
    }
    Ok(chosen.backend)
}

/// Integrates `steps` steps of size h from x0 and calls `observe(step, state)` at step 0 and
/// after every step listed in `at` (sorted). Returns the final state. The loop is the one step
/// driver's (`attnflow::jobs::driver`): the state is read and checked at the steps listed.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    setup: &Setup,
    report: &mut Report,
    model: &Model,
    shape: Shape,
    x0: &[f64],
    integrator: Integrator,
    h: f64,
    at: &[usize],
    mut observe: impl FnMut(usize, &[f64]),
) -> Result<Vec<f64>> {
    let b = backend(setup, report, model, shape, x0)?;
    let stepper = attnflow::integrate::Stepper::new(model, integrator)?;
    let mut sim = Simulation {
        backend: b,
        stepper,
        h,
        at,
        state: x0.to_vec(),
        observe: &mut observe,
    };
    sim.stepper.prepare(sim.backend.as_mut())?;
    (sim.observe)(0, x0);
    // Step 0 listed: the state as the backend holds it, before any step.
    for _ in at.iter().take_while(|&&s| s == 0) {
        sim.check_finite(0, 0)?;
        (sim.observe)(0, &sim.state);
    }
    let schedule = driver::Schedule {
        first: 0,
        steps: at.last().copied().unwrap_or(0),
        metrics_every: 0,
        saves: driver::Saves::At(at),
        checkpoint_every: Some(0),
        check_every_step: false,
    };
    let mut lines = Lines {
        setup,
        total: 0,
        every: 1,
        next_report: 0,
        started: std::time::Instant::now(),
    };
    driver::drive(&schedule, &mut lines, &mut sim)?;
    Ok(sim.state)
}

/// A simulation in progress: the state read at the last step listed.
struct Simulation<'a> {
    backend: Box<dyn Backend>,
    stepper: attnflow::integrate::Stepper,
    h: f64,
    at: &'a [usize],
    state: Vec<f64>,
    observe: &'a mut dyn FnMut(usize, &[f64]),
}

impl driver::StepLoop for Simulation<'_> {
    fn step(&mut self, step: usize) -> Result<()> {
        self.stepper
            .step(self.backend.as_mut(), self.h, (step - 1) as u32)
    }

    fn check_finite(&mut self, _checked: usize, step: usize) -> Result<()> {
        self.state = self.backend.read_state()?.to_f64();
        if let Some(i) = self.state.iter().position(|v| !v.is_finite()) {
            return Err(attnflow::error::Error::NonFinite(format!(
                "coordinate {i} became {} by step {step}",
                self.state[i]
            )));
        }
        Ok(())
    }

    fn observe(&mut self, at: &driver::Boundary) -> Result<()> {
        if at.snapshot {
            // A step listed twice is observed twice.
            for _ in self.at.iter().filter(|&&s| s == at.step) {
                (self.observe)(at.step, &self.state);
            }
        }
        Ok(())
    }
}

/// Progress on long simulations: a line at every tenth of the steps (every step when there are
/// fewer than ten), once they take more than a few seconds. Few steps can be long ones: the
/// default lost-in-the-middle run takes 40 steps of 131,072 systems.
struct Lines<'a> {
    setup: &'a Setup,
    total: usize,
    every: usize,
    next_report: usize,
    started: std::time::Instant,
}

impl Progress for Lines<'_> {
    fn start(&mut self, total: u64) {
        self.total = total as usize;
        self.every = (self.total / 10).max(1);
        self.next_report = self.every;
        self.started = std::time::Instant::now();
    }

    fn step(&mut self, done: u64) {
        let (done, total) = (done as usize, self.total);
        if self.setup.progress && done >= self.next_report && done < total {
            let elapsed = self.started.elapsed().as_secs_f64();
            // Only runs longer than a few seconds are worth the lines.
            if elapsed > 3.0 {
                self.setup.say(&format!(
                    "step {done}/{total} ({:.0}%), {elapsed:.1} s, eta {:.1} s",
                    100.0 * done as f64 / total as f64,
                    elapsed * (total - done) as f64 / done as f64
                ));
            }
            self.next_report += self.every;
        }
    }
}

/// `count` step indices from 1 to `steps`, spaced evenly in log(step) (distinct, sorted,
/// always including `steps`).
pub fn log_spaced_steps(steps: usize, count: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..count)
        .map(|k| {
            let f = k as f64 / (count.max(2) - 1) as f64;
            (steps as f64).powf(f).round() as usize
        })
        .map(|s| s.clamp(1, steps))
        .collect();
    v.push(steps);
    v.sort_unstable();
    v.dedup();
    v
}

/// Checks that a folder exists or can be made.
pub fn ensure_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| file_error(path, e))
}

/// The seed of each experiment's quick unit test ([`quick_run_checked`]), which its mutation
/// tests (`mutations.rs`) run at too: the mutated runs then reuse the unmutated run's
/// simulations that their mutation does not reach ([`Setup::memo`]).
#[cfg(test)]
pub(crate) const QUICK_SEEDS: &[(&str, u64)] = &[
    ("clustering", 1),
    ("metastability", 1),
    ("phase-diagram", 1),
    ("critical-scaling", 3),
    ("selectivity", 2),
    ("chaos", 1),
    ("lost-in-the-middle", 1),
    ("integrator-order", 3),
    ("kde-modes", 0),
    ("homogenisation", 0),
    ("empirical-bayes", 0),
    ("synchronisation", 0),
    ("value-spectrum", 0),
    ("transport", 0),
    ("perceptron-equilibria", 0),
];

/// The seed of experiment `name`'s quick unit test (see [`QUICK_SEEDS`]).
#[cfg(test)]
pub(crate) fn quick_seed(name: &str) -> u64 {
    QUICK_SEEDS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} has no quick seed in QUICK_SEEDS"))
        .1
}

/// Runs experiment `name` at its quick size on the CPU from its seed ([`quick_seed`]) into a
/// temporary folder, sharing simulations through the memo, and asserts that every check in
/// its summary holds; returns the folder (keep it alive), the output path inside it and the
/// summary.
#[cfg(test)]
pub(crate) fn quick_run_checked(name: &str) -> (tempfile::TempDir, PathBuf, Value) {
    let seed = quick_seed(name);
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        out: dir.path().join("out"),
        force: false,
        quick: true,
        seed,
        backend: attnflow::config::BackendChoice::Cpu,
        progress: false,
        params: Default::default(),
        mutate: None,
        applied: Default::default(),
        command: "cargo test".into(),
    }
    .shared();
    let s = run(name, &setup).unwrap();
    let (hits, asked) = setup.applied.memo_counts();
    eprintln!(
        "{name} (unmutated, seed {seed}): {hits} of {asked} simulations served from the memo"
    );
    for (k, v) in s["checks"].as_object().unwrap() {
        assert_eq!(v.as_bool(), Some(true), "{name}: check {k} failed: {s:#}");
    }
    check_page_matches(name, seed, &s);
    let out = setup.out;
    (dir, out, s)
}

/// The page docs/experiments/checks/NAME.md: one row per check of the quick run's
/// `check_details` (issue 24: per check, the band and the wrong model it rejects).
#[cfg(test)]
fn check_page(name: &str, seed: u64, summary: &Value) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let derivation = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/experiments")
        .join(format!("{name}.md"));
    let mut out = format!(
        "# The checks of `{name}` at the quick size\n\n\
         Generated from summary.json's `check_details` of `attnflow experiment {name} --quick \
         --seed {seed} --backend cpu`: per check, its band (k standard errors \
         resampled over what, plus a systematic part and where it comes from), whether it is \
         evidence or smoke at this size, and the wrong model it rejects with the `--mutate` \
         names that experiments/src/mutations.rs runs against it. The experiment's unit test \
         fails when this page and the code disagree; \
         `ATTNFLOW_BLESS=1 cargo test --release -p attnflow-experiments --lib` rewrites it. \
         The measured values are in summary.json and printed by `attnflow experiment`{}.\n\n\
         | check | band | evidence | wrong model it rejects | `--mutate` |\n\
         | --- | --- | --- | --- | --- |\n",
        if derivation.exists() {
            format!("; the derivation is in [{name}.md](../{name}.md)")
        } else {
            String::new()
        }
    );
    for (k, d) in summary["check_details"].as_object().expect("check_details") {
        let b = &d["band"];
        assert!(b.is_object(), "{name}: check {k} has no band: {d}");
        let k_se = b["k"].as_f64().unwrap_or(0.0);
        let stat = if k_se > 0.0 {
            format!("{k_se} se over {}", b["se_from"].as_str().unwrap_or(""))
        } else {
            "no statistical part".to_string()
        };
        let band = match b["systematic_from"].as_str() {
            Some("none") | None => stat,
            Some(f) => format!("{stat} + systematic: {f}"),
        };
        let evidence = if d["evidence"].as_bool() == Some(true) {
            "evidence"
        } else {
            "smoke"
        };
        let wrong = d["wrong_model"].as_str().unwrap_or("");
        let mutate: Vec<String> = d["rejects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(|m| format!("`{m}`")))
            .collect();
        out += &format!(
            "| `{k}` | {} | {evidence} | {} | {} |\n",
            cell(&band),
            cell(if wrong.is_empty() {
                "not stated"
            } else {
                wrong
            }),
            if mutate.is_empty() {
                "-".to_string()
            } else {
                mutate.join(", ")
            }
        );
    }
    out
}

/// Asserts that docs/experiments/checks/NAME.md is [`check_page`] of this run (or writes it
/// with ATTNFLOW_BLESS=1).
#[cfg(test)]
fn check_page_matches(name: &str, seed: u64, summary: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/experiments/checks")
        .join(format!("{name}.md"));
    let want = check_page(name, seed, summary);
    if std::env::var("ATTNFLOW_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} does not match the checks of `{name} --quick` (rerun with ATTNFLOW_BLESS=1 to \
         rewrite it):\n{want}",
        path.display()
    );
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn a_check_passes_inside_its_band_and_fails_outside() {
        let band = || Band::stat(3.0, 0.01, "8 starts").plus(0.02, "a d-scan");
        assert_eq!(band().half_width, 0.05);
        let c = |m: f64, t: Test| Check::new("x", m, t, 1.0, band()).pass;
        assert!(c(1.049, Test::Within) && c(0.951, Test::Within));
        assert!(!c(1.051, Test::Within) && !c(0.949, Test::Within));
        assert!(c(1.051, Test::Above) && !c(1.049, Test::Above));
        assert!(c(0.949, Test::Below) && !c(0.951, Test::Below));
        assert!(c(0.951, Test::AtLeast) && !c(0.949, Test::AtLeast));
        assert!(c(1.049, Test::AtMost) && !c(1.051, Test::AtMost));
        // A non-finite standard error never passes.
        assert!(!Check::new("x", 1.0, Test::Within, 1.0, Band::stat(3.0, f64::NAN, "-")).pass);
        assert!(
            !Check::new(
                "x",
                1.0,
                Test::AtMost,
                1.0,
                Band::stat(3.0, f64::INFINITY, "-")
            )
            .pass
        );
    }

    #[test]
    fn family_k_gives_a_family_the_false_alarm_rate_of_one_3_se_comparison() {
        assert!((crate::family_k(1) - 3.0).abs() < 1e-6);
        let single = 2.0 * crate::normal_upper_tail(3.0);
        for m in [2, 3, 15, 24] {
            let k = crate::family_k(m);
            let any = 1.0 - (1.0 - 2.0 * crate::normal_upper_tail(k)).powi(m as i32);
            assert!((any - single).abs() < 1e-9, "m = {m}: k = {k}, any = {any}");
        }
        assert!(
            (crate::family_k(15) - 3.75).abs() < 0.01,
            "{}",
            crate::family_k(15)
        );
    }

    #[test]
    fn student_k_is_the_t_quantile_of_three_normal_se() {
        // The upper tail of Student's t with nu degrees of freedom beyond student_k(nu + 1)
        // is that of the normal beyond 3 (0.0013499), within 3% (Simpson's rule on the
        // density; Gamma((nu + 1) / 2) / Gamma(nu / 2) by its recurrence in nu).
        for nu in [7usize, 15, 60] {
            let mut r = if nu % 2 == 1 {
                1.0 / std::f64::consts::PI.sqrt()
            } else {
                std::f64::consts::PI.sqrt() / 2.0
            };
            let mut m = if nu % 2 == 1 { 1 } else { 2 };
            while m < nu {
                r *= (m as f64 + 1.0) / m as f64;
                m += 2;
            }
            let v = nu as f64;
            let c = r / (v * std::f64::consts::PI).sqrt();
            let f = |t: f64| c * (1.0 + t * t / v).powf(-(v + 1.0) / 2.0);
            let (a, b, m) = (student_k(nu + 1), 400.0, 400_000);
            let h = (b - a) / m as f64;
            let tail = (0..=m)
                .map(|i| {
                    let w = if i == 0 || i == m {
                        1.0
                    } else if i % 2 == 1 {
                        4.0
                    } else {
                        2.0
                    };
                    w * f(a + i as f64 * h)
                })
                .sum::<f64>()
                * h
                / 3.0;
            assert!(
                (tail / 0.0013499 - 1.0).abs() < 0.03,
                "nu {nu}: k {a}, tail {tail}"
            );
        }
        assert!((student_k(100_000) - 3.0).abs() < 1e-3);
    }

    #[test]
    fn many_comparisons_show_the_worst_and_fail_if_one_fails() {
        let c = |m: f64| {
            Check::new(
                format!("{m}"),
                m,
                Test::Within,
                0.0,
                Band::stat(1.0, 1.0, "-"),
            )
        };
        let all = Check::all(vec![c(0.5), c(-0.9), c(0.2)]).unwrap();
        assert!(all.pass && all.measured == -0.9 && all.points == 3);
        let all = Check::all(vec![c(0.5), c(1.5), c(-3.0)]).unwrap();
        assert!(!all.pass && all.measured == -3.0);
        assert!(Check::all(vec![]).is_none());
    }

    #[test]
    fn summary_details_label_smoke_and_lines_say_so() {
        let setup = Setup {
            quick: true,
            ..Setup::new("unused")
        };
        let mut r = Report::default();
        let ok = r.band_check(
            "slope",
            Check::new(
                "slope",
                -0.52,
                Test::Within,
                -0.5,
                Band::stat(3.0, 0.01, "seeds"),
            )
            .rejects(&["rate-0.4"], "a rate n^-0.4"),
        );
        assert!(ok);
        let exact = |m: f64| {
            Check::new("step", m, Test::Above, 0.0, Band::exact(0.0, "a count"))
                .rejects(&["repel"], "no growth")
        };
        assert!(r.band_check("grows", exact(1.0)));
        assert!(!r.band_check("plain", exact(0.0)));
        r.smoke_at_quick(&setup, "grows", "a trend");
        // Every check has a band, the wrong model it rejects and its outcome in `checks`.
        let checks = r.checks();
        assert_eq!(checks["slope"], true);
        assert_eq!(checks["grows"], true);
        assert_eq!(checks["plain"], false);
        let d = r.check_details();
        assert_eq!(d.len(), 3);
        for (k, v) in &d {
            assert!(v["band"].is_object(), "{k}: {v}");
            assert_eq!(v["pass"], checks[k], "{k}");
        }
        assert_eq!(d["slope"]["evidence"], true);
        assert_eq!(d["slope"]["rejects"][0], "rate-0.4");
        assert_eq!(d["slope"]["band"]["half_width"], 0.03);
        assert_eq!(d["grows"]["evidence"], false);
        assert_eq!(d["grows"]["wrong_model"], "no growth (smoke: a trend)");
        assert_eq!(d["plain"]["evidence"], true);
        assert_eq!(d["plain"]["pass"], false);
        assert_eq!(d["plain"]["test"], "above");
        let summary = json!({"checks": checks, "check_details": d});
        let lines = check_lines(&summary);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("check grows: yes: step 1.000 above 0 +- 0")
                && lines[0]
                    .contains("; smoke; rejects: no growth (smoke: a trend) [--mutate repel]"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("check plain: NO: step 0 above 0 +- 0")
                && lines[1].contains("; evidence"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("-0.5200 within -0.5000 +- 0.03000")
                && lines[2].contains("over seeds")
                && lines[2].contains("[--mutate rate-0.4]"),
            "{}",
            lines[2]
        );
        // Default size: the same label leaves the check evidence.
        let mut r = Report::default();
        r.band_check("grows", exact(1.0));
        r.smoke_at_quick(&Setup::new("unused"), "grows", "a trend");
        assert_eq!(r.check_details()["grows"]["evidence"], true);
    }
}

#[cfg(test)]
mod params_tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Sizes {
        n: usize,
        beta: f64,
        ds: Vec<usize>,
        model: String,
        causal: bool,
    }

    fn base() -> Sizes {
        Sizes {
            n: 32,
            beta: 1.0,
            ds: vec![2, 3],
            model: "simplex".into(),
            causal: false,
        }
    }

    fn with(params: &[(&str, &str)]) -> Result<Sizes> {
        let mut setup = Setup::new("unused");
        for (k, v) in params {
            setup.params.insert((*k).into(), (*v).into());
        }
        setup.sizes(base())
    }

    /// Each experiment once in the registry, with parameters (the same names at both sizes)
    /// and at least one mutation.
    #[test]
    fn the_registry_lists_each_experiment_once() {
        let names = names();
        assert_eq!(names.len(), 15);
        for (i, e) in EXPERIMENTS.iter().enumerate() {
            assert!(!names[..i].contains(&e.name), "{} twice", e.name);
            assert_eq!(find(e.name).unwrap().name, e.name);
            let (quick, full) = ((e.parameters)(true), (e.parameters)(false));
            assert!(!quick.is_empty(), "{}: no parameters", e.name);
            assert!(
                quick.keys().eq(full.keys()),
                "{}: the quick and default sizes name different parameters",
                e.name
            );
            assert!(!e.mutations.is_empty(), "{}: no mutations", e.name);
        }
        let e = find("grokking").unwrap_err().to_string();
        assert!(
            e.contains("unknown experiment 'grokking'") && e.contains("clustering"),
            "{e}"
        );
    }

    /// Every parameter of every experiment has one declared range, and the quick and default
    /// sizes lie inside them and pass the memory and step checks.
    #[test]
    fn every_parameter_is_declared_and_the_sizes_pass_their_checks() {
        for e in EXPERIMENTS {
            let keys: Vec<String> = (e.parameters)(true).keys().cloned().collect();
            let mut declared: Vec<String> = e.params.iter().map(|p| p.name.to_string()).collect();
            declared.sort();
            assert_eq!(
                keys, declared,
                "{}: parameters and declarations differ",
                e.name
            );
            for quick in [true, false] {
                check_params(e, quick, &BTreeMap::new())
                    .unwrap_or_else(|err| panic!("{} (quick {quick}): {err}", e.name));
            }
        }
    }

    /// The cases of issue 22: each refused before any work, with the parameter, the value
    /// and the range named (was: a panic, an abort on allocation, a spin, or results written).
    #[test]
    fn the_issue_cases_are_refused_with_the_parameter_named() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "integrator-order",
                "truth_tolerance",
                "0",
                "truth_tolerance takes a number in [0.0000000000001",
            ),
            (
                "clustering",
                "n",
                "1000000000",
                "n takes a whole number from 2 to 4194304",
            ),
            (
                "clustering",
                "d",
                "100000",
                "d takes a whole number from 2 to 4096",
            ),
            (
                "lost-in-the-middle",
                "n",
                "1000000000",
                "n takes a whole number from 8 to 4096",
            ),
            (
                "kde-modes",
                "ns",
                "10000000000",
                "ns takes a list of 1 to 64 whole numbers",
            ),
            (
                "chaos",
                "frozen_n",
                "1000000000000",
                "frozen_n takes a list",
            ),
            ("clustering", "h", "0", "h takes a number in (0, 1]"),
            (
                "clustering",
                "t_end",
                "1e300",
                "t_end takes a number in (0, 1000000]",
            ),
            (
                "clustering",
                "betas_usa",
                "1000",
                "betas_usa takes a list of 1 to 64 numbers in [0, 50]",
            ),
            ("clustering", "betas_usa", "40", "steps, more than the 1e7"),
            ("clustering", "h", "-0.1", "got -0.1"),
            ("clustering", "t_end", "0", "t_end takes a number in (0"),
            ("clustering", "t_end", "-1", "got -1"),
            (
                "integrator-order",
                "steps",
                "0",
                "steps takes a list of 1 to 64 whole numbers from 1",
            ),
            (
                "integrator-order",
                "steps",
                "8,8",
                "at least two distinct step counts",
            ),
            ("clustering", "n", "abc", "got \"abc\""),
            ("clustering", "h", "nan", "got \"nan\""),
            ("clustering", "h", "1e400", "h takes a number"),
        ];
        for (name, key, value, want) in cases {
            let params = BTreeMap::from([(key.to_string(), value.to_string())]);
            let e = check_params(find(name).unwrap(), true, &params)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.contains(key),
                "{name} --set {key}={value}: {e}"
            );
        }
        // Through `run`: nothing is created.
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::new(dir.path().join("out"));
        setup.quick = true;
        setup.params.insert("h".into(), "0".into());
        assert!(run("clustering", &setup).is_err());
        assert!(!dir.path().join("out").exists());
    }

    #[test]
    fn set_replaces_numbers_lists_strings_and_flags() {
        let s = with(&[
            ("n", "256"),
            ("beta", "0.25"),
            ("ds", "8,128"),
            ("model", "random"),
            ("causal", "true"),
        ])
        .unwrap();
        assert_eq!(
            s,
            Sizes {
                n: 256,
                beta: 0.25,
                ds: vec![8, 128],
                model: "random".into(),
                causal: true
            }
        );
        assert_eq!(with(&[("ds", "[4]")]).unwrap().ds, vec![4]);
        assert_eq!(with(&[]).unwrap(), base());
    }

    #[test]
    fn set_refuses_unknown_names_and_wrong_types() {
        let e = with(&[("lambda", "1")]).unwrap_err().to_string();
        assert!(
            e.contains("no parameter 'lambda'") && e.contains("beta, causal, ds, model, n"),
            "{e}"
        );
        let e = with(&[("n", "-3")]).unwrap_err().to_string();
        assert!(e.contains("--set") && e.contains("n"), "{e}");
        let e = with(&[("beta", "hot")]).unwrap_err().to_string();
        assert!(e.contains("--set"), "{e}");
    }
}

#[cfg(test)]
mod jackknife_tests {
    use super::jackknife_loglog_slope_se;

    #[test]
    fn the_jackknife_loglog_slope_se_follows_the_spread_of_the_units_slopes() {
        let x = [10.0, 100.0, 1000.0];
        // Draws that differ by a factor only: every replicate's slope is 1/2.
        let scaled: Vec<Vec<f64>> = (1..=5)
            .map(|c| x.iter().map(|v: &f64| c as f64 * v.sqrt()).collect())
            .collect();
        assert!(jackknife_loglog_slope_se(&x, scaled.len(), |u, k| scaled[u][k]) < 1e-12);
        // Draws of slopes 0.5 +- 0.01 (alternating): the se of the mean slope, about
        // 0.01 / sqrt(D) for D draws (the mean of power laws is nearly a power law).
        let d = 20;
        let spread: Vec<Vec<f64>> = (0..d)
            .map(|i| {
                let s = if i % 2 == 0 { 0.49 } else { 0.51 };
                x.iter().map(|v: &f64| v.powf(s)).collect()
            })
            .collect();
        let se = jackknife_loglog_slope_se(&x, spread.len(), |u, k| spread[u][k]);
        let want = 0.01 / (d as f64).sqrt();
        assert!((se / want - 1.0).abs() < 0.1, "{se} against {want}");
    }
}
