//! The figures of `critical-scaling`.

use crate::error::Result;
use crate::experiments::{Report, Setup};
use crate::figures::{Axes, Series};

/// The vertical marker at the asymptotic gamma_c = 1 / (1 - c0).
fn asymptote(c0: f64) -> Series {
    Series::markers(
        "gamma = 1/(1 - c0)",
        vec![(1.0 / (1.0 - c0), c0), (1.0 / (1.0 - c0), 1.0)],
    )
}

/// The one-layer curves of one c0 (measured, then theory).
pub fn layer(
    setup: &Setup,
    report: &mut Report,
    (c0, d): (f64, usize),
    mut series: Vec<Series>,
    theory: Vec<Series>,
) -> Result<()> {
    series.extend(theory);
    series.push(asymptote(c0));
    setup.lines(
        report,
        &format!("layer_cos_c0_{c0}.png"),
        &Axes {
            title: &format!("One attention layer, beta = gamma ln n, c0 = {c0}, d = {d}"),
            x_label: "gamma",
            y_label: "mean pairwise cosine of outputs",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}

/// The flow curves of one c0.
pub fn flow(
    setup: &Setup,
    report: &mut Report,
    (c0, d, t_end): (f64, usize, f64),
    mut series: Vec<Series>,
) -> Result<()> {
    series.push(asymptote(c0));
    setup.lines(
        report,
        &format!("flow_cos_c0_{c0}.png"),
        &Axes {
            title: &format!("SA flow to t = {t_end}, beta = gamma ln n, c0 = {c0}, d = {d}"),
            x_label: "gamma",
            y_label: "mean pairwise cosine at time t",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}

/// gamma_c against c0 for every n, layer and flow, with 1 / (1 - c0).
#[allow(clippy::too_many_arguments)]
pub fn gamma_c(
    setup: &Setup,
    report: &mut Report,
    d: usize,
    c0s: &[f64],
    (layer_ns, gc_layer_by_c0): (&[usize], &[Vec<f64>]),
    (flow_ns, gc_flow_by_c0): (&[usize], &[Vec<f64>]),
    t_end: f64,
) -> Result<()> {
    let mut series = Vec::new();
    for (ni, &n) in layer_ns.iter().enumerate() {
        series.push(Series::markers(
            format!("one layer, n = {n}"),
            c0s.iter()
                .zip(gc_layer_by_c0)
                .map(|(&c, v)| (c, v[ni]))
                .collect(),
        ));
    }
    for (ni, &n) in flow_ns.iter().enumerate() {
        series.push(Series::markers(
            format!("flow t = {t_end}, n = {n}"),
            c0s.iter()
                .zip(gc_flow_by_c0)
                .map(|(&c, v)| (c, v[ni]))
                .collect(),
        ));
    }
    let c_lo = (c0s[0] - 0.1).max(0.0);
    let c_hi = c0s[c0s.len() - 1] + 0.2;
    series.push(Series::theory(
        "1 / (1 - c0) (n -> infinity)",
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
            title: &format!("Critical gamma of beta = gamma ln n (d = {d})"),
            x_label: "c0 = mean initial pairwise cosine",
            y_label: "gamma_c",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}
