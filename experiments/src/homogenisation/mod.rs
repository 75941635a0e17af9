//! Experiment `homogenisation` (issue 13 §3): random deep multi-head attention whose Q, K, V
//! are redrawn at every layer and head (Koubbi, Geshkovski, Rigollet, "Homogenized
//! Transformers", arXiv:2604.01978): the deterministic limit, the common-noise limit, and
//! collapse against dimension, context length and temperature.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/homogenisation.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
/// `fixed-over-depth`: the heads drawn once and kept at every layer. `heads-identical`: the H
/// heads one head repeated. `d-plus-1-over-2`: issue 24's wrong model, (d + 1) / 2 in place
/// of d - 1 in the theory (the displacement's factor (d - 1) / d and the generator's Ito
/// term); equal at d = 3 only: the d-scans reject it.
pub const MUTATIONS: &[&str] = &["fixed-over-depth", "heads-identical", "d-plus-1-over-2"];

mod analyse;
mod simulate;
pub mod sizes;

use rayon::prelude::*;
use serde::Serialize;

use super::{Band, Check, Report, Setup, Test};
use analyse::{
    cosine_drift_with, cumulative_trapezoid, initial_cosine_rate_beta0, initial_msd_rate_beta0,
    mean_cosine, mean_overlap_gap, output_gram, overlap_drift_with, sigma2,
};
use attnflow::error::{Result, input};
use attnflow::figures::{Axes, Series};
use attnflow::stats::{Fit, fit_line, fit_loglog, mean, mean_se};
use simulate::{Run, Spec, run_seed};
use sizes::Sizes;

#[derive(Serialize)]
struct Config {
    setting: &'static str,
    weights: &'static str,
}

#[derive(Serialize)]
struct DetPoint {
    heads: usize,
    h: f64,
    d: usize,
    sigma2: f64,
    msd: f64,
    msd_se: f64,
    predicted: f64,
    ratio: f64,
    ratio_se: f64,
}

#[derive(Serialize)]
struct NoisePoint {
    h: f64,
    heads: usize,
    sigma2: f64,
    overlap_gap: f64,
    overlap_gap_se: f64,
    overlap_gap_generator: f64,
    overlap_gap_diff_se: f64,
    cosine_increase: f64,
    cosine_increase_se: f64,
    cosine_increase_generator: f64,
    cosine_increase_diff_se: f64,
    initial_msd_rate: f64,
    initial_msd_rate_se: f64,
    initial_msd_rate_theory: f64,
    /// The standard error of (initial rate - theory), paired over runs.
    initial_msd_rate_diff_se: f64,
    /// (initial rate - theory) per run, for the extrapolation in h (runs share their seeds
    /// across h, so the extrapolation is resampled over runs).
    #[serde(skip)]
    initial_msd_rate_diffs: Vec<f64>,
}

#[derive(Serialize)]
struct CollapsePoint {
    scan: &'static str,
    d: usize,
    n: usize,
    beta: f64,
    cosine_increase: f64,
    cosine_increase_se: f64,
    generator: f64,
    diff_se: f64,
    initial_rate_closed_form_beta0: Option<f64>,
}

#[derive(Serialize)]
struct Measured {
    det_heads: Vec<DetPoint>,
    det_steps: Vec<DetPoint>,
    det_dims: Vec<DetPoint>,
    det_exponent_heads: Fit,
    det_exponent_h: Fit,
    /// The exponents' standard errors by the jackknife over runs (the checks' se).
    det_exponent_heads_se: f64,
    det_exponent_h_se: f64,
    noise: Vec<NoisePoint>,
    collapse: Vec<CollapsePoint>,
    collapse_exponent_n: Fit,
    collapse_exponent_n_generator: f64,
}

#[derive(Serialize)]
struct Prediction {
    det_exponent_heads: f64,
    det_exponent_h: f64,
    det_msd: &'static str,
    noise_generator: &'static str,
    collapse_initial_rate_beta0: &'static str,
    collapse_exponent_n_closed_form_initial: f64,
    limiting_drift: f64,
    /// The initial rate of E|x - x0|^2 at beta = 0 from uniform tokens, for reference.
    noise_initial_msd_rate_at_beta0: f64,
}

/// The factor the theory puts where the derivation has d - 1 (the wrong model under
/// `d-plus-1-over-2`).
fn dm1(setup: &Setup, d: usize) -> f64 {
    if setup.mutated("d-plus-1-over-2") {
        (d as f64 + 1.0) / 2.0
    } else {
        d as f64 - 1.0
    }
}

