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
pub const MUTATIONS: &[&str] = &["half-beta", "double-step"];

mod analyse;
mod figures;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, Setup};
use analyse::PerD;
use attnflow::error::Result;
use sizes::Sizes;

/// Pairs with cosine at least this count as collapsed.

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

#[derive(Serialize)]
struct Checks {
    #[serde(rename = "small_beta_collapses_by_T")]
    small_beta_collapses_by_t: bool,
    collapse_time_grows_with_beta: bool,
    #[serde(rename = "d128_large_beta_not_collapsed_by_T")]
    d128_large_beta_not_collapsed_by_t: bool,
    d128_follows_symmetric_reduction: bool,
    /// The slope of log t_c against beta (beta >= 3) within 3 standard errors plus 15% of the
    /// fit of the symmetric reduction's slope over the same betas.
    #[serde(rename = "d128_log_collapse_time_slope_within_3se_plus_15pct_of_symmetric_reduction")]
    d128_slope_follows_symmetric_reduction: bool,
    d8_several_clusters_at_large_beta: bool,
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
    let diagrams = simulate::diagrams(setup, report, &sz, &betas)?;
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
    let mut checks = Checks {
        small_beta_collapses_by_t: true,
        collapse_time_grows_with_beta: true,
        d128_large_beta_not_collapsed_by_t: false,
        d128_follows_symmetric_reduction: false,
        d128_slope_follows_symmetric_reduction: false,
        d8_several_clusters_at_large_beta: false,
    };
    for g in &diagrams {
        let d = g.d;
        // values[time][beta]
        let values: Vec<Vec<f64>> = (0..times.len())
            .map(|k| g.fraction.iter().map(|f| f[k]).collect())
            .collect();
        figures::heatmap(setup, report, (n, d, sz.threshold), &betas, &times, &values)?;
        let a = analyse::analyse(&g.fraction, &times, &betas, &t_sym, n, sz.threshold, t_end);
        checks.small_beta_collapses_by_t &= a.small_beta_collapses;
        checks.collapse_time_grows_with_beta &= a.collapse_time_grows;
        if d >= 64 {
            checks.d128_large_beta_not_collapsed_by_t = a.last_final < 0.5;
            checks.d128_follows_symmetric_reduction =
                analyse::follows_symmetric_reduction(&t_sym, &a.summary, beta_sym, t_end);
            checks.d128_slope_follows_symmetric_reduction =
                analyse::slope_follows_symmetric_reduction(&a.summary);
        } else {
            // Low d: several metastable clusters at the largest beta (fraction strictly between
            // the uncollapsed ~0 and the collapsed 1).
            checks.d8_several_clusters_at_large_beta = (0.05..0.95).contains(&a.last_final);
        }
        per_d.insert(format!("d_{d}"), a.summary);
        collapsed.push((d, a.collapsed));
    }
    figures::collapse_times(setup, report, (n, t_end), &betas, &t_sym, collapsed)?;
    report.add_measured(&Measured { per_d });
    report.add_checks(&checks);
    // Smoke at the quick size: checks no wrong model of the study fails there (issue 24,
    // experiments/tests/mutations.rs).
    report.smoke_at_quick(
        setup,
        "collapse_time_grows_with_beta",
        "a qualitative trend that every mutation keeps",
    );
    report.smoke_at_quick(
        setup,
        "d8_several_clusters_at_large_beta",
        "a qualitative state that every mutation keeps",
    );
    report.smoke_at_quick(
        setup,
        "small_beta_collapses_by_T",
        "a qualitative state that every mutation keeps",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_phase_diagram_collapses_at_small_beta_only() {
        let (_dir, out, s) = super::super::quick_run_checked("phase-diagram", 1);
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
