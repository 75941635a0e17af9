//! The pure pieces of `transport`: the closed-form flow of one neuron, the construction of the
//! piecewise-constant controls from sorted samples, exact W2 between equal-size empirical
//! measures (an assignment solver), and the W2 bound that no linear flow can beat.

use serde::Serialize;

/// One piece of the control: x' = w (a^T x + b)_+ for a time 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Neuron {
    pub w: [f64; 2],
    pub a: [f64; 2],
    pub b: f64,
}

/// How the closed form is evaluated: the ReLU flow, or the mutations' variants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Activation identity instead of ReLU: the flow is linear, every point moves.
    pub linear: bool,
    /// The exponent's sign flipped: s(t) = s0 e^(-c t) (mutation `closed-form-sign`).
    pub sign_error: bool,
}

/// x(t) under one neuron, in closed form. s = a^T x + b obeys s' = (a^T w) s where s > 0 (and
/// s stays on its side), so with c = a^T w: s(t) = s0 e^(c t) and
/// x(t) = x0 + w s0 (e^(c t) - 1) / c (w s0 t when c = 0); x does not move where s0 <= 0.
pub fn flow_point(n: &Neuron, x: [f64; 2], t: f64, rule: Rule) -> [f64; 2] {
    let s0 = n.a[0] * x[0] + n.a[1] * x[1] + n.b;
    if s0 <= 0.0 && !rule.linear {
        return x;
    }
    let mut c = n.a[0] * n.w[0] + n.a[1] * n.w[1];
    if rule.sign_error {
        c = -c;
    }
    let g = if c == 0.0 { t } else { (c * t).exp_m1() / c };
    [x[0] + n.w[0] * s0 * g, x[1] + n.w[1] * s0 * g]
}

/// The points after the pieces, each for a time 1, in order.
pub fn push(neurons: &[Neuron], points: &[[f64; 2]], rule: Rule) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|&x| neurons.iter().fold(x, |x, n| flow_point(n, x, 1.0, rule)))
        .collect()
}

/// One side of a monotone piecewise-linear map of the line, x > 0 (the centre 0 is fixed):
/// from quantile-coupled pairs (base[i], target[i]) (both sorted, same length), `pieces` knots
/// at the base quantiles u_j = 1/2 + (j / pieces)^exponent / 2, j = 0..pieces-1 (the first at
/// the centre 0; exponent > 1 crowds them towards it, where the map is steepest),
/// mapped to the target's quantiles; slope sigma_j on [p_j, p_(j+1)) is the secant, the last
/// (the tail) a least-squares slope through its knot. Returns (q_j, gamma_j): the image of knot
/// j and the log-ratio of the slopes on either side of it (gamma_0 = ln sigma_0).
pub fn half_line_map(
    base: &[f64],
    target: &[f64],
    pieces: usize,
    exponent: f64,
) -> Vec<(f64, f64)> {
    let n = base.len();
    assert_eq!(n, target.len());
    assert!(n >= 4 * pieces.max(1));
    // Distinct ranks, increasing (a knot per rank at most).
    let mut idx: Vec<usize> = Vec::with_capacity(pieces);
    for j in 0..pieces {
        let i = n / 2 + ((j as f64 / pieces as f64).powf(exponent) * (n / 2) as f64) as usize;
        idx.push(if j == 0 { i } else { i.max(idx[j - 1] + 1) });
    }
    assert!(idx[pieces - 1] < n, "more knots than samples");
    let knot = |j: usize| {
        if j == 0 {
            (0.0, 0.0)
        } else {
            (base[idx[j]], target[idx[j]])
        }
    };
    let mut out = Vec::with_capacity(pieces);
    let mut prev = 1.0f64;
    for j in 0..pieces {
        let (p, q) = knot(j);
        let sigma = if j + 1 < pieces {
            let (p1, q1) = knot(j + 1);
            (q1 - q) / (p1 - p)
        } else {
            let (mut sxy, mut sxx) = (0.0, 0.0);
            for i in idx[pieces - 1]..n {
                let (dx, dy) = (base[i] - p, target[i] - q);
                if dx > 0.0 {
                    sxy += dx * dy;
                    sxx += dx * dx;
                }
            }
            sxy / sxx
        };
        assert!(sigma > 0.0, "a monotone map has positive slopes");
        out.push((q, (sigma / prev).ln()));
        prev = sigma;
    }
    out
}

