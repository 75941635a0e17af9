//! The analysis of `value-spectrum`: the exact rescaling z = e^{-tV} x for a symmetric V given by
//! its spectral decomposition, single-linkage clusters, extreme points, the attention matrix and
//! its Booleanness and numerical rank (a cyclic Jacobi eigen-solver). Pure functions, f64.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// An orthonormal basis of R^d (rows), Gram-Schmidt on a Gaussian matrix drawn from `seed`.
pub fn orthonormal_basis(d: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    while basis.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
        for b in &basis {
            let c = dot(&v, b);
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
        }
        let r = dot(&v, &v).sqrt();
        if r > 1e-6 {
            basis.push(v.iter().map(|x| x / r).collect());
        }
    }
    basis
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// V = sum_k lambda_k phi_k phi_k^T (row-major d x d).
pub fn sym_from_spectrum(eigs: &[f64], basis: &[Vec<f64>]) -> Vec<f64> {
    let d = basis.len();
    let mut m = vec![0.0; d * d];
    for (l, phi) in eigs.iter().zip(basis) {
        for r in 0..d {
            for c in 0..d {
                m[r * d + c] += l * phi[r] * phi[c];
            }
        }
    }
    m
}

/// e^{s V} x = sum_k e^{s lambda_k} <phi_k, x> phi_k (exact for symmetric V).
pub fn exp_apply(eigs: &[f64], basis: &[Vec<f64>], s: f64, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (l, phi) in eigs.iter().zip(basis) {
        let c = (s * l).exp() * dot(phi, x);
        out.iter_mut().zip(phi).for_each(|(o, p)| *o += c * p);
    }
    out
}

/// Single-linkage clusters at distance `link`: a label per point (0.., in order of first
/// appearance).
pub fn clusters(points: &[Vec<f64>], link: f64) -> Vec<usize> {
    let n = points.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            if dist(&points[i], &points[j]) <= link {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut names = std::collections::HashMap::new();
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            let next = names.len();
            *names.entry(r).or_insert(next)
        })
        .collect()
}

pub fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// The largest distance between two points.
pub fn diameter(points: &[Vec<f64>]) -> f64 {
    let mut m: f64 = 0.0;
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            m = m.max(dist(a, b));
        }
    }
    m
}

/// The mean of each cluster, and the largest distance of a point to its cluster's mean.
pub fn cluster_means(points: &[Vec<f64>], labels: &[usize]) -> (Vec<Vec<f64>>, f64) {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let d = points.first().map_or(0, |p| p.len());
    let mut means = vec![vec![0.0; d]; k];
    let mut counts = vec![0usize; k];
    for (p, &l) in points.iter().zip(labels) {
        means[l].iter_mut().zip(p).for_each(|(m, x)| *m += x);
        counts[l] += 1;
    }
    for (m, c) in means.iter_mut().zip(&counts) {
        m.iter_mut().for_each(|v| *v /= *c as f64);
    }
    let radius = points
        .iter()
        .zip(labels)
        .map(|(p, &l)| dist(p, &means[l]))
        .fold(0.0, f64::max);
    (means, radius)
}

/// Unit directions covering S^{d-1} (d = 1, 2, 3): the two signs, `m` angles, or `m` points of
/// a Fibonacci lattice.
fn directions(d: usize, m: usize) -> Vec<Vec<f64>> {
    match d {
        1 => vec![vec![1.0], vec![-1.0]],
        2 => (0..m)
            .map(|k| {
                let a = std::f64::consts::TAU * k as f64 / m as f64;
                vec![a.cos(), a.sin()]
            })
            .collect(),
        3 => {
            let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
            (0..m)
                .map(|k| {
                    let z = 1.0 - 2.0 * (k as f64 + 0.5) / m as f64;
                    let r = (1.0 - z * z).sqrt();
                    let a = golden * k as f64;
                    vec![r * a.cos(), r * a.sin(), z]
                })
                .collect()
        }
        _ => panic!("extreme points: d = {d} is not 1, 2 or 3"),
    }
}

