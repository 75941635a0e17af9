//! Experiment `critical-scaling` (docs/model.md §3, attention temperature beta_n = gamma log n):
//! with the critical scaling of long contexts, one attention layer (and a short flow) of n
//! similar tokens either collapses them onto their mean (gamma small) or stays near the
//! identity (gamma large), and the transition sits at a gamma that does not move with n.
//!
//! Tokens: x_i = sqrt(c0) e_1 + sqrt(1 - c0) u_i with u_i iid uniform on the unit sphere of
//! e_1^perp in R^d (d = 64), so |x_i| = 1 and <x_i, x_j> = c0 + (1 - c0) <u_i, u_j>: the
//! pairwise cosines concentrate at c0 with fluctuations (1 - c0) / sqrt(d - 1).
//!
//! Theory (derived here). The self-score of token i is beta, the others are
//! beta <x_i, x_j> = beta (c0 + (1 - c0) t_ij), so the weight of the token on itself is
//! p = 1 / (1 + Z), Z = sum_{j != i} e^{-beta (1 - c0)(1 - t_ij)} ~= n e^{-kappa} M(kappa), with
//! kappa = beta (1 - c0) = gamma (1 - c0) log n and M(kappa) = E e^{kappa t} (t a coordinate
//! of a uniform point of S^{d-2}; ln M ~= kappa^2 / (2 (d - 1)) for d large). Hence
//! Z ~= n^{1 - gamma (1 - c0)} up to a finite-d factor: for gamma (1 - c0) < 1 attention
//! averages over ~ n^{1 - gamma(1 - c0)} tokens and every output is the mean (mean cosine of
//! the normalised outputs -> 1); for gamma (1 - c0) > 1 the self-weight -> 1 (outputs = inputs,
//! mean cosine stays c0). The critical value is gamma_c = 1 / (1 - c0) as n -> infinity, the
//! same for every n: that is the point of the log n scaling. At finite n, d the output of
//! token i is ~ sqrt(c0) e_1 + sqrt(1 - c0) (P u_i + noise) with P = p + (1 - p) A(kappa)
//! (A = E[t e^{kappa t}] / M: the others are tilted towards u_i) and noise of squared size
//! (1 - p)^2 (1 - A^2) / n_eff (n_eff = n M(kappa)^2 / M(2 kappa)), so the mean output cosine is
//! c ~= c0 / (c0 + (1 - c0)(P^2 + noise)); its halfway crossing (c = (1 + c0) / 2, i.e.
//! P ~= sqrt(c0 / (1 + c0))) gives the finite-(n, d) prediction of gamma_c, which approaches
//! 1 / (1 - c0) like 1 / log n (plus a finite-d drift ~ log n / (2 (d - 1))).
//!
//! Measured: the mean pairwise cosine of the normalised outputs after one layer (SA, raw
//! euclidean outputs, m queries = the first m tokens attending to all n keys, an unbiased
//! estimate of the mean over all pairs) and after a short flow on the sphere (SA, RK4, t = 1,
//! all n tokens), against gamma for several n and c0; gamma_c(n, c0) where the curve crosses
//! halfway between its value at gamma = 0 (uniform attention: exactly 1 for one layer) and c0.
//! The flow at gamma = 0 is checked against its closed form: uniform attention moves every token
//! towards the mean sqrt(c0) e_1, y = <x, e_1> obeys y' = y (1 - y^2) and the mean cosine
//! c = y^2 follows c / (1 - c) = c0 / (1 - c0) e^{2t}, so by t = 1 it has not collapsed for
//! small c0 (0.45 at c0 = 0.1).

/// The deliberate errors of `--mutate` (see `experiments::mutations`).
pub const MUTATIONS: &[&str] = &[];

