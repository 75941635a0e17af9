//! Experiment `homogenisation` (issue 13 §3): random deep multi-head attention whose Q, K, V
//! are redrawn at every layer and head (Koubbi, Geshkovski, Rigollet, "Homogenized
//! Transformers", arXiv:2604.01978): the deterministic limit, the common-noise limit, and
//! collapse against dimension, context length and temperature.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/homogenisation.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
pub const MUTATIONS: &[&str] = &["fixed-over-depth", "heads-identical"];

mod analyse;
mod simulate;
pub mod sizes;

use rayon::prelude::*;
use serde::Serialize;

use super::{Report, Setup};
use analyse::{
    cosine_drift, cumulative_trapezoid, initial_cosine_rate_beta0, initial_msd_rate_beta0,
    mean_cosine, mean_overlap_gap, output_gram, overlap_drift, sigma2,
};
use attnflow::error::{Result, input};
use attnflow::figures::{Axes, Series};
use attnflow::stats::{Fit, fit_loglog, mean, mean_se};
use simulate::{Run, Spec, run_seed};
use sizes::Sizes;

/// Tolerance of the displacement ratio in (a) beyond 3 SE (O(sigma^2) corrections, Monte
/// Carlo G).
const DET_TOL: f64 = 0.10;
/// Tolerance of the exponents in (a) beyond 3 SE.
const EXP_TOL: f64 = 0.10;
/// Tolerance of the generator checks in (b) beyond 3 SE (trapezoid over the observations,
/// O(h) corrections).
const GEN_TOL: f64 = 0.10;
/// Tolerance of the collapse points in (c) beyond 3 SE.
const COLLAPSE_TOL: f64 = 0.15;

#[derive(Serialize)]
struct Config {
    setting: &'static str,
    weights: &'static str,
}

