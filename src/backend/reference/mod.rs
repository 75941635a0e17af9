//! The f64 reference backend: plain loops, obviously right, the truth in tests.
//!
//! [`field`] is the vector field written literally from docs/model.md §1, §3 (Q x_i and K x_j
//! formed separately, a two-pass softmax). The GPU computes the same field in several
//! kernels; [`stages`] holds their f64 twins (same names as the shaders in `shaders/`, same
//! argument order), so that a GPU result that differs can be bisected to one stage, and
//! `rk_combine` and `pair_stats` below are the twins of those two kernels.
//! Parallel over tokens with rayon only to keep tests quick; every token is computed by the
//! same plain loop.

pub mod stages;

use rayon::prelude::*;

use crate::error::Result;
use crate::integrate::{Backend, NoiseStep, Slot, Tokens};
use crate::model::geometry::tangent_project;
use crate::model::linalg::{dot, matvec};
use crate::model::observables::PairStats;
use crate::model::{Attention, Geometry, Model, Shape, Weights};

/// The attention output of queries z [batch, m, d] over keys y [batch, n, d] with the given
/// heads, written literally from docs/model.md §1, §3: per head, scores
/// s_ij = beta <Q_h z_i, K_h y_j> (minus (lambda / n)(i - j) with ALiBi) over the keys query
/// i sees (all, or j <= i under the causal mask, which needs m = n), weights softmax (SA) or
/// exp(s) / Z_i (USA; Z_i = |J(i)| or ALiBi's positional sum), a_i = sum_h c_h sum_j w_ij V_h y_j.
pub fn attention_output(
    model: &Model,
    heads: &[Weights],
    batch: usize,
    d: usize,
    z: &[f64],
    y: &[f64],
) -> Vec<f64> {
    attention_output_with_betas(model, heads, &model.betas, batch, d, z, y)
}

/// `attention_output` with the inverse temperatures of the given systems (`betas[b]` for
/// system b of z and y): a slice of an ensemble computed on its own.
pub fn attention_output_with_betas(
    model: &Model,
    heads: &[Weights],
    betas: &[f64],
    batch: usize,
    d: usize,
    z: &[f64],
    y: &[f64],
) -> Vec<f64> {
    let (m, n) = (z.len() / (batch * d), y.len() / (batch * d));
    let slope = model.alibi_slope(n);
    let c = model.head_weight();
    let mut out = vec![0.0; z.len()];
    for w in heads {
        // K y_j and V y_j for every key: O(n d^2), once per evaluation and head.
        let mut ky = vec![0.0; y.len()];
        let mut vy = vec![0.0; y.len()];
        ky.par_chunks_mut(d)
            .zip(vy.par_chunks_mut(d))
            .zip(y.par_chunks(d))
            .for_each(|((k, v), yj)| {
                matvec(&w.k, yj, k);
                matvec(&w.v, yj, v);
            });
        out.par_chunks_mut(d).enumerate().for_each_init(
            || (vec![0.0; d], vec![0.0; d], Vec::with_capacity(n)),
            |(qz, a, scores), (t, out_i)| {
                let (b, i) = (t / m, t % m);
                let beta = betas[b];
                let sys = b * n * d;
                matvec(&w.q, &z[t * d..(t + 1) * d], qz);
                let seen = model.keys_seen(i, n);
                scores.clear();
                for j in 0..seen {
                    let kj = &ky[sys + j * d..sys + (j + 1) * d];
                    scores.push(beta * dot(qz, kj) - slope * (i - j.min(i)) as f64);
                }
                let mx = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                a.fill(0.0);
                let mut total = 0.0;
                for (j, s) in scores.iter().enumerate() {
                    let p = (s - mx).exp();
                    total += p;
                    let vj = &vy[sys + j * d..sys + (j + 1) * d];
                    a.iter_mut().zip(vj).for_each(|(a, v)| *a += p * v);
                }
                let scale = match model.attention {
                    Attention::Sa => 1.0 / total,
                    Attention::Usa => (mx - model.usa_log_normaliser(i, n)).exp(),
                };
                out_i
                    .iter_mut()
                    .zip(a.iter())
                    .for_each(|(o, a)| *o += c * scale * a);
            },
        );
    }
    out
}

