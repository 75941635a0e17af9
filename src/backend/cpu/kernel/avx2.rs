//! The CPU attention kernel in AVX2 + FMA intrinsics (8 lanes), picked at run time when the
//! CPU has them (`CpuKernel::Avx2`). One call folds one tile of keys into the online-softmax
//! state of a block of QB queries. Two shapes:
//!
//! * d <= 4 (`small`): one query at a time; pass 1 stores the scores (in base 2: q scaled by
//!   log2 e) and finds their maximum, pass 2 sums 2^(s - m) and the weighted keys in
//!   registers. Short dependency chains keep many iterations in flight.
//! * larger d (`general`): the QB queries together; pass 1 forms their scores with each key
//!   vector loaded once, pass 2 the weights and, one coordinate at a time, the weighted keys.
//!
//! Keys are transposed by rows (coordinate c of key j at `rows[c * stride + j]`) and, for
//! d > 4, also in blocks of 8 keys whose d coordinates are contiguous (`keys`), so that the
//! scores read a key vector as one stream rather than d rows far apart. Both are zero-padded
//! past n, so every load is a full vector. Lane sums go to f64 once per tile.

#![cfg(target_arch = "x86_64")]
// Index loops over fixed register arrays read closest to the arithmetic they unroll into.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{Block, BlockState, QB};

const LANES: usize = 8;
/// How far a score (base 2) may exceed the stale shift before it moves (weights <= 2^12).
const LAZY: f32 = 12.0;

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn block(b: &Block, scratch: &mut [f32], out: &mut BlockState) {
    unsafe {
        // Plain loops, not closures: closures would not inherit this function's features.
        match b.d {
            2 => {
                for k in 0..QB {
                    small::<2>(b, k, scratch, out);
                }
            }
            3 => {
                for k in 0..QB {
                    small::<3>(b, k, scratch, out);
                }
            }
            4 => {
                for k in 0..QB {
                    small::<4>(b, k, scratch, out);
                }
            }
            _ => general(b, scratch, out),
        }
    }
}

/// 2^x for x <= 0 (scores minus their maximum, in base-2 units), within about 3 ulp:
/// x = n + f with n an integer and |f| <= 1/2, a degree-5 polynomial for 2^f (minimax
/// relative error 7.5e-8), and 2^n put into the exponent bits. Inputs below -126.5 (unseen
/// keys are -inf) give exactly 0: clamped to -127, their exponent bits are all zero, so no
/// subnormal numbers reach the sums.
#[inline(always)]
unsafe fn exp2(x: __m256) -> __m256 {
    unsafe {
        let x = _mm256_max_ps(x, _mm256_set1_ps(-127.0));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
        let f = _mm256_sub_ps(x, n);
        let mut p = _mm256_set1_ps(1.327_646_5e-3);
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.675_542e-3));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550_713_5e-2));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402_212e-1));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931_469_4e-1));
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.000_000_1));
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
    }
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }
}

#[inline(always)]
unsafe fn hmax(v: __m256) -> f32 {
    unsafe {
        let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_max_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }
}

