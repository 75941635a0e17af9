//! Experiment `lost-in-the-middle` (docs/model.md §3-4): causal attention with the ALiBi
//! positional bias on the circle (d = 2), iid uniform tokens, Q = K = V = I. How much does the
//! token at prompt position s steer the last token N at depth t?
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/lost-in-the-middle.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
pub const MUTATIONS: &[&str] = &["no-alibi"];

mod analyse;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, Setup};
use analyse::{
    adjusted, analyse, argmin, bessel_i, closed_form, closed_form_argmin, closed_form_crossing,
    crossing, end_slope, linear_response, mode_rate, soft_weight, t_crit, t_crit_summed,
};
use attnflow::error::{Result, input};
use attnflow::figures::{Axes, Series};
use attnflow::model::Attention;
use attnflow::stats::column_mean_se;
use simulate::EPS;
use sizes::Sizes;

const D: usize = 2;

#[derive(Serialize)]
struct Config {
    d: usize,
    systems_per_batch: usize,
    observed_times: Vec<f64>,
    time_units: &'static str,
    integrator: &'static str,
    tokens: &'static str,
    derivative_eps: f64,
    end_window_positions: usize,
}

/// The profile of one model at one time.
#[derive(Serialize)]
struct Profile {
    argmin_s_over_n: f64,
    argmin_s_over_n_se: f64,
    closed_form_argmin_s_over_n: f64,
    influence_first_token: f64,
    influence_first_token_se: f64,
    influence_last_window: f64,
    influence_last_window_se: f64,
    influence_min_window: f64,
    influence_min_window_se: f64,
    start_excess_in_se: f64,
    end_excess_in_se: f64,
    interior_minimum: bool,
    u_shaped: bool,
    end_slope: f64,
    end_slope_se: f64,
    closed_form_end_slope: f64,
    naive_vs_derivative_estimator_chi2_per_position: f64,
    control_variate_se_reduction: f64,
    linear_response_first_token: f64,
    linear_response_last_token: f64,
    linear_response_argmin_s_over_n: f64,
}

/// When the right-end slope of one profile (a Fourier mode or the soft accuracy) turns.
#[derive(Serialize)]
struct Turn {
    /// None when the slope does not turn from positive to negative between observed times.
    t_crit: Option<f64>,
    t_crit_se: Option<f64>,
    closed_form_t_crit: f64,
    /// The time the closed form's slope over the same window turns.
    closed_form_window_t_crit: Option<f64>,
    end_slopes: Vec<f64>,
    end_slopes_se: Vec<f64>,
}

/// Where the USA profile is U-shaped.
#[derive(Serialize)]
struct UShaped {
    t: f64,
    argmin_s_over_n: f64,
    argmin_s_over_n_se: f64,
}

#[derive(Serialize)]
struct Measured {
    /// usa_profile and sa_profile: per time "t={t}".
    #[serde(flatten)]
    profiles: BTreeMap<String, BTreeMap<String, Profile>>,
    usa_u_shaped_times_and_argmin: Vec<UShaped>,
    sa_u_shaped_at_some_t: bool,
    /// "mode_{k}" and "soft_accuracy".
    usa_critical_time: BTreeMap<String, Turn>,
}

#[derive(Serialize)]
struct Prediction {
    shape: &'static str,
    mode_rates: Vec<f64>,
    t_crit_per_mode: Vec<f64>,
    t_crit_soft_accuracy: f64,
    soft_accuracy_weights: Vec<f64>,
}

