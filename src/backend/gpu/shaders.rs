//! WGSL sources. The per-token and per-element kernels are fixed files specialised by a
//! generated header that fixes the token dimension D (and DV = ceil(D / 4), the vec4s that
//! hold a token) and the workgroup size and declares the constants shared with the host
//! (`host_constants`), then `common.wgsl`, then the kernel. The streaming
//! kernels (attention, pair statistics) are templates whose `main` is generated per
//! specialisation (see `codegen`).
//!
//! A leaf of `gpu/`: it names nothing else in the backend, so codegen and kernels read it.

pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");
pub const QUERIES: &str = include_str!("../../../shaders/queries.wgsl");
pub const ATTENTION_SMALL: &str = include_str!("../../../shaders/attention_small.wgsl");
pub const ATTENTION_BLOCK: &str = include_str!("../../../shaders/attention_block.wgsl");
pub const ATTENTION_MERGE: &str = include_str!("../../../shaders/attention_merge.wgsl");
pub const ATTENTION_FINISH: &str = include_str!("../../../shaders/attention_finish.wgsl");
pub const TANGENT_PROJECT: &str = include_str!("../../../shaders/tangent_project.wgsl");
pub const NORMALISE: &str = include_str!("../../../shaders/normalise.wgsl");
pub const MLP_HIDDEN: &str = include_str!("../../../shaders/mlp_hidden.wgsl");
pub const MLP_OUT: &str = include_str!("../../../shaders/mlp_out.wgsl");
pub const REDRAW: &str = include_str!("../../../shaders/redraw.wgsl");
pub const RK_COMBINE: &str = include_str!("../../../shaders/rk_combine.wgsl");
pub const PAIR_STATS: &str = include_str!("../../../shaders/pair_stats.wgsl");

/// The fixed kernels by name, for validation.
pub const KERNELS: &[(&str, &str)] = &[
    ("queries", QUERIES),
    ("attention_merge", ATTENTION_MERGE),
    ("attention_finish", ATTENTION_FINISH),
    ("tangent_project", TANGENT_PROJECT),
    ("normalise", NORMALISE),
    ("mlp_hidden", MLP_HIDDEN),
    ("mlp_out", MLP_OUT),
    ("redraw", REDRAW),
    ("rk_combine", RK_COMBINE),
];

/// The templates of generated kernels by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("attention_small", ATTENTION_SMALL),
    ("attention_block", ATTENTION_BLOCK),
    ("pair_stats", PAIR_STATS),
];

/// The directive that kernels using subgroup built-ins start with (WGSL spec §4.1.1; Tint
/// refuses `subgroupShuffleXor` without it).
pub const ENABLE_SUBGROUPS: &str = "enable subgroups;\n";

/// The text naga 30 compiles: the spec-conformant source (what `Specialisation::sources`
/// gives and any WebGPU implementation takes) without `enable subgroups;`, which naga 30 does
/// not parse yet ("the `subgroups` enable-extension is not yet supported"). Nothing else
/// differs.
pub fn for_naga(source: &str) -> std::borrow::Cow<'_, str> {
    match source.strip_prefix(ENABLE_SUBGROUPS) {
        Some(rest) => rest.into(),
        None => source.into(),
    }
}

/// Invocations per workgroup of every kernel.
pub const WORKGROUP: u32 = 64;

pub(crate) const FLAG_USA: u32 = 1;
pub(crate) const FLAG_SPHERE: u32 = 2;
pub(crate) const FLAG_CAUSAL: u32 = 4;
pub(crate) const FLAG_IDENTITY_SCORES: u32 = 8;
pub(crate) const FLAG_IDENTITY_VALUES: u32 = 16;
pub(crate) const FLAG_ALIBI: u32 = 32;
pub(crate) const FLAG_GELU: u32 = 64;
pub(crate) const FLAG_HEADS_PER_SYSTEM: u32 = 128;

/// The bits of `Params::flags` by their WGSL names: every kernel gets them as constants
/// written from this list (`host_constants`).
pub(crate) const FLAGS: [(&str, u32); 8] = [
    ("FLAG_USA", FLAG_USA),
    ("FLAG_SPHERE", FLAG_SPHERE),
    ("FLAG_CAUSAL", FLAG_CAUSAL),
    ("FLAG_IDENTITY_SCORES", FLAG_IDENTITY_SCORES),
    ("FLAG_IDENTITY_VALUES", FLAG_IDENTITY_VALUES),
    ("FLAG_ALIBI", FLAG_ALIBI),
    ("FLAG_GELU", FLAG_GELU),
    ("FLAG_HEADS_PER_SYSTEM", FLAG_HEADS_PER_SYSTEM),
];

/// llvmpipe (Mesa's software Vulkan, our CI adapter) ends a shader invocation silently after
/// 65535 loop iterations counted over all its loops; a streaming dispatch stays below this.
pub const SOFTWARE_LOOP_BUDGET: usize = 60_000;

/// The complete source of a fixed kernel for dimension d.
pub fn source(kernel: &str, d: usize) -> String {
    format!(
        "// Generated header (src/backend/gpu/shaders.rs).\n\
         const D: u32 = {d}u;\n\
         const DV: u32 = {}u;\n\
         const WG: u32 = {WORKGROUP}u;\n{}\n{COMMON}\n{kernel}",
        d.div_ceil(4),
        host_constants(),
    )
}

/// WGSL declarations of the constants that the kernels share with the host, written from
/// the Rust values so that the two cannot disagree: the FLAG_* bits of `Params::flags` and the
/// streams of the counter-based generator. Part of every kernel's generated header.
pub fn host_constants() -> String {
    use crate::model::rng::Stream;
    let streams = [
        ("STREAM_QUERY", Stream::Query),
        ("STREAM_KEY", Stream::Key),
        ("STREAM_VALUE", Stream::Value),
        ("STREAM_NOISE", Stream::Noise),
        ("STREAM_COMMON_NOISE", Stream::CommonNoise),
        ("STREAM_SYSTEM", Stream::System),
    ];
    FLAGS
        .into_iter()
        .chain(streams.map(|(name, stream)| (name, stream as u32)))
        .map(|(name, value)| format!("const {name}: u32 = {value}u;\n"))
        .collect()
}
