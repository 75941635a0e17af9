//! Experiment `critical-scaling` (docs/model.md §3, attention temperature beta_n = gamma log n):
//! with the critical scaling of long contexts, one attention layer (SA, Q = K = V = I) on n
//! similar tokens either collapses them onto their mean (gamma small) or stays near the identity
//! (gamma large), and the transition sits at gamma_c -> 1 / (1 - c0) as n -> infinity.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/critical-scaling.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]): the rule of beta in the
/// simulation (`simulate::beta`).
pub const MUTATIONS: &[&str] = &["log-power-1.1", "log-power-1.02", "prefactor"];

mod analyse;
mod figures;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Band, Check, Report, Setup, Test, fit_line};
use analyse::{
    crossing, exact_grid_crossing, gamma_c_limit, max_rise, predicted_cos, simplex_cos,
    simplex_cos_slope, simplex_gamma_c, simplex_ln_k,
};
use attnflow::attend::derived_seed;
use attnflow::config::BackendChoice;
use attnflow::error::{Result, input};
use attnflow::figures::Series;
use attnflow::stats::{Fit, fit_line_worst_change};
use simulate::{mean_pair_cos, simplex_tokens, tokens};
use sizes::Sizes;

/// The simplex has no random draw: every band is deterministic, a round-off bound plus the
/// finite-n and grid systematics that the exact formula predicts (docs).
const DETERMINISTIC: &str = "none (deterministic: the simplex has no random draw)";

/// A band with no statistical part: the simplex is deterministic.
fn det(systematic: f64, from: impl Into<String>) -> Band {
    Band::stat(0.0, 0.0, DETERMINISTIC).plus(systematic, from)
}

/// The unit round-off of the backend's arithmetic: 2^-24 (f32: cpu, gpu), 2^-53 (reference).
fn unit_roundoff(backend: BackendChoice) -> f64 {
    if backend == BackendChoice::Reference {
        f64::EPSILON / 2.0
    } else {
        f32::EPSILON as f64 / 2.0
    }
}

/// The round-off of the engine's output cosine on the simplex with n tokens: every output
/// coordinate and the softmax denominator are sums of n nonnegative terms (the simplex has
/// nonnegative coordinates). Each is within lambda sqrt(n) u relative with probability at
/// least 1 - 2 n e^(-lambda^2 / 2) (Higham and Mary, SIAM J. Sci. Comput. 41 (2019) A2815:
/// rounding errors independent and of mean zero, any order of summation), lambda = 7: below
/// 4e-7 for n <= 8192; + 2 u for the product and the stored output. The scores
/// beta <x_i, x_j> (a query beta x_i rounded, a dot product of two nonzero terms) are within
/// 2 beta u absolute, so each weight e^score within 2 beta_max u relative. The cosine of two
/// vectors whose coordinates are within e relative is within 4 e (its inner product 2 e, the
/// two norms e each). (The worst-case bound, n u in place of 7 sqrt(n) u, is 13x wider at
/// n = 8192.)
fn cos_roundoff(n: usize, beta_max: f64, u: f64) -> f64 {
    4.0 * (7.0 * (n as f64).sqrt() + 2.0 + 2.0 * beta_max) * u
}

#[derive(Serialize)]
struct Config<'a> {
    #[serde(flatten)]
    sizes: &'a Sizes,
    beta: &'static str,
    gamma_c: &'static str,
    simplex_tokens: &'static str,
    random_tokens: &'static str,
    layer: &'static str,
}

/// gamma_c of one c0 and model for every n (NaN: no crossing).
#[derive(Serialize)]
struct GammaC {
    n: Vec<usize>,
    gamma_c: Vec<f64>,
}

/// The measurements of the simplex.
#[derive(Serialize)]
struct SimplexMeasured {
    /// simplex_gamma_c_c0_{c0}.
    #[serde(flatten)]
    per_c0: BTreeMap<String, GammaC>,
    simplex_largest_cos_deviation_from_exact: f64,
    simplex_largest_gamma_c_relative_deviation_from_exact: f64,
    /// Per c0: the fit of gamma_c (1 - c0) ln n against ln n.
    simplex_fit_critical_beta_times_1_minus_c0_vs_ln_n: Vec<Fit>,
    /// Per c0: the fit of gamma_c against 1 / ln n (intercept: n = infinity).
    simplex_fit_gamma_c_vs_1_over_ln_n: Vec<Fit>,
    simplex_extrapolated_gamma_c: Vec<f64>,
    simplex_extrapolated_gamma_c_times_1_minus_c0: Vec<f64>,
    simplex_fit_gamma_c_vs_1_over_1_minus_c0_at_largest_n: Option<Fit>,
    simplex_fit_extrapolated_gamma_c_vs_1_over_1_minus_c0: Option<Fit>,
}

/// What the exact formula says for the simplex.
#[derive(Serialize)]
struct SimplexPrediction {
    /// simplex_gamma_c_c0_{c0}: the exact finite-n gamma_c.
    #[serde(flatten)]
    per_c0: BTreeMap<String, GammaC>,
    simplex_gamma_c_limit: Vec<f64>,
    simplex_cos: &'static str,
    simplex_gamma_c: &'static str,
    simplex_critical_beta_times_1_minus_c0_vs_ln_n: &'static str,
    /// Per c0: ln K, the intercept of the critical-beta fit as n -> infinity.
    simplex_ln_k: Vec<f64>,
    /// Per c0: the same fits on the exact values at the same n.
    simplex_exact_fit_critical_beta_times_1_minus_c0_vs_ln_n_slope: Vec<f64>,
    simplex_exact_extrapolated_gamma_c: Vec<f64>,
    simplex_exact_slope_gamma_c_vs_1_over_1_minus_c0_at_largest_n: Option<f64>,
    simplex_slope_gamma_c_vs_1_over_1_minus_c0_as_n_to_infinity: f64,
}

