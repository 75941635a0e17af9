//! One attention layer on the GPU with separate queries and keys: `batch` systems in which
//! `n_queries` query tokens attend to `n_keys` keys (contextual flow maps, `attend`, and the
//! large-n accuracy checks that evaluate a sample of queries against a million keys).

use std::sync::Arc;

use super::attention::AttentionPass;
use super::kernels::{Kernels, Specialisation, check_sizes};
use super::record::{Op, Recorder};
use super::{GpuContext, GpuOptions, map_and_read};
use crate::backend::LayerShape;
use crate::error::{Result, input};
use crate::model::Model;

pub struct GpuAttend {
    ctx: Arc<GpuContext>,
    kernels: Kernels,
    pass: AttentionPass,
    sizes: LayerShape,
    queries: wgpu::Buffer,
    keys: wgpu::Buffer,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    ops: Vec<Op>,
    recorder: Recorder,
}

impl GpuAttend {
    /// Buffers and kernels for `sizes`; queries and keys start at zero (set them).
    pub fn new(
        ctx: Arc<GpuContext>,
        model: &Model,
        sizes: LayerShape,
        options: GpuOptions,
    ) -> Result<Self> {
        if sizes.m == 0 || sizes.n == 0 {
            return Err(input("attention needs at least one query and one key"));
        }
        check_sizes(&ctx.limits, sizes, 1, 1, options.max_groups)?;
        let spec = Specialisation::new(&ctx, model, sizes.d, &options);
        let kernels = Kernels::new(&ctx, spec)?;
        let mut pass = AttentionPass::new(&ctx, &kernels, model, sizes, options.pass())?;
        let buffer = |label: &str, floats: usize, usage: wgpu::BufferUsages| {
            ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 4 * floats as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let io = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let query_floats = sizes.batch * sizes.m * sizes.d;
        let queries = buffer("query tokens", query_floats, io);
        let keys = buffer("keys", sizes.batch * sizes.n * sizes.d, io);
        let out = buffer("attention output", query_floats, io);
        let readback = buffer(
            "readback",
            query_floats,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        if let Some(target) = options.chunking.target(&ctx) {
            pass.calibrate(&ctx, &kernels, &keys, options.pass(), target)?;
        }
        let groups = pass.bind(&ctx, &kernels, &queries, &keys, &out);
        let ops = pass.ops(&kernels, &groups);
        let recorder = Recorder::new(pass.plan.dispatches_per_submission, pass.plan.in_flight);
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
            ops,
            recorder,
        })
    }

    /// Keys per split per streaming dispatch in use.
    pub fn chunk_keys(&self) -> usize {
        self.pass.plan.chunk_keys
    }

    /// How an evaluation is cut into dispatches.
    pub fn plan(&self) -> super::Plan {
        self.pass.plan
    }

    /// The kernel specialisation in use.
    pub fn specialisation(&self) -> Specialisation {
        self.kernels.spec
    }

    /// The query tokens, [batch, n_queries, d].
    pub fn set_queries(&mut self, z: &[f32]) -> Result<()> {
        if z.len() != self.sizes.batch * self.sizes.m * self.sizes.d {
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
        if keys.len() != self.sizes.batch * self.sizes.n * self.sizes.d {
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
        self.recorder.record(&self.ctx, &self.ops, None)?;
        self.recorder.encoder(&self.ctx).copy_buffer_to_buffer(
            &self.out,
            0,
            &self.readback,
            0,
            self.out.size(),
        );
        self.recorder.submit(&self.ctx)?;
        let bytes = map_and_read(&self.ctx, &self.readback)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }
}
