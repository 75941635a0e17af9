//! The analysis of `perceptron-equilibria`, in f64 and independent of the engine: the tied
//! perceptron's field on the circle and its zeros, the basins of the starts, the atoms of a
//! final state, the full field (attention + perceptron) at an atom, and the Kac-Rice count of
//! the field's stable zeros in the wide limit.

use std::f64::consts::{PI, TAU};

/// The activations of the perceptron (the engine's `Activation`, evaluated here on its own).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Act {
    Relu,
    Gelu,
}

impl Act {
    pub fn parse(s: &str) -> Option<Act> {
        match s {
            "relu" => Some(Act::Relu),
            "gelu" => Some(Act::Gelu),
            _ => None,
        }
    }

    /// sigma(z): the model's own activation (GELU in its tanh form, as every backend).
    pub fn value(self, z: f64) -> f64 {
        match self {
            Act::Relu => attnflow::model::Activation::Relu.apply(z),
            Act::Gelu => attnflow::model::Activation::Gelu.apply(z),
        }
    }

    /// sigma'(z) (ReLU: the step, 0 at 0).
    pub fn slope(self, z: f64) -> f64 {
        match self {
            Act::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::Gelu => {
                let c = (2.0 / PI).sqrt();
                let u = c * (z + 0.044715 * z * z * z);
                let t = u.tanh();
                0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * z * z)
            }
        }
    }
}

/// A perceptron with tied weights on the circle: hidden unit k has input row a_k in R^2, bias
/// b_k and output column w_k = c_k a_k, so W sigma(A x + b) = grad_x sum_k c_k Phi(a_k.x + b_k)
/// with Phi' = sigma: the perceptron is the gradient of a potential.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Perceptron {
    pub a: Vec<[f64; 2]>,
    pub b: Vec<f64>,
    pub c: Vec<f64>,
    pub act: Act,
}

/// x(theta) = (cos, sin) and the unit tangent e(theta) = (-sin, cos).
fn frame(theta: f64) -> ([f64; 2], [f64; 2]) {
    let (s, c) = theta.sin_cos();
    ([c, s], [-s, c])
}

impl Perceptron {
    /// The tangential field f(theta) = <e(theta), W sigma(A x + b)>
    /// = sum_k c_k sigma(a_k.x + b_k) (a_k.e): dtheta/dt of a token alone.
    pub fn field(&self, theta: f64) -> f64 {
        let (x, e) = frame(theta);
        (0..self.c.len())
            .map(|k| {
                let a = self.a[k];
                let z = a[0] * x[0] + a[1] * x[1] + self.b[k];
                self.c[k] * self.act.value(z) * (a[0] * e[0] + a[1] * e[1])
            })
            .sum()
    }

    /// f'(theta) = sum_k c_k [sigma'(z) (a_k.e)^2 - sigma(z) (a_k.x)].
    pub fn slope(&self, theta: f64) -> f64 {
        let (x, e) = frame(theta);
        (0..self.c.len())
            .map(|k| {
                let a = self.a[k];
                let ax = a[0] * x[0] + a[1] * x[1];
                let ae = a[0] * e[0] + a[1] * e[1];
                let z = ax + self.b[k];
                self.c[k] * (self.act.slope(z) * ae * ae - self.act.value(z) * ax)
            })
            .sum()
    }

    /// The perceptron's output vector W sigma(A x + b) at x (unprojected, R^2).
    #[cfg(test)]
    pub fn output(&self, x: [f64; 2]) -> [f64; 2] {
        let mut o = [0.0; 2];
        for k in 0..self.c.len() {
            let a = self.a[k];
            let s = self.c[k] * self.act.value(a[0] * x[0] + a[1] * x[1] + self.b[k]);
            o[0] += s * a[0];
            o[1] += s * a[1];
        }
        o
    }
}

/// A zero of f: its angle in [0, 2 pi) and whether it is stable (f goes from + to -).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Zero {
    pub theta: f64,
    pub stable: bool,
}