/// The measurements of the random-direction case (reported; not the paper's model).
#[derive(Serialize)]
struct RandomMeasured {
    /// random_gamma_c_c0_{c0}.
    #[serde(flatten)]
    per_c0: BTreeMap<String, GammaC>,
    random_d: usize,
    random_gamma_c_times_1_minus_c0_at_largest_n: Vec<f64>,
    /// Per n: the fit of gamma_c against 1 / (1 - c0).
    random_fit_gamma_c_vs_1_over_1_minus_c0_per_n: Vec<Option<Fit>>,
    /// gamma_c minus the simplex's exact gamma_c at the same n (per c0, per n).
    random_minus_simplex_exact_gamma_c: Vec<Vec<f64>>,
    random_max_rise_in_gamma: f64,
}

#[derive(Serialize)]
struct RandomPrediction {
    /// random_annealed_gamma_c_c0_{c0}: the annealed finite-(n, d) average (module doc).
    #[serde(flatten)]
    per_c0: BTreeMap<String, GammaC>,
    random_annealed: &'static str,
    random_limit: &'static str,
}

/// Qualitative shapes, reported in `measured` and not checked: every wrong model of the study
/// keeps the crossing, and the random-direction case is not the paper's model and has no
/// derived band. (They were checks labelled smoke at every size; issue 24 asks that every
/// check at the default size be evidence.)
#[derive(Serialize)]
struct Shapes {
    every_curve_crosses_halfway: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    random_collapses_at_small_gamma: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    random_near_identity_at_large_gamma: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    random_monotone_in_gamma: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    random_gamma_c_increases_with_c0: Option<bool>,
}

/// The fit of y against 1 / (1 - c0), when there are two c0 or more.
fn fit_vs_inverse(c0s: &[f64], y: &[f64]) -> Option<Fit> {
    (c0s.len() >= 2).then(|| {
        let inv: Vec<f64> = c0s.iter().map(|&c| gamma_c_limit(c)).collect();
        fit_line(&inv, y)
    })
}

/// The fits of gamma_c over n of one c0: gamma_c (1 - c0) ln n against ln n, gamma_c against
/// 1 / ln n.
fn fits_over_n(ns: &[usize], c0: f64, gc: &[f64]) -> (Fit, Fit) {
    let ln: Vec<f64> = ns.iter().map(|&n| (n as f64).ln()).collect();
    let beta: Vec<f64> = gc
        .iter()
        .zip(&ln)
        .map(|(g, l)| g * l * (1.0 - c0))
        .collect();
    let inv: Vec<f64> = ln.iter().map(|l| 1.0 / l).collect();
    (fit_line(&ln, &beta), fit_line(&inv, gc))
}

/// Simplex runs: every c0, every n. Fills rows, figures, the summary and the checks.
struct SimplexResult {
    measured: SimplexMeasured,
    prediction: SimplexPrediction,
    gc: Vec<Vec<f64>>,
    all_found: bool,
    /// The typed checks, by name (docs).
    checks: Vec<(&'static str, Check)>,
}

/// The wrong models of `--mutate` in words (each check names those it rejects).
const WRONG_LOG_POWER: &str = "beta = gamma (ln n)^1.1 (a wrong scaling exponent)";
const WRONG_LOG_POWER_SMALL: &str = "beta = gamma (ln n)^1.02 (a 2% wrong scaling exponent)";
const WRONG_PREFACTOR: &str = "beta = 1.2 gamma ln n (a wrong prefactor)";

fn run_simplex(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    rows: (&mut Vec<Vec<f64>>, &mut Vec<Vec<f64>>),
) -> Result<SimplexResult> {
    let (layer_rows, gc_rows) = rows;
    let mut scans = Vec::new();
    for &c0 in &sz.c0 {
        let rows = (&mut *layer_rows, &mut *gc_rows);
        scans.push(simplex_c0(setup, report, sz, c0, rows)?);
    }
    let s = simplex_summary(sz, &scans);
    let checks = simplex_checks(sz, &scans, &s);
    Ok(SimplexResult {
        measured: s.measured,
        prediction: s.prediction,
        gc: s.gc_all,
        all_found: scans.iter().flatten().all(|p| p.gc.is_finite()),
        checks,
    })
}

/// One n of one c0 on the simplex: the engine's layer against the exact cosine, and gamma_c
/// against the exact finite-n one.
struct SimplexPoint {
    gc: f64,
    gc_exact: f64,
    /// The band of gamma_c (the grid's interpolation error plus the cosine's round-off).
    delta: f64,
    /// The largest |engine - exact| output cosine over gamma.
    cos_dev: f64,
    cos_check: Check,
    gc_check: Check,
}

/// Every n of one c0 (rows of the layer and gamma_c files, and its figure).
fn simplex_c0(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    c0: f64,
    rows: (&mut Vec<Vec<f64>>, &mut Vec<Vec<f64>>),
) -> Result<Vec<SimplexPoint>> {
    let (layer_rows, gc_rows) = rows;
    let gammas = sz.gammas();
    let (mut series, mut theory) = (Vec::new(), Vec::new());
    let mut points = Vec::new();
    for &n in &sz.simplex_n {
        let d = n + 1;
        let x = simplex_tokens(n, c0);
        let c_in = mean_pair_cos(&x[..2 * d], d);
        let betas: Vec<f64> = gammas
            .iter()
            .map(|&g| simulate::beta(setup, g, n))
            .collect();
        let c_out = setup.memo(
            report,
            "critical-scaling/simplex",
            &(c0, n, &betas),
            |report| simulate::simplex_layer(setup, report, &x, (n, d), &betas),
        )?;
        let ln_n = (n as f64).ln();
        let pred: Vec<f64> = gammas
            .iter()
            .map(|&g| simplex_cos(n as f64, c0, g * ln_n))
            .collect();
        let mut dev = 0.0f64;
        for (k, &g) in gammas.iter().enumerate() {
            dev = dev.max((c_out[k] - pred[k]).abs());
            layer_rows.push(vec![
                0.0, c0, n as f64, d as f64, g, c_in, c_out[k], pred[k],
            ]);
        }
        let curve = SimplexCurve {
            c0,
            n,
            x: &x,
            c_in,
            c_out: &c_out,
            cos_dev: dev,
        };
        let p = simplex_crossing(setup, report, sz, &curve)?;
        gc_rows.push(vec![
            0.0,
            c0,
            n as f64,
            d as f64,
            c_in,
            p.gc,
            p.gc_exact,
            gamma_c_limit(c0),
        ]);
        points.push(p);
        series.push(Series::line(
            format!("n = {n}"),
            gammas.iter().copied().zip(c_out.iter().copied()).collect(),
        ));
        theory.push(Series::theory(
            format!("exact n = {n}"),
            gammas.iter().copied().zip(pred).collect(),
        ));
    }
    figures::layer(setup, report, ("simplex", c0, "d = n + 1"), series, theory)?;
    Ok(points)
}

/// The engine's output cosine over the gammas at one (c0, n) of the simplex.
struct SimplexCurve<'a> {
    c0: f64,
    n: usize,
    /// The simplex tokens.
    x: &'a [f64],
    c_in: f64,
    c_out: &'a [f64],
    /// The largest |engine - exact| output cosine over gamma.
    cos_dev: f64,
}

