//! Experiment `lost-in-the-middle` (docs/model.md §3-4): causal attention with the ALiBi
//! positional bias on the circle (d = 2), iid uniform tokens, Q = K = V = I. How much does the
//! token at prompt position s steer the last token N at depth t?
//!
//! Influence: I(s, t) = E[N cos(theta_N(t) - theta_s(0))] (theta = atan2(x_1, x_0)). With iid
//! uniform tokens it is 0 at t = 0 for s < N (the self term s = N is ~N and is left out of the
//! profile). The naive estimator N cos(.) has O(N) noise per prompt against an O(1) signal, so
//! the experiment uses an exact identity instead: theta_s(0) is uniform and independent of the
//! other tokens, so integrating d/dtheta_s sin(theta_N(t) - theta_s) over a period gives
//!   E[cos(theta_N(t) - theta_s(0))] = E[(d theta_N(t) / d theta_s(0)) cos(theta_N(t) - theta_s(0))],
//! and N d theta_N / d theta_s is O(1) per prompt. The derivative is a forward difference
//! (token s rotated by eps = 1e-2, O(eps) bias): every prompt runs as N systems of one batch
//! (the prompt, and the prompt with each earlier token rotated). Controls of known mean 0 are
//! regressed out per position (N d theta_N / d theta_s, whose mean is exactly 0 by periodicity;
//! the naive estimator minus this one; cos(k phi0), phi0 = theta_s(0) - theta_N(0), k = 1..3),
//! which cuts the standard error 1.5-4x. The naive estimator (with the control variate
//! N cos(theta_N(0) - theta_s(0)), mean 0) is reported beside it as a check (chi^2 per
//! position ~1). The linear-response solution of the correlation equation,
//! I(s, t) = N [exp(kappa t P)]_{N s} (P the positional weights, kappa the first Fourier
//! coefficient of the interaction), is drawn beside the data for small t.
//!
//! Theory (kinetic theory of causal attention, lost in the middle): the retrieval profile is
//! U-shaped in s/N: primacy (the first token sees only itself, never moves, and pulls on every
//! later token, directly and through the tokens in between), recency (ALiBi favours near keys:
//! the direct weight of s on N is ~ lambda e^{-lambda (1 - s/N)} / (1 - e^{-lambda}) / N), and
//! one interior minimum (under a smallness condition; at large t everything collapses onto the
//! first token and only primacy remains). The linear response shows it: every path from s to N
//! carries the ALiBi factor e^{-lambda (1 - s/N)} (recency), and paths through the tokens in
//! between add ~ t^2 log(N/s) (primacy), so the U appears at intermediate t (here t ~ 2; at
//! t = 1 the profile still rises almost monotonically, at t >= 4 primacy dominates). USA (positional weights p_ij times e^{beta <x_i, x_j>})
//! is the research's model; SA with the additive ALiBi bias is run beside it. beta = 1, so the
//! research's time scaled by beta is the model's time.
//!
//! Quantities: I(s, t) per position with standard errors over prompts, a smoothed profile, its
//! argmin s/N with a bootstrap standard error, the start/end excess over the minimum in
//! standard errors; CSV of all profiles; figures per model.

// Index loops read best in the small dense linear algebra below.
#![allow(clippy::needless_range_loop)]

use super::plot::{self, Axes, Series};
use super::{Report, Setup, simulate};
use crate::error::Result;
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

const D: usize = 2;
const EPS: f64 = 1e-2;

/// Per-prompt samples at one time: `jac[g][p]`, `naive[g][p]`, `sens[g][p]` for the source
/// positions p = 0..N-2 (s = p + 1).
struct Samples {
    jac: Vec<Vec<f64>>,
    naive: Vec<Vec<f64>>,
    sens: Vec<Vec<f64>>,
    /// phi0 = theta_s(0) - theta_N(0) (uniform: cos(k phi0) has mean 0).
    phi0: Vec<Vec<f64>>,
}

