//! Observables of a configuration (docs/model.md §1): the energy E_beta and pairwise cosines.
//!
//! The O(n^2) part is streamed per query by each backend as [`PairStats`] (the `pair_stats`
//! kernel and its twins); this module turns those per-token rows into per-system numbers in
//! f64, identically for every backend.

/// Per-token row of the pair statistics of token i against all tokens j of its system.
///
/// `lse_max` and `lse_sum` hold sum_j exp(beta <x_i, x_j>) = exp(lse_max) * lse_sum in a form
/// that cannot overflow; cosines are between the normalised tokens and exclude j = i.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairStats {
    pub lse_max: f64,
    pub lse_sum: f64,
    pub min_cos: f64,
    pub sum_cos: f64,
    /// sum_j <x_i, x_j> over all j (j = i included), for the beta = 0 energy.
    pub sum_dot: f64,
}

/// The per-system observables written to metrics.csv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// E_beta = 1/(2 beta n^2) sum_{i,j} exp(beta <x_i, x_j>). At beta = 0 the beta -> 0 limit
    /// with the constant 1/(2 beta) removed: 1/(2 n^2) sum_{i,j} <x_i, x_j>.
    pub energy: f64,
    /// log E_beta, finite for every beta (E_beta itself overflows f64 above about beta = 710).
    pub log_energy: f64,
    /// Mean of cos(x_i, x_j) over pairs i != j (1 when n = 1).
    pub mean_cos: f64,
    /// Minimum of cos(x_i, x_j) over pairs i != j (1 when n = 1).
    pub min_cos: f64,
}

/// Reduces the per-token rows of one system (length n) to its observables.
pub fn summarise(rows: &[PairStats], beta: f64) -> Metrics {
    let n = rows.len() as f64;
    let log_energy = if beta > 0.0 {
        // log sum_i exp(lse_max_i) * lse_sum_i, then one exp at the end.
        let top = rows
            .iter()
            .map(|r| r.lse_max)
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = rows
            .iter()
            .map(|r| (r.lse_max - top).exp() * r.lse_sum)
            .sum();
        top + s.ln() - (2.0 * beta * n * n).ln()
    } else {
        (rows.iter().map(|r| r.sum_dot).sum::<f64>() / (2.0 * n * n)).ln()
    };
    let energy = if beta > 0.0 {
        log_energy.exp()
    } else {
        rows.iter().map(|r| r.sum_dot).sum::<f64>() / (2.0 * n * n)
    };
    if rows.len() < 2 {
        return Metrics {
            energy,
            log_energy,
            mean_cos: 1.0,
            min_cos: 1.0,
        };
    }
    let mean_cos = rows.iter().map(|r| r.sum_cos).sum::<f64>() / (n * (n - 1.0));
    let min_cos = rows.iter().map(|r| r.min_cos).fold(f64::INFINITY, f64::min);
    Metrics {
        energy,
        log_energy,
        mean_cos,
        min_cos,
    }
}

// ---------------------------------------------------------------------------------------
// Host-side observables of one system x [n, d] (f64), streamed over pairs with O(n d) memory.
// They serve the experiments; the O(n^2) ones are parallel over i with rayon.

use rayon::prelude::*;

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt()
}

/// Fraction of pairs i < j with cos(x_i, x_j) >= `threshold` (1 when n < 2).
pub fn close_pair_fraction(x: &[f64], d: usize, threshold: f64) -> f64 {
    let n = x.len() / d;
    if n < 2 {
        return 1.0;
    }
    let close: usize = (0..n)
        .into_par_iter()
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            (i + 1..n)
                .filter(|&j| cosine(xi, &x[j * d..(j + 1) * d]) >= threshold)
                .count()
        })
        .sum();
    close as f64 / (n * (n - 1) / 2) as f64
}

/// Number of clusters: connected components of the graph joining tokens whose cosine is at
/// least `threshold` (union-find over streamed pairs; O(n^2 d) time, O(n) memory).
pub fn cluster_count(x: &[f64], d: usize, threshold: f64) -> usize {
    cluster_labels(x, d, threshold).1
}

