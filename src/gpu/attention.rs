//! One evaluation of the attention field on the GPU, shared by the dynamics (queries = keys =
//! the state) and by single layers with separate queries and keys. Per head: `queries`
//! (q = beta K_h^T Q_h z), `attention` once per chunk of keys (online softmax, partial states
//! merged exactly), `attention_finish` (V_h, the SA or USA normalisation, c_h, summed over
//! heads); then the perceptron (`mlp_hidden`, `mlp_out`) and, on the sphere,
//! `tangent_project`. A random model redraws its heads on the device (`redraw`) once per
//! step. The buffers it owns are built once; `record` only records.

use std::time::Instant;

use wgpu::util::DeviceExt;

use super::GpuContext;
use super::kernels::{
    Chunk, Dispatch, HeadSlot, Kernels, Params, RedrawSlot, Sizes, StepSlot, aligned, bind_group,
    plan_with_hidden, slot_binding,
};
use super::shaders;
use crate::error::Result;
use crate::model::{Geometry, Mask, Model};

/// How the key range is split into dispatches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Chunking {
    /// `Timed(TARGET_DISPATCH_SECONDS)` on hardware adapters; on software adapters (no
    /// watchdog, costly dispatches) as many keys as llvmpipe's loop-iteration limit allows.
    Auto,
    /// Exactly this many keys per dispatch (tests force the chunked paths with it).
    Fixed(usize),
    /// Measure one chunk, then size the rest so that one dispatch takes about this many
    /// seconds (well under an operating system's GPU watchdog, about 2 s on Windows). On
    /// software adapters the chunk also stays within llvmpipe's loop-iteration limit.
    Timed(f64),
}

/// The default target time of one streaming dispatch.
pub const TARGET_DISPATCH_SECONDS: f64 = 0.05;

impl Chunking {
    /// The dispatch time to calibrate to, if any, on this adapter.
    pub fn target(self, ctx: &GpuContext) -> Option<f64> {
        match self {
            Chunking::Fixed(_) => None,
            Chunking::Timed(t) => Some(t),
            Chunking::Auto => (!ctx.is_software()).then_some(TARGET_DISPATCH_SECONDS),
        }
    }
}

pub(crate) struct AttentionPass {
    pub sizes: Sizes,
    pub dispatch: Dispatch,
    pub params: wgpu::Buffer,
    pub betas: wgpu::Buffer,
    /// K_h^T Q_h and V_h of every head, [H, d, d].
    pub score_matrix: wgpu::Buffer,
    pub value_matrix: wgpu::Buffer,
    /// One `Head` per head (dynamic offsets).
    heads: wgpu::Buffer,
    head_stride: u64,
    head_count: usize,
    /// log Z_i of USA per query position.
    log_normaliser: wgpu::Buffer,
    /// Queries, and the online-softmax state (acc, and (m, l) pairs) of every query.
    pub q: wgpu::Buffer,
    pub acc: wgpu::Buffer,
    pub ml: wgpu::Buffer,
    /// One `Chunk` per dispatch slot (dynamic offsets).
    pub chunks: wgpu::Buffer,
    pub chunk_stride: u64,
    /// The perceptron's A, b, W and hidden values, when there is one.
    mlp: Option<[wgpu::Buffer; 4]>,
    /// The layer being computed (random heads, noise), written once per step.
    pub step: wgpu::Buffer,
    /// Seeds of a random model's redraws.
    redraw: Option<wgpu::Buffer>,
    sphere: bool,
    /// The largest chunk software adapters allow (llvmpipe's loop limit), if any.
    loop_cap: Option<usize>,
}

/// Bind groups of one evaluation: which buffers hold the query tokens, the keys, the output.
pub(crate) struct AttentionGroups {
    queries: wgpu::BindGroup,
    attention: wgpu::BindGroup,
    finish: wgpu::BindGroup,
    project: wgpu::BindGroup,
    mlp: Option<[wgpu::BindGroup; 2]>,
}

