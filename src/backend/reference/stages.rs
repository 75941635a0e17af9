//! f64 twins of the kernels that compute the attention field on the GPU, one function per
//! shader with the shader's name: `queries`, `attention`, `attention_finish`, `mlp_hidden`,
//! `mlp_out` (and `tangent_project`, in [`super`]). Queries attend to keys of the same
//! system: for self-attention both are the tokens. [`field`] composes them over any split
//! of the keys into chunks; a test checks that it equals the literal [`super::field`] to
//! 1e-12.
//!
//! `shape` describes the queries ([batch, n_queries, d]); the keys are [batch, n_keys, d].

use crate::model::weights::matvec;
use crate::model::{Attention, Model, Shape, Weights};

/// Twin of `queries.wgsl`: q_t = beta_b K_h^T Q_h z_t for every query token z_t.
pub fn queries(model: &Model, head: &Weights, shape: Shape, z: &[f64]) -> Vec<f64> {
    let d = shape.d;
    let kt = transpose(&head.k, d);
    let mut qz = vec![0.0; d];
    let mut q = vec![0.0; z.len()];
    for (t, (qt, zt)) in q.chunks_mut(d).zip(z.chunks(d)).enumerate() {
        matvec(&head.q, zt, &mut qz);
        matvec(&kt, &qz, qt);
        let beta = model.betas[t / shape.n];
        qt.iter_mut().for_each(|v| *v *= beta);
    }
    q
}

