//! The analysis of `kde-modes`: the mode count of a sampled derivative, and the Kac-Rice count
//! of the Gaussian limit.

use std::f64::consts::TAU;

#[cfg(test)]
/// f(theta) = (1/n) sum_j exp(kappa (cos(theta - theta_j) - 1)).
pub fn density(theta: f64, angles: &[f64], kappa: f64) -> f64 {
    angles
        .iter()
        .map(|t| (kappa * ((theta - t).cos() - 1.0)).exp())
        .sum::<f64>()
        / angles.len() as f64
}

#[cfg(test)]
/// f'(theta) = -(kappa / n) sum_j sin(theta - theta_j) exp(kappa (cos(theta - theta_j) - 1)).
pub fn derivative(theta: f64, angles: &[f64], kappa: f64) -> f64 {
    -kappa
        * angles
            .iter()
            .map(|t| (theta - t).sin() * (kappa * ((theta - t).cos() - 1.0)).exp())
            .sum::<f64>()
        / angles.len() as f64
}

/// Local maxima of a periodic function from its derivative on a uniform grid: the sign changes
/// of f' from + to - (f'_i > 0 >= f'_{i+1}, cyclically). With `minima_too` (the deliberate
/// error `count-minima-too`) every sign change, maxima and minima, is counted.
pub fn count_modes(fp: &[f64], minima_too: bool) -> usize {
    let m = fp.len();
    (0..m)
        .filter(|&i| {
            let (a, b) = (fp[i], fp[(i + 1) % m]);
            (a > 0.0 && b <= 0.0) || (minima_too && a <= 0.0 && b > 0.0)
        })
        .count()
}

/// The expected number of modes on the circle in the Gaussian limit (many samples per
/// bandwidth, n >> beta^(1/2)): f' and f'' are then a stationary centred Gaussian pair,
/// uncorrelated at one point, with variances (1/n) (1/2pi) int K'^2 and (1/n) (1/2pi) int K''^2
/// (the kernel's derivatives integrate to 0 on the circle). Kac-Rice gives (1/pi)
/// sqrt(Var f'' / Var f') zeros of f' per radian, half of them maxima: in all
/// sqrt(int K''^2 / int K'^2), with K(u) = exp(kappa (cos u - 1)), K' = -kappa sin u K,
/// K'' = (kappa^2 sin^2 u - kappa cos u) K. Trapezoid rule on the circle (spectrally exact).
/// Limits: 1 as kappa -> 0 (one mode), sqrt(3 kappa / 2) as kappa -> infinity.
pub fn kac_rice_modes(kappa: f64) -> f64 {
    let m = ((64.0 * kappa.sqrt()).ceil() as usize).max(4096);
    let (mut a, mut b) = (0.0, 0.0);
    for i in 0..m {
        let u = TAU * i as f64 / m as f64;
        let k = (kappa * (u.cos() - 1.0)).exp();
        let k1 = -kappa * u.sin() * k;
        let k2 = (kappa * kappa * u.sin().powi(2) - kappa * u.cos()) * k;
        a += k1 * k1;
        b += k2 * k2;
    }
    (b / a).sqrt()
}

/// The grid for beta: m points, at least `per_bandwidth` per bandwidth kappa^(-1/2), at least
/// 256.
pub fn grid_points(kappa: f64, per_bandwidth: f64) -> usize {
    ((TAU * kappa.sqrt() * per_bandwidth).ceil() as usize).max(256)
}

/// The standard normal density.
fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (TAU).sqrt()
}

/// The line (the seed's setting): f(x) = (1/n) sum_j K(x - X_j), K(u) = exp(-beta u^2 / 2)
/// (bandwidth beta^(-1/2)), X_j iid N(0, 1). The density of local maxima at x by Kac-Rice
/// with the central limit for (f'(x), f''(x)) (many samples per bandwidth): a Gaussian pair
/// with means m_i = E K^(i)(x - X), variances and covariance (E[K^(i) K^(j)] - m_i m_j) / n;
/// rho(x) = p_{f'}(0) E[(-f'')^+ | f' = 0]. The expectations are integrals of the kernel
/// against the N(0, 1) density (trapezoid over +-12 bandwidths). Unlike the circle, the mean
/// slope m_1 = (p * K)' suppresses modes where the density falls steeply.
pub fn line_density_of_maxima(x: f64, beta: f64, n: usize) -> f64 {
    let w = 12.0 / beta.sqrt();
    let m = 480;
    let du = 2.0 * w / m as f64;
    let (mut m1, mut m2, mut a11, mut a22, mut a12) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..=m {
        let u = -w + i as f64 * du;
        let weight = if i == 0 || i == m { 0.5 } else { 1.0 } * du * phi(x - u);
        let k = (-0.5 * beta * u * u).exp();
        let k1 = -beta * u * k;
        let k2 = (beta * beta * u * u - beta) * k;
        m1 += weight * k1;
        m2 += weight * k2;
        a11 += weight * k1 * k1;
        a22 += weight * k2 * k2;
        a12 += weight * k1 * k2;
    }
    let nf = n as f64;
    let v1 = (a11 - m1 * m1) / nf;
    let v2 = (a22 - m2 * m2) / nf;
    let c = (a12 - m1 * m2) / nf;
    let mu = m2 - c * m1 / v1;
    let s = (v2 - c * c / v1).max(0.0).sqrt();
    let tail = if s > 0.0 {
        s * phi(mu / s) - mu * crate::normal_upper_tail(mu / s)
    } else {
        (-mu).max(0.0)
    };
    phi(m1 / v1.sqrt()) / v1.sqrt() * tail
}

