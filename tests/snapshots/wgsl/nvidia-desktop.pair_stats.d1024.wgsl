// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 1024u;
const DV: u32 = 256u;
const WG: u32 = 64u;
const TK: u32 = 2u;
const TILE_VECS: u32 = 512u;
const QB: u32 = 64u;
const G: u32 = 2u;
const FLAG_USA: u32 = 1u;
const FLAG_SPHERE: u32 = 2u;
const FLAG_CAUSAL: u32 = 4u;
const FLAG_IDENTITY_SCORES: u32 = 8u;
const FLAG_IDENTITY_VALUES: u32 = 16u;
const FLAG_ALIBI: u32 = 32u;
const FLAG_GELU: u32 = 64u;
const FLAG_HEADS_PER_SYSTEM: u32 = 128u;
const STREAM_QUERY: u32 = 1u;
const STREAM_KEY: u32 = 2u;
const STREAM_VALUE: u32 = 3u;
const STREAM_NOISE: u32 = 4u;
const STREAM_COMMON_NOISE: u32 = 5u;
const STREAM_SYSTEM: u32 = 6u;

// Shared by every kernel; prepended after the generated header (src/backend/gpu/shaders.rs or
// src/backend/gpu/codegen.rs), which defines at least
//   const D: u32            the token dimension,
//   const DV: u32           ceil(D / 4): the vec4s that hold a token (zero padded),
//   const WG: u32           invocations per workgroup,
//   const FLAG_*: u32       the bits of Params.flags (gpu::kernels::FLAGS),
//   const STREAM_*: u32     the streams of the counter-based generator (model::rng::Stream);
// the last two are written from the Rust values (gpu::shaders::host_constants), so that host
// and kernels cannot disagree on them.

// Per-run parameters. Queries attend to keys of the same system; for self-attention both
// are the tokens (n_queries = n_keys = n), and the causal mask needs exactly that.
struct Params {
    n_queries: u32,
    n_keys: u32,
    batch: u32,
    // FLAG_* bits (generated header).
    flags: u32,
    // Workgroups along x of the per-query and per-element (query, coordinate) dispatches;
    // their y takes what does not fit in one dimension.
    token_groups_x: u32,
    element_groups_x: u32,
    // The layer map's output normalisation f <- output_scale f / (|f| + 1e-9) in
    // tangent_project.wgsl (peri-ln: 1, ngpt: alpha); 0: none, the tangent projection instead.
    output_scale: f32,
    // ALiBi: scores lose alibi_slope * (i - j) (0 without ALiBi).
    alibi_slope: f32,
    // Hidden width of the perceptron (0 without one) and the workgroups along x of its
    // per-(query, hidden unit) dispatch.
    mlp_hidden: u32,
    hidden_groups_x: u32,
    // The keys are cut into `splits` contiguous ranges of `split_keys` keys, each with its own
    // partial softmax state (workgroups along z of the attention kernel).
    splits: u32,
    split_keys: u32,
}

