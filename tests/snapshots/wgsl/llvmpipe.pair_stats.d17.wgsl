// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 17u;
const DV: u32 = 5u;
const WG: u32 = 64u;
const TK: u32 = 128u;
const TILE_VECS: u32 = 640u;
const QB: u32 = 256u;
const G: u32 = 1u;
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
    var xi0_0 = vec4<f32>(x[t0], x[t0 + 1u], x[t0 + 2u], x[t0 + 3u]);
    var xi0_1 = vec4<f32>(x[t0 + 4u], x[t0 + 5u], x[t0 + 6u], x[t0 + 7u]);
    var xi0_2 = vec4<f32>(x[t0 + 8u], x[t0 + 9u], x[t0 + 10u], x[t0 + 11u]);
    var xi0_3 = vec4<f32>(x[t0 + 12u], x[t0 + 13u], x[t0 + 14u], x[t0 + 15u]);
    var xi0_4 = vec4<f32>(x[t0 + 16u], 0.0, 0.0, 0.0).xy;
    let n0 = sqrt(dot(xi0_0, xi0_0) + dot(xi0_1, xi0_1) + dot(xi0_2, xi0_2) + dot(xi0_3, xi0_3) + dot(xi0_4, xi0_4));
    xi0_0 /= n0;
    xi0_1 /= n0;
    xi0_2 /= n0;
    xi0_3 /= n0;
    xi0_4 /= n0;
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
        let i1 = q0 + lid.x + 64u;
        let ok1 = i1 < n;
        let t1 = (key_base + min(i1, n - 1u)) * D;
        var xi1_0 = vec4<f32>(x[t1], x[t1 + 1u], x[t1 + 2u], x[t1 + 3u]);
        var xi1_1 = vec4<f32>(x[t1 + 4u], x[t1 + 5u], x[t1 + 6u], x[t1 + 7u]);
        var xi1_2 = vec4<f32>(x[t1 + 8u], x[t1 + 9u], x[t1 + 10u], x[t1 + 11u]);
        var xi1_3 = vec4<f32>(x[t1 + 12u], x[t1 + 13u], x[t1 + 14u], x[t1 + 15u]);
        var xi1_4 = vec4<f32>(x[t1 + 16u], 0.0, 0.0, 0.0).xy;
        let n1 = sqrt(dot(xi1_0, xi1_0) + dot(xi1_1, xi1_1) + dot(xi1_2, xi1_2) + dot(xi1_3, xi1_3) + dot(xi1_4, xi1_4));
        xi1_0 /= n1;
        xi1_1 /= n1;
        xi1_2 /= n1;
        xi1_3 /= n1;
        xi1_4 /= n1;
        let bn1 = beta2 * n1;
        var m1 = F32_LOWEST;
        var l1 = 0.0;
        var mn1 = 3.0;
        var sc1 = 0.0;
        var sd1 = 0.0;
        if first {
            if split_start < n {
                var dot0 = 0.0;
                for (var e = 0u; e < D; e++) {
                    dot0 += x[t1 + e] * x[j0 + e];
                }
                m1 = beta2 * dot0;
            }
            } else {
                let row = stats[state0 + min(i1, n - 1u)];
                m1 = row.m;
                l1 = row.l;
                mn1 = row.min_cos;
                sc1 = row.sum_cos;
                sd1 = row.sum_dot / n1;
            }
            var nm1 = -m1;
            let i2 = q0 + lid.x + 128u;
            let ok2 = i2 < n;
            let t2 = (key_base + min(i2, n - 1u)) * D;
            var xi2_0 = vec4<f32>(x[t2], x[t2 + 1u], x[t2 + 2u], x[t2 + 3u]);
            var xi2_1 = vec4<f32>(x[t2 + 4u], x[t2 + 5u], x[t2 + 6u], x[t2 + 7u]);
            var xi2_2 = vec4<f32>(x[t2 + 8u], x[t2 + 9u], x[t2 + 10u], x[t2 + 11u]);
            var xi2_3 = vec4<f32>(x[t2 + 12u], x[t2 + 13u], x[t2 + 14u], x[t2 + 15u]);
            var xi2_4 = vec4<f32>(x[t2 + 16u], 0.0, 0.0, 0.0).xy;
            let n2 = sqrt(dot(xi2_0, xi2_0) + dot(xi2_1, xi2_1) + dot(xi2_2, xi2_2) + dot(xi2_3, xi2_3) + dot(xi2_4, xi2_4));
            xi2_0 /= n2;
            xi2_1 /= n2;
            xi2_2 /= n2;
            xi2_3 /= n2;
            xi2_4 /= n2;
            let bn2 = beta2 * n2;
            var m2 = F32_LOWEST;
            var l2 = 0.0;
            var mn2 = 3.0;
            var sc2 = 0.0;
            var sd2 = 0.0;
            if first {
                if split_start < n {
                    var dot0 = 0.0;
                    for (var e = 0u; e < D; e++) {
                        dot0 += x[t2 + e] * x[j0 + e];
                    }
                    m2 = beta2 * dot0;
                }
                } else {
                    let row = stats[state0 + min(i2, n - 1u)];
                    m2 = row.m;
                    l2 = row.l;
                    mn2 = row.min_cos;
                    sc2 = row.sum_cos;
                    sd2 = row.sum_dot / n2;
                }
                var nm2 = -m2;
                let i3 = q0 + lid.x + 192u;
                let ok3 = i3 < n;
                let t3 = (key_base + min(i3, n - 1u)) * D;
                var xi3_0 = vec4<f32>(x[t3], x[t3 + 1u], x[t3 + 2u], x[t3 + 3u]);
                var xi3_1 = vec4<f32>(x[t3 + 4u], x[t3 + 5u], x[t3 + 6u], x[t3 + 7u]);
                var xi3_2 = vec4<f32>(x[t3 + 8u], x[t3 + 9u], x[t3 + 10u], x[t3 + 11u]);
                var xi3_3 = vec4<f32>(x[t3 + 12u], x[t3 + 13u], x[t3 + 14u], x[t3 + 15u]);
                var xi3_4 = vec4<f32>(x[t3 + 16u], 0.0, 0.0, 0.0).xy;
                let n3 = sqrt(dot(xi3_0, xi3_0) + dot(xi3_1, xi3_1) + dot(xi3_2, xi3_2) + dot(xi3_3, xi3_3) + dot(xi3_4, xi3_4));
                xi3_0 /= n3;
                xi3_1 /= n3;
                xi3_2 /= n3;
                xi3_3 /= n3;
                xi3_4 /= n3;
                let bn3 = beta2 * n3;
                var m3 = F32_LOWEST;
                var l3 = 0.0;
                var mn3 = 3.0;
                var sc3 = 0.0;
                var sd3 = 0.0;
                if first {
                    if split_start < n {
                        var dot0 = 0.0;
                        for (var e = 0u; e < D; e++) {
                            dot0 += x[t3 + e] * x[j0 + e];
                        }
                        m3 = beta2 * dot0;
                    }
                    } else {
                        let row = stats[state0 + min(i3, n - 1u)];
                        m3 = row.m;
                        l3 = row.l;
                        mn3 = row.min_cos;
                        sc3 = row.sum_cos;
                        sd3 = row.sum_dot / n3;
                    }
                    var nm3 = -m3;
                    var start = start0;
                    loop {
                        if start >= key_end {
                            break;
                        }
                        let len = min(TK, key_end - start);
                        workgroupBarrier();
                        for (var e = lid.x; e < TK; e += WG) {
                            var key_0 = vec4<f32>(0.0);
                            var key_1 = vec4<f32>(0.0);
                            var key_2 = vec4<f32>(0.0);
                            var key_3 = vec4<f32>(0.0);
                            var key_4 = vec4<f32>(0.0);
                            var norm = 0.0;
                            if e < len {
                                let o = (key_base + start + e) * D;
                                key_0 = vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]);
                                key_1 = vec4<f32>(x[o + 4u], x[o + 5u], x[o + 6u], x[o + 7u]);
                                key_2 = vec4<f32>(x[o + 8u], x[o + 9u], x[o + 10u], x[o + 11u]);
                                key_3 = vec4<f32>(x[o + 12u], x[o + 13u], x[o + 14u], x[o + 15u]);
                                key_4 = vec4<f32>(x[o + 16u], 0.0, 0.0, 0.0);
                                norm = sqrt(dot(key_0, key_0) + dot(key_1, key_1) + dot(key_2, key_2) + dot(key_3, key_3) + dot(key_4, key_4));
                                key_0 /= norm;
                                key_1 /= norm;
                                key_2 /= norm;
                                key_3 /= norm;
                                key_4 /= norm;
                            }
                            tile[e * DV + 0u] = key_0;
                            tile[e * DV + 1u] = key_1;
                            tile[e * DV + 2u] = key_2;
                            tile[e * DV + 3u] = key_3;
                            tile[e * DV + 4u] = key_4;
                            tile_norm[e] = norm;
                        }
                        workgroupBarrier();
                        var tl0 = 0.0;
                        var tl1 = 0.0;
                        var tl2 = 0.0;
                        var tl3 = 0.0;
                        if len == TK {
                            for (var kk = 0u; kk < len; kk += G) {
                                let kb = kk * DV;
                                let kn0 = tile_norm[kk];
                                let k0_0 = tile[kb];
                                let k0_1 = tile[kb + 1u];
                                let k0_2 = tile[kb + 2u];
                                let k0_3 = tile[kb + 3u];
                                let k0_4 = tile[kb + 4u].xy;
                                let c0_0 = dot(xi0_0, k0_0) + dot(xi0_1, k0_1) + dot(xi0_2, k0_2) + dot(xi0_3, k0_3) + dot(xi0_4, k0_4);
                                let u0_0 = c0_0 * kn0;
                                tl0 += exp2(fma(u0_0, bn0, nm0));
                                mn0 = min(mn0, c0_0);
                                sc0 += c0_0;
                                sd0 += u0_0;
                                let c1_0 = dot(xi1_0, k0_0) + dot(xi1_1, k0_1) + dot(xi1_2, k0_2) + dot(xi1_3, k0_3) + dot(xi1_4, k0_4);
                                let u1_0 = c1_0 * kn0;
                                tl1 += exp2(fma(u1_0, bn1, nm1));
                                mn1 = min(mn1, c1_0);
                                sc1 += c1_0;
                                sd1 += u1_0;
                                let c2_0 = dot(xi2_0, k0_0) + dot(xi2_1, k0_1) + dot(xi2_2, k0_2) + dot(xi2_3, k0_3) + dot(xi2_4, k0_4);
                                let u2_0 = c2_0 * kn0;
                                tl2 += exp2(fma(u2_0, bn2, nm2));
                                mn2 = min(mn2, c2_0);
                                sc2 += c2_0;
                                sd2 += u2_0;
                                let c3_0 = dot(xi3_0, k0_0) + dot(xi3_1, k0_1) + dot(xi3_2, k0_2) + dot(xi3_3, k0_3) + dot(xi3_4, k0_4);
                                let u3_0 = c3_0 * kn0;
                                tl3 += exp2(fma(u3_0, bn3, nm3));
                                mn3 = min(mn3, c3_0);
                                sc3 += c3_0;
                                sd3 += u3_0;
                            }
                            } else {
                                for (var kk = 0u; kk < len; kk += G) {
                                    let kb = kk * DV;
                                    let kn0 = tile_norm[kk];
                                    let k0_0 = tile[kb];
                                    let k0_1 = tile[kb + 1u];
                                    let k0_2 = tile[kb + 2u];
                                    let k0_3 = tile[kb + 3u];
                                    let k0_4 = tile[kb + 4u].xy;
                                    let c0_0 = dot(xi0_0, k0_0) + dot(xi0_1, k0_1) + dot(xi0_2, k0_2) + dot(xi0_3, k0_3) + dot(xi0_4, k0_4);
                                    let u0_0 = c0_0 * kn0;
                                    let in0_0 = kk + 0u < len;
                                    tl0 += select(0.0, exp2(fma(u0_0, bn0, nm0)), in0_0);
                                    mn0 = select(mn0, min(mn0, c0_0), in0_0);
                                    sc0 += c0_0;
                                    sd0 += u0_0;
                                    let c1_0 = dot(xi1_0, k0_0) + dot(xi1_1, k0_1) + dot(xi1_2, k0_2) + dot(xi1_3, k0_3) + dot(xi1_4, k0_4);
                                    let u1_0 = c1_0 * kn0;
                                    let in1_0 = kk + 0u < len;
                                    tl1 += select(0.0, exp2(fma(u1_0, bn1, nm1)), in1_0);
                                    mn1 = select(mn1, min(mn1, c1_0), in1_0);
                                    sc1 += c1_0;
                                    sd1 += u1_0;
                                    let c2_0 = dot(xi2_0, k0_0) + dot(xi2_1, k0_1) + dot(xi2_2, k0_2) + dot(xi2_3, k0_3) + dot(xi2_4, k0_4);
                                    let u2_0 = c2_0 * kn0;
                                    let in2_0 = kk + 0u < len;
                                    tl2 += select(0.0, exp2(fma(u2_0, bn2, nm2)), in2_0);
                                    mn2 = select(mn2, min(mn2, c2_0), in2_0);
                                    sc2 += c2_0;
                                    sd2 += u2_0;
                                    let c3_0 = dot(xi3_0, k0_0) + dot(xi3_1, k0_1) + dot(xi3_2, k0_2) + dot(xi3_3, k0_3) + dot(xi3_4, k0_4);
                                    let u3_0 = c3_0 * kn0;
                                    let in3_0 = kk + 0u < len;
                                    tl3 += select(0.0, exp2(fma(u3_0, bn3, nm3)), in3_0);
                                    mn3 = select(mn3, min(mn3, c3_0), in3_0);
                                    sc3 += c3_0;
                                    sd3 += u3_0;
                                }
                            }
                            if !(tl0 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi0_0, tile[(kk) * DV + 0u]) + dot(xi0_1, tile[(kk) * DV + 1u]) + dot(xi0_2, tile[(kk) * DV + 2u]) + dot(xi0_3, tile[(kk) * DV + 3u]) + dot(xi0_4, tile[(kk) * DV + 4u].xy);
                                    top = max(top, fma(cs * tile_norm[kk], bn0, nm0));
                                }
                                let delta = max(top, 0.0);
                                nm0 -= delta;
                                l0 *= exp2(-delta);
                                tl0 = 0.0;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi0_0, tile[(kk) * DV + 0u]) + dot(xi0_1, tile[(kk) * DV + 1u]) + dot(xi0_2, tile[(kk) * DV + 2u]) + dot(xi0_3, tile[(kk) * DV + 3u]) + dot(xi0_4, tile[(kk) * DV + 4u].xy);
                                    tl0 += exp2(fma(cs * tile_norm[kk], bn0, nm0));
                                }
                            }
                            l0 += tl0;
                            if !(tl1 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi1_0, tile[(kk) * DV + 0u]) + dot(xi1_1, tile[(kk) * DV + 1u]) + dot(xi1_2, tile[(kk) * DV + 2u]) + dot(xi1_3, tile[(kk) * DV + 3u]) + dot(xi1_4, tile[(kk) * DV + 4u].xy);
                                    top = max(top, fma(cs * tile_norm[kk], bn1, nm1));
                                }
                                let delta = max(top, 0.0);
                                nm1 -= delta;
                                l1 *= exp2(-delta);
                                tl1 = 0.0;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi1_0, tile[(kk) * DV + 0u]) + dot(xi1_1, tile[(kk) * DV + 1u]) + dot(xi1_2, tile[(kk) * DV + 2u]) + dot(xi1_3, tile[(kk) * DV + 3u]) + dot(xi1_4, tile[(kk) * DV + 4u].xy);
                                    tl1 += exp2(fma(cs * tile_norm[kk], bn1, nm1));
                                }
                            }
                            l1 += tl1;
                            if !(tl2 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi2_0, tile[(kk) * DV + 0u]) + dot(xi2_1, tile[(kk) * DV + 1u]) + dot(xi2_2, tile[(kk) * DV + 2u]) + dot(xi2_3, tile[(kk) * DV + 3u]) + dot(xi2_4, tile[(kk) * DV + 4u].xy);
                                    top = max(top, fma(cs * tile_norm[kk], bn2, nm2));
                                }
                                let delta = max(top, 0.0);
                                nm2 -= delta;
                                l2 *= exp2(-delta);
                                tl2 = 0.0;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi2_0, tile[(kk) * DV + 0u]) + dot(xi2_1, tile[(kk) * DV + 1u]) + dot(xi2_2, tile[(kk) * DV + 2u]) + dot(xi2_3, tile[(kk) * DV + 3u]) + dot(xi2_4, tile[(kk) * DV + 4u].xy);
                                    tl2 += exp2(fma(cs * tile_norm[kk], bn2, nm2));
                                }
                            }
                            l2 += tl2;
                            if !(tl3 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi3_0, tile[(kk) * DV + 0u]) + dot(xi3_1, tile[(kk) * DV + 1u]) + dot(xi3_2, tile[(kk) * DV + 2u]) + dot(xi3_3, tile[(kk) * DV + 3u]) + dot(xi3_4, tile[(kk) * DV + 4u].xy);
                                    top = max(top, fma(cs * tile_norm[kk], bn3, nm3));
                                }
                                let delta = max(top, 0.0);
                                nm3 -= delta;
                                l3 *= exp2(-delta);
                                tl3 = 0.0;
                                for (var kk = 0u; kk < len; kk++) {
                                    let cs = dot(xi3_0, tile[(kk) * DV + 0u]) + dot(xi3_1, tile[(kk) * DV + 1u]) + dot(xi3_2, tile[(kk) * DV + 2u]) + dot(xi3_3, tile[(kk) * DV + 3u]) + dot(xi3_4, tile[(kk) * DV + 4u].xy);
                                    tl3 += exp2(fma(cs * tile_norm[kk], bn3, nm3));
                                }
                            }
                            l3 += tl3;
                            start += TK;
                        }
                        if ok0 {
                            var self_cos = dot(xi0_0, xi0_0) + dot(xi0_1, xi0_1) + dot(xi0_2, xi0_2) + dot(xi0_3, xi0_3) + dot(xi0_4, xi0_4);
                            let sees_self = (i0 >= start0) & (i0 < key_end);
                            stats[state0 + i0] = PairStats(-nm0, l0, mn0, sc0 - select(0.0, self_cos, sees_self), sd0 * n0);
                        }
                        if ok1 {
                            var self_cos = dot(xi1_0, xi1_0) + dot(xi1_1, xi1_1) + dot(xi1_2, xi1_2) + dot(xi1_3, xi1_3) + dot(xi1_4, xi1_4);
                            let sees_self = (i1 >= start0) & (i1 < key_end);
                            stats[state0 + i1] = PairStats(-nm1, l1, mn1, sc1 - select(0.0, self_cos, sees_self), sd1 * n1);
                        }
                        if ok2 {
                            var self_cos = dot(xi2_0, xi2_0) + dot(xi2_1, xi2_1) + dot(xi2_2, xi2_2) + dot(xi2_3, xi2_3) + dot(xi2_4, xi2_4);
                            let sees_self = (i2 >= start0) & (i2 < key_end);
                            stats[state0 + i2] = PairStats(-nm2, l2, mn2, sc2 - select(0.0, self_cos, sees_self), sd2 * n2);
                        }
                        if ok3 {
                            var self_cos = dot(xi3_0, xi3_0) + dot(xi3_1, xi3_1) + dot(xi3_2, xi3_2) + dot(xi3_3, xi3_3) + dot(xi3_4, xi3_4);
                            let sees_self = (i3 >= start0) & (i3 < key_end);
                            stats[state0 + i3] = PairStats(-nm3, l3, mn3, sc3 - select(0.0, self_cos, sees_self), sd3 * n3);
                        }
                    }
