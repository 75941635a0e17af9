//! Experiment `selectivity` (docs/model.md §4, "uniform keys, one query"): one query q = e_1 and n
//! iid uniform keys on S^{d-1}, softmax attention at beta = lambda n^{2/(d-1)}. The largest
//! weight and the effective number of keys 1 / sum_j w_j^2 (f64, streamed by
//! [`crate::attend::attention_stats`]) are averaged over many independent key sets for each
//! (n, lambda); at fixed lambda the curves for n = 10^3 .. 10^6 must coincide.
//!
//! Theory. Write w_j proportional to exp(-beta (1 - <q, y_j>)). For d = 3 the gap
//! s = 1 - <q, y> of a uniform key is uniform on [0, 2], so the scaled gaps xi_j = n s_j are n
//! iid uniform points of [0, 2n]: as n -> infinity a Poisson process of rate 1/2 on
//! [0, infinity), and w_j = e^{-lambda xi_j} / sum_k e^{-lambda xi_k} has a limit law that
//! depends on lambda only. For d = 2 the angles theta_j give xi_j = n |theta_j|, a Poisson
//! process of rate 1/pi, and beta (1 - cos theta) -> lambda xi^2 / 2. Hence: attention is
//! nearly uniform when beta << n^{2/(d-1)} (lambda -> 0: effective keys ~ 1/lambda for d = 3,
//! growing without bound), keeps a finite number of nearest keys at beta ~ n^{2/(d-1)}, and
//! collapses onto the nearest key when beta >> n^{2/(d-1)} (largest weight -> 1). The limits
//! E[max weight](lambda) and E[effective keys](lambda) are computed here by Monte Carlo of the
//! Poisson process and reported as the prediction.

use rayon::prelude::*;

use super::plot::{self, Axes, Series};
use super::{Report, Setup, fit_loglog};
use crate::attend::{attention_stats, derived_seed};
use crate::error::Result;
use crate::model::init::InitSpec;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::stats::mean_se;

/// Monte Carlo of the limit (Poisson) process: for each lambda, E[max weight] and
/// E[effective keys] with their standard errors.
fn limit_process(d: usize, lambdas: &[f64], samples: usize, seed: u64) -> Vec<[f64; 4]> {
    // Rate of the scaled gaps xi and the exponent of the weight e^{-phi(xi)}.
    let (rate, quadratic) = if d == 3 {
        (0.5, false)
    } else {
        (1.0 / std::f64::consts::PI, true)
    };
    let lam_min = lambdas.iter().cloned().fold(f64::INFINITY, f64::min);
    // Points beyond phi = 40 carry relative weight < e^{-40}.
    let xi_max = if quadratic {
        (80.0 / lam_min).sqrt()
    } else {
        40.0 / lam_min
    };
    let per: Vec<Vec<(f64, f64)>> = (0..samples)
        .into_par_iter()
        .map(|s| {
            let mut rng = ChaCha8Rng::seed_from_u64(derived_seed(seed, 7));
            rng.set_stream(s as u64);
            let mut xi = Vec::new();
            let mut x = 0.0;
            loop {
                let u: f64 = rng.random();
                x += -(1.0 - u).ln() / rate;
                if x > xi_max {
                    break;
                }
                xi.push(x);
            }
            lambdas
                .iter()
                .map(|&l| {
                    let phi = |x: f64| if quadratic { l * x * x / 2.0 } else { l * x };
                    let m0 = xi.first().map_or(0.0, |&x| phi(x));
                    let (mut s1, mut s2) = (0.0, 0.0);
                    for &x in &xi {
                        let e = (m0 - phi(x)).exp();
                        if e < 1e-300 {
                            break;
                        }
                        s1 += e;
                        s2 += e * e;
                    }
                    (1.0 / s1, s1 * s1 / s2)
                })
                .collect()
        })
        .collect();
    (0..lambdas.len())
        .map(|k| {
            let mw: Vec<f64> = per.iter().map(|v| v[k].0).collect();
            let ek: Vec<f64> = per.iter().map(|v| v[k].1).collect();
            let (a, b) = mean_se(&mw);
            let (c, e) = mean_se(&ek);
            [a, b, c, e]
        })
        .collect()
}

