//! The fast CPU backend: f32, multithreaded over blocks of queries (rayon), streaming
//! (online) softmax over key tiles stored as structure-of-arrays, so no n x n matrix is ever
//! formed. The inner kernel (`kernel`) is compiled for AVX-512 and AVX2 and picked at run
//! time; a portable loop serves CPUs with neither.
//!
//! Same vector field as `reference::field` (MODELS.md §1), written with the score matrix
//! M = beta K^T Q so that keys and values are the raw tokens: s_ij = <M x_i, x_j> and
//! a_i = V (sum_j w_ij x_j).

mod avx2;
pub mod kernel;
pub mod simd;

use rayon::prelude::*;

use crate::error::Result;
use crate::integrate::{Backend, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Attention, Geometry, Model, Shape};

pub use kernel::CpuKernel;
use kernel::{Block, BlockState, LANES, Layout, QB, run_block};

/// Floats of keys per tile: a tile stays in L1/L2 while a block of queries streams it.
const TILE_FLOATS: usize = 32768;

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
    /// Keys per tile, a multiple of LANES.
    tile: usize,
    /// Row length of the transposed keys: n rounded up to a multiple of LANES, plus LANES.
    stride: usize,
    /// Whether the kernel also reads the blocked key layout (AVX2, d > 4).
    blocked: bool,
    /// Queries per rayon task (QC or QC_WIDE).
    qc: usize,
    simd: CpuKernel,
}

pub struct CpuBackend {
    kernel: Kernel,
    x: Vec<f32>,
    stage: Vec<f32>,
    k: Vec<Vec<f32>>,
    /// The tokens being attended to, transposed per system to [batch][d][stride] (rows),
    /// zero padded.
    keys: Vec<f32>,
    /// The same in the blocked layout, when the kernel reads it (else empty).
    blocked: Vec<f32>,
}

impl CpuBackend {
    /// The backend with the fastest kernel this CPU supports.
    pub fn new(model: &Model, shape: Shape, x0: &[f64]) -> Result<Self> {
        Self::with_kernel(model, shape, x0, CpuKernel::detect())
    }

    /// The backend with a chosen kernel version (tests compare them).
    pub fn with_kernel(model: &Model, shape: Shape, x0: &[f64], simd: CpuKernel) -> Result<Self> {
        model.validate(shape)?;
        assert_eq!(x0.len(), shape.len(), "initial state has the wrong length");
        if !simd.supported() {
            return Err(crate::error::input(format!(
                "this CPU cannot run the {} kernel",
                simd.name()
            )));
        }
        let w = &model.weights;
        let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let identity_scores = w.score_matrix() == crate::model::weights::identity_matrix(shape.d);
        // One extra vector per row: rows a power-of-two apart would fall into the same L1
        // sets, and the d rows of one key vector would evict each other.
        let stride = shape.n.next_multiple_of(LANES) + LANES;
        let kernel = Kernel {
            shape,
            attention: model.attention,
            geometry: model.geometry,
            causal: model.mask == crate::model::Mask::Causal,
            betas: model.betas.iter().map(|&b| b as f32).collect(),
            score: (!identity_scores).then(|| to_f32(&w.score_matrix())),
            value: (!w.v_is_identity()).then(|| to_f32(&w.v)),
            tile: (TILE_FLOATS / shape.d / LANES).clamp(4, 64) * LANES,
            stride,
            blocked: simd == CpuKernel::Avx2 && shape.d > 4,
            qc: if shape.d > 4 { QC_WIDE } else { QC },
            simd,
        };
        let kernel_blocked = kernel.blocked;
        Ok(CpuBackend {
            kernel,
            x: to_f32(x0),
            stage: vec![0.0; shape.len()],
            k: Vec::new(),
            keys: vec![0.0; shape.batch * shape.d * stride],
            blocked: if kernel_blocked {
                vec![0.0; shape.batch * shape.d * stride]
            } else {
                Vec::new()
            },
        })
    }

    /// The kernel version in use.
    pub fn simd(&self) -> CpuKernel {
        self.kernel.simd
    }
}