/// The vector field (docs/model.md §1, §3) with the model's own heads:
/// out_i = P_{x_i}^perp (a_i + W sigma(A x_i + b)) on the sphere, without P in euclidean
/// geometry; a residual layer map's update direction instead (`Model::finish_token`).
pub fn field(model: &Model, shape: Shape, x: &[f64], out: &mut [f64]) {
    field_with(model, &model.heads, shape, x, out)
}

/// The vector field with the given heads (a random model's heads of one layer). The Pre-LN
/// family evaluates the block at normalise(x).
pub fn field_with(model: &Model, heads: &[Weights], shape: Shape, x: &[f64], out: &mut [f64]) {
    let normalised;
    let x = if model.layer.normalises_input() {
        normalised = normalised_tokens(x, shape.d);
        &normalised
    } else {
        x
    };
    let a = attention_output(model, heads, shape.batch, shape.d, x, x);
    finish_field(model, shape.d, x, &a, out);
}

/// The vector field with heads of their own for each system, `heads[b]` for system b
/// (`Model::heads_by_system`; one entry: shared by all systems, `field_with`). Each system is
/// computed on its own, exactly as a run of that system alone with its heads.
pub fn field_by_system(
    model: &Model,
    heads: &[Vec<Weights>],
    shape: Shape,
    x: &[f64],
    out: &mut [f64],
) {
    if let [shared] = heads {
        return field_with(model, shared, shape, x, out);
    }
    assert_eq!(heads.len(), shape.batch, "one set of heads per system");
    let normalised;
    let x = if model.layer.normalises_input() {
        normalised = normalised_tokens(x, shape.d);
        &normalised
    } else {
        x
    };
    let len = shape.n * shape.d;
    let a: Vec<f64> = (0..shape.batch)
        .flat_map(|b| {
            let xb = &x[b * len..(b + 1) * len];
            let betas = &model.betas[b..b + 1];
            attention_output_with_betas(model, &heads[b], betas, 1, shape.d, xb, xb)
        })
        .collect();
    finish_field(model, shape.d, x, &a, out);
}

/// The tokens scaled to unit length (what the Pre-LN family's block sees).
pub fn normalised_tokens(x: &[f64], d: usize) -> Vec<f64> {
    let mut y = x.to_vec();
    crate::model::geometry::normalise_tokens(&mut y, d);
    y
}

/// Adds the perceptron and finishes the layer's update (the tangent projection, or the output
/// normalisation): the field from the attention output at the tokens x the block saw.
pub fn finish_field(model: &Model, d: usize, x: &[f64], a: &[f64], out: &mut [f64]) {
    out.copy_from_slice(a);
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .for_each(|(f, xi)| {
            if let Some(mlp) = &model.mlp {
                mlp.add_to(xi, f);
            }
            model.finish_token(xi, f);
        });
}

/// Twin of `shaders/rk_combine.wgsl`: dst = base + sum_s c_s k_s (+ the noise amplitude
/// times standard normals, projected onto the tangent space at the base token on the
/// sphere), each token renormalised if asked.
#[allow(clippy::too_many_arguments)]
pub fn rk_combine(
    shape: Shape,
    base: &[f64],
    ks: &[&[f64]],
    coeffs: &[f64],
    renormalise: bool,
    noise: Option<NoiseStep>,
    sphere: bool,
    dst: &mut [f64],
) {
    let Shape { n, d, .. } = shape;
    dst.par_chunks_mut(d).enumerate().for_each(|(t, out)| {
        let r = t * d..(t + 1) * d;
        out.copy_from_slice(&base[r.clone()]);
        for (k, c) in ks.iter().zip(coeffs) {
            out.iter_mut()
                .zip(&k[r.clone()])
                .for_each(|(o, k)| *o += c * k);
        }
        if let Some(noise) = &noise {
            let mut xi: Vec<f64> = (0..d).map(|c| noise.draw(t / n, t % n, d, c)).collect();
            if sphere {
                tangent_project(&base[r.clone()], &mut xi);
            }
            out.iter_mut()
                .zip(&xi)
                .for_each(|(o, z)| *o += noise.amplitude * z);
        }
        if renormalise {
            let norm = dot(out, out).sqrt();
            out.iter_mut().for_each(|o| *o /= norm);
        }
    });
}

