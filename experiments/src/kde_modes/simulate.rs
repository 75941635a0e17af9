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