/// [n][d] -> a key layout for each system (the padding stays zero).
fn transpose_systems(shape: Shape, stride: usize, layout: Layout, x: &[f32], keys: &mut [f32]) {
    let Shape { n, d, .. } = shape;
    keys.par_chunks_mut(stride * d)
        .zip(x.par_chunks(n * d))
        .for_each(|(kt, xs)| {
            for (j, tok) in xs.chunks_exact(d).enumerate() {
                for c in 0..d {
                    kt[layout.index(d, stride, j, c)] = tok[c];
                }
            }
        });
}

/// Queries per rayon task for d <= 4: QC / QB blocks take turns on each key tile while it
/// is in cache. Larger d uses `QC_WIDE`, so that the keys (d floats each, twice) stream from
/// memory once per 96 queries rather than once per 36.
const QC: usize = 36;
const QC_WIDE: usize = 96;

/// Per-thread scratch for one chunk of queries.
struct Scratch {
    q: Vec<f32>,
    s: Vec<f32>,
    m: Vec<f64>,
    l: Vec<f64>,
    acc: Vec<f64>,
    mean: Vec<f32>,
    a: Vec<f32>,
}

impl Kernel {
    fn scratch(&self) -> Scratch {
        let d = self.shape.d;
        Scratch {
            q: vec![0.0; self.qc * d],
            s: vec![0.0; QB * self.tile],
            m: vec![0.0; self.qc],
            l: vec![0.0; self.qc],
            acc: vec![0.0; self.qc * d],
            mean: vec![0.0; d],
            a: vec![0.0; d],
        }
    }

    /// q = beta K^T Q x for one token (twin of `queries.wgsl`).
    fn query(&self, beta: f32, xi: &[f32], q: &mut [f32]) {
        let d = xi.len();
        match &self.score {
            Some(m) => {
                for r in 0..d {
                    q[r] = beta * simd::dot(&m[r * d..(r + 1) * d], xi);
                }
            }
            None => q.iter_mut().zip(xi).for_each(|(q, x)| *q = beta * x),
        }
    }

    /// The field of the queries first..first + out.len() / d (at most qc) of system b,
    /// written to `out`. Key tiles are the outer loop so that each stays in cache while every
    /// block of the chunk uses it.
    #[allow(clippy::too_many_arguments)]
    fn attention_chunk(
        &self,
        keys: &[f32],
        blocked: &[f32],
        x: &[f32],
        b: usize,
        first: usize,
        sc: &mut Scratch,
        out: &mut [f32],
    ) {
        let Shape { n, d, .. } = self.shape;
        let count = out.len() / d;
        let blocks = count.div_ceil(QB);
        let system = b * d * self.stride..(b + 1) * d * self.stride;
        let kt = &keys[system.clone()];
        let kb = if self.blocked { &blocked[system] } else { kt };
        // Short chunks repeat their last query in the padding of the last block; those
        // copies are computed and not written out.
        let end_of = |k: usize| {
            if self.causal {
                first + k.min(count - 1) + 1
            } else {
                n
            }
        };
        for k in 0..blocks * QB {
            let t = b * n + first + k.min(count - 1);
            self.query(
                self.betas[b],
                &x[t * d..(t + 1) * d],
                &mut sc.q[k * d..(k + 1) * d],
            );
        }
        sc.m.fill(f64::NEG_INFINITY);
        sc.l.fill(0.0);
        sc.acc.fill(0.0);
        let key_end = end_of(blocks * QB - 1);
        let mut start = 0;
        while start < key_end {
            let stop = (start + self.tile).min(key_end);
            for blk in 0..blocks {
                let r = blk * QB..(blk + 1) * QB;
                let ends: [usize; QB] = std::array::from_fn(|k| end_of(blk * QB + k));
                if self.simd == CpuKernel::Portable {
                    for k in r {
                        self.fold_tile_portable(
                            kt,
                            &sc.q[k * d..(k + 1) * d],
                            ends[k - blk * QB],
                            start,
                            stop,
                            &mut sc.s,
                            &mut sc.m[k],
                            &mut sc.l[k],
                            &mut sc.acc[k * d..(k + 1) * d],
                        );
                    }
                    continue;
                }
                let block = Block {
                    d,
                    rows: kt,
                    keys: kb,
                    stride: self.stride,
                    q: &sc.q[r.start * d..r.end * d],
                    ends,
                    start,
                    stop,
                };
                let mut state = BlockState {
                    m: &mut sc.m[r.clone()],
                    l: &mut sc.l[r.clone()],
                    acc: &mut sc.acc[r.start * d..r.end * d],
                };
                run_block(self.simd, &block, &mut sc.s, &mut state);
            }
            start = stop;
        }
        for k in 0..count {
            let t = b * n + first + k;
            let scale = match self.attention {
                Attention::Sa => 1.0 / sc.l[k],
                Attention::Usa => (sc.m[k] - (end_of(k) as f64).ln()).exp(),
            };
            for (o, a) in sc.mean.iter_mut().zip(&sc.acc[k * d..(k + 1) * d]) {
                *o = (a * scale) as f32;
            }
            self.finish(
                &x[t * d..(t + 1) * d],
                &sc.mean,
                &mut sc.a,
                &mut out[k * d..(k + 1) * d],
            );
        }
    }