/// Per system, at each observation time: (overlap gap, mean cosine, overlap drift, cosine
/// drift) of one run; `mc_seed` keys the Monte Carlo G.
fn path_measures(
    setup: &Setup,
    run: &Run,
    spec: &Spec,
    sig2: f64,
    draws: usize,
    mc_seed: u64,
) -> Vec<Vec<[f64; 4]>> {
    let (n, d) = (spec.n, spec.d);
    let f = dm1(setup, d);
    let x0 = &run.states[0];
    (0..spec.batch)
        .into_par_iter()
        .map(|b| {
            let r = b * n * d..(b + 1) * n * d;
            run.states
                .iter()
                .enumerate()
                .map(|(k, x)| {
                    let (x, x0) = (&x[r.clone()], &x0[r.clone()]);
                    let g = output_gram(
                        x,
                        d,
                        spec.betas[b],
                        spec.scale,
                        draws,
                        mc_seed ^ ((b as u64) << 20) ^ k as u64,
                    );
                    [
                        mean_overlap_gap(x, x0, d),
                        mean_cosine(x, d),
                        overlap_drift_with(x, x0, &g, d, sig2, f),
                        cosine_drift_with(x, &g, d, sig2, f),
                    ]
                })
                .collect()
        })
        .collect()
}

/// Per system of `systems`: (measured increase at T, integrated generator drift) of column
/// `value` with drift column `drift`.
fn increments(
    m: &[Vec<[f64; 4]>],
    times: &[f64],
    systems: &[usize],
    value: usize,
    drift: usize,
) -> (f64, f64) {
    let (mut meas, mut pred) = (0.0, 0.0);
    for &b in systems {
        let row = &m[b];
        let f: Vec<f64> = row.iter().map(|r| r[drift]).collect();
        meas += row.last().unwrap()[value] - row[0][value];
        pred += *cumulative_trapezoid(times, &f).last().unwrap();
    }
    (meas / systems.len() as f64, pred / systems.len() as f64)
}

fn validate(sz: &Sizes) -> Result<()> {
    if sz.d < 3
        || sz.n < 2
        || sz.batch == 0
        || sz.runs < 3
        || sz.gram_draws == 0
        || sz.det_heads.len() < 3
        || sz.det_hs.len() < 3
        || sz.det_ds.len() < 2
        || sz.noise_hs.is_empty()
        || sz.ns.len() < 2
        || sz.weight_scale <= 0.0
        || sz.sigma2 <= 0.0
        || sz.observe < 2
    {
        return Err(input(
            "homogenisation: needs d >= 3, n >= 2, batch >= 1, runs >= 3, gram_draws >= 1, \
             3 det_heads, 3 det_hs, 2 det_ds, noise_hs, 2 ns, weight_scale > 0, sigma2 > 0, \
             observe >= 2",
        ));
    }
    Ok(())
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    validate(&sz)?;
    report.add_config(&sz);
    report.add_config(&Config {
        setting: "SA, full attention, sphere; one Euler step (residual layer + normalisation) per layer",
        weights: "Q, K, V iid N(0, s^2/d), redrawn at every layer and head (RandomHeads)",
    });
    let det = deterministic(setup, report, &sz)?;
    let noise = common_noise(setup, report, &sz)?;
    let collapse = collapse(setup, report, &sz)?;
    check_all(setup, report, &sz, &det, &noise, &collapse);
    files(setup, report, &sz, &det, &noise, &collapse)?;
    summary(report, &sz, det, noise, collapse);
    Ok(())
}

/// Part (a): the scans in H, h and d, with per-run values for the jackknife of the exponents.
struct Det {
    heads: Vec<DetPoint>,
    steps: Vec<DetPoint>,
    dims: Vec<DetPoint>,
    /// Per scan point, per run: the measured displacement (for the jackknife).
    heads_runs: Vec<Vec<f64>>,
    steps_runs: Vec<Vec<f64>>,
    exponent_heads: Fit,
    exponent_h: Fit,
}

