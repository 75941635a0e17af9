//! Experiment `chaos` (docs/model.md §3-4, propagation of chaos in contextual flow maps): how far
//! a query moved by a finite context of n tokens strays from its infinite-context twin.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/chaos.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
/// `repulsive-interaction`: V = -I in the finite-context flows (tokens pushed away from what
/// they attend to), while the infinite-context twin and the theory keep V = I.
/// `frozen-context`: the "evolving" context is frozen at its uniform start.
/// `rate-0.4`: issue 24's wrong model, a theory of rate n^{-0.4} for the frozen context.
pub const MUTATIONS: &[&str] = &["repulsive-interaction", "frozen-context", "rate-0.4"];

mod analyse;
mod figures;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Band, Check, Fit, Report, Setup, Test, fit_loglog};
use analyse::{exp_rate, reference_slope, rms};
use attnflow::error::Result;
use attnflow::meanfield::bessel_ratio;
use sizes::Sizes;

const D: usize = 3;

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sizes = setup.sizes(Sizes::new(setup.quick))?;
    report.add_config(&sizes);
    frozen(setup, report, &sizes)?;
    evolving(setup, report, &sizes)?;
    Ok(())
}

#[derive(Serialize)]
struct FrozenConfig {
    d: usize,
    integrator: &'static str,
    attention: &'static str,
}

#[derive(Serialize)]
struct FrozenMeasured {
    frozen_distance_at_t_end_vs_n: Vec<f64>,
    frozen_slope_at_t_end: f64,
    frozen_slope_at_t_end_se: f64,
    frozen_slope_at_t1: f64,
    frozen_slope_at_t1_se: f64,
    /// The slopes' standard errors by the jackknife over the context draws (the checks' se).
    frozen_slope_at_t_end_jackknife_se: f64,
    frozen_slope_at_t1_jackknife_se: f64,
    frozen_loglog_fits_by_t: BTreeMap<String, Fit>,
    frozen_largest_n_short_time_loglog_slope: f64,
    frozen_largest_n_short_time_loglog_slope_se: f64,
    frozen_largest_n_late_exp_rate: f64,
    frozen_largest_n_late_exp_rate_se: f64,
}

#[derive(Serialize)]
struct FrozenPrediction {
    frozen_slope: f64,
    frozen_slope_note: &'static str,
    frozen_short_time_loglog_slope: f64,
    frozen_contraction_rate_at_e1: f64,
    frozen_expansion_rate_at_minus_e1: f64,
    frozen_growth_note: &'static str,
}

