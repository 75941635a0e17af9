// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 256u;
const DV: u32 = 64u;
const DVP: u32 = 64u;
const STR: u32 = 65u;
const WG: u32 = 64u;
const BQ: u32 = 8u;
const BK: u32 = 4u;
const QS_VECS: u32 = 520u;
const KT_VECS: u32 = 260u;
const RED_FLOATS: u32 = 64u;
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

// Stage 2 of the attention field for larger d (docs/model.md §1): FlashAttention-2 in f32. A
// workgroup takes a block of BQ queries (kept in workgroup memory) and streams the keys of
// its split in tiles of BK; the key tile doubles as the value tile (the values are the keys:
// V is applied after the merge). Per tile:
//   1. score phase: invocation (row group, key group, d-slice) computes a TQS x TKS block of
//      scores <q_i, x_j> (base 2) as outer products over its slice of d; the slices are
//      summed and each row's maximum is taken across the invocations that share the row by
//      subgroup shuffles (where the adapter has them) or through workgroup memory;
//      the running maximum moves once per tile, p = exp2(s - m) goes to workgroup memory
//      with the rescale factor of each row;
//   2. output phase: invocation (row group, column group) rescales and accumulates its TQO
//      rows x TVO vec4 columns of sum_j p_ij x_j, and the row sums l.
// Where p travels as vec4s of four rows ("quads"), an invocation's rows are interleaved
// (rows srow + SR u, not srow TQS + u) and the rows of p (one per key) are BQ / 4 + 1 vec4s
// apart, so that the lanes of a warp meet distinct shared-memory banks
// (tests/shared_memory_banks.rs).
// The state written is the one attention_small.wgsl writes: [split][token] acc (DV vec4s)
// and (m, l), merged by attention_merge.wgsl. `main` is generated (src/backend/gpu/codegen.rs).
// CPU twin: reference::stages::attention.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Queries, [batch * n_queries][DV] vec4 (pad lanes zero), in log2 units.
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
// Partial state per split and query: acc [splits][batch * n_queries][DV] vec4 and (m, l).
@group(0) @binding(4) var<storage, read_write> acc_state: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ml_state: array<f32>;