mod analyse;
mod figures;
mod simulate;
mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, Setup, fit_line};
use crate::attend::derived_seed;
use crate::error::Result;
use crate::figures::Series;
use crate::stats::{Fit, mean};
use analyse::{crossing, max_rise, predicted_cos, spread, uniform_attention_cos};
use simulate::{mean_pair_cos, tokens};
use sizes::Sizes;

#[derive(Serialize)]
struct Config<'a> {
    d: usize,
    c0: &'a [f64],
    layer_n: &'a [usize],
    layer_queries: usize,
    flow_n: &'a [usize],
    gammas_layer: &'a [f64],
    gammas_flow: &'a [f64],
    beta: &'static str,
    tokens: &'static str,
    layer: &'static str,
    flow: &'static str,
    flow_t: f64,
    flow_h: f64,
}

/// gamma_c of one c0 for every n (NaN: no crossing).
#[derive(Serialize)]
struct GammaC<'a> {
    n: &'a [usize],
    gamma_c: Vec<f64>,
}

#[derive(Serialize)]
struct Measured<'a> {
    /// layer_gamma_c_c0_{c0} and flow_gamma_c_c0_{c0}.
    #[serde(flatten)]
    per_c0: BTreeMap<String, GammaC<'a>>,
    layer_gamma_c_mean_over_n: Vec<f64>,
    layer_gamma_c_relative_spread_over_n: Vec<f64>,
    layer_gamma_c_times_1_minus_c0_at_largest_n: Vec<f64>,
    flow_gamma_c_mean_over_n: Vec<f64>,
    flow_gamma_c_relative_spread_over_n: Vec<f64>,
    fit_layer_gamma_c_vs_1_over_1_minus_c0: Fit,
    fit_flow_gamma_c_vs_1_over_1_minus_c0: Fit,
    layer_max_rise_in_gamma: f64,
    flow_max_rise_in_gamma: f64,
    flow_gamma_0_largest_deviation_from_closed_form: f64,
}

/// The theory's gamma_c of one c0: asymptotic and at each finite n (and d).
#[derive(Serialize)]
struct PredictedGammaC {
    asymptotic: f64,
    finite_n_d: Vec<f64>,
}

#[derive(Serialize)]
struct Prediction {
    /// layer_gamma_c_c0_{c0}.
    #[serde(flatten)]
    per_c0: BTreeMap<String, PredictedGammaC>,
    gamma_c: &'static str,
    fit_slope_vs_1_over_1_minus_c0: f64,
    fit_intercept: f64,
    finite_n_d: &'static str,
    flow_gamma_0: &'static str,
}

#[derive(Serialize)]
struct Checks {
    every_curve_crosses_halfway: bool,
    layer_collapses_at_small_gamma: bool,
    layer_near_identity_at_large_gamma: bool,
    layer_monotone_in_gamma: bool,
    layer_gamma_c_increases_with_c0: bool,
    layer_gamma_c_spread_over_n_below_15_percent: bool,
    layer_gamma_c_within_25_percent_of_1_over_1_minus_c0_at_largest_n: bool,
    #[serde(rename = "flow_at_gamma_0_follows_the_uniform_attention_closed_form_within_0.02")]
    flow_at_gamma_0_follows_the_uniform_attention_closed_form: bool,
    flow_near_identity_at_large_gamma: bool,
    flow_monotone_in_gamma: bool,
    flow_gamma_c_increases_with_c0: bool,
    flow_gamma_c_spread_over_n_below_20_percent: bool,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = Sizes::new(setup.quick);
    let d = sz.d;
    let gammas = sz.layer_gammas();
    let flow_gammas = sz.flow_gammas();
    report.add_config(&Config {
        d,
        c0: &sz.c0s,
        layer_n: &sz.layer_ns,
        layer_queries: sz.queries,
        flow_n: &sz.flow_ns,
        gammas_layer: &gammas,
        gammas_flow: &flow_gammas,
        beta: "gamma ln n",
        tokens: "x = sqrt(c0) e_1 + sqrt(1 - c0) u, u uniform on the sphere of e_1^perp",
        layer: "SA, Q = K = V = I, euclidean (raw outputs)",
        flow: "SA on the sphere, Q = K = V = I, RK4",
        flow_t: sz.t_end,
        flow_h: sz.h,
    });

