//! The CPU attention kernel's portable loop (`CpuKernel::Portable`): no SIMD extension
//! assumed, one query at a time; the twin of `avx2` for CPUs without AVX2 and FMA, and of
//! its pair statistics.

use super::super::simd;

/// Folds keys [start, min(stop, end)) into one query's online softmax, without SIMD
/// extensions: scores in f32 (ALiBi subtracts slope (i - j) with i = end - 1), running
/// max and sums in f64.
#[allow(clippy::too_many_arguments)]
pub fn fold_tile(
    kt: &[f32],
    stride: usize,
    q: &[f32],
    end: usize,
    slope: f32,
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
        let kc = &kt[c * stride + start..c * stride + stop];
        s.iter_mut().zip(kc).for_each(|(s, k)| *s += qc * k);
    }
    if slope != 0.0 {
        let i = (end - 1) as f32;
        s.iter_mut()
            .enumerate()
            .for_each(|(jj, s)| *s -= slope * (i - (start + jj) as f32));
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
        let kc = &kt[c * stride + start..c * stride + stop];
        acc[c] += f64::from(simd::dot(s, kc));
    }
}

/// The portable twin of `super::avx2::pair_tile`: returns the tile's largest score (base 2) and
/// the sum of 2^(s - it), and lowers `min_scaled`.
#[allow(clippy::too_many_arguments)]
pub fn pair_tile(
    q: &[f32],
    kt: &[f32],
    stride: usize,
    inv: &[f32],
    start: usize,
    len: usize,
    i: usize,
    (dots, cos): (&mut [f32], &mut [f32]),
    min_scaled: &mut f64,
) -> (f64, f64) {
    let s = &mut dots[..len];
    s.fill(0.0);
    for (c, qc) in q.iter().enumerate() {
        let kc = &kt[c * stride + start..c * stride + start + len];
        s.iter_mut().zip(kc).for_each(|(s, k)| *s += qc * k);
    }
    let w = &mut cos[..len];
    w.iter_mut()
        .zip(s.iter())
        .zip(&inv[start..start + len])
        .for_each(|((w, s), v)| *w = s * v);
    if (start..start + len).contains(&i) {
        w[i - start] = f32::INFINITY;
    }
    *min_scaled = min_scaled.min(f64::from(simd::min(w)));
    let top = simd::max(s);
    s.iter_mut()
        .for_each(|v| *v = simd::exp_f32((*v - top) * std::f32::consts::LN_2));
    (f64::from(top), f64::from(simd::sum(s)))
}