/// The crossing gamma_c of one curve (coarse, then on a fine grid inside the coarse
/// bracket) and its checks: the cosine and gamma_c against the exact formula.
fn simplex_crossing(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    curve: &SimplexCurve,
) -> Result<SimplexPoint> {
    let (c0, n, x, c_in, c_out, dev) = (
        curve.c0,
        curve.n,
        curve.x,
        curve.c_in,
        curve.c_out,
        curve.cos_dev,
    );
    let d = n + 1;
    let gammas = sz.gammas();
    let u = unit_roundoff(setup.backend);
    let gamma_max = gammas.last().copied().unwrap_or(0.0);
    let ln_n = (n as f64).ln();
    let cos_tol = cos_roundoff(n, gamma_max * ln_n, u);
    let cos_check = Check::new(
        format!("largest |engine - exact| output cosine over gamma, c0 = {c0}, n = {n}"),
        dev,
        Test::AtMost,
        0.0,
        det(
            cos_tol,
            "the round-off bound 4 (7 sqrt(n) + 2 + 2 beta_max) u of the engine's \
             arithmetic (unit round-off u; Higham and Mary's probabilistic bound at \
             lambda = 7, docs)",
        ),
    );
    // The crossing: coarse, then on a fine grid inside the coarse bracket.
    let half = 0.5 * (c_in + c_out[0]);
    let gc = match crossing(&gammas, c_out, half) {
        Some(g0) => {
            let k = gammas.iter().position(|&g| g >= g0).unwrap_or(1).max(1);
            let (lo, hi) = (gammas[k - 1], gammas[k]);
            let p = sz.fine_points.max(2);
            let fine: Vec<f64> = (0..p)
                .map(|i| lo + (hi - lo) * i as f64 / (p - 1) as f64)
                .collect();
            let betas: Vec<f64> = fine.iter().map(|&g| simulate::beta(setup, g, n)).collect();
            let c_fine = setup.memo(
                report,
                "critical-scaling/simplex",
                &(c0, n, &betas),
                |report| simulate::simplex_layer(setup, report, x, (n, d), &betas),
            )?;
            crossing(&fine, &c_fine, half).or(Some(g0))
        }
        None => None,
    };
    let gc = gc.unwrap_or(f64::NAN);
    let gc_exact = simplex_gamma_c(n as f64, c0);
    // The band of gamma_c: the grid's interpolation error, predicted by running the
    // same coarse-then-fine crossing on the exact curve, plus the cosine's round-off
    // over the exact cosine's slope at the crossing.
    let grid = exact_grid_crossing(&gammas, sz.fine_points, n as f64, c0)
        .map_or(f64::NAN, |g| (g - gc_exact).abs());
    let from_cos = cos_tol / simplex_cos_slope(n as f64, c0, gc_exact).abs();
    let delta = grid + from_cos;
    let gc_check = Check::new(
        format!("gamma_c at c0 = {c0}, n = {n}"),
        gc,
        Test::Within,
        gc_exact,
        det(
            delta,
            format!(
                "the grid: the run's crossing procedure on the exact curve misses by \
                 {grid:.2e}; round-off: the cosine's bound over the exact slope, \
                 {from_cos:.2e}"
            ),
        ),
    );
    setup.say(&format!(
        "simplex c0 {c0}, n {n}: gamma_c {gc:.5} (exact {gc_exact:.5}, limit {:.5})",
        gamma_c_limit(c0)
    ));
    Ok(SimplexPoint {
        gc,
        gc_exact,
        delta,
        cos_dev: dev,
        cos_check,
        gc_check,
    })
}

/// The simplex's summary: gamma_c per c0 (measured and exact) and the fits over n and over
/// 1 / (1 - c0).
struct SimplexSummary {
    measured: SimplexMeasured,
    prediction: SimplexPrediction,
    /// gamma_c, per c0 per n.
    gc_all: Vec<Vec<f64>>,
    fits: Vec<FitsOverN>,
    exact_fits: Vec<FitsOverN>,
}

