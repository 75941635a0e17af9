//! The analysis of `critical-scaling`: the finite-(n, d) theory of one layer, the halfway
//! crossings gamma_c, and the uniform-attention closed form of the flow.

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

/// The finite-(n, d) prediction of the mean output cosine after one layer (module doc).
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

/// Largest rise of a curve that should decrease: max_k (c_{k+1} - c_k), 0 if monotone.
pub fn max_rise(c: &[f64]) -> f64 {
    c.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// max - min of a sample.
pub fn spread(v: &[f64]) -> f64 {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    hi - lo
}

/// The mean cosine of the flow at gamma = 0 (n -> infinity): uniform attention moves every
/// token towards the mean sqrt(c0) e_1, and y = <x, e_1> obeys y' = y (1 - y^2), so the mean
/// cosine c = y^2 follows c / (1 - c) = c_in / (1 - c_in) e^{2t}.
pub fn uniform_attention_cos(c_in: f64, t: f64) -> f64 {
    let odds = c_in / (1.0 - c_in) * (2.0 * t).exp();
    odds / (1.0 + odds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_rises_and_the_theory_at_its_ends() {
        let g = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(crossing(&g, &[1.0, 0.8, 0.4, 0.2], 0.6), Some(1.5));
        assert_eq!(crossing(&g, &[1.0, 0.9, 0.8, 0.7], 0.6), None);
        assert_eq!(max_rise(&[1.0, 0.8, 0.85, 0.5]), 0.85 - 0.8);
        assert_eq!(max_rise(&[1.0, 0.5]), 0.0);
        assert!((spread(&[0.3, 1.0, 0.5]) - 0.7).abs() < 1e-15);
        // No tilt at kappa = 0: ln M = 0, A = 0.
        let (lm, a) = tilt(0.0, 63);
        assert!(lm.abs() < 1e-12 && a.abs() < 1e-12, "{lm} {a}");
        // gamma = 0: uniform attention, every output is the mean (cosine ~1); large gamma:
        // the identity (cosine c0).
        assert!((predicted_cos(0.4, 4096, 64, 0.0) - 1.0).abs() < 1e-3);
        assert!((predicted_cos(0.4, 4096, 64, 6.0) - 0.4).abs() < 1e-3);
        assert_eq!(uniform_attention_cos(0.5, 0.0), 0.5);
    }
}
