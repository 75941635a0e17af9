// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 2u;
const DV: u32 = 1u;
const WG: u32 = 64u;
const TK: u32 = 256u;
const TILE_VECS: u32 = 256u;
const QB: u32 = 1024u;
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
    let first_0 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D], x[(key_base + min(split_start, params.n_keys - 1u)) * D + 1u], 0.0, 0.0).xy;
    let i0 = q0 + lid.x + 0u;
    let ok0 = i0 < params.n_queries;
    let t0 = system * params.n_queries + min(i0, params.n_queries - 1u);
    let q0_0 = q[t0 * DV + 0u].xy;
    var acc0_0 = vec2<f32>(0.0);
    var m0 = F32_LOWEST;
    var l0 = 0.0;
    if first {
        if (split_start <= i0) & (split_start < params.n_keys) {
            m0 = fma(q0_0.x, first_0.x, fma(q0_0.y, first_0.y, 0.0)) - alibi2 * f32(i0 - split_start);
        }
        } else {
            let ml = ml_state[state0 + min(i0, params.n_queries - 1u)];
            m0 = ml.x;
            l0 = ml.y;
            acc0_0 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 0u].xy;
        }
        var nb0 = -(m0 + alibi2 * f32(i0));
        let i1 = q0 + lid.x + 64u;
        let ok1 = i1 < params.n_queries;
        let t1 = system * params.n_queries + min(i1, params.n_queries - 1u);
        let q1_0 = q[t1 * DV + 0u].xy;
        var acc1_0 = vec2<f32>(0.0);
        var m1 = F32_LOWEST;
        var l1 = 0.0;
        if first {
            if (split_start <= i1) & (split_start < params.n_keys) {
                m1 = fma(q1_0.x, first_0.x, fma(q1_0.y, first_0.y, 0.0)) - alibi2 * f32(i1 - split_start);
            }
            } else {
                let ml = ml_state[state0 + min(i1, params.n_queries - 1u)];
                m1 = ml.x;
                l1 = ml.y;
                acc1_0 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 0u].xy;
            }
            var nb1 = -(m1 + alibi2 * f32(i1));
            let i2 = q0 + lid.x + 128u;
            let ok2 = i2 < params.n_queries;
            let t2 = system * params.n_queries + min(i2, params.n_queries - 1u);
            let q2_0 = q[t2 * DV + 0u].xy;
            var acc2_0 = vec2<f32>(0.0);
            var m2 = F32_LOWEST;
            var l2 = 0.0;
            if first {
                if (split_start <= i2) & (split_start < params.n_keys) {
                    m2 = fma(q2_0.x, first_0.x, fma(q2_0.y, first_0.y, 0.0)) - alibi2 * f32(i2 - split_start);
                }
                } else {
                    let ml = ml_state[state0 + min(i2, params.n_queries - 1u)];
                    m2 = ml.x;
                    l2 = ml.y;
                    acc2_0 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 0u].xy;
                }
                var nb2 = -(m2 + alibi2 * f32(i2));
                let i3 = q0 + lid.x + 192u;
                let ok3 = i3 < params.n_queries;
                let t3 = system * params.n_queries + min(i3, params.n_queries - 1u);
                let q3_0 = q[t3 * DV + 0u].xy;
                var acc3_0 = vec2<f32>(0.0);
                var m3 = F32_LOWEST;
                var l3 = 0.0;
                if first {
                    if (split_start <= i3) & (split_start < params.n_keys) {
                        m3 = fma(q3_0.x, first_0.x, fma(q3_0.y, first_0.y, 0.0)) - alibi2 * f32(i3 - split_start);
                    }
                    } else {
                        let ml = ml_state[state0 + min(i3, params.n_queries - 1u)];
                        m3 = ml.x;
                        l3 = ml.y;
                        acc3_0 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 0u].xy;
                    }
                    var nb3 = -(m3 + alibi2 * f32(i3));
                    let i4 = q0 + lid.x + 256u;
                    let ok4 = i4 < params.n_queries;
                    let t4 = system * params.n_queries + min(i4, params.n_queries - 1u);
                    let q4_0 = q[t4 * DV + 0u].xy;
                    var acc4_0 = vec2<f32>(0.0);
                    var m4 = F32_LOWEST;
                    var l4 = 0.0;
                    if first {
                        if (split_start <= i4) & (split_start < params.n_keys) {
                            m4 = fma(q4_0.x, first_0.x, fma(q4_0.y, first_0.y, 0.0)) - alibi2 * f32(i4 - split_start);
                        }
                        } else {
                            let ml = ml_state[state0 + min(i4, params.n_queries - 1u)];
                            m4 = ml.x;
                            l4 = ml.y;
                            acc4_0 = acc_state[(state0 + min(i4, params.n_queries - 1u)) * DV + 0u].xy;
                        }
                        var nb4 = -(m4 + alibi2 * f32(i4));
                        let i5 = q0 + lid.x + 320u;
                        let ok5 = i5 < params.n_queries;
                        let t5 = system * params.n_queries + min(i5, params.n_queries - 1u);
                        let q5_0 = q[t5 * DV + 0u].xy;
                        var acc5_0 = vec2<f32>(0.0);
                        var m5 = F32_LOWEST;
                        var l5 = 0.0;
                        if first {
                            if (split_start <= i5) & (split_start < params.n_keys) {
                                m5 = fma(q5_0.x, first_0.x, fma(q5_0.y, first_0.y, 0.0)) - alibi2 * f32(i5 - split_start);
                            }
                            } else {
                                let ml = ml_state[state0 + min(i5, params.n_queries - 1u)];
                                m5 = ml.x;
                                l5 = ml.y;
                                acc5_0 = acc_state[(state0 + min(i5, params.n_queries - 1u)) * DV + 0u].xy;
                            }
                            var nb5 = -(m5 + alibi2 * f32(i5));
                            let i6 = q0 + lid.x + 384u;
                            let ok6 = i6 < params.n_queries;
                            let t6 = system * params.n_queries + min(i6, params.n_queries - 1u);
                            let q6_0 = q[t6 * DV + 0u].xy;
                            var acc6_0 = vec2<f32>(0.0);
                            var m6 = F32_LOWEST;
                            var l6 = 0.0;
                            if first {
                                if (split_start <= i6) & (split_start < params.n_keys) {
                                    m6 = fma(q6_0.x, first_0.x, fma(q6_0.y, first_0.y, 0.0)) - alibi2 * f32(i6 - split_start);
                                }
                                } else {
                                    let ml = ml_state[state0 + min(i6, params.n_queries - 1u)];
                                    m6 = ml.x;
                                    l6 = ml.y;
                                    acc6_0 = acc_state[(state0 + min(i6, params.n_queries - 1u)) * DV + 0u].xy;
                                }
                                var nb6 = -(m6 + alibi2 * f32(i6));
                                let i7 = q0 + lid.x + 448u;
                                let ok7 = i7 < params.n_queries;
                                let t7 = system * params.n_queries + min(i7, params.n_queries - 1u);
                                let q7_0 = q[t7 * DV + 0u].xy;
                                var acc7_0 = vec2<f32>(0.0);
                                var m7 = F32_LOWEST;
                                var l7 = 0.0;
                                if first {
                                    if (split_start <= i7) & (split_start < params.n_keys) {
                                        m7 = fma(q7_0.x, first_0.x, fma(q7_0.y, first_0.y, 0.0)) - alibi2 * f32(i7 - split_start);
                                    }
                                    } else {
                                        let ml = ml_state[state0 + min(i7, params.n_queries - 1u)];
                                        m7 = ml.x;
                                        l7 = ml.y;
                                        acc7_0 = acc_state[(state0 + min(i7, params.n_queries - 1u)) * DV + 0u].xy;
                                    }
                                    var nb7 = -(m7 + alibi2 * f32(i7));
                                    let i8 = q0 + lid.x + 512u;
                                    let ok8 = i8 < params.n_queries;
                                    let t8 = system * params.n_queries + min(i8, params.n_queries - 1u);
                                    let q8_0 = q[t8 * DV + 0u].xy;
                                    var acc8_0 = vec2<f32>(0.0);
                                    var m8 = F32_LOWEST;
                                    var l8 = 0.0;
                                    if first {
                                        if (split_start <= i8) & (split_start < params.n_keys) {
                                            m8 = fma(q8_0.x, first_0.x, fma(q8_0.y, first_0.y, 0.0)) - alibi2 * f32(i8 - split_start);
                                        }
                                        } else {
                                            let ml = ml_state[state0 + min(i8, params.n_queries - 1u)];
                                            m8 = ml.x;
                                            l8 = ml.y;
                                            acc8_0 = acc_state[(state0 + min(i8, params.n_queries - 1u)) * DV + 0u].xy;
                                        }
                                        var nb8 = -(m8 + alibi2 * f32(i8));
                                        let i9 = q0 + lid.x + 576u;
                                        let ok9 = i9 < params.n_queries;
                                        let t9 = system * params.n_queries + min(i9, params.n_queries - 1u);
                                        let q9_0 = q[t9 * DV + 0u].xy;
                                        var acc9_0 = vec2<f32>(0.0);
                                        var m9 = F32_LOWEST;
                                        var l9 = 0.0;
                                        if first {
                                            if (split_start <= i9) & (split_start < params.n_keys) {
                                                m9 = fma(q9_0.x, first_0.x, fma(q9_0.y, first_0.y, 0.0)) - alibi2 * f32(i9 - split_start);
                                            }
                                            } else {
                                                let ml = ml_state[state0 + min(i9, params.n_queries - 1u)];
                                                m9 = ml.x;
                                                l9 = ml.y;
                                                acc9_0 = acc_state[(state0 + min(i9, params.n_queries - 1u)) * DV + 0u].xy;
                                            }
                                            var nb9 = -(m9 + alibi2 * f32(i9));
                                            let i10 = q0 + lid.x + 640u;
                                            let ok10 = i10 < params.n_queries;
                                            let t10 = system * params.n_queries + min(i10, params.n_queries - 1u);
                                            let q10_0 = q[t10 * DV + 0u].xy;
                                            var acc10_0 = vec2<f32>(0.0);
                                            var m10 = F32_LOWEST;
                                            var l10 = 0.0;
                                            if first {
                                                if (split_start <= i10) & (split_start < params.n_keys) {
                                                    m10 = fma(q10_0.x, first_0.x, fma(q10_0.y, first_0.y, 0.0)) - alibi2 * f32(i10 - split_start);
                                                }
                                                } else {
                                                    let ml = ml_state[state0 + min(i10, params.n_queries - 1u)];
                                                    m10 = ml.x;
                                                    l10 = ml.y;
                                                    acc10_0 = acc_state[(state0 + min(i10, params.n_queries - 1u)) * DV + 0u].xy;
                                                }
                                                var nb10 = -(m10 + alibi2 * f32(i10));
                                                let i11 = q0 + lid.x + 704u;
                                                let ok11 = i11 < params.n_queries;
                                                let t11 = system * params.n_queries + min(i11, params.n_queries - 1u);
                                                let q11_0 = q[t11 * DV + 0u].xy;
                                                var acc11_0 = vec2<f32>(0.0);
                                                var m11 = F32_LOWEST;
                                                var l11 = 0.0;
                                                if first {
                                                    if (split_start <= i11) & (split_start < params.n_keys) {
                                                        m11 = fma(q11_0.x, first_0.x, fma(q11_0.y, first_0.y, 0.0)) - alibi2 * f32(i11 - split_start);
                                                    }
                                                    } else {
                                                        let ml = ml_state[state0 + min(i11, params.n_queries - 1u)];
                                                        m11 = ml.x;
                                                        l11 = ml.y;
                                                        acc11_0 = acc_state[(state0 + min(i11, params.n_queries - 1u)) * DV + 0u].xy;
                                                    }
                                                    var nb11 = -(m11 + alibi2 * f32(i11));
                                                    let i12 = q0 + lid.x + 768u;
                                                    let ok12 = i12 < params.n_queries;
                                                    let t12 = system * params.n_queries + min(i12, params.n_queries - 1u);
                                                    let q12_0 = q[t12 * DV + 0u].xy;
                                                    var acc12_0 = vec2<f32>(0.0);
                                                    var m12 = F32_LOWEST;
                                                    var l12 = 0.0;
                                                    if first {
                                                        if (split_start <= i12) & (split_start < params.n_keys) {
                                                            m12 = fma(q12_0.x, first_0.x, fma(q12_0.y, first_0.y, 0.0)) - alibi2 * f32(i12 - split_start);
                                                        }
                                                        } else {
                                                            let ml = ml_state[state0 + min(i12, params.n_queries - 1u)];
                                                            m12 = ml.x;
                                                            l12 = ml.y;
                                                            acc12_0 = acc_state[(state0 + min(i12, params.n_queries - 1u)) * DV + 0u].xy;
                                                        }
                                                        var nb12 = -(m12 + alibi2 * f32(i12));
                                                        let i13 = q0 + lid.x + 832u;
                                                        let ok13 = i13 < params.n_queries;
                                                        let t13 = system * params.n_queries + min(i13, params.n_queries - 1u);
                                                        let q13_0 = q[t13 * DV + 0u].xy;
                                                        var acc13_0 = vec2<f32>(0.0);
                                                        var m13 = F32_LOWEST;
                                                        var l13 = 0.0;
                                                        if first {
                                                            if (split_start <= i13) & (split_start < params.n_keys) {
                                                                m13 = fma(q13_0.x, first_0.x, fma(q13_0.y, first_0.y, 0.0)) - alibi2 * f32(i13 - split_start);
                                                            }
                                                            } else {
                                                                let ml = ml_state[state0 + min(i13, params.n_queries - 1u)];
                                                                m13 = ml.x;
                                                                l13 = ml.y;
                                                                acc13_0 = acc_state[(state0 + min(i13, params.n_queries - 1u)) * DV + 0u].xy;
                                                            }
                                                            var nb13 = -(m13 + alibi2 * f32(i13));
                                                            let i14 = q0 + lid.x + 896u;
                                                            let ok14 = i14 < params.n_queries;
                                                            let t14 = system * params.n_queries + min(i14, params.n_queries - 1u);
                                                            let q14_0 = q[t14 * DV + 0u].xy;
                                                            var acc14_0 = vec2<f32>(0.0);
                                                            var m14 = F32_LOWEST;
                                                            var l14 = 0.0;
                                                            if first {
                                                                if (split_start <= i14) & (split_start < params.n_keys) {
                                                                    m14 = fma(q14_0.x, first_0.x, fma(q14_0.y, first_0.y, 0.0)) - alibi2 * f32(i14 - split_start);
                                                                }
                                                                } else {
                                                                    let ml = ml_state[state0 + min(i14, params.n_queries - 1u)];
                                                                    m14 = ml.x;
                                                                    l14 = ml.y;
                                                                    acc14_0 = acc_state[(state0 + min(i14, params.n_queries - 1u)) * DV + 0u].xy;
                                                                }
                                                                var nb14 = -(m14 + alibi2 * f32(i14));
                                                                let i15 = q0 + lid.x + 960u;
                                                                let ok15 = i15 < params.n_queries;
                                                                let t15 = system * params.n_queries + min(i15, params.n_queries - 1u);
                                                                let q15_0 = q[t15 * DV + 0u].xy;
                                                                var acc15_0 = vec2<f32>(0.0);
                                                                var m15 = F32_LOWEST;
                                                                var l15 = 0.0;
                                                                if first {
                                                                    if (split_start <= i15) & (split_start < params.n_keys) {
                                                                        m15 = fma(q15_0.x, first_0.x, fma(q15_0.y, first_0.y, 0.0)) - alibi2 * f32(i15 - split_start);
                                                                    }
                                                                    } else {
                                                                        let ml = ml_state[state0 + min(i15, params.n_queries - 1u)];
                                                                        m15 = ml.x;
                                                                        l15 = ml.y;
                                                                        acc15_0 = acc_state[(state0 + min(i15, params.n_queries - 1u)) * DV + 0u].xy;
                                                                    }
                                                                    var nb15 = -(m15 + alibi2 * f32(i15));
                                                                    var start = start0;
                                                                    loop {
                                                                        if start >= key_end {
                                                                            break;
                                                                        }
                                                                        let len = min(TK, key_end - start);
                                                                        workgroupBarrier();
                                                                        for (var e = lid.x; e < TK; e += WG) {
                                                                            var key_0 = vec4<f32>(0.0);
                                                                            if e < len {
                                                                                let o = (key_base + start + e) * D;
                                                                                key_0 = vec4<f32>(x[o], x[o + 1u], 0.0, 0.0);
                                                                            }
                                                                            tile[e * DV + 0u] = key_0;
                                                                        }
                                                                        workgroupBarrier();
                                                                        // Keys of this tile each query sees.
                                                                        let lim0 = select(0u, min(len, i0 + 1u - start), i0 >= start);
                                                                        var tacc0_0 = vec2<f32>(0.0);
                                                                        var tl0 = 0.0;
                                                                        let lim1 = select(0u, min(len, i1 + 1u - start), i1 >= start);
                                                                        var tacc1_0 = vec2<f32>(0.0);
                                                                        var tl1 = 0.0;
                                                                        let lim2 = select(0u, min(len, i2 + 1u - start), i2 >= start);
                                                                        var tacc2_0 = vec2<f32>(0.0);
                                                                        var tl2 = 0.0;
                                                                        let lim3 = select(0u, min(len, i3 + 1u - start), i3 >= start);
                                                                        var tacc3_0 = vec2<f32>(0.0);
                                                                        var tl3 = 0.0;
                                                                        let lim4 = select(0u, min(len, i4 + 1u - start), i4 >= start);
                                                                        var tacc4_0 = vec2<f32>(0.0);
                                                                        var tl4 = 0.0;
                                                                        let lim5 = select(0u, min(len, i5 + 1u - start), i5 >= start);
                                                                        var tacc5_0 = vec2<f32>(0.0);
                                                                        var tl5 = 0.0;
                                                                        let lim6 = select(0u, min(len, i6 + 1u - start), i6 >= start);
                                                                        var tacc6_0 = vec2<f32>(0.0);
                                                                        var tl6 = 0.0;
                                                                        let lim7 = select(0u, min(len, i7 + 1u - start), i7 >= start);
                                                                        var tacc7_0 = vec2<f32>(0.0);
                                                                        var tl7 = 0.0;
                                                                        let lim8 = select(0u, min(len, i8 + 1u - start), i8 >= start);
                                                                        var tacc8_0 = vec2<f32>(0.0);
                                                                        var tl8 = 0.0;
                                                                        let lim9 = select(0u, min(len, i9 + 1u - start), i9 >= start);
                                                                        var tacc9_0 = vec2<f32>(0.0);
                                                                        var tl9 = 0.0;
                                                                        let lim10 = select(0u, min(len, i10 + 1u - start), i10 >= start);
                                                                        var tacc10_0 = vec2<f32>(0.0);
                                                                        var tl10 = 0.0;
                                                                        let lim11 = select(0u, min(len, i11 + 1u - start), i11 >= start);
                                                                        var tacc11_0 = vec2<f32>(0.0);
                                                                        var tl11 = 0.0;
                                                                        let lim12 = select(0u, min(len, i12 + 1u - start), i12 >= start);
                                                                        var tacc12_0 = vec2<f32>(0.0);
                                                                        var tl12 = 0.0;
                                                                        let lim13 = select(0u, min(len, i13 + 1u - start), i13 >= start);
                                                                        var tacc13_0 = vec2<f32>(0.0);
                                                                        var tl13 = 0.0;
                                                                        let lim14 = select(0u, min(len, i14 + 1u - start), i14 >= start);
                                                                        var tacc14_0 = vec2<f32>(0.0);
                                                                        var tl14 = 0.0;
                                                                        let lim15 = select(0u, min(len, i15 + 1u - start), i15 >= start);
                                                                        var tacc15_0 = vec2<f32>(0.0);
                                                                        var tl15 = 0.0;
                                                                        if (lim0 == TK) & (lim1 == TK) & (lim2 == TK) & (lim3 == TK) & (lim4 == TK) & (lim5 == TK) & (lim6 == TK) & (lim7 == TK) & (lim8 == TK) & (lim9 == TK) & (lim10 == TK) & (lim11 == TK) & (lim12 == TK) & (lim13 == TK) & (lim14 == TK) & (lim15 == TK) {
                                                                            for (var kk = 0u; kk < TK; kk += G) {
                                                                                let kb = kk * DV;
                                                                                let k0_0 = tile[kb].xy;
                                                                                let j0 = alibi2 * f32(start + kk + 0u);
                                                                                let k1_0 = tile[kb + 1u].xy;
                                                                                let j1 = alibi2 * f32(start + kk + 1u);
                                                                                let p0_0 = exp2(fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, nb0)) + j0);
                                                                                tacc0_0 = fma(vec2<f32>(p0_0), k0_0, tacc0_0);
                                                                                tl0 += p0_0;
                                                                                let p0_1 = exp2(fma(q0_0.x, k1_0.x, fma(q0_0.y, k1_0.y, nb0)) + j1);
                                                                                tacc0_0 = fma(vec2<f32>(p0_1), k1_0, tacc0_0);
                                                                                tl0 += p0_1;
                                                                                let p1_0 = exp2(fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, nb1)) + j0);
                                                                                tacc1_0 = fma(vec2<f32>(p1_0), k0_0, tacc1_0);
                                                                                tl1 += p1_0;
                                                                                let p1_1 = exp2(fma(q1_0.x, k1_0.x, fma(q1_0.y, k1_0.y, nb1)) + j1);
                                                                                tacc1_0 = fma(vec2<f32>(p1_1), k1_0, tacc1_0);
                                                                                tl1 += p1_1;
                                                                                let p2_0 = exp2(fma(q2_0.x, k0_0.x, fma(q2_0.y, k0_0.y, nb2)) + j0);
                                                                                tacc2_0 = fma(vec2<f32>(p2_0), k0_0, tacc2_0);
                                                                                tl2 += p2_0;
                                                                                let p2_1 = exp2(fma(q2_0.x, k1_0.x, fma(q2_0.y, k1_0.y, nb2)) + j1);
                                                                                tacc2_0 = fma(vec2<f32>(p2_1), k1_0, tacc2_0);
                                                                                tl2 += p2_1;
                                                                                let p3_0 = exp2(fma(q3_0.x, k0_0.x, fma(q3_0.y, k0_0.y, nb3)) + j0);
                                                                                tacc3_0 = fma(vec2<f32>(p3_0), k0_0, tacc3_0);
                                                                                tl3 += p3_0;
                                                                                let p3_1 = exp2(fma(q3_0.x, k1_0.x, fma(q3_0.y, k1_0.y, nb3)) + j1);
                                                                                tacc3_0 = fma(vec2<f32>(p3_1), k1_0, tacc3_0);
                                                                                tl3 += p3_1;
                                                                                let p4_0 = exp2(fma(q4_0.x, k0_0.x, fma(q4_0.y, k0_0.y, nb4)) + j0);
                                                                                tacc4_0 = fma(vec2<f32>(p4_0), k0_0, tacc4_0);
                                                                                tl4 += p4_0;
                                                                                let p4_1 = exp2(fma(q4_0.x, k1_0.x, fma(q4_0.y, k1_0.y, nb4)) + j1);
                                                                                tacc4_0 = fma(vec2<f32>(p4_1), k1_0, tacc4_0);
                                                                                tl4 += p4_1;
                                                                                let p5_0 = exp2(fma(q5_0.x, k0_0.x, fma(q5_0.y, k0_0.y, nb5)) + j0);
                                                                                tacc5_0 = fma(vec2<f32>(p5_0), k0_0, tacc5_0);
                                                                                tl5 += p5_0;
                                                                                let p5_1 = exp2(fma(q5_0.x, k1_0.x, fma(q5_0.y, k1_0.y, nb5)) + j1);
                                                                                tacc5_0 = fma(vec2<f32>(p5_1), k1_0, tacc5_0);
                                                                                tl5 += p5_1;
                                                                                let p6_0 = exp2(fma(q6_0.x, k0_0.x, fma(q6_0.y, k0_0.y, nb6)) + j0);
                                                                                tacc6_0 = fma(vec2<f32>(p6_0), k0_0, tacc6_0);
                                                                                tl6 += p6_0;
                                                                                let p6_1 = exp2(fma(q6_0.x, k1_0.x, fma(q6_0.y, k1_0.y, nb6)) + j1);
                                                                                tacc6_0 = fma(vec2<f32>(p6_1), k1_0, tacc6_0);
                                                                                tl6 += p6_1;
                                                                                let p7_0 = exp2(fma(q7_0.x, k0_0.x, fma(q7_0.y, k0_0.y, nb7)) + j0);
                                                                                tacc7_0 = fma(vec2<f32>(p7_0), k0_0, tacc7_0);
                                                                                tl7 += p7_0;
                                                                                let p7_1 = exp2(fma(q7_0.x, k1_0.x, fma(q7_0.y, k1_0.y, nb7)) + j1);
                                                                                tacc7_0 = fma(vec2<f32>(p7_1), k1_0, tacc7_0);
                                                                                tl7 += p7_1;
                                                                                let p8_0 = exp2(fma(q8_0.x, k0_0.x, fma(q8_0.y, k0_0.y, nb8)) + j0);
                                                                                tacc8_0 = fma(vec2<f32>(p8_0), k0_0, tacc8_0);
                                                                                tl8 += p8_0;
                                                                                let p8_1 = exp2(fma(q8_0.x, k1_0.x, fma(q8_0.y, k1_0.y, nb8)) + j1);
                                                                                tacc8_0 = fma(vec2<f32>(p8_1), k1_0, tacc8_0);
                                                                                tl8 += p8_1;
                                                                                let p9_0 = exp2(fma(q9_0.x, k0_0.x, fma(q9_0.y, k0_0.y, nb9)) + j0);
                                                                                tacc9_0 = fma(vec2<f32>(p9_0), k0_0, tacc9_0);
                                                                                tl9 += p9_0;
                                                                                let p9_1 = exp2(fma(q9_0.x, k1_0.x, fma(q9_0.y, k1_0.y, nb9)) + j1);
                                                                                tacc9_0 = fma(vec2<f32>(p9_1), k1_0, tacc9_0);
                                                                                tl9 += p9_1;
                                                                                let p10_0 = exp2(fma(q10_0.x, k0_0.x, fma(q10_0.y, k0_0.y, nb10)) + j0);
                                                                                tacc10_0 = fma(vec2<f32>(p10_0), k0_0, tacc10_0);
                                                                                tl10 += p10_0;
                                                                                let p10_1 = exp2(fma(q10_0.x, k1_0.x, fma(q10_0.y, k1_0.y, nb10)) + j1);
                                                                                tacc10_0 = fma(vec2<f32>(p10_1), k1_0, tacc10_0);
                                                                                tl10 += p10_1;
                                                                                let p11_0 = exp2(fma(q11_0.x, k0_0.x, fma(q11_0.y, k0_0.y, nb11)) + j0);
                                                                                tacc11_0 = fma(vec2<f32>(p11_0), k0_0, tacc11_0);
                                                                                tl11 += p11_0;
                                                                                let p11_1 = exp2(fma(q11_0.x, k1_0.x, fma(q11_0.y, k1_0.y, nb11)) + j1);
                                                                                tacc11_0 = fma(vec2<f32>(p11_1), k1_0, tacc11_0);
                                                                                tl11 += p11_1;
                                                                                let p12_0 = exp2(fma(q12_0.x, k0_0.x, fma(q12_0.y, k0_0.y, nb12)) + j0);
                                                                                tacc12_0 = fma(vec2<f32>(p12_0), k0_0, tacc12_0);
                                                                                tl12 += p12_0;
                                                                                let p12_1 = exp2(fma(q12_0.x, k1_0.x, fma(q12_0.y, k1_0.y, nb12)) + j1);
                                                                                tacc12_0 = fma(vec2<f32>(p12_1), k1_0, tacc12_0);
                                                                                tl12 += p12_1;
                                                                                let p13_0 = exp2(fma(q13_0.x, k0_0.x, fma(q13_0.y, k0_0.y, nb13)) + j0);
                                                                                tacc13_0 = fma(vec2<f32>(p13_0), k0_0, tacc13_0);
                                                                                tl13 += p13_0;
                                                                                let p13_1 = exp2(fma(q13_0.x, k1_0.x, fma(q13_0.y, k1_0.y, nb13)) + j1);
                                                                                tacc13_0 = fma(vec2<f32>(p13_1), k1_0, tacc13_0);
                                                                                tl13 += p13_1;
                                                                                let p14_0 = exp2(fma(q14_0.x, k0_0.x, fma(q14_0.y, k0_0.y, nb14)) + j0);
                                                                                tacc14_0 = fma(vec2<f32>(p14_0), k0_0, tacc14_0);
                                                                                tl14 += p14_0;
                                                                                let p14_1 = exp2(fma(q14_0.x, k1_0.x, fma(q14_0.y, k1_0.y, nb14)) + j1);
                                                                                tacc14_0 = fma(vec2<f32>(p14_1), k1_0, tacc14_0);
                                                                                tl14 += p14_1;
                                                                                let p15_0 = exp2(fma(q15_0.x, k0_0.x, fma(q15_0.y, k0_0.y, nb15)) + j0);
                                                                                tacc15_0 = fma(vec2<f32>(p15_0), k0_0, tacc15_0);
                                                                                tl15 += p15_0;
                                                                                let p15_1 = exp2(fma(q15_0.x, k1_0.x, fma(q15_0.y, k1_0.y, nb15)) + j1);
                                                                                tacc15_0 = fma(vec2<f32>(p15_1), k1_0, tacc15_0);
                                                                                tl15 += p15_1;
                                                                            }
                                                                            } else {
                                                                                let top = lim15;
                                                                                for (var kk = 0u; kk < top; kk += G) {
                                                                                    let kb = kk * DV;
                                                                                    let k0_0 = tile[kb].xy;
                                                                                    let j0 = alibi2 * f32(start + kk + 0u);
                                                                                    let k1_0 = tile[kb + 1u].xy;
                                                                                    let j1 = alibi2 * f32(start + kk + 1u);
                                                                                    let p0_0 = select(0.0, exp2(fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, nb0)) + j0), kk + 0u < lim0);
                                                                                    tacc0_0 = fma(vec2<f32>(p0_0), k0_0, tacc0_0);
                                                                                    tl0 += p0_0;
                                                                                    let p0_1 = select(0.0, exp2(fma(q0_0.x, k1_0.x, fma(q0_0.y, k1_0.y, nb0)) + j1), kk + 1u < lim0);
                                                                                    tacc0_0 = fma(vec2<f32>(p0_1), k1_0, tacc0_0);
                                                                                    tl0 += p0_1;
                                                                                    let p1_0 = select(0.0, exp2(fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, nb1)) + j0), kk + 0u < lim1);
                                                                                    tacc1_0 = fma(vec2<f32>(p1_0), k0_0, tacc1_0);
                                                                                    tl1 += p1_0;
                                                                                    let p1_1 = select(0.0, exp2(fma(q1_0.x, k1_0.x, fma(q1_0.y, k1_0.y, nb1)) + j1), kk + 1u < lim1);
                                                                                    tacc1_0 = fma(vec2<f32>(p1_1), k1_0, tacc1_0);
                                                                                    tl1 += p1_1;
                                                                                    let p2_0 = select(0.0, exp2(fma(q2_0.x, k0_0.x, fma(q2_0.y, k0_0.y, nb2)) + j0), kk + 0u < lim2);
                                                                                    tacc2_0 = fma(vec2<f32>(p2_0), k0_0, tacc2_0);
                                                                                    tl2 += p2_0;
                                                                                    let p2_1 = select(0.0, exp2(fma(q2_0.x, k1_0.x, fma(q2_0.y, k1_0.y, nb2)) + j1), kk + 1u < lim2);
                                                                                    tacc2_0 = fma(vec2<f32>(p2_1), k1_0, tacc2_0);
                                                                                    tl2 += p2_1;
                                                                                    let p3_0 = select(0.0, exp2(fma(q3_0.x, k0_0.x, fma(q3_0.y, k0_0.y, nb3)) + j0), kk + 0u < lim3);
                                                                                    tacc3_0 = fma(vec2<f32>(p3_0), k0_0, tacc3_0);
                                                                                    tl3 += p3_0;
                                                                                    let p3_1 = select(0.0, exp2(fma(q3_0.x, k1_0.x, fma(q3_0.y, k1_0.y, nb3)) + j1), kk + 1u < lim3);
                                                                                    tacc3_0 = fma(vec2<f32>(p3_1), k1_0, tacc3_0);
                                                                                    tl3 += p3_1;
                                                                                    let p4_0 = select(0.0, exp2(fma(q4_0.x, k0_0.x, fma(q4_0.y, k0_0.y, nb4)) + j0), kk + 0u < lim4);
                                                                                    tacc4_0 = fma(vec2<f32>(p4_0), k0_0, tacc4_0);
                                                                                    tl4 += p4_0;
                                                                                    let p4_1 = select(0.0, exp2(fma(q4_0.x, k1_0.x, fma(q4_0.y, k1_0.y, nb4)) + j1), kk + 1u < lim4);
                                                                                    tacc4_0 = fma(vec2<f32>(p4_1), k1_0, tacc4_0);
                                                                                    tl4 += p4_1;
                                                                                    let p5_0 = select(0.0, exp2(fma(q5_0.x, k0_0.x, fma(q5_0.y, k0_0.y, nb5)) + j0), kk + 0u < lim5);
                                                                                    tacc5_0 = fma(vec2<f32>(p5_0), k0_0, tacc5_0);
                                                                                    tl5 += p5_0;
                                                                                    let p5_1 = select(0.0, exp2(fma(q5_0.x, k1_0.x, fma(q5_0.y, k1_0.y, nb5)) + j1), kk + 1u < lim5);
                                                                                    tacc5_0 = fma(vec2<f32>(p5_1), k1_0, tacc5_0);
                                                                                    tl5 += p5_1;
                                                                                    let p6_0 = select(0.0, exp2(fma(q6_0.x, k0_0.x, fma(q6_0.y, k0_0.y, nb6)) + j0), kk + 0u < lim6);
                                                                                    tacc6_0 = fma(vec2<f32>(p6_0), k0_0, tacc6_0);
                                                                                    tl6 += p6_0;
                                                                                    let p6_1 = select(0.0, exp2(fma(q6_0.x, k1_0.x, fma(q6_0.y, k1_0.y, nb6)) + j1), kk + 1u < lim6);
                                                                                    tacc6_0 = fma(vec2<f32>(p6_1), k1_0, tacc6_0);
                                                                                    tl6 += p6_1;
                                                                                    let p7_0 = select(0.0, exp2(fma(q7_0.x, k0_0.x, fma(q7_0.y, k0_0.y, nb7)) + j0), kk + 0u < lim7);
                                                                                    tacc7_0 = fma(vec2<f32>(p7_0), k0_0, tacc7_0);
                                                                                    tl7 += p7_0;
                                                                                    let p7_1 = select(0.0, exp2(fma(q7_0.x, k1_0.x, fma(q7_0.y, k1_0.y, nb7)) + j1), kk + 1u < lim7);
                                                                                    tacc7_0 = fma(vec2<f32>(p7_1), k1_0, tacc7_0);
                                                                                    tl7 += p7_1;
                                                                                    let p8_0 = select(0.0, exp2(fma(q8_0.x, k0_0.x, fma(q8_0.y, k0_0.y, nb8)) + j0), kk + 0u < lim8);
                                                                                    tacc8_0 = fma(vec2<f32>(p8_0), k0_0, tacc8_0);
                                                                                    tl8 += p8_0;
                                                                                    let p8_1 = select(0.0, exp2(fma(q8_0.x, k1_0.x, fma(q8_0.y, k1_0.y, nb8)) + j1), kk + 1u < lim8);
                                                                                    tacc8_0 = fma(vec2<f32>(p8_1), k1_0, tacc8_0);
                                                                                    tl8 += p8_1;
                                                                                    let p9_0 = select(0.0, exp2(fma(q9_0.x, k0_0.x, fma(q9_0.y, k0_0.y, nb9)) + j0), kk + 0u < lim9);
                                                                                    tacc9_0 = fma(vec2<f32>(p9_0), k0_0, tacc9_0);
                                                                                    tl9 += p9_0;
                                                                                    let p9_1 = select(0.0, exp2(fma(q9_0.x, k1_0.x, fma(q9_0.y, k1_0.y, nb9)) + j1), kk + 1u < lim9);
                                                                                    tacc9_0 = fma(vec2<f32>(p9_1), k1_0, tacc9_0);
                                                                                    tl9 += p9_1;
                                                                                    let p10_0 = select(0.0, exp2(fma(q10_0.x, k0_0.x, fma(q10_0.y, k0_0.y, nb10)) + j0), kk + 0u < lim10);
                                                                                    tacc10_0 = fma(vec2<f32>(p10_0), k0_0, tacc10_0);
                                                                                    tl10 += p10_0;
                                                                                    let p10_1 = select(0.0, exp2(fma(q10_0.x, k1_0.x, fma(q10_0.y, k1_0.y, nb10)) + j1), kk + 1u < lim10);
                                                                                    tacc10_0 = fma(vec2<f32>(p10_1), k1_0, tacc10_0);
                                                                                    tl10 += p10_1;
                                                                                    let p11_0 = select(0.0, exp2(fma(q11_0.x, k0_0.x, fma(q11_0.y, k0_0.y, nb11)) + j0), kk + 0u < lim11);
                                                                                    tacc11_0 = fma(vec2<f32>(p11_0), k0_0, tacc11_0);
                                                                                    tl11 += p11_0;
                                                                                    let p11_1 = select(0.0, exp2(fma(q11_0.x, k1_0.x, fma(q11_0.y, k1_0.y, nb11)) + j1), kk + 1u < lim11);
                                                                                    tacc11_0 = fma(vec2<f32>(p11_1), k1_0, tacc11_0);
                                                                                    tl11 += p11_1;
                                                                                    let p12_0 = select(0.0, exp2(fma(q12_0.x, k0_0.x, fma(q12_0.y, k0_0.y, nb12)) + j0), kk + 0u < lim12);
                                                                                    tacc12_0 = fma(vec2<f32>(p12_0), k0_0, tacc12_0);
                                                                                    tl12 += p12_0;
                                                                                    let p12_1 = select(0.0, exp2(fma(q12_0.x, k1_0.x, fma(q12_0.y, k1_0.y, nb12)) + j1), kk + 1u < lim12);
                                                                                    tacc12_0 = fma(vec2<f32>(p12_1), k1_0, tacc12_0);
                                                                                    tl12 += p12_1;
                                                                                    let p13_0 = select(0.0, exp2(fma(q13_0.x, k0_0.x, fma(q13_0.y, k0_0.y, nb13)) + j0), kk + 0u < lim13);
                                                                                    tacc13_0 = fma(vec2<f32>(p13_0), k0_0, tacc13_0);
                                                                                    tl13 += p13_0;
                                                                                    let p13_1 = select(0.0, exp2(fma(q13_0.x, k1_0.x, fma(q13_0.y, k1_0.y, nb13)) + j1), kk + 1u < lim13);
                                                                                    tacc13_0 = fma(vec2<f32>(p13_1), k1_0, tacc13_0);
                                                                                    tl13 += p13_1;
                                                                                    let p14_0 = select(0.0, exp2(fma(q14_0.x, k0_0.x, fma(q14_0.y, k0_0.y, nb14)) + j0), kk + 0u < lim14);
                                                                                    tacc14_0 = fma(vec2<f32>(p14_0), k0_0, tacc14_0);
                                                                                    tl14 += p14_0;
                                                                                    let p14_1 = select(0.0, exp2(fma(q14_0.x, k1_0.x, fma(q14_0.y, k1_0.y, nb14)) + j1), kk + 1u < lim14);
                                                                                    tacc14_0 = fma(vec2<f32>(p14_1), k1_0, tacc14_0);
                                                                                    tl14 += p14_1;
                                                                                    let p15_0 = select(0.0, exp2(fma(q15_0.x, k0_0.x, fma(q15_0.y, k0_0.y, nb15)) + j0), kk + 0u < lim15);
                                                                                    tacc15_0 = fma(vec2<f32>(p15_0), k0_0, tacc15_0);
                                                                                    tl15 += p15_0;
                                                                                    let p15_1 = select(0.0, exp2(fma(q15_0.x, k1_0.x, fma(q15_0.y, k1_0.y, nb15)) + j1), kk + 1u < lim15);
                                                                                    tacc15_0 = fma(vec2<f32>(p15_1), k1_0, tacc15_0);
                                                                                    tl15 += p15_1;
                                                                                }
                                                                            }
                                                                            // A term beyond 2^64 (or an overflow): redo the tile with its exact maximum.
                                                                            if !(tl0 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim0; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, nb0)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m0 += delta;
                                                                                nb0 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc0_0 *= shrink;
                                                                                tacc0_0 = vec2<f32>(0.0);
                                                                                l0 *= shrink;
                                                                                tl0 = 0.0;
                                                                                for (var kk = 0u; kk < lim0; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, nb0)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc0_0 = fma(vec2<f32>(p), kv_0, tacc0_0);
                                                                                    tl0 += p;
                                                                                }
                                                                            }
                                                                            acc0_0 += tacc0_0;
                                                                            l0 += tl0;
                                                                            if !(tl1 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim1; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, nb1)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m1 += delta;
                                                                                nb1 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc1_0 *= shrink;
                                                                                tacc1_0 = vec2<f32>(0.0);
                                                                                l1 *= shrink;
                                                                                tl1 = 0.0;
                                                                                for (var kk = 0u; kk < lim1; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, nb1)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc1_0 = fma(vec2<f32>(p), kv_0, tacc1_0);
                                                                                    tl1 += p;
                                                                                }
                                                                            }
                                                                            acc1_0 += tacc1_0;
                                                                            l1 += tl1;
                                                                            if !(tl2 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim2; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q2_0.x, kv_0.x, fma(q2_0.y, kv_0.y, nb2)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m2 += delta;
                                                                                nb2 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc2_0 *= shrink;
                                                                                tacc2_0 = vec2<f32>(0.0);
                                                                                l2 *= shrink;
                                                                                tl2 = 0.0;
                                                                                for (var kk = 0u; kk < lim2; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q2_0.x, kv_0.x, fma(q2_0.y, kv_0.y, nb2)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc2_0 = fma(vec2<f32>(p), kv_0, tacc2_0);
                                                                                    tl2 += p;
                                                                                }
                                                                            }
                                                                            acc2_0 += tacc2_0;
                                                                            l2 += tl2;
                                                                            if !(tl3 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim3; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q3_0.x, kv_0.x, fma(q3_0.y, kv_0.y, nb3)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m3 += delta;
                                                                                nb3 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc3_0 *= shrink;
                                                                                tacc3_0 = vec2<f32>(0.0);
                                                                                l3 *= shrink;
                                                                                tl3 = 0.0;
                                                                                for (var kk = 0u; kk < lim3; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q3_0.x, kv_0.x, fma(q3_0.y, kv_0.y, nb3)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc3_0 = fma(vec2<f32>(p), kv_0, tacc3_0);
                                                                                    tl3 += p;
                                                                                }
                                                                            }
                                                                            acc3_0 += tacc3_0;
                                                                            l3 += tl3;
                                                                            if !(tl4 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim4; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q4_0.x, kv_0.x, fma(q4_0.y, kv_0.y, nb4)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m4 += delta;
                                                                                nb4 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc4_0 *= shrink;
                                                                                tacc4_0 = vec2<f32>(0.0);
                                                                                l4 *= shrink;
                                                                                tl4 = 0.0;
                                                                                for (var kk = 0u; kk < lim4; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q4_0.x, kv_0.x, fma(q4_0.y, kv_0.y, nb4)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc4_0 = fma(vec2<f32>(p), kv_0, tacc4_0);
                                                                                    tl4 += p;
                                                                                }
                                                                            }
                                                                            acc4_0 += tacc4_0;
                                                                            l4 += tl4;
                                                                            if !(tl5 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim5; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q5_0.x, kv_0.x, fma(q5_0.y, kv_0.y, nb5)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m5 += delta;
                                                                                nb5 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc5_0 *= shrink;
                                                                                tacc5_0 = vec2<f32>(0.0);
                                                                                l5 *= shrink;
                                                                                tl5 = 0.0;
                                                                                for (var kk = 0u; kk < lim5; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q5_0.x, kv_0.x, fma(q5_0.y, kv_0.y, nb5)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc5_0 = fma(vec2<f32>(p), kv_0, tacc5_0);
                                                                                    tl5 += p;
                                                                                }
                                                                            }
                                                                            acc5_0 += tacc5_0;
                                                                            l5 += tl5;
                                                                            if !(tl6 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim6; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q6_0.x, kv_0.x, fma(q6_0.y, kv_0.y, nb6)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m6 += delta;
                                                                                nb6 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc6_0 *= shrink;
                                                                                tacc6_0 = vec2<f32>(0.0);
                                                                                l6 *= shrink;
                                                                                tl6 = 0.0;
                                                                                for (var kk = 0u; kk < lim6; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q6_0.x, kv_0.x, fma(q6_0.y, kv_0.y, nb6)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc6_0 = fma(vec2<f32>(p), kv_0, tacc6_0);
                                                                                    tl6 += p;
                                                                                }
                                                                            }
                                                                            acc6_0 += tacc6_0;
                                                                            l6 += tl6;
                                                                            if !(tl7 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim7; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q7_0.x, kv_0.x, fma(q7_0.y, kv_0.y, nb7)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m7 += delta;
                                                                                nb7 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc7_0 *= shrink;
                                                                                tacc7_0 = vec2<f32>(0.0);
                                                                                l7 *= shrink;
                                                                                tl7 = 0.0;
                                                                                for (var kk = 0u; kk < lim7; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q7_0.x, kv_0.x, fma(q7_0.y, kv_0.y, nb7)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc7_0 = fma(vec2<f32>(p), kv_0, tacc7_0);
                                                                                    tl7 += p;
                                                                                }
                                                                            }
                                                                            acc7_0 += tacc7_0;
                                                                            l7 += tl7;
                                                                            if !(tl8 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim8; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q8_0.x, kv_0.x, fma(q8_0.y, kv_0.y, nb8)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m8 += delta;
                                                                                nb8 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc8_0 *= shrink;
                                                                                tacc8_0 = vec2<f32>(0.0);
                                                                                l8 *= shrink;
                                                                                tl8 = 0.0;
                                                                                for (var kk = 0u; kk < lim8; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q8_0.x, kv_0.x, fma(q8_0.y, kv_0.y, nb8)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc8_0 = fma(vec2<f32>(p), kv_0, tacc8_0);
                                                                                    tl8 += p;
                                                                                }
                                                                            }
                                                                            acc8_0 += tacc8_0;
                                                                            l8 += tl8;
                                                                            if !(tl9 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim9; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q9_0.x, kv_0.x, fma(q9_0.y, kv_0.y, nb9)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m9 += delta;
                                                                                nb9 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc9_0 *= shrink;
                                                                                tacc9_0 = vec2<f32>(0.0);
                                                                                l9 *= shrink;
                                                                                tl9 = 0.0;
                                                                                for (var kk = 0u; kk < lim9; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q9_0.x, kv_0.x, fma(q9_0.y, kv_0.y, nb9)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc9_0 = fma(vec2<f32>(p), kv_0, tacc9_0);
                                                                                    tl9 += p;
                                                                                }
                                                                            }
                                                                            acc9_0 += tacc9_0;
                                                                            l9 += tl9;
                                                                            if !(tl10 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim10; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q10_0.x, kv_0.x, fma(q10_0.y, kv_0.y, nb10)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m10 += delta;
                                                                                nb10 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc10_0 *= shrink;
                                                                                tacc10_0 = vec2<f32>(0.0);
                                                                                l10 *= shrink;
                                                                                tl10 = 0.0;
                                                                                for (var kk = 0u; kk < lim10; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q10_0.x, kv_0.x, fma(q10_0.y, kv_0.y, nb10)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc10_0 = fma(vec2<f32>(p), kv_0, tacc10_0);
                                                                                    tl10 += p;
                                                                                }
                                                                            }
                                                                            acc10_0 += tacc10_0;
                                                                            l10 += tl10;
                                                                            if !(tl11 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim11; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q11_0.x, kv_0.x, fma(q11_0.y, kv_0.y, nb11)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m11 += delta;
                                                                                nb11 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc11_0 *= shrink;
                                                                                tacc11_0 = vec2<f32>(0.0);
                                                                                l11 *= shrink;
                                                                                tl11 = 0.0;
                                                                                for (var kk = 0u; kk < lim11; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q11_0.x, kv_0.x, fma(q11_0.y, kv_0.y, nb11)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc11_0 = fma(vec2<f32>(p), kv_0, tacc11_0);
                                                                                    tl11 += p;
                                                                                }
                                                                            }
                                                                            acc11_0 += tacc11_0;
                                                                            l11 += tl11;
                                                                            if !(tl12 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim12; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q12_0.x, kv_0.x, fma(q12_0.y, kv_0.y, nb12)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m12 += delta;
                                                                                nb12 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc12_0 *= shrink;
                                                                                tacc12_0 = vec2<f32>(0.0);
                                                                                l12 *= shrink;
                                                                                tl12 = 0.0;
                                                                                for (var kk = 0u; kk < lim12; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q12_0.x, kv_0.x, fma(q12_0.y, kv_0.y, nb12)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc12_0 = fma(vec2<f32>(p), kv_0, tacc12_0);
                                                                                    tl12 += p;
                                                                                }
                                                                            }
                                                                            acc12_0 += tacc12_0;
                                                                            l12 += tl12;
                                                                            if !(tl13 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim13; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q13_0.x, kv_0.x, fma(q13_0.y, kv_0.y, nb13)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m13 += delta;
                                                                                nb13 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc13_0 *= shrink;
                                                                                tacc13_0 = vec2<f32>(0.0);
                                                                                l13 *= shrink;
                                                                                tl13 = 0.0;
                                                                                for (var kk = 0u; kk < lim13; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q13_0.x, kv_0.x, fma(q13_0.y, kv_0.y, nb13)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc13_0 = fma(vec2<f32>(p), kv_0, tacc13_0);
                                                                                    tl13 += p;
                                                                                }
                                                                            }
                                                                            acc13_0 += tacc13_0;
                                                                            l13 += tl13;
                                                                            if !(tl14 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim14; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q14_0.x, kv_0.x, fma(q14_0.y, kv_0.y, nb14)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m14 += delta;
                                                                                nb14 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc14_0 *= shrink;
                                                                                tacc14_0 = vec2<f32>(0.0);
                                                                                l14 *= shrink;
                                                                                tl14 = 0.0;
                                                                                for (var kk = 0u; kk < lim14; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q14_0.x, kv_0.x, fma(q14_0.y, kv_0.y, nb14)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc14_0 = fma(vec2<f32>(p), kv_0, tacc14_0);
                                                                                    tl14 += p;
                                                                                }
                                                                            }
                                                                            acc14_0 += tacc14_0;
                                                                            l14 += tl14;
                                                                            if !(tl15 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < lim15; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q15_0.x, kv_0.x, fma(q15_0.y, kv_0.y, nb15)) + alibi2 * f32(start + kk);
                                                                                    top = max(top, s);
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                m15 += delta;
                                                                                nb15 -= delta;
                                                                                let shrink = exp2(-delta);
                                                                                acc15_0 *= shrink;
                                                                                tacc15_0 = vec2<f32>(0.0);
                                                                                l15 *= shrink;
                                                                                tl15 = 0.0;
                                                                                for (var kk = 0u; kk < lim15; kk++) {
                                                                                    let kv_0 = tile[kk * DV + 0u].xy;
                                                                                    let s = fma(q15_0.x, kv_0.x, fma(q15_0.y, kv_0.y, nb15)) + alibi2 * f32(start + kk);
                                                                                    let p = exp2(s);
                                                                                    tacc15_0 = fma(vec2<f32>(p), kv_0, tacc15_0);
                                                                                    tl15 += p;
                                                                                }
                                                                            }
                                                                            acc15_0 += tacc15_0;
                                                                            l15 += tl15;
                                                                            start += TK;
                                                                        }
                                                                        if ok0 {
                                                                            let s = state0 + i0;
                                                                            ml_state[s] = vec2<f32>(m0, l0);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc0_0, 0.0, 0.0);
                                                                        }
                                                                        if ok1 {
                                                                            let s = state0 + i1;
                                                                            ml_state[s] = vec2<f32>(m1, l1);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc1_0, 0.0, 0.0);
                                                                        }
                                                                        if ok2 {
                                                                            let s = state0 + i2;
                                                                            ml_state[s] = vec2<f32>(m2, l2);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc2_0, 0.0, 0.0);
                                                                        }
                                                                        if ok3 {
                                                                            let s = state0 + i3;
                                                                            ml_state[s] = vec2<f32>(m3, l3);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc3_0, 0.0, 0.0);
                                                                        }
                                                                        if ok4 {
                                                                            let s = state0 + i4;
                                                                            ml_state[s] = vec2<f32>(m4, l4);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc4_0, 0.0, 0.0);
                                                                        }
                                                                        if ok5 {
                                                                            let s = state0 + i5;
                                                                            ml_state[s] = vec2<f32>(m5, l5);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc5_0, 0.0, 0.0);
                                                                        }
                                                                        if ok6 {
                                                                            let s = state0 + i6;
                                                                            ml_state[s] = vec2<f32>(m6, l6);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc6_0, 0.0, 0.0);
                                                                        }
                                                                        if ok7 {
                                                                            let s = state0 + i7;
                                                                            ml_state[s] = vec2<f32>(m7, l7);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc7_0, 0.0, 0.0);
                                                                        }
                                                                        if ok8 {
                                                                            let s = state0 + i8;
                                                                            ml_state[s] = vec2<f32>(m8, l8);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc8_0, 0.0, 0.0);
                                                                        }
                                                                        if ok9 {
                                                                            let s = state0 + i9;
                                                                            ml_state[s] = vec2<f32>(m9, l9);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc9_0, 0.0, 0.0);
                                                                        }
                                                                        if ok10 {
                                                                            let s = state0 + i10;
                                                                            ml_state[s] = vec2<f32>(m10, l10);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc10_0, 0.0, 0.0);
                                                                        }
                                                                        if ok11 {
                                                                            let s = state0 + i11;
                                                                            ml_state[s] = vec2<f32>(m11, l11);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc11_0, 0.0, 0.0);
                                                                        }
                                                                        if ok12 {
                                                                            let s = state0 + i12;
                                                                            ml_state[s] = vec2<f32>(m12, l12);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc12_0, 0.0, 0.0);
                                                                        }
                                                                        if ok13 {
                                                                            let s = state0 + i13;
                                                                            ml_state[s] = vec2<f32>(m13, l13);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc13_0, 0.0, 0.0);
                                                                        }
                                                                        if ok14 {
                                                                            let s = state0 + i14;
                                                                            ml_state[s] = vec2<f32>(m14, l14);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc14_0, 0.0, 0.0);
                                                                        }
                                                                        if ok15 {
                                                                            let s = state0 + i15;
                                                                            ml_state[s] = vec2<f32>(m15, l15);
                                                                            acc_state[s * DV + 0u] = vec4<f32>(acc15_0, 0.0, 0.0);
                                                                        }
                                                                    }
