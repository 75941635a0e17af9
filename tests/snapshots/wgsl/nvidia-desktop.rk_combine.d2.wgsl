// Generated header (src/backend/gpu/shaders.rs).
const D: u32 = 2u;
const DV: u32 = 1u;
const WG: u32 = 64u;
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

// One Runge-Kutta combination (docs/model.md §2), one invocation per token:
//   stage input:  stage = state + sum_s c_s k_s
//   end of step:  state = state + sum_s c_s k_s (+ sigma sqrt(h) P^perp xi, Euler-Maruyama
//                 noise drawn from the counter-based generator for this step), renormalised
//                 to unit length on the sphere.
// Flags any NaN or infinity it writes, with the layer in which it first appeared. CPU twin:
// reference::rk_combine.

struct Combine {
    coeffs: vec4<f32>,
    terms: u32,
    to_state: u32,
    renormalise: u32,
    tokens: u32,
    groups_x: u32,
    // Noise: amplitude sigma sqrt(h) (0: none), common to the system or per token, its seed,
    // and n (tokens per system) and the sphere flag for the projection.
    noise_amplitude: f32,
    noise_common: u32,
    seed_lo: u32,
    seed_hi: u32,
    n: u32,
    sphere: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> combine: Combine;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> stage: array<f32>;
@group(0) @binding(4) var<storage, read> k0: array<f32>;
@group(0) @binding(5) var<storage, read> k1: array<f32>;
@group(0) @binding(6) var<storage, read> k2: array<f32>;
@group(0) @binding(7) var<storage, read> k3: array<f32>;
@group(0) @binding(8) var<storage, read_write> status: atomic<u32>;

// Draw e of token i's noise in this step (one shared draw per system for common noise).
fn noise_draw(system: u32, i: u32, e: u32) -> f32 {
    if combine.noise_common != 0u {
        return rng_normal(combine.seed_lo, combine.seed_hi, STREAM_COMMON_NOISE, step.layer, system, e);
    }
    return rng_normal(combine.seed_lo, combine.seed_hi, STREAM_NOISE, step.layer, system, i * D + e);
}

// Element e of token t after the combination (state + sum_s c_s k_s), with its noise.
fn combined(t: u32, e: u32, system: u32, i: u32, radial: f32) -> f32 {
    let c = combine.coeffs;
    let g = t * D + e;
    let x = state[g];
    var s = x;
    if combine.terms > 0u {
        s += c.x * k0[g];
    }
    if combine.terms > 1u {
        s += c.y * k1[g];
    }
    if combine.terms > 2u {
        s += c.z * k2[g];
    }
    if combine.terms > 3u {
        s += c.w * k3[g];
    }
    if combine.noise_amplitude != 0.0 {
        s += combine.noise_amplitude * (noise_draw(system, i, e) - radial * x);
    }
    return s;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = (wid.y * combine.groups_x + wid.x) * WG + lid.x;
    if t >= combine.tokens {
        return;
    }
    // Each element of the combination is computed where it is needed, in each of the two
    // passes (the norm, then the writes), rather than held in a private array of D floats:
    // llvmpipe takes minutes to compile such an array at d = 1024 (docs/accuracy.md, "The
    // test command"). Both passes compute it with the same operations, so the norm is that
    // of the values written.
    var system = 0u;
    var i = 0u;
    var radial = 0.0;
    if combine.noise_amplitude != 0.0 {
        system = t / combine.n;
        i = t % combine.n;
        // xi, projected onto the tangent space at the state token (on the sphere).
        var along = 0.0;
        var base2 = 0.0;
        for (var e = 0u; e < D; e++) {
            let x = state[t * D + e];
            along += x * noise_draw(system, i, e);
            base2 += x * x;
        }
        if combine.sphere != 0u {
            radial = along / base2;
        }
    }
    var norm2 = 0.0;
    for (var e = 0u; e < D; e++) {
        let s = combined(t, e, system, i, radial);
        norm2 += s * s;
    }
    var scale = 1.0;
    if combine.renormalise != 0u {
        scale = 1.0 / sqrt(norm2);
    }
    var bad = false;
    for (var e = 0u; e < D; e++) {
        // Element e of the token is read (in `combined`) before it is written.
        let s = combined(t, e, system, i, radial) * scale;
        bad = bad || non_finite(s);
        if combine.to_state != 0u {
            state[t * D + e] = s;
        } else {
            stage[t * D + e] = s;
        }
    }
    if bad {
        // The first layer that went bad wins: status holds 0xffffffff - layer (0: none).
        atomicMax(&status, 0xffffffffu - step.layer);
    }
}
