// Generated header (src/backend/gpu/codegen.rs).
const D: u32 = 3u;
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
    var xi0_0 = vec4<f32>(x[t0], x[t0 + 1u], x[t0 + 2u], 0.0).xyz;
    let n0 = sqrt(dot(xi0_0, xi0_0));
    xi0_0 /= n0;
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
        var xi1_0 = vec4<f32>(x[t1], x[t1 + 1u], x[t1 + 2u], 0.0).xyz;
        let n1 = sqrt(dot(xi1_0, xi1_0));
        xi1_0 /= n1;
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
            var xi2_0 = vec4<f32>(x[t2], x[t2 + 1u], x[t2 + 2u], 0.0).xyz;
            let n2 = sqrt(dot(xi2_0, xi2_0));
            xi2_0 /= n2;
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
                var xi3_0 = vec4<f32>(x[t3], x[t3 + 1u], x[t3 + 2u], 0.0).xyz;
                let n3 = sqrt(dot(xi3_0, xi3_0));
                xi3_0 /= n3;
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
                    let i4 = q0 + lid.x + 256u;
                    let ok4 = i4 < n;
                    let t4 = (key_base + min(i4, n - 1u)) * D;
                    var xi4_0 = vec4<f32>(x[t4], x[t4 + 1u], x[t4 + 2u], 0.0).xyz;
                    let n4 = sqrt(dot(xi4_0, xi4_0));
                    xi4_0 /= n4;
                    let bn4 = beta2 * n4;
                    var m4 = F32_LOWEST;
                    var l4 = 0.0;
                    var mn4 = 3.0;
                    var sc4 = 0.0;
                    var sd4 = 0.0;
                    if first {
                        if split_start < n {
                            var dot0 = 0.0;
                            for (var e = 0u; e < D; e++) {
                                dot0 += x[t4 + e] * x[j0 + e];
                            }
                            m4 = beta2 * dot0;
                        }
                        } else {
                            let row = stats[state0 + min(i4, n - 1u)];
                            m4 = row.m;
                            l4 = row.l;
                            mn4 = row.min_cos;
                            sc4 = row.sum_cos;
                            sd4 = row.sum_dot / n4;
                        }
                        var nm4 = -m4;
                        let i5 = q0 + lid.x + 320u;
                        let ok5 = i5 < n;
                        let t5 = (key_base + min(i5, n - 1u)) * D;
                        var xi5_0 = vec4<f32>(x[t5], x[t5 + 1u], x[t5 + 2u], 0.0).xyz;
                        let n5 = sqrt(dot(xi5_0, xi5_0));
                        xi5_0 /= n5;
                        let bn5 = beta2 * n5;
                        var m5 = F32_LOWEST;
                        var l5 = 0.0;
                        var mn5 = 3.0;
                        var sc5 = 0.0;
                        var sd5 = 0.0;
                        if first {
                            if split_start < n {
                                var dot0 = 0.0;
                                for (var e = 0u; e < D; e++) {
                                    dot0 += x[t5 + e] * x[j0 + e];
                                }
                                m5 = beta2 * dot0;
                            }
                            } else {
                                let row = stats[state0 + min(i5, n - 1u)];
                                m5 = row.m;
                                l5 = row.l;
                                mn5 = row.min_cos;
                                sc5 = row.sum_cos;
                                sd5 = row.sum_dot / n5;
                            }
                            var nm5 = -m5;
                            let i6 = q0 + lid.x + 384u;
                            let ok6 = i6 < n;
                            let t6 = (key_base + min(i6, n - 1u)) * D;
                            var xi6_0 = vec4<f32>(x[t6], x[t6 + 1u], x[t6 + 2u], 0.0).xyz;
                            let n6 = sqrt(dot(xi6_0, xi6_0));
                            xi6_0 /= n6;
                            let bn6 = beta2 * n6;
                            var m6 = F32_LOWEST;
                            var l6 = 0.0;
                            var mn6 = 3.0;
                            var sc6 = 0.0;
                            var sd6 = 0.0;
                            if first {
                                if split_start < n {
                                    var dot0 = 0.0;
                                    for (var e = 0u; e < D; e++) {
                                        dot0 += x[t6 + e] * x[j0 + e];
                                    }
                                    m6 = beta2 * dot0;
                                }
                                } else {
                                    let row = stats[state0 + min(i6, n - 1u)];
                                    m6 = row.m;
                                    l6 = row.l;
                                    mn6 = row.min_cos;
                                    sc6 = row.sum_cos;
                                    sd6 = row.sum_dot / n6;
                                }
                                var nm6 = -m6;
                                let i7 = q0 + lid.x + 448u;
                                let ok7 = i7 < n;
                                let t7 = (key_base + min(i7, n - 1u)) * D;
                                var xi7_0 = vec4<f32>(x[t7], x[t7 + 1u], x[t7 + 2u], 0.0).xyz;
                                let n7 = sqrt(dot(xi7_0, xi7_0));
                                xi7_0 /= n7;
                                let bn7 = beta2 * n7;
                                var m7 = F32_LOWEST;
                                var l7 = 0.0;
                                var mn7 = 3.0;
                                var sc7 = 0.0;
                                var sd7 = 0.0;
                                if first {
                                    if split_start < n {
                                        var dot0 = 0.0;
                                        for (var e = 0u; e < D; e++) {
                                            dot0 += x[t7 + e] * x[j0 + e];
                                        }
                                        m7 = beta2 * dot0;
                                    }
                                    } else {
                                        let row = stats[state0 + min(i7, n - 1u)];
                                        m7 = row.m;
                                        l7 = row.l;
                                        mn7 = row.min_cos;
                                        sc7 = row.sum_cos;
                                        sd7 = row.sum_dot / n7;
                                    }
                                    var nm7 = -m7;
                                    let i8 = q0 + lid.x + 512u;
                                    let ok8 = i8 < n;
                                    let t8 = (key_base + min(i8, n - 1u)) * D;
                                    var xi8_0 = vec4<f32>(x[t8], x[t8 + 1u], x[t8 + 2u], 0.0).xyz;
                                    let n8 = sqrt(dot(xi8_0, xi8_0));
                                    xi8_0 /= n8;
                                    let bn8 = beta2 * n8;
                                    var m8 = F32_LOWEST;
                                    var l8 = 0.0;
                                    var mn8 = 3.0;
                                    var sc8 = 0.0;
                                    var sd8 = 0.0;
                                    if first {
                                        if split_start < n {
                                            var dot0 = 0.0;
                                            for (var e = 0u; e < D; e++) {
                                                dot0 += x[t8 + e] * x[j0 + e];
                                            }
                                            m8 = beta2 * dot0;
                                        }
                                        } else {
                                            let row = stats[state0 + min(i8, n - 1u)];
                                            m8 = row.m;
                                            l8 = row.l;
                                            mn8 = row.min_cos;
                                            sc8 = row.sum_cos;
                                            sd8 = row.sum_dot / n8;
                                        }
                                        var nm8 = -m8;
                                        let i9 = q0 + lid.x + 576u;
                                        let ok9 = i9 < n;
                                        let t9 = (key_base + min(i9, n - 1u)) * D;
                                        var xi9_0 = vec4<f32>(x[t9], x[t9 + 1u], x[t9 + 2u], 0.0).xyz;
                                        let n9 = sqrt(dot(xi9_0, xi9_0));
                                        xi9_0 /= n9;
                                        let bn9 = beta2 * n9;
                                        var m9 = F32_LOWEST;
                                        var l9 = 0.0;
                                        var mn9 = 3.0;
                                        var sc9 = 0.0;
                                        var sd9 = 0.0;
                                        if first {
                                            if split_start < n {
                                                var dot0 = 0.0;
                                                for (var e = 0u; e < D; e++) {
                                                    dot0 += x[t9 + e] * x[j0 + e];
                                                }
                                                m9 = beta2 * dot0;
                                            }
                                            } else {
                                                let row = stats[state0 + min(i9, n - 1u)];
                                                m9 = row.m;
                                                l9 = row.l;
                                                mn9 = row.min_cos;
                                                sc9 = row.sum_cos;
                                                sd9 = row.sum_dot / n9;
                                            }
                                            var nm9 = -m9;
                                            let i10 = q0 + lid.x + 640u;
                                            let ok10 = i10 < n;
                                            let t10 = (key_base + min(i10, n - 1u)) * D;
                                            var xi10_0 = vec4<f32>(x[t10], x[t10 + 1u], x[t10 + 2u], 0.0).xyz;
                                            let n10 = sqrt(dot(xi10_0, xi10_0));
                                            xi10_0 /= n10;
                                            let bn10 = beta2 * n10;
                                            var m10 = F32_LOWEST;
                                            var l10 = 0.0;
                                            var mn10 = 3.0;
                                            var sc10 = 0.0;
                                            var sd10 = 0.0;
                                            if first {
                                                if split_start < n {
                                                    var dot0 = 0.0;
                                                    for (var e = 0u; e < D; e++) {
                                                        dot0 += x[t10 + e] * x[j0 + e];
                                                    }
                                                    m10 = beta2 * dot0;
                                                }
                                                } else {
                                                    let row = stats[state0 + min(i10, n - 1u)];
                                                    m10 = row.m;
                                                    l10 = row.l;
                                                    mn10 = row.min_cos;
                                                    sc10 = row.sum_cos;
                                                    sd10 = row.sum_dot / n10;
                                                }
                                                var nm10 = -m10;
                                                let i11 = q0 + lid.x + 704u;
                                                let ok11 = i11 < n;
                                                let t11 = (key_base + min(i11, n - 1u)) * D;
                                                var xi11_0 = vec4<f32>(x[t11], x[t11 + 1u], x[t11 + 2u], 0.0).xyz;
                                                let n11 = sqrt(dot(xi11_0, xi11_0));
                                                xi11_0 /= n11;
                                                let bn11 = beta2 * n11;
                                                var m11 = F32_LOWEST;
                                                var l11 = 0.0;
                                                var mn11 = 3.0;
                                                var sc11 = 0.0;
                                                var sd11 = 0.0;
                                                if first {
                                                    if split_start < n {
                                                        var dot0 = 0.0;
                                                        for (var e = 0u; e < D; e++) {
                                                            dot0 += x[t11 + e] * x[j0 + e];
                                                        }
                                                        m11 = beta2 * dot0;
                                                    }
                                                    } else {
                                                        let row = stats[state0 + min(i11, n - 1u)];
                                                        m11 = row.m;
                                                        l11 = row.l;
                                                        mn11 = row.min_cos;
                                                        sc11 = row.sum_cos;
                                                        sd11 = row.sum_dot / n11;
                                                    }
                                                    var nm11 = -m11;
                                                    let i12 = q0 + lid.x + 768u;
                                                    let ok12 = i12 < n;
                                                    let t12 = (key_base + min(i12, n - 1u)) * D;
                                                    var xi12_0 = vec4<f32>(x[t12], x[t12 + 1u], x[t12 + 2u], 0.0).xyz;
                                                    let n12 = sqrt(dot(xi12_0, xi12_0));
                                                    xi12_0 /= n12;
                                                    let bn12 = beta2 * n12;
                                                    var m12 = F32_LOWEST;
                                                    var l12 = 0.0;
                                                    var mn12 = 3.0;
                                                    var sc12 = 0.0;
                                                    var sd12 = 0.0;
                                                    if first {
                                                        if split_start < n {
                                                            var dot0 = 0.0;
                                                            for (var e = 0u; e < D; e++) {
                                                                dot0 += x[t12 + e] * x[j0 + e];
                                                            }
                                                            m12 = beta2 * dot0;
                                                        }
                                                        } else {
                                                            let row = stats[state0 + min(i12, n - 1u)];
                                                            m12 = row.m;
                                                            l12 = row.l;
                                                            mn12 = row.min_cos;
                                                            sc12 = row.sum_cos;
                                                            sd12 = row.sum_dot / n12;
                                                        }
                                                        var nm12 = -m12;
                                                        let i13 = q0 + lid.x + 832u;
                                                        let ok13 = i13 < n;
                                                        let t13 = (key_base + min(i13, n - 1u)) * D;
                                                        var xi13_0 = vec4<f32>(x[t13], x[t13 + 1u], x[t13 + 2u], 0.0).xyz;
                                                        let n13 = sqrt(dot(xi13_0, xi13_0));
                                                        xi13_0 /= n13;
                                                        let bn13 = beta2 * n13;
                                                        var m13 = F32_LOWEST;
                                                        var l13 = 0.0;
                                                        var mn13 = 3.0;
                                                        var sc13 = 0.0;
                                                        var sd13 = 0.0;
                                                        if first {
                                                            if split_start < n {
                                                                var dot0 = 0.0;
                                                                for (var e = 0u; e < D; e++) {
                                                                    dot0 += x[t13 + e] * x[j0 + e];
                                                                }
                                                                m13 = beta2 * dot0;
                                                            }
                                                            } else {
                                                                let row = stats[state0 + min(i13, n - 1u)];
                                                                m13 = row.m;
                                                                l13 = row.l;
                                                                mn13 = row.min_cos;
                                                                sc13 = row.sum_cos;
                                                                sd13 = row.sum_dot / n13;
                                                            }
                                                            var nm13 = -m13;
                                                            let i14 = q0 + lid.x + 896u;
                                                            let ok14 = i14 < n;
                                                            let t14 = (key_base + min(i14, n - 1u)) * D;
                                                            var xi14_0 = vec4<f32>(x[t14], x[t14 + 1u], x[t14 + 2u], 0.0).xyz;
                                                            let n14 = sqrt(dot(xi14_0, xi14_0));
                                                            xi14_0 /= n14;
                                                            let bn14 = beta2 * n14;
                                                            var m14 = F32_LOWEST;
                                                            var l14 = 0.0;
                                                            var mn14 = 3.0;
                                                            var sc14 = 0.0;
                                                            var sd14 = 0.0;
                                                            if first {
                                                                if split_start < n {
                                                                    var dot0 = 0.0;
                                                                    for (var e = 0u; e < D; e++) {
                                                                        dot0 += x[t14 + e] * x[j0 + e];
                                                                    }
                                                                    m14 = beta2 * dot0;
                                                                }
                                                                } else {
                                                                    let row = stats[state0 + min(i14, n - 1u)];
                                                                    m14 = row.m;
                                                                    l14 = row.l;
                                                                    mn14 = row.min_cos;
                                                                    sc14 = row.sum_cos;
                                                                    sd14 = row.sum_dot / n14;
                                                                }
                                                                var nm14 = -m14;
                                                                let i15 = q0 + lid.x + 960u;
                                                                let ok15 = i15 < n;
                                                                let t15 = (key_base + min(i15, n - 1u)) * D;
                                                                var xi15_0 = vec4<f32>(x[t15], x[t15 + 1u], x[t15 + 2u], 0.0).xyz;
                                                                let n15 = sqrt(dot(xi15_0, xi15_0));
                                                                xi15_0 /= n15;
                                                                let bn15 = beta2 * n15;
                                                                var m15 = F32_LOWEST;
                                                                var l15 = 0.0;
                                                                var mn15 = 3.0;
                                                                var sc15 = 0.0;
                                                                var sd15 = 0.0;
                                                                if first {
                                                                    if split_start < n {
                                                                        var dot0 = 0.0;
                                                                        for (var e = 0u; e < D; e++) {
                                                                            dot0 += x[t15 + e] * x[j0 + e];
                                                                        }
                                                                        m15 = beta2 * dot0;
                                                                    }
                                                                    } else {
                                                                        let row = stats[state0 + min(i15, n - 1u)];
                                                                        m15 = row.m;
                                                                        l15 = row.l;
                                                                        mn15 = row.min_cos;
                                                                        sc15 = row.sum_cos;
                                                                        sd15 = row.sum_dot / n15;
                                                                    }
                                                                    var nm15 = -m15;
                                                                    var start = start0;
                                                                    loop {
                                                                        if start >= key_end {
                                                                            break;
                                                                        }
                                                                        let len = min(TK, key_end - start);
                                                                        workgroupBarrier();
                                                                        for (var e = lid.x; e < TK; e += WG) {
                                                                            var key_0 = vec4<f32>(0.0);
                                                                            var norm = 0.0;
                                                                            if e < len {
                                                                                let o = (key_base + start + e) * D;
                                                                                key_0 = vec4<f32>(x[o], x[o + 1u], x[o + 2u], 0.0);
                                                                                norm = sqrt(dot(key_0, key_0));
                                                                                key_0 /= norm;
                                                                            }
                                                                            tile[e * DV + 0u] = key_0;
                                                                            tile_norm[e] = norm;
                                                                        }
                                                                        workgroupBarrier();
                                                                        var tl0 = 0.0;
                                                                        var tl1 = 0.0;
                                                                        var tl2 = 0.0;
                                                                        var tl3 = 0.0;
                                                                        var tl4 = 0.0;
                                                                        var tl5 = 0.0;
                                                                        var tl6 = 0.0;
                                                                        var tl7 = 0.0;
                                                                        var tl8 = 0.0;
                                                                        var tl9 = 0.0;
                                                                        var tl10 = 0.0;
                                                                        var tl11 = 0.0;
                                                                        var tl12 = 0.0;
                                                                        var tl13 = 0.0;
                                                                        var tl14 = 0.0;
                                                                        var tl15 = 0.0;
                                                                        if len == TK {
                                                                            for (var kk = 0u; kk < len; kk += G) {
                                                                                let kb = kk * DV;
                                                                                let kn0 = tile_norm[kk];
                                                                                let k0_0 = tile[kb].xyz;
                                                                                let kn1 = tile_norm[kk + 1u];
                                                                                let k1_0 = tile[kb + 1u].xyz;
                                                                                let c0_0 = dot(xi0_0, k0_0);
                                                                                let u0_0 = c0_0 * kn0;
                                                                                tl0 += exp2(fma(u0_0, bn0, nm0));
                                                                                mn0 = min(mn0, c0_0);
                                                                                sc0 += c0_0;
                                                                                sd0 += u0_0;
                                                                                let c0_1 = dot(xi0_0, k1_0);
                                                                                let u0_1 = c0_1 * kn1;
                                                                                tl0 += exp2(fma(u0_1, bn0, nm0));
                                                                                mn0 = min(mn0, c0_1);
                                                                                sc0 += c0_1;
                                                                                sd0 += u0_1;
                                                                                let c1_0 = dot(xi1_0, k0_0);
                                                                                let u1_0 = c1_0 * kn0;
                                                                                tl1 += exp2(fma(u1_0, bn1, nm1));
                                                                                mn1 = min(mn1, c1_0);
                                                                                sc1 += c1_0;
                                                                                sd1 += u1_0;
                                                                                let c1_1 = dot(xi1_0, k1_0);
                                                                                let u1_1 = c1_1 * kn1;
                                                                                tl1 += exp2(fma(u1_1, bn1, nm1));
                                                                                mn1 = min(mn1, c1_1);
                                                                                sc1 += c1_1;
                                                                                sd1 += u1_1;
                                                                                let c2_0 = dot(xi2_0, k0_0);
                                                                                let u2_0 = c2_0 * kn0;
                                                                                tl2 += exp2(fma(u2_0, bn2, nm2));
                                                                                mn2 = min(mn2, c2_0);
                                                                                sc2 += c2_0;
                                                                                sd2 += u2_0;
                                                                                let c2_1 = dot(xi2_0, k1_0);
                                                                                let u2_1 = c2_1 * kn1;
                                                                                tl2 += exp2(fma(u2_1, bn2, nm2));
                                                                                mn2 = min(mn2, c2_1);
                                                                                sc2 += c2_1;
                                                                                sd2 += u2_1;
                                                                                let c3_0 = dot(xi3_0, k0_0);
                                                                                let u3_0 = c3_0 * kn0;
                                                                                tl3 += exp2(fma(u3_0, bn3, nm3));
                                                                                mn3 = min(mn3, c3_0);
                                                                                sc3 += c3_0;
                                                                                sd3 += u3_0;
                                                                                let c3_1 = dot(xi3_0, k1_0);
                                                                                let u3_1 = c3_1 * kn1;
                                                                                tl3 += exp2(fma(u3_1, bn3, nm3));
                                                                                mn3 = min(mn3, c3_1);
                                                                                sc3 += c3_1;
                                                                                sd3 += u3_1;
                                                                                let c4_0 = dot(xi4_0, k0_0);
                                                                                let u4_0 = c4_0 * kn0;
                                                                                tl4 += exp2(fma(u4_0, bn4, nm4));
                                                                                mn4 = min(mn4, c4_0);
                                                                                sc4 += c4_0;
                                                                                sd4 += u4_0;
                                                                                let c4_1 = dot(xi4_0, k1_0);
                                                                                let u4_1 = c4_1 * kn1;
                                                                                tl4 += exp2(fma(u4_1, bn4, nm4));
                                                                                mn4 = min(mn4, c4_1);
                                                                                sc4 += c4_1;
                                                                                sd4 += u4_1;
                                                                                let c5_0 = dot(xi5_0, k0_0);
                                                                                let u5_0 = c5_0 * kn0;
                                                                                tl5 += exp2(fma(u5_0, bn5, nm5));
                                                                                mn5 = min(mn5, c5_0);
                                                                                sc5 += c5_0;
                                                                                sd5 += u5_0;
                                                                                let c5_1 = dot(xi5_0, k1_0);
                                                                                let u5_1 = c5_1 * kn1;
                                                                                tl5 += exp2(fma(u5_1, bn5, nm5));
                                                                                mn5 = min(mn5, c5_1);
                                                                                sc5 += c5_1;
                                                                                sd5 += u5_1;
                                                                                let c6_0 = dot(xi6_0, k0_0);
                                                                                let u6_0 = c6_0 * kn0;
                                                                                tl6 += exp2(fma(u6_0, bn6, nm6));
                                                                                mn6 = min(mn6, c6_0);
                                                                                sc6 += c6_0;
                                                                                sd6 += u6_0;
                                                                                let c6_1 = dot(xi6_0, k1_0);
                                                                                let u6_1 = c6_1 * kn1;
                                                                                tl6 += exp2(fma(u6_1, bn6, nm6));
                                                                                mn6 = min(mn6, c6_1);
                                                                                sc6 += c6_1;
                                                                                sd6 += u6_1;
                                                                                let c7_0 = dot(xi7_0, k0_0);
                                                                                let u7_0 = c7_0 * kn0;
                                                                                tl7 += exp2(fma(u7_0, bn7, nm7));
                                                                                mn7 = min(mn7, c7_0);
                                                                                sc7 += c7_0;
                                                                                sd7 += u7_0;
                                                                                let c7_1 = dot(xi7_0, k1_0);
                                                                                let u7_1 = c7_1 * kn1;
                                                                                tl7 += exp2(fma(u7_1, bn7, nm7));
                                                                                mn7 = min(mn7, c7_1);
                                                                                sc7 += c7_1;
                                                                                sd7 += u7_1;
                                                                                let c8_0 = dot(xi8_0, k0_0);
                                                                                let u8_0 = c8_0 * kn0;
                                                                                tl8 += exp2(fma(u8_0, bn8, nm8));
                                                                                mn8 = min(mn8, c8_0);
                                                                                sc8 += c8_0;
                                                                                sd8 += u8_0;
                                                                                let c8_1 = dot(xi8_0, k1_0);
                                                                                let u8_1 = c8_1 * kn1;
                                                                                tl8 += exp2(fma(u8_1, bn8, nm8));
                                                                                mn8 = min(mn8, c8_1);
                                                                                sc8 += c8_1;
                                                                                sd8 += u8_1;
                                                                                let c9_0 = dot(xi9_0, k0_0);
                                                                                let u9_0 = c9_0 * kn0;
                                                                                tl9 += exp2(fma(u9_0, bn9, nm9));
                                                                                mn9 = min(mn9, c9_0);
                                                                                sc9 += c9_0;
                                                                                sd9 += u9_0;
                                                                                let c9_1 = dot(xi9_0, k1_0);
                                                                                let u9_1 = c9_1 * kn1;
                                                                                tl9 += exp2(fma(u9_1, bn9, nm9));
                                                                                mn9 = min(mn9, c9_1);
                                                                                sc9 += c9_1;
                                                                                sd9 += u9_1;
                                                                                let c10_0 = dot(xi10_0, k0_0);
                                                                                let u10_0 = c10_0 * kn0;
                                                                                tl10 += exp2(fma(u10_0, bn10, nm10));
                                                                                mn10 = min(mn10, c10_0);
                                                                                sc10 += c10_0;
                                                                                sd10 += u10_0;
                                                                                let c10_1 = dot(xi10_0, k1_0);
                                                                                let u10_1 = c10_1 * kn1;
                                                                                tl10 += exp2(fma(u10_1, bn10, nm10));
                                                                                mn10 = min(mn10, c10_1);
                                                                                sc10 += c10_1;
                                                                                sd10 += u10_1;
                                                                                let c11_0 = dot(xi11_0, k0_0);
                                                                                let u11_0 = c11_0 * kn0;
                                                                                tl11 += exp2(fma(u11_0, bn11, nm11));
                                                                                mn11 = min(mn11, c11_0);
                                                                                sc11 += c11_0;
                                                                                sd11 += u11_0;
                                                                                let c11_1 = dot(xi11_0, k1_0);
                                                                                let u11_1 = c11_1 * kn1;
                                                                                tl11 += exp2(fma(u11_1, bn11, nm11));
                                                                                mn11 = min(mn11, c11_1);
                                                                                sc11 += c11_1;
                                                                                sd11 += u11_1;
                                                                                let c12_0 = dot(xi12_0, k0_0);
                                                                                let u12_0 = c12_0 * kn0;
                                                                                tl12 += exp2(fma(u12_0, bn12, nm12));
                                                                                mn12 = min(mn12, c12_0);
                                                                                sc12 += c12_0;
                                                                                sd12 += u12_0;
                                                                                let c12_1 = dot(xi12_0, k1_0);
                                                                                let u12_1 = c12_1 * kn1;
                                                                                tl12 += exp2(fma(u12_1, bn12, nm12));
                                                                                mn12 = min(mn12, c12_1);
                                                                                sc12 += c12_1;
                                                                                sd12 += u12_1;
                                                                                let c13_0 = dot(xi13_0, k0_0);
                                                                                let u13_0 = c13_0 * kn0;
                                                                                tl13 += exp2(fma(u13_0, bn13, nm13));
                                                                                mn13 = min(mn13, c13_0);
                                                                                sc13 += c13_0;
                                                                                sd13 += u13_0;
                                                                                let c13_1 = dot(xi13_0, k1_0);
                                                                                let u13_1 = c13_1 * kn1;
                                                                                tl13 += exp2(fma(u13_1, bn13, nm13));
                                                                                mn13 = min(mn13, c13_1);
                                                                                sc13 += c13_1;
                                                                                sd13 += u13_1;
                                                                                let c14_0 = dot(xi14_0, k0_0);
                                                                                let u14_0 = c14_0 * kn0;
                                                                                tl14 += exp2(fma(u14_0, bn14, nm14));
                                                                                mn14 = min(mn14, c14_0);
                                                                                sc14 += c14_0;
                                                                                sd14 += u14_0;
                                                                                let c14_1 = dot(xi14_0, k1_0);
                                                                                let u14_1 = c14_1 * kn1;
                                                                                tl14 += exp2(fma(u14_1, bn14, nm14));
                                                                                mn14 = min(mn14, c14_1);
                                                                                sc14 += c14_1;
                                                                                sd14 += u14_1;
                                                                                let c15_0 = dot(xi15_0, k0_0);
                                                                                let u15_0 = c15_0 * kn0;
                                                                                tl15 += exp2(fma(u15_0, bn15, nm15));
                                                                                mn15 = min(mn15, c15_0);
                                                                                sc15 += c15_0;
                                                                                sd15 += u15_0;
                                                                                let c15_1 = dot(xi15_0, k1_0);
                                                                                let u15_1 = c15_1 * kn1;
                                                                                tl15 += exp2(fma(u15_1, bn15, nm15));
                                                                                mn15 = min(mn15, c15_1);
                                                                                sc15 += c15_1;
                                                                                sd15 += u15_1;
                                                                            }
                                                                            } else {
                                                                                for (var kk = 0u; kk < len; kk += G) {
                                                                                    let kb = kk * DV;
                                                                                    let kn0 = tile_norm[kk];
                                                                                    let k0_0 = tile[kb].xyz;
                                                                                    let kn1 = tile_norm[kk + 1u];
                                                                                    let k1_0 = tile[kb + 1u].xyz;
                                                                                    let c0_0 = dot(xi0_0, k0_0);
                                                                                    let u0_0 = c0_0 * kn0;
                                                                                    let in0_0 = kk + 0u < len;
                                                                                    tl0 += select(0.0, exp2(fma(u0_0, bn0, nm0)), in0_0);
                                                                                    mn0 = select(mn0, min(mn0, c0_0), in0_0);
                                                                                    sc0 += c0_0;
                                                                                    sd0 += u0_0;
                                                                                    let c0_1 = dot(xi0_0, k1_0);
                                                                                    let u0_1 = c0_1 * kn1;
                                                                                    let in0_1 = kk + 1u < len;
                                                                                    tl0 += select(0.0, exp2(fma(u0_1, bn0, nm0)), in0_1);
                                                                                    mn0 = select(mn0, min(mn0, c0_1), in0_1);
                                                                                    sc0 += c0_1;
                                                                                    sd0 += u0_1;
                                                                                    let c1_0 = dot(xi1_0, k0_0);
                                                                                    let u1_0 = c1_0 * kn0;
                                                                                    let in1_0 = kk + 0u < len;
                                                                                    tl1 += select(0.0, exp2(fma(u1_0, bn1, nm1)), in1_0);
                                                                                    mn1 = select(mn1, min(mn1, c1_0), in1_0);
                                                                                    sc1 += c1_0;
                                                                                    sd1 += u1_0;
                                                                                    let c1_1 = dot(xi1_0, k1_0);
                                                                                    let u1_1 = c1_1 * kn1;
                                                                                    let in1_1 = kk + 1u < len;
                                                                                    tl1 += select(0.0, exp2(fma(u1_1, bn1, nm1)), in1_1);
                                                                                    mn1 = select(mn1, min(mn1, c1_1), in1_1);
                                                                                    sc1 += c1_1;
                                                                                    sd1 += u1_1;
                                                                                    let c2_0 = dot(xi2_0, k0_0);
                                                                                    let u2_0 = c2_0 * kn0;
                                                                                    let in2_0 = kk + 0u < len;
                                                                                    tl2 += select(0.0, exp2(fma(u2_0, bn2, nm2)), in2_0);
                                                                                    mn2 = select(mn2, min(mn2, c2_0), in2_0);
                                                                                    sc2 += c2_0;
                                                                                    sd2 += u2_0;
                                                                                    let c2_1 = dot(xi2_0, k1_0);
                                                                                    let u2_1 = c2_1 * kn1;
                                                                                    let in2_1 = kk + 1u < len;
                                                                                    tl2 += select(0.0, exp2(fma(u2_1, bn2, nm2)), in2_1);
                                                                                    mn2 = select(mn2, min(mn2, c2_1), in2_1);
                                                                                    sc2 += c2_1;
                                                                                    sd2 += u2_1;
                                                                                    let c3_0 = dot(xi3_0, k0_0);
                                                                                    let u3_0 = c3_0 * kn0;
                                                                                    let in3_0 = kk + 0u < len;
                                                                                    tl3 += select(0.0, exp2(fma(u3_0, bn3, nm3)), in3_0);
                                                                                    mn3 = select(mn3, min(mn3, c3_0), in3_0);
                                                                                    sc3 += c3_0;
                                                                                    sd3 += u3_0;
                                                                                    let c3_1 = dot(xi3_0, k1_0);
                                                                                    let u3_1 = c3_1 * kn1;
                                                                                    let in3_1 = kk + 1u < len;
                                                                                    tl3 += select(0.0, exp2(fma(u3_1, bn3, nm3)), in3_1);
                                                                                    mn3 = select(mn3, min(mn3, c3_1), in3_1);
                                                                                    sc3 += c3_1;
                                                                                    sd3 += u3_1;
                                                                                    let c4_0 = dot(xi4_0, k0_0);
                                                                                    let u4_0 = c4_0 * kn0;
                                                                                    let in4_0 = kk + 0u < len;
                                                                                    tl4 += select(0.0, exp2(fma(u4_0, bn4, nm4)), in4_0);
                                                                                    mn4 = select(mn4, min(mn4, c4_0), in4_0);
                                                                                    sc4 += c4_0;
                                                                                    sd4 += u4_0;
                                                                                    let c4_1 = dot(xi4_0, k1_0);
                                                                                    let u4_1 = c4_1 * kn1;
                                                                                    let in4_1 = kk + 1u < len;
                                                                                    tl4 += select(0.0, exp2(fma(u4_1, bn4, nm4)), in4_1);
                                                                                    mn4 = select(mn4, min(mn4, c4_1), in4_1);
                                                                                    sc4 += c4_1;
                                                                                    sd4 += u4_1;
                                                                                    let c5_0 = dot(xi5_0, k0_0);
                                                                                    let u5_0 = c5_0 * kn0;
                                                                                    let in5_0 = kk + 0u < len;
                                                                                    tl5 += select(0.0, exp2(fma(u5_0, bn5, nm5)), in5_0);
                                                                                    mn5 = select(mn5, min(mn5, c5_0), in5_0);
                                                                                    sc5 += c5_0;
                                                                                    sd5 += u5_0;
                                                                                    let c5_1 = dot(xi5_0, k1_0);
                                                                                    let u5_1 = c5_1 * kn1;
                                                                                    let in5_1 = kk + 1u < len;
                                                                                    tl5 += select(0.0, exp2(fma(u5_1, bn5, nm5)), in5_1);
                                                                                    mn5 = select(mn5, min(mn5, c5_1), in5_1);
                                                                                    sc5 += c5_1;
                                                                                    sd5 += u5_1;
                                                                                    let c6_0 = dot(xi6_0, k0_0);
                                                                                    let u6_0 = c6_0 * kn0;
                                                                                    let in6_0 = kk + 0u < len;
                                                                                    tl6 += select(0.0, exp2(fma(u6_0, bn6, nm6)), in6_0);
                                                                                    mn6 = select(mn6, min(mn6, c6_0), in6_0);
                                                                                    sc6 += c6_0;
                                                                                    sd6 += u6_0;
                                                                                    let c6_1 = dot(xi6_0, k1_0);
                                                                                    let u6_1 = c6_1 * kn1;
                                                                                    let in6_1 = kk + 1u < len;
                                                                                    tl6 += select(0.0, exp2(fma(u6_1, bn6, nm6)), in6_1);
                                                                                    mn6 = select(mn6, min(mn6, c6_1), in6_1);
                                                                                    sc6 += c6_1;
                                                                                    sd6 += u6_1;
                                                                                    let c7_0 = dot(xi7_0, k0_0);
                                                                                    let u7_0 = c7_0 * kn0;
                                                                                    let in7_0 = kk + 0u < len;
                                                                                    tl7 += select(0.0, exp2(fma(u7_0, bn7, nm7)), in7_0);
                                                                                    mn7 = select(mn7, min(mn7, c7_0), in7_0);
                                                                                    sc7 += c7_0;
                                                                                    sd7 += u7_0;
                                                                                    let c7_1 = dot(xi7_0, k1_0);
                                                                                    let u7_1 = c7_1 * kn1;
                                                                                    let in7_1 = kk + 1u < len;
                                                                                    tl7 += select(0.0, exp2(fma(u7_1, bn7, nm7)), in7_1);
                                                                                    mn7 = select(mn7, min(mn7, c7_1), in7_1);
                                                                                    sc7 += c7_1;
                                                                                    sd7 += u7_1;
                                                                                    let c8_0 = dot(xi8_0, k0_0);
                                                                                    let u8_0 = c8_0 * kn0;
                                                                                    let in8_0 = kk + 0u < len;
                                                                                    tl8 += select(0.0, exp2(fma(u8_0, bn8, nm8)), in8_0);
                                                                                    mn8 = select(mn8, min(mn8, c8_0), in8_0);
                                                                                    sc8 += c8_0;
                                                                                    sd8 += u8_0;
                                                                                    let c8_1 = dot(xi8_0, k1_0);
                                                                                    let u8_1 = c8_1 * kn1;
                                                                                    let in8_1 = kk + 1u < len;
                                                                                    tl8 += select(0.0, exp2(fma(u8_1, bn8, nm8)), in8_1);
                                                                                    mn8 = select(mn8, min(mn8, c8_1), in8_1);
                                                                                    sc8 += c8_1;
                                                                                    sd8 += u8_1;
                                                                                    let c9_0 = dot(xi9_0, k0_0);
                                                                                    let u9_0 = c9_0 * kn0;
                                                                                    let in9_0 = kk + 0u < len;
                                                                                    tl9 += select(0.0, exp2(fma(u9_0, bn9, nm9)), in9_0);
                                                                                    mn9 = select(mn9, min(mn9, c9_0), in9_0);
                                                                                    sc9 += c9_0;
                                                                                    sd9 += u9_0;
                                                                                    let c9_1 = dot(xi9_0, k1_0);
                                                                                    let u9_1 = c9_1 * kn1;
                                                                                    let in9_1 = kk + 1u < len;
                                                                                    tl9 += select(0.0, exp2(fma(u9_1, bn9, nm9)), in9_1);
                                                                                    mn9 = select(mn9, min(mn9, c9_1), in9_1);
                                                                                    sc9 += c9_1;
                                                                                    sd9 += u9_1;
                                                                                    let c10_0 = dot(xi10_0, k0_0);
                                                                                    let u10_0 = c10_0 * kn0;
                                                                                    let in10_0 = kk + 0u < len;
                                                                                    tl10 += select(0.0, exp2(fma(u10_0, bn10, nm10)), in10_0);
                                                                                    mn10 = select(mn10, min(mn10, c10_0), in10_0);
                                                                                    sc10 += c10_0;
                                                                                    sd10 += u10_0;
                                                                                    let c10_1 = dot(xi10_0, k1_0);
                                                                                    let u10_1 = c10_1 * kn1;
                                                                                    let in10_1 = kk + 1u < len;
                                                                                    tl10 += select(0.0, exp2(fma(u10_1, bn10, nm10)), in10_1);
                                                                                    mn10 = select(mn10, min(mn10, c10_1), in10_1);
                                                                                    sc10 += c10_1;
                                                                                    sd10 += u10_1;
                                                                                    let c11_0 = dot(xi11_0, k0_0);
                                                                                    let u11_0 = c11_0 * kn0;
                                                                                    let in11_0 = kk + 0u < len;
                                                                                    tl11 += select(0.0, exp2(fma(u11_0, bn11, nm11)), in11_0);
                                                                                    mn11 = select(mn11, min(mn11, c11_0), in11_0);
                                                                                    sc11 += c11_0;
                                                                                    sd11 += u11_0;
                                                                                    let c11_1 = dot(xi11_0, k1_0);
                                                                                    let u11_1 = c11_1 * kn1;
                                                                                    let in11_1 = kk + 1u < len;
                                                                                    tl11 += select(0.0, exp2(fma(u11_1, bn11, nm11)), in11_1);
                                                                                    mn11 = select(mn11, min(mn11, c11_1), in11_1);
                                                                                    sc11 += c11_1;
                                                                                    sd11 += u11_1;
                                                                                    let c12_0 = dot(xi12_0, k0_0);
                                                                                    let u12_0 = c12_0 * kn0;
                                                                                    let in12_0 = kk + 0u < len;
                                                                                    tl12 += select(0.0, exp2(fma(u12_0, bn12, nm12)), in12_0);
                                                                                    mn12 = select(mn12, min(mn12, c12_0), in12_0);
                                                                                    sc12 += c12_0;
                                                                                    sd12 += u12_0;
                                                                                    let c12_1 = dot(xi12_0, k1_0);
                                                                                    let u12_1 = c12_1 * kn1;
                                                                                    let in12_1 = kk + 1u < len;
                                                                                    tl12 += select(0.0, exp2(fma(u12_1, bn12, nm12)), in12_1);
                                                                                    mn12 = select(mn12, min(mn12, c12_1), in12_1);
                                                                                    sc12 += c12_1;
                                                                                    sd12 += u12_1;
                                                                                    let c13_0 = dot(xi13_0, k0_0);
                                                                                    let u13_0 = c13_0 * kn0;
                                                                                    let in13_0 = kk + 0u < len;
                                                                                    tl13 += select(0.0, exp2(fma(u13_0, bn13, nm13)), in13_0);
                                                                                    mn13 = select(mn13, min(mn13, c13_0), in13_0);
                                                                                    sc13 += c13_0;
                                                                                    sd13 += u13_0;
                                                                                    let c13_1 = dot(xi13_0, k1_0);
                                                                                    let u13_1 = c13_1 * kn1;
                                                                                    let in13_1 = kk + 1u < len;
                                                                                    tl13 += select(0.0, exp2(fma(u13_1, bn13, nm13)), in13_1);
                                                                                    mn13 = select(mn13, min(mn13, c13_1), in13_1);
                                                                                    sc13 += c13_1;
                                                                                    sd13 += u13_1;
                                                                                    let c14_0 = dot(xi14_0, k0_0);
                                                                                    let u14_0 = c14_0 * kn0;
                                                                                    let in14_0 = kk + 0u < len;
                                                                                    tl14 += select(0.0, exp2(fma(u14_0, bn14, nm14)), in14_0);
                                                                                    mn14 = select(mn14, min(mn14, c14_0), in14_0);
                                                                                    sc14 += c14_0;
                                                                                    sd14 += u14_0;
                                                                                    let c14_1 = dot(xi14_0, k1_0);
                                                                                    let u14_1 = c14_1 * kn1;
                                                                                    let in14_1 = kk + 1u < len;
                                                                                    tl14 += select(0.0, exp2(fma(u14_1, bn14, nm14)), in14_1);
                                                                                    mn14 = select(mn14, min(mn14, c14_1), in14_1);
                                                                                    sc14 += c14_1;
                                                                                    sd14 += u14_1;
                                                                                    let c15_0 = dot(xi15_0, k0_0);
                                                                                    let u15_0 = c15_0 * kn0;
                                                                                    let in15_0 = kk + 0u < len;
                                                                                    tl15 += select(0.0, exp2(fma(u15_0, bn15, nm15)), in15_0);
                                                                                    mn15 = select(mn15, min(mn15, c15_0), in15_0);
                                                                                    sc15 += c15_0;
                                                                                    sd15 += u15_0;
                                                                                    let c15_1 = dot(xi15_0, k1_0);
                                                                                    let u15_1 = c15_1 * kn1;
                                                                                    let in15_1 = kk + 1u < len;
                                                                                    tl15 += select(0.0, exp2(fma(u15_1, bn15, nm15)), in15_1);
                                                                                    mn15 = select(mn15, min(mn15, c15_1), in15_1);
                                                                                    sc15 += c15_1;
                                                                                    sd15 += u15_1;
                                                                                }
                                                                            }
                                                                            if !(tl0 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi0_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn0, nm0));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm0 -= delta;
                                                                                l0 *= exp2(-delta);
                                                                                tl0 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi0_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl0 += exp2(fma(cs * tile_norm[kk], bn0, nm0));
                                                                                }
                                                                            }
                                                                            l0 += tl0;
                                                                            if !(tl1 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi1_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn1, nm1));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm1 -= delta;
                                                                                l1 *= exp2(-delta);
                                                                                tl1 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi1_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl1 += exp2(fma(cs * tile_norm[kk], bn1, nm1));
                                                                                }
                                                                            }
                                                                            l1 += tl1;
                                                                            if !(tl2 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi2_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn2, nm2));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm2 -= delta;
                                                                                l2 *= exp2(-delta);
                                                                                tl2 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi2_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl2 += exp2(fma(cs * tile_norm[kk], bn2, nm2));
                                                                                }
                                                                            }
                                                                            l2 += tl2;
                                                                            if !(tl3 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi3_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn3, nm3));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm3 -= delta;
                                                                                l3 *= exp2(-delta);
                                                                                tl3 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi3_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl3 += exp2(fma(cs * tile_norm[kk], bn3, nm3));
                                                                                }
                                                                            }
                                                                            l3 += tl3;
                                                                            if !(tl4 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi4_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn4, nm4));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm4 -= delta;
                                                                                l4 *= exp2(-delta);
                                                                                tl4 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi4_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl4 += exp2(fma(cs * tile_norm[kk], bn4, nm4));
                                                                                }
                                                                            }
                                                                            l4 += tl4;
                                                                            if !(tl5 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi5_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn5, nm5));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm5 -= delta;
                                                                                l5 *= exp2(-delta);
                                                                                tl5 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi5_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl5 += exp2(fma(cs * tile_norm[kk], bn5, nm5));
                                                                                }
                                                                            }
                                                                            l5 += tl5;
                                                                            if !(tl6 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi6_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn6, nm6));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm6 -= delta;
                                                                                l6 *= exp2(-delta);
                                                                                tl6 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi6_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl6 += exp2(fma(cs * tile_norm[kk], bn6, nm6));
                                                                                }
                                                                            }
                                                                            l6 += tl6;
                                                                            if !(tl7 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi7_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn7, nm7));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm7 -= delta;
                                                                                l7 *= exp2(-delta);
                                                                                tl7 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi7_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl7 += exp2(fma(cs * tile_norm[kk], bn7, nm7));
                                                                                }
                                                                            }
                                                                            l7 += tl7;
                                                                            if !(tl8 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi8_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn8, nm8));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm8 -= delta;
                                                                                l8 *= exp2(-delta);
                                                                                tl8 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi8_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl8 += exp2(fma(cs * tile_norm[kk], bn8, nm8));
                                                                                }
                                                                            }
                                                                            l8 += tl8;
                                                                            if !(tl9 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi9_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn9, nm9));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm9 -= delta;
                                                                                l9 *= exp2(-delta);
                                                                                tl9 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi9_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl9 += exp2(fma(cs * tile_norm[kk], bn9, nm9));
                                                                                }
                                                                            }
                                                                            l9 += tl9;
                                                                            if !(tl10 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi10_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn10, nm10));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm10 -= delta;
                                                                                l10 *= exp2(-delta);
                                                                                tl10 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi10_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl10 += exp2(fma(cs * tile_norm[kk], bn10, nm10));
                                                                                }
                                                                            }
                                                                            l10 += tl10;
                                                                            if !(tl11 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi11_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn11, nm11));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm11 -= delta;
                                                                                l11 *= exp2(-delta);
                                                                                tl11 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi11_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl11 += exp2(fma(cs * tile_norm[kk], bn11, nm11));
                                                                                }
                                                                            }
                                                                            l11 += tl11;
                                                                            if !(tl12 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi12_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn12, nm12));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm12 -= delta;
                                                                                l12 *= exp2(-delta);
                                                                                tl12 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi12_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl12 += exp2(fma(cs * tile_norm[kk], bn12, nm12));
                                                                                }
                                                                            }
                                                                            l12 += tl12;
                                                                            if !(tl13 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi13_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn13, nm13));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm13 -= delta;
                                                                                l13 *= exp2(-delta);
                                                                                tl13 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi13_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl13 += exp2(fma(cs * tile_norm[kk], bn13, nm13));
                                                                                }
                                                                            }
                                                                            l13 += tl13;
                                                                            if !(tl14 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi14_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn14, nm14));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm14 -= delta;
                                                                                l14 *= exp2(-delta);
                                                                                tl14 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi14_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl14 += exp2(fma(cs * tile_norm[kk], bn14, nm14));
                                                                                }
                                                                            }
                                                                            l14 += tl14;
                                                                            if !(tl15 <= 1.8446744e19) {
                                                                                var top = F32_LOWEST;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi15_0, tile[(kk) * DV + 0u].xyz);
                                                                                    top = max(top, fma(cs * tile_norm[kk], bn15, nm15));
                                                                                }
                                                                                let delta = max(top, 0.0);
                                                                                nm15 -= delta;
                                                                                l15 *= exp2(-delta);
                                                                                tl15 = 0.0;
                                                                                for (var kk = 0u; kk < len; kk++) {
                                                                                    let cs = dot(xi15_0, tile[(kk) * DV + 0u].xyz);
                                                                                    tl15 += exp2(fma(cs * tile_norm[kk], bn15, nm15));
                                                                                }
                                                                            }
                                                                            l15 += tl15;
                                                                            start += TK;
                                                                        }
                                                                        if ok0 {
                                                                            var self_cos = dot(xi0_0, xi0_0);
                                                                            let sees_self = (i0 >= start0) & (i0 < key_end);
                                                                            stats[state0 + i0] = PairStats(-nm0, l0, mn0, sc0 - select(0.0, self_cos, sees_self), sd0 * n0);
                                                                        }
                                                                        if ok1 {
                                                                            var self_cos = dot(xi1_0, xi1_0);
                                                                            let sees_self = (i1 >= start0) & (i1 < key_end);
                                                                            stats[state0 + i1] = PairStats(-nm1, l1, mn1, sc1 - select(0.0, self_cos, sees_self), sd1 * n1);
                                                                        }
                                                                        if ok2 {
                                                                            var self_cos = dot(xi2_0, xi2_0);
                                                                            let sees_self = (i2 >= start0) & (i2 < key_end);
                                                                            stats[state0 + i2] = PairStats(-nm2, l2, mn2, sc2 - select(0.0, self_cos, sees_self), sd2 * n2);
                                                                        }
                                                                        if ok3 {
                                                                            var self_cos = dot(xi3_0, xi3_0);
                                                                            let sees_self = (i3 >= start0) & (i3 < key_end);
                                                                            stats[state0 + i3] = PairStats(-nm3, l3, mn3, sc3 - select(0.0, self_cos, sees_self), sd3 * n3);
                                                                        }
                                                                        if ok4 {
                                                                            var self_cos = dot(xi4_0, xi4_0);
                                                                            let sees_self = (i4 >= start0) & (i4 < key_end);
                                                                            stats[state0 + i4] = PairStats(-nm4, l4, mn4, sc4 - select(0.0, self_cos, sees_self), sd4 * n4);
                                                                        }
                                                                        if ok5 {
                                                                            var self_cos = dot(xi5_0, xi5_0);
                                                                            let sees_self = (i5 >= start0) & (i5 < key_end);
                                                                            stats[state0 + i5] = PairStats(-nm5, l5, mn5, sc5 - select(0.0, self_cos, sees_self), sd5 * n5);
                                                                        }
                                                                        if ok6 {
                                                                            var self_cos = dot(xi6_0, xi6_0);
                                                                            let sees_self = (i6 >= start0) & (i6 < key_end);
                                                                            stats[state0 + i6] = PairStats(-nm6, l6, mn6, sc6 - select(0.0, self_cos, sees_self), sd6 * n6);
                                                                        }
                                                                        if ok7 {
                                                                            var self_cos = dot(xi7_0, xi7_0);
                                                                            let sees_self = (i7 >= start0) & (i7 < key_end);
                                                                            stats[state0 + i7] = PairStats(-nm7, l7, mn7, sc7 - select(0.0, self_cos, sees_self), sd7 * n7);
                                                                        }
                                                                        if ok8 {
                                                                            var self_cos = dot(xi8_0, xi8_0);
                                                                            let sees_self = (i8 >= start0) & (i8 < key_end);
                                                                            stats[state0 + i8] = PairStats(-nm8, l8, mn8, sc8 - select(0.0, self_cos, sees_self), sd8 * n8);
                                                                        }
                                                                        if ok9 {
                                                                            var self_cos = dot(xi9_0, xi9_0);
                                                                            let sees_self = (i9 >= start0) & (i9 < key_end);
                                                                            stats[state0 + i9] = PairStats(-nm9, l9, mn9, sc9 - select(0.0, self_cos, sees_self), sd9 * n9);
                                                                        }
                                                                        if ok10 {
                                                                            var self_cos = dot(xi10_0, xi10_0);
                                                                            let sees_self = (i10 >= start0) & (i10 < key_end);
                                                                            stats[state0 + i10] = PairStats(-nm10, l10, mn10, sc10 - select(0.0, self_cos, sees_self), sd10 * n10);
                                                                        }
                                                                        if ok11 {
                                                                            var self_cos = dot(xi11_0, xi11_0);
                                                                            let sees_self = (i11 >= start0) & (i11 < key_end);
                                                                            stats[state0 + i11] = PairStats(-nm11, l11, mn11, sc11 - select(0.0, self_cos, sees_self), sd11 * n11);
                                                                        }
                                                                        if ok12 {
                                                                            var self_cos = dot(xi12_0, xi12_0);
                                                                            let sees_self = (i12 >= start0) & (i12 < key_end);
                                                                            stats[state0 + i12] = PairStats(-nm12, l12, mn12, sc12 - select(0.0, self_cos, sees_self), sd12 * n12);
                                                                        }
                                                                        if ok13 {
                                                                            var self_cos = dot(xi13_0, xi13_0);
                                                                            let sees_self = (i13 >= start0) & (i13 < key_end);
                                                                            stats[state0 + i13] = PairStats(-nm13, l13, mn13, sc13 - select(0.0, self_cos, sees_self), sd13 * n13);
                                                                        }
                                                                        if ok14 {
                                                                            var self_cos = dot(xi14_0, xi14_0);
                                                                            let sees_self = (i14 >= start0) & (i14 < key_end);
                                                                            stats[state0 + i14] = PairStats(-nm14, l14, mn14, sc14 - select(0.0, self_cos, sees_self), sd14 * n14);
                                                                        }
                                                                        if ok15 {
                                                                            var self_cos = dot(xi15_0, xi15_0);
                                                                            let sees_self = (i15 >= start0) & (i15 < key_end);
                                                                            stats[state0 + i15] = PairStats(-nm15, l15, mn15, sc15 - select(0.0, self_cos, sees_self), sd15 * n15);
                                                                        }
                                                                    }
