//! What every GPU job shares: the compiled kernels of one specialisation, their bind group
//! layouts, the structs that mirror the WGSL ones, and the sizes checked against the
//! adapter's limits.

use bytemuck::{Pod, Zeroable};

use super::GpuContext;
use super::codegen::{AttentionKernel, PairKernel, Variant};
use super::profiles::Target;
use super::reflect::Layout;
use super::shaders;
use crate::backend::LayerShape;
use crate::error::{Error, Result};
use crate::model::{Attention, Geometry, Mask, Model};

/// Mirrors `Params` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct Params {
    pub n_queries: u32,
    pub n_keys: u32,
    pub batch: u32,
    pub flags: u32,
    pub token_groups_x: u32,
    pub element_groups_x: u32,
    pub output_scale: f32,
    pub alibi_slope: f32,
    pub mlp_hidden: u32,
    pub hidden_groups_x: u32,
    pub splits: u32,
    pub split_keys: u32,
}

/// Mirrors `Head` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct HeadSlot {
    pub index: u32,
    pub accumulate: u32,
    pub weight: f32,
    pub first_token: u32,
    pub tokens: u32,
    pub pad: [u32; 3],
}

/// Mirrors `Step` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct StepSlot {
    pub layer: u32,
    pub pad: [u32; 3],
}

/// Mirrors `Redraw` in shaders/redraw.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct RedrawSlot {
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub heads: u32,
    pub scale: f32,
    pub groups_x: u32,
    /// Systems with heads of their own: the batch when drawn per system, else 1.
    pub systems: u32,
    /// Whether each system draws from its own seed, `rng::system_seed(seed, b)`.
    pub per_system: u32,
    /// Whether the draw is keyed by the layer (redrawn at every step) or by layer 0.
    pub layered: u32,
}

/// Mirrors `Chunk` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct Chunk {
    pub key_offset: u32,
    pub key_count: u32,
    pub first: u32,
    pub first_block: u32,
    pub groups_x: u32,
    pub first_system: u32,
    pub pad: [u32; 2],
}

/// Mirrors `Combine` in shaders/rk_combine.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub(crate) struct Combine {
    pub coeffs: [f32; 4],
    pub terms: u32,
    pub to_state: u32,
    pub renormalise: u32,
    pub tokens: u32,
    pub groups_x: u32,
    pub noise_amplitude: f32,
    pub noise_common: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub n: u32,
    pub sphere: u32,
    pub pad: u32,
}

/// Mirrors `PairStats` in shaders/pair_stats.wgsl (m in base 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct PairStatsRow {
    pub m: f32,
    pub l: f32,
    pub min_cos: f32,
    pub sum_cos: f32,
    pub sum_dot: f32,
}

/// Mirrors `Adapt` in shaders/adaptive_combine.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub(crate) struct AdaptSlot {
    pub mode: u32,
    pub base: u32,
    pub terms: u32,
    pub first: u32,
    pub slot_base: u32,
    pub stride: u32,
    pub renormalise: u32,
    pub n: u32,
    pub d: u32,
    pub groups_x: u32,
    pub groups: u32,
    pub partials: u32,
    pub atol: f32,
    pub rtol: f32,
    pub pad0: u32,
    pub pad1: u32,
}

/// Mirrors `Reduce` in shaders/adaptive_reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub(crate) struct ReduceSlot {
    pub groups: u32,
    pub partials: u32,
    pub sums: u32,
    pub pad: u32,
}

/// The struct mirrors as data for tests/shader_contract.rs, which checks them against naga's
/// layout of the WGSL structs; the types themselves stay private to the crate.
#[doc(hidden)]
pub mod contract {
    use super::{
        AdaptSlot, Chunk, Combine, HeadSlot, PairStatsRow, Params, RedrawSlot, ReduceSlot, StepSlot,
    };
    use bytemuck::Zeroable;

    /// A `#[repr(C)]` mirror of a WGSL struct.
    #[derive(Debug)]
    pub struct Mirror {
        pub rust: &'static str,
        pub wgsl: &'static str,
        pub size: usize,
        /// In declaration order.
        pub fields: Vec<Field>,
    }