fn frozen(setup: &Setup, report: &mut Report, sizes: &Sizes) -> Result<()> {
    let sz = sizes.frozen();
    let (kappa, beta, t_end, h, steps) = (sz.kappa, sz.beta, sz.t_end, sz.h, sz.steps());
    let times: Vec<f64> = (0..=steps).map(|k| k as f64 * h).collect();
    report.add_config(&FrozenConfig {
        d: D,
        integrator: "rk4 (finite context), DOP853 tol 1e-12 (infinite twin)",
        attention: "sa, Q = K = V = I, sphere",
    });
    // Through the memo (see [`Setup::memo_with`]), like the evolving runs.
    let (twin_at, trajs) = setup.memo_with(report, "chaos/frozen", &sz, simulate::frozen)?;
    let mut curves: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut rows = Vec::new();
    for (&n, traj) in sz.ns.iter().zip(&trajs) {
        let curve: Vec<(f64, f64)> = traj
            .iter()
            .enumerate()
            .map(|(k, z)| (times[k], rms(z, &twin_at[k])))
            .collect();
        for &(t, v) in &curve {
            rows.push(vec![n as f64, t, v]);
        }
        curves.push(curve);
    }
    setup.csv(
        report,
        "chaos_frozen.csv",
        &["n", "t", "rms_distance_to_infinite_twin"],
        &rows,
    )?;

    let x: Vec<f64> = sz.ns.iter().map(|&n| n as f64).collect();
    let at = |t: f64| -> Vec<f64> {
        let k = (t / h).round() as usize;
        curves.iter().map(|c| c[k].1).collect()
    };
    let fit_t: Vec<f64> = vec![0.5, 1.0, 2.0, t_end];
    let per_t: BTreeMap<String, Fit> = fit_t
        .iter()
        .map(|&t| (format!("t={t}"), fit_loglog(&x, &at(t))))
        .collect();
    let fit_end = fit_loglog(&x, &at(t_end));
    let fit_one = fit_loglog(&x, &at(1.0));
    // The slopes' standard errors by the jackknife over the independent context draws
    // (seeds): leave one seed's queries out at every n, refit.
    let jackknife_slope = |t: f64| -> f64 {
        let k = (t / h).round() as usize;
        let per_seed = sz.m * D;
        jackknife_over_seeds(sz.seeds, |skip| {
            let y: Vec<f64> = trajs
                .iter()
                .map(|traj| {
                    rms(
                        &without(&traj[k], per_seed, skip),
                        &without(&twin_at[k], per_seed, skip),
                    )
                })
                .collect();
            fit_loglog(&x, &y).slope
        })
    };
    let (se_end, se_one) = (jackknife_slope(t_end), jackknife_slope(1.0));
    // The theory's rate (the wrong model of --mutate rate-0.4: n^{-0.4}).
    let rate = if setup.mutated("rate-0.4") {
        -0.4
    } else {
        -0.5
    };

    // Distance against t for the largest n: short-time growth and late-time rate.
    let big = curves.last().expect("at least one n");
    let early: Vec<&(f64, f64)> = big.iter().filter(|p| p.0 > 0.0 && p.0 <= 0.5).collect();
    let early_fit = fit_loglog(
        &early.iter().map(|p| p.0).collect::<Vec<_>>(),
        &early.iter().map(|p| p.1).collect::<Vec<_>>(),
    );
    let late = exp_rate(big, t_end / 2.0, t_end);
    let contraction = kappa * bessel_ratio(D, beta + kappa) / (beta + kappa);
    // At the antipode -e_1 the field repels (beta > kappa): w = -(beta - kappa) e_1 + ...
    let expansion = kappa * bessel_ratio(D, (beta - kappa).abs()) / (beta - kappa).abs();
    report.add_measured(&FrozenMeasured {
        frozen_distance_at_t_end_vs_n: at(t_end),
        frozen_slope_at_t_end: fit_end.slope,
        frozen_slope_at_t_end_se: fit_end.slope_se,
        frozen_slope_at_t1: fit_one.slope,
        frozen_slope_at_t1_se: fit_one.slope_se,
        frozen_slope_at_t_end_jackknife_se: se_end,
        frozen_slope_at_t1_jackknife_se: se_one,
        frozen_loglog_fits_by_t: per_t,
        frozen_largest_n_short_time_loglog_slope: early_fit.slope,
        frozen_largest_n_short_time_loglog_slope_se: early_fit.slope_se,
        frozen_largest_n_late_exp_rate: late.slope,
        frozen_largest_n_late_exp_rate_se: late.slope_se,
    });
    report.add_prediction(&FrozenPrediction {
        frozen_slope: -0.5,
        frozen_slope_note: "parametric rate n^{-1/2} at every fixed depth (propagation of chaos, \
                            CFM forward bound)",
        frozen_short_time_loglog_slope: 1.0,
        frozen_contraction_rate_at_e1: contraction,
        frozen_expansion_rate_at_minus_e1: expansion,
        frozen_growth_note: "the distance grows like t at first (the finite-n velocity error is \
         O(n^{-1/2})); later the tangent flow of the infinite-context field sets its growth: it \
         contracts at rate kappa A_3(beta+kappa)/(beta+kappa) at the attracting fixed point e_1 \
         and expands at kappa A_3(beta-kappa)/(beta-kappa) at the repelling antipode -e_1, so \
         the late exponential rate lies between -contraction and +expansion, near +expansion \
         while some queries still linger near -e_1 (qualitative)",
    });
    figures::frozen(
        setup,
        report,
        &sz,
        &x,
        &curves,
        (&fit_end, &fit_one),
        at(1.0),
        at(t_end),
    )?;
    let draws = format!("jackknife over {} context draws (every n)", sz.seeds);
    let slope_check = |t: f64, fit: &Fit, se: f64| {
        Check::new(
            format!("frozen log-log slope in n at t = {t}"),
            fit.slope,
            Test::Within,
            rate,
            Band::stat(3.0, se, &draws),
        )
        .rejects(
            &["rate-0.4", "repulsive-interaction"],
            "a rate n^{-0.4}; a repulsive interaction",
        )
    };
    report.band_check(
        "frozen_slope_within_3se_of_minus_half",
        Check::all(vec![
            slope_check(t_end, &fit_end, se_end),
            slope_check(1.0, &fit_one, se_one),
        ])
        .expect("two times"),
    );
    // The short-time growth (log-log slope in t against 1) is reported in `measured` and
    // `prediction`, not checked: any smooth flow whose finite-n velocity differs from the
    // twin's grows linearly at first, so no wrong model fails it (issue 24).
    Ok(())
}