/// Scores of lanes at key index >= end become -inf (those keys are not seen).
#[inline(always)]
unsafe fn mask_tail(s: __m256, j0: usize, end: usize) -> __m256 {
    unsafe {
        if j0 + LANES <= end {
            return s;
        }
        let idx = _mm256_add_epi32(
            _mm256_set1_epi32(j0 as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        let seen = _mm256_cmpgt_epi32(_mm256_set1_epi32(end as i32), idx);
        _mm256_blendv_ps(
            _mm256_set1_ps(f32::NEG_INFINITY),
            s,
            _mm256_castsi256_ps(seen),
        )
    }
}

/// Scores (base 2) of one query against the key vector at j.
#[inline(always)]
unsafe fn score<const D: usize>(
    q: &[__m256; D],
    keys: *const f32,
    stride: usize,
    j: usize,
    end: usize,
) -> __m256 {
    unsafe {
        let mut s = _mm256_mul_ps(q[0], _mm256_loadu_ps(keys.add(j)));
        for c in 1..D {
            s = _mm256_fmadd_ps(q[c], _mm256_loadu_ps(keys.add(c * stride + j)), s);
        }
        mask_tail(s, j, end)
    }
}

/// ALiBi: adds slope (j - i) to scores of keys j, j + 1, ... (slope in the scores' units).
#[inline(always)]
unsafe fn alibi(s: __m256, slope: f32, j: usize, i: usize) -> __m256 {
    unsafe {
        if slope == 0.0 {
            return s;
        }
        let offsets = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        let dj = _mm256_add_ps(_mm256_set1_ps(j as f32 - i as f32), offsets);
        _mm256_fmadd_ps(_mm256_set1_ps(slope), dj, s)
    }
}

/// Moves query k's running maximum (natural units) up to `tile_max` if it is larger,
/// rescaling its sums. Returns the maximum in base 2 for this tile's weights.
#[inline(always)]
fn raise_max(out: &mut BlockState, k: usize, d: usize, tile_max: f64) -> f32 {
    if tile_max > out.m[k] {
        let r = (out.m[k] - tile_max).exp();
        out.l[k] *= r;
        out.acc[k * d..(k + 1) * d].iter_mut().for_each(|a| *a *= r);
        out.m[k] = tile_max;
    }
    (out.m[k] * std::f64::consts::LOG2_E) as f32
}

/// One query (index k of the block), d = D <= 4, keys [b.start, min(b.stop, end)).
#[inline(always)]
unsafe fn small<const D: usize>(b: &Block, k: usize, scratch: &mut [f32], out: &mut BlockState) {
    unsafe {
        let end = b.ends[k].min(b.stop);
        if end <= b.start {
            return;
        }
        // No closures here: they would not inherit this function's target features.
        let mut q = [_mm256_setzero_ps(); D];
        for (c, qc) in q.iter_mut().enumerate() {
            *qc = _mm256_set1_ps(b.q[k * D + c] * std::f32::consts::LOG2_E);
        }
        let keys = b.keys.as_ptr();
        let sp = scratch.as_mut_ptr();
        let vecs = (end - b.start).div_ceil(LANES);
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        let slope = b.alibi * std::f32::consts::LOG2_E;
        let i = b.ends[k].saturating_sub(1);
        for v in 0..vecs {
            let j = b.start + v * LANES;
            let s = alibi(score::<D>(&q, keys, b.stride, j, end), slope, j, i);
            _mm256_storeu_ps(sp.add(v * LANES), s);
            vmax = _mm256_max_ps(vmax, s);
        }
        let m = raise_max(out, k, D, f64::from(hmax(vmax)) * std::f64::consts::LN_2);
        let vm = _mm256_set1_ps(m);
        let mut vl = _mm256_setzero_ps();
        let mut va = [_mm256_setzero_ps(); D];
        for v in 0..vecs {
            let p = exp2(_mm256_sub_ps(_mm256_loadu_ps(sp.add(v * LANES)), vm));
            vl = _mm256_add_ps(vl, p);
            for (c, a) in va.iter_mut().enumerate() {
                let key = _mm256_loadu_ps(keys.add(c * b.stride + b.start + v * LANES));
                *a = _mm256_fmadd_ps(p, key, *a);
            }
        }
        out.l[k] += f64::from(hsum(vl));
        for c in 0..D {
            out.acc[k * D + c] += f64::from(hsum(va[c]));
        }
    }
}

/// All QB queries, d > 4, keys [b.start, b.stop) (each query up to its own end). The scores
/// read the blocked layout (`b.keys`: the d coordinates of 8 keys contiguous), the weighted
/// keys the row layout (`b.rows`). Both passes keep eight independent accumulators
/// (two key vectors or two coordinates by QB queries) and load six vectors per eight FMAs.
#[inline(always)]
unsafe fn general(b: &Block, scratch: &mut [f32], out: &mut BlockState) {
    unsafe {
        let d = b.d;
        let tile = scratch.len() / QB;
        let end = b.ends.iter().copied().max().unwrap_or(0).min(b.stop);
        if end <= b.start {
            return;
        }
        let sp = scratch.as_mut_ptr();
        // Key vector v of the tile: its d coordinates, 8 lanes each, contiguous.
        let group = |v: usize| b.keys.as_ptr().add((b.start / LANES + v) * d * LANES);
        // Whole pairs of vectors: tiles start on 16 keys and the keys are padded past n.
        let pairs = (end - b.start).div_ceil(2 * LANES);
        let vecs = 2 * pairs;
        // Pass 1: scores (base 2) and at once their weights 2^(s - m), with a lazy shift m
        // per query: it moves only when a score exceeds it by more than LAZY (weights stay
        // below 2^LAZY), and then the weights of this tile so far and the sums are rescaled.
        let log2e = _mm256_set1_ps(std::f32::consts::LOG2_E);
        let slope = b.alibi * std::f32::consts::LOG2_E;
        let mut m = [0.0f32; QB];
        for (qb, mq) in m.iter_mut().enumerate() {
            *mq = (out.m[qb] * std::f64::consts::LOG2_E) as f32;
        }
        let mut vl = [_mm256_setzero_ps(); QB];
        for v in 0..pairs {
            let j0 = b.start + 2 * v * LANES;
            let (g0, g1) = (group(2 * v), group(2 * v + 1));
            let mut s0 = [_mm256_setzero_ps(); QB];
            let mut s1 = [_mm256_setzero_ps(); QB];
            for c in 0..d {
                let k0 = _mm256_loadu_ps(g0.add(c * LANES));
                let k1 = _mm256_loadu_ps(g1.add(c * LANES));
                for qb in 0..QB {
                    let qc = _mm256_set1_ps(*b.q.get_unchecked(qb * d + c));
                    s0[qb] = _mm256_fmadd_ps(qc, k0, s0[qb]);
                    s1[qb] = _mm256_fmadd_ps(qc, k1, s1[qb]);
                }
            }
            for qb in 0..QB {
                let i = b.ends[qb].saturating_sub(1);
                let x0 = alibi(_mm256_mul_ps(s0[qb], log2e), slope, j0, i);
                let x1 = alibi(_mm256_mul_ps(s1[qb], log2e), slope, j0 + LANES, i);
                let x0 = mask_tail(x0, j0, b.ends[qb]);
                let x1 = mask_tail(x1, j0 + LANES, b.ends[qb]);
                let top = _mm256_max_ps(x0, x1);
                let limit = _mm256_set1_ps(m[qb] + LAZY);
                let row = sp.add(qb * tile);
                if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(top, limit)) != 0 {
                    let new_m = hmax(top);
                    let r = exp2(_mm256_set1_ps(m[qb] - new_m));
                    for u in 0..2 * v {
                        let ptr = row.add(u * LANES);
                        _mm256_storeu_ps(ptr, _mm256_mul_ps(_mm256_loadu_ps(ptr), r));
                    }
                    vl[qb] = _mm256_mul_ps(vl[qb], r);
                    let new_nat = f64::from(new_m) * std::f64::consts::LN_2;
                    raise_max(out, qb, d, new_nat);
                    m[qb] = new_m;
                }
                let vm = _mm256_set1_ps(m[qb]);
                let p0 = exp2(_mm256_sub_ps(x0, vm));
                let p1 = exp2(_mm256_sub_ps(x1, vm));
                _mm256_storeu_ps(row.add(2 * v * LANES), p0);
                _mm256_storeu_ps(row.add((2 * v + 1) * LANES), p1);
                vl[qb] = _mm256_add_ps(vl[qb], _mm256_add_ps(p0, p1));
            }
        }
        for qb in 0..QB {
            out.l[qb] += f64::from(hsum(vl[qb]));
        }
        // The weighted keys read the row layout: per coordinate one contiguous stream (the
        // blocked layout would stride d * 32 bytes here and thrash a few L1 sets).
        let rows = b.rows.as_ptr();
        let mut c = 0;
        while c < d {
            // Two coordinates at a time (the last one alone when d is odd).
            let c1 = if c + 1 < d { c + 1 } else { c };
            let mut a0 = [_mm256_setzero_ps(); QB];
            let mut a1 = [_mm256_setzero_ps(); QB];
            let (row0, row1) = (
                rows.add(c * b.stride + b.start),
                rows.add(c1 * b.stride + b.start),
            );
            for v in 0..vecs {
                let k0 = _mm256_loadu_ps(row0.add(v * LANES));
                let k1 = _mm256_loadu_ps(row1.add(v * LANES));
                for qb in 0..QB {
                    let p = _mm256_loadu_ps(sp.add(qb * tile + v * LANES));
                    a0[qb] = _mm256_fmadd_ps(p, k0, a0[qb]);
                    a1[qb] = _mm256_fmadd_ps(p, k1, a1[qb]);
                }
            }
            for qb in 0..QB {
                out.acc[qb * d + c] += f64::from(hsum(a0[qb]));
                if c1 != c {
                    out.acc[qb * d + c1] += f64::from(hsum(a1[qb]));
                }
            }
            c += 2;
        }
    }
}

/// The pair statistics of one query against one tile of keys, in f32.
#[derive(Clone, Copy, Debug)]
pub struct PairTile {
    /// The smallest s_j / |x_j| over j != i (s the scaled dot product below).
    pub min_scaled: f32,
    /// The largest score s_j (base 2) and sum_j 2^(s_j - it).
    pub top: f32,
    pub sum_exp: f32,
}

/// Twin of `shaders/pair_stats.wgsl` (its O(n^2) part) for two queries q = scale x_i (`q`,
/// 2 d floats; `own` their indices i) against keys [start, start + len) in the row layout
/// (zero-padded past n), with the inverse norms `inv` padded alike: scores s_j = <q, x_j>
/// (scale = beta log2(e), so they are in base 2), their maximum and, in a second pass, the sum
/// of 2^(s_j - max); and the minimum of s_j / |x_j| over j != i, the cosine up to the
/// positive factor scale |x_i|. Each key vector is loaded once for both queries; only key
/// vectors holding an i and the last one are masked. `scratch` holds two tiles.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `rows` and `inv` must extend to the tile rounded up to
/// 8 keys.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn pair_tile(
    q: &[f32],
    rows: &[f32],
    stride: usize,
    inv: &[f32],
    start: usize,
    len: usize,
    own: [usize; 2],
    scratch: &mut [f32],
) -> [PairTile; 2] {
    unsafe {
        // Plain calls, not closures: closures would not inherit this function's features.
        match q.len() / 2 {
            2 => pair_scores::<2>(q, rows, stride, inv, start, len, own, scratch),
            3 => pair_scores::<3>(q, rows, stride, inv, start, len, own, scratch),
            4 => pair_scores::<4>(q, rows, stride, inv, start, len, own, scratch),
            _ => pair_scores::<0>(q, rows, stride, inv, start, len, own, scratch),
        }
    }
}

