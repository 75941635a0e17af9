//! The f64 reference backend: plain loops, obviously right, the truth in tests.
//!
//! [`field`] is the vector field written literally from MODELS.md §1 (Q x_i and K x_j
//! formed separately, a two-pass softmax). The GPU computes the same field in three
//! kernels; [`stages`] holds their f64 twins (same names as the shaders in `shaders/`, same
//! argument order), so that a GPU result that differs can be bisected to one stage, and
//! `rk_combine` and `pair_stats` below are the twins of the other two kernels.
//! Parallel over tokens with rayon only to keep tests quick; every token is computed by the
//! same plain loop.

pub mod stages;

use rayon::prelude::*;

use crate::error::Result;
use crate::integrate::{Backend, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::weights::matvec;
use crate::model::{Attention, Geometry, Model, Shape};

/// The attention vector field (MODELS.md §1):
/// out_i = P_{x_i}^perp a_i on the sphere, a_i in euclidean geometry, with
/// a_i = sum_{j in J(i)} w_ij V x_j and s_ij = beta <Q x_i, K x_j>.
pub fn field(model: &Model, shape: Shape, x: &[f64], out: &mut [f64]) {
    let Shape { n, d, .. } = shape;
    let w = &model.weights;
    // K x_j and V x_j for every token: O(n d^2), computed once per evaluation.
    let mut kx = vec![0.0; x.len()];
    let mut vx = vec![0.0; x.len()];
    kx.par_chunks_mut(d)
        .zip(vx.par_chunks_mut(d))
        .zip(x.par_chunks(d))
        .for_each(|((k, v), xj)| {
            matvec(&w.k, xj, k);
            matvec(&w.v, xj, v);
        });
    out.par_chunks_mut(d).enumerate().for_each_init(
        || (vec![0.0; d], vec![0.0; d], Vec::with_capacity(n)),
        |(qx, a, scores), (t, out_i)| {
            let (b, i) = (t / n, t % n);
            let beta = model.betas[b];
            let sys = b * n * d;
            let xi = &x[t * d..(t + 1) * d];
            matvec(&w.q, xi, qx);
            let seen = model.keys_seen(i, n);
            scores.clear();
            for j in 0..seen {
                let kj = &kx[sys + j * d..sys + (j + 1) * d];
                scores.push(beta * dot(qx, kj));
            }
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            a.fill(0.0);
            let mut total = 0.0;
            for (j, s) in scores.iter().enumerate() {
                let p = (s - m).exp();
                total += p;
                let vj = &vx[sys + j * d..sys + (j + 1) * d];
                a.iter_mut().zip(vj).for_each(|(a, v)| *a += p * v);
            }
            let scale = match model.attention {
                Attention::Sa => 1.0 / total,
                Attention::Usa => m.exp() / seen as f64,
            };
            a.iter_mut().for_each(|a| *a *= scale);
            if model.geometry == Geometry::Sphere {
                tangent_project(xi, a);
            }
            out_i.copy_from_slice(a);
        },
    );
}

/// a <- a - (<x, a> / <x, x>) x: the orthogonal projection onto x^perp, which is
/// P_x^perp a = a - <x, a> x for unit x. Runge-Kutta stage inputs are slightly off the sphere;
/// dividing by |x|^2 keeps the extended field exactly tangent to the sphere through x there
/// (no spurious radial velocity, which for USA at large beta is e^beta times the error).
pub fn tangent_project(x: &[f64], a: &mut [f64]) {
    let along = dot(x, a) / dot(x, x);
    a.iter_mut().zip(x).for_each(|(a, x)| *a -= along * x);
}

/// Twin of `shaders/rk_combine.wgsl`: dst = base + sum_s c_s k_s, each token renormalised if
/// asked.
pub fn rk_combine(
    d: usize,
    base: &[f64],
    ks: &[&[f64]],
    coeffs: &[f64],
    renormalise: bool,
    dst: &mut [f64],
) {
    dst.par_chunks_mut(d).enumerate().for_each(|(t, out)| {
        let r = t * d..(t + 1) * d;
        out.copy_from_slice(&base[r.clone()]);
        for (k, c) in ks.iter().zip(coeffs) {
            out.iter_mut()
                .zip(&k[r.clone()])
                .for_each(|(o, k)| *o += c * k);
        }
        if renormalise {
            let norm = dot(out, out).sqrt();
            out.iter_mut().for_each(|o| *o /= norm);
        }
    });
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

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// The reference backend: the state in f64 on the host.
pub struct ReferenceBackend {
    model: Model,
    shape: Shape,
    x: Vec<f64>,
    stage: Vec<f64>,
    k: Vec<Vec<f64>>,
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
        field(&self.model, self.shape, src, &mut self.k[stage]);
        Ok(())
    }
    fn combine(&mut self, dst: Slot, terms: &[(usize, f64)], renormalise: bool) -> Result<()> {
        let ks: Vec<&[f64]> = terms.iter().map(|(s, _)| self.k[*s].as_slice()).collect();
        let coeffs: Vec<f64> = terms.iter().map(|(_, c)| *c).collect();
        match dst {
            Slot::Stage => rk_combine(
                self.shape.d,
                &self.x,
                &ks,
                &coeffs,
                renormalise,
                &mut self.stage,
            ),
            Slot::State => {
                let mut next = std::mem::take(&mut self.stage);
                rk_combine(self.shape.d, &self.x, &ks, &coeffs, renormalise, &mut next);
                self.stage = std::mem::replace(&mut self.x, next);
            }
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
        Ok(pair_stats(&self.model.betas, self.shape, &self.x))
    }
}
