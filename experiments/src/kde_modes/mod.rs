//! Experiment `kde-modes` (issue 13 §3): the number of modes of a kernel density estimate at
//! bandwidth beta^(-1/2), and its link to the metastable cluster count.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/kde-modes.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
pub const MUTATIONS: &[&str] = &["bandwidth-inverse-beta", "count-minima-too"];

mod analyse;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::{Report, Setup};
use analyse::{count_modes, grid_points, kac_rice_modes};
use attnflow::error::{Result, input};
use attnflow::figures::{Axes, Series};
use attnflow::stats::{Fit, fit_loglog, mean_se};
use sizes::Sizes;

/// The tolerance of the Kac-Rice count beyond 3 standard errors (finite n, grid, Gaussian
/// approximation).
const KR_TOL: f64 = 0.05;
/// The tolerance on exponents beyond 3 standard errors.
const EXP_TOL: f64 = 0.05;

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

#[derive(Serialize)]
struct Checks {
    counts_within_3se_plus_5pct_of_kac_rice: bool,
    exponent_within_3se_plus_005_of_kac_rice_and_one_half: bool,
    count_grows_with_beta: bool,
    one_mode_at_small_beta: bool,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    if sz.ns.is_empty() || sz.draws < 2 || sz.grid_per_bandwidth < 2.0 || sz.beta_small <= 0.0 {
        return Err(input(
            "kde-modes: needs ns, draws >= 2, grid_per_bandwidth >= 2 and beta_small > 0",
        ));
    }
    report.add_config(&sz);
    report.add_config(&Config {
        setting: "n iid uniform angles on the circle",
        kernel: "von Mises exp(beta (cos - 1)), bandwidth beta^(-1/2)",
    });
    report.backend = Some("host (f64)".into());
    let bandwidth_error = setup.mutated("bandwidth-inverse-beta");
    let minima_too = setup.mutated("count-minima-too");
    // The kernel's concentration actually used for beta.
    let kappa = |beta: f64| if bandwidth_error { beta * beta } else { beta };

    let mut per_n = BTreeMap::new();
    let mut checks = Checks {
        counts_within_3se_plus_5pct_of_kac_rice: true,
        exponent_within_3se_plus_005_of_kac_rice_and_one_half: true,
        count_grows_with_beta: true,
        one_mode_at_small_beta: true,
    };
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (ni, &n) in sz.ns.iter().enumerate() {
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
        setup.say(&format!("n = {n}: betas {betas:?}, {} draws", sz.draws));
        // counts[draw] = (count at beta_small, counts at each beta); the same draw serves every
        // beta (common samples make the curve in beta smoother).
        let counts: Vec<(usize, Vec<usize>)> = (0..sz.draws)
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
            .collect();
        let small: Vec<usize> = counts.iter().map(|c| c.0).collect();
        checks.one_mode_at_small_beta &= small.iter().all(|&c| c == 1);
        let mut points = Vec::new();
        for (bi, &beta) in betas.iter().enumerate() {
            let v: Vec<f64> = counts.iter().map(|c| c.1[bi] as f64).collect();
            let (modes, modes_se) = mean_se(&v);
            let kr = kac_rice_modes(beta);
            let gaussian_regime = beta <= n as f64;
            if gaussian_regime {
                checks.counts_within_3se_plus_5pct_of_kac_rice &=
                    (modes - kr).abs() <= 3.0 * modes_se + KR_TOL * kr;
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
        checks.count_grows_with_beta &= points.windows(2).all(|w| w[1].modes > w[0].modes);
        let means: Vec<f64> = points.iter().map(|p| p.modes).collect();
        let fit = fit_loglog(&betas, &means);
        let krs: Vec<f64> = points.iter().map(|p| p.kac_rice).collect();
        let kr_exp = fit_loglog(&betas, &krs).slope;
        checks.exponent_within_3se_plus_005_of_kac_rice_and_one_half &= (fit.slope - kr_exp).abs()
            <= 3.0 * fit.slope_se + EXP_TOL
            && (kr_exp - 0.5).abs() <= EXP_TOL;
        series.push(Series::markers(
            format!("n = {n}: exponent {:.3} +- {:.3}", fit.slope, fit.slope_se),
            points.iter().map(|p| (p.beta, p.modes)).collect(),
        ));
        per_n.insert(
            format!("n_{n}"),
            PerN {
                window,
                points,
                exponent_fit: fit,
                kac_rice_exponent: kr_exp,
                exponent_after_dividing_by_sqrt_log_beta: fit_loglog(
                    &betas,
                    &betas
                        .iter()
                        .zip(&means)
                        .map(|(b, m)| m / b.ln().sqrt())
                        .collect::<Vec<_>>(),
                )
                .slope,
                modes_at_beta_small: small,
            },
        );
    }
    let all_betas: Vec<f64> = {
        let mut b: Vec<f64> = rows.iter().map(|r| r[1]).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        b
    };
    series.push(Series::theory(
        "Kac-Rice sqrt(int K''^2 / int K'^2) ~ sqrt(3 beta / 2)",
        all_betas.iter().map(|&b| (b, kac_rice_modes(b))).collect(),
    ));
    series.push(Series::theory(
        "metastable count sqrt(2 beta)",
        all_betas.iter().map(|&b| (b, (2.0 * b).sqrt())).collect(),
    ));
    setup.csv(
        report,
        "kde_modes.csv",
        &["n", "beta", "modes", "modes_se", "kac_rice"],
        &rows,
    )?;
    setup.lines(
        report,
        "kde_modes.png",
        &Axes {
            title: "Modes of the von Mises KDE of n uniform angles",
            x_label: "beta (bandwidth beta^-1/2)",
            y_label: "mean number of modes",
            log_x: true,
            log_y: true,
        },
        &series,
    )?;
    report.add_measured(&Measured { per_n });
    report.add_prediction(&Prediction {
        exponent: 0.5,
        modes_large_beta: "sqrt(3 beta / 2) (Kac-Rice, Gaussian limit n >> beta^(1/2))",
        ratio_to_metastable_count_sqrt_2beta: 0.75f64.sqrt(),
        modes_at_beta_small: 1,
        note: "derived: Kac-Rice for the Gaussian limit of f' on the circle (uniform samples): \
               no log factor; the sqrt(beta log beta) law is for Gaussian samples on the line",
    });
    report.add_checks(&checks);
    // Smoke at the quick size: checks no wrong model of the study fails there (issue 24,
    // experiments/tests/mutations.rs).
    report.smoke_at_quick(
        setup,
        "count_grows_with_beta",
        "a qualitative trend that every mutation keeps",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_kde_modes_follow_kac_rice() {
        let (_dir, out, _) = super::super::quick_run_checked("kde-modes", 0);
        assert!(out.join("kde_modes.png").exists());
    }
}