    /// a = V mean, then on the sphere the tangent projection (twins of
    /// `attention_finish.wgsl` and `tangent_project.wgsl`).
    fn finish(&self, xi: &[f32], mean: &[f32], a: &mut [f32], out: &mut [f32]) {
        let d = xi.len();
        match &self.value {
            Some(v) => {
                for r in 0..d {
                    a[r] = simd::dot(&v[r * d..(r + 1) * d], mean);
                }
            }
            None => a.copy_from_slice(mean),
        }
        if self.geometry == Geometry::Sphere {
            // Orthogonal projection onto x^perp (see reference::tangent_project).
            let along = simd::dot(xi, a) / simd::dot(xi, xi);
            a.iter_mut().zip(xi).for_each(|(a, x)| *a -= along * x);
        }
        out.copy_from_slice(a);
    }

    /// Folds keys [start, min(stop, end)) into one query's online softmax, without SIMD
    /// extensions: scores in f32, running max and sums in f64.
    #[allow(clippy::too_many_arguments)]
    fn fold_tile_portable(
        &self,
        kt: &[f32],
        q: &[f32],
        end: usize,
        start: usize,
        stop: usize,
        s: &mut [f32],
        m: &mut f64,
        l: &mut f64,
        acc: &mut [f64],
    ) {
        let stop = stop.min(end);
        if stop <= start {
            return;
        }
        let d = q.len();
        let len = stop - start;
        let s = &mut s[..len];
        s.fill(0.0);
        for c in 0..d {
            let qc = q[c];
            let kc = &kt[c * self.stride + start..c * self.stride + stop];
            s.iter_mut().zip(kc).for_each(|(s, k)| *s += qc * k);
        }
        let tile_max = f64::from(simd::max(s));
        if tile_max > *m {
            // The running maximum moves at most once per tile.
            let r = (*m - tile_max).exp();
            *l *= r;
            acc.iter_mut().for_each(|a| *a *= r);
            *m = tile_max;
        }
        let mf = *m as f32;
        s.iter_mut().for_each(|s| *s = simd::exp_f32(*s - mf));
        *l += f64::from(simd::sum(s));
        for c in 0..d {
            let kc = &kt[c * self.stride + start..c * self.stride + stop];
            acc[c] += f64::from(simd::dot(s, kc));
        }
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
        let kt = &keys[b * d * self.stride..(b + 1) * d * self.stride];
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
                let kc = &kt[c * self.stride + start..c * self.stride + start + len];
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
        format!(
            "cpu (f32, {}, {} threads)",
            self.kernel.simd.name(),
            rayon::current_num_threads()
        )
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
        let Shape { n, d, .. } = kernel.shape;
        transpose_systems(
            kernel.shape,
            kernel.stride,
            Layout::Rows,
            src,
            &mut self.keys,
        );
        if kernel.blocked {
            transpose_systems(
                kernel.shape,
                kernel.stride,
                Layout::Blocked,
                src,
                &mut self.blocked,
            );
        }
        let (keys, blocked) = (&self.keys, &self.blocked);
        self.k[stage]
            .par_chunks_mut(n * d)
            .enumerate()
            .for_each(|(b, sys)| {
                sys.par_chunks_mut(kernel.qc * d).enumerate().for_each_init(
                    || kernel.scratch(),
                    |sc, (c, out)| {
                        kernel.attention_chunk(keys, blocked, src, b, c * kernel.qc, sc, out)
                    },
                );
            });
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
        transpose_systems(
            kernel.shape,
            kernel.stride,
            Layout::Rows,
            &self.x,
            &mut self.keys,
        );
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
