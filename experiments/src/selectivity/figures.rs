//! The figures of `selectivity`: the largest weight and the effective number of keys against
//! lambda for every n, beside the limit process.

use crate::{Report, Setup};
use attnflow::error::Result;
use attnflow::figures::{Axes, Series};

/// Both figures of one d (stats[n][lambda] = [max weight, se, effective keys, se]).
pub fn draw(
    setup: &Setup,
    report: &mut Report,
    d: usize,
    ns: &[usize],
    lambdas: &[f64],
    stats: &[Vec<[f64; 4]>],
    limit: &[[f64; 4]],
) -> Result<()> {
    let curve = |v: &[[f64; 4]], i: usize| -> Vec<(f64, f64)> {
        lambdas.iter().zip(v).map(|(&l, v)| (l, v[i])).collect()
    };
    let mut s1 = Vec::new();
    let mut s2 = Vec::new();
    for (ni, &n) in ns.iter().enumerate() {
        s1.push(Series::line(format!("n = {n}"), curve(&stats[ni], 0)));
        s2.push(Series::line(format!("n = {n}"), curve(&stats[ni], 2)));
    }
    s1.push(Series::theory(
        "Poisson limit (n -> infinity)",
        curve(limit, 0),
    ));
    s2.push(Series::theory(
        "Poisson limit (n -> infinity)",
        curve(limit, 2),
    ));
    let beta_txt = if d == 3 { "lambda n" } else { "lambda n^2" };
    setup.lines(
        report,
        &format!("max_weight_d{d}.png"),
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
    setup.lines(
        report,
        &format!("effective_keys_d{d}.png"),
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
    )
}
