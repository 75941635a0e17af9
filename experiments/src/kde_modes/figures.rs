//! The CSV and the figure of `kde-modes`: the circle's mean mode counts against beta per n
//! (with the Kac-Rice count and the metastable count sqrt(2 beta)), the line's scan.

use super::LinePoint;
use super::analyse::kac_rice_modes;
use crate::{Report, Setup};
use attnflow::error::Result;
use attnflow::figures::{Axes, Series};

/// The theory curves over `betas` (sorted, distinct): Kac-Rice and the metastable count.
pub fn theory(betas: &[f64]) -> [Series; 2] {
    [
        Series::theory(
            "Kac-Rice sqrt(int K''^2 / int K'^2) ~ sqrt(3 beta / 2)",
            betas.iter().map(|&b| (b, kac_rice_modes(b))).collect(),
        ),
        Series::theory(
            "metastable count sqrt(2 beta)",
            betas.iter().map(|&b| (b, (2.0 * b).sqrt())).collect(),
        ),
    ]
}

/// kde_modes.png: the circle's series (each n's counts, then the theory curves).
pub fn modes(setup: &Setup, report: &mut Report, series: &[Series]) -> Result<()> {
    setup.lines(
        report,
        "kde_modes.png",
        &Axes {
            title: "Modes of the von Mises KDE of n uniform angles",
            x_label: "beta (bandwidth beta^-1/2)",
            y_label: "mean number of modes",
            log_x: true,
            log_y: true,
        },
        series,
    )
}

/// kde_modes.csv: the circle's rows (n, beta, mean modes, its se, Kac-Rice).
pub fn circle_csv(setup: &Setup, report: &mut Report, rows: &[Vec<f64>]) -> Result<()> {
    setup.csv(
        report,
        "kde_modes.csv",
        &["n", "beta", "modes", "modes_se", "kac_rice"],
        rows,
    )
}

/// kde_modes_line.csv: every point of the line's scan.
pub fn line_csv(setup: &Setup, report: &mut Report, points: &[LinePoint]) -> Result<()> {
    let rows: Vec<Vec<f64>> = points
        .iter()
        .map(|p| {
            vec![
                p.n as f64,
                p.beta,
                p.dense_half_width,
                p.modes_dense,
                p.modes_dense_se,
                p.kac_rice_dense,
                p.modes_total,
                p.modes_total_se,
            ]
        })
        .collect();
    setup.csv(
        report,
        "kde_modes_line.csv",
        &[
            "n",
            "beta",
            "dense_half_width",
            "modes_dense",
            "modes_dense_se",
            "kac_rice_dense",
            "modes_total",
            "modes_total_se",
        ],
        &rows,
    )
}