/// dst = base + sum_j coeffs[b][j] k[stages[j]] with the coefficients of each token's system
/// b (`coeffs` is [batch][stages.len()]), each token renormalised if asked: the combination
/// of adaptive stepping, where every system has its own step (twin of
/// `shaders/adaptive_combine.wgsl`, modes 0 and 1).
pub fn combine_by_system(
    shape: Shape,
    base: &[f64],
    k: &[Vec<f64>],
    stages: &[usize],
    coeffs: &[f64],
    renormalise: bool,
    dst: &mut [f64],
) {
    let Shape { n, d, .. } = shape;
    let m = stages.len();
    dst.par_chunks_mut(d).enumerate().for_each(|(t, out)| {
        let r = t * d..(t + 1) * d;
        let c = &coeffs[(t / n) * m..(t / n + 1) * m];
        out.copy_from_slice(&base[r.clone()]);
        for (&s, &c) in stages.iter().zip(c) {
            out.iter_mut()
                .zip(&k[s][r.clone()])
                .for_each(|(o, k)| *o += c * k);
        }
        if renormalise {
            let norm = dot(out, out).sqrt();
            out.iter_mut().for_each(|o| *o /= norm);
        }
    });
}

/// Two distinct elements of a slice, the first shared and the second mutable.
pub(crate) fn two_mut<T>(v: &mut [T], from: usize, to: usize) -> (&T, &mut T) {
    assert_ne!(from, to, "two distinct buffers");
    if from < to {
        let (a, b) = v.split_at_mut(to);
        (&a[from], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(from);
        (&b[0], &mut a[to])
    }
}

/// The error norm's per-system sums of adaptive stepping (twin of
/// `shaders/adaptive_reduce.wgsl` after `adaptive_combine.wgsl`): for system b,
/// sum_i (v_i / (atol + rtol max(|x_i|, |stage_i|)))^2 with v = x (when `with_state`) +
/// sum_j coeffs[b][j] k[stages[j]], in f64 whatever the storage; `per` values per system.
/// Shared by the reference, cpu and attend/cfm backends.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scaled_sums_by_system<T: Copy + Into<f64> + Sync>(
    per: usize,
    (x, stage, k): (&[T], &[T], &[Vec<T>]),
    stages: &[usize],
    coeffs: &[f64],
    with_state: bool,
    atol: f64,
    rtol: f64,
    out: &mut [f64],
) {
    let m = stages.len();
    out.par_iter_mut().enumerate().for_each(|(b, out)| {
        let c = &coeffs[b * m..(b + 1) * m];
        *out = (b * per..(b + 1) * per)
            .map(|i| {
                let xi: f64 = x[i].into();
                let mut v = if with_state { xi } else { 0.0 };
                for (&s, &c) in stages.iter().zip(c) {
                    v += c * k[s][i].into();
                }
                let scale = atol + rtol * xi.abs().max(stage[i].into().abs());
                (v / scale).powi(2)
            })
            .sum();
    });
}

