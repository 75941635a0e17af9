//! The GPU backend: wgpu compute with WGSL kernels in `shaders/`. The state, the stage input
//! and the Runge-Kutta stage buffers stay on the device for the whole run; pipelines, buffers
//! and bind groups are built once, and a step records one command buffer that ping-pongs
//! between them. The state is read back only when saving.
//!
//! One evaluation of the attention field is three kernels: `queries` (q = beta K^T Q x),
//! `attention` (online softmax over one chunk of keys per dispatch, partial states merged
//! exactly between chunks) and `attention_finish` (V, the USA scale, the tangent projection).

pub mod attend;
pub mod attention;
pub mod context;
pub mod kernels;
pub mod shaders;

use std::sync::Arc;

pub use attention::{Chunking, TARGET_DISPATCH_SECONDS};
pub use context::GpuContext;
pub use kernels::{Dispatch, MAX_D, Sizes, plan};
use shaders::Specialisation;

use crate::error::{Error, Result};
use crate::integrate::{Backend, NoiseStep, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Model, Shape};
use attention::{AttentionGroups, AttentionPass};
use kernels::{Chunk, Combine, Kernels, PairStatsRow, aligned, bind_group, slot_binding};

/// Most Runge-Kutta stages a combination reads (RK4).
const MAX_STAGES: usize = 4;
/// Distinct coefficient sets kept on the device (a fixed-step run uses stages + 1).
const COEFF_SLOTS: usize = 16;

/// Options of the GPU backend that a user rarely sets.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// How the key range is split into dispatches.
    pub chunking: Chunking,
    /// Cap on workgroups per grid dimension below the adapter's (tests force the split of
    /// queries over two dimensions at small n with it).
    pub max_groups: Option<u32>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            chunking: Chunking::Auto,
            max_groups: None,
        }
    }
}

/// GPU-side timing of field evaluations from timestamp queries.
struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
}

pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    shape: Shape,
    kernels: Kernels,
    attention: AttentionPass,
    state: wgpu::Buffer,
    stage: wgpu::Buffer,
    k: Vec<wgpu::Buffer>,
    status: wgpu::Buffer,
    status_readback: wgpu::Buffer,
    coeffs: wgpu::Buffer,
    coeff_stride: u64,
    coeff_slots: Vec<Combine>,
    stats: wgpu::Buffer,
    readback: Option<wgpu::Buffer>,
    stats_readback: Option<wgpu::Buffer>,
    /// field_groups[0][s] reads the state, [1][s] the stage input; both write k_s.
    field_groups: [Vec<AttentionGroups>; 2],
    combine_group: Option<wgpu::BindGroup>,
    /// The redraw of a random model's heads.
    redraw_group: Option<wgpu::BindGroup>,
    sphere: bool,
    stats_group: wgpu::BindGroup,
    encoder: Option<wgpu::CommandEncoder>,
    timer: Option<Timer>,
    /// Seconds the last chunk-size calibration measured for one chunk, if it ran.
    calibrated: Option<f64>,
}

impl GpuBackend {
    /// Uploads the model and the initial state. Everything the run needs on the device is
    /// created here, once.
    pub fn new(ctx: Arc<GpuContext>, model: &Model, shape: Shape, x0: &[f64]) -> Result<Self> {
        Self::with_options(ctx, model, shape, x0, GpuOptions::default())
    }

