//! WGSL sources, specialised per run: a generated header fixes the token dimension D, the
//! workgroup size and the key-tile size as constants (WGSL function-scope arrays need a
//! constant size), then `common.wgsl`, then the kernel.

pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
pub const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");
pub const RK_COMBINE: &str = include_str!("../../shaders/rk_combine.wgsl");
pub const PAIR_STATS: &str = include_str!("../../shaders/pair_stats.wgsl");

/// Every kernel by name, for validation.
pub const KERNELS: &[(&str, &str)] = &[
    ("attention", ATTENTION),
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
    /// The largest power-of-two key tile (at most 256 keys) whose d floats per key fit the
    /// workgroup memory the adapter offers.
    pub fn for_dimension(d: usize, workgroup_bytes: u32) -> Self {
        let per_key = 4 * d as u32;
        let fit = (workgroup_bytes / per_key).clamp(1, 256);
        let tile_keys = 1u32 << (31 - fit.leading_zeros());
        Specialisation {
            d: d as u32,
            workgroup: WORKGROUP,
            tile_keys,
        }
    }
}

/// The complete source of `kernel` for one specialisation.
pub fn source(kernel: &str, spec: Specialisation) -> String {
    format!(
        "// Generated header (src/gpu/shaders.rs).\n\
         const D: u32 = {}u;\n\
         const WG: u32 = {}u;\n\
         const TK: u32 = {}u;\n\
         const TILE_FLOATS: u32 = {}u;\n\n{COMMON}\n{kernel}",
        spec.d,
        spec.workgroup,
        spec.tile_keys,
        spec.tile_keys * spec.d
    )
}
