//! The analysis of `chaos`: RMS distances between query sets, log-log and exponential fits of
//! the distance curves, and the reference lines of the figures.

use super::D;
use crate::least_squares;
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

/// The log-log slope in n of a distance with its next-order term: ln y = a + s ln n + c / n,
/// fitted by least squares. The squared distance between a finite context's flow map and its
/// limit is a smooth function of an average of n iid terms, so its mean has an expansion in
/// powers of 1/n: y^2 = A n^{-2r} (1 + c/n + O(n^{-2})); the 1/n term is the bias a plain
/// power-law fit over small n turns into a steeper slope. Returns (s, c).
pub fn slope_with_next_order(ns: &[f64], ys: &[f64]) -> (f64, f64) {
    let rows: Vec<[f64; 3]> = ns.iter().map(|&n| [1.0, n.ln(), 1.0 / n]).collect();
    let y: Vec<f64> = ys.iter().map(|v| v.ln()).collect();
    let b = least_squares(&rows, &y, &vec![1.0; y.len()]);
    (b[1], b[2])
}

/// The weight K_l and growth rate lambda_l of each degree l = 1..=6 in the query's speed in a
/// uniform context, linearised: speed^2 = sum_l K_l chi_l e^{2 lambda_l t} / n. A degree-l
/// density perturbation g Y_l moves a point x at (a_l / (beta a_0)) g grad Y_l(x) (the
/// Funk-Hecke eigenvalue a_l of e^{beta <x, y>}) and grows at lambda_l = l (l + 1) a_l /
/// (beta a_0); the empirical measure's fluctuation puts variance 1/n on each of the 2l + 1
/// normalised harmonics of degree l, and |grad Y_l|^2 averages l (l + 1) over the sphere, so
/// K_l = (2l + 1) l (l + 1) (a_l / (beta a_0))^2, and chi_l (mean 1) is the draw's own
/// amplitude: chi^2 with 2l + 1 degrees of freedom over 2l + 1 (the queries' average of
/// |grad Y_l|^2 taken at its sphere mean). The seventh degree adds below 1e-9 at beta = 1.
fn speed_modes(beta: f64) -> Vec<(f64, f64)> {
    use attnflow::theory::modes::{funk_hecke_s2, uniform_instability_rate};
    let a0 = funk_hecke_s2(beta, 0);
    (1..=6usize)
        .map(|l| {
            let c = funk_hecke_s2(beta, l) / (beta * a0);
            let lf = l as f64;
            let k = (2.0 * lf + 1.0) * lf * (lf + 1.0) * c * c;
            (k, uniform_instability_rate(beta, l))
        })
        .collect()
}

/// The RMS query speed at time t, times n^{1/2}, averaged over draws ([`speed_modes`]).
pub fn linear_speed(beta: f64, t: f64) -> f64 {
    speed_modes(beta)
        .iter()
        .map(|(k, lambda)| k * (2.0 * lambda * t).exp())
        .sum::<f64>()
        .sqrt()
}

/// The mean over context draws of the exponential rate fitted to one draw's query speed at
/// `times` within `window`, as the linearised flow predicts it ([`speed_modes`]), by Monte
/// Carlo over `draws` amplitudes chi_l (a fixed seed): (mean, its Monte Carlo standard
/// error). Each draw's rate is pulled below lambda_1 by its own slower modes, by a draw-
/// dependent amount, so the mean rate is below the rate of the mean speed.
pub fn per_draw_rate(beta: f64, times: &[f64], window: (f64, f64), draws: usize) -> (f64, f64) {
    use rand::SeedableRng;
    use rand_distr::{ChiSquared, Distribution};
    let modes = speed_modes(beta);
    let chi: Vec<ChiSquared<f64>> = (1..=modes.len())
        .map(|l| ChiSquared::new((2 * l + 1) as f64).expect("positive degrees of freedom"))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xC4A05);
    let rates: Vec<f64> = (0..draws)
        .map(|_| {
            let amp: Vec<f64> = chi
                .iter()
                .zip(1..)
                .map(|(c, l)| c.sample(&mut rng) / (2 * l + 1) as f64)
                .collect();
            let curve: Vec<(f64, f64)> = times
                .iter()
                .map(|&t| {
                    let v2: f64 = modes
                        .iter()
                        .zip(&amp)
                        .map(|((k, lambda), a)| k * a * (2.0 * lambda * t).exp())
                        .sum();
                    (t, v2.sqrt())
                })
                .collect();
            exp_rate(&curve, window.0, window.1).slope
        })
        .collect();
    let (m, v) = attnflow::stats::mean_var(&rates);
    (m, (v / draws as f64).sqrt())
}

/// The time at which the largest context's perturbation n^{-1/2} e^{lambda_1 t} reaches 0.1,
/// past which the linearised flow no longer describes the growth (at n = 16384 and
/// lambda_1 = 0.626: t = 4.07; at n = 2048: 2.41).
pub fn linear_until(lambda1: f64, n: f64) -> f64 {
    (0.1 * n.sqrt()).ln() / lambda1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_order_slope_and_the_linear_speed() {
        // y^2 = 2 n^{-1} (1 + 12 / n): the plain fit is steeper than -1/2, this one is not.
        let ns: Vec<f64> = (0..9).map(|k| 64.0 * 2f64.powi(k)).collect();
        let ys: Vec<f64> = ns
            .iter()
            .map(|n| (2.0 / n * (1.0 + 12.0 / n)).sqrt())
            .collect();
        let plain = attnflow::stats::fit_loglog(&ns, &ys).slope;
        let (s, c) = slope_with_next_order(&ns, &ys);
        assert!(plain < -0.51, "{plain}");
        // ln y = ln(2 / n) / 2 + ln(1 + 12 / n) / 2, about 6 / n.
        assert!((s + 0.5).abs() < 2e-3 && (c - 6.0).abs() < 1.0, "{s} {c}");
        // beta = 1: the degree-2 mode carries 19 % of the degree-1 mode's speed^2 at t = 0.
        let v = |t: f64| linear_speed(1.0, t);
        let l1 = attnflow::theory::modes::uniform_instability_rate(1.0, 1);
        assert!((v(0.0).powi(2) - 0.7).abs() < 0.01, "{}", v(0.0));
        let times: Vec<f64> = (0..40).map(|k| 0.1 * k as f64 + 0.05).collect();
        let curve: Vec<(f64, f64)> = times.iter().map(|&t| (t, v(t))).collect();
        let one = exp_rate(&curve, 1.0, 4.0).slope;
        assert!((one / l1 - 0.978).abs() < 1e-3, "{one} {l1}");
        assert!((v(20.0).ln() - v(19.0).ln() - l1).abs() < 1e-4);
        // Per draw, the slower modes pull harder on average (Jensen): 0.600 against 0.612.
        let (per, mc) = per_draw_rate(1.0, &times, (1.0, 4.0), 20_000);
        assert!(mc < 3e-4 && (per - 0.600).abs() < 2e-3, "{per} +- {mc}");
        // Without the slower modes every draw grows at lambda_1.
        let (one_mode, _) = per_draw_rate(1e-3, &times, (1.0, 4.0), 100);
        let l1_small = attnflow::theory::modes::uniform_instability_rate(1e-3, 1);
        assert!(
            (one_mode - l1_small).abs() < 1e-3 * l1_small,
            "{one_mode} {l1_small}"
        );
        assert!((linear_until(l1, 16384.0) - 4.07).abs() < 0.01);
    }

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
