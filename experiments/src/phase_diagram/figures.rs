//! The figures of `phase-diagram`: a heat map per d and the collapse times.

use crate::{Report, Setup};
use attnflow::error::Result;
use attnflow::figures::{self, Axes, Series};

/// Cell edges centred on the sampled values.
fn edges(v: &[f64]) -> Vec<f64> {
    let mut e = Vec::with_capacity(v.len() + 1);
    e.push(v[0] - (v[1] - v[0]) / 2.0);
    for k in 1..v.len() {
        e.push((v[k - 1] + v[k]) / 2.0);
    }
    e.push(v[v.len() - 1] + (v[v.len() - 1] - v[v.len() - 2]) / 2.0);
    e
}

/// The heat map of the fraction values[time][beta] of one d: x = beta, y = t.
pub fn heatmap(
    setup: &Setup,
    report: &mut Report,
    (n, d, threshold): (usize, usize, f64),
    betas: &[f64],
    times: &[f64],
    values: &[Vec<f64>],
) -> Result<()> {
    let name = format!("phase_d{d}.png");
    figures::heatmap(
        &setup.path(&name),
        &format!(
            "Fraction of pairs with <x_i, x_j> >= {}: n = {n}, d = {d} (SA)",
            threshold
        ),
        "beta",
        "t",
        &edges(betas),
        &edges(times),
        values,
        (0.0, 1.0),
    )?;
    report.files.push(name);
    Ok(())
}

/// Collapse times per d, the symmetric reduction's and T.
pub fn collapse_times(
    setup: &Setup,
    report: &mut Report,
    (n, t_end): (usize, f64),
    betas: &[f64],
    t_sym: &[Option<f64>],
    collapsed: Vec<(usize, Vec<(f64, f64)>)>,
) -> Result<()> {
    let mut series: Vec<Series> = collapsed
        .into_iter()
        .map(|(d, points)| Series::markers(format!("d = {d}"), points))
        .collect();
    series.push(Series::line(
        "symmetric reduction (large d)",
        betas
            .iter()
            .zip(t_sym)
            .filter_map(|(&b, t)| t.filter(|t| *t <= 1.5 * t_end).map(|t| (b, t)))
            .collect(),
    ));
    series.push(Series::theory(
        format!("T = {t_end}"),
        vec![(betas[0], t_end), (betas[betas.len() - 1], t_end)],
    ));
    setup.lines(
        report,
        "collapse_time.png",
        &Axes {
            title: &format!("Collapse time: mean close-pair fraction reaches 1/2 (n = {n})"),
            x_label: "beta",
            y_label: "t_c",
            log_x: false,
            log_y: false,
        },
        &series,
    )
}
