// Shared by every kernel; prepended after the generated header (src/gpu/shaders.rs), which
// defines
//   const D: u32            the token dimension,
//   const DV: u32           ceil(D / 4): the vec4s that hold a token (zero padded),
//   const WG: u32           invocations per workgroup,
//   const TK: u32           keys per workgroup-memory tile,
//   const TILE_VECS: u32    TK * DV.

// Per-run parameters. Queries attend to keys of the same system; for self-attention both
// are the tokens (n_queries = n_keys = n), and the causal mask needs exactly that.
struct Params {
    n_queries: u32,
    n_keys: u32,
    batch: u32,
    // FLAG_* bits below.
    flags: u32,
    // Workgroups along x of the per-query and per-element (query, coordinate) dispatches;
    // their y takes what does not fit in one dimension.
    token_groups_x: u32,
    element_groups_x: u32,
    // Workgroups along x of the streaming dispatches (blocks of WG queries); their z takes
    // what does not fit, their y is the system.
    query_groups_x: u32,
    pad: u32,
}

// The range of keys one dispatch of a streaming kernel (attention, pair_stats) visits. The
// key range of an evaluation is split into chunks so that no dispatch runs too long (an OS
// watchdog; llvmpipe also ends any shader after 65535 loop iterations in total).
struct Chunk {
    key_start: u32,
    key_count: u32,
    // 1 for the first chunk: start from an empty partial state.
    first: u32,
    pad: u32,
}

const FLAG_USA: u32 = 1u;
const FLAG_SPHERE: u32 = 2u;
const FLAG_CAUSAL: u32 = 4u;
const FLAG_IDENTITY_SCORES: u32 = 8u;
const FLAG_IDENTITY_VALUES: u32 = 16u;

// Lowest finite f32; the running maximum starts here, below every score.
const F32_LOWEST: f32 = -3.4028235e38;

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

// The first query of a streaming workgroup (x and z count blocks of WG queries).
fn query_block_start(wid: vec3<u32>, groups_x: u32) -> u32 {
    return (wid.z * groups_x + wid.x) * WG;
}