/// One scan of part (a) over (heads, h, d) points; returns the points and the per-run
/// displacements.
fn det_scan(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    part: u64,
    points: &[(usize, f64, usize)],
) -> Result<(Vec<DetPoint>, Vec<Vec<f64>>)> {
    let s = sz.weight_scale;
    let n = sz.n;
    // rows[point][run] = (msd, prediction). The prediction is the generator's overlap drift
    // at the initial tokens (G by Monte Carlo), integrated with G frozen: E<x, x0> = e^{-a t},
    // a = sigma^2 (d - 1) G_ii / (2 d), so E|x - x0|^2 = 2 (1 - e^{-a T}) per token.
    let mut rows: Vec<Vec<(f64, f64)>> = vec![Vec::new(); points.len()];
    for r in 0..sz.runs {
        let seed = run_seed(setup.seed, part, r);
        for (p, &(heads, h, d)) in points.iter().enumerate() {
            let spec = Spec {
                batch: sz.batch,
                n,
                d,
                betas: vec![sz.beta; sz.batch],
                heads,
                mean: true,
                scale: s,
                h,
                steps: (sz.det_t / h).round().max(1.0) as usize,
                observe: 1,
                seed,
            };
            let run = simulate::run(setup, report, &spec)?;
            let (x0, xt) = (&run.states[0], run.states.last().unwrap());
            let t = *run.times.last().unwrap();
            let per = n * d;
            let sig2 = sigma2(h, heads, true, s);
            let f = dm1(setup, d);
            let (msd, pred) = (0..sz.batch)
                .into_par_iter()
                .map(|b| {
                    let r = b * per..(b + 1) * per;
                    let x = &x0[r.clone()];
                    let g = output_gram(x, d, sz.beta, s, sz.gram_draws, seed ^ ((b as u64) << 24));
                    let a = overlap_drift_with(x, x, &g, d, sig2, f);
                    (
                        2.0 * mean_overlap_gap(&xt[r], x, d),
                        2.0 * (1.0 - (-a * t).exp()),
                    )
                })
                .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            rows[p].push((msd / sz.batch as f64, pred / sz.batch as f64));
        }
    }
    let pts = points
        .iter()
        .zip(&rows)
        .map(|(&(heads, h, d), v)| {
            let (msd, msd_se) = mean_se(&v.iter().map(|p| p.0).collect::<Vec<_>>());
            let (ratio, ratio_se) = mean_se(&v.iter().map(|p| p.0 / p.1).collect::<Vec<_>>());
            DetPoint {
                heads,
                h,
                d,
                sigma2: sigma2(h, heads, true, s),
                msd,
                msd_se,
                predicted: mean(&v.iter().map(|p| p.1).collect::<Vec<_>>()),
                ratio,
                ratio_se,
            }
        })
        .collect();
    Ok((
        pts,
        rows.iter()
            .map(|v| v.iter().map(|p| p.0).collect())
            .collect(),
    ))
}

