//! WGSL sources, specialised per run: a generated header fixes the token dimension D (and
//! DV = ceil(D / 4), the vec4s that hold a token), the workgroup size and the key-tile size
//! as constants (WGSL function-scope arrays need a constant size), then `common.wgsl`, then
//! the kernel. Every d gets its own compiled variant; for d <= 4 a token is one vec4 and the
//! loops over coordinates vanish.

pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
pub const QUERIES: &str = include_str!("../../shaders/queries.wgsl");
pub const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");
pub const ATTENTION_FINISH: &str = include_str!("../../shaders/attention_finish.wgsl");
pub const TANGENT_PROJECT: &str = include_str!("../../shaders/tangent_project.wgsl");
pub const MLP_HIDDEN: &str = include_str!("../../shaders/mlp_hidden.wgsl");
pub const MLP_OUT: &str = include_str!("../../shaders/mlp_out.wgsl");
pub const REDRAW: &str = include_str!("../../shaders/redraw.wgsl");
pub const RK_COMBINE: &str = include_str!("../../shaders/rk_combine.wgsl");
pub const PAIR_STATS: &str = include_str!("../../shaders/pair_stats.wgsl");

/// Every kernel by name, for validation.
pub const KERNELS: &[(&str, &str)] = &[
    ("queries", QUERIES),
    ("attention", ATTENTION),
    ("attention_finish", ATTENTION_FINISH),
    ("tangent_project", TANGENT_PROJECT),
    ("mlp_hidden", MLP_HIDDEN),
    ("mlp_out", MLP_OUT),
    ("redraw", REDRAW),
    ("rk_combine", RK_COMBINE),
    ("pair_stats", PAIR_STATS),
];

/// Invocations per workgroup of every kernel.
pub const WORKGROUP: u32 = 64;

/// Compile-time constants of one specialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Specialisation {
    pub d: u32,
    pub workgroup: u32,
    pub tile_keys: u32,
}

impl Specialisation {
    /// The largest power-of-two key tile (at most 256 keys) whose ceil(d / 4) vec4s per key
    /// fit the workgroup memory the adapter offers.
    pub fn for_dimension(d: usize, workgroup_bytes: u32) -> Self {
        let per_key = 16 * (d as u32).div_ceil(4);
        let fit = (workgroup_bytes / per_key).clamp(1, 256);
        let tile_keys = 1u32 << (31 - fit.leading_zeros());
        Specialisation {
            d: d as u32,
            workgroup: WORKGROUP,
            tile_keys,
        }
    }
}

/// llvmpipe (Mesa's software Vulkan, our CI adapter) ends a shader invocation silently after
/// 65535 loop iterations counted over all its loops; a streaming dispatch stays below this.
pub const SOFTWARE_LOOP_BUDGET: usize = 60_000;

/// Keys per chunk on hardware adapters: a chunk of 65536 keys against 10^6 queries is about
/// 0.07 s on a large GPU, far from any OS watchdog.
pub const HARDWARE_CHUNK_KEYS: usize = 1 << 16;

impl Specialisation {
    /// The most keys one dispatch of `attention.wgsl` may visit within `budget` loop
    /// iterations per invocation, counting as if the compiler unrolled nothing (a token is DV
    /// vec4s): per key the score, rescale and accumulate loops (3 DV + 1), per tile the
    /// cooperative load (4 lanes per vec4) and the tile sums' reset and fold (2 DV), plus the
    /// loads and stores of the partial state (10 DV). `pair_stats.wgsl` does less per key.
    pub fn keys_within_loop_budget(&self, budget: usize) -> usize {
        let dv = (self.d as usize).div_ceil(4);
        let tk = self.tile_keys as usize;
        let per_tile = 1 + 2 * dv + 5 * (tk * dv).div_ceil(self.workgroup as usize);
        let fixed = 10 * dv + 16;
        let per_key = (3 * dv + 1) as f64 + per_tile as f64 / tk as f64;
        (((budget.saturating_sub(fixed)) as f64 / per_key).floor() as usize).max(1)
    }
}

/// The complete source of `kernel` for one specialisation.
pub fn source(kernel: &str, spec: Specialisation) -> String {
    format!(
        "// Generated header (src/gpu/shaders.rs).\n\
         const D: u32 = {}u;\n\
         const DV: u32 = {}u;\n\
         const WG: u32 = {}u;\n\
         const TK: u32 = {}u;\n\
         const TILE_VECS: u32 = {}u;\n\n{COMMON}\n{kernel}",
        spec.d,
        spec.d.div_ceil(4),
        spec.workgroup,
        spec.tile_keys,
        spec.tile_keys * spec.d.div_ceil(4)
    )
}
