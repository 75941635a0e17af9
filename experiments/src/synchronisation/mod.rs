//! Experiment `synchronisation` (issue 13 §3): tokens driven by a random perceptron and by
//! noise synchronise when the noise is common (one Brownian motion per system) and do not
//! when it is independent (one per token); the rate is measured against the Ito calculus below.
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/synchronisation.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
pub const MUTATIONS: &[&str] = &["independent-in-common", "no-ito-term"];

mod analyse;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Report, Setup};
use analyse::{common_noise_rate, independent_mean_u, pure_noise_lyapunov, system_slopes};
use attnflow::attend::derived_seed;
use attnflow::error::{Result, input};
use attnflow::figures::{Axes, Series};
use attnflow::model::Geometry;
use attnflow::model::init::InitSpec;
use attnflow::model::weights::MlpSpec;
use attnflow::model::{Mlp, Shape};
use attnflow::stats::{Fit, fit_line, mean, mean_se};
use sizes::Sizes;

/// The allowance beyond 3 standard errors for the rate, as a fraction of the noise rate
/// sigma^2 (d - 1): Euler-Maruyama's bias is O(sigma^2 h) relative.
const RATE_TOL: f64 = 0.05;
/// Independent noise: the least mean u at T that counts as "order one" (pure noise: 1).
const INDEPENDENT_U_MIN: f64 = 0.5;

#[derive(Serialize)]
struct Config {
    setting: &'static str,
    attention: &'static str,
    scheme: &'static str,
    mlp: String,
}

/// A mean over systems with its standard error.
#[derive(Serialize)]
struct Estimate {
    mean: f64,
    se: f64,
}

impl Estimate {
    fn of(v: &[f64]) -> Self {
        let (mean, se) = mean_se(v);
        Estimate { mean, se }
    }
}

#[derive(Serialize)]
struct CommonArm {
    /// Slope of the pair-averaged log u over [0, T] (mean over systems).
    rate_log_u: Estimate,
    /// Half of it: the Lyapunov exponent of the distance.
    lyapunov: f64,
    /// Slope of the prediction P(t) = L(0) - sigma^2 (d - 1) t + int S.
    predicted_rate_log_u: Estimate,
    /// Slope of L - P: 0 under the theory.
    rate_minus_prediction: Estimate,
    /// The drift's part: the mean stretching S over [0, T].
    mean_stretching: Estimate,
    /// (measured rate - the slope of int S) / sigma^2: -(d - 1) under the theory.
    noise_part_over_sigma2: f64,
    /// The least pair log u seen (the f32 state resolves u down to about 1e-14).
    min_pair_log_u: f64,
    /// Fit of the system-averaged log u against t.
    fit_mean_log_u: Fit,
    mean_log_distance_at_t_end: f64,
}

#[derive(Serialize)]
struct IndependentArm {
    rate_log_u: Estimate,
    mean_u_at_t_end: Estimate,
    /// Pure noise from the same starts: 1 - (1 - mean u0) e^{-sigma^2 (d - 1) T}.
    pure_noise_mean_u_at_t_end: f64,
}

#[derive(Serialize)]
struct PerSigma {
    sigma: f64,
    h: f64,
    t_end: f64,
    common: CommonArm,
    independent: IndependentArm,
}

#[derive(Serialize)]
struct Measured {
    per_sigma: BTreeMap<String, PerSigma>,
    steps: usize,
}

#[derive(Serialize)]
struct PredictionAt {
    noise_rate_log_u: f64,
    pure_noise_lyapunov: f64,
    /// -sigma^2 (d - 1) plus the measured mean stretching.
    rate_log_u: f64,
}

#[derive(Serialize)]
struct Prediction {
    per_sigma: BTreeMap<String, PredictionAt>,
    law: &'static str,
    independent: &'static str,
}

#[derive(Serialize)]
struct Checks {
    common_noise_synchronises: bool,
    rate_within_3se_plus_5pct_of_ito: bool,
    independent_noise_keeps_distance: bool,
}

