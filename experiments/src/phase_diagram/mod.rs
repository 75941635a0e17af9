//! Experiment `phase-diagram` (docs/model.md §4): the clustering phase diagram of small contexts.
//! Ensembles of n = 32 tokens, uniform on S^{d-1} with d = 8 and d = 128, evolve under softmax
//! self-attention with Q = K = V = I for t in [0, 30] at inverse temperatures beta in [0.1, 9].
//! The observable is the fraction of pairs i < j with <x_i, x_j> >= 0.999 (1 once everything
//! has collapsed to one point), averaged over independent starts, drawn as a heat map over
//! (beta, t) as in the phase diagrams of the mean-field transformer literature; the collapse
//! time t_c(beta) is when that mean fraction first reaches 1/2.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/phase-diagram.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
/// `half-beta`: the dynamics runs at beta / 2 (a wrong temperature scaling; the growth of
/// log t_c with beta halves). `double-step`: steps of 2h recorded as h (a wrong time scaling:
/// every collapse time halves).
/// `beta-15pct`: issue 24's wrong model, the dynamics at 1.15 beta (a 15% temperature error).
/// `repel`: the wrong sign of the interaction (V = -I: tokens pushed away from their weighted
/// mean, so nothing collapses).
pub const MUTATIONS: &[&str] = &["half-beta", "double-step", "beta-15pct", "repel"];

mod analyse;
mod figures;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Band, Check, Report, Setup, Test};
use analyse::{PerD, SLOPE_FROM, first_crossing, jackknife};
use attnflow::error::Result;
use sizes::Sizes;

/// The finite-d checks' keys: ln t_c extrapolated in d, and the slope of ln t_c in beta.
const EXTRAPOLATED: &str =
    "d128_log_collapse_time_extrapolated_in_d_within_3se_plus_grid_of_symmetric_reduction";
const SLOPE: &str =
    "d128_log_collapse_time_slope_within_3se_plus_scanned_offset_of_symmetric_reduction";

#[derive(Serialize)]
struct Config<'a> {
    betas: &'a [f64],
    integrator: &'static str,
    close_cos_threshold: f64,
    model: &'static str,
    init: &'static str,
}

#[derive(Serialize)]
struct Measured {
    per_d: BTreeMap<String, PerD>,
    finite_d_scan: Option<Scan>,
}

/// The d-scan of the finite-d offset (betas from SLOPE_FROM that collapse at the high d).
#[derive(Serialize)]
struct Scan {
    high_d: usize,
    scan_d: usize,
    betas: Vec<f64>,
    log_t_c_high_d: Vec<f64>,
    log_t_c_high_d_se: Vec<f64>,
    log_t_c_scan_d: Vec<Option<f64>>,
    log_t_c_scan_d_se: Vec<Option<f64>>,
    /// ln t_c at d = infinity by the 1/d law through the two dimensions.
    log_t_c_extrapolated: Vec<Option<f64>>,
    log_t_c_extrapolated_se: Vec<Option<f64>>,
    log_t_c_symmetric_reduction: Vec<f64>,
    slope_high_d: f64,
    slope_high_d_jackknife_se: f64,
    slope_scan_d: Option<f64>,
    slope_scan_d_jackknife_se: Option<f64>,
    /// The 1/d law's offset of the slope at the high d, (s_high - s_scan) / (1 - high/scan).
    slope_offset_predicted: Option<f64>,
    law: &'static str,
}

#[derive(Serialize)]
struct SymmetricReduction<'a> {
    betas: &'a [f64],
    t_c: &'a [Option<f64>],
    #[serde(rename = "beta_where_t_c_reaches_T")]
    beta_where_t_c_reaches_t: f64,
    equation: &'static str,
}

