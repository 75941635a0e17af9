//! Experiment `selectivity` (docs/model.md §4, "uniform keys, one query"): one query q = e_1 and n
//! iid uniform keys on S^{d-1}, softmax attention at beta = lambda n^{2/(d-1)}. The largest
//! weight and the effective number of keys 1 / sum_j w_j^2 (f64, streamed by
//! [`attnflow::attend::attention_stats`]) are averaged over many independent key sets for each
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
//!
//! Checks, their bands (issue 24) and the mutations are in docs/experiments/selectivity.md.
//! Parameters (`--set`): dims, ns, seeds, limit_samples and the lambda grid
//! (log10_lambda_min, log10_lambda_min_d2, log10_lambda_max, lambdas_per_decade).

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
pub const MUTATIONS: &[&str] = &["beta-log-n", "beta-angle-scale"];

mod analyse;
mod figures;
mod simulate;
pub mod sizes;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Band, Check, Report, Setup, Test, fields};
use attnflow::attend::derived_seed;
use attnflow::error::Result;
use attnflow::stats::{fit_line_worst_change, fit_loglog};
use sizes::Sizes;

#[derive(Serialize)]
struct Config {
    beta: &'static str,
    query: &'static str,
    keys: &'static str,
}

/// Means and standard errors [n][lambda] of one quantity.
#[derive(Serialize)]
struct Curves<'a> {
    n: &'a [usize],
    lambda: &'a [f64],
    mean: Vec<Vec<f64>>,
    se: Vec<Vec<f64>>,
}

#[derive(Serialize)]
struct SmallLambdaFit<'a> {
    exponent: f64,
    exponent_se: f64,
    amplitude: f64,
    r2: f64,
    lambdas: &'a [f64],
    n: usize,
}

/// The measured quantities of one d (keys prefixed with d{d}_).
#[derive(Serialize)]
struct Measured<'a> {
    mean_max_weight: Curves<'a>,
    mean_effective_keys: Curves<'a>,
    max_weight_spread_over_n: &'a [f64],
    max_weight_spread_over_n_in_se: &'a [f64],
    effective_keys_relative_spread_over_n: &'a [f64],
    effective_keys_spread_over_n_in_se: &'a [f64],
    max_weight_largest_n_minus_limit_in_se: &'a [f64],
    effective_keys_largest_n_minus_limit_in_se: &'a [f64],
    effective_keys_small_lambda_fit: SmallLambdaFit<'a>,
}

#[derive(Serialize)]
struct SmallLambdaLaw {
    exponent: f64,
    amplitude: f64,
    note: &'static str,
}

/// The predictions of one d (keys prefixed with d{d}_).
#[derive(Serialize)]
struct Prediction {
    effective_keys_small_lambda_fit: SmallLambdaLaw,
    limit_mean_max_weight: Vec<f64>,
    limit_mean_effective_keys: Vec<f64>,
}

#[derive(Serialize)]
struct Regimes {
    regimes: &'static str,
    limit_process: &'static str,
}

