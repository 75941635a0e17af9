//! The GPU backend: wgpu compute with WGSL kernels in `shaders/`. The state, the stage input
//! and the Runge-Kutta stage buffers stay on the device for the whole run; pipelines, buffers
//! and bind groups are built once, and a step records one command buffer that ping-pongs
//! between them. The state is read back only when saving.
//!
//! One evaluation of the attention field is three kernels: `queries` (q = beta K^T Q x),
//! `attention` (online softmax over one chunk of keys per dispatch, partial states merged
//! exactly between chunks) and `attention_finish` (V, the USA scale, the tangent projection).

pub mod context;
pub mod shaders;

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

pub use context::GpuContext;
use shaders::Specialisation;

use crate::error::{Error, Result};
use crate::integrate::{Backend, Slot, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

/// Mirrors `Params` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Params {
    n: u32,
    batch: u32,
    flags: u32,
    token_groups_x: u32,
    element_groups_x: u32,
    pad: [u32; 3],
}

/// Mirrors `Chunk` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Chunk {
    key_start: u32,
    key_count: u32,
    first: u32,
    pad: u32,
}

/// Mirrors `Combine` in shaders/rk_combine.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
struct Combine {
    coeffs: [f32; 4],
    terms: u32,
    to_state: u32,
    renormalise: u32,
    tokens: u32,
    groups_x: u32,
    pad: [u32; 3],
}

/// Mirrors `PairStats` in shaders/pair_stats.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct PairStatsRow {
    lse_max: f32,
    lse_sum: f32,
    min_cos: f32,
    sum_cos: f32,
    sum_dot: f32,
}

const FLAG_USA: u32 = 1;
const FLAG_SPHERE: u32 = 2;
const FLAG_CAUSAL: u32 = 4;
const FLAG_IDENTITY_SCORES: u32 = 8;
const FLAG_IDENTITY_VALUES: u32 = 16;

/// Largest token dimension the GPU kernels take.
pub const MAX_D: usize = 1024;

/// Most Runge-Kutta stages a combination reads (RK4).
const MAX_STAGES: usize = 4;
/// Distinct coefficient sets kept on the device (a fixed-step run uses stages + 1).
const COEFF_SLOTS: usize = 16;

/// How a problem is laid out over workgroups and dispatches, checked against the adapter.
#[derive(Clone, Copy, Debug)]
pub struct Dispatch {
    /// Workgroups (x, y) of the streaming kernels: query blocks, systems.
    pub queries: (u32, u32),
    /// Workgroups (x, y) of the per-token kernels.
    pub tokens: (u32, u32),
    /// Workgroups (x, y) of the per-element (token, coordinate) kernels.
    pub elements: (u32, u32),
    /// Keys visited by one dispatch of a streaming kernel.
    pub chunk_keys: usize,
}

impl Dispatch {
    /// Number of dispatches a streaming kernel needs for one pass over the keys.
    pub fn chunks(&self, n: usize) -> usize {
        n.div_ceil(self.chunk_keys)
    }
}