#[derive(Serialize)]
struct Checks {
    #[serde(rename = "usa_argmin_within_3se_plus_2/N_of_closed_form_g1_at_every_t_below_t_crit")]
    argmin: bool,
    #[serde(
        rename = "usa_end_slope_within_3se_plus_15%_of_closed_form_at_every_t_below_0.8_t_crit"
    )]
    end_slope: bool,
    usa_u_shaped_at_some_t_below_t_crit: bool,
    sa_recency_at_t_le_2_and_primacy_at_t_ge_4_by_3se: bool,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    let (beta, lambda, n, prompts, w) = (sz.beta, sz.lambda, sz.n, sz.prompts, sz.w);
    if n < 8 || sz.times.is_empty() || sz.modes == 0 || sz.h.is_nan() || sz.h <= 0.0 {
        return Err(input(
            "--set: lost-in-the-middle needs n >= 8, some times, modes >= 1 and h > 0",
        ));
    }
    // The times the RK4 steps land on.
    let times: Vec<f64> = sz.times.iter().map(|t| (t / sz.h).round() * sz.h).collect();
    let q = ((sz.end_window * n as f64).round() as usize).clamp(2, n - 1);
    report.add_config(&sz);
    report.add_config(&Config {
        d: D,
        systems_per_batch: n * prompts,
        observed_times: times.clone(),
        time_units: "model time = the research's time times beta",
        integrator: "rk4",
        tokens: "iid uniform on the circle, Q = K = V = I, causal mask",
        derivative_eps: EPS,
        end_window_positions: q,
    });
    let rates: Vec<f64> = (1..=sz.modes as u32).map(|k| mode_rate(k, beta)).collect();
    let weights: Vec<f64> = (1..=sz.modes as u32)
        .map(|k| soft_weight(k, sz.soft_accuracy_m))
        .collect();
    let tc1 = t_crit(rates[0], lambda);
    report.add_prediction(&Prediction {
        shape: "U-shaped in s/N before t_crit (primacy, recency, one interior minimum at the \
                argmin of g_1), falling to the end after it",
        mode_rates: rates.clone(),
        t_crit_per_mode: rates.iter().map(|&b| t_crit(b, lambda)).collect(),
        t_crit_soft_accuracy: t_crit_summed(&rates, &weights, lambda),
        soft_accuracy_weights: weights.clone(),
    });
    let mut profiles = BTreeMap::new();
    let mut rows = Vec::new();
    let mut u_argmins = Vec::new();
    let mut sa_any_u = false;
    let (mut sa_recency, mut sa_primacy) = (false, false);
    let mut argmin_ok = true;
    let mut argmin_times = 0;
    let mut usa_u_below = false;
    let mut turns = BTreeMap::new();
    let (mut slope_ok, mut slope_times) = (true, 0);
    for attention in [Attention::Usa, Attention::Sa] {
        let name = attention.name();
        let kappa = match attention {
            Attention::Usa => bessel_i(1, beta) / beta,
            Attention::Sa => bessel_i(1, beta) / (beta * bessel_i(0, beta)),
        };
        setup.say(&format!(
            "{name}: N = {n}, {prompts} prompts x {n} systems, lambda = {lambda}"
        ));
        let samples = simulate::influence(setup, report, attention, &sz)?;
        let mut series = Vec::new();
        let mut early = Vec::new();
        let mut per_t = BTreeMap::new();
        // Right-end slopes per mode (mode 1 with control variates) and of the soft accuracy.
        let mut slopes: Vec<Vec<(f64, f64)>> = vec![Vec::new(); sz.modes + 1];
        for (ti, s) in samples.iter().enumerate() {
            let t = times[ti];
            let adj = adjusted(s);
            let a = analyse(&adj, n, w, setup.seed ^ (ti as u64 + 17));
            let plain: Vec<(f64, f64)> = (0..n - 1).map(|p| column_mean_se(&s.jac, p)).collect();
            let naive: Vec<(f64, f64)> = (0..n - 1).map(|p| column_mean_se(&s.naive, p)).collect();
            let theory = linear_response(n, lambda, kappa, t);
            let se_gain =
                plain.iter().map(|v| v.1).sum::<f64>() / a.raw.iter().map(|v| v.1).sum::<f64>();
            // Agreement of the naive estimator with the derivative one: chi^2 per position.
            let chi2 = (0..n - 1)
                .map(|p| {
                    let (x, y) = (plain[p], naive[p]);
                    (x.0 - y.0).powi(2) / (x.1 * x.1 + y.1 * y.1)
                })
                .sum::<f64>()
                / (n - 1) as f64;
            let slope = end_slope(&adj, n, q);
            slopes[0].push(slope);
            for (sl, rows) in slopes.iter_mut().zip(&s.modes).skip(1) {
                sl.push(end_slope(rows, n, q));
            }
            let soft: Vec<Vec<f64>> = (0..prompts)
                .map(|g| {
                    (0..n - 1)
                        .map(|p| {
                            let first = weights[0] * adj[g][p];
                            first
                                + (1..sz.modes)
                                    .map(|k| weights[k] * s.modes[k][g][p])
                                    .sum::<f64>()
                        })
                        .collect()
                })
                .collect();
            slopes[sz.modes].push(end_slope(&soft, n, q));
            let g1_argmin = closed_form_argmin(rates[0], t, lambda);
            for p in 0..n - 1 {
                rows.push(vec![
                    (attention == Attention::Usa) as u8 as f64,
                    t,
                    (p + 1) as f64,
                    (p + 1) as f64 / n as f64,
                    a.raw[p].0,
                    a.raw[p].1,
                    a.smoothed[p],
                    plain[p].0,
                    plain[p].1,
                    naive[p].0,
                    naive[p].1,
                    theory[p],
                    closed_form(kappa, t, lambda, (p + 1) as f64 / n as f64),
                ]);
            }
            per_t.insert(
                format!("t={t}"),
                Profile {
                    argmin_s_over_n: a.argmin_u,
                    argmin_s_over_n_se: a.argmin_u_se,
                    closed_form_argmin_s_over_n: g1_argmin,
                    influence_first_token: a.start.0,
                    influence_first_token_se: a.start.1,
                    influence_last_window: a.end.0,
                    influence_last_window_se: a.end.1,
                    influence_min_window: a.min.0,
                    influence_min_window_se: a.min.1,
                    start_excess_in_se: a.start_z,
                    end_excess_in_se: a.end_z,
                    interior_minimum: a.interior,
                    u_shaped: a.u_shaped,
                    end_slope: slope.0,
                    end_slope_se: slope.1,
                    closed_form_end_slope: analyse::closed_form_end_slope(kappa, t, lambda, n, q),
                    naive_vs_derivative_estimator_chi2_per_position: chi2,
                    control_variate_se_reduction: se_gain,
                    linear_response_first_token: theory[0],
                    linear_response_last_token: theory[n - 2],
                    linear_response_argmin_s_over_n: (argmin(&theory) + 1) as f64 / n as f64,
                },
            );
            if attention == Attention::Usa {
                if t <= 0.8 * tc1 {
                    let predicted = analyse::closed_form_end_slope(kappa, t, lambda, n, q);
                    slope_times += 1;
                    slope_ok &=
                        (slope.0 - predicted).abs() <= 3.0 * slope.1 + 0.15 * predicted.abs();
                }
                if t < tc1 {
                    argmin_times += 1;
                    argmin_ok &=
                        (a.argmin_u - g1_argmin).abs() <= 3.0 * a.argmin_u_se + 2.0 / n as f64;
                    usa_u_below |= a.u_shaped;
                }
                if a.u_shaped {
                    u_argmins.push(UShaped {
                        t,
                        argmin_s_over_n: a.argmin_u,
                        argmin_s_over_n_se: a.argmin_u_se,
                    });
                }
            } else {
                sa_any_u |= a.u_shaped;
                sa_recency |= t <= 2.0 && a.end_z > 3.0;
                sa_primacy |= t >= 4.0 && a.start_z > 3.0;
            }
            let at = |v: &[f64]| -> Vec<(f64, f64)> {
                (0..n - 1)
                    .map(|p| ((p + 1) as f64 / n as f64, v[p]))
                    .collect()
            };
            let raw: Vec<f64> = a.raw.iter().map(|v| v.0).collect();
            series.push(Series::line(
                format!(
                    "t = {t} (smoothed over {w}); min at s/N = {:.2} +- {:.2}{}",
                    a.argmin_u,
                    a.argmin_u_se,
                    if a.u_shaped { ", U-shaped" } else { "" }
                ),
                at(&a.smoothed),
            ));
            if t <= 2.0 {
                early.push(Series::markers(format!("t = {t}, data"), at(&raw)));
                early.push(Series::line(
                    format!("t = {t}, smoothed over {w} positions"),
                    at(&a.smoothed),
                ));
                early.push(Series::theory(
                    format!("t = {t}, linear response (kinetic theory)"),
                    at(&theory),
                ));
            }
        }
        if attention == Attention::Usa {
            let t_hi = 4.0 * times.last().copied().unwrap_or(1.0);
            for (k, sl) in slopes.iter().enumerate() {
                let (key, predicted, window) = if k < sz.modes {
                    (
                        format!("mode_{}", k + 1),
                        t_crit(rates[k], lambda),
                        closed_form_crossing(rates[k], lambda, n, q, t_hi),
                    )
                } else {
                    (
                        "soft_accuracy".to_string(),
                        t_crit_summed(&rates, &weights, lambda),
                        None,
                    )
                };
                let turn = crossing(&times, sl);
                turns.insert(
                    key,
                    Turn {
                        t_crit: turn.map(|v| v.0),
                        t_crit_se: turn.map(|v| v.1),
                        closed_form_t_crit: predicted,
                        closed_form_window_t_crit: window,
                        end_slopes: sl.iter().map(|v| v.0).collect(),
                        end_slopes_se: sl.iter().map(|v| v.1).collect(),
                    },
                );
            }
        }
        profiles.insert(format!("{name}_profile"), per_t);
        let title = format!(
            "{}: influence of position s on the last token (N = {n}, lambda = {lambda})",
            name.to_uppercase()
        );
        let axes = Axes {
            title: &title,
            x_label: "s / N",
            y_label: "I(s, t) = E[N cos(theta_N(t) - theta_s(0))]",
            log_x: false,
            log_y: false,
        };
        setup.lines(
            report,
            &format!("lost_in_the_middle_{name}.png"),
            &axes,
            &series,
        )?;
        setup.lines(
            report,
            &format!("lost_in_the_middle_{name}_early.png"),
            &Axes {
                title: &format!("{title}, t <= 2"),
                ..axes
            },
            &early,
        )?;
    }
    setup.csv(
        report,
        "lost_in_the_middle.csv",
        &[
            "usa",
            "t",
            "s",
            "s_over_n",
            "influence",
            "influence_se",
            "influence_smoothed",
            "influence_no_control_variates",
            "influence_no_control_variates_se",
            "influence_naive",
            "influence_naive_se",
            "linear_response",
            "closed_form_g1",
        ],
        &rows,
    )?;
    report.add_measured(&Measured {
        profiles,
        usa_u_shaped_times_and_argmin: u_argmins,
        sa_u_shaped_at_some_t: sa_any_u,
        usa_critical_time: turns,
    });
    report.add_checks(&Checks {
        argmin: argmin_ok && argmin_times >= 2,
        end_slope: slope_ok && slope_times >= 1,
        usa_u_shaped_at_some_t_below_t_crit: usa_u_below,
        sa_recency_at_t_le_2_and_primacy_at_t_ge_4_by_3se: sa_recency && sa_primacy,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_lost_in_the_middle_is_u_shaped() {
        let (_dir, out, s) = super::super::quick_run_checked("lost-in-the-middle", 1);
        // Where USA is U-shaped the minimum sits in the first half (linear response: ~0.25).
        for m in s["measured"]["usa_u_shaped_times_and_argmin"]
            .as_array()
            .unwrap()
        {
            let u = m["argmin_s_over_n"].as_f64().unwrap();
            assert!((0.05..0.7).contains(&u), "argmin {u}: {m}");
        }
        let t2 = &s["measured"]["usa_profile"]["t=2"];
        let ratio = t2["influence_last_window"].as_f64().unwrap()
            / t2["linear_response_last_token"].as_f64().unwrap();
        assert!(
            (0.6..1.2).contains(&ratio),
            "recency vs linear response: {ratio}"
        );
        assert!(out.join("lost_in_the_middle_usa.png").exists());
    }
}