    #[derive(Debug)]
    pub struct Field {
        pub name: &'static str,
        pub offset: usize,
        pub size: usize,
        /// The Rust type, e.g. "u32" or "[f32; 4]".
        pub ty: &'static str,
    }

    macro_rules! mirror {
        ($ty:ident as $wgsl:literal { $($field:ident),* $(,)? }) => {{
            // Destructuring without `..`: a field missing from this list does not compile.
            let $ty { $($field: _),* } = $ty::zeroed();
            let value = $ty::zeroed();
            Mirror {
                rust: stringify!($ty),
                wgsl: $wgsl,
                size: size_of::<$ty>(),
                fields: vec![$(Field {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($ty, $field),
                    size: size_of_val(&value.$field),
                    ty: std::any::type_name_of_val(&value.$field),
                }),*],
            }
        }};
    }

    /// Every mirror of a WGSL struct in the GPU backend.
    pub fn mirrors() -> Vec<Mirror> {
        vec![
            mirror!(Params as "Params" {
                n_queries, n_keys, batch, flags, token_groups_x, element_groups_x,
                output_scale,
                alibi_slope, mlp_hidden, hidden_groups_x, splits, split_keys,
            }),
            mirror!(HeadSlot as "Head" { index, accumulate, weight, first_token, tokens, pad }),
            mirror!(StepSlot as "Step" { layer, pad }),
            mirror!(RedrawSlot as "Redraw" {
                seed_lo, seed_hi, heads, scale, groups_x, systems, per_system, layered,
            }),
            mirror!(Chunk as "Chunk" {
                key_offset, key_count, first, first_block, groups_x, first_system, pad,
            }),
            mirror!(Combine as "Combine" {
                coeffs, terms, to_state, renormalise, tokens, groups_x, noise_amplitude,
                noise_common, seed_lo, seed_hi, n, sphere, pad,
            }),
            mirror!(PairStatsRow as "PairStats" { m, l, min_cos, sum_cos, sum_dot }),
            mirror!(AdaptSlot as "Adapt" {
                mode, base, terms, first, slot_base, stride, renormalise, n, d, groups_x,
                groups, partials, atol, rtol, pad0, pad1,
            }),
            mirror!(ReduceSlot as "Reduce" { groups, partials, sums, pad }),
        ]
    }
}

use shaders::{
    FLAG_ALIBI, FLAG_CAUSAL, FLAG_GELU, FLAG_HEADS_PER_SYSTEM, FLAG_IDENTITY_SCORES,
    FLAG_IDENTITY_VALUES, FLAG_SPHERE, FLAG_USA,
};

/// The FLAG_* bits of the kernels for a model.
pub(crate) fn flags(model: &Model, d: usize) -> u32 {
    let identity = crate::model::weights::identity_matrix(d);
    let fixed = model.random.is_none();
    let mut flags = 0;
    if model.attention == Attention::Usa {
        flags |= FLAG_USA;
    }
    if model.geometry == Geometry::Sphere {
        flags |= FLAG_SPHERE;
    }
    if model.mask == Mask::Causal {
        flags |= FLAG_CAUSAL;
    }
    // Per-layer weights: the shortcut only where every layer's heads allow it.
    let heads = model.every_layer_heads();
    if fixed && heads.iter().all(|w| w.score_matrix() == identity) {
        flags |= FLAG_IDENTITY_SCORES;
    }
    if fixed && heads.iter().all(|w| w.v_is_identity()) {
        flags |= FLAG_IDENTITY_VALUES;
    }
    if model.alibi.is_some() {
        flags |= FLAG_ALIBI;
    }
    if model
        .mlp
        .as_ref()
        .is_some_and(|m| m.activation == crate::model::Activation::Gelu)
    {
        flags |= FLAG_GELU;
    }
    if model.heads_per_system() {
        flags |= FLAG_HEADS_PER_SYSTEM;
    }
    flags
}

/// Largest token dimension the GPU kernels take.
pub const MAX_D: usize = 1024;

/// The grids of the per-token and per-element kernels, checked against the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grids {
    /// Workgroups (x, y) of the per-query kernels.
    pub tokens: (u32, u32),
    /// Workgroups (x, y) of the per-element (query, coordinate) kernels.
    pub elements: (u32, u32),
    /// Workgroups (x, y) of the per-(query, hidden unit) perceptron kernel.
    pub hidden: (u32, u32),
}

