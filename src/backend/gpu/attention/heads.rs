//! The heads of a layer on the device: every head's score and value matrices, the inverse
//! temperatures, USA's log-normaliser, and one uniform `HeadSlot` per head and piece of
//! tokens that tells the O(n d^2) kernels which head they compute (and whether they add to
//! the output). A random model redraws the matrices on the device at every step (`redraw`).

use super::{f32s, init};
use crate::backend::LayerShape;
use crate::backend::gpu::GpuContext;
use crate::backend::gpu::kernels::{
    HeadSlot, Kernels, RedrawSlot, aligned, bind_group, slot_binding,
};
use crate::backend::gpu::plan::TokenPlan;
use crate::backend::gpu::record::Op;
use crate::backend::gpu::shaders;
use crate::model::{Model, Weights};

pub(crate) struct HeadStore {
    /// The inverse temperature of every system.
    pub betas: wgpu::Buffer,
    /// K_h^T Q_h and V_h of every head, [H, d, d] or with heads per system [H, batch, d, d].
    pub score_matrix: wgpu::Buffer,
    pub value_matrix: wgpu::Buffer,
    /// log Z_i of USA per query position.
    pub log_normaliser: wgpu::Buffer,
    /// One `HeadSlot` per head and token piece, head-major (dynamic offsets).
    slots: wgpu::Buffer,
    slot_stride: u64,
    /// The pieces of whole tokens the O(n d^2) kernels (queries, attention_finish, the
    /// perceptron) are dispatched in, one slot per head and piece.
    pub token_plan: TokenPlan,
    pub count: usize,
    /// c_h, the weight of each head's output (1 for a sum, 1/H for a mean).
    weight: f32,
    /// Systems with heads of their own (the batch with heads per system, else 1).
    systems: usize,
    d: usize,
    /// Seeds of a random model's redraws.
    redraw: Option<wgpu::Buffer>,
}

impl HeadStore {
    /// Uploads the model's heads (layer 0) and the slots of the pieces of `token_plan`.
    pub fn new(ctx: &GpuContext, model: &Model, sizes: LayerShape, token_plan: &TokenPlan) -> Self {
        let d = sizes.d;
        let storage = wgpu::BufferUsages::STORAGE;
        // Every head's matrices, stacked, [H, d, d] or with heads per system [H, batch, d, d];
        // a random model overwrites them at every step.
        let by_system = model.heads_by_system(d, 0, sizes.batch);
        let count = by_system[0].len();
        let stacked = |f: &dyn Fn(&Weights) -> Vec<f64>| -> Vec<f64> {
            (0..count)
                .flat_map(|h| by_system.iter().flat_map(move |s| f(&s[h])))
                .collect()
        };
        let scores = stacked(&|w: &Weights| w.score_matrix());
        let values = stacked(&|w: &Weights| w.v.clone());
        let systems = by_system.len();
        let log_norm: Vec<f32> = (0..sizes.m)
            .map(|i| model.usa_log_normaliser(i, sizes.n) as f32)
            .collect();
        let matrix_usage = storage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let align = ctx.limits.min_uniform_buffer_offset_alignment;
        let slot_stride = aligned(std::mem::size_of::<HeadSlot>(), align);
        let weight = model.head_weight() as f32;
        HeadStore {
            betas: init(
                ctx,
                "betas",
                bytemuck::cast_slice(&f32s(&model.betas)),
                storage,
            ),
            score_matrix: init(
                ctx,
                "score_matrix",
                bytemuck::cast_slice(&f32s(&scores)),
                matrix_usage,
            ),
            value_matrix: init(
                ctx,
                "value_matrix",
                bytemuck::cast_slice(&f32s(&values)),
                matrix_usage,
            ),
            log_normaliser: init(
                ctx,
                "log_normaliser",
                bytemuck::cast_slice(&log_norm),
                storage,
            ),
            slots: head_slots(ctx, count, weight, slot_stride, token_plan),
            slot_stride,
            token_plan: *token_plan,
            count,
            weight,
            systems,
            d,
            redraw: Self::redraw_seeds(ctx, model, systems, d),
        }
    }

    /// The seeds and shape of a random model's redraws (None for fixed heads).
    fn redraw_seeds(
        ctx: &GpuContext,
        model: &Model,
        systems: usize,
        d: usize,
    ) -> Option<wgpu::Buffer> {
        model.random.map(|r| {
            let elements = (2 * r.heads * systems * d * d) as u64;
            let groups = elements.div_ceil(u64::from(shaders::WORKGROUP));
            let slot = RedrawSlot {
                seed_lo: r.seed as u32,
                seed_hi: (r.seed >> 32) as u32,
                heads: r.heads as u32,
                scale: (r.scale / (d as f64).sqrt()) as f32,
                groups_x: groups.min(u64::from(ctx.limits.max_compute_workgroups_per_dimension))
                    as u32,
                systems: systems as u32,
                per_system: r.per_system as u32,
                layered: r.redraw as u32,
            };
            init(
                ctx,
                "redraw",
                bytemuck::bytes_of(&slot),
                wgpu::BufferUsages::UNIFORM,
            )
        })
    }