    pub fn with_options(
        ctx: Arc<GpuContext>,
        model: &Model,
        shape: Shape,
        x0: &[f64],
        options: GpuOptions,
    ) -> Result<Self> {
        model.validate(shape)?;
        assert_eq!(x0.len(), shape.len(), "initial state has the wrong length");
        let sizes = Sizes::square(shape.batch, shape.n, shape.d);
        // Sizes first: refuse what does not fit before compiling anything.
        plan(&ctx.limits, sizes, 1, options.max_groups)?;
        let spec =
            Specialisation::for_dimension(shape.d, ctx.limits.max_compute_workgroup_storage_size);
        let kernels = Kernels::new(&ctx.device, spec)?;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut attention = AttentionPass::new(
            &ctx,
            &kernels,
            model,
            sizes,
            options.chunking,
            options.max_groups,
        )?;
        let device = &ctx.device;
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let state = wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("state"),
                contents: bytemuck::cast_slice(&x0.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
                usage: storage | copy,
            },
        );
        let bytes = 4 * shape.len() as u64;
        let stage = buffer("stage", bytes, storage | copy);
        let status = buffer("status", 4, storage | copy);
        let status_readback = buffer(
            "status_readback",
            4,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let coeff_stride = aligned(
            std::mem::size_of::<Combine>(),
            ctx.limits.min_uniform_buffer_offset_alignment,
        );
        let coeffs = buffer(
            "rk_coefficients",
            coeff_stride * COEFF_SLOTS as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let stats = buffer(
            "pair_stats",
            (std::mem::size_of::<PairStatsRow>() * shape.tokens()) as u64,
            storage | copy,
        );
        let mut calibrated = None;
        if let Some(target) = options.chunking.target(&ctx) {
            // Measure one chunk against every query, then size the chunks to the target
            // (on software adapters never beyond the loop-iteration limit).
            let probe = buffer("calibration", bytes, storage);
            let groups = attention.bind(&ctx, &kernels, &state, &state, &probe);
            calibrated = Some(attention.calibrate(&ctx, &kernels, &groups, target)?);
        }
        let redraw_group = attention.redraw_group(&ctx, &kernels);
        let stats_group = bind_group(
            device,
            "pair_stats",
            &kernels.stats_layout,
            &[
                attention.params.as_entire_binding(),
                slot_binding::<Chunk>(&attention.chunks),
                attention.betas.as_entire_binding(),
                state.as_entire_binding(),
                stats.as_entire_binding(),
            ],
        );
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("setting up the buffers: {e}")));
        }
        ctx.take_error()?;
        Ok(GpuBackend {
            ctx,
            shape,
            kernels,
            attention,
            state,
            stage,
            k: Vec::new(),
            status,
            status_readback,
            coeffs,
            coeff_stride,
            coeff_slots: Vec::new(),
            stats,
            readback: None,
            stats_readback: None,
            field_groups: [Vec::new(), Vec::new()],
            combine_group: None,
            redraw_group,
            sphere: model.geometry == crate::model::Geometry::Sphere,
            stats_group,
            encoder: None,
            timer: None,
            calibrated,
        })
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The kernel specialisation (d, workgroup size, keys per workgroup-memory tile).
    pub fn specialisation(&self) -> Specialisation {
        self.kernels.spec
    }

    /// The dispatch layout, including the keys per streaming dispatch.
    pub fn dispatch(&self) -> Dispatch {
        self.attention.dispatch
    }

    /// Seconds one chunk took when the chunk size was calibrated (hardware adapters).
    pub fn calibration_seconds(&self) -> Option<f64> {
        self.calibrated
    }

    /// Bytes of device memory this backend allocated (all O(batch n d)).
    pub fn device_bytes(&self) -> u64 {
        let a = &self.attention;
        [&self.state, &self.stage, &a.q, &a.acc, &a.ml, &self.stats]
            .iter()
            .map(|b| b.size())
            .chain(self.k.iter().map(|b| b.size()))
            .sum()
    }

    /// Records GPU timestamps around every field evaluation from now on, when the adapter
    /// supports timestamp queries. Returns whether it does.
    pub fn enable_timing(&mut self) -> bool {
        if !self.ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return false;
        }
        let device = &self.ctx.device;
        self.timer = Some(Timer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("field timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps_readback"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        });
        true
    }

    /// GPU seconds of the last field evaluation (waits for it), with timing enabled.
    pub fn last_field_seconds(&mut self) -> Result<Option<f64>> {
        let Some(timer) = &self.timer else {
            return Ok(None);
        };
        let (queries, resolve, readback) = (
            timer.queries.clone(),
            timer.resolve.clone(),
            timer.readback.clone(),
        );
        let enc = self.encoder();
        enc.resolve_query_set(&queries, 0..2, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &readback, 0, 16);
        self.flush()?;
        let bytes = map_and_read(&self.ctx, &readback)?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        let period = f64::from(self.ctx.queue.get_timestamp_period());
        Ok(Some(
            ticks[1].saturating_sub(ticks[0]) as f64 * period * 1e-9,
        ))
    }

    fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        let device = &self.ctx.device;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("attnflow step"),
            })
        })
    }

    /// Submits the recorded commands.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(enc) = self.encoder.take() {
            self.ctx.queue.submit([enc.finish()]);
        }
        self.ctx.take_error()
    }

    /// The device offset of a coefficient set, uploading it the first time it is seen.
    fn coeff_offset(&mut self, c: Combine) -> Result<u32> {
        if let Some(i) = self.coeff_slots.iter().position(|s| *s == c) {
            return Ok((i as u64 * self.coeff_stride) as u32);
        }
        if self.coeff_slots.len() == COEFF_SLOTS {
            // Recorded commands may still read the old slots: submit them first.
            self.flush()?;
            self.coeff_slots.clear();
        }
        let i = self.coeff_slots.len();
        self.ctx.queue.write_buffer(
            &self.coeffs,
            i as u64 * self.coeff_stride,
            bytemuck::bytes_of(&c),
        );
        self.coeff_slots.push(c);
        Ok((i as u64 * self.coeff_stride) as u32)
    }

    /// Copies a buffer to the host through a MAP_READ buffer kept for reuse.
    fn read_back(&mut self, src: &wgpu::Buffer, stats: bool) -> Result<Vec<u8>> {
        let size = src.size();
        let device = self.ctx.device.clone();
        let slot = if stats {
            &mut self.stats_readback
        } else {
            &mut self.readback
        };
        if slot.as_ref().is_none_or(|b| b.size() < size) {
            *slot = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let readback = slot.clone().expect("just made");
        self.encoder()
            .copy_buffer_to_buffer(src, 0, &readback, 0, size);
        self.flush()?;
        let mut bytes = map_and_read(&self.ctx, &readback)?;
        bytes.truncate(size as usize);
        Ok(bytes)
    }

    /// The per-head matrices the kernels use now: M_h = K_h^T Q_h and V_h, each [H, d, d]
    /// row-major (for a random model, the draw of the current layer).
    pub fn read_head_matrices(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let (m, v) = (
            self.attention.score_matrix.clone(),
            self.attention.value_matrix.clone(),
        );
        let floats = |b: Vec<u8>| bytemuck::cast_slice::<u8, f32>(&b).to_vec();
        Ok((
            floats(self.read_back(&m, false)?),
            floats(self.read_back(&v, false)?),
        ))
    }

    /// The intermediates of the last field evaluation: queries, softmax accumulators and
    /// (max, sum) pairs, for comparing each kernel with its twin in `reference::stages`.
    pub fn read_intermediates(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let a = &self.attention;
        let (q, acc, ml) = (a.q.clone(), a.acc.clone(), a.ml.clone());
        let floats = |b: Vec<u8>| bytemuck::cast_slice::<u8, f32>(&b).to_vec();
        Ok((
            floats(self.read_back(&q, false)?),
            floats(self.read_back(&acc, false)?),
            floats(self.read_back(&ml, false)?),
        ))
    }
}