#[derive(Serialize)]
struct Prediction<'a> {
    symmetric_reduction_collapse_time: SymmetricReduction<'a>,
    note: &'static str,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    if sz.dims.len() != sz.starts_by_d.len() || sz.beta_count < 2 {
        return Err(attnflow::error::input(
            "--set: dims and starts_by_d need one entry per d, and beta_count at least 2",
        ));
    }
    if !(sz.threshold > 0.0 && sz.threshold < 1.0) {
        return Err(attnflow::error::input(format!(
            "--set threshold={}: a cosine threshold in (0, 1) is needed",
            sz.threshold
        )));
    }
    let (n, t_end) = (sz.n, sz.t_end);
    let betas = sz.betas();
    let times = sz.times();
    report.add_config(&sz);
    report.add_config(&Config {
        betas: &betas,
        integrator: if sz.layer.is_ode() { "rk4" } else { "euler" },
        close_cos_threshold: sz.threshold,
        model: "SA, sphere, full mask, Q = K = V = I",
        init: "uniform on the sphere, the same starts for every beta",
    });
    // Through the memo (tests share it with the mutations it does not reach: see
    // [`Setup::memo_with`]).
    let diagrams = setup.memo_with(
        report,
        "phase-diagram/diagrams",
        &(&sz, &betas),
        |setup, report, (sz, betas)| simulate::diagrams(setup, report, sz, betas),
    )?;
    let mut rows = Vec::new();
    for g in &diagrams {
        for (bi, &beta) in betas.iter().enumerate() {
            for (k, &t) in times.iter().enumerate() {
                rows.push(vec![g.d as f64, beta, t, g.fraction[bi][k]]);
            }
        }
    }
    setup.csv(
        report,
        "phase_diagram.csv",
        &["d", "beta", "t", "close_pair_fraction"],
        &rows,
    )?;

    // The symmetric (high-dimensional) reduction: collapse times and the beta where it reaches T.
    let t_sym: Vec<Option<f64>> = betas
        .iter()
        .map(|&b| attnflow::theory::symmetric::collapse_time(n, sz.threshold, b, 10.0 * t_end))
        .collect();
    let beta_sym = analyse::symmetric_boundary(n, sz.threshold, t_end);
    report.add_prediction(&Prediction {
        symmetric_reduction_collapse_time: SymmetricReduction {
            betas: &betas,
            t_c: &t_sym,
            beta_where_t_c_reaches_t: beta_sym,
            equation: "dc/dt = 2 e^{beta c} (1 - c)(1 + (n-1) c) / (e^beta + (n-1) e^{beta c}), \
                c(0) = 0, t_c when c reaches the threshold (all pairwise cosines equal; quantitative for large d)",
        },
        note: "qualitative: small beta collapses within a few time units; the collapse time grows \
         with beta; for d = 128 large beta stays uncollapsed past T (metastability), and the \
         symmetric reduction (all cosines equal, starting orthogonal) is the large-d limit; \
         for d = 8 tokens at large beta gather into several metastable clusters instead.",
    });
    let mut collapsed = Vec::new();
    let mut per_d = BTreeMap::new();
    let mut checks = Shapes::default();
    let mut high = None;
    for g in &diagrams {
        let d = g.d;
        // values[time][beta]
        let values: Vec<Vec<f64>> = (0..times.len())
            .map(|k| g.fraction.iter().map(|f| f[k]).collect())
            .collect();
        figures::heatmap(setup, report, (n, d, sz.threshold), &betas, &times, &values)?;
        let a = analyse::analyse(&g.fraction, &times, &betas, &t_sym, n, sz.threshold, t_end);
        checks.add(d, &betas, &a);
        if d >= 64 {
            high = Some(g);
        }
        per_d.insert(format!("d_{d}"), a.summary);
        collapsed.push((d, a.collapsed));
    }
    figures::collapse_times(setup, report, (n, t_end), &betas, &t_sym, collapsed)?;
    checks.record(report, t_end);
    let finite_d_scan = match high {
        Some(g) => finite_d(setup, report, &sz, &betas, g)?,
        None => None,
    };
    report.add_measured(&Measured {
        per_d,
        finite_d_scan,
    });
    Ok(())
}

/// The shape of the diagram, per d: small beta collapses by T, ln t_c grows with beta, the
/// high d's largest beta has not collapsed by T, the low d's holds several clusters.
#[derive(Default)]
struct Shapes {
    small_beta: Vec<Check>,
    growth: Vec<Check>,
    high_d: Vec<Check>,
    low_d: Vec<Check>,
}

