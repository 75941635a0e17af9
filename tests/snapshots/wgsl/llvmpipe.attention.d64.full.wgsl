// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 64u;
const DV: u32 = 16u;
const WG: u32 = 64u;
const TK: u32 = 128u;
const TILE_VECS: u32 = 2048u;
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

// Stage 2 of the attention field for small d (docs/model.md §1), N-body style: each
// invocation holds R queries in registers, keys stream through workgroup memory in tiles of
// TK (one vec4 per key and DV = ceil(D / 4) <= 2), and each key read from workgroup memory
// serves R queries. `main` is generated (src/backend/gpu/codegen.rs) as straight-line code: no loop
// over coordinates or queries inside the key loop, keys unrolled G at a time (8 where the
// body stays small).
//
// Scores are in base 2: the queries kernel folds beta log2(e) into q, so p = exp2(<q, x_j> - m).
// s - m is one chain of D FMAs with -m as the innermost addend (no operation of its own; a
// spare lane carrying -m would cost a multiply), then exp2, D FMAs into the accumulator and
// one add into the sum: 2 D + 2 operations per pair.
// The maximum is lazy: it starts at the score of the split's first key and moves only when a
// tile's sum leaves [0, 2^64] (a score more than about 64 above m); that tile is then redone
// with its exact maximum. Sums stay exact in meaning (l 2^m = sum_j 2^{s_j}) and no term can
// overflow. Each tile is summed on its own and added to the running sums afterwards, so
// rounding grows with TK + n / TK rather than n.
//
// The keys of one evaluation are cut into `params.splits` contiguous splits (workgroups along
// z), each with its own partial state [split][token]; a dispatch visits keys
// [chunk.key_offset, + chunk.key_count) of every split. attention_finish merges the splits.
// CPU twin: reference::stages::attention.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Queries, [batch * n_queries][DV] vec4 (pad lanes zero), in log2 units.
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
// Keys (and values), [batch, n_keys, D].
@group(0) @binding(3) var<storage, read> x: array<f32>;
// Partial state per split and query: acc [splits][batch * n_queries][DV] vec4 and (m, l).
@group(0) @binding(4) var<storage, read_write> acc_state: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ml_state: array<vec2<f32>>;