#[derive(Serialize)]
struct EvolvingConfig {
    evolving_context: &'static str,
    evolving_fit_n_max: usize,
}

/// The RMS distance of one n to the largest n.
#[derive(Serialize)]
struct ToLargest {
    n: usize,
    rms: f64,
}

#[derive(Serialize)]
struct EvolvingMeasured {
    evolving_distance_to_largest_n_at_fit_t: Vec<ToLargest>,
    evolving_slope_vs_largest_n: f64,
    evolving_slope_vs_largest_n_se: f64,
    evolving_slope_vs_largest_n_fit_range: String,
    evolving_distance_to_twin_at_fit_t: Vec<f64>,
    evolving_slope_vs_twin: f64,
    evolving_slope_vs_twin_se: f64,
    evolving_largest_n_speed_growth_rate: f64,
    evolving_largest_n_speed_growth_rate_se: f64,
    evolving_speed_growth_rate_over_lambda_1: f64,
    evolving_largest_n_twin_distance_late_rate: f64,
    evolving_largest_n_twin_distance_late_rate_se: f64,
}

#[derive(Serialize)]
struct EvolvingPrediction {
    evolving_slope_vs_largest_n: f64,
    evolving_slope_vs_largest_n_if_rate_one_over_d: f64,
    evolving_slope_vs_twin: f64,
    evolving_note: &'static str,
    uniform_instability_rates_l1_to_l4: Vec<f64>,
    evolving_speed_growth_rate: f64,
    evolving_growth_note: &'static str,
}

/// The stated part of the band of the query speed's growth rate around lambda_1, relative:
/// the slower degree-2 mode (lambda_2 = 0.365 against lambda_1 = 0.626 at beta = 1) biases a
/// fit over finite times low. Stated, not derived (docs/experiments/chaos.md).
const RATE_BAND: f64 = 0.15;

/// The evolving slopes' and growth rate's jackknife standard errors (the checks' se).
#[derive(Serialize)]
struct EvolvingJackknife {
    evolving_slope_vs_largest_n_jackknife_se: f64,
    evolving_slope_vs_twin_jackknife_se: f64,
    evolving_largest_n_speed_growth_rate_jackknife_se: f64,
}

/// The jackknife standard error over the context draws (seeds) of a statistic that
/// `stat(Some(s))` computes without seed s (`stat(None)`: with every seed).
fn jackknife_over_seeds(seeds: usize, stat: impl Fn(Option<usize>) -> f64) -> f64 {
    let fits: Vec<f64> = (0..seeds).map(|s| stat(Some(s))).collect();
    crate::jackknife_se(&fits)
}

/// The coordinates of every seed's queries but `skip`'s (chunks of `per_seed`).
fn without(v: &[f64], per_seed: usize, skip: Option<usize>) -> Vec<f64> {
    v.chunks(per_seed)
        .enumerate()
        .filter(|(s, _)| Some(*s) != skip)
        .flat_map(|(_, c)| c.iter().copied())
        .collect()
}