// Query block and key tile, rows of STR vec4s (DVP used, one spare against bank conflicts).
var<workgroup> qs: array<vec4<f32>, QS_VECS>;
var<workgroup> kt: array<vec4<f32>, KT_VECS>;
// Each row's rescale factor 2^(m_old - m_new) for the tile; after it the generator declares
// the keys `x` at binding 3 (as vec4s when D is a multiple of 4), `ps`, the tile's p
// [key][row] (as vec4s of four rows where it can), and for adapters without subgroups `red`,
// the scratch of the reductions.
var<workgroup> alpha: array<f32, BQ>;
// Keys (and values), [batch, n_keys, D] as vec4s (D is a multiple of 4).
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
var<workgroup> ps: array<f32, BQ * BK>;
// Scratch of the workgroup-memory reductions (no subgroup operations).
var<workgroup> red: array<f32, RED_FLOATS>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = lid.x;
    let split = wid.z % params.splits;
    let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;
    let system = wid.y + chunk.first_system;
    let nq = params.n_queries;
    let q0 = block * BQ;
    let split_start = split * params.split_keys;
    let split_end = min(split_start + params.split_keys, params.n_keys);
    let start0 = split_start + chunk.key_offset;
    var key_end = min(start0 + chunk.key_count, split_end);
    key_end = min(key_end, q0 + BQ);
    let key_base = system * params.n_keys;
    let first = chunk.first != 0u;
    let state0 = split * params.batch * nq + system * nq;
    let alibi2 = params.alibi_slope * LOG2E;
    // The query block, zero past the queries and past DV.
    for (var e = t; e < BQ * DVP; e += WG) {
        let row = e / DVP;
        let v = e % DVP;
        var val = vec4<f32>(0.0);
        if q0 + row < nq && v < DV {
            val = q[(system * nq + q0 + row) * DV + v];
        }
        qs[row * STR + v] = val;
    }
    // Score phase: rows srow * TQS + u, keys kg + SC w, vec4s ds + DS z.
    let ds = t % 2u;
    let kg = (t / 2u) % 4u;
    let srow = t / 8u;
    let lead = ds == 0u && kg == 0u;
    let si0 = q0 + srow * 1u + 0u;
    let qb0 = (srow * 1u + 0u) * STR;
    var m0 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l0 = 0.0;
    let kj0 = kg + 0u;
    let kr0 = kj0 * STR;
    let pw0 = kj0 * BQ + srow * 1u;
    // Output phase: rows orow * TQO + u, vec4 columns co + CG w.
    let co = t % 8u;
    let orow = t / 8u;
    let col0 = co + 0u;
    let col1 = co + 8u;
    let col2 = co + 16u;
    let col3 = co + 24u;
    let col4 = co + 32u;
    let col5 = co + 40u;
    let col6 = co + 48u;
    let col7 = co + 56u;
    let orow_p = orow * 1u;
    let or0 = orow * 1u + 0u;
    let oi0 = q0 + or0;
    var o0_0 = vec4<f32>(0.0);
    var o0_1 = vec4<f32>(0.0);
    var o0_2 = vec4<f32>(0.0);
    var o0_3 = vec4<f32>(0.0);
    var o0_4 = vec4<f32>(0.0);
    var o0_5 = vec4<f32>(0.0);
    var o0_6 = vec4<f32>(0.0);
    var o0_7 = vec4<f32>(0.0);
    if !first {
        let sm0 = 2u * (state0 + min(si0, nq - 1u));
        m0 = ml_state[sm0];
        l0 = select(0.0, ml_state[sm0 + 1u], lead);
        let so0 = state0 + min(oi0, nq - 1u);
        if col0 < DV {
            o0_0 = acc_state[so0 * DV + col0];
        }
        if col1 < DV {
            o0_1 = acc_state[so0 * DV + col1];
        }
        if col2 < DV {
            o0_2 = acc_state[so0 * DV + col2];
        }
        if col3 < DV {
            o0_3 = acc_state[so0 * DV + col3];
        }
        if col4 < DV {
            o0_4 = acc_state[so0 * DV + col4];
        }
        if col5 < DV {
            o0_5 = acc_state[so0 * DV + col5];
        }
        if col6 < DV {
            o0_6 = acc_state[so0 * DV + col6];
        }
        if col7 < DV {
            o0_7 = acc_state[so0 * DV + col7];
        }
    }
    var start = start0;
    loop {
        if start >= key_end {
            break;
        }
        let len = min(BK, key_end - start);
        workgroupBarrier();
        for (var e = t; e < BK * DVP; e += WG) {
            let key = e / DVP;
            let v = e % DVP;
            var val = vec4<f32>(0.0);
            if key < len {
                if v < DV {
                    val = x[(key_base + start + key) * DV + v];
                }
            }
            kt[key * STR + v] = val;
        }
        workgroupBarrier();
        var s0_0 = 0.0;
        for (var zb = 0u; zb < 32u; zb += 4u) {
            let v0 = ds + 2u * (zb);
            let qv0_0 = qs[qb0 + v0];
            let kv0_0 = kt[kr0 + v0];
            s0_0 = fma(qv0_0.x, kv0_0.x, fma(qv0_0.y, kv0_0.y, fma(qv0_0.z, kv0_0.z, fma(qv0_0.w, kv0_0.w, s0_0))));
            let v1 = ds + 2u * (zb + 1u);
            let qv0_1 = qs[qb0 + v1];
            let kv0_1 = kt[kr0 + v1];
            s0_0 = fma(qv0_1.x, kv0_1.x, fma(qv0_1.y, kv0_1.y, fma(qv0_1.z, kv0_1.z, fma(qv0_1.w, kv0_1.w, s0_0))));
            let v2 = ds + 2u * (zb + 2u);
            let qv0_2 = qs[qb0 + v2];
            let kv0_2 = kt[kr0 + v2];
            s0_0 = fma(qv0_2.x, kv0_2.x, fma(qv0_2.y, kv0_2.y, fma(qv0_2.z, kv0_2.z, fma(qv0_2.w, kv0_2.w, s0_0))));
            let v3 = ds + 2u * (zb + 3u);
            let qv0_3 = qs[qb0 + v3];
            let kv0_3 = kt[kr0 + v3];
            s0_0 = fma(qv0_3.x, kv0_3.x, fma(qv0_3.y, kv0_3.y, fma(qv0_3.z, kv0_3.z, fma(qv0_3.w, kv0_3.w, s0_0))));
        }
        // Sum the d-slices.
        red[0u * WG + t] = s0_0;
        workgroupBarrier();
        let lane0 = t - ((t / 1u) % 2u) * 1u;
        s0_0 = red[0u * WG + lane0] + red[0u * WG + lane0 + 1u];
        workgroupBarrier();
        var top0: f32;
        var alpha0: f32;
        var p0_0: f32;
        if len == BK && start + BK <= q0 + 1u {
            s0_0 = s0_0 + alibi2 * (f32(start + kj0) - f32(si0));
            top0 = s0_0;
            red[0u * WG + t] = top0;
            workgroupBarrier();
            let lane0 = t - ((t / 2u) % 4u) * 2u;
            top0 = max(max(max(red[0u * WG + lane0], red[0u * WG + lane0 + 2u]), red[0u * WG + lane0 + 4u]), red[0u * WG + lane0 + 6u]);
            workgroupBarrier();
            let m_new0 = max(m0, top0);
            alpha0 = exp2(m0 - m_new0);
            m0 = m_new0;
            p0_0 = exp2(s0_0 - m0);
            l0 = fma(l0, alpha0, p0_0);
            } else {
                let kin0 = kj0 < len;
                let vis0_0 = kin0 & (start + kj0 <= si0);
                s0_0 = select(F32_LOWEST, s0_0 + alibi2 * (f32(start + kj0) - f32(si0)), vis0_0);
                top0 = s0_0;
                red[0u * WG + t] = top0;
                workgroupBarrier();
                let lane0 = t - ((t / 2u) % 4u) * 2u;
                top0 = max(max(max(red[0u * WG + lane0], red[0u * WG + lane0 + 2u]), red[0u * WG + lane0 + 4u]), red[0u * WG + lane0 + 6u]);
                workgroupBarrier();
                let m_new0 = max(m0, top0);
                alpha0 = exp2(m0 - m_new0);
                m0 = m_new0;
                p0_0 = select(0.0, exp2(s0_0 - m0), vis0_0);
                l0 = fma(l0, alpha0, p0_0);
            }
            if ds == 0u {
                ps[pw0] = p0_0;
                if kg == 0u {
                    alpha[srow * 1u + 0u] = alpha0;
                }
            }
            workgroupBarrier();
            let a0 = alpha[or0];
            o0_0 *= a0;
            o0_1 *= a0;
            o0_2 *= a0;
            o0_3 *= a0;
            o0_4 *= a0;
            o0_5 *= a0;
            o0_6 *= a0;
            o0_7 *= a0;
            for (var kk = 0u; kk < BK; kk += 4u) {
                let pb = kk * BQ + orow_p;
                let vb0 = kk * STR + col0;
                let vb1 = kk * STR + col1;
                let vb2 = kk * STR + col2;
                let vb3 = kk * STR + col3;
                let vb4 = kk * STR + col4;
                let vb5 = kk * STR + col5;
                let vb6 = kk * STR + col6;
                let vb7 = kk * STR + col7;
                let p0_0 = ps[pb];
                let vv0_0 = kt[vb0];
                let vv0_1 = kt[vb1];
                let vv0_2 = kt[vb2];
                let vv0_3 = kt[vb3];
                let vv0_4 = kt[vb4];
                let vv0_5 = kt[vb5];
                let vv0_6 = kt[vb6];
                let vv0_7 = kt[vb7];
                o0_0 = fma(vec4<f32>(p0_0), vv0_0, o0_0);
                o0_1 = fma(vec4<f32>(p0_0), vv0_1, o0_1);
                o0_2 = fma(vec4<f32>(p0_0), vv0_2, o0_2);
                o0_3 = fma(vec4<f32>(p0_0), vv0_3, o0_3);
                o0_4 = fma(vec4<f32>(p0_0), vv0_4, o0_4);
                o0_5 = fma(vec4<f32>(p0_0), vv0_5, o0_5);
                o0_6 = fma(vec4<f32>(p0_0), vv0_6, o0_6);
                o0_7 = fma(vec4<f32>(p0_0), vv0_7, o0_7);
                let p1_0 = ps[pb + 8u];
                let vv1_0 = kt[vb0 + 65u];
                let vv1_1 = kt[vb1 + 65u];
                let vv1_2 = kt[vb2 + 65u];
                let vv1_3 = kt[vb3 + 65u];
                let vv1_4 = kt[vb4 + 65u];
                let vv1_5 = kt[vb5 + 65u];
                let vv1_6 = kt[vb6 + 65u];
                let vv1_7 = kt[vb7 + 65u];
                o0_0 = fma(vec4<f32>(p1_0), vv1_0, o0_0);
                o0_1 = fma(vec4<f32>(p1_0), vv1_1, o0_1);
                o0_2 = fma(vec4<f32>(p1_0), vv1_2, o0_2);
                o0_3 = fma(vec4<f32>(p1_0), vv1_3, o0_3);
                o0_4 = fma(vec4<f32>(p1_0), vv1_4, o0_4);
                o0_5 = fma(vec4<f32>(p1_0), vv1_5, o0_5);
                o0_6 = fma(vec4<f32>(p1_0), vv1_6, o0_6);
                o0_7 = fma(vec4<f32>(p1_0), vv1_7, o0_7);
                let p2_0 = ps[pb + 16u];
                let vv2_0 = kt[vb0 + 130u];
                let vv2_1 = kt[vb1 + 130u];
                let vv2_2 = kt[vb2 + 130u];
                let vv2_3 = kt[vb3 + 130u];
                let vv2_4 = kt[vb4 + 130u];
                let vv2_5 = kt[vb5 + 130u];
                let vv2_6 = kt[vb6 + 130u];
                let vv2_7 = kt[vb7 + 130u];
                o0_0 = fma(vec4<f32>(p2_0), vv2_0, o0_0);
                o0_1 = fma(vec4<f32>(p2_0), vv2_1, o0_1);
                o0_2 = fma(vec4<f32>(p2_0), vv2_2, o0_2);
                o0_3 = fma(vec4<f32>(p2_0), vv2_3, o0_3);
                o0_4 = fma(vec4<f32>(p2_0), vv2_4, o0_4);
                o0_5 = fma(vec4<f32>(p2_0), vv2_5, o0_5);
                o0_6 = fma(vec4<f32>(p2_0), vv2_6, o0_6);
                o0_7 = fma(vec4<f32>(p2_0), vv2_7, o0_7);
                let p3_0 = ps[pb + 24u];
                let vv3_0 = kt[vb0 + 195u];
                let vv3_1 = kt[vb1 + 195u];
                let vv3_2 = kt[vb2 + 195u];
                let vv3_3 = kt[vb3 + 195u];
                let vv3_4 = kt[vb4 + 195u];
                let vv3_5 = kt[vb5 + 195u];
                let vv3_6 = kt[vb6 + 195u];
                let vv3_7 = kt[vb7 + 195u];
                o0_0 = fma(vec4<f32>(p3_0), vv3_0, o0_0);
                o0_1 = fma(vec4<f32>(p3_0), vv3_1, o0_1);
                o0_2 = fma(vec4<f32>(p3_0), vv3_2, o0_2);
                o0_3 = fma(vec4<f32>(p3_0), vv3_3, o0_3);
                o0_4 = fma(vec4<f32>(p3_0), vv3_4, o0_4);
                o0_5 = fma(vec4<f32>(p3_0), vv3_5, o0_5);
                o0_6 = fma(vec4<f32>(p3_0), vv3_6, o0_6);
                o0_7 = fma(vec4<f32>(p3_0), vv3_7, o0_7);
            }
            start += BK;
        }
        // The state: m and l (summed over the lanes of a row) from the score phase, acc
        // from the output phase.
        red[0u * WG + t] = l0;
        workgroupBarrier();
        let lane0 = t - ((t / 2u) % 4u) * 2u;
        l0 = red[0u * WG + lane0] + red[0u * WG + lane0 + 2u] + red[0u * WG + lane0 + 4u] + red[0u * WG + lane0 + 6u];
        workgroupBarrier();
        if lead {
            if si0 < nq {
                ml_state[2u * (state0 + si0)] = m0;
                ml_state[2u * (state0 + si0) + 1u] = l0;
            }
        }
        if oi0 < nq {
            if col0 < DV {
                acc_state[(state0 + oi0) * DV + col0] = o0_0;
            }
            if col1 < DV {
                acc_state[(state0 + oi0) * DV + col1] = o0_1;
            }
            if col2 < DV {
                acc_state[(state0 + oi0) * DV + col2] = o0_2;
            }
            if col3 < DV {
                acc_state[(state0 + oi0) * DV + col3] = o0_3;
            }
            if col4 < DV {
                acc_state[(state0 + oi0) * DV + col4] = o0_4;
            }
            if col5 < DV {
                acc_state[(state0 + oi0) * DV + col5] = o0_5;
            }
            if col6 < DV {
                acc_state[(state0 + oi0) * DV + col6] = o0_6;
            }
            if col7 < DV {
                acc_state[(state0 + oi0) * DV + col7] = o0_7;
            }
        }
    }
