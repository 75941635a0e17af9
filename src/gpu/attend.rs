//! One attention layer on the GPU with separate queries and keys: `batch` systems in which
//! `n_queries` query tokens attend to `n_keys` keys (contextual flow maps, `attend`, and the
//! large-n accuracy checks that evaluate a sample of queries against a million keys).

use std::sync::Arc;

use super::attention::{AttentionGroups, AttentionPass};
use super::kernels::{Kernels, Sizes, plan};
use super::shaders::Specialisation;
use super::{GpuContext, GpuOptions, map_and_read};
use crate::error::{Result, input};
use crate::model::Model;

pub struct GpuAttend {
    ctx: Arc<GpuContext>,
    kernels: Kernels,
    pass: AttentionPass,
    sizes: Sizes,
    queries: wgpu::Buffer,
    keys: wgpu::Buffer,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    groups: AttentionGroups,
}

impl GpuAttend {
    /// Buffers and kernels for `sizes`; queries and keys start at zero (set them).
    pub fn new(
        ctx: Arc<GpuContext>,
        model: &Model,
        sizes: Sizes,
        options: GpuOptions,
    ) -> Result<Self> {
        if sizes.n_queries == 0 || sizes.n_keys == 0 {
            return Err(input("attention needs at least one query and one key"));
        }
        plan(&ctx.limits, sizes, 1, options.max_groups)?;
        let spec =
            Specialisation::for_dimension(sizes.d, ctx.limits.max_compute_workgroup_storage_size);
        let kernels = Kernels::new(&ctx.device, spec)?;
        let mut pass = AttentionPass::new(
            &ctx,
            &kernels,
            model,
            sizes,
            options.chunking,
            options.max_groups,
        )?;
        let device = &ctx.device;
        let buffer = |label: &str, floats: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 4 * floats as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let io = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let query_floats = sizes.batch * sizes.n_queries * sizes.d;
        let queries = buffer("query tokens", query_floats, io);
        let keys = buffer("keys", sizes.batch * sizes.n_keys * sizes.d, io);
        let out = buffer("attention output", query_floats, io);
        let readback = buffer(
            "readback",
            query_floats,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut groups = pass.bind(&ctx, &kernels, &queries, &keys, &out);
        if let Some(target) = options.chunking.target(&ctx) {
            pass.calibrate(&ctx, &kernels, &groups, target)?;
            groups = pass.bind(&ctx, &kernels, &queries, &keys, &out);
        }
        ctx.take_error()?;
        Ok(GpuAttend {
            ctx,
            kernels,
            pass,
            sizes,
            queries,
            keys,
            out,
            readback,
            groups,
        })
    }

    /// Keys per streaming dispatch in use.
    pub fn chunk_keys(&self) -> usize {
        self.pass.dispatch.chunk_keys
    }

    /// The query tokens, [batch, n_queries, d].
    pub fn set_queries(&mut self, z: &[f32]) -> Result<()> {
        if z.len() != self.sizes.batch * self.sizes.n_queries * self.sizes.d {
            return Err(input(format!(
                "{} query values, expected {}",
                z.len(),
                self.queries.size() / 4
            )));
        }
        self.ctx
            .queue
            .write_buffer(&self.queries, 0, bytemuck::cast_slice(z));
        Ok(())
    }

    /// The keys (and values), [batch, n_keys, d].
    pub fn set_keys(&mut self, keys: &[f32]) -> Result<()> {
        if keys.len() != self.sizes.batch * self.sizes.n_keys * self.sizes.d {
            return Err(input(format!(
                "{} key values, expected {}",
                keys.len(),
                self.keys.size() / 4
            )));
        }
        self.ctx
            .queue
            .write_buffer(&self.keys, 0, bytemuck::cast_slice(keys));
        Ok(())
    }

    /// Evaluates the layer: per query the attention output V sum_j w_j x_j (SA or USA), or on
    /// the sphere its tangent projection, [batch, n_queries, d].
    pub fn run(&mut self) -> Result<Vec<f32>> {
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("attend"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("attend"),
                timestamp_writes: None,
            });
            self.pass
                .record(&mut pass, &self.kernels, &self.groups, None);
        }
        enc.copy_buffer_to_buffer(&self.out, 0, &self.readback, 0, self.out.size());
        self.ctx.queue.submit([enc.finish()]);
        let bytes = map_and_read(&self.ctx, &self.readback)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }
}