/// Whether each point is an extreme point (a vertex of the convex hull) of the set: some
/// direction u makes it the strict maximiser of <u, .> by more than `margin` (LP-free; the
/// directions are 3600 angles in 2D, 20000 Fibonacci points in 3D).
pub fn extreme_points(points: &[Vec<f64>], margin: f64) -> Vec<bool> {
    let d = points.first().map_or(1, |p| p.len());
    let dirs = directions(d, if d == 2 { 3600 } else { 20000 });
    let mut extreme = vec![false; points.len()];
    if points.len() == 1 {
        return vec![true];
    }
    for u in &dirs {
        let vals: Vec<f64> = points.iter().map(|p| dot(u, p)).collect();
        let (mut best, mut second) = (0usize, f64::NEG_INFINITY);
        for i in 1..vals.len() {
            if vals[i] > vals[best] {
                second = second.max(vals[best]);
                best = i;
            } else {
                second = second.max(vals[i]);
            }
        }
        if vals[best] - second > margin {
            extreme[best] = true;
        }
    }
    extreme
}

/// The key each token attends to most at T: argmax_j q_sign <z_i, z_j> (the scores beta e^{2t}
/// q_sign <z_i, z_j> of V = I order the keys as these products do; ties go to the lower index).
pub fn attention_groups(points: &[Vec<f64>], q_sign: f64) -> Vec<usize> {
    points
        .iter()
        .map(|a| {
            let mut best = (0usize, f64::NEG_INFINITY);
            for (j, b) in points.iter().enumerate() {
                let s = q_sign * dot(a, b);
                if s > best.1 {
                    best = (j, s);
                }
            }
            best.0
        })
        .collect()
}

/// The largest distance of a point to the mean of the points sharing its label.
pub fn group_radius(points: &[Vec<f64>], labels: &[usize]) -> f64 {
    let mut names = std::collections::HashMap::new();
    let dense: Vec<usize> = labels
        .iter()
        .map(|l| {
            let next = names.len();
            *names.entry(*l).or_insert(next)
        })
        .collect();
    cluster_means(points, &dense).1
}

/// The self-attention matrix P_ij = softmax_j(beta <q x_i, x_j>) of tokens x (rows): the
/// crate's f64 attention matrix ([`attnflow::render::attention_matrix`]) with SA, a full mask and
/// Q = K = I.
pub fn attention(x: &[Vec<f64>], beta_q: f64) -> Vec<Vec<f64>> {
    use attnflow::model::{Attention, Geometry, Mask, Model, Weights};
    let (n, d) = (x.len(), x.first().map_or(0, Vec::len));
    if n == 0 || d == 0 {
        return vec![Vec::new(); n];
    }
    let model = Model::new(
        Attention::Sa,
        Geometry::Euclidean,
        Mask::Full,
        Weights::identity(d),
        vec![beta_q],
    );
    let flat: Vec<f64> = x.iter().flatten().copied().collect();
    attnflow::render::attention_matrix(&model, &model.heads[0], beta_q, &flat, d)
        .chunks(n)
        .map(<[f64]>::to_vec)
        .collect()
}

/// max_i (1 - max_j P_ij): 0 for a Boolean (one-hot rows) matrix.
pub fn booleanness(p: &[Vec<f64>]) -> f64 {
    p.iter()
        .map(|row| 1.0 - row.iter().copied().fold(0.0, f64::max))
        .fold(0.0, f64::max)
}

/// The leaders: columns j that receive attention sum_i P_ij > 1/2.
pub fn leaders(p: &[Vec<f64>]) -> Vec<usize> {
    let n = p.len();
    (0..n)
        .filter(|&j| p.iter().map(|row| row[j]).sum::<f64>() > 0.5)
        .collect()
}

/// Eigenvalues (ascending) of a symmetric n x n matrix (row-major) by cyclic Jacobi rotations.
pub fn jacobi_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = a.iter().map(|v| v * v).sum::<f64>().max(1e-300);
        if off <= 1e-28 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut e: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    e.sort_by(f64::total_cmp);
    e
}