fn deterministic(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Det> {
    setup.say(&format!(
        "(a) deterministic limit: H in {:?}, h in {:?}, d in {:?}",
        sz.det_heads, sz.det_hs, sz.det_ds
    ));
    let d = sz.d;
    let pts: Vec<_> = sz.det_heads.iter().map(|&hd| (hd, sz.det_h, d)).collect();
    let (heads, heads_runs) = det_scan(setup, report, sz, 1, &pts)?;
    let pts: Vec<_> = sz.det_hs.iter().map(|&h| (sz.det_h_heads, h, d)).collect();
    let (steps, steps_runs) = det_scan(setup, report, sz, 2, &pts)?;
    let pts: Vec<_> = sz
        .det_ds
        .iter()
        .map(|&dd| (sz.det_h_heads, sz.det_h, dd))
        .collect();
    let (dims, _) = det_scan(setup, report, sz, 4, &pts)?;
    let fit_of = |pts: &[DetPoint], x: &dyn Fn(&DetPoint) -> f64| {
        fit_loglog(
            &pts.iter().map(x).collect::<Vec<_>>(),
            &pts.iter().map(|p| p.msd).collect::<Vec<_>>(),
        )
    };
    Ok(Det {
        exponent_heads: fit_of(&heads, &|p| p.heads as f64),
        exponent_h: fit_of(&steps, &|p| p.h),
        heads,
        steps,
        dims,
        heads_runs,
        steps_runs,
    })
}

/// The jackknife over runs of the log-log slope of the run-mean of `runs[point][run]`
/// against x: its standard error.
fn jackknife_slope_se(x: &[f64], runs: &[Vec<f64>]) -> f64 {
    crate::jackknife_loglog_slope_se(x, runs[0].len(), |run, k| runs[k][run])
}

/// Part (b): the common-noise limit at several h, same sigma^2. Returns the points and the
/// figure's series.
fn common_noise(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
) -> Result<(Vec<NoisePoint>, Vec<Series>)> {
    let s = sz.weight_scale;
    let mut noise: Vec<NoisePoint> = Vec::new();
    let mut series = Vec::new();
    for (hi, &h) in sz.noise_hs.iter().enumerate() {
        let heads = (sz.sigma2 / (h * s * s)).round().max(1.0) as usize;
        let sig2 = sigma2(h, heads, false, s);
        setup.say(&format!(
            "(b) common noise: h = {h}, H = {heads}, sigma^2 = {sig2:.4}"
        ));
        let mut per_run = Vec::new();
        let mut curve = Vec::new();
        for r in 0..sz.runs {
            let spec = Spec {
                batch: sz.batch,
                n: sz.n,
                d: sz.d,
                betas: vec![sz.beta; sz.batch],
                heads,
                mean: false,
                scale: s,
                h,
                steps: (sz.noise_t / h).round().max(1.0) as usize,
                observe: sz.observe,
                seed: run_seed(setup.seed, 3, r),
            };
            let run = simulate::run(setup, report, &spec)?;
            let m = path_measures(setup, &run, &spec, sig2, sz.gram_draws, spec.seed ^ 0xabcd);
            let all: Vec<usize> = (0..sz.batch).collect();
            let (u, u_pred) = increments(&m, &run.times, &all, 0, 2);
            let (c, c_pred) = increments(&m, &run.times, &all, 1, 3);
            // Initial rate of the mean squared displacement: 2 u(t_1) / t_1.
            let u1 = all.iter().map(|&b| m[b][1][0]).sum::<f64>() / sz.batch as f64;
            let rate = 2.0 * u1 / run.times[1];
            let rate_theory = all.iter().map(|&b| 2.0 * m[b][0][2]).sum::<f64>() / sz.batch as f64;
            per_run.push([u, u_pred, c, c_pred, rate, rate_theory]);
            if r == 0 {
                curve = run
                    .times
                    .iter()
                    .enumerate()
                    .map(|(k, &t)| {
                        (
                            t,
                            all.iter().map(|&b| m[b][k][0]).sum::<f64>() / sz.batch as f64,
                        )
                    })
                    .collect();
            }
        }
        let col = |i: usize| per_run.iter().map(|v| v[i]).collect::<Vec<f64>>();
        let diff = |i: usize, j: usize| per_run.iter().map(|v| v[i] - v[j]).collect::<Vec<f64>>();
        let (u, u_se) = mean_se(&col(0));
        let (c, c_se) = mean_se(&col(2));
        let (rate, rate_se) = mean_se(&col(4));
        noise.push(NoisePoint {
            h,
            heads,
            sigma2: sig2,
            overlap_gap: u,
            overlap_gap_se: u_se,
            overlap_gap_generator: mean(&col(1)),
            overlap_gap_diff_se: mean_se(&diff(0, 1)).1,
            cosine_increase: c,
            cosine_increase_se: c_se,
            cosine_increase_generator: mean(&col(3)),
            cosine_increase_diff_se: mean_se(&diff(2, 3)).1,
            initial_msd_rate: rate,
            initial_msd_rate_se: rate_se,
            initial_msd_rate_theory: mean(&col(5)),
            initial_msd_rate_diff_se: mean_se(&diff(4, 5)).1,
            initial_msd_rate_diffs: diff(4, 5),
        });
        series.push(Series::markers(format!("h = {h}, H = {heads}"), curve));
        if hi == 0 {
            series.push(Series::theory(
                "initial slope sigma^2 (d - 1) / (2 d) E G_ii",
                vec![
                    (0.0, 0.0),
                    (
                        sz.noise_t,
                        noise[0].initial_msd_rate_theory / 2.0 * sz.noise_t,
                    ),
                ],
            ));
        }
    }
    Ok((noise, series))
}

/// Part (c): collapse against d, n (beta = 0) and beta, in the common-noise regime.
fn collapse(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<Vec<CollapsePoint>> {
    let s = sz.weight_scale;
    let heads_c = (sz.sigma2 / (sz.collapse_h * s * s)).round().max(1.0) as usize;
    let sig2_c = sigma2(sz.collapse_h, heads_c, false, s);
    let steps_c = (sz.collapse_t / sz.collapse_h).round().max(1.0) as usize;
    // One run per (d, n): the systems of the batch carry the betas.
    let mut groups: Vec<(&'static str, usize, usize, Vec<f64>)> = Vec::new();
    groups.extend(sz.ds.iter().map(|&dd| ("d", dd, sz.n, vec![0.0])));
    groups.extend(sz.ns.iter().map(|&nn| ("n", sz.d, nn, vec![0.0])));
    groups.push(("beta", sz.d, sz.n, sz.betas.clone()));
    let mut out = Vec::new();
    for (gi, (scan, dd, nn, betas)) in groups.iter().enumerate() {
        setup.say(&format!(
            "(c) collapse: d = {dd}, n = {nn}, betas {betas:?}, H = {heads_c}"
        ));
        let nb = betas.len();
        // per_run[r][beta index] = (measured, generator)
        let mut per_run: Vec<Vec<(f64, f64)>> = Vec::new();
        for r in 0..sz.runs {
            let spec = Spec {
                batch: sz.batch * nb,
                n: *nn,
                d: *dd,
                betas: (0..sz.batch * nb).map(|b| betas[b % nb]).collect(),
                heads: heads_c,
                mean: false,
                scale: s,
                h: sz.collapse_h,
                steps: steps_c,
                observe: sz.observe,
                seed: run_seed(setup.seed, 10 + gi as u64, r),
            };
            let run = simulate::run(setup, report, &spec)?;
            let m = path_measures(
                setup,
                &run,
                &spec,
                sig2_c,
                sz.gram_draws,
                spec.seed ^ 0x1234,
            );
            per_run.push(
                (0..nb)
                    .map(|bi| {
                        let systems: Vec<usize> =
                            (0..sz.batch * nb).filter(|b| b % nb == bi).collect();
                        increments(&m, &run.times, &systems, 1, 3)
                    })
                    .collect(),
            );
        }
        for (bi, &beta) in betas.iter().enumerate() {
            let meas: Vec<f64> = per_run.iter().map(|v| v[bi].0).collect();
            let diff: Vec<f64> = per_run.iter().map(|v| v[bi].0 - v[bi].1).collect();
            let (c, c_se) = mean_se(&meas);
            out.push(CollapsePoint {
                scan,
                d: *dd,
                n: *nn,
                beta,
                cosine_increase: c,
                cosine_increase_se: c_se,
                generator: mean(&per_run.iter().map(|v| v[bi].1).collect::<Vec<_>>()),
                diff_se: mean_se(&diff).1,
                initial_rate_closed_form_beta0: (beta == 0.0)
                    .then(|| initial_cosine_rate_beta0(*nn, *dd, sig2_c)),
            });
        }
    }
    Ok(out)
}

/// The typed checks of the three parts (docs/experiments/homogenisation.md).
fn check_all(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    det: &Det,
    noise: &(Vec<NoisePoint>, Vec<Series>),
    collapse: &[CollapsePoint],
) {
    let _ = setup;
    check_deterministic(report, sz, det);
    check_noise_and_collapse(report, sz, &noise.0, collapse);
}

/// The band's k, the description of the runs and of the paired comparisons.
/// The initial rate's deviation from the generator extrapolated to h = 0.
#[derive(Serialize)]
struct InitialRateFit {
    noise_initial_rate_minus_theory_at_h0: f64,
    noise_initial_rate_minus_theory_at_h0_se: f64,
    /// The fitted O(h) coefficient (the discrete map's bias per unit h).
    noise_initial_rate_minus_theory_slope_in_h: f64,
}

/// (intercept at h = 0, its standard error over runs, slope in h) of the least-squares line
/// through (h, rate - theory). The intercept is linear in the points, so it is formed per run
/// ([`fit_line`]) and its mean and standard error taken over runs (the runs at different h
/// share their seeds: resampling them keeps the correlation).
fn extrapolate_to_h0(pts: &[NoisePoint]) -> (f64, f64, f64) {
    let x: Vec<f64> = pts.iter().map(|p| p.h).collect();
    let runs = pts[0].initial_msd_rate_diffs.len();
    // The line through one run's points (one h: no extrapolation, the point itself).
    let line = |y: &[f64]| -> (f64, f64) {
        if x.len() < 2 {
            (y[0], 0.0)
        } else {
            let f = fit_line(&x, y);
            (f.intercept, f.slope)
        }
    };
    let per_run: Vec<f64> = (0..runs)
        .map(|r| {
            let y: Vec<f64> = pts.iter().map(|p| p.initial_msd_rate_diffs[r]).collect();
            line(&y).0
        })
        .collect();
    let (at_zero, se) = mean_se(&per_run);
    let means: Vec<f64> = pts
        .iter()
        .map(|p| p.initial_msd_rate - p.initial_msd_rate_theory)
        .collect();
    (at_zero, se, line(&means).1)
}

fn bands(sz: &Sizes) -> (f64, String, String) {
    // The se come from `runs` runs (8 at the quick size): k is the Student-t quantile at
    // the level of 3 normal se (4.5 for 8 runs), not 3.
    let k = super::student_k(sz.runs);
    let runs = format!(
        "{} runs (independent weights and tokens); k = t quantile, {} dof",
        sz.runs,
        sz.runs - 1
    );
    let paired = format!(
        "{} runs, paired (measured - generator on the same paths); k = t quantile",
        sz.runs
    );
    (k, runs, paired)
}

const WRONG_D: &str = "(d + 1) / 2 in place of d - 1";

/// The checks of part (a).
fn check_deterministic(report: &mut Report, sz: &Sizes, det: &Det) {
    let (k, runs, _) = bands(sz);
    let wrong_d = WRONG_D;
    let ratio = |p: &DetPoint, what: &str| {
        Check::new(
            format!(
                "E|x(T) - x(0)|^2 / theory, {what}: H = {}, h = {}, d = {}",
                p.heads, p.h, p.d
            ),
            p.ratio,
            Test::Within,
            1.0,
            Band::stat(k, p.ratio_se, &runs),
        )
    };
    let scans: Vec<Check> = det
        .heads
        .iter()
        .map(|p| ratio(p, "H scan"))
        .chain(det.steps.iter().map(|p| ratio(p, "h scan")))
        .collect();
    report.band_check(
        "det_msd_matches_theory",
        Check::all(scans).expect("points").rejects(
            &["fixed-over-depth", "heads-identical"],
            "heads fixed over depth (coherent drift); identical heads (no averaging)",
        ),
    );
    report.band_check(
        "det_msd_d_scan_matches_d_minus_1_over_d",
        Check::all(det.dims.iter().map(|p| ratio(p, "d scan")).collect())
            .expect("det_ds")
            .rejects(
                &["d-plus-1-over-2"],
                format!("{wrong_d}: (d + 1) / (2 d) of the displacement"),
            ),
    );
    let pred_exp = |pts: &[DetPoint], x: &dyn Fn(&DetPoint) -> f64| {
        fit_loglog(
            &pts.iter().map(x).collect::<Vec<_>>(),
            &pts.iter().map(|p| p.predicted).collect::<Vec<_>>(),
        )
        .slope
    };
    let xs_h: Vec<f64> = det.heads.iter().map(|p| p.heads as f64).collect();
    let xs_s: Vec<f64> = det.steps.iter().map(|p| p.h).collect();
    report.band_check(
        "det_exponents",
        Check::all(vec![
            Check::new(
                "log-log slope of E|x(T) - x(0)|^2 in H",
                det.exponent_heads.slope,
                Test::Within,
                pred_exp(&det.heads, &|p| p.heads as f64),
                Band::stat(
                    k,
                    jackknife_slope_se(&xs_h, &det.heads_runs),
                    format!("{runs}, jackknife"),
                ),
            ),
            Check::new(
                "log-log slope of E|x(T) - x(0)|^2 in h",
                det.exponent_h.slope,
                Test::Within,
                pred_exp(&det.steps, &|p| p.h),
                Band::stat(
                    k,
                    jackknife_slope_se(&xs_s, &det.steps_runs),
                    format!("{runs}, jackknife"),
                ),
            ),
        ])
        .expect("two")
        .rejects(
            &["fixed-over-depth", "heads-identical"],
            "coherent drift (slope -1 in h); no averaging over heads (slope 0 in H)",
        ),
    );
}

/// The checks of parts (b) and (c).
fn check_noise_and_collapse(
    report: &mut Report,
    sz: &Sizes,
    pts: &[NoisePoint],
    collapse: &[CollapsePoint],
) {
    let (k, runs, paired) = bands(sz);
    let wrong_d = WRONG_D;
    let generator = pts.iter().flat_map(|p| {
        [
            Check::new(
                format!("overlap gap at T - generator integral, h = {}", p.h),
                p.overlap_gap - p.overlap_gap_generator,
                Test::Within,
                0.0,
                Band::stat(k, p.overlap_gap_diff_se, &paired),
            ),
            Check::new(
                format!("cosine increase at T - generator integral, h = {}", p.h),
                p.cosine_increase - p.cosine_increase_generator,
                Test::Within,
                0.0,
                Band::stat(k, p.cosine_increase_diff_se, &paired),
            ),
        ]
    });
    report.band_check(
        "noise_matches_generator",
        Check::all(generator.collect()).expect("noise_hs").rejects(
            &["fixed-over-depth", "heads-identical", "d-plus-1-over-2"],
            format!("coherent or unaveraged heads; {wrong_d}"),
        ),
    );
    // The initial rate is the generator's in the limit h -> 0: the discrete map's own bias is
    // O(h) (at the default size, seed 0: -0.0138 +- 0.0030 at h = 0.1, then -0.0027, -0.0025,
    // +0.0005 at h = 0.05, 0.025, 0.0125, each +- 0.003-0.004), so the check is on the
    // deviation extrapolated to h = 0 by a least-squares line in h, resampled over runs.
    let (at_zero, at_zero_se, slope) = extrapolate_to_h0(pts);
    report.band_check(
        "noise_initial_rate_matches_theory",
        Check::new(
            "initial rate of E|x - x0|^2 - sigma^2 (d - 1) / d G_ii, extrapolated to h = 0 \
             (line in h over the scan)",
            at_zero,
            Test::Within,
            0.0,
            Band::stat(
                k,
                at_zero_se,
                format!("{paired}; the line's intercept per run"),
            ),
        )
        .rejects(
            &["heads-identical", "d-plus-1-over-2"],
            format!("unaveraged heads; {wrong_d}"),
        ),
    );
    report.add_measured(&InitialRateFit {
        noise_initial_rate_minus_theory_at_h0: at_zero,
        noise_initial_rate_minus_theory_at_h0_se: at_zero_se,
        noise_initial_rate_minus_theory_slope_in_h: slope,
    });
    let finest = pts.last().expect("noise_hs");
    report.band_check(
        "noise_limit_independent_of_h",
        Check::all(
            pts.iter()
                .map(|p| {
                    Check::new(
                        format!("overlap gap at T, h = {} - finest h", p.h),
                        p.overlap_gap - finest.overlap_gap,
                        Test::Within,
                        0.0,
                        Band::stat(
                            k,
                            (p.overlap_gap_se.powi(2) + finest.overlap_gap_se.powi(2)).sqrt(),
                            format!("{runs} per h, combined"),
                        ),
                    )
                })
                .collect(),
        )
        .expect("noise_hs")
        .rejects(
            &["fixed-over-depth"],
            "heads fixed over depth: the sum over sigma^2 / h heads grows coherently, more \
             the finer h",
        ),
    );
    report.band_check(
        "collapse_matches_generator",
        Check::all(collapse.iter().map(|p| Check::new(
            format!("cosine increase at T - generator integral ({} scan: d = {}, n = {}, beta = {})", p.scan, p.d, p.n, p.beta),
            p.cosine_increase - p.generator, Test::Within, 0.0, Band::stat(k, p.diff_se, &paired))).collect())
        .expect("points")
        .rejects(&["fixed-over-depth", "heads-identical"], "coherent or unaveraged heads"),
    );
}

/// The CSV files and figures.
fn files(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    det: &Det,
    noise: &(Vec<NoisePoint>, Vec<Series>),
    collapse: &[CollapsePoint],
) -> Result<()> {
    let _ = sz;
    let (det_heads, det_steps) = (&det.heads, &det.steps);
    let (noise, noise_series) = (&noise.0, &noise.1);
    let mut rows = Vec::new();
    for p in det_heads.iter().chain(det_steps.iter()) {
        rows.push(vec![
            p.heads as f64,
            p.h,
            p.sigma2,
            p.msd,
            p.msd_se,
            p.predicted,
        ]);
    }
    setup.csv(
        report,
        "deterministic.csv",
        &["heads", "h", "sigma2", "msd", "msd_se", "predicted"],
        &rows,
    )?;
    let rows: Vec<Vec<f64>> = noise
        .iter()
        .map(|p| {
            vec![
                p.h,
                p.heads as f64,
                p.sigma2,
                p.overlap_gap,
                p.overlap_gap_se,
                p.overlap_gap_generator,
                p.cosine_increase,
                p.cosine_increase_se,
                p.cosine_increase_generator,
            ]
        })
        .collect();
    setup.csv(
        report,
        "common_noise.csv",
        &[
            "h",
            "heads",
            "sigma2",
            "overlap_gap",
            "overlap_gap_se",
            "overlap_gap_generator",
            "cosine_increase",
            "cosine_increase_se",
            "cosine_increase_generator",
        ],
        &rows,
    )?;
    let rows: Vec<Vec<f64>> = collapse
        .iter()
        .map(|p| {
            vec![
                p.d as f64,
                p.n as f64,
                p.beta,
                p.cosine_increase,
                p.cosine_increase_se,
                p.generator,
            ]
        })
        .collect();
    setup.csv(
        report,
        "collapse.csv",
        &[
            "d",
            "n",
            "beta",
            "cosine_increase",
            "cosine_increase_se",
            "generator",
        ],
        &rows,
    )?;
    figures(setup, report, det, noise_series, collapse)
}

/// The figures.
fn figures(
    setup: &Setup,
    report: &mut Report,
    det: &Det,
    noise_series: &[Series],
    collapse: &[CollapsePoint],
) -> Result<()> {
    let (det_heads, det_steps) = (&det.heads, &det.steps);
    let (det_exponent_heads, det_exponent_h) = (&det.exponent_heads, &det.exponent_h);
    let det_series = |pts: &[DetPoint], x: &dyn Fn(&DetPoint) -> f64, label: &str| {
        vec![
            Series::markers(
                label.to_string(),
                pts.iter().map(|p| (x(p), p.msd)).collect(),
            ),
            Series::theory(
                "T sigma^2 (d - 1) / d E G_ii",
                pts.iter().map(|p| (x(p), p.predicted)).collect(),
            ),
        ]
    };
    setup.lines(
        report,
        "deterministic_heads.png",
        &Axes {
            title: "Deterministic limit: mean over H redrawn heads",
            x_label: "heads H",
            y_label: "E|x(T) - x(0)|^2",
            log_x: true,
            log_y: true,
        },
        &det_series(
            det_heads,
            &|p| p.heads as f64,
            &format!(
                "measured: exponent {:.3} +- {:.3}",
                det_exponent_heads.slope, det_exponent_heads.slope_se
            ),
        ),
    )?;
    setup.lines(
        report,
        "deterministic_steps.png",
        &Axes {
            title: "Deterministic limit: step h at fixed H",
            x_label: "step h",
            y_label: "E|x(T) - x(0)|^2",
            log_x: true,
            log_y: true,
        },
        &det_series(
            det_steps,
            &|p| p.h,
            &format!(
                "measured: exponent {:.3} +- {:.3}",
                det_exponent_h.slope, det_exponent_h.slope_se
            ),
        ),
    )?;
    setup.lines(
        report,
        "common_noise.png",
        &Axes {
            title: "Common-noise limit: h H s^2 = sigma^2 (first run)",
            x_label: "depth time t",
            y_label: "mean 1 - <x_i(t), x_i(0)>",
            log_x: false,
            log_y: false,
        },
        noise_series,
    )?;
    let beta_pts: Vec<&CollapsePoint> = collapse.iter().filter(|p| p.scan == "beta").collect();
    setup.lines(
        report,
        "collapse_beta.png",
        &Axes {
            title: "Collapse against temperature (common noise)",
            x_label: "beta",
            y_label: "increase of the mean pairwise cosine at T",
            log_x: false,
            log_y: false,
        },
        &[
            Series::markers(
                "measured",
                beta_pts
                    .iter()
                    .map(|p| (p.beta, p.cosine_increase))
                    .collect(),
            ),
            Series::theory(
                "generator drift integrated along the paths",
                beta_pts.iter().map(|p| (p.beta, p.generator)).collect(),
            ),
        ],
    )?;

    Ok(())
}

fn summary(
    report: &mut Report,
    sz: &Sizes,
    det: Det,
    noise: (Vec<NoisePoint>, Vec<Series>),
    collapse: Vec<CollapsePoint>,
) {
    let n_pts: Vec<&CollapsePoint> = collapse.iter().filter(|p| p.scan == "n").collect();
    let ns: Vec<f64> = n_pts.iter().map(|p| p.n as f64).collect();
    let collapse_exponent_n = fit_loglog(
        &ns,
        &n_pts
            .iter()
            .map(|p| p.cosine_increase.max(1e-12))
            .collect::<Vec<_>>(),
    );
    let collapse_exponent_n_generator = fit_loglog(
        &ns,
        &n_pts
            .iter()
            .map(|p| p.generator.max(1e-12))
            .collect::<Vec<_>>(),
    )
    .slope;
    let closed_exponent = fit_loglog(
        &ns,
        &ns.iter()
            .map(|&v| initial_cosine_rate_beta0(v as usize, sz.d, 1.0))
            .collect::<Vec<_>>(),
    )
    .slope;
    let xs_h: Vec<f64> = det.heads.iter().map(|p| p.heads as f64).collect();
    let xs_s: Vec<f64> = det.steps.iter().map(|p| p.h).collect();
    report.add_measured(&Measured {
        det_exponent_heads_se: jackknife_slope_se(&xs_h, &det.heads_runs),
        det_exponent_h_se: jackknife_slope_se(&xs_s, &det.steps_runs),
        det_heads: det.heads,
        det_steps: det.steps,
        det_dims: det.dims,
        det_exponent_heads: det.exponent_heads,
        det_exponent_h: det.exponent_h,
        noise: noise.0,
        collapse,
        collapse_exponent_n,
        collapse_exponent_n_generator,
    });
    report.add_prediction(&Prediction {
        det_exponent_heads: -1.0,
        det_exponent_h: 1.0,
        det_msd: "2 (1 - e^{-a T}), a = h s^2 (d - 1) G_ii / (2 H d), G_ii = E_{Q,K} |y_i|^2 at the \
                  initial tokens (= T h s^2 (d - 1) G_ii / (H d) to first order)",
        noise_generator: "E d rho_ik = (sigma^2/d)[G_ik (d-2+rho^2) - rho (d-1)(G_ii+G_kk)/2] dt, \
                          E d(1 - <x, x0>) = sigma^2 (d-1)/(2d) G_ii <x, x0> dt, sigma^2 = h c^2 H s^2",
        collapse_initial_rate_beta0: "(sigma^2 / (n d)) [d - 2 + 1/d - 2 (d - 1) / (n d)]",
        collapse_exponent_n_closed_form_initial: closed_exponent,
        limiting_drift: 0.0,
        noise_initial_msd_rate_at_beta0: initial_msd_rate_beta0(sz.n, sz.d, sz.sigma2),
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_homogenisation_follows_the_derived_limits() {
        let (_dir, out, _) = super::super::quick_run_checked("homogenisation");
        assert!(out.join("common_noise.png").exists());
    }
}
