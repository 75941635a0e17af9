//! Experiment `kde-modes` (issue 13 §3): the number of modes of a kernel density estimate at
//! bandwidth beta^(-1/2), and its link to the metastable cluster count.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/kde-modes.md. Each setting in phases: the draws' counts (through the memo,
//! from simulate.rs), the means and fits against Kac-Rice (analyse.rs), the checks, the CSV
//! and the figure (figures.rs).

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
/// `bandwidth-inverse-beta`: the kernel exp(beta^2 (cos - 1)) (bandwidth 1/beta), on the
/// circle and the line. `count-minima-too`: every sign change of f' counted. `no-log-factor`:
/// issue 24's wrong model for the line, the circle's sqrt(beta) law: the stationary count
/// (1 / 2 pi) sqrt(3 beta / 2) per unit length over the dense region of the smallest n (no
/// widening with log n). `beta-as-temperature`: beta read as a temperature, the kernel
/// exp((cos - 1) / beta) (bandwidth beta^(+1/2): a wrong sign in the exponent), on the circle
/// and the line.
pub const MUTATIONS: &[&str] = &[
    "bandwidth-inverse-beta",
    "count-minima-too",
    "no-log-factor",
    "beta-as-temperature",
];

mod analyse;
mod figures;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::{Band, Check, Report, Setup, Test};
use crate::jackknife_loglog_slope_se;
use analyse::{count_modes, dense_half_width, grid_points, kac_rice_modes, line_kac_rice_modes};
use attnflow::error::{Result, input};
use attnflow::figures::Series;
use attnflow::stats::{Fit, fit_loglog, mean_se};
use sizes::Sizes;

#[derive(Serialize)]
struct Config {
    setting: &'static str,
    kernel: &'static str,
}

/// The counts at one (n, beta).
#[derive(Serialize)]
struct Point {
    beta: f64,
    modes: f64,
    modes_se: f64,
    kac_rice: f64,
    ratio_to_kac_rice: f64,
    ratio_to_sqrt_2beta: f64,
    modes_over_sqrt_beta_log_beta: f64,
    gaussian_regime: bool,
}

#[derive(Serialize)]
struct PerN {
    window: (f64, f64),
    points: Vec<Point>,
    exponent_fit: Fit,
    kac_rice_exponent: f64,
    /// The exponent of modes / sqrt(log beta) against beta: 1/2 if the count were
    /// sqrt(beta log beta); the circle's sqrt(beta) law makes it smaller.
    exponent_after_dividing_by_sqrt_log_beta: f64,
    modes_at_beta_small: Vec<usize>,
}

#[derive(Serialize)]
struct Measured {
    per_n: BTreeMap<String, PerN>,
}

#[derive(Serialize)]
struct Prediction {
    exponent: f64,
    modes_large_beta: &'static str,
    ratio_to_metastable_count_sqrt_2beta: f64,
    modes_at_beta_small: usize,
    note: &'static str,
}

/// The line at one n (beta = n^line_beta_exponent).
#[derive(Serialize)]
struct LinePoint {
    n: usize,
    beta: f64,
    /// The dense region |x| <= a (at least line_per_bandwidth samples per bandwidth).
    dense_half_width: f64,
    modes_dense: f64,
    modes_dense_se: f64,
    kac_rice_dense: f64,
    modes_total: f64,
    modes_total_se: f64,
    /// The seed's Theta(sqrt(beta log beta)): this ratio stays of order one.
    total_over_sqrt_beta_log_beta: f64,
    total_over_sqrt_beta: f64,
}

#[derive(Serialize)]
struct Line {
    points: Vec<LinePoint>,
    /// Slope of log(dense count) against log beta along the scan, with its standard error
    /// propagated from the draws, and the Kac-Rice curve's slope (1/2 plus the widening of
    /// the dense region: the seed's log factor).
    dense_exponent: f64,
    dense_exponent_se: f64,
    kac_rice_dense_exponent: f64,
}