/// Checks that a problem fits the adapter and returns its dispatch, or a clear error that
/// names the limit and the largest size that fits.
pub fn plan(limits: &wgpu::Limits, shape: Shape, chunk_keys: usize) -> Result<Dispatch> {
    let Shape { batch, n, d } = shape;
    let wg = shaders::WORKGROUP as u64;
    let max_groups = limits.max_compute_workgroups_per_dimension as u64;
    let max_binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let state_bytes = 4 * shape.len() as u64;
    if state_bytes > max_binding {
        let largest_n = max_binding / (4 * (batch * d) as u64);
        return Err(Error::Limit(format!(
            "the state ({batch} x {n} x {d} f32 = {:.1} MiB) exceeds this adapter's \
             max_storage_buffer_binding_size of {:.1} MiB; the largest n that fits with d = {d}, \
             batch = {batch} is {largest_n}",
            mib(state_bytes),
            mib(max_binding)
        )));
    }
    let stats_bytes = std::mem::size_of::<PairStatsRow>() as u64 * shape.tokens() as u64;
    if stats_bytes > max_binding {
        let largest_n = max_binding / (std::mem::size_of::<PairStatsRow>() * batch) as u64;
        return Err(Error::Limit(format!(
            "the observables buffer ({:.1} MiB) exceeds this adapter's \
             max_storage_buffer_binding_size of {:.1} MiB; the largest n that fits with \
             batch = {batch} is {largest_n}",
            mib(stats_bytes),
            mib(max_binding)
        )));
    }
    let query_groups = (n as u64).div_ceil(wg);
    if query_groups > max_groups {
        return Err(Error::Limit(format!(
            "n = {n} needs {query_groups} workgroups of {wg} queries, more than this adapter's \
             max_compute_workgroups_per_dimension of {max_groups}; the largest n is {}",
            max_groups * wg
        )));
    }
    if batch as u64 > max_groups {
        return Err(Error::Limit(format!(
            "batch = {batch} exceeds this adapter's max_compute_workgroups_per_dimension of \
             {max_groups}"
        )));
    }
    if d > MAX_D {
        return Err(Error::Limit(format!(
            "d = {d}: the GPU kernels keep two vectors of d floats per query in registers and \
             support d up to {MAX_D}; use --backend cpu for larger d"
        )));
    }
    let grid = |items: u64, what: &str| -> Result<(u32, u32)> {
        let groups = items.div_ceil(wg);
        let x = groups.min(max_groups);
        let y = groups.div_ceil(x);
        if y > max_groups {
            return Err(Error::Limit(format!(
                "{items} {what} exceed what two dimensions of {max_groups} workgroups of {wg} hold"
            )));
        }
        Ok((x as u32, y as u32))
    };
    let tokens = grid(shape.tokens() as u64, "tokens (batch * n)")?;
    let elements = grid(shape.len() as u64, "values (batch * n * d)")?;
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
    Ok(Dispatch {
        queries: (query_groups as u32, batch as u32),
        tokens,
        elements,
        chunk_keys: chunk_keys.clamp(1, n),
    })
}

/// Options of the GPU backend that a user rarely sets.
#[derive(Clone, Copy, Debug, Default)]
pub struct GpuOptions {
    /// Keys per streaming dispatch; None picks one for the adapter (a loop-iteration budget
    /// on software adapters, [`shaders::HARDWARE_CHUNK_KEYS`] on hardware). Tests set it to
    /// force the chunked paths at small n.
    pub chunk_keys: Option<usize>,
}

/// Bind groups of one field evaluation reading one input buffer.
struct FieldGroups {
    queries: wgpu::BindGroup,
    attention: wgpu::BindGroup,
    /// One per stage buffer k_s.
    finish: Vec<wgpu::BindGroup>,
    project: Vec<wgpu::BindGroup>,
}

struct Pipelines {
    queries: wgpu::ComputePipeline,
    attention: wgpu::ComputePipeline,
    attention_finish: wgpu::ComputePipeline,
    tangent_project: wgpu::ComputePipeline,
    rk_combine: wgpu::ComputePipeline,
    pair_stats: wgpu::ComputePipeline,
}

struct Layouts {
    queries: wgpu::BindGroupLayout,
    attention: wgpu::BindGroupLayout,
    attention_finish: wgpu::BindGroupLayout,
    tangent_project: wgpu::BindGroupLayout,
    rk_combine: wgpu::BindGroupLayout,
}

pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    shape: Shape,
    sphere: bool,
    dispatch: Dispatch,
    spec: Specialisation,
    pipelines: Pipelines,
    layouts: Layouts,
    params: wgpu::Buffer,
    betas: wgpu::Buffer,
    score_matrix: wgpu::Buffer,
    value_matrix: wgpu::Buffer,
    state: wgpu::Buffer,
    stage: wgpu::Buffer,
    k: Vec<wgpu::Buffer>,
    /// Queries and online-softmax partial states of the attention kernels.
    q: wgpu::Buffer,
    acc: wgpu::Buffer,
    ml: wgpu::Buffer,
    /// One `Chunk` per dispatch slot (dynamic offsets).
    chunks: wgpu::Buffer,
    chunk_stride: u64,
    status: wgpu::Buffer,
    status_readback: wgpu::Buffer,
    coeffs: wgpu::Buffer,
    coeff_stride: u64,
    coeff_slots: Vec<Combine>,
    stats: wgpu::Buffer,
    readback: Option<wgpu::Buffer>,
    stats_readback: Option<wgpu::Buffer>,
    /// field_groups[0] reads the state, [1] the stage input.
    field_groups: Vec<FieldGroups>,
    combine_group: Option<wgpu::BindGroup>,
    stats_group: wgpu::BindGroup,
    encoder: Option<wgpu::CommandEncoder>,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A layout from a compact description: 'u' uniform, 'd' uniform with dynamic offset,
/// 'r' read-only storage, 'w' read-write storage, in binding order.
fn layout(device: &wgpu::Device, label: &str, kinds: &str) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = kinds
        .chars()
        .enumerate()
        .map(|(i, k)| match k {
            'u' => uniform_entry(i as u32, false),
            'd' => uniform_entry(i as u32, true),
            'r' => storage_entry(i as u32, true),
            'w' => storage_entry(i as u32, false),
            _ => unreachable!("binding kind {k}"),
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// A uniform binding of one slot of `T` at a dynamic offset.
fn slot_binding<T>(buffer: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: wgpu::BufferSize::new(std::mem::size_of::<T>() as u64),
    })
}