/// The expected number of maxima in [-a, a] (Kac-Rice, central limit): the integral of
/// [`line_density_of_maxima`] by the trapezoid rule, 8 points per bandwidth.
pub fn line_kac_rice_modes(beta: f64, n: usize, a: f64) -> f64 {
    let m = ((2.0 * a * beta.sqrt() * 8.0).ceil() as usize).max(64);
    let dx = 2.0 * a / m as f64;
    (0..=m)
        .map(|i| {
            let x = -a + i as f64 * dx;
            let w = if i == 0 || i == m { 0.5 } else { 1.0 };
            w * line_density_of_maxima(x, beta, n)
        })
        .sum::<f64>()
        * dx
}

/// The half-width a of the dense region: n p(x) beta^(-1/2) >= per_bandwidth expected
/// samples per bandwidth for |x| <= a (p the N(0, 1) density), where the central limit
/// behind [`line_kac_rice_modes`] is meant to hold; None when even x = 0 has fewer.
pub fn dense_half_width(n: usize, beta: f64, per_bandwidth: f64) -> Option<f64> {
    let r = n as f64 / (per_bandwidth * (TAU * beta).sqrt());
    (r > 1.0).then(|| (2.0 * r.ln()).sqrt())
}

#[cfg(test)]
mod tests {
    use super::super::simulate::derivative_on_grid;
    use super::*;

    #[test]
    fn the_derivative_matches_finite_differences_and_the_grid() {
        let angles = [0.3, 1.1, 1.2, 4.0, 5.9];
        for kappa in [0.5, 10.0, 200.0] {
            for theta in [0.0, 0.7, 1.15, 3.0, 6.1] {
                let h = 1e-5;
                let fd = (density(theta + h, &angles, kappa) - density(theta - h, &angles, kappa))
                    / (2.0 * h);
                let d = derivative(theta, &angles, kappa);
                assert!(
                    (fd - d).abs() < 1e-6 * (1.0 + d.abs()),
                    "{kappa} {theta}: {fd} {d}"
                );
            }
            let m = 1000;
            let fp = derivative_on_grid(&angles, kappa, m);
            for i in [0, 17, 500, 999] {
                let exact = derivative(TAU * i as f64 / m as f64, &angles, kappa);
                assert!((fp[i] - exact).abs() < 1e-12 * kappa, "{kappa} {i}");
            }
        }
    }

    #[test]
    fn two_bumps_give_two_modes_and_one_bump_one() {
        // Two samples at 1 and 4 with a narrow kernel: two maxima, two minima.
        let fp = derivative_on_grid(&[1.0, 4.0], 50.0, 2000);
        assert_eq!(count_modes(&fp, false), 2);
        assert_eq!(count_modes(&fp, true), 4);
        // Two samples 0.1 apart with bandwidth 1: one maximum (the bumps merge).
        let fp = derivative_on_grid(&[1.0, 1.1], 1.0, 2000);
        assert_eq!(count_modes(&fp, false), 1);
        // At kappa = 50 (bandwidth 0.14) they are 0.7 bandwidths apart: still one mode; at
        // kappa = 2000 (bandwidth 0.022) two.
        assert_eq!(
            count_modes(&derivative_on_grid(&[1.0, 1.1], 50.0, 4000), false),
            1
        );
        assert_eq!(
            count_modes(&derivative_on_grid(&[1.0, 1.1], 2000.0, 8000), false),
            2
        );
    }

    #[test]
    fn the_kac_rice_count_has_its_limits() {
        assert!((kac_rice_modes(1e-4) - 1.0).abs() < 1e-3);
        for kappa in [1e3, 1e4, 1e5] {
            let r = kac_rice_modes(kappa) / (1.5 * kappa).sqrt();
            // The von Mises kernel is Gaussian up to O(1/kappa).
            assert!((r - 1.0).abs() < 2.0 / kappa, "{kappa}: {r}");
        }
        assert!(grid_points(100.0, 10.0) >= 628);
    }

    #[test]
    fn the_line_density_is_the_stationary_count_in_a_flat_dense_region() {
        // At x = 0 the mean slope vanishes, and where the noise of f'' dominates its mean
        // (beta^(3/2) >> n) the density of maxima is the stationary (1 / 2 pi)
        // sqrt(3 beta / 2), the circle's count per unit length.
        let beta = 10_000.0;
        let rho = line_density_of_maxima(0.0, beta, 10_000);
        let stationary = (1.5 * beta).sqrt() / TAU;
        // (The mean curvature m_2 = -0.01 against the noise s = 7.3 of f'' adds about
        // |m_2| sqrt(2 pi) / (2 s) = 2e-3.)
        assert!((rho / stationary - 1.0).abs() < 5e-3, "{rho} {stationary}");
        // With n large against beta^(3/2) the mean wins: one mode at 0, density ~ 0 beside.
        assert!(line_density_of_maxima(0.5, 400.0, 100_000_000) < 1e-6);
        // Far out, the steep mean slope suppresses modes.
        let stationary = (1.5f64 * 400.0).sqrt() / TAU;
        assert!(line_density_of_maxima(3.0, 400.0, 1_000_000) < 0.1 * stationary);
        assert!((crate::normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((crate::normal_upper_tail(1.959_963_985) - 0.025).abs() < 1e-7);
        assert!((crate::normal_upper_tail(-1.0) - 0.841_344_746).abs() < 1e-7);
        // The dense region: n p(a) / sqrt(beta) = per_bandwidth at its edge.
        let a = dense_half_width(10_000, 100.0, 4.0).unwrap();
        let per = 10_000.0 * phi(a) / 10.0;
        assert!((per - 4.0).abs() < 1e-9, "{per}");
        assert!(dense_half_width(10, 100.0, 4.0).is_none());
    }
}