// Which head and which piece of the tokens a dispatch of queries.wgsl, attention_finish.wgsl
// or the perceptron works on (one slot per head and piece, dynamic offsets): the O(n d^2)
// kernels are cut into pieces of whole tokens within the dispatch budget (plan::TokenPlan).
struct Head {
    index: u32,
    // 0 for the first head: attention_finish writes instead of adding.
    accumulate: u32,
    // c_h: 1 (sum of heads) or 1 / H (mean).
    weight: f32,
    // The piece: tokens [first_token, first_token + tokens) of all systems, flattened.
    first_token: u32,
    tokens: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// The element (token, column of `per_token`) of a dispatch over one piece of the tokens
// whose grid has `groups_x` workgroups along x, or 0xffffffff past the piece.
fn piece_element(lid: vec3<u32>, wid: vec3<u32>, groups_x: u32, head: Head, per_token: u32) -> u32 {
    let local = token_index(lid, wid, groups_x);
    if local >= head.tokens * per_token {
        return 0xffffffffu;
    }
    return head.first_token * per_token + local;
}

// The layer (step) being computed, written once per step: random heads are drawn for it,
// and Euler-Maruyama noise.
struct Step {
    layer: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// What one dispatch of a streaming kernel (attention, pair_stats) visits: keys
// [key_offset, key_offset + key_count) of every split, for the query blocks [first_block,
// first_block + blocks) of the systems [first_system, first_system + systems). The work of an evaluation is cut into such
// dispatches so that none runs too long (an OS watchdog; llvmpipe also ends any shader after
// 65535 loop iterations in total); see gpu::plan.
struct Chunk {
    key_offset: u32,
    key_count: u32,
    // 1 for the first chunk of keys: start from an empty partial state.
    first: u32,
    first_block: u32,
    // Query blocks along x in this dispatch (the rest go along z, times the splits).
    groups_x: u32,
    // The first system of this dispatch (systems go along y).
    first_system: u32,
    pad0: u32,
    pad1: u32,
}

// FLAG_* and STREAM_* come from the generated header (see the top of this file).

// Lowest finite f32; the running maximum starts here, below every score. Written with the
// digits of its exact value: the WGSL spec makes a literal beyond f32's finite range (such as
// -3.4028235e38, which naga accepts) a shader-creation error, and Tint enforces it.
const F32_LOWEST: f32 = -3.4028234663852886e38;
// Scores are kept in base 2 (exp2 is one instruction): s2 = s log2(e).
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;

fn has_flag(flags: u32, flag: u32) -> bool {
    return (flags & flag) != 0u;
}

// True for +-inf and NaN: exponent bits all ones.
fn non_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

// The token (or element) handled by one invocation of a per-token (per-element) dispatch.
fn token_index(lid: vec3<u32>, wid: vec3<u32>, groups_x: u32) -> u32 {
    return (wid.y * groups_x + wid.x) * WG + lid.x;
}



// The counter-based generator of model::rng, bit for bit: the PCG hash chained over the key.
fn rng_pcg(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn rng_hash(seed_lo: u32, seed_hi: u32, stream: u32, a: u32, b: u32, index: u32) -> u32 {
    var h = rng_pcg(index);
    h = rng_pcg(h ^ b);
    h = rng_pcg(h ^ a);
    h = rng_pcg(h ^ stream);
    h = rng_pcg(h ^ seed_hi);
    return rng_pcg(h ^ seed_lo);
}

// A standard normal at a key: Box-Muller on the uniforms at indices 2 index and 2 index + 1.
fn rng_normal(seed_lo: u32, seed_hi: u32, stream: u32, a: u32, b: u32, index: u32) -> f32 {
    let u1 = f32((rng_hash(seed_lo, seed_hi, stream, a, b, 2u * index) >> 8u) + 1u) / 16777216.0;
    let u2 = f32((rng_hash(seed_lo, seed_hi, stream, a, b, 2u * index + 1u) >> 8u) + 1u) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Streamed pair statistics behind the observables (docs/model.md §1: energy, pairwise cosines),
// N-body style like attention_small.wgsl: every invocation holds R tokens i of system b
// (normalised, in registers), and tiles of normalised keys x_j / |x_j| with their norms stream
// through workgroup memory, so norms are taken once per token, not once per pair. Per token:
//   m, l          : sum_j exp(beta <x_i, x_j>) = 2^m l  (m in base 2, lazy as in attention)
//   min_cos       : min over j of cos(x_i, x_j) (j = i included: cos = 1 is never below
//                   another pair's cosine by more than rounding)
//   sum_cos       : sum over j != i of cos(x_i, x_j)
//   sum_dot       : sum_j <x_i, x_j>
// The keys are cut into `params.splits` splits with their own rows, [split][token], which the
// host merges in f64. `main` is generated (src/backend/gpu/codegen.rs).
// CPU twin: reference::pair_stats.

struct PairStats {
    m: f32,
    l: f32,
    min_cos: f32,
    sum_cos: f32,
    sum_dot: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read> betas: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<PairStats>;

var<workgroup> tile: array<vec4<f32>, TILE_VECS>;
var<workgroup> tile_norm: array<f32, TK>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_keys;
    let split = wid.z % params.splits;
    let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;
    let system = wid.y + chunk.first_system;
    let q0 = block * QB;
    let split_start = split * params.split_keys;
    let split_end = min(split_start + params.split_keys, n);
    let start0 = split_start + chunk.key_offset;
    let key_end = min(start0 + chunk.key_count, split_end);
    let key_base = system * n;
    let first = chunk.first != 0u;
    let state0 = split * params.batch * n + system * n;
    let beta2 = betas[system] * LOG2E;
    let j0 = (key_base + min(split_start, n - 1u)) * D;
    let i0 = q0 + lid.x + 0u;
    let ok0 = i0 < n;
    let t0 = (key_base + min(i0, n - 1u)) * D;
    var xi0: array<vec4<f32>, DV>;
    var nn0 = 0.0;
    for (var v = 0u; v < DV; v++) {
        var w = vec4<f32>(0.0);
        for (var k = 0u; k < 4u; k++) {
            if 4u * v + k < D {
                w[k] = x[t0 + 4u * v + k];
            }
        }
        xi0[v] = w;
        nn0 += dot(w, w);
    }
    let n0 = sqrt(nn0);
    for (var v = 0u; v < DV; v++) {
        xi0[v] /= n0;
    }
    let bn0 = beta2 * n0;
    var m0 = F32_LOWEST;
    var l0 = 0.0;
    var mn0 = 3.0;
    var sc0 = 0.0;
    var sd0 = 0.0;
    if first {
        if split_start < n {
            var dot0 = 0.0;
            for (var e = 0u; e < D; e++) {
                dot0 += x[t0 + e] * x[j0 + e];
            }
            m0 = beta2 * dot0;
        }
        } else {
            let row = stats[state0 + min(i0, n - 1u)];
            m0 = row.m;
            l0 = row.l;
            mn0 = row.min_cos;
            sc0 = row.sum_cos;
            sd0 = row.sum_dot / n0;
        }
        var nm0 = -m0;
        var start = start0;
        loop {
            if start >= key_end {
                break;
            }
            let len = min(TK, key_end - start);
            workgroupBarrier();
            for (var e = lid.x; e < TK; e += WG) {
                var nn = 0.0;
                if e < len {
                    let o = (key_base + start + e) * D;
                    for (var v = 0u; v < DV; v++) {
                        var w = vec4<f32>(0.0);
                        for (var k = 0u; k < 4u; k++) {
                            if 4u * v + k < D {
                                w[k] = x[o + 4u * v + k];
                            }
                        }
                        tile[e * DV + v] = w;
                        nn += dot(w, w);
                    }
                }
                let norm = sqrt(nn);
                for (var v = 0u; v < DV; v++) {
                    tile[e * DV + v] = select(vec4<f32>(0.0), tile[e * DV + v] / norm, e < len);
                }
                tile_norm[e] = select(0.0, norm, e < len);
            }
            workgroupBarrier();
            var tl0 = 0.0;
            if len == TK {
                for (var kk = 0u; kk < len; kk += G) {
                    let kn0 = tile_norm[kk];
                    let kn1 = tile_norm[kk + 1u];
                    var c0_0 = 0.0;
                    for (var v = 0u; v < DV; v++) {
                        c0_0 += dot(xi0[v], tile[(kk + 0u) * DV + v]);
                    }
                    let u0_0 = c0_0 * kn0;
                    tl0 += exp2(fma(u0_0, bn0, nm0));
                    mn0 = min(mn0, c0_0);
                    sc0 += c0_0;
                    sd0 += u0_0;
                    var c0_1 = 0.0;
                    for (var v = 0u; v < DV; v++) {
                        c0_1 += dot(xi0[v], tile[(kk + 1u) * DV + v]);
                    }
                    let u0_1 = c0_1 * kn1;
                    tl0 += exp2(fma(u0_1, bn0, nm0));
                    mn0 = min(mn0, c0_1);
                    sc0 += c0_1;
                    sd0 += u0_1;
                }
                } else {
                    for (var kk = 0u; kk < len; kk += G) {
                        let kn0 = tile_norm[kk];
                        let kn1 = tile_norm[kk + 1u];
                        var c0_0 = 0.0;
                        for (var v = 0u; v < DV; v++) {
                            c0_0 += dot(xi0[v], tile[(kk + 0u) * DV + v]);
                        }
                        let u0_0 = c0_0 * kn0;
                        let in0_0 = kk + 0u < len;
                        tl0 += select(0.0, exp2(fma(u0_0, bn0, nm0)), in0_0);
                        mn0 = select(mn0, min(mn0, c0_0), in0_0);
                        sc0 += c0_0;
                        sd0 += u0_0;
                        var c0_1 = 0.0;
                        for (var v = 0u; v < DV; v++) {
                            c0_1 += dot(xi0[v], tile[(kk + 1u) * DV + v]);
                        }
                        let u0_1 = c0_1 * kn1;
                        let in0_1 = kk + 1u < len;
                        tl0 += select(0.0, exp2(fma(u0_1, bn0, nm0)), in0_1);
                        mn0 = select(mn0, min(mn0, c0_1), in0_1);
                        sc0 += c0_1;
                        sd0 += u0_1;
                    }
                }
                if !(tl0 <= 1.8446744e19) {
                    var top = F32_LOWEST;
                    for (var kk = 0u; kk < len; kk++) {
                        var cs = 0.0;
                        for (var v = 0u; v < DV; v++) {
                            cs += dot(xi0[v], tile[(kk) * DV + v]);
                        }
                        top = max(top, fma(cs * tile_norm[kk], bn0, nm0));
                    }
                    let delta = max(top, 0.0);
                    nm0 -= delta;
                    l0 *= exp2(-delta);
                    tl0 = 0.0;
                    for (var kk = 0u; kk < len; kk++) {
                        var cs = 0.0;
                        for (var v = 0u; v < DV; v++) {
                            cs += dot(xi0[v], tile[(kk) * DV + v]);
                        }
                        tl0 += exp2(fma(cs * tile_norm[kk], bn0, nm0));
                    }
                }
                l0 += tl0;
                start += TK;
            }
            if ok0 {
                var self_cos = 0.0;
                for (var v = 0u; v < DV; v++) {
                    self_cos += dot(xi0[v], xi0[v]);
                }
                let sees_self = (i0 >= start0) & (i0 < key_end);
                stats[state0 + i0] = PairStats(-nm0, l0, mn0, sc0 - select(0.0, self_cos, sees_self), sd0 * n0);
            }
        }