/// The zeros of a periodic function on [0, 2 pi): sign changes on a grid of m points, each
/// refined by 60 bisections. Sorted by angle.
pub fn zeros(f: impl Fn(f64) -> f64, m: usize) -> Vec<Zero> {
    let at = |i: usize| TAU * i as f64 / m as f64;
    let vals: Vec<f64> = (0..m).map(|i| f(at(i))).collect();
    let mut out = Vec::new();
    for i in 0..m {
        let (fa, fb) = (vals[i], vals[(i + 1) % m]);
        if (fa > 0.0) == (fb > 0.0) {
            continue;
        }
        let (mut lo, mut hi) = (at(i), at(i) + TAU / m as f64);
        let pos_lo = fa > 0.0;
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if (f(mid) > 0.0) == pos_lo {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        out.push(Zero {
            theta: (0.5 * (lo + hi)).rem_euclid(TAU),
            stable: pos_lo,
        });
    }
    out.sort_by(|p, q| p.theta.total_cmp(&q.theta));
    out
}

/// The zero a token starting at theta0 flows to when it moves alone (dtheta/dt = f): the
/// first zero met in the direction of sign f(theta0) (stable by construction). None if f
/// has no zero.
pub fn basin_target(theta0: f64, f0: f64, zs: &[Zero]) -> Option<usize> {
    if zs.is_empty() {
        return None;
    }
    let t = theta0.rem_euclid(TAU);
    let ahead = |z: &Zero| {
        if f0 > 0.0 {
            (z.theta - t).rem_euclid(TAU)
        } else {
            (t - z.theta).rem_euclid(TAU)
        }
    };
    (0..zs.len()).min_by(|&i, &j| ahead(&zs[i]).total_cmp(&ahead(&zs[j])))
}

/// Whether a token alone reaches within `eps` of angle `target` by time `t_end`: the f64 flow
/// dtheta/dt = f(theta) by RK4 with `steps` steps (the analysis's own integration, to tell a
/// draw whose tokens are still crawling past a slow zero at T from one that has settled).
pub fn settles(
    p: &Perceptron,
    theta0: f64,
    target: f64,
    t_end: f64,
    steps: usize,
    eps: f64,
) -> bool {
    let h = t_end / steps as f64;
    let mut t = theta0;
    for _ in 0..steps {
        let k1 = p.field(t);
        let k2 = p.field(t + 0.5 * h * k1);
        let k3 = p.field(t + 0.5 * h * k2);
        let k4 = p.field(t + h * k3);
        t += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    angle_diff(t, target).abs() <= eps
}

/// An atom of a final state on the circle: its angle (circular mean of its tokens), its
/// number of tokens and the largest angular distance of one of them to it.
#[derive(Clone, Debug)]
pub struct Atom {
    pub theta: f64,
    pub mass: usize,
    pub spread: f64,
}

/// Signed angular difference a - b in (-pi, pi].
pub fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(TAU);
    if d > PI { d - TAU } else { d }
}

/// The atoms of a set of angles: sorted cyclically and split at every gap wider than `gap`.
pub fn atoms(angles: &[f64], gap: f64) -> Vec<Atom> {
    let mut t: Vec<f64> = angles.iter().map(|a| a.rem_euclid(TAU)).collect();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    // Start after the widest gap so no group wraps around the cut.
    let gaps: Vec<f64> = (0..n)
        .map(|i| (t[(i + 1) % n] - t[i]).rem_euclid(TAU))
        .collect();
    let widest = (0..n)
        .max_by(|&i, &j| gaps[i].total_cmp(&gaps[j]))
        .unwrap_or(0);
    let mut groups: Vec<Vec<f64>> = vec![];
    let mut cur: Vec<f64> = vec![];
    for k in 0..n {
        let i = (widest + 1 + k) % n;
        cur.push(t[i]);
        if gaps[i] > gap || (n == 1) || k == n - 1 {
            groups.push(std::mem::take(&mut cur));
        }
    }
    groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            let (s, c) = g
                .iter()
                .fold((0.0, 0.0), |(s, c), a| (s + a.sin(), c + a.cos()));
            let theta = s.atan2(c).rem_euclid(TAU);
            let spread = g
                .iter()
                .map(|a| angle_diff(*a, theta).abs())
                .fold(0.0, f64::max);
            Atom {
                theta,
                mass: g.len(),
                spread,
            }
        })
        .collect()
}

/// The tangential full field at angle theta for the tokens at `angles`: SA attention with
/// Q = K = I, V = v I at inverse temperature beta, plus the perceptron, projected on the
/// tangent e(theta): <e, v sum_j softmax_j(beta <x, x_j>) x_j> + f(theta).
pub fn full_field(theta: f64, angles: &[f64], beta: f64, v: f64, p: &Perceptron) -> f64 {
    let (x, e) = frame(theta);
    let attention = if v == 0.0 {
        0.0
    } else {
        // <x, x_j> <= 1 bounds the scores: subtract beta.
        let (mut num, mut den) = (0.0, 0.0);
        for &a in angles {
            let (xj, _) = frame(a);
            let w = (beta * (x[0] * xj[0] + x[1] * xj[1] - 1.0)).exp();
            num += w * (e[0] * xj[0] + e[1] * xj[1]);
            den += w;
        }
        v * num / den
    };
    attention + p.field(theta)
}

