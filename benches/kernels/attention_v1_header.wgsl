// What attention_v1.wgsl (attnflow's attention kernel before the generated kernels) needs of
// the header and common.wgsl of its day. Prepended: D, DV, WG, TK, TILE_VECS.

struct Params {
    n_queries: u32,
    n_keys: u32,
    batch: u32,
    flags: u32,
    token_groups_x: u32,
    element_groups_x: u32,
    query_groups_x: u32,
    alibi_slope: f32,
    mlp_hidden: u32,
    hidden_groups_x: u32,
    pad0: u32,
    pad1: u32,
}

struct Chunk {
    key_start: u32,
    key_count: u32,
    first: u32,
    pad: u32,
}

const FLAG_CAUSAL: u32 = 4u;
const FLAG_ALIBI: u32 = 32u;
const F32_LOWEST: f32 = -3.4028235e38;

fn has_flag(flags: u32, flag: u32) -> bool {
    return (flags & flag) != 0u;
}

fn query_block_start(wid: vec3<u32>, groups_x: u32) -> u32 {
    return (wid.z * groups_x + wid.x) * WG;
}