impl Shapes {
    fn add(&mut self, d: usize, betas: &[f64], a: &analyse::Analysis) {
        let finals = &a.summary.final_fraction;
        let stated = |what: &str| Band::exact(0.0, format!("none: a stated threshold ({what})"));
        for (b, f) in betas.iter().zip(finals).filter(|(b, _)| **b <= 1.0) {
            self.small_beta.push(Check::new(
                format!("close-pair fraction at T, d = {d}, beta = {b:.3}"),
                *f,
                Test::AtLeast,
                0.9,
                stated("0.9: collapsed, up to a few stragglers"),
            ));
        }
        let fit = a.summary.log_collapse_time_vs_beta_slope_from_beta_3;
        self.growth.push(Check::new(
            format!(
                "slope of ln t_c in beta >= {SLOPE_FROM} at d = {d} ({} betas collapsed)",
                fit.map_or(0, |f| f.points)
            ),
            fit.map_or(f64::NAN, |f| f.slope),
            Test::Above,
            0.0,
            Band::stat(
                3.0,
                fit.map_or(f64::NAN, |f| f.slope_se),
                "the semilog fit's residuals over the collapsed betas (not resampled)",
            ),
        ));
        let last = format!(
            "close-pair fraction at T, d = {d}, largest beta = {}",
            betas.last().copied().unwrap_or(f64::NAN)
        );
        if d >= 64 {
            self.high_d.push(Check::new(
                last,
                a.last_final,
                Test::Below,
                0.5,
                Band::exact(0.0, "none: the collapse criterion, half the pairs close"),
            ));
        } else {
            // Several metastable clusters: the fraction strictly between the uncollapsed ~0 and
            // the collapsed 1.
            self.low_d.push(
                Check::all(vec![
                    Check::new(
                        last.clone(),
                        a.last_final,
                        Test::AtLeast,
                        0.05,
                        stated("0.05: not all apart"),
                    ),
                    Check::new(
                        last,
                        a.last_final,
                        Test::Below,
                        0.95,
                        stated("0.95: not all in one cluster"),
                    ),
                ])
                .expect("two"),
            );
        }
    }

    fn record(self, report: &mut Report, t_end: f64) {
        // Nothing to compare (no such beta or d under --set) fails, never passes vacuously.
        let none = |what: &str| {
            Check::new(
                format!("{what}: nothing compared"),
                f64::NAN,
                Test::Within,
                0.0,
                Band::exact(0.0, "none"),
            )
        };
        let all = |c: Vec<Check>, what: &str| Check::all(c).unwrap_or_else(|| none(what));
        let repel = "a repulsive interaction (V = -I): nothing collapses";
        report.band_check(
            "small_beta_collapses_by_T",
            all(self.small_beta, "no beta <= 1")
                .rejects(&["repel"], format!("{repel} by T = {t_end}")),
        );
        report.band_check(
            "collapse_time_grows_with_beta",
            all(self.growth, "no d").rejects(
                &["repel"],
                format!("{repel}: no collapse time to grow (measured NaN)"),
            ),
        );
        report.band_check(
            "d128_large_beta_not_collapsed_by_T",
            all(self.high_d, "no d >= 64").rejects(
                &["half-beta"],
                "the dynamics at beta / 2: the largest beta collapses by T",
            ),
        );
        report.band_check(
            "d8_several_clusters_at_large_beta",
            all(self.low_d, "no d < 64").rejects(
                &["repel"],
                format!("{repel}: no cluster forms (fraction about 0)"),
            ),
        );
    }
}