/// Checks that a job fits the adapter's buffers and grids, or returns a clear error that
/// names the limit and the largest size that fits, before anything is allocated. `splits`
/// is the largest number of key splits the plan may use (their partial states are buffers
/// too); `max_groups` (None: the adapter's limit) lets tests force small grids.
pub fn check_sizes(
    limits: &wgpu::Limits,
    sizes: LayerShape,
    hidden: usize,
    splits: usize,
    max_groups: Option<u32>,
) -> Result<Grids> {
    let LayerShape {
        batch,
        m: n_queries,
        n: n_keys,
        d,
    } = sizes;
    let wg = shaders::WORKGROUP as u64;
    let max_groups = u64::from(
        max_groups
            .unwrap_or(u32::MAX)
            .min(limits.max_compute_workgroups_per_dimension),
    );
    let max_binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    if d > MAX_D {
        return Err(Error::Limit(format!(
            "d = {d}: the GPU kernels support d up to {MAX_D}; use --backend cpu for larger d"
        )));
    }
    // Tokens as floats, and the queries and softmax states as vec4s.
    let padded = 4 * d.div_ceil(4);
    for (what, n, floats) in [
        ("queries", n_queries, d),
        ("keys", n_keys, d),
        ("padded queries", n_queries, padded),
        ("softmax states", n_queries, splits * padded),
    ] {
        let bytes = 4 * (batch * n * floats) as u64;
        if bytes > max_binding {
            let largest_n = max_binding / (4 * (batch * floats) as u64);
            return Err(Error::Limit(format!(
                "the {what} ({batch} x {n} x {floats} f32 = {:.1} MiB) exceed this adapter's \
                 max_storage_buffer_binding_size of {:.1} MiB; the largest n that fits with \
                 d = {d}, batch = {batch} is {largest_n}",
                mib(bytes),
                mib(max_binding)
            )));
        }
    }
    let row = std::mem::size_of::<PairStatsRow>() * splits;
    let stats_bytes = (row * batch * n_queries) as u64;
    if stats_bytes > max_binding {
        let largest_n = max_binding / (row * batch) as u64;
        return Err(Error::Limit(format!(
            "the observables buffer ({:.1} MiB) exceeds this adapter's \
             max_storage_buffer_binding_size of {:.1} MiB; the largest n that fits with \
             batch = {batch} is {largest_n}",
            mib(stats_bytes),
            mib(max_binding)
        )));
    }
    if batch as u64 > max_groups {
        return Err(Error::Limit(format!(
            "batch = {batch} exceeds this adapter's max_compute_workgroups_per_dimension of \
             {max_groups}"
        )));
    }
    let grid = |items: u64, what: &str| -> Result<(u32, u32)> {
        let groups = items.div_ceil(wg);
        let x = groups.clamp(1, max_groups);
        let y = groups.div_ceil(x).max(1);
        if y > max_groups {
            return Err(Error::Limit(format!(
                "{items} {what} exceed what two dimensions of {max_groups} workgroups of {wg} \
                 hold (max_compute_workgroups_per_dimension)"
            )));
        }
        Ok((x as u32, y as u32))
    };
    let tokens = grid((batch * n_queries) as u64, "queries (batch * n)")?;
    let elements = grid((batch * n_queries * d) as u64, "values (batch * n * d)")?;
    let hidden = grid(
        (batch * n_queries * hidden.max(1)) as u64,
        "hidden values (batch * n * hidden)",
    )?;
    if limits.max_storage_buffers_per_shader_stage < 7 {
        return Err(Error::Limit(format!(
            "this adapter allows {} storage buffers per shader stage; attnflow needs 7",
            limits.max_storage_buffers_per_shader_stage
        )));
    }
    if limits.max_compute_invocations_per_workgroup < shaders::WORKGROUP {
        return Err(Error::Limit(format!(
            "this adapter allows {} invocations per workgroup; attnflow needs {}",
            limits.max_compute_invocations_per_workgroup,
            shaders::WORKGROUP
        )));
    }
    Ok(Grids {
        tokens,
        elements,
        hidden,
    })
}

