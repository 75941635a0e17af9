//! The analysis of `phase-diagram`: collapse times, their growth with beta, and the symmetric
//! (high-dimensional) reduction beside them.

use serde::Serialize;

use crate::jackknife_se;
use attnflow::stats::{fit_line, fit_semilog};
use attnflow::theory::symmetric::collapse_time;

/// The first time the curve reaches `level` (linear interpolation), if it does.
pub fn first_crossing(t: &[f64], v: &[f64], level: f64) -> Option<f64> {
    if v[0] >= level {
        return Some(t[0]);
    }
    (1..v.len()).find(|&k| v[k] >= level).map(|k| {
        let (a, b) = (v[k - 1], v[k]);
        t[k - 1] + (t[k] - t[k - 1]) * (level - a) / (b - a)
    })
}

/// The beta (in [0.1, 30], by bisection) where the symmetric reduction's collapse time
/// reaches t_end.
pub fn symmetric_boundary(n: usize, threshold: f64, t_end: f64) -> f64 {
    let (mut lo, mut hi) = (0.1, 30.0);
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        match collapse_time(n, threshold, mid, t_end) {
            Some(_) => lo = mid,
            None => hi = mid,
        }
    }
    0.5 * (lo + hi)
}

/// The large-beta growth of log t_c.
#[derive(Clone, Copy, Serialize)]
pub struct Growth {
    pub slope: f64,
    pub slope_se: f64,
    pub r2: f64,
    pub points: usize,
}

/// The summary of one d.
#[derive(Serialize)]
pub struct PerD {
    pub collapse_time_t_half: Vec<Option<f64>>,
    pub collapse_time_over_symmetric_reduction: Vec<Option<f64>>,
    pub final_fraction: Vec<f64>,
    #[serde(rename = "smallest_beta_not_collapsed_by_T")]
    pub smallest_beta_not_collapsed: Option<f64>,
    pub log_collapse_time_vs_beta_slope_from_beta_3: Option<Growth>,
    pub symmetric_reduction_slope_same_betas: Option<f64>,
}

/// The analysis of one d: its summary and the collapsed (beta, t_c) points.
pub struct Analysis {
    pub summary: PerD,
    pub collapsed: Vec<(f64, f64)>,
    /// The final fraction at the largest beta.
    pub last_final: f64,
}

/// Large-beta growth of log t_c is fitted from here (where e^beta is comparable to n).
pub const SLOPE_FROM: f64 = 3.0;

/// The analysis of the mean fraction [beta][time] of one d, beside the symmetric reduction's
/// collapse times t_sym (per beta).
pub fn analyse(
    fraction: &[Vec<f64>],
    times: &[f64],
    betas: &[f64],
    t_sym: &[Option<f64>],
    n: usize,
    threshold: f64,
    t_end: f64,
) -> Analysis {
    let t_c: Vec<Option<f64>> = fraction
        .iter()
        .map(|f| first_crossing(times, f, 0.5))
        .collect();
    let final_fraction: Vec<f64> = fraction.iter().map(|f| f[f.len() - 1]).collect();
    let collapsed: Vec<(f64, f64)> = betas
        .iter()
        .zip(&t_c)
        .filter_map(|(&b, t)| t.map(|t| (b, t)))
        .collect();
    // The smallest beta that has not collapsed by T.
    let beta_boundary = betas
        .iter()
        .zip(&t_c)
        .find(|(_, t)| t.is_none())
        .map(|(b, _)| *b);
    let large: Vec<(f64, f64)> = collapsed
        .iter()
        .copied()
        .filter(|p| p.0 >= SLOPE_FROM)
        .collect();
    let fit = (large.len() >= 3).then(|| {
        fit_semilog(
            &large.iter().map(|p| p.0).collect::<Vec<_>>(),
            &large.iter().map(|p| p.1).collect::<Vec<_>>(),
        )
    });
    // The symmetric reduction's slope over the same betas.
    let sym_large: Vec<(f64, f64)> = large
        .iter()
        .filter_map(|p| collapse_time(n, threshold, p.0, 10.0 * t_end).map(|t| (p.0, t.ln())))
        .collect();
    let sym_fit = (sym_large.len() >= 3).then(|| {
        fit_line(
            &sym_large.iter().map(|p| p.0).collect::<Vec<_>>(),
            &sym_large.iter().map(|p| p.1).collect::<Vec<_>>(),
        )
    });
    let ratio: Vec<Option<f64>> = t_c
        .iter()
        .zip(t_sym)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => Some(a / b),
            _ => None,
        })
        .collect();
    let last_final = final_fraction[final_fraction.len() - 1];
    Analysis {
        summary: PerD {
            collapse_time_t_half: t_c,
            collapse_time_over_symmetric_reduction: ratio,
            final_fraction,
            smallest_beta_not_collapsed: beta_boundary,
            log_collapse_time_vs_beta_slope_from_beta_3: fit.map(|f| Growth {
                slope: f.slope,
                slope_se: f.slope_se,
                r2: f.r2,
                points: large.len(),
            }),
            symmetric_reduction_slope_same_betas: sym_fit.map(|f| f.slope),
        },
        collapsed,
        last_final,
    }
}