/// The neurons that realise `half_line_map` on coordinate `axis` (0 or 1), on the side
/// `positive` (x_axis > q) or its mirror image (x_axis < q): neuron j has its hyperplane at
/// the current image q_j of knot j (the knots further in have already been placed and are not
/// moved again), and rescales the distance to it by e^(gamma_j).
pub fn side_neurons(
    base: &[f64],
    target: &[f64],
    pieces: usize,
    exponent: f64,
    axis: usize,
) -> Vec<Neuron> {
    let mut out = Vec::new();
    for positive in [true, false] {
        let (b, t): (Vec<f64>, Vec<f64>) = if positive {
            (base.to_vec(), target.to_vec())
        } else {
            (
                base.iter().rev().map(|v| -v).collect(),
                target.iter().rev().map(|v| -v).collect(),
            )
        };
        let sgn = if positive { 1.0 } else { -1.0 };
        for (q, gamma) in half_line_map(&b, &t, pieces, exponent) {
            let mut n = Neuron {
                w: [0.0; 2],
                a: [0.0; 2],
                b: -q,
            };
            // The reflection x_axis -> -x_axis conjugates (w, a, b) into (R w, R a, b).
            n.a[axis] = sgn;
            n.w[axis] = sgn * gamma;
            out.push(n);
        }
    }
    out
}

/// The controls for a budget of `switches` pieces (even; 0: none): two for x2 (each half-line
/// rescaled about 0) and (K - 2) / 2 on each side of x1 (knots crowded by `exponent`, see
/// `half_line_map`). `base` and `target`: the sorted x1 and the sorted x2 coordinates of the
/// construction samples.
pub fn construct(
    base: &[Vec<f64>; 2],
    target: &[Vec<f64>; 2],
    switches: usize,
    exponent: f64,
) -> Vec<Neuron> {
    assert!(switches.is_multiple_of(2), "an even number of switches");
    if switches == 0 {
        return Vec::new();
    }
    let per_side = (switches - 2) / 2;
    let mut out = Vec::new();
    if per_side > 0 {
        out.extend(side_neurons(&base[0], &target[0], per_side, exponent, 0));
    }
    out.extend(side_neurons(&base[1], &target[1], 1, 1.0, 1));
    out
}

