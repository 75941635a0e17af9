//! One evaluation of the attention field on the GPU, shared by the dynamics (queries = keys =
//! the state) and by single layers with separate queries and keys. Per head: `queries`
//! (q = beta log2(e) K_h^T Q_h z), `attention` once per planned dispatch (online softmax over
//! key splits and chunks, partial states continued across chunks), `attention_merge` (the
//! splits merged, SA or USA normalisation), `attention_finish` (V_h, c_h, summed over heads);
//! then the perceptron (`mlp_hidden`, `mlp_out`) and the layer's finish, `tangent_project` (on
//! the sphere the projection; the output normalisation of `peri-ln` and `ngpt`).
//!
//! [`AttentionPass`] owns the attention proper (its plan, the online-softmax state, the chunk
//! buffer of every planned dispatch) and composes the pieces that own the rest, each with its
//! buffers, bind groups and dispatches:
//! - `heads::HeadStore`: the heads' matrices, temperatures, USA's normaliser and the slots of
//!   the O(n d^2) kernels' token pieces; a random model's redraw;
//! - `mlp::MlpPass`: the perceptron;
//! - `stats::StatsPass`: the pair statistics of the observables;
//! - `layers::LayerStore`: per-layer weights, selected into the heads' and the perceptron's
//!   buffers at each change of layer;
//! - `planning`: the plans and the speed probe (`AttentionPass::calibrate`).
//!
//! The buffers are built once; `ops` only lists the dispatches of an evaluation.

pub(crate) mod heads;
pub(crate) mod layers;
pub(crate) mod mlp;
mod planning;
pub(crate) mod stats;

pub use planning::{Calibration, Chunking, TARGET_DISPATCH_SECONDS, software_chunk_keys};

use super::GpuContext;
use super::kernels::{
    Chunk, Grids, Kernels, Params, StepSlot, aligned, bind_group, check_sizes, slot_binding,
};
use super::plan::{DispatchSlot, Plan};
use super::record::Op;
use crate::backend::LayerShape;
use crate::error::Result;
use crate::model::{Mask, Model};
use heads::HeadStore;
use layers::LayerStore;
use mlp::{MlpGroups, MlpPass};
use planning::Plans;
use stats::StatsPass;

/// The test knobs and options of the attention pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PassOptions {
    pub chunking: Chunking,
    pub max_groups: Option<u32>,
    pub splits: Option<usize>,
    /// Most bytes of per-layer weights kept resident on the device.
    pub resident_layer_bytes: u64,
}

impl PassOptions {
    /// Workgroups per grid dimension: the adapter's, or fewer with `max_groups`.
    pub fn groups_per_dimension(&self, ctx: &GpuContext) -> u32 {
        self.max_groups
            .unwrap_or(u32::MAX)
            .min(ctx.limits.max_compute_workgroups_per_dimension)
    }
}

/// The default cap on resident per-layer weights (f32, all layers).
pub const RESIDENT_LAYER_BYTES: u64 = 512 << 20;

pub(crate) struct AttentionPass {
    pub sizes: LayerShape,
    pub grids: Grids,
    /// How the attention is cut into dispatches.
    pub plan: Plan,
    pub calibration: Option<Calibration>,
    /// Workgroups per grid dimension.
    max_groups: u32,
    /// The layer's `Params`, with the attention's key splits.
    pub params: wgpu::Buffer,
    /// Queries [tokens][DV] vec4, and the online-softmax state of every split and query:
    /// acc [splits][tokens][DV] vec4 and (m, l) pairs [splits][tokens].
    pub q: wgpu::Buffer,
    pub acc: wgpu::Buffer,
    pub ml: wgpu::Buffer,
    /// One `Chunk` per planned dispatch (dynamic offsets), attention then pair statistics.
    chunks: wgpu::Buffer,
    chunk_stride: u64,
    /// The attention's dispatches.
    slots: Vec<DispatchSlot>,
    pub heads: HeadStore,
    pub stats: StatsPass,
    /// The perceptron, when there is one.
    mlp: Option<MlpPass>,
    /// The layer being computed (random heads, noise), written once per step.
    pub step: wgpu::Buffer,
    /// Per-layer weights, selected into the working buffers at each change of layer.
    pub layers: Option<LayerStore>,
    /// Whether the layer's finish (`tangent_project`) runs: the ODE's projection on the
    /// sphere, or the output normalisation of `peri-ln` and `ngpt`.
    finish: bool,
}