/// The jackknife over starts (the independent units: every beta shares them) of the growth
/// of log t_c with beta from [`SLOPE_FROM`] and of log t_c at every beta: each replicate
/// leaves one start out of the mean fraction. The slope's betas are those collapsed in the
/// full sample (a replicate in which one of them does not collapse leaves it out).
pub struct Jackknife {
    /// Standard error of the slope (None with fewer than 3 collapsed betas or 2 starts).
    pub slope_se: Option<f64>,
    /// Standard error of ln t_c per beta (None where the full sample does not collapse or a
    /// replicate does not).
    pub log_t_c_se: Vec<Option<f64>>,
}

/// See [`Jackknife`]: `per_start` is [beta][start][time].
pub fn jackknife(per_start: &[Vec<Vec<f64>>], times: &[f64], betas: &[f64]) -> Jackknife {
    let starts = per_start.first().map_or(0, Vec::len);
    let t_c = |skip: Option<usize>| -> Vec<Option<f64>> {
        per_start
            .iter()
            .map(|f| first_crossing(times, &super::simulate::mean_over(f, skip), 0.5))
            .collect()
    };
    let full = t_c(None);
    let large: Vec<usize> = (0..betas.len())
        .filter(|&b| betas[b] >= SLOPE_FROM && full[b].is_some())
        .collect();
    if starts < 2 {
        return Jackknife {
            slope_se: None,
            log_t_c_se: vec![None; betas.len()],
        };
    }
    let reps: Vec<Vec<Option<f64>>> = (0..starts).map(|r| t_c(Some(r))).collect();
    let slopes: Vec<f64> = reps
        .iter()
        .filter_map(|rep| {
            let pts: Vec<(f64, f64)> = large
                .iter()
                .filter_map(|&b| rep[b].map(|t| (betas[b], t)))
                .collect();
            (pts.len() >= 3).then(|| {
                fit_semilog(
                    &pts.iter().map(|p| p.0).collect::<Vec<_>>(),
                    &pts.iter().map(|p| p.1).collect::<Vec<_>>(),
                )
                .slope
            })
        })
        .collect();
    let log_t_c_se = (0..betas.len())
        .map(|b| {
            let v: Option<Vec<f64>> = reps.iter().map(|rep| rep[b].map(f64::ln)).collect();
            full[b].and(v).map(|v| jackknife_se(&v))
        })
        .collect();
    Jackknife {
        slope_se: (large.len() >= 3 && slopes.len() == starts).then(|| jackknife_se(&slopes)),
        log_t_c_se,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_interpolate_and_the_boundary_is_the_first_uncollapsed_beta() {
        let t = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(first_crossing(&t, &[0.0, 0.25, 0.75, 1.0], 0.5), Some(1.5));
        assert_eq!(first_crossing(&t, &[0.6, 0.7, 0.8, 0.9], 0.5), Some(0.0));
        assert_eq!(first_crossing(&t, &[0.0, 0.1, 0.2, 0.3], 0.5), None);
        // Three betas: the first collapses, the others do not.
        let fraction = vec![
            vec![0.0, 0.25, 0.75, 1.0],
            vec![0.0, 0.1, 0.2, 0.3],
            vec![0.0, 0.0, 0.0, 0.1],
        ];
        let a = analyse(
            &fraction,
            &t,
            &[0.5, 4.0, 8.0],
            &[Some(3.0), None, None],
            32,
            0.999,
            3.0,
        );
        assert_eq!(a.collapsed, vec![(0.5, 1.5)]);
        assert_eq!(a.summary.smallest_beta_not_collapsed, Some(4.0));
        assert_eq!(
            a.summary.collapse_time_over_symmetric_reduction[0],
            Some(0.5)
        );
        // The small beta collapsed by T; one collapsed beta leaves no growth to fit.
        assert_eq!(a.summary.final_fraction, vec![1.0, 0.3, 0.1]);
        assert!(
            a.summary
                .log_collapse_time_vs_beta_slope_from_beta_3
                .is_none()
        );
        assert_eq!(a.last_final, 0.1);
    }

    #[test]
    fn the_jackknife_se_of_a_mean_is_the_standard_error() {
        // Leave-one-out means of 1, 2, 3, 4: 3, 8/3, 7/3, 2; jackknife se = sd / sqrt(4).
        let reps = [3.0, 8.0 / 3.0, 7.0 / 3.0, 2.0];
        let sd = (5.0f64 / 3.0).sqrt();
        assert!((jackknife_se(&reps) - sd / 2.0).abs() < 1e-12);
    }
}