/// The minimum-cost perfect matching of an n x n cost matrix (row-major): the Hungarian method
/// with potentials (shortest augmenting paths, O(n^3), exact). Returns the cost and the column of
/// every row.
pub fn assignment(cost: &[f64], n: usize) -> (f64, Vec<usize>) {
    assert_eq!(cost.len(), n * n);
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    // p[j]: the row matched to column j (1-based, 0: none); way: the augmenting path.
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let row = &cost[(i0 - 1) * n..i0 * n];
            let (mut delta, mut j1) = (inf, 0);
            for j in 1..=n {
                if !used[j] {
                    let cur = row[j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col = vec![0; n];
    for j in 1..=n {
        col[p[j] - 1] = j - 1;
    }
    let total = (0..n).map(|i| cost[i * n + col[i]]).sum();
    (total, col)
}

/// The exact W2 distance between two empirical measures of n points each (uniform weights):
/// an optimal plan between them may be taken a permutation (Birkhoff), found by `assignment`
/// on the squared distances.
pub fn w2(x: &[[f64; 2]], y: &[[f64; 2]]) -> f64 {
    let n = x.len();
    assert_eq!(n, y.len());
    let mut cost = Vec::with_capacity(n * n);
    for a in x {
        for b in y {
            cost.push((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2));
        }
    }
    (assignment(&cost, n).0 / n as f64).sqrt()
}

/// A lower bound on W2(G, nu) for every Gaussian G in R^2, from the x1 marginal: W2 does not
/// grow under the projection on x1, a Gaussian projects to a Gaussian N(m, s^2), and in 1D
/// W2^2(N(m, s^2), nu_1) = int_0^1 (m + s z(u) - Q(u))^2 du (quantile coupling), whose minimum
/// over (m, s) is the residual of the least-squares line of Q(u) on z(u): var Q - cov(z, Q)^2 /
/// var z. Computed on quantile-coupled sorted samples (`gauss` from a Gaussian, `target` from
/// nu_1, same length). A linear flow (activation the identity) maps a Gaussian to a Gaussian,
/// so it can never get closer to nu than this.
pub fn linear_flow_bound(gauss: &[f64], target: &[f64]) -> f64 {
    let n = gauss.len() as f64;
    let (mz, mq) = (
        gauss.iter().sum::<f64>() / n,
        target.iter().sum::<f64>() / n,
    );
    let (mut szz, mut szq, mut sqq) = (0.0, 0.0, 0.0);
    for (z, q) in gauss.iter().zip(target) {
        szz += (z - mz) * (z - mz);
        szq += (z - mz) * (q - mq);
        sqq += (q - mq) * (q - mq);
    }
    ((sqq - szq * szq / szz) / n).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn rk4(n: &Neuron, x: [f64; 2], steps: usize) -> [f64; 2] {
        let f = |x: [f64; 2]| {
            let s = (n.a[0] * x[0] + n.a[1] * x[1] + n.b).max(0.0);
            [n.w[0] * s, n.w[1] * s]
        };
        let h = 1.0 / steps as f64;
        let add = |x: [f64; 2], k: [f64; 2], c: f64| [x[0] + c * k[0], x[1] + c * k[1]];
        let mut x = x;
        for _ in 0..steps {
            let k1 = f(x);
            let k2 = f(add(x, k1, h / 2.0));
            let k3 = f(add(x, k2, h / 2.0));
            let k4 = f(add(x, k3, h));
            for c in 0..2 {
                x[c] += h / 6.0 * (k1[c] + 2.0 * k2[c] + 2.0 * k3[c] + k4[c]);
            }
        }
        x
    }

    #[test]
    fn closed_form_solves_the_neuron_ode() {
        // w not parallel to a, c = a.w of both signs and 0; points on both sides.
        let ns = [
            Neuron {
                w: [0.7, -0.4],
                a: [0.6, 0.8],
                b: 0.3,
            },
            Neuron {
                w: [-1.1, 0.2],
                a: [1.0, 0.0],
                b: -0.5,
            },
            Neuron {
                w: [0.8, -0.6],
                a: [0.6, 0.8],
                b: 1.0,
            },
        ];
        for n in &ns {
            for x in [[0.5, 0.5], [-2.0, 1.0], [1.5, -0.2], [-0.3, -1.7]] {
                let exact = flow_point(n, x, 1.0, Rule::default());
                let num = rk4(n, x, 4000);
                for c in 0..2 {
                    assert!(
                        (exact[c] - num[c]).abs() < 1e-11,
                        "{n:?} {x:?}: {exact:?} {num:?}"
                    );
                }
            }
        }
        // Where s0 <= 0 nothing moves; the linear rule moves it.
        let n = ns[1];
        assert_eq!(flow_point(&n, [0.0, 3.0], 1.0, Rule::default()), [0.0, 3.0]);
        let lin = Rule {
            linear: true,
            ..Rule::default()
        };
        assert_ne!(flow_point(&n, [0.0, 3.0], 1.0, lin), [0.0, 3.0]);
    }

    fn sorted_normal(n: usize, seed: u64, f: impl Fn(f64, &mut ChaCha8Rng) -> f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v: Vec<f64> = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                f(z, &mut rng)
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn side_neurons_realise_the_piecewise_linear_map() {
        // A Gaussian to a wider, asymmetric-tailed target: at every knot the pushed base knot
        // lands on the target's quantile, on both sides.
        let base = sorted_normal(4000, 1, |z, _| z);
        let target = sorted_normal(4000, 2, |z, _| if z > 0.0 { 2.0 * z } else { z / 3.0 });
        let pieces = 5;
        let neurons = side_neurons(&base, &target, pieces, 1.0, 0);
        assert_eq!(neurons.len(), 2 * pieces);
        let n = base.len();
        for j in 1..pieces {
            for i in [
                n / 2 + j * n / (2 * pieces),
                n - 1 - (n / 2 + j * n / (2 * pieces)),
            ] {
                // The mirrored side's knots sit at the mirrored ranks.
                let x = push(&neurons, &[[base[i], 0.0]], Rule::default())[0][0];
                assert!(
                    (x - target[i]).abs() < 1e-9,
                    "knot {j}, rank {i}: {x} vs {}",
                    target[i]
                );
            }
        }
        // Monotone, and 0 is fixed.
        let xs: Vec<f64> = (-40..=40).map(|k| k as f64 / 10.0).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| push(&neurons, &[[x, 0.5]], Rule::default())[0][0])
            .collect();
        assert!(ys.windows(2).all(|w| w[1] > w[0]));
        assert!(push(&neurons, &[[0.0, 0.0]], Rule::default())[0][0].abs() < 1e-15);
        // Points on x2 do not move under x1's neurons.
        assert_eq!(push(&neurons, &[[0.0, 2.5]], Rule::default())[0][1], 2.5);
    }

    #[test]
    fn one_piece_per_side_is_the_least_squares_scaling() {
        // target = 0.5 * base exactly: gamma = ln 0.5 on both sides, the map is x -> x / 2.
        let base = sorted_normal(1000, 3, |z, _| z);
        let target: Vec<f64> = base.iter().map(|v| 0.5 * v).collect();
        let ns = side_neurons(&base, &target, 1, 1.0, 1);
        for n in &ns {
            assert!((n.a[1] * n.w[1] - 0.5f64.ln()).abs() < 1e-12);
        }
        for y in [-2.0, -0.1, 0.3, 4.0] {
            let p = push(&ns, &[[1.0, y]], Rule::default())[0];
            assert!((p[1] - 0.5 * y).abs() < 1e-12 && p[0] == 1.0);
        }
    }

    #[test]
    fn assignment_is_the_brute_force_minimum() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in 1..=6 {
            for _ in 0..20 {
                let cost: Vec<f64> = (0..n * n).map(|_| rng.random::<f64>()).collect();
                let (best, col) = assignment(&cost, n);
                let mut perm: Vec<usize> = (0..n).collect();
                let mut brute = f64::INFINITY;
                permute(&mut perm, 0, &mut |p| {
                    brute = brute.min((0..n).map(|i| cost[i * n + p[i]]).sum());
                });
                assert!((best - brute).abs() < 1e-12, "n = {n}: {best} vs {brute}");
                let mut seen = col.clone();
                seen.sort();
                assert_eq!(seen, (0..n).collect::<Vec<_>>());
            }
        }
    }

    fn permute(p: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
        if k == p.len() {
            f(p);
            return;
        }
        for i in k..p.len() {
            p.swap(k, i);
            permute(p, k + 1, f);
            p.swap(k, i);
        }
    }

    #[test]
    fn w2_of_a_shift_and_of_a_permutation() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x: Vec<[f64; 2]> = (0..50).map(|_| [rng.random(), rng.random()]).collect();
        let mut y = x.clone();
        y.reverse();
        assert!(w2(&x, &y) < 1e-12);
        // A small shift: the identity matching is optimal (the points are far apart relative
        // to it), W2 = |shift|.
        let s: Vec<[f64; 2]> = x.iter().map(|p| [p[0] + 3e-4, p[1] - 4e-4]).collect();
        assert!((w2(&x, &s) - 5e-4).abs() < 1e-12);
        // In 1D (x2 = 0) W2 is the sorted (quantile) matching.
        let a: Vec<f64> = (0..40).map(|_| rng.random::<f64>()).collect();
        let b: Vec<f64> = (0..40).map(|_| 2.0 * rng.random::<f64>()).collect();
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        let sorted = (sa
            .iter()
            .zip(&sb)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f64>()
            / 40.0)
            .sqrt();
        let pa: Vec<[f64; 2]> = a.iter().map(|&v| [v, 0.0]).collect();
        let pb: Vec<[f64; 2]> = b.iter().map(|&v| [v, 0.0]).collect();
        assert!((w2(&pa, &pb) - sorted).abs() < 1e-12);
    }

    #[test]
    fn linear_bound_vanishes_for_gaussians_and_not_for_a_mixture() {
        let g = sorted_normal(100_000, 11, |z, _| z);
        let gauss = sorted_normal(100_000, 12, |z, _| 1.0 + 3.0 * z);
        // Only the sampling W2 between two samples of 10^5 (their extreme order statistics
        // differ by O(sd)): below 2% of the sd 3.
        let lb = linear_flow_bound(&g, &gauss);
        assert!(lb < 0.06, "{lb}");
        // Two point masses at +-1: the best Gaussian N(0, s^2) has s = E|z| = sqrt(2 / pi),
        // W2^2 = 1 - 2 / pi.
        let signs = sorted_normal(
            100_000,
            13,
            |_, r| if r.random::<bool>() { 1.0 } else { -1.0 },
        );
        let lb = linear_flow_bound(&g, &signs);
        let want = (1.0 - 2.0 / std::f64::consts::PI).sqrt();
        assert!((lb - want).abs() < 0.01, "{lb} vs {want}");
    }
}