fn evolving(setup: &Setup, report: &mut Report, sizes: &Sizes) -> Result<()> {
    let sz = sizes.evolving();
    let (beta, t_end, t_fit, h, steps) = (sz.beta, sz.t_end, sz.t_fit, sz.h, sz.steps());
    let ns = &sz.ns;
    let fit_max = sz.fit_max();
    let times: Vec<f64> = (0..=steps).map(|k| k as f64 * h).collect();
    report.add_config(&EvolvingConfig {
        evolving_context: "uniform on S^2, evolves by SA (full mask)",
        evolving_fit_n_max: fit_max,
    });
    let (z0, trajs) = setup.memo_with(report, "chaos/evolving", &sz, simulate::evolving)?;
    let reference = trajs.last().expect("sizes");
    let mut rows = Vec::new();
    let mut to_ref: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut to_twin: Vec<Vec<(f64, f64)>> = Vec::new();
    for (i, traj) in trajs.iter().enumerate() {
        let r: Vec<(f64, f64)> = (0..=steps)
            .map(|k| (times[k], rms(&traj[k], &reference[k])))
            .collect();
        let w: Vec<(f64, f64)> = (0..=steps)
            .map(|k| (times[k], rms(&traj[k], &z0)))
            .collect();
        for k in 0..=steps {
            rows.push(vec![ns[i] as f64, times[k], r[k].1, w[k].1]);
        }
        to_ref.push(r);
        to_twin.push(w);
    }
    setup.csv(
        report,
        "chaos_evolving.csv",
        &[
            "n",
            "t",
            "rms_distance_to_largest_n",
            "rms_distance_to_infinite_twin_z0",
        ],
        &rows,
    )?;
    let kf = (t_fit / h).round() as usize;
    let fit_idx: Vec<usize> = (0..ns.len()).filter(|&i| ns[i] <= fit_max).collect();
    let xf: Vec<f64> = fit_idx.iter().map(|&i| ns[i] as f64).collect();
    let yf: Vec<f64> = fit_idx.iter().map(|&i| to_ref[i][kf].1).collect();
    let fit_ref = fit_loglog(&xf, &yf);
    let n_ref = *ns.last().expect("sizes") as f64;
    let want_half = reference_slope(&xf, n_ref, 0.5);
    let want_one_over_d = reference_slope(&xf, n_ref, 1.0 / D as f64);
    let x_all: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let y_twin: Vec<f64> = to_twin.iter().map(|c| c[kf].1).collect();
    let fit_twin = fit_loglog(&x_all, &y_twin);

    // Growth: the query speed in the largest context against t, beside lambda_1.
    let big = reference;
    let speed: Vec<(f64, f64)> = (0..steps)
        .map(|k| (times[k] + 0.5 * h, rms(&big[k + 1], &big[k]) / h))
        .collect();
    let speed_fit = exp_rate(&speed, sz.rate_from, t_end);
    let twin_rate = exp_rate(to_twin.last().expect("sizes"), t_end / 2.0, t_end);
    let rates: Vec<f64> = (1..=4)
        .map(|l| attnflow::theory::modes::uniform_instability_rate(beta, l))
        .collect();
    let lambda1 = rates[0];
    report.add_measured(&EvolvingMeasured {
        evolving_distance_to_largest_n_at_fit_t: ns[..ns.len() - 1]
            .iter()
            .zip(&to_ref)
            .map(|(&n, c)| ToLargest { n, rms: c[kf].1 })
            .collect(),
        evolving_slope_vs_largest_n: fit_ref.slope,
        evolving_slope_vs_largest_n_se: fit_ref.slope_se,
        evolving_slope_vs_largest_n_fit_range: format!(
            "n = {} .. {fit_max} (n <= largest / 8), t = {t_fit}",
            ns[0]
        ),
        evolving_distance_to_twin_at_fit_t: y_twin.clone(),
        evolving_slope_vs_twin: fit_twin.slope,
        evolving_slope_vs_twin_se: fit_twin.slope_se,
        evolving_largest_n_speed_growth_rate: speed_fit.slope,
        evolving_largest_n_speed_growth_rate_se: speed_fit.slope_se,
        evolving_speed_growth_rate_over_lambda_1: speed_fit.slope / lambda1,
        evolving_largest_n_twin_distance_late_rate: twin_rate.slope,
        evolving_largest_n_twin_distance_late_rate_se: twin_rate.slope_se,
    });
    report.add_prediction(&EvolvingPrediction {
        evolving_slope_vs_largest_n: want_half,
        evolving_slope_vs_largest_n_if_rate_one_over_d: want_one_over_d,
        evolving_slope_vs_twin: -0.5,
        evolving_note: "distance^2 = c (n^{-2r} + n_ref^{-2r}) for two independent contexts: \
         the parametric rate r = 1/2 against the n^{-1/d} rate (r = 1/3) of general contextual \
         flow maps, each fitted over the same n as the measurement; the infinite-context twin \
         of a query in a uniform context does not move (the uniform law is stationary for \
         mean-field SA with Q = K = V = I)",
        uniform_instability_rates_l1_to_l4: rates,
        evolving_speed_growth_rate: lambda1,
        evolving_growth_note: "linearised mean-field SA at the uniform law: degree-l modes grow at \
         l(l+1) a_l(beta) / (beta a_0(beta)); l = 1 dominates at beta = 1 (lambda_1 = 2 \
         A_3(beta)/beta), so the query speed grows like e^{lambda_1 t} (fit over t in \
         [evolving_rate_from, t_end]; the slower l = 2 mode biases it low: band 15 %)",
    });
    let yr: Vec<f64> = to_ref[..ns.len() - 1].iter().map(|c| c[kf].1).collect();
    figures::evolving(
        setup,
        report,
        &sz,
        (&x_all, &xf),
        (&yr, &y_twin),
        (&fit_ref, &fit_twin),
        &to_twin,
        lambda1,
    )?;
    // Standard errors by the jackknife over the context draws (seeds), as the frozen slopes':
    // leave one seed's queries out at every n (and in the largest n, the twin, the speed).
    let per_seed = sz.m * D;
    let keep = |v: &[f64], skip: Option<usize>| without(v, per_seed, skip);
    let slope_ref = |skip: Option<usize>| {
        let y: Vec<f64> = fit_idx
            .iter()
            .map(|&i| rms(&keep(&trajs[i][kf], skip), &keep(&reference[kf], skip)))
            .collect();
        fit_loglog(&xf, &y).slope
    };
    let slope_twin = |skip: Option<usize>| {
        let y: Vec<f64> = trajs
            .iter()
            .map(|t| rms(&keep(&t[kf], skip), &keep(&z0, skip)))
            .collect();
        fit_loglog(&x_all, &y).slope
    };
    let growth = |skip: Option<usize>| {
        let speed: Vec<(f64, f64)> = (0..steps)
            .map(|k| {
                let v = rms(&keep(&big[k + 1], skip), &keep(&big[k], skip)) / h;
                (times[k] + 0.5 * h, v)
            })
            .collect();
        exp_rate(&speed, sz.rate_from, t_end).slope
    };
    let seeds = format!("jackknife over {} context draws (every n)", sz.seeds);
    let se_ref = jackknife_over_seeds(sz.seeds, slope_ref);
    let se_twin = jackknife_over_seeds(sz.seeds, slope_twin);
    let se_growth = jackknife_over_seeds(sz.seeds, growth);
    report.add_measured(&EvolvingJackknife {
        evolving_slope_vs_largest_n_jackknife_se: se_ref,
        evolving_slope_vs_twin_jackknife_se: se_twin,
        evolving_largest_n_speed_growth_rate_jackknife_se: se_growth,
    });
    let quick_smoke = "no mutation of the study fails it at the quick size";
    report.band_check(
        "evolving_slope_vs_largest_n_within_3se_of_parametric_not_of_one_over_d",
        Check::all(vec![
            Check::new(
                "evolving log-log slope in n against the largest n",
                fit_ref.slope,
                Test::Within,
                want_half,
                Band::stat(3.0, se_ref, &seeds),
            ),
            Check::new(
                "distance of that slope from the n^{-1/d} rate's prediction",
                (fit_ref.slope - want_one_over_d).abs(),
                Test::Above,
                0.0,
                Band::stat(3.0, se_ref, &seeds),
            ),
        ])
        .expect("two")
        .rejects(&[], "the n^{-1/d} rate of general contextual flow maps")
        .smoke_if(setup.quick, quick_smoke),
    );
    report.band_check(
        "evolving_slope_vs_twin_within_3se_of_minus_half",
        Check::new(
            "evolving log-log slope in n against the infinite twin",
            fit_twin.slope,
            Test::Within,
            -0.5,
            Band::stat(3.0, se_twin, &seeds),
        )
        .rejects(&[], "a rate other than the parametric n^{-1/2}")
        .smoke_if(setup.quick, quick_smoke),
    );
    report.band_check(
        "evolving_speed_growth_rate_within_3se_plus_15pc_of_lambda_1",
        Check::new(
            "growth rate of the largest context's query speed",
            speed_fit.slope,
            Test::Within,
            lambda1,
            Band::stat(3.0, se_growth, &seeds).plus(
                RATE_BAND * lambda1,
                "stated, not derived: 15% of lambda_1 for the slower degree-2 mode's pull on a \
                 fit over finite times",
            ),
        )
        .rejects(
            &["repulsive-interaction", "frozen-context"],
            "a repulsive interaction; a context that does not evolve (the growth is not the \
             uniform law's linear instability)",
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_chaos_shows_the_parametric_rate() {
        let (_dir, out, s) = super::super::quick_run_checked("chaos");
        let slope = s["measured"]["frozen_slope_at_t_end"].as_f64().unwrap();
        assert!((slope + 0.5).abs() < 0.15, "frozen slope {slope}");
        let ev = s["measured"]["evolving_slope_vs_largest_n"]
            .as_f64()
            .unwrap();
        let want = s["prediction"]["evolving_slope_vs_largest_n"]
            .as_f64()
            .unwrap();
        assert!((ev - want).abs() < 0.15, "evolving slope {ev} vs {want}");
        assert!(out.join("chaos_frozen_vs_n.png").exists());
    }
}