/// Singular values (descending) of a square matrix: square roots of the eigenvalues of P^T P.
pub fn singular_values(p: &[Vec<f64>]) -> Vec<f64> {
    let n = p.len();
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = (0..n).map(|k| p[k][i] * p[k][j]).sum();
        }
    }
    let mut s: Vec<f64> = jacobi_eigenvalues(g, n)
        .into_iter()
        .map(|e| e.max(0.0).sqrt())
        .collect();
    s.reverse();
    s
}

/// The number of singular values above `tol`.
pub fn numerical_rank(p: &[Vec<f64>], tol: f64) -> usize {
    singular_values(p).iter().filter(|&&s| s > tol).count()
}

/// Distinct levels of scalars: the number of single-linkage groups at distance `link`, and the
/// largest spread (max - min) within a group.
pub fn levels(values: &[f64], link: f64) -> (usize, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let (mut count, mut spread, mut start) = (1, 0.0f64, v[0]);
    for w in v.windows(2) {
        if w[1] - w[0] > link {
            spread = spread.max(w[0] - start);
            start = w[1];
            count += 1;
        }
    }
    spread = spread.max(v[v.len() - 1] - start);
    (count, spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basis_is_orthonormal_and_v_has_its_spectrum() {
        let b = orthonormal_basis(3, 5);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot(&b[i], &b[j]) - want).abs() < 1e-12);
            }
        }
        let eigs = [1.0, -0.5, 0.25];
        let v = sym_from_spectrum(&eigs, &b);
        let e = jacobi_eigenvalues(v.clone(), 3);
        for (got, want) in e.iter().zip([-0.5, 0.25, 1.0]) {
            assert!((got - want).abs() < 1e-12, "{e:?}");
        }
        // V phi_0 = phi_0.
        let vphi: Vec<f64> = (0..3).map(|r| dot(&v[r * 3..r * 3 + 3], &b[0])).collect();
        assert!(dist(&vphi, &b[0]) < 1e-12);
    }

    #[test]
    fn attention_groups_separate_vertices_the_linkage_merges() {
        // Two stationary vertices 0.36 apart (each the maximiser of its own functional:
        // |a|^2 = 5.85 > <a, b> = 5.82 < |b|^2 = 5.92), three tokens at each within 1e-3,
        // and a third vertex far away: a link of 0.4 merges the first two.
        let (a, b) = ([2.3, 0.75], [2.4, 0.4]);
        let mut pts = Vec::new();
        for (c, k) in [(a, 0.0), (a, 1.0), (a, 2.0), (b, 0.0), (b, 1.0), (b, 2.0)] {
            pts.push(vec![c[0] - 1e-3 * k / 2.0, c[1] - 1e-3 * k / 2.0]);
        }
        pts.push(vec![-2.7, -2.9]);
        let linked = clusters(&pts, 0.4);
        assert_eq!(linked[0], linked[3], "the linkage merges the two vertices");
        let (_, merged) = cluster_means(&pts, &linked);
        assert!(merged > 0.1, "{merged}");
        let groups = attention_groups(&pts, 1.0);
        assert_eq!(groups[..3], [0, 0, 0]);
        assert_eq!(groups[3..6], [3, 3, 3]);
        assert_eq!(groups[6], 6);
        let r = group_radius(&pts, &groups);
        assert!(r < 2e-3, "{r}");
        // Q = -I: every token attends to the most opposite one (both vertices to the third).
        let opposite = attention_groups(&pts, -1.0);
        assert_eq!(opposite[..6], [6; 6]);
        assert!(group_radius(&pts, &opposite) > 0.1);
    }

    #[test]
    fn exp_apply_matches_the_power_series_and_inverts() {
        let b = orthonormal_basis(2, 1);
        let eigs = [0.7, -0.3];
        let v = sym_from_spectrum(&eigs, &b);
        let x = [0.4, -1.3];
        let s = 0.9;
        // sum_k (s V)^k x / k!
        let (mut term, mut sum) = (x.to_vec(), x.to_vec());
        for k in 1..40 {
            term = (0..2)
                .map(|r| s * dot(&v[r * 2..r * 2 + 2], &term) / k as f64)
                .collect();
            sum.iter_mut().zip(&term).for_each(|(a, t)| *a += t);
        }
        assert!(dist(&exp_apply(&eigs, &b, s, &x), &sum) < 1e-12);
        let back = exp_apply(&eigs, &b, -s, &exp_apply(&eigs, &b, s, &x));
        assert!(dist(&back, &x) < 1e-12);
    }

    #[test]
    fn clusters_link_chains_and_split_gaps() {
        let pts: Vec<Vec<f64>> = [0.0, 0.05, 0.1, 1.0, 1.04, 3.0]
            .iter()
            .map(|&x| vec![x, 0.0])
            .collect();
        let l = clusters(&pts, 0.06);
        assert_eq!(l, vec![0, 0, 0, 1, 1, 2]);
        let (means, radius) = cluster_means(&pts, &l);
        assert!((means[0][0] - 0.05).abs() < 1e-12 && (means[1][0] - 1.02).abs() < 1e-12);
        assert!((radius - 0.05).abs() < 1e-12);
        assert!((diameter(&pts) - 3.0).abs() < 1e-12);
        let (count, spread) = levels(&[0.0, 0.05, 0.1, 1.0, 1.04, 3.0], 0.06);
        assert_eq!(count, 3);
        assert!((spread - 0.1).abs() < 1e-12);
    }

    #[test]
    fn extreme_points_are_the_hull_vertices() {
        // A square, its centre and a point on an edge (not a vertex).
        let sq: Vec<Vec<f64>> = vec![
            vec![1.0, 1.0],
            vec![-1.0, 1.0],
            vec![-1.0, -1.0],
            vec![1.0, -1.0],
            vec![0.0, 0.0],
            vec![1.0, 0.0],
        ];
        assert_eq!(
            extreme_points(&sq, 1e-6),
            vec![true, true, true, true, false, false]
        );
        // A tetrahedron and its centroid in 3D.
        let t: Vec<Vec<f64>> = vec![
            vec![1.0, 1.0, 1.0],
            vec![1.0, -1.0, -1.0],
            vec![-1.0, 1.0, -1.0],
            vec![-1.0, -1.0, 1.0],
            vec![0.0, 0.0, 0.0],
        ];
        assert_eq!(
            extreme_points(&t, 1e-6),
            vec![true, true, true, true, false]
        );
    }

    #[test]
    fn a_boolean_attention_matrix_has_the_rank_of_its_leaders() {
        // Rows one-hot on columns 0 or 3: rank 2, leaders {0, 3}, Booleanness 0.
        let p: Vec<Vec<f64>> = (0..5)
            .map(|i| {
                let mut r = vec![0.0; 5];
                r[if i < 2 { 0 } else { 3 }] = 1.0;
                r
            })
            .collect();
        assert_eq!(numerical_rank(&p, 1e-3), 2);
        assert_eq!(leaders(&p), vec![0, 3]);
        assert_eq!(booleanness(&p), 0.0);
        // Singular values of diag(3, 2, 1) in a rotated frame.
        let sv = singular_values(&[
            vec![3.0, 0.0, 0.0],
            vec![0.0, 0.0, 2.0],
            vec![0.0, -1.0, 0.0],
        ]);
        for (g, w) in sv.iter().zip([3.0, 2.0, 1.0]) {
            assert!((g - w).abs() < 1e-12, "{sv:?}");
        }
        // Uniform attention: rank 1, Booleanness 1 - 1/n.
        let x: Vec<Vec<f64>> = (0..4).map(|_| vec![0.0]).collect();
        let u = attention(&x, 1.0);
        assert_eq!(numerical_rank(&u, 1e-3), 1);
        assert!((booleanness(&u) - 0.75).abs() < 1e-12);
        // 1D, scores x_i x_j with x = (-2, 0.1, 3) at large beta: positive tokens attend to
        // the largest, negative ones to the smallest.
        let x: Vec<Vec<f64>> = [-2.0, 0.5, 3.0].iter().map(|&v| vec![v]).collect();
        let p = attention(&x, 40.0);
        assert!(booleanness(&p) < 1e-9);
        assert_eq!(leaders(&p), vec![0, 2]);
    }
}