/// Accepts the step of each system marked in `accepted`: its slice of `stage` becomes its
/// state, and with `copy = Some((from, to))` its slice of stage `from` is copied to stage `to`
/// (first-same-as-last tableaux). `per` values per system.
pub(crate) fn accept_by_system<T: Copy>(
    per: usize,
    x: &mut [T],
    stage: &[T],
    k: &mut [Vec<T>],
    accepted: &[bool],
    copy: Option<(usize, usize)>,
) {
    for (b, _) in accepted.iter().enumerate().filter(|(_, a)| **a) {
        let r = b * per..(b + 1) * per;
        x[r.clone()].copy_from_slice(&stage[r.clone()]);
        if let Some((from, to)) = copy {
            let (src, dst) = two_mut(k, from, to);
            dst[r.clone()].copy_from_slice(&src[r]);
        }
    }
}

/// Twin of `shaders/pair_stats.wgsl`: for each token the streamed sums behind the energy and
/// the pairwise cosines (see `observables::PairStats`).
pub fn pair_stats(betas: &[f64], shape: Shape, x: &[f64]) -> Vec<PairStats> {
    let Shape { n, d, .. } = shape;
    let norms: Vec<f64> = x.chunks(d).map(|t| dot(t, t).sqrt()).collect();
    (0..shape.tokens())
        .into_par_iter()
        .map(|t| {
            let (b, i) = (t / n, t % n);
            let beta = betas[b];
            let xi = &x[t * d..(t + 1) * d];
            let dots: Vec<f64> = (0..n)
                .map(|j| dot(xi, &x[(b * n + j) * d..(b * n + j + 1) * d]))
                .collect();
            let lse_max = dots
                .iter()
                .map(|c| beta * c)
                .fold(f64::NEG_INFINITY, f64::max);
            let lse_sum = dots.iter().map(|c| (beta * c - lse_max).exp()).sum();
            let cos = (0..n)
                .filter(|&j| j != i)
                .map(|j| dots[j] / (norms[t] * norms[b * n + j]));
            let (min_cos, sum_cos) = cos.fold((f64::INFINITY, 0.0), |(m, s), c| (m.min(c), s + c));
            PairStats {
                lse_max,
                lse_sum,
                min_cos,
                sum_cos,
                sum_dot: dots.iter().sum(),
            }
        })
        .collect()
}

/// The reference backend: the state in f64 on the host.
pub struct ReferenceBackend {
    model: Model,
    shape: Shape,
    x: Vec<f64>,
    stage: Vec<f64>,
    k: Vec<Vec<f64>>,
    /// The heads of the current layer, [systems][H] (one entry unless drawn per system; a
    /// random model redraws them every step; per-layer weights change at the start of each
    /// piece of the schedule).
    heads: Vec<Vec<Weights>>,
    /// The layer being computed, and the first in which the state became non-finite.
    layer: u32,
    first_bad: Option<u32>,
}

impl ReferenceBackend {
    pub fn new(model: &Model, shape: Shape, x0: &[f64]) -> Result<Self> {
        model.validate(shape)?;
        assert_eq!(x0.len(), shape.len(), "initial state has the wrong length");
        Ok(ReferenceBackend {
            model: model.clone(),
            shape,
            x: x0.to_vec(),
            stage: vec![0.0; shape.len()],
            k: Vec::new(),
            heads: model.heads_by_system(shape.d, 0, shape.batch),
            layer: 0,
            first_bad: None,
        })
    }

    pub fn state(&self) -> &[f64] {
        &self.x
    }
}

