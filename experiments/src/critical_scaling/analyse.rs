//! The analysis of `critical-scaling`: the exact one-layer theory of the simplex (the paper's
//! model), the annealed finite-(n, d) average of the random-direction case (reported only), and
//! the halfway crossings gamma_c.

/// The output cosine of one SA layer (Q = K = V = I, inverse temperature beta) on the simplex:
/// n unit tokens with pairwise cosine c0. Output i is proportional to (a - 1) x_i + S with
/// a = e^{beta (1 - c0)} and S = sum_j x_j; with b = a - 1 and A = <x_i, S> = 1 + (n - 1) c0,
/// |S|^2 = n A, so <y_i, y_j> ~ b^2 c0 + 2 b A + n A and |y_i|^2 ~ b^2 + 2 b A + n A.
pub fn simplex_cos(n: f64, c0: f64, beta: f64) -> f64 {
    let b = (beta * (1.0 - c0)).exp_m1();
    let big_a = 1.0 + (n - 1.0) * c0;
    if b <= 1.0 {
        let q = (2.0 * b + n) * big_a;
        (b * b * c0 + q) / (b * b + q)
    } else {
        // Divided by b^2: no overflow at large beta.
        let r = (2.0 / b + n / (b * b)) * big_a;
        (c0 + r) / (1.0 + r)
    }
}

/// The beta at which [`simplex_cos`] is halfway between 1 (beta = 0, uniform attention) and c0
/// (beta -> infinity, the identity): (1 + c0) / 2 holds when b^2 = 2 b A + n A, i.e.
/// b = A + sqrt(A^2 + n A), so beta_c = ln(1 + A + sqrt(A^2 + n A)) / (1 - c0). (n is a real
/// number so that the limit can be followed far beyond any simulated n.)
pub fn simplex_beta_c(n: f64, c0: f64) -> f64 {
    let big_a = 1.0 + (n - 1.0) * c0;
    (1.0 + big_a * (1.0 + (1.0 + n / big_a).sqrt())).ln() / (1.0 - c0)
}

/// gamma_c(n) = beta_c / ln n of the simplex under beta = gamma ln n (exact at every n).
pub fn simplex_gamma_c(n: f64, c0: f64) -> f64 {
    simplex_beta_c(n, c0) / n.ln()
}

/// The n -> infinity limit of [`simplex_gamma_c`]: 1 / (1 - c0).
pub fn gamma_c_limit(c0: f64) -> f64 {
    1.0 / (1.0 - c0)
}

/// ln K(c0), K = c0 + sqrt(c0 (1 + c0)): b ~ K n as n -> infinity, so
/// gamma_c (1 - c0) = 1 + ln K / ln n + O(1 / n). K = 1 at c0 = 1/3: below it gamma_c rises
/// towards the limit, above it gamma_c falls towards it.
pub fn simplex_ln_k(c0: f64) -> f64 {
    (c0 + (c0 * (1.0 + c0)).sqrt()).ln()
}

/// ln E e^{k t}, E[t e^{k t}] / E e^{k t} for t a coordinate of a uniform point of S^{m-1}
/// (density proportional to (1 - t^2)^{(m - 3) / 2}), by quadrature.
pub fn tilt(k: f64, m: usize) -> (f64, f64) {
    let q = 4000;
    let e = (m as f64 - 3.0) / 2.0;
    let (mut lw, mut lt) = (Vec::with_capacity(q), Vec::with_capacity(q));
    for i in 0..q {
        let t = -1.0 + 2.0 * (i as f64 + 0.5) / q as f64;
        let base = e * (1.0 - t * t).ln();
        lw.push(base);
        lt.push(base + k * t);
    }
    let lse = |v: &[f64]| {
        let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        mx + v.iter().map(|x| (x - mx).exp()).sum::<f64>().ln()
    };
    let (l0, l1) = (lse(&lw), lse(&lt));
    let mx = lt.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (mut num, mut den) = (0.0, 0.0);
    for (i, l) in lt.iter().enumerate() {
        let t = -1.0 + 2.0 * (i as f64 + 0.5) / q as f64;
        let w = (l - mx).exp();
        num += t * w;
        den += w;
    }
    (l1 - l0, num / den)
}