/// Control variates: per position, the least-squares fit of the estimator on controls of
/// known mean 0 (N dtheta_N/dtheta_s, naive - estimator, cos(k phi0) for k = 1..3), and the
/// per-prompt samples with the fitted controls subtracted (same mean, smaller variance).
fn adjusted(s: &Samples) -> Vec<Vec<f64>> {
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

/// Gaussian elimination with partial pivoting (a ridge of 1e-12 keeps it regular).
fn solve<const K: usize>(mut a: [[f64; K]; K], mut b: [f64; K]) -> [f64; K] {
    let scale = (0..K).map(|k| a[k][k]).fold(0.0, f64::max).max(1e-300);
    for (k, row) in a.iter_mut().enumerate() {
        row[k] += 1e-12 * scale;
    }
    for c in 0..K {
        let piv = (c..K)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..K {
            let f = a[r][c] / a[c][c];
            for k in c..K {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; K];
    for c in (0..K).rev() {
        let s: f64 = (c + 1..K).map(|k| a[c][k] * x[k]).sum();
        x[c] = (b[c] - s) / a[c][c];
    }
    x
}

/// Modified Bessel function I_k(x) by its series.
fn bessel_i(k: u32, x: f64) -> f64 {
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
fn linear_response(n: usize, lambda: f64, kappa: f64, t: f64) -> Vec<f64> {
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

fn angle(x: &[f64]) -> f64 {
    x[1].atan2(x[0])
}

fn wrap(a: f64) -> f64 {
    let t = std::f64::consts::TAU;
    (a + std::f64::consts::PI).rem_euclid(t) - std::f64::consts::PI
}

/// Mean and standard error of column p over the rows.
fn mean_se(rows: &[Vec<f64>], p: usize) -> (f64, f64) {
    crate::stats::mean_se(&rows.iter().map(|r| r[p]).collect::<Vec<_>>())
}

/// Centred moving average over `w` positions (shrinking at the ends).
fn smooth(v: &[f64], w: usize) -> Vec<f64> {
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
fn profile(rows: &[Vec<f64>], idx: &[usize], len: usize) -> Vec<f64> {
    let g = idx.len() as f64;
    (0..len)
        .map(|p| idx.iter().map(|&i| rows[i][p]).sum::<f64>() / g)
        .collect()
}

fn argmin(v: &[f64]) -> usize {
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
/// over the minimum in standard errors.
struct Shape1 {
    raw: Vec<(f64, f64)>,
    smoothed: Vec<f64>,
    argmin_u: f64,
    argmin_u_se: f64,
    start: (f64, f64),
    end: (f64, f64),
    min: (f64, f64),
    start_z: f64,
    end_z: f64,
    interior: bool,
    u_shaped: bool,
}

fn analyse(rows: &[Vec<f64>], n: usize, w: usize, seed: u64) -> Shape1 {
    let len = n - 1;
    let g = rows.len();
    let raw: Vec<(f64, f64)> = (0..len).map(|p| mean_se(rows, p)).collect();
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
    let bm = boots.iter().sum::<f64>() / boots.len() as f64;
    let bse =
        (boots.iter().map(|b| (b - bm).powi(2)).sum::<f64>() / (boots.len() - 1) as f64).sqrt();
    // Window means and their standard errors: the first w positions, the last w, and the w
    // around the minimum (per-prompt window means, so correlations are accounted for).
    let window = |lo: usize, hi: usize| -> (f64, f64) {
        let per: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| vec![r[lo..hi].iter().sum::<f64>() / (hi - lo) as f64])
            .collect();
        mean_se(&per, 0)
    };
    let start = raw[0];
    let end = window(len - w.min(len), len);
    let lo = k.saturating_sub(w / 2);
    let min = window(lo, (lo + w).min(len));
    let z = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0) / (a.1 * a.1 + b.1 * b.1).sqrt();
    let start_z = z(start, min);
    let end_z = z(end, min);
    let interior = k >= w && k + w < len;
    Shape1 {
        raw,
        smoothed,
        argmin_u: u(k),
        argmin_u_se: bse,
        start,
        end,
        min,
        start_z,
        end_z,
        interior,
        u_shaped: interior && start_z > 3.0 && end_z > 3.0,
    }
}

#[allow(clippy::too_many_arguments)]
fn influence(
    setup: &Setup,
    report: &mut Report,
    attention: Attention,
    n: usize,
    prompts: usize,
    beta: f64,
    lambda: f64,
    h: f64,
    times: &[f64],
) -> Result<Vec<Samples>> {
    // Prompt g occupies systems g*n .. g*n + n: system 0 is the prompt, system k >= 1 the
    // prompt with token k - 1 rotated by EPS.
    let batch = prompts * n;
    let base =
        InitSpec::Uniform.generate(Shape::new(prompts, n, D)?, Geometry::Sphere, setup.seed)?;
    let (ce, se) = (EPS.cos(), EPS.sin());
    let mut x0 = Vec::with_capacity(batch * n * D);
    for g in 0..prompts {
        let prompt = &base[g * n * D..(g + 1) * n * D];
        for k in 0..n {
            let start = x0.len();
            x0.extend_from_slice(prompt);
            if k > 0 {
                let t = &mut x0[start + (k - 1) * D..start + k * D];
                let (a, b) = (t[0], t[1]);
                t[0] = a * ce - b * se;
                t[1] = a * se + b * ce;
            }
        }
    }
    let mut model = Model::new(
        attention,
        Geometry::Sphere,
        Mask::Causal,
        Weights::identity(D),
        vec![beta; batch],
    );
    model.alibi = Some(lambda);
    let shape = Shape::new(batch, n, D)?;
    let at: Vec<usize> = times.iter().map(|t| (t / h).round() as usize).collect();
    let theta0: Vec<Vec<f64>> = (0..prompts)
        .map(|g| {
            (0..n)
                .map(|p| angle(&base[(g * n + p) * D..(g * n + p + 1) * D]))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let nf = n as f64;
    simulate(
        setup,
        report,
        &model,
        shape,
        &x0,
        Integrator::Rk4,
        h,
        &at,
        |step, x| {
            if step == 0 {
                return;
            }
            let last = |sys: usize| {
                let o = (sys * n + n - 1) * D;
                angle(&x[o..o + D])
            };
            let mut s = Samples {
                jac: Vec::with_capacity(prompts),
                naive: Vec::with_capacity(prompts),
                sens: Vec::with_capacity(prompts),
                phi0: Vec::with_capacity(prompts),
            };
            for (g, th0) in theta0.iter().enumerate() {
                let tn = last(g * n);
                let (mut jac, mut naive, mut sens) = (
                    Vec::with_capacity(n - 1),
                    Vec::with_capacity(n - 1),
                    Vec::with_capacity(n - 1),
                );
                for p in 0..n - 1 {
                    let deriv = wrap(last(g * n + p + 1) - tn) / EPS;
                    let c = (tn - th0[p]).cos();
                    jac.push(nf * deriv * c);
                    sens.push(nf * deriv);
                    naive.push(nf * (c - (th0[n - 1] - th0[p]).cos()));
                }
                s.jac.push(jac);
                s.naive.push(naive);
                s.sens.push(sens);
                s.phi0
                    .push((0..n - 1).map(|p| th0[p] - th0[n - 1]).collect());
            }
            out.push(s);
        },
    )?;
    Ok(out)
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let (beta, lambda, h) = (1.0, 2.0, 0.2);
    let times = [1.0, 2.0, 3.0, 4.0, 8.0];
    let (n, prompts) = if setup.quick { (32, 256) } else { (256, 512) };
    let w = (n / 16).max(3);
    report.config("d", D);
    report.config("n", n);
    report.config("prompts", prompts);
    report.config("systems_per_batch", n * prompts);
    report.config("beta", beta);
    report.config("alibi_lambda", lambda);
    report.config("times", times);
    report.config(
        "time_units",
        "model time = research time scaled by beta (beta = 1)",
    );
    report.config("h", h);
    report.config("integrator", "rk4");
    report.config(
        "tokens",
        "iid uniform on the circle, Q = K = V = I, causal mask",
    );
    report.config("derivative_eps", EPS);
    report.config("smoothing_window_positions", w);
    report.prediction(
        "shape",
        "U-shaped in s/N: primacy, recency, one interior minimum (qualitative; at large t \
         the first token dominates)",
    );
    let mut rows = Vec::new();
    let mut any_u = false;
    let mut u_argmins = Vec::new();
    let mut sa_any_u = false;
    let (mut sa_recency, mut sa_primacy) = (false, false);
    for attention in [Attention::Usa, Attention::Sa] {
        let name = attention.name();
        let kappa = match attention {
            Attention::Usa => bessel_i(1, beta) / beta,
            Attention::Sa => bessel_i(1, beta) / (beta * bessel_i(0, beta)),
        };
        setup.say(&format!(
            "{name}: N = {n}, {prompts} prompts x {n} systems, lambda = {lambda}"
        ));
        let samples = influence(
            setup, report, attention, n, prompts, beta, lambda, h, &times,
        )?;
        let mut series = Vec::new();
        let mut early = Vec::new();
        let mut per_t = serde_json::Map::new();
        for (ti, s) in samples.iter().enumerate() {
            let t = times[ti];
            let adj = adjusted(s);
            let a = analyse(&adj, n, w, setup.seed ^ (ti as u64 + 17));
            let plain: Vec<(f64, f64)> = (0..n - 1).map(|p| mean_se(&s.jac, p)).collect();
            let naive: Vec<(f64, f64)> = (0..n - 1).map(|p| mean_se(&s.naive, p)).collect();
            let theory = linear_response(n, lambda, kappa, t);
            let se_gain =
                plain.iter().map(|v| v.1).sum::<f64>() / a.raw.iter().map(|v| v.1).sum::<f64>();
            // Agreement of the naive estimator with the derivative one: chi^2 per position.
            let chi2 = (0..n - 1)
                .map(|p| {
                    let (x, y) = (plain[p], naive[p]);
                    (x.0 - y.0).powi(2) / (x.1 * x.1 + y.1 * y.1)
                })
                .sum::<f64>()
                / (n - 1) as f64;
            for p in 0..n - 1 {
                rows.push(vec![
                    (attention == Attention::Usa) as u8 as f64,
                    t,
                    (p + 1) as f64,
                    (p + 1) as f64 / n as f64,
                    a.raw[p].0,
                    a.raw[p].1,
                    a.smoothed[p],
                    plain[p].0,
                    plain[p].1,
                    naive[p].0,
                    naive[p].1,
                    theory[p],
                ]);
            }
            per_t.insert(
                format!("t={t}"),
                serde_json::json!({
                    "argmin_s_over_n": a.argmin_u,
                    "argmin_s_over_n_se": a.argmin_u_se,
                    "influence_first_token": a.start.0,
                    "influence_first_token_se": a.start.1,
                    "influence_last_window": a.end.0,
                    "influence_last_window_se": a.end.1,
                    "influence_min_window": a.min.0,
                    "influence_min_window_se": a.min.1,
                    "start_excess_in_se": a.start_z,
                    "end_excess_in_se": a.end_z,
                    "interior_minimum": a.interior,
                    "u_shaped": a.u_shaped,
                    "naive_vs_derivative_estimator_chi2_per_position": chi2,
                    "control_variate_se_reduction": se_gain,
                    "linear_response_first_token": theory[0],
                    "linear_response_last_token": theory[n - 2],
                    "linear_response_argmin_s_over_n": (argmin(&theory) + 1) as f64 / n as f64,
                }),
            );
            if attention == Attention::Usa {
                any_u |= a.u_shaped;
                if a.u_shaped {
                    u_argmins.push(serde_json::json!({"t": t, "argmin_s_over_n": a.argmin_u,
                        "argmin_s_over_n_se": a.argmin_u_se}));
                }
            } else {
                sa_any_u |= a.u_shaped;
                sa_recency |= t <= 2.0 && a.end_z > 3.0;
                sa_primacy |= t >= 4.0 && a.start_z > 3.0;
            }
            let at = |v: &[f64]| -> Vec<(f64, f64)> {
                (0..n - 1)
                    .map(|p| ((p + 1) as f64 / n as f64, v[p]))
                    .collect()
            };
            let raw: Vec<f64> = a.raw.iter().map(|v| v.0).collect();
            series.push(Series::line(
                format!(
                    "t = {t} (smoothed over {w}); min at s/N = {:.2} +- {:.2}{}",
                    a.argmin_u,
                    a.argmin_u_se,
                    if a.u_shaped { ", U-shaped" } else { "" }
                ),
                at(&a.smoothed),
            ));
            if t <= 2.0 {
                early.push(Series::markers(format!("t = {t}, data"), at(&raw)));
                early.push(Series::line(
                    format!("t = {t}, smoothed over {w} positions"),
                    at(&a.smoothed),
                ));
                early.push(Series::theory(
                    format!("t = {t}, linear response (kinetic theory)"),
                    at(&theory),
                ));
            }
        }
        report.measured(&format!("{name}_profile"), per_t);
        let title = format!(
            "{}: influence of position s on the last token (N = {n}, lambda = {lambda})",
            name.to_uppercase()
        );
        let axes = Axes {
            title: &title,
            x_label: "s / N",
            y_label: "I(s, t) = E[N cos(theta_N(t) - theta_s(0))]",
            log_x: false,
            log_y: false,
        };
        plot::lines(
            &setup.path(&format!("lost_in_the_middle_{name}.png")),
            &axes,
            &series,
        )?;
        report.files.push(format!("lost_in_the_middle_{name}.png"));
        plot::lines(
            &setup.path(&format!("lost_in_the_middle_{name}_early.png")),
            &Axes {
                title: &format!("{title}, t <= 2"),
                ..axes
            },
            &early,
        )?;
        report
            .files
            .push(format!("lost_in_the_middle_{name}_early.png"));
    }
    setup.csv(
        report,
        "lost_in_the_middle.csv",
        &[
            "usa",
            "t",
            "s",
            "s_over_n",
            "influence",
            "influence_se",
            "influence_smoothed",
            "influence_no_control_variates",
            "influence_no_control_variates_se",
            "influence_naive",
            "influence_naive_se",
            "linear_response",
        ],
        &rows,
    )?;
    report.measured("usa_u_shaped_times_and_argmin", &u_argmins);
    report.measured("sa_u_shaped_at_some_t", sa_any_u);
    report.check(
        "usa_u_shaped_at_some_t_start_and_end_3se_above_an_interior_minimum",
        any_u,
    );
    report.check(
        "sa_recency_at_t_le_2_and_primacy_at_t_ge_4_by_3se",
        sa_recency && sa_primacy,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_lost_in_the_middle_is_u_shaped() {
        let (_dir, out, s) = super::super::quick_run_checked("lost-in-the-middle", 1);
        // Where USA is U-shaped the minimum sits in the first half (linear response: ~0.25).
        for m in s["measured"]["usa_u_shaped_times_and_argmin"]
            .as_array()
            .unwrap()
        {
            let u = m["argmin_s_over_n"].as_f64().unwrap();
            assert!((0.05..0.7).contains(&u), "argmin {u}: {m}");
        }
        let t2 = &s["measured"]["usa_profile"]["t=2"];
        let ratio = t2["influence_last_window"].as_f64().unwrap()
            / t2["linear_response_last_token"].as_f64().unwrap();
        assert!(
            (0.6..1.2).contains(&ratio),
            "recency vs linear response: {ratio}"
        );
        assert!(out.join("lost_in_the_middle_usa.png").exists());
    }
}
