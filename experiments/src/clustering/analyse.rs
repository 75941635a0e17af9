//! The analysis of `clustering`: the final exponential decay of the gap and the rate the
//! linearisation at one cluster predicts.

use attnflow::model::Attention;
use attnflow::stats::{Fit, fit_semilog};

/// The rate of 1 - cos the linearisation at one cluster predicts: 2 c with c = 1 for SA and
/// e^beta for USA. `usa_like_sa` is the deliberate error of forgetting that USA's weights are
/// not normalised (c = 1 for both).
pub fn linearised_rate(attention: Attention, beta: f64, usa_like_sa: bool) -> f64 {
    let c = match attention {
        Attention::Sa => 1.0,
        Attention::Usa if usa_like_sa => 1.0,
        Attention::Usa => f64::exp(beta),
    };
    2.0 * c
}

/// The fit of ln(gap) against t over the final exponential phase.
pub struct Decay {
    pub fit: Fit,
    pub points: usize,
    /// First and last time of the phase.
    pub span: (f64, f64),
}

/// The final exponential phase of a gap curve (gaps between 1e-2 and 100 x the f32 floor),
/// fitted when it has at least 4 points.
pub fn final_decay(curve: &[(f64, f64)]) -> Option<Decay> {
    decay_between(curve, 1e-5, 1e-2)
}

/// The gap exponent at which the final phase is split in two for the window scan: the upper
/// half holds gaps in (10^-3.5, 1e-2), the lower half (1e-5, 10^-3.5).
pub const SPLIT: f64 = 3.1622776601683794e-4;

/// The fit of ln(gap) against t over the gaps in (lo, hi), when it has at least 4 points.
pub fn decay_between(curve: &[(f64, f64)], lo: f64, hi: f64) -> Option<Decay> {
    let tail: Vec<(f64, f64)> = curve
        .iter()
        .copied()
        .filter(|&(_, g)| g < hi && g > lo)
        .collect();
    (tail.len() >= 4).then(|| Decay {
        fit: fit_semilog(
            &tail.iter().map(|p| p.0).collect::<Vec<_>>(),
            &tail.iter().map(|p| p.1).collect::<Vec<_>>(),
        ),
        points: tail.len(),
        span: (tail[0].0, tail[tail.len() - 1].0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_decay_recovers_an_exponential_rate() {
        // A plateau, then gap = 1e-2 e^{-3 (t - 1)}: the phase below 1e-2 is fitted alone.
        let curve: Vec<(f64, f64)> = (0..40)
            .map(|k| {
                let t = 0.1 * k as f64;
                (
                    t,
                    if t < 1.0 {
                        0.5
                    } else {
                        0.0099 * (-3.0 * (t - 1.0)).exp()
                    },
                )
            })
            .collect();
        let d = final_decay(&curve).unwrap();
        assert!((d.fit.slope + 3.0).abs() < 1e-9, "{:?}", d.fit);
        assert_eq!(d.span.0, curve[10].0);
        assert!(final_decay(&curve[..12]).is_none());
        // Each half of the window sees the same exponential.
        for (lo, hi) in [(1e-5, SPLIT), (SPLIT, 1e-2)] {
            let h = decay_between(&curve, lo, hi).unwrap();
            assert!((h.fit.slope + 3.0).abs() < 1e-9, "{:?}", h.fit);
        }
        assert_eq!(linearised_rate(Attention::Sa, 5.0, false), 2.0);
        assert_eq!(
            linearised_rate(Attention::Usa, 1.0, false),
            2.0 * 1f64.exp()
        );
        assert_eq!(linearised_rate(Attention::Usa, 1.0, true), 2.0);
    }
}
