//! The fast CPU backend: f32, multithreaded over chunks of queries (rayon), streaming
//! (online) softmax over key tiles stored as structure-of-arrays, so no n x n matrix is ever
//! formed. The inner kernel (`kernel::avx2`) is picked at run time; a portable loop
//! (`kernel::portable`) serves CPUs without AVX2 and FMA.
//!
//! Same vector field as `reference::field` (docs/model.md §1, §3), written per head with the
//! score matrix M_h = beta K_h^T Q_h so that keys and values are the raw tokens:
//! s_ij = <M_h x_i, x_j> and a_i = sum_h c_h V_h (sum_j w_ij x_j).

pub mod attend;
pub mod kernel;
pub mod simd;

use rayon::prelude::*;

use crate::error::Result;
use crate::integrate::{Backend, NoiseStep, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Attention, Geometry, Mask, Model, Shape, Weights};

pub use kernel::CpuKernel;
use kernel::{Block, BlockState, LANES, Layout, QB, portable, run_block};

/// Floats of keys per tile: a tile stays in L1/L2 while a block of queries streams it.
const TILE_FLOATS: usize = 32768;
/// Queries per rayon task for d <= 4: QC / QB blocks take turns on each key tile while it
/// is in cache. Larger d uses `QC_WIDE`, so that the keys (d floats each, twice) stream from
/// memory once per 96 queries rather than once per 36.
const QC: usize = 36;

/// Fewest floats a rayon task of per-token work (the finish, the stage combinations, the
/// normalisation) takes: below it the scheduling costs more than the work. With 32-token
/// systems at d = 128-512 (phase-diagram) a profile spent about 20 % of the time in rayon's
/// scheduling; 16384 floats keep a task above a few microseconds, and still give a million
/// tokens at d = 3 about 180 tasks.
const TASK_FLOATS: usize = 1 << 14;

/// Tokens per rayon task of per-token work at dimension d (see [`TASK_FLOATS`]).
fn token_grain(d: usize) -> usize {
    (TASK_FLOATS / d.max(1)).max(1)
}
const QC_WIDE: usize = 96;

/// One head in backend precision.
struct Head {
    /// K^T Q (row-major), or None for the identity.
    score: Option<Vec<f32>>,
    /// V (row-major), or None for the identity.
    value: Option<Vec<f32>>,
}

impl Head {
    fn new(w: &Weights) -> Self {
        let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let identity = crate::model::weights::identity_matrix(w.d);
        // K^T Q costs d^3: skip it when Q = K = I (critical-scaling runs one layer in d = n + 1).
        let score = if w.q == identity && w.k == identity {
            None
        } else {
            let score = w.score_matrix();
            (score != identity).then(|| to_f32(&score))
        };
        Head {
            score,
            value: (!w.v_is_identity()).then(|| to_f32(&w.v)),
        }
    }
}

/// Precomputed, backend-precision view of the model for queries of shape [batch, n, d]
/// attending to keys [batch, n_keys, d] (self-attention: n_keys = n).
pub(crate) struct Kernel {
    model: Model,
    shape: Shape,
    n_keys: usize,
    betas: Vec<f32>,
    /// The heads of each system, [systems][H]: one entry shared by all systems unless the
    /// model draws them per system.
    heads: Vec<Vec<Head>>,
    /// Keys per tile, a multiple of LANES.
    tile: usize,
    /// Row length of the transposed keys: n_keys rounded up to a multiple of LANES, plus LANES.
    stride: usize,
    /// Whether the kernel also reads the blocked key layout (AVX2, d > 4).
    blocked: bool,
    /// Queries per rayon task (QC or QC_WIDE).
    qc: usize,
    simd: CpuKernel,
}

/// Keys transposed for the kernel: rows, and the blocked layout when the kernel reads it.
pub(crate) struct KeyLayouts {
    rows: Vec<f32>,
    blocked: Vec<f32>,
}