/// A uniform binding of one slot of `T` at a dynamic offset.
pub(crate) fn slot_binding<T>(buffer: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: wgpu::BufferSize::new(std::mem::size_of::<T>() as u64),
    })
}

/// A bind group for a kernel's layout. What the pass binds is checked against the layout
/// reflected from the kernel (`Layout::check`): a mismatch is a bug in the pass, reported
/// with the kernel and the binding.
pub(crate) fn bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: &KernelLayout,
    resources: &[wgpu::BindingResource<'_>],
) -> wgpu::BindGroup {
    if let Err(e) = layout.reflected.check(layout.kernel, resources) {
        panic!("{label}: {e}");
    }
    let layout = &layout.wgpu;
    let entries: Vec<_> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    let group = ctx.bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    });
    if ctx.capture.is_some() {
        ctx.note_group(&group, resources);
    }
    group
}

pub(crate) fn aligned(size: usize, align: u32) -> u64 {
    (size as u64).div_ceil(align as u64) * align as u64
}

/// Everything a specialisation fixes at pipeline creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Specialisation {
    pub d: usize,
    pub attention: AttentionKernel,
    pub variant: Variant,
    pub pairs: PairKernel,
    /// Modules created with wgpu's runtime checks (bounds clamping, loop bounding).
    pub checked: bool,
}

/// Which WGSL implementation a kernel's text is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The WGSL spec (Dawn/Tint, any WebGPU): every `enable` directive it requires.
    Spec,
    /// naga 30, which wgpu compiles with: the spec text without `enable subgroups;`, the one
    /// directive naga 30 refuses ("the `subgroups` enable-extension is not yet supported").
    Naga,
}

impl Dialect {
    /// The text of a kernel for this implementation from its spec-conformant text: for naga,
    /// exactly the `enable subgroups;` line is dropped, nothing else (`shaders::for_naga`).
    pub fn text(self, spec: String) -> String {
        match self {
            Dialect::Spec => spec,
            Dialect::Naga => shaders::for_naga(&spec).into_owned(),
        }
    }
}

impl Specialisation {
    /// The kernels for a model with tokens of dimension d on this adapter, with the options'
    /// overrides: a whole target (tests force any profile's kernels with it), subgroup
    /// operations (where the adapter has them), the kernel profile (None: software for a CPU
    /// adapter), runtime checks (None: ATTNFLOW_CHECKED_SHADERS).
    pub fn new(ctx: &GpuContext, model: &Model, d: usize, options: &super::GpuOptions) -> Self {
        let target = options.target.unwrap_or_else(|| {
            let mut target = Target::from_limits(
                ctx.info.device_type,
                &ctx.limits,
                if options.subgroups {
                    ctx.subgroup_min()
                } else {
                    None
                },
            );
            if let Some(profile) = options.profile {
                target.profile = profile;
            }
            target
        });
        let variant = Variant {
            causal: model.mask == Mask::Causal,
            alibi: model.alibi.is_some(),
        };
        let checked = options.checked.unwrap_or_else(checked_from_env);
        Self::for_target(d, &target, variant, checked)
    }

    /// The kernels for tokens of dimension d on a target: the one planner of kernel shapes
    /// (within the portable limits, see `profiles`).
    /// A causal variant gets ALiBi's code where `Variant::for_kernel` says so.
    pub fn for_target(d: usize, target: &Target, variant: Variant, checked: bool) -> Self {
        let attention = AttentionKernel::for_dimension(d, target);
        Specialisation {
            d,
            attention,
            variant: variant.for_kernel(&attention, target),
            pairs: PairKernel::for_dimension(d, target),
            checked,
        }
    }