#[derive(Serialize)]
struct DetPoint {
    heads: usize,
    h: f64,
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
    det_exponent_heads: Fit,
    det_exponent_h: Fit,
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

#[derive(Serialize)]
struct Checks {
    det_msd_matches_theory: bool,
    det_exponents: bool,
    noise_matches_generator: bool,
    noise_limit_independent_of_h: bool,
    collapse_matches_generator: bool,
}

/// Per system, at each observation time: (overlap gap, mean cosine, overlap drift, cosine
/// drift) of one run; `mc_seed` keys the Monte Carlo G.
fn path_measures(
    run: &Run,
    spec: &Spec,
    sig2: f64,
    draws: usize,
    mc_seed: u64,
) -> Vec<Vec<[f64; 4]>> {
    let (n, d) = (spec.n, spec.d);
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
                        overlap_drift(x, x0, &g, d, sig2),
                        cosine_drift(x, &g, d, sig2),
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

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    if sz.d < 3
        || sz.n < 2
        || sz.batch == 0
        || sz.runs < 3
        || sz.gram_draws == 0
        || sz.det_heads.len() < 3
        || sz.det_hs.len() < 3
        || sz.noise_hs.is_empty()
        || sz.ns.len() < 2
        || sz.weight_scale <= 0.0
        || sz.sigma2 <= 0.0
        || sz.observe < 2
    {
        return Err(input(
            "homogenisation: needs d >= 3, n >= 2, batch >= 1, runs >= 3, gram_draws >= 1, \
             3 det_heads, 3 det_hs, noise_hs, 2 ns, weight_scale > 0, sigma2 > 0, observe >= 2",
        ));
    }
    report.add_config(&sz);
    report.add_config(&Config {
        setting: "SA, full attention, sphere; one Euler step (residual layer + normalisation) per layer",
        weights: "Q, K, V iid N(0, s^2/d), redrawn at every layer and head (RandomHeads)",
    });
    let s = sz.weight_scale;
    let (n, d) = (sz.n, sz.d);

    // (a) The deterministic limit: mean over heads.
    let det_scan =
        |part: u64, points: &[(usize, f64)], report: &mut Report| -> Result<Vec<DetPoint>> {
            // Per run: the predicted rate per unit sigma^2 T at the initial tokens (same for every
            // point of the scan: same seeds).
            let mut rows: Vec<Vec<(f64, f64)>> = vec![Vec::new(); points.len()];
            for r in 0..sz.runs {
                let seed = run_seed(setup.seed, part, r);
                let mut base: Option<f64> = None;
                for (p, &(heads, h)) in points.iter().enumerate() {
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
                    let msd = (0..sz.batch)
                        .map(|b| {
                            2.0 * mean_overlap_gap(
                                &xt[b * per..(b + 1) * per],
                                &x0[b * per..(b + 1) * per],
                                d,
                            )
                        })
                        .sum::<f64>()
                        / sz.batch as f64;
                    let unit = *base.get_or_insert_with(|| {
                        (0..sz.batch)
                            .into_par_iter()
                            .map(|b| {
                                let x = &x0[b * per..(b + 1) * per];
                                let g = output_gram(
                                    x,
                                    d,
                                    sz.beta,
                                    s,
                                    sz.gram_draws,
                                    seed ^ ((b as u64) << 24),
                                );
                                2.0 * overlap_drift(x, x, &g, d, 1.0)
                            })
                            .sum::<f64>()
                            / sz.batch as f64
                    });
                    rows[p].push((msd, unit * sigma2(h, heads, true, s) * t));
                }
            }
            Ok(points
                .iter()
                .zip(rows)
                .map(|(&(heads, h), v)| {
                    let (msd, msd_se) = mean_se(&v.iter().map(|p| p.0).collect::<Vec<_>>());
                    let (ratio, ratio_se) =
                        mean_se(&v.iter().map(|p| p.0 / p.1).collect::<Vec<_>>());
                    DetPoint {
                        heads,
                        h,
                        sigma2: sigma2(h, heads, true, s),
                        msd,
                        msd_se,
                        predicted: mean(&v.iter().map(|p| p.1).collect::<Vec<_>>()),
                        ratio,
                        ratio_se,
                    }
                })
                .collect())
        };
    setup.say(&format!(
        "(a) deterministic limit: H in {:?}, h in {:?}",
        sz.det_heads, sz.det_hs
    ));
    let heads_points: Vec<(usize, f64)> = sz.det_heads.iter().map(|&hd| (hd, sz.det_h)).collect();
    let det_heads = det_scan(1, &heads_points, report)?;
    let h_points: Vec<(usize, f64)> = sz.det_hs.iter().map(|&h| (sz.det_h_heads, h)).collect();
    let det_steps = det_scan(2, &h_points, report)?;
    let fit_of = |pts: &[DetPoint], x: &dyn Fn(&DetPoint) -> f64| {
        fit_loglog(
            &pts.iter().map(x).collect::<Vec<_>>(),
            &pts.iter().map(|p| p.msd).collect::<Vec<_>>(),
        )
    };
    let det_exponent_heads = fit_of(&det_heads, &|p| p.heads as f64);
    let det_exponent_h = fit_of(&det_steps, &|p| p.h);
    let det_ok = |p: &DetPoint| (p.ratio - 1.0).abs() <= 3.0 * p.ratio_se + DET_TOL;
    let det_msd_matches_theory = det_heads.iter().chain(&det_steps).all(det_ok);
    let det_exponents = (det_exponent_heads.slope + 1.0).abs()
        <= 3.0 * det_exponent_heads.slope_se + EXP_TOL
        && (det_exponent_h.slope - 1.0).abs() <= 3.0 * det_exponent_h.slope_se + EXP_TOL;

    // (b) The common-noise limit: sum over H = sigma2 / (h s^2) heads.
    let mut noise = Vec::new();
    let mut noise_series = Vec::new();
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
                n,
                d,
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
            let m = path_measures(&run, &spec, sig2, sz.gram_draws, spec.seed ^ 0xabcd);
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
        });
        noise_series.push(Series::markers(format!("h = {h}, H = {heads}"), curve));
        if hi == 0 {
            noise_series.push(Series::theory(
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
    let noise_matches_generator = noise.iter().all(|p| {
        (p.overlap_gap - p.overlap_gap_generator).abs()
            <= 3.0 * p.overlap_gap_diff_se + GEN_TOL * p.overlap_gap_generator.abs()
            && (p.cosine_increase - p.cosine_increase_generator).abs()
                <= 3.0 * p.cosine_increase_diff_se + GEN_TOL * p.cosine_increase_generator.abs()
    });
    let finest = noise.last().unwrap();
    let noise_limit_independent_of_h = noise.iter().all(|p| {
        (p.overlap_gap - finest.overlap_gap).abs()
            <= 3.0 * (p.overlap_gap_se.powi(2) + finest.overlap_gap_se.powi(2)).sqrt()
                + GEN_TOL * finest.overlap_gap
    });

    // (c) Collapse against d, n (beta = 0) and beta, in the common-noise regime.
    let heads_c = (sz.sigma2 / (sz.collapse_h * s * s)).round().max(1.0) as usize;
    let sig2_c = sigma2(sz.collapse_h, heads_c, false, s);
    let steps_c = (sz.collapse_t / sz.collapse_h).round().max(1.0) as usize;
    // One run per (d, n): the systems of the batch carry the betas.
    let mut groups: Vec<(&'static str, usize, usize, Vec<f64>)> = Vec::new();
    for &dd in &sz.ds {
        groups.push(("d", dd, n, vec![0.0]));
    }
    for &nn in &sz.ns {
        groups.push(("n", d, nn, vec![0.0]));
    }
    groups.push(("beta", d, n, sz.betas.clone()));
    let mut collapse = Vec::new();
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
            let m = path_measures(&run, &spec, sig2_c, sz.gram_draws, spec.seed ^ 0x1234);
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
            collapse.push(CollapsePoint {
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
    let collapse_matches_generator = collapse.iter().all(|p| {
        (p.cosine_increase - p.generator).abs()
            <= 3.0 * p.diff_se + COLLAPSE_TOL * p.generator.abs()
    });
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
            .map(|&v| initial_cosine_rate_beta0(v as usize, d, 1.0))
            .collect::<Vec<_>>(),
    )
    .slope;

    // Files.
    let mut rows = Vec::new();
    for p in det_heads.iter().chain(&det_steps) {
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
            &det_heads,
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
            &det_steps,
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
        &noise_series,
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

    report.add_measured(&Measured {
        det_heads,
        det_steps,
        det_exponent_heads,
        det_exponent_h,
        noise,
        collapse,
        collapse_exponent_n,
        collapse_exponent_n_generator,
    });
    report.add_prediction(&Prediction {
        det_exponent_heads: -1.0,
        det_exponent_h: 1.0,
        det_msd: "T h s^2 (d - 1) / (H d) E G_ii, G_ii = E_{Q,K} |y_i|^2 at the initial tokens",
        noise_generator: "E d rho_ik = (sigma^2/d)[G_ik (d-2+rho^2) - rho (d-1)(G_ii+G_kk)/2] dt, \
                          E d(1 - <x, x0>) = sigma^2 (d-1)/(2d) G_ii <x, x0> dt, sigma^2 = h c^2 H s^2",
        collapse_initial_rate_beta0: "(sigma^2 / (n d)) [d - 2 + 1/d - 2 (d - 1) / (n d)]",
        collapse_exponent_n_closed_form_initial: closed_exponent,
        limiting_drift: 0.0,
        noise_initial_msd_rate_at_beta0: initial_msd_rate_beta0(n, d, sz.sigma2),
    });
    report.add_checks(&Checks {
        det_msd_matches_theory,
        det_exponents,
        noise_matches_generator,
        noise_limit_independent_of_h,
        collapse_matches_generator,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_homogenisation_follows_the_derived_limits() {
        let (_dir, out, _) = super::super::quick_run_checked("homogenisation", 0);
        assert!(out.join("common_noise.png").exists());
    }
}