impl Kernel {
    pub fn new(model: &Model, shape: Shape, n_keys: usize, simd: CpuKernel) -> Result<Self> {
        model.validate(shape)?;
        if !simd.supported() {
            return Err(crate::error::input(format!(
                "this CPU cannot run the {} kernel",
                simd.name()
            )));
        }
        if model.mask == Mask::Causal && n_keys != shape.n {
            return Err(crate::error::input(
                "the causal mask needs the queries to be the keys (self-attention)",
            ));
        }
        Ok(Kernel {
            model: model.clone(),
            shape,
            n_keys,
            betas: model.betas.iter().map(|&b| b as f32).collect(),
            heads: Self::heads_of(&model.heads_by_system(shape.d, 0, shape.batch)),
            tile: (TILE_FLOATS / shape.d / LANES).clamp(4, 64) * LANES,
            // One extra vector per row: rows a power-of-two apart would fall into the same
            // L1 sets, and the d rows of one key vector would evict each other.
            stride: n_keys.next_multiple_of(LANES) + LANES,
            blocked: simd == CpuKernel::Avx2 && shape.d > 4,
            qc: if shape.d > 4 { QC_WIDE } else { QC },
            simd,
        })
    }

    fn heads_of(by_system: &[Vec<Weights>]) -> Vec<Vec<Head>> {
        by_system
            .iter()
            .map(|h| h.iter().map(Head::new).collect())
            .collect()
    }

    /// Heads shared by every system.
    pub fn set_heads(&mut self, heads: &[Weights]) {
        self.heads = vec![heads.iter().map(Head::new).collect()];
    }

    /// The heads of each system, [systems][H] (one entry: shared).
    pub fn set_heads_by_system(&mut self, by_system: &[Vec<Weights>]) {
        self.heads = Self::heads_of(by_system);
    }

    pub fn layouts(&self) -> KeyLayouts {
        let len = self.shape.batch * self.shape.d * self.stride;
        KeyLayouts {
            rows: vec![0.0; len],
            blocked: if self.blocked {
                vec![0.0; len]
            } else {
                Vec::new()
            },
        }
    }

    /// Transposes keys y [batch, n_keys, d] into the layouts.
    pub fn transpose(&self, y: &[f32], keys: &mut KeyLayouts) {
        transpose_systems(
            self.shape.d,
            self.n_keys,
            self.stride,
            Layout::Rows,
            y,
            &mut keys.rows,
        );
        if self.blocked {
            transpose_systems(
                self.shape.d,
                self.n_keys,
                self.stride,
                Layout::Blocked,
                y,
                &mut keys.blocked,
            );
        }
    }

    /// The attention output a (sum over heads, before the perceptron and the projection) of
    /// queries z [batch, n, d] over the transposed keys, into `out`.
    pub fn attention(&self, keys: &KeyLayouts, z: &[f32], out: &mut [f32]) {
        let Shape { n, d, .. } = self.shape;
        out.par_chunks_mut(n * d).enumerate().for_each(|(b, sys)| {
            sys.par_chunks_mut(self.qc * d).enumerate().for_each_init(
                || self.scratch(),
                |sc, (c, out)| self.attention_chunk(keys, z, b, c * self.qc, sc, out),
            );
        });
    }

    /// The field at the query tokens z from the attention output a: the perceptron, then the
    /// layer's finish, `Model::finish_token` (on the sphere the tangent projection, or the
    /// output normalisation; twins of `mlp_*.wgsl` and `tangent_project.wgsl`).
    pub fn finish(&self, z: &[f32], a: &mut [f32]) {
        let d = self.shape.d;
        let model = &self.model;
        a.par_chunks_mut(d)
            .zip(z.par_chunks(d))
            .with_min_len(token_grain(d))
            .for_each_init(
                || (vec![0.0f64; d], vec![0.0f64; d]),
                |(zi, f), (a, zt)| {
                    zt.iter()
                        .zip(zi.iter_mut())
                        .for_each(|(s, o)| *o = f64::from(*s));
                    a.iter()
                        .zip(f.iter_mut())
                        .for_each(|(s, o)| *o = f64::from(*s));
                    if let Some(mlp) = &model.mlp {
                        mlp.add_to(zi, f);
                    }
                    model.finish_token(zi, f);
                    a.iter_mut().zip(f.iter()).for_each(|(o, v)| *o = *v as f32);
                },
            );
    }

