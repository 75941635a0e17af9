//! The analysis of `lost-in-the-middle`: control variates, the linear-response theory and the
//! shape of a profile (smoothed argmin with a bootstrap standard error, start and end excess
//! over the minimum).

// Index loops read best in the small dense linear algebra below.
#![allow(clippy::needless_range_loop)]

use super::simulate::Samples;
use crate::solve;
use attnflow::stats::{column_mean_se, mean_se, mean_var};

/// Control variates: per position, the least-squares fit of the estimator on controls of
/// known mean 0 (N dtheta_N/dtheta_s, naive - estimator, cos(k phi0) for k = 1..3), and the
/// per-prompt samples with the fitted controls subtracted (same mean, smaller variance).
pub fn adjusted(s: &Samples) -> Vec<Vec<f64>> {
    let g = s.jac.len();
    let len = s.jac[0].len();
    let mut out = vec![vec![0.0; len]; g];
    const K: usize = 5;
    for p in 0..len {
        let ctrl = |i: usize| -> [f64; K] {
            let f = s.phi0[i][p];
            [
                s.sens[i][p],
                s.naive[i][p] - s.jac[i][p],
                f.cos(),
                (2.0 * f).cos(),
                (3.0 * f).cos(),
            ]
        };
        // Centre by the sample means (regression with intercept), solve the normal equations.
        let mut mc = [0.0; K];
        let mut my = 0.0;
        for i in 0..g {
            let c = ctrl(i);
            for k in 0..K {
                mc[k] += c[k] / g as f64;
            }
            my += s.jac[i][p] / g as f64;
        }
        let mut a = [[0.0; K]; K];
        let mut b = [0.0; K];
        for i in 0..g {
            let c = ctrl(i);
            for k in 0..K {
                b[k] += (c[k] - mc[k]) * (s.jac[i][p] - my);
                for l in 0..K {
                    a[k][l] += (c[k] - mc[k]) * (c[l] - mc[l]);
                }
            }
        }
        let coef = solve(a, b);
        for i in 0..g {
            let c = ctrl(i);
            out[i][p] = s.jac[i][p] - (0..K).map(|k| coef[k] * c[k]).sum::<f64>();
        }
    }
    out
}

