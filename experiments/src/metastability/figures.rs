//! The CSV files and figures of `metastability`.

use super::CLUSTER_COS;
use super::simulate::Observations;
use super::sizes::Sizes;
use crate::{Report, Setup};
use attnflow::error::Result;
use attnflow::figures::{Axes, Series};
use attnflow::stats::Fit;

/// metastability.csv: every system at every time.
pub fn observations_csv(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    obs: &Observations,
) -> Result<()> {
    let mut rows = Vec::new();
    for s in 0..obs.system_beta.len() {
        for (k, &tk) in obs.times.iter().enumerate() {
            rows.push(vec![
                tk,
                obs.system_beta[s],
                (s % sz.replicates) as f64,
                obs.energy[s][k],
                obs.normalised[s][k],
                obs.clusters[s][k] as f64,
            ]);
        }
    }
    setup.csv(
        report,
        "metastability.csv",
        &[
            "t",
            "beta",
            "replicate",
            "energy",
            "energy_over_one_cluster",
            "clusters",
        ],
        &rows,
    )
}

/// plateaus.csv: every plateau of every system.
pub fn plateaus_csv(setup: &Setup, report: &mut Report, rows: &[Vec<f64>]) -> Result<()> {
    setup.csv(
        report,
        "plateaus.csv",
        &[
            "beta",
            "replicate",
            "t_start",
            "t_end",
            "energy_over_one_cluster",
            "clusters",
        ],
        rows,
    )
}

/// Energy and cluster count against log t (replicate 0 of each beta), and the count on the
/// first plateau against beta with its fit and k*.
pub fn draw(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    obs: &Observations,
    plateau_counts_mean: &[f64],
    fit: &Fit,
    k_stars: &[f64],
) -> Result<()> {
    let (n, betas, times) = (sz.n, &sz.betas, &obs.times);
    let mut e_series = Vec::new();
    let mut c_series = Vec::new();
    for (bi, &beta) in betas.iter().enumerate() {
        let s = bi * sz.replicates;
        let pts = |v: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
            (1..times.len()).map(|k| (times[k], v(k))).collect()
        };
        e_series.push(Series::line(
            format!("beta {beta}"),
            pts(&|k| obs.normalised[s][k]),
        ));
        c_series.push(Series::line(
            format!("beta {beta}"),
            pts(&|k| obs.clusters[s][k] as f64),
        ));
    }
    setup.lines(
        report,
        "energy.png",
        &Axes {
            title: &format!("Energy staircase, n = {n} tokens on the circle (SA, Q = K = V = I)"),
            x_label: "t",
            y_label: "E_beta(t) / E_beta(one cluster)",
            log_x: true,
            log_y: true,
        },
        &e_series,
    )?;
    setup.lines(
        report,
        "clusters.png",
        &Axes {
            title: &format!("Metastable clusters, n = {n} on the circle (cos >= {CLUSTER_COS})"),
            x_label: "t",
            y_label: "number of clusters",
            log_x: true,
            log_y: false,
        },
        &c_series,
    )?;
    let mut scaling = vec![Series::markers(
        "first plateau (mean over starts)",
        betas
            .iter()
            .copied()
            .zip(plateau_counts_mean.iter().copied())
            .collect(),
    )];
    let (b0, b1) = (betas[0], betas[betas.len() - 1]);
    scaling.push(Series::theory(
        format!("fit: slope {:.2} +- {:.2}", fit.slope, fit.slope_se),
        vec![
            (b0, fit.intercept.exp() * b0.powf(fit.slope)),
            (b1, fit.intercept.exp() * b1.powf(fit.slope)),
        ],
    ));
    scaling.push(Series::line(
        "k* (most unstable mode)",
        betas.iter().copied().zip(k_stars.iter().copied()).collect(),
    ));
    setup.lines(
        report,
        "count_vs_beta.png",
        &Axes {
            title: "Metastable cluster count against beta (theory: ~ beta^1/2)",
            x_label: "beta",
            y_label: "clusters",
            log_x: true,
            log_y: true,
        },
        &scaling,
    )
}