    /// The buffers of one attention task: rows for the queries a chunk can hold (QC or
    /// QC_WIDE, or fewer when a system has fewer tokens: blocks of QB), since they are
    /// allocated and cleared for every chunk.
    fn scratch(&self) -> Scratch {
        let d = self.shape.d;
        let rows = self.qc.min(self.shape.n.next_multiple_of(QB));
        Scratch {
            q: vec![0.0; rows * d],
            s: vec![0.0; QB * self.tile],
            m: vec![0.0; rows],
            l: vec![0.0; rows],
            acc: vec![0.0; rows * d],
            sum: vec![0.0; rows * d],
            mean: vec![0.0; d],
        }
    }

    /// q = beta K^T Q z for one token (twin of `queries.wgsl`).
    fn query(head: &Head, beta: f32, zi: &[f32], q: &mut [f32]) {
        let d = zi.len();
        match &head.score {
            Some(m) => {
                for r in 0..d {
                    q[r] = beta * simd::dot(&m[r * d..(r + 1) * d], zi);
                }
            }
            None => q.iter_mut().zip(zi).for_each(|(q, x)| *q = beta * x),
        }
    }

    /// The attention output of the queries first..first + out.len() / d (at most qc) of
    /// system b, written to `out`. Per head, key tiles are the outer loop so that each stays
    /// in cache while every block of the chunk uses it.
    fn attention_chunk(
        &self,
        keys: &KeyLayouts,
        z: &[f32],
        b: usize,
        first: usize,
        sc: &mut Scratch,
        out: &mut [f32],
    ) {
        let Shape { n, d, .. } = self.shape;
        let count = out.len() / d;
        let blocks = count.div_ceil(QB);
        let system = b * d * self.stride..(b + 1) * d * self.stride;
        let kt = &keys.rows[system.clone()];
        let kb = if self.blocked {
            &keys.blocked[system]
        } else {
            kt
        };
        // Short chunks repeat their last query in the padding of the last block; those
        // copies are computed and not written out.
        let end_of = |k: usize| {
            if self.model.mask == Mask::Causal {
                first + k.min(count - 1) + 1
            } else {
                self.n_keys
            }
        };
        let key_end = (0..blocks * QB).map(end_of).max().unwrap_or(0);
        // ALiBi's slope per key index, in natural units.
        let slope = self.model.alibi_slope(self.n_keys) as f32;
        sc.sum.fill(0.0);
        let heads = &self.heads[if self.heads.len() == 1 { 0 } else { b }];
        for head in heads {
            for k in 0..blocks * QB {
                let t = b * n + first + k.min(count - 1);
                Self::query(
                    head,
                    self.betas[b],
                    &z[t * d..(t + 1) * d],
                    &mut sc.q[k * d..(k + 1) * d],
                );
            }
            sc.m.fill(f64::NEG_INFINITY);
            sc.l.fill(0.0);
            sc.acc.fill(0.0);
            let mut start = 0;
            while start < key_end {
                let stop = (start + self.tile).min(key_end);
                for blk in 0..blocks {
                    let r = blk * QB..(blk + 1) * QB;
                    let ends: [usize; QB] = std::array::from_fn(|k| end_of(blk * QB + k));
                    if self.simd == CpuKernel::Portable {
                        for k in r {
                            let e = ends[k - blk * QB];
                            portable::fold_tile(
                                kt,
                                self.stride,
                                &sc.q[k * d..(k + 1) * d],
                                e,
                                slope,
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
                        alibi: slope,
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
            let weight = self.model.head_weight();
            for k in 0..count {
                let scale = match self.model.attention {
                    Attention::Sa => 1.0 / sc.l[k],
                    Attention::Usa => {
                        (sc.m[k] - self.model.usa_log_normaliser(first + k, self.n_keys)).exp()
                    }
                };
                for (o, a) in sc.mean.iter_mut().zip(&sc.acc[k * d..(k + 1) * d]) {
                    *o = (a * scale) as f32;
                }
                let sum = &mut sc.sum[k * d..(k + 1) * d];
                match &head.value {
                    Some(v) => {
                        for r in 0..d {
                            sum[r] +=
                                weight * f64::from(simd::dot(&v[r * d..(r + 1) * d], &sc.mean));
                        }
                    }
                    None => sum
                        .iter_mut()
                        .zip(&sc.mean)
                        .for_each(|(s, m)| *s += weight * f64::from(*m)),
                }
            }
        }
        for (o, s) in out.iter_mut().zip(&sc.sum) {
            *o = *s as f32;
        }
    }

    /// Twin of `shaders/pair_stats.wgsl` for tokens t0 and t1 of one system (t1 = t0 for a
    /// lone last token; self-attention layouts): the O(n^2) part in f32 over tiles of keys,
    /// vectorised like the attention (the scores in base 2 with beta folded into the query,
    /// their maximum per tile and the sum of exponentials, the minimum cosine with norms
    /// taken once per token), tile results joining f64 totals; the sums of dot products and
    /// cosines from the system's sums of tokens (`sums`), which needs no pass over pairs.
    fn pair_stats_tokens(
        &self,
        keys: &[f32],
        inv_norm: &[f32],
        sums: &[f64],
        x: &[f32],
        tokens: [usize; 2],
        scratch: &mut PairScratch,
    ) -> [PairStats; 2] {
        let Shape { n, d, .. } = self.shape;
        let b = tokens[0] / n;
        let own = tokens.map(|t| t % n);
        let beta = f64::from(self.betas[b]);
        let kt = &keys[b * d * self.stride..(b + 1) * d * self.stride];
        // Inverse norms in the keys' layout: [batch][stride], zero past n.
        let inv = &inv_norm[b * self.stride..(b + 1) * self.stride];
        // sum_j x_j and sum_j x_j / |x_j| of this system.
        let (sum_x, sum_hat) = sums[2 * b * d..2 * (b + 1) * d].split_at(d);
        // Scores in base 2 with beta folded in (any positive scale at beta = 0).
        let scale = if beta > 0.0 {
            beta * std::f64::consts::LOG2_E
        } else {
            1.0
        };
        let PairScratch { q, dots, cos } = scratch;
        let mut out = [PairStats::default(); 2];
        let mut min_scaled = [f64::INFINITY; 2];
        for (k, &t) in tokens.iter().enumerate() {
            let xi = &x[t * d..(t + 1) * d];
            q[k * d..(k + 1) * d]
                .iter_mut()
                .zip(xi)
                .for_each(|(q, x)| *q = (scale * f64::from(*x)) as f32);
            let inv_i = f64::from(inv[own[k]]);
            let dot = |a: &[f64]| {
                a.iter()
                    .zip(xi)
                    .map(|(a, &x)| a * f64::from(x))
                    .sum::<f64>()
            };
            let norm2: f64 = xi.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            out[k] = PairStats {
                lse_max: f64::NEG_INFINITY,
                lse_sum: 0.0,
                min_cos: f64::INFINITY,
                sum_cos: inv_i * dot(sum_hat) - inv_i * inv_i * norm2,
                sum_dot: dot(sum_x),
            };
        }
        let mut start = 0;
        while start < n {
            let len = self.tile.min(n - start);
            let mut tiles = [(0.0f64, 0.0f64); 2];
            #[cfg(target_arch = "x86_64")]
            let simd = self.simd == CpuKernel::Avx2;
            #[cfg(not(target_arch = "x86_64"))]
            let simd = false;
            if simd {
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY: the kernel runs only where the CPU has AVX2 and FMA (checked at
                    // construction); rows and inverse norms are padded past n to whole
                    // vectors.
                    let got = unsafe {
                        kernel::avx2::pair_tile(q, kt, self.stride, inv, start, len, own, dots)
                    };
                    for k in 0..2 {
                        min_scaled[k] = min_scaled[k].min(f64::from(got[k].min_scaled));
                        tiles[k] = (f64::from(got[k].top), f64::from(got[k].sum_exp));
                    }
                }
            } else {
                for k in 0..2 {
                    let tile = (dots.as_mut_slice(), cos.as_mut_slice());
                    tiles[k] = portable::pair_tile(
                        &q[k * d..(k + 1) * d],
                        kt,
                        self.stride,
                        inv,
                        start,
                        len,
                        own[k],
                        tile,
                        &mut min_scaled[k],
                    );
                }
            }
            for (o, (top, sum_exp)) in out.iter_mut().zip(tiles) {
                // The tile's maximum in natural units: lse_max moves at most once per tile.
                let (top, sum_exp) = if beta > 0.0 {
                    (top * std::f64::consts::LN_2, sum_exp)
                } else {
                    (0.0, len as f64)
                };
                if top > o.lse_max {
                    o.lse_sum *= (o.lse_max - top).exp();
                    o.lse_max = top;
                }
                o.lse_sum += sum_exp * (top - o.lse_max).exp();
            }
            start += len;
        }
        for k in 0..2 {
            out[k].min_cos = min_scaled[k] * f64::from(inv[own[k]]) / scale;
        }
        out
    }
}

/// Per-thread scratch of the pair statistics: the scaled query, a tile of scores and of
/// scaled cosines.
struct PairScratch {
    q: Vec<f32>,
    dots: Vec<f32>,
    cos: Vec<f32>,
}

/// Per-thread scratch for one chunk of queries.
struct Scratch {
    q: Vec<f32>,
    s: Vec<f32>,
    m: Vec<f64>,
    l: Vec<f64>,
    acc: Vec<f64>,
    /// The attention output summed over heads.
    sum: Vec<f64>,
    mean: Vec<f32>,
}

/// [n][d] -> a key layout for each system (the padding stays zero).
fn transpose_systems(
    d: usize,
    n: usize,
    stride: usize,
    layout: Layout,
    x: &[f32],
    keys: &mut [f32],
) {
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

/// The CPU backend of the dynamics.
pub struct CpuBackend {
    kernel: Kernel,
    x: Vec<f32>,
    stage: Vec<f32>,
    k: Vec<Vec<f32>>,
    keys: KeyLayouts,
    /// The normalised tokens the Pre-LN family's block sees (empty for the other maps).
    normalised: Vec<f32>,
    /// The layer being computed, and the first in which the state became non-finite.
    layer: u32,
    first_bad: Option<u32>,
}

/// dst <- src with every token (d values) scaled to unit length, the norm in f64.
fn normalise_into(d: usize, src: &[f32], dst: &mut [f32]) {
    dst.par_chunks_mut(d)
        .zip(src.par_chunks(d))
        .with_min_len(token_grain(d))
        .for_each(|(o, t)| {
            let norm = t
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            o.iter_mut()
                .zip(t)
                .for_each(|(o, &v)| *o = (f64::from(v) / norm) as f32);
        });
}

impl CpuBackend {
    /// The backend with the fastest kernel this CPU supports.
    pub fn new(model: &Model, shape: Shape, x0: &[f64]) -> Result<Self> {
        Self::with_kernel(model, shape, x0, CpuKernel::detect())
    }

    /// The backend with a chosen kernel version (tests compare them).
    pub fn with_kernel(model: &Model, shape: Shape, x0: &[f64], simd: CpuKernel) -> Result<Self> {
        assert_eq!(x0.len(), shape.len(), "initial state has the wrong length");
        let kernel = Kernel::new(model, shape, shape.n, simd)?;
        let keys = kernel.layouts();
        Ok(CpuBackend {
            kernel,
            x: x0.iter().map(|&v| v as f32).collect(),
            stage: vec![0.0; shape.len()],
            k: Vec::new(),
            keys,
            normalised: if model.layer.normalises_input() {
                vec![0.0; shape.len()]
            } else {
                Vec::new()
            },
            layer: 0,
            first_bad: None,
        })
    }

    /// The kernel version in use.
    pub fn simd(&self) -> CpuKernel {
        self.kernel.simd
    }

    /// dst = x + sum_j coeffs[b][j] k[stages[j]] per system b, in f32 like `combine`.
    fn combine_by_system(
        &self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
        dst: &mut [f32],
    ) {
        let Shape { n, d, .. } = self.kernel.shape;
        let m = stages.len();
        let (x, k) = (&self.x, &self.k);
        dst.par_chunks_mut(d)
            .enumerate()
            .with_min_len(token_grain(d))
            .for_each(|(t, out)| {
                let r = t * d..(t + 1) * d;
                let c = &coeffs[(t / n) * m..(t / n + 1) * m];
                out.copy_from_slice(&x[r.clone()]);
                for (&s, &c) in stages.iter().zip(c) {
                    let c = c as f32;
                    out.iter_mut()
                        .zip(&k[s][r.clone()])
                        .for_each(|(o, k)| *o += c * k);
                }
                if renormalise {
                    let norm = simd::dot(out, out).sqrt();
                    out.iter_mut().for_each(|o| *o /= norm);
                }
            });
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
    fn begin_step(&mut self, layer: u32) -> Result<()> {
        self.layer = layer;
        if self.kernel.model.redraws() {
            let shape = self.kernel.shape;
            let heads = self
                .kernel
                .model
                .heads_by_system(shape.d, layer, shape.batch);
            self.kernel.set_heads_by_system(&heads);
        }
        // Per-layer weights: the kernel's model now holds this step's layer (its perceptron
        // is read from there by `finish`).
        if self.kernel.model.select_layer(layer).is_some() {
            let heads = self.kernel.model.heads.clone();
            self.kernel.set_heads(&heads);
        }
        Ok(())
    }
    fn field(&mut self, input: Slot, stage: usize) -> Result<()> {
        let mut src = match input {
            Slot::State => &self.x,
            Slot::Stage => &self.stage,
        };
        if self.kernel.model.layer.normalises_input() {
            normalise_into(self.kernel.shape.d, src, &mut self.normalised);
            src = &self.normalised;
        }
        self.kernel.transpose(src, &mut self.keys);
        self.kernel.attention(&self.keys, src, &mut self.k[stage]);
        self.kernel.finish(src, &mut self.k[stage]);
        Ok(())
    }
    fn combine(
        &mut self,
        dst: Slot,
        terms: &[(usize, f64)],
        renormalise: bool,
        noise: Option<NoiseStep>,
    ) -> Result<()> {
        let Shape { n, d, .. } = self.kernel.shape;
        let sphere = self.kernel.model.geometry == Geometry::Sphere;
        let ks: Vec<(&[f32], f32)> = terms
            .iter()
            .map(|&(s, c)| (self.k[s].as_slice(), c as f32))
            .collect();
        let x = &self.x;
        // Written to the spare buffer; a step's end swaps it in.
        self.stage
            .par_chunks_mut(d)
            .enumerate()
            .with_min_len(token_grain(d))
            .for_each(|(t, out)| {
                let r = t * d..(t + 1) * d;
                out.copy_from_slice(&x[r.clone()]);
                for (k, c) in &ks {
                    out.iter_mut()
                        .zip(&k[r.clone()])
                        .for_each(|(o, k)| *o += c * k);
                }
                if let Some(noise) = &noise {
                    let base: Vec<f64> = x[r.clone()].iter().map(|&v| f64::from(v)).collect();
                    let mut xi: Vec<f64> = (0..d).map(|c| noise.draw(t / n, t % n, d, c)).collect();
                    if sphere {
                        crate::model::geometry::tangent_project(&base, &mut xi);
                    }
                    out.iter_mut()
                        .zip(&xi)
                        .for_each(|(o, z)| *o += (noise.amplitude * z) as f32);
                }
                if renormalise {
                    let norm = simd::dot(out, out).sqrt();
                    out.iter_mut().for_each(|o| *o /= norm);
                }
            });
        if dst == Slot::State {
            std::mem::swap(&mut self.x, &mut self.stage);
            // O(n d) per step beside the O(n^2 d) of the step: the step of a blow-up is known
            // whenever the state is checked.
            if self.first_bad.is_none() && self.x.par_iter().any(|v| !v.is_finite()) {
                self.first_bad = Some(self.layer);
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
        self.combine_by_system(stages, coeffs, renormalise, &mut next);
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
        let Shape { n, d, .. } = self.kernel.shape;
        // Per system, in f64 from the f32 buffers (one number per system comes back).
        let buffers = (&self.x[..], &self.stage[..], &self.k[..]);
        crate::reference::scaled_sums_by_system(
            n * d,
            buffers,
            stages,
            coeffs,
            with_state,
            atol,
            rtol,
            out,
        );
        Ok(())
    }
    fn accept_systems(&mut self, accepted: &[bool], copy: Option<(usize, usize)>) -> Result<()> {
        let per = self.kernel.shape.n * self.kernel.shape.d;
        crate::reference::accept_by_system(
            per,
            &mut self.x,
            &self.stage,
            &mut self.k,
            accepted,
            copy,
        );
        if self.first_bad.is_none() && self.x.par_iter().any(|v| !v.is_finite()) {
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
        let Shape { n, d, .. } = self.kernel.shape;
        let m = stages.len();
        let mut out = vec![0.0f64; self.x.len()];
        let (x, k) = (&self.x, &self.k);
        // In f64 from the f32 stages: an output, not a state the run continues from.
        out.par_chunks_mut(d)
            .enumerate()
            .with_min_len(token_grain(d))
            .for_each(|(t, out)| {
                let r = t * d..(t + 1) * d;
                let c = &coeffs[(t / n) * m..(t / n + 1) * m];
                out.iter_mut()
                    .zip(&x[r.clone()])
                    .for_each(|(o, &v)| *o = f64::from(v));
                for (&s, &c) in stages.iter().zip(c) {
                    out.iter_mut()
                        .zip(&k[s][r.clone()])
                        .for_each(|(o, &k)| *o += c * f64::from(k));
                }
                if renormalise {
                    let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
                    out.iter_mut().for_each(|o| *o /= norm);
                }
            });
        Ok(out)
    }
    fn read_state(&mut self) -> Result<Tokens> {
        Ok(Tokens::F32(self.x.clone()))
    }
    fn read_field(&mut self, stage: usize) -> Result<Tokens> {
        Ok(Tokens::F32(self.k[stage].clone()))
    }
    fn pair_stats(&mut self) -> Result<Vec<PairStats>> {
        let kernel = &self.kernel;
        let Shape { n, d, .. } = kernel.shape;
        // The Pre-LN family's tokens leave the sphere: its observables are those of the
        // normalised tokens, the ones attention sees (docs/model.md §3).
        let x = if kernel.model.layer.normalises_input() {
            normalise_into(d, &self.x, &mut self.normalised);
            &self.normalised
        } else {
            &self.x
        };
        transpose_systems(d, n, kernel.stride, Layout::Rows, x, &mut self.keys.rows);
        // Norms once per token, padded like the key rows.
        let stride = kernel.stride;
        let mut inv_norm = vec![0.0f32; kernel.shape.batch * stride];
        for (t, x) in x.chunks_exact(d).enumerate() {
            inv_norm[(t / n) * stride + t % n] = 1.0 / simd::dot(x, x).sqrt();
        }
        // Per system sum_j x_j and sum_j x_j / |x_j| in f64.
        let mut sums = vec![0.0f64; 2 * kernel.shape.batch * d];
        for (t, xt) in x.chunks_exact(d).enumerate() {
            let b = t / n;
            let inv = f64::from(inv_norm[b * stride + t % n]);
            for c in 0..d {
                sums[2 * b * d + c] += f64::from(xt[c]);
                sums[(2 * b + 1) * d + c] += f64::from(xt[c]) * inv;
            }
        }
        let keys = &self.keys.rows;
        // Tokens two at a time within each system (a lone last one paired with itself).
        let pairs: Vec<[usize; 2]> = (0..kernel.shape.batch)
            .flat_map(|b| {
                (0..n.div_ceil(2)).map(move |k| [b * n + 2 * k, b * n + (2 * k + 1).min(n - 1)])
            })
            .collect();
        let rows: Vec<[PairStats; 2]> = pairs
            .par_iter()
            .map_init(
                || PairScratch {
                    q: vec![0.0f32; 2 * d],
                    dots: vec![0.0f32; 2 * kernel.tile],
                    cos: vec![0.0f32; kernel.tile],
                },
                |s, &t| kernel.pair_stats_tokens(keys, &inv_norm, &sums, x, t, s),
            )
            .collect();
        Ok(pairs
            .iter()
            .zip(rows)
            .flat_map(|(t, r)| if t[0] == t[1] { vec![r[0]] } else { r.to_vec() })
            .collect())
    }
}