/// Inserts the fields of a typed summary into `map` with the prefix d{d}_.
fn insert_for_d(map: &mut Map<String, Value>, d: usize, v: &impl Serialize) {
    for (k, x) in fields(v) {
        map.insert(format!("d{d}_{k}"), x);
    }
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    if sz.ns.len() != sz.dims.len()
        || sz.seeds.len() != sz.dims.len()
        || sz.ns.iter().zip(&sz.seeds).any(|(n, s)| n.len() != s.len())
        || sz.dims.iter().any(|&d| d < 2 || sz.lambdas(d).len() < 5)
    {
        return Err(attnflow::error::input(
            "--set: selectivity needs one list of ns and of seeds (as long) per entry of dims, \
             dims >= 2, and at least 5 lambdas",
        ));
    }
    report.add_config(&sz);
    report.add_config(&Config {
        beta: "lambda n^{2/(d-1)}",
        query: "e_1",
        keys: "iid uniform on S^{d-1}, one fresh set per seed",
    });
    report.backend = Some("f64 streaming attention_stats (cpu, rayon)".into());
    let mut rows = Vec::new();
    let mut limit_rows = Vec::new();

    for (di, &d) in sz.dims.iter().enumerate() {
        let lambdas = sz.lambdas(d);
        let nl = lambdas.len();
        // stats[ni][k] = (mean max w, se, mean eff, se)
        let mut stats: Vec<Vec<[f64; 4]>> = Vec::new();
        for (ni, &n) in sz.ns[di].iter().enumerate() {
            let seeds = sz.seeds[di][ni];
            setup.say(&format!("d = {d}, n = {n}: {seeds} key sets"));
            let base = derived_seed(setup.seed, (1000 * d + ni) as u64);
            // The mutation asked through `mutated` (recorded for the memo).
            let mutation = MUTATIONS.iter().copied().find(|m| setup.mutated(m));
            let scale = sizes::scale(n, d, mutation);
            let per = setup.memo(
                report,
                "selectivity/key_sets",
                &(d, n, seeds, &lambdas, scale, base),
                |_| simulate::key_sets(d, n, seeds, &lambdas, scale, base),
            )?;
            let row_stats = analyse::summarise(&per, nl);
            for (&l, &[a, b, c, e]) in lambdas.iter().zip(&row_stats) {
                rows.push(vec![
                    d as f64,
                    n as f64,
                    seeds as f64,
                    l,
                    l * scale,
                    a,
                    b,
                    c,
                    e,
                ]);
            }
            stats.push(row_stats);
        }
        let limit = analyse::summarise(
            &simulate::limit_process(d, &lambdas, sz.limit_samples, setup.seed),
            nl,
        );
        for (k, &l) in lambdas.iter().enumerate() {
            let v = limit[k];
            limit_rows.push(vec![d as f64, l, v[0], v[1], v[2], v[3]]);
        }
        let a = analyse::analyse(&stats, &limit, &lambdas);
        let column = |i: usize| -> Vec<Vec<f64>> {
            stats
                .iter()
                .map(|s| s.iter().map(|v| v[i]).collect())
                .collect()
        };
        let ns = &sz.ns[di];
        let fit = a.small_lambda_fit;
        insert_for_d(
            &mut report.measured,
            d,
            &Measured {
                mean_max_weight: Curves {
                    n: ns,
                    lambda: &lambdas,
                    mean: column(0),
                    se: column(1),
                },
                mean_effective_keys: Curves {
                    n: ns,
                    lambda: &lambdas,
                    mean: column(2),
                    se: column(3),
                },
                max_weight_spread_over_n: &a.mw_spread,
                max_weight_spread_over_n_in_se: &a.mw_sig,
                effective_keys_relative_spread_over_n: &a.ek_rel,
                effective_keys_spread_over_n_in_se: &a.ek_sig,
                max_weight_largest_n_minus_limit_in_se: &a.dev_limit,
                effective_keys_largest_n_minus_limit_in_se: &a.ek_dev_limit,
                effective_keys_small_lambda_fit: SmallLambdaFit {
                    exponent: fit.slope,
                    exponent_se: fit.slope_se,
                    amplitude: fit.intercept.exp(),
                    r2: fit.r2,
                    lambdas: &lambdas[..5],
                    n: ns[ns.len() - 1],
                },
            },
        );
        insert_for_d(
            &mut report.prediction,
            d,
            &Prediction {
                effective_keys_small_lambda_fit: SmallLambdaLaw {
                    exponent: -((d - 1) as f64) / 2.0,
                    amplitude: if d == 3 {
                        1.0
                    } else {
                        1.0 / std::f64::consts::PI.sqrt()
                    },
                    note: "E[Sigma]^2 / E[Sigma_2] over the Poisson process (leading order)",
                },
                limit_mean_max_weight: limit.iter().map(|v| v[0]).collect(),
                limit_mean_effective_keys: limit.iter().map(|v| v[2]).collect(),
            },
        );
        for (name, c) in typed_checks(&stats, &limit, &lambdas, d, &a) {
            report.band_check(&format!("d{d}_{name}"), c);
        }
        figures::draw(setup, report, d, ns, &lambdas, &stats, &limit)?;
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
    report.add_prediction(&Regimes {
        regimes: "beta << n^{2/(d-1)}: nearly uniform (effective keys grows with n); beta ~ \
                  n^{2/(d-1)}: finitely many nearest keys, a lambda-only limit; beta >> \
                  n^{2/(d-1)}: max weight -> 1",
        limit_process: "d = 3: scaled gaps n(1 - <q, y>) form a Poisson process of rate 1/2, \
                        w ~ e^{-lambda xi}; d = 2: n |theta| is Poisson of rate 1/pi, w ~ \
                        e^{-lambda xi^2 / 2} (Monte Carlo)",
    });
    // Smoke at the quick size: checks no wrong model of the study fails there (issue 24,
    // experiments/src/mutations.rs).
    report.smoke_at_quick(
        setup,
        "d3_effective_keys_above_30_at_smallest_lambda",
        "a threshold that every mutation keeps",
    );
    Ok(())
}

/// The checks of one d, typed (issue 24): the bands are those of `analyse::Checks`, their
/// absolute allowances stated as not derived.
fn typed_checks(
    stats: &[Vec<[f64; 4]>],
    limit: &[[f64; 4]],
    lambdas: &[f64],
    d: usize,
    a: &analyse::Analysis,
) -> Vec<(String, Check)> {
    let nl = lambdas.len();
    let last = &stats[stats.len() - 1];
    let both = ["beta-log-n", "beta-angle-scale"];
    let wrong = "a wrong temperature rule (beta = lambda ln n; beta = lambda n^{1/(d-1)})";
    let seeds = "independent key sets per n";
    let threshold = |what: String, v: f64, t: Test, p: f64| {
        Check::new(
            what,
            v,
            t,
            p,
            Band::exact(0.0, "none: a threshold (the regime)"),
        )
        .rejects(&both, wrong)
    };
    let all = |v: Vec<Check>| Check::all(v).expect("n and lambda");
    let mut out = Vec::new();
    out.push((
        "max_weight_above_0.95_at_largest_lambda".to_string(),
        all(stats
            .iter()
            .map(|s| {
                threshold(
                    format!("mean max weight at lambda = {:.3}", lambdas[nl - 1]),
                    s[nl - 1][0],
                    Test::AtLeast,
                    0.95,
                )
            })
            .collect()),
    ));
    out.push((
        "effective_keys_below_1.15_at_largest_lambda".to_string(),
        all(stats
            .iter()
            .map(|s| {
                threshold(
                    format!("mean effective keys at lambda = {:.3}", lambdas[nl - 1]),
                    s[nl - 1][2],
                    Test::AtMost,
                    1.15,
                )
            })
            .collect()),
    ));
    out.push((
        "effective_keys_above_30_at_smallest_lambda".to_string(),
        all(stats
            .iter()
            .map(|s| {
                threshold(
                    format!("mean effective keys at lambda = {:.4}", lambdas[0]),
                    s[0][2],
                    Test::AtLeast,
                    30.0,
                )
                .rejects(&[], "attention that is not nearly uniform at small lambda")
            })
            .collect()),
    ));
    let spread_from =
        format!("{seeds}, the two extreme curves combined (k = 4: the worst of the ns)");
    out.push((
        "max_weight_curves_collapse_across_n".to_string(),
        all((0..nl)
            .map(|k| {
                let se = a.mw_spread[k] / a.mw_sig[k].max(1e-300);
                Check::new(
                    format!(
                        "spread of the mean max weight over n, lambda = {:.4}",
                        lambdas[k]
                    ),
                    a.mw_spread[k],
                    Test::Within,
                    0.0,
                    Band::stat(4.0, se, &spread_from),
                )
                .rejects(&both, wrong)
            })
            .collect()),
    ));
    out.push((
        "effective_keys_curves_collapse_across_n".to_string(),
        all((0..nl)
            .map(|k| {
                let m = stats.iter().map(|s| s[k][2]).sum::<f64>() / stats.len() as f64;
                let spread = a.ek_rel[k] * m;
                let se = spread / a.ek_sig[k].max(1e-300);
                Check::new(
                    format!(
                        "spread of the mean effective keys over n, lambda = {:.4}",
                        lambdas[k]
                    ),
                    spread,
                    Test::Within,
                    0.0,
                    Band::stat(4.0, se, &spread_from),
                )
                .rejects(&both, wrong)
            })
            .collect()),
    ));
    let limit_from = format!(
        "{seeds} at the largest n and Monte Carlo samples of the limit process (k = 5: the worst of the lambdas)"
    );
    out.push((
        "largest_n_matches_poisson_limit".to_string(),
        all((0..nl)
            .map(|k| {
                Check::new(
                    format!(
                        "mean max weight at the largest n, lambda = {:.4}",
                        lambdas[k]
                    ),
                    last[k][0],
                    Test::Within,
                    limit[k][0],
                    Band::stat(5.0, last[k][1].hypot(limit[k][1]), &limit_from),
                )
                .rejects(&both, wrong)
            })
            .collect()),
    ));
    out.push((
        "effective_keys_largest_n_matches_poisson_limit".to_string(),
        all((0..nl)
            .map(|k| {
                Check::new(
                    format!(
                        "mean effective keys at the largest n, lambda = {:.4}",
                        lambdas[k]
                    ),
                    last[k][2],
                    Test::Within,
                    limit[k][2],
                    Band::stat(5.0, last[k][3].hypot(limit[k][3]), &limit_from),
                )
                .rejects(&both, wrong)
            })
            .collect()),
    ));
    // The small-lambda law -(d - 1) / 2 is the leading order; its next order at these lambdas
    // is that of the limit process, whose own fitted slope over the same lambdas predicts it.
    // The slope is linear in the ln of the means, so their standard errors propagate at the
    // worst correlation (the lambdas share their key sets): sum_k |c_k| se_k / mean_k.
    let x: Vec<f64> = lambdas[..5].iter().map(|l| l.ln()).collect();
    let slope_se = |v: &[[f64; 4]]| -> f64 {
        let relative: Vec<f64> = v[..5].iter().map(|m| m[3] / m[2]).collect();
        fit_line_worst_change(&x, &relative).0
    };
    let limit_slope = fit_loglog(
        &lambdas[..5],
        &limit[..5].iter().map(|v| v[2]).collect::<Vec<_>>(),
    )
    .slope;
    let law = -((d - 1) as f64) / 2.0;
    let next_order = (limit_slope - law).abs();
    out.push((
        "effective_keys_exponent_is_minus_(d-1)/2".to_string(),
        Check::new(
            "log-log slope of the effective keys over the five smallest lambdas, largest n",
            a.small_lambda_fit.slope,
            Test::Within,
            law,
            Band::stat(
                3.0,
                slope_se(last).hypot(slope_se(limit)),
                format!(
                    "{seeds} at the largest n and Monte Carlo samples of the limit process, \
                     propagated through the fit at the worst correlation"
                ),
            )
            .plus(
                next_order,
                format!(
                    "the next order in small lambda: the limit process's own slope over the \
                     same lambdas, {limit_slope:.4}, misses the law by {next_order:.4}"
                ),
            ),
        )
        .rejects(&["beta-log-n"], "beta = lambda ln n"),
    ));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_selectivity_curves_collapse_across_n() {
        let (_dir, out, s) = super::super::quick_run_checked("selectivity");
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
