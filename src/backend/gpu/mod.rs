//! The GPU backend: wgpu compute with WGSL kernels in `shaders/`. The state, the stage input
//! and the Runge-Kutta stage buffers stay on the device for the whole run; pipelines, buffers
//! and bind groups are built once, and a step records one command buffer that ping-pongs
//! between them. The state is read back only when saving.
//!
//! One evaluation of the attention field is four kernels per head: `queries` (q = beta
//! log2(e) K^T Q x), `attention` (online softmax of every query over key splits, in the
//! planned chunks of keys; generated per d, see `codegen`), `attention_merge` (the splits
//! merged exactly, SA or USA normalisation) and `attention_finish` (V, heads summed); then the
//! perceptron and the layer's finish (the tangent projection, or the output normalisation of
//! `peri-ln` and `ngpt`); the Pre-LN family first writes normalise(x) (`normalise`) for the
//! block to read. How the work is cut into dispatches and
//! submissions is planned (`plan`) from the adapter's measured speed, within budgets that
//! keep every dispatch far from an OS watchdog.

pub mod adaptive;
pub mod attend;
pub mod attention;
pub mod capture;
pub mod catalogue;
pub mod codegen;
pub mod context;
pub mod kernels;
pub mod plan;
pub mod profiles;
pub mod record;
pub mod reflect;
pub mod shaders;

use std::sync::Arc;

pub use crate::backend::LayerShape;
pub use attention::{Calibration, Chunking, TARGET_DISPATCH_SECONDS};
pub use context::{Counts, GpuContext};
pub use kernels::{Grids, MAX_D, Specialisation, check_sizes};
pub use plan::Plan;

use crate::error::{Error, Result};
use crate::integrate::{Backend, NoiseStep, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Model, Shape};
use attention::{AttentionGroups, AttentionPass, PassOptions};
use kernels::{Combine, Kernels, PairStatsRow, aligned, bind_group, slot_binding};
use record::{Op, Recorder, Stamps};

/// Most Runge-Kutta stages a fixed-step combination reads (RK4); adaptive pairs have up to
/// `adaptive::MAX_ADAPTIVE_STAGES`.
const MAX_STAGES: usize = 4;
/// Distinct coefficient sets kept on the device (a fixed-step run uses stages + 1).
const COEFF_SLOTS: usize = 16;

/// Options of the GPU backend that a user rarely sets.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// How the work of an evaluation is cut into dispatches.
    pub chunking: Chunking,
    /// Cap on workgroups per grid dimension below the adapter's (tests force the split of
    /// queries over two dimensions at small n with it).
    pub max_groups: Option<u32>,
    /// Forced number of key splits (tests; None: planned from n).
    pub splits: Option<usize>,
    /// Let the attention kernel use subgroup operations where the adapter has them (false
    /// forces the workgroup-memory reductions; tests run both).
    pub subgroups: bool,
    /// Kernels with wgpu's runtime checks (None: ATTNFLOW_CHECKED_SHADERS=1).
    pub checked: Option<bool>,
    /// The kernel shapes (None: from the adapter; tests force the hardware kernels on
    /// llvmpipe with it).
    pub profile: Option<codegen::Profile>,
    /// The whole target the kernels are shaped for (None: this adapter's limits and
    /// subgroups); tests force any adapter profile's kernels with
    /// `Some(profile.target())`, which overrides `subgroups` and `profile`.
    pub target: Option<profiles::Target>,
    /// Most bytes of per-layer weights (f32, all layers) held resident on the device; more
    /// are written from the host at each change of layer (tests force that with 0).
    pub resident_layer_bytes: u64,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            chunking: Chunking::Auto,
            max_groups: None,
            splits: None,
            subgroups: true,
            checked: None,
            profile: None,
            target: None,
            resident_layer_bytes: attention::RESIDENT_LAYER_BYTES,
        }
    }
}

impl GpuOptions {
    pub(crate) fn pass(&self) -> PassOptions {
        PassOptions {
            chunking: self.chunking,
            max_groups: self.max_groups,
            splits: self.splits,
            resident_layer_bytes: self.resident_layer_bytes,
        }
    }
}