fn simplex_summary(sz: &Sizes, scans: &[Vec<SimplexPoint>]) -> SimplexSummary {
    let ns = &sz.simplex_n;
    let gc_all: Vec<Vec<f64>> = scans
        .iter()
        .map(|ps| ps.iter().map(|p| p.gc).collect())
        .collect();
    let exact_all: Vec<Vec<f64>> = scans
        .iter()
        .map(|ps| ps.iter().map(|p| p.gc_exact).collect())
        .collect();
    let (mut measured_map, mut predicted_map) = (BTreeMap::new(), BTreeMap::new());
    for ((c0, gcs), exact) in sz.c0.iter().zip(&gc_all).zip(&exact_all) {
        let key = format!("simplex_gamma_c_c0_{c0}");
        let gamma_c = |g: &Vec<f64>| GammaC {
            n: ns.clone(),
            gamma_c: g.clone(),
        };
        measured_map.insert(key.clone(), gamma_c(gcs));
        predicted_map.insert(key, gamma_c(exact));
    }
    let points = || scans.iter().flatten();
    let worst_cos = points().fold(0.0f64, |w, p| w.max(p.cos_dev));
    let worst_gc = points().fold(0.0f64, |w, p| {
        w.max(((p.gc - p.gc_exact) / p.gc_exact).abs())
    });
    let fits_of = |all: &[Vec<f64>]| -> Vec<FitsOverN> {
        sz.c0
            .iter()
            .zip(all)
            .map(|(&c0, gc)| fits_over_n(ns, c0, gc))
            .collect()
    };
    let (fits, exact_fits) = (fits_of(&gc_all), fits_of(&exact_all));
    let extrapolated: Vec<f64> = fits.iter().map(|f| f.1.intercept).collect();
    let largest: Vec<f64> = gc_all.iter().map(|v| v[v.len() - 1]).collect();
    let exact_largest: Vec<f64> = exact_all.iter().map(|v| v[v.len() - 1]).collect();
    let measured = SimplexMeasured {
        per_c0: measured_map,
        simplex_largest_cos_deviation_from_exact: worst_cos,
        simplex_largest_gamma_c_relative_deviation_from_exact: worst_gc,
        simplex_fit_critical_beta_times_1_minus_c0_vs_ln_n: fits.iter().map(|f| f.0).collect(),
        simplex_fit_gamma_c_vs_1_over_ln_n: fits.iter().map(|f| f.1).collect(),
        simplex_extrapolated_gamma_c_times_1_minus_c0: extrapolated
            .iter()
            .zip(&sz.c0)
            .map(|(g, c)| g * (1.0 - c))
            .collect(),
        simplex_fit_gamma_c_vs_1_over_1_minus_c0_at_largest_n: fit_vs_inverse(&sz.c0, &largest),
        simplex_fit_extrapolated_gamma_c_vs_1_over_1_minus_c0: fit_vs_inverse(
            &sz.c0,
            &extrapolated,
        ),
        simplex_extrapolated_gamma_c: extrapolated,
    };
    let prediction = SimplexPrediction {
        per_c0: predicted_map,
        simplex_gamma_c_limit: sz.c0.iter().map(|&c| gamma_c_limit(c)).collect(),
        simplex_cos: "(b^2 c0 + 2 b A + n A) / (b^2 + 2 b A + n A), b = e^{beta (1 - c0)} - 1, \
                      A = 1 + (n - 1) c0",
        simplex_gamma_c: "ln(1 + A + sqrt(A^2 + n A)) / ((1 - c0) ln n) -> 1 / (1 - c0)",
        simplex_critical_beta_times_1_minus_c0_vs_ln_n: "slope 1, intercept ln K (n -> \
                                                         infinity), K = c0 + sqrt(c0 (1 + c0))",
        simplex_ln_k: sz.c0.iter().map(|&c| simplex_ln_k(c)).collect(),
        simplex_exact_fit_critical_beta_times_1_minus_c0_vs_ln_n_slope: exact_fits
            .iter()
            .map(|f| f.0.slope)
            .collect(),
        simplex_exact_extrapolated_gamma_c: exact_fits.iter().map(|f| f.1.intercept).collect(),
        simplex_exact_slope_gamma_c_vs_1_over_1_minus_c0_at_largest_n: fit_vs_inverse(
            &sz.c0,
            &exact_largest,
        )
        .map(|f| f.slope),
        simplex_slope_gamma_c_vs_1_over_1_minus_c0_as_n_to_infinity: 1.0,
    };
    SimplexSummary {
        measured,
        prediction,
        gc_all,
        fits,
        exact_fits,
    }
}

/// The simplex's checks, by name: the cosine and gamma_c against the exact formula, their
/// behaviour over n and the slope against 1 / (1 - c0).
fn simplex_checks(
    sz: &Sizes,
    scans: &[Vec<SimplexPoint>],
    s: &SimplexSummary,
) -> Vec<(&'static str, Check)> {
    let ns = &sz.simplex_n;
    let delta_all: Vec<Vec<f64>> = scans
        .iter()
        .map(|ps| ps.iter().map(|p| p.delta).collect())
        .collect();
    let cos_checks: Vec<Check> = scans
        .iter()
        .flatten()
        .map(|p| p.cos_check.clone())
        .collect();
    let gc_checks: Vec<Check> = scans.iter().flatten().map(|p| p.gc_check.clone()).collect();
    let mut checks = vec![];
    let all = ["log-power-1.1", "log-power-1.02", "prefactor"];
    let all_words = format!("{WRONG_LOG_POWER}; {WRONG_LOG_POWER_SMALL}; {WRONG_PREFACTOR}");
    if let Some(c) = Check::all(cos_checks) {
        checks.push((
            "simplex_layer_cos_matches_exact_formula",
            c.rejects(&all, &all_words),
        ));
    }
    if let Some(c) = Check::all(gc_checks) {
        checks.push((
            "simplex_gamma_c_matches_exact_finite_n",
            c.rejects(&all, &all_words),
        ));
    }
    if ns.len() >= 2 {
        checks.extend(over_n_checks(
            sz,
            &s.gc_all,
            &delta_all,
            (&s.fits, &s.exact_fits),
            (&all, &all_words),
        ));
    }
    // The slope against 1 / (1 - c0) at the largest n: the exact formula's at that n, within
    // the round-off of the gamma_c propagated through the fit (its residuals are the exact
    // formula's curvature in 1 / (1 - c0), not noise).
    if let (Some(f), Some(e)) = (
        s.measured
            .simplex_fit_gamma_c_vs_1_over_1_minus_c0_at_largest_n,
        s.prediction
            .simplex_exact_slope_gamma_c_vs_1_over_1_minus_c0_at_largest_n,
    ) {
        let inv: Vec<f64> = sz.c0.iter().map(|&c| gamma_c_limit(c)).collect();
        let d: Vec<f64> = delta_all.iter().map(|v| v[v.len() - 1]).collect();
        let (ps, _) = fit_line_worst_change(&inv, &d);
        checks.push((
            "simplex_slope_vs_1_over_1_minus_c0_at_largest_n_is_exact_finite_n",
            Check::new(
                format!(
                    "slope of gamma_c against 1 / (1 - c0) at n = {}",
                    ns[ns.len() - 1]
                ),
                f.slope,
                Test::Within,
                e,
                det(
                    ps,
                    "the gamma_c bands (grid and round-off) propagated through the fit at \
                     their worst",
                ),
            )
            .rejects(&all, &all_words),
        ));
    }
    checks
}