/// Bind groups of one evaluation: which buffers hold the query tokens, the keys, the output.
pub(crate) struct AttentionGroups {
    queries: wgpu::BindGroup,
    attention: wgpu::BindGroup,
    merge: wgpu::BindGroup,
    finish: wgpu::BindGroup,
    project: wgpu::BindGroup,
    mlp: Option<MlpGroups>,
}

impl AttentionPass {
    pub fn new(
        ctx: &GpuContext,
        kernels: &Kernels,
        model: &Model,
        sizes: LayerShape,
        options: PassOptions,
    ) -> Result<Self> {
        model.validate(crate::model::Shape::new(sizes.batch, sizes.m, sizes.d)?)?;
        if model.mask == Mask::Causal && sizes.m != sizes.n {
            return Err(crate::error::input(
                "the causal mask needs the queries to be the keys (self-attention)",
            ));
        }
        let hidden = model.mlp.as_ref().map_or(0, |m| m.hidden);
        let plans = planning::plans(ctx, kernels, sizes, options, None, None, hidden)?;
        let grids = check_sizes(
            &ctx.limits,
            sizes,
            hidden,
            plans.attention.splits.max(plans.stats.splits),
            options.max_groups,
        )?;
        let params = |p: &Plan| layer_params(model, sizes, grids, hidden, p);
        let max_groups = options.groups_per_dimension(ctx);
        let slots = plans.attention.slots(max_groups);
        let stats = StatsPass::new(
            ctx,
            plans.stats,
            params(&plans.stats),
            max_groups,
            slots.len(),
        );
        let chunk_stride = aligned(
            std::mem::size_of::<Chunk>(),
            ctx.limits.min_uniform_buffer_offset_alignment,
        );
        let tokens = (sizes.batch * sizes.m) as u64;
        let padded = 16 * sizes.d.div_ceil(4) as u64;
        let splits = plans.attention.splits as u64;
        let softmax = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let step = StepSlot {
            layer: 0,
            pad: [0; 3],
        };
        Ok(AttentionPass {
            sizes,
            grids,
            plan: plans.attention,
            calibration: None,
            max_groups,
            params: init(
                ctx,
                "params",
                bytemuck::bytes_of(&params(&plans.attention)),
                uniform,
            ),
            // Pad lanes of the queries are never written and stay zero.
            q: zeroed(ctx, "queries", padded * tokens, softmax),
            acc: zeroed(ctx, "softmax_acc", padded * tokens * splits, softmax),
            ml: zeroed(ctx, "softmax_max_sum", 8 * tokens * splits, softmax),
            chunks: chunk_buffer(ctx, chunk_stride, slots.iter().chain(stats.slots())),
            chunk_stride,
            slots,
            heads: HeadStore::new(ctx, model, sizes, &plans.tokens),
            stats,
            mlp: model.mlp.as_ref().map(|m| MlpPass::new(ctx, m, tokens)),
            step: init(ctx, "step", bytemuck::bytes_of(&step), uniform),
            layers: LayerStore::new(ctx, model, sizes.d, options.resident_layer_bytes),
            finish: model.projects() || model.output_scale().is_some(),
        })
    }

    /// Takes new plans (with the same key splits): writes the chunks of their dispatches and
    /// the heads' slots of their token pieces into new buffers. (Bind groups refer to them:
    /// make them afterwards.)
    fn upload_plans(&mut self, ctx: &GpuContext, plans: Plans) {
        self.plan = plans.attention;
        self.heads.upload_slots(ctx, &plans.tokens);
        self.slots = self.plan.slots(self.max_groups);
        self.stats
            .set_plan(plans.stats, self.max_groups, self.slots.len());
        self.chunks = chunk_buffer(
            ctx,
            self.chunk_stride,
            self.slots.iter().chain(self.stats.slots()),
        );
    }

    /// How the O(n d^2) kernels (queries, attention_finish, the perceptron) are cut into
    /// dispatches of whole tokens.
    pub fn token_plan(&self) -> super::plan::TokenPlan {
        self.heads.token_plan
    }