/// The perceptron of the run: random:M with a seed derived from the run's, W times the gain.
fn perceptron(sz: &Sizes, seed: u64) -> Result<Mlp> {
    let spec = MlpSpec::Random {
        hidden: sz.mlp_hidden,
        seed: derived_seed(seed, 0x5C0C),
    };
    let mut mlp = spec.resolve(sz.d, sz.activation)?;
    mlp.w.iter_mut().for_each(|w| *w *= sz.mlp_gain);
    Ok(mlp)
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    if sz.d < 2
        || sz.n < 2
        || sz.systems < 3
        || sz.sigmas.is_empty()
        || sz.sigmas.iter().any(|s| !(s.is_finite() && *s > 0.0))
        || !(sz.efolds > 0.0 && sz.sigma2_h > 0.0 && sz.mlp_gain.is_finite())
        || sz.mlp_hidden == 0
        || sz.steps() < 3 * sz.observe_every.max(1)
    {
        return Err(input(
            "synchronisation: needs d >= 2, n >= 2, systems >= 3, sigmas > 0, efolds > 0, \
             sigma2_h > 0, mlp_hidden >= 1 and at least 3 observations",
        ));
    }
    report.add_config(&sz);
    let mlp = perceptron(&sz, setup.seed)?;
    report.add_config(&Config {
        setting: "systems of n tokens on S^{d-1}, uniform starts (the same for every arm)",
        attention: "none (V = 0): tokens interact only through shared noise",
        scheme: "Euler-Maruyama x <- normalise(x + h f + sigma sqrt(h) P xi)",
        mlp: format!(
            "random:{} (seed derived from the run's), W x {}, {:?}",
            sz.mlp_hidden, sz.mlp_gain, sz.activation
        ),
    });
    let common_kind = !setup.mutated("independent-in-common");
    let no_ito = setup.mutated("no-ito-term");
    let x0 = InitSpec::Uniform.generate(
        Shape::new(sz.systems, sz.n, sz.d)?,
        Geometry::Sphere,
        derived_seed(setup.seed, 0x57A2),
    )?;
    let d1 = sz.d as f64 - 1.0;
    let mut checks = Checks {
        common_noise_synchronises: true,
        rate_within_3se_plus_5pct_of_ito: true,
        independent_noise_keeps_distance: true,
    };
    let (mut per_sigma, mut predictions) = (BTreeMap::new(), BTreeMap::new());
    let (mut rows, mut series) = (Vec::new(), Vec::new());
    for (k, &sigma) in sz.sigmas.iter().enumerate() {
        setup.say(&format!(
            "sigma = {sigma}: {} systems x {} tokens, {} steps of h = {:.2e}",
            sz.systems,
            sz.n,
            sz.steps(),
            sz.h(sigma)
        ));
        let seed = |arm: u64| derived_seed(setup.seed, 0x5100 + 2 * k as u64 + arm);
        let common = simulate::run_arm(setup, report, &sz, &mlp, &x0, sigma, common_kind, seed(0))?;
        let indep = simulate::run_arm(setup, report, &sz, &mlp, &x0, sigma, false, seed(1))?;
        let t = &common.times;
        let t_end = *t.last().expect("observations");
        let rate = common_noise_rate(sz.d, sigma, no_ito);
        let slopes: Vec<(f64, f64, f64)> = (0..sz.systems)
            .map(|s| system_slopes(t, &common.log_u[s], &common.stretch[s], rate))
            .collect();
        let measured = Estimate::of(&slopes.iter().map(|s| s.0).collect::<Vec<_>>());
        let predicted = Estimate::of(&slopes.iter().map(|s| s.1).collect::<Vec<_>>());
        let residual = Estimate::of(&slopes.iter().map(|s| s.2).collect::<Vec<_>>());
        let stretching = Estimate::of(
            &common
                .stretch
                .iter()
                .map(|s| {
                    let integral = analyse::cumulative_trapezoid(t, s);
                    integral.last().expect("observations") / t_end
                })
                .collect::<Vec<_>>(),
        );
        let system_mean =
            |v: &Vec<Vec<f64>>, i: usize| mean(&v.iter().map(|s| s[i]).collect::<Vec<_>>());
        let mean_log_u: Vec<f64> = (0..t.len())
            .map(|i| system_mean(&common.log_u, i))
            .collect();
        let indep_log_u: Vec<f64> = (0..t.len()).map(|i| system_mean(&indep.log_u, i)).collect();
        let indep_slopes: Vec<f64> = indep.log_u.iter().map(|l| fit_line(t, l).slope).collect();
        let indep_rate = Estimate::of(&indep_slopes);
        let u_end = Estimate::of(
            &indep
                .u
                .iter()
                .map(|u| *u.last().unwrap())
                .collect::<Vec<_>>(),
        );
        let u0 = mean(&indep.u.iter().map(|u| u[0]).collect::<Vec<_>>());

        checks.common_noise_synchronises &= measured.mean + 3.0 * measured.se < 0.0;
        checks.rate_within_3se_plus_5pct_of_ito &=
            residual.mean.abs() <= 3.0 * residual.se + RATE_TOL * sigma * sigma * d1;
        // The distance is kept at order one where the noise dominates the drift (sigma^2 (d - 1)
        // above the perceptron's mean stretching); below, the perceptron's own attractors pull
        // independently driven tokens together too, more slowly than common noise does.
        let noise_dominated = sigma * sigma * d1 >= stretching.mean.abs();
        checks.independent_noise_keeps_distance &= (!noise_dominated
            || u_end.mean >= INDEPENDENT_U_MIN)
            && indep_rate.mean - measured.mean
                > 3.0 * (indep_rate.se.powi(2) + measured.se.powi(2)).sqrt();

        // Figure: log distance = (log 2 + log u) / 2 against sigma^2 t.
        let log_dist = |lu: f64| 0.5 * (2f64.ln() + lu);
        let prediction_curve: Vec<f64> = {
            let ints: Vec<Vec<f64>> = common
                .stretch
                .iter()
                .map(|s| analyse::cumulative_trapezoid(t, s))
                .collect();
            (0..t.len())
                .map(|i| {
                    mean_log_u[0]
                        + rate * t[i]
                        + mean(&ints.iter().map(|v| v[i]).collect::<Vec<_>>())
                })
                .collect()
        };
        for i in 0..t.len() {
            rows.push(vec![
                sigma,
                t[i],
                mean_log_u[i],
                prediction_curve[i],
                system_mean(&common.stretch, i),
                indep_log_u[i],
                system_mean(&indep.u, i),
            ]);
        }
        let s2 = sigma * sigma;
        series.push(Series::markers(
            format!(
                "common, sigma = {sigma}: lambda = {:.3} +- {:.3}",
                0.5 * measured.mean,
                0.5 * measured.se
            ),
            t.iter()
                .zip(&mean_log_u)
                .step_by((t.len() / 40).max(1))
                .map(|(t, l)| (s2 * t, log_dist(*l)))
                .collect(),
        ));
        series.push(Series::theory(
            format!("Ito: -(d-1) sigma^2 / 2 + drift, sigma = {sigma}"),
            t.iter()
                .zip(&prediction_curve)
                .map(|(t, l)| (s2 * t, log_dist(*l)))
                .collect(),
        ));
        series.push(Series::line(
            format!("independent, sigma = {sigma}"),
            t.iter()
                .zip(&indep_log_u)
                .map(|(t, l)| (s2 * t, log_dist(*l)))
                .collect(),
        ));
        let key = format!("sigma_{sigma}");
        predictions.insert(
            key.clone(),
            PredictionAt {
                noise_rate_log_u: rate,
                pure_noise_lyapunov: pure_noise_lyapunov(sz.d, sigma),
                rate_log_u: predicted.mean,
            },
        );
        per_sigma.insert(
            key,
            PerSigma {
                sigma,
                h: sz.h(sigma),
                t_end,
                common: CommonArm {
                    lyapunov: 0.5 * measured.mean,
                    noise_part_over_sigma2: (measured.mean - (predicted.mean - rate)) / s2,
                    min_pair_log_u: common.min_log_u,
                    rate_log_u: measured,
                    predicted_rate_log_u: predicted,
                    rate_minus_prediction: residual,
                    mean_stretching: stretching,
                    fit_mean_log_u: fit_line(t, &mean_log_u),
                    mean_log_distance_at_t_end: log_dist(*mean_log_u.last().unwrap()),
                },
                independent: IndependentArm {
                    rate_log_u: indep_rate,
                    mean_u_at_t_end: u_end,
                    pure_noise_mean_u_at_t_end: independent_mean_u(sz.d, sigma, u0, t_end),
                },
            },
        );
    }
    setup.csv(
        report,
        "synchronisation.csv",
        &[
            "sigma",
            "t",
            "common_mean_log_u",
            "common_predicted_log_u",
            "common_mean_stretching",
            "independent_mean_log_u",
            "independent_mean_u",
        ],
        &rows,
    )?;
    setup.lines(
        report,
        "synchronisation.png",
        &Axes {
            title: "Synchronisation by common noise (perceptron, no attention)",
            x_label: "sigma^2 t",
            y_label: "mean log |x_i - x_j|",
            log_x: false,
            log_y: false,
        },
        &series,
    )?;
    report.add_measured(&Measured {
        per_sigma,
        steps: sz.steps(),
    });
    report.add_prediction(&Prediction {
        per_sigma: predictions,
        law: "d log u = [-sigma^2 (d - 1) + 2 <f(y) - f(x), y - x> / |y - x|^2] dt + martingale \
              (common noise, exact); lambda = -(d - 1) sigma^2 / 2 + E <v, Df v>",
        independent: "E <x, y>(t) = <x, y>(0) e^{-sigma^2 (d - 1) t} without drift: E u -> 1",
    });
    report.add_checks(&checks);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_synchronisation_follows_ito() {
        let (_dir, out, _) = super::super::quick_run_checked("synchronisation", 0);
        assert!(out.join("synchronisation.png").exists());
    }
}
