//! The theory of `empirical-bayes`: the Bayes posterior mean and risk of the priors used, and
//! the mean-field (n -> infinity) two-stage denoiser for a Gaussian prior. Pure functions.

/// The prior of the clean tokens in R^d: (1/2) N(mu e_1, s^2 I) + (1/2) N(-mu e_1, s^2 I).
/// mu = 0 is the Gaussian prior N(0, s^2 I).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Prior {
    pub mu: f64,
    pub s: f64,
}

impl Prior {
    pub fn gaussian(tau: f64) -> Self {
        Prior { mu: 0.0, s: tau }
    }
}

/// The Bayes posterior mean E[x | y] for y = x + sigma eps, eps ~ N(0, I), written into `out`.
/// With w = s^2 + sigma^2 and k = s^2 / w, each component's posterior mean is
/// k y + (1 - k) mu_c, and the responsibilities give E[mu_c | y] = mu tanh(mu y_1 / w) e_1:
/// x_hat = k y + (1 - k) mu tanh(mu y_1 / w) e_1 (linear shrinkage k y when mu = 0).
///
/// `wrong_prior` (mutation `wrong-prior`) returns instead the posterior mean of the Gaussian
/// prior with the mixture's mean and covariance, diag(s^2 + mu^2, s^2, ..): linear shrinkage.
pub fn posterior_mean(p: Prior, sigma: f64, y: &[f64], wrong_prior: bool, out: &mut [f64]) {
    let (s2, n2) = (p.s * p.s, sigma * sigma);
    let w = s2 + n2;
    let k = s2 / w;
    for (o, v) in out.iter_mut().zip(y) {
        *o = k * v;
    }
    if wrong_prior {
        let v1 = s2 + p.mu * p.mu;
        out[0] = v1 / (v1 + n2) * y[0];
    } else {
        out[0] += (1.0 - k) * p.mu * (p.mu * y[0] / w).tanh();
    }
}

/// The Bayes risk per coordinate, E|x_hat_B(y) - x|^2 / d. Each coordinate but the first is a
/// Gaussian problem with risk c = s^2 sigma^2 / w; the first adds the variance of the component
/// mean: (1 - k)^2 mu^2 E[sech^2(mu y_1 / w)], y_1 ~ N(mu, w) by symmetry (trapezoid rule on
/// +-12 standard deviations, 4001 points).
pub fn bayes_risk(p: Prior, sigma: f64, d: usize) -> f64 {
    let (s2, n2) = (p.s * p.s, sigma * sigma);
    let w = s2 + n2;
    let (k, c) = (s2 / w, s2 * n2 / w);
    let extra = if p.mu == 0.0 {
        0.0
    } else {
        let m = 4000;
        let (lo, step) = (-12.0, 24.0 / m as f64);
        let mut sum = 0.0;
        for i in 0..=m {
            let u = lo + i as f64 * step;
            let y1 = p.mu + w.sqrt() * u;
            let sech = 1.0 / (p.mu * y1 / w).cosh();
            let f = sech * sech * (-0.5 * u * u).exp() / (2.0 * std::f64::consts::PI).sqrt();
            sum += if i == 0 || i == m { 0.5 * f } else { f };
        }
        (1.0 - k).powi(2) * p.mu * p.mu * sum * step
    };
    c + extra / d as f64
}

/// Mean field of stage 1 for the Gaussian prior N(0, tau^2 I): the context law stays
/// N(0, v I) and one residual layer x <- x + dt (m_h(x) - x), with the Gaussian-kernel mean
/// m_h(x) = v / (v + h^2) x, maps v to v (1 - dt h^2 / (v + h^2))^2. Returns v_0..v_layers
/// from v_0 = tau^2 + sigma^2.
pub fn mean_field_variances(tau2: f64, sigma2: f64, h2: f64, dt: f64, layers: usize) -> Vec<f64> {
    let mut v = vec![tau2 + sigma2];
    for _ in 0..layers {
        let x = *v.last().unwrap();
        v.push(x * (1.0 - dt * h2 / (x + h2)).powi(2));
    }
    v
}

/// The risk per coordinate of stage 2 (bandwidth b, query the noisy input y) against the
/// mean-field context N(0, v I): x_hat = a y with a = v / (v + b^2), so
/// E(x - a y)^2 = tau^2 (1 - a)^2 + a^2 sigma^2; equal to the Bayes risk
/// tau^2 sigma^2 / (tau^2 + sigma^2) exactly when v = tau^2 and b = sigma.
pub fn mean_field_risk(tau2: f64, sigma2: f64, v: f64, b2: f64) -> f64 {
    let a = v / (v + b2);
    tau2 * (1.0 - a).powi(2) + a * a * sigma2
}

/// The depth-noise relation of the continuous flow dx/dt = m_h(x) - x (dt -> 0): dv/dt =
/// -2 h^2 v / (v + h^2) reaches v = tau^2 from tau^2 + sigma^2 at
/// t* = sigma^2 / (2 h^2) + ln(1 + sigma^2 / tau^2) / 2 (linear in 1/h^2, slope sigma^2 / 2:
/// at small bandwidth the flow removes noise variance at the rate 2 h^2 of a reverse heat flow).
pub fn optimal_depth(tau2: f64, sigma2: f64, h2: f64) -> f64 {
    sigma2 / (2.0 * h2) + (1.0 + sigma2 / tau2).ln() / 2.0
}