struct Sizes {
    dims: Vec<usize>,
    ns: Vec<Vec<usize>>,
    seeds: Vec<Vec<usize>>,
    limit_samples: usize,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = if setup.quick {
        Sizes {
            dims: vec![3],
            ns: vec![vec![1000, 10_000, 100_000]],
            seeds: vec![vec![200, 200, 200]],
            limit_samples: 2000,
        }
    } else {
        Sizes {
            dims: vec![3, 2],
            ns: vec![
                vec![1000, 10_000, 100_000, 1_000_000],
                vec![1000, 10_000, 100_000],
            ],
            seeds: vec![vec![1000, 1000, 1000, 1000], vec![1000, 1000, 1000]],
            limit_samples: 20_000,
        }
    };
    report.config("d", &sz.dims);
    report.config("n", &sz.ns);
    report.config("seeds_per_n", &sz.seeds);
    report.config(
        "lambdas",
        "four per decade: 1e-2..1e2 (d = 3), 1e-4..1e2 (d = 2)",
    );
    report.config("beta", "lambda n^{2/(d-1)}");
    report.config("query", "e_1");
    report.config("keys", "iid uniform on S^{d-1}, one fresh set per seed");
    report.config("limit_process_samples", sz.limit_samples);
    report.backend = Some("f64 streaming attention_stats (cpu, rayon)".into());
    let mut rows = Vec::new();
    let mut limit_rows = Vec::new();
    let mut all_checks: Vec<(String, bool)> = Vec::new();

    for (di, &d) in sz.dims.iter().enumerate() {
        // lambda four per decade up to 10^2, from 10^-2 (d = 3) or 10^-4 (d = 2: the effective
        // number of keys grows like lambda^{-(d-1)/2} as lambda -> 0).
        let low = if d == 2 { -4.0 } else { -2.0 };
        let lambdas: Vec<f64> = (0..=((2.0 - low) * 4.0) as usize)
            .map(|k| 10f64.powf(low + k as f64 / 4.0))
            .collect();
        let nl = lambdas.len();
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            vec![1.0],
        );
        let mut q = vec![0.0; d];
        q[0] = 1.0;
        let scale = |n: usize| (n as f64).powf(2.0 / (d as f64 - 1.0));
        // stats[ni][k] = (mean max w, se, mean eff, se)
        let mut stats: Vec<Vec<[f64; 4]>> = Vec::new();
        for (ni, &n) in sz.ns[di].iter().enumerate() {
            let seeds = sz.seeds[di][ni];
            setup.say(&format!("d = {d}, n = {n}: {seeds} key sets"));
            let base = derived_seed(setup.seed, (1000 * d + ni) as u64);
            // Seed by seed (streaming: one key set in memory per thread).
            let per: Vec<Vec<(f64, f64)>> = (0..seeds)
                .into_par_iter()
                .map(|s| -> Result<Vec<(f64, f64)>> {
                    let y = InitSpec::Uniform.generate(
                        Shape::new(1, n, d)?,
                        Geometry::Sphere,
                        derived_seed(base, s as u64 + 1),
                    )?;
                    Ok(lambdas
                        .iter()
                        .map(|&l| {
                            let st = attention_stats(&model, l * scale(n), &q, &y, n, 0);
                            (st.max_weight, st.effective_keys)
                        })
                        .collect())
                })
                .collect::<Result<_>>()?;
            let mut row_stats = Vec::new();
            for (k, &l) in lambdas.iter().enumerate() {
                let mw: Vec<f64> = per.iter().map(|v| v[k].0).collect();
                let ek: Vec<f64> = per.iter().map(|v| v[k].1).collect();
                let (a, b) = mean_se(&mw);
                let (c, e) = mean_se(&ek);
                rows.push(vec![
                    d as f64,
                    n as f64,
                    seeds as f64,
                    l,
                    l * scale(n),
                    a,
                    b,
                    c,
                    e,
                ]);
                row_stats.push([a, b, c, e]);
            }
            stats.push(row_stats);
        }
        let limit = limit_process(d, &lambdas, sz.limit_samples, setup.seed);
        for (k, &l) in lambdas.iter().enumerate() {
            let v = limit[k];
            limit_rows.push(vec![d as f64, l, v[0], v[1], v[2], v[3]]);
        }

