//! The analysis of `metastability`: plateaus of the normalised energy, the metastable cluster
//! counts per beta and the theory's most unstable mode beside them.

use serde::Serialize;

use super::simulate::Observations;
use attnflow::stats::{mean, mean_se};

/// Largest |d ln e / d ln t| over an observation interval that counts as flat (even a single
/// token of 256 joining a cluster of mass 1/10 at e ~ 0.1 raises ln e by about 0.008, a slope
/// of 0.07 over one interval of 20 per decade).
pub const FLAT: f64 = 0.02;
/// A plateau must lie above this multiple of the initial (uniform) normalised energy.
const CLUSTERED: f64 = 1.5;
/// Relative decrease of the energy per interval tolerated as round-off (the f32 state: a
/// relative error of about beta u = 144 x 6e-8 = 9e-6 in E at the quick size's largest beta,
/// and the integrator's tolerance).
pub const ROUND_OFF: f64 = 1e-4;

/// One plateau of the normalised energy: observation indices [start, end] and the cluster
/// count at its start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    pub start: usize,
    pub end: usize,
    pub clusters: usize,
}

/// Plateaus of e over the observations from index `from` on (log-spaced times). Only
/// clustered states count: the uniform start is a saddle whose energy is also flat until the
/// instability has grown (for small beta and large n it still is at t = 1), so a plateau must
/// lie above `CLUSTERED` times the initial energy (clustering raises e by a factor of about 2
/// or more: e(0) ~ (2 pi beta)^{-1/2}, k* equal clusters give ~ 1/k* ~ (2 beta)^{-1/2}).
pub fn plateaus(t: &[f64], e: &[f64], clusters: &[usize], from: usize) -> Vec<Plateau> {
    let mut out = Vec::new();
    let mut run_start: Option<usize> = None;
    let floor = CLUSTERED * e[0];
    for i in from..e.len() {
        let flat_next = i + 1 < e.len()
            && e[i] >= floor
            && (e[i + 1] / e[i]).ln().abs() < FLAT * (t[i + 1] / t[i]).ln();
        match (run_start, flat_next) {
            (None, true) => run_start = Some(i),
            (Some(s), false) => {
                // i is the last point of the run; at least two flat intervals.
                if i - s >= 2 {
                    out.push(Plateau {
                        start: s,
                        end: i,
                        clusters: clusters[s],
                    });
                }
                run_start = None;
            }
            _ => {}
        }
    }
    out
}

/// The summary of one beta over its starts.
#[derive(Serialize)]
pub struct PerBeta {
    pub beta: f64,
    pub first_plateau_clusters: Vec<f64>,
    pub first_plateau_clusters_mean: f64,
    pub first_plateau_clusters_se: f64,
    pub longest_plateau_clusters: Vec<f64>,
    pub plateaus: Vec<f64>,
    pub final_clusters: Vec<f64>,
    pub end_of_first_plateau_t: Vec<f64>,
    pub most_unstable_mode_k_star: usize,
}

/// The analysis of every system.
pub struct Analysis {
    /// The largest relative fall of the energy between consecutive observations (0 when it
    /// never falls).
    pub worst_drop: f64,
    pub per_beta: Vec<PerBeta>,
    /// Mean cluster count on the first plateau, per beta.
    pub plateau_counts_mean: Vec<f64>,
    /// (beta, replicate, t_start, t_end, e at the start, clusters) of every plateau.
    pub plateau_rows: Vec<Vec<f64>>,
    pub merged_systems: usize,
    /// The fewest plateaus of a system of the largest beta.
    pub fewest_plateaus_largest: usize,
    /// The systems with at least one plateau.
    pub systems_with_a_plateau: usize,
}

pub fn analyse(obs: &Observations, betas: &[f64], replicates: usize) -> Analysis {
    let times = &obs.times;
    let mut a = Analysis {
        worst_drop: 0.0,
        per_beta: Vec::new(),
        plateau_counts_mean: Vec::new(),
        plateau_rows: Vec::new(),
        merged_systems: 0,
        fewest_plateaus_largest: usize::MAX,
        systems_with_a_plateau: 0,
    };
    for (bi, &beta) in betas.iter().enumerate() {
        let mut first_counts = Vec::new();
        let mut longest_counts = Vec::new();
        let mut n_plateaus = Vec::new();
        let mut finals = Vec::new();
        let mut first_merge_times = Vec::new();
        for r in 0..replicates {
            let s = bi * replicates + r;
            let e = &obs.energy[s];
            for k in 1..e.len() {
                let drop = 1.0 - e[k] / e[k - 1];
                // A drop that is not a number (never: the states are checked finite) shows.
                a.worst_drop = if drop.is_nan() || a.worst_drop.is_nan() {
                    f64::NAN
                } else {
                    a.worst_drop.max(drop)
                };
            }
            // Plateaus from t_first on (index 1 is t = t_first; index 0 the uniform start).
            let p = plateaus(times, &obs.normalised[s], &obs.clusters[s], 1);
            let fin = *obs.clusters[s].last().unwrap_or(&0);
            finals.push(fin as f64);
            n_plateaus.push(p.len() as f64);
            if bi + 1 == betas.len() {
                a.fewest_plateaus_largest = a.fewest_plateaus_largest.min(p.len());
            }
            if let Some(first) = p.first() {
                a.systems_with_a_plateau += 1;
                first_counts.push(first.clusters as f64);
                if fin < first.clusters {
                    a.merged_systems += 1;
                }
                if p.len() >= 2 {
                    first_merge_times.push(times[first.end]);
                }
            }
            if let Some(long) = p.iter().max_by(|a, b| {
                (times[a.end] / times[a.start]).total_cmp(&(times[b.end] / times[b.start]))
            }) {
                longest_counts.push(long.clusters as f64);
            }
            for pl in &p {
                a.plateau_rows.push(vec![
                    beta,
                    r as f64,
                    times[pl.start],
                    times[pl.end],
                    obs.normalised[s][pl.start],
                    pl.clusters as f64,
                ]);
            }
        }
        let k_star = attnflow::theory::modes::most_unstable_mode(beta);
        a.plateau_counts_mean.push(mean(&first_counts));
        a.per_beta.push(PerBeta {
            beta,
            first_plateau_clusters_mean: mean(&first_counts),
            first_plateau_clusters_se: mean_se(&first_counts).1,
            first_plateau_clusters: first_counts,
            longest_plateau_clusters: longest_counts,
            plateaus: n_plateaus,
            final_clusters: finals,
            end_of_first_plateau_t: first_merge_times,
            most_unstable_mode_k_star: k_star,
        });
    }
    a
}