impl AttentionPass {
    pub fn new(
        ctx: &GpuContext,
        kernels: &Kernels,
        model: &Model,
        sizes: Sizes,
        chunking: Chunking,
        max_groups: Option<u32>,
    ) -> Result<Self> {
        model.validate(crate::model::Shape::new(
            sizes.batch,
            sizes.n_queries,
            sizes.d,
        )?)?;
        if model.mask == Mask::Causal && sizes.n_queries != sizes.n_keys {
            return Err(crate::error::input(
                "the causal mask needs the queries to be the keys (self-attention)",
            ));
        }
        let loop_cap = ctx.is_software().then(|| {
            kernels
                .spec
                .keys_within_loop_budget(shaders::SOFTWARE_LOOP_BUDGET)
        });
        let first_chunk = match chunking {
            Chunking::Fixed(k) => k,
            Chunking::Timed(_) | Chunking::Auto => loop_cap.unwrap_or(shaders::HARDWARE_CHUNK_KEYS),
        };
        let hidden = model.mlp.as_ref().map_or(0, |m| m.hidden);
        let dispatch = plan_with_hidden(&ctx.limits, sizes, hidden, first_chunk, max_groups)?;
        let device = &ctx.device;
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let init = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4),
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let d = sizes.d;
        let params = Params {
            n_queries: sizes.n_queries as u32,
            n_keys: sizes.n_keys as u32,
            batch: sizes.batch as u32,
            flags: super::kernels::flags(model, d),
            token_groups_x: dispatch.tokens.0,
            element_groups_x: dispatch.elements.0,
            query_groups_x: dispatch.queries.0,
            alibi_slope: model.alibi_slope(sizes.n_keys) as f32,
            mlp_hidden: hidden as u32,
            hidden_groups_x: dispatch.hidden.0,
            pad: [0; 2],
        };
        // Every head's matrices, stacked; a random model overwrites them at every step.
        let heads = model.layer_heads(d, 0);
        let scores: Vec<f64> = heads.iter().flat_map(|w| w.score_matrix()).collect();
        let values: Vec<f64> = heads.iter().flat_map(|w| w.v.clone()).collect();
        let align = ctx.limits.min_uniform_buffer_offset_alignment;
        let head_stride = aligned(std::mem::size_of::<HeadSlot>(), align);
        let head_slots: Vec<u8> = (0..heads.len())
            .flat_map(|h| {
                let slot = HeadSlot {
                    index: h as u32,
                    accumulate: (h > 0) as u32,
                    weight: model.head_weight() as f32,
                    pad: 0,
                };
                let mut bytes = bytemuck::bytes_of(&slot).to_vec();
                bytes.resize(head_stride as usize, 0);
                bytes
            })
            .collect();
        let log_norm: Vec<f32> = (0..sizes.n_queries)
            .map(|i| model.usa_log_normaliser(i, sizes.n_keys) as f32)
            .collect();
        let queries_bytes = 4 * (sizes.batch * sizes.n_queries * d) as u64;
        let tokens = (sizes.batch * sizes.n_queries) as u64;
        let mlp = model.mlp.as_ref().map(|m| {
            [
                init("mlp_a", bytemuck::cast_slice(&f32s(&m.a)), storage),
                init("mlp_b", bytemuck::cast_slice(&f32s(&m.b)), storage),
                init("mlp_w", bytemuck::cast_slice(&f32s(&m.w)), storage),
                buffer("mlp_hidden", 4 * tokens * m.hidden as u64, storage),
            ]
        });
        let redraw = model.random.map(|r| {
            let elements = (2 * r.heads * d * d) as u64;
            let groups = elements.div_ceil(u64::from(shaders::WORKGROUP));
            let slot = RedrawSlot {
                seed_lo: r.seed as u32,
                seed_hi: (r.seed >> 32) as u32,
                heads: r.heads as u32,
                scale: (r.scale / (d as f64).sqrt()) as f32,
                groups_x: groups.min(u64::from(ctx.limits.max_compute_workgroups_per_dimension))
                    as u32,
                pad: [0; 3],
            };
            init(
                "redraw",
                bytemuck::bytes_of(&slot),
                wgpu::BufferUsages::UNIFORM,
            )
        });
        let matrix_usage = storage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let mut pass = AttentionPass {
            sizes,
            dispatch,
            params: init(
                "params",
                bytemuck::bytes_of(&params),
                wgpu::BufferUsages::UNIFORM,
            ),
            betas: init("betas", bytemuck::cast_slice(&f32s(&model.betas)), storage),
            score_matrix: init(
                "score_matrix",
                bytemuck::cast_slice(&f32s(&scores)),
                matrix_usage,
            ),
            value_matrix: init(
                "value_matrix",
                bytemuck::cast_slice(&f32s(&values)),
                matrix_usage,
            ),
            heads: init("heads", &head_slots, wgpu::BufferUsages::UNIFORM),
            head_stride,
            head_count: heads.len(),
            log_normaliser: init("log_normaliser", bytemuck::cast_slice(&log_norm), storage),
            q: buffer("queries", queries_bytes, storage | copy),
            acc: buffer("softmax_acc", queries_bytes, storage | copy),
            ml: buffer("softmax_max_sum", 8 * tokens, storage | copy),
            chunks: buffer("chunks", 4, wgpu::BufferUsages::UNIFORM),
            chunk_stride: aligned(std::mem::size_of::<Chunk>(), align),
            mlp,
            step: init(
                "step",
                bytemuck::bytes_of(&StepSlot {
                    layer: 0,
                    pad: [0; 3],
                }),
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            redraw,
            sphere: model.geometry == Geometry::Sphere,
            loop_cap,
        };
        pass.set_chunk_keys(ctx, dispatch.chunk_keys);
        Ok(pass)
    }

