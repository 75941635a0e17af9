//! The analysis of `integrator-order`: the fitted order of an error curve.

use attnflow::stats::{Fit, fit_loglog};

/// The log-log fit of error against h over the usable points (f32 backends: only errors well
/// above their round-off floor, 1e-5), when at least 3 are left; and the number of usable points.
pub fn fitted_order(points: &[(f64, f64)], f64_backend: bool) -> (Option<Fit>, usize) {
    let usable: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(_, e)| f64_backend || e > 1e-5)
        .collect();
    let fit = (usable.len() >= 3).then(|| {
        fit_loglog(
            &usable.iter().map(|p| p.0).collect::<Vec<_>>(),
            &usable.iter().map(|p| p.1).collect::<Vec<_>>(),
        )
    });
    (fit, usable.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_of_a_power_law_error_is_its_exponent() {
        let pts: Vec<(f64, f64)> = [0.125, 0.0625, 0.03125, 0.015625]
            .iter()
            .map(|&h: &f64| (h, 10.0 * h.powi(4)))
            .collect();
        let (fit, used) = fitted_order(&pts, true);
        assert_eq!(used, 4);
        assert!((fit.unwrap().slope - 4.0).abs() < 1e-9);
        // On f32 the errors under 1e-5 are round-off: only 2 points are left, no fit.
        let (fit, used) = fitted_order(&pts, false);
        assert_eq!(used, 2);
        assert!(fit.is_none());
    }
}