/// The merge time of two point clusters of equal mass on the circle (SA, Q = K = V = I): each
/// puts the weight w = 1 / (1 + e^{beta (1 - cos phi)}) on the other, at angle phi, and moves
/// toward it at w sin phi, so dphi/dt = -2 sin phi / (1 + e^{beta (1 - cos phi)}). Returns the
/// time phi takes from phi0 down to phi_end (Simpson's rule on dt = -dphi / phi'). For large
/// beta it is e^{beta (1 - cos phi0)} / (2 beta sin^2 phi0) (1 + O(1 / beta)) (Laplace), so
/// ln(beta t_merge) against beta has the slope 1 - cos phi0.
pub fn two_cluster_merge_time(beta: f64, phi0: f64, phi_end: f64) -> f64 {
    merge_time_with_barrier(beta, phi0, phi_end, |p| 1.0 - p.cos())
}

/// The reduced law with the barrier 1 - cos phi replaced by `barrier(phi)` (the wrong model
/// of `--mutate gaussian-merge-law` takes phi^2 / 2, the small-angle form of 1 - cos phi).
pub fn merge_time_with_barrier(
    beta: f64,
    phi0: f64,
    phi_end: f64,
    barrier: impl Fn(f64) -> f64,
) -> f64 {
    let k = 4000;
    let h = (phi0 - phi_end) / k as f64;
    let f = |p: f64| (1.0 + (beta * barrier(p)).exp()) / (2.0 * p.sin());
    let mut s = f(phi_end) + f(phi0);
    for i in 1..k {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(phi_end + i as f64 * h);
    }
    s * h / 3.0
}

/// The slope of ln(beta t_merge) against beta over these betas for the reduced two-cluster
/// law (merge when the gap has halved), beside its large-beta limit 1 - cos phi0.
pub fn merge_slope(betas: &[f64], times: &[f64]) -> attnflow::stats::Fit {
    let y: Vec<f64> = betas.iter().zip(times).map(|(b, t)| (b * t).ln()).collect();
    attnflow::stats::fit_line(betas, &y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cluster_merge_time_limits() {
        // beta = 0: dphi/dt = -sin phi, t = ln(tan(phi0 / 2) / tan(phi_end / 2)).
        let (p0, pe) = (1.2f64, 0.6f64);
        let want = ((p0 / 2.0).tan() / (pe / 2.0).tan()).ln();
        assert!((two_cluster_merge_time(0.0, p0, pe) - want).abs() < 1e-9);
        // Large beta: the Laplace form, with relative error O(1 / (beta (1 - cos phi0))).
        let beta = 200.0;
        let laplace = (beta * (1.0 - p0.cos())).exp() / (2.0 * beta * p0.sin().powi(2));
        let r = two_cluster_merge_time(beta, p0, pe) / laplace;
        assert!((r - 1.0).abs() < 0.02, "{r}");
        // The slope of ln(beta t) tends to 1 - cos phi0 (within 3 % from beta (1 - cos) ~ 5).
        let betas = [8.0, 10.0, 12.0, 14.0, 16.0];
        let t: Vec<f64> = betas
            .iter()
            .map(|&b| two_cluster_merge_time(b, p0, pe))
            .collect();
        let s = merge_slope(&betas, &t).slope / (1.0 - p0.cos());
        assert!((0.95..1.0).contains(&s), "{s}");
    }

    #[test]
    fn a_staircase_has_two_plateaus() {
        // Log-spaced times; e rises from the uniform 0.1 to a plateau at 0.3 (3 clusters),
        // jumps to a plateau at 0.6 (2 clusters) and stays there.
        let t: Vec<f64> = (0..30).map(|k| 10f64.powf(k as f64 / 10.0)).collect();
        let e: Vec<f64> = (0..30)
            .map(|k| match k {
                0..=2 => 0.1 + 0.05 * k as f64,
                3..=12 => 0.3,
                13 => 0.45,
                _ => 0.6,
            })
            .collect();
        let c: Vec<usize> = (0..30).map(|k| if k < 13 { 3 } else { 2 }).collect();
        let p = plateaus(&t, &e, &c, 1);
        assert_eq!(
            p,
            vec![
                Plateau {
                    start: 3,
                    end: 12,
                    clusters: 3
                },
                Plateau {
                    start: 14,
                    end: 29,
                    clusters: 2
                }
            ]
        );
    }
}