/// The annealed finite-(n, d) average of the mean output cosine after one layer for the
/// random-direction tokens (module doc): the self-weight p = 1 / (1 + Z) with
/// Z ~= (n - 1) e^{-kappa} M(kappa), kappa = gamma (1 - c0) ln n, the others tilted towards
/// u_i (P = p + (1 - p) A(kappa)) plus noise (1 - p)^2 (1 - A^2) / n_eff, and
/// c ~= c0 / (c0 + (1 - c0)(P^2 + noise)). It is the large-n average of the simulated sum, so
/// agreeing with it tests the code, not the paper: reported only.
pub fn predicted_cos(c0: f64, n: usize, d: usize, gamma: f64) -> f64 {
    let kappa = gamma * (1.0 - c0) * (n as f64).ln();
    let (lm, a) = tilt(kappa, d - 1);
    let (lm2, _) = tilt(2.0 * kappa, d - 1);
    let nn = (n - 1) as f64;
    let z = (nn.ln() - kappa + lm).exp();
    let p = 1.0 / (1.0 + z);
    let n_eff = (nn.ln() + 2.0 * lm - lm2).exp();
    let big_p = p + (1.0 - p) * a;
    let noise = (1.0 - p).powi(2) * (1.0 - a * a) / n_eff;
    c0 / (c0 + (1.0 - c0) * (big_p * big_p + noise))
}

/// Where the curve (gamma_k, c_k) first crosses `half` downwards, interpolated linearly.
pub fn crossing(gammas: &[f64], c: &[f64], half: f64) -> Option<f64> {
    (1..gammas.len()).find_map(|k| {
        (c[k - 1] > half && c[k] <= half).then(|| {
            gammas[k - 1] + (gammas[k] - gammas[k - 1]) * (c[k - 1] - half) / (c[k - 1] - c[k])
        })
    })
}

/// d/dgamma of [`simplex_cos`] under beta = gamma ln n (central difference): the slope that
/// turns a round-off in the cosine into one in gamma_c.
pub fn simplex_cos_slope(n: f64, c0: f64, gamma: f64) -> f64 {
    let (h, ln_n) = (1e-5, n.ln());
    (simplex_cos(n, c0, (gamma + h) * ln_n) - simplex_cos(n, c0, (gamma - h) * ln_n)) / (2.0 * h)
}

/// The crossing that the run's procedure finds on the exact curve: the first downward crossing
/// of (1 + c0) / 2 on the coarse grid `gammas`, then on `fine_points` points inside its
/// bracket, both interpolated linearly. Its distance to [`simplex_gamma_c`] is the grid's
/// systematic error (the linear interpolation of a curved cosine); None: no crossing.
pub fn exact_grid_crossing(gammas: &[f64], fine_points: usize, n: f64, c0: f64) -> Option<f64> {
    let ln_n = n.ln();
    let curve =
        |g: &[f64]| -> Vec<f64> { g.iter().map(|&g| simplex_cos(n, c0, g * ln_n)).collect() };
    let half = 0.5 * (1.0 + c0);
    let g0 = crossing(gammas, &curve(gammas), half)?;
    let k = gammas.iter().position(|&g| g >= g0).unwrap_or(1).max(1);
    let (lo, hi) = (gammas[k - 1], gammas[k]);
    let p = fine_points.max(2);
    let fine: Vec<f64> = (0..p)
        .map(|i| lo + (hi - lo) * i as f64 / (p - 1) as f64)
        .collect();
    crossing(&fine, &curve(&fine), half).or(Some(g0))
}