/// GPU timestamps at the start and end of a sequence of passes.
pub(crate) struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl Timer {
    pub fn new(ctx: &GpuContext) -> Self {
        Timer {
            queries: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: ctx.buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: ctx.buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps_readback"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        }
    }

    pub fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    fn stamps(&self) -> Stamps {
        Stamps {
            queries: self.queries.clone(),
        }
    }

    /// Records the copy of the two timestamps to the readback buffer.
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        enc.resolve_query_set(&self.queries, 0..2, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, 16);
    }

    /// Seconds between the two timestamps (after the work that resolved them is done).
    pub fn read(&self, ctx: &GpuContext) -> Result<Option<f64>> {
        let bytes = map_and_read(ctx, &self.readback)?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        let period = f64::from(ctx.queue.get_timestamp_period());
        if ticks[1] <= ticks[0] {
            return Ok(None);
        }
        Ok(Some((ticks[1] - ticks[0]) as f64 * period * 1e-9))
    }
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
    /// field_ops[0][s] evaluates the field at the state, [1][s] at the stage input; both
    /// write k_s.
    field_ops: [Vec<Vec<Op>>; 2],
    combine_group: Option<wgpu::BindGroup>,
    /// The redraw of a random model's heads.
    redraw_group: Option<wgpu::BindGroup>,
    /// The tokens the Pre-LN family's block sees, normalise(x) (None for the other maps).
    normalised: Option<wgpu::Buffer>,
    sphere: bool,
    stats_ops: Vec<Op>,
    recorder: Recorder,
    timer: Option<Timer>,
    /// The first layer in which rk_combine saw a NaN or an infinity, once read.
    first_bad: Option<u32>,
    /// Adaptive stepping's pipelines and buffers (`prepare_adaptive`).
    adaptive: Option<adaptive::Adaptive>,
    /// Workgroups per grid dimension (the adapter's, or `GpuOptions::max_groups`).
    max_groups: u32,
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
        let sizes = LayerShape::square(shape.batch, shape.n, shape.d);
        // Sizes first: refuse what does not fit before compiling anything.
        check_sizes(&ctx.limits, sizes, 1, 1, options.max_groups)?;
        let spec = Specialisation::new(&ctx, model, shape.d, &options);
        let kernels = Kernels::new(&ctx, spec)?;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut attention = AttentionPass::new(&ctx, &kernels, model, sizes, options.pass())?;
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let state = ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("state"),
            contents: bytemuck::cast_slice(&x0.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
            usage: storage | copy,
        });
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
        if let Some(target) = options.chunking.target(&ctx) {
            // Measure the kernel on the tokens, then plan the dispatches to the target.
            attention.calibrate(&ctx, &kernels, &state, options.pass(), target)?;
        }
        let stats = buffer(
            "pair_stats",
            (std::mem::size_of::<PairStatsRow>() * shape.tokens() * attention.stats.plan.splits)
                as u64,
            storage | copy,
        );
        let redraw_group = attention.redraw_group(&ctx, &kernels);
        let normalised = model
            .layer
            .normalises_input()
            .then(|| buffer("normalised", bytes, storage | copy));
        // The Pre-LN family's observables are those of the normalised tokens (docs/model.md §3).
        let (stats_group, mut stats_ops) = match &normalised {
            Some(y) => (
                attention.stats_group(&ctx, &kernels, y, &stats),
                vec![normalise_op(&ctx, &kernels, &attention, &state, y)],
            ),
            None => (
                attention.stats_group(&ctx, &kernels, &state, &stats),
                Vec::new(),
            ),
        };
        stats_ops.extend(attention.stats_ops(&kernels, &stats_group));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("setting up the buffers: {e}")));
        }
        ctx.take_error()?;
        let plan = attention.plan;
        let ctx_limit_groups = ctx.limits.max_compute_workgroups_per_dimension;
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
            field_ops: [Vec::new(), Vec::new()],
            combine_group: None,
            redraw_group,
            normalised,
            sphere: model.geometry == crate::model::Geometry::Sphere,
            stats_ops,
            recorder: Recorder::new(plan.dispatches_per_submission, plan.in_flight),
            timer: None,
            first_bad: None,
            adaptive: None,
            max_groups: options.max_groups.unwrap_or(u32::MAX).min(ctx_limit_groups),
        })
    }

    /// Whether per-layer weights are all held on the device (None: the model has none).
    pub fn layers_resident(&self) -> Option<bool> {
        self.attention.layers.as_ref().map(|l| l.resident())
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The kernel specialisation (d, attention and pair-statistics kernels, mask, checks).
    pub fn specialisation(&self) -> Specialisation {
        self.kernels.spec
    }

    /// How an evaluation is cut into dispatches.
    pub fn plan(&self) -> Plan {
        self.attention.plan
    }

    /// How the O(n d^2) kernels (queries, attention_finish, the perceptron) are cut into
    /// dispatches of whole tokens.
    pub fn token_plan(&self) -> plan::TokenPlan {
        self.attention.token_plan()
    }

    /// How the pair statistics are cut into dispatches.
    pub fn stats_plan(&self) -> Plan {
        self.attention.stats.plan
    }

    /// The grids of the per-token and per-element kernels.
    pub fn grids(&self) -> Grids {
        self.attention.grids
    }

    /// What the speed probe measured, when it ran (hardware adapters, or `Chunking::Timed`).
    pub fn calibration(&self) -> Option<Calibration> {
        self.attention.calibration
    }

    /// Bytes of device memory this backend allocated (all O(batch n d)).
    pub fn device_bytes(&self) -> u64 {
        let a = &self.attention;
        [&self.state, &self.stage, &a.q, &a.acc, &a.ml, &self.stats]
            .iter()
            .map(|b| b.size())
            .chain(self.k.iter().map(|b| b.size()))
            .sum::<u64>()
            + self.adaptive.as_ref().map_or(0, |a| a.device_bytes())
            + a.layers.as_ref().map_or(0, |l| l.device_bytes())
    }

    /// Records GPU timestamps around every field evaluation from now on, when the adapter
    /// supports timestamp queries. Returns whether it does.
    pub fn enable_timing(&mut self) -> bool {
        if !self.ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return false;
        }
        self.timer = Some(Timer::new(&self.ctx));
        true
    }

    /// GPU seconds of the last field evaluation (waits for it), with timing enabled.
    pub fn last_field_seconds(&mut self) -> Result<Option<f64>> {
        let Some(timer) = &self.timer else {
            return Ok(None);
        };
        timer.resolve(self.recorder.encoder(&self.ctx));
        self.recorder.sync(&self.ctx)?;
        timer.read(&self.ctx)
    }

    /// Submits the recorded commands.
    pub fn flush(&mut self) -> Result<()> {
        self.recorder.submit(&self.ctx)
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
        let slot = if stats {
            &mut self.stats_readback
        } else {
            &mut self.readback
        };
        if slot.as_ref().is_none_or(|b| b.size() < size) {
            *slot = Some(self.ctx.buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let readback = slot.clone().expect("just made");
        self.recorder
            .encoder(&self.ctx)
            .copy_buffer_to_buffer(src, 0, &readback, 0, size);
        self.recorder.submit(&self.ctx)?;
        let mut bytes = map_and_read(&self.ctx, &readback)?;
        bytes.truncate(size as usize);
        Ok(bytes)
    }

    /// The per-head matrices the kernels use now: M_h = K_h^T Q_h and V_h, each [H, d, d]
    /// row-major, or [H, batch, d, d] with heads drawn per system (for a random model, the
    /// draw of the current layer).
    pub fn read_head_matrices(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let (m, v) = (
            self.attention.heads.score_matrix.clone(),
            self.attention.heads.value_matrix.clone(),
        );
        let floats = |b: Vec<u8>| bytemuck::cast_slice::<u8, f32>(&b).to_vec();
        Ok((
            floats(self.read_back(&m, false)?),
            floats(self.read_back(&v, false)?),
        ))
    }

    /// The intermediates of the last field evaluation's last head, in natural units and
    /// independent of how the work was split, for comparing each kernel with its twin in
    /// `reference::stages`: the queries beta K^T Q z [tokens, d], the log-sum-exp of each
    /// query's scores over the keys it sees [tokens], and the merged attention mean
    /// [tokens, d] (SA: sum_j w_ij x_j; USA: sum_j e^{s_ij} x_j / Z_i).
    pub fn read_intermediates(&mut self) -> Result<Intermediates> {
        let a = &self.attention;
        let (q, acc, ml) = (a.q.clone(), a.acc.clone(), a.ml.clone());
        let splits = a.plan.splits;
        let floats = |b: Vec<u8>| bytemuck::cast_slice::<u8, f32>(&b).to_vec();
        let q = floats(self.read_back(&q, false)?);
        let acc = floats(self.read_back(&acc, false)?);
        let ml = floats(self.read_back(&ml, false)?);
        let (d, tokens) = (self.shape.d, self.shape.tokens());
        let padded = 4 * d.div_ceil(4);
        let log2e = std::f64::consts::LOG2_E;
        let unpad = |v: &[f32], scale: f64| -> Vec<f64> {
            (0..tokens)
                .flat_map(|t| (0..d).map(move |r| (t, r)))
                .map(|(t, r)| f64::from(v[t * padded + r]) * scale)
                .collect()
        };
        let lse = (0..tokens)
            .map(|t| {
                let parts: Vec<(f64, f64)> = (0..splits)
                    .map(|s| {
                        let u = s * tokens + t;
                        (f64::from(ml[2 * u]), f64::from(ml[2 * u + 1]))
                    })
                    .filter(|(_, l)| *l > 0.0)
                    .collect();
                let top = parts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = parts.iter().map(|(m, l)| l * (m - top).exp2()).sum();
                (top + sum.log2()) / log2e
            })
            .collect();
        Ok(Intermediates {
            queries: unpad(&q, 1.0 / log2e),
            lse,
            mean: unpad(&acc, 1.0),
        })
    }

    /// Counts of device operations so far (the context's, shared by every backend on it).
    pub fn counts(&self) -> Counts {
        self.ctx.counters.snapshot()
    }
}

/// See [`GpuBackend::read_intermediates`].
#[derive(Clone, Debug)]
pub struct Intermediates {
    pub queries: Vec<f64>,
    pub lse: Vec<f64>,
    pub mean: Vec<f64>,
}

/// Maps a MAP_READ buffer, copies its contents out and unmaps it.
/// The dispatch that writes normalise(x) of every token of `x` into `out` (normalise.wgsl).
fn normalise_op(
    ctx: &GpuContext,
    kernels: &Kernels,
    attention: &AttentionPass,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Op {
    let (tx, ty) = attention.grids.tokens;
    Op {
        label: "normalise",
        pipeline: kernels.normalise.clone(),
        group: bind_group(
            ctx,
            "normalise",
            &kernels.normalise_layout,
            &[
                attention.params.as_entire_binding(),
                x.as_entire_binding(),
                out.as_entire_binding(),
            ],
        ),
        offset: None,
        grid: (tx, ty, 1),
        streaming: false,
    }
}

pub(crate) fn map_and_read(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctx.count_map();
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
        if stages == 0 || stages > adaptive::MAX_ADAPTIVE_STAGES {
            return Err(Error::Input(format!(
                "the GPU backend holds 1 to {} stages, not {stages}",
                adaptive::MAX_ADAPTIVE_STAGES
            )));
        }
        let ctx = self.ctx.clone();
        let bytes = 4 * self.shape.len() as u64;
        self.k = (0..stages)
            .map(|s| {
                ctx.buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("k{s}")),
                    size: bytes,
                    // COPY_DST: adaptive stepping's FSAL copy.
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        for (input, ops) in [&self.state, &self.stage]
            .into_iter()
            .zip(self.field_ops.iter_mut())
        {
            *ops = self
                .k
                .iter()
                .map(|k| match &self.normalised {
                    // The Pre-LN family: the block sees normalise(input).
                    Some(y) => {
                        let groups: AttentionGroups =
                            self.attention.bind(&ctx, &self.kernels, y, y, k);
                        let mut ops =
                            vec![normalise_op(&ctx, &self.kernels, &self.attention, input, y)];
                        ops.extend(self.attention.ops(&self.kernels, &groups));
                        ops
                    }
                    None => {
                        let groups: AttentionGroups =
                            self.attention.bind(&ctx, &self.kernels, input, input, k);
                        self.attention.ops(&self.kernels, &groups)
                    }
                })
                .collect();
        }
        let k = |s: usize| self.k[s.min(stages - 1)].as_entire_binding();
        self.combine_group = Some(bind_group(
            &ctx,
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
        let stamps = self.timer.as_ref().map(Timer::stamps);
        let ops = &self.field_ops[(input == Slot::Stage) as usize][stage];
        self.recorder.record(&self.ctx, ops, stamps.as_ref())
    }

    fn combine(
        &mut self,
        dst: Slot,
        terms: &[(usize, f64)],
        renormalise: bool,
        noise: Option<NoiseStep>,
    ) -> Result<()> {
        let (tx, ty) = self.attention.grids.tokens;
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
            if s >= self.k.len() || s >= MAX_STAGES {
                return Err(Error::Input(format!(
                    "stage {s} does not exist (a fixed-step combination reads up to \
                     {MAX_STAGES} stages)"
                )));
            }
            c.coeffs[s] = coef as f32;
            c.terms = c.terms.max(s as u32 + 1);
        }
        let offset = self.coeff_offset(c)?;
        let op = Op {
            label: "rk_combine",
            pipeline: self.kernels.rk_combine.clone(),
            group: self.combine_group.clone().expect("prepare() first"),
            offset: Some(offset),
            grid: (tx, ty, 1),
            streaming: false,
        };
        self.recorder.record(&self.ctx, &[op], None)?;
        if dst == Slot::State {
            // One submission per step (or per planned slice of a long step).
            self.flush()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.recorder.sync(&self.ctx)
    }

    fn prepare_adaptive(&mut self, stages: usize) -> Result<()> {
        self.prepare_adaptive_stages(stages)
    }

    fn supports_adaptive(&self) -> bool {
        true
    }

    fn combine_systems(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<()> {
        self.adaptive_combine(stages, coeffs, renormalise)
    }

    fn scaled_sums(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        with_state: bool,
        atol: f64,
        rtol: f64,
        out: &mut [f64],
    ) -> Result<()> {
        self.adaptive_scaled_sums(stages, coeffs, with_state, (atol, rtol), out)
    }

    fn accept_systems(&mut self, accepted: &[bool], copy: Option<(usize, usize)>) -> Result<()> {
        self.adaptive_accept(accepted, copy)
    }

    fn interpolate(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<Vec<f64>> {
        self.adaptive_interpolate(stages, coeffs, renormalise)
    }

    fn begin_step(&mut self, layer: u32) -> Result<()> {
        if self.attention.layers.is_some() {
            // Everything recorded so far reads the old layer's weights: submit it first.
            self.flush()?;
            self.attention.select_layer(&self.ctx, layer);
        }
        let redraw = self.redraw_group.clone();
        if let Some(op) =
            self.attention
                .begin_step(&self.ctx, &self.kernels, redraw.as_ref(), layer)
        {
            self.recorder.record(&self.ctx, &[op], None)?;
        }
        Ok(())
    }

    fn enable_timing(&mut self) -> bool {
        GpuBackend::enable_timing(self)
    }

    fn last_field_seconds(&mut self) -> Result<Option<f64>> {
        GpuBackend::last_field_seconds(self)
    }

    fn device_usage(&self) -> Option<crate::integrate::DeviceUsage> {
        Some(crate::integrate::DeviceUsage {
            chunk_keys: self.plan().chunk_keys,
            device_bytes: self.device_bytes(),
        })
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
        let ops = std::mem::take(&mut self.stats_ops);
        let recorded = self.recorder.record(&self.ctx, &ops, None);
        self.stats_ops = ops;
        recorded?;
        let stats = self.stats.clone();
        let bytes = self.read_back(&stats, true)?;
        let rows: &[PairStatsRow] = bytemuck::cast_slice(&bytes);
        let tokens = self.shape.tokens();
        let ln2 = std::f64::consts::LN_2;
        // Merge the key splits in f64: log-sum-exp, minimum and sums.
        Ok((0..tokens)
            .map(|t| {
                let parts = (0..self.attention.stats.plan.splits).map(|s| &rows[s * tokens + t]);
                let top = parts
                    .clone()
                    .filter(|r| r.l > 0.0)
                    .map(|r| f64::from(r.m))
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut out = PairStats {
                    lse_max: top * ln2,
                    lse_sum: 0.0,
                    min_cos: f64::INFINITY,
                    sum_cos: 0.0,
                    sum_dot: 0.0,
                };
                for r in parts {
                    if r.l > 0.0 {
                        out.lse_sum += f64::from(r.l) * (f64::from(r.m) - top).exp2();
                    }
                    out.min_cos = out.min_cos.min(f64::from(r.min_cos));
                    out.sum_cos += f64::from(r.sum_cos);
                    out.sum_dot += f64::from(r.sum_dot);
                }
                out
            })
            .collect())
    }

    fn non_finite(&mut self) -> Result<bool> {
        let (status, readback) = (self.status.clone(), self.status_readback.clone());
        let enc = self.recorder.encoder(&self.ctx);
        enc.copy_buffer_to_buffer(&status, 0, &readback, 0, 4);
        enc.clear_buffer(&status, 0, None);
        self.flush()?;
        let bytes = map_and_read(&self.ctx, &readback)?;
        let status = bytemuck::cast_slice::<u8, u32>(&bytes)[0];
        if status != 0 && self.first_bad.is_none() {
            self.first_bad = Some(u32::MAX - status);
        }
        Ok(status != 0)
    }

    fn first_non_finite_layer(&mut self) -> Option<u32> {
        self.first_bad
    }
}
