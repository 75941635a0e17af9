//! The figures of `chaos`: distances against n (with fits and the -1/2 reference) and against
//! depth, for the frozen and the evolving context.

use super::analyse::{half_reference, power_line};
use super::sizes::{Evolving, Frozen};
use crate::{Report, Setup};
use attnflow::error::Result;
use attnflow::figures::{Axes, Series};
use attnflow::stats::Fit;

/// Every other curve (ending with the last), without t = 0 (log axis).
fn every_other(curves: &[Vec<(f64, f64)>], ns: &[usize]) -> Vec<Series> {
    let mut series = Vec::new();
    for (i, c) in curves.iter().enumerate() {
        if i % 2 == (curves.len() - 1) % 2 {
            series.push(Series::line(
                format!("n = {}", ns[i]),
                c.iter().copied().filter(|p| p.0 > 0.0).collect(),
            ));
        }
    }
    series
}

#[allow(clippy::too_many_arguments)]
pub fn frozen(
    setup: &Setup,
    report: &mut Report,
    sz: &Frozen,
    x: &[f64],
    curves: &[Vec<(f64, f64)>],
    (fit_end, fit_one): (&Fit, &Fit),
    at_one: Vec<f64>,
    at_end: Vec<f64>,
) -> Result<()> {
    let (kappa, beta, t_end) = (sz.kappa, sz.beta, sz.t_end);
    let series = vec![
        Series::markers(
            format!("t = {t_end}"),
            x.iter().copied().zip(at_end.iter().copied()).collect(),
        ),
        Series::line(
            format!(
                "fit t = {t_end}: slope {:.3} +- {:.3}",
                fit_end.slope, fit_end.slope_se
            ),
            power_line(fit_end, x[0], x[x.len() - 1]),
        ),
        Series::markers("t = 1", x.iter().copied().zip(at_one).collect()),
        Series::line(
            format!(
                "fit t = 1: slope {:.3} +- {:.3}",
                fit_one.slope, fit_one.slope_se
            ),
            power_line(fit_one, x[0], x[x.len() - 1]),
        ),
        Series::theory("reference slope -1/2", half_reference(x, &at_end)),
    ];
    setup.lines(
        report,
        "chaos_frozen_vs_n.png",
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
    setup.lines(
        report,
        "chaos_frozen_vs_t.png",
        &Axes {
            title: "Frozen vMF context: distance to the infinite twin along depth",
            x_label: "t (depth)",
            y_label: "RMS distance to the infinite-context twin",
            log_x: false,
            log_y: true,
        },
        &every_other(curves, &sz.ns),
    )
}

/// `x_all`, `xf`: all n and those of the fit; `yr`, `y_twin`: distances to the largest n
/// (all but the largest) and to the twin at t_fit.
#[allow(clippy::too_many_arguments)]
pub fn evolving(
    setup: &Setup,
    report: &mut Report,
    sz: &Evolving,
    (x_all, xf): (&[f64], &[f64]),
    (yr, y_twin): (&[f64], &[f64]),
    (fit_ref, fit_twin): (&Fit, &Fit),
    to_twin: &[Vec<(f64, f64)>],
    lambda1: f64,
) -> Result<()> {
    let (beta, t_end, t_fit) = (sz.beta, sz.t_end, sz.t_fit);
    let largest = *sz.ns.last().expect("sizes");
    let fit_max = sz.fit_max();
    let xr = &x_all[..sz.ns.len() - 1];
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
            power_line(fit_ref, xf[0], xf[xf.len() - 1]),
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
            power_line(fit_twin, x_all[0], x_all[x_all.len() - 1]),
        ),
        Series::theory("reference slope -1/2", half_reference(x_all, y_twin)),
    ];
    setup.lines(
        report,
        "chaos_evolving_vs_n.png",
        &Axes {
            title: &format!("Evolving uniform context (SA, beta = {beta}): queries vs n"),
            x_label: "context size n",
            y_label: "RMS distance",
            log_x: true,
            log_y: true,
        },
        &series,
    )?;
    let mut series = every_other(to_twin, &sz.ns);
    let last = to_twin.last().expect("sizes");
    let (t1, v1) = last[sz.steps()];
    series.push(Series::theory(
        format!("e^(lambda_1 t), lambda_1 = {lambda1:.3}"),
        (1..=4)
            .map(|k| {
                let t = t_end * k as f64 / 4.0;
                (t, v1 * (lambda1 * (t - t1)).exp())
            })
            .collect(),
    ));
    setup.lines(
        report,
        "chaos_evolving_vs_t.png",
        &Axes {
            title: "Evolving uniform context: distance to the infinite twin along depth",
            x_label: "t (depth)",
            y_label: "RMS |z_n(t) - z(0)|",
            log_x: false,
            log_y: true,
        },
        &series,
    )
}