    /// Bind groups reading query tokens from `z` and keys from `keys`, writing `out`.
    /// (Bind groups refer to the chunk buffer: make them after calibrating.)
    pub fn bind(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        z: &wgpu::Buffer,
        keys: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> AttentionGroups {
        let heads = &self.heads;
        AttentionGroups {
            queries: bind_group(
                ctx,
                "queries",
                &kernels.queries_layout,
                &[
                    self.params.as_entire_binding(),
                    heads.slot_binding(),
                    heads.betas.as_entire_binding(),
                    heads.score_matrix.as_entire_binding(),
                    z.as_entire_binding(),
                    self.q.as_entire_binding(),
                ],
            ),
            attention: self.attention_group(ctx, kernels, keys, &self.chunks),
            merge: bind_group(
                ctx,
                "attention_merge",
                &kernels.merge_layout,
                &[
                    self.params.as_entire_binding(),
                    self.acc.as_entire_binding(),
                    self.ml.as_entire_binding(),
                    heads.log_normaliser.as_entire_binding(),
                ],
            ),
            finish: bind_group(
                ctx,
                "attention_finish",
                &kernels.finish_layout,
                &[
                    self.params.as_entire_binding(),
                    heads.slot_binding(),
                    heads.value_matrix.as_entire_binding(),
                    self.acc.as_entire_binding(),
                    out.as_entire_binding(),
                ],
            ),
            project: bind_group(
                ctx,
                "tangent_project",
                &kernels.project_layout,
                &[
                    self.params.as_entire_binding(),
                    z.as_entire_binding(),
                    out.as_entire_binding(),
                ],
            ),
            mlp: self
                .mlp
                .as_ref()
                .map(|m| m.bind(ctx, kernels, &self.params, heads, z, out)),
        }
    }

    /// The bind group of the attention kernel reading `keys`, its chunks from `chunks`.
    fn attention_group(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        keys: &wgpu::Buffer,
        chunks: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        bind_group(
            ctx,
            "attention",
            &kernels.attention_layout,
            &[
                self.params.as_entire_binding(),
                slot_binding::<Chunk>(chunks),
                self.q.as_entire_binding(),
                keys.as_entire_binding(),
                self.acc.as_entire_binding(),
                self.ml.as_entire_binding(),
            ],
        )
    }

    /// The dispatches of one evaluation, in order.
    pub fn ops(&self, kernels: &Kernels, groups: &AttentionGroups) -> Vec<Op> {
        let (ex, ey) = self.grids.elements;
        let (tx, ty) = self.grids.tokens;
        let d = self.sizes.d;
        let whole = |label, pipeline: &wgpu::ComputePipeline, group: &wgpu::BindGroup, grid| Op {
            label,
            pipeline: pipeline.clone(),
            group: group.clone(),
            offset: None,
            grid,
            streaming: false,
        };
        let heads = &self.heads;
        let mut ops = Vec::new();
        for h in 0..heads.count {
            ops.extend(heads.piece_ops(h, "queries", &kernels.queries, &groups.queries, d, ex));
            ops.extend(self.attention_ops(kernels, &groups.attention));
            ops.push(whole(
                "attention_merge",
                &kernels.attention_merge,
                &groups.merge,
                (ex, ey, 1),
            ));
            ops.extend(heads.piece_ops(
                h,
                "attention_finish",
                &kernels.attention_finish,
                &groups.finish,
                d,
                ex,
            ));
        }
        if let (Some(mlp), Some(group)) = (&self.mlp, &groups.mlp) {
            let hx = self.grids.hidden.0;
            ops.extend(mlp.ops(kernels, group, heads, d, hx, ex));
        }
        if self.finish {
            ops.push(whole(
                "tangent_project",
                &kernels.tangent_project,
                &groups.project,
                (tx, ty, 1),
            ));
        }
        ops
    }

    /// The planned dispatches of the attention kernel of one head.
    fn attention_ops<'a>(
        &'a self,
        kernels: &'a Kernels,
        group: &'a wgpu::BindGroup,
    ) -> impl Iterator<Item = Op> + 'a {
        self.slots.iter().enumerate().map(move |(i, s)| Op {
            label: "attention",
            pipeline: kernels.attention.clone(),
            group: group.clone(),
            offset: Some((i as u64 * self.chunk_stride) as u32),
            grid: (s.groups_x, s.systems, s.z_blocks * self.plan.splits as u32),
            streaming: true,
        })
    }

    /// The bind group of the pair statistics of the tokens `x` into `stats`.
    pub fn stats_group(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        x: &wgpu::Buffer,
        stats: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        let betas = &self.heads.betas;
        self.stats.bind(ctx, kernels, &self.chunks, betas, x, stats)
    }

    /// The dispatches of the pair statistics.
    pub fn stats_ops(&self, kernels: &Kernels, group: &wgpu::BindGroup) -> Vec<Op> {
        self.stats.ops(kernels, group, self.chunk_stride)
    }

    /// The bind group of the redraw kernel, for a random model.
    pub fn redraw_group(&self, ctx: &GpuContext, kernels: &Kernels) -> Option<wgpu::BindGroup> {
        self.heads.redraw_group(ctx, kernels, &self.step)
    }

    /// Sets the layer index of the next step (queued before the next submission) and, for a
    /// random model, returns the redraw of its heads for that layer.
    pub fn begin_step(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        redraw: Option<&wgpu::BindGroup>,
        layer: u32,
    ) -> Option<Op> {
        ctx.queue.write_buffer(
            &self.step,
            0,
            bytemuck::bytes_of(&StepSlot { layer, pad: [0; 3] }),
        );
        redraw.map(|group| self.heads.redraw_op(ctx, kernels, group))
    }

    /// Per-layer weights: when step `step` starts a new layer of the schedule, writes that
    /// layer's weights into the working buffers (`LayerStore::select_layer`). Returns whether
    /// it did.
    pub fn select_layer(&mut self, ctx: &GpuContext, step: u32) -> bool {
        match self.layers.as_mut() {
            Some(store) => store.select_layer(ctx, step, &self.heads, self.mlp.as_ref()),
            None => false,
        }
    }
}