    let mut layer_rows = Vec::new();
    let mut flow_rows = Vec::new();
    let mut gc_rows = Vec::new();
    let mut measured = BTreeMap::new();
    let mut predicted = BTreeMap::new();
    let (mut collapse_small, mut identity_large, mut monotone) = (true, true, true);
    let (mut flow_uniform_closed_form, mut flow_identity, mut flow_monotone) = (true, true, true);
    let mut gc_layer_by_c0: Vec<Vec<f64>> = Vec::new();
    let mut gc_flow_by_c0: Vec<Vec<f64>> = Vec::new();
    let mut worst_rise: f64 = 0.0;
    let mut worst_flow_rise: f64 = 0.0;
    let mut worst_uniform_dev: f64 = 0.0;

    for &c0 in &sz.c0s {
        let mut series = Vec::new();
        let mut theory = Vec::new();
        let mut gcs = Vec::new();
        let mut gc_pred_n = Vec::new();
        // One layer.
        for (ni, &n) in sz.layer_ns.iter().enumerate() {
            // The same u for every c0 (common random numbers).
            let x = tokens(n, d, c0, derived_seed(setup.seed, 1 + ni as u64))?;
            let m = sz.queries.min(n);
            let c_in = mean_pair_cos(&x[..m * d], d);
            let c_out = simulate::layer(setup, report, &x, (m, n, d), &gammas)?;
            let half = 0.5 * (c_in + c_out[0]);
            let gc = crossing(&gammas, &c_out, half);
            let pred: Vec<f64> = gammas
                .iter()
                .map(|&g| predicted_cos(c_in, n, d, g))
                .collect();
            let gc_pred = crossing(&gammas, &pred, half);
            setup.say(&format!(
                "layer c0 {c0}, n {n}: c_in {c_in:.4}, gamma_c {gc:?} (finite-n theory {gc_pred:?})"
            ));
            for (k, &g) in gammas.iter().enumerate() {
                layer_rows.push(vec![c0, n as f64, g, c_in, c_out[k], pred[k]]);
            }
            // Collapse at small gamma (gamma (1 - c0) = 0.25 or less): within 10% of the gap
            // from 1; near identity at the largest gamma: within 0.05 of the input's cosine.
            let small = gammas
                .iter()
                .position(|&g| g * (1.0 - c0) > 0.25)
                .unwrap_or(1)
                .max(2)
                - 1;
            collapse_small &= c_out[small] > 1.0 - 0.1 * (1.0 - c_in);
            identity_large &= (c_out[c_out.len() - 1] - c_in).abs() < 0.05;
            let rise = max_rise(&c_out);
            worst_rise = worst_rise.max(rise);
            monotone &= rise < 0.01;
            gcs.push(gc.unwrap_or(f64::NAN));
            gc_pred_n.push(gc_pred.unwrap_or(f64::NAN));
            gc_rows.push(vec![
                0.0,
                c0,
                n as f64,
                c_in,
                gc.unwrap_or(f64::NAN),
                gc_pred.unwrap_or(f64::NAN),
            ]);
            series.push(Series::line(
                format!("n = {n}"),
                gammas.iter().copied().zip(c_out.iter().copied()).collect(),
            ));
            theory.push(Series::theory(
                format!("theory n = {n}"),
                gammas.iter().copied().zip(pred).collect(),
            ));
        }
        figures::layer(setup, report, (c0, d), series, theory)?;
        measured.insert(
            format!("layer_gamma_c_c0_{c0}"),
            GammaC {
                n: &sz.layer_ns,
                gamma_c: gcs.clone(),
            },
        );
        predicted.insert(
            format!("layer_gamma_c_c0_{c0}"),
            PredictedGammaC {
                asymptotic: 1.0 / (1.0 - c0),
                finite_n_d: gc_pred_n,
            },
        );
        gc_layer_by_c0.push(gcs);

        // Short flow.
        let mut fseries = Vec::new();
        let mut fgcs = Vec::new();
        for (ni, &n) in sz.flow_ns.iter().enumerate() {
            let x = tokens(n, d, c0, derived_seed(setup.seed, 100 + ni as u64))?;
            let c_in = mean_pair_cos(&x, d);
            let c_out = simulate::flow(setup, report, &x, (n, d), &flow_gammas, (sz.t_end, sz.h))?;
            let half = 0.5 * (c_in + c_out[0]);
            let gc = crossing(&flow_gammas, &c_out, half);
            setup.say(&format!(
                "flow c0 {c0}, n {n}: c_in {c_in:.4}, c(gamma=0) {:.4}, gamma_c {gc:?}",
                c_out[0]
            ));
            for (k, &g) in flow_gammas.iter().enumerate() {
                flow_rows.push(vec![c0, n as f64, g, c_in, c_out[k]]);
            }
            let c_uniform = uniform_attention_cos(c_in, sz.t_end);
            worst_uniform_dev = worst_uniform_dev.max((c_out[0] - c_uniform).abs());
            flow_uniform_closed_form &= (c_out[0] - c_uniform).abs() < 0.02;
            flow_identity &= (c_out[c_out.len() - 1] - c_in).abs() < 0.05;
            let rise = max_rise(&c_out);
            worst_flow_rise = worst_flow_rise.max(rise);
            flow_monotone &= rise < 0.01;
            fgcs.push(gc.unwrap_or(f64::NAN));
            gc_rows.push(vec![
                1.0,
                c0,
                n as f64,
                c_in,
                gc.unwrap_or(f64::NAN),
                f64::NAN,
            ]);
            fseries.push(Series::line(
                format!("n = {n}"),
                flow_gammas
                    .iter()
                    .copied()
                    .zip(c_out.iter().copied())
                    .collect(),
            ));
        }
        figures::flow(setup, report, (c0, d, sz.t_end), fseries)?;
        measured.insert(
            format!("flow_gamma_c_c0_{c0}"),
            GammaC {
                n: &sz.flow_ns,
                gamma_c: fgcs.clone(),
            },
        );
        gc_flow_by_c0.push(fgcs);
    }

