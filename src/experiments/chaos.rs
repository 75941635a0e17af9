//! Experiment `chaos` (docs/model.md §3-4, propagation of chaos in contextual flow maps): how far
//! a query moved by a finite context of n tokens strays from its infinite-context twin.
//!
//! * **Frozen vMF context.** m queries z (the same in every context) evolve on S^2 against a
//!   frozen context of n iid vMF(e_1, kappa) tokens, dz/dt = P_z^perp sum_j softmax_j(beta
//!   <z, y_j>) y_j. The infinite-context twin solves dz/dt = P_z^perp A_3(|w|) w / |w|,
//!   w = beta z + kappa e_1, to 1e-12 ([`crate::meanfield::integrate_infinite_cfm`]). The
//!   theory (parametric rate): the RMS distance over queries and independent contexts falls
//!   like n^{-1/2} at every fixed depth t. The distance grows from 0 at t = 0, linearly at first
//!   (the finite-n velocity error is O(n^{-1/2})); later the tangent flow of the infinite-context
//!   field sets its growth: it expands at kappa A_3(beta - kappa) / (beta - kappa) near the
//!   repelling antipode -e_1 and contracts at kappa A_3(beta + kappa) / (beta + kappa) at the
//!   attracting e_1, so queries that linger near -e_1 amplify the finite-n error exponentially.
//! * **Evolving uniform context.** The context itself evolves by SA (O(n^2) per evaluation). No
//!   closed form is needed for the comparison the experiment makes (each n against the largest
//!   n, contexts being independent draws; expected ~ n^{-1/2} while n is well below the
//!   reference size, so only n <= largest / 8 enter the fit). With Q = K = V = I the uniform law
//!   is a stationary state of the mean-field SA flow (its attention output is radial), so the
//!   infinite-context twin of a query does not move: |z_n(t) - z(0)| is also measured, against
//!   the same n^{-1/2}. The uniform state is unstable: a density perturbation in the spherical
//!   harmonic of degree l grows at the rate lambda_l = l (l + d - 2) a_l(beta) / (beta a_0(beta))
//!   (Funk-Hecke eigenvalues a_l of exp(beta <x, y>); d = 3: lambda_1 = 2 A_3(beta) / beta),
//!   and the query's velocity, driven by the context's O(n^{-1/2}) fluctuations, grows like
//!   e^{lambda_1 t}: here the sensitivity amplifies the finite-n fluctuation (the "chaos").
//!
//! Quantities: RMS distances against n and t (CSV), fitted log-log slopes with standard errors,
//! the short-time log-log slope and late-time exponential rates of the distance curves, and the
//! growth rate of the query speed in the evolving context beside lambda_1.

use super::plot::{self, Axes, Series};
use super::{Fit, Report, Setup, fit_line, fit_loglog};
use crate::attend::{LayerShape, derived_seed};
use crate::cfm::{Cfm, ContextMode, distances};
use crate::error::Result;
use crate::integrate::Integrator;
use crate::meanfield::{self, Adaptive, LawWeights, VmfLaw, bessel_ratio};
use crate::model::init::InitSpec;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

const D: usize = 3;

/// RMS over tokens of the distance between matching tokens.
fn rms(a: &[f64], b: &[f64]) -> f64 {
    let dist = distances(a, b, D);
    (dist.iter().map(|v| v * v).sum::<f64>() / dist.len() as f64).sqrt()
}

/// The same m queries in each of `seeds` systems.
fn queries(m: usize, seeds: usize, seed: u64) -> Result<(Vec<f64>, Vec<f64>)> {
    let z1 = InitSpec::Uniform.generate(Shape::new(1, m, D)?, Geometry::Sphere, seed)?;
    let z = (0..seeds).flat_map(|_| z1.iter().copied()).collect();
    Ok((z1, z))
}

