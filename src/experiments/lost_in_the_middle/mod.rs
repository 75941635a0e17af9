//! Experiment `lost-in-the-middle` (docs/model.md §3-4): causal attention with the ALiBi
//! positional bias on the circle (d = 2), iid uniform tokens, Q = K = V = I. How much does the
//! token at prompt position s steer the last token N at depth t?
//!
//! Influence: I(s, t) = E[N cos(theta_N(t) - theta_s(0))] (theta = atan2(x_1, x_0)). With iid
//! uniform tokens it is 0 at t = 0 for s < N (the self term s = N is ~N and is left out of the
//! profile). The naive estimator N cos(.) has O(N) noise per prompt against an O(1) signal, so
//! the experiment uses an exact identity instead: theta_s(0) is uniform and independent of the
//! other tokens, so integrating d/dtheta_s sin(theta_N(t) - theta_s) over a period gives
//!   E[cos(theta_N(t) - theta_s(0))] = E[(d theta_N(t) / d theta_s(0)) cos(theta_N(t) - theta_s(0))],
//! and N d theta_N / d theta_s is O(1) per prompt. The derivative is a forward difference
//! (token s rotated by eps = 1e-2, O(eps) bias): every prompt runs as N systems of one batch
//! (the prompt, and the prompt with each earlier token rotated). Controls of known mean 0 are
//! regressed out per position (N d theta_N / d theta_s, whose mean is exactly 0 by periodicity;
//! the naive estimator minus this one; cos(k phi0), phi0 = theta_s(0) - theta_N(0), k = 1..3),
//! which cuts the standard error 1.5-4x. The naive estimator (with the control variate
//! N cos(theta_N(0) - theta_s(0)), mean 0) is reported beside it as a check (chi^2 per
//! position ~1). The linear-response solution of the correlation equation,
//! I(s, t) = N [exp(kappa t P)]_{N s} (P the positional weights, kappa the first Fourier
//! coefficient of the interaction), is drawn beside the data for small t.
//!
//! Theory (kinetic theory of causal attention, lost in the middle): the retrieval profile is
//! U-shaped in s/N: primacy (the first token sees only itself, never moves, and pulls on every
//! later token, directly and through the tokens in between), recency (ALiBi favours near keys:
//! the direct weight of s on N is ~ lambda e^{-lambda (1 - s/N)} / (1 - e^{-lambda}) / N), and
//! one interior minimum (under a smallness condition; at large t everything collapses onto the
//! first token and only primacy remains). The linear response shows it: every path from s to N
//! carries the ALiBi factor e^{-lambda (1 - s/N)} (recency), and paths through the tokens in
//! between add ~ t^2 log(N/s) (primacy), so the U appears at intermediate t (here t ~ 2; at
//! t = 1 the profile still rises almost monotonically, at t >= 4 primacy dominates). USA (positional weights p_ij times e^{beta <x_i, x_j>})
//! is the research's model; SA with the additive ALiBi bias is run beside it. beta = 1, so the
//! research's time scaled by beta is the model's time.
//!
//! Quantities: I(s, t) per position with standard errors over prompts, a smoothed profile, its
//! argmin s/N with a bootstrap standard error, the start/end excess over the minimum in
//! standard errors; CSV of all profiles; figures per model.

/// The deliberate errors of `--mutate` (see `experiments::mutations`).
pub const MUTATIONS: &[&str] = &[];

mod analyse;
mod simulate;
mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, Setup};
use crate::error::Result;
use crate::figures::{Axes, Series};
use crate::model::Attention;
use crate::stats::column_mean_se;
use analyse::{adjusted, analyse, argmin, bessel_i, linear_response};
use simulate::EPS;
use sizes::Sizes;

const D: usize = 2;

#[derive(Serialize)]
struct Config {
    d: usize,
    n: usize,
    prompts: usize,
    systems_per_batch: usize,
    beta: f64,
    alibi_lambda: f64,
    times: [f64; 5],
    time_units: &'static str,
    h: f64,
    integrator: &'static str,
    tokens: &'static str,
    derivative_eps: f64,
    smoothing_window_positions: usize,
}

/// The profile of one model at one time.
#[derive(Serialize)]
struct Profile {
    argmin_s_over_n: f64,
    argmin_s_over_n_se: f64,
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
    naive_vs_derivative_estimator_chi2_per_position: f64,
    control_variate_se_reduction: f64,
    linear_response_first_token: f64,
    linear_response_last_token: f64,
    linear_response_argmin_s_over_n: f64,
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
}

#[derive(Serialize)]
struct Prediction {
    shape: &'static str,
}

#[derive(Serialize)]
struct Checks {
    usa_u_shaped_at_some_t_start_and_end_3se_above_an_interior_minimum: bool,
    sa_recency_at_t_le_2_and_primacy_at_t_ge_4_by_3se: bool,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = Sizes::new(setup.quick);
    let (beta, lambda, times, n, prompts, w) =
        (sz.beta, sz.lambda, sz.times, sz.n, sz.prompts, sz.w);
    report.add_config(&Config {
        d: D,
        n,
        prompts,
        systems_per_batch: n * prompts,
        beta,
        alibi_lambda: lambda,
        times,
        time_units: "model time = research time scaled by beta (beta = 1)",
        h: sz.h,
        integrator: "rk4",
        tokens: "iid uniform on the circle, Q = K = V = I, causal mask",
        derivative_eps: EPS,
        smoothing_window_positions: w,
    });
    report.add_prediction(&Prediction {
        shape: "U-shaped in s/N: primacy, recency, one interior minimum (qualitative; at large \
                t the first token dominates)",
    });
    let mut profiles = BTreeMap::new();
    let mut rows = Vec::new();
    let mut any_u = false;
    let mut u_argmins = Vec::new();
    let mut sa_any_u = false;
    let (mut sa_recency, mut sa_primacy) = (false, false);
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
                ]);
            }
            per_t.insert(
                format!("t={t}"),
                Profile {
                    argmin_s_over_n: a.argmin_u,
                    argmin_s_over_n_se: a.argmin_u_se,
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
                    naive_vs_derivative_estimator_chi2_per_position: chi2,
                    control_variate_se_reduction: se_gain,
                    linear_response_first_token: theory[0],
                    linear_response_last_token: theory[n - 2],
                    linear_response_argmin_s_over_n: (argmin(&theory) + 1) as f64 / n as f64,
                },
            );
            if attention == Attention::Usa {
                any_u |= a.u_shaped;
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
        ],
        &rows,
    )?;
    report.add_measured(&Measured {
        profiles,
        usa_u_shaped_times_and_argmin: u_argmins,
        sa_u_shaped_at_some_t: sa_any_u,
    });
    report.add_checks(&Checks {
        usa_u_shaped_at_some_t_start_and_end_3se_above_an_interior_minimum: any_u,
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