    setup.csv(
        report,
        "layer.csv",
        &["c0", "n", "gamma", "cos_in", "cos_out", "cos_theory"],
        &layer_rows,
    )?;
    setup.csv(
        report,
        "flow.csv",
        &["c0", "n", "gamma", "cos_in", "cos_t"],
        &flow_rows,
    )?;
    setup.csv(
        report,
        "gamma_c.csv",
        &[
            "flow",
            "c0",
            "n",
            "cos_in",
            "gamma_c",
            "gamma_c_finite_n_theory",
        ],
        &gc_rows,
    )?;

    // gamma_c against c0, stability across n, and the fit gamma_c = a + b / (1 - c0).
    let all_found = gc_layer_by_c0.iter().flatten().all(|v| v.is_finite())
        && gc_flow_by_c0.iter().flatten().all(|v| v.is_finite());
    let layer_mean: Vec<f64> = gc_layer_by_c0.iter().map(|v| mean(v)).collect();
    let layer_rel_spread: Vec<f64> = gc_layer_by_c0.iter().map(|v| spread(v) / mean(v)).collect();
    let flow_mean: Vec<f64> = gc_flow_by_c0.iter().map(|v| mean(v)).collect();
    let flow_rel_spread: Vec<f64> = gc_flow_by_c0.iter().map(|v| spread(v) / mean(v)).collect();
    let inv: Vec<f64> = sz.c0s.iter().map(|c| 1.0 / (1.0 - c)).collect();
    // gamma_c (1 - c0) at the largest n: the asymptotic theory says 1.
    let g_largest: Vec<f64> = gc_layer_by_c0
        .iter()
        .zip(&sz.c0s)
        .map(|(v, c)| v[v.len() - 1] * (1.0 - c))
        .collect();
    let increasing = |v: &[f64]| v.windows(2).all(|w| w[1] > w[0]);
    let checks = Checks {
        every_curve_crosses_halfway: all_found,
        layer_collapses_at_small_gamma: collapse_small,
        layer_near_identity_at_large_gamma: identity_large,
        layer_monotone_in_gamma: monotone,
        layer_gamma_c_increases_with_c0: increasing(&layer_mean),
        layer_gamma_c_spread_over_n_below_15_percent: layer_rel_spread.iter().all(|s| *s < 0.15),
        layer_gamma_c_within_25_percent_of_1_over_1_minus_c0_at_largest_n: g_largest
            .iter()
            .all(|g| (g - 1.0).abs() < 0.25),
        flow_at_gamma_0_follows_the_uniform_attention_closed_form: flow_uniform_closed_form,
        flow_near_identity_at_large_gamma: flow_identity,
        flow_monotone_in_gamma: flow_monotone,
        flow_gamma_c_increases_with_c0: increasing(&flow_mean),
        flow_gamma_c_spread_over_n_below_20_percent: flow_rel_spread.iter().all(|s| *s < 0.2),
    };
    report.add_measured(&Measured {
        per_c0: measured,
        fit_layer_gamma_c_vs_1_over_1_minus_c0: fit_line(&inv, &layer_mean),
        fit_flow_gamma_c_vs_1_over_1_minus_c0: fit_line(&inv, &flow_mean),
        layer_gamma_c_mean_over_n: layer_mean,
        layer_gamma_c_relative_spread_over_n: layer_rel_spread,
        layer_gamma_c_times_1_minus_c0_at_largest_n: g_largest,
        flow_gamma_c_mean_over_n: flow_mean,
        flow_gamma_c_relative_spread_over_n: flow_rel_spread,
        layer_max_rise_in_gamma: worst_rise,
        flow_max_rise_in_gamma: worst_flow_rise,
        flow_gamma_0_largest_deviation_from_closed_form: worst_uniform_dev,
    });
    report.add_prediction(&Prediction {
        per_c0: predicted,
        gamma_c: "1 / (1 - c0) as n -> infinity, independent of n (self-score beta vs beta c0 + \
                  ln n)",
        fit_slope_vs_1_over_1_minus_c0: 1.0,
        fit_intercept: 0.0,
        finite_n_d: "layer: c ~= c0 / (c0 + (1 - c0)(P^2 + noise)), P = p + (1 - p) A(kappa) \
                     (module doc); flow: qualitative, same gamma_c ~ 1/(1 - c0) (collapse feeds \
                     back: c grows, so the flow's gamma_c sits at or above the layer's)",
        flow_gamma_0: "uniform attention: c / (1 - c) = c0 / (1 - c0) e^{2t} (n -> infinity)",
    });
    figures::gamma_c(
        setup,
        report,
        d,
        &sz.c0s,
        (&sz.layer_ns, &gc_layer_by_c0),
        (&sz.flow_ns, &gc_flow_by_c0),
        sz.t_end,
    )?;
    report.add_checks(&checks);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_critical_scaling_has_an_n_independent_transition() {
        let (_dir, out, s) = super::super::quick_run_checked("critical-scaling", 3);
        // gamma_c (1 - c0) at the largest n is near 1 for every c0.
        for g in s["measured"]["layer_gamma_c_times_1_minus_c0_at_largest_n"]
            .as_array()
            .unwrap()
        {
            let g = g.as_f64().unwrap();
            assert!((0.8..1.25).contains(&g), "{g}");
        }
        assert!(out.join("gamma_c_vs_c0.png").exists());
    }
}