/// Runs a contextual flow map for `steps` RK4 steps of size h and returns the queries at
/// every step (index 0 = the start).
#[allow(clippy::too_many_arguments)]
fn trajectory(
    setup: &Setup,
    report: &mut Report,
    beta: f64,
    shape: LayerShape,
    mode: ContextMode,
    z0: Vec<f64>,
    y0: Vec<f64>,
    h: f64,
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(D),
        vec![beta; shape.batch],
    );
    let mut flow = Cfm::new(setup.backend, &model, shape, mode, z0, y0)?;
    if report.backend.is_none() {
        if let Some(note) = &flow.note {
            setup.say(&format!("note: {note}"));
        }
        report.backend = Some(flow.describe());
    }
    Ok(flow.run(Integrator::Rk4, h, steps, 1, |_| {})?.snapshots)
}

fn fit_json(f: &Fit) -> serde_json::Value {
    serde_json::json!({"slope": f.slope, "slope_se": f.slope_se, "intercept": f.intercept,
        "r2": f.r2})
}

/// A line exp(intercept) x^slope over [x0, x1] (for log-log figures).
fn power_line(f: &Fit, x0: f64, x1: f64) -> Vec<(f64, f64)> {
    [x0, x1]
        .iter()
        .map(|&x| (x, (f.intercept + f.slope * x.ln()).exp()))
        .collect()
}

/// The -1/2 reference through the geometric mean of the data.
fn half_reference(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    let k = xs.len() as f64;
    let (lx, ly) = (
        xs.iter().map(|v| v.ln()).sum::<f64>() / k,
        ys.iter().map(|v| v.ln()).sum::<f64>() / k,
    );
    let f = Fit {
        slope: -0.5,
        slope_se: 0.0,
        intercept: ly + 0.5 * lx,
        r2: 1.0,
    };
    power_line(&f, xs[0], xs[xs.len() - 1])
}

/// Exponential rate: slope of ln y against t over the points with t in [t0, t1].
fn exp_rate(curve: &[(f64, f64)], t0: f64, t1: f64) -> Fit {
    let pts: Vec<&(f64, f64)> = curve
        .iter()
        .filter(|p| p.0 >= t0 - 1e-9 && p.0 <= t1 + 1e-9 && p.1 > 0.0)
        .collect();
    fit_line(
        &pts.iter().map(|p| p.0).collect::<Vec<_>>(),
        &pts.iter().map(|p| p.1.ln()).collect::<Vec<_>>(),
    )
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    frozen(setup, report)?;
    evolving(setup, report)
}