/// Modified Bessel function I_k(x) by its series.
pub fn bessel_i(k: u32, x: f64) -> f64 {
    let mut term = (0.5 * x).powi(k as i32) / (1..=k).map(f64::from).product::<f64>();
    let mut sum = term;
    for m in 1..200 {
        let m = m as f64;
        term *= 0.25 * x * x / (m * (m + k as f64));
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// Linear response (first-order correlations of iid uniform tokens, the kinetic theory's
/// correlation equation to linear order): with C_i = N E[e^{i(theta_i(t) - theta_s(0))}],
/// dC_i/dt = kappa sum_{j < i} p_ij C_j, C(0) = N e_s, where kappa is the first Fourier
/// coefficient of the interaction (USA: I_1(beta)/beta; SA: I_1(beta)/(beta I_0(beta))) and
/// p_ij the ALiBi positional weights. So I(s, t) = N [exp(kappa t P)]_{N s}: the row
/// r = e_N^T exp(kappa t P) solves dr/dt = kappa r P (RK4, f64). Valid while I << N.
pub fn linear_response(n: usize, lambda: f64, kappa: f64, t: f64) -> Vec<f64> {
    let a = lambda / n as f64;
    // P[i][j] for j < i (0-based), normalised over j <= i.
    let norm: Vec<f64> = (0..n)
        .map(|i| (0..=i).map(|j| (-a * (i - j) as f64).exp()).sum())
        .collect();
    let apply = |r: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; n];
        for i in 0..n {
            if r[i] == 0.0 {
                continue;
            }
            let c = kappa * r[i] / norm[i];
            for (j, o) in out.iter_mut().enumerate().take(i) {
                *o += c * (-a * (i - j) as f64).exp();
            }
        }
        out
    };
    let steps = (t / 0.01).ceil().max(1.0) as usize;
    let h = t / steps as f64;
    let mut r = vec![0.0; n];
    r[n - 1] = 1.0;
    for _ in 0..steps {
        let k1 = apply(&r);
        let y: Vec<f64> = r.iter().zip(&k1).map(|(x, k)| x + 0.5 * h * k).collect();
        let k2 = apply(&y);
        let y: Vec<f64> = r.iter().zip(&k2).map(|(x, k)| x + 0.5 * h * k).collect();
        let k3 = apply(&y);
        let y: Vec<f64> = r.iter().zip(&k3).map(|(x, k)| x + h * k).collect();
        let k4 = apply(&y);
        for i in 0..n {
            r[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
    r[..n - 1].iter().map(|v| v * n as f64).collect()
}

/// The first-order coefficient of Fourier mode k of the USA interaction on the circle, in model
/// time: e^{beta cos phi} sin(k phi) expands as (2 / beta) sum_k k I_k(beta) sin(k phi), so the
/// mode-k correlations grow at b_k = k^2 I_k(beta) / beta (the paper's a_k = k^2 I_k(beta) in
/// its time t / beta). b_1 is the kappa of [`linear_response`].
pub fn mode_rate(k: u32, beta: f64) -> f64 {
    f64::from(k * k) * bessel_i(k, beta) / beta
}

/// psi_c(y) = sum_{k >= 0} c^{k+1} y^k / (k! (k+1)!) (= sqrt(c / y) I_1(2 sqrt(c y))).
pub fn psi(c: f64, y: f64) -> f64 {
    let mut term = c;
    let mut sum = term;
    for k in 0..2000 {
        let k = f64::from(k);
        term *= c * y / ((k + 1.0) * (k + 2.0));
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum
}

/// The paper's closed form of the influence of source position s (as a fraction of the prompt,
/// 0 < s < 1) on the last token, for a mode of rate b at time t (continuum limit N -> infinity
/// of the linear response): g_b(t, 1; s) = [lambda e^{lambda s} / (e^lambda - 1)]
/// psi_{b t}(Y_lambda(s)), Y_lambda(s) = ln((e^lambda - 1) / (e^{lambda s} - 1))
/// (lambda = 0: coefficient 1, Y = ln(1 / s)). The prefactor is recency (the ALiBi weight of s
/// on the last token), Y grows without bound as s -> 0 (primacy, through the tokens between).
pub fn closed_form(b: f64, t: f64, lambda: f64, s: f64) -> f64 {
    let (coef, y) = if lambda == 0.0 {
        (1.0, (1.0 / s).ln())
    } else {
        (
            lambda * (lambda * s).exp() / lambda.exp_m1(),
            (lambda.exp_m1() / (lambda * s).exp_m1()).ln(),
        )
    };
    coef * psi(b * t, y)
}

/// The argmin over s in (0, 1) of the closed form (a grid of 4000 points, then a golden-section
/// refinement); 1 when the profile decreases all the way to the end (t >= t_crit).
pub fn closed_form_argmin(b: f64, t: f64, lambda: f64) -> f64 {
    let f = |s: f64| closed_form(b, t, lambda, s);
    let m = 4000;
    let grid = |i: usize| 1e-4 + (1.0 - 2e-4) * i as f64 / m as f64;
    let k = (0..=m)
        .min_by(|&i, &j| f(grid(i)).total_cmp(&f(grid(j))))
        .unwrap_or(m);
    if k == m {
        return 1.0;
    }
    let (mut lo, mut hi) = (grid(k.saturating_sub(1)), grid(k + 1));
    let r = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..60 {
        let (a, b) = (hi - r * (hi - lo), lo + r * (hi - lo));
        if f(a) < f(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    0.5 * (lo + hi)
}

/// The critical time of one mode of rate b: the right-end slope d/ds g_b(t, 1; s) at s = 1 is
/// lambda - (b t / 2) lambda / (1 - e^{-lambda}), so it changes sign at
/// t_crit = 2 (1 - e^{-lambda}) / b: before, recency (the profile rises to the end: with
/// primacy, a U), after, the profile decreases to the end.
pub fn t_crit(b: f64, lambda: f64) -> f64 {
    2.0 * (-(-lambda).exp_m1()) / b
}

/// The soft-accuracy weight of Fourier mode k for resolution M: omega_k = e^{-pi^2 k^2 / (2 M^2)}.
pub fn soft_weight(k: u32, m: f64) -> f64 {
    (-0.5 * (std::f64::consts::PI * f64::from(k) / m).powi(2)).exp()
}

/// The critical time of the summed profile sum_k omega_k g_{b_k}: the right-end slope is
/// lambda S_1 - (t / 2) lambda S_2 / (1 - e^{-lambda}) with S_1 = sum omega_k b_k and
/// S_2 = sum omega_k b_k^2, zero at t = 2 (1 - e^{-lambda}) S_1 / S_2.
pub fn t_crit_summed(rates: &[f64], weights: &[f64], lambda: f64) -> f64 {
    let s1: f64 = rates.iter().zip(weights).map(|(b, w)| w * b).sum();
    let s2: f64 = rates.iter().zip(weights).map(|(b, w)| w * b * b).sum();
    t_crit(s2 / s1, lambda)
}

/// The right-end slope of a profile: per prompt the least-squares slope of the row against
/// s / N over the last q positions; the mean and its standard error over prompts.
pub fn end_slope(rows: &[Vec<f64>], n: usize, q: usize) -> (f64, f64) {
    let len = n - 1;
    let q = q.clamp(2, len);
    let x: Vec<f64> = (len - q..len).map(|p| (p + 1) as f64 / n as f64).collect();
    let per: Vec<f64> = rows
        .iter()
        .map(|r| attnflow::stats::fit_line(&x, &r[len - q..len]).slope)
        .collect();
    mean_se(&per)
}

/// The slope over the same last q positions of the closed form (a profile evaluated at s / N).
pub fn closed_form_end_slope(b: f64, t: f64, lambda: f64, n: usize, q: usize) -> f64 {
    let len = n - 1;
    let q = q.clamp(2, len);
    let x: Vec<f64> = (len - q..len).map(|p| (p + 1) as f64 / n as f64).collect();
    let y: Vec<f64> = x.iter().map(|&s| closed_form(b, t, lambda, s)).collect();
    attnflow::stats::fit_line(&x, &y).slope
}

/// The first time the right-end slope turns from positive to non-positive, interpolated
/// linearly between the two observed times around it, with its standard error from those of
/// the two slopes (delta method). None when the slope never turns.
pub fn crossing(times: &[f64], slopes: &[(f64, f64)]) -> Option<(f64, f64)> {
    (0..times.len().saturating_sub(1)).find_map(|i| {
        let ((a, sa), (b, sb)) = (slopes[i], slopes[i + 1]);
        (a > 0.0 && b <= 0.0).then(|| {
            let dt = times[i + 1] - times[i];
            let f = a / (a - b);
            // t = t_i + dt a / (a - b): dt/da = dt (-b) / (a - b)^2, dt/db = dt a / (a - b)^2.
            let da = dt * (-b) / (a - b).powi(2);
            let db = dt * a / (a - b).powi(2);
            (
                times[i] + dt * f,
                ((da * sa).powi(2) + (db * sb).powi(2)).sqrt(),
            )
        })
    })
}

/// The time at which the closed form's slope over the last q positions turns (bisection on
/// [t_lo, t_hi], where it must change sign; None otherwise): the windowed twin of t_crit.
pub fn closed_form_crossing(b: f64, lambda: f64, n: usize, q: usize, t_hi: f64) -> Option<f64> {
    turning_time(|t| closed_form_end_slope(b, t, lambda, n, q), t_hi, 60)
}

/// Bisection (`steps` halvings) on [1e-3, t_hi] for the time at which f turns from positive to
/// non-positive; None when it does not change sign there.
fn turning_time(f: impl Fn(f64) -> f64, t_hi: f64, steps: usize) -> Option<f64> {
    let (mut lo, mut hi) = (1e-3, t_hi);
    if f(lo) <= 0.0 || f(hi) > 0.0 {
        return None;
    }
    for _ in 0..steps {
        let m = 0.5 * (lo + hi);
        if f(m) > 0.0 {
            lo = m;
        } else {
            hi = m;
        }
    }
    Some(0.5 * (lo + hi))
}

/// The finite-N linear response of a mode of rate b at time t, exactly: P is strictly lower
/// triangular (a token attends only to earlier ones), so exp(b t P) is the finite series
/// sum_m (b t)^m P^m / m!, summed until its terms are below 1e-16 of the sum (O(N) memory,
/// O(N^2) per term). The same profile as [`linear_response`] (which integrates it by RK4),
/// cheap enough to be evaluated many times (bisection on t).
pub fn linear_response_series(n: usize, lambda: f64, b: f64, t: f64) -> Vec<f64> {
    let a = lambda / n as f64;
    let norm: Vec<f64> = (0..n)
        .map(|i| (0..=i).map(|j| (-a * (i - j) as f64).exp()).sum())
        .collect();
    let mut term = vec![0.0; n];
    term[n - 1] = 1.0;
    let mut sum = term.clone();
    let c = b * t;
    for m in 1..10_000 {
        let mut next = vec![0.0; n];
        for i in 0..n {
            if term[i] == 0.0 {
                continue;
            }
            let f = c * term[i] / (norm[i] * m as f64);
            for (j, o) in next.iter_mut().enumerate().take(i) {
                *o += f * (-a * (i - j) as f64).exp();
            }
        }
        term = next;
        let (t_abs, s_abs) = (
            term.iter().map(|v| v.abs()).sum::<f64>(),
            sum.iter().map(|v| v.abs()).sum::<f64>(),
        );
        for (s, v) in sum.iter_mut().zip(&term) {
            *s += v;
        }
        if (m as f64) > c && t_abs <= 1e-16 * s_abs {
            break;
        }
    }
    sum[..n - 1].iter().map(|v| v * n as f64).collect()
}

/// The right-end slope (least squares over the last q of the N - 1 positions, as
/// [`end_slope`]) of the finite-N linear response of a mode of rate b at time t.
pub fn linear_response_end_slope(b: f64, t: f64, lambda: f64, n: usize, q: usize) -> f64 {
    let len = n - 1;
    let q = q.clamp(2, len);
    let x: Vec<f64> = (len - q..len).map(|p| (p + 1) as f64 / n as f64).collect();
    let y = linear_response_series(n, lambda, b, t);
    attnflow::stats::fit_line(&x, &y[len - q..len]).slope
}

/// The time (bisection on [1e-3, t_hi]) at which the finite-N linear response's end slope
/// turns from positive to non-positive; None when it does not change sign there.
pub fn linear_response_crossing(b: f64, lambda: f64, n: usize, q: usize, t_hi: f64) -> Option<f64> {
    turning_time(|t| linear_response_end_slope(b, t, lambda, n, q), t_hi, 50)
}

/// The argmin s/N of the finite-N linear response smoothed over w positions (as the measured
/// profile is).
pub fn linear_response_argmin(b: f64, t: f64, lambda: f64, n: usize, w: usize) -> f64 {
    let y = linear_response_series(n, lambda, b, t);
    (argmin(&smooth(&y, w)) + 1) as f64 / n as f64
}

/// Centred moving average over `w` positions (shrinking at the ends).
pub fn smooth(v: &[f64], w: usize) -> Vec<f64> {
    let half = w / 2;
    (0..v.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(v.len());
            v[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect()
}

/// The profile of one set of prompts (mean over the rows).
pub fn profile(rows: &[Vec<f64>], idx: &[usize], len: usize) -> Vec<f64> {
    let g = idx.len() as f64;
    (0..len)
        .map(|p| idx.iter().map(|&i| rows[i][p]).sum::<f64>() / g)
        .collect()
}

pub fn argmin(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x < v[best] {
            best = i;
        }
    }
    best
}

/// A small deterministic generator for the bootstrap (splitmix64).
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Shape analysis of one profile: smoothed argmin and its bootstrap SE, start and end excess
/// over the minimum (paired over prompts) and in standard errors.
pub struct Shape1 {
    pub raw: Vec<(f64, f64)>,
    pub smoothed: Vec<f64>,
    pub argmin_u: f64,
    pub argmin_u_se: f64,
    pub start: (f64, f64),
    pub end: (f64, f64),
    pub min: (f64, f64),
    /// The start and the end window over the minimum window, mean and standard error paired
    /// over prompts.
    pub start_excess: (f64, f64),
    pub end_excess: (f64, f64),
    pub start_z: f64,
    pub end_z: f64,
    pub interior: bool,
    pub u_shaped: bool,
}

pub fn analyse(rows: &[Vec<f64>], n: usize, w: usize, seed: u64) -> Shape1 {
    let len = n - 1;
    let g = rows.len();
    let raw: Vec<(f64, f64)> = (0..len).map(|p| column_mean_se(rows, p)).collect();
    let all: Vec<usize> = (0..g).collect();
    let smoothed = smooth(&profile(rows, &all, len), w);
    let k = argmin(&smoothed);
    let u = |p: usize| (p + 1) as f64 / n as f64;
    // Bootstrap over prompts: argmin of the smoothed resampled profile.
    let mut rng = Mix(seed);
    let boots: Vec<f64> = (0..200)
        .map(|_| {
            let idx: Vec<usize> = (0..g).map(|_| (rng.next() % g as u64) as usize).collect();
            u(argmin(&smooth(&profile(rows, &idx, len), w)))
        })
        .collect();
    let bse = mean_var(&boots).1.sqrt();
    // Window means and their standard errors: the first w positions, the last w, and the w
    // around the minimum (per-prompt window means, so correlations are accounted for).
    let window = |lo: usize, hi: usize| -> (f64, f64) {
        let per: Vec<f64> = rows
            .iter()
            .map(|r| r[lo..hi].iter().sum::<f64>() / (hi - lo) as f64)
            .collect();
        mean_se(&per)
    };
    let start = raw[0];
    let (end_lo, end_hi) = (len - w.min(len), len);
    let end = window(end_lo, end_hi);
    let lo = k.saturating_sub(w / 2);
    let hi = (lo + w).min(len);
    let min = window(lo, hi);
    // The excess of the start and of the end over the minimum, paired per prompt (the three
    // share the prompt's noise).
    let excess = |a: &dyn Fn(&[f64]) -> f64| -> (f64, f64) {
        let per: Vec<f64> = rows
            .iter()
            .map(|r| a(r) - r[lo..hi].iter().sum::<f64>() / (hi - lo) as f64)
            .collect();
        mean_se(&per)
    };
    let start_excess = excess(&|r: &[f64]| r[0]);
    let end_excess =
        excess(&|r: &[f64]| r[end_lo..end_hi].iter().sum::<f64>() / (end_hi - end_lo) as f64);
    let start_z = start_excess.0 / start_excess.1;
    let end_z = end_excess.0 / end_excess.1;
    let interior = k >= w && k + w < len;
    Shape1 {
        raw,
        smoothed,
        argmin_u: u(k),
        argmin_u_se: bse,
        start,
        end,
        min,
        start_excess,
        end_excess,
        start_z,
        end_z,
        interior,
        u_shaped: interior && start_z > 3.0 && end_z > 3.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_smooth_and_the_linear_response() {
        let x = solve([[2.0, 1.0], [1.0, 3.0]], [3.0, 5.0]);
        assert!(
            (x[0] - 0.8).abs() < 1e-9 && (x[1] - 1.4).abs() < 1e-9,
            "{x:?}"
        );
        assert_eq!(smooth(&[0.0, 3.0, 6.0, 9.0], 3), vec![1.5, 3.0, 6.0, 7.5]);
        assert_eq!(argmin(&[3.0, 1.0, 2.0, 1.0]), 1);
        // I_0(0) = 1, I_1(x) ~ x / 2 for small x.
        assert_eq!(bessel_i(0, 0.0), 1.0);
        assert!((bessel_i(1, 1e-4) - 5e-5).abs() < 1e-12);
        // At t -> 0 the last token is influenced only through its direct weight:
        // I(s, t) ~ N kappa t p_{N s}, positive and rising towards the end (ALiBi recency).
        let r = linear_response(8, 2.0, 0.5, 0.01);
        assert_eq!(r.len(), 7);
        assert!(r.iter().all(|v| *v > 0.0));
        assert!(r.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn the_closed_form_and_its_critical_time() {
        // psi_c(y) = sqrt(c / y) I_1(2 sqrt(c y)).
        let (c, y) = (0.7f64, 2.3f64);
        let exact = (c / y).sqrt() * bessel_i(1, 2.0 * (c * y).sqrt());
        assert!((psi(c, y) - exact).abs() < 1e-13 * exact, "{}", psi(c, y));
        // b_1 = I_1(beta) / beta (the rate of the linear response); b_2 = 4 I_2(beta) / beta.
        assert!((mode_rate(1, 2.0) - bessel_i(1, 2.0) / 2.0).abs() < 1e-15);
        assert!((mode_rate(2, 1.0) - 4.0 * bessel_i(2, 1.0)).abs() < 1e-15);
        // The continuum closed form is the N -> infinity limit of the discrete linear response:
        // at N = 256 they agree to 3% at s = 1/2 and 3/4 (the discrete one is ~1/N lower).
        let (n, lambda, b, t) = (256, 2.0, mode_rate(1, 1.0), 2.0);
        let lr = linear_response(n, lambda, b, t);
        for s in [n / 2, 3 * n / 4] {
            let g = closed_form(b, t, lambda, s as f64 / n as f64);
            assert!(
                (lr[s - 1] / g - 1.0).abs() < 0.03,
                "s = {s}: {} vs {g}",
                lr[s - 1]
            );
        }
        // To first order in t the influence is the direct ALiBi weight b t lambda e^{lambda s}
        // / (e^lambda - 1).
        let g = closed_form(1.0, 1e-6, 2.0, 0.5);
        assert!((g / (1e-6 * 2.0 * 1f64.exp() / 2f64.exp_m1()) - 1.0).abs() < 1e-5);
        // t_crit = 2 (1 - e^{-lambda}) / b: the slope of g at s = 1 changes sign there.
        let tc = t_crit(b, lambda);
        assert!((tc - 2.0 * (1.0 - (-2f64).exp()) / b).abs() < 1e-12);
        let slope = |t: f64| closed_form(b, t, lambda, 1.0) - closed_form(b, t, lambda, 1.0 - 1e-6);
        assert!(slope(0.99 * tc) > 0.0 && slope(1.01 * tc) < 0.0);
        // Before t_crit the minimum is interior and moves right with t; after it, at the end.
        let (a1, a2) = (
            closed_form_argmin(b, 1.0, lambda),
            closed_form_argmin(b, 2.0, lambda),
        );
        assert!(0.05 < a1 && a1 < a2 && a2 < 0.5, "{a1} {a2}");
        assert_eq!(closed_form_argmin(b, 1.2 * tc, lambda), 1.0);
        // Without ALiBi there is no recency: t_crit = 0 and the profile falls to the end.
        assert_eq!(t_crit(b, 0.0), 0.0);
        assert_eq!(closed_form_argmin(b, 0.5, 0.0), 1.0);
        // The summed profile of one mode is that mode; weights shift it towards the fast modes.
        assert!((t_crit_summed(&[b], &[1.0], lambda) - tc).abs() < 1e-12);
        let (b2, w) = (
            mode_rate(2, 1.0),
            [soft_weight(1, 8.0), soft_weight(2, 8.0)],
        );
        let ts = t_crit_summed(&[b, b2], &w, lambda);
        assert!(ts > t_crit(b.max(b2), lambda) && ts < t_crit(b.min(b2), lambda));
        // The slope over the last quarter turns within 5% of t_crit.
        let tw = closed_form_crossing(b, lambda, 32, 8, 10.0).unwrap();
        assert!((tw / tc - 1.0).abs() < 0.05, "{tw} vs {tc}");
    }

    #[test]
    fn the_series_is_the_integrated_linear_response() {
        let (n, lambda, b) = (32, 2.0, mode_rate(1, 1.0));
        for t in [0.5, 2.0, 4.0] {
            let (rk, series) = (
                linear_response(n, lambda, b, t),
                linear_response_series(n, lambda, b, t),
            );
            for (x, y) in rk.iter().zip(&series) {
                assert!(
                    (x - y).abs() < 1e-8 * y.abs().max(1.0),
                    "t = {t}: {x} vs {y}"
                );
            }
        }
        // Its end slope turns near the closed form's window twin (finite N moves it).
        let tl = linear_response_crossing(b, lambda, n, 8, 20.0).unwrap();
        let tw = closed_form_crossing(b, lambda, n, 8, 20.0).unwrap();
        assert!((tl / tw - 1.0).abs() < 0.25, "{tl} vs {tw}");
        assert!(linear_response_crossing(b, 0.0, n, 8, 20.0).is_none());
        let a = linear_response_argmin(b, 1.0, lambda, n, 3);
        assert!(a > 0.0 && a < 0.5, "{a}");
    }

    #[test]
    fn the_end_slope_and_its_crossing() {
        // Rows s/N * (2 - t): slope 2 - t; over t = 1, 2, 3 it turns at t = 2.
        let n = 9;
        let rows = |k: f64| -> Vec<Vec<f64>> {
            (0..4)
                .map(|g| {
                    (0..n - 1)
                        .map(|p| k * (p + 1) as f64 / n as f64 + 0.01 * g as f64)
                        .collect()
                })
                .collect()
        };
        let sl: Vec<(f64, f64)> = [1.0, 0.0, -1.0]
            .iter()
            .map(|&k| end_slope(&rows(k), n, 4))
            .collect();
        assert!((sl[0].0 - 1.0).abs() < 1e-12 && sl[0].1 < 1e-12);
        let (t, se) = crossing(&[1.0, 2.5, 3.0], &[(1.0, 0.1), (-0.5, 0.1), (-1.0, 0.1)]).unwrap();
        assert!((t - 2.0).abs() < 1e-12);
        // dt/da = 1.5 * 0.5 / 2.25, dt/db = 1.5 * 1 / 2.25.
        let want = 0.1 * ((1.5 * 0.5 / 2.25f64).powi(2) + (1.5 / 2.25f64).powi(2)).sqrt();
        assert!((se - want).abs() < 1e-12, "{se} {want}");
        assert!(crossing(&[1.0, 2.0], &[(-1.0, 0.1), (-2.0, 0.1)]).is_none());
    }

    #[test]
    fn a_u_shaped_profile_is_found() {
        // 40 prompts of a U-shaped profile over 15 positions plus noise of mean 0.
        let n = 16;
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|g| {
                (0..n - 1)
                    .map(|p| {
                        let u = (p + 1) as f64 / n as f64 - 0.4;
                        10.0 * u * u + if (g + p) % 2 == 0 { 0.1 } else { -0.1 }
                    })
                    .collect()
            })
            .collect();
        let a = analyse(&rows, n, 3, 1);
        assert!((a.argmin_u - 0.4).abs() <= 1.0 / n as f64, "{}", a.argmin_u);
        assert!(a.interior && a.u_shaped);
    }
}
