//! The draws of `kde-modes`: n iid uniform angles, and the derivative of their von Mises kernel
//! density estimate on a uniform grid of the circle.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// n iid uniform angles in [0, 2 pi): draw `stream` of `seed` (its own ChaCha8 stream).
pub fn angles(seed: u64, stream: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    (0..n)
        .map(|_| rng.random::<f64>() * std::f64::consts::TAU)
        .collect()
}

/// f'(theta_i) at theta_i = 2 pi i / m for f(theta) = (1/n) sum_j exp(kappa (cos(theta -
/// theta_j) - 1)): f'(theta) = -(kappa / n) sum_j sin(theta - theta_j) exp(kappa (cos(theta -
/// theta_j) - 1)). Each sample adds to the grid points where its kernel exceeds e^-30 (all of
/// them when kappa < 20).
pub fn derivative_on_grid(angles: &[f64], kappa: f64, m: usize) -> Vec<f64> {
    let step = std::f64::consts::TAU / m as f64;
    // cos u - 1 >= -30 / kappa  <=>  |u| <= acos(1 - 30 / kappa).
    let reach = if 30.0 / kappa >= 2.0 {
        m
    } else {
        ((1.0 - 30.0 / kappa).acos() / step).ceil() as usize + 1
    };
    let mut fp = vec![0.0; m];
    for &t in angles {
        let add = |fp: &mut [f64], i: usize, u: f64| {
            fp[i] -= u.sin() * (kappa * (u.cos() - 1.0)).exp();
        };
        if 2 * reach + 1 >= m {
            // The kernel reaches round the circle: every grid point.
            for i in 0..m {
                add(&mut fp, i, i as f64 * step - t);
            }
        } else {
            let i0 = (t / step).round() as i64;
            for k in -(reach as i64)..=(reach as i64) {
                let i = (i0 + k).rem_euclid(m as i64) as usize;
                add(&mut fp, i, (i0 + k) as f64 * step - t);
            }
        }
    }
    let scale = kappa / angles.len() as f64;
    fp.iter_mut().for_each(|v| *v *= scale);
    fp
}

/// n iid N(0, 1) samples on the line: draw `stream` of `seed` (its own ChaCha8 stream).
pub fn gaussian_samples(seed: u64, stream: u64, n: usize) -> Vec<f64> {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    (0..n)
        .map(|_| <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng))
        .collect()
}

/// The local maxima of f(x) = (1/n) sum_j exp(-kappa (x - x_j)^2 / 2) on the line: the sign
/// changes of f' from + to - on a grid of `per_bandwidth` points per bandwidth kappa^(-1/2)
/// over [min - 8 bw, max + 8 bw] (f' is computed analytically from the samples within 8
/// bandwidths of each grid point; beyond, the kernel is below e^-32). Returns the positions
/// (the midpoints of the grid intervals where the sign changes). With `minima_too` every
/// sign change is returned.
pub fn line_maxima(samples: &[f64], kappa: f64, per_bandwidth: f64, minima_too: bool) -> Vec<f64> {
    let bw = kappa.sqrt().recip();
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min) - 8.0 * bw;
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 8.0 * bw;
    let step = bw / per_bandwidth;
    let m = ((hi - lo) / step).ceil() as usize + 1;
    let reach = (8.0 * per_bandwidth).ceil() as i64 + 1;
    let mut fp = vec![0.0; m];
    for &x in samples {
        let i0 = ((x - lo) / step).round() as i64;
        for i in (i0 - reach).max(0)..=(i0 + reach).min(m as i64 - 1) {
            let u = lo + i as f64 * step - x;
            fp[i as usize] -= kappa * u * (-0.5 * kappa * u * u).exp();
        }
    }
    (0..m - 1)
        .filter(|&i| {
            let (a, b) = (fp[i], fp[i + 1]);
            (a > 0.0 && b <= 0.0) || (minima_too && a <= 0.0 && b > 0.0)
        })
        .map(|i| lo + (i as f64 + 0.5) * step)
        .collect()
}