/// Maps a MAP_READ buffer, copies its contents out and unmaps it.
fn map_and_read(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|_| Error::Gpu("buffer mapping was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("cannot map a buffer for reading: {e}")))?;
    let bytes = {
        let view = buffer
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("cannot read a mapped buffer: {e}")))?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(bytes)
}

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }

    fn shape(&self) -> Shape {
        self.shape
    }

    fn prepare(&mut self, stages: usize) -> Result<()> {
        if stages == 0 || stages > MAX_STAGES {
            return Err(Error::Input(format!(
                "the GPU backend combines 1 to {MAX_STAGES} stages, not {stages}"
            )));
        }
        let device = &self.ctx.device;
        let bytes = 4 * self.shape.len() as u64;
        self.k = (0..stages)
            .map(|s| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("k{s}")),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                })
            })
            .collect();
        for (input, groups) in [&self.state, &self.stage]
            .into_iter()
            .zip(self.field_groups.iter_mut())
        {
            *groups = self
                .k
                .iter()
                .map(|k| {
                    self.attention
                        .bind(&self.ctx, &self.kernels, input, input, k)
                })
                .collect();
        }
        let k = |s: usize| self.k[s.min(stages - 1)].as_entire_binding();
        self.combine_group = Some(bind_group(
            device,
            "rk_combine",
            &self.kernels.combine_layout,
            &[
                slot_binding::<Combine>(&self.coeffs),
                self.attention.step.as_entire_binding(),
                self.state.as_entire_binding(),
                self.stage.as_entire_binding(),
                k(0),
                k(1),
                k(2),
                k(3),
                self.status.as_entire_binding(),
            ],
        ));
        self.ctx.take_error()
    }

    fn field(&mut self, input: Slot, stage: usize) -> Result<()> {
        let timer = self.timer.as_ref().map(|t| t.queries.clone());
        let enc = self.encoder.get_or_insert_with(|| {
            self.ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("attnflow step"),
                })
        });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("attention field"),
            timestamp_writes: timer.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
        });
        let groups = &self.field_groups[(input == Slot::Stage) as usize][stage];
        self.attention
            .record(&mut pass, &self.kernels, groups, None);
        Ok(())
    }

    fn combine(
        &mut self,
        dst: Slot,
        terms: &[(usize, f64)],
        renormalise: bool,
        noise: Option<NoiseStep>,
    ) -> Result<()> {
        let (tx, _) = self.attention.dispatch.tokens;
        let mut c = Combine {
            coeffs: [0.0; 4],
            terms: 0,
            to_state: (dst == Slot::State) as u32,
            renormalise: renormalise as u32,
            tokens: self.shape.tokens() as u32,
            groups_x: tx,
            noise_amplitude: noise.map_or(0.0, |n| n.amplitude as f32),
            noise_common: noise.is_some_and(|n| n.common) as u32,
            seed_lo: noise.map_or(0, |n| n.seed as u32),
            seed_hi: noise.map_or(0, |n| (n.seed >> 32) as u32),
            n: self.shape.n as u32,
            sphere: self.sphere as u32,
            pad: 0,
        };
        for &(s, coef) in terms {
            if s >= self.k.len() {
                return Err(Error::Input(format!("stage {s} does not exist")));
            }
            c.coeffs[s] = coef as f32;
            c.terms = c.terms.max(s as u32 + 1);
        }
        let offset = self.coeff_offset(c)?;
        let group = self.combine_group.clone().expect("prepare() first");
        let pipeline = self.kernels.rk_combine.clone();
        let (gx, gy) = self.attention.dispatch.tokens;
        {
            let mut pass = self
                .encoder()
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("rk_combine"),
                    timestamp_writes: None,
                });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[offset]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        if dst == Slot::State {
            // One submission per step.
            self.flush()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.ctx.wait()
    }

    fn begin_step(&mut self, layer: u32) -> Result<()> {
        let redraw = self.redraw_group.clone();
        let ctx = self.ctx.clone();
        let enc = self.encoder.get_or_insert_with(|| {
            ctx.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("attnflow step"),
                })
        });
        self.attention
            .begin_step(&ctx, &self.kernels, redraw.as_ref(), enc, layer);
        Ok(())
    }

    fn as_gpu(&mut self) -> Option<&mut GpuBackend> {
        Some(self)
    }

    fn read_state(&mut self) -> Result<Tokens> {
        let state = self.state.clone();
        let bytes = self.read_back(&state, false)?;
        Ok(Tokens::F32(bytemuck::cast_slice(&bytes).to_vec()))
    }

    fn read_field(&mut self, stage: usize) -> Result<Tokens> {
        let k = self.k[stage].clone();
        let bytes = self.read_back(&k, false)?;
        Ok(Tokens::F32(bytemuck::cast_slice(&bytes).to_vec()))
    }

    fn pair_stats(&mut self) -> Result<Vec<PairStats>> {
        let pipeline = self.kernels.pair_stats.clone();
        let group = self.stats_group.clone();
        let (gx, gy, gz) = self.attention.dispatch.queries;
        let chunks = self.attention.dispatch.chunks(self.shape.n);
        let stride = self.attention.chunk_stride;
        {
            let mut pass = self
                .encoder()
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("pair_stats"),
                    timestamp_writes: None,
                });
            pass.set_pipeline(&pipeline);
            for c in 0..chunks {
                pass.set_bind_group(0, &group, &[(c as u64 * stride) as u32]);
                pass.dispatch_workgroups(gx, gy, gz);
            }
        }
        let stats = self.stats.clone();
        let bytes = self.read_back(&stats, true)?;
        let rows: &[PairStatsRow] = bytemuck::cast_slice(&bytes);
        Ok(rows
            .iter()
            .map(|r| PairStats {
                lse_max: r.lse_max.into(),
                lse_sum: r.lse_sum.into(),
                min_cos: r.min_cos.into(),
                sum_cos: r.sum_cos.into(),
                sum_dot: r.sum_dot.into(),
            })
            .collect())
    }

    fn non_finite(&mut self) -> Result<bool> {
        let (status, readback) = (self.status.clone(), self.status_readback.clone());
        let enc = self.encoder();
        enc.copy_buffer_to_buffer(&status, 0, &readback, 0, 4);
        enc.clear_buffer(&status, 0, None);
        self.flush()?;
        let bytes = map_and_read(&self.ctx, &readback)?;
        Ok(bytemuck::cast_slice::<u8, u32>(&bytes)[0] != 0)
    }
}