    /// Every kernel: its name, its bind group layout in letters (`Layout::letters`,
    /// reflected from the module) and its WGSL as naga (wgpu) compiles it.
    pub fn sources(&self) -> [(&'static str, String, String); 11] {
        self.wgsl(Dialect::Naga)
    }

    /// Every kernel's text for a WGSL implementation (`Dialect::Spec` for Dawn/Tint and
    /// `attnflow kernels --emit`): the same text but for `enable subgroups;`, with its bind
    /// group layout in letters as `Kernels::new` builds it (reflected with naga, the dynamic
    /// offsets from `dynamic_bindings`).
    pub fn wgsl(&self, dialect: Dialect) -> [(&'static str, String, String); 11] {
        let layouts = self.layouts();
        let mut texts = self.texts(dialect).into_iter();
        layouts.map(|(name, layout)| {
            let (_, text) = texts.next().expect("eleven kernels");
            (name, layout.letters(), text)
        })
    }

    /// Every kernel's bind group layout, reflected with naga from its declarations: the text
    /// of a fixed kernel, the header of a generated one (its `main` follows and WGSL declares
    /// no module-scope variable inside a function; tests/shader_contract.rs checks that the
    /// whole modules reflect the same). Panics only if codegen wrote WGSL naga cannot read,
    /// which tests/shaders_validate.rs rules out for every specialisation.
    pub fn layouts(&self) -> [(&'static str, Layout); 11] {
        let fixed = |kernel: &str| shaders::source(kernel, self.d);
        let declarations = [
            ("queries", fixed(shaders::QUERIES)),
            ("attention", self.attention.declarations()),
            ("attention_merge", fixed(shaders::ATTENTION_MERGE)),
            ("attention_finish", fixed(shaders::ATTENTION_FINISH)),
            ("tangent_project", fixed(shaders::TANGENT_PROJECT)),
            ("normalise", fixed(shaders::NORMALISE)),
            ("mlp_hidden", fixed(shaders::MLP_HIDDEN)),
            ("mlp_out", fixed(shaders::MLP_OUT)),
            ("redraw", fixed(shaders::REDRAW)),
            ("rk_combine", fixed(shaders::RK_COMBINE)),
            ("pair_stats", self.pairs.declarations()),
        ];
        declarations.map(|(name, text)| {
            let layout = Layout::reflect(name, &shaders::for_naga(&text), dynamic_bindings(name))
                .unwrap_or_else(|e| panic!("a generated kernel naga cannot read: {e}"));
            (name, layout)
        })
    }

    /// Every kernel's name and text for a WGSL implementation, in the order of `KERNEL_NAMES`.
    pub fn texts(&self, dialect: Dialect) -> [(&'static str, String); 11] {
        let fixed = |kernel: &str| dialect.text(shaders::source(kernel, self.d));
        // The generator starts a subgroup kernel with `enable subgroups;` (codegen).
        let attention = self.attention.source(self.variant);
        [
            ("queries", fixed(shaders::QUERIES)),
            ("attention", dialect.text(attention)),
            ("attention_merge", fixed(shaders::ATTENTION_MERGE)),
            ("attention_finish", fixed(shaders::ATTENTION_FINISH)),
            ("tangent_project", fixed(shaders::TANGENT_PROJECT)),
            ("normalise", fixed(shaders::NORMALISE)),
            ("mlp_hidden", fixed(shaders::MLP_HIDDEN)),
            ("mlp_out", fixed(shaders::MLP_OUT)),
            ("redraw", fixed(shaders::REDRAW)),
            ("rk_combine", fixed(shaders::RK_COMBINE)),
            ("pair_stats", dialect.text(self.pairs.source())),
        ]
    }
}

/// The uniform bindings a kernel's passes bind at a dynamic offset (one slot of an array of
/// per-head, per-chunk or per-stage structs): the one part of a bind group layout a module
/// cannot declare. Everything else is reflected from the kernel (`Layout::reflect`).
pub fn dynamic_bindings(kernel: &str) -> &'static [u32] {
    match kernel {
        // The head (queries, finish) or the chunk of keys (attention, pair_stats).
        "queries" | "attention" | "attention_finish" | "pair_stats" => &[1],
        // The layer's step.
        "mlp_hidden" => &[5],
        "mlp_out" => &[4],
        // The Runge-Kutta stage's combination; adaptive stepping's per-system combination.
        "rk_combine" | "adaptive_combine" => &[0],
        _ => &[],
    }
}

/// Whether wgpu zeroes the kernel's workgroup memory before it runs (WebGPU's default: a
/// loop of stores and a barrier at the start of every workgroup). Off where every word a
/// kernel reads from workgroup memory was written by it before a barrier:
/// - `attention`, N-body (codegen/nbody.rs): each tile loop writes all TK * DV vec4s
///   of `tile` (zeros past the tile's keys) before its barrier, and reads only after.
/// - `attention`, FlashAttention-2 (codegen/block.rs): `qs` (every row's DVP vec4s)
///   is written before the first barrier, `kt` likewise per tile; the spare vec4 that pads
///   each row of both to STR is never read. `ps` (every row of every key of the tile,
///   zero where masked) and `alpha` (every row) are written before the barrier that
///   precedes the output phase; `red` is read only at the lanes written before its barrier.
/// - `pair_stats` (codegen/pair_stats.rs): `tile` and `tile_norm`, every key of the tile
///   (zeros past its end), before the tile's barrier.
///
/// The other kernels have no workgroup memory, so the option costs nothing there; it stays
/// at WebGPU's default for them and for any kernel added later.
pub fn zero_initialise_workgroup_memory(kernel: &str) -> bool {
    !matches!(kernel, "attention" | "pair_stats")
}

/// ATTNFLOW_CHECKED_SHADERS=1 compiles every kernel with wgpu's runtime checks.
pub fn checked_from_env() -> bool {
    std::env::var("ATTNFLOW_CHECKED_SHADERS").is_ok_and(|v| v == "1")
}

/// A kernel's bind group layout: the wgpu object and the layout reflected from the kernel
/// that it was built from, against which `bind_group` checks what a pass binds.
#[derive(Clone, Debug)]
pub(crate) struct KernelLayout {
    pub kernel: &'static str,
    pub wgpu: wgpu::BindGroupLayout,
    pub reflected: Layout,
}

/// The compiled kernels of one specialisation and their bind group layouts.
pub(crate) struct Kernels {
    pub spec: Specialisation,
    pub queries: wgpu::ComputePipeline,
    pub attention: wgpu::ComputePipeline,
    pub attention_merge: wgpu::ComputePipeline,
    pub attention_finish: wgpu::ComputePipeline,
    pub tangent_project: wgpu::ComputePipeline,
    pub normalise: wgpu::ComputePipeline,
    pub mlp_hidden: wgpu::ComputePipeline,
    pub mlp_out: wgpu::ComputePipeline,
    pub redraw: wgpu::ComputePipeline,
    pub rk_combine: wgpu::ComputePipeline,
    pub pair_stats: wgpu::ComputePipeline,
    pub queries_layout: KernelLayout,
    pub attention_layout: KernelLayout,
    pub merge_layout: KernelLayout,
    pub finish_layout: KernelLayout,
    pub project_layout: KernelLayout,
    pub normalise_layout: KernelLayout,
    pub mlp_hidden_layout: KernelLayout,
    pub mlp_out_layout: KernelLayout,
    pub redraw_layout: KernelLayout,
    pub combine_layout: KernelLayout,
    pub stats_layout: KernelLayout,
}

/// One kernel compiled (or found in the device's cache), and the cache entry to add once
/// the error scope says it compiled.
type Built = (
    (wgpu::ComputePipeline, KernelLayout),
    Option<(
        (String, &'static str, bool),
        (wgpu::ComputePipeline, wgpu::BindGroupLayout),
    )>,
);

impl Kernels {
    /// Compiles every kernel for `spec`. Shader errors come back as `Error::Gpu`.
    pub fn new(ctx: &GpuContext, spec: Specialisation) -> Result<Self> {
        if spec.attention.workgroup_bytes() > ctx.limits.max_compute_workgroup_storage_size {
            return Err(Error::Limit(format!(
                "d = {}: the attention kernel needs {} bytes of workgroup memory, this adapter \
                 offers {} (max_compute_workgroup_storage_size)",
                spec.d,
                spec.attention.workgroup_bytes(),
                ctx.limits.max_compute_workgroup_storage_size
            )));
        }
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        // Kernels this device already compiled are reused; new ones join the cache only once
        // the error scope says they compiled.
        let mut built = Vec::new();
        for ((name, source), (_, layout)) in
            spec.texts(Dialect::Spec).into_iter().zip(spec.layouts())
        {
            built.push(compile(ctx, spec.checked, name, source, layout));
        }
        let fresh: Vec<_> = built
            .iter()
            .filter_map(|(_, fresh)| fresh.clone())
            .collect();
        let Ok(
            [
                queries,
                attention,
                merge,
                finish,
                project,
                normalise,
                mlp_hidden,
                mlp_out,
                redraw,
                combine,
                stats,
            ],
        ) = <[Built; 11]>::try_from(built).map(|b| b.map(|(compiled, _)| compiled))
        else {
            unreachable!("eleven kernels")
        };
        let kernels = Kernels {
            spec,
            queries: queries.0,
            attention: attention.0,
            attention_merge: merge.0,
            attention_finish: finish.0,
            tangent_project: project.0,
            normalise: normalise.0,
            mlp_hidden: mlp_hidden.0,
            mlp_out: mlp_out.0,
            redraw: redraw.0,
            rk_combine: combine.0,
            pair_stats: stats.0,
            queries_layout: queries.1,
            attention_layout: attention.1,
            merge_layout: merge.1,
            finish_layout: finish.1,
            project_layout: project.1,
            normalise_layout: normalise.1,
            mlp_hidden_layout: mlp_hidden.1,
            mlp_out_layout: mlp_out.1,
            redraw_layout: redraw.1,
            combine_layout: combine.1,
            stats_layout: stats.1,
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("compiling the kernels: {e}")));
        }
        ctx.compiled.lock().expect("kernel cache").extend(fresh);
        Ok(kernels)
    }
}

/// A kernel whose text depends on nothing (neither d nor the adapter profile: adaptive
/// stepping's, `gpu::adaptive`), compiled or found in the device's cache.
pub(crate) fn compile_fixed(
    ctx: &GpuContext,
    checked: bool,
    name: &'static str,
    source: &str,
) -> Result<(wgpu::ComputePipeline, KernelLayout)> {
    let reflected = Layout::reflect(name, source, dynamic_bindings(name))
        .map_err(|e| Error::Gpu(format!("the {name} kernel: {e}")))?;
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let (compiled, fresh) = compile(ctx, checked, name, source.to_string(), reflected);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("compiling the {name} kernel: {e}")));
    }
    ctx.compiled.lock().expect("kernel cache").extend(fresh);
    Ok(compiled)
}

