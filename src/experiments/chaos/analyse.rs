//! The analysis of `chaos`: RMS distances between query sets, log-log and exponential fits of
//! the distance curves, and the reference lines of the figures.

use super::D;
use crate::cfm::distances;
use crate::stats::{Fit, fit_semilog, mean};

/// RMS over tokens of the distance between matching tokens.
pub fn rms(a: &[f64], b: &[f64]) -> f64 {
    let dist = distances(a, b, D);
    (dist.iter().map(|v| v * v).sum::<f64>() / dist.len() as f64).sqrt()
}

/// A line exp(intercept) x^slope over [x0, x1] (for log-log figures).
pub fn power_line(f: &Fit, x0: f64, x1: f64) -> Vec<(f64, f64)> {
    [x0, x1]
        .iter()
        .map(|&x| (x, (f.intercept + f.slope * x.ln()).exp()))
        .collect()
}

/// The -1/2 reference through the geometric mean of the data.
pub fn half_reference(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    let lx = mean(&xs.iter().map(|v| v.ln()).collect::<Vec<_>>());
    let ly = mean(&ys.iter().map(|v| v.ln()).collect::<Vec<_>>());
    let f = Fit {
        slope: -0.5,
        slope_se: 0.0,
        intercept: ly + 0.5 * lx,
        r2: 1.0,
    };
    power_line(&f, xs[0], xs[xs.len() - 1])
}

/// Exponential rate: slope of ln y against t over the points with t in [t0, t1].
pub fn exp_rate(curve: &[(f64, f64)], t0: f64, t1: f64) -> Fit {
    let pts: Vec<&(f64, f64)> = curve
        .iter()
        .filter(|p| p.0 >= t0 - 1e-9 && p.0 <= t1 + 1e-9 && p.1 > 0.0)
        .collect();
    fit_semilog(
        &pts.iter().map(|p| p.0).collect::<Vec<_>>(),
        &pts.iter().map(|p| p.1).collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_reference_lines() {
        let curve: Vec<(f64, f64)> = (0..=40)
            .map(|k| {
                let t = 0.1 * k as f64;
                (t, 0.01 * (0.7 * t).exp())
            })
            .collect();
        let f = exp_rate(&curve, 2.0, 4.0);
        assert!((f.slope - 0.7).abs() < 1e-12, "{f:?}");
        // The reference line passes through the geometric mean with slope -1/2.
        let xs = [100.0, 400.0, 1600.0];
        let ys = [0.1, 0.05, 0.025];
        let line = half_reference(&xs, &ys);
        assert_eq!(line.len(), 2);
        assert!((line[0].1 - 0.1).abs() < 1e-12 && (line[1].1 - 0.025).abs() < 1e-12);
        let a = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let b = [0.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        assert!((rms(&a, &b) - 1.0).abs() < 1e-12);
    }
}