/// `pair_tile` with the queries in registers for D = 2, 3, 4 (D = 0: any d, from memory).
/// Independent accumulators keep the minimum, maximum and sum chains from bounding the speed.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pair_scores<const D: usize>(
    q: &[f32],
    rows: &[f32],
    stride: usize,
    inv: &[f32],
    start: usize,
    len: usize,
    own: [usize; 2],
    scratch: &mut [f32],
) -> [PairTile; 2] {
    unsafe {
        let d = q.len() / 2;
        let mut qv = [[_mm256_setzero_ps(); 4]; 2];
        for (k, qk) in qv.iter_mut().enumerate() {
            for c in 0..D {
                qk[c] = _mm256_set1_ps(q[k * d + c]);
            }
        }
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let stop = start + len;
        let (inf, ninf) = (
            _mm256_set1_ps(f32::INFINITY),
            _mm256_set1_ps(f32::NEG_INFINITY),
        );
        let mut low = [inf; 2];
        let mut top = [ninf; 2];
        let vecs = len.div_ceil(LANES);
        let tile = scratch.len() / 2;
        let sp = scratch.as_mut_ptr();
        let rp = rows.as_ptr();
        let ip = inv.as_ptr();
        for v in 0..vecs {
            let j0 = start + v * LANES;
            let mut s = [_mm256_setzero_ps(); 2];
            if D > 0 {
                let k0 = _mm256_loadu_ps(rp.add(j0));
                s[0] = _mm256_mul_ps(qv[0][0], k0);
                s[1] = _mm256_mul_ps(qv[1][0], k0);
                for c in 1..D {
                    let kc = _mm256_loadu_ps(rp.add(c * stride + j0));
                    s[0] = _mm256_fmadd_ps(qv[0][c], kc, s[0]);
                    s[1] = _mm256_fmadd_ps(qv[1][c], kc, s[1]);
                }
            } else {
                for c in 0..d {
                    let kc = _mm256_loadu_ps(rp.add(c * stride + j0));
                    s[0] = _mm256_fmadd_ps(_mm256_set1_ps(*q.get_unchecked(c)), kc, s[0]);
                    s[1] = _mm256_fmadd_ps(_mm256_set1_ps(*q.get_unchecked(d + c)), kc, s[1]);
                }
            }
            let iv = _mm256_loadu_ps(ip.add(j0));
            let edge = j0 + LANES > stop
                || (j0..j0 + LANES).contains(&own[0])
                || (j0..j0 + LANES).contains(&own[1]);
            for k in 0..2 {
                let mut w = _mm256_mul_ps(s[k], iv);
                if edge {
                    let idx = _mm256_add_epi32(_mm256_set1_epi32(j0 as i32), lane);
                    let seen = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                        _mm256_set1_epi32(stop as i32),
                        idx,
                    ));
                    let me = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                        idx,
                        _mm256_set1_epi32(own[k] as i32),
                    ));
                    s[k] = _mm256_blendv_ps(ninf, s[k], seen);
                    w = _mm256_blendv_ps(inf, w, _mm256_andnot_ps(me, seen));
                }
                low[k] = _mm256_min_ps(low[k], w);
                top[k] = _mm256_max_ps(top[k], s[k]);
                _mm256_storeu_ps(sp.add(k * tile + v * LANES), s[k]);
            }
        }
        let mut out = [PairTile {
            min_scaled: 0.0,
            top: 0.0,
            sum_exp: 0.0,
        }; 2];
        for k in 0..2 {
            let m = hmax(top[k]);
            let vm = _mm256_set1_ps(m);
            let mut sum = [_mm256_setzero_ps(); 2];
            let row = sp.add(k * tile);
            for v in 0..vecs {
                sum[v & 1] = _mm256_add_ps(
                    sum[v & 1],
                    exp2(_mm256_sub_ps(_mm256_loadu_ps(row.add(v * LANES)), vm)),
                );
            }
            let mut a = [0.0f32; LANES];
            _mm256_storeu_ps(a.as_mut_ptr(), low[k]);
            out[k] = PairTile {
                min_scaled: a.iter().copied().fold(f32::INFINITY, f32::min),
                top: m,
                sum_exp: hsum(_mm256_add_ps(sum[0], sum[1])),
            };
        }
        out
    }
}
