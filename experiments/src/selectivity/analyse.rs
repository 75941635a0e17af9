//! The analysis of `selectivity`: means with standard errors per lambda, the spread of the
//! curves across n, the distance of the largest n from the limit process and the small-lambda
//! law of the effective number of keys.

use serde::Serialize;

use attnflow::stats::{Fit, fit_loglog, mean_se};

/// Per lambda: [mean max weight, its se, mean effective keys, its se] over the samples
/// [sample][lambda] of (max weight, effective keys).
pub fn summarise(per: &[Vec<(f64, f64)>], lambdas: usize) -> Vec<[f64; 4]> {
    (0..lambdas)
        .map(|k| {
            let mw: Vec<f64> = per.iter().map(|v| v[k].0).collect();
            let ek: Vec<f64> = per.iter().map(|v| v[k].1).collect();
            let (a, b) = mean_se(&mw);
            let (c, e) = mean_se(&ek);
            [a, b, c, e]
        })
        .collect()
}

/// Spread across n at each lambda of column `idx` (standard error in column `se`): max - min
/// of the means, and that in units of the combined standard error of the two extreme curves.
pub fn spread(stats: &[Vec<[f64; 4]>], idx: usize, se: usize) -> (Vec<f64>, Vec<f64>) {
    (0..stats[0].len())
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
}

/// The checks of one d.
#[derive(Serialize)]
pub struct Checks {
    #[serde(rename = "max_weight_above_0.95_at_largest_lambda")]
    pub max_weight_near_one: bool,
    #[serde(rename = "effective_keys_below_1.15_at_largest_lambda")]
    pub effective_keys_near_one: bool,
    pub effective_keys_above_30_at_smallest_lambda: bool,
    pub max_weight_curves_collapse_across_n: bool,
    pub effective_keys_curves_collapse_across_n: bool,
    pub largest_n_matches_poisson_limit: bool,
    pub effective_keys_largest_n_matches_poisson_limit: bool,
}

/// The analysis of one d.
pub struct Analysis {
    pub mw_spread: Vec<f64>,
    pub mw_sig: Vec<f64>,
    pub ek_rel: Vec<f64>,
    pub ek_sig: Vec<f64>,
    /// Deviation of the largest n's mean max weight from the limit process, in combined
    /// standard errors.
    pub dev_limit: Vec<f64>,
    /// The same for the mean effective keys.
    pub ek_dev_limit: Vec<f64>,
    /// Small-lambda law of the effective number of keys (largest n, first five lambdas).
    pub small_lambda_fit: Fit,
    /// The checks as booleans, for the unit tests here; the run types them with their bands
    /// (`typed_checks` in mod.rs), each band these k se (the small-lambda exponent's band
    /// needs the limit process's slope: typed only).
    #[cfg_attr(not(test), allow(dead_code))]
    pub checks: Checks,
}

/// stats[n][lambda] and the limit process per lambda, of keys on S^{d-1}.
pub fn analyse(stats: &[Vec<[f64; 4]>], limit: &[[f64; 4]], lambdas: &[f64]) -> Analysis {
    let nl = lambdas.len();
    let (mw_spread, mw_sig) = spread(stats, 0, 1);
    let (ek_spread, ek_sig) = spread(stats, 2, 3);
    let ek_rel: Vec<f64> = (0..nl)
        .map(|k| {
            let m = stats.iter().map(|s| s[k][2]).sum::<f64>() / stats.len() as f64;
            ek_spread[k] / m
        })
        .collect();
    let last = &stats[stats.len() - 1];
    let deviation = |i: usize, se: usize| -> Vec<f64> {
        (0..nl)
            .map(|k| {
                (last[k][i] - limit[k][i]).abs()
                    / (last[k][se].powi(2) + limit[k][se].powi(2))
                        .sqrt()
                        .max(1e-300)
            })
            .collect()
    };
    let dev_limit = deviation(0, 1);
    let ek_dev_limit = deviation(2, 3);
    // E[Sigma]^2 / E[Sigma_2] of the Poisson process gives 1 / lambda for d = 3 and
    // 1 / sqrt(pi lambda) for d = 2, i.e. the exponent -(d - 1) / 2.
    let fit = fit_loglog(
        &lambdas[..5],
        &last[..5].iter().map(|v| v[2]).collect::<Vec<_>>(),
    );
    let checks = Checks {
        max_weight_near_one: stats.iter().all(|s| s[nl - 1][0] > 0.95),
        effective_keys_near_one: stats.iter().all(|s| s[nl - 1][2] < 1.15),
        effective_keys_above_30_at_smallest_lambda: stats.iter().all(|s| s[0][2] > 30.0),
        max_weight_curves_collapse_across_n: (0..nl).all(|k| mw_sig[k] < 4.0),
        effective_keys_curves_collapse_across_n: (0..nl).all(|k| ek_sig[k] < 4.0),
        largest_n_matches_poisson_limit: (0..nl).all(|k| dev_limit[k] < 5.0),
        effective_keys_largest_n_matches_poisson_limit: (0..nl).all(|k| ek_dev_limit[k] < 5.0),
    };
    Analysis {
        mw_spread,
        mw_sig,
        ek_rel,
        ek_sig,
        dev_limit,
        ek_dev_limit,
        small_lambda_fit: fit,
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_are_in_standard_errors_and_the_small_lambda_exponent_is_fitted() {
        let samples = vec![vec![(0.5, 2.0)], vec![(0.7, 4.0)]];
        let s = summarise(&samples, 1);
        assert_eq!(s[0][0], 0.6);
        assert_eq!(s[0][2], 3.0);
        assert!((s[0][1] - 0.1).abs() < 1e-12 && (s[0][3] - 1.0).abs() < 1e-12);
        // Two n, one lambda: means 0.5 and 0.8 with se 0.1 and 0.2.
        let stats = vec![vec![[0.5, 0.1, 10.0, 1.0]], vec![[0.8, 0.2, 10.0, 1.0]]];
        let (s, z) = spread(&stats, 0, 1);
        assert!((s[0] - 0.3).abs() < 1e-12);
        assert!((z[0] - 0.3 / 0.05f64.sqrt()).abs() < 1e-12);
        // Effective keys 1 / lambda (d = 3): the exponent is -1.
        let lambdas: Vec<f64> = (0..6).map(|k| 10f64.powf(-2.0 + k as f64 / 4.0)).collect();
        let one: Vec<[f64; 4]> = lambdas.iter().map(|l| [0.5, 0.01, 1.0 / l, 0.01]).collect();
        let a = analyse(std::slice::from_ref(&one), &one, &lambdas);
        assert!((a.small_lambda_fit.slope + 1.0).abs() < 1e-12);
        assert!(a.checks.largest_n_matches_poisson_limit);
        assert!(a.checks.effective_keys_largest_n_matches_poisson_limit);
        // Effective keys 20% above the limit, 10 standard errors away: the check fails.
        let far: Vec<[f64; 4]> = one.iter().map(|v| [v[0], v[1], 1.2 * v[2], 0.01]).collect();
        let b = analyse(std::slice::from_ref(&far), &one, &lambdas);
        assert!(!b.checks.effective_keys_largest_n_matches_poisson_limit);
        assert!(b.ek_dev_limit.iter().all(|z| *z > 5.0));
    }
}
