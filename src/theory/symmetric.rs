//! The symmetric reduction (docs/model.md §4): n unit tokens with all pairwise cosines equal
//! stay so under SA with Q = K = V = I, and their common cosine solves a scalar ODE.

/// The collapse time of the symmetric configuration: n unit vectors with all pairwise cosines
/// equal to c (uniform tokens in high dimension start near c = 0, spread d^{-1/2}). The flow
/// keeps the symmetry, and with w = e^{beta c} / (e^beta + (n - 1) e^{beta c}) the weight on each
/// other token, dx_i/dt = w sum_{j != i} (x_j - c x_i), so
/// dc/dt = 2 w (1 - c) (1 + (n - 1) c). Returns the time c takes from 0 to `close` (RK4),
/// or None past `t_max`.
pub fn collapse_time(n: usize, close: f64, beta: f64, t_max: f64) -> Option<f64> {
    let m = (n - 1) as f64;
    let f = |c: f64| {
        let w = 1.0 / ((beta * (1.0 - c)).exp() + m);
        2.0 * w * (1.0 - c) * (1.0 + m * c)
    };
    let (mut c, mut t, h) = (0.0f64, 0.0f64, 1e-3);
    while c < close {
        if t > t_max {
            return None;
        }
        let k1 = f(c);
        let k2 = f(c + 0.5 * h * k1);
        let k3 = f(c + 0.5 * h * k2);
        let k4 = f(c + h * k3);
        let next = c + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        if next >= close {
            // Linear interpolation inside the last step.
            return Some(t + h * (close - c) / (next - c));
        }
        c = next;
        t += h;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn symmetric_reduction_at_beta_zero_is_exponential_relaxation() {
        // beta -> 0: w = 1/n, dc/dt = (2/n)(1 - c)(1 + (n-1) c), solved exactly by
        // c(t) = (1 - e^{-2t}) / (1 + (n - 1) e^{-2t}) from c(0) = 0.
        let n = 32usize;
        let t = super::collapse_time(n, 0.999, 1e-12, 100.0).unwrap();
        // c = 0.999 when e^{-2t} = 0.001 / (1 + 0.999 (n - 1)).
        let want = -0.5 * (0.001f64 / (1.0 + 0.999 * (n - 1) as f64)).ln();
        assert!((t - want).abs() < 1e-3, "{t} vs {want}");
        assert!(super::collapse_time(n, 0.999, 9.0, 30.0).is_none());
    }
}
