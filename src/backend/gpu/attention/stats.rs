//! The pair statistics on the device (self-attention only): for every token, over the keys of
//! each split, the log-sum-exp of its scores, the least and summed cosines and the summed dot
//! products (`pair_stats`), merged over the splits on the host. Planned like the attention,
//! with its own key splits; its chunks follow the attention's in the pass's chunk buffer.

use super::init;
use crate::backend::gpu::GpuContext;
use crate::backend::gpu::kernels::{Chunk, Kernels, Params, bind_group, slot_binding};
use crate::backend::gpu::plan::{DispatchSlot, Plan};
use crate::backend::gpu::record::Op;

pub(crate) struct StatsPass {
    pub plan: Plan,
    /// The layer's parameters with this plan's key splits.
    params: wgpu::Buffer,
    /// One per planned dispatch.
    slots: Vec<DispatchSlot>,
    /// Where its first `Chunk` is in the chunk buffer (after the attention's).
    first_chunk: usize,
}

impl StatsPass {
    /// The pair statistics planned by `plan` with the layer's `params` (of this plan's key
    /// splits), their chunks to be written from index `first_chunk` of the chunk buffer.
    pub fn new(
        ctx: &GpuContext,
        plan: Plan,
        params: Params,
        max_groups: u32,
        first_chunk: usize,
    ) -> Self {
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        StatsPass {
            plan,
            params: init(ctx, "stats_params", bytemuck::bytes_of(&params), uniform),
            slots: plan.slots(max_groups),
            first_chunk,
        }
    }

    /// Takes `plan` (with the same key splits) and cuts it into dispatch slots, whose chunks
    /// the caller writes from index `first_chunk` of the chunk buffer.
    pub fn set_plan(&mut self, plan: Plan, max_groups: u32, first_chunk: usize) {
        self.plan = plan;
        self.slots = plan.slots(max_groups);
        self.first_chunk = first_chunk;
    }

    /// The dispatch slots, in order.
    pub fn slots(&self) -> &[DispatchSlot] {
        &self.slots
    }

    /// The bind group of the pair statistics of the tokens `x` into `stats`, with the chunk
    /// buffer `chunks` and the inverse temperatures `betas`.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        chunks: &wgpu::Buffer,
        betas: &wgpu::Buffer,
        x: &wgpu::Buffer,
        stats: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        bind_group(
            ctx,
            "pair_stats",
            &kernels.stats_layout,
            &[
                self.params.as_entire_binding(),
                slot_binding::<Chunk>(chunks),
                betas.as_entire_binding(),
                x.as_entire_binding(),
                stats.as_entire_binding(),
            ],
        )
    }

    /// The dispatches of the pair statistics; chunks are `chunk_stride` bytes apart.
    pub fn ops(&self, kernels: &Kernels, group: &wgpu::BindGroup, chunk_stride: u64) -> Vec<Op> {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| Op {
                label: "pair_stats",
                pipeline: kernels.pair_stats.clone(),
                group: group.clone(),
                offset: Some(((self.first_chunk + i) as u64 * chunk_stride) as u32),
                grid: (s.groups_x, s.systems, s.z_blocks * self.plan.splits as u32),
                streaming: true,
            })
            .collect()
    }
}