/// The fits over n of one c0 ([`fits_over_n`]).
type FitsOverN = (Fit, Fit);

/// The checks over n of the simplex (two n or more): gamma_c moves towards its limit from one
/// side; the critical beta grows like ln n; gamma_c extrapolated in 1 / ln n is 1 / (1 - c0),
/// and so is the slope of the extrapolated values against 1 / (1 - c0). Every band is the
/// exact formula's own finite-n offset at these n (its O(1/n) terms) plus the gamma_c bands
/// propagated through the fit at their worst.
fn over_n_checks(
    sz: &Sizes,
    gc: &[Vec<f64>],
    delta: &[Vec<f64>],
    (fits, exact_fits): (&[FitsOverN], &[FitsOverN]),
    (all, all_words): (&[&str], &str),
) -> Vec<(&'static str, Check)> {
    let ns = &sz.simplex_n;
    let ln: Vec<f64> = ns.iter().map(|&n| (n as f64).ln()).collect();
    let inv_ln: Vec<f64> = ln.iter().map(|l| 1.0 / l).collect();
    let through = "the gamma_c bands (grid and round-off) propagated through the fit at their \
                   worst";
    let (mut approach, mut slope, mut extrap, mut extrap_delta) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (ci, &c0) in sz.c0.iter().enumerate() {
        approach.extend(approach_checks(ns, c0, &gc[ci], &delta[ci]));
        let scale = 1.0 - c0;
        let dy: Vec<f64> = delta[ci]
            .iter()
            .zip(&ln)
            .map(|(d, l)| d * scale * l)
            .collect();
        let (ps, _) = fit_line_worst_change(&ln, &dy);
        let finite_n = (exact_fits[ci].0.slope - 1.0).abs();
        slope.push(Check::new(
            format!("slope of gamma_c (1 - c0) ln n against ln n, c0 = {c0}"),
            fits[ci].0.slope,
            Test::Within,
            1.0,
            det(
                finite_n + ps,
                format!(
                    "the exact formula's own slope at these n misses 1 by {finite_n:.2e} (its \
                     O(1/n) terms); {through}, {ps:.2e}"
                ),
            ),
        ));
        let (_, pi) = fit_line_worst_change(&inv_ln, &delta[ci]);
        extrap_delta.push(pi);
        let finite_n = (exact_fits[ci].1.intercept * scale - 1.0).abs();
        extrap.push(Check::new(
            format!(
                "gamma_c (1 - c0) extrapolated linearly in 1 / ln n to n = infinity, c0 = {c0}"
            ),
            fits[ci].1.intercept * scale,
            Test::Within,
            1.0,
            det(
                finite_n + pi * scale,
                format!(
                    "the exact formula's own extrapolation from these n misses 1 by \
                     {finite_n:.2e} (its O(1/n) terms); {through}, {:.2e}",
                    pi * scale
                ),
            ),
        ));
    }
    let mut out = Vec::new();
    if let Some(c) = Check::all(approach) {
        out.push((
            "simplex_gamma_c_moves_monotonically_towards_1_over_1_minus_c0",
            c.rejects(all, all_words),
        ));
    }
    if let Some(c) = Check::all(slope) {
        out.push((
            "simplex_critical_beta_times_1_minus_c0_grows_like_ln_n",
            c.rejects(all, all_words),
        ));
    }
    if let Some(c) = Check::all(extrap) {
        out.push((
            "simplex_gamma_c_extrapolated_in_1_over_ln_n_is_1_over_1_minus_c0",
            c.rejects(all, all_words),
        ));
    }
    if let Some(c) = extrapolated_slope_check(sz, (fits, exact_fits), &extrap_delta, through) {
        out.push((
            "simplex_slope_of_extrapolated_gamma_c_vs_1_over_1_minus_c0_is_1",
            c.rejects(all, all_words),
        ));
    }
    out
}

/// gamma_c of one c0 moves towards 1 / (1 - c0) from one side: from each n to the next, its
/// distance does not grow and it stays on the same side.
fn approach_checks(ns: &[usize], c0: f64, gc: &[f64], delta: &[f64]) -> Vec<Check> {
    let limit = gamma_c_limit(c0);
    let mut approach = Vec::new();
    for k in 1..ns.len() {
        let (e0, e1) = (gc[k - 1] - limit, gc[k] - limit);
        let both = delta[k - 1] + delta[k];
        approach.push(Check::new(
            format!(
                "|gamma_c - 1 / (1 - c0)| at n = {} minus at n = {}, c0 = {c0}",
                ns[k],
                ns[k - 1]
            ),
            e1.abs() - e0.abs(),
            Test::AtMost,
            0.0,
            det(both, "the two gamma_c bands (grid and round-off)"),
        ));
        approach.push(Check::new(
            format!(
                "gamma_c - 1 / (1 - c0) at n = {} against the side of n = {}, c0 = {c0} \
                 (negative: the same side)",
                ns[k],
                ns[k - 1]
            ),
            -e0.signum() * e1,
            Test::AtMost,
            0.0,
            det(delta[k], "the gamma_c band (grid and round-off)"),
        ));
    }
    approach
}