    /// Splits the keys into chunks of `keys` (capped by the software loop limit) and
    /// uploads one `Chunk` per dispatch.
    pub fn set_chunk_keys(&mut self, ctx: &GpuContext, keys: usize) {
        let n = self.sizes.n_keys.max(1);
        let keys = keys.min(self.loop_cap.unwrap_or(usize::MAX)).clamp(1, n);
        self.dispatch.chunk_keys = keys;
        let slots: Vec<u8> = (0..self.dispatch.chunks(n))
            .flat_map(|c| {
                let start = c * keys;
                let chunk = Chunk {
                    key_start: start as u32,
                    key_count: keys.min(n - start) as u32,
                    first: (c == 0) as u32,
                    pad: 0,
                };
                let mut slot = bytemuck::bytes_of(&chunk).to_vec();
                slot.resize(self.chunk_stride as usize, 0);
                slot
            })
            .collect();
        self.chunks = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("chunks"),
                contents: &slots,
                usage: wgpu::BufferUsages::UNIFORM,
            });
    }

    /// Bind groups reading query tokens from `z` and keys from `keys`, writing `out`.
    /// (Bind groups refer to the chunk buffer: make them after `set_chunk_keys`.)
    pub fn bind(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        z: &wgpu::Buffer,
        keys: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> AttentionGroups {
        let device = &ctx.device;
        AttentionGroups {
            queries: bind_group(
                device,
                "queries",
                &kernels.queries_layout,
                &[
                    self.params.as_entire_binding(),
                    slot_binding::<HeadSlot>(&self.heads),
                    self.betas.as_entire_binding(),
                    self.score_matrix.as_entire_binding(),
                    z.as_entire_binding(),
                    self.q.as_entire_binding(),
                ],
            ),
            attention: bind_group(
                device,
                "attention",
                &kernels.attention_layout,
                &[
                    self.params.as_entire_binding(),
                    slot_binding::<Chunk>(&self.chunks),
                    self.q.as_entire_binding(),
                    keys.as_entire_binding(),
                    self.acc.as_entire_binding(),
                    self.ml.as_entire_binding(),
                ],
            ),
            finish: bind_group(
                device,
                "attention_finish",
                &kernels.finish_layout,
                &[
                    self.params.as_entire_binding(),
                    slot_binding::<HeadSlot>(&self.heads),
                    self.value_matrix.as_entire_binding(),
                    self.acc.as_entire_binding(),
                    self.ml.as_entire_binding(),
                    self.log_normaliser.as_entire_binding(),
                    out.as_entire_binding(),
                ],
            ),
            project: bind_group(
                device,
                "tangent_project",
                &kernels.project_layout,
                &[
                    self.params.as_entire_binding(),
                    z.as_entire_binding(),
                    out.as_entire_binding(),
                ],
            ),
            mlp: self.mlp.as_ref().map(|[a, b, w, hidden]| {
                [
                    bind_group(
                        device,
                        "mlp_hidden",
                        &kernels.mlp_hidden_layout,
                        &[
                            self.params.as_entire_binding(),
                            a.as_entire_binding(),
                            b.as_entire_binding(),
                            z.as_entire_binding(),
                            hidden.as_entire_binding(),
                        ],
                    ),
                    bind_group(
                        device,
                        "mlp_out",
                        &kernels.mlp_out_layout,
                        &[
                            self.params.as_entire_binding(),
                            w.as_entire_binding(),
                            hidden.as_entire_binding(),
                            out.as_entire_binding(),
                        ],
                    ),
                ]
            }),
        }
    }

    /// The bind group of the redraw kernel, for a random model.
    pub fn redraw_group(&self, ctx: &GpuContext, kernels: &Kernels) -> Option<wgpu::BindGroup> {
        self.redraw.as_ref().map(|r| {
            bind_group(
                &ctx.device,
                "redraw",
                &kernels.redraw_layout,
                &[
                    r.as_entire_binding(),
                    self.step.as_entire_binding(),
                    self.score_matrix.as_entire_binding(),
                    self.value_matrix.as_entire_binding(),
                ],
            )
        })
    }

    /// Sets the layer index of the next step (queued before the next submission) and, for a
    /// random model, records the redraw of its heads for that layer.
    pub fn begin_step(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        redraw: Option<&wgpu::BindGroup>,
        encoder: &mut wgpu::CommandEncoder,
        layer: u32,
    ) {
        ctx.queue.write_buffer(
            &self.step,
            0,
            bytemuck::bytes_of(&StepSlot { layer, pad: [0; 3] }),
        );
        if let (Some(group), Some(r)) = (redraw, self.redraw.as_ref()) {
            let _ = r;
            let elements = 2 * self.head_count * self.sizes.d * self.sizes.d;
            let groups = elements.div_ceil(shaders::WORKGROUP as usize) as u32;
            let x = groups.min(ctx.limits.max_compute_workgroups_per_dimension);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("redraw"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&kernels.redraw);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(x, groups.div_ceil(x), 1);
        }
    }

    /// Records one evaluation into a compute pass; `chunks` limits the key chunks (None:
    /// all; calibration runs one).
    pub fn record(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        kernels: &Kernels,
        groups: &AttentionGroups,
        chunks: Option<usize>,
    ) {
        let (ex, ey) = self.dispatch.elements;
        let (tx, ty) = self.dispatch.tokens;
        let (qx, qy, qz) = self.dispatch.queries;
        let all = self.dispatch.chunks(self.sizes.n_keys);
        for h in 0..self.head_count {
            let head = (h as u64 * self.head_stride) as u32;
            pass.set_pipeline(&kernels.queries);
            pass.set_bind_group(0, &groups.queries, &[head]);
            pass.dispatch_workgroups(ex, ey, 1);
            pass.set_pipeline(&kernels.attention);
            for c in 0..chunks.unwrap_or(all).min(all) {
                pass.set_bind_group(
                    0,
                    &groups.attention,
                    &[(c as u64 * self.chunk_stride) as u32],
                );
                pass.dispatch_workgroups(qx, qy, qz);
            }
            pass.set_pipeline(&kernels.attention_finish);
            pass.set_bind_group(0, &groups.finish, &[head]);
            pass.dispatch_workgroups(ex, ey, 1);
        }
        if let Some([hidden, out]) = &groups.mlp {
            let (hx, hy) = self.dispatch.hidden;
            pass.set_pipeline(&kernels.mlp_hidden);
            pass.set_bind_group(0, hidden, &[]);
            pass.dispatch_workgroups(hx, hy, 1);
            pass.set_pipeline(&kernels.mlp_out);
            pass.set_bind_group(0, out, &[]);
            pass.dispatch_workgroups(ex, ey, 1);
        }
        if self.sphere {
            pass.set_pipeline(&kernels.tangent_project);
            pass.set_bind_group(0, &groups.project, &[]);
            pass.dispatch_workgroups(tx, ty, 1);
        }
    }

    /// Times one chunk of the current size (after a warm-up) and sizes the chunks so that a
    /// dispatch takes about `target` seconds. Returns the seconds one chunk took. The bind
    /// groups must be made again afterwards (the chunk buffer is new).
    pub fn calibrate(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        groups: &AttentionGroups,
        target: f64,
    ) -> Result<f64> {
        let run_one = |pass_: &Self| -> Result<f64> {
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("calibrate"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("calibrate"),
                    timestamp_writes: None,
                });
                pass_.record(&mut pass, kernels, groups, Some(1));
            }
            ctx.wait()?;
            let t = Instant::now();
            ctx.queue.submit([enc.finish()]);
            ctx.wait()?;
            Ok(t.elapsed().as_secs_f64())
        };
        run_one(self)?;
        // One chunk per head was timed.
        let seconds = (run_one(self)? / self.head_count as f64).max(1e-6);
        let keys = self.dispatch.chunk_keys as f64 * target / seconds;
        self.set_chunk_keys(ctx, keys.max(64.0) as usize);
        Ok(seconds)
    }
}
