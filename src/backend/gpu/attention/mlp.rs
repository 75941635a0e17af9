//! The perceptron block W sigma(A x + b) on the device: `mlp_hidden` writes the hidden
//! values of every token, `mlp_out` adds W times them to the attention's output. Both are
//! dispatched in the token pieces of the heads' plan, with head 0's slots.

use super::heads::HeadStore;
use super::{f32s, init, zeroed};
use crate::backend::gpu::GpuContext;
use crate::backend::gpu::kernels::{Kernels, bind_group};
use crate::backend::gpu::record::Op;
use crate::model::Mlp;

pub(crate) struct MlpPass {
    /// A [m, d], b [m] and W [d, m]; per-layer perceptrons are written over at each change of
    /// layer (`LayerStore`).
    pub a: wgpu::Buffer,
    pub b: wgpu::Buffer,
    pub w: wgpu::Buffer,
    /// The hidden values sigma(A x + b) of every token, [tokens, m].
    hidden: wgpu::Buffer,
    /// The hidden width m.
    pub width: usize,
}

/// The perceptron's bind groups of one evaluation.
pub(crate) struct MlpGroups {
    hidden: wgpu::BindGroup,
    out: wgpu::BindGroup,
}

impl MlpPass {
    /// Uploads the perceptron `mlp` (layer 0) for `tokens` tokens.
    pub fn new(ctx: &GpuContext, mlp: &Mlp, tokens: u64) -> Self {
        let storage = wgpu::BufferUsages::STORAGE;
        let usage = storage | wgpu::BufferUsages::COPY_DST;
        MlpPass {
            a: init(ctx, "mlp_a", bytemuck::cast_slice(&f32s(&mlp.a)), usage),
            b: init(ctx, "mlp_b", bytemuck::cast_slice(&f32s(&mlp.b)), usage),
            w: init(ctx, "mlp_w", bytemuck::cast_slice(&f32s(&mlp.w)), usage),
            hidden: zeroed(ctx, "mlp_hidden", 4 * tokens * mlp.hidden as u64, storage),
            width: mlp.hidden,
        }
    }

    /// Bind groups reading the tokens `z` and adding to `out`.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        params: &wgpu::Buffer,
        heads: &HeadStore,
        z: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> MlpGroups {
        MlpGroups {
            hidden: bind_group(
                ctx,
                "mlp_hidden",
                &kernels.mlp_hidden_layout,
                &[
                    params.as_entire_binding(),
                    self.a.as_entire_binding(),
                    self.b.as_entire_binding(),
                    z.as_entire_binding(),
                    self.hidden.as_entire_binding(),
                    heads.slot_binding(),
                ],
            ),
            out: bind_group(
                ctx,
                "mlp_out",
                &kernels.mlp_out_layout,
                &[
                    params.as_entire_binding(),
                    self.w.as_entire_binding(),
                    self.hidden.as_entire_binding(),
                    out.as_entire_binding(),
                    heads.slot_binding(),
                ],
            ),
        }
    }

    /// The dispatches of the perceptron, in order: every piece's hidden values (grids of
    /// `hidden_groups_x` per row), then every piece's output (`element_groups_x`).
    pub fn ops(
        &self,
        kernels: &Kernels,
        groups: &MlpGroups,
        heads: &HeadStore,
        d: usize,
        hidden_groups_x: u32,
        element_groups_x: u32,
    ) -> Vec<Op> {
        let mut ops = heads.piece_ops(
            0,
            "mlp_hidden",
            &kernels.mlp_hidden,
            &groups.hidden,
            self.width,
            hidden_groups_x,
        );
        ops.extend(heads.piece_ops(
            0,
            "mlp_out",
            &kernels.mlp_out,
            &groups.out,
            d,
            element_groups_x,
        ));
        ops
    }
}