/// The slope of the extrapolated gamma_c against 1 / (1 - c0) is 1 (two c0 or more), within
/// the exact formula's own offset and the extrapolations' bands `extrap_delta` propagated.
fn extrapolated_slope_check(
    sz: &Sizes,
    (fits, exact_fits): (&[FitsOverN], &[FitsOverN]),
    extrap_delta: &[f64],
    through: &str,
) -> Option<Check> {
    let extrapolated: Vec<f64> = fits.iter().map(|f| f.1.intercept).collect();
    let exact_extrapolated: Vec<f64> = exact_fits.iter().map(|f| f.1.intercept).collect();
    let (f, e) = (
        fit_vs_inverse(&sz.c0, &extrapolated)?,
        fit_vs_inverse(&sz.c0, &exact_extrapolated)?,
    );
    let inv: Vec<f64> = sz.c0.iter().map(|&c| gamma_c_limit(c)).collect();
    let (ps, _) = fit_line_worst_change(&inv, extrap_delta);
    let finite_n = (e.slope - 1.0).abs();
    Some(Check::new(
        "slope of the extrapolated gamma_c against 1 / (1 - c0)",
        f.slope,
        Test::Within,
        1.0,
        det(
            finite_n + ps,
            format!(
                "the exact formula's own extrapolated slope misses 1 by {finite_n:.2e} \
                 (its O(1/n) terms); {through}, {ps:.2e}"
            ),
        ),
    ))
}

/// Random-direction runs.
struct RandomResult {
    measured: RandomMeasured,
    prediction: RandomPrediction,
    gc: Vec<Vec<f64>>,
    all_found: bool,
    collapse_small: bool,
    identity_large: bool,
    monotone: bool,
}

fn run_random(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    rows: (&mut Vec<Vec<f64>>, &mut Vec<Vec<f64>>),
) -> Result<RandomResult> {
    let (layer_rows, gc_rows) = rows;
    let d = sz.random_d;
    if d < 3 {
        return Err(input("--set random_d: at least 3"));
    }
    let mut shapes = RandomShapes {
        collapse_small: true,
        identity_large: true,
        monotone: true,
        all_found: true,
        worst_rise: 0.0,
    };
    let (mut gc_all, mut annealed_all) = (Vec::new(), Vec::new());
    for &c0 in &sz.c0 {
        let (mut series, mut theory) = (Vec::new(), Vec::new());
        let (mut gcs, mut annealed) = (Vec::new(), Vec::new());
        for (ni, &n) in sz.random_n.iter().enumerate() {
            let rows = (&mut *layer_rows, &mut *gc_rows);
            let p = random_point(setup, report, sz, (c0, ni, n), &mut shapes, rows)?;
            gcs.push(p.gc);
            annealed.push(p.annealed);
            series.push(p.series);
            theory.push(p.theory);
        }
        figures::layer(
            setup,
            report,
            ("random", c0, &format!("d = {d}")),
            series,
            theory,
        )?;
        gc_all.push(gcs);
        annealed_all.push(annealed);
    }
    Ok(random_summary(sz, gc_all, annealed_all, shapes))
}

/// The qualitative shapes of the random-direction curves, over every (c0, n).
struct RandomShapes {
    collapse_small: bool,
    identity_large: bool,
    monotone: bool,
    all_found: bool,
    worst_rise: f64,
}

/// One (c0, n) of the random-direction case: gamma_c, the annealed one, and the figure's
/// curves.
struct RandomPoint {
    gc: f64,
    annealed: f64,
    series: Series,
    theory: Series,
}

/// The layer at one (c0, n) of the random-direction case: its rows, its crossing and its
/// shapes (folded into `shapes`).
fn random_point(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    (c0, ni, n): (f64, usize, usize),
    shapes: &mut RandomShapes,
    rows: (&mut Vec<Vec<f64>>, &mut Vec<Vec<f64>>),
) -> Result<RandomPoint> {
    let (layer_rows, gc_rows) = rows;
    let d = sz.random_d;
    let gammas = sz.gammas();
    // The same u for every c0 (common random numbers).
    let x = tokens(n, d, c0, derived_seed(setup.seed, 1 + ni as u64))?;
    let m = sz.random_queries.clamp(2, n);
    let c_in = mean_pair_cos(&x[..m * d], d);
    let c_out = setup.memo(
        report,
        "critical-scaling/layer",
        &(c0, ni, n, m, d, &gammas),
        |report| simulate::layer(setup, report, &x, (m, n, d), &gammas),
    )?;
    let half = 0.5 * (c_in + c_out[0]);
    let gc = crossing(&gammas, &c_out, half).unwrap_or(f64::NAN);
    shapes.all_found &= gc.is_finite();
    let pred: Vec<f64> = gammas
        .iter()
        .map(|&g| predicted_cos(c_in, n, d, g))
        .collect();
    let gc_annealed = crossing(&gammas, &pred, half).unwrap_or(f64::NAN);
    setup.say(&format!(
        "random d {d} c0 {c0}, n {n}: c_in {c_in:.4}, gamma_c {gc:.4} (annealed \
         {gc_annealed:.4}, simplex exact {:.4}, limit {:.4})",
        simplex_gamma_c(n as f64, c0),
        gamma_c_limit(c0)
    ));
    for (k, &g) in gammas.iter().enumerate() {
        layer_rows.push(vec![
            1.0, c0, n as f64, d as f64, g, c_in, c_out[k], pred[k],
        ]);
    }
    // Collapse at small gamma (gamma (1 - c0) = 0.25 or less): within 10% of the gap
    // from 1; near identity at the largest gamma: within 0.05 of the input's cosine.
    let small = gammas
        .iter()
        .position(|&g| g * (1.0 - c0) > 0.25)
        .unwrap_or(1)
        .max(2)
        - 1;
    shapes.collapse_small &= c_out[small] > 1.0 - 0.1 * (1.0 - c_in);
    shapes.identity_large &= (c_out[c_out.len() - 1] - c_in).abs() < 0.05;
    let rise = max_rise(&c_out);
    shapes.worst_rise = shapes.worst_rise.max(rise);
    shapes.monotone &= rise < 0.01;
    gc_rows.push(vec![
        1.0,
        c0,
        n as f64,
        d as f64,
        c_in,
        gc,
        gc_annealed,
        gamma_c_limit(c0),
    ]);
    Ok(RandomPoint {
        gc,
        annealed: gc_annealed,
        series: Series::line(
            format!("n = {n}"),
            gammas.iter().copied().zip(c_out.iter().copied()).collect(),
        ),
        theory: Series::theory(
            format!("annealed n = {n}"),
            gammas.iter().copied().zip(pred).collect(),
        ),
    })
}

