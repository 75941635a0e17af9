// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 64u;
const DV: u32 = 16u;
const WG: u32 = 64u;
const TK: u32 = 32u;
const TILE_VECS: u32 = 512u;
const QB: u32 = 128u;
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
    var xi0_4 = vec4<f32>(x[t0 + 16u], x[t0 + 17u], x[t0 + 18u], x[t0 + 19u]);
    var xi0_5 = vec4<f32>(x[t0 + 20u], x[t0 + 21u], x[t0 + 22u], x[t0 + 23u]);
    var xi0_6 = vec4<f32>(x[t0 + 24u], x[t0 + 25u], x[t0 + 26u], x[t0 + 27u]);
    var xi0_7 = vec4<f32>(x[t0 + 28u], x[t0 + 29u], x[t0 + 30u], x[t0 + 31u]);
    var xi0_8 = vec4<f32>(x[t0 + 32u], x[t0 + 33u], x[t0 + 34u], x[t0 + 35u]);
    var xi0_9 = vec4<f32>(x[t0 + 36u], x[t0 + 37u], x[t0 + 38u], x[t0 + 39u]);
    var xi0_10 = vec4<f32>(x[t0 + 40u], x[t0 + 41u], x[t0 + 42u], x[t0 + 43u]);
    var xi0_11 = vec4<f32>(x[t0 + 44u], x[t0 + 45u], x[t0 + 46u], x[t0 + 47u]);
    var xi0_12 = vec4<f32>(x[t0 + 48u], x[t0 + 49u], x[t0 + 50u], x[t0 + 51u]);
    var xi0_13 = vec4<f32>(x[t0 + 52u], x[t0 + 53u], x[t0 + 54u], x[t0 + 55u]);
    var xi0_14 = vec4<f32>(x[t0 + 56u], x[t0 + 57u], x[t0 + 58u], x[t0 + 59u]);
    var xi0_15 = vec4<f32>(x[t0 + 60u], x[t0 + 61u], x[t0 + 62u], x[t0 + 63u]);
    let n0 = sqrt(dot(xi0_0, xi0_0) + dot(xi0_1, xi0_1) + dot(xi0_2, xi0_2) + dot(xi0_3, xi0_3) + dot(xi0_4, xi0_4) + dot(xi0_5, xi0_5) + dot(xi0_6, xi0_6) + dot(xi0_7, xi0_7) + dot(xi0_8, xi0_8) + dot(xi0_9, xi0_9) + dot(xi0_10, xi0_10) + dot(xi0_11, xi0_11) + dot(xi0_12, xi0_12) + dot(xi0_13, xi0_13) + dot(xi0_14, xi0_14) + dot(xi0_15, xi0_15));
    xi0_0 /= n0;
    xi0_1 /= n0;
    xi0_2 /= n0;
    xi0_3 /= n0;
    xi0_4 /= n0;
    xi0_5 /= n0;
    xi0_6 /= n0;
    xi0_7 /= n0;
    xi0_8 /= n0;
    xi0_9 /= n0;
    xi0_10 /= n0;
    xi0_11 /= n0;
    xi0_12 /= n0;
    xi0_13 /= n0;
    xi0_14 /= n0;
    xi0_15 /= n0;
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
        var xi1_4 = vec4<f32>(x[t1 + 16u], x[t1 + 17u], x[t1 + 18u], x[t1 + 19u]);
        var xi1_5 = vec4<f32>(x[t1 + 20u], x[t1 + 21u], x[t1 + 22u], x[t1 + 23u]);
        var xi1_6 = vec4<f32>(x[t1 + 24u], x[t1 + 25u], x[t1 + 26u], x[t1 + 27u]);
        var xi1_7 = vec4<f32>(x[t1 + 28u], x[t1 + 29u], x[t1 + 30u], x[t1 + 31u]);
        var xi1_8 = vec4<f32>(x[t1 + 32u], x[t1 + 33u], x[t1 + 34u], x[t1 + 35u]);
        var xi1_9 = vec4<f32>(x[t1 + 36u], x[t1 + 37u], x[t1 + 38u], x[t1 + 39u]);
        var xi1_10 = vec4<f32>(x[t1 + 40u], x[t1 + 41u], x[t1 + 42u], x[t1 + 43u]);
        var xi1_11 = vec4<f32>(x[t1 + 44u], x[t1 + 45u], x[t1 + 46u], x[t1 + 47u]);
        var xi1_12 = vec4<f32>(x[t1 + 48u], x[t1 + 49u], x[t1 + 50u], x[t1 + 51u]);
        var xi1_13 = vec4<f32>(x[t1 + 52u], x[t1 + 53u], x[t1 + 54u], x[t1 + 55u]);
        var xi1_14 = vec4<f32>(x[t1 + 56u], x[t1 + 57u], x[t1 + 58u], x[t1 + 59u]);
        var xi1_15 = vec4<f32>(x[t1 + 60u], x[t1 + 61u], x[t1 + 62u], x[t1 + 63u]);
        let n1 = sqrt(dot(xi1_0, xi1_0) + dot(xi1_1, xi1_1) + dot(xi1_2, xi1_2) + dot(xi1_3, xi1_3) + dot(xi1_4, xi1_4) + dot(xi1_5, xi1_5) + dot(xi1_6, xi1_6) + dot(xi1_7, xi1_7) + dot(xi1_8, xi1_8) + dot(xi1_9, xi1_9) + dot(xi1_10, xi1_10) + dot(xi1_11, xi1_11) + dot(xi1_12, xi1_12) + dot(xi1_13, xi1_13) + dot(xi1_14, xi1_14) + dot(xi1_15, xi1_15));
        xi1_0 /= n1;
        xi1_1 /= n1;
        xi1_2 /= n1;
        xi1_3 /= n1;
        xi1_4 /= n1;
        xi1_5 /= n1;
        xi1_6 /= n1;
        xi1_7 /= n1;
        xi1_8 /= n1;
        xi1_9 /= n1;
        xi1_10 /= n1;
        xi1_11 /= n1;
        xi1_12 /= n1;
        xi1_13 /= n1;
        xi1_14 /= n1;
        xi1_15 /= n1;
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
                    var key_5 = vec4<f32>(0.0);
                    var key_6 = vec4<f32>(0.0);
                    var key_7 = vec4<f32>(0.0);
                    var key_8 = vec4<f32>(0.0);
                    var key_9 = vec4<f32>(0.0);
                    var key_10 = vec4<f32>(0.0);
                    var key_11 = vec4<f32>(0.0);
                    var key_12 = vec4<f32>(0.0);
                    var key_13 = vec4<f32>(0.0);
                    var key_14 = vec4<f32>(0.0);
                    var key_15 = vec4<f32>(0.0);
                    var norm = 0.0;
                    if e < len {
                        let o = (key_base + start + e) * D;
                        key_0 = vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]);
                        key_1 = vec4<f32>(x[o + 4u], x[o + 5u], x[o + 6u], x[o + 7u]);
                        key_2 = vec4<f32>(x[o + 8u], x[o + 9u], x[o + 10u], x[o + 11u]);
                        key_3 = vec4<f32>(x[o + 12u], x[o + 13u], x[o + 14u], x[o + 15u]);
                        key_4 = vec4<f32>(x[o + 16u], x[o + 17u], x[o + 18u], x[o + 19u]);
                        key_5 = vec4<f32>(x[o + 20u], x[o + 21u], x[o + 22u], x[o + 23u]);
                        key_6 = vec4<f32>(x[o + 24u], x[o + 25u], x[o + 26u], x[o + 27u]);
                        key_7 = vec4<f32>(x[o + 28u], x[o + 29u], x[o + 30u], x[o + 31u]);
                        key_8 = vec4<f32>(x[o + 32u], x[o + 33u], x[o + 34u], x[o + 35u]);
                        key_9 = vec4<f32>(x[o + 36u], x[o + 37u], x[o + 38u], x[o + 39u]);
                        key_10 = vec4<f32>(x[o + 40u], x[o + 41u], x[o + 42u], x[o + 43u]);
                        key_11 = vec4<f32>(x[o + 44u], x[o + 45u], x[o + 46u], x[o + 47u]);
                        key_12 = vec4<f32>(x[o + 48u], x[o + 49u], x[o + 50u], x[o + 51u]);
                        key_13 = vec4<f32>(x[o + 52u], x[o + 53u], x[o + 54u], x[o + 55u]);
                        key_14 = vec4<f32>(x[o + 56u], x[o + 57u], x[o + 58u], x[o + 59u]);
                        key_15 = vec4<f32>(x[o + 60u], x[o + 61u], x[o + 62u], x[o + 63u]);
                        norm = sqrt(dot(key_0, key_0) + dot(key_1, key_1) + dot(key_2, key_2) + dot(key_3, key_3) + dot(key_4, key_4) + dot(key_5, key_5) + dot(key_6, key_6) + dot(key_7, key_7) + dot(key_8, key_8) + dot(key_9, key_9) + dot(key_10, key_10) + dot(key_11, key_11) + dot(key_12, key_12) + dot(key_13, key_13) + dot(key_14, key_14) + dot(key_15, key_15));
                        key_0 /= norm;
                        key_1 /= norm;
                        key_2 /= norm;
                        key_3 /= norm;
                        key_4 /= norm;
                        key_5 /= norm;
                        key_6 /= norm;
                        key_7 /= norm;
                        key_8 /= norm;
                        key_9 /= norm;
                        key_10 /= norm;
                        key_11 /= norm;
                        key_12 /= norm;
                        key_13 /= norm;
                        key_14 /= norm;
                        key_15 /= norm;
                    }
                    tile[e * DV + 0u] = key_0;
                    tile[e * DV + 1u] = key_1;
                    tile[e * DV + 2u] = key_2;
                    tile[e * DV + 3u] = key_3;
                    tile[e * DV + 4u] = key_4;
                    tile[e * DV + 5u] = key_5;
                    tile[e * DV + 6u] = key_6;
                    tile[e * DV + 7u] = key_7;
                    tile[e * DV + 8u] = key_8;
                    tile[e * DV + 9u] = key_9;
                    tile[e * DV + 10u] = key_10;
                    tile[e * DV + 11u] = key_11;
                    tile[e * DV + 12u] = key_12;
                    tile[e * DV + 13u] = key_13;
                    tile[e * DV + 14u] = key_14;
                    tile[e * DV + 15u] = key_15;
                    tile_norm[e] = norm;
                }
                workgroupBarrier();
                var tl0 = 0.0;
                var tl1 = 0.0;
                if len == TK {
                    for (var kk = 0u; kk < len; kk += G) {
                        let kb = kk * DV;
                        let kn0 = tile_norm[kk];
                        let k0_0 = tile[kb];
                        let k0_1 = tile[kb + 1u];
                        let k0_2 = tile[kb + 2u];
                        let k0_3 = tile[kb + 3u];
                        let k0_4 = tile[kb + 4u];
                        let k0_5 = tile[kb + 5u];
                        let k0_6 = tile[kb + 6u];
                        let k0_7 = tile[kb + 7u];
                        let k0_8 = tile[kb + 8u];
                        let k0_9 = tile[kb + 9u];
                        let k0_10 = tile[kb + 10u];
                        let k0_11 = tile[kb + 11u];
                        let k0_12 = tile[kb + 12u];
                        let k0_13 = tile[kb + 13u];
                        let k0_14 = tile[kb + 14u];
                        let k0_15 = tile[kb + 15u];
                        let c0_0 = dot(xi0_0, k0_0) + dot(xi0_1, k0_1) + dot(xi0_2, k0_2) + dot(xi0_3, k0_3) + dot(xi0_4, k0_4) + dot(xi0_5, k0_5) + dot(xi0_6, k0_6) + dot(xi0_7, k0_7) + dot(xi0_8, k0_8) + dot(xi0_9, k0_9) + dot(xi0_10, k0_10) + dot(xi0_11, k0_11) + dot(xi0_12, k0_12) + dot(xi0_13, k0_13) + dot(xi0_14, k0_14) + dot(xi0_15, k0_15);
                        let u0_0 = c0_0 * kn0;
                        tl0 += exp2(fma(u0_0, bn0, nm0));
                        mn0 = min(mn0, c0_0);
                        sc0 += c0_0;
                        sd0 += u0_0;
                        let c1_0 = dot(xi1_0, k0_0) + dot(xi1_1, k0_1) + dot(xi1_2, k0_2) + dot(xi1_3, k0_3) + dot(xi1_4, k0_4) + dot(xi1_5, k0_5) + dot(xi1_6, k0_6) + dot(xi1_7, k0_7) + dot(xi1_8, k0_8) + dot(xi1_9, k0_9) + dot(xi1_10, k0_10) + dot(xi1_11, k0_11) + dot(xi1_12, k0_12) + dot(xi1_13, k0_13) + dot(xi1_14, k0_14) + dot(xi1_15, k0_15);
                        let u1_0 = c1_0 * kn0;
                        tl1 += exp2(fma(u1_0, bn1, nm1));
                        mn1 = min(mn1, c1_0);
                        sc1 += c1_0;
                        sd1 += u1_0;
                    }
                    } else {
                        for (var kk = 0u; kk < len; kk += G) {
                            let kb = kk * DV;
                            let kn0 = tile_norm[kk];
                            let k0_0 = tile[kb];
                            let k0_1 = tile[kb + 1u];
                            let k0_2 = tile[kb + 2u];
                            let k0_3 = tile[kb + 3u];
                            let k0_4 = tile[kb + 4u];
                            let k0_5 = tile[kb + 5u];
                            let k0_6 = tile[kb + 6u];
                            let k0_7 = tile[kb + 7u];
                            let k0_8 = tile[kb + 8u];
                            let k0_9 = tile[kb + 9u];
                            let k0_10 = tile[kb + 10u];
                            let k0_11 = tile[kb + 11u];
                            let k0_12 = tile[kb + 12u];
                            let k0_13 = tile[kb + 13u];
                            let k0_14 = tile[kb + 14u];
                            let k0_15 = tile[kb + 15u];
                            let c0_0 = dot(xi0_0, k0_0) + dot(xi0_1, k0_1) + dot(xi0_2, k0_2) + dot(xi0_3, k0_3) + dot(xi0_4, k0_4) + dot(xi0_5, k0_5) + dot(xi0_6, k0_6) + dot(xi0_7, k0_7) + dot(xi0_8, k0_8) + dot(xi0_9, k0_9) + dot(xi0_10, k0_10) + dot(xi0_11, k0_11) + dot(xi0_12, k0_12) + dot(xi0_13, k0_13) + dot(xi0_14, k0_14) + dot(xi0_15, k0_15);
                            let u0_0 = c0_0 * kn0;
                            let in0_0 = kk + 0u < len;
                            tl0 += select(0.0, exp2(fma(u0_0, bn0, nm0)), in0_0);
                            mn0 = select(mn0, min(mn0, c0_0), in0_0);
                            sc0 += c0_0;
                            sd0 += u0_0;
                            let c1_0 = dot(xi1_0, k0_0) + dot(xi1_1, k0_1) + dot(xi1_2, k0_2) + dot(xi1_3, k0_3) + dot(xi1_4, k0_4) + dot(xi1_5, k0_5) + dot(xi1_6, k0_6) + dot(xi1_7, k0_7) + dot(xi1_8, k0_8) + dot(xi1_9, k0_9) + dot(xi1_10, k0_10) + dot(xi1_11, k0_11) + dot(xi1_12, k0_12) + dot(xi1_13, k0_13) + dot(xi1_14, k0_14) + dot(xi1_15, k0_15);
                            let u1_0 = c1_0 * kn0;
                            let in1_0 = kk + 0u < len;
                            tl1 += select(0.0, exp2(fma(u1_0, bn1, nm1)), in1_0);
                            mn1 = select(mn1, min(mn1, c1_0), in1_0);
                            sc1 += c1_0;
                            sd1 += u1_0;
                        }
                    }
                    if !(tl0 <= 1.8446744e19) {
                        var top = F32_LOWEST;
                        for (var kk = 0u; kk < len; kk++) {
                            let cs = dot(xi0_0, tile[(kk) * DV + 0u]) + dot(xi0_1, tile[(kk) * DV + 1u]) + dot(xi0_2, tile[(kk) * DV + 2u]) + dot(xi0_3, tile[(kk) * DV + 3u]) + dot(xi0_4, tile[(kk) * DV + 4u]) + dot(xi0_5, tile[(kk) * DV + 5u]) + dot(xi0_6, tile[(kk) * DV + 6u]) + dot(xi0_7, tile[(kk) * DV + 7u]) + dot(xi0_8, tile[(kk) * DV + 8u]) + dot(xi0_9, tile[(kk) * DV + 9u]) + dot(xi0_10, tile[(kk) * DV + 10u]) + dot(xi0_11, tile[(kk) * DV + 11u]) + dot(xi0_12, tile[(kk) * DV + 12u]) + dot(xi0_13, tile[(kk) * DV + 13u]) + dot(xi0_14, tile[(kk) * DV + 14u]) + dot(xi0_15, tile[(kk) * DV + 15u]);
                            top = max(top, fma(cs * tile_norm[kk], bn0, nm0));
                        }
                        let delta = max(top, 0.0);
                        nm0 -= delta;
                        l0 *= exp2(-delta);
                        tl0 = 0.0;
                        for (var kk = 0u; kk < len; kk++) {
                            let cs = dot(xi0_0, tile[(kk) * DV + 0u]) + dot(xi0_1, tile[(kk) * DV + 1u]) + dot(xi0_2, tile[(kk) * DV + 2u]) + dot(xi0_3, tile[(kk) * DV + 3u]) + dot(xi0_4, tile[(kk) * DV + 4u]) + dot(xi0_5, tile[(kk) * DV + 5u]) + dot(xi0_6, tile[(kk) * DV + 6u]) + dot(xi0_7, tile[(kk) * DV + 7u]) + dot(xi0_8, tile[(kk) * DV + 8u]) + dot(xi0_9, tile[(kk) * DV + 9u]) + dot(xi0_10, tile[(kk) * DV + 10u]) + dot(xi0_11, tile[(kk) * DV + 11u]) + dot(xi0_12, tile[(kk) * DV + 12u]) + dot(xi0_13, tile[(kk) * DV + 13u]) + dot(xi0_14, tile[(kk) * DV + 14u]) + dot(xi0_15, tile[(kk) * DV + 15u]);
                            tl0 += exp2(fma(cs * tile_norm[kk], bn0, nm0));
                        }
                    }
                    l0 += tl0;
                    if !(tl1 <= 1.8446744e19) {
                        var top = F32_LOWEST;
                        for (var kk = 0u; kk < len; kk++) {
                            let cs = dot(xi1_0, tile[(kk) * DV + 0u]) + dot(xi1_1, tile[(kk) * DV + 1u]) + dot(xi1_2, tile[(kk) * DV + 2u]) + dot(xi1_3, tile[(kk) * DV + 3u]) + dot(xi1_4, tile[(kk) * DV + 4u]) + dot(xi1_5, tile[(kk) * DV + 5u]) + dot(xi1_6, tile[(kk) * DV + 6u]) + dot(xi1_7, tile[(kk) * DV + 7u]) + dot(xi1_8, tile[(kk) * DV + 8u]) + dot(xi1_9, tile[(kk) * DV + 9u]) + dot(xi1_10, tile[(kk) * DV + 10u]) + dot(xi1_11, tile[(kk) * DV + 11u]) + dot(xi1_12, tile[(kk) * DV + 12u]) + dot(xi1_13, tile[(kk) * DV + 13u]) + dot(xi1_14, tile[(kk) * DV + 14u]) + dot(xi1_15, tile[(kk) * DV + 15u]);
                            top = max(top, fma(cs * tile_norm[kk], bn1, nm1));
                        }
                        let delta = max(top, 0.0);
                        nm1 -= delta;
                        l1 *= exp2(-delta);
                        tl1 = 0.0;
                        for (var kk = 0u; kk < len; kk++) {
                            let cs = dot(xi1_0, tile[(kk) * DV + 0u]) + dot(xi1_1, tile[(kk) * DV + 1u]) + dot(xi1_2, tile[(kk) * DV + 2u]) + dot(xi1_3, tile[(kk) * DV + 3u]) + dot(xi1_4, tile[(kk) * DV + 4u]) + dot(xi1_5, tile[(kk) * DV + 5u]) + dot(xi1_6, tile[(kk) * DV + 6u]) + dot(xi1_7, tile[(kk) * DV + 7u]) + dot(xi1_8, tile[(kk) * DV + 8u]) + dot(xi1_9, tile[(kk) * DV + 9u]) + dot(xi1_10, tile[(kk) * DV + 10u]) + dot(xi1_11, tile[(kk) * DV + 11u]) + dot(xi1_12, tile[(kk) * DV + 12u]) + dot(xi1_13, tile[(kk) * DV + 13u]) + dot(xi1_14, tile[(kk) * DV + 14u]) + dot(xi1_15, tile[(kk) * DV + 15u]);
                            tl1 += exp2(fma(cs * tile_norm[kk], bn1, nm1));
                        }
                    }
                    l1 += tl1;
                    start += TK;
                }
                if ok0 {
                    var self_cos = dot(xi0_0, xi0_0) + dot(xi0_1, xi0_1) + dot(xi0_2, xi0_2) + dot(xi0_3, xi0_3) + dot(xi0_4, xi0_4) + dot(xi0_5, xi0_5) + dot(xi0_6, xi0_6) + dot(xi0_7, xi0_7) + dot(xi0_8, xi0_8) + dot(xi0_9, xi0_9) + dot(xi0_10, xi0_10) + dot(xi0_11, xi0_11) + dot(xi0_12, xi0_12) + dot(xi0_13, xi0_13) + dot(xi0_14, xi0_14) + dot(xi0_15, xi0_15);
                    let sees_self = (i0 >= start0) & (i0 < key_end);
                    stats[state0 + i0] = PairStats(-nm0, l0, mn0, sc0 - select(0.0, self_cos, sees_self), sd0 * n0);
                }
                if ok1 {
                    var self_cos = dot(xi1_0, xi1_0) + dot(xi1_1, xi1_1) + dot(xi1_2, xi1_2) + dot(xi1_3, xi1_3) + dot(xi1_4, xi1_4) + dot(xi1_5, xi1_5) + dot(xi1_6, xi1_6) + dot(xi1_7, xi1_7) + dot(xi1_8, xi1_8) + dot(xi1_9, xi1_9) + dot(xi1_10, xi1_10) + dot(xi1_11, xi1_11) + dot(xi1_12, xi1_12) + dot(xi1_13, xi1_13) + dot(xi1_14, xi1_14) + dot(xi1_15, xi1_15);
                    let sees_self = (i1 >= start0) & (i1 < key_end);
                    stats[state0 + i1] = PairStats(-nm1, l1, mn1, sc1 - select(0.0, self_cos, sees_self), sd1 * n1);
                }
            }
