//! The theory of `homogenisation` (derived in the module doc): the per-layer covariance of the
//! random drift, the drifts of the homogenised SDE for the pairwise cosines and for a token's
//! overlap with its start, and their closed forms at beta = 0. Pure functions, tested here.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// sigma^2 = h c^2 H s^2: the per-unit-time variance scale of the summed random drift
/// (c = 1 for the sum over heads, 1/H for the mean).
pub fn sigma2(h: f64, heads: usize, mean: bool, scale: f64) -> f64 {
    let c = if mean { 1.0 / heads as f64 } else { 1.0 };
    h * c * c * heads as f64 * scale * scale
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// G_ik = E_{Q,K} <y_i, y_k> for one system x [n, d], y_i = sum_j w_ij x_j the softmax average
/// with scores beta <Q x_i, K x_j>, Q, K iid N(0, s^2 / d) entries. At beta = 0, y_i = the
/// mean of the tokens and G_ik = |mean|^2 exactly; otherwise a Monte Carlo mean over `draws`
/// draws of (Q, K) from `seed` (unbiased).
pub fn output_gram(
    x: &[f64],
    d: usize,
    beta: f64,
    scale: f64,
    draws: usize,
    seed: u64,
) -> Vec<f64> {
    let n = x.len() / d;
    if beta == 0.0 {
        let mut m = vec![0.0; d];
        for t in x.chunks(d) {
            m.iter_mut().zip(t).for_each(|(a, b)| *a += b / n as f64);
        }
        return vec![dot(&m, &m); n * n];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sd = scale / (d as f64).sqrt();
    let mut g = vec![0.0; n * n];
    let draw = |rng: &mut ChaCha8Rng| -> Vec<f64> {
        (0..d * d)
            .map(|_| sd * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect()
    };
    let apply = |m: &[f64], v: &[f64]| -> Vec<f64> { m.chunks(d).map(|r| dot(r, v)).collect() };
    for _ in 0..draws {
        let (q, k) = (draw(&mut rng), draw(&mut rng));
        let qx: Vec<Vec<f64>> = x.chunks(d).map(|t| apply(&q, t)).collect();
        let kx: Vec<Vec<f64>> = x.chunks(d).map(|t| apply(&k, t)).collect();
        let y: Vec<Vec<f64>> = qx
            .iter()
            .map(|qi| {
                let s: Vec<f64> = kx.iter().map(|kj| beta * dot(qi, kj)).collect();
                let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|v| (v - mx).exp()).collect();
                let z: f64 = w.iter().sum();
                let mut yi = vec![0.0; d];
                for (wj, xj) in w.iter().zip(x.chunks(d)) {
                    yi.iter_mut().zip(xj).for_each(|(a, b)| *a += wj / z * b);
                }
                yi
            })
            .collect();
        for i in 0..n {
            for k in 0..n {
                g[i * n + k] += dot(&y[i], &y[k]) / draws as f64;
            }
        }
    }
    g
}

/// The drift of the mean pairwise cosine under the homogenised SDE, per unit depth time:
/// the mean over pairs i < k of (sigma2 / d) [G_ik (d - 2 + rho_ik^2) - rho_ik (d - 1)
/// (G_ii + G_kk) / 2].
#[cfg(test)]
pub fn cosine_drift(x: &[f64], g: &[f64], d: usize, sigma2: f64) -> f64 {
    cosine_drift_with(x, g, d, sigma2, d as f64 - 1.0)
}

/// [`cosine_drift`] with the Ito factor (d - 1) replaced by `dm1` (the wrong model
/// `d-plus-1-over-2` passes (d + 1) / 2).
pub fn cosine_drift_with(x: &[f64], g: &[f64], d: usize, sigma2: f64, dm1: f64) -> f64 {
    let n = x.len() / d;
    let df = d as f64;
    let mut s = 0.0;
    for i in 0..n {
        for k in i + 1..n {
            let rho = dot(&x[i * d..(i + 1) * d], &x[k * d..(k + 1) * d]);
            s += g[i * n + k] * (df - 2.0 + rho * rho)
                - rho * dm1 * (g[i * n + i] + g[k * n + k]) / 2.0;
        }
    }
    sigma2 / df * s / (n * (n - 1) / 2) as f64
}

/// The drift of the mean of 1 - <x_i, x_i(0)> per unit depth time:
/// mean_i (sigma2 (d - 1) / (2 d)) G_ii <x_i, x_i(0)>. At x = x0 it is half the rate of the
/// mean squared displacement |x_i - x_i(0)|^2.
#[cfg(test)]
pub fn overlap_drift(x: &[f64], x0: &[f64], g: &[f64], d: usize, sigma2: f64) -> f64 {
    overlap_drift_with(x, x0, g, d, sigma2, d as f64 - 1.0)
}

/// [`overlap_drift`] with the factor (d - 1) replaced by `dm1`.
pub fn overlap_drift_with(
    x: &[f64],
    x0: &[f64],
    g: &[f64],
    d: usize,
    sigma2: f64,
    dm1: f64,
) -> f64 {
    let n = x.len() / d;
    let df = d as f64;
    (0..n)
        .map(|i| {
            let r = i * d..(i + 1) * d;
            sigma2 * dm1 / (2.0 * df) * g[i * n + i] * dot(&x[r.clone()], &x0[r])
        })
        .sum::<f64>()
        / n as f64
}

/// The mean over pairs i < k of <x_i, x_k>.
pub fn mean_cosine(x: &[f64], d: usize) -> f64 {
    let n = x.len() / d;
    let mut s = 0.0;
    for i in 0..n {
        for k in i + 1..n {
            s += dot(&x[i * d..(i + 1) * d], &x[k * d..(k + 1) * d]);
        }
    }
    s / (n * (n - 1) / 2) as f64
}

/// The mean over tokens of 1 - <x_i, x_i(0)> (half the mean squared displacement).
pub fn mean_overlap_gap(x: &[f64], x0: &[f64], d: usize) -> f64 {
    let n = x.len() / d;
    (0..n)
        .map(|i| 1.0 - dot(&x[i * d..(i + 1) * d], &x0[i * d..(i + 1) * d]))
        .sum::<f64>()
        / n as f64
}

/// The expected initial drift of the mean pairwise cosine at beta = 0 from n iid uniform
/// tokens on S^{d-1}: (sigma2 / d) E[|mean|^2 (1 - rho)(d - 2 - rho)]
/// = (sigma2 / (n d)) [d - 2 + 1/d - 2 (d - 1) / (n d)] (E rho = 0, E rho^2 = 1/d,
/// E rho^3 = 0; only the pair's own term of |mean|^2 correlates with it).
pub fn initial_cosine_rate_beta0(n: usize, d: usize, sigma2: f64) -> f64 {
    let (nf, df) = (n as f64, d as f64);
    sigma2 / (nf * df) * (df - 2.0 + 1.0 / df - 2.0 * (df - 1.0) / (nf * df))
}

/// The expected initial mean squared displacement rate at beta = 0 from n iid uniform tokens:
/// sigma2 (d - 1) / d E|mean|^2 = sigma2 (d - 1) / (n d).
pub fn initial_msd_rate_beta0(n: usize, d: usize, sigma2: f64) -> f64 {
    sigma2 * (d as f64 - 1.0) / (n as f64 * d as f64)
}

/// The integral of f over the sorted times t (trapezoid rule), cumulative: out[k] = int_0^t_k.
pub fn cumulative_trapezoid(t: &[f64], f: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; t.len()];
    for k in 1..t.len() {
        out[k] = out[k - 1] + 0.5 * (t[k] - t[k - 1]) * (f[k] + f[k - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnflow::stats::mean_se;

    fn uniform_tokens(n: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let mut x: Vec<f64> = (0..n * d)
            .map(|_| <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect();
        for t in x.chunks_mut(d) {
            let r = dot(t, t).sqrt();
            t.iter_mut().for_each(|v| *v /= r);
        }
        x
    }

    #[test]
    fn sigma2_scales_with_heads_as_sum_or_mean() {
        assert!((sigma2(0.1, 10, false, 1.0) - 1.0).abs() < 1e-12);
        assert!((sigma2(0.1, 10, true, 1.0) - 0.01).abs() < 1e-12);
        assert!((sigma2(0.5, 1, true, 2.0) - 2.0).abs() < 1e-12);
    }

    /// At beta = 0 every output is the mean; for beta > 0 the Monte Carlo G is symmetric, its
    /// diagonal lies in [|mean|^2 - 0.02, 1] and grows with beta (sharper attention).
    #[test]
    fn output_gram_is_the_mean_at_beta_zero_and_sharpens_with_beta() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, d) = (6, 5);
        let x = uniform_tokens(n, d, &mut rng);
        let g0 = output_gram(&x, d, 0.0, 1.0, 1, 0);
        let mut m = vec![0.0; d];
        for t in x.chunks(d) {
            m.iter_mut().zip(t).for_each(|(a, b)| *a += b / n as f64);
        }
        assert!(g0.iter().all(|v| (v - dot(&m, &m)).abs() < 1e-14));
        let diag = |g: &[f64]| (0..n).map(|i| g[i * n + i]).sum::<f64>() / n as f64;
        let g1 = output_gram(&x, d, 1.0, 1.0, 400, 1);
        let g8 = output_gram(&x, d, 8.0, 1.0, 400, 1);
        for i in 0..n {
            for k in 0..n {
                assert!((g1[i * n + k] - g1[k * n + i]).abs() < 1e-12);
            }
        }
        assert!(diag(&g1) > dot(&m, &m) - 0.02 && diag(&g8) <= 1.0 + 1e-12);
        assert!(diag(&g8) > diag(&g1) + 0.1, "{} {}", diag(&g8), diag(&g1));
    }

    /// With G = |mean|^2 (beta = 0) and every pairwise cosine equal to c, the cosine drift is
    /// (sigma2 / d) |mean|^2 (1 - c)(d - 2 - c), |mean|^2 = (1 + (n - 1) c) / n.
    #[test]
    fn cosine_drift_of_a_symmetric_configuration() {
        let (n, d, c) = (4usize, 6usize, 0.3f64);
        // x_i = sqrt(c) e_0 + sqrt(1 - c) e_{i+1}: pairwise cosine c.
        let mut x = vec![0.0; n * d];
        for i in 0..n {
            x[i * d] = c.sqrt();
            x[i * d + i + 1] = (1.0 - c).sqrt();
        }
        let g = output_gram(&x, d, 0.0, 1.0, 1, 0);
        let m2 = (1.0 + (n as f64 - 1.0) * c) / n as f64;
        let want = 0.7 / d as f64 * m2 * (1.0 - c) * (d as f64 - 2.0 - c);
        assert!((cosine_drift(&x, &g, d, 0.7) - want).abs() < 1e-12);
        assert!((mean_cosine(&x, d) - c).abs() < 1e-12);
        // The overlap drift at x = x0 is sigma2 (d - 1) / (2 d) |mean|^2.
        let want = 0.7 * 5.0 / 12.0 * m2;
        assert!((overlap_drift(&x, &x, &g, d, 0.7) - want).abs() < 1e-12);
        // The wrong model (d + 1) / 2 in place of d - 1: 3.5 / 5 of the overlap drift.
        let wrong = overlap_drift_with(&x, &x, &g, d, 0.7, 3.5);
        assert!((wrong - 0.7 * want).abs() < 1e-12);
        let shift = cosine_drift_with(&x, &g, d, 0.7, 3.5) - cosine_drift(&x, &g, d, 0.7);
        assert!((shift - 0.7 / d as f64 * c * 1.5 * 2.0 * m2 / 2.0).abs() < 1e-12);
        assert_eq!(mean_overlap_gap(&x, &x, d), 0.0);
    }

    /// The closed forms at beta = 0 are the averages of the drifts over iid uniform tokens
    /// (Monte Carlo over 40000 configurations, within 4 standard errors).
    #[test]
    fn closed_forms_at_beta_zero_match_uniform_averages() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (n, d) in [(3usize, 3usize), (8, 4), (5, 12)] {
            let (mut c, mut u) = (Vec::new(), Vec::new());
            for _ in 0..40_000 {
                let x = uniform_tokens(n, d, &mut rng);
                let g = output_gram(&x, d, 0.0, 1.0, 1, 0);
                c.push(cosine_drift(&x, &g, d, 1.0));
                u.push(2.0 * overlap_drift(&x, &x, &g, d, 1.0));
            }
            let ((mc, sc), (mu, su)) = (mean_se(&c), mean_se(&u));
            let (wc, wu) = (
                initial_cosine_rate_beta0(n, d, 1.0),
                initial_msd_rate_beta0(n, d, 1.0),
            );
            assert!(
                (mc - wc).abs() < 4.0 * sc,
                "n {n} d {d}: {mc} +- {sc} vs {wc}"
            );
            assert!(
                (mu - wu).abs() < 4.0 * su,
                "n {n} d {d}: {mu} +- {su} vs {wu}"
            );
        }
    }

    #[test]
    fn trapezoid_is_exact_for_lines() {
        let t = [0.0, 0.5, 1.5, 2.0];
        let f: Vec<f64> = t.iter().map(|v| 1.0 + 2.0 * v).collect();
        let i = cumulative_trapezoid(&t, &f);
        for (ti, ii) in t.iter().zip(&i) {
            assert!((ii - (ti + ti * ti)).abs() < 1e-12);
        }
    }
}