/// The finite-d offset from a d-scan, and the two checks against the symmetric reduction:
/// ln t_c extrapolated to d = infinity per beta, and the slope of ln t_c in beta at the high d
/// with the scan's predicted offset as its systematic. Standard errors: jackknife over the
/// starts (the independent units; every beta shares them), the two dimensions' ensembles
/// independent.
fn finite_d(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    betas: &[f64],
    g: &simulate::Diagram,
) -> Result<Option<Scan>> {
    let Some(&scan_d) = sz.scan_dims.iter().max() else {
        return Ok(None);
    };
    let times = sz.times();
    let jk = jackknife(&g.per_start, &times, betas);
    let t_c: Vec<Option<f64>> = g
        .fraction
        .iter()
        .map(|f| first_crossing(&times, f, 0.5))
        .collect();
    let idx: Vec<usize> = (0..betas.len())
        .filter(|&b| betas[b] >= SLOPE_FROM && t_c[b].is_some() && jk.log_t_c_se[b].is_some())
        .collect();
    if idx.len() < 3 {
        // Too few collapsed betas to compare: both checks fail (they were left out).
        for key in [EXTRAPOLATED, SLOPE] {
            report.band_check(
                key,
                Check::new(
                    format!(
                        "betas from {SLOPE_FROM} that collapse at d = {} (at least 3 needed)",
                        g.d
                    ),
                    idx.len() as f64,
                    Test::AtLeast,
                    3.0,
                    Band::exact(0.0, "none: a count"),
                ),
            );
        }
        return Ok(None);
    }
    let sb: Vec<f64> = idx.iter().map(|&b| betas[b]).collect();
    let starts = g.per_start[0].len();
    let scan_sizes = Sizes {
        dims: vec![scan_d],
        starts_by_d: vec![starts],
        ..sz.clone()
    };
    let scan = setup
        .memo_with(
            report,
            "phase-diagram/diagrams",
            &(&scan_sizes, &sb),
            |setup, report, (sz, betas)| simulate::diagrams(setup, report, sz, betas),
        )?
        .remove(0);
    let sjk = jackknife(&scan.per_start, &times, &sb);
    let st: Vec<Option<f64>> = scan
        .fraction
        .iter()
        .map(|f| first_crossing(&times, f, 0.5))
        .collect();
    // The 1/d law: ln t_c(d) = ln t_inf + a / d, through the high d and the scan's d.
    let r = g.d as f64 / scan_d as f64;
    let extrapolate = |hi: f64, lo: f64| (lo - r * hi) / (1.0 - r);
    let ext_se = |hi: f64, lo: f64| (lo.powi(2) + (r * hi).powi(2)).sqrt() / (1.0 - r);
    let (n, thr) = (sz.n, sz.threshold);
    let sym: Vec<f64> = sb
        .iter()
        .map(|&b| {
            attnflow::theory::symmetric::collapse_time(n, thr, b, 10.0 * sz.t_end)
                .map_or(f64::NAN, f64::ln)
        })
        .collect();
    let lh: Vec<f64> = idx.iter().map(|&b| t_c[b].unwrap().ln()).collect();
    let lh_se: Vec<f64> = idx.iter().map(|&b| jk.log_t_c_se[b].unwrap()).collect();
    let ls: Vec<Option<f64>> = st.iter().map(|t| t.map(f64::ln)).collect();
    let ext: Vec<Option<f64>> = (0..sb.len())
        .map(|i| ls[i].map(|l| extrapolate(lh[i], l)))
        .collect();
    let ext_err: Vec<Option<f64>> = (0..sb.len())
        .map(|i| sjk.log_t_c_se[i].map(|s| ext_se(lh_se[i], s)))
        .collect();
    let over = format!("jackknife over {starts} starts per d (each d its own ensemble)");
    let wrong = "a wrong temperature (beta / 2, 1.15 beta) or time scaling (steps of 2h)";
    let rejects = ["half-beta", "beta-15pct", "double-step"];
    // The betas that collapse by T at both dimensions (the others are reported only).
    let common: Vec<usize> = (0..sb.len())
        .filter(|&i| ext[i].is_some() && ext_err[i].is_some())
        .collect();
    let nan = f64::NAN;
    // (1) ln t_c at d = infinity against the reduction, per beta. Systematic: t_c is the
    // linear interpolation of the mean fraction (non-decreasing) between observations dt
    // apart, so at each d it lies in the same observation interval as the crossing: its
    // error is at most dt, dt / t_c in ln t_c, propagated through the extrapolation.
    let dt = sz.h * sz.observe_every as f64;
    let grid = |i: usize| {
        let (hi, lo) = (lh[i].exp(), ls[i].map_or(nan, f64::exp));
        (r * dt / hi + dt / lo) / (1.0 - r)
    };
    let per_beta: Vec<Check> = common
        .iter()
        .map(|&i| {
            Check::new(
                format!("ln t_c extrapolated to d = infinity at beta = {:.2}", sb[i]),
                ext[i].unwrap_or(nan),
                Test::Within,
                sym[i],
                Band::stat(3.0, ext_err[i].unwrap_or(nan), &over).plus(
                    grid(i),
                    format!(
                        "the observation grid (dt = {dt}): each t_c within dt of the crossing \
                         (a bound), propagated through the extrapolation"
                    ),
                ),
            )
            .rejects(&rejects, wrong)
        })
        .collect();
    let too_few = || {
        Check::new(
            "betas from 3 that collapse at both dimensions (at least 3 needed)",
            common.len() as f64,
            Test::AtLeast,
            3.0,
            Band::exact(0.0, "none"),
        )
    };
    report.band_check(
        EXTRAPOLATED,
        if common.len() >= 3 {
            Check::all(per_beta).expect("three betas")
        } else {
            too_few()
        },
    );
    // (2) The slope of ln t_c in beta at the high d over the same betas, with the d-scan's
    // 1/d offset as its systematic.
    let fit_over = |y: &dyn Fn(usize) -> f64| {
        let x: Vec<f64> = common.iter().map(|&i| sb[i]).collect();
        let y: Vec<f64> = common.iter().map(|&i| y(i)).collect();
        attnflow::stats::fit_line(&x, &y).slope
    };
    let enough = common.len() >= 3;
    let s_hi = if enough { fit_over(&|i| lh[i]) } else { nan };
    let s_lo = enough.then(|| fit_over(&|i| ls[i].unwrap_or(nan)));
    let sym_slope = if enough { fit_over(&|i| sym[i]) } else { nan };
    let offset = s_lo.map(|lo| (s_hi - lo) / (1.0 - r));
    // Jackknife of the high d's slope over the same betas.
    let s_hi_se = if enough {
        let reps: Vec<f64> = (0..starts)
            .map(|k| {
                let x: Vec<f64> = common.iter().map(|&i| sb[i]).collect();
                let y: Vec<f64> = common
                    .iter()
                    .map(|&i| {
                        let f = simulate::mean_over(&g.per_start[idx[i]], Some(k));
                        first_crossing(&times, &f, 0.5).map_or(nan, f64::ln)
                    })
                    .collect();
                attnflow::stats::fit_line(&x, &y).slope
            })
            .collect();
        crate::jackknife_se(&reps)
    } else {
        nan
    };
    report.band_check(
        SLOPE,
        Check::new(
            format!(
                "slope of ln t_c in beta >= {SLOPE_FROM} at d = {} (betas collapsed at both d)",
                g.d
            ),
            s_hi,
            Test::Within,
            sym_slope,
            Band::stat(3.0, s_hi_se, &over).plus(
                offset.map_or(nan, f64::abs),
                format!(
                    "the d-scan (d = {}, {scan_d}): the 1/d law's offset at d = {}, \
                     (s_{} - s_{scan_d}) / (1 - {}/{scan_d})",
                    g.d, g.d, g.d, g.d
                ),
            ),
        )
        .rejects(
            &["half-beta", "beta-15pct"],
            "a wrong temperature scaling (beta / 2, 1.15 beta)",
        ),
    );
    let s_lo_se = sjk.slope_se;
    Ok(Some(Scan {
        high_d: g.d,
        scan_d,
        betas: sb,
        log_t_c_high_d: lh,
        log_t_c_high_d_se: lh_se,
        log_t_c_scan_d: ls,
        log_t_c_scan_d_se: sjk.log_t_c_se,
        log_t_c_extrapolated: ext,
        log_t_c_extrapolated_se: ext_err,
        log_t_c_symmetric_reduction: sym,
        slope_high_d: s_hi,
        slope_high_d_jackknife_se: s_hi_se,
        slope_scan_d: s_lo,
        slope_scan_d_jackknife_se: s_lo_se,
        slope_offset_predicted: offset,
        law: "ln t_c(d) = ln t_c(infinity) + a / d: the initial cosines have mean 0 and \
              variance 1/d, and t_c is even in them at first order",
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_phase_diagram_collapses_at_small_beta_only() {
        let (_dir, out, s) = super::super::quick_run_checked("phase-diagram");
        let d128 = &s["measured"]["per_d"]["d_128"];
        let boundary = d128["smallest_beta_not_collapsed_by_T"].as_f64().unwrap();
        assert!((6.0..=8.5).contains(&boundary), "boundary {boundary}");
        let ratio = d128["collapse_time_over_symmetric_reduction"][0]
            .as_f64()
            .unwrap();
        assert!(
            (ratio - 1.0).abs() < 0.1,
            "t_c / t_sym at beta 0.1: {ratio}"
        );
        for f in ["phase_d8.png", "phase_d128.png", "collapse_time.png"] {
            assert!(out.join(f).exists(), "{f}");
        }
    }
}