/// Largest rise of a curve that should decrease: max_k (c_{k+1} - c_k), 0 if monotone.
pub fn max_rise(c: &[f64]) -> f64 {
    c.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output cosine of one SA layer computed directly from explicit simplex tokens.
    fn direct_cos(n: usize, c0: f64, beta: f64) -> f64 {
        let d = n + 1;
        let x: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut v = vec![0.0; d];
                v[0] = c0.sqrt();
                v[1 + i] = (1.0 - c0).sqrt();
                v
            })
            .collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
        let out: Vec<Vec<f64>> = (0..2)
            .map(|i| {
                let w: Vec<f64> = x.iter().map(|xj| (beta * dot(&x[i], xj)).exp()).collect();
                let z: f64 = w.iter().sum();
                (0..d)
                    .map(|k| x.iter().zip(&w).map(|(xj, wj)| wj * xj[k]).sum::<f64>() / z)
                    .collect()
            })
            .collect();
        dot(&out[0], &out[1]) / (dot(&out[0], &out[0]) * dot(&out[1], &out[1])).sqrt()
    }

    #[test]
    fn the_simplex_cosine_is_that_of_explicit_tokens_with_its_ends() {
        for &(n, c0) in &[(5, 0.3), (12, 0.6), (40, 0.1)] {
            for &beta in &[0.0, 0.5, 2.0, 7.0, 30.0] {
                let (a, b) = (simplex_cos(n as f64, c0, beta), direct_cos(n, c0, beta));
                assert!(
                    (a - b).abs() < 1e-12,
                    "n {n} c0 {c0} beta {beta}: {a} vs {b}"
                );
            }
        }
        // beta = 0: every output is the mean, cosine 1; beta -> infinity: the identity, c0.
        assert_eq!(simplex_cos(100.0, 0.4, 0.0), 1.0);
        assert!((simplex_cos(100.0, 0.4, 2000.0) - 0.4).abs() < 1e-15);
    }

    #[test]
    fn the_simplex_critical_gamma_is_halfway_and_tends_to_1_over_1_minus_c0() {
        for &c0 in &[0.1, 0.2, 1.0 / 3.0, 0.4, 0.6, 0.75] {
            for &n in &[8.0, 100.0, 1e4, 1e8] {
                let c = simplex_cos(n, c0, simplex_beta_c(n, c0));
                assert!((c - 0.5 * (1.0 + c0)).abs() < 1e-12, "c0 {c0} n {n}: {c}");
            }
            // gamma_c (1 - c0) = 1 + ln K / ln n + O(1/n): at n = 1e8 the remainder is below
            // 1e-7 (it is ~ (1 + 1/c0) / n / ln n).
            let n = 1e8;
            let g = simplex_gamma_c(n, c0) * (1.0 - c0);
            assert!(
                (g - 1.0 - simplex_ln_k(c0) / n.ln()).abs() < 1e-7,
                "c0 {c0}: {g}"
            );
            // The limit: at ln n = 200 gamma_c (1 - c0) is 1 + ln K / 200 (to 1e-12), within
            // 0.5% of 1 for these c0 (|ln K| <= 0.84, at c0 = 0.1); 1 / ln n -> 0 leaves 1.
            let g = simplex_gamma_c(200f64.exp(), c0) / gamma_c_limit(c0);
            assert!(
                (g - 1.0 - simplex_ln_k(c0) / 200.0).abs() < 1e-12,
                "c0 {c0}: {g}"
            );
            assert!((g - 1.0).abs() < 5e-3, "c0 {c0}: {g}");
        }
        // K = 1 at c0 = 1/3: below it gamma_c rises to the limit, above it falls.
        assert!(simplex_ln_k(1.0 / 3.0).abs() < 1e-15);
        assert!(simplex_gamma_c(1e3, 0.2) < simplex_gamma_c(1e4, 0.2));
        assert!(simplex_gamma_c(1e3, 0.6) > simplex_gamma_c(1e4, 0.6));
        assert!(simplex_gamma_c(1e4, 0.2) < gamma_c_limit(0.2));
        assert!(simplex_gamma_c(1e4, 0.6) > gamma_c_limit(0.6));
    }

    #[test]
    fn the_exact_crossing_and_its_grid_bound() {
        // The slope of the exact cosine at its crossing: negative, and the grid's crossing
        // within the linear-interpolation bound h^2 max|c''| / (8 |c'|) of the exact one.
        let (n, c0) = (512.0, 0.4);
        let gc = simplex_gamma_c(n, c0);
        let slope = simplex_cos_slope(n, c0, gc);
        let g: Vec<f64> = (0..=40).map(|i| 0.1 * i as f64).collect();
        let grid = exact_grid_crossing(&g, 21, n, c0).unwrap();
        assert!(
            slope < 0.0 && (grid - gc).abs() < 1e-4,
            "{slope} {grid} {gc}"
        );
        assert!((exact_grid_crossing(&g, 2, n, c0).unwrap() - gc).abs() > (grid - gc).abs());
    }

    #[test]
    fn crossings_rises_and_the_annealed_average_at_its_ends() {
        let g = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(crossing(&g, &[1.0, 0.8, 0.4, 0.2], 0.6), Some(1.5));
        assert_eq!(crossing(&g, &[1.0, 0.9, 0.8, 0.7], 0.6), None);
        assert_eq!(max_rise(&[1.0, 0.8, 0.85, 0.5]), 0.85 - 0.8);
        assert_eq!(max_rise(&[1.0, 0.5]), 0.0);
        // No tilt at kappa = 0: ln M = 0, A = 0.
        let (lm, a) = tilt(0.0, 63);
        assert!(lm.abs() < 1e-12 && a.abs() < 1e-12, "{lm} {a}");
        // gamma = 0: uniform attention, every output is the mean (cosine ~1); large gamma:
        // the identity (cosine c0).
        assert!((predicted_cos(0.4, 4096, 64, 0.0) - 1.0).abs() < 1e-3);
        assert!((predicted_cos(0.4, 4096, 64, 6.0) - 0.4).abs() < 1e-3);
    }
}
