//! The theory of `synchronisation` (derived in the module doc): the exact drift of
//! log(1 - <x, y>) for two tokens under common or independent projected noise, the drift's
//! (perceptron's) stretching term, and the per-system fits that compare them.

use attnflow::model::Mlp;
use attnflow::model::geometry::tangent_project;
use attnflow::stats::fit_line;

/// Which law of the noise rate the theory states: the derived one or a deliberate error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// -sigma^2 (d - 1) (derived in the module doc).
    Ito,
    /// `no-ito-term`: the second-order Ito term -(1/2) d<u>/u^2 dropped: -sigma^2 (d - 3).
    NoItoTerm,
    /// `d-plus-1-over-2` (issue 24's wrong model): -sigma^2 (d + 1) / 2, which equals the
    /// right law at d = 3 only.
    DPlusOneOverTwo,
}

/// The noise part of the drift of log u, u = 1 - <x, y>, for two tokens driven by one common
/// Brownian motion on S^{d-1}: -sigma^2 (d - 1), exactly (for every u, not only near u = 0),
/// or the wrong `law`'s.
pub fn common_noise_rate(d: usize, sigma: f64, law: Law) -> f64 {
    let d = d as f64;
    -sigma
        * sigma
        * match law {
            Law::Ito => d - 1.0,
            Law::NoItoTerm => d - 3.0,
            Law::DPlusOneOverTwo => (d + 1.0) / 2.0,
        }
}

/// The top Lyapunov exponent of pure common noise (no drift): the rate of log |x - y|,
/// half that of log u: -(d - 1) sigma^2 / 2.
pub fn pure_noise_lyapunov(d: usize, sigma: f64) -> f64 {
    0.5 * common_noise_rate(d, sigma, Law::Ito)
}

/// The least-squares slope of y against x when each y_i is an independent estimate with
/// standard error se_i: the slope sum w_i y_i (w_i = (x_i - mean x) / Sxx) and its standard
/// error sqrt(sum w_i^2 se_i^2) (propagated from the points: valid for two points too).
pub fn slope_with_se(x: &[f64], y: &[f64], se: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let xm = x.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|v| (v - xm) * (v - xm)).sum();
    let w: Vec<f64> = x.iter().map(|v| (v - xm) / sxx).collect();
    let slope = w.iter().zip(y).map(|(w, y)| w * y).sum();
    let var: f64 = w.iter().zip(se).map(|(w, s)| w * w * s * s).sum();
    (slope, var.sqrt())
}

/// Independent noise, no drift: E<x, y>(t) = <x, y>(0) e^{-sigma^2 (d - 1) t} (each token's
/// first spherical harmonic decays at sigma^2 (d - 1) / 2), so E u(t) = 1 - (1 - u0)
/// e^{-sigma^2 (d - 1) t} -> 1: no synchronisation.
pub fn independent_mean_u(d: usize, sigma: f64, u0: f64, t: f64) -> f64 {
    1.0 - (1.0 - u0) * (-sigma * sigma * (d as f64 - 1.0) * t).exp()
}

/// The tangent field of the perceptron at a unit token: f(x) = P_x^perp W sigma(A x + b).
pub fn mlp_field(mlp: &Mlp, x: &[f64]) -> Vec<f64> {
    let mut f = vec![0.0; x.len()];
    mlp.add_to(x, &mut f);
    tangent_project(x, &mut f);
    f
}

/// The drift's contribution to d log u for two tokens with tangent fields fx at x and fy at y:
/// 2 <f(y) - f(x), y - x> / |y - x|^2 (exact for any drift tangent to the sphere; at merging
/// it is 2 <v, Df(x) v>, v the unit direction of separation; 0 for identical tokens, whose
/// direction is undefined).
pub fn stretching(x: &[f64], fx: &[f64], y: &[f64], fy: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for c in 0..x.len() {
        let dx = y[c] - x[c];
        num += (fy[c] - fx[c]) * dx;
        den += dx * dx;
    }
    if den == 0.0 { 0.0 } else { 2.0 * num / den }
}

/// Cumulative trapezoid integral of s over t (starts at 0).
pub fn cumulative_trapezoid(t: &[f64], s: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(t.len());
    let mut acc = 0.0;
    out.push(0.0);
    for k in 1..t.len() {
        acc += 0.5 * (s[k] + s[k - 1]) * (t[k] - t[k - 1]);
        out.push(acc);
    }
    out
}