/// The layer's parameters (`Params`) with the key splits of `plan`.
fn layer_params(
    model: &Model,
    sizes: LayerShape,
    grids: Grids,
    hidden: usize,
    plan: &Plan,
) -> Params {
    Params {
        n_queries: sizes.m as u32,
        n_keys: sizes.n as u32,
        batch: sizes.batch as u32,
        flags: super::kernels::flags(model, sizes.d),
        token_groups_x: grids.tokens.0,
        element_groups_x: grids.elements.0,
        output_scale: model.output_scale().unwrap_or(0.0) as f32,
        alibi_slope: model.alibi_slope(sizes.n) as f32,
        mlp_hidden: hidden as u32,
        hidden_groups_x: grids.hidden.0,
        splits: plan.splits as u32,
        split_keys: plan.split_keys as u32,
    }
}

/// One `Chunk` per dispatch slot, `stride` bytes apart, in a new uniform buffer.
fn chunk_buffer<'a>(
    ctx: &GpuContext,
    stride: u64,
    slots: impl Iterator<Item = &'a DispatchSlot>,
) -> wgpu::Buffer {
    let bytes: Vec<u8> = slots
        .flat_map(|s| {
            let mut slot = bytemuck::bytes_of(&chunk(s)).to_vec();
            slot.resize(stride as usize, 0);
            slot
        })
        .collect();
    init(ctx, "chunks", &bytes, wgpu::BufferUsages::UNIFORM)
}

fn chunk(s: &DispatchSlot) -> Chunk {
    Chunk {
        key_offset: s.key_offset as u32,
        key_count: s.key_count as u32,
        first: s.first as u32,
        first_block: s.first_block as u32,
        groups_x: s.groups_x,
        first_system: s.first_system as u32,
        pad: [0; 2],
    }
}

/// A buffer holding `contents`.
fn init(ctx: &GpuContext, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage,
    })
}

/// A zeroed buffer of `size` bytes, at least 4 (wgpu binds no empty buffer).
fn zeroed(ctx: &GpuContext, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(4),
        usage,
        mapped_at_creation: false,
    })
}

/// f32 copies of f64 values.
fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