/// The random-direction case's summary: gamma_c per c0 (measured and annealed), its fits
/// against 1 / (1 - c0), its distance to the simplex's exact gamma_c, and the shapes.
fn random_summary(
    sz: &Sizes,
    gc_all: Vec<Vec<f64>>,
    annealed_all: Vec<Vec<f64>>,
    shapes: RandomShapes,
) -> RandomResult {
    let (mut measured_map, mut predicted_map) = (BTreeMap::new(), BTreeMap::new());
    for ((c0, gcs), annealed) in sz.c0.iter().zip(&gc_all).zip(annealed_all) {
        measured_map.insert(
            format!("random_gamma_c_c0_{c0}"),
            GammaC {
                n: sz.random_n.clone(),
                gamma_c: gcs.clone(),
            },
        );
        predicted_map.insert(
            format!("random_annealed_gamma_c_c0_{c0}"),
            GammaC {
                n: sz.random_n.clone(),
                gamma_c: annealed,
            },
        );
    }
    let measured = RandomMeasured {
        per_c0: measured_map,
        random_d: sz.random_d,
        random_gamma_c_times_1_minus_c0_at_largest_n: gc_all
            .iter()
            .zip(&sz.c0)
            .map(|(v, c)| v[v.len() - 1] * (1.0 - c))
            .collect(),
        random_fit_gamma_c_vs_1_over_1_minus_c0_per_n: (0..sz.random_n.len())
            .map(|ni| {
                let y: Vec<f64> = gc_all.iter().map(|v| v[ni]).collect();
                fit_vs_inverse(&sz.c0, &y)
            })
            .collect(),
        random_minus_simplex_exact_gamma_c: gc_all
            .iter()
            .zip(&sz.c0)
            .map(|(v, &c0)| {
                v.iter()
                    .zip(&sz.random_n)
                    .map(|(g, &n)| g - simplex_gamma_c(n as f64, c0))
                    .collect()
            })
            .collect(),
        random_max_rise_in_gamma: shapes.worst_rise,
    };
    let prediction = RandomPrediction {
        per_c0: predicted_map,
        random_annealed: "c ~= c0 / (c0 + (1 - c0)(P^2 + noise)), P = p + (1 - p) A(kappa) (module \
                          doc of the random case): the large-n average of the simulated sum, \
                          reported only",
        random_limit: "none at fixed d: the cosine fluctuations shift gamma_c (1 - c0) by ~ ln n \
                       / (2 (d - 1)); 1 / (1 - c0) only as n, d -> infinity with ln n / d -> 0",
    };
    RandomResult {
        measured,
        prediction,
        gc: gc_all,
        all_found: shapes.all_found,
        collapse_small: shapes.collapse_small,
        identity_large: shapes.identity_large,
        monotone: shapes.monotone,
    }
}

fn validate(sz: &Sizes) -> Result<()> {
    for m in &sz.models {
        if m != "simplex" && m != "random" {
            return Err(input(format!(
                "--set models: '{m}' is not a model (simplex, random)"
            )));
        }
    }
    if sz.c0.is_empty() || sz.c0.iter().any(|&c| !(0.0..1.0).contains(&c)) {
        return Err(input("--set c0: one or more cosines in [0, 1)"));
    }
    if sz.simplex_n.iter().chain(&sz.random_n).any(|&n| n < 2) {
        return Err(input("--set simplex_n / random_n: at least 2 tokens"));
    }
    Ok(())
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    validate(&sz)?;
    report.add_config(&Config {
        sizes: &sz,
        beta: "gamma ln n",
        gamma_c: "the gamma where the mean output cosine is halfway between its value at gamma \
                  = 0 and the input's",
        simplex_tokens: "x_i = sqrt(c0) e_0 + sqrt(1 - c0) e_{i+1}, d = n + 1 (every pairwise \
                         cosine c0)",
        random_tokens: "x = sqrt(c0) e_1 + sqrt(1 - c0) u, u uniform on the sphere of e_1^perp \
                        in d = random_d",
        layer: "SA, Q = K = V = I, euclidean (raw outputs), the first queries attending to all n",
    });

    let (mut layer_rows, mut gc_rows) = (Vec::new(), Vec::new());
    let simplex = if sz.runs("simplex") && !sz.simplex_n.is_empty() {
        Some(run_simplex(
            setup,
            report,
            &sz,
            (&mut layer_rows, &mut gc_rows),
        )?)
    } else {
        None
    };
    let random = if sz.runs("random") && !sz.random_n.is_empty() {
        Some(run_random(
            setup,
            report,
            &sz,
            (&mut layer_rows, &mut gc_rows),
        )?)
    } else {
        None
    };
    files(setup, report, &layer_rows, &gc_rows)?;
    gamma_c_figures(setup, report, &sz, simplex.as_ref(), random.as_ref())?;
    record(report, simplex, random);
    Ok(())
}