/// One system's comparison: its pair-averaged log u(t_k) and the prediction
/// log u(0) + rate t_k + int_0^t_k S (S the pair-averaged stretching). Returns the least-squares
/// slopes of the measured curve, of the predicted curve, and of their difference (a martingale
/// under the theory, so its slope has mean 0 across systems).
pub fn system_slopes(t: &[f64], log_u: &[f64], stretch: &[f64], rate: f64) -> (f64, f64, f64) {
    let integral = cumulative_trapezoid(t, stretch);
    let predicted: Vec<f64> = t
        .iter()
        .zip(&integral)
        .map(|(t, i)| log_u[0] + rate * t + i)
        .collect();
    let residual: Vec<f64> = log_u.iter().zip(&predicted).map(|(a, b)| a - b).collect();
    (
        fit_line(t, log_u).slope,
        fit_line(t, &predicted).slope,
        fit_line(t, &residual).slope,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnflow::model::Activation;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn normalise(x: &mut [f64]) {
        let r = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        x.iter_mut().for_each(|v| *v /= r);
    }

    /// Euler-Maruyama with renormalisation (the engine's scheme) of `pairs` pairs on S^{d-1}
    /// under pure noise for `steps` steps of h; returns the mean of log u(T) - log u(0) and of
    /// u(T), and its standard error.
    fn pure_noise(d: usize, sigma: f64, h: f64, steps: usize, common: bool) -> (f64, f64, f64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut gauss = |k: usize| -> Vec<f64> {
            (0..k)
                .map(|_| <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng))
                .collect()
        };
        let pairs = 2000;
        let (mut dl, mut uu) = (Vec::new(), Vec::new());
        for _ in 0..pairs {
            let mut x = gauss(d);
            let mut y = gauss(d);
            normalise(&mut x);
            normalise(&mut y);
            let u0 = 1.0 - x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>();
            for _ in 0..steps {
                let xi = gauss(d);
                let eta = if common { xi.clone() } else { gauss(d) };
                for (z, n) in [(&mut x, &xi), (&mut y, &eta)] {
                    let mut p = n.clone();
                    tangent_project(z, &mut p);
                    z.iter_mut()
                        .zip(&p)
                        .for_each(|(a, b)| *a += sigma * h.sqrt() * b);
                    normalise(z);
                }
            }
            let u = 1.0 - x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>();
            dl.push(u.ln() - u0.ln());
            uu.push(u);
        }
        let (m, se) = attnflow::stats::mean_se(&dl);
        (m, se, attnflow::stats::mean(&uu))
    }

    #[test]
    fn common_noise_contracts_log_u_at_sigma2_times_d_minus_1() {
        // d = 3, sigma = 1, T = 1: E[log u(T) - log u(0)] = -2, whatever the start.
        let (d, sigma, h, steps) = (3, 1.0, 0.002, 500);
        let (m, se, _) = pure_noise(d, sigma, h, steps, true);
        let want = common_noise_rate(d, sigma, Law::Ito) * h * steps as f64;
        assert!(
            (m - want).abs() < 4.0 * se + 0.03 * want.abs(),
            "{m} +- {se} vs {want}"
        );
        // The mutated (no Ito term) rate is 0 at d = 3: far off.
        assert!((m - common_noise_rate(d, sigma, Law::NoItoTerm)).abs() > 10.0 * se);
        assert_eq!(pure_noise_lyapunov(5, 2.0), -8.0);
        // (d + 1) / 2 agrees with d - 1 at d = 3 only.
        assert_eq!(common_noise_rate(3, 1.0, Law::DPlusOneOverTwo), -2.0);
        assert_eq!(common_noise_rate(7, 1.0, Law::DPlusOneOverTwo), -4.0);
        assert_eq!(common_noise_rate(7, 1.0, Law::Ito), -6.0);
    }

    #[test]
    fn common_noise_at_d_6_follows_d_minus_1_not_d_plus_1_over_2() {
        let (d, sigma, h, steps) = (6, 1.0, 0.001, 400);
        let (m, se, _) = pure_noise(d, sigma, h, steps, true);
        let t = h * steps as f64;
        let want = common_noise_rate(d, sigma, Law::Ito) * t;
        assert!(
            (m - want).abs() < 4.0 * se + 0.03 * want.abs(),
            "{m} +- {se} vs {want}"
        );
        let wrong = common_noise_rate(d, sigma, Law::DPlusOneOverTwo) * t;
        assert!((m - wrong).abs() > 10.0 * se, "{m} +- {se} vs {wrong}");
    }

    #[test]
    fn the_propagated_slope_se_is_that_of_a_difference_for_two_points() {
        let (s, se) = slope_with_se(&[3.0, 6.0], &[-2.0, -5.0], &[0.3, 0.4]);
        assert!((s + 1.0).abs() < 1e-15 && (se - 0.5 / 3.0).abs() < 1e-15);
        let (s, _) = slope_with_se(&[1.0, 2.0, 3.0], &[1.0, 3.0, 5.0], &[1.0, 1.0, 1.0]);
        assert!((s - 2.0).abs() < 1e-15);
    }

    #[test]
    fn independent_noise_decorrelates() {
        let (d, sigma, h, steps) = (3, 1.0, 0.002, 250);
        let (_, _, mean_u) = pure_noise(d, sigma, h, steps, false);
        // Uniform starts: E u0 = 1, so E u(t) = 1 at all times.
        assert!((mean_u - 1.0).abs() < 0.05, "{mean_u}");
        let u = independent_mean_u(3, 1.0, 0.0, 0.5);
        assert!((u - (1.0 - (-1.0f64).exp())).abs() < 1e-15);
        assert!((independent_mean_u(4, 2.0, 0.3, 50.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn stretching_of_a_linear_field_is_its_rayleigh_quotient() {
        // A rotation field f(x) = J x (J antisymmetric) is an isometry flow: no stretching.
        let rot = |x: &[f64]| vec![-x[1], x[0], 0.0];
        let (x, y) = ([1.0, 0.0, 0.0], [0.6, 0.8, 0.0]);
        assert!(stretching(&x, &rot(&x), &y, &rot(&y)).abs() < 1e-15);
        // The gradient field of the height x_3 on S^2, f(x) = P_x e_3 = e_3 - x_3 x, has
        // <v, Df(x) v> = -x_3 for every unit tangent v; along a parallel at latitude 30 deg,
        // f(y) - f(x) = -x_3 (y - x) exactly: 2 <v, Df v> = -2 sin(30 deg) = -1.
        let grad = |x: &[f64]| {
            let mut f = vec![0.0, 0.0, 1.0];
            tangent_project(x, &mut f);
            f
        };
        let e: f64 = 1e-6;
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let x = [c, 0.0, s];
        let y = [c * e.cos(), c * e.sin(), s];
        let k = stretching(&x, &grad(&x), &y, &grad(&y));
        assert!((k + 1.0).abs() < 1e-5, "{k}");
    }

    #[test]
    fn mlp_field_is_tangent_and_slopes_recover_a_known_rate() {
        let mlp = Mlp {
            hidden: 2,
            w: vec![1.0, -0.5, 0.3, 0.2, 0.0, 1.0],
            a: vec![0.5, 0.1, -0.2, 0.3, 0.3, 0.3],
            b: vec![0.1, -0.4],
            activation: Activation::Gelu,
        };
        let x = [0.0, 0.6, 0.8];
        let f = mlp_field(&mlp, &x);
        assert!(f.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>().abs() < 1e-15);
        // log u = 0.1 - 2 t + int S, S = 0.5 + cos t: residual slope 0, predicted slope of
        // the least-squares line of 0.1 - 1.5 t + sin t.
        let t: Vec<f64> = (0..=400).map(|k| k as f64 * 0.01).collect();
        let s: Vec<f64> = t.iter().map(|t| 0.5 + t.cos()).collect();
        let lu: Vec<f64> = t.iter().map(|t| 0.1 - 1.5 * t + t.sin()).collect();
        let (measured, predicted, residual) = system_slopes(&t, &lu, &s, -2.0);
        assert!(residual.abs() < 1e-5, "{residual}");
        assert!((measured - predicted).abs() < 1e-5);
        let direct = fit_line(&t, &lu).slope;
        assert!((measured - direct).abs() < 1e-12);
    }
}