fn bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource<'_>],
) -> wgpu::BindGroup {
    let entries: Vec<_> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

fn aligned(size: usize, align: u32) -> u64 {
    (size as u64).div_ceil(align as u64) * align as u64
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
        let spec =
            Specialisation::for_dimension(shape.d, ctx.limits.max_compute_workgroup_storage_size);
        let chunk_keys = options.chunk_keys.unwrap_or(if ctx.is_software() {
            spec.keys_within_loop_budget(shaders::SOFTWARE_LOOP_BUDGET)
        } else {
            shaders::HARDWARE_CHUNK_KEYS
        });
        let dispatch = plan(&ctx.limits, shape, chunk_keys)?;
        let device = &ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);

        let layouts = Layouts {
            queries: layout(device, "queries", "urrrw"),
            attention: layout(device, "attention", "udrrww"),
            attention_finish: layout(device, "attention_finish", "urrrw"),
            tangent_project: layout(device, "tangent_project", "urw"),
            rk_combine: layout(device, "rk_combine", "dwwrrrrw"),
        };
        let stats_layout = layout(device, "pair_stats", "udrrw");
        let pipeline = |name: &str, kernel: &str, layout: &wgpu::BindGroupLayout| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(shaders::source(kernel, spec).into()),
            });
            let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let pipelines = Pipelines {
            queries: pipeline("queries", shaders::QUERIES, &layouts.queries),
            attention: pipeline("attention", shaders::ATTENTION, &layouts.attention),
            attention_finish: pipeline(
                "attention_finish",
                shaders::ATTENTION_FINISH,
                &layouts.attention_finish,
            ),
            tangent_project: pipeline(
                "tangent_project",
                shaders::TANGENT_PROJECT,
                &layouts.tangent_project,
            ),
            rk_combine: pipeline("rk_combine", shaders::RK_COMBINE, &layouts.rk_combine),
            pair_stats: pipeline("pair_stats", shaders::PAIR_STATS, &stats_layout),
        };

        let w = &model.weights;
        let identity_scores = w.score_matrix() == crate::model::weights::identity_matrix(shape.d);
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
        if identity_scores {
            flags |= FLAG_IDENTITY_SCORES;
        }
        if w.v_is_identity() {
            flags |= FLAG_IDENTITY_VALUES;
        }
        let params = Params {
            n: shape.n as u32,
            batch: shape.batch as u32,
            flags,
            token_groups_x: dispatch.tokens.0,
            element_groups_x: dispatch.elements.0,
            pad: [0; 3],
        };
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
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let params = init(
            "params",
            bytemuck::bytes_of(&params),
            wgpu::BufferUsages::UNIFORM,
        );
        let betas = init("betas", bytemuck::cast_slice(&f32s(&model.betas)), storage);
        let score_matrix = init(
            "score_matrix",
            bytemuck::cast_slice(&f32s(&w.score_matrix())),
            storage,
        );
        let value_matrix = init("value_matrix", bytemuck::cast_slice(&f32s(&w.v)), storage);
        let state = init("state", bytemuck::cast_slice(&f32s(x0)), storage | copy);
        let bytes = 4 * shape.len() as u64;
        let stage = buffer("stage", bytes, storage | copy);
        let q = buffer("queries", bytes, storage | copy);
        let acc = buffer("softmax_acc", bytes, storage | copy);
        let ml = buffer("softmax_max_sum", 8 * shape.tokens() as u64, storage | copy);

        let align = ctx.limits.min_uniform_buffer_offset_alignment;
        let chunk_stride = aligned(std::mem::size_of::<Chunk>(), align);
        let chunk_slots: Vec<u8> = (0..dispatch.chunks(shape.n))
            .flat_map(|c| {
                let start = c * dispatch.chunk_keys;
                let chunk = Chunk {
                    key_start: start as u32,
                    key_count: dispatch.chunk_keys.min(shape.n - start) as u32,
                    first: (c == 0) as u32,
                    pad: 0,
                };
                let mut slot = bytemuck::bytes_of(&chunk).to_vec();
                slot.resize(chunk_stride as usize, 0);
                slot
            })
            .collect();
        let chunks = init("chunks", &chunk_slots, wgpu::BufferUsages::UNIFORM);
        let status = buffer("status", 4, storage | copy);
        let status_readback = buffer(
            "status_readback",
            4,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let coeff_stride = aligned(std::mem::size_of::<Combine>(), align);
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
        let stats_group = bind_group(
            device,
            "pair_stats",
            &stats_layout,
            &[
                params.as_entire_binding(),
                slot_binding::<Chunk>(&chunks),
                betas.as_entire_binding(),
                state.as_entire_binding(),
                stats.as_entire_binding(),
            ],
        );
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("setting up the kernels: {e}")));
        }
        ctx.take_error()?;
        Ok(GpuBackend {
            ctx,
            shape,
            sphere: model.geometry == Geometry::Sphere,
            dispatch,
            spec,
            pipelines,
            layouts,
            params,
            betas,
            score_matrix,
            value_matrix,
            state,
            stage,
            k: Vec::new(),
            q,
            acc,
            ml,
            chunks,
            chunk_stride,
            status,
            status_readback,
            coeffs,
            coeff_stride,
            coeff_slots: Vec::new(),
            stats,
            readback: None,
            stats_readback: None,
            field_groups: Vec::new(),
            combine_group: None,
            stats_group,
            encoder: None,
        })
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The kernel specialisation (d, workgroup size, keys per workgroup-memory tile).
    pub fn specialisation(&self) -> Specialisation {
        self.spec
    }

    /// The dispatch layout, including the keys per streaming dispatch.
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch
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

    /// Submits and waits until the device is idle.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.ctx.wait()
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

    /// Copies a buffer to the host through a MAP_READ buffer made once per size class.
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

    /// The intermediates of the last field evaluation: queries, softmax accumulators and
    /// (max, sum) pairs, for comparing each kernel with its twin in `reference::stages`.
    pub fn read_intermediates(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let (q, acc, ml) = (self.q.clone(), self.acc.clone(), self.ml.clone());
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
        let l = &self.layouts;
        self.field_groups = [&self.state, &self.stage]
            .into_iter()
            .map(|input| FieldGroups {
                queries: bind_group(
                    device,
                    "queries",
                    &l.queries,
                    &[
                        self.params.as_entire_binding(),
                        self.betas.as_entire_binding(),
                        self.score_matrix.as_entire_binding(),
                        input.as_entire_binding(),
                        self.q.as_entire_binding(),
                    ],
                ),
                attention: bind_group(
                    device,
                    "attention",
                    &l.attention,
                    &[
                        self.params.as_entire_binding(),
                        slot_binding::<Chunk>(&self.chunks),
                        self.q.as_entire_binding(),
                        input.as_entire_binding(),
                        self.acc.as_entire_binding(),
                        self.ml.as_entire_binding(),
                    ],
                ),
                finish: self
                    .k
                    .iter()
                    .map(|k| {
                        bind_group(
                            device,
                            "attention_finish",
                            &l.attention_finish,
                            &[
                                self.params.as_entire_binding(),
                                self.value_matrix.as_entire_binding(),
                                self.acc.as_entire_binding(),
                                self.ml.as_entire_binding(),
                                k.as_entire_binding(),
                            ],
                        )
                    })
                    .collect(),
                project: self
                    .k
                    .iter()
                    .map(|k| {
                        bind_group(
                            device,
                            "tangent_project",
                            &l.tangent_project,
                            &[
                                self.params.as_entire_binding(),
                                input.as_entire_binding(),
                                k.as_entire_binding(),
                            ],
                        )
                    })
                    .collect(),
            })
            .collect();
        let k = |s: usize| self.k[s.min(stages - 1)].as_entire_binding();
        self.combine_group = Some(bind_group(
            device,
            "rk_combine",
            &l.rk_combine,
            &[
                slot_binding::<Combine>(&self.coeffs),
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
        let groups = &self.field_groups[(input == Slot::Stage) as usize];
        let (queries, attention, finish, project) = (
            groups.queries.clone(),
            groups.attention.clone(),
            groups.finish[stage].clone(),
            groups.project[stage].clone(),
        );
        let p = &self.pipelines;
        let (pq, pa, pf, pp) = (
            p.queries.clone(),
            p.attention.clone(),
            p.attention_finish.clone(),
            p.tangent_project.clone(),
        );
        let sphere = self.sphere;
        let (tx, ty) = self.dispatch.tokens;
        let (ex, ey) = self.dispatch.elements;
        let (qx, qy) = self.dispatch.queries;
        let chunks = self.dispatch.chunks(self.shape.n);
        let stride = self.chunk_stride;
        let mut pass = self
            .encoder()
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("attention field"),
                timestamp_writes: None,
            });
        pass.set_pipeline(&pq);
        pass.set_bind_group(0, &queries, &[]);
        pass.dispatch_workgroups(ex, ey, 1);
        pass.set_pipeline(&pa);
        for c in 0..chunks {
            pass.set_bind_group(0, &attention, &[(c as u64 * stride) as u32]);
            pass.dispatch_workgroups(qx, qy, 1);
        }
        pass.set_pipeline(&pf);
        pass.set_bind_group(0, &finish, &[]);
        pass.dispatch_workgroups(ex, ey, 1);
        if sphere {
            pass.set_pipeline(&pp);
            pass.set_bind_group(0, &project, &[]);
            pass.dispatch_workgroups(tx, ty, 1);
        }
        Ok(())
    }

    fn combine(&mut self, dst: Slot, terms: &[(usize, f64)], renormalise: bool) -> Result<()> {
        let mut c = Combine {
            coeffs: [0.0; 4],
            terms: 0,
            to_state: (dst == Slot::State) as u32,
            renormalise: renormalise as u32,
            tokens: self.shape.tokens() as u32,
            groups_x: self.dispatch.tokens.0,
            pad: [0; 3],
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
        let pipeline = self.pipelines.rk_combine.clone();
        let (gx, gy) = self.dispatch.tokens;
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
        let pipeline = self.pipelines.pair_stats.clone();
        let group = self.stats_group.clone();
        let (gx, gy) = self.dispatch.queries;
        let chunks = self.dispatch.chunks(self.shape.n);
        let stride = self.chunk_stride;
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
                pass.dispatch_workgroups(gx, gy, 1);
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
