//! The analysis of `chaos`: RMS distances between query sets, log-log and exponential fits of
//! the distance curves, and the reference lines of the figures.

use super::D;
use attnflow::cfm::distances;
use attnflow::stats::{Fit, fit_semilog, mean};

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

/// The log-log slope against n, fitted over `ns`, of the RMS distance between a context of n
/// tokens and an independent one of `n_ref` when each strays from the common limit at the rate
/// n^{-rate}: distance = (n^{-2 rate} + n_ref^{-2 rate})^{1/2} (up to a constant).
pub fn reference_slope(ns: &[f64], n_ref: f64, rate: f64) -> f64 {
    let y: Vec<f64> = ns
        .iter()
        .map(|&n| (n.powf(-2.0 * rate) + n_ref.powf(-2.0 * rate)).sqrt())
        .collect();
    attnflow::stats::fit_loglog(ns, &y).slope
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

    #[test]
    fn reference_slope_tends_to_minus_the_rate() {
        let ns = [32.0, 64.0, 128.0, 256.0];
        // An infinitely large reference leaves the pure power law.
        assert!((reference_slope(&ns, f64::INFINITY, 0.5) + 0.5).abs() < 1e-12);
        assert!((reference_slope(&ns, 1e30, 1.0 / 3.0) + 1.0 / 3.0).abs() < 1e-9);
        // A reference 8 times the largest n flattens it: at n = 256 against 2048 the squared
        // distance is 1/256 + 1/2048 = 1.125 / 256.
        let s = reference_slope(&ns, 2048.0, 0.5);
        assert!((-0.49..-0.46).contains(&s), "{s}");
        let t = reference_slope(&ns, 2048.0, 1.0 / 3.0);
        assert!(t > s + 0.1 && t < -0.25, "{t}");
    }
}