/// The study: the circle's counts and checks, the line's, then the figure and the predictions.
pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    if sz.ns.is_empty()
        || sz.draws < 2
        || sz.grid_per_bandwidth < 2.0
        || sz.beta_small <= 0.0
        || sz.line_ns.len() < 2
    {
        return Err(input(
            "kde-modes: needs ns, draws >= 2, grid_per_bandwidth >= 2, beta_small > 0 and at \
             least two line_ns",
        ));
    }
    report.add_config(&sz);
    report.add_config(&Config {
        setting: "circle: n iid uniform angles; line (the seed's): n iid N(0, 1) samples",
        kernel: "circle: von Mises exp(beta (cos - 1)); line: exp(-beta x^2 / 2); bandwidth \
                 beta^(-1/2)",
    });
    report.backend = Some("host (f64)".into());
    let series = circle(setup, report, &sz)?;
    line(setup, report, &sz)?;
    figures::modes(setup, report, &series)?;
    report.add_prediction(&Prediction {
        exponent: 0.5,
        modes_large_beta: "sqrt(3 beta / 2) (Kac-Rice, Gaussian limit n >> beta^(1/2))",
        ratio_to_metastable_count_sqrt_2beta: 0.75f64.sqrt(),
        modes_at_beta_small: 1,
        note: "derived: Kac-Rice for the Gaussian limit of f' on the circle (uniform samples): \
               no log factor; on the line (N(0, 1) samples, the seed's setting) Kac-Rice with \
               the central limit over the dense region, whose width grows like sqrt(log n): \
               the seed's sqrt(beta log beta)",
    });
    Ok(())
}

/// The kernel's concentration as a function of beta: beta (bandwidth beta^(-1/2)), or a
/// mutation's wrong one.
#[derive(Clone, Copy, Debug, Serialize)]
enum Kernel {
    Right,
    /// `bandwidth-inverse-beta`: beta^2 (bandwidth 1/beta).
    InverseBeta,
    /// `beta-as-temperature`: 1 / beta (bandwidth beta^(+1/2)).
    Temperature,
}

impl Kernel {
    fn of(setup: &Setup) -> Self {
        if setup.mutated("bandwidth-inverse-beta") {
            Kernel::InverseBeta
        } else if setup.mutated("beta-as-temperature") {
            Kernel::Temperature
        } else {
            Kernel::Right
        }
    }
    fn kappa(self, beta: f64) -> f64 {
        match self {
            Kernel::Right => beta,
            Kernel::InverseBeta => beta * beta,
            Kernel::Temperature => 1.0 / beta,
        }
    }
}

/// The circle's counts at the n of index `ni`: per draw, (the count at beta_small, the counts
/// at each beta); the same draw serves every beta (common samples make the curve in beta
/// smoother). `minima_too`: the mutation `count-minima-too`.
/// Through the memo with every input in its key (tests share it between the quick run and
/// the mutations that leave these inputs alone).
fn circle_counts(
    setup: &Setup,
    report: &mut Report,
    inputs: (&Sizes, usize, usize, &[f64], Kernel, bool),
) -> Result<Vec<(usize, Vec<usize>)>> {
    setup.memo_with(
        report,
        "kde-modes/circle-counts",
        &inputs,
        |setup, _, &(sz, ni, n, betas, kernel, minima_too)| {
            // The kernel's concentration actually used for beta.
            let kappa = |beta: f64| kernel.kappa(beta);
            Ok((0..sz.draws)
                .into_par_iter()
                .map(|draw| {
                    let angles = simulate::angles(setup.seed, (ni * 1_000_000 + draw) as u64, n);
                    let count = |beta: f64| {
                        let k = kappa(beta);
                        let fp = simulate::derivative_on_grid(
                            &angles,
                            k,
                            grid_points(k, sz.grid_per_bandwidth),
                        );
                        count_modes(&fp, minima_too)
                    };
                    (
                        count(sz.beta_small),
                        betas.iter().map(|&b| count(b)).collect(),
                    )
                })
                .collect())
        },
    )
}

