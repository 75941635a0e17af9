//! The fast CPU backend: f32, multithreaded over tokens (rayon), streaming (online) softmax
//! over key tiles stored as structure-of-arrays, so no n x n matrix is ever formed.
//!
//! Same vector field as `reference::attention` (MODELS.md §1), written with the score matrix
//! M = beta K^T Q so that keys and values are the raw tokens: s_ij = <M x_i, x_j> and
//! a_i = V (sum_j w_ij x_j).

pub mod simd;

use rayon::prelude::*;

use crate::error::Result;
use crate::integrate::{Backend, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Attention, Geometry, Model, Shape};

/// Keys per tile: a tile of TILE_FLOATS floats stays in L1/L2 while a query streams it.
const TILE_FLOATS: usize = 8192;

/// Precomputed, backend-precision view of the model.
struct Kernel {
    shape: Shape,
    attention: Attention,
    geometry: Geometry,
    causal: bool,
    betas: Vec<f32>,
    /// K^T Q (row-major), or None for the identity.
    score: Option<Vec<f32>>,
    /// V (row-major), or None for the identity.
    value: Option<Vec<f32>>,
    tile: usize,
}

pub struct CpuBackend {
    kernel: Kernel,
    x: Vec<f32>,
    stage: Vec<f32>,
    k: Vec<Vec<f32>>,
    /// The tokens being attended to, transposed per system to [batch][d][n].
    keys: Vec<f32>,
}

impl CpuBackend {
    pub fn new(model: &Model, shape: Shape, x0: &[f64]) -> Result<Self> {
        model.validate(shape)?;
        assert_eq!(x0.len(), shape.len(), "initial state has the wrong length");
        let w = &model.weights;
        let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let identity_scores = w.score_matrix() == crate::model::weights::identity_matrix(shape.d);
        let kernel = Kernel {
            shape,
            attention: model.attention,
            geometry: model.geometry,
            causal: model.mask == crate::model::Mask::Causal,
            betas: model.betas.iter().map(|&b| b as f32).collect(),
            score: (!identity_scores).then(|| to_f32(&w.score_matrix())),
            value: (!w.v_is_identity()).then(|| to_f32(&w.v)),
            tile: (TILE_FLOATS / shape.d).max(16),
        };
        Ok(CpuBackend {
            kernel,
            x: to_f32(x0),
            stage: vec![0.0; shape.len()],
            k: Vec::new(),
            keys: vec![0.0; shape.len()],
        })
    }
}

/// [n][d] -> [d][n] for each system.
fn transpose_systems(shape: Shape, x: &[f32], keys: &mut [f32]) {
    let Shape { n, d, .. } = shape;
    keys.par_chunks_mut(n * d)
        .zip(x.par_chunks(n * d))
        .for_each(|(kt, xs)| {
            for (j, tok) in xs.chunks_exact(d).enumerate() {
                for c in 0..d {
                    kt[c * n + j] = tok[c];
                }
            }
        });
}

/// Per-thread scratch for one query.
struct Scratch {
    q: Vec<f32>,
    s: Vec<f32>,
    acc: Vec<f64>,
    mean: Vec<f32>,
    a: Vec<f32>,
}

impl Kernel {
    fn scratch(&self) -> Scratch {
        let d = self.shape.d;
        Scratch {
            q: vec![0.0; d],
            s: vec![0.0; self.tile],
            acc: vec![0.0; d],
            mean: vec![0.0; d],
            a: vec![0.0; d],
        }
    }

    /// Twin of `shaders/attention.wgsl` for one query token t = b n + i.
    fn attention_token(
        &self,
        keys: &[f32],
        x: &[f32],
        t: usize,
        sc: &mut Scratch,
        out: &mut [f32],
    ) {
        let Shape { n, d, .. } = self.shape;
        let (b, i) = (t / n, t % n);
        let xi = &x[t * d..(t + 1) * d];
        let beta = self.betas[b];
        match &self.score {
            Some(m) => {
                for r in 0..d {
                    sc.q[r] = beta * simd::dot(&m[r * d..(r + 1) * d], xi);
                }
            }
            None => sc.q.iter_mut().zip(xi).for_each(|(q, x)| *q = beta * x),
        }
        let seen = if self.causal { i + 1 } else { n };
        let kt = &keys[b * n * d..(b + 1) * n * d];
        let mut m = f32::NEG_INFINITY;
        let mut l = 0.0f64;
        sc.acc.fill(0.0);
        let mut start = 0;
        while start < seen {
            let len = self.tile.min(seen - start);
            let s = &mut sc.s[..len];
            s.fill(0.0);
            for c in 0..d {
                let qc = sc.q[c];
                let kc = &kt[c * n + start..c * n + start + len];
                s.iter_mut().zip(kc).for_each(|(s, k)| *s += qc * k);
            }
            let tile_max = simd::max(s);
            if tile_max > m {
                // Lazy rescaling: only when the running maximum moves.
                let scale = f64::from(m - tile_max).exp();
                l *= scale;
                sc.acc.iter_mut().for_each(|a| *a *= scale);
                m = tile_max;
            }
            s.iter_mut().for_each(|s| *s = simd::exp_f32(*s - m));
            l += f64::from(simd::sum(s));
            for c in 0..d {
                let kc = &kt[c * n + start..c * n + start + len];
                sc.acc[c] += f64::from(simd::dot(s, kc));
            }
            start += len;
        }
        let scale = match self.attention {
            Attention::Sa => 1.0 / l,
            Attention::Usa => f64::from(m).exp() / seen as f64,
        };
        sc.mean
            .iter_mut()
            .zip(&sc.acc)
            .for_each(|(o, a)| *o = (a * scale) as f32);
        match &self.value {
            Some(v) => {
                for r in 0..d {
                    sc.a[r] = simd::dot(&v[r * d..(r + 1) * d], &sc.mean);
                }
            }
            None => sc.a.copy_from_slice(&sc.mean),
        }
        if self.geometry == Geometry::Sphere {
            // Orthogonal projection onto x^perp (see reference::tangent_project).
            let along = simd::dot(xi, &sc.a) / simd::dot(xi, xi);
            sc.a.iter_mut().zip(xi).for_each(|(a, x)| *a -= along * x);
        }
        out.copy_from_slice(&sc.a);
    }