/// One kernel of `spec` from its spec-conformant text and reflected layout: its pipeline
/// from the device's cache (keyed by text, kernel and runtime checks) or compiled.
fn compile(
    ctx: &GpuContext,
    checked: bool,
    name: &'static str,
    source: String,
    reflected: Layout,
) -> Built {
    // The spec-conformant text less what naga 30 cannot parse yet.
    let naga_text = shaders::for_naga(&source).into_owned();
    let key = (source, name, checked);
    let hit = ctx
        .compiled
        .lock()
        .expect("kernel cache")
        .get(&key)
        .cloned();
    if let Some((pipeline, wgpu)) = hit {
        let layout = KernelLayout {
            kernel: name,
            wgpu,
            reflected,
        };
        return ((pipeline, layout), None);
    }
    let device = &ctx.device;
    let wgpu = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(name),
        entries: &reflected.entries(),
    });
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(naga_text.into()),
    };
    let module = if checked {
        device.create_shader_module(desc)
    } else {
        // SAFETY: every index of these kernels is in range by construction (token and
        // element indices are guarded against the sizes in Params, tile and register indices
        // are compile-time constants or loop counters below their array's length, reads past
        // the last query or key are clamped), every loop ends (bounds are sizes from the
        // uniforms, which the host checked), and every integer divisor is a nonzero constant
        // or a size >= 1. The checked build (ATTNFLOW_CHECKED_SHADERS=1) runs the same tests.
        unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
    };
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&wgpu)],
        immediate_size: 0,
    });
    let pipeline = ctx.pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions {
            zero_initialize_workgroup_memory: zero_initialise_workgroup_memory(name),
            ..Default::default()
        },
        cache: None,
    });
    if ctx.capture.is_some() {
        ctx.note_kernel(&pipeline, name, &reflected.letters(), &key.0);
    }
    let fresh = Some((key, (pipeline.clone(), wgpu.clone())));
    let layout = KernelLayout {
        kernel: name,
        wgpu,
        reflected,
    };
    ((pipeline, layout), fresh)
}