/// The line's counts at the n of index `ni` (concentration `kappa`): per draw, (the maxima
/// in the dense region |x| <= a, all maxima). Through the memo like [`circle_counts`].
fn line_counts(
    setup: &Setup,
    report: &mut Report,
    inputs: (&Sizes, usize, usize, f64, f64, bool),
) -> Result<Vec<(f64, f64)>> {
    setup.memo_with(
        report,
        "kde-modes/line-counts",
        &inputs,
        |setup, _, &(sz, ni, n, kappa, a, minima_too)| {
            Ok((0..sz.draws)
                .into_par_iter()
                .map(|draw| {
                    let x = simulate::gaussian_samples(
                        setup.seed ^ 0x11E,
                        (ni * 1_000_000 + draw) as u64,
                        n,
                    );
                    let maxima =
                        simulate::line_maxima(&x, kappa, sz.grid_per_bandwidth, minima_too);
                    let dense = maxima.iter().filter(|m| m.abs() <= a).count();
                    (dense as f64, maxima.len() as f64)
                })
                .collect())
        },
    )
}

/// Each draw's counts at one n of the circle: (at beta_small, at each beta of its window).
type Counts = [(usize, Vec<usize>)];

/// The circle's checks, gathered over the ns.
#[derive(Default)]
struct CircleChecks {
    /// The mean counts against Kac-Rice at every (n, beta) with beta <= n.
    counts: Vec<Check>,
    /// The log-log slope against Kac-Rice's, per n.
    exponents: Vec<Check>,
    /// The growth from each beta to the next, per n.
    growth: Vec<Check>,
    /// The most modes of any draw at beta_small.
    small_max: usize,
}