/// layer.csv and gamma_c.csv.
fn files(
    setup: &Setup,
    report: &mut Report,
    layer_rows: &[Vec<f64>],
    gc_rows: &[Vec<f64>],
) -> Result<()> {
    setup.csv(
        report,
        "layer.csv",
        &[
            "random",
            "c0",
            "n",
            "d",
            "gamma",
            "cos_in",
            "cos_out",
            "cos_theory",
        ],
        layer_rows,
    )?;
    setup.csv(
        report,
        "gamma_c.csv",
        &[
            "random",
            "c0",
            "n",
            "d",
            "cos_in",
            "gamma_c",
            "gamma_c_theory",
            "gamma_c_limit",
        ],
        gc_rows,
    )
}

/// Figures: gamma_c (1 - c0) against 1 / ln n, and gamma_c against c0.
fn gamma_c_figures(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    simplex: Option<&SimplexResult>,
    random: Option<&RandomResult>,
) -> Result<()> {
    let mut vs_n = Vec::new();
    let mut vs_c0 = Vec::new();
    let scaled = |ns: &[usize], v: &[f64], c0: f64| -> Vec<(f64, f64)> {
        ns.iter()
            .zip(v)
            .map(|(&n, g)| (1.0 / (n as f64).ln(), g * (1.0 - c0)))
            .collect()
    };
    if let Some(s) = simplex {
        for (ci, &c0) in sz.c0.iter().enumerate() {
            vs_n.push(Series::markers(
                format!("simplex c0 = {c0}"),
                scaled(&sz.simplex_n, &s.gc[ci], c0),
            ));
            // The exact curve from the smallest n to ln n = 200 (1 / ln n = 0.005).
            let x_hi = 1.0 / (sz.simplex_n.iter().copied().min().unwrap_or(2) as f64).ln();
            vs_n.push(Series::theory(
                format!("exact c0 = {c0}"),
                (0..=60)
                    .map(|k| {
                        let x = 0.005 + (x_hi - 0.005) * k as f64 / 60.0;
                        (x, simplex_gamma_c((1.0 / x).exp(), c0) * (1.0 - c0))
                    })
                    .collect(),
            ));
        }
        let last = sz.simplex_n.len() - 1;
        vs_c0.push(Series::markers(
            format!("simplex n = {}", sz.simplex_n[last]),
            sz.c0
                .iter()
                .zip(&s.gc)
                .map(|(&c, v)| (c, v[last]))
                .collect(),
        ));
        vs_c0.push(Series::markers(
            "simplex extrapolated to n = infinity",
            sz.c0
                .iter()
                .copied()
                .zip(s.measured.simplex_extrapolated_gamma_c.iter().copied())
                .collect(),
        ));
    }
    if let Some(r) = random {
        for (ci, &c0) in sz.c0.iter().enumerate() {
            vs_n.push(Series::markers(
                format!("random d = {} c0 = {c0}", sz.random_d),
                scaled(&sz.random_n, &r.gc[ci], c0),
            ));
        }
        let last = sz.random_n.len() - 1;
        vs_c0.push(Series::markers(
            format!("random d = {}, n = {}", sz.random_d, sz.random_n[last]),
            sz.c0
                .iter()
                .zip(&r.gc)
                .map(|(&c, v)| (c, v[last]))
                .collect(),
        ));
    }
    vs_n.push(Series::markers("limit 1 (n -> infinity)", vec![(0.0, 1.0)]));
    figures::gamma_c_vs_n(setup, report, vs_n)?;
    figures::gamma_c_vs_c0(setup, report, &sz.c0, vs_c0)
}

/// The checks, the measurements, the predictions and the shapes into the report.
fn record(report: &mut Report, simplex: Option<SimplexResult>, random: Option<RandomResult>) {
    let mut shapes = Shapes {
        every_curve_crosses_halfway: simplex.as_ref().is_none_or(|s| s.all_found)
            && random.as_ref().is_none_or(|r| r.all_found),
        random_collapses_at_small_gamma: None,
        random_near_identity_at_large_gamma: None,
        random_monotone_in_gamma: None,
        random_gamma_c_increases_with_c0: None,
    };
    if let Some(s) = simplex {
        for (key, c) in s.checks {
            report.band_check(key, c);
        }
        report.add_measured(&s.measured);
        report.add_prediction(&s.prediction);
    }
    if let Some(r) = random {
        let mean_gc: Vec<f64> = r.gc.iter().map(|v| attnflow::stats::mean(v)).collect();
        shapes.random_collapses_at_small_gamma = Some(r.collapse_small);
        shapes.random_near_identity_at_large_gamma = Some(r.identity_large);
        shapes.random_monotone_in_gamma = Some(r.monotone);
        shapes.random_gamma_c_increases_with_c0 = Some(mean_gc.windows(2).all(|w| w[1] > w[0]));
        report.add_measured(&r.measured);
        report.add_prediction(&r.prediction);
    }
    report.add_measured(&shapes);
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_critical_scaling_converges_to_the_limit_on_the_simplex() {
        let (_dir, out, s) = super::super::quick_run_checked("critical-scaling");
        // The simplex is deterministic: the measured gamma_c is the exact finite-n one to
        // within its round-off and grid band (well under 1e-4 relative), and the extrapolated
        // gamma_c (1 - c0) is 1 to the exact formula's own O(1/n) miss (under 1.5%).
        let d = &s["check_details"]["simplex_gamma_c_matches_exact_finite_n"];
        assert_eq!(d["points"], 9, "{d}");
        assert!(d["band"]["half_width"].as_f64().unwrap() < 1e-4, "{d}");
        for g in s["measured"]["simplex_extrapolated_gamma_c_times_1_minus_c0"]
            .as_array()
            .unwrap()
        {
            let g = g.as_f64().unwrap();
            assert!((0.985..1.0).contains(&g), "{g}");
        }
        assert!(out.join("gamma_c_vs_c0.png").exists());
        assert!(out.join("gamma_c_vs_n.png").exists());
    }
}
