//! The geometry of the sphere (docs/model.md §1): the tangent projection of the field and
//! the renormalisation of tokens, shared by every host-side code path.

use super::linalg::dot;

/// a <- a - (<x, a> / <x, x>) x: the orthogonal projection onto x^perp, which is
/// P_x^perp a = a - <x, a> x for unit x. Runge-Kutta stage inputs are slightly off the sphere;
/// dividing by |x|^2 keeps the extended field exactly tangent to the sphere through x there
/// (no spurious radial velocity, which for USA at large beta is e^beta times the error).
pub fn tangent_project(x: &[f64], a: &mut [f64]) {
    let along = dot(x, a) / dot(x, x);
    a.iter_mut().zip(x).for_each(|(a, x)| *a -= along * x);
}

/// Scales every token (consecutive runs of d values) to unit length; zero tokens stay zero.
pub fn normalise_tokens(x: &mut [f64], d: usize) {
    use rayon::prelude::*;
    x.par_chunks_mut(d).for_each(|t| {
        let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            t.iter_mut().for_each(|v| *v /= norm);
        }
    });
}