        // Spread across n at each lambda: max - min of the means, and in units of the
        // combined standard error of the two extreme curves.
        let spread = |idx: usize, se: usize| -> (Vec<f64>, Vec<f64>) {
            (0..nl)
                .map(|k| {
                    let (mut lo, mut hi) = (0, 0);
                    for ni in 0..stats.len() {
                        if stats[ni][k][idx] < stats[lo][k][idx] {
                            lo = ni;
                        }
                        if stats[ni][k][idx] > stats[hi][k][idx] {
                            hi = ni;
                        }
                    }
                    let s = stats[hi][k][idx] - stats[lo][k][idx];
                    let e = (stats[hi][k][se].powi(2) + stats[lo][k][se].powi(2)).sqrt();
                    (s, s / e.max(1e-300))
                })
                .unzip()
        };
        let (mw_spread, mw_sig) = spread(0, 1);
        let (ek_spread, ek_sig) = spread(2, 3);
        let ek_rel: Vec<f64> = (0..nl)
            .map(|k| {
                let m = stats.iter().map(|s| s[k][2]).sum::<f64>() / stats.len() as f64;
                ek_spread[k] / m
            })
            .collect();
        // Deviation of the largest n from the limit process, in combined standard errors.
        let last = &stats[stats.len() - 1];
        let dev_limit: Vec<f64> = (0..nl)
            .map(|k| {
                (last[k][0] - limit[k][0]).abs() / (last[k][1].powi(2) + limit[k][1].powi(2)).sqrt()
            })
            .collect();
        let key = |s: &str| format!("d{d}_{s}");
        report.measured(
            &key("mean_max_weight"),
            serde_json::json!({"n": sz.ns[di], "lambda": lambdas,
                "mean": stats.iter().map(|s| s.iter().map(|v| v[0]).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "se": stats.iter().map(|s| s.iter().map(|v| v[1]).collect::<Vec<_>>()).collect::<Vec<_>>()}),
        );
        report.measured(
            &key("mean_effective_keys"),
            serde_json::json!({"n": sz.ns[di], "lambda": lambdas,
                "mean": stats.iter().map(|s| s.iter().map(|v| v[2]).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "se": stats.iter().map(|s| s.iter().map(|v| v[3]).collect::<Vec<_>>()).collect::<Vec<_>>()}),
        );
        report.measured(&key("max_weight_spread_over_n"), &mw_spread);
        report.measured(&key("max_weight_spread_over_n_in_se"), &mw_sig);
        report.measured(&key("effective_keys_relative_spread_over_n"), &ek_rel);
        report.measured(&key("effective_keys_spread_over_n_in_se"), &ek_sig);
        report.measured(&key("max_weight_largest_n_minus_limit_in_se"), &dev_limit);
        // Small-lambda law of the effective number of keys (largest n, first five lambdas):
        // E[Sigma]^2 / E[Sigma_2] of the Poisson process gives 1 / lambda for d = 3 and
        // 1 / sqrt(pi lambda) for d = 2, i.e. the exponent -(d - 1) / 2.
        let fit = fit_loglog(
            &lambdas[..5],
            &last[..5].iter().map(|v| v[2]).collect::<Vec<_>>(),
        );
        let amp = if d == 3 {
            1.0
        } else {
            1.0 / std::f64::consts::PI.sqrt()
        };
        report.measured(
            &key("effective_keys_small_lambda_fit"),
            serde_json::json!({"exponent": fit.slope, "exponent_se": fit.slope_se,
                "amplitude": fit.intercept.exp(), "r2": fit.r2,
                "lambdas": &lambdas[..5], "n": sz.ns[di][sz.ns[di].len() - 1]}),
        );
        report.prediction(
            &key("effective_keys_small_lambda_fit"),
            serde_json::json!({"exponent": -((d - 1) as f64) / 2.0, "amplitude": amp,
                "note": "E[Sigma]^2 / E[Sigma_2] over the Poisson process (leading order)"}),
        );
        let exp_ok = (fit.slope + (d - 1) as f64 / 2.0).abs() < 0.1;
        report.prediction(
            &key("limit_mean_max_weight"),
            limit.iter().map(|v| v[0]).collect::<Vec<_>>(),
        );
        report.prediction(
            &key("limit_mean_effective_keys"),
            limit.iter().map(|v| v[2]).collect::<Vec<_>>(),
        );

        // Checks.
        let first_n_incr = stats.iter().all(|s| {
            s.windows(2)
                .all(|w| w[1][0] > w[0][0] - 3.0 * w[1][1].max(w[0][1]))
        });
        let top_one = stats.iter().all(|s| s[nl - 1][0] > 0.95);
        let eff_one = stats.iter().all(|s| s[nl - 1][2] < 1.15);
        let eff_large = stats.iter().all(|s| s[0][2] > 30.0);
        let collapse_mw = (0..nl).all(|k| mw_spread[k] < 0.05 || mw_sig[k] < 4.0);
        let collapse_ek = (0..nl).all(|k| ek_rel[k] < 0.1 || ek_sig[k] < 4.0);
        let near_limit =
            (0..nl).all(|k| dev_limit[k] < 5.0 || (last[k][0] - limit[k][0]).abs() < 0.02);
        all_checks.push((key("max_weight_increasing_in_lambda"), first_n_incr));
        all_checks.push((key("max_weight_above_0.95_at_largest_lambda"), top_one));
        all_checks.push((key("effective_keys_below_1.15_at_largest_lambda"), eff_one));
        all_checks.push((key("effective_keys_above_30_at_smallest_lambda"), eff_large));
        all_checks.push((key("max_weight_curves_collapse_across_n"), collapse_mw));
        all_checks.push((key("effective_keys_curves_collapse_across_n"), collapse_ek));
        all_checks.push((key("largest_n_matches_poisson_limit"), near_limit));
        all_checks.push((
            key("effective_keys_exponent_within_0.1_of_minus_(d-1)/2"),
            exp_ok,
        ));

        // Figures.
        let mut s1 = Vec::new();
        let mut s2 = Vec::new();
        for (ni, &n) in sz.ns[di].iter().enumerate() {
            s1.push(Series::line(
                format!("n = {n}"),
                lambdas
                    .iter()
                    .zip(&stats[ni])
                    .map(|(&l, v)| (l, v[0]))
                    .collect(),
            ));
            s2.push(Series::line(
                format!("n = {n}"),
                lambdas
                    .iter()
                    .zip(&stats[ni])
                    .map(|(&l, v)| (l, v[2]))
                    .collect(),
            ));
        }
        s1.push(Series::theory(
            "Poisson limit (n -> infinity)",
            lambdas
                .iter()
                .zip(&limit)
                .map(|(&l, v)| (l, v[0]))
                .collect(),
        ));
        s2.push(Series::theory(
            "Poisson limit (n -> infinity)",
            lambdas
                .iter()
                .zip(&limit)
                .map(|(&l, v)| (l, v[2]))
                .collect(),
        ));
        let beta_txt = if d == 3 { "lambda n" } else { "lambda n^2" };
        let name = format!("max_weight_d{d}.png");
        plot::lines(
            &setup.path(&name),
            &Axes {
                title: &format!(
                    "Largest attention weight, one query, n uniform keys on S^{}, beta = {beta_txt}",
                    d - 1
                ),
                x_label: "lambda = beta / n^{2/(d-1)}",
                y_label: "E[max_j w_j]",
                log_x: true,
                log_y: false,
            },
            &s1,
        )?;
        report.files.push(name);
        let name = format!("effective_keys_d{d}.png");
        plot::lines(
            &setup.path(&name),
            &Axes {
                title: &format!(
                    "Effective number of keys, n uniform keys on S^{}, beta = {beta_txt}",
                    d - 1
                ),
                x_label: "lambda = beta / n^{2/(d-1)}",
                y_label: "E[1 / sum_j w_j^2]",
                log_x: true,
                log_y: true,
            },
            &s2,
        )?;
        report.files.push(name);
    }
    setup.csv(
        report,
        "selectivity.csv",
        &[
            "d",
            "n",
            "seeds",
            "lambda",
            "beta",
            "max_weight",
            "max_weight_se",
            "effective_keys",
            "effective_keys_se",
        ],
        &rows,
    )?;
    setup.csv(
        report,
        "limit_process.csv",
        &[
            "d",
            "lambda",
            "max_weight",
            "max_weight_se",
            "effective_keys",
            "effective_keys_se",
        ],
        &limit_rows,
    )?;
    report.prediction(
        "regimes",
        "beta << n^{2/(d-1)}: nearly uniform (effective keys grows with n); beta ~ n^{2/(d-1)}: \
         finitely many nearest keys, a lambda-only limit; beta >> n^{2/(d-1)}: max weight -> 1",
    );
    report.prediction(
        "limit_process",
        "d = 3: scaled gaps n(1 - <q, y>) form a Poisson process of rate 1/2, w ~ e^{-lambda xi}; \
         d = 2: n |theta| is Poisson of rate 1/pi, w ~ e^{-lambda xi^2 / 2} (Monte Carlo)",
    );
    for (k, v) in all_checks {
        report.check(&k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_selectivity_curves_collapse_across_n() {
        let (_dir, out, s) = super::super::quick_run_checked("selectivity", 2);
        // E[max weight] agrees across n at every lambda: within 4 combined standard errors
        // (200 key sets: about 0.025) and 0.08 in absolute terms.
        let m = &s["measured"];
        for (v, z) in m["d3_max_weight_spread_over_n"]
            .as_array()
            .unwrap()
            .iter()
            .zip(m["d3_max_weight_spread_over_n_in_se"].as_array().unwrap())
        {
            assert!(v.as_f64().unwrap() < 0.08, "{v}");
            assert!(z.as_f64().unwrap() < 4.0, "{z}");
        }
        // At lambda = 1 (index 8) the largest n is near the Poisson limit (about 0.73).
        let mw = m["d3_mean_max_weight"]["mean"].as_array().unwrap();
        let last = mw[mw.len() - 1][8].as_f64().unwrap();
        assert!((0.66..0.80).contains(&last), "{last}");
        assert!(out.join("max_weight_d3.png").exists());
    }
}
