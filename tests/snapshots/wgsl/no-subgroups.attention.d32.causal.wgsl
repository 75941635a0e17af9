// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 32u;
const DV: u32 = 8u;
const DVP: u32 = 8u;
const STR: u32 = 9u;
const WG: u32 = 64u;
const BQ: u32 = 64u;
const BK: u32 = 32u;
const QS_VECS: u32 = 576u;
const KT_VECS: u32 = 288u;
const BQ4: u32 = 16u;
const PSTR: u32 = 17u;
const RED_FLOATS: u32 = 512u;
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
var<workgroup> ps: array<vec4<f32>, PSTR * BK>;
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
    // Score phase: rows srow + SR u, keys kg + SC w, vec4s ds + DS z.
    let ds = t % 1u;
    let kg = (t / 1u) % 8u;
    let srow = t / 8u;
    let lead = ds == 0u && kg == 0u;
    let si0 = q0 + srow;
    let qb0 = (srow) * STR;
    var m0 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l0 = 0.0;
    let si1 = q0 + srow + 8u;
    let qb1 = (srow + 8u) * STR;
    var m1 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l1 = 0.0;
    let si2 = q0 + srow + 16u;
    let qb2 = (srow + 16u) * STR;
    var m2 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l2 = 0.0;
    let si3 = q0 + srow + 24u;
    let qb3 = (srow + 24u) * STR;
    var m3 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l3 = 0.0;
    let si4 = q0 + srow + 32u;
    let qb4 = (srow + 32u) * STR;
    var m4 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l4 = 0.0;
    let si5 = q0 + srow + 40u;
    let qb5 = (srow + 40u) * STR;
    var m5 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l5 = 0.0;
    let si6 = q0 + srow + 48u;
    let qb6 = (srow + 48u) * STR;
    var m6 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l6 = 0.0;
    let si7 = q0 + srow + 56u;
    let qb7 = (srow + 56u) * STR;
    var m7 = F32_LOWEST;
    // This lane's part of the row's sum l (its keys kg + SC w).
    var l7 = 0.0;
    let kj0 = kg + 0u;
    let kr0 = kj0 * STR;
    let pw0 = kj0 * PSTR + srow;
    let kj1 = kg + 8u;
    let kr1 = kj1 * STR;
    let pw1 = kj1 * PSTR + srow;
    let kj2 = kg + 16u;
    let kr2 = kj2 * STR;
    let pw2 = kj2 * PSTR + srow;
    let kj3 = kg + 24u;
    let kr3 = kj3 * STR;
    let pw3 = kj3 * PSTR + srow;
    // Output phase: quads orow + RG q (rows as above), vec4 columns co + CG w.
    let co = t % 8u;
    let orow = t / 8u;
    let col0 = co + 0u;
    let oj0 = orow;
    let or0 = oj0 % 8u + 8u * (4u * (oj0 / 8u) + 0u);
    let or1 = oj0 % 8u + 8u * (4u * (oj0 / 8u) + 1u);
    let or2 = oj0 % 8u + 8u * (4u * (oj0 / 8u) + 2u);
    let or3 = oj0 % 8u + 8u * (4u * (oj0 / 8u) + 3u);
    let oj1 = orow + 8u;
    let or4 = oj1 % 8u + 8u * (4u * (oj1 / 8u) + 0u);
    let or5 = oj1 % 8u + 8u * (4u * (oj1 / 8u) + 1u);
    let or6 = oj1 % 8u + 8u * (4u * (oj1 / 8u) + 2u);
    let or7 = oj1 % 8u + 8u * (4u * (oj1 / 8u) + 3u);
    let oi0 = q0 + or0;
    var o0_0 = vec4<f32>(0.0);
    let oi1 = q0 + or1;
    var o1_0 = vec4<f32>(0.0);
    let oi2 = q0 + or2;
    var o2_0 = vec4<f32>(0.0);
    let oi3 = q0 + or3;
    var o3_0 = vec4<f32>(0.0);
    let oi4 = q0 + or4;
    var o4_0 = vec4<f32>(0.0);
    let oi5 = q0 + or5;
    var o5_0 = vec4<f32>(0.0);
    let oi6 = q0 + or6;
    var o6_0 = vec4<f32>(0.0);
    let oi7 = q0 + or7;
    var o7_0 = vec4<f32>(0.0);
    if !first {
        let sm0 = 2u * (state0 + min(si0, nq - 1u));
        m0 = ml_state[sm0];
        l0 = select(0.0, ml_state[sm0 + 1u], lead);
        let sm1 = 2u * (state0 + min(si1, nq - 1u));
        m1 = ml_state[sm1];
        l1 = select(0.0, ml_state[sm1 + 1u], lead);
        let sm2 = 2u * (state0 + min(si2, nq - 1u));
        m2 = ml_state[sm2];
        l2 = select(0.0, ml_state[sm2 + 1u], lead);
        let sm3 = 2u * (state0 + min(si3, nq - 1u));
        m3 = ml_state[sm3];
        l3 = select(0.0, ml_state[sm3 + 1u], lead);
        let sm4 = 2u * (state0 + min(si4, nq - 1u));
        m4 = ml_state[sm4];
        l4 = select(0.0, ml_state[sm4 + 1u], lead);
        let sm5 = 2u * (state0 + min(si5, nq - 1u));
        m5 = ml_state[sm5];
        l5 = select(0.0, ml_state[sm5 + 1u], lead);
        let sm6 = 2u * (state0 + min(si6, nq - 1u));
        m6 = ml_state[sm6];
        l6 = select(0.0, ml_state[sm6 + 1u], lead);
        let sm7 = 2u * (state0 + min(si7, nq - 1u));
        m7 = ml_state[sm7];
        l7 = select(0.0, ml_state[sm7 + 1u], lead);
        let so0 = state0 + min(oi0, nq - 1u);
        if col0 < DV {
            o0_0 = acc_state[so0 * DV + col0];
        }
        let so1 = state0 + min(oi1, nq - 1u);
        if col0 < DV {
            o1_0 = acc_state[so1 * DV + col0];
        }
        let so2 = state0 + min(oi2, nq - 1u);
        if col0 < DV {
            o2_0 = acc_state[so2 * DV + col0];
        }
        let so3 = state0 + min(oi3, nq - 1u);
        if col0 < DV {
            o3_0 = acc_state[so3 * DV + col0];
        }
        let so4 = state0 + min(oi4, nq - 1u);
        if col0 < DV {
            o4_0 = acc_state[so4 * DV + col0];
        }
        let so5 = state0 + min(oi5, nq - 1u);
        if col0 < DV {
            o5_0 = acc_state[so5 * DV + col0];
        }
        let so6 = state0 + min(oi6, nq - 1u);
        if col0 < DV {
            o6_0 = acc_state[so6 * DV + col0];
        }
        let so7 = state0 + min(oi7, nq - 1u);
        if col0 < DV {
            o7_0 = acc_state[so7 * DV + col0];
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
        var s0_1 = 0.0;
        var s0_2 = 0.0;
        var s0_3 = 0.0;
        var s1_0 = 0.0;
        var s1_1 = 0.0;
        var s1_2 = 0.0;
        var s1_3 = 0.0;
        var s2_0 = 0.0;
        var s2_1 = 0.0;
        var s2_2 = 0.0;
        var s2_3 = 0.0;
        var s3_0 = 0.0;
        var s3_1 = 0.0;
        var s3_2 = 0.0;
        var s3_3 = 0.0;
        var s4_0 = 0.0;
        var s4_1 = 0.0;
        var s4_2 = 0.0;
        var s4_3 = 0.0;
        var s5_0 = 0.0;
        var s5_1 = 0.0;
        var s5_2 = 0.0;
        var s5_3 = 0.0;
        var s6_0 = 0.0;
        var s6_1 = 0.0;
        var s6_2 = 0.0;
        var s6_3 = 0.0;
        var s7_0 = 0.0;
        var s7_1 = 0.0;
        var s7_2 = 0.0;
        var s7_3 = 0.0;
        let qv0_0 = qs[qb0];
        let qv1_0 = qs[qb1];
        let qv2_0 = qs[qb2];
        let qv3_0 = qs[qb3];
        let qv4_0 = qs[qb4];
        let qv5_0 = qs[qb5];
        let qv6_0 = qs[qb6];
        let qv7_0 = qs[qb7];
        let kv0_0 = kt[kr0];
        let kv1_0 = kt[kr1];
        let kv2_0 = kt[kr2];
        let kv3_0 = kt[kr3];
        s0_0 = fma(qv0_0.x, kv0_0.x, fma(qv0_0.y, kv0_0.y, fma(qv0_0.z, kv0_0.z, fma(qv0_0.w, kv0_0.w, s0_0))));
        s0_1 = fma(qv0_0.x, kv1_0.x, fma(qv0_0.y, kv1_0.y, fma(qv0_0.z, kv1_0.z, fma(qv0_0.w, kv1_0.w, s0_1))));
        s0_2 = fma(qv0_0.x, kv2_0.x, fma(qv0_0.y, kv2_0.y, fma(qv0_0.z, kv2_0.z, fma(qv0_0.w, kv2_0.w, s0_2))));
        s0_3 = fma(qv0_0.x, kv3_0.x, fma(qv0_0.y, kv3_0.y, fma(qv0_0.z, kv3_0.z, fma(qv0_0.w, kv3_0.w, s0_3))));
        s1_0 = fma(qv1_0.x, kv0_0.x, fma(qv1_0.y, kv0_0.y, fma(qv1_0.z, kv0_0.z, fma(qv1_0.w, kv0_0.w, s1_0))));
        s1_1 = fma(qv1_0.x, kv1_0.x, fma(qv1_0.y, kv1_0.y, fma(qv1_0.z, kv1_0.z, fma(qv1_0.w, kv1_0.w, s1_1))));
        s1_2 = fma(qv1_0.x, kv2_0.x, fma(qv1_0.y, kv2_0.y, fma(qv1_0.z, kv2_0.z, fma(qv1_0.w, kv2_0.w, s1_2))));
        s1_3 = fma(qv1_0.x, kv3_0.x, fma(qv1_0.y, kv3_0.y, fma(qv1_0.z, kv3_0.z, fma(qv1_0.w, kv3_0.w, s1_3))));
        s2_0 = fma(qv2_0.x, kv0_0.x, fma(qv2_0.y, kv0_0.y, fma(qv2_0.z, kv0_0.z, fma(qv2_0.w, kv0_0.w, s2_0))));
        s2_1 = fma(qv2_0.x, kv1_0.x, fma(qv2_0.y, kv1_0.y, fma(qv2_0.z, kv1_0.z, fma(qv2_0.w, kv1_0.w, s2_1))));
        s2_2 = fma(qv2_0.x, kv2_0.x, fma(qv2_0.y, kv2_0.y, fma(qv2_0.z, kv2_0.z, fma(qv2_0.w, kv2_0.w, s2_2))));
        s2_3 = fma(qv2_0.x, kv3_0.x, fma(qv2_0.y, kv3_0.y, fma(qv2_0.z, kv3_0.z, fma(qv2_0.w, kv3_0.w, s2_3))));
        s3_0 = fma(qv3_0.x, kv0_0.x, fma(qv3_0.y, kv0_0.y, fma(qv3_0.z, kv0_0.z, fma(qv3_0.w, kv0_0.w, s3_0))));
        s3_1 = fma(qv3_0.x, kv1_0.x, fma(qv3_0.y, kv1_0.y, fma(qv3_0.z, kv1_0.z, fma(qv3_0.w, kv1_0.w, s3_1))));
        s3_2 = fma(qv3_0.x, kv2_0.x, fma(qv3_0.y, kv2_0.y, fma(qv3_0.z, kv2_0.z, fma(qv3_0.w, kv2_0.w, s3_2))));
        s3_3 = fma(qv3_0.x, kv3_0.x, fma(qv3_0.y, kv3_0.y, fma(qv3_0.z, kv3_0.z, fma(qv3_0.w, kv3_0.w, s3_3))));
        s4_0 = fma(qv4_0.x, kv0_0.x, fma(qv4_0.y, kv0_0.y, fma(qv4_0.z, kv0_0.z, fma(qv4_0.w, kv0_0.w, s4_0))));
        s4_1 = fma(qv4_0.x, kv1_0.x, fma(qv4_0.y, kv1_0.y, fma(qv4_0.z, kv1_0.z, fma(qv4_0.w, kv1_0.w, s4_1))));
        s4_2 = fma(qv4_0.x, kv2_0.x, fma(qv4_0.y, kv2_0.y, fma(qv4_0.z, kv2_0.z, fma(qv4_0.w, kv2_0.w, s4_2))));
        s4_3 = fma(qv4_0.x, kv3_0.x, fma(qv4_0.y, kv3_0.y, fma(qv4_0.z, kv3_0.z, fma(qv4_0.w, kv3_0.w, s4_3))));
        s5_0 = fma(qv5_0.x, kv0_0.x, fma(qv5_0.y, kv0_0.y, fma(qv5_0.z, kv0_0.z, fma(qv5_0.w, kv0_0.w, s5_0))));
        s5_1 = fma(qv5_0.x, kv1_0.x, fma(qv5_0.y, kv1_0.y, fma(qv5_0.z, kv1_0.z, fma(qv5_0.w, kv1_0.w, s5_1))));
        s5_2 = fma(qv5_0.x, kv2_0.x, fma(qv5_0.y, kv2_0.y, fma(qv5_0.z, kv2_0.z, fma(qv5_0.w, kv2_0.w, s5_2))));
        s5_3 = fma(qv5_0.x, kv3_0.x, fma(qv5_0.y, kv3_0.y, fma(qv5_0.z, kv3_0.z, fma(qv5_0.w, kv3_0.w, s5_3))));
        s6_0 = fma(qv6_0.x, kv0_0.x, fma(qv6_0.y, kv0_0.y, fma(qv6_0.z, kv0_0.z, fma(qv6_0.w, kv0_0.w, s6_0))));
        s6_1 = fma(qv6_0.x, kv1_0.x, fma(qv6_0.y, kv1_0.y, fma(qv6_0.z, kv1_0.z, fma(qv6_0.w, kv1_0.w, s6_1))));
        s6_2 = fma(qv6_0.x, kv2_0.x, fma(qv6_0.y, kv2_0.y, fma(qv6_0.z, kv2_0.z, fma(qv6_0.w, kv2_0.w, s6_2))));
        s6_3 = fma(qv6_0.x, kv3_0.x, fma(qv6_0.y, kv3_0.y, fma(qv6_0.z, kv3_0.z, fma(qv6_0.w, kv3_0.w, s6_3))));
        s7_0 = fma(qv7_0.x, kv0_0.x, fma(qv7_0.y, kv0_0.y, fma(qv7_0.z, kv0_0.z, fma(qv7_0.w, kv0_0.w, s7_0))));
        s7_1 = fma(qv7_0.x, kv1_0.x, fma(qv7_0.y, kv1_0.y, fma(qv7_0.z, kv1_0.z, fma(qv7_0.w, kv1_0.w, s7_1))));
        s7_2 = fma(qv7_0.x, kv2_0.x, fma(qv7_0.y, kv2_0.y, fma(qv7_0.z, kv2_0.z, fma(qv7_0.w, kv2_0.w, s7_2))));
        s7_3 = fma(qv7_0.x, kv3_0.x, fma(qv7_0.y, kv3_0.y, fma(qv7_0.z, kv3_0.z, fma(qv7_0.w, kv3_0.w, s7_3))));
        let qv0_1 = qs[qb0 + 1u];
        let qv1_1 = qs[qb1 + 1u];
        let qv2_1 = qs[qb2 + 1u];
        let qv3_1 = qs[qb3 + 1u];
        let qv4_1 = qs[qb4 + 1u];
        let qv5_1 = qs[qb5 + 1u];
        let qv6_1 = qs[qb6 + 1u];
        let qv7_1 = qs[qb7 + 1u];
        let kv0_1 = kt[kr0 + 1u];
        let kv1_1 = kt[kr1 + 1u];
        let kv2_1 = kt[kr2 + 1u];
        let kv3_1 = kt[kr3 + 1u];
        s0_0 = fma(qv0_1.x, kv0_1.x, fma(qv0_1.y, kv0_1.y, fma(qv0_1.z, kv0_1.z, fma(qv0_1.w, kv0_1.w, s0_0))));
        s0_1 = fma(qv0_1.x, kv1_1.x, fma(qv0_1.y, kv1_1.y, fma(qv0_1.z, kv1_1.z, fma(qv0_1.w, kv1_1.w, s0_1))));
        s0_2 = fma(qv0_1.x, kv2_1.x, fma(qv0_1.y, kv2_1.y, fma(qv0_1.z, kv2_1.z, fma(qv0_1.w, kv2_1.w, s0_2))));
        s0_3 = fma(qv0_1.x, kv3_1.x, fma(qv0_1.y, kv3_1.y, fma(qv0_1.z, kv3_1.z, fma(qv0_1.w, kv3_1.w, s0_3))));
        s1_0 = fma(qv1_1.x, kv0_1.x, fma(qv1_1.y, kv0_1.y, fma(qv1_1.z, kv0_1.z, fma(qv1_1.w, kv0_1.w, s1_0))));
        s1_1 = fma(qv1_1.x, kv1_1.x, fma(qv1_1.y, kv1_1.y, fma(qv1_1.z, kv1_1.z, fma(qv1_1.w, kv1_1.w, s1_1))));
        s1_2 = fma(qv1_1.x, kv2_1.x, fma(qv1_1.y, kv2_1.y, fma(qv1_1.z, kv2_1.z, fma(qv1_1.w, kv2_1.w, s1_2))));
        s1_3 = fma(qv1_1.x, kv3_1.x, fma(qv1_1.y, kv3_1.y, fma(qv1_1.z, kv3_1.z, fma(qv1_1.w, kv3_1.w, s1_3))));
        s2_0 = fma(qv2_1.x, kv0_1.x, fma(qv2_1.y, kv0_1.y, fma(qv2_1.z, kv0_1.z, fma(qv2_1.w, kv0_1.w, s2_0))));
        s2_1 = fma(qv2_1.x, kv1_1.x, fma(qv2_1.y, kv1_1.y, fma(qv2_1.z, kv1_1.z, fma(qv2_1.w, kv1_1.w, s2_1))));
        s2_2 = fma(qv2_1.x, kv2_1.x, fma(qv2_1.y, kv2_1.y, fma(qv2_1.z, kv2_1.z, fma(qv2_1.w, kv2_1.w, s2_2))));
        s2_3 = fma(qv2_1.x, kv3_1.x, fma(qv2_1.y, kv3_1.y, fma(qv2_1.z, kv3_1.z, fma(qv2_1.w, kv3_1.w, s2_3))));
        s3_0 = fma(qv3_1.x, kv0_1.x, fma(qv3_1.y, kv0_1.y, fma(qv3_1.z, kv0_1.z, fma(qv3_1.w, kv0_1.w, s3_0))));
        s3_1 = fma(qv3_1.x, kv1_1.x, fma(qv3_1.y, kv1_1.y, fma(qv3_1.z, kv1_1.z, fma(qv3_1.w, kv1_1.w, s3_1))));
        s3_2 = fma(qv3_1.x, kv2_1.x, fma(qv3_1.y, kv2_1.y, fma(qv3_1.z, kv2_1.z, fma(qv3_1.w, kv2_1.w, s3_2))));
        s3_3 = fma(qv3_1.x, kv3_1.x, fma(qv3_1.y, kv3_1.y, fma(qv3_1.z, kv3_1.z, fma(qv3_1.w, kv3_1.w, s3_3))));
        s4_0 = fma(qv4_1.x, kv0_1.x, fma(qv4_1.y, kv0_1.y, fma(qv4_1.z, kv0_1.z, fma(qv4_1.w, kv0_1.w, s4_0))));
        s4_1 = fma(qv4_1.x, kv1_1.x, fma(qv4_1.y, kv1_1.y, fma(qv4_1.z, kv1_1.z, fma(qv4_1.w, kv1_1.w, s4_1))));
        s4_2 = fma(qv4_1.x, kv2_1.x, fma(qv4_1.y, kv2_1.y, fma(qv4_1.z, kv2_1.z, fma(qv4_1.w, kv2_1.w, s4_2))));
        s4_3 = fma(qv4_1.x, kv3_1.x, fma(qv4_1.y, kv3_1.y, fma(qv4_1.z, kv3_1.z, fma(qv4_1.w, kv3_1.w, s4_3))));
        s5_0 = fma(qv5_1.x, kv0_1.x, fma(qv5_1.y, kv0_1.y, fma(qv5_1.z, kv0_1.z, fma(qv5_1.w, kv0_1.w, s5_0))));
        s5_1 = fma(qv5_1.x, kv1_1.x, fma(qv5_1.y, kv1_1.y, fma(qv5_1.z, kv1_1.z, fma(qv5_1.w, kv1_1.w, s5_1))));
        s5_2 = fma(qv5_1.x, kv2_1.x, fma(qv5_1.y, kv2_1.y, fma(qv5_1.z, kv2_1.z, fma(qv5_1.w, kv2_1.w, s5_2))));
        s5_3 = fma(qv5_1.x, kv3_1.x, fma(qv5_1.y, kv3_1.y, fma(qv5_1.z, kv3_1.z, fma(qv5_1.w, kv3_1.w, s5_3))));
        s6_0 = fma(qv6_1.x, kv0_1.x, fma(qv6_1.y, kv0_1.y, fma(qv6_1.z, kv0_1.z, fma(qv6_1.w, kv0_1.w, s6_0))));
        s6_1 = fma(qv6_1.x, kv1_1.x, fma(qv6_1.y, kv1_1.y, fma(qv6_1.z, kv1_1.z, fma(qv6_1.w, kv1_1.w, s6_1))));
        s6_2 = fma(qv6_1.x, kv2_1.x, fma(qv6_1.y, kv2_1.y, fma(qv6_1.z, kv2_1.z, fma(qv6_1.w, kv2_1.w, s6_2))));
        s6_3 = fma(qv6_1.x, kv3_1.x, fma(qv6_1.y, kv3_1.y, fma(qv6_1.z, kv3_1.z, fma(qv6_1.w, kv3_1.w, s6_3))));
        s7_0 = fma(qv7_1.x, kv0_1.x, fma(qv7_1.y, kv0_1.y, fma(qv7_1.z, kv0_1.z, fma(qv7_1.w, kv0_1.w, s7_0))));
        s7_1 = fma(qv7_1.x, kv1_1.x, fma(qv7_1.y, kv1_1.y, fma(qv7_1.z, kv1_1.z, fma(qv7_1.w, kv1_1.w, s7_1))));
        s7_2 = fma(qv7_1.x, kv2_1.x, fma(qv7_1.y, kv2_1.y, fma(qv7_1.z, kv2_1.z, fma(qv7_1.w, kv2_1.w, s7_2))));
        s7_3 = fma(qv7_1.x, kv3_1.x, fma(qv7_1.y, kv3_1.y, fma(qv7_1.z, kv3_1.z, fma(qv7_1.w, kv3_1.w, s7_3))));
        let qv0_2 = qs[qb0 + 2u];
        let qv1_2 = qs[qb1 + 2u];
        let qv2_2 = qs[qb2 + 2u];
        let qv3_2 = qs[qb3 + 2u];
        let qv4_2 = qs[qb4 + 2u];
        let qv5_2 = qs[qb5 + 2u];
        let qv6_2 = qs[qb6 + 2u];
        let qv7_2 = qs[qb7 + 2u];
        let kv0_2 = kt[kr0 + 2u];
        let kv1_2 = kt[kr1 + 2u];
        let kv2_2 = kt[kr2 + 2u];
        let kv3_2 = kt[kr3 + 2u];
        s0_0 = fma(qv0_2.x, kv0_2.x, fma(qv0_2.y, kv0_2.y, fma(qv0_2.z, kv0_2.z, fma(qv0_2.w, kv0_2.w, s0_0))));
        s0_1 = fma(qv0_2.x, kv1_2.x, fma(qv0_2.y, kv1_2.y, fma(qv0_2.z, kv1_2.z, fma(qv0_2.w, kv1_2.w, s0_1))));
        s0_2 = fma(qv0_2.x, kv2_2.x, fma(qv0_2.y, kv2_2.y, fma(qv0_2.z, kv2_2.z, fma(qv0_2.w, kv2_2.w, s0_2))));
        s0_3 = fma(qv0_2.x, kv3_2.x, fma(qv0_2.y, kv3_2.y, fma(qv0_2.z, kv3_2.z, fma(qv0_2.w, kv3_2.w, s0_3))));
        s1_0 = fma(qv1_2.x, kv0_2.x, fma(qv1_2.y, kv0_2.y, fma(qv1_2.z, kv0_2.z, fma(qv1_2.w, kv0_2.w, s1_0))));
        s1_1 = fma(qv1_2.x, kv1_2.x, fma(qv1_2.y, kv1_2.y, fma(qv1_2.z, kv1_2.z, fma(qv1_2.w, kv1_2.w, s1_1))));
        s1_2 = fma(qv1_2.x, kv2_2.x, fma(qv1_2.y, kv2_2.y, fma(qv1_2.z, kv2_2.z, fma(qv1_2.w, kv2_2.w, s1_2))));
        s1_3 = fma(qv1_2.x, kv3_2.x, fma(qv1_2.y, kv3_2.y, fma(qv1_2.z, kv3_2.z, fma(qv1_2.w, kv3_2.w, s1_3))));
        s2_0 = fma(qv2_2.x, kv0_2.x, fma(qv2_2.y, kv0_2.y, fma(qv2_2.z, kv0_2.z, fma(qv2_2.w, kv0_2.w, s2_0))));
        s2_1 = fma(qv2_2.x, kv1_2.x, fma(qv2_2.y, kv1_2.y, fma(qv2_2.z, kv1_2.z, fma(qv2_2.w, kv1_2.w, s2_1))));
        s2_2 = fma(qv2_2.x, kv2_2.x, fma(qv2_2.y, kv2_2.y, fma(qv2_2.z, kv2_2.z, fma(qv2_2.w, kv2_2.w, s2_2))));
        s2_3 = fma(qv2_2.x, kv3_2.x, fma(qv2_2.y, kv3_2.y, fma(qv2_2.z, kv3_2.z, fma(qv2_2.w, kv3_2.w, s2_3))));
        s3_0 = fma(qv3_2.x, kv0_2.x, fma(qv3_2.y, kv0_2.y, fma(qv3_2.z, kv0_2.z, fma(qv3_2.w, kv0_2.w, s3_0))));
        s3_1 = fma(qv3_2.x, kv1_2.x, fma(qv3_2.y, kv1_2.y, fma(qv3_2.z, kv1_2.z, fma(qv3_2.w, kv1_2.w, s3_1))));
        s3_2 = fma(qv3_2.x, kv2_2.x, fma(qv3_2.y, kv2_2.y, fma(qv3_2.z, kv2_2.z, fma(qv3_2.w, kv2_2.w, s3_2))));
        s3_3 = fma(qv3_2.x, kv3_2.x, fma(qv3_2.y, kv3_2.y, fma(qv3_2.z, kv3_2.z, fma(qv3_2.w, kv3_2.w, s3_3))));
        s4_0 = fma(qv4_2.x, kv0_2.x, fma(qv4_2.y, kv0_2.y, fma(qv4_2.z, kv0_2.z, fma(qv4_2.w, kv0_2.w, s4_0))));
        s4_1 = fma(qv4_2.x, kv1_2.x, fma(qv4_2.y, kv1_2.y, fma(qv4_2.z, kv1_2.z, fma(qv4_2.w, kv1_2.w, s4_1))));
        s4_2 = fma(qv4_2.x, kv2_2.x, fma(qv4_2.y, kv2_2.y, fma(qv4_2.z, kv2_2.z, fma(qv4_2.w, kv2_2.w, s4_2))));
        s4_3 = fma(qv4_2.x, kv3_2.x, fma(qv4_2.y, kv3_2.y, fma(qv4_2.z, kv3_2.z, fma(qv4_2.w, kv3_2.w, s4_3))));
        s5_0 = fma(qv5_2.x, kv0_2.x, fma(qv5_2.y, kv0_2.y, fma(qv5_2.z, kv0_2.z, fma(qv5_2.w, kv0_2.w, s5_0))));
        s5_1 = fma(qv5_2.x, kv1_2.x, fma(qv5_2.y, kv1_2.y, fma(qv5_2.z, kv1_2.z, fma(qv5_2.w, kv1_2.w, s5_1))));
        s5_2 = fma(qv5_2.x, kv2_2.x, fma(qv5_2.y, kv2_2.y, fma(qv5_2.z, kv2_2.z, fma(qv5_2.w, kv2_2.w, s5_2))));
        s5_3 = fma(qv5_2.x, kv3_2.x, fma(qv5_2.y, kv3_2.y, fma(qv5_2.z, kv3_2.z, fma(qv5_2.w, kv3_2.w, s5_3))));
        s6_0 = fma(qv6_2.x, kv0_2.x, fma(qv6_2.y, kv0_2.y, fma(qv6_2.z, kv0_2.z, fma(qv6_2.w, kv0_2.w, s6_0))));
        s6_1 = fma(qv6_2.x, kv1_2.x, fma(qv6_2.y, kv1_2.y, fma(qv6_2.z, kv1_2.z, fma(qv6_2.w, kv1_2.w, s6_1))));
        s6_2 = fma(qv6_2.x, kv2_2.x, fma(qv6_2.y, kv2_2.y, fma(qv6_2.z, kv2_2.z, fma(qv6_2.w, kv2_2.w, s6_2))));
        s6_3 = fma(qv6_2.x, kv3_2.x, fma(qv6_2.y, kv3_2.y, fma(qv6_2.z, kv3_2.z, fma(qv6_2.w, kv3_2.w, s6_3))));
        s7_0 = fma(qv7_2.x, kv0_2.x, fma(qv7_2.y, kv0_2.y, fma(qv7_2.z, kv0_2.z, fma(qv7_2.w, kv0_2.w, s7_0))));
        s7_1 = fma(qv7_2.x, kv1_2.x, fma(qv7_2.y, kv1_2.y, fma(qv7_2.z, kv1_2.z, fma(qv7_2.w, kv1_2.w, s7_1))));
        s7_2 = fma(qv7_2.x, kv2_2.x, fma(qv7_2.y, kv2_2.y, fma(qv7_2.z, kv2_2.z, fma(qv7_2.w, kv2_2.w, s7_2))));
        s7_3 = fma(qv7_2.x, kv3_2.x, fma(qv7_2.y, kv3_2.y, fma(qv7_2.z, kv3_2.z, fma(qv7_2.w, kv3_2.w, s7_3))));
        let qv0_3 = qs[qb0 + 3u];
        let qv1_3 = qs[qb1 + 3u];
        let qv2_3 = qs[qb2 + 3u];
        let qv3_3 = qs[qb3 + 3u];
        let qv4_3 = qs[qb4 + 3u];
        let qv5_3 = qs[qb5 + 3u];
        let qv6_3 = qs[qb6 + 3u];
        let qv7_3 = qs[qb7 + 3u];
        let kv0_3 = kt[kr0 + 3u];
        let kv1_3 = kt[kr1 + 3u];
        let kv2_3 = kt[kr2 + 3u];
        let kv3_3 = kt[kr3 + 3u];
        s0_0 = fma(qv0_3.x, kv0_3.x, fma(qv0_3.y, kv0_3.y, fma(qv0_3.z, kv0_3.z, fma(qv0_3.w, kv0_3.w, s0_0))));
        s0_1 = fma(qv0_3.x, kv1_3.x, fma(qv0_3.y, kv1_3.y, fma(qv0_3.z, kv1_3.z, fma(qv0_3.w, kv1_3.w, s0_1))));
        s0_2 = fma(qv0_3.x, kv2_3.x, fma(qv0_3.y, kv2_3.y, fma(qv0_3.z, kv2_3.z, fma(qv0_3.w, kv2_3.w, s0_2))));
        s0_3 = fma(qv0_3.x, kv3_3.x, fma(qv0_3.y, kv3_3.y, fma(qv0_3.z, kv3_3.z, fma(qv0_3.w, kv3_3.w, s0_3))));
        s1_0 = fma(qv1_3.x, kv0_3.x, fma(qv1_3.y, kv0_3.y, fma(qv1_3.z, kv0_3.z, fma(qv1_3.w, kv0_3.w, s1_0))));
        s1_1 = fma(qv1_3.x, kv1_3.x, fma(qv1_3.y, kv1_3.y, fma(qv1_3.z, kv1_3.z, fma(qv1_3.w, kv1_3.w, s1_1))));
        s1_2 = fma(qv1_3.x, kv2_3.x, fma(qv1_3.y, kv2_3.y, fma(qv1_3.z, kv2_3.z, fma(qv1_3.w, kv2_3.w, s1_2))));
        s1_3 = fma(qv1_3.x, kv3_3.x, fma(qv1_3.y, kv3_3.y, fma(qv1_3.z, kv3_3.z, fma(qv1_3.w, kv3_3.w, s1_3))));
        s2_0 = fma(qv2_3.x, kv0_3.x, fma(qv2_3.y, kv0_3.y, fma(qv2_3.z, kv0_3.z, fma(qv2_3.w, kv0_3.w, s2_0))));
        s2_1 = fma(qv2_3.x, kv1_3.x, fma(qv2_3.y, kv1_3.y, fma(qv2_3.z, kv1_3.z, fma(qv2_3.w, kv1_3.w, s2_1))));
        s2_2 = fma(qv2_3.x, kv2_3.x, fma(qv2_3.y, kv2_3.y, fma(qv2_3.z, kv2_3.z, fma(qv2_3.w, kv2_3.w, s2_2))));
        s2_3 = fma(qv2_3.x, kv3_3.x, fma(qv2_3.y, kv3_3.y, fma(qv2_3.z, kv3_3.z, fma(qv2_3.w, kv3_3.w, s2_3))));
        s3_0 = fma(qv3_3.x, kv0_3.x, fma(qv3_3.y, kv0_3.y, fma(qv3_3.z, kv0_3.z, fma(qv3_3.w, kv0_3.w, s3_0))));
        s3_1 = fma(qv3_3.x, kv1_3.x, fma(qv3_3.y, kv1_3.y, fma(qv3_3.z, kv1_3.z, fma(qv3_3.w, kv1_3.w, s3_1))));
        s3_2 = fma(qv3_3.x, kv2_3.x, fma(qv3_3.y, kv2_3.y, fma(qv3_3.z, kv2_3.z, fma(qv3_3.w, kv2_3.w, s3_2))));
        s3_3 = fma(qv3_3.x, kv3_3.x, fma(qv3_3.y, kv3_3.y, fma(qv3_3.z, kv3_3.z, fma(qv3_3.w, kv3_3.w, s3_3))));
        s4_0 = fma(qv4_3.x, kv0_3.x, fma(qv4_3.y, kv0_3.y, fma(qv4_3.z, kv0_3.z, fma(qv4_3.w, kv0_3.w, s4_0))));
        s4_1 = fma(qv4_3.x, kv1_3.x, fma(qv4_3.y, kv1_3.y, fma(qv4_3.z, kv1_3.z, fma(qv4_3.w, kv1_3.w, s4_1))));
        s4_2 = fma(qv4_3.x, kv2_3.x, fma(qv4_3.y, kv2_3.y, fma(qv4_3.z, kv2_3.z, fma(qv4_3.w, kv2_3.w, s4_2))));
        s4_3 = fma(qv4_3.x, kv3_3.x, fma(qv4_3.y, kv3_3.y, fma(qv4_3.z, kv3_3.z, fma(qv4_3.w, kv3_3.w, s4_3))));
        s5_0 = fma(qv5_3.x, kv0_3.x, fma(qv5_3.y, kv0_3.y, fma(qv5_3.z, kv0_3.z, fma(qv5_3.w, kv0_3.w, s5_0))));
        s5_1 = fma(qv5_3.x, kv1_3.x, fma(qv5_3.y, kv1_3.y, fma(qv5_3.z, kv1_3.z, fma(qv5_3.w, kv1_3.w, s5_1))));
        s5_2 = fma(qv5_3.x, kv2_3.x, fma(qv5_3.y, kv2_3.y, fma(qv5_3.z, kv2_3.z, fma(qv5_3.w, kv2_3.w, s5_2))));
        s5_3 = fma(qv5_3.x, kv3_3.x, fma(qv5_3.y, kv3_3.y, fma(qv5_3.z, kv3_3.z, fma(qv5_3.w, kv3_3.w, s5_3))));
        s6_0 = fma(qv6_3.x, kv0_3.x, fma(qv6_3.y, kv0_3.y, fma(qv6_3.z, kv0_3.z, fma(qv6_3.w, kv0_3.w, s6_0))));
        s6_1 = fma(qv6_3.x, kv1_3.x, fma(qv6_3.y, kv1_3.y, fma(qv6_3.z, kv1_3.z, fma(qv6_3.w, kv1_3.w, s6_1))));
        s6_2 = fma(qv6_3.x, kv2_3.x, fma(qv6_3.y, kv2_3.y, fma(qv6_3.z, kv2_3.z, fma(qv6_3.w, kv2_3.w, s6_2))));
        s6_3 = fma(qv6_3.x, kv3_3.x, fma(qv6_3.y, kv3_3.y, fma(qv6_3.z, kv3_3.z, fma(qv6_3.w, kv3_3.w, s6_3))));
        s7_0 = fma(qv7_3.x, kv0_3.x, fma(qv7_3.y, kv0_3.y, fma(qv7_3.z, kv0_3.z, fma(qv7_3.w, kv0_3.w, s7_0))));
        s7_1 = fma(qv7_3.x, kv1_3.x, fma(qv7_3.y, kv1_3.y, fma(qv7_3.z, kv1_3.z, fma(qv7_3.w, kv1_3.w, s7_1))));
        s7_2 = fma(qv7_3.x, kv2_3.x, fma(qv7_3.y, kv2_3.y, fma(qv7_3.z, kv2_3.z, fma(qv7_3.w, kv2_3.w, s7_2))));
        s7_3 = fma(qv7_3.x, kv3_3.x, fma(qv7_3.y, kv3_3.y, fma(qv7_3.z, kv3_3.z, fma(qv7_3.w, kv3_3.w, s7_3))));
        let qv0_4 = qs[qb0 + 4u];
        let qv1_4 = qs[qb1 + 4u];
        let qv2_4 = qs[qb2 + 4u];
        let qv3_4 = qs[qb3 + 4u];
        let qv4_4 = qs[qb4 + 4u];
        let qv5_4 = qs[qb5 + 4u];
        let qv6_4 = qs[qb6 + 4u];
        let qv7_4 = qs[qb7 + 4u];
        let kv0_4 = kt[kr0 + 4u];
        let kv1_4 = kt[kr1 + 4u];
        let kv2_4 = kt[kr2 + 4u];
        let kv3_4 = kt[kr3 + 4u];
        s0_0 = fma(qv0_4.x, kv0_4.x, fma(qv0_4.y, kv0_4.y, fma(qv0_4.z, kv0_4.z, fma(qv0_4.w, kv0_4.w, s0_0))));
        s0_1 = fma(qv0_4.x, kv1_4.x, fma(qv0_4.y, kv1_4.y, fma(qv0_4.z, kv1_4.z, fma(qv0_4.w, kv1_4.w, s0_1))));
        s0_2 = fma(qv0_4.x, kv2_4.x, fma(qv0_4.y, kv2_4.y, fma(qv0_4.z, kv2_4.z, fma(qv0_4.w, kv2_4.w, s0_2))));
        s0_3 = fma(qv0_4.x, kv3_4.x, fma(qv0_4.y, kv3_4.y, fma(qv0_4.z, kv3_4.z, fma(qv0_4.w, kv3_4.w, s0_3))));
        s1_0 = fma(qv1_4.x, kv0_4.x, fma(qv1_4.y, kv0_4.y, fma(qv1_4.z, kv0_4.z, fma(qv1_4.w, kv0_4.w, s1_0))));
        s1_1 = fma(qv1_4.x, kv1_4.x, fma(qv1_4.y, kv1_4.y, fma(qv1_4.z, kv1_4.z, fma(qv1_4.w, kv1_4.w, s1_1))));
        s1_2 = fma(qv1_4.x, kv2_4.x, fma(qv1_4.y, kv2_4.y, fma(qv1_4.z, kv2_4.z, fma(qv1_4.w, kv2_4.w, s1_2))));
        s1_3 = fma(qv1_4.x, kv3_4.x, fma(qv1_4.y, kv3_4.y, fma(qv1_4.z, kv3_4.z, fma(qv1_4.w, kv3_4.w, s1_3))));
        s2_0 = fma(qv2_4.x, kv0_4.x, fma(qv2_4.y, kv0_4.y, fma(qv2_4.z, kv0_4.z, fma(qv2_4.w, kv0_4.w, s2_0))));
        s2_1 = fma(qv2_4.x, kv1_4.x, fma(qv2_4.y, kv1_4.y, fma(qv2_4.z, kv1_4.z, fma(qv2_4.w, kv1_4.w, s2_1))));
        s2_2 = fma(qv2_4.x, kv2_4.x, fma(qv2_4.y, kv2_4.y, fma(qv2_4.z, kv2_4.z, fma(qv2_4.w, kv2_4.w, s2_2))));
        s2_3 = fma(qv2_4.x, kv3_4.x, fma(qv2_4.y, kv3_4.y, fma(qv2_4.z, kv3_4.z, fma(qv2_4.w, kv3_4.w, s2_3))));
        s3_0 = fma(qv3_4.x, kv0_4.x, fma(qv3_4.y, kv0_4.y, fma(qv3_4.z, kv0_4.z, fma(qv3_4.w, kv0_4.w, s3_0))));
        s3_1 = fma(qv3_4.x, kv1_4.x, fma(qv3_4.y, kv1_4.y, fma(qv3_4.z, kv1_4.z, fma(qv3_4.w, kv1_4.w, s3_1))));
        s3_2 = fma(qv3_4.x, kv2_4.x, fma(qv3_4.y, kv2_4.y, fma(qv3_4.z, kv2_4.z, fma(qv3_4.w, kv2_4.w, s3_2))));
        s3_3 = fma(qv3_4.x, kv3_4.x, fma(qv3_4.y, kv3_4.y, fma(qv3_4.z, kv3_4.z, fma(qv3_4.w, kv3_4.w, s3_3))));
        s4_0 = fma(qv4_4.x, kv0_4.x, fma(qv4_4.y, kv0_4.y, fma(qv4_4.z, kv0_4.z, fma(qv4_4.w, kv0_4.w, s4_0))));
        s4_1 = fma(qv4_4.x, kv1_4.x, fma(qv4_4.y, kv1_4.y, fma(qv4_4.z, kv1_4.z, fma(qv4_4.w, kv1_4.w, s4_1))));
        s4_2 = fma(qv4_4.x, kv2_4.x, fma(qv4_4.y, kv2_4.y, fma(qv4_4.z, kv2_4.z, fma(qv4_4.w, kv2_4.w, s4_2))));
        s4_3 = fma(qv4_4.x, kv3_4.x, fma(qv4_4.y, kv3_4.y, fma(qv4_4.z, kv3_4.z, fma(qv4_4.w, kv3_4.w, s4_3))));
        s5_0 = fma(qv5_4.x, kv0_4.x, fma(qv5_4.y, kv0_4.y, fma(qv5_4.z, kv0_4.z, fma(qv5_4.w, kv0_4.w, s5_0))));
        s5_1 = fma(qv5_4.x, kv1_4.x, fma(qv5_4.y, kv1_4.y, fma(qv5_4.z, kv1_4.z, fma(qv5_4.w, kv1_4.w, s5_1))));
        s5_2 = fma(qv5_4.x, kv2_4.x, fma(qv5_4.y, kv2_4.y, fma(qv5_4.z, kv2_4.z, fma(qv5_4.w, kv2_4.w, s5_2))));
        s5_3 = fma(qv5_4.x, kv3_4.x, fma(qv5_4.y, kv3_4.y, fma(qv5_4.z, kv3_4.z, fma(qv5_4.w, kv3_4.w, s5_3))));
        s6_0 = fma(qv6_4.x, kv0_4.x, fma(qv6_4.y, kv0_4.y, fma(qv6_4.z, kv0_4.z, fma(qv6_4.w, kv0_4.w, s6_0))));
        s6_1 = fma(qv6_4.x, kv1_4.x, fma(qv6_4.y, kv1_4.y, fma(qv6_4.z, kv1_4.z, fma(qv6_4.w, kv1_4.w, s6_1))));
        s6_2 = fma(qv6_4.x, kv2_4.x, fma(qv6_4.y, kv2_4.y, fma(qv6_4.z, kv2_4.z, fma(qv6_4.w, kv2_4.w, s6_2))));
        s6_3 = fma(qv6_4.x, kv3_4.x, fma(qv6_4.y, kv3_4.y, fma(qv6_4.z, kv3_4.z, fma(qv6_4.w, kv3_4.w, s6_3))));
        s7_0 = fma(qv7_4.x, kv0_4.x, fma(qv7_4.y, kv0_4.y, fma(qv7_4.z, kv0_4.z, fma(qv7_4.w, kv0_4.w, s7_0))));
        s7_1 = fma(qv7_4.x, kv1_4.x, fma(qv7_4.y, kv1_4.y, fma(qv7_4.z, kv1_4.z, fma(qv7_4.w, kv1_4.w, s7_1))));
        s7_2 = fma(qv7_4.x, kv2_4.x, fma(qv7_4.y, kv2_4.y, fma(qv7_4.z, kv2_4.z, fma(qv7_4.w, kv2_4.w, s7_2))));
        s7_3 = fma(qv7_4.x, kv3_4.x, fma(qv7_4.y, kv3_4.y, fma(qv7_4.z, kv3_4.z, fma(qv7_4.w, kv3_4.w, s7_3))));
        let qv0_5 = qs[qb0 + 5u];
        let qv1_5 = qs[qb1 + 5u];
        let qv2_5 = qs[qb2 + 5u];
        let qv3_5 = qs[qb3 + 5u];
        let qv4_5 = qs[qb4 + 5u];
        let qv5_5 = qs[qb5 + 5u];
        let qv6_5 = qs[qb6 + 5u];
        let qv7_5 = qs[qb7 + 5u];
        let kv0_5 = kt[kr0 + 5u];
        let kv1_5 = kt[kr1 + 5u];
        let kv2_5 = kt[kr2 + 5u];
        let kv3_5 = kt[kr3 + 5u];
        s0_0 = fma(qv0_5.x, kv0_5.x, fma(qv0_5.y, kv0_5.y, fma(qv0_5.z, kv0_5.z, fma(qv0_5.w, kv0_5.w, s0_0))));
        s0_1 = fma(qv0_5.x, kv1_5.x, fma(qv0_5.y, kv1_5.y, fma(qv0_5.z, kv1_5.z, fma(qv0_5.w, kv1_5.w, s0_1))));
        s0_2 = fma(qv0_5.x, kv2_5.x, fma(qv0_5.y, kv2_5.y, fma(qv0_5.z, kv2_5.z, fma(qv0_5.w, kv2_5.w, s0_2))));
        s0_3 = fma(qv0_5.x, kv3_5.x, fma(qv0_5.y, kv3_5.y, fma(qv0_5.z, kv3_5.z, fma(qv0_5.w, kv3_5.w, s0_3))));
        s1_0 = fma(qv1_5.x, kv0_5.x, fma(qv1_5.y, kv0_5.y, fma(qv1_5.z, kv0_5.z, fma(qv1_5.w, kv0_5.w, s1_0))));
        s1_1 = fma(qv1_5.x, kv1_5.x, fma(qv1_5.y, kv1_5.y, fma(qv1_5.z, kv1_5.z, fma(qv1_5.w, kv1_5.w, s1_1))));
        s1_2 = fma(qv1_5.x, kv2_5.x, fma(qv1_5.y, kv2_5.y, fma(qv1_5.z, kv2_5.z, fma(qv1_5.w, kv2_5.w, s1_2))));
        s1_3 = fma(qv1_5.x, kv3_5.x, fma(qv1_5.y, kv3_5.y, fma(qv1_5.z, kv3_5.z, fma(qv1_5.w, kv3_5.w, s1_3))));
        s2_0 = fma(qv2_5.x, kv0_5.x, fma(qv2_5.y, kv0_5.y, fma(qv2_5.z, kv0_5.z, fma(qv2_5.w, kv0_5.w, s2_0))));
        s2_1 = fma(qv2_5.x, kv1_5.x, fma(qv2_5.y, kv1_5.y, fma(qv2_5.z, kv1_5.z, fma(qv2_5.w, kv1_5.w, s2_1))));
        s2_2 = fma(qv2_5.x, kv2_5.x, fma(qv2_5.y, kv2_5.y, fma(qv2_5.z, kv2_5.z, fma(qv2_5.w, kv2_5.w, s2_2))));
        s2_3 = fma(qv2_5.x, kv3_5.x, fma(qv2_5.y, kv3_5.y, fma(qv2_5.z, kv3_5.z, fma(qv2_5.w, kv3_5.w, s2_3))));
        s3_0 = fma(qv3_5.x, kv0_5.x, fma(qv3_5.y, kv0_5.y, fma(qv3_5.z, kv0_5.z, fma(qv3_5.w, kv0_5.w, s3_0))));
        s3_1 = fma(qv3_5.x, kv1_5.x, fma(qv3_5.y, kv1_5.y, fma(qv3_5.z, kv1_5.z, fma(qv3_5.w, kv1_5.w, s3_1))));
        s3_2 = fma(qv3_5.x, kv2_5.x, fma(qv3_5.y, kv2_5.y, fma(qv3_5.z, kv2_5.z, fma(qv3_5.w, kv2_5.w, s3_2))));
        s3_3 = fma(qv3_5.x, kv3_5.x, fma(qv3_5.y, kv3_5.y, fma(qv3_5.z, kv3_5.z, fma(qv3_5.w, kv3_5.w, s3_3))));
        s4_0 = fma(qv4_5.x, kv0_5.x, fma(qv4_5.y, kv0_5.y, fma(qv4_5.z, kv0_5.z, fma(qv4_5.w, kv0_5.w, s4_0))));
        s4_1 = fma(qv4_5.x, kv1_5.x, fma(qv4_5.y, kv1_5.y, fma(qv4_5.z, kv1_5.z, fma(qv4_5.w, kv1_5.w, s4_1))));
        s4_2 = fma(qv4_5.x, kv2_5.x, fma(qv4_5.y, kv2_5.y, fma(qv4_5.z, kv2_5.z, fma(qv4_5.w, kv2_5.w, s4_2))));
        s4_3 = fma(qv4_5.x, kv3_5.x, fma(qv4_5.y, kv3_5.y, fma(qv4_5.z, kv3_5.z, fma(qv4_5.w, kv3_5.w, s4_3))));
        s5_0 = fma(qv5_5.x, kv0_5.x, fma(qv5_5.y, kv0_5.y, fma(qv5_5.z, kv0_5.z, fma(qv5_5.w, kv0_5.w, s5_0))));
        s5_1 = fma(qv5_5.x, kv1_5.x, fma(qv5_5.y, kv1_5.y, fma(qv5_5.z, kv1_5.z, fma(qv5_5.w, kv1_5.w, s5_1))));
        s5_2 = fma(qv5_5.x, kv2_5.x, fma(qv5_5.y, kv2_5.y, fma(qv5_5.z, kv2_5.z, fma(qv5_5.w, kv2_5.w, s5_2))));
        s5_3 = fma(qv5_5.x, kv3_5.x, fma(qv5_5.y, kv3_5.y, fma(qv5_5.z, kv3_5.z, fma(qv5_5.w, kv3_5.w, s5_3))));
        s6_0 = fma(qv6_5.x, kv0_5.x, fma(qv6_5.y, kv0_5.y, fma(qv6_5.z, kv0_5.z, fma(qv6_5.w, kv0_5.w, s6_0))));
        s6_1 = fma(qv6_5.x, kv1_5.x, fma(qv6_5.y, kv1_5.y, fma(qv6_5.z, kv1_5.z, fma(qv6_5.w, kv1_5.w, s6_1))));
        s6_2 = fma(qv6_5.x, kv2_5.x, fma(qv6_5.y, kv2_5.y, fma(qv6_5.z, kv2_5.z, fma(qv6_5.w, kv2_5.w, s6_2))));
        s6_3 = fma(qv6_5.x, kv3_5.x, fma(qv6_5.y, kv3_5.y, fma(qv6_5.z, kv3_5.z, fma(qv6_5.w, kv3_5.w, s6_3))));
        s7_0 = fma(qv7_5.x, kv0_5.x, fma(qv7_5.y, kv0_5.y, fma(qv7_5.z, kv0_5.z, fma(qv7_5.w, kv0_5.w, s7_0))));
        s7_1 = fma(qv7_5.x, kv1_5.x, fma(qv7_5.y, kv1_5.y, fma(qv7_5.z, kv1_5.z, fma(qv7_5.w, kv1_5.w, s7_1))));
        s7_2 = fma(qv7_5.x, kv2_5.x, fma(qv7_5.y, kv2_5.y, fma(qv7_5.z, kv2_5.z, fma(qv7_5.w, kv2_5.w, s7_2))));
        s7_3 = fma(qv7_5.x, kv3_5.x, fma(qv7_5.y, kv3_5.y, fma(qv7_5.z, kv3_5.z, fma(qv7_5.w, kv3_5.w, s7_3))));
        let qv0_6 = qs[qb0 + 6u];
        let qv1_6 = qs[qb1 + 6u];
        let qv2_6 = qs[qb2 + 6u];
        let qv3_6 = qs[qb3 + 6u];
        let qv4_6 = qs[qb4 + 6u];
        let qv5_6 = qs[qb5 + 6u];
        let qv6_6 = qs[qb6 + 6u];
        let qv7_6 = qs[qb7 + 6u];
        let kv0_6 = kt[kr0 + 6u];
        let kv1_6 = kt[kr1 + 6u];
        let kv2_6 = kt[kr2 + 6u];
        let kv3_6 = kt[kr3 + 6u];
        s0_0 = fma(qv0_6.x, kv0_6.x, fma(qv0_6.y, kv0_6.y, fma(qv0_6.z, kv0_6.z, fma(qv0_6.w, kv0_6.w, s0_0))));
        s0_1 = fma(qv0_6.x, kv1_6.x, fma(qv0_6.y, kv1_6.y, fma(qv0_6.z, kv1_6.z, fma(qv0_6.w, kv1_6.w, s0_1))));
        s0_2 = fma(qv0_6.x, kv2_6.x, fma(qv0_6.y, kv2_6.y, fma(qv0_6.z, kv2_6.z, fma(qv0_6.w, kv2_6.w, s0_2))));
        s0_3 = fma(qv0_6.x, kv3_6.x, fma(qv0_6.y, kv3_6.y, fma(qv0_6.z, kv3_6.z, fma(qv0_6.w, kv3_6.w, s0_3))));
        s1_0 = fma(qv1_6.x, kv0_6.x, fma(qv1_6.y, kv0_6.y, fma(qv1_6.z, kv0_6.z, fma(qv1_6.w, kv0_6.w, s1_0))));
        s1_1 = fma(qv1_6.x, kv1_6.x, fma(qv1_6.y, kv1_6.y, fma(qv1_6.z, kv1_6.z, fma(qv1_6.w, kv1_6.w, s1_1))));
        s1_2 = fma(qv1_6.x, kv2_6.x, fma(qv1_6.y, kv2_6.y, fma(qv1_6.z, kv2_6.z, fma(qv1_6.w, kv2_6.w, s1_2))));
        s1_3 = fma(qv1_6.x, kv3_6.x, fma(qv1_6.y, kv3_6.y, fma(qv1_6.z, kv3_6.z, fma(qv1_6.w, kv3_6.w, s1_3))));
        s2_0 = fma(qv2_6.x, kv0_6.x, fma(qv2_6.y, kv0_6.y, fma(qv2_6.z, kv0_6.z, fma(qv2_6.w, kv0_6.w, s2_0))));
        s2_1 = fma(qv2_6.x, kv1_6.x, fma(qv2_6.y, kv1_6.y, fma(qv2_6.z, kv1_6.z, fma(qv2_6.w, kv1_6.w, s2_1))));
        s2_2 = fma(qv2_6.x, kv2_6.x, fma(qv2_6.y, kv2_6.y, fma(qv2_6.z, kv2_6.z, fma(qv2_6.w, kv2_6.w, s2_2))));
        s2_3 = fma(qv2_6.x, kv3_6.x, fma(qv2_6.y, kv3_6.y, fma(qv2_6.z, kv3_6.z, fma(qv2_6.w, kv3_6.w, s2_3))));
        s3_0 = fma(qv3_6.x, kv0_6.x, fma(qv3_6.y, kv0_6.y, fma(qv3_6.z, kv0_6.z, fma(qv3_6.w, kv0_6.w, s3_0))));
        s3_1 = fma(qv3_6.x, kv1_6.x, fma(qv3_6.y, kv1_6.y, fma(qv3_6.z, kv1_6.z, fma(qv3_6.w, kv1_6.w, s3_1))));
        s3_2 = fma(qv3_6.x, kv2_6.x, fma(qv3_6.y, kv2_6.y, fma(qv3_6.z, kv2_6.z, fma(qv3_6.w, kv2_6.w, s3_2))));
        s3_3 = fma(qv3_6.x, kv3_6.x, fma(qv3_6.y, kv3_6.y, fma(qv3_6.z, kv3_6.z, fma(qv3_6.w, kv3_6.w, s3_3))));
        s4_0 = fma(qv4_6.x, kv0_6.x, fma(qv4_6.y, kv0_6.y, fma(qv4_6.z, kv0_6.z, fma(qv4_6.w, kv0_6.w, s4_0))));
        s4_1 = fma(qv4_6.x, kv1_6.x, fma(qv4_6.y, kv1_6.y, fma(qv4_6.z, kv1_6.z, fma(qv4_6.w, kv1_6.w, s4_1))));
        s4_2 = fma(qv4_6.x, kv2_6.x, fma(qv4_6.y, kv2_6.y, fma(qv4_6.z, kv2_6.z, fma(qv4_6.w, kv2_6.w, s4_2))));
        s4_3 = fma(qv4_6.x, kv3_6.x, fma(qv4_6.y, kv3_6.y, fma(qv4_6.z, kv3_6.z, fma(qv4_6.w, kv3_6.w, s4_3))));
        s5_0 = fma(qv5_6.x, kv0_6.x, fma(qv5_6.y, kv0_6.y, fma(qv5_6.z, kv0_6.z, fma(qv5_6.w, kv0_6.w, s5_0))));
        s5_1 = fma(qv5_6.x, kv1_6.x, fma(qv5_6.y, kv1_6.y, fma(qv5_6.z, kv1_6.z, fma(qv5_6.w, kv1_6.w, s5_1))));
        s5_2 = fma(qv5_6.x, kv2_6.x, fma(qv5_6.y, kv2_6.y, fma(qv5_6.z, kv2_6.z, fma(qv5_6.w, kv2_6.w, s5_2))));
        s5_3 = fma(qv5_6.x, kv3_6.x, fma(qv5_6.y, kv3_6.y, fma(qv5_6.z, kv3_6.z, fma(qv5_6.w, kv3_6.w, s5_3))));
        s6_0 = fma(qv6_6.x, kv0_6.x, fma(qv6_6.y, kv0_6.y, fma(qv6_6.z, kv0_6.z, fma(qv6_6.w, kv0_6.w, s6_0))));
        s6_1 = fma(qv6_6.x, kv1_6.x, fma(qv6_6.y, kv1_6.y, fma(qv6_6.z, kv1_6.z, fma(qv6_6.w, kv1_6.w, s6_1))));
        s6_2 = fma(qv6_6.x, kv2_6.x, fma(qv6_6.y, kv2_6.y, fma(qv6_6.z, kv2_6.z, fma(qv6_6.w, kv2_6.w, s6_2))));
        s6_3 = fma(qv6_6.x, kv3_6.x, fma(qv6_6.y, kv3_6.y, fma(qv6_6.z, kv3_6.z, fma(qv6_6.w, kv3_6.w, s6_3))));
        s7_0 = fma(qv7_6.x, kv0_6.x, fma(qv7_6.y, kv0_6.y, fma(qv7_6.z, kv0_6.z, fma(qv7_6.w, kv0_6.w, s7_0))));
        s7_1 = fma(qv7_6.x, kv1_6.x, fma(qv7_6.y, kv1_6.y, fma(qv7_6.z, kv1_6.z, fma(qv7_6.w, kv1_6.w, s7_1))));
        s7_2 = fma(qv7_6.x, kv2_6.x, fma(qv7_6.y, kv2_6.y, fma(qv7_6.z, kv2_6.z, fma(qv7_6.w, kv2_6.w, s7_2))));
        s7_3 = fma(qv7_6.x, kv3_6.x, fma(qv7_6.y, kv3_6.y, fma(qv7_6.z, kv3_6.z, fma(qv7_6.w, kv3_6.w, s7_3))));
        let qv0_7 = qs[qb0 + 7u];
        let qv1_7 = qs[qb1 + 7u];
        let qv2_7 = qs[qb2 + 7u];
        let qv3_7 = qs[qb3 + 7u];
        let qv4_7 = qs[qb4 + 7u];
        let qv5_7 = qs[qb5 + 7u];
        let qv6_7 = qs[qb6 + 7u];
        let qv7_7 = qs[qb7 + 7u];
        let kv0_7 = kt[kr0 + 7u];
        let kv1_7 = kt[kr1 + 7u];
        let kv2_7 = kt[kr2 + 7u];
        let kv3_7 = kt[kr3 + 7u];
        s0_0 = fma(qv0_7.x, kv0_7.x, fma(qv0_7.y, kv0_7.y, fma(qv0_7.z, kv0_7.z, fma(qv0_7.w, kv0_7.w, s0_0))));
        s0_1 = fma(qv0_7.x, kv1_7.x, fma(qv0_7.y, kv1_7.y, fma(qv0_7.z, kv1_7.z, fma(qv0_7.w, kv1_7.w, s0_1))));
        s0_2 = fma(qv0_7.x, kv2_7.x, fma(qv0_7.y, kv2_7.y, fma(qv0_7.z, kv2_7.z, fma(qv0_7.w, kv2_7.w, s0_2))));
        s0_3 = fma(qv0_7.x, kv3_7.x, fma(qv0_7.y, kv3_7.y, fma(qv0_7.z, kv3_7.z, fma(qv0_7.w, kv3_7.w, s0_3))));
        s1_0 = fma(qv1_7.x, kv0_7.x, fma(qv1_7.y, kv0_7.y, fma(qv1_7.z, kv0_7.z, fma(qv1_7.w, kv0_7.w, s1_0))));
        s1_1 = fma(qv1_7.x, kv1_7.x, fma(qv1_7.y, kv1_7.y, fma(qv1_7.z, kv1_7.z, fma(qv1_7.w, kv1_7.w, s1_1))));
        s1_2 = fma(qv1_7.x, kv2_7.x, fma(qv1_7.y, kv2_7.y, fma(qv1_7.z, kv2_7.z, fma(qv1_7.w, kv2_7.w, s1_2))));
        s1_3 = fma(qv1_7.x, kv3_7.x, fma(qv1_7.y, kv3_7.y, fma(qv1_7.z, kv3_7.z, fma(qv1_7.w, kv3_7.w, s1_3))));
        s2_0 = fma(qv2_7.x, kv0_7.x, fma(qv2_7.y, kv0_7.y, fma(qv2_7.z, kv0_7.z, fma(qv2_7.w, kv0_7.w, s2_0))));
        s2_1 = fma(qv2_7.x, kv1_7.x, fma(qv2_7.y, kv1_7.y, fma(qv2_7.z, kv1_7.z, fma(qv2_7.w, kv1_7.w, s2_1))));
        s2_2 = fma(qv2_7.x, kv2_7.x, fma(qv2_7.y, kv2_7.y, fma(qv2_7.z, kv2_7.z, fma(qv2_7.w, kv2_7.w, s2_2))));
        s2_3 = fma(qv2_7.x, kv3_7.x, fma(qv2_7.y, kv3_7.y, fma(qv2_7.z, kv3_7.z, fma(qv2_7.w, kv3_7.w, s2_3))));
        s3_0 = fma(qv3_7.x, kv0_7.x, fma(qv3_7.y, kv0_7.y, fma(qv3_7.z, kv0_7.z, fma(qv3_7.w, kv0_7.w, s3_0))));
        s3_1 = fma(qv3_7.x, kv1_7.x, fma(qv3_7.y, kv1_7.y, fma(qv3_7.z, kv1_7.z, fma(qv3_7.w, kv1_7.w, s3_1))));
        s3_2 = fma(qv3_7.x, kv2_7.x, fma(qv3_7.y, kv2_7.y, fma(qv3_7.z, kv2_7.z, fma(qv3_7.w, kv2_7.w, s3_2))));
        s3_3 = fma(qv3_7.x, kv3_7.x, fma(qv3_7.y, kv3_7.y, fma(qv3_7.z, kv3_7.z, fma(qv3_7.w, kv3_7.w, s3_3))));
        s4_0 = fma(qv4_7.x, kv0_7.x, fma(qv4_7.y, kv0_7.y, fma(qv4_7.z, kv0_7.z, fma(qv4_7.w, kv0_7.w, s4_0))));
        s4_1 = fma(qv4_7.x, kv1_7.x, fma(qv4_7.y, kv1_7.y, fma(qv4_7.z, kv1_7.z, fma(qv4_7.w, kv1_7.w, s4_1))));
        s4_2 = fma(qv4_7.x, kv2_7.x, fma(qv4_7.y, kv2_7.y, fma(qv4_7.z, kv2_7.z, fma(qv4_7.w, kv2_7.w, s4_2))));
        s4_3 = fma(qv4_7.x, kv3_7.x, fma(qv4_7.y, kv3_7.y, fma(qv4_7.z, kv3_7.z, fma(qv4_7.w, kv3_7.w, s4_3))));
        s5_0 = fma(qv5_7.x, kv0_7.x, fma(qv5_7.y, kv0_7.y, fma(qv5_7.z, kv0_7.z, fma(qv5_7.w, kv0_7.w, s5_0))));
        s5_1 = fma(qv5_7.x, kv1_7.x, fma(qv5_7.y, kv1_7.y, fma(qv5_7.z, kv1_7.z, fma(qv5_7.w, kv1_7.w, s5_1))));
        s5_2 = fma(qv5_7.x, kv2_7.x, fma(qv5_7.y, kv2_7.y, fma(qv5_7.z, kv2_7.z, fma(qv5_7.w, kv2_7.w, s5_2))));
        s5_3 = fma(qv5_7.x, kv3_7.x, fma(qv5_7.y, kv3_7.y, fma(qv5_7.z, kv3_7.z, fma(qv5_7.w, kv3_7.w, s5_3))));
        s6_0 = fma(qv6_7.x, kv0_7.x, fma(qv6_7.y, kv0_7.y, fma(qv6_7.z, kv0_7.z, fma(qv6_7.w, kv0_7.w, s6_0))));
        s6_1 = fma(qv6_7.x, kv1_7.x, fma(qv6_7.y, kv1_7.y, fma(qv6_7.z, kv1_7.z, fma(qv6_7.w, kv1_7.w, s6_1))));
        s6_2 = fma(qv6_7.x, kv2_7.x, fma(qv6_7.y, kv2_7.y, fma(qv6_7.z, kv2_7.z, fma(qv6_7.w, kv2_7.w, s6_2))));
        s6_3 = fma(qv6_7.x, kv3_7.x, fma(qv6_7.y, kv3_7.y, fma(qv6_7.z, kv3_7.z, fma(qv6_7.w, kv3_7.w, s6_3))));
        s7_0 = fma(qv7_7.x, kv0_7.x, fma(qv7_7.y, kv0_7.y, fma(qv7_7.z, kv0_7.z, fma(qv7_7.w, kv0_7.w, s7_0))));
        s7_1 = fma(qv7_7.x, kv1_7.x, fma(qv7_7.y, kv1_7.y, fma(qv7_7.z, kv1_7.z, fma(qv7_7.w, kv1_7.w, s7_1))));
        s7_2 = fma(qv7_7.x, kv2_7.x, fma(qv7_7.y, kv2_7.y, fma(qv7_7.z, kv2_7.z, fma(qv7_7.w, kv2_7.w, s7_2))));
        s7_3 = fma(qv7_7.x, kv3_7.x, fma(qv7_7.y, kv3_7.y, fma(qv7_7.z, kv3_7.z, fma(qv7_7.w, kv3_7.w, s7_3))));
        var top0: f32;
        var alpha0: f32;
        var p0_0: f32;
        var p0_1: f32;
        var p0_2: f32;
        var p0_3: f32;
        var top1: f32;
        var alpha1: f32;
        var p1_0: f32;
        var p1_1: f32;
        var p1_2: f32;
        var p1_3: f32;
        var top2: f32;
        var alpha2: f32;
        var p2_0: f32;
        var p2_1: f32;
        var p2_2: f32;
        var p2_3: f32;
        var top3: f32;
        var alpha3: f32;
        var p3_0: f32;
        var p3_1: f32;
        var p3_2: f32;
        var p3_3: f32;
        var top4: f32;
        var alpha4: f32;
        var p4_0: f32;
        var p4_1: f32;
        var p4_2: f32;
        var p4_3: f32;
        var top5: f32;
        var alpha5: f32;
        var p5_0: f32;
        var p5_1: f32;
        var p5_2: f32;
        var p5_3: f32;
        var top6: f32;
        var alpha6: f32;
        var p6_0: f32;
        var p6_1: f32;
        var p6_2: f32;
        var p6_3: f32;
        var top7: f32;
        var alpha7: f32;
        var p7_0: f32;
        var p7_1: f32;
        var p7_2: f32;
        var p7_3: f32;
        if len == BK && start + BK <= q0 + 1u {
            s0_0 = s0_0 + alibi2 * (f32(start + kj0) - f32(si0));
            s0_1 = s0_1 + alibi2 * (f32(start + kj1) - f32(si0));
            s0_2 = s0_2 + alibi2 * (f32(start + kj2) - f32(si0));
            s0_3 = s0_3 + alibi2 * (f32(start + kj3) - f32(si0));
            top0 = max(max(max(s0_0, s0_1), s0_2), s0_3);
            s1_0 = s1_0 + alibi2 * (f32(start + kj0) - f32(si1));
            s1_1 = s1_1 + alibi2 * (f32(start + kj1) - f32(si1));
            s1_2 = s1_2 + alibi2 * (f32(start + kj2) - f32(si1));
            s1_3 = s1_3 + alibi2 * (f32(start + kj3) - f32(si1));
            top1 = max(max(max(s1_0, s1_1), s1_2), s1_3);
            s2_0 = s2_0 + alibi2 * (f32(start + kj0) - f32(si2));
            s2_1 = s2_1 + alibi2 * (f32(start + kj1) - f32(si2));
            s2_2 = s2_2 + alibi2 * (f32(start + kj2) - f32(si2));
            s2_3 = s2_3 + alibi2 * (f32(start + kj3) - f32(si2));
            top2 = max(max(max(s2_0, s2_1), s2_2), s2_3);
            s3_0 = s3_0 + alibi2 * (f32(start + kj0) - f32(si3));
            s3_1 = s3_1 + alibi2 * (f32(start + kj1) - f32(si3));
            s3_2 = s3_2 + alibi2 * (f32(start + kj2) - f32(si3));
            s3_3 = s3_3 + alibi2 * (f32(start + kj3) - f32(si3));
            top3 = max(max(max(s3_0, s3_1), s3_2), s3_3);
            s4_0 = s4_0 + alibi2 * (f32(start + kj0) - f32(si4));
            s4_1 = s4_1 + alibi2 * (f32(start + kj1) - f32(si4));
            s4_2 = s4_2 + alibi2 * (f32(start + kj2) - f32(si4));
            s4_3 = s4_3 + alibi2 * (f32(start + kj3) - f32(si4));
            top4 = max(max(max(s4_0, s4_1), s4_2), s4_3);
            s5_0 = s5_0 + alibi2 * (f32(start + kj0) - f32(si5));
            s5_1 = s5_1 + alibi2 * (f32(start + kj1) - f32(si5));
            s5_2 = s5_2 + alibi2 * (f32(start + kj2) - f32(si5));
            s5_3 = s5_3 + alibi2 * (f32(start + kj3) - f32(si5));
            top5 = max(max(max(s5_0, s5_1), s5_2), s5_3);
            s6_0 = s6_0 + alibi2 * (f32(start + kj0) - f32(si6));
            s6_1 = s6_1 + alibi2 * (f32(start + kj1) - f32(si6));
            s6_2 = s6_2 + alibi2 * (f32(start + kj2) - f32(si6));
            s6_3 = s6_3 + alibi2 * (f32(start + kj3) - f32(si6));
            top6 = max(max(max(s6_0, s6_1), s6_2), s6_3);
            s7_0 = s7_0 + alibi2 * (f32(start + kj0) - f32(si7));
            s7_1 = s7_1 + alibi2 * (f32(start + kj1) - f32(si7));
            s7_2 = s7_2 + alibi2 * (f32(start + kj2) - f32(si7));
            s7_3 = s7_3 + alibi2 * (f32(start + kj3) - f32(si7));
            top7 = max(max(max(s7_0, s7_1), s7_2), s7_3);
            red[0u * WG + t] = top0;
            red[1u * WG + t] = top1;
            red[2u * WG + t] = top2;
            red[3u * WG + t] = top3;
            red[4u * WG + t] = top4;
            red[5u * WG + t] = top5;
            red[6u * WG + t] = top6;
            red[7u * WG + t] = top7;
            workgroupBarrier();
            let lane0 = t - ((t / 1u) % 8u) * 1u;
            top0 = max(max(max(max(max(max(max(red[0u * WG + lane0], red[0u * WG + lane0 + 1u]), red[0u * WG + lane0 + 2u]), red[0u * WG + lane0 + 3u]), red[0u * WG + lane0 + 4u]), red[0u * WG + lane0 + 5u]), red[0u * WG + lane0 + 6u]), red[0u * WG + lane0 + 7u]);
            top1 = max(max(max(max(max(max(max(red[1u * WG + lane0], red[1u * WG + lane0 + 1u]), red[1u * WG + lane0 + 2u]), red[1u * WG + lane0 + 3u]), red[1u * WG + lane0 + 4u]), red[1u * WG + lane0 + 5u]), red[1u * WG + lane0 + 6u]), red[1u * WG + lane0 + 7u]);
            top2 = max(max(max(max(max(max(max(red[2u * WG + lane0], red[2u * WG + lane0 + 1u]), red[2u * WG + lane0 + 2u]), red[2u * WG + lane0 + 3u]), red[2u * WG + lane0 + 4u]), red[2u * WG + lane0 + 5u]), red[2u * WG + lane0 + 6u]), red[2u * WG + lane0 + 7u]);
            top3 = max(max(max(max(max(max(max(red[3u * WG + lane0], red[3u * WG + lane0 + 1u]), red[3u * WG + lane0 + 2u]), red[3u * WG + lane0 + 3u]), red[3u * WG + lane0 + 4u]), red[3u * WG + lane0 + 5u]), red[3u * WG + lane0 + 6u]), red[3u * WG + lane0 + 7u]);
            top4 = max(max(max(max(max(max(max(red[4u * WG + lane0], red[4u * WG + lane0 + 1u]), red[4u * WG + lane0 + 2u]), red[4u * WG + lane0 + 3u]), red[4u * WG + lane0 + 4u]), red[4u * WG + lane0 + 5u]), red[4u * WG + lane0 + 6u]), red[4u * WG + lane0 + 7u]);
            top5 = max(max(max(max(max(max(max(red[5u * WG + lane0], red[5u * WG + lane0 + 1u]), red[5u * WG + lane0 + 2u]), red[5u * WG + lane0 + 3u]), red[5u * WG + lane0 + 4u]), red[5u * WG + lane0 + 5u]), red[5u * WG + lane0 + 6u]), red[5u * WG + lane0 + 7u]);
            top6 = max(max(max(max(max(max(max(red[6u * WG + lane0], red[6u * WG + lane0 + 1u]), red[6u * WG + lane0 + 2u]), red[6u * WG + lane0 + 3u]), red[6u * WG + lane0 + 4u]), red[6u * WG + lane0 + 5u]), red[6u * WG + lane0 + 6u]), red[6u * WG + lane0 + 7u]);
            top7 = max(max(max(max(max(max(max(red[7u * WG + lane0], red[7u * WG + lane0 + 1u]), red[7u * WG + lane0 + 2u]), red[7u * WG + lane0 + 3u]), red[7u * WG + lane0 + 4u]), red[7u * WG + lane0 + 5u]), red[7u * WG + lane0 + 6u]), red[7u * WG + lane0 + 7u]);
            workgroupBarrier();
            let m_new0 = max(m0, top0);
            alpha0 = exp2(m0 - m_new0);
            m0 = m_new0;
            p0_0 = exp2(s0_0 - m0);
            p0_1 = exp2(s0_1 - m0);
            p0_2 = exp2(s0_2 - m0);
            p0_3 = exp2(s0_3 - m0);
            l0 = fma(l0, alpha0, p0_0 + p0_1 + p0_2 + p0_3);
            let m_new1 = max(m1, top1);
            alpha1 = exp2(m1 - m_new1);
            m1 = m_new1;
            p1_0 = exp2(s1_0 - m1);
            p1_1 = exp2(s1_1 - m1);
            p1_2 = exp2(s1_2 - m1);
            p1_3 = exp2(s1_3 - m1);
            l1 = fma(l1, alpha1, p1_0 + p1_1 + p1_2 + p1_3);
            let m_new2 = max(m2, top2);
            alpha2 = exp2(m2 - m_new2);
            m2 = m_new2;
            p2_0 = exp2(s2_0 - m2);
            p2_1 = exp2(s2_1 - m2);
            p2_2 = exp2(s2_2 - m2);
            p2_3 = exp2(s2_3 - m2);
            l2 = fma(l2, alpha2, p2_0 + p2_1 + p2_2 + p2_3);
            let m_new3 = max(m3, top3);
            alpha3 = exp2(m3 - m_new3);
            m3 = m_new3;
            p3_0 = exp2(s3_0 - m3);
            p3_1 = exp2(s3_1 - m3);
            p3_2 = exp2(s3_2 - m3);
            p3_3 = exp2(s3_3 - m3);
            l3 = fma(l3, alpha3, p3_0 + p3_1 + p3_2 + p3_3);
            let m_new4 = max(m4, top4);
            alpha4 = exp2(m4 - m_new4);
            m4 = m_new4;
            p4_0 = exp2(s4_0 - m4);
            p4_1 = exp2(s4_1 - m4);
            p4_2 = exp2(s4_2 - m4);
            p4_3 = exp2(s4_3 - m4);
            l4 = fma(l4, alpha4, p4_0 + p4_1 + p4_2 + p4_3);
            let m_new5 = max(m5, top5);
            alpha5 = exp2(m5 - m_new5);
            m5 = m_new5;
            p5_0 = exp2(s5_0 - m5);
            p5_1 = exp2(s5_1 - m5);
            p5_2 = exp2(s5_2 - m5);
            p5_3 = exp2(s5_3 - m5);
            l5 = fma(l5, alpha5, p5_0 + p5_1 + p5_2 + p5_3);
            let m_new6 = max(m6, top6);
            alpha6 = exp2(m6 - m_new6);
            m6 = m_new6;
            p6_0 = exp2(s6_0 - m6);
            p6_1 = exp2(s6_1 - m6);
            p6_2 = exp2(s6_2 - m6);
            p6_3 = exp2(s6_3 - m6);
            l6 = fma(l6, alpha6, p6_0 + p6_1 + p6_2 + p6_3);
            let m_new7 = max(m7, top7);
            alpha7 = exp2(m7 - m_new7);
            m7 = m_new7;
            p7_0 = exp2(s7_0 - m7);
            p7_1 = exp2(s7_1 - m7);
            p7_2 = exp2(s7_2 - m7);
            p7_3 = exp2(s7_3 - m7);
            l7 = fma(l7, alpha7, p7_0 + p7_1 + p7_2 + p7_3);
            } else {
                let kin0 = kj0 < len;
                let kin1 = kj1 < len;
                let kin2 = kj2 < len;
                let kin3 = kj3 < len;
                let vis0_0 = kin0 & (start + kj0 <= si0);
                s0_0 = select(F32_LOWEST, s0_0 + alibi2 * (f32(start + kj0) - f32(si0)), vis0_0);
                let vis0_1 = kin1 & (start + kj1 <= si0);
                s0_1 = select(F32_LOWEST, s0_1 + alibi2 * (f32(start + kj1) - f32(si0)), vis0_1);
                let vis0_2 = kin2 & (start + kj2 <= si0);
                s0_2 = select(F32_LOWEST, s0_2 + alibi2 * (f32(start + kj2) - f32(si0)), vis0_2);
                let vis0_3 = kin3 & (start + kj3 <= si0);
                s0_3 = select(F32_LOWEST, s0_3 + alibi2 * (f32(start + kj3) - f32(si0)), vis0_3);
                top0 = max(max(max(s0_0, s0_1), s0_2), s0_3);
                let vis1_0 = kin0 & (start + kj0 <= si1);
                s1_0 = select(F32_LOWEST, s1_0 + alibi2 * (f32(start + kj0) - f32(si1)), vis1_0);
                let vis1_1 = kin1 & (start + kj1 <= si1);
                s1_1 = select(F32_LOWEST, s1_1 + alibi2 * (f32(start + kj1) - f32(si1)), vis1_1);
                let vis1_2 = kin2 & (start + kj2 <= si1);
                s1_2 = select(F32_LOWEST, s1_2 + alibi2 * (f32(start + kj2) - f32(si1)), vis1_2);
                let vis1_3 = kin3 & (start + kj3 <= si1);
                s1_3 = select(F32_LOWEST, s1_3 + alibi2 * (f32(start + kj3) - f32(si1)), vis1_3);
                top1 = max(max(max(s1_0, s1_1), s1_2), s1_3);
                let vis2_0 = kin0 & (start + kj0 <= si2);
                s2_0 = select(F32_LOWEST, s2_0 + alibi2 * (f32(start + kj0) - f32(si2)), vis2_0);
                let vis2_1 = kin1 & (start + kj1 <= si2);
                s2_1 = select(F32_LOWEST, s2_1 + alibi2 * (f32(start + kj1) - f32(si2)), vis2_1);
                let vis2_2 = kin2 & (start + kj2 <= si2);
                s2_2 = select(F32_LOWEST, s2_2 + alibi2 * (f32(start + kj2) - f32(si2)), vis2_2);
                let vis2_3 = kin3 & (start + kj3 <= si2);
                s2_3 = select(F32_LOWEST, s2_3 + alibi2 * (f32(start + kj3) - f32(si2)), vis2_3);
                top2 = max(max(max(s2_0, s2_1), s2_2), s2_3);
                let vis3_0 = kin0 & (start + kj0 <= si3);
                s3_0 = select(F32_LOWEST, s3_0 + alibi2 * (f32(start + kj0) - f32(si3)), vis3_0);
                let vis3_1 = kin1 & (start + kj1 <= si3);
                s3_1 = select(F32_LOWEST, s3_1 + alibi2 * (f32(start + kj1) - f32(si3)), vis3_1);
                let vis3_2 = kin2 & (start + kj2 <= si3);
                s3_2 = select(F32_LOWEST, s3_2 + alibi2 * (f32(start + kj2) - f32(si3)), vis3_2);
                let vis3_3 = kin3 & (start + kj3 <= si3);
                s3_3 = select(F32_LOWEST, s3_3 + alibi2 * (f32(start + kj3) - f32(si3)), vis3_3);
                top3 = max(max(max(s3_0, s3_1), s3_2), s3_3);
                let vis4_0 = kin0 & (start + kj0 <= si4);
                s4_0 = select(F32_LOWEST, s4_0 + alibi2 * (f32(start + kj0) - f32(si4)), vis4_0);
                let vis4_1 = kin1 & (start + kj1 <= si4);
                s4_1 = select(F32_LOWEST, s4_1 + alibi2 * (f32(start + kj1) - f32(si4)), vis4_1);
                let vis4_2 = kin2 & (start + kj2 <= si4);
                s4_2 = select(F32_LOWEST, s4_2 + alibi2 * (f32(start + kj2) - f32(si4)), vis4_2);
                let vis4_3 = kin3 & (start + kj3 <= si4);
                s4_3 = select(F32_LOWEST, s4_3 + alibi2 * (f32(start + kj3) - f32(si4)), vis4_3);
                top4 = max(max(max(s4_0, s4_1), s4_2), s4_3);
                let vis5_0 = kin0 & (start + kj0 <= si5);
                s5_0 = select(F32_LOWEST, s5_0 + alibi2 * (f32(start + kj0) - f32(si5)), vis5_0);
                let vis5_1 = kin1 & (start + kj1 <= si5);
                s5_1 = select(F32_LOWEST, s5_1 + alibi2 * (f32(start + kj1) - f32(si5)), vis5_1);
                let vis5_2 = kin2 & (start + kj2 <= si5);
                s5_2 = select(F32_LOWEST, s5_2 + alibi2 * (f32(start + kj2) - f32(si5)), vis5_2);
                let vis5_3 = kin3 & (start + kj3 <= si5);
                s5_3 = select(F32_LOWEST, s5_3 + alibi2 * (f32(start + kj3) - f32(si5)), vis5_3);
                top5 = max(max(max(s5_0, s5_1), s5_2), s5_3);
                let vis6_0 = kin0 & (start + kj0 <= si6);
                s6_0 = select(F32_LOWEST, s6_0 + alibi2 * (f32(start + kj0) - f32(si6)), vis6_0);
                let vis6_1 = kin1 & (start + kj1 <= si6);
                s6_1 = select(F32_LOWEST, s6_1 + alibi2 * (f32(start + kj1) - f32(si6)), vis6_1);
                let vis6_2 = kin2 & (start + kj2 <= si6);
                s6_2 = select(F32_LOWEST, s6_2 + alibi2 * (f32(start + kj2) - f32(si6)), vis6_2);
                let vis6_3 = kin3 & (start + kj3 <= si6);
                s6_3 = select(F32_LOWEST, s6_3 + alibi2 * (f32(start + kj3) - f32(si6)), vis6_3);
                top6 = max(max(max(s6_0, s6_1), s6_2), s6_3);
                let vis7_0 = kin0 & (start + kj0 <= si7);
                s7_0 = select(F32_LOWEST, s7_0 + alibi2 * (f32(start + kj0) - f32(si7)), vis7_0);
                let vis7_1 = kin1 & (start + kj1 <= si7);
                s7_1 = select(F32_LOWEST, s7_1 + alibi2 * (f32(start + kj1) - f32(si7)), vis7_1);
                let vis7_2 = kin2 & (start + kj2 <= si7);
                s7_2 = select(F32_LOWEST, s7_2 + alibi2 * (f32(start + kj2) - f32(si7)), vis7_2);
                let vis7_3 = kin3 & (start + kj3 <= si7);
                s7_3 = select(F32_LOWEST, s7_3 + alibi2 * (f32(start + kj3) - f32(si7)), vis7_3);
                top7 = max(max(max(s7_0, s7_1), s7_2), s7_3);
                red[0u * WG + t] = top0;
                red[1u * WG + t] = top1;
                red[2u * WG + t] = top2;
                red[3u * WG + t] = top3;
                red[4u * WG + t] = top4;
                red[5u * WG + t] = top5;
                red[6u * WG + t] = top6;
                red[7u * WG + t] = top7;
                workgroupBarrier();
                let lane0 = t - ((t / 1u) % 8u) * 1u;
                top0 = max(max(max(max(max(max(max(red[0u * WG + lane0], red[0u * WG + lane0 + 1u]), red[0u * WG + lane0 + 2u]), red[0u * WG + lane0 + 3u]), red[0u * WG + lane0 + 4u]), red[0u * WG + lane0 + 5u]), red[0u * WG + lane0 + 6u]), red[0u * WG + lane0 + 7u]);
                top1 = max(max(max(max(max(max(max(red[1u * WG + lane0], red[1u * WG + lane0 + 1u]), red[1u * WG + lane0 + 2u]), red[1u * WG + lane0 + 3u]), red[1u * WG + lane0 + 4u]), red[1u * WG + lane0 + 5u]), red[1u * WG + lane0 + 6u]), red[1u * WG + lane0 + 7u]);
                top2 = max(max(max(max(max(max(max(red[2u * WG + lane0], red[2u * WG + lane0 + 1u]), red[2u * WG + lane0 + 2u]), red[2u * WG + lane0 + 3u]), red[2u * WG + lane0 + 4u]), red[2u * WG + lane0 + 5u]), red[2u * WG + lane0 + 6u]), red[2u * WG + lane0 + 7u]);
                top3 = max(max(max(max(max(max(max(red[3u * WG + lane0], red[3u * WG + lane0 + 1u]), red[3u * WG + lane0 + 2u]), red[3u * WG + lane0 + 3u]), red[3u * WG + lane0 + 4u]), red[3u * WG + lane0 + 5u]), red[3u * WG + lane0 + 6u]), red[3u * WG + lane0 + 7u]);
                top4 = max(max(max(max(max(max(max(red[4u * WG + lane0], red[4u * WG + lane0 + 1u]), red[4u * WG + lane0 + 2u]), red[4u * WG + lane0 + 3u]), red[4u * WG + lane0 + 4u]), red[4u * WG + lane0 + 5u]), red[4u * WG + lane0 + 6u]), red[4u * WG + lane0 + 7u]);
                top5 = max(max(max(max(max(max(max(red[5u * WG + lane0], red[5u * WG + lane0 + 1u]), red[5u * WG + lane0 + 2u]), red[5u * WG + lane0 + 3u]), red[5u * WG + lane0 + 4u]), red[5u * WG + lane0 + 5u]), red[5u * WG + lane0 + 6u]), red[5u * WG + lane0 + 7u]);
                top6 = max(max(max(max(max(max(max(red[6u * WG + lane0], red[6u * WG + lane0 + 1u]), red[6u * WG + lane0 + 2u]), red[6u * WG + lane0 + 3u]), red[6u * WG + lane0 + 4u]), red[6u * WG + lane0 + 5u]), red[6u * WG + lane0 + 6u]), red[6u * WG + lane0 + 7u]);
                top7 = max(max(max(max(max(max(max(red[7u * WG + lane0], red[7u * WG + lane0 + 1u]), red[7u * WG + lane0 + 2u]), red[7u * WG + lane0 + 3u]), red[7u * WG + lane0 + 4u]), red[7u * WG + lane0 + 5u]), red[7u * WG + lane0 + 6u]), red[7u * WG + lane0 + 7u]);
                workgroupBarrier();
                let m_new0 = max(m0, top0);
                alpha0 = exp2(m0 - m_new0);
                m0 = m_new0;
                p0_0 = select(0.0, exp2(s0_0 - m0), vis0_0);
                p0_1 = select(0.0, exp2(s0_1 - m0), vis0_1);
                p0_2 = select(0.0, exp2(s0_2 - m0), vis0_2);
                p0_3 = select(0.0, exp2(s0_3 - m0), vis0_3);
                l0 = fma(l0, alpha0, p0_0 + p0_1 + p0_2 + p0_3);
                let m_new1 = max(m1, top1);
                alpha1 = exp2(m1 - m_new1);
                m1 = m_new1;
                p1_0 = select(0.0, exp2(s1_0 - m1), vis1_0);
                p1_1 = select(0.0, exp2(s1_1 - m1), vis1_1);
                p1_2 = select(0.0, exp2(s1_2 - m1), vis1_2);
                p1_3 = select(0.0, exp2(s1_3 - m1), vis1_3);
                l1 = fma(l1, alpha1, p1_0 + p1_1 + p1_2 + p1_3);
                let m_new2 = max(m2, top2);
                alpha2 = exp2(m2 - m_new2);
                m2 = m_new2;
                p2_0 = select(0.0, exp2(s2_0 - m2), vis2_0);
                p2_1 = select(0.0, exp2(s2_1 - m2), vis2_1);
                p2_2 = select(0.0, exp2(s2_2 - m2), vis2_2);
                p2_3 = select(0.0, exp2(s2_3 - m2), vis2_3);
                l2 = fma(l2, alpha2, p2_0 + p2_1 + p2_2 + p2_3);
                let m_new3 = max(m3, top3);
                alpha3 = exp2(m3 - m_new3);
                m3 = m_new3;
                p3_0 = select(0.0, exp2(s3_0 - m3), vis3_0);
                p3_1 = select(0.0, exp2(s3_1 - m3), vis3_1);
                p3_2 = select(0.0, exp2(s3_2 - m3), vis3_2);
                p3_3 = select(0.0, exp2(s3_3 - m3), vis3_3);
                l3 = fma(l3, alpha3, p3_0 + p3_1 + p3_2 + p3_3);
                let m_new4 = max(m4, top4);
                alpha4 = exp2(m4 - m_new4);
                m4 = m_new4;
                p4_0 = select(0.0, exp2(s4_0 - m4), vis4_0);
                p4_1 = select(0.0, exp2(s4_1 - m4), vis4_1);
                p4_2 = select(0.0, exp2(s4_2 - m4), vis4_2);
                p4_3 = select(0.0, exp2(s4_3 - m4), vis4_3);
                l4 = fma(l4, alpha4, p4_0 + p4_1 + p4_2 + p4_3);
                let m_new5 = max(m5, top5);
                alpha5 = exp2(m5 - m_new5);
                m5 = m_new5;
                p5_0 = select(0.0, exp2(s5_0 - m5), vis5_0);
                p5_1 = select(0.0, exp2(s5_1 - m5), vis5_1);
                p5_2 = select(0.0, exp2(s5_2 - m5), vis5_2);
                p5_3 = select(0.0, exp2(s5_3 - m5), vis5_3);
                l5 = fma(l5, alpha5, p5_0 + p5_1 + p5_2 + p5_3);
                let m_new6 = max(m6, top6);
                alpha6 = exp2(m6 - m_new6);
                m6 = m_new6;
                p6_0 = select(0.0, exp2(s6_0 - m6), vis6_0);
                p6_1 = select(0.0, exp2(s6_1 - m6), vis6_1);
                p6_2 = select(0.0, exp2(s6_2 - m6), vis6_2);
                p6_3 = select(0.0, exp2(s6_3 - m6), vis6_3);
                l6 = fma(l6, alpha6, p6_0 + p6_1 + p6_2 + p6_3);
                let m_new7 = max(m7, top7);
                alpha7 = exp2(m7 - m_new7);
                m7 = m_new7;
                p7_0 = select(0.0, exp2(s7_0 - m7), vis7_0);
                p7_1 = select(0.0, exp2(s7_1 - m7), vis7_1);
                p7_2 = select(0.0, exp2(s7_2 - m7), vis7_2);
                p7_3 = select(0.0, exp2(s7_3 - m7), vis7_3);
                l7 = fma(l7, alpha7, p7_0 + p7_1 + p7_2 + p7_3);
            }
            if ds == 0u {
                ps[pw0] = vec4<f32>(p0_0, p1_0, p2_0, p3_0);
                ps[pw0 + 8u] = vec4<f32>(p4_0, p5_0, p6_0, p7_0);
                ps[pw1] = vec4<f32>(p0_1, p1_1, p2_1, p3_1);
                ps[pw1 + 8u] = vec4<f32>(p4_1, p5_1, p6_1, p7_1);
                ps[pw2] = vec4<f32>(p0_2, p1_2, p2_2, p3_2);
                ps[pw2 + 8u] = vec4<f32>(p4_2, p5_2, p6_2, p7_2);
                ps[pw3] = vec4<f32>(p0_3, p1_3, p2_3, p3_3);
                ps[pw3 + 8u] = vec4<f32>(p4_3, p5_3, p6_3, p7_3);
                if kg == 0u {
                    alpha[srow] = alpha0;
                    alpha[srow + 8u] = alpha1;
                    alpha[srow + 16u] = alpha2;
                    alpha[srow + 24u] = alpha3;
                    alpha[srow + 32u] = alpha4;
                    alpha[srow + 40u] = alpha5;
                    alpha[srow + 48u] = alpha6;
                    alpha[srow + 56u] = alpha7;
                }
            }
            workgroupBarrier();
            let a0 = alpha[or0];
            o0_0 *= a0;
            let a1 = alpha[or1];
            o1_0 *= a1;
            let a2 = alpha[or2];
            o2_0 *= a2;
            let a3 = alpha[or3];
            o3_0 *= a3;
            let a4 = alpha[or4];
            o4_0 *= a4;
            let a5 = alpha[or5];
            o5_0 *= a5;
            let a6 = alpha[or6];
            o6_0 *= a6;
            let a7 = alpha[or7];
            o7_0 *= a7;
            for (var kk = 0u; kk < BK; kk += 4u) {
                let pb = kk * PSTR;
                let pb0 = pb + oj0;
                let pb1 = pb + oj1;
                let vb0 = kk * STR + col0;
                let p0_0 = ps[pb0];
                let p0_1 = ps[pb1];
                let vv0_0 = kt[vb0];
                o0_0 = fma(vec4<f32>(p0_0.x), vv0_0, o0_0);
                o1_0 = fma(vec4<f32>(p0_0.y), vv0_0, o1_0);
                o2_0 = fma(vec4<f32>(p0_0.z), vv0_0, o2_0);
                o3_0 = fma(vec4<f32>(p0_0.w), vv0_0, o3_0);
                o4_0 = fma(vec4<f32>(p0_1.x), vv0_0, o4_0);
                o5_0 = fma(vec4<f32>(p0_1.y), vv0_0, o5_0);
                o6_0 = fma(vec4<f32>(p0_1.z), vv0_0, o6_0);
                o7_0 = fma(vec4<f32>(p0_1.w), vv0_0, o7_0);
                let p1_0 = ps[pb0 + 17u];
                let p1_1 = ps[pb1 + 17u];
                let vv1_0 = kt[vb0 + 9u];
                o0_0 = fma(vec4<f32>(p1_0.x), vv1_0, o0_0);
                o1_0 = fma(vec4<f32>(p1_0.y), vv1_0, o1_0);
                o2_0 = fma(vec4<f32>(p1_0.z), vv1_0, o2_0);
                o3_0 = fma(vec4<f32>(p1_0.w), vv1_0, o3_0);
                o4_0 = fma(vec4<f32>(p1_1.x), vv1_0, o4_0);
                o5_0 = fma(vec4<f32>(p1_1.y), vv1_0, o5_0);
                o6_0 = fma(vec4<f32>(p1_1.z), vv1_0, o6_0);
                o7_0 = fma(vec4<f32>(p1_1.w), vv1_0, o7_0);
                let p2_0 = ps[pb0 + 34u];
                let p2_1 = ps[pb1 + 34u];
                let vv2_0 = kt[vb0 + 18u];
                o0_0 = fma(vec4<f32>(p2_0.x), vv2_0, o0_0);
                o1_0 = fma(vec4<f32>(p2_0.y), vv2_0, o1_0);
                o2_0 = fma(vec4<f32>(p2_0.z), vv2_0, o2_0);
                o3_0 = fma(vec4<f32>(p2_0.w), vv2_0, o3_0);
                o4_0 = fma(vec4<f32>(p2_1.x), vv2_0, o4_0);
                o5_0 = fma(vec4<f32>(p2_1.y), vv2_0, o5_0);
                o6_0 = fma(vec4<f32>(p2_1.z), vv2_0, o6_0);
                o7_0 = fma(vec4<f32>(p2_1.w), vv2_0, o7_0);
                let p3_0 = ps[pb0 + 51u];
                let p3_1 = ps[pb1 + 51u];
                let vv3_0 = kt[vb0 + 27u];
                o0_0 = fma(vec4<f32>(p3_0.x), vv3_0, o0_0);
                o1_0 = fma(vec4<f32>(p3_0.y), vv3_0, o1_0);
                o2_0 = fma(vec4<f32>(p3_0.z), vv3_0, o2_0);
                o3_0 = fma(vec4<f32>(p3_0.w), vv3_0, o3_0);
                o4_0 = fma(vec4<f32>(p3_1.x), vv3_0, o4_0);
                o5_0 = fma(vec4<f32>(p3_1.y), vv3_0, o5_0);
                o6_0 = fma(vec4<f32>(p3_1.z), vv3_0, o6_0);
                o7_0 = fma(vec4<f32>(p3_1.w), vv3_0, o7_0);
            }
            start += BK;
        }
        // The state: m and l (summed over the lanes of a row) from the score phase, acc
        // from the output phase.
        red[0u * WG + t] = l0;
        red[1u * WG + t] = l1;
        red[2u * WG + t] = l2;
        red[3u * WG + t] = l3;
        red[4u * WG + t] = l4;
        red[5u * WG + t] = l5;
        red[6u * WG + t] = l6;
        red[7u * WG + t] = l7;
        workgroupBarrier();
        let lane0 = t - ((t / 1u) % 8u) * 1u;
        l0 = red[0u * WG + lane0] + red[0u * WG + lane0 + 1u] + red[0u * WG + lane0 + 2u] + red[0u * WG + lane0 + 3u] + red[0u * WG + lane0 + 4u] + red[0u * WG + lane0 + 5u] + red[0u * WG + lane0 + 6u] + red[0u * WG + lane0 + 7u];
        l1 = red[1u * WG + lane0] + red[1u * WG + lane0 + 1u] + red[1u * WG + lane0 + 2u] + red[1u * WG + lane0 + 3u] + red[1u * WG + lane0 + 4u] + red[1u * WG + lane0 + 5u] + red[1u * WG + lane0 + 6u] + red[1u * WG + lane0 + 7u];
        l2 = red[2u * WG + lane0] + red[2u * WG + lane0 + 1u] + red[2u * WG + lane0 + 2u] + red[2u * WG + lane0 + 3u] + red[2u * WG + lane0 + 4u] + red[2u * WG + lane0 + 5u] + red[2u * WG + lane0 + 6u] + red[2u * WG + lane0 + 7u];
        l3 = red[3u * WG + lane0] + red[3u * WG + lane0 + 1u] + red[3u * WG + lane0 + 2u] + red[3u * WG + lane0 + 3u] + red[3u * WG + lane0 + 4u] + red[3u * WG + lane0 + 5u] + red[3u * WG + lane0 + 6u] + red[3u * WG + lane0 + 7u];
        l4 = red[4u * WG + lane0] + red[4u * WG + lane0 + 1u] + red[4u * WG + lane0 + 2u] + red[4u * WG + lane0 + 3u] + red[4u * WG + lane0 + 4u] + red[4u * WG + lane0 + 5u] + red[4u * WG + lane0 + 6u] + red[4u * WG + lane0 + 7u];
        l5 = red[5u * WG + lane0] + red[5u * WG + lane0 + 1u] + red[5u * WG + lane0 + 2u] + red[5u * WG + lane0 + 3u] + red[5u * WG + lane0 + 4u] + red[5u * WG + lane0 + 5u] + red[5u * WG + lane0 + 6u] + red[5u * WG + lane0 + 7u];
        l6 = red[6u * WG + lane0] + red[6u * WG + lane0 + 1u] + red[6u * WG + lane0 + 2u] + red[6u * WG + lane0 + 3u] + red[6u * WG + lane0 + 4u] + red[6u * WG + lane0 + 5u] + red[6u * WG + lane0 + 6u] + red[6u * WG + lane0 + 7u];
        l7 = red[7u * WG + lane0] + red[7u * WG + lane0 + 1u] + red[7u * WG + lane0 + 2u] + red[7u * WG + lane0 + 3u] + red[7u * WG + lane0 + 4u] + red[7u * WG + lane0 + 5u] + red[7u * WG + lane0 + 6u] + red[7u * WG + lane0 + 7u];
        workgroupBarrier();
        if lead {
            if si0 < nq {
                ml_state[2u * (state0 + si0)] = m0;
                ml_state[2u * (state0 + si0) + 1u] = l0;
            }
            if si1 < nq {
                ml_state[2u * (state0 + si1)] = m1;
                ml_state[2u * (state0 + si1) + 1u] = l1;
            }
            if si2 < nq {
                ml_state[2u * (state0 + si2)] = m2;
                ml_state[2u * (state0 + si2) + 1u] = l2;
            }
            if si3 < nq {
                ml_state[2u * (state0 + si3)] = m3;
                ml_state[2u * (state0 + si3) + 1u] = l3;
            }
            if si4 < nq {
                ml_state[2u * (state0 + si4)] = m4;
                ml_state[2u * (state0 + si4) + 1u] = l4;
            }
            if si5 < nq {
                ml_state[2u * (state0 + si5)] = m5;
                ml_state[2u * (state0 + si5) + 1u] = l5;
            }
            if si6 < nq {
                ml_state[2u * (state0 + si6)] = m6;
                ml_state[2u * (state0 + si6) + 1u] = l6;
            }
            if si7 < nq {
                ml_state[2u * (state0 + si7)] = m7;
                ml_state[2u * (state0 + si7) + 1u] = l7;
            }
        }
        if oi0 < nq {
            if col0 < DV {
                acc_state[(state0 + oi0) * DV + col0] = o0_0;
            }
        }
        if oi1 < nq {
            if col0 < DV {
                acc_state[(state0 + oi1) * DV + col0] = o1_0;
            }
        }
        if oi2 < nq {
            if col0 < DV {
                acc_state[(state0 + oi2) * DV + col0] = o2_0;
            }
        }
        if oi3 < nq {
            if col0 < DV {
                acc_state[(state0 + oi3) * DV + col0] = o3_0;
            }
        }
        if oi4 < nq {
            if col0 < DV {
                acc_state[(state0 + oi4) * DV + col0] = o4_0;
            }
        }
        if oi5 < nq {
            if col0 < DV {
                acc_state[(state0 + oi5) * DV + col0] = o5_0;
            }
        }
        if oi6 < nq {
            if col0 < DV {
                acc_state[(state0 + oi6) * DV + col0] = o6_0;
            }
        }
        if oi7 < nq {
            if col0 < DV {
                acc_state[(state0 + oi7) * DV + col0] = o7_0;
            }
        }
    }
