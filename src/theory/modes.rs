//! Linear instability of the uniform law under mean-field SA with Q = K = V = I
//! (docs/model.md §4): the growth rate of each density mode, on the circle and on S^2, and
//! the most unstable mode (the predicted cluster count of the fast phase).

/// The growth rate of the density mode cos(k theta) at the uniform law on the circle,
/// lambda_k = k^2 I_k(beta) / (beta I_0(beta)), with I_k / I_0 from the integral
/// int_0^pi exp(beta (cos u - 1)) cos(k u) du (trapezoid on a periodic integrand: exact to
/// round-off with this many nodes).
pub fn circle_growth_rate(k: usize, beta: f64) -> f64 {
    let m = 4096;
    let (mut num, mut den) = (0.0, 0.0);
    for j in 0..=m {
        let u = std::f64::consts::PI * j as f64 / m as f64;
        let w = if j == 0 || j == m { 0.5 } else { 1.0 };
        let e = w * (beta * (u.cos() - 1.0)).exp();
        num += e * (k as f64 * u).cos();
        den += e;
    }
    (k * k) as f64 * num / den / beta
}

/// The most unstable mode k* (the predicted number of clusters formed by the fast phase).
pub fn most_unstable_mode(beta: f64) -> usize {
    (1..=400)
        .max_by(|&a, &b| circle_growth_rate(a, beta).total_cmp(&circle_growth_rate(b, beta)))
        .unwrap_or(1)
}

/// Funk-Hecke eigenvalue of exp(beta <x, y>) on S^2 for degree l, against the normalised
/// uniform measure: (1/2) int_{-1}^{1} e^{beta t} P_l(t) dt (Simpson's rule).
pub fn funk_hecke_s2(beta: f64, l: usize) -> f64 {
    let k = 4000;
    let dt = 2.0 / k as f64;
    let mut s = 0.0;
    for i in 0..=k {
        let t = -1.0 + i as f64 * dt;
        let (mut p0, mut p1) = (1.0, t);
        let p = if l == 0 {
            1.0
        } else {
            for j in 1..l {
                let jf = j as f64;
                let p2 = ((2.0 * jf + 1.0) * t * p1 - jf * p0) / (jf + 1.0);
                p0 = p1;
                p1 = p2;
            }
            p1
        };
        let w = if i == 0 || i == k {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        s += w * (beta * t).exp() * p;
    }
    0.5 * s * dt / 3.0
}

/// Growth rate of degree-l density perturbations of the uniform law on S^2 under mean-field SA
/// with Q = K = V = I: l (l + 1) a_l(beta) / (beta a_0(beta)).
pub fn uniform_instability_rate(beta: f64, l: usize) -> f64 {
    let lf = l as f64;
    lf * (lf + 1.0) * funk_hecke_s2(beta, l) / (beta * funk_hecke_s2(beta, 0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn instability_rate_of_degree_one_is_two_a3_over_beta() {
        for beta in [0.5, 1.0, 3.0] {
            let want = 2.0 * crate::meanfield::bessel_ratio(3, beta) / beta;
            let got = super::uniform_instability_rate(beta, 1);
            assert!(
                (got / want - 1.0).abs() < 1e-8,
                "beta {beta}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn most_unstable_mode_is_near_sqrt_2_beta() {
        // lambda_k = k^2 I_k(beta) / (beta I_0(beta)) ~ (k^2 / beta) e^{-k^2 / (2 beta)}.
        for beta in [25.0, 100.0, 400.0] {
            let k = super::most_unstable_mode(beta) as f64;
            assert!(
                (k - (2.0 * beta).sqrt()).abs() <= 1.0,
                "beta {beta}: k* {k}"
            );
        }
        // I_1(1) / I_0(1) = 0.446390...
        let r = super::circle_growth_rate(1, 1.0);
        assert!((r - 0.446_389_965_6).abs() < 1e-8, "{r}");
    }

    #[test]
    fn funk_hecke_eigenvalues_have_their_closed_forms() {
        // (1/2) int e^{bt} dt = sinh b / b; (1/2) int t e^{bt} dt = cosh b / b - sinh b / b^2.
        for b in [0.5f64, 1.0, 4.0] {
            let a0 = b.sinh() / b;
            let a1 = b.cosh() / b - b.sinh() / (b * b);
            assert!(
                (super::funk_hecke_s2(b, 0) / a0 - 1.0).abs() < 1e-10,
                "beta {b}"
            );
            assert!(
                (super::funk_hecke_s2(b, 1) / a1 - 1.0).abs() < 1e-10,
                "beta {b}"
            );
        }
    }
}
