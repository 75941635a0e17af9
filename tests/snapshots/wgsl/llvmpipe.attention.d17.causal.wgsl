// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 17u;
const DV: u32 = 5u;
const WG: u32 = 64u;
const TK: u32 = 256u;
const TILE_VECS: u32 = 1280u;
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
    // Causal: no query of this workgroup sees keys past its last query.
    key_end = min(key_end, q0 + QB);
    let key_base = system * params.n_keys;
    let first = chunk.first != 0u;
    let state0 = split * params.batch * params.n_queries + system * params.n_queries;
    let alibi2 = params.alibi_slope * LOG2E;
    // The split's first key: the running maximum starts at its score.
    let first_0 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 1u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 2u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 3u]);
    let first_1 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 4u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 5u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 6u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 7u]);
    let first_2 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 8u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 9u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 10u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 11u]);
    let first_3 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 12u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 13u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 14u], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 15u]);
    let first_4 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 16u], 0.0, 0.0, 0.0).x;
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
    let q0_4 = q[t0 * DV + 4u].x;
    var acc0_4 = f32(0.0);
    var m0 = F32_LOWEST;
    var l0 = 0.0;
    if first {
        if (split_start <= i0) & (split_start < params.n_keys) {
            m0 = ((fma(q0_0.x, first_0.x, fma(q0_0.y, first_0.y, fma(q0_0.z, first_0.z, fma(q0_0.w, first_0.w, fma(q0_1.x, first_1.x, fma(q0_1.y, first_1.y, fma(q0_1.z, first_1.z, fma(q0_1.w, first_1.w, 0.0)))))))) + fma(q0_2.x, first_2.x, fma(q0_2.y, first_2.y, fma(q0_2.z, first_2.z, fma(q0_2.w, first_2.w, fma(q0_3.x, first_3.x, fma(q0_3.y, first_3.y, fma(q0_3.z, first_3.z, q0_3.w * first_3.w)))))))) + q0_4 * first_4) - alibi2 * f32(i0 - split_start);
        }
        } else {
            let ml = ml_state[state0 + min(i0, params.n_queries - 1u)];
            m0 = ml.x;
            l0 = ml.y;
            acc0_0 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 0u];
            acc0_1 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 1u];
            acc0_2 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 2u];
            acc0_3 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 3u];
            acc0_4 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 4u].x;
        }
        var nb0 = -(m0 + alibi2 * f32(i0));
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
        let q1_4 = q[t1 * DV + 4u].x;
        var acc1_4 = f32(0.0);
        var m1 = F32_LOWEST;
        var l1 = 0.0;
        if first {
            if (split_start <= i1) & (split_start < params.n_keys) {
                m1 = ((fma(q1_0.x, first_0.x, fma(q1_0.y, first_0.y, fma(q1_0.z, first_0.z, fma(q1_0.w, first_0.w, fma(q1_1.x, first_1.x, fma(q1_1.y, first_1.y, fma(q1_1.z, first_1.z, fma(q1_1.w, first_1.w, 0.0)))))))) + fma(q1_2.x, first_2.x, fma(q1_2.y, first_2.y, fma(q1_2.z, first_2.z, fma(q1_2.w, first_2.w, fma(q1_3.x, first_3.x, fma(q1_3.y, first_3.y, fma(q1_3.z, first_3.z, q1_3.w * first_3.w)))))))) + q1_4 * first_4) - alibi2 * f32(i1 - split_start);
            }
            } else {
                let ml = ml_state[state0 + min(i1, params.n_queries - 1u)];
                m1 = ml.x;
                l1 = ml.y;
                acc1_0 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 0u];
                acc1_1 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 1u];
                acc1_2 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 2u];
                acc1_3 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 3u];
                acc1_4 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 4u].x;
            }
            var nb1 = -(m1 + alibi2 * f32(i1));
            let i2 = q0 + lid.x + 128u;
            let ok2 = i2 < params.n_queries;
            let t2 = system * params.n_queries + min(i2, params.n_queries - 1u);
            let q2_0 = q[t2 * DV + 0u];
            var acc2_0 = vec4<f32>(0.0);
            let q2_1 = q[t2 * DV + 1u];
            var acc2_1 = vec4<f32>(0.0);
            let q2_2 = q[t2 * DV + 2u];
            var acc2_2 = vec4<f32>(0.0);
            let q2_3 = q[t2 * DV + 3u];
            var acc2_3 = vec4<f32>(0.0);
            let q2_4 = q[t2 * DV + 4u].x;
            var acc2_4 = f32(0.0);
            var m2 = F32_LOWEST;
            var l2 = 0.0;
            if first {
                if (split_start <= i2) & (split_start < params.n_keys) {
                    m2 = ((fma(q2_0.x, first_0.x, fma(q2_0.y, first_0.y, fma(q2_0.z, first_0.z, fma(q2_0.w, first_0.w, fma(q2_1.x, first_1.x, fma(q2_1.y, first_1.y, fma(q2_1.z, first_1.z, fma(q2_1.w, first_1.w, 0.0)))))))) + fma(q2_2.x, first_2.x, fma(q2_2.y, first_2.y, fma(q2_2.z, first_2.z, fma(q2_2.w, first_2.w, fma(q2_3.x, first_3.x, fma(q2_3.y, first_3.y, fma(q2_3.z, first_3.z, q2_3.w * first_3.w)))))))) + q2_4 * first_4) - alibi2 * f32(i2 - split_start);
                }
                } else {
                    let ml = ml_state[state0 + min(i2, params.n_queries - 1u)];
                    m2 = ml.x;
                    l2 = ml.y;
                    acc2_0 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 0u];
                    acc2_1 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 1u];
                    acc2_2 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 2u];
                    acc2_3 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 3u];
                    acc2_4 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 4u].x;
                }
                var nb2 = -(m2 + alibi2 * f32(i2));
                let i3 = q0 + lid.x + 192u;
                let ok3 = i3 < params.n_queries;
                let t3 = system * params.n_queries + min(i3, params.n_queries - 1u);
                let q3_0 = q[t3 * DV + 0u];
                var acc3_0 = vec4<f32>(0.0);
                let q3_1 = q[t3 * DV + 1u];
                var acc3_1 = vec4<f32>(0.0);
                let q3_2 = q[t3 * DV + 2u];
                var acc3_2 = vec4<f32>(0.0);
                let q3_3 = q[t3 * DV + 3u];
                var acc3_3 = vec4<f32>(0.0);
                let q3_4 = q[t3 * DV + 4u].x;
                var acc3_4 = f32(0.0);
                var m3 = F32_LOWEST;
                var l3 = 0.0;
                if first {
                    if (split_start <= i3) & (split_start < params.n_keys) {
                        m3 = ((fma(q3_0.x, first_0.x, fma(q3_0.y, first_0.y, fma(q3_0.z, first_0.z, fma(q3_0.w, first_0.w, fma(q3_1.x, first_1.x, fma(q3_1.y, first_1.y, fma(q3_1.z, first_1.z, fma(q3_1.w, first_1.w, 0.0)))))))) + fma(q3_2.x, first_2.x, fma(q3_2.y, first_2.y, fma(q3_2.z, first_2.z, fma(q3_2.w, first_2.w, fma(q3_3.x, first_3.x, fma(q3_3.y, first_3.y, fma(q3_3.z, first_3.z, q3_3.w * first_3.w)))))))) + q3_4 * first_4) - alibi2 * f32(i3 - split_start);
                    }
                    } else {
                        let ml = ml_state[state0 + min(i3, params.n_queries - 1u)];
                        m3 = ml.x;
                        l3 = ml.y;
                        acc3_0 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 0u];
                        acc3_1 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 1u];
                        acc3_2 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 2u];
                        acc3_3 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 3u];
                        acc3_4 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 4u].x;
                    }
                    var nb3 = -(m3 + alibi2 * f32(i3));
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
                            if e < len {
                                let o = (key_base + start + e) * D;
                                key_0 = vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]);
                                key_1 = vec4<f32>(x[o + 4u], x[o + 5u], x[o + 6u], x[o + 7u]);
                                key_2 = vec4<f32>(x[o + 8u], x[o + 9u], x[o + 10u], x[o + 11u]);
                                key_3 = vec4<f32>(x[o + 12u], x[o + 13u], x[o + 14u], x[o + 15u]);
                                key_4 = vec4<f32>(x[o + 16u], 0.0, 0.0, 0.0);
                            }
                            tile[e * DV + 0u] = key_0;
                            tile[e * DV + 1u] = key_1;
                            tile[e * DV + 2u] = key_2;
                            tile[e * DV + 3u] = key_3;
                            tile[e * DV + 4u] = key_4;
                        }
                        workgroupBarrier();
                        // Keys of this tile each query sees.
                        let lim0 = select(0u, min(len, i0 + 1u - start), i0 >= start);
                        var tacc0_0 = vec4<f32>(0.0);
                        var tacc0_1 = vec4<f32>(0.0);
                        var tacc0_2 = vec4<f32>(0.0);
                        var tacc0_3 = vec4<f32>(0.0);
                        var tacc0_4 = f32(0.0);
                        var tl0 = 0.0;
                        let lim1 = select(0u, min(len, i1 + 1u - start), i1 >= start);
                        var tacc1_0 = vec4<f32>(0.0);
                        var tacc1_1 = vec4<f32>(0.0);
                        var tacc1_2 = vec4<f32>(0.0);
                        var tacc1_3 = vec4<f32>(0.0);
                        var tacc1_4 = f32(0.0);
                        var tl1 = 0.0;
                        let lim2 = select(0u, min(len, i2 + 1u - start), i2 >= start);
                        var tacc2_0 = vec4<f32>(0.0);
                        var tacc2_1 = vec4<f32>(0.0);
                        var tacc2_2 = vec4<f32>(0.0);
                        var tacc2_3 = vec4<f32>(0.0);
                        var tacc2_4 = f32(0.0);
                        var tl2 = 0.0;
                        let lim3 = select(0u, min(len, i3 + 1u - start), i3 >= start);
                        var tacc3_0 = vec4<f32>(0.0);
                        var tacc3_1 = vec4<f32>(0.0);
                        var tacc3_2 = vec4<f32>(0.0);
                        var tacc3_3 = vec4<f32>(0.0);
                        var tacc3_4 = f32(0.0);
                        var tl3 = 0.0;
                        if (lim0 == TK) & (lim1 == TK) & (lim2 == TK) & (lim3 == TK) {
                            for (var kk = 0u; kk < TK; kk += G) {
                                let kb = kk * DV;
                                let k0_0 = tile[kb];
                                let k0_1 = tile[kb + 1u];
                                let k0_2 = tile[kb + 2u];
                                let k0_3 = tile[kb + 3u];
                                let k0_4 = tile[kb + 4u].x;
                                let j0 = alibi2 * f32(start + kk + 0u);
                                let p0_0 = exp2(((fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, fma(q0_0.z, k0_0.z, fma(q0_0.w, k0_0.w, fma(q0_1.x, k0_1.x, fma(q0_1.y, k0_1.y, fma(q0_1.z, k0_1.z, fma(q0_1.w, k0_1.w, nb0)))))))) + fma(q0_2.x, k0_2.x, fma(q0_2.y, k0_2.y, fma(q0_2.z, k0_2.z, fma(q0_2.w, k0_2.w, fma(q0_3.x, k0_3.x, fma(q0_3.y, k0_3.y, fma(q0_3.z, k0_3.z, q0_3.w * k0_3.w)))))))) + q0_4 * k0_4) + j0);
                                tacc0_0 = fma(vec4<f32>(p0_0), k0_0, tacc0_0);
                                tacc0_1 = fma(vec4<f32>(p0_0), k0_1, tacc0_1);
                                tacc0_2 = fma(vec4<f32>(p0_0), k0_2, tacc0_2);
                                tacc0_3 = fma(vec4<f32>(p0_0), k0_3, tacc0_3);
                                tacc0_4 = fma(f32(p0_0), k0_4, tacc0_4);
                                tl0 += p0_0;
                                let p1_0 = exp2(((fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, fma(q1_0.z, k0_0.z, fma(q1_0.w, k0_0.w, fma(q1_1.x, k0_1.x, fma(q1_1.y, k0_1.y, fma(q1_1.z, k0_1.z, fma(q1_1.w, k0_1.w, nb1)))))))) + fma(q1_2.x, k0_2.x, fma(q1_2.y, k0_2.y, fma(q1_2.z, k0_2.z, fma(q1_2.w, k0_2.w, fma(q1_3.x, k0_3.x, fma(q1_3.y, k0_3.y, fma(q1_3.z, k0_3.z, q1_3.w * k0_3.w)))))))) + q1_4 * k0_4) + j0);
                                tacc1_0 = fma(vec4<f32>(p1_0), k0_0, tacc1_0);
                                tacc1_1 = fma(vec4<f32>(p1_0), k0_1, tacc1_1);
                                tacc1_2 = fma(vec4<f32>(p1_0), k0_2, tacc1_2);
                                tacc1_3 = fma(vec4<f32>(p1_0), k0_3, tacc1_3);
                                tacc1_4 = fma(f32(p1_0), k0_4, tacc1_4);
                                tl1 += p1_0;
                                let p2_0 = exp2(((fma(q2_0.x, k0_0.x, fma(q2_0.y, k0_0.y, fma(q2_0.z, k0_0.z, fma(q2_0.w, k0_0.w, fma(q2_1.x, k0_1.x, fma(q2_1.y, k0_1.y, fma(q2_1.z, k0_1.z, fma(q2_1.w, k0_1.w, nb2)))))))) + fma(q2_2.x, k0_2.x, fma(q2_2.y, k0_2.y, fma(q2_2.z, k0_2.z, fma(q2_2.w, k0_2.w, fma(q2_3.x, k0_3.x, fma(q2_3.y, k0_3.y, fma(q2_3.z, k0_3.z, q2_3.w * k0_3.w)))))))) + q2_4 * k0_4) + j0);
                                tacc2_0 = fma(vec4<f32>(p2_0), k0_0, tacc2_0);
                                tacc2_1 = fma(vec4<f32>(p2_0), k0_1, tacc2_1);
                                tacc2_2 = fma(vec4<f32>(p2_0), k0_2, tacc2_2);
                                tacc2_3 = fma(vec4<f32>(p2_0), k0_3, tacc2_3);
                                tacc2_4 = fma(f32(p2_0), k0_4, tacc2_4);
                                tl2 += p2_0;
                                let p3_0 = exp2(((fma(q3_0.x, k0_0.x, fma(q3_0.y, k0_0.y, fma(q3_0.z, k0_0.z, fma(q3_0.w, k0_0.w, fma(q3_1.x, k0_1.x, fma(q3_1.y, k0_1.y, fma(q3_1.z, k0_1.z, fma(q3_1.w, k0_1.w, nb3)))))))) + fma(q3_2.x, k0_2.x, fma(q3_2.y, k0_2.y, fma(q3_2.z, k0_2.z, fma(q3_2.w, k0_2.w, fma(q3_3.x, k0_3.x, fma(q3_3.y, k0_3.y, fma(q3_3.z, k0_3.z, q3_3.w * k0_3.w)))))))) + q3_4 * k0_4) + j0);
                                tacc3_0 = fma(vec4<f32>(p3_0), k0_0, tacc3_0);
                                tacc3_1 = fma(vec4<f32>(p3_0), k0_1, tacc3_1);
                                tacc3_2 = fma(vec4<f32>(p3_0), k0_2, tacc3_2);
                                tacc3_3 = fma(vec4<f32>(p3_0), k0_3, tacc3_3);
                                tacc3_4 = fma(f32(p3_0), k0_4, tacc3_4);
                                tl3 += p3_0;
                            }
                            } else {
                                let top = lim3;
                                for (var kk = 0u; kk < top; kk += G) {
                                    let kb = kk * DV;
                                    let k0_0 = tile[kb];
                                    let k0_1 = tile[kb + 1u];
                                    let k0_2 = tile[kb + 2u];
                                    let k0_3 = tile[kb + 3u];
                                    let k0_4 = tile[kb + 4u].x;
                                    let j0 = alibi2 * f32(start + kk + 0u);
                                    let p0_0 = select(0.0, exp2(((fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, fma(q0_0.z, k0_0.z, fma(q0_0.w, k0_0.w, fma(q0_1.x, k0_1.x, fma(q0_1.y, k0_1.y, fma(q0_1.z, k0_1.z, fma(q0_1.w, k0_1.w, nb0)))))))) + fma(q0_2.x, k0_2.x, fma(q0_2.y, k0_2.y, fma(q0_2.z, k0_2.z, fma(q0_2.w, k0_2.w, fma(q0_3.x, k0_3.x, fma(q0_3.y, k0_3.y, fma(q0_3.z, k0_3.z, q0_3.w * k0_3.w)))))))) + q0_4 * k0_4) + j0), kk + 0u < lim0);
                                    tacc0_0 = fma(vec4<f32>(p0_0), k0_0, tacc0_0);
                                    tacc0_1 = fma(vec4<f32>(p0_0), k0_1, tacc0_1);
                                    tacc0_2 = fma(vec4<f32>(p0_0), k0_2, tacc0_2);
                                    tacc0_3 = fma(vec4<f32>(p0_0), k0_3, tacc0_3);
                                    tacc0_4 = fma(f32(p0_0), k0_4, tacc0_4);
                                    tl0 += p0_0;
                                    let p1_0 = select(0.0, exp2(((fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, fma(q1_0.z, k0_0.z, fma(q1_0.w, k0_0.w, fma(q1_1.x, k0_1.x, fma(q1_1.y, k0_1.y, fma(q1_1.z, k0_1.z, fma(q1_1.w, k0_1.w, nb1)))))))) + fma(q1_2.x, k0_2.x, fma(q1_2.y, k0_2.y, fma(q1_2.z, k0_2.z, fma(q1_2.w, k0_2.w, fma(q1_3.x, k0_3.x, fma(q1_3.y, k0_3.y, fma(q1_3.z, k0_3.z, q1_3.w * k0_3.w)))))))) + q1_4 * k0_4) + j0), kk + 0u < lim1);
                                    tacc1_0 = fma(vec4<f32>(p1_0), k0_0, tacc1_0);
                                    tacc1_1 = fma(vec4<f32>(p1_0), k0_1, tacc1_1);
                                    tacc1_2 = fma(vec4<f32>(p1_0), k0_2, tacc1_2);
                                    tacc1_3 = fma(vec4<f32>(p1_0), k0_3, tacc1_3);
                                    tacc1_4 = fma(f32(p1_0), k0_4, tacc1_4);
                                    tl1 += p1_0;
                                    let p2_0 = select(0.0, exp2(((fma(q2_0.x, k0_0.x, fma(q2_0.y, k0_0.y, fma(q2_0.z, k0_0.z, fma(q2_0.w, k0_0.w, fma(q2_1.x, k0_1.x, fma(q2_1.y, k0_1.y, fma(q2_1.z, k0_1.z, fma(q2_1.w, k0_1.w, nb2)))))))) + fma(q2_2.x, k0_2.x, fma(q2_2.y, k0_2.y, fma(q2_2.z, k0_2.z, fma(q2_2.w, k0_2.w, fma(q2_3.x, k0_3.x, fma(q2_3.y, k0_3.y, fma(q2_3.z, k0_3.z, q2_3.w * k0_3.w)))))))) + q2_4 * k0_4) + j0), kk + 0u < lim2);
                                    tacc2_0 = fma(vec4<f32>(p2_0), k0_0, tacc2_0);
                                    tacc2_1 = fma(vec4<f32>(p2_0), k0_1, tacc2_1);
                                    tacc2_2 = fma(vec4<f32>(p2_0), k0_2, tacc2_2);
                                    tacc2_3 = fma(vec4<f32>(p2_0), k0_3, tacc2_3);
                                    tacc2_4 = fma(f32(p2_0), k0_4, tacc2_4);
                                    tl2 += p2_0;
                                    let p3_0 = select(0.0, exp2(((fma(q3_0.x, k0_0.x, fma(q3_0.y, k0_0.y, fma(q3_0.z, k0_0.z, fma(q3_0.w, k0_0.w, fma(q3_1.x, k0_1.x, fma(q3_1.y, k0_1.y, fma(q3_1.z, k0_1.z, fma(q3_1.w, k0_1.w, nb3)))))))) + fma(q3_2.x, k0_2.x, fma(q3_2.y, k0_2.y, fma(q3_2.z, k0_2.z, fma(q3_2.w, k0_2.w, fma(q3_3.x, k0_3.x, fma(q3_3.y, k0_3.y, fma(q3_3.z, k0_3.z, q3_3.w * k0_3.w)))))))) + q3_4 * k0_4) + j0), kk + 0u < lim3);
                                    tacc3_0 = fma(vec4<f32>(p3_0), k0_0, tacc3_0);
                                    tacc3_1 = fma(vec4<f32>(p3_0), k0_1, tacc3_1);
                                    tacc3_2 = fma(vec4<f32>(p3_0), k0_2, tacc3_2);
                                    tacc3_3 = fma(vec4<f32>(p3_0), k0_3, tacc3_3);
                                    tacc3_4 = fma(f32(p3_0), k0_4, tacc3_4);
                                    tl3 += p3_0;
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
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, fma(q0_0.z, kv_0.z, fma(q0_0.w, kv_0.w, fma(q0_1.x, kv_1.x, fma(q0_1.y, kv_1.y, fma(q0_1.z, kv_1.z, fma(q0_1.w, kv_1.w, nb0)))))))) + fma(q0_2.x, kv_2.x, fma(q0_2.y, kv_2.y, fma(q0_2.z, kv_2.z, fma(q0_2.w, kv_2.w, fma(q0_3.x, kv_3.x, fma(q0_3.y, kv_3.y, fma(q0_3.z, kv_3.z, q0_3.w * kv_3.w)))))))) + q0_4 * kv_4) + alibi2 * f32(start + kk);
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
                                tacc0_4 = f32(0.0);
                                l0 *= shrink;
                                tl0 = 0.0;
                                for (var kk = 0u; kk < lim0; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, fma(q0_0.z, kv_0.z, fma(q0_0.w, kv_0.w, fma(q0_1.x, kv_1.x, fma(q0_1.y, kv_1.y, fma(q0_1.z, kv_1.z, fma(q0_1.w, kv_1.w, nb0)))))))) + fma(q0_2.x, kv_2.x, fma(q0_2.y, kv_2.y, fma(q0_2.z, kv_2.z, fma(q0_2.w, kv_2.w, fma(q0_3.x, kv_3.x, fma(q0_3.y, kv_3.y, fma(q0_3.z, kv_3.z, q0_3.w * kv_3.w)))))))) + q0_4 * kv_4) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc0_0 = fma(vec4<f32>(p), kv_0, tacc0_0);
                                    tacc0_1 = fma(vec4<f32>(p), kv_1, tacc0_1);
                                    tacc0_2 = fma(vec4<f32>(p), kv_2, tacc0_2);
                                    tacc0_3 = fma(vec4<f32>(p), kv_3, tacc0_3);
                                    tacc0_4 = fma(f32(p), kv_4, tacc0_4);
                                    tl0 += p;
                                }
                            }
                            acc0_0 += tacc0_0;
                            acc0_1 += tacc0_1;
                            acc0_2 += tacc0_2;
                            acc0_3 += tacc0_3;
                            acc0_4 += tacc0_4;
                            l0 += tl0;
                            if !(tl1 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim1; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, fma(q1_0.z, kv_0.z, fma(q1_0.w, kv_0.w, fma(q1_1.x, kv_1.x, fma(q1_1.y, kv_1.y, fma(q1_1.z, kv_1.z, fma(q1_1.w, kv_1.w, nb1)))))))) + fma(q1_2.x, kv_2.x, fma(q1_2.y, kv_2.y, fma(q1_2.z, kv_2.z, fma(q1_2.w, kv_2.w, fma(q1_3.x, kv_3.x, fma(q1_3.y, kv_3.y, fma(q1_3.z, kv_3.z, q1_3.w * kv_3.w)))))))) + q1_4 * kv_4) + alibi2 * f32(start + kk);
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
                                tacc1_4 = f32(0.0);
                                l1 *= shrink;
                                tl1 = 0.0;
                                for (var kk = 0u; kk < lim1; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, fma(q1_0.z, kv_0.z, fma(q1_0.w, kv_0.w, fma(q1_1.x, kv_1.x, fma(q1_1.y, kv_1.y, fma(q1_1.z, kv_1.z, fma(q1_1.w, kv_1.w, nb1)))))))) + fma(q1_2.x, kv_2.x, fma(q1_2.y, kv_2.y, fma(q1_2.z, kv_2.z, fma(q1_2.w, kv_2.w, fma(q1_3.x, kv_3.x, fma(q1_3.y, kv_3.y, fma(q1_3.z, kv_3.z, q1_3.w * kv_3.w)))))))) + q1_4 * kv_4) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc1_0 = fma(vec4<f32>(p), kv_0, tacc1_0);
                                    tacc1_1 = fma(vec4<f32>(p), kv_1, tacc1_1);
                                    tacc1_2 = fma(vec4<f32>(p), kv_2, tacc1_2);
                                    tacc1_3 = fma(vec4<f32>(p), kv_3, tacc1_3);
                                    tacc1_4 = fma(f32(p), kv_4, tacc1_4);
                                    tl1 += p;
                                }
                            }
                            acc1_0 += tacc1_0;
                            acc1_1 += tacc1_1;
                            acc1_2 += tacc1_2;
                            acc1_3 += tacc1_3;
                            acc1_4 += tacc1_4;
                            l1 += tl1;
                            if !(tl2 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim2; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q2_0.x, kv_0.x, fma(q2_0.y, kv_0.y, fma(q2_0.z, kv_0.z, fma(q2_0.w, kv_0.w, fma(q2_1.x, kv_1.x, fma(q2_1.y, kv_1.y, fma(q2_1.z, kv_1.z, fma(q2_1.w, kv_1.w, nb2)))))))) + fma(q2_2.x, kv_2.x, fma(q2_2.y, kv_2.y, fma(q2_2.z, kv_2.z, fma(q2_2.w, kv_2.w, fma(q2_3.x, kv_3.x, fma(q2_3.y, kv_3.y, fma(q2_3.z, kv_3.z, q2_3.w * kv_3.w)))))))) + q2_4 * kv_4) + alibi2 * f32(start + kk);
                                    top = max(top, s);
                                }
                                let delta = max(top, 0.0);
                                m2 += delta;
                                nb2 -= delta;
                                let shrink = exp2(-delta);
                                acc2_0 *= shrink;
                                tacc2_0 = vec4<f32>(0.0);
                                acc2_1 *= shrink;
                                tacc2_1 = vec4<f32>(0.0);
                                acc2_2 *= shrink;
                                tacc2_2 = vec4<f32>(0.0);
                                acc2_3 *= shrink;
                                tacc2_3 = vec4<f32>(0.0);
                                acc2_4 *= shrink;
                                tacc2_4 = f32(0.0);
                                l2 *= shrink;
                                tl2 = 0.0;
                                for (var kk = 0u; kk < lim2; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q2_0.x, kv_0.x, fma(q2_0.y, kv_0.y, fma(q2_0.z, kv_0.z, fma(q2_0.w, kv_0.w, fma(q2_1.x, kv_1.x, fma(q2_1.y, kv_1.y, fma(q2_1.z, kv_1.z, fma(q2_1.w, kv_1.w, nb2)))))))) + fma(q2_2.x, kv_2.x, fma(q2_2.y, kv_2.y, fma(q2_2.z, kv_2.z, fma(q2_2.w, kv_2.w, fma(q2_3.x, kv_3.x, fma(q2_3.y, kv_3.y, fma(q2_3.z, kv_3.z, q2_3.w * kv_3.w)))))))) + q2_4 * kv_4) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc2_0 = fma(vec4<f32>(p), kv_0, tacc2_0);
                                    tacc2_1 = fma(vec4<f32>(p), kv_1, tacc2_1);
                                    tacc2_2 = fma(vec4<f32>(p), kv_2, tacc2_2);
                                    tacc2_3 = fma(vec4<f32>(p), kv_3, tacc2_3);
                                    tacc2_4 = fma(f32(p), kv_4, tacc2_4);
                                    tl2 += p;
                                }
                            }
                            acc2_0 += tacc2_0;
                            acc2_1 += tacc2_1;
                            acc2_2 += tacc2_2;
                            acc2_3 += tacc2_3;
                            acc2_4 += tacc2_4;
                            l2 += tl2;
                            if !(tl3 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim3; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q3_0.x, kv_0.x, fma(q3_0.y, kv_0.y, fma(q3_0.z, kv_0.z, fma(q3_0.w, kv_0.w, fma(q3_1.x, kv_1.x, fma(q3_1.y, kv_1.y, fma(q3_1.z, kv_1.z, fma(q3_1.w, kv_1.w, nb3)))))))) + fma(q3_2.x, kv_2.x, fma(q3_2.y, kv_2.y, fma(q3_2.z, kv_2.z, fma(q3_2.w, kv_2.w, fma(q3_3.x, kv_3.x, fma(q3_3.y, kv_3.y, fma(q3_3.z, kv_3.z, q3_3.w * kv_3.w)))))))) + q3_4 * kv_4) + alibi2 * f32(start + kk);
                                    top = max(top, s);
                                }
                                let delta = max(top, 0.0);
                                m3 += delta;
                                nb3 -= delta;
                                let shrink = exp2(-delta);
                                acc3_0 *= shrink;
                                tacc3_0 = vec4<f32>(0.0);
                                acc3_1 *= shrink;
                                tacc3_1 = vec4<f32>(0.0);
                                acc3_2 *= shrink;
                                tacc3_2 = vec4<f32>(0.0);
                                acc3_3 *= shrink;
                                tacc3_3 = vec4<f32>(0.0);
                                acc3_4 *= shrink;
                                tacc3_4 = f32(0.0);
                                l3 *= shrink;
                                tl3 = 0.0;
                                for (var kk = 0u; kk < lim3; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u];
                                    let kv_2 = tile[kk * DV + 2u];
                                    let kv_3 = tile[kk * DV + 3u];
                                    let kv_4 = tile[kk * DV + 4u].x;
                                    let s = ((fma(q3_0.x, kv_0.x, fma(q3_0.y, kv_0.y, fma(q3_0.z, kv_0.z, fma(q3_0.w, kv_0.w, fma(q3_1.x, kv_1.x, fma(q3_1.y, kv_1.y, fma(q3_1.z, kv_1.z, fma(q3_1.w, kv_1.w, nb3)))))))) + fma(q3_2.x, kv_2.x, fma(q3_2.y, kv_2.y, fma(q3_2.z, kv_2.z, fma(q3_2.w, kv_2.w, fma(q3_3.x, kv_3.x, fma(q3_3.y, kv_3.y, fma(q3_3.z, kv_3.z, q3_3.w * kv_3.w)))))))) + q3_4 * kv_4) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc3_0 = fma(vec4<f32>(p), kv_0, tacc3_0);
                                    tacc3_1 = fma(vec4<f32>(p), kv_1, tacc3_1);
                                    tacc3_2 = fma(vec4<f32>(p), kv_2, tacc3_2);
                                    tacc3_3 = fma(vec4<f32>(p), kv_3, tacc3_3);
                                    tacc3_4 = fma(f32(p), kv_4, tacc3_4);
                                    tl3 += p;
                                }
                            }
                            acc3_0 += tacc3_0;
                            acc3_1 += tacc3_1;
                            acc3_2 += tacc3_2;
                            acc3_3 += tacc3_3;
                            acc3_4 += tacc3_4;
                            l3 += tl3;
                            start += TK;
                        }
                        if ok0 {
                            let s = state0 + i0;
                            ml_state[s] = vec2<f32>(m0, l0);
                            acc_state[s * DV + 0u] = acc0_0;
                            acc_state[s * DV + 1u] = acc0_1;
                            acc_state[s * DV + 2u] = acc0_2;
                            acc_state[s * DV + 3u] = acc0_3;
                            acc_state[s * DV + 4u] = vec4<f32>(acc0_4, 0.0, 0.0, 0.0);
                        }
                        if ok1 {
                            let s = state0 + i1;
                            ml_state[s] = vec2<f32>(m1, l1);
                            acc_state[s * DV + 0u] = acc1_0;
                            acc_state[s * DV + 1u] = acc1_1;
                            acc_state[s * DV + 2u] = acc1_2;
                            acc_state[s * DV + 3u] = acc1_3;
                            acc_state[s * DV + 4u] = vec4<f32>(acc1_4, 0.0, 0.0, 0.0);
                        }
                        if ok2 {
                            let s = state0 + i2;
                            ml_state[s] = vec2<f32>(m2, l2);
                            acc_state[s * DV + 0u] = acc2_0;
                            acc_state[s * DV + 1u] = acc2_1;
                            acc_state[s * DV + 2u] = acc2_2;
                            acc_state[s * DV + 3u] = acc2_3;
                            acc_state[s * DV + 4u] = vec4<f32>(acc2_4, 0.0, 0.0, 0.0);
                        }
                        if ok3 {
                            let s = state0 + i3;
                            ml_state[s] = vec2<f32>(m3, l3);
                            acc_state[s * DV + 0u] = acc3_0;
                            acc_state[s * DV + 1u] = acc3_1;
                            acc_state[s * DV + 2u] = acc3_2;
                            acc_state[s * DV + 3u] = acc3_3;
                            acc_state[s * DV + 4u] = vec4<f32>(acc3_4, 0.0, 0.0, 0.0);
                        }
                    }