fn frozen(setup: &Setup, report: &mut Report) -> Result<()> {
    let (kappa, beta, t_end) = (1.0, 2.0, 4.0);
    let (m, seeds, ns, h): (usize, usize, Vec<usize>, f64) = if setup.quick {
        (16, 24, (0..6).map(|k| 1000 << k).collect(), 0.1)
    } else {
        (16, 16, (0..11).map(|k| 1000 << k).collect(), 0.05)
    };
    let steps = (t_end / h).round() as usize;
    let times: Vec<f64> = (0..=steps).map(|k| k as f64 * h).collect();
    report.config("d", D);
    report.config("frozen_kappa", kappa);
    report.config("frozen_beta", beta);
    report.config("frozen_queries_m", m);
    report.config("frozen_contexts_per_n", seeds);
    report.config("frozen_n", &ns);
    report.config("frozen_h", h);
    report.config("frozen_t_end", t_end);
    report.config(
        "integrator",
        "rk4 (finite context), DOP853 tol 1e-12 (infinite twin)",
    );
    report.config("attention", "sa, Q = K = V = I, sphere");

    let law = VmfLaw::new(vec![1.0, 0.0, 0.0], kappa).map_err(crate::error::input)?;
    let (z1, z0) = queries(m, seeds, derived_seed(setup.seed, 0xC4A0))?;
    let starts: Vec<Vec<f64>> = z1.chunks(D).map(|c| c.to_vec()).collect();
    let twins = meanfield::integrate_infinite_cfm_many(
        &law,
        &LawWeights::identity(),
        beta,
        &starts,
        &times,
        &Adaptive::uniform(1e-12),
    );
    // twin[k] = all queries of all contexts at time k.
    let twin_at: Vec<Vec<f64>> = (0..=steps)
        .map(|k| {
            let one: Vec<f64> = twins.iter().flat_map(|q| q[k].iter().copied()).collect();
            (0..seeds).flat_map(|_| one.iter().copied()).collect()
        })
        .collect();

    let mut curves: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut rows = Vec::new();
    let mut dist_t0: f64 = 0.0;
    for &n in &ns {
        setup.say(&format!("frozen vMF context: n = {n}, {seeds} contexts"));
        let y0 = InitSpec::Vmf { kappa, mu: None }.generate(
            Shape::new(seeds, n, D)?,
            Geometry::Sphere,
            derived_seed(setup.seed, 0xF000 + n as u64),
        )?;
        let shape = LayerShape {
            batch: seeds,
            m,
            n,
            d: D,
        };
        let traj = trajectory(
            setup,
            report,
            beta,
            shape,
            ContextMode::Frozen,
            z0.clone(),
            y0,
            h,
            steps,
        )?;
        let curve: Vec<(f64, f64)> = traj
            .iter()
            .enumerate()
            .map(|(k, z)| (times[k], rms(z, &twin_at[k])))
            .collect();
        dist_t0 = dist_t0.max(curve[0].1);
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

    let x: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let at = |t: f64| -> Vec<f64> {
        let k = (t / h).round() as usize;
        curves.iter().map(|c| c[k].1).collect()
    };
    let fit_t: Vec<f64> = vec![0.5, 1.0, 2.0, t_end];
    let mut per_t = serde_json::Map::new();
    for &t in &fit_t {
        per_t.insert(format!("t={t}"), fit_json(&fit_loglog(&x, &at(t))));
    }
    let fit_end = fit_loglog(&x, &at(t_end));
    let fit_one = fit_loglog(&x, &at(1.0));
    report.measured("frozen_distance_at_t_end_vs_n", at(t_end));
    report.measured("frozen_slope_at_t_end", fit_end.slope);
    report.measured("frozen_slope_at_t_end_se", fit_end.slope_se);
    report.measured("frozen_slope_at_t1", fit_one.slope);
    report.measured("frozen_slope_at_t1_se", fit_one.slope_se);
    report.measured("frozen_loglog_fits_by_t", per_t);
    report.measured("frozen_distance_at_t0_max", dist_t0);
    report.prediction("frozen_slope", -0.5);
    report.prediction(
        "frozen_slope_note",
        "parametric rate n^{-1/2} at every fixed depth (propagation of chaos, CFM forward bound)",
    );

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
    report.measured("frozen_largest_n_short_time_loglog_slope", early_fit.slope);
    report.measured(
        "frozen_largest_n_short_time_loglog_slope_se",
        early_fit.slope_se,
    );
    report.measured("frozen_largest_n_late_exp_rate", late.slope);
    report.measured("frozen_largest_n_late_exp_rate_se", late.slope_se);
    report.prediction("frozen_short_time_loglog_slope", 1.0);
    report.prediction("frozen_contraction_rate_at_e1", contraction);
    report.prediction("frozen_expansion_rate_at_minus_e1", expansion);
    report.prediction(
        "frozen_growth_note",
        "the distance grows like t at first (the finite-n velocity error is O(n^{-1/2})); later \
         the tangent flow of the infinite-context field sets its growth: it contracts at rate \
         kappa A_3(beta+kappa)/(beta+kappa) at the attracting fixed point e_1 and expands at \
         kappa A_3(beta-kappa)/(beta-kappa) at the repelling antipode -e_1, so the late \
         exponential rate lies between -contraction and +expansion, near +expansion while \
         some queries still linger near -e_1 (qualitative)",
    );

    // Figures.
    let mut series = vec![
        Series::markers(
            format!("t = {t_end}"),
            x.iter().copied().zip(at(t_end)).collect(),
        ),
        Series::line(
            format!(
                "fit t = {t_end}: slope {:.3} +- {:.3}",
                fit_end.slope, fit_end.slope_se
            ),
            power_line(&fit_end, x[0], x[x.len() - 1]),
        ),
        Series::markers("t = 1", x.iter().copied().zip(at(1.0)).collect()),
        Series::line(
            format!(
                "fit t = 1: slope {:.3} +- {:.3}",
                fit_one.slope, fit_one.slope_se
            ),
            power_line(&fit_one, x[0], x[x.len() - 1]),
        ),
    ];
    series.push(Series::theory(
        "reference slope -1/2",
        half_reference(&x, &at(t_end)),
    ));
    plot::lines(
        &setup.path("chaos_frozen_vs_n.png"),
        &Axes {
            title: &format!(
                "Frozen vMF(e1, {kappa}) context, beta = {beta}: finite vs infinite context"
            ),
            x_label: "context size n",
            y_label: "RMS distance to the infinite-context twin",
            log_x: true,
            log_y: true,
        },
        &series,
    )?;
    report.files.push("chaos_frozen_vs_n.png".into());
    let mut series = Vec::new();
    for (i, c) in curves.iter().enumerate() {
        if i % 2 == (curves.len() - 1) % 2 {
            series.push(Series::line(
                format!("n = {}", ns[i]),
                c.iter().copied().filter(|p| p.0 > 0.0).collect(),
            ));
        }
    }
    plot::lines(
        &setup.path("chaos_frozen_vs_t.png"),
        &Axes {
            title: "Frozen vMF context: distance to the infinite twin along depth",
            x_label: "t (depth)",
            y_label: "RMS distance to the infinite-context twin",
            log_x: false,
            log_y: true,
        },
        &series,
    )?;
    report.files.push("chaos_frozen_vs_t.png".into());

    report.check(
        "frozen_slope_within_0.15_of_minus_half",
        (fit_end.slope + 0.5).abs() <= 0.15 && (fit_one.slope + 0.5).abs() <= 0.15,
    );
    report.check("frozen_distance_at_t0_is_zero", dist_t0 <= 1e-12);
    Ok(())
}

fn evolving(setup: &Setup, report: &mut Report) -> Result<()> {
    let (beta, t_end, t_fit, h): (f64, f64, f64, f64) = (1.0, 4.0, 2.0, 0.1);
    let (m, seeds, ns): (usize, usize, Vec<usize>) = if setup.quick {
        (16, 8, (0..7).map(|k| 32 << k).collect())
    } else {
        (16, 8, (0..9).map(|k| 64 << k).collect())
    };
    let largest = *ns.last().expect("sizes");
    let fit_max = largest / 8;
    let steps = (t_end / h).round() as usize;
    let times: Vec<f64> = (0..=steps).map(|k| k as f64 * h).collect();
    report.config("evolving_beta", beta);
    report.config(
        "evolving_context",
        "uniform on S^2, evolves by SA (full mask)",
    );
    report.config("evolving_queries_m", m);
    report.config("evolving_contexts_per_n", seeds);
    report.config("evolving_n", &ns);
    report.config("evolving_h", h);
    report.config("evolving_t_end", t_end);
    report.config("evolving_fit_t", t_fit);
    report.config("evolving_fit_n_max", fit_max);

    let (_, z0) = queries(m, seeds, derived_seed(setup.seed, 0xC4A1))?;
    let mut trajs = Vec::new();
    for &n in &ns {
        setup.say(&format!(
            "evolving uniform context: n = {n}, {seeds} contexts"
        ));
        let y0 = InitSpec::Uniform.generate(
            Shape::new(seeds, n, D)?,
            Geometry::Sphere,
            derived_seed(setup.seed, 0xE000 + n as u64),
        )?;
        let shape = LayerShape {
            batch: seeds,
            m,
            n,
            d: D,
        };
        trajs.push(trajectory(
            setup,
            report,
            beta,
            shape,
            ContextMode::Evolving,
            z0.clone(),
            y0,
            h,
            steps,
        )?);
    }
    let reference = trajs.last().expect("sizes");
    let mut rows = Vec::new();
    let mut to_ref: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut to_twin: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut dist_t0: f64 = 0.0;
    for (i, traj) in trajs.iter().enumerate() {
        let r: Vec<(f64, f64)> = (0..=steps)
            .map(|k| (times[k], rms(&traj[k], &reference[k])))
            .collect();
        let w: Vec<(f64, f64)> = (0..=steps)
            .map(|k| (times[k], rms(&traj[k], &z0)))
            .collect();
        dist_t0 = dist_t0.max(r[0].1).max(w[0].1);
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
    let x_all: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let y_twin: Vec<f64> = to_twin.iter().map(|c| c[kf].1).collect();
    let fit_twin = fit_loglog(&x_all, &y_twin);
    report.measured(
        "evolving_distance_to_largest_n_at_fit_t",
        ns[..ns.len() - 1]
            .iter()
            .zip(&to_ref)
            .map(|(n, c)| serde_json::json!({"n": n, "rms": c[kf].1}))
            .collect::<Vec<_>>(),
    );
    report.measured("evolving_slope_vs_largest_n", fit_ref.slope);
    report.measured("evolving_slope_vs_largest_n_se", fit_ref.slope_se);
    report.measured(
        "evolving_slope_vs_largest_n_fit_range",
        format!("n = {} .. {fit_max} (n <= largest / 8), t = {t_fit}", ns[0]),
    );
    report.measured("evolving_distance_to_twin_at_fit_t", &y_twin);
    report.measured("evolving_slope_vs_twin", fit_twin.slope);
    report.measured("evolving_slope_vs_twin_se", fit_twin.slope_se);
    report.measured("evolving_distance_at_t0_max", dist_t0);
    report.prediction("evolving_slope_vs_largest_n", -0.5);
    report.prediction("evolving_slope_vs_twin", -0.5);
    report.prediction(
        "evolving_note",
        "n^{-1/2} while n << the reference size (distance^2 ~ c (1/n + 1/n_ref)); the \
         infinite-context twin of a query in a uniform context does not move (the uniform law \
         is stationary for mean-field SA with Q = K = V = I)",
    );

    // Growth: the query speed in the largest context against t, beside lambda_1.
    let big = reference;
    let speed: Vec<(f64, f64)> = (0..steps)
        .map(|k| (times[k] + 0.5 * h, rms(&big[k + 1], &big[k]) / h))
        .collect();
    let speed_fit = exp_rate(&speed, 1.0, t_end);
    let twin_rate = exp_rate(to_twin.last().expect("sizes"), t_end / 2.0, t_end);
    let rates: Vec<f64> = (1..=4)
        .map(|l| crate::theory::modes::uniform_instability_rate(beta, l))
        .collect();
    let lambda1 = rates[0];
    report.measured("evolving_largest_n_speed_growth_rate", speed_fit.slope);
    report.measured(
        "evolving_largest_n_speed_growth_rate_se",
        speed_fit.slope_se,
    );
    report.measured(
        "evolving_largest_n_twin_distance_late_rate",
        twin_rate.slope,
    );
    report.measured(
        "evolving_largest_n_twin_distance_late_rate_se",
        twin_rate.slope_se,
    );
    report.prediction("uniform_instability_rates_l1_to_l4", &rates);
    report.prediction("evolving_speed_growth_rate", lambda1);
    report.prediction(
        "evolving_growth_note",
        "linearised mean-field SA at the uniform law: degree-l modes grow at l(l+1) a_l(beta) / \
         (beta a_0(beta)); l = 1 dominates at beta = 1 (lambda_1 = 2 A_3(beta)/beta), so the \
         query speed grows like e^{lambda_1 t} (fit over t in [1, t_end]; slower modes bias it \
         slightly low)",
    );

    // Figures.
    let xr: Vec<f64> = x_all[..ns.len() - 1].to_vec();
    let yr: Vec<f64> = to_ref[..ns.len() - 1].iter().map(|c| c[kf].1).collect();
    let series = vec![
        Series::markers(
            format!("distance to n = {largest} (t = {t_fit})"),
            xr.iter().copied().zip(yr.iter().copied()).collect(),
        ),
        Series::line(
            format!(
                "fit n <= {fit_max}: slope {:.3} +- {:.3}",
                fit_ref.slope, fit_ref.slope_se
            ),
            power_line(&fit_ref, xf[0], xf[xf.len() - 1]),
        ),
        Series::markers(
            format!("distance to the infinite twin z(0) (t = {t_fit})"),
            x_all.iter().copied().zip(y_twin.iter().copied()).collect(),
        ),
        Series::line(
            format!(
                "fit (twin): slope {:.3} +- {:.3}",
                fit_twin.slope, fit_twin.slope_se
            ),
            power_line(&fit_twin, x_all[0], x_all[x_all.len() - 1]),
        ),
        Series::theory("reference slope -1/2", half_reference(&x_all, &y_twin)),
    ];
    plot::lines(
        &setup.path("chaos_evolving_vs_n.png"),
        &Axes {
            title: &format!("Evolving uniform context (SA, beta = {beta}): queries vs n"),
            x_label: "context size n",
            y_label: "RMS distance",
            log_x: true,
            log_y: true,
        },
        &series,
    )?;
    report.files.push("chaos_evolving_vs_n.png".into());
    let mut series = Vec::new();
    for (i, c) in to_twin.iter().enumerate() {
        if i % 2 == (to_twin.len() - 1) % 2 {
            series.push(Series::line(
                format!("n = {}", ns[i]),
                c.iter().copied().filter(|p| p.0 > 0.0).collect(),
            ));
        }
    }
    let last = to_twin.last().expect("sizes");
    let (t1, v1) = last[steps];
    series.push(Series::theory(
        format!("e^(lambda_1 t), lambda_1 = {lambda1:.3}"),
        (1..=4)
            .map(|k| {
                let t = t_end * k as f64 / 4.0;
                (t, v1 * (lambda1 * (t - t1)).exp())
            })
            .collect(),
    ));
    plot::lines(
        &setup.path("chaos_evolving_vs_t.png"),
        &Axes {
            title: "Evolving uniform context: distance to the infinite twin along depth",
            x_label: "t (depth)",
            y_label: "RMS |z_n(t) - z(0)|",
            log_x: false,
            log_y: true,
        },
        &series,
    )?;
    report.files.push("chaos_evolving_vs_t.png".into());

    report.check(
        "evolving_slope_vs_largest_n_negative_within_0.25_of_minus_half",
        fit_ref.slope < 0.0 && (fit_ref.slope + 0.5).abs() <= 0.25,
    );
    report.check(
        "evolving_slope_vs_twin_within_0.15_of_minus_half",
        (fit_twin.slope + 0.5).abs() <= 0.15,
    );
    report.check(
        "evolving_speed_grows_exponentially",
        speed_fit.slope > 0.0 && speed_fit.slope > 3.0 * speed_fit.slope_se,
    );
    report.check("evolving_distance_at_t0_is_zero", dist_t0 == 0.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_chaos_shows_the_parametric_rate() {
        let (_dir, out, s) = super::super::quick_run_checked("chaos", 1);
        let slope = s["measured"]["frozen_slope_at_t_end"].as_f64().unwrap();
        assert!((slope + 0.5).abs() < 0.15, "frozen slope {slope}");
        let ev = s["measured"]["evolving_slope_vs_largest_n"]
            .as_f64()
            .unwrap();
        assert!((-0.75..-0.25).contains(&ev), "evolving slope {ev}");
        assert!(out.join("chaos_frozen_vs_n.png").exists());
    }
}