    /// Twin of `shaders/pair_stats.wgsl` for one token.
    fn pair_stats_token(
        &self,
        keys: &[f32],
        inv_norm: &[f32],
        x: &[f32],
        t: usize,
        s: &mut [f32],
    ) -> PairStats {
        let Shape { n, d, .. } = self.shape;
        let (b, i) = (t / n, t % n);
        let xi = &x[t * d..(t + 1) * d];
        let beta = f64::from(self.betas[b]);
        let kt = &keys[b * n * d..(b + 1) * n * d];
        let inv = &inv_norm[b * n..(b + 1) * n];
        let mut out = PairStats {
            lse_max: f64::NEG_INFINITY,
            lse_sum: 0.0,
            min_cos: f64::INFINITY,
            sum_cos: 0.0,
            sum_dot: 0.0,
        };
        let mut start = 0;
        while start < n {
            let len = self.tile.min(n - start);
            let s = &mut s[..len];
            s.fill(0.0);
            for c in 0..d {
                let kc = &kt[c * n + start..c * n + start + len];
                s.iter_mut().zip(kc).for_each(|(s, k)| *s += xi[c] * k);
            }
            for (jj, &dotv) in s.iter().enumerate() {
                let j = start + jj;
                let dotv = f64::from(dotv);
                let e = beta * dotv;
                if e > out.lse_max {
                    out.lse_sum *= (out.lse_max - e).exp();
                    out.lse_max = e;
                }
                out.lse_sum += (e - out.lse_max).exp();
                out.sum_dot += dotv;
                if j != i {
                    let c = dotv * f64::from(inv[i]) * f64::from(inv[j]);
                    out.min_cos = out.min_cos.min(c);
                    out.sum_cos += c;
                }
            }
            start += len;
        }
        out
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!("cpu (f32, {} threads)", rayon::current_num_threads())
    }
    fn shape(&self) -> Shape {
        self.kernel.shape
    }
    fn prepare(&mut self, stages: usize) -> Result<()> {
        self.k = vec![vec![0.0; self.kernel.shape.len()]; stages];
        Ok(())
    }
    fn field(&mut self, input: Slot, stage: usize) -> Result<()> {
        let src = match input {
            Slot::State => &self.x,
            Slot::Stage => &self.stage,
        };
        let kernel = &self.kernel;
        transpose_systems(kernel.shape, src, &mut self.keys);
        let keys = &self.keys;
        let d = kernel.shape.d;
        self.k[stage]
            .par_chunks_mut(d)
            .enumerate()
            .with_min_len(8)
            .for_each_init(
                || kernel.scratch(),
                |sc, (t, out)| kernel.attention_token(keys, src, t, sc, out),
            );
        Ok(())
    }
    fn combine(&mut self, dst: Slot, terms: &[(usize, f64)], renormalise: bool) -> Result<()> {
        let d = self.kernel.shape.d;
        let ks: Vec<(&[f32], f32)> = terms
            .iter()
            .map(|&(s, c)| (self.k[s].as_slice(), c as f32))
            .collect();
        let x = &self.x;
        let target = match dst {
            Slot::Stage => &mut self.stage,
            Slot::State => &mut self.stage, // written to the spare buffer, then swapped in
        };
        target.par_chunks_mut(d).enumerate().for_each(|(t, out)| {
            let r = t * d..(t + 1) * d;
            out.copy_from_slice(&x[r.clone()]);
            for (k, c) in &ks {
                out.iter_mut()
                    .zip(&k[r.clone()])
                    .for_each(|(o, k)| *o += c * k);
            }
            if renormalise {
                let norm = simd::dot(out, out).sqrt();
                out.iter_mut().for_each(|o| *o /= norm);
            }
        });
        if dst == Slot::State {
            std::mem::swap(&mut self.x, &mut self.stage);
        }
        Ok(())
    }
    fn read_state(&mut self) -> Result<Tokens> {
        Ok(Tokens::F32(self.x.clone()))
    }
    fn read_field(&mut self, stage: usize) -> Result<Tokens> {
        Ok(Tokens::F32(self.k[stage].clone()))
    }
    fn pair_stats(&mut self) -> Result<Vec<PairStats>> {
        let kernel = &self.kernel;
        let d = kernel.shape.d;
        transpose_systems(kernel.shape, &self.x, &mut self.keys);
        let inv_norm: Vec<f32> = self
            .x
            .chunks_exact(d)
            .map(|t| 1.0 / simd::dot(t, t).sqrt())
            .collect();
        let (keys, x) = (&self.keys, &self.x);
        Ok((0..kernel.shape.tokens())
            .into_par_iter()
            .map_init(
                || vec![0.0f32; kernel.tile],
                |s, t| kernel.pair_stats_token(keys, &inv_norm, x, t, s),
            )
            .collect())
    }
}