var<workgroup> tile: array<vec4<f32>, TILE_VECS>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let split = wid.z % params.splits;
    let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;
    let system = wid.y + chunk.first_system;
    let q0 = block * QB;
    let split_start = split * params.split_keys;
    let split_end = min(split_start + params.split_keys, params.n_keys);
    let start0 = split_start + chunk.key_offset;
    var key_end = min(start0 + chunk.key_count, split_end);
    let key_base = system * params.n_keys;
    let first = chunk.first != 0u;
    let state0 = split * params.batch * params.n_queries + system * params.n_queries;
    // The split's first key: the running maximum starts at its score.
    let first_0 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 1u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 2u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 3u]);
    let first_1 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 4u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 5u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 6u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 7u]);
    let first_2 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 8u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 9u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 10u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 11u]);
    let first_3 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 12u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 13u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 14u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 15u]);
    let first_4 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 16u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 17u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 18u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 19u]);
    let first_5 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 20u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 21u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 22u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 23u]);
    let first_6 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 24u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 25u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 26u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 27u]);
    let first_7 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 28u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 29u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 30u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 31u]);
    let first_8 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 32u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 33u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 34u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 35u]);
    let first_9 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 36u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 37u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 38u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 39u]);
    let first_10 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 40u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 41u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 42u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 43u]);
    let first_11 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 44u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 45u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 46u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 47u]);
    let first_12 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 48u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 49u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 50u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 51u]);
    let first_13 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 52u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 53u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 54u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 55u]);
    let first_14 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 56u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 57u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 58u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 59u]);
    let first_15 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 60u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 61u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 62u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 63u]);
    let i0 = q0 + lid.x + 0u;
    let ok0 = i0 < params.n_queries;
    let t0 = system * params.n_queries + min(i0, params.n_queries - 1u);
    let q0_0 = q[t0 * DV + 0u];
    var acc0_0 = vec4<f32>(0.0);
    let q0_1 = q[t0 * DV + 1u];
    var acc0_1 = vec4<f32>(0.0);
    let q0_2 = q[t0 * DV + 2u];
    var acc0_2 = vec4<f32>(0.0);
    let q0_3 = q[t0 * DV + 3u];
    var acc0_3 = vec4<f32>(0.0);
    let q0_4 = q[t0 * DV + 4u];
    var acc0_4 = vec4<f32>(0.0);
    let q0_5 = q[t0 * DV + 5u];
    var acc0_5 = vec4<f32>(0.0);
    let q0_6 = q[t0 * DV + 6u];
    var acc0_6 = vec4<f32>(0.0);
    let q0_7 = q[t0 * DV + 7u];
    var acc0_7 = vec4<f32>(0.0);
    let q0_8 = q[t0 * DV + 8u];
    var acc0_8 = vec4<f32>(0.0);
    let q0_9 = q[t0 * DV + 9u];
    var acc0_9 = vec4<f32>(0.0);
    let q0_10 = q[t0 * DV + 10u];
    var acc0_10 = vec4<f32>(0.0);
    let q0_11 = q[t0 * DV + 11u];
    var acc0_11 = vec4<f32>(0.0);
    let q0_12 = q[t0 * DV + 12u];
    var acc0_12 = vec4<f32>(0.0);
    let q0_13 = q[t0 * DV + 13u];
    var acc0_13 = vec4<f32>(0.0);
    let q0_14 = q[t0 * DV + 14u];
    var acc0_14 = vec4<f32>(0.0);
    let q0_15 = q[t0 * DV + 15u];
    var acc0_15 = vec4<f32>(0.0);
    var m0 = F32_LOWEST;
    var l0 = 0.0;
    if first {
        if split_start < params.n_keys {
            m0 = (((fma(q0_0.x, first_0.x, fma(q0_0.y, first_0.y, fma(q0_0.z, first_0.z, fma(q0_0.w, first_0.w, fma(q0_1.x, first_1.x, fma(q0_1.y, first_1.y, fma(q0_1.z, first_1.z, fma(q0_1.w, first_1.w, 0.0)))))))) + fma(q0_2.x, first_2.x, fma(q0_2.y, first_2.y, fma(q0_2.z, first_2.z, fma(q0_2.w, first_2.w, fma(q0_3.x, first_3.x, fma(q0_3.y, first_3.y, fma(q0_3.z, first_3.z, q0_3.w * first_3.w)))))))) + (fma(q0_4.x, first_4.x, fma(q0_4.y, first_4.y, fma(q0_4.z, first_4.z, fma(q0_4.w, first_4.w, fma(q0_5.x, first_5.x, fma(q0_5.y, first_5.y, fma(q0_5.z, first_5.z, q0_5.w * first_5.w))))))) + fma(q0_6.x, first_6.x, fma(q0_6.y, first_6.y, fma(q0_6.z, first_6.z, fma(q0_6.w, first_6.w, fma(q0_7.x, first_7.x, fma(q0_7.y, first_7.y, fma(q0_7.z, first_7.z, q0_7.w * first_7.w))))))))) + ((fma(q0_8.x, first_8.x, fma(q0_8.y, first_8.y, fma(q0_8.z, first_8.z, fma(q0_8.w, first_8.w, fma(q0_9.x, first_9.x, fma(q0_9.y, first_9.y, fma(q0_9.z, first_9.z, q0_9.w * first_9.w))))))) + fma(q0_10.x, first_10.x, fma(q0_10.y, first_10.y, fma(q0_10.z, first_10.z, fma(q0_10.w, first_10.w, fma(q0_11.x, first_11.x, fma(q0_11.y, first_11.y, fma(q0_11.z, first_11.z, q0_11.w * first_11.w)))))))) + (fma(q0_12.x, first_12.x, fma(q0_12.y, first_12.y, fma(q0_12.z, first_12.z, fma(q0_12.w, first_12.w, fma(q0_13.x, first_13.x, fma(q0_13.y, first_13.y, fma(q0_13.z, first_13.z, q0_13.w * first_13.w))))))) + fma(q0_14.x, first_14.x, fma(q0_14.y, first_14.y, fma(q0_14.z, first_14.z, fma(q0_14.w, first_14.w, fma(q0_15.x, first_15.x, fma(q0_15.y, first_15.y, fma(q0_15.z, first_15.z, q0_15.w * first_15.w))))))))));
        }
        } else {
            let ml = ml_state[state0 + min(i0, params.n_queries - 1u)];
            m0 = ml.x;
            l0 = ml.y;
            acc0_0 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 0u];
            acc0_1 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 1u];
            acc0_2 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 2u];
            acc0_3 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 3u];
            acc0_4 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 4u];
            acc0_5 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 5u];
            acc0_6 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 6u];
            acc0_7 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 7u];
            acc0_8 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 8u];
            acc0_9 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 9u];
            acc0_10 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 10u];
            acc0_11 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 11u];
            acc0_12 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 12u];
            acc0_13 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 13u];
            acc0_14 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 14u];
            acc0_15 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 15u];
        }
        var nb0 = -m0;
        let i1 = q0 + lid.x + 64u;
        let ok1 = i1 < params.n_queries;
        let t1 = system * params.n_queries + min(i1, params.n_queries - 1u);
        let q1_0 = q[t1 * DV + 0u];
        var acc1_0 = vec4<f32>(0.0);
        let q1_1 = q[t1 * DV + 1u];
        var acc1_1 = vec4<f32>(0.0);
        let q1_2 = q[t1 * DV + 2u];
        var acc1_2 = vec4<f32>(0.0);
        let q1_3 = q[t1 * DV + 3u];
        var acc1_3 = vec4<f32>(0.0);
        let q1_4 = q[t1 * DV + 4u];
        var acc1_4 = vec4<f32>(0.0);
        let q1_5 = q[t1 * DV + 5u];
        var acc1_5 = vec4<f32>(0.0);
        let q1_6 = q[t1 * DV + 6u];
        var acc1_6 = vec4<f32>(0.0);
        let q1_7 = q[t1 * DV + 7u];
        var acc1_7 = vec4<f32>(0.0);
        let q1_8 = q[t1 * DV + 8u];
        var acc1_8 = vec4<f32>(0.0);
        let q1_9 = q[t1 * DV + 9u];
        var acc1_9 = vec4<f32>(0.0);
        let q1_10 = q[t1 * DV + 10u];
        var acc1_10 = vec4<f32>(0.0);
        let q1_11 = q[t1 * DV + 11u];
        var acc1_11 = vec4<f32>(0.0);
        let q1_12 = q[t1 * DV + 12u];
        var acc1_12 = vec4<f32>(0.0);
        let q1_13 = q[t1 * DV + 13u];
        var acc1_13 = vec4<f32>(0.0);
        let q1_14 = q[t1 * DV + 14u];
        var acc1_14 = vec4<f32>(0.0);
        let q1_15 = q[t1 * DV + 15u];
        var acc1_15 = vec4<f32>(0.0);
        var m1 = F32_LOWEST;
        var l1 = 0.0;
        if first {
            if split_start < params.n_keys {
                m1 = (((fma(q1_0.x, first_0.x, fma(q1_0.y, first_0.y, fma(q1_0.z, first_0.z, fma(q1_0.w, first_0.w, fma(q1_1.x, first_1.x, fma(q1_1.y, first_1.y, fma(q1_1.z, first_1.z, fma(q1_1.w, first_1.w, 0.0)))))))) + fma(q1_2.x, first_2.x, fma(q1_2.y, first_2.y, fma(q1_2.z, first_2.z, fma(q1_2.w, first_2.w, fma(q1_3.x, first_3.x, fma(q1_3.y, first_3.y, fma(q1_3.z, first_3.z, q1_3.w * first_3.w)))))))) + (fma(q1_4.x, first_4.x, fma(q1_4.y, first_4.y, fma(q1_4.z, first_4.z, fma(q1_4.w, first_4.w, fma(q1_5.x, first_5.x, fma(q1_5.y, first_5.y, fma(q1_5.z, first_5.z, q1_5.w * first_5.w))))))) + fma(q1_6.x, first_6.x, fma(q1_6.y, first_6.y, fma(q1_6.z, first_6.z, fma(q1_6.w, first_6.w, fma(q1_7.x, first_7.x, fma(q1_7.y, first_7.y, fma(q1_7.z, first_7.z, q1_7.w * first_7.w))))))))) + ((fma(q1_8.x, first_8.x, fma(q1_8.y, first_8.y, fma(q1_8.z, first_8.z, fma(q1_8.w, first_8.w, fma(q1_9.x, first_9.x, fma(q1_9.y, first_9.y, fma(q1_9.z, first_9.z, q1_9.w * first_9.w))))))) + fma(q1_10.x, first_10.x, fma(q1_10.y, first_10.y, fma(q1_10.z, first_10.z, fma(q1_10.w, first_10.w, fma(q1_11.x, first_11.x, fma(q1_11.y, first_11.y, fma(q1_11.z, first_11.z, q1_11.w * first_11.w)))))))) + (fma(q1_12.x, first_12.x, fma(q1_12.y, first_12.y, fma(q1_12.z, first_12.z, fma(q1_12.w, first_12.w, fma(q1_13.x, first_13.x, fma(q1_13.y, first_13.y, fma(q1_13.z, first_13.z, q1_13.w * first_13.w))))))) + fma(q1_14.x, first_14.x, fma(q1_14.y, first_14.y, fma(q1_14.z, first_14.z, fma(q1_14.w, first_14.w, fma(q1_15.x, first_15.x, fma(q1_15.y, first_15.y, fma(q1_15.z, first_15.z, q1_15.w * first_15.w))))))))));
            }
            } else {
                let ml = ml_state[state0 + min(i1, params.n_queries - 1u)];
                m1 = ml.x;
                l1 = ml.y;
                acc1_0 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 0u];
                acc1_1 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 1u];
                acc1_2 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 2u];
                acc1_3 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 3u];
                acc1_4 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 4u];
                acc1_5 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 5u];
                acc1_6 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 6u];
                acc1_7 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 7u];
                acc1_8 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 8u];
                acc1_9 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 9u];
                acc1_10 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 10u];
                acc1_11 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 11u];
                acc1_12 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 12u];
                acc1_13 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 13u];
                acc1_14 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 14u];
                acc1_15 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 15u];
            }
            var nb1 = -m1;
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
                }
                workgroupBarrier();
                // Keys of this tile each query sees.
                let lim0 = len;
                var tacc0_0 = vec4<f32>(0.0);
                var tacc0_1 = vec4<f32>(0.0);
                var tacc0_2 = vec4<f32>(0.0);
                var tacc0_3 = vec4<f32>(0.0);
                var tacc0_4 = vec4<f32>(0.0);
                var tacc0_5 = vec4<f32>(0.0);
                var tacc0_6 = vec4<f32>(0.0);
                var tacc0_7 = vec4<f32>(0.0);
                var tacc0_8 = vec4<f32>(0.0);
                var tacc0_9 = vec4<f32>(0.0);
                var tacc0_10 = vec4<f32>(0.0);
                var tacc0_11 = vec4<f32>(0.0);
                var tacc0_12 = vec4<f32>(0.0);
                var tacc0_13 = vec4<f32>(0.0);
                var tacc0_14 = vec4<f32>(0.0);
                var tacc0_15 = vec4<f32>(0.0);
                var tl0 = 0.0;
                let lim1 = len;
                var tacc1_0 = vec4<f32>(0.0);
                var tacc1_1 = vec4<f32>(0.0);
                var tacc1_2 = vec4<f32>(0.0);
                var tacc1_3 = vec4<f32>(0.0);
                var tacc1_4 = vec4<f32>(0.0);
                var tacc1_5 = vec4<f32>(0.0);
                var tacc1_6 = vec4<f32>(0.0);
                var tacc1_7 = vec4<f32>(0.0);
                var tacc1_8 = vec4<f32>(0.0);
                var tacc1_9 = vec4<f32>(0.0);
                var tacc1_10 = vec4<f32>(0.0);
                var tacc1_11 = vec4<f32>(0.0);
                var tacc1_12 = vec4<f32>(0.0);
                var tacc1_13 = vec4<f32>(0.0);
                var tacc1_14 = vec4<f32>(0.0);
                var tacc1_15 = vec4<f32>(0.0);
                var tl1 = 0.0;
                if (lim0 == TK) & (lim1 == TK) {
                    for (var kk = 0u; kk < TK; kk += G) {
                        let kb = kk * DV;
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
                        let p0_0 = exp2((((fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, fma(q0_0.z, k0_0.z, fma(q0_0.w, k0_0.w, fma(q0_1.x, k0_1.x, fma(q0_1.y, k0_1.y, fma(q0_1.z, k0_1.z, fma(q0_1.w, k0_1.w, nb0)))))))) + fma(q0_2.x, k0_2.x, fma(q0_2.y, k0_2.y, fma(q0_2.z, k0_2.z, fma(q0_2.w, k0_2.w, fma(q0_3.x, k0_3.x, fma(q0_3.y, k0_3.y, fma(q0_3.z, k0_3.z, q0_3.w * k0_3.w)))))))) + (fma(q0_4.x, k0_4.x, fma(q0_4.y, k0_4.y, fma(q0_4.z, k0_4.z, fma(q0_4.w, k0_4.w, fma(q0_5.x, k0_5.x, fma(q0_5.y, k0_5.y, fma(q0_5.z, k0_5.z, q0_5.w * k0_5.w))))))) + fma(q0_6.x, k0_6.x, fma(q0_6.y, k0_6.y, fma(q0_6.z, k0_6.z, fma(q0_6.w, k0_6.w, fma(q0_7.x, k0_7.x, fma(q0_7.y, k0_7.y, fma(q0_7.z, k0_7.z, q0_7.w * k0_7.w))))))))) + ((fma(q0_8.x, k0_8.x, fma(q0_8.y, k0_8.y, fma(q0_8.z, k0_8.z, fma(q0_8.w, k0_8.w, fma(q0_9.x, k0_9.x, fma(q0_9.y, k0_9.y, fma(q0_9.z, k0_9.z, q0_9.w * k0_9.w))))))) + fma(q0_10.x, k0_10.x, fma(q0_10.y, k0_10.y, fma(q0_10.z, k0_10.z, fma(q0_10.w, k0_10.w, fma(q0_11.x, k0_11.x, fma(q0_11.y, k0_11.y, fma(q0_11.z, k0_11.z, q0_11.w * k0_11.w)))))))) + (fma(q0_12.x, k0_12.x, fma(q0_12.y, k0_12.y, fma(q0_12.z, k0_12.z, fma(q0_12.w, k0_12.w, fma(q0_13.x, k0_13.x, fma(q0_13.y, k0_13.y, fma(q0_13.z, k0_13.z, q0_13.w * k0_13.w))))))) + fma(q0_14.x, k0_14.x, fma(q0_14.y, k0_14.y, fma(q0_14.z, k0_14.z, fma(q0_14.w, k0_14.w, fma(q0_15.x, k0_15.x, fma(q0_15.y, k0_15.y, fma(q0_15.z, k0_15.z, q0_15.w * k0_15.w)))))))))));
                        tacc0_0 = fma(vec4<f32>(p0_0), k0_0, tacc0_0);
                        tacc0_1 = fma(vec4<f32>(p0_0), k0_1, tacc0_1);
                        tacc0_2 = fma(vec4<f32>(p0_0), k0_2, tacc0_2);
                        tacc0_3 = fma(vec4<f32>(p0_0), k0_3, tacc0_3);
                        tacc0_4 = fma(vec4<f32>(p0_0), k0_4, tacc0_4);
                        tacc0_5 = fma(vec4<f32>(p0_0), k0_5, tacc0_5);
                        tacc0_6 = fma(vec4<f32>(p0_0), k0_6, tacc0_6);
                        tacc0_7 = fma(vec4<f32>(p0_0), k0_7, tacc0_7);
                        tacc0_8 = fma(vec4<f32>(p0_0), k0_8, tacc0_8);
                        tacc0_9 = fma(vec4<f32>(p0_0), k0_9, tacc0_9);
                        tacc0_10 = fma(vec4<f32>(p0_0), k0_10, tacc0_10);
                        tacc0_11 = fma(vec4<f32>(p0_0), k0_11, tacc0_11);
                        tacc0_12 = fma(vec4<f32>(p0_0), k0_12, tacc0_12);
                        tacc0_13 = fma(vec4<f32>(p0_0), k0_13, tacc0_13);
                        tacc0_14 = fma(vec4<f32>(p0_0), k0_14, tacc0_14);
                        tacc0_15 = fma(vec4<f32>(p0_0), k0_15, tacc0_15);
                        tl0 += p0_0;
                        let p1_0 = exp2((((fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, fma(q1_0.z, k0_0.z, fma(q1_0.w, k0_0.w, fma(q1_1.x, k0_1.x, fma(q1_1.y, k0_1.y, fma(q1_1.z, k0_1.z, fma(q1_1.w, k0_1.w, nb1)))))))) + fma(q1_2.x, k0_2.x, fma(q1_2.y, k0_2.y, fma(q1_2.z, k0_2.z, fma(q1_2.w, k0_2.w, fma(q1_3.x, k0_3.x, fma(q1_3.y, k0_3.y, fma(q1_3.z, k0_3.z, q1_3.w * k0_3.w)))))))) + (fma(q1_4.x, k0_4.x, fma(q1_4.y, k0_4.y, fma(q1_4.z, k0_4.z, fma(q1_4.w, k0_4.w, fma(q1_5.x, k0_5.x, fma(q1_5.y, k0_5.y, fma(q1_5.z, k0_5.z, q1_5.w * k0_5.w))))))) + fma(q1_6.x, k0_6.x, fma(q1_6.y, k0_6.y, fma(q1_6.z, k0_6.z, fma(q1_6.w, k0_6.w, fma(q1_7.x, k0_7.x, fma(q1_7.y, k0_7.y, fma(q1_7.z, k0_7.z, q1_7.w * k0_7.w))))))))) + ((fma(q1_8.x, k0_8.x, fma(q1_8.y, k0_8.y, fma(q1_8.z, k0_8.z, fma(q1_8.w, k0_8.w, fma(q1_9.x, k0_9.x, fma(q1_9.y, k0_9.y, fma(q1_9.z, k0_9.z, q1_9.w * k0_9.w))))))) + fma(q1_10.x, k0_10.x, fma(q1_10.y, k0_10.y, fma(q1_10.z, k0_10.z, fma(q1_10.w, k0_10.w, fma(q1_11.x, k0_11.x, fma(q1_11.y, k0_11.y, fma(q1_11.z, k0_11.z, q1_11.w * k0_11.w)))))))) + (fma(q1_12.x, k0_12.x, fma(q1_12.y, k0_12.y, fma(q1_12.z, k0_12.z, fma(q1_12.w, k0_12.w, fma(q1_13.x, k0_13.x, fma(q1_13.y, k0_13.y, fma(q1_13.z, k0_13.z, q1_13.w * k0_13.w))))))) + fma(q1_14.x, k0_14.x, fma(q1_14.y, k0_14.y, fma(q1_14.z, k0_14.z, fma(q1_14.w, k0_14.w, fma(q1_15.x, k0_15.x, fma(q1_15.y, k0_15.y, fma(q1_15.z, k0_15.z, q1_15.w * k0_15.w)))))))))));
                        tacc1_0 = fma(vec4<f32>(p1_0), k0_0, tacc1_0);
                        tacc1_1 = fma(vec4<f32>(p1_0), k0_1, tacc1_1);
                        tacc1_2 = fma(vec4<f32>(p1_0), k0_2, tacc1_2);
                        tacc1_3 = fma(vec4<f32>(p1_0), k0_3, tacc1_3);
                        tacc1_4 = fma(vec4<f32>(p1_0), k0_4, tacc1_4);
                        tacc1_5 = fma(vec4<f32>(p1_0), k0_5, tacc1_5);
                        tacc1_6 = fma(vec4<f32>(p1_0), k0_6, tacc1_6);
                        tacc1_7 = fma(vec4<f32>(p1_0), k0_7, tacc1_7);
                        tacc1_8 = fma(vec4<f32>(p1_0), k0_8, tacc1_8);
                        tacc1_9 = fma(vec4<f32>(p1_0), k0_9, tacc1_9);
                        tacc1_10 = fma(vec4<f32>(p1_0), k0_10, tacc1_10);
                        tacc1_11 = fma(vec4<f32>(p1_0), k0_11, tacc1_11);
                        tacc1_12 = fma(vec4<f32>(p1_0), k0_12, tacc1_12);
                        tacc1_13 = fma(vec4<f32>(p1_0), k0_13, tacc1_13);
                        tacc1_14 = fma(vec4<f32>(p1_0), k0_14, tacc1_14);
                        tacc1_15 = fma(vec4<f32>(p1_0), k0_15, tacc1_15);
                        tl1 += p1_0;
                    }
                    } else {
                        let top = lim1;
                        for (var kk = 0u; kk < top; kk += G) {
                            let kb = kk * DV;
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
                            let p0_0 = select(0.0, exp2((((fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, fma(q0_0.z, k0_0.z, fma(q0_0.w, k0_0.w, fma(q0_1.x, k0_1.x, fma(q0_1.y, k0_1.y, fma(q0_1.z, k0_1.z, fma(q0_1.w, k0_1.w, nb0)))))))) + fma(q0_2.x, k0_2.x, fma(q0_2.y, k0_2.y, fma(q0_2.z, k0_2.z, fma(q0_2.w, k0_2.w, fma(q0_3.x, k0_3.x, fma(q0_3.y, k0_3.y, fma(q0_3.z, k0_3.z, q0_3.w * k0_3.w)))))))) + (fma(q0_4.x, k0_4.x, fma(q0_4.y, k0_4.y, fma(q0_4.z, k0_4.z, fma(q0_4.w, k0_4.w, fma(q0_5.x, k0_5.x, fma(q0_5.y, k0_5.y, fma(q0_5.z, k0_5.z, q0_5.w * k0_5.w))))))) + fma(q0_6.x, k0_6.x, fma(q0_6.y, k0_6.y, fma(q0_6.z, k0_6.z, fma(q0_6.w, k0_6.w, fma(q0_7.x, k0_7.x, fma(q0_7.y, k0_7.y, fma(q0_7.z, k0_7.z, q0_7.w * k0_7.w))))))))) + ((fma(q0_8.x, k0_8.x, fma(q0_8.y, k0_8.y, fma(q0_8.z, k0_8.z, fma(q0_8.w, k0_8.w, fma(q0_9.x, k0_9.x, fma(q0_9.y, k0_9.y, fma(q0_9.z, k0_9.z, q0_9.w * k0_9.w))))))) + fma(q0_10.x, k0_10.x, fma(q0_10.y, k0_10.y, fma(q0_10.z, k0_10.z, fma(q0_10.w, k0_10.w, fma(q0_11.x, k0_11.x, fma(q0_11.y, k0_11.y, fma(q0_11.z, k0_11.z, q0_11.w * k0_11.w)))))))) + (fma(q0_12.x, k0_12.x, fma(q0_12.y, k0_12.y, fma(q0_12.z, k0_12.z, fma(q0_12.w, k0_12.w, fma(q0_13.x, k0_13.x, fma(q0_13.y, k0_13.y, fma(q0_13.z, k0_13.z, q0_13.w * k0_13.w))))))) + fma(q0_14.x, k0_14.x, fma(q0_14.y, k0_14.y, fma(q0_14.z, k0_14.z, fma(q0_14.w, k0_14.w, fma(q0_15.x, k0_15.x, fma(q0_15.y, k0_15.y, fma(q0_15.z, k0_15.z, q0_15.w * k0_15.w))))))))))), kk + 0u < lim0);
                            tacc0_0 = fma(vec4<f32>(p0_0), k0_0, tacc0_0);
                            tacc0_1 = fma(vec4<f32>(p0_0), k0_1, tacc0_1);
                            tacc0_2 = fma(vec4<f32>(p0_0), k0_2, tacc0_2);
                            tacc0_3 = fma(vec4<f32>(p0_0), k0_3, tacc0_3);
                            tacc0_4 = fma(vec4<f32>(p0_0), k0_4, tacc0_4);
                            tacc0_5 = fma(vec4<f32>(p0_0), k0_5, tacc0_5);
                            tacc0_6 = fma(vec4<f32>(p0_0), k0_6, tacc0_6);
                            tacc0_7 = fma(vec4<f32>(p0_0), k0_7, tacc0_7);
                            tacc0_8 = fma(vec4<f32>(p0_0), k0_8, tacc0_8);
                            tacc0_9 = fma(vec4<f32>(p0_0), k0_9, tacc0_9);
                            tacc0_10 = fma(vec4<f32>(p0_0), k0_10, tacc0_10);
                            tacc0_11 = fma(vec4<f32>(p0_0), k0_11, tacc0_11);
                            tacc0_12 = fma(vec4<f32>(p0_0), k0_12, tacc0_12);
                            tacc0_13 = fma(vec4<f32>(p0_0), k0_13, tacc0_13);
                            tacc0_14 = fma(vec4<f32>(p0_0), k0_14, tacc0_14);
                            tacc0_15 = fma(vec4<f32>(p0_0), k0_15, tacc0_15);
                            tl0 += p0_0;
                            let p1_0 = select(0.0, exp2((((fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, fma(q1_0.z, k0_0.z, fma(q1_0.w, k0_0.w, fma(q1_1.x, k0_1.x, fma(q1_1.y, k0_1.y, fma(q1_1.z, k0_1.z, fma(q1_1.w, k0_1.w, nb1)))))))) + fma(q1_2.x, k0_2.x, fma(q1_2.y, k0_2.y, fma(q1_2.z, k0_2.z, fma(q1_2.w, k0_2.w, fma(q1_3.x, k0_3.x, fma(q1_3.y, k0_3.y, fma(q1_3.z, k0_3.z, q1_3.w * k0_3.w)))))))) + (fma(q1_4.x, k0_4.x, fma(q1_4.y, k0_4.y, fma(q1_4.z, k0_4.z, fma(q1_4.w, k0_4.w, fma(q1_5.x, k0_5.x, fma(q1_5.y, k0_5.y, fma(q1_5.z, k0_5.z, q1_5.w * k0_5.w))))))) + fma(q1_6.x, k0_6.x, fma(q1_6.y, k0_6.y, fma(q1_6.z, k0_6.z, fma(q1_6.w, k0_6.w, fma(q1_7.x, k0_7.x, fma(q1_7.y, k0_7.y, fma(q1_7.z, k0_7.z, q1_7.w * k0_7.w))))))))) + ((fma(q1_8.x, k0_8.x, fma(q1_8.y, k0_8.y, fma(q1_8.z, k0_8.z, fma(q1_8.w, k0_8.w, fma(q1_9.x, k0_9.x, fma(q1_9.y, k0_9.y, fma(q1_9.z, k0_9.z, q1_9.w * k0_9.w))))))) + fma(q1_10.x, k0_10.x, fma(q1_10.y, k0_10.y, fma(q1_10.z, k0_10.z, fma(q1_10.w, k0_10.w, fma(q1_11.x, k0_11.x, fma(q1_11.y, k0_11.y, fma(q1_11.z, k0_11.z, q1_11.w * k0_11.w)))))))) + (fma(q1_12.x, k0_12.x, fma(q1_12.y, k0_12.y, fma(q1_12.z, k0_12.z, fma(q1_12.w, k0_12.w, fma(q1_13.x, k0_13.x, fma(q1_13.y, k0_13.y, fma(q1_13.z, k0_13.z, q1_13.w * k0_13.w))))))) + fma(q1_14.x, k0_14.x, fma(q1_14.y, k0_14.y, fma(q1_14.z, k0_14.z, fma(q1_14.w, k0_14.w, fma(q1_15.x, k0_15.x, fma(q1_15.y, k0_15.y, fma(q1_15.z, k0_15.z, q1_15.w * k0_15.w))))))))))), kk + 0u < lim1);
                            tacc1_0 = fma(vec4<f32>(p1_0), k0_0, tacc1_0);
                            tacc1_1 = fma(vec4<f32>(p1_0), k0_1, tacc1_1);
                            tacc1_2 = fma(vec4<f32>(p1_0), k0_2, tacc1_2);
                            tacc1_3 = fma(vec4<f32>(p1_0), k0_3, tacc1_3);
                            tacc1_4 = fma(vec4<f32>(p1_0), k0_4, tacc1_4);
                            tacc1_5 = fma(vec4<f32>(p1_0), k0_5, tacc1_5);
                            tacc1_6 = fma(vec4<f32>(p1_0), k0_6, tacc1_6);
                            tacc1_7 = fma(vec4<f32>(p1_0), k0_7, tacc1_7);
                            tacc1_8 = fma(vec4<f32>(p1_0), k0_8, tacc1_8);
                            tacc1_9 = fma(vec4<f32>(p1_0), k0_9, tacc1_9);
                            tacc1_10 = fma(vec4<f32>(p1_0), k0_10, tacc1_10);
                            tacc1_11 = fma(vec4<f32>(p1_0), k0_11, tacc1_11);
                            tacc1_12 = fma(vec4<f32>(p1_0), k0_12, tacc1_12);
                            tacc1_13 = fma(vec4<f32>(p1_0), k0_13, tacc1_13);
                            tacc1_14 = fma(vec4<f32>(p1_0), k0_14, tacc1_14);
                            tacc1_15 = fma(vec4<f32>(p1_0), k0_15, tacc1_15);
                            tl1 += p1_0;
                        }
                    }
                    // A term beyond 2^64 (or an overflow): redo the tile with its exact maximum.
                    if !(tl0 <= 1.8446744e19) {
                        var top = F32_LOWEST;
                        for (var kk = 0u; kk < lim0; kk++) {
                            let kv_0 = tile[kk * DV + 0u];
                            let kv_1 = tile[kk * DV + 1u];
                            let kv_2 = tile[kk * DV + 2u];
                            let kv_3 = tile[kk * DV + 3u];
                            let kv_4 = tile[kk * DV + 4u];
                            let kv_5 = tile[kk * DV + 5u];
                            let kv_6 = tile[kk * DV + 6u];
                            let kv_7 = tile[kk * DV + 7u];
                            let kv_8 = tile[kk * DV + 8u];
                            let kv_9 = tile[kk * DV + 9u];
                            let kv_10 = tile[kk * DV + 10u];
                            let kv_11 = tile[kk * DV + 11u];
                            let kv_12 = tile[kk * DV + 12u];
                            let kv_13 = tile[kk * DV + 13u];
                            let kv_14 = tile[kk * DV + 14u];
                            let kv_15 = tile[kk * DV + 15u];
                            let s = (((fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, fma(q0_0.z, kv_0.z, fma(q0_0.w, kv_0.w, fma(q0_1.x, kv_1.x, fma(q0_1.y, kv_1.y, fma(q0_1.z, kv_1.z, fma(q0_1.w, kv_1.w, nb0)))))))) + fma(q0_2.x, kv_2.x, fma(q0_2.y, kv_2.y, fma(q0_2.z, kv_2.z, fma(q0_2.w, kv_2.w, fma(q0_3.x, kv_3.x, fma(q0_3.y, kv_3.y, fma(q0_3.z, kv_3.z, q0_3.w * kv_3.w)))))))) + (fma(q0_4.x, kv_4.x, fma(q0_4.y, kv_4.y, fma(q0_4.z, kv_4.z, fma(q0_4.w, kv_4.w, fma(q0_5.x, kv_5.x, fma(q0_5.y, kv_5.y, fma(q0_5.z, kv_5.z, q0_5.w * kv_5.w))))))) + fma(q0_6.x, kv_6.x, fma(q0_6.y, kv_6.y, fma(q0_6.z, kv_6.z, fma(q0_6.w, kv_6.w, fma(q0_7.x, kv_7.x, fma(q0_7.y, kv_7.y, fma(q0_7.z, kv_7.z, q0_7.w * kv_7.w))))))))) + ((fma(q0_8.x, kv_8.x, fma(q0_8.y, kv_8.y, fma(q0_8.z, kv_8.z, fma(q0_8.w, kv_8.w, fma(q0_9.x, kv_9.x, fma(q0_9.y, kv_9.y, fma(q0_9.z, kv_9.z, q0_9.w * kv_9.w))))))) + fma(q0_10.x, kv_10.x, fma(q0_10.y, kv_10.y, fma(q0_10.z, kv_10.z, fma(q0_10.w, kv_10.w, fma(q0_11.x, kv_11.x, fma(q0_11.y, kv_11.y, fma(q0_11.z, kv_11.z, q0_11.w * kv_11.w)))))))) + (fma(q0_12.x, kv_12.x, fma(q0_12.y, kv_12.y, fma(q0_12.z, kv_12.z, fma(q0_12.w, kv_12.w, fma(q0_13.x, kv_13.x, fma(q0_13.y, kv_13.y, fma(q0_13.z, kv_13.z, q0_13.w * kv_13.w))))))) + fma(q0_14.x, kv_14.x, fma(q0_14.y, kv_14.y, fma(q0_14.z, kv_14.z, fma(q0_14.w, kv_14.w, fma(q0_15.x, kv_15.x, fma(q0_15.y, kv_15.y, fma(q0_15.z, kv_15.z, q0_15.w * kv_15.w))))))))));
                            top = max(top, s);
                        }
                        let delta = max(top, 0.0);
                        m0 += delta;
                        nb0 -= delta;
                        let shrink = exp2(-delta);
                        acc0_0 *= shrink;
                        tacc0_0 = vec4<f32>(0.0);
                        acc0_1 *= shrink;
                        tacc0_1 = vec4<f32>(0.0);
                        acc0_2 *= shrink;
                        tacc0_2 = vec4<f32>(0.0);
                        acc0_3 *= shrink;
                        tacc0_3 = vec4<f32>(0.0);
                        acc0_4 *= shrink;
                        tacc0_4 = vec4<f32>(0.0);
                        acc0_5 *= shrink;
                        tacc0_5 = vec4<f32>(0.0);
                        acc0_6 *= shrink;
                        tacc0_6 = vec4<f32>(0.0);
                        acc0_7 *= shrink;
                        tacc0_7 = vec4<f32>(0.0);
                        acc0_8 *= shrink;
                        tacc0_8 = vec4<f32>(0.0);
                        acc0_9 *= shrink;
                        tacc0_9 = vec4<f32>(0.0);
                        acc0_10 *= shrink;
                        tacc0_10 = vec4<f32>(0.0);
                        acc0_11 *= shrink;
                        tacc0_11 = vec4<f32>(0.0);
                        acc0_12 *= shrink;
                        tacc0_12 = vec4<f32>(0.0);
                        acc0_13 *= shrink;
                        tacc0_13 = vec4<f32>(0.0);
                        acc0_14 *= shrink;
                        tacc0_14 = vec4<f32>(0.0);
                        acc0_15 *= shrink;
                        tacc0_15 = vec4<f32>(0.0);
                        l0 *= shrink;
                        tl0 = 0.0;
                        for (var kk = 0u; kk < lim0; kk++) {
                            let kv_0 = tile[kk * DV + 0u];
                            let kv_1 = tile[kk * DV + 1u];
                            let kv_2 = tile[kk * DV + 2u];
                            let kv_3 = tile[kk * DV + 3u];
                            let kv_4 = tile[kk * DV + 4u];
                            let kv_5 = tile[kk * DV + 5u];
                            let kv_6 = tile[kk * DV + 6u];
                            let kv_7 = tile[kk * DV + 7u];
                            let kv_8 = tile[kk * DV + 8u];
                            let kv_9 = tile[kk * DV + 9u];
                            let kv_10 = tile[kk * DV + 10u];
                            let kv_11 = tile[kk * DV + 11u];
                            let kv_12 = tile[kk * DV + 12u];
                            let kv_13 = tile[kk * DV + 13u];
                            let kv_14 = tile[kk * DV + 14u];
                            let kv_15 = tile[kk * DV + 15u];
                            let s = (((fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, fma(q0_0.z, kv_0.z, fma(q0_0.w, kv_0.w, fma(q0_1.x, kv_1.x, fma(q0_1.y, kv_1.y, fma(q0_1.z, kv_1.z, fma(q0_1.w, kv_1.w, nb0)))))))) + fma(q0_2.x, kv_2.x, fma(q0_2.y, kv_2.y, fma(q0_2.z, kv_2.z, fma(q0_2.w, kv_2.w, fma(q0_3.x, kv_3.x, fma(q0_3.y, kv_3.y, fma(q0_3.z, kv_3.z, q0_3.w * kv_3.w)))))))) + (fma(q0_4.x, kv_4.x, fma(q0_4.y, kv_4.y, fma(q0_4.z, kv_4.z, fma(q0_4.w, kv_4.w, fma(q0_5.x, kv_5.x, fma(q0_5.y, kv_5.y, fma(q0_5.z, kv_5.z, q0_5.w * kv_5.w))))))) + fma(q0_6.x, kv_6.x, fma(q0_6.y, kv_6.y, fma(q0_6.z, kv_6.z, fma(q0_6.w, kv_6.w, fma(q0_7.x, kv_7.x, fma(q0_7.y, kv_7.y, fma(q0_7.z, kv_7.z, q0_7.w * kv_7.w))))))))) + ((fma(q0_8.x, kv_8.x, fma(q0_8.y, kv_8.y, fma(q0_8.z, kv_8.z, fma(q0_8.w, kv_8.w, fma(q0_9.x, kv_9.x, fma(q0_9.y, kv_9.y, fma(q0_9.z, kv_9.z, q0_9.w * kv_9.w))))))) + fma(q0_10.x, kv_10.x, fma(q0_10.y, kv_10.y, fma(q0_10.z, kv_10.z, fma(q0_10.w, kv_10.w, fma(q0_11.x, kv_11.x, fma(q0_11.y, kv_11.y, fma(q0_11.z, kv_11.z, q0_11.w * kv_11.w)))))))) + (fma(q0_12.x, kv_12.x, fma(q0_12.y, kv_12.y, fma(q0_12.z, kv_12.z, fma(q0_12.w, kv_12.w, fma(q0_13.x, kv_13.x, fma(q0_13.y, kv_13.y, fma(q0_13.z, kv_13.z, q0_13.w * kv_13.w))))))) + fma(q0_14.x, kv_14.x, fma(q0_14.y, kv_14.y, fma(q0_14.z, kv_14.z, fma(q0_14.w, kv_14.w, fma(q0_15.x, kv_15.x, fma(q0_15.y, kv_15.y, fma(q0_15.z, kv_15.z, q0_15.w * kv_15.w))))))))));
                            let p = exp2(s);
                            tacc0_0 = fma(vec4<f32>(p), kv_0, tacc0_0);
                            tacc0_1 = fma(vec4<f32>(p), kv_1, tacc0_1);
                            tacc0_2 = fma(vec4<f32>(p), kv_2, tacc0_2);
                            tacc0_3 = fma(vec4<f32>(p), kv_3, tacc0_3);
                            tacc0_4 = fma(vec4<f32>(p), kv_4, tacc0_4);
                            tacc0_5 = fma(vec4<f32>(p), kv_5, tacc0_5);
                            tacc0_6 = fma(vec4<f32>(p), kv_6, tacc0_6);
                            tacc0_7 = fma(vec4<f32>(p), kv_7, tacc0_7);
                            tacc0_8 = fma(vec4<f32>(p), kv_8, tacc0_8);
                            tacc0_9 = fma(vec4<f32>(p), kv_9, tacc0_9);
                            tacc0_10 = fma(vec4<f32>(p), kv_10, tacc0_10);
                            tacc0_11 = fma(vec4<f32>(p), kv_11, tacc0_11);
                            tacc0_12 = fma(vec4<f32>(p), kv_12, tacc0_12);
                            tacc0_13 = fma(vec4<f32>(p), kv_13, tacc0_13);
                            tacc0_14 = fma(vec4<f32>(p), kv_14, tacc0_14);
                            tacc0_15 = fma(vec4<f32>(p), kv_15, tacc0_15);
                            tl0 += p;
                        }
                    }
                    acc0_0 += tacc0_0;
                    acc0_1 += tacc0_1;
                    acc0_2 += tacc0_2;
                    acc0_3 += tacc0_3;
                    acc0_4 += tacc0_4;
                    acc0_5 += tacc0_5;
                    acc0_6 += tacc0_6;
                    acc0_7 += tacc0_7;
                    acc0_8 += tacc0_8;
                    acc0_9 += tacc0_9;
                    acc0_10 += tacc0_10;
                    acc0_11 += tacc0_11;
                    acc0_12 += tacc0_12;
                    acc0_13 += tacc0_13;
                    acc0_14 += tacc0_14;
                    acc0_15 += tacc0_15;
                    l0 += tl0;
                    if !(tl1 <= 1.8446744e19) {
                        var top = F32_LOWEST;
                        for (var kk = 0u; kk < lim1; kk++) {
                            let kv_0 = tile[kk * DV + 0u];
                            let kv_1 = tile[kk * DV + 1u];
                            let kv_2 = tile[kk * DV + 2u];
                            let kv_3 = tile[kk * DV + 3u];
                            let kv_4 = tile[kk * DV + 4u];
                            let kv_5 = tile[kk * DV + 5u];
                            let kv_6 = tile[kk * DV + 6u];
                            let kv_7 = tile[kk * DV + 7u];
                            let kv_8 = tile[kk * DV + 8u];
                            let kv_9 = tile[kk * DV + 9u];
                            let kv_10 = tile[kk * DV + 10u];
                            let kv_11 = tile[kk * DV + 11u];
                            let kv_12 = tile[kk * DV + 12u];
                            let kv_13 = tile[kk * DV + 13u];
                            let kv_14 = tile[kk * DV + 14u];
                            let kv_15 = tile[kk * DV + 15u];
                            let s = (((fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, fma(q1_0.z, kv_0.z, fma(q1_0.w, kv_0.w, fma(q1_1.x, kv_1.x, fma(q1_1.y, kv_1.y, fma(q1_1.z, kv_1.z, fma(q1_1.w, kv_1.w, nb1)))))))) + fma(q1_2.x, kv_2.x, fma(q1_2.y, kv_2.y, fma(q1_2.z, kv_2.z, fma(q1_2.w, kv_2.w, fma(q1_3.x, kv_3.x, fma(q1_3.y, kv_3.y, fma(q1_3.z, kv_3.z, q1_3.w * kv_3.w)))))))) + (fma(q1_4.x, kv_4.x, fma(q1_4.y, kv_4.y, fma(q1_4.z, kv_4.z, fma(q1_4.w, kv_4.w, fma(q1_5.x, kv_5.x, fma(q1_5.y, kv_5.y, fma(q1_5.z, kv_5.z, q1_5.w * kv_5.w))))))) + fma(q1_6.x, kv_6.x, fma(q1_6.y, kv_6.y, fma(q1_6.z, kv_6.z, fma(q1_6.w, kv_6.w, fma(q1_7.x, kv_7.x, fma(q1_7.y, kv_7.y, fma(q1_7.z, kv_7.z, q1_7.w * kv_7.w))))))))) + ((fma(q1_8.x, kv_8.x, fma(q1_8.y, kv_8.y, fma(q1_8.z, kv_8.z, fma(q1_8.w, kv_8.w, fma(q1_9.x, kv_9.x, fma(q1_9.y, kv_9.y, fma(q1_9.z, kv_9.z, q1_9.w * kv_9.w))))))) + fma(q1_10.x, kv_10.x, fma(q1_10.y, kv_10.y, fma(q1_10.z, kv_10.z, fma(q1_10.w, kv_10.w, fma(q1_11.x, kv_11.x, fma(q1_11.y, kv_11.y, fma(q1_11.z, kv_11.z, q1_11.w * kv_11.w)))))))) + (fma(q1_12.x, kv_12.x, fma(q1_12.y, kv_12.y, fma(q1_12.z, kv_12.z, fma(q1_12.w, kv_12.w, fma(q1_13.x, kv_13.x, fma(q1_13.y, kv_13.y, fma(q1_13.z, kv_13.z, q1_13.w * kv_13.w))))))) + fma(q1_14.x, kv_14.x, fma(q1_14.y, kv_14.y, fma(q1_14.z, kv_14.z, fma(q1_14.w, kv_14.w, fma(q1_15.x, kv_15.x, fma(q1_15.y, kv_15.y, fma(q1_15.z, kv_15.z, q1_15.w * kv_15.w))))))))));
                            top = max(top, s);
                        }
                        let delta = max(top, 0.0);
                        m1 += delta;
                        nb1 -= delta;
                        let shrink = exp2(-delta);
                        acc1_0 *= shrink;
                        tacc1_0 = vec4<f32>(0.0);
                        acc1_1 *= shrink;
                        tacc1_1 = vec4<f32>(0.0);
                        acc1_2 *= shrink;
                        tacc1_2 = vec4<f32>(0.0);
                        acc1_3 *= shrink;
                        tacc1_3 = vec4<f32>(0.0);
                        acc1_4 *= shrink;
                        tacc1_4 = vec4<f32>(0.0);
                        acc1_5 *= shrink;
                        tacc1_5 = vec4<f32>(0.0);
                        acc1_6 *= shrink;
                        tacc1_6 = vec4<f32>(0.0);
                        acc1_7 *= shrink;
                        tacc1_7 = vec4<f32>(0.0);
                        acc1_8 *= shrink;
                        tacc1_8 = vec4<f32>(0.0);
                        acc1_9 *= shrink;
                        tacc1_9 = vec4<f32>(0.0);
                        acc1_10 *= shrink;
                        tacc1_10 = vec4<f32>(0.0);
                        acc1_11 *= shrink;
                        tacc1_11 = vec4<f32>(0.0);
                        acc1_12 *= shrink;
                        tacc1_12 = vec4<f32>(0.0);
                        acc1_13 *= shrink;
                        tacc1_13 = vec4<f32>(0.0);
                        acc1_14 *= shrink;
                        tacc1_14 = vec4<f32>(0.0);
                        acc1_15 *= shrink;
                        tacc1_15 = vec4<f32>(0.0);
                        l1 *= shrink;
                        tl1 = 0.0;
                        for (var kk = 0u; kk < lim1; kk++) {
                            let kv_0 = tile[kk * DV + 0u];
                            let kv_1 = tile[kk * DV + 1u];
                            let kv_2 = tile[kk * DV + 2u];
                            let kv_3 = tile[kk * DV + 3u];
                            let kv_4 = tile[kk * DV + 4u];
                            let kv_5 = tile[kk * DV + 5u];
                            let kv_6 = tile[kk * DV + 6u];
                            let kv_7 = tile[kk * DV + 7u];
                            let kv_8 = tile[kk * DV + 8u];
                            let kv_9 = tile[kk * DV + 9u];
                            let kv_10 = tile[kk * DV + 10u];
                            let kv_11 = tile[kk * DV + 11u];
                            let kv_12 = tile[kk * DV + 12u];
                            let kv_13 = tile[kk * DV + 13u];
                            let kv_14 = tile[kk * DV + 14u];
                            let kv_15 = tile[kk * DV + 15u];
                            let s = (((fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, fma(q1_0.z, kv_0.z, fma(q1_0.w, kv_0.w, fma(q1_1.x, kv_1.x, fma(q1_1.y, kv_1.y, fma(q1_1.z, kv_1.z, fma(q1_1.w, kv_1.w, nb1)))))))) + fma(q1_2.x, kv_2.x, fma(q1_2.y, kv_2.y, fma(q1_2.z, kv_2.z, fma(q1_2.w, kv_2.w, fma(q1_3.x, kv_3.x, fma(q1_3.y, kv_3.y, fma(q1_3.z, kv_3.z, q1_3.w * kv_3.w)))))))) + (fma(q1_4.x, kv_4.x, fma(q1_4.y, kv_4.y, fma(q1_4.z, kv_4.z, fma(q1_4.w, kv_4.w, fma(q1_5.x, kv_5.x, fma(q1_5.y, kv_5.y, fma(q1_5.z, kv_5.z, q1_5.w * kv_5.w))))))) + fma(q1_6.x, kv_6.x, fma(q1_6.y, kv_6.y, fma(q1_6.z, kv_6.z, fma(q1_6.w, kv_6.w, fma(q1_7.x, kv_7.x, fma(q1_7.y, kv_7.y, fma(q1_7.z, kv_7.z, q1_7.w * kv_7.w))))))))) + ((fma(q1_8.x, kv_8.x, fma(q1_8.y, kv_8.y, fma(q1_8.z, kv_8.z, fma(q1_8.w, kv_8.w, fma(q1_9.x, kv_9.x, fma(q1_9.y, kv_9.y, fma(q1_9.z, kv_9.z, q1_9.w * kv_9.w))))))) + fma(q1_10.x, kv_10.x, fma(q1_10.y, kv_10.y, fma(q1_10.z, kv_10.z, fma(q1_10.w, kv_10.w, fma(q1_11.x, kv_11.x, fma(q1_11.y, kv_11.y, fma(q1_11.z, kv_11.z, q1_11.w * kv_11.w)))))))) + (fma(q1_12.x, kv_12.x, fma(q1_12.y, kv_12.y, fma(q1_12.z, kv_12.z, fma(q1_12.w, kv_12.w, fma(q1_13.x, kv_13.x, fma(q1_13.y, kv_13.y, fma(q1_13.z, kv_13.z, q1_13.w * kv_13.w))))))) + fma(q1_14.x, kv_14.x, fma(q1_14.y, kv_14.y, fma(q1_14.z, kv_14.z, fma(q1_14.w, kv_14.w, fma(q1_15.x, kv_15.x, fma(q1_15.y, kv_15.y, fma(q1_15.z, kv_15.z, q1_15.w * kv_15.w))))))))));
                            let p = exp2(s);
                            tacc1_0 = fma(vec4<f32>(p), kv_0, tacc1_0);
                            tacc1_1 = fma(vec4<f32>(p), kv_1, tacc1_1);
                            tacc1_2 = fma(vec4<f32>(p), kv_2, tacc1_2);
                            tacc1_3 = fma(vec4<f32>(p), kv_3, tacc1_3);
                            tacc1_4 = fma(vec4<f32>(p), kv_4, tacc1_4);
                            tacc1_5 = fma(vec4<f32>(p), kv_5, tacc1_5);
                            tacc1_6 = fma(vec4<f32>(p), kv_6, tacc1_6);
                            tacc1_7 = fma(vec4<f32>(p), kv_7, tacc1_7);
                            tacc1_8 = fma(vec4<f32>(p), kv_8, tacc1_8);
                            tacc1_9 = fma(vec4<f32>(p), kv_9, tacc1_9);
                            tacc1_10 = fma(vec4<f32>(p), kv_10, tacc1_10);
                            tacc1_11 = fma(vec4<f32>(p), kv_11, tacc1_11);
                            tacc1_12 = fma(vec4<f32>(p), kv_12, tacc1_12);
                            tacc1_13 = fma(vec4<f32>(p), kv_13, tacc1_13);
                            tacc1_14 = fma(vec4<f32>(p), kv_14, tacc1_14);
                            tacc1_15 = fma(vec4<f32>(p), kv_15, tacc1_15);
                            tl1 += p;
                        }
                    }
                    acc1_0 += tacc1_0;
                    acc1_1 += tacc1_1;
                    acc1_2 += tacc1_2;
                    acc1_3 += tacc1_3;
                    acc1_4 += tacc1_4;
                    acc1_5 += tacc1_5;
                    acc1_6 += tacc1_6;
                    acc1_7 += tacc1_7;
                    acc1_8 += tacc1_8;
                    acc1_9 += tacc1_9;
                    acc1_10 += tacc1_10;
                    acc1_11 += tacc1_11;
                    acc1_12 += tacc1_12;
                    acc1_13 += tacc1_13;
                    acc1_14 += tacc1_14;
                    acc1_15 += tacc1_15;
                    l1 += tl1;
                    start += TK;
                }
                if ok0 {
                    let s = state0 + i0;
                    ml_state[s] = vec2<f32>(m0, l0);
                    acc_state[s * DV + 0u] = acc0_0;
                    acc_state[s * DV + 1u] = acc0_1;
                    acc_state[s * DV + 2u] = acc0_2;
                    acc_state[s * DV + 3u] = acc0_3;
                    acc_state[s * DV + 4u] = acc0_4;
                    acc_state[s * DV + 5u] = acc0_5;
                    acc_state[s * DV + 6u] = acc0_6;
                    acc_state[s * DV + 7u] = acc0_7;
                    acc_state[s * DV + 8u] = acc0_8;
                    acc_state[s * DV + 9u] = acc0_9;
                    acc_state[s * DV + 10u] = acc0_10;
                    acc_state[s * DV + 11u] = acc0_11;
                    acc_state[s * DV + 12u] = acc0_12;
                    acc_state[s * DV + 13u] = acc0_13;
                    acc_state[s * DV + 14u] = acc0_14;
                    acc_state[s * DV + 15u] = acc0_15;
                }
                if ok1 {
                    let s = state0 + i1;
                    ml_state[s] = vec2<f32>(m1, l1);
                    acc_state[s * DV + 0u] = acc1_0;
                    acc_state[s * DV + 1u] = acc1_1;
                    acc_state[s * DV + 2u] = acc1_2;
                    acc_state[s * DV + 3u] = acc1_3;
                    acc_state[s * DV + 4u] = acc1_4;
                    acc_state[s * DV + 5u] = acc1_5;
                    acc_state[s * DV + 6u] = acc1_6;
                    acc_state[s * DV + 7u] = acc1_7;
                    acc_state[s * DV + 8u] = acc1_8;
                    acc_state[s * DV + 9u] = acc1_9;
                    acc_state[s * DV + 10u] = acc1_10;
                    acc_state[s * DV + 11u] = acc1_11;
                    acc_state[s * DV + 12u] = acc1_12;
                    acc_state[s * DV + 13u] = acc1_13;
                    acc_state[s * DV + 14u] = acc1_14;
                    acc_state[s * DV + 15u] = acc1_15;
                }
            }