    /// Writes the slots of the pieces of a new `token_plan` into a new uniform buffer. (Bind
    /// groups refer to it: make them afterwards.)
    pub fn upload_slots(&mut self, ctx: &GpuContext, token_plan: &TokenPlan) {
        self.slots = head_slots(ctx, self.count, self.weight, self.slot_stride, token_plan);
        self.token_plan = *token_plan;
    }

    /// The dynamic offset of the slot of head `h` and token piece `p`.
    fn slot(&self, h: usize, p: usize) -> u32 {
        ((h * self.token_plan.pieces + p) as u64 * self.slot_stride) as u32
    }

    /// The dispatches of an O(n d^2) kernel for head `h`: one per piece of whole tokens, at
    /// the piece's slot, on a grid of `per_token` invocations per token laid out as the whole
    /// dispatch's (`groups_x` as in Params). Pieces planned to the dispatch budget count
    /// against the submission's budget like the attention's dispatches.
    pub fn piece_ops(
        &self,
        h: usize,
        label: &'static str,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
        per_token: usize,
        groups_x: u32,
    ) -> Vec<Op> {
        let grid = |tokens: usize| {
            let groups = (tokens * per_token)
                .div_ceil(shaders::WORKGROUP as usize)
                .max(1);
            let x = groups.min(groups_x.max(1) as usize);
            (x as u32, groups.div_ceil(x) as u32, 1)
        };
        self.token_plan
            .pieces()
            .enumerate()
            .map(|(p, (_, tokens))| Op {
                label,
                pipeline: pipeline.clone(),
                group: group.clone(),
                offset: Some(self.slot(h, p)),
                grid: grid(tokens),
                streaming: self.token_plan.pieces > 1,
            })
            .collect()
    }

    /// The binding of one slot (at a dynamic offset).
    pub fn slot_binding(&self) -> wgpu::BindingResource<'_> {
        slot_binding::<HeadSlot>(&self.slots)
    }

    /// The bind group of the redraw kernel, for a random model; `step` holds the layer.
    pub fn redraw_group(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        step: &wgpu::Buffer,
    ) -> Option<wgpu::BindGroup> {
        self.redraw.as_ref().map(|r| {
            bind_group(
                ctx,
                "redraw",
                &kernels.redraw_layout,
                &[
                    r.as_entire_binding(),
                    step.as_entire_binding(),
                    self.score_matrix.as_entire_binding(),
                    self.value_matrix.as_entire_binding(),
                ],
            )
        })
    }

    /// The dispatch that redraws every head's matrices for the layer in the step buffer.
    pub fn redraw_op(&self, ctx: &GpuContext, kernels: &Kernels, group: &wgpu::BindGroup) -> Op {
        let elements = 2 * self.count * self.systems * self.d * self.d;
        let groups = elements.div_ceil(shaders::WORKGROUP as usize) as u32;
        let x = groups.min(ctx.limits.max_compute_workgroups_per_dimension);
        Op {
            label: "redraw",
            pipeline: kernels.redraw.clone(),
            group: group.clone(),
            offset: None,
            grid: (x, groups.div_ceil(x), 1),
            streaming: false,
        }
    }
}

/// One `HeadSlot` per head and piece of `token_plan`, head-major, `stride` bytes apart, in a
/// new uniform buffer: head h reads its matrices and adds to the output when h > 0.
fn head_slots(
    ctx: &GpuContext,
    count: usize,
    weight: f32,
    stride: u64,
    token_plan: &TokenPlan,
) -> wgpu::Buffer {
    let slots: Vec<u8> = (0..count)
        .flat_map(|h| {
            token_plan
                .pieces()
                .map(move |(first, tokens)| (h, first, tokens))
        })
        .flat_map(|(h, first, tokens)| {
            let slot = HeadSlot {
                index: h as u32,
                accumulate: (h > 0) as u32,
                weight,
                first_token: first as u32,
                tokens: tokens as u32,
                pad: [0; 3],
            };
            let mut bytes = bytemuck::bytes_of(&slot).to_vec();
            bytes.resize(stride as usize, 0);
            bytes
        })
        .collect();
    init(ctx, "heads", &slots, wgpu::BufferUsages::UNIFORM)
}