/// The layer step dt at which `layers` mean-field layers bring v exactly to tau^2 (bisection;
/// v_L decreases with dt on (0, 1]). None when even dt = 1 does not get there.
pub fn step_reaching_prior(tau2: f64, sigma2: f64, h2: f64, layers: usize) -> Option<f64> {
    let last = |dt: f64| {
        *mean_field_variances(tau2, sigma2, h2, dt, layers)
            .last()
            .unwrap()
    };
    if last(1.0) > tau2 {
        return None;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if last(mid) > tau2 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// The index of the smallest value (the first one on ties).
pub fn argmin(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, x)| if *x < v[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// Monte Carlo risk of `posterior_mean` for a prior, with its standard error.
    fn mc_risk(p: Prior, sigma: f64, d: usize, draws: usize, wrong: bool) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut v = Vec::with_capacity(draws);
        let (mut x, mut y, mut out) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        for _ in 0..draws {
            let sign = if rand::RngExt::random::<bool>(&mut rng) {
                1.0
            } else {
                -1.0
            };
            for i in 0..d {
                let z: f64 = StandardNormal.sample(&mut rng);
                x[i] = p.s * z + if i == 0 { sign * p.mu } else { 0.0 };
                let e: f64 = StandardNormal.sample(&mut rng);
                y[i] = x[i] + sigma * e;
            }
            posterior_mean(p, sigma, &y, wrong, &mut out);
            v.push(
                out.iter()
                    .zip(&x)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    / d as f64,
            );
        }
        attnflow::stats::mean_se(&v)
    }

    #[test]
    fn gaussian_bayes_risk_is_linear_shrinkage_and_matches_monte_carlo() {
        let p = Prior::gaussian(1.0);
        let r = bayes_risk(p, 0.5, 2);
        assert!((r - 0.25 / 1.25).abs() < 1e-12, "{r}");
        let (m, se) = mc_risk(p, 0.5, 2, 200_000, false);
        assert!((m - r).abs() < 4.0 * se, "MC {m} +- {se}, closed form {r}");
    }

    #[test]
    fn mixture_bayes_risk_quadrature_matches_monte_carlo() {
        let p = Prior { mu: 1.5, s: 0.5 };
        let r = bayes_risk(p, 0.7, 2);
        let (m, se) = mc_risk(p, 0.7, 2, 200_000, false);
        assert!((m - r).abs() < 4.0 * se, "MC {m} +- {se}, quadrature {r}");
        // The first coordinate's extra risk is real: well above the Gaussian part.
        let c = 0.25 * 0.49 / 0.74;
        assert!(r > c + 0.01, "{r} vs {c}");
        // The moment-matched Gaussian (mutation) is worse by far more than the error.
        let (w, wse) = mc_risk(p, 0.7, 2, 200_000, true);
        assert!(
            w > r + 5.0 * wse + 0.01,
            "wrong prior {w} +- {wse} vs Bayes {r}"
        );
    }

    #[test]
    fn mixture_at_mu_zero_is_the_gaussian() {
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        let y = [0.3, -1.2, 2.0];
        posterior_mean(Prior { mu: 0.0, s: 0.8 }, 0.6, &y, false, &mut a);
        posterior_mean(Prior::gaussian(0.8), 0.6, &y, true, &mut b);
        for i in 0..3 {
            assert!((a[i] - 0.64 / 1.0 * y[i]).abs() < 1e-12 && (a[i] - b[i]).abs() < 1e-12);
        }
        // Far from the origin along e_1 the mixture shrinks towards its component mean.
        posterior_mean(Prior { mu: 2.0, s: 0.5 }, 0.5, &[8.0, 0.0], false, &mut a);
        assert!((a[0] - (0.5 * 8.0 + 0.5 * 2.0)).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn mean_field_reaches_the_prior_at_the_depth_noise_time() {
        let (tau2, sigma2, h2) = (1.0, 0.25, 0.16);
        let t = optimal_depth(tau2, sigma2, h2);
        // Small steps: the layer recursion is Euler's method for dv/dt = -2 h^2 v / (v + h^2).
        let dt = 1e-4;
        let layers = (t / dt).round() as usize;
        let v = *mean_field_variances(tau2, sigma2, h2, dt, layers)
            .last()
            .unwrap();
        assert!((v - tau2).abs() < 1e-3, "v(t*) = {v}");
        // There the stage-2 risk is the Bayes risk, and anywhere else it is larger.
        let bayes = bayes_risk(Prior::gaussian(1.0), 0.5, 2);
        assert!((mean_field_risk(tau2, sigma2, tau2, sigma2) - bayes).abs() < 1e-12);
        for v in [0.5, 0.9, 1.1, 1.25] {
            assert!(mean_field_risk(tau2, sigma2, v, sigma2) > bayes + 1e-4);
        }
        // Layers of step dt reach tau^2 exactly at the bisected step.
        let dt = step_reaching_prior(tau2, sigma2, h2, 12).unwrap();
        let v = *mean_field_variances(tau2, sigma2, h2, dt, 12)
            .last()
            .unwrap();
        assert!((v - tau2).abs() < 1e-10, "dt {dt}, v {v}");
        assert!(
            (dt * 12.0 / t - 1.0).abs() < 0.1,
            "12 layers of {dt} vs t* = {t}"
        );
        assert_eq!(argmin(&[3.0, 1.0, 2.0, 1.0]), 1);
    }
}
