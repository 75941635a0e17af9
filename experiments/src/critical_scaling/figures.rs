//! The figures of `critical-scaling`.

use crate::{Report, Setup};
use attnflow::error::Result;
use attnflow::figures::{Axes, Series};

/// The one-layer curves of one model and c0 (measured, then theory, then the asymptote).
pub fn layer(
    setup: &Setup,
    report: &mut Report,
    (model, c0, d): (&str, f64, &str),
    mut series: Vec<Series>,
    theory: Vec<Series>,
) -> Result<()> {
    series.extend(theory);
    series.push(Series::markers(
        "gamma = 1/(1 - c0)",
        vec![(1.0 / (1.0 - c0), c0), (1.0 / (1.0 - c0), 1.0)],
    ));
    setup.lines(
        report,
        &format!("layer_cos_{model}_c0_{c0}.png"),
        &Axes {
            title: &format!("One SA layer, beta = gamma ln n, {model} tokens, c0 = {c0}, {d}"),
            x_label: "gamma",
            y_label: "mean pairwise cosine of outputs",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}

/// gamma_c (1 - c0) against 1 / ln n: the measured points of both models, the simplex's exact
/// curves, and the limit 1 at 1 / ln n = 0.
pub fn gamma_c_vs_n(setup: &Setup, report: &mut Report, series: Vec<Series>) -> Result<()> {
    setup.lines(
        report,
        "gamma_c_vs_n.png",
        &Axes {
            title: "Critical gamma of beta = gamma ln n: approach to 1 / (1 - c0)",
            x_label: "1 / ln n",
            y_label: "gamma_c (1 - c0)",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}

/// gamma_c against c0: the simplex at its largest n and extrapolated, the random case at its
/// largest n, and 1 / (1 - c0).
pub fn gamma_c_vs_c0(
    setup: &Setup,
    report: &mut Report,
    c0s: &[f64],
    mut series: Vec<Series>,
) -> Result<()> {
    let c_lo = (c0s[0] - 0.1).max(0.0);
    let c_hi = (c0s[c0s.len() - 1] + 0.1).min(0.95);
    series.push(Series::theory(
        "1 / (1 - c0) (simplex, n -> infinity)",
        (0..=50)
            .map(|k| {
                let c = c_lo + (c_hi - c_lo) * k as f64 / 50.0;
                (c, 1.0 / (1.0 - c))
            })
            .collect(),
    ));
    setup.lines(
        report,
        "gamma_c_vs_c0.png",
        &Axes {
            title: "Critical gamma of beta = gamma ln n",
            x_label: "c0 = initial pairwise cosine",
            y_label: "gamma_c",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}
