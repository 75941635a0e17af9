// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 5u;
const DV: u32 = 2u;
const WG: u32 = 64u;
const TK: u32 = 256u;
const TILE_VECS: u32 = 512u;
const QB: u32 = 256u;
const G: u32 = 4u;
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
    let first_1 = vec4<f32>(x[(key_base + min(split_start, params.n_keys - 1u)) * D + 4u], 0.0, 0.0, 0.0).x;
    let i0 = q0 + lid.x + 0u;
    let ok0 = i0 < params.n_queries;
    let t0 = system * params.n_queries + min(i0, params.n_queries - 1u);
    let q0_0 = q[t0 * DV + 0u];
    var acc0_0 = vec4<f32>(0.0);
    let q0_1 = q[t0 * DV + 1u].x;
    var acc0_1 = f32(0.0);
    var m0 = F32_LOWEST;
    var l0 = 0.0;
    if first {
        if (split_start <= i0) & (split_start < params.n_keys) {
            m0 = fma(q0_0.x, first_0.x, fma(q0_0.y, first_0.y, fma(q0_0.z, first_0.z, fma(q0_0.w, first_0.w, fma(q0_1, first_1, 0.0))))) - alibi2 * f32(i0 - split_start);
        }
        } else {
            let ml = ml_state[state0 + min(i0, params.n_queries - 1u)];
            m0 = ml.x;
            l0 = ml.y;
            acc0_0 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 0u];
            acc0_1 = acc_state[(state0 + min(i0, params.n_queries - 1u)) * DV + 1u].x;
        }
        var nb0 = -(m0 + alibi2 * f32(i0));
        let i1 = q0 + lid.x + 64u;
        let ok1 = i1 < params.n_queries;
        let t1 = system * params.n_queries + min(i1, params.n_queries - 1u);
        let q1_0 = q[t1 * DV + 0u];
        var acc1_0 = vec4<f32>(0.0);
        let q1_1 = q[t1 * DV + 1u].x;
        var acc1_1 = f32(0.0);
        var m1 = F32_LOWEST;
        var l1 = 0.0;
        if first {
            if (split_start <= i1) & (split_start < params.n_keys) {
                m1 = fma(q1_0.x, first_0.x, fma(q1_0.y, first_0.y, fma(q1_0.z, first_0.z, fma(q1_0.w, first_0.w, fma(q1_1, first_1, 0.0))))) - alibi2 * f32(i1 - split_start);
            }
            } else {
                let ml = ml_state[state0 + min(i1, params.n_queries - 1u)];
                m1 = ml.x;
                l1 = ml.y;
                acc1_0 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 0u];
                acc1_1 = acc_state[(state0 + min(i1, params.n_queries - 1u)) * DV + 1u].x;
            }
            var nb1 = -(m1 + alibi2 * f32(i1));
            let i2 = q0 + lid.x + 128u;
            let ok2 = i2 < params.n_queries;
            let t2 = system * params.n_queries + min(i2, params.n_queries - 1u);
            let q2_0 = q[t2 * DV + 0u];
            var acc2_0 = vec4<f32>(0.0);
            let q2_1 = q[t2 * DV + 1u].x;
            var acc2_1 = f32(0.0);
            var m2 = F32_LOWEST;
            var l2 = 0.0;
            if first {
                if (split_start <= i2) & (split_start < params.n_keys) {
                    m2 = fma(q2_0.x, first_0.x, fma(q2_0.y, first_0.y, fma(q2_0.z, first_0.z, fma(q2_0.w, first_0.w, fma(q2_1, first_1, 0.0))))) - alibi2 * f32(i2 - split_start);
                }
                } else {
                    let ml = ml_state[state0 + min(i2, params.n_queries - 1u)];
                    m2 = ml.x;
                    l2 = ml.y;
                    acc2_0 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 0u];
                    acc2_1 = acc_state[(state0 + min(i2, params.n_queries - 1u)) * DV + 1u].x;
                }
                var nb2 = -(m2 + alibi2 * f32(i2));
                let i3 = q0 + lid.x + 192u;
                let ok3 = i3 < params.n_queries;
                let t3 = system * params.n_queries + min(i3, params.n_queries - 1u);
                let q3_0 = q[t3 * DV + 0u];
                var acc3_0 = vec4<f32>(0.0);
                let q3_1 = q[t3 * DV + 1u].x;
                var acc3_1 = f32(0.0);
                var m3 = F32_LOWEST;
                var l3 = 0.0;
                if first {
                    if (split_start <= i3) & (split_start < params.n_keys) {
                        m3 = fma(q3_0.x, first_0.x, fma(q3_0.y, first_0.y, fma(q3_0.z, first_0.z, fma(q3_0.w, first_0.w, fma(q3_1, first_1, 0.0))))) - alibi2 * f32(i3 - split_start);
                    }
                    } else {
                        let ml = ml_state[state0 + min(i3, params.n_queries - 1u)];
                        m3 = ml.x;
                        l3 = ml.y;
                        acc3_0 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 0u];
                        acc3_1 = acc_state[(state0 + min(i3, params.n_queries - 1u)) * DV + 1u].x;
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
                            if e < len {
                                let o = (key_base + start + e) * D;
                                key_0 = vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]);
                                key_1 = vec4<f32>(x[o + 4u], 0.0, 0.0, 0.0);
                            }
                            tile[e * DV + 0u] = key_0;
                            tile[e * DV + 1u] = key_1;
                        }
                        workgroupBarrier();
                        // Keys of this tile each query sees.
                        let lim0 = select(0u, min(len, i0 + 1u - start), i0 >= start);
                        var tacc0_0 = vec4<f32>(0.0);
                        var tacc0_1 = f32(0.0);
                        var tl0 = 0.0;
                        let lim1 = select(0u, min(len, i1 + 1u - start), i1 >= start);
                        var tacc1_0 = vec4<f32>(0.0);
                        var tacc1_1 = f32(0.0);
                        var tl1 = 0.0;
                        let lim2 = select(0u, min(len, i2 + 1u - start), i2 >= start);
                        var tacc2_0 = vec4<f32>(0.0);
                        var tacc2_1 = f32(0.0);
                        var tl2 = 0.0;
                        let lim3 = select(0u, min(len, i3 + 1u - start), i3 >= start);
                        var tacc3_0 = vec4<f32>(0.0);
                        var tacc3_1 = f32(0.0);
                        var tl3 = 0.0;
                        if (lim0 == TK) & (lim1 == TK) & (lim2 == TK) & (lim3 == TK) {
                            for (var kk = 0u; kk < TK; kk += G) {
                                let kb = kk * DV;
                                let k0_0 = tile[kb];
                                let k0_1 = tile[kb + 1u].x;
                                let j0 = alibi2 * f32(start + kk + 0u);
                                let k1_0 = tile[kb + 2u];
                                let k1_1 = tile[kb + 3u].x;
                                let j1 = alibi2 * f32(start + kk + 1u);
                                let k2_0 = tile[kb + 4u];
                                let k2_1 = tile[kb + 5u].x;
                                let j2 = alibi2 * f32(start + kk + 2u);
                                let k3_0 = tile[kb + 6u];
                                let k3_1 = tile[kb + 7u].x;
                                let j3 = alibi2 * f32(start + kk + 3u);
                                let p0_0 = exp2(fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, fma(q0_0.z, k0_0.z, fma(q0_0.w, k0_0.w, fma(q0_1, k0_1, nb0))))) + j0);
                                tacc0_0 = fma(vec4<f32>(p0_0), k0_0, tacc0_0);
                                tacc0_1 = fma(f32(p0_0), k0_1, tacc0_1);
                                tl0 += p0_0;
                                let p0_1 = exp2(fma(q0_0.x, k1_0.x, fma(q0_0.y, k1_0.y, fma(q0_0.z, k1_0.z, fma(q0_0.w, k1_0.w, fma(q0_1, k1_1, nb0))))) + j1);
                                tacc0_0 = fma(vec4<f32>(p0_1), k1_0, tacc0_0);
                                tacc0_1 = fma(f32(p0_1), k1_1, tacc0_1);
                                tl0 += p0_1;
                                let p0_2 = exp2(fma(q0_0.x, k2_0.x, fma(q0_0.y, k2_0.y, fma(q0_0.z, k2_0.z, fma(q0_0.w, k2_0.w, fma(q0_1, k2_1, nb0))))) + j2);
                                tacc0_0 = fma(vec4<f32>(p0_2), k2_0, tacc0_0);
                                tacc0_1 = fma(f32(p0_2), k2_1, tacc0_1);
                                tl0 += p0_2;
                                let p0_3 = exp2(fma(q0_0.x, k3_0.x, fma(q0_0.y, k3_0.y, fma(q0_0.z, k3_0.z, fma(q0_0.w, k3_0.w, fma(q0_1, k3_1, nb0))))) + j3);
                                tacc0_0 = fma(vec4<f32>(p0_3), k3_0, tacc0_0);
                                tacc0_1 = fma(f32(p0_3), k3_1, tacc0_1);
                                tl0 += p0_3;
                                let p1_0 = exp2(fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, fma(q1_0.z, k0_0.z, fma(q1_0.w, k0_0.w, fma(q1_1, k0_1, nb1))))) + j0);
                                tacc1_0 = fma(vec4<f32>(p1_0), k0_0, tacc1_0);
                                tacc1_1 = fma(f32(p1_0), k0_1, tacc1_1);
                                tl1 += p1_0;
                                let p1_1 = exp2(fma(q1_0.x, k1_0.x, fma(q1_0.y, k1_0.y, fma(q1_0.z, k1_0.z, fma(q1_0.w, k1_0.w, fma(q1_1, k1_1, nb1))))) + j1);
                                tacc1_0 = fma(vec4<f32>(p1_1), k1_0, tacc1_0);
                                tacc1_1 = fma(f32(p1_1), k1_1, tacc1_1);
                                tl1 += p1_1;
                                let p1_2 = exp2(fma(q1_0.x, k2_0.x, fma(q1_0.y, k2_0.y, fma(q1_0.z, k2_0.z, fma(q1_0.w, k2_0.w, fma(q1_1, k2_1, nb1))))) + j2);
                                tacc1_0 = fma(vec4<f32>(p1_2), k2_0, tacc1_0);
                                tacc1_1 = fma(f32(p1_2), k2_1, tacc1_1);
                                tl1 += p1_2;
                                let p1_3 = exp2(fma(q1_0.x, k3_0.x, fma(q1_0.y, k3_0.y, fma(q1_0.z, k3_0.z, fma(q1_0.w, k3_0.w, fma(q1_1, k3_1, nb1))))) + j3);
                                tacc1_0 = fma(vec4<f32>(p1_3), k3_0, tacc1_0);
                                tacc1_1 = fma(f32(p1_3), k3_1, tacc1_1);
                                tl1 += p1_3;
                                let p2_0 = exp2(fma(q2_0.x, k0_0.x, fma(q2_0.y, k0_0.y, fma(q2_0.z, k0_0.z, fma(q2_0.w, k0_0.w, fma(q2_1, k0_1, nb2))))) + j0);
                                tacc2_0 = fma(vec4<f32>(p2_0), k0_0, tacc2_0);
                                tacc2_1 = fma(f32(p2_0), k0_1, tacc2_1);
                                tl2 += p2_0;
                                let p2_1 = exp2(fma(q2_0.x, k1_0.x, fma(q2_0.y, k1_0.y, fma(q2_0.z, k1_0.z, fma(q2_0.w, k1_0.w, fma(q2_1, k1_1, nb2))))) + j1);
                                tacc2_0 = fma(vec4<f32>(p2_1), k1_0, tacc2_0);
                                tacc2_1 = fma(f32(p2_1), k1_1, tacc2_1);
                                tl2 += p2_1;
                                let p2_2 = exp2(fma(q2_0.x, k2_0.x, fma(q2_0.y, k2_0.y, fma(q2_0.z, k2_0.z, fma(q2_0.w, k2_0.w, fma(q2_1, k2_1, nb2))))) + j2);
                                tacc2_0 = fma(vec4<f32>(p2_2), k2_0, tacc2_0);
                                tacc2_1 = fma(f32(p2_2), k2_1, tacc2_1);
                                tl2 += p2_2;
                                let p2_3 = exp2(fma(q2_0.x, k3_0.x, fma(q2_0.y, k3_0.y, fma(q2_0.z, k3_0.z, fma(q2_0.w, k3_0.w, fma(q2_1, k3_1, nb2))))) + j3);
                                tacc2_0 = fma(vec4<f32>(p2_3), k3_0, tacc2_0);
                                tacc2_1 = fma(f32(p2_3), k3_1, tacc2_1);
                                tl2 += p2_3;
                                let p3_0 = exp2(fma(q3_0.x, k0_0.x, fma(q3_0.y, k0_0.y, fma(q3_0.z, k0_0.z, fma(q3_0.w, k0_0.w, fma(q3_1, k0_1, nb3))))) + j0);
                                tacc3_0 = fma(vec4<f32>(p3_0), k0_0, tacc3_0);
                                tacc3_1 = fma(f32(p3_0), k0_1, tacc3_1);
                                tl3 += p3_0;
                                let p3_1 = exp2(fma(q3_0.x, k1_0.x, fma(q3_0.y, k1_0.y, fma(q3_0.z, k1_0.z, fma(q3_0.w, k1_0.w, fma(q3_1, k1_1, nb3))))) + j1);
                                tacc3_0 = fma(vec4<f32>(p3_1), k1_0, tacc3_0);
                                tacc3_1 = fma(f32(p3_1), k1_1, tacc3_1);
                                tl3 += p3_1;
                                let p3_2 = exp2(fma(q3_0.x, k2_0.x, fma(q3_0.y, k2_0.y, fma(q3_0.z, k2_0.z, fma(q3_0.w, k2_0.w, fma(q3_1, k2_1, nb3))))) + j2);
                                tacc3_0 = fma(vec4<f32>(p3_2), k2_0, tacc3_0);
                                tacc3_1 = fma(f32(p3_2), k2_1, tacc3_1);
                                tl3 += p3_2;
                                let p3_3 = exp2(fma(q3_0.x, k3_0.x, fma(q3_0.y, k3_0.y, fma(q3_0.z, k3_0.z, fma(q3_0.w, k3_0.w, fma(q3_1, k3_1, nb3))))) + j3);
                                tacc3_0 = fma(vec4<f32>(p3_3), k3_0, tacc3_0);
                                tacc3_1 = fma(f32(p3_3), k3_1, tacc3_1);
                                tl3 += p3_3;
                            }
                            } else {
                                let top = lim3;
                                for (var kk = 0u; kk < top; kk += G) {
                                    let kb = kk * DV;
                                    let k0_0 = tile[kb];
                                    let k0_1 = tile[kb + 1u].x;
                                    let j0 = alibi2 * f32(start + kk + 0u);
                                    let k1_0 = tile[kb + 2u];
                                    let k1_1 = tile[kb + 3u].x;
                                    let j1 = alibi2 * f32(start + kk + 1u);
                                    let k2_0 = tile[kb + 4u];
                                    let k2_1 = tile[kb + 5u].x;
                                    let j2 = alibi2 * f32(start + kk + 2u);
                                    let k3_0 = tile[kb + 6u];
                                    let k3_1 = tile[kb + 7u].x;
                                    let j3 = alibi2 * f32(start + kk + 3u);
                                    let p0_0 = select(0.0, exp2(fma(q0_0.x, k0_0.x, fma(q0_0.y, k0_0.y, fma(q0_0.z, k0_0.z, fma(q0_0.w, k0_0.w, fma(q0_1, k0_1, nb0))))) + j0), kk + 0u < lim0);
                                    tacc0_0 = fma(vec4<f32>(p0_0), k0_0, tacc0_0);
                                    tacc0_1 = fma(f32(p0_0), k0_1, tacc0_1);
                                    tl0 += p0_0;
                                    let p0_1 = select(0.0, exp2(fma(q0_0.x, k1_0.x, fma(q0_0.y, k1_0.y, fma(q0_0.z, k1_0.z, fma(q0_0.w, k1_0.w, fma(q0_1, k1_1, nb0))))) + j1), kk + 1u < lim0);
                                    tacc0_0 = fma(vec4<f32>(p0_1), k1_0, tacc0_0);
                                    tacc0_1 = fma(f32(p0_1), k1_1, tacc0_1);
                                    tl0 += p0_1;
                                    let p0_2 = select(0.0, exp2(fma(q0_0.x, k2_0.x, fma(q0_0.y, k2_0.y, fma(q0_0.z, k2_0.z, fma(q0_0.w, k2_0.w, fma(q0_1, k2_1, nb0))))) + j2), kk + 2u < lim0);
                                    tacc0_0 = fma(vec4<f32>(p0_2), k2_0, tacc0_0);
                                    tacc0_1 = fma(f32(p0_2), k2_1, tacc0_1);
                                    tl0 += p0_2;
                                    let p0_3 = select(0.0, exp2(fma(q0_0.x, k3_0.x, fma(q0_0.y, k3_0.y, fma(q0_0.z, k3_0.z, fma(q0_0.w, k3_0.w, fma(q0_1, k3_1, nb0))))) + j3), kk + 3u < lim0);
                                    tacc0_0 = fma(vec4<f32>(p0_3), k3_0, tacc0_0);
                                    tacc0_1 = fma(f32(p0_3), k3_1, tacc0_1);
                                    tl0 += p0_3;
                                    let p1_0 = select(0.0, exp2(fma(q1_0.x, k0_0.x, fma(q1_0.y, k0_0.y, fma(q1_0.z, k0_0.z, fma(q1_0.w, k0_0.w, fma(q1_1, k0_1, nb1))))) + j0), kk + 0u < lim1);
                                    tacc1_0 = fma(vec4<f32>(p1_0), k0_0, tacc1_0);
                                    tacc1_1 = fma(f32(p1_0), k0_1, tacc1_1);
                                    tl1 += p1_0;
                                    let p1_1 = select(0.0, exp2(fma(q1_0.x, k1_0.x, fma(q1_0.y, k1_0.y, fma(q1_0.z, k1_0.z, fma(q1_0.w, k1_0.w, fma(q1_1, k1_1, nb1))))) + j1), kk + 1u < lim1);
                                    tacc1_0 = fma(vec4<f32>(p1_1), k1_0, tacc1_0);
                                    tacc1_1 = fma(f32(p1_1), k1_1, tacc1_1);
                                    tl1 += p1_1;
                                    let p1_2 = select(0.0, exp2(fma(q1_0.x, k2_0.x, fma(q1_0.y, k2_0.y, fma(q1_0.z, k2_0.z, fma(q1_0.w, k2_0.w, fma(q1_1, k2_1, nb1))))) + j2), kk + 2u < lim1);
                                    tacc1_0 = fma(vec4<f32>(p1_2), k2_0, tacc1_0);
                                    tacc1_1 = fma(f32(p1_2), k2_1, tacc1_1);
                                    tl1 += p1_2;
                                    let p1_3 = select(0.0, exp2(fma(q1_0.x, k3_0.x, fma(q1_0.y, k3_0.y, fma(q1_0.z, k3_0.z, fma(q1_0.w, k3_0.w, fma(q1_1, k3_1, nb1))))) + j3), kk + 3u < lim1);
                                    tacc1_0 = fma(vec4<f32>(p1_3), k3_0, tacc1_0);
                                    tacc1_1 = fma(f32(p1_3), k3_1, tacc1_1);
                                    tl1 += p1_3;
                                    let p2_0 = select(0.0, exp2(fma(q2_0.x, k0_0.x, fma(q2_0.y, k0_0.y, fma(q2_0.z, k0_0.z, fma(q2_0.w, k0_0.w, fma(q2_1, k0_1, nb2))))) + j0), kk + 0u < lim2);
                                    tacc2_0 = fma(vec4<f32>(p2_0), k0_0, tacc2_0);
                                    tacc2_1 = fma(f32(p2_0), k0_1, tacc2_1);
                                    tl2 += p2_0;
                                    let p2_1 = select(0.0, exp2(fma(q2_0.x, k1_0.x, fma(q2_0.y, k1_0.y, fma(q2_0.z, k1_0.z, fma(q2_0.w, k1_0.w, fma(q2_1, k1_1, nb2))))) + j1), kk + 1u < lim2);
                                    tacc2_0 = fma(vec4<f32>(p2_1), k1_0, tacc2_0);
                                    tacc2_1 = fma(f32(p2_1), k1_1, tacc2_1);
                                    tl2 += p2_1;
                                    let p2_2 = select(0.0, exp2(fma(q2_0.x, k2_0.x, fma(q2_0.y, k2_0.y, fma(q2_0.z, k2_0.z, fma(q2_0.w, k2_0.w, fma(q2_1, k2_1, nb2))))) + j2), kk + 2u < lim2);
                                    tacc2_0 = fma(vec4<f32>(p2_2), k2_0, tacc2_0);
                                    tacc2_1 = fma(f32(p2_2), k2_1, tacc2_1);
                                    tl2 += p2_2;
                                    let p2_3 = select(0.0, exp2(fma(q2_0.x, k3_0.x, fma(q2_0.y, k3_0.y, fma(q2_0.z, k3_0.z, fma(q2_0.w, k3_0.w, fma(q2_1, k3_1, nb2))))) + j3), kk + 3u < lim2);
                                    tacc2_0 = fma(vec4<f32>(p2_3), k3_0, tacc2_0);
                                    tacc2_1 = fma(f32(p2_3), k3_1, tacc2_1);
                                    tl2 += p2_3;
                                    let p3_0 = select(0.0, exp2(fma(q3_0.x, k0_0.x, fma(q3_0.y, k0_0.y, fma(q3_0.z, k0_0.z, fma(q3_0.w, k0_0.w, fma(q3_1, k0_1, nb3))))) + j0), kk + 0u < lim3);
                                    tacc3_0 = fma(vec4<f32>(p3_0), k0_0, tacc3_0);
                                    tacc3_1 = fma(f32(p3_0), k0_1, tacc3_1);
                                    tl3 += p3_0;
                                    let p3_1 = select(0.0, exp2(fma(q3_0.x, k1_0.x, fma(q3_0.y, k1_0.y, fma(q3_0.z, k1_0.z, fma(q3_0.w, k1_0.w, fma(q3_1, k1_1, nb3))))) + j1), kk + 1u < lim3);
                                    tacc3_0 = fma(vec4<f32>(p3_1), k1_0, tacc3_0);
                                    tacc3_1 = fma(f32(p3_1), k1_1, tacc3_1);
                                    tl3 += p3_1;
                                    let p3_2 = select(0.0, exp2(fma(q3_0.x, k2_0.x, fma(q3_0.y, k2_0.y, fma(q3_0.z, k2_0.z, fma(q3_0.w, k2_0.w, fma(q3_1, k2_1, nb3))))) + j2), kk + 2u < lim3);
                                    tacc3_0 = fma(vec4<f32>(p3_2), k2_0, tacc3_0);
                                    tacc3_1 = fma(f32(p3_2), k2_1, tacc3_1);
                                    tl3 += p3_2;
                                    let p3_3 = select(0.0, exp2(fma(q3_0.x, k3_0.x, fma(q3_0.y, k3_0.y, fma(q3_0.z, k3_0.z, fma(q3_0.w, k3_0.w, fma(q3_1, k3_1, nb3))))) + j3), kk + 3u < lim3);
                                    tacc3_0 = fma(vec4<f32>(p3_3), k3_0, tacc3_0);
                                    tacc3_1 = fma(f32(p3_3), k3_1, tacc3_1);
                                    tl3 += p3_3;
                                }
                            }
                            // A term beyond 2^64 (or an overflow): redo the tile with its exact maximum.
                            if !(tl0 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim0; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, fma(q0_0.z, kv_0.z, fma(q0_0.w, kv_0.w, fma(q0_1, kv_1, nb0))))) + alibi2 * f32(start + kk);
                                    top = max(top, s);
                                }
                                let delta = max(top, 0.0);
                                m0 += delta;
                                nb0 -= delta;
                                let shrink = exp2(-delta);
                                acc0_0 *= shrink;
                                tacc0_0 = vec4<f32>(0.0);
                                acc0_1 *= shrink;
                                tacc0_1 = f32(0.0);
                                l0 *= shrink;
                                tl0 = 0.0;
                                for (var kk = 0u; kk < lim0; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q0_0.x, kv_0.x, fma(q0_0.y, kv_0.y, fma(q0_0.z, kv_0.z, fma(q0_0.w, kv_0.w, fma(q0_1, kv_1, nb0))))) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc0_0 = fma(vec4<f32>(p), kv_0, tacc0_0);
                                    tacc0_1 = fma(f32(p), kv_1, tacc0_1);
                                    tl0 += p;
                                }
                            }
                            acc0_0 += tacc0_0;
                            acc0_1 += tacc0_1;
                            l0 += tl0;
                            if !(tl1 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim1; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, fma(q1_0.z, kv_0.z, fma(q1_0.w, kv_0.w, fma(q1_1, kv_1, nb1))))) + alibi2 * f32(start + kk);
                                    top = max(top, s);
                                }
                                let delta = max(top, 0.0);
                                m1 += delta;
                                nb1 -= delta;
                                let shrink = exp2(-delta);
                                acc1_0 *= shrink;
                                tacc1_0 = vec4<f32>(0.0);
                                acc1_1 *= shrink;
                                tacc1_1 = f32(0.0);
                                l1 *= shrink;
                                tl1 = 0.0;
                                for (var kk = 0u; kk < lim1; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q1_0.x, kv_0.x, fma(q1_0.y, kv_0.y, fma(q1_0.z, kv_0.z, fma(q1_0.w, kv_0.w, fma(q1_1, kv_1, nb1))))) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc1_0 = fma(vec4<f32>(p), kv_0, tacc1_0);
                                    tacc1_1 = fma(f32(p), kv_1, tacc1_1);
                                    tl1 += p;
                                }
                            }
                            acc1_0 += tacc1_0;
                            acc1_1 += tacc1_1;
                            l1 += tl1;
                            if !(tl2 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim2; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q2_0.x, kv_0.x, fma(q2_0.y, kv_0.y, fma(q2_0.z, kv_0.z, fma(q2_0.w, kv_0.w, fma(q2_1, kv_1, nb2))))) + alibi2 * f32(start + kk);
                                    top = max(top, s);
                                }
                                let delta = max(top, 0.0);
                                m2 += delta;
                                nb2 -= delta;
                                let shrink = exp2(-delta);
                                acc2_0 *= shrink;
                                tacc2_0 = vec4<f32>(0.0);
                                acc2_1 *= shrink;
                                tacc2_1 = f32(0.0);
                                l2 *= shrink;
                                tl2 = 0.0;
                                for (var kk = 0u; kk < lim2; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q2_0.x, kv_0.x, fma(q2_0.y, kv_0.y, fma(q2_0.z, kv_0.z, fma(q2_0.w, kv_0.w, fma(q2_1, kv_1, nb2))))) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc2_0 = fma(vec4<f32>(p), kv_0, tacc2_0);
                                    tacc2_1 = fma(f32(p), kv_1, tacc2_1);
                                    tl2 += p;
                                }
                            }
                            acc2_0 += tacc2_0;
                            acc2_1 += tacc2_1;
                            l2 += tl2;
                            if !(tl3 <= 1.8446744e19) {
                                var top = F32_LOWEST;
                                for (var kk = 0u; kk < lim3; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q3_0.x, kv_0.x, fma(q3_0.y, kv_0.y, fma(q3_0.z, kv_0.z, fma(q3_0.w, kv_0.w, fma(q3_1, kv_1, nb3))))) + alibi2 * f32(start + kk);
                                    top = max(top, s);
                                }
                                let delta = max(top, 0.0);
                                m3 += delta;
                                nb3 -= delta;
                                let shrink = exp2(-delta);
                                acc3_0 *= shrink;
                                tacc3_0 = vec4<f32>(0.0);
                                acc3_1 *= shrink;
                                tacc3_1 = f32(0.0);
                                l3 *= shrink;
                                tl3 = 0.0;
                                for (var kk = 0u; kk < lim3; kk++) {
                                    let kv_0 = tile[kk * DV + 0u];
                                    let kv_1 = tile[kk * DV + 1u].x;
                                    let s = fma(q3_0.x, kv_0.x, fma(q3_0.y, kv_0.y, fma(q3_0.z, kv_0.z, fma(q3_0.w, kv_0.w, fma(q3_1, kv_1, nb3))))) + alibi2 * f32(start + kk);
                                    let p = exp2(s);
                                    tacc3_0 = fma(vec4<f32>(p), kv_0, tacc3_0);
                                    tacc3_1 = fma(f32(p), kv_1, tacc3_1);
                                    tl3 += p;
                                }
                            }
                            acc3_0 += tacc3_0;
                            acc3_1 += tacc3_1;
                            l3 += tl3;
                            start += TK;
                        }
                        if ok0 {
                            let s = state0 + i0;
                            ml_state[s] = vec2<f32>(m0, l0);
                            acc_state[s * DV + 0u] = acc0_0;
                            acc_state[s * DV + 1u] = vec4<f32>(acc0_1, 0.0, 0.0, 0.0);
                        }
                        if ok1 {
                            let s = state0 + i1;
                            ml_state[s] = vec2<f32>(m1, l1);
                            acc_state[s * DV + 0u] = acc1_0;
                            acc_state[s * DV + 1u] = vec4<f32>(acc1_1, 0.0, 0.0, 0.0);
                        }
                        if ok2 {
                            let s = state0 + i2;
                            ml_state[s] = vec2<f32>(m2, l2);
                            acc_state[s * DV + 0u] = acc2_0;
                            acc_state[s * DV + 1u] = vec4<f32>(acc2_1, 0.0, 0.0, 0.0);
                        }
                        if ok3 {
                            let s = state0 + i3;
                            ml_state[s] = vec2<f32>(m3, l3);
                            acc_state[s * DV + 0u] = acc3_0;
                            acc_state[s * DV + 1u] = vec4<f32>(acc3_1, 0.0, 0.0, 0.0);
                        }
                    }