/// The spectral moments of the wide limit: with a_k iid N(0, sa^2 I_2), b_k iid N(0, sb^2),
/// c_k iid N(0, 1/M), the potential V(theta) = sum_k c_k Phi(a_k.x(theta) + b_k) (f = V') is a
/// centred process whose law is rotation invariant; as M -> infinity it is Gaussian (CLT over
/// units), with lambda2 = Var V' and lambda4 = Var V''. With xi = a.x, eta = a.e (independent,
/// N(0, sa^2)) and z = xi + b ~ N(0, s^2), s^2 = sa^2 + sb^2:
///   V'  = sum c sigma(z) eta,             lambda2 = sa^2 E[sigma^2]
///   V'' = sum c [sigma'(z) eta^2 - sigma(z) xi],
///   lambda4 = 3 sa^4 E[sigma'^2] - 2 sa^2 E[sigma' sigma xi] + E[sigma^2 xi^2],
/// reduced to one dimension with E[xi | z] = z sa^2 / s^2, Var[xi | z] = sa^2 sb^2 / s^2.
/// Trapezoid rule on [-12 s, 12 s].
pub fn spectral_moments(act: Act, sa: f64, sb: f64) -> (f64, f64) {
    let s2 = sa * sa + sb * sb;
    let s = s2.sqrt();
    let m = 40_001;
    let (lo, hi) = (-12.0 * s, 12.0 * s);
    let dz = (hi - lo) / (m - 1) as f64;
    let (mut e_s2, mut e_d2, mut e_dsz, mut e_s2x2) = (0.0, 0.0, 0.0, 0.0);
    let r = sa * sa / s2;
    let var_xi = sa * sa * sb * sb / s2;
    for i in 0..m {
        let z = lo + i as f64 * dz;
        let w = (if i == 0 || i == m - 1 { 0.5 } else { 1.0 }) * dz * (-0.5 * z * z / s2).exp()
            / (TAU * s2).sqrt();
        let (sg, dsg) = (act.value(z), act.slope(z));
        e_s2 += w * sg * sg;
        e_d2 += w * dsg * dsg;
        e_dsz += w * dsg * sg * z * r;
        e_s2x2 += w * sg * sg * (var_xi + (z * r).powi(2));
    }
    let l2 = sa * sa * e_s2;
    let l4 = 3.0 * sa.powi(4) * e_d2 - 2.0 * sa * sa * e_dsz + e_s2x2;
    (l2, l4)
}

