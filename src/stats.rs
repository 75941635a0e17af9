//! The statistics every measurement shares: means with standard errors, and least-squares
//! fits of lines and power laws (experiments, benches, tests).

/// Mean of a sample.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean and sample variance (with n - 1; needs at least 2 values).
pub fn mean_var(v: &[f64]) -> (f64, f64) {
    let m = mean(v);
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0);
    (m, var)
}

/// Mean and standard error of the mean (sample variance with n - 1; 0 for one value).
pub fn mean_se(v: &[f64]) -> (f64, f64) {
    if v.len() < 2 {
        return (mean(v), 0.0);
    }
    let (m, var) = mean_var(v);
    (m, (var / v.len() as f64).sqrt())
}

/// Mean and standard error of column `p` of the rows (see [`mean_se`]).
pub fn column_mean_se(rows: &[Vec<f64>], p: usize) -> (f64, f64) {
    mean_se(&rows.iter().map(|r| r[p]).collect::<Vec<_>>())
}

/// A least-squares line y = intercept + slope x with standard errors.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Fit {
    pub slope: f64,
    pub slope_se: f64,
    pub intercept: f64,
    pub r2: f64,
}

/// Ordinary least squares of y on x (at least 2 points; the standard error needs 3).
pub fn fit_line(x: &[f64], y: &[f64]) -> Fit {
    let k = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / k, y.iter().sum::<f64>() / k);
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    let resid: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - my - slope * (a - mx)).powi(2))
        .sum();
    let slope_se = if x.len() > 2 {
        (resid / (k - 2.0) / sxx).sqrt()
    } else {
        f64::NAN
    };
    Fit {
        slope,
        slope_se,
        intercept: my - slope * mx,
        r2: if syy > 0.0 { 1.0 - resid / syy } else { 1.0 },
    }
}

/// Fit of log y against log x: the exponent of a power law.
pub fn fit_loglog(x: &[f64], y: &[f64]) -> Fit {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    fit_line(&lx, &ly)
}

/// Fit of log y against x: the rate of an exponential y ~ e^{slope x}.
pub fn fit_semilog(x: &[f64], y: &[f64]) -> Fit {
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    fit_line(x, &ly)
}

/// Worst-case change of the least-squares slope and intercept of y on x when each y_i moves by
/// at most delta_i (errors of any correlation): both are linear in y, slope = sum (x_i - mean
/// x) y_i / Sxx and intercept = sum (1 / k - mean x (x_i - mean x) / Sxx) y_i, so each
/// changes by at most the sum of |its coefficient| delta_i.
pub fn fit_line_worst_change(x: &[f64], delta: &[f64]) -> (f64, f64) {
    let k = x.len() as f64;
    let mx = mean(x);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let slope = x
        .iter()
        .zip(delta)
        .map(|(v, d)| ((v - mx) / sxx).abs() * d)
        .sum();
    let intercept = x
        .iter()
        .zip(delta)
        .map(|(v, d)| (1.0 / k - mx * (v - mx) / sxx).abs() * d)
        .sum();
    (slope, intercept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_recover_lines_and_power_laws() {
        let x = [1.0, 2.0, 4.0, 8.0, 16.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| 3.0 * v.powf(-0.5)).collect();
        let f = fit_loglog(&x, &y);
        assert!((f.slope + 0.5).abs() < 1e-12 && f.slope_se < 1e-12, "{f:?}");
        assert!((f.intercept - 3f64.ln()).abs() < 1e-12 && (f.r2 - 1.0).abs() < 1e-12);
        let f = fit_line(&[0.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 2.0, 4.0]);
        // Slope 0.9, intercept 0.9, residuals 0.1, 0.2, -0.7, 0.4 -> se sqrt(0.7 / 2 / 5).
        assert!((f.slope - 0.9).abs() < 1e-12, "{f:?}");
        assert!(
            (f.slope_se - (0.7f64 / 2.0 / 5.0).sqrt()).abs() < 1e-12,
            "{f:?}"
        );
    }

    #[test]
    fn standard_errors_of_the_mean() {
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-15);
        assert_eq!(mean_se(&[7.0]), (7.0, 0.0));
        let (m, var) = mean_var(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((m, var), (2.5, 5.0 / 3.0));
        let rows = vec![vec![0.0, 1.0], vec![5.0, 3.0]];
        assert_eq!(column_mean_se(&rows, 1), mean_se(&[1.0, 3.0]));
        let f = fit_semilog(
            &[0.0, 1.0, 2.0],
            &[2.0, 2.0 * (-3f64).exp(), 2.0 * (-6f64).exp()],
        );
        assert!((f.slope + 3.0).abs() < 1e-12 && (f.intercept - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_fit_changes_at_most_by_its_coefficients_times_the_errors() {
        // Slope of y on x = 0, 1, 2 is (y2 - y0) / 2; intercept (5 y0 + 2 y1 - y2) / 6.
        let (s, i) = fit_line_worst_change(&[0.0, 1.0, 2.0], &[1.0, 1.0, 1.0]);
        assert!(
            (s - 1.0).abs() < 1e-12 && (i - 8.0 / 6.0).abs() < 1e-12,
            "{s} {i}"
        );
    }
}