fn transpose(a: &[f64], d: usize) -> Vec<f64> {
    (0..d * d).map(|e| a[(e % d) * d + e / d]).collect()
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

/// Twin of `attention.wgsl`: folds keys [key_start, key_start + key_count) of each system
/// (only those a query sees under the mask) into its online softmax; ALiBi subtracts
/// (lambda / n_keys)(i - j) from each score.
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
    let slope = model.alibi_slope(n_keys);
    for t in 0..shape.tokens() {
        let (b, i) = (t / n, t % n);
        let end = (key_start + key_count).min(model.keys_seen(i, n_keys));
        let qt = &q[t * d..(t + 1) * d];
        for j in key_start..end {
            let key = &keys[(b * n_keys + j) * d..(b * n_keys + j + 1) * d];
            let s: f64 = qt.iter().zip(key).map(|(a, b)| a * b).sum::<f64>()
                - slope * (i.saturating_sub(j)) as f64;
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

/// Twin of `attention_finish.wgsl`: adds c_h V_h (weighted mean) of head h to `out` (or
/// writes it, for the first head), from the completed softmax state. USA divides by
/// exp(log normaliser) instead of the softmax sum.
#[allow(clippy::too_many_arguments)]
pub fn attention_finish(
    model: &Model,
    head: &Weights,
    weight: f64,
    accumulate: bool,
    shape: Shape,
    n_keys: usize,
    partial: &Partial,
    out: &mut [f64],
) {
    let Shape { n, d, .. } = shape;
    let mut mean = vec![0.0; d];
    let mut a = vec![0.0; d];
    for (t, f) in out.chunks_mut(d).enumerate() {
        let scale = match model.attention {
            Attention::Sa => 1.0 / partial.l[t],
            Attention::Usa => (partial.m[t] - model.usa_log_normaliser(t % n, n_keys)).exp(),
        };
        mean.iter_mut()
            .zip(&partial.acc[t * d..(t + 1) * d])
            .for_each(|(m, a)| *m = scale * a);
        matvec(&head.v, &mean, &mut a);
        for (fo, ao) in f.iter_mut().zip(&a) {
            *fo = if accumulate { *fo } else { 0.0 } + weight * ao;
        }
    }
}

/// Twin of `mlp_hidden.wgsl`: sigma(A x_t + b) for every token, [tokens, hidden].
pub fn mlp_hidden(model: &Model, shape: Shape, x: &[f64]) -> Vec<f64> {
    let mlp = model.mlp.as_ref().expect("a perceptron");
    let (d, m) = (shape.d, mlp.hidden);
    x.chunks(d)
        .flat_map(|xt| {
            (0..m).map(move |k| {
                let z: f64 = (0..d).map(|c| mlp.a[k * d + c] * xt[c]).sum::<f64>() + mlp.b[k];
                mlp.activation.apply(z)
            })
        })
        .collect()
}

/// Twin of `mlp_out.wgsl`: adds W hidden_t to `out` for every token.
pub fn mlp_out(model: &Model, shape: Shape, hidden: &[f64], out: &mut [f64]) {
    let mlp = model.mlp.as_ref().expect("a perceptron");
    let (d, m) = (shape.d, mlp.hidden);
    for (f, h) in out.chunks_mut(d).zip(hidden.chunks(m)) {
        for (o, w_row) in f.iter_mut().zip(mlp.w.chunks(m)) {
            *o += w_row.iter().zip(h).map(|(w, h)| w * h).sum::<f64>();
        }
    }
}

/// The whole field of queries z over keys from the twins, with the keys split into chunks of
/// `chunk`: per head queries, attention, attention_finish; then the perceptron (only when
/// the queries are the keys' own tokens) and the layer's finish (on the sphere the tangent
/// projection; the output normalisation of `peri-ln` and `ngpt`). The tokens are those the
/// block sees (already normalised for the Pre-LN family).
pub fn field(
    model: &Model,
    heads: &[Weights],
    shape: Shape,
    z: &[f64],
    keys: &[f64],
    chunk: usize,
) -> Vec<f64> {
    let n_keys = keys.len() / (shape.batch * shape.d);
    let mut out = vec![0.0; shape.len()];
    for (h, head) in heads.iter().enumerate() {
        let q = queries(model, head, shape, z);
        let mut partial = Partial::empty(shape);
        let mut start = 0;
        while start < n_keys {
            attention(model, shape, n_keys, &q, keys, start, chunk, &mut partial);
            start += chunk;
        }
        let weight = model.head_weight();
        attention_finish(
            model,
            head,
            weight,
            h > 0,
            shape,
            n_keys,
            &partial,
            &mut out,
        );
    }
    if model.mlp.is_some() {
        let hidden = mlp_hidden(model, shape, z);
        mlp_out(model, shape, &hidden, &mut out);
    }
    for (f, zt) in out.chunks_mut(shape.d).zip(z.chunks(shape.d)) {
        model.finish_token(zt, f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::InitSpec;
    use crate::model::{Activation, Geometry, HeadCombine, Mask, Mlp};

    /// The staged twins, over several chunkings of the keys, reproduce the literal field,
    /// with several heads, ALiBi and the perceptron too.
    #[test]
    fn stages_compose_to_the_literal_field_for_any_chunking() {
        for (attention, geometry, mask, random, variant) in [
            (Attention::Sa, Geometry::Sphere, Mask::Full, false, 0),
            (Attention::Usa, Geometry::Sphere, Mask::Causal, true, 1),
            (Attention::Sa, Geometry::Euclidean, Mask::Causal, true, 2),
            (Attention::Usa, Geometry::Euclidean, Mask::Full, false, 3),
        ] {
            let shape = Shape::new(2, 37, 5).unwrap();
            let mut model = Model::new(
                attention,
                geometry,
                mask,
                if random {
                    Weights::random(5, 3)
                } else {
                    Weights::identity(5)
                },
                vec![2.0, 7.0],
            );
            if variant == 1 {
                model.alibi = Some(crate::model::Alibi::new(9.0));
            }
            if variant >= 2 {
                model.heads.push(Weights::random(5, 11));
                model.combine = HeadCombine::Mean;
                model.mlp = Some(Mlp {
                    hidden: 3,
                    w: (0..15).map(|i| (i as f64 * 0.3).sin()).collect(),
                    a: (0..15).map(|i| (i as f64 * 0.7).cos()).collect(),
                    b: vec![0.1, -0.2, 0.3],
                    activation: if variant == 2 {
                        Activation::Relu
                    } else {
                        Activation::Gelu
                    },
                });
            }
            let x = InitSpec::Uniform.generate(shape, geometry, 1).unwrap();
            let mut want = vec![0.0; x.len()];
            super::super::field(&model, shape, &x, &mut want);
            for chunk in [1, 5, 36, 37, 100] {
                let got = field(&model, &model.heads, shape, &x, &x, chunk);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                        "{attention:?} {geometry:?} {mask:?} variant {variant} chunk {chunk}, element {i}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