impl Backend for ReferenceBackend {
    fn describe(&self) -> String {
        format!("reference (f64, {} threads)", rayon::current_num_threads())
    }
    fn shape(&self) -> Shape {
        self.shape
    }
    fn prepare(&mut self, stages: usize) -> Result<()> {
        self.k = vec![vec![0.0; self.shape.len()]; stages];
        Ok(())
    }
    fn field(&mut self, input: Slot, stage: usize) -> Result<()> {
        let src = match input {
            Slot::State => &self.x,
            Slot::Stage => &self.stage,
        };
        field_by_system(
            &self.model,
            &self.heads,
            self.shape,
            src,
            &mut self.k[stage],
        );
        Ok(())
    }
    fn combine(
        &mut self,
        dst: Slot,
        terms: &[(usize, f64)],
        renormalise: bool,
        noise: Option<NoiseStep>,
    ) -> Result<()> {
        let ks: Vec<&[f64]> = terms.iter().map(|(s, _)| self.k[*s].as_slice()).collect();
        let coeffs: Vec<f64> = terms.iter().map(|(_, c)| *c).collect();
        let sphere = self.model.geometry == Geometry::Sphere;
        let mut next = std::mem::take(&mut self.stage);
        rk_combine(
            self.shape,
            &self.x,
            &ks,
            &coeffs,
            renormalise,
            noise,
            sphere,
            &mut next,
        );
        match dst {
            Slot::Stage => self.stage = next,
            Slot::State => {
                self.stage = std::mem::replace(&mut self.x, next);
                if self.first_bad.is_none() && self.x.iter().any(|v| !v.is_finite()) {
                    self.first_bad = Some(self.layer);
                }
            }
        }
        Ok(())
    }

    fn first_non_finite_layer(&mut self) -> Option<u32> {
        self.first_bad
    }

    fn supports_adaptive(&self) -> bool {
        true
    }
    fn combine_systems(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<()> {
        let mut next = std::mem::take(&mut self.stage);
        combine_by_system(
            self.shape,
            &self.x,
            &self.k,
            stages,
            coeffs,
            renormalise,
            &mut next,
        );
        self.stage = next;
        Ok(())
    }
    fn scaled_sums(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        with_state: bool,
        atol: f64,
        rtol: f64,
        out: &mut [f64],
    ) -> Result<()> {
        let per = self.shape.n * self.shape.d;
        let buffers = (&self.x[..], &self.stage[..], &self.k[..]);
        scaled_sums_by_system(per, buffers, stages, coeffs, with_state, atol, rtol, out);
        Ok(())
    }
    fn accept_systems(&mut self, accepted: &[bool], copy: Option<(usize, usize)>) -> Result<()> {
        let per = self.shape.n * self.shape.d;
        accept_by_system(per, &mut self.x, &self.stage, &mut self.k, accepted, copy);
        if self.first_bad.is_none() && self.x.iter().any(|v| !v.is_finite()) {
            self.first_bad = Some(self.layer);
        }
        Ok(())
    }
    fn interpolate(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<Vec<f64>> {
        let mut out = vec![0.0; self.x.len()];
        combine_by_system(
            self.shape,
            &self.x,
            &self.k,
            stages,
            coeffs,
            renormalise,
            &mut out,
        );
        Ok(out)
    }

    fn begin_step(&mut self, layer: u32) -> Result<()> {
        self.layer = layer;
        if self.model.redraws() {
            self.heads = self
                .model
                .heads_by_system(self.shape.d, layer, self.shape.batch);
        }
        // Per-layer weights: the model now holds the heads and perceptron of this step's layer.
        if self.model.select_layer(layer).is_some() {
            self.heads = vec![self.model.heads.clone()];
        }
        Ok(())
    }
    fn read_state(&mut self) -> Result<Tokens> {
        Ok(Tokens::F64(self.x.clone()))
    }
    fn read_field(&mut self, stage: usize) -> Result<Tokens> {
        Ok(Tokens::F64(self.k[stage].clone()))
    }
    fn pair_stats(&mut self) -> Result<Vec<PairStats>> {
        // The Pre-LN family's tokens leave the sphere: its observables are those of the
        // normalised tokens, the ones attention sees (docs/model.md §3).
        if self.model.layer.normalises_input() {
            let y = normalised_tokens(&self.x, self.shape.d);
            return Ok(pair_stats(&self.model.betas, self.shape, &y));
        }
        Ok(pair_stats(&self.model.betas, self.shape, &self.x))
    }
}