/// The expected number of stable zeros of f (local maxima of V) on the circle in the wide
/// limit: Rice's formula for the down-crossings of 0 by the stationary Gaussian V' over a
/// period 2 pi, (2 pi) (1 / 2 pi) sqrt(lambda4 / lambda2).
pub fn kac_rice_stable_zeros(act: Act, sa: f64, sb: f64) -> f64 {
    let (l2, l4) = spectral_moments(act, sa, sb);
    (l4 / l2).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn random(m: usize, seed: u64, act: Act) -> Perceptron {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut g = || -> f64 { StandardNormal.sample(&mut rng) };
        let sa = 0.5f64.sqrt();
        Perceptron {
            a: (0..m).map(|_| [sa * g(), sa * g()]).collect(),
            b: (0..m).map(|_| g()).collect(),
            c: (0..m).map(|_| g() / (m as f64).sqrt()).collect(),
            act,
        }
    }

    #[test]
    fn the_field_is_the_tangent_of_the_output_and_the_slope_its_derivative() {
        for act in [Act::Relu, Act::Gelu] {
            let p = random(16, 3, act);
            for theta in [0.1, 1.3, 2.9, 4.4, 6.0] {
                let (x, e) = frame(theta);
                let o = p.output(x);
                assert!((p.field(theta) - (o[0] * e[0] + o[1] * e[1])).abs() < 1e-12);
                let h = 1e-6;
                let fd = (p.field(theta + h) - p.field(theta - h)) / (2.0 * h);
                assert!((fd - p.slope(theta)).abs() < 1e-5, "{act:?} {theta}");
            }
            // The GELU slope against finite differences.
            for z in [-3.0, -0.5, 0.0, 0.7, 2.5] {
                let h = 1e-6;
                let fd = (Act::Gelu.value(z + h) - Act::Gelu.value(z - h)) / (2.0 * h);
                assert!((fd - Act::Gelu.slope(z)).abs() < 1e-8);
            }
        }
    }

    #[test]
    fn zeros_alternate_and_basins_lead_to_stable_zeros() {
        // f = sin(3 (theta - 0.1)): zeros at 0.1 + k pi / 3, stable where the slope
        // 3 cos(3 (theta - 0.1)) < 0 (k odd).
        let f = |t: f64| (3.0 * (t - 0.1)).sin();
        let zs = zeros(f, 1000);
        assert_eq!(zs.len(), 6);
        for (k, z) in zs.iter().enumerate() {
            assert!((z.theta - 0.1 - k as f64 * PI / 3.0).abs() < 1e-9, "{z:?}");
            assert_eq!(z.stable, k % 2 == 1);
        }
        // A start at 0.2 (f > 0) moves up to 0.1 + pi / 3; one at 1.2 (f < 0) moves down to it.
        for t0 in [0.2, 1.2] {
            let i = basin_target(t0, f(t0), &zs).unwrap();
            assert!((zs[i].theta - 0.1 - PI / 3.0).abs() < 1e-9);
        }
        // Across the cut: a start at 6.1 (f < 0) moves down to 0.1 + 5 pi / 3.
        let i = basin_target(6.1, f(6.1), &zs).unwrap();
        assert!((zs[i].theta - 0.1 - 5.0 * PI / 3.0).abs() < 1e-9);
        // One unit, c = 1, a = (1, 0), b = 0: f = -sigma(cos) sin, stable zero at 0; a start at
        // 1 settles there by T = 40 but not by T = 0.5.
        let p = Perceptron {
            a: vec![[1.0, 0.0]],
            b: vec![0.0],
            c: vec![1.0],
            act: Act::Relu,
        };
        assert!(settles(&p, 1.0, 0.0, 40.0, 4000, 1e-6));
        assert!(!settles(&p, 1.0, 0.0, 0.5, 50, 1e-6));
    }

    #[test]
    fn atoms_split_at_gaps_and_wrap_around() {
        let a = atoms(&[0.001, TAU - 0.001, 3.0, 3.0005, 3.0002], 0.05);
        assert_eq!(a.len(), 2);
        let masses: Vec<usize> = a.iter().map(|x| x.mass).collect();
        assert!(masses.contains(&2) && masses.contains(&3));
        let wrap = a.iter().find(|x| x.mass == 2).unwrap();
        assert!(angle_diff(wrap.theta, 0.0).abs() < 1e-12 && (wrap.spread - 0.001).abs() < 1e-9);
        assert_eq!(atoms(&[1.0], 0.05).len(), 1);
    }

    #[test]
    fn the_full_field_of_one_atom_is_the_perceptron_and_two_atoms_pull() {
        let p = random(8, 1, Act::Gelu);
        assert!((full_field(0.4, &[0.4, 0.4], 3.0, 2.0, &p) - p.field(0.4)).abs() < 1e-12);
        let zero = Perceptron {
            c: vec![0.0; 8],
            ..p.clone()
        };
        // Two atoms at 0 and 1, beta = 0: the pull on 0 is v <e_0, x_1> / 2 = v sin(1) / 2.
        assert!((full_field(0.0, &[0.0, 1.0], 0.0, 2.0, &zero) - 1f64.sin()).abs() < 1e-12);
    }

    #[test]
    fn spectral_moments_match_monte_carlo_of_one_unit() {
        // lambda2 = E[(sigma(z) eta)^2], lambda4 = E[(sigma'(z) eta^2 - sigma(z) xi)^2] for one
        // unit with c of variance 1.
        let (sa, sb) = (0.8, 1.0);
        for act in [Act::Relu, Act::Gelu] {
            let (l2, l4) = spectral_moments(act, sa, sb);
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let n = 400_000;
            let (mut m2, mut m4) = (0.0, 0.0);
            for _ in 0..n {
                let mut g = || -> f64 { StandardNormal.sample(&mut rng) };
                let (xi, eta, b) = (sa * g(), sa * g(), sb * g());
                let z = xi + b;
                m2 += (act.value(z) * eta).powi(2);
                m4 += (act.slope(z) * eta * eta - act.value(z) * xi).powi(2);
            }
            let (m2, m4) = (m2 / n as f64, m4 / n as f64);
            assert!((m2 / l2 - 1.0).abs() < 0.02, "{act:?}: {m2} {l2}");
            assert!((m4 / l4 - 1.0).abs() < 0.03, "{act:?}: {m4} {l4}");
        }
        // A wide perceptron: the mean count of stable zeros over draws approaches Kac-Rice.
        let kr = kac_rice_stable_zeros(Act::Gelu, 0.5f64.sqrt(), 1.0);
        let draws = 200;
        let total: usize = (0..draws)
            .map(|s| {
                let p = random(512, 100 + s, Act::Gelu);
                zeros(|t| p.field(t), 512)
                    .iter()
                    .filter(|z| z.stable)
                    .count()
            })
            .sum();
        let mean = total as f64 / draws as f64;
        assert!((mean / kr - 1.0).abs() < 0.1, "{mean} {kr}");
    }
}