/// Cluster label of every token (0..k, in order of first appearance) and the count k.
pub fn cluster_labels(x: &[f64], d: usize, threshold: f64) -> (Vec<usize>, usize) {
    let n = x.len() / d;
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    // Edges found in parallel per row, joined serially (rows in blocks to bound memory).
    let block = 256;
    for start in (0..n).step_by(block) {
        let end = (start + block).min(n);
        let edges: Vec<(usize, usize)> = (start..end)
            .into_par_iter()
            .flat_map_iter(|i| {
                let xi = &x[i * d..(i + 1) * d];
                (i + 1..n)
                    .filter(move |&j| cosine(xi, &x[j * d..(j + 1) * d]) >= threshold)
                    .map(move |j| (i, j))
            })
            .collect();
        for (i, j) in edges {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut label = vec![usize::MAX; n];
    let mut roots = std::collections::HashMap::new();
    for (i, l) in label.iter_mut().enumerate() {
        let r = find(&mut parent, i);
        let next = roots.len();
        *l = *roots.entry(r).or_insert(next);
    }
    let k = roots.len();
    (label, k)
}

/// The cosine at or above which two tokens are joined into one cluster (the metastability
/// experiment's count, and `attnflow view`'s).
pub const CLUSTER_COS: f64 = 0.99;

/// The same labels and count as [`cluster_labels`] (connected components of cos >= `threshold`,
/// labelled in order of first appearance), faster for d <= 3 and a positive threshold: the
/// normalised tokens are put in a grid of cells of diameter 0.9 r, r = sqrt(2 - 2 threshold)
/// the largest chord of a joined pair, so every cell is one component without a test; only
/// neighbouring cells (within r) not yet joined are compared pair by pair, with the same
/// cosine as [`cluster_labels`], until one pair joins them. Other cases use [`cluster_labels`].
pub fn cluster_labels_grid(x: &[f64], d: usize, threshold: f64) -> (Vec<usize>, usize) {
    if d > 3 || threshold <= 0.0 || threshold >= 1.0 {
        return cluster_labels(x, d, threshold);
    }
    let n = x.len() / d;
    let r = (2.0 - 2.0 * threshold).sqrt();
    let side = 0.9 * r / (d as f64).sqrt();
    let reach = (r / side).ceil() as i32;
    let mut cells: std::collections::HashMap<[i32; 3], Vec<usize>> =
        std::collections::HashMap::new();
    for (i, t) in x.chunks(d).enumerate() {
        let nrm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        if nrm.is_nan() || nrm <= 0.0 || !nrm.is_finite() {
            // cos is NaN against a zero token: it joins nothing (as in cluster_labels).
            continue;
        }
        let mut key = [0i32; 3];
        for (k, v) in key.iter_mut().zip(t) {
            *k = (v / nrm / side).floor() as i32;
        }
        cells.entry(key).or_default().push(i);
    }
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    fn union(p: &mut [usize], i: usize, j: usize) {
        let (a, b) = (find(p, i), find(p, j));
        if a != b {
            p[a.max(b)] = a.min(b);
        }
    }
    for members in cells.values() {
        for &j in &members[1..] {
            union(&mut parent, members[0], j);
        }
    }
    let span = |k: usize| if k < d { -reach..=reach } else { 0..=0 };
    let mut keys: Vec<[i32; 3]> = cells.keys().copied().collect();
    keys.sort_unstable();
    for a in &keys {
        let cell_a = &cells[a];
        for o0 in span(0) {
            for o1 in span(1) {
                for o2 in span(2) {
                    let b = [a[0] + o0, a[1] + o1, a[2] + o2];
                    // Each unordered pair of cells once.
                    if b <= *a {
                        continue;
                    }
                    let Some(cell_b) = cells.get(&b) else {
                        continue;
                    };
                    if find(&mut parent, cell_a[0]) == find(&mut parent, cell_b[0]) {
                        continue;
                    }
                    'pairs: for &i in cell_a {
                        let xi = &x[i * d..(i + 1) * d];
                        for &j in cell_b {
                            if cosine(xi, &x[j * d..(j + 1) * d]) >= threshold {
                                union(&mut parent, i, j);
                                break 'pairs;
                            }
                        }
                    }
                }
            }
        }
    }
    let mut label = vec![usize::MAX; n];
    let mut roots = std::collections::HashMap::new();
    for (i, l) in label.iter_mut().enumerate() {
        let r = find(&mut parent, i);
        let next = roots.len();
        *l = *roots.entry(r).or_insert(next);
    }
    let k = roots.len();
    (label, k)
}

/// The order parameter |(1/n) sum_i x_i| (1 for a single cluster of unit tokens, about
/// n^{-1/2} for uniform ones).
pub fn order_parameter(x: &[f64], d: usize) -> f64 {
    let n = (x.len() / d) as f64;
    let mut mean = vec![0.0; d];
    for t in x.chunks(d) {
        mean.iter_mut().zip(t).for_each(|(m, v)| *m += v / n);
    }
    mean.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// W_2 between the empirical measures of two sets of reals (any sizes), from their quantile
/// functions: (int_0^1 |F_a^{-1}(u) - F_b^{-1}(u)|^2 du)^{1/2}.
fn wasserstein2_1d(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut u, mut sum) = (0usize, 0usize, 0.0f64, 0.0f64);
    while i < a.len() && j < b.len() {
        let next = ((i + 1) as f64 / na).min((j + 1) as f64 / nb);
        sum += (next - u) * (a[i] - b[j]).powi(2);
        u = next;
        if ((i + 1) as f64 / na - next).abs() < 1e-15 {
            i += 1;
        }
        if ((j + 1) as f64 / nb - next).abs() < 1e-15 {
            j += 1;
        }
    }
    sum.sqrt()
}

/// Sliced Wasserstein-2 distance between token sets a [n, d] and b [m, d]: the root mean
/// square over `directions` random unit directions (seeded) of W_2 between the projections.
pub fn sliced_wasserstein(a: &[f64], b: &[f64], d: usize, directions: usize, seed: u64) -> f64 {
    let sq: f64 = (0..directions)
        .into_par_iter()
        .map(|k| {
            let theta: Vec<f64> = (0..d)
                .map(|c| super::rng::normal(seed, super::rng::Stream::Noise, k as u32, 0, c as u32))
                .collect();
            let norm = theta.iter().map(|v| v * v).sum::<f64>().sqrt();
            let proj = |x: &[f64]| -> Vec<f64> {
                x.chunks(d)
                    .map(|t| t.iter().zip(&theta).map(|(p, q)| p * q).sum::<f64>() / norm)
                    .collect()
            };
            wasserstein2_1d(&mut proj(a), &mut proj(b)).powi(2)
        })
        .sum();
    (sq / directions as f64).sqrt()
}

/// Exact W_1 on the circle (arc length) between the empirical measures of two sets of
/// angles (any sizes): min over c of int_0^{2 pi} |F_a(t) - F_b(t) - c| dt, attained at a
/// weighted median of F_a - F_b.
pub fn circle_w1(a: &[f64], b: &[f64]) -> f64 {
    let tau = std::f64::consts::TAU;
    let wrap = |t: f64| t.rem_euclid(tau);
    // Events: +1/na at each a, -1/nb at each b; G = F_a - F_b is piecewise constant.
    let mut events: Vec<(f64, f64)> = a
        .iter()
        .map(|&t| (wrap(t), 1.0 / a.len() as f64))
        .chain(b.iter().map(|&t| (wrap(t), -1.0 / b.len() as f64)))
        .collect();
    events.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Pieces (value of G, length) around the circle starting at 0.
    let mut pieces = Vec::with_capacity(events.len() + 1);
    let (mut g, mut t) = (0.0, 0.0);
    for &(at, w) in &events {
        pieces.push((g, at - t));
        g += w;
        t = at;
    }
    pieces.push((g, tau - t));
    // Weighted median of G with weights = lengths.
    let mut sorted = pieces.clone();
    sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
    let half = tau / 2.0;
    let mut acc = 0.0;
    let mut c = sorted[0].0;
    for &(v, len) in &sorted {
        acc += len;
        if acc >= half {
            c = v;
            break;
        }
    }
    pieces.iter().map(|&(v, len)| (v - c).abs() * len).sum()
}

#[cfg(test)]
mod host_tests {
    use super::*;

    #[test]
    fn grid_cluster_labels_equal_the_pairwise_ones() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for d in [2usize, 3] {
            for spread in [0.02f64, 0.08, 0.5, 2.0] {
                // Tokens around 6 random centres, spread from tight to uniform, some not unit.
                let centres: Vec<f64> = (0..6 * d).map(|_| rng.random::<f64>() - 0.5).collect();
                let mut x = Vec::new();
                for i in 0..700 {
                    let c = &centres[(i % 6) * d..(i % 6 + 1) * d];
                    let scale = 0.5 + rng.random::<f64>();
                    for v in c {
                        x.push(scale * (v + spread * (rng.random::<f64>() - 0.5)));
                    }
                }
                for threshold in [0.99, 0.9, 0.5] {
                    let want = cluster_labels(&x, d, threshold);
                    let got = cluster_labels_grid(&x, d, threshold);
                    assert_eq!(got, want, "d = {d}, spread {spread}, threshold {threshold}");
                }
            }
        }
    }

    #[test]
    fn clusters_pairs_and_order_parameter_of_known_configurations() {
        // Three tight groups on the circle plus one loner.
        let mut x = Vec::new();
        for (angle, count) in [(0.0f64, 5), (2.0, 4), (4.0, 3), (5.5, 1)] {
            for k in 0..count {
                let t = angle + 1e-3 * k as f64;
                x.extend([t.cos(), t.sin()]);
            }
        }
        assert_eq!(cluster_count(&x, 2, 0.999), 4);
        let n = 13.0;
        let close = (10.0 + 6.0 + 3.0) / (n * (n - 1.0) / 2.0);
        assert!((close_pair_fraction(&x, 2, 0.999) - close).abs() < 1e-12);
        let one = vec![0.6, 0.8, 0.6, 0.8];
        assert!((order_parameter(&one, 2) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn wasserstein_distances_of_shifted_sets() {
        // A rigid shift by s of a 1-d set along e_1 in d = 2: every projection shifts by
        // s cos(phi), so SW_2 = s sqrt(E cos^2) = s / sqrt(2).
        let a: Vec<f64> = (0..50).flat_map(|i| [i as f64 / 50.0, 0.0]).collect();
        let b: Vec<f64> = a.chunks(2).flat_map(|t| [t[0] + 0.3, t[1]]).collect();
        let sw = sliced_wasserstein(&a, &b, 2, 4000, 1);
        assert!((sw - 0.3 / 2f64.sqrt()).abs() < 0.01, "{sw}");
        // On the circle: rotating n equally spaced points by r < 2 pi / n costs r.
        let n = 8;
        let p: Vec<f64> = (0..n)
            .map(|i| i as f64 * std::f64::consts::TAU / n as f64)
            .collect();
        let q: Vec<f64> = p.iter().map(|t| t + 0.2).collect();
        assert!(
            (circle_w1(&p, &q) - 0.2).abs() < 1e-12,
            "{}",
            circle_w1(&p, &q)
        );
        // One point against another: the shorter arc.
        assert!((circle_w1(&[0.1], &[6.0]) - (0.1 + std::f64::consts::TAU - 6.0)).abs() < 1e-12);
        assert!(circle_w1(&p, &p) < 1e-15);
    }
}