/// The circle: mode counts against Kac-Rice over the window of every n. Returns the figure's
/// series.
fn circle(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Vec<Series>> {
    let kernel = Kernel::of(setup);
    let minima_too = setup.mutated("count-minima-too");
    let draws = format!("{} draws (independent samples)", sz.draws);
    let mut per_n = BTreeMap::new();
    let mut checks = CircleChecks::default();
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (ni, &n) in sz.ns.iter().enumerate() {
        let (window, betas) = circle_window(sz, n)?;
        setup.say(&format!(
            "circle, n = {n}: betas {betas:?}, {} draws",
            sz.draws
        ));
        let inputs = (sz, ni, n, betas.as_slice(), kernel, minima_too);
        let counts = circle_counts(setup, report, inputs)?;
        let (per, markers) = circle_n(n, window, &betas, &counts, &draws, &mut checks, &mut rows);
        series.push(markers);
        per_n.insert(format!("n_{n}"), per);
    }
    circle_checks(report, checks, &draws);
    let mut all_betas: Vec<f64> = rows.iter().map(|r| r[1]).collect();
    all_betas.sort_by(f64::total_cmp);
    all_betas.dedup();
    series.extend(figures::theory(&all_betas));
    figures::circle_csv(setup, report, &rows)?;
    report.add_measured(&Measured { per_n });
    Ok(series)
}

/// The window n^c <= beta <= n^(2 - c) of one n of the circle, and the betas inside it (at
/// least 3).
fn circle_window(sz: &Sizes, n: usize) -> Result<((f64, f64), Vec<f64>)> {
    let window = ((n as f64).powf(sz.c), (n as f64).powf(2.0 - sz.c));
    let betas: Vec<f64> = sz
        .betas
        .iter()
        .copied()
        .filter(|&b| b >= window.0 && b <= window.1)
        .collect();
    if betas.len() < 3 {
        return Err(input(format!(
            "kde-modes: n = {n} has {} betas in its window [{:.3}, {:.3}]: needs 3",
            betas.len(),
            window.0,
            window.1
        )));
    }
    Ok((window, betas))
}

/// One n of the circle from its draws' counts: the points, the growth and the exponent, with
/// their checks (into `checks`) and CSV rows (into `rows`). Returns its summary and its series.
fn circle_n(
    n: usize,
    window: (f64, f64),
    betas: &[f64],
    counts: &Counts,
    draws: &str,
    checks: &mut CircleChecks,
    rows: &mut Vec<Vec<f64>>,
) -> (PerN, Series) {
    let small: Vec<usize> = counts.iter().map(|c| c.0).collect();
    checks.small_max = checks.small_max.max(*small.iter().max().expect("draws"));
    let points = circle_points(n, betas, counts, draws, &mut checks.counts, rows);
    checks.growth.extend(circle_growth(n, betas, counts, draws));
    let means: Vec<f64> = points.iter().map(|p| p.modes).collect();
    // The exponent's standard error by the jackknife over draws (the draws are the
    // independent units; the betas of a draw share its samples).
    let fit = fit_loglog(betas, &means);
    let per_draw: Vec<Vec<f64>> = counts
        .iter()
        .map(|c| c.1.iter().map(|&v| v as f64).collect())
        .collect();
    let slope_se = jackknife_loglog_slope_se(betas, per_draw.len(), |d, k| per_draw[d][k]);
    let krs: Vec<f64> = points.iter().map(|p| p.kac_rice).collect();
    let kr_exp = fit_loglog(betas, &krs).slope;
    checks.exponents.push(Check::new(
        format!("log-log slope of mean modes against beta, circle, n = {n}"),
        fit.slope,
        Test::Within,
        kr_exp,
        Band::stat(3.0, slope_se, format!("{draws}, jackknife")),
    ));
    let markers = Series::markers(
        format!("n = {n}: exponent {:.3} +- {:.3}", fit.slope, slope_se),
        points.iter().map(|p| (p.beta, p.modes)).collect(),
    );
    let over_sqrt_log: Vec<f64> = betas
        .iter()
        .zip(&means)
        .map(|(b, m)| m / b.ln().sqrt())
        .collect();
    let per = PerN {
        window,
        points,
        exponent_fit: fit,
        kac_rice_exponent: kr_exp,
        exponent_after_dividing_by_sqrt_log_beta: fit_loglog(betas, &over_sqrt_log).slope,
        modes_at_beta_small: small,
    };
    (per, markers)
}

/// The mean counts of one n at each beta against Kac-Rice, checked where beta <= n (the
/// Gaussian regime) into `checks`, with their CSV rows.
fn circle_points(
    n: usize,
    betas: &[f64],
    counts: &Counts,
    draws: &str,
    checks: &mut Vec<Check>,
    rows: &mut Vec<Vec<f64>>,
) -> Vec<Point> {
    let mut points = Vec::new();
    for (bi, &beta) in betas.iter().enumerate() {
        let v: Vec<f64> = counts.iter().map(|c| c.1[bi] as f64).collect();
        let (modes, modes_se) = mean_se(&v);
        let kr = kac_rice_modes(beta);
        let gaussian_regime = beta <= n as f64;
        if gaussian_regime {
            checks.push(Check::new(
                format!("mean modes, circle, n = {n}, beta = {beta}"),
                modes,
                Test::Within,
                kr,
                Band::stat(3.0, modes_se, draws),
            ));
        }
        rows.push(vec![n as f64, beta, modes, modes_se, kr]);
        points.push(Point {
            beta,
            modes,
            modes_se,
            kac_rice: kr,
            ratio_to_kac_rice: modes / kr,
            ratio_to_sqrt_2beta: modes / (2.0 * beta).sqrt(),
            modes_over_sqrt_beta_log_beta: modes / (beta * beta.ln()).sqrt(),
            gaussian_regime,
        });
    }
    points
}

/// The growth of the count from each beta of one n to the next, paired over draws (a draw
/// serves every beta): one check per step.
fn circle_growth(n: usize, betas: &[f64], counts: &Counts, draws: &str) -> Vec<Check> {
    (1..betas.len())
        .map(|bi| {
            let steps: Vec<f64> = counts
                .iter()
                .map(|c| c.1[bi] as f64 - c.1[bi - 1] as f64)
                .collect();
            let (step, step_se) = mean_se(&steps);
            Check::new(
                format!(
                    "mean modes at beta = {} minus at beta = {}, circle, n = {n}",
                    betas[bi],
                    betas[bi - 1]
                ),
                step,
                Test::Above,
                0.0,
                Band::stat(3.0, step_se, format!("{draws}, paired over the betas")),
            )
        })
        .collect()
}

/// The circle's four checks over every n: counts and exponents against Kac-Rice, growth in
/// beta, one mode at beta_small.
fn circle_checks(report: &mut Report, checks: CircleChecks, draws: &str) {
    // No beta in the Gaussian regime leaves nothing to compare: the check fails (not vacuous).
    let counts = Check::all(checks.counts).unwrap_or_else(|| {
        Check::new(
            "no (n, beta) with beta <= n: nothing compared",
            f64::NAN,
            Test::Within,
            0.0,
            Band::stat(3.0, f64::NAN, draws),
        )
    });
    report.band_check(
        "counts_within_3se_of_kac_rice",
        counts.rejects(
            &["bandwidth-inverse-beta", "count-minima-too"],
            "bandwidth 1/beta; minima counted as modes",
        ),
    );
    report.band_check(
        "exponent_within_3se_of_kac_rice",
        Check::all(checks.exponents).expect("ns").rejects(
            &["bandwidth-inverse-beta"],
            "bandwidth 1/beta: exponent about 1",
        ),
    );
    report.band_check(
        "count_grows_with_beta",
        Check::all(checks.growth).expect("3 betas per n").rejects(
            &["beta-as-temperature"],
            "beta read as a temperature (bandwidth beta^(+1/2)): one mode at every beta",
        ),
    );
    report.band_check(
        "one_mode_at_small_beta",
        Check::new(
            "the most modes of any draw at beta_small",
            checks.small_max as f64,
            Test::Within,
            1.0,
            Band::exact(
                0.0,
                "an exact count (f = 1 + beta rho cos(theta - phi) + O(beta^2))",
            ),
        )
        .rejects(&["count-minima-too"], "minima counted: 2 at small beta"),
    );
}

/// The line (the seed's setting): N(0, 1) samples, Gaussian kernel, beta = n^a along the
/// scan; dense-region counts against Kac-Rice with the central limit.
fn line(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<()> {
    let draws = format!("{} draws (independent samples)", sz.draws);
    let mut ns = sz.line_ns.clone();
    ns.sort_unstable();
    ns.dedup();
    let (points, dense_by_draw) = line_points(setup, report, sz, &ns)?;
    let betas: Vec<f64> = points.iter().map(|p| p.beta).collect();
    let dense: Vec<f64> = points.iter().map(|p| p.modes_dense).collect();
    let kr: Vec<f64> = points.iter().map(|p| p.kac_rice_dense).collect();
    let fit = fit_loglog(&betas, &dense);
    let slope_se =
        jackknife_loglog_slope_se(&betas, dense_by_draw.len(), |d, k| dense_by_draw[d][k]);
    let kr_exp = fit_loglog(&betas, &kr).slope;
    line_checks(report, &points, (fit.slope, slope_se, kr_exp), &draws);
    figures::line_csv(setup, report, &points)?;
    report.measured(
        "line",
        Line {
            points,
            dense_exponent: fit.slope,
            dense_exponent_se: slope_se,
            kac_rice_dense_exponent: kr_exp,
        },
    );
    Ok(())
}

/// beta = n^line_beta_exponent: the line's beta at n.
fn line_beta(sz: &Sizes, n: usize) -> f64 {
    (n as f64).powf(sz.line_beta_exponent)
}

/// The half-width of the line's dense region at n (an error where even x = 0 is too sparse).
fn line_width(sz: &Sizes, n: usize) -> Result<f64> {
    dense_half_width(n, line_beta(sz, n), sz.line_per_bandwidth).ok_or_else(|| {
        input(format!(
            "kde-modes: the line at n = {n}, beta = {} has fewer than line_per_bandwidth = {} \
             samples per bandwidth even at 0",
            line_beta(sz, n),
            sz.line_per_bandwidth
        ))
    })
}

/// The line's draws at every n of its scan `ns` (sorted): the mean dense and total counts
/// against Kac-Rice over the dense region, and each draw's dense counts [draw][k] (for the
/// jackknife).
fn line_points(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    ns: &[usize],
) -> Result<(Vec<LinePoint>, Vec<Vec<f64>>)> {
    let kernel = Kernel::of(setup);
    let minima_too = setup.mutated("count-minima-too");
    let no_log = setup.mutated("no-log-factor");
    let a0 = line_width(sz, ns[0])?;
    let mut points = Vec::new();
    let mut dense_by_draw = vec![Vec::new(); sz.draws];
    for (ni, &n) in ns.iter().enumerate() {
        let beta = line_beta(sz, n);
        let a = line_width(sz, n)?;
        setup.say(&format!(
            "line, n = {n}: beta = {beta:.0}, dense |x| <= {a:.3}"
        ));
        let kappa = kernel.kappa(beta);
        let counts = line_counts(setup, report, (sz, ni, n, kappa, a, minima_too))?;
        for (d, c) in dense_by_draw.iter_mut().zip(&counts) {
            d.push(c.0);
        }
        let (modes_dense, modes_dense_se) =
            mean_se(&counts.iter().map(|c| c.0).collect::<Vec<_>>());
        let (modes_total, modes_total_se) =
            mean_se(&counts.iter().map(|c| c.1).collect::<Vec<_>>());
        let kac_rice_dense = if no_log {
            (1.5 * beta).sqrt() / std::f64::consts::TAU * 2.0 * a0
        } else {
            line_kac_rice_modes(beta, n, a)
        };
        points.push(LinePoint {
            n,
            beta,
            dense_half_width: a,
            modes_dense,
            modes_dense_se,
            kac_rice_dense,
            modes_total,
            modes_total_se,
            total_over_sqrt_beta_log_beta: modes_total / (beta * beta.ln()).sqrt(),
            total_over_sqrt_beta: modes_total / beta.sqrt(),
        });
    }
    Ok((points, dense_by_draw))
}

/// The line's two checks: the dense counts against Kac-Rice at every n, and their log-log
/// slope (with its jackknife se) against Kac-Rice's along the scan.
fn line_checks(
    report: &mut Report,
    points: &[LinePoint],
    (slope, slope_se, kr_exp): (f64, f64, f64),
    draws: &str,
) {
    let wrong = "the circle's sqrt(beta) law on the line (no widening of the dense region)";
    report.band_check(
        "line_dense_counts_within_3se_of_kac_rice",
        Check::all(
            points
                .iter()
                .map(|p| {
                    Check::new(
                        format!(
                            "mean modes in |x| <= {:.3}, line, n = {}, beta = {:.0}",
                            p.dense_half_width, p.n, p.beta
                        ),
                        p.modes_dense,
                        Test::Within,
                        p.kac_rice_dense,
                        Band::stat(3.0, p.modes_dense_se, draws),
                    )
                })
                .collect(),
        )
        .expect("line_ns")
        .rejects(
            &[
                "bandwidth-inverse-beta",
                "count-minima-too",
                "no-log-factor",
            ],
            format!("bandwidth 1/beta; minima counted; {wrong}"),
        ),
    );
    report.band_check(
        "line_dense_exponent_within_3se_of_kac_rice",
        Check::new(
            "log-log slope of the dense count against beta along the line's scan",
            slope,
            Test::Within,
            kr_exp,
            Band::stat(3.0, slope_se, format!("{draws}, jackknife")),
        )
        .rejects(
            &["bandwidth-inverse-beta", "no-log-factor"],
            format!("{wrong}: slope 1/2"),
        ),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_kde_modes_follow_kac_rice() {
        let (_dir, out, _) = super::super::quick_run_checked("kde-modes");
        assert!(out.join("kde_modes.png").exists());
    }
}
