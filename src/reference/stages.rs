//! f64 twins of the kernels that compute the attention field on the GPU
//! (`shaders/queries.wgsl`, `attention.wgsl`, `attention_finish.wgsl`; the last,
//! `tangent_project.wgsl`, has its twin in [`super::tangent_project`]). Queries attend to
//! keys of the same system: for self-attention both are the tokens. Composed over any split
//! of the keys into chunks they give [`super::field`]; a test checks that to 1e-12.
//!
//! `shape` describes the queries ([batch, n_queries, d]); the keys are [batch, n_keys, d].

use crate::model::weights::matvec;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

use super::tangent_project;

/// Twin of `queries.wgsl`: q_t = beta_b K^T Q z_t for every query token z_t.
pub fn queries(model: &Model, shape: Shape, z: &[f64]) -> Vec<f64> {
    let d = shape.d;
    let m = model.score_matrix();
    let mut q = vec![0.0; z.len()];
    for (t, (qt, zt)) in q.chunks_mut(d).zip(z.chunks(d)).enumerate() {
        matvec(&m, zt, qt);
        let beta = model.betas[t / shape.n];
        qt.iter_mut().for_each(|v| *v *= beta);
    }
    q
}

/// The online-softmax state of every query: running maximum m, sum l, accumulator acc.
#[derive(Clone, Debug)]
pub struct Partial {
    pub m: Vec<f64>,
    pub l: Vec<f64>,
    pub acc: Vec<f64>,
}

impl Partial {
    pub fn empty(shape: Shape) -> Self {
        Partial {
            m: vec![f64::NEG_INFINITY; shape.tokens()],
            l: vec![0.0; shape.tokens()],
            acc: vec![0.0; shape.len()],
        }
    }
}

/// One past the last key query i sees: all n_keys, or i + 1 under the causal mask.
pub fn seen_end(model: &Model, i: usize, n_keys: usize) -> usize {
    match model.mask {
        Mask::Full => n_keys,
        Mask::Causal => i + 1,
    }
}

/// Twin of `attention.wgsl`: folds keys [key_start, key_start + key_count) of each system
/// (only those a query sees under the mask) into its online softmax.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    model: &Model,
    shape: Shape,
    n_keys: usize,
    q: &[f64],
    keys: &[f64],
    key_start: usize,
    key_count: usize,
    partial: &mut Partial,
) {
    let Shape { n, d, .. } = shape;
    for t in 0..shape.tokens() {
        let (b, i) = (t / n, t % n);
        let end = (key_start + key_count).min(seen_end(model, i, n_keys));
        let qt = &q[t * d..(t + 1) * d];
        for j in key_start..end {
            let key = &keys[(b * n_keys + j) * d..(b * n_keys + j + 1) * d];
            let s: f64 = qt.iter().zip(key).map(|(a, b)| a * b).sum();
            if s > partial.m[t] {
                let r = (partial.m[t] - s).exp();
                partial.l[t] *= r;
                partial.acc[t * d..(t + 1) * d]
                    .iter_mut()
                    .for_each(|a| *a *= r);
                partial.m[t] = s;
            }
            let p = (s - partial.m[t]).exp();
            partial.l[t] += p;
            partial.acc[t * d..(t + 1) * d]
                .iter_mut()
                .zip(key)
                .for_each(|(a, k)| *a += p * k);
        }
    }
}

/// Twin of `attention_finish.wgsl`: the attention output a = V (weighted mean) of every
/// query from the completed softmax state.
pub fn attention_finish(model: &Model, shape: Shape, n_keys: usize, partial: &Partial) -> Vec<f64> {
    let Shape { n, d, .. } = shape;
    let mut out = vec![0.0; shape.len()];
    let mut mean = vec![0.0; d];
    for (t, f) in out.chunks_mut(d).enumerate() {
        let scale = match model.attention {
            Attention::Sa => 1.0 / partial.l[t],
            Attention::Usa => (partial.m[t] - (seen_end(model, t % n, n_keys) as f64).ln()).exp(),
        };
        mean.iter_mut()
            .zip(&partial.acc[t * d..(t + 1) * d])
            .for_each(|(m, a)| *m = scale * a);
        matvec(&model.weights.v, &mean, f);
    }
    out
}

/// The full field of the queries z from the stages: attention_finish, then on the sphere
/// the tangent projection at every query (twin of `tangent_project.wgsl`).
pub fn field_from(
    model: &Model,
    shape: Shape,
    n_keys: usize,
    z: &[f64],
    partial: &Partial,
) -> Vec<f64> {
    let mut f = attention_finish(model, shape, n_keys, partial);
    if model.geometry == Geometry::Sphere {
        for (ft, zt) in f.chunks_mut(shape.d).zip(z.chunks(shape.d)) {
            tangent_project(zt, ft);
        }
    }
    f
}

/// Queries z attending to keys in one go (all stages, one chunk): the attention output (or
/// field, with the tangent projection on the sphere) of each query, in f64.
pub fn cross_field(model: &Model, shape: Shape, z: &[f64], keys: &[f64]) -> Vec<f64> {
    let n_keys = keys.len() / (shape.batch * shape.d);
    let q = queries(model, shape, z);
    let mut partial = Partial::empty(shape);
    attention(model, shape, n_keys, &q, keys, 0, n_keys, &mut partial);
    field_from(model, shape, n_keys, z, &partial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::InitSpec;
    use crate::model::weights::Weights;

    /// The staged twins, over several chunkings of the keys, reproduce the literal field.
    #[test]
    fn stages_compose_to_the_literal_field_for_any_chunking() {
        for (attention, geometry, mask, random) in [
            (Attention::Sa, Geometry::Sphere, Mask::Full, false),
            (Attention::Usa, Geometry::Sphere, Mask::Causal, true),
            (Attention::Sa, Geometry::Euclidean, Mask::Causal, true),
            (Attention::Usa, Geometry::Euclidean, Mask::Full, false),
        ] {
            let shape = Shape::new(2, 37, 5).unwrap();
            let model = Model {
                attention,
                geometry,
                mask,
                weights: if random {
                    Weights::random(5, 3)
                } else {
                    Weights::identity(5)
                },
                betas: vec![2.0, 7.0],
            };
            let x = InitSpec::Uniform.generate(shape, geometry, 1).unwrap();
            let mut want = vec![0.0; x.len()];
            super::super::field(&model, shape, &x, &mut want);
            let q = queries(&model, shape, &x);
            for chunk in [1, 5, 36, 37, 100] {
                let mut partial = Partial::empty(shape);
                let mut start = 0;
                while start < shape.n {
                    super::attention(&model, shape, 37, &q, &x, start, chunk, &mut partial);
                    start += chunk;
                }
                let got = field_from(&model, shape, 37, &x, &partial);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                        "{attention:?} {geometry:?} {mask:?} chunk {chunk}, element {i}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
