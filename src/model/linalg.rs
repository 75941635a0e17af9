//! The one dot product, norm and matrix-vector product of the f64 code (the reference
//! backend, the weights, the mean-field twins). The f32 backends have their own vectorised
//! kernels (`cpu::simd`) and the GPU its shaders.

/// <a, b>.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// |a|.
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// y = A x for a row-major matrix A with x.len() columns and y.len() rows.
pub fn matvec(a: &[f64], x: &[f64], y: &mut [f64]) {
    for (y, row) in y.iter_mut().zip(a.chunks_exact(x.len())) {
        *y = dot(row, x);
    }
}
