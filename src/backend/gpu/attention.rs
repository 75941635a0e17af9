//! One evaluation of the attention field on the GPU, shared by the dynamics (queries = keys =
//! the state) and by single layers with separate queries and keys. Per head: `queries`
//! (q = beta log2(e) K_h^T Q_h z), `attention` once per planned dispatch (online softmax over
//! key splits and chunks, partial states continued across chunks), `attention_merge` (the
//! splits merged, SA or USA normalisation), `attention_finish` (V_h, c_h, summed over heads);
//! then the perceptron (`mlp_hidden`, `mlp_out`) and the layer's finish, `tangent_project` (on
//! the sphere the projection; the output normalisation of `peri-ln` and `ngpt`). A
//! random model redraws its heads on the device (`redraw`) once per step. Per-layer weights
//! ([`LayerStore`]) are resident on the device when they fit (uploaded once; a layer's slice
//! is copied into the working buffers when the schedule reaches it) and written from the host
//! at each change of layer otherwise. The buffers it owns are built once; `ops` only lists
//! the dispatches of an evaluation.

use std::time::Instant;

use super::GpuContext;
use super::kernels::{
    Chunk, Grids, HeadSlot, Kernels, Params, RedrawSlot, StepSlot, aligned, bind_group,
    check_sizes, slot_binding,
};
use super::plan::{self, Budget, DispatchSlot, KernelShape, Plan, PlanInput, Probe, TokenPlan};
use super::record::Op;
use super::shaders;
use crate::backend::LayerShape;
use crate::error::{Error, Result};
use crate::model::{Mask, Model, Weights};

/// How the work of an evaluation is cut into dispatches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Chunking {
    /// Probe the adapter's speed and plan to the default budgets on hardware adapters; on
    /// software adapters (no watchdog) as many keys as llvmpipe's loop limit allows.
    Auto,
    /// Exactly this many keys per split per dispatch, and tokens per dispatch of the O(n d^2)
    /// kernels (tests force the chunked paths with it).
    Fixed(usize),
    /// Probe, then plan so that one dispatch takes at most this many seconds at half the
    /// measured speed, and a submission 2.5 times that (also on software adapters; tests
    /// force many chunks with it).
    Timed(f64),
}

/// The default longest dispatch.
pub const TARGET_DISPATCH_SECONDS: f64 = 0.1;

impl Chunking {
    /// The dispatch budget to probe and plan for, if any, on this adapter.
    pub fn target(self, ctx: &GpuContext) -> Option<f64> {
        match self {
            Chunking::Fixed(_) => None,
            Chunking::Timed(t) => Some(t),
            Chunking::Auto => (!ctx.is_software()).then_some(TARGET_DISPATCH_SECONDS),
        }
    }
}

/// What the speed probe measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// The largest probe run.
    pub probe: Probe,
    pub pairs: f64,
    pub seconds: f64,
    /// Pair interactions per second it measured.
    pub speed: f64,
    /// Timed by GPU timestamps (else by the host clock).
    pub timestamps: bool,
    /// Probes run.
    pub probes: usize,
}

/// The test knobs and options of the attention pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PassOptions {
    pub chunking: Chunking,
    pub max_groups: Option<u32>,
    pub splits: Option<usize>,
    /// Most bytes of per-layer weights kept resident on the device.
    pub resident_layer_bytes: u64,
}

/// The default cap on resident per-layer weights (f32, all layers).
pub const RESIDENT_LAYER_BYTES: u64 = 512 << 20;

/// Which working buffer a per-layer part is selected into.
#[derive(Clone, Copy, Debug)]
enum LayerTarget {
    Scores,
    Values,
    MlpA,
    MlpB,
    MlpW,
}

/// Where every layer's values of one part are kept.
enum LayerSource {
    /// On the device, all layers one after another.
    Resident(wgpu::Buffer),
    /// On the host, f32 bytes of all layers one after another.
    Host(Vec<u8>),
}

/// Per-layer weights on the device: the model (whose `select_layer` maps a step to its layer)
/// and, for each weight that varies, every layer's f32 values.
pub(crate) struct LayerStore {
    model: Model,
    parts: Vec<(LayerTarget, u64, LayerSource)>,
}

impl LayerStore {
    fn new(ctx: &GpuContext, model: &Model, d: usize, cap: u64) -> Option<Self> {
        let per = model.per_layer.as_ref()?;
        let f32s = |v: &mut Vec<u8>, x: &[f64]| {
            v.extend(x.iter().flat_map(|&x| (x as f32).to_ne_bytes()));
        };
        let mut parts: Vec<(LayerTarget, u64, Vec<u8>)> = Vec::new();
        if let Some(layers) = &per.heads {
            let (mut scores, mut values) = (Vec::new(), Vec::new());
            for heads in layers {
                for w in heads {
                    f32s(&mut scores, &w.score_matrix());
                    f32s(&mut values, &w.v);
                }
            }
            let bytes = 4 * (layers[0].len() * d * d) as u64;
            parts.push((LayerTarget::Scores, bytes, scores));
            parts.push((LayerTarget::Values, bytes, values));
        }
        if let Some(mlps) = &per.mlps {
            let (mut a, mut b, mut w) = (Vec::new(), Vec::new(), Vec::new());
            for m in mlps {
                f32s(&mut a, &m.a);
                f32s(&mut b, &m.b);
                f32s(&mut w, &m.w);
            }
            let m = mlps[0].hidden as u64;
            parts.push((LayerTarget::MlpA, 4 * m * d as u64, a));
            parts.push((LayerTarget::MlpB, 4 * m, b));
            parts.push((LayerTarget::MlpW, 4 * m * d as u64, w));
        }
        let total: u64 = parts.iter().map(|p| p.2.len() as u64).sum();
        let resident = total <= cap
            && parts
                .iter()
                .all(|p| p.2.len() as u64 <= ctx.limits.max_buffer_size);
        let parts = parts
            .into_iter()
            .map(|(target, bytes, values)| {
                let source = if resident {
                    LayerSource::Resident(ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("per_layer_weights"),
                        contents: &values,
                        usage: wgpu::BufferUsages::COPY_SRC,
                    }))
                } else {
                    LayerSource::Host(values)
                };
                (target, bytes, source)
            })
            .collect();
        Some(LayerStore {
            model: model.clone(),
            parts,
        })
    }

    /// Whether every layer is held on the device.
    pub fn resident(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p.2, LayerSource::Resident(_)))
    }

    /// Bytes held on the device for the layers.
    pub fn device_bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| match &p.2 {
                LayerSource::Resident(b) => b.size(),
                LayerSource::Host(_) => 0,
            })
            .sum()
    }
}

/// The most keys (whole tiles of `tk`) one dispatch of a streaming kernel may visit on a
/// software adapter, whose loop budget (`shaders::SOFTWARE_LOOP_BUDGET`) ends longer
/// invocations; `iterations(keys)` is the kernel's loop count for that many keys. The live
/// page (`crate::live`) plans a fallback adapter's dispatches with the same cap.
pub fn software_chunk_keys(iterations: &dyn Fn(usize) -> usize, tk: usize) -> usize {
    let mut keys = tk;
    while iterations(keys * 2) < shaders::SOFTWARE_LOOP_BUDGET && keys < 1 << 30 {
        keys *= 2;
    }
    let mut hi = keys * 2;
    while hi - keys > tk {
        let mid = (keys + hi) / 2 / tk * tk;
        if mid <= keys {
            break;
        }
        if iterations(mid) < shaders::SOFTWARE_LOOP_BUDGET {
            keys = mid;
        } else {
            hi = mid;
        }
    }
    keys
}

pub(crate) struct AttentionPass {
    pub sizes: LayerShape,
    pub grids: Grids,
    pub plan: Plan,
    /// The plan of the pair statistics (self-attention only).
    pub stats_plan: Plan,
    pub calibration: Option<Calibration>,
    max_groups: u32,
    pub params: wgpu::Buffer,
    pub stats_params: wgpu::Buffer,
    pub betas: wgpu::Buffer,
    /// K_h^T Q_h and V_h of every head, [H, d, d].
    pub score_matrix: wgpu::Buffer,
    pub value_matrix: wgpu::Buffer,
    /// The pieces of whole tokens the O(n d^2) kernels (queries, attention_finish, the
    /// perceptron) are dispatched in.
    pub token_plan: TokenPlan,
    /// One `Head` per head and token piece, head-major (dynamic offsets).
    heads: wgpu::Buffer,
    head_stride: u64,
    head_count: usize,
    head_weight: f32,
    hidden: usize,
    /// Systems with heads of their own (the batch with heads per system, else 1).
    head_systems: usize,
    /// log Z_i of USA per query position.
    log_normaliser: wgpu::Buffer,
    /// Queries [tokens][DV] vec4, and the online-softmax state of every split and query:
    /// acc [splits][tokens][DV] vec4 and (m, l) pairs [splits][tokens].
    pub q: wgpu::Buffer,
    pub acc: wgpu::Buffer,
    pub ml: wgpu::Buffer,
    /// One `Chunk` per planned dispatch (dynamic offsets), attention then pair statistics.
    pub chunks: wgpu::Buffer,
    pub chunk_stride: u64,
    slots: Vec<DispatchSlot>,
    stats_slots: Vec<DispatchSlot>,
    /// The perceptron's A, b, W and hidden values, when there is one.
    mlp: Option<[wgpu::Buffer; 4]>,
    /// The layer being computed (random heads, noise), written once per step.
    pub step: wgpu::Buffer,
    /// Seeds of a random model's redraws.
    redraw: Option<wgpu::Buffer>,
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
    mlp: Option<[wgpu::BindGroup; 2]>,
}

impl AttentionPass {
    pub fn kernel_shape(kernels: &Kernels) -> KernelShape {
        KernelShape {
            queries_per_group: kernels.spec.attention.queries_per_group() as usize,
            tile_keys: kernels.spec.attention.tile_keys() as usize,
        }
    }

    fn stats_shape(kernels: &Kernels) -> KernelShape {
        KernelShape {
            queries_per_group: kernels.spec.pairs.queries_per_group() as usize,
            tile_keys: kernels.spec.pairs.tk as usize,
        }
    }

    /// The plans of the attention and the pair statistics at a measured speed (None: not
    /// measured) with the dispatch budget `budget`.
    fn plans(
        ctx: &GpuContext,
        kernels: &Kernels,
        sizes: LayerShape,
        options: PassOptions,
        speed: Option<f64>,
        budget: Option<f64>,
        hidden: usize,
    ) -> Result<(Plan, Plan, TokenPlan)> {
        let software = ctx.is_software();
        let max_groups = options
            .max_groups
            .unwrap_or(u32::MAX)
            .min(ctx.limits.max_compute_workgroups_per_dimension);
        // A submission holds 2.5 dispatch budgets (0.25 s by default).
        let dispatch_seconds = budget.unwrap_or(TARGET_DISPATCH_SECONDS);
        let budget = Budget {
            dispatch_seconds,
            submission_seconds: 2.5 * dispatch_seconds,
            ..Budget::default()
        };
        let spec = kernels.spec;
        let loop_cap = |iterations: &dyn Fn(usize) -> usize, tk: usize| {
            software.then(|| software_chunk_keys(iterations, tk))
        };
        let chunk_keys = match options.chunking {
            Chunking::Fixed(k) => Some(k),
            _ => None,
        };
        let attention = plan::plan(&PlanInput {
            batch: sizes.batch,
            n_queries: sizes.m,
            n_keys: sizes.n,
            kernel: Self::kernel_shape(kernels),
            speed,
            max_chunk_keys: loop_cap(
                &|k| spec.attention.loop_iterations(k),
                spec.attention.tile_keys() as usize,
            ),
            max_groups,
            splits: options.splits,
            chunk_keys,
            budget,
        })?;
        // The pair statistics do about as much per pair as the attention for small d and
        // less register reuse for large d: plan them at a quarter of its speed.
        let stats = plan::plan(&PlanInput {
            batch: sizes.batch,
            n_queries: sizes.n,
            n_keys: sizes.n,
            kernel: Self::stats_shape(kernels),
            speed: speed.map(|s| s / 4.0),
            max_chunk_keys: loop_cap(&|k| spec.pairs.loop_iterations(k), spec.pairs.tk as usize),
            max_groups,
            splits: options.splits,
            chunk_keys,
            budget,
        })?;
        // The O(n d^2) kernels: whole tokens per dispatch within the budget, at a rate
        // derived from the attention's measured speed (Fixed chunks: that many tokens).
        let tokens = plan::plan_tokens(
            sizes.batch * sizes.m,
            plan::dense_fmas_per_token(sizes.d, hidden),
            speed.map(|s| plan::dense_speed(s, sizes.d)),
            &budget,
            chunk_keys,
        );
        Ok((attention, stats, tokens))
    }

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
        let (plan, stats_plan, token_plan) =
            Self::plans(ctx, kernels, sizes, options, None, None, hidden)?;
        let grids = check_sizes(
            &ctx.limits,
            sizes,
            hidden,
            plan.splits.max(stats_plan.splits),
            options.max_groups,
        )?;
        let max_groups = options
            .max_groups
            .unwrap_or(u32::MAX)
            .min(ctx.limits.max_compute_workgroups_per_dimension);
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let init = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4),
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let d = sizes.d;
        let params = |p: &Plan| Params {
            n_queries: sizes.m as u32,
            n_keys: sizes.n as u32,
            batch: sizes.batch as u32,
            flags: super::kernels::flags(model, d),
            token_groups_x: grids.tokens.0,
            element_groups_x: grids.elements.0,
            output_scale: model.output_scale().unwrap_or(0.0) as f32,
            alibi_slope: model.alibi_slope(sizes.n) as f32,
            mlp_hidden: hidden as u32,
            hidden_groups_x: grids.hidden.0,
            splits: p.splits as u32,
            split_keys: p.split_keys as u32,
        };
        // Every head's matrices, stacked, [H, d, d] or with heads per system [H, batch, d, d];
        // a random model overwrites them at every step.
        let by_system = model.heads_by_system(d, 0, sizes.batch);
        let heads = by_system[0].clone();
        let stacked = |f: &dyn Fn(&Weights) -> Vec<f64>| -> Vec<f64> {
            (0..heads.len())
                .flat_map(|h| by_system.iter().flat_map(move |s| f(&s[h])))
                .collect()
        };
        let scores = stacked(&|w: &Weights| w.score_matrix());
        let values = stacked(&|w: &Weights| w.v.clone());
        let head_systems = by_system.len();
        let align = ctx.limits.min_uniform_buffer_offset_alignment;
        let head_stride = aligned(std::mem::size_of::<HeadSlot>(), align);
        let log_norm: Vec<f32> = (0..sizes.m)
            .map(|i| model.usa_log_normaliser(i, sizes.n) as f32)
            .collect();
        let tokens = (sizes.batch * sizes.m) as u64;
        let padded = 16 * d.div_ceil(4) as u64;
        // Per-layer perceptrons are written over at each change of layer.
        let mlp_usage = storage | wgpu::BufferUsages::COPY_DST;
        let mlp = model.mlp.as_ref().map(|m| {
            [
                init("mlp_a", bytemuck::cast_slice(&f32s(&m.a)), mlp_usage),
                init("mlp_b", bytemuck::cast_slice(&f32s(&m.b)), mlp_usage),
                init("mlp_w", bytemuck::cast_slice(&f32s(&m.w)), mlp_usage),
                buffer("mlp_hidden", 4 * tokens * m.hidden as u64, storage),
            ]
        });
        let redraw = model.random.map(|r| {
            let elements = (2 * r.heads * head_systems * d * d) as u64;
            let groups = elements.div_ceil(u64::from(shaders::WORKGROUP));
            let slot = RedrawSlot {
                seed_lo: r.seed as u32,
                seed_hi: (r.seed >> 32) as u32,
                heads: r.heads as u32,
                scale: (r.scale / (d as f64).sqrt()) as f32,
                groups_x: groups.min(u64::from(ctx.limits.max_compute_workgroups_per_dimension))
                    as u32,
                systems: head_systems as u32,
                per_system: r.per_system as u32,
                layered: r.redraw as u32,
            };
            init(
                "redraw",
                bytemuck::bytes_of(&slot),
                wgpu::BufferUsages::UNIFORM,
            )
        });
        let matrix_usage = storage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let mut pass = AttentionPass {
            sizes,
            grids,
            plan,
            stats_plan,
            calibration: None,
            max_groups,
            params: init("params", bytemuck::bytes_of(&params(&plan)), uniform),
            stats_params: init(
                "stats_params",
                bytemuck::bytes_of(&params(&stats_plan)),
                uniform,
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
            token_plan,
            heads: buffer("heads", 4, wgpu::BufferUsages::UNIFORM),
            head_stride,
            head_count: heads.len(),
            head_weight: model.head_weight() as f32,
            hidden,
            head_systems,
            log_normaliser: init("log_normaliser", bytemuck::cast_slice(&log_norm), storage),
            // Pad lanes of the queries are never written and stay zero.
            q: buffer("queries", padded * tokens, storage | copy),
            acc: buffer(
                "softmax_acc",
                padded * tokens * plan.splits as u64,
                storage | copy,
            ),
            ml: buffer(
                "softmax_max_sum",
                8 * tokens * plan.splits as u64,
                storage | copy,
            ),
            chunks: buffer("chunks", 4, wgpu::BufferUsages::UNIFORM),
            chunk_stride: aligned(std::mem::size_of::<Chunk>(), align),
            slots: Vec::new(),
            stats_slots: Vec::new(),
            mlp,
            step: init(
                "step",
                bytemuck::bytes_of(&StepSlot {
                    layer: 0,
                    pad: [0; 3],
                }),
                uniform,
            ),
            redraw,
            layers: LayerStore::new(ctx, model, d, options.resident_layer_bytes),
            finish: model.projects() || model.output_scale().is_some(),
        };
        pass.upload_slots(ctx);
        Ok(pass)
    }

    /// Writes one `Chunk` per planned dispatch into a new uniform buffer. (Bind groups refer
    /// to it: make them afterwards.)
    fn upload_slots(&mut self, ctx: &GpuContext) {
        let slots: Vec<u8> = (0..self.head_count)
            .flat_map(|h| {
                self.token_plan
                    .pieces()
                    .map(move |(first, tokens)| (h, first, tokens))
            })
            .flat_map(|(h, first, tokens)| {
                let slot = HeadSlot {
                    index: h as u32,
                    accumulate: (h > 0) as u32,
                    weight: self.head_weight,
                    first_token: first as u32,
                    tokens: tokens as u32,
                    pad: [0; 3],
                };
                let mut bytes = bytemuck::bytes_of(&slot).to_vec();
                bytes.resize(self.head_stride as usize, 0);
                bytes
            })
            .collect();
        self.heads = ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("heads"),
            contents: &slots,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        self.slots = self.plan.slots(self.max_groups);
        self.stats_slots = self.stats_plan.slots(self.max_groups);
        let bytes: Vec<u8> = self
            .slots
            .iter()
            .chain(&self.stats_slots)
            .flat_map(|s| {
                let mut slot = bytemuck::bytes_of(&chunk(s)).to_vec();
                slot.resize(self.chunk_stride as usize, 0);
                slot
            })
            .collect();
        self.chunks = ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("chunks"),
            contents: &bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
    }

    /// The offset of the first pair-statistics slot in the chunk buffer.
    pub fn stats_slot_offset(&self, i: usize) -> u32 {
        ((self.slots.len() + i) as u64 * self.chunk_stride) as u32
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
        AttentionGroups {
            queries: bind_group(
                ctx,
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
            attention: self.attention_group(ctx, kernels, keys, &self.chunks),
            merge: bind_group(
                ctx,
                "attention_merge",
                &kernels.merge_layout,
                &[
                    self.params.as_entire_binding(),
                    self.acc.as_entire_binding(),
                    self.ml.as_entire_binding(),
                    self.log_normaliser.as_entire_binding(),
                ],
            ),
            finish: bind_group(
                ctx,
                "attention_finish",
                &kernels.finish_layout,
                &[
                    self.params.as_entire_binding(),
                    slot_binding::<HeadSlot>(&self.heads),
                    self.value_matrix.as_entire_binding(),
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
            mlp: self.mlp.as_ref().map(|[a, b, w, hidden]| {
                [
                    bind_group(
                        ctx,
                        "mlp_hidden",
                        &kernels.mlp_hidden_layout,
                        &[
                            self.params.as_entire_binding(),
                            a.as_entire_binding(),
                            b.as_entire_binding(),
                            z.as_entire_binding(),
                            hidden.as_entire_binding(),
                            slot_binding::<HeadSlot>(&self.heads),
                        ],
                    ),
                    bind_group(
                        ctx,
                        "mlp_out",
                        &kernels.mlp_out_layout,
                        &[
                            self.params.as_entire_binding(),
                            w.as_entire_binding(),
                            hidden.as_entire_binding(),
                            out.as_entire_binding(),
                            slot_binding::<HeadSlot>(&self.heads),
                        ],
                    ),
                ]
            }),
        }
    }

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

    /// The bind group of the pair statistics of the tokens `x` into `stats`.
    pub fn stats_group(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        x: &wgpu::Buffer,
        stats: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        bind_group(
            ctx,
            "pair_stats",
            &kernels.stats_layout,
            &[
                self.stats_params.as_entire_binding(),
                slot_binding::<Chunk>(&self.chunks),
                self.betas.as_entire_binding(),
                x.as_entire_binding(),
                stats.as_entire_binding(),
            ],
        )
    }

    /// The dispatches of the pair statistics.
    pub fn stats_ops(&self, kernels: &Kernels, group: &wgpu::BindGroup) -> Vec<Op> {
        self.stats_slots
            .iter()
            .enumerate()
            .map(|(i, s)| Op {
                label: "pair_stats",
                pipeline: kernels.pair_stats.clone(),
                group: group.clone(),
                offset: Some(self.stats_slot_offset(i)),
                grid: (
                    s.groups_x,
                    s.systems,
                    s.z_blocks * self.stats_plan.splits as u32,
                ),
                streaming: true,
            })
            .collect()
    }

    /// The bind group of the redraw kernel, for a random model.
    pub fn redraw_group(&self, ctx: &GpuContext, kernels: &Kernels) -> Option<wgpu::BindGroup> {
        self.redraw.as_ref().map(|r| {
            bind_group(
                ctx,
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
        redraw.map(|group| {
            let elements = 2 * self.head_count * self.head_systems * self.sizes.d * self.sizes.d;
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
        })
    }

    /// Per-layer weights: when step `step` starts a new layer of the schedule, writes that
    /// layer's weights into the working buffers (a device copy from the resident layers, or a
    /// write from the host), queued before the next submission. Returns whether it did.
    pub fn select_layer(&mut self, ctx: &GpuContext, step: u32) -> bool {
        let Some(store) = self.layers.as_mut() else {
            return false;
        };
        let Some(l) = store.model.select_layer(step) else {
            return false;
        };
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("select_layer"),
            });
        for (target, bytes, source) in &store.parts {
            let mlp = self.mlp.as_ref();
            let dst = match target {
                LayerTarget::Scores => &self.score_matrix,
                LayerTarget::Values => &self.value_matrix,
                LayerTarget::MlpA => &mlp.expect("a perceptron")[0],
                LayerTarget::MlpB => &mlp.expect("a perceptron")[1],
                LayerTarget::MlpW => &mlp.expect("a perceptron")[2],
            };
            let offset = l as u64 * bytes;
            match source {
                LayerSource::Resident(all) => {
                    encoder.copy_buffer_to_buffer(all, offset, dst, 0, *bytes);
                }
                LayerSource::Host(all) => {
                    ctx.queue
                        .write_buffer(dst, 0, &all[offset as usize..(offset + bytes) as usize])
                }
            }
        }
        // Through the counted path, like every submission (tests/submissions_counted.rs).
        ctx.submit(encoder.finish());
        true
    }

    /// The dispatches of one evaluation, in order.
    pub fn ops(&self, kernels: &Kernels, groups: &AttentionGroups) -> Vec<Op> {
        let (ex, ey) = self.grids.elements;
        let (tx, ty) = self.grids.tokens;
        let op =
            |label, pipeline: &wgpu::ComputePipeline, group: &wgpu::BindGroup, offset, grid| Op {
                label,
                pipeline: pipeline.clone(),
                group: group.clone(),
                offset,
                grid,
                streaming: false,
            };
        // The O(n d^2) kernels, one dispatch per piece of whole tokens (plan::TokenPlan): the
        // piece's slot of head h, and a grid of `per_token` elements per token laid out as
        // the whole dispatch's (groups_x as in Params).
        let pieces: Vec<(usize, usize)> = self.token_plan.pieces().collect();
        let slot = |h: usize, p: usize| {
            ((h * self.token_plan.pieces + p) as u64 * self.head_stride) as u32
        };
        let grid = |tokens: usize, per_token: usize, groups_x: u32| {
            let groups = (tokens * per_token)
                .div_ceil(shaders::WORKGROUP as usize)
                .max(1);
            let x = groups.min(groups_x.max(1) as usize);
            (x as u32, groups.div_ceil(x) as u32, 1)
        };
        let d = self.sizes.d;
        // Pieces planned to the dispatch budget count against the submission's budget like
        // the attention's dispatches.
        let piece = |o: Op| Op {
            streaming: self.token_plan.pieces > 1,
            ..o
        };
        let mut ops = Vec::new();
        for h in 0..self.head_count {
            for (p, &(_, tokens)) in pieces.iter().enumerate() {
                ops.push(piece(op(
                    "queries",
                    &kernels.queries,
                    &groups.queries,
                    Some(slot(h, p)),
                    grid(tokens, d, ex),
                )));
            }
            for (i, s) in self.slots.iter().enumerate() {
                ops.push(Op {
                    streaming: true,
                    ..op(
                        "attention",
                        &kernels.attention,
                        &groups.attention,
                        Some((i as u64 * self.chunk_stride) as u32),
                        (s.groups_x, s.systems, s.z_blocks * self.plan.splits as u32),
                    )
                });
            }
            ops.push(op(
                "attention_merge",
                &kernels.attention_merge,
                &groups.merge,
                None,
                (ex, ey, 1),
            ));
            for (p, &(_, tokens)) in pieces.iter().enumerate() {
                ops.push(piece(op(
                    "attention_finish",
                    &kernels.attention_finish,
                    &groups.finish,
                    Some(slot(h, p)),
                    grid(tokens, d, ex),
                )));
            }
        }
        if let Some([hidden, out]) = &groups.mlp {
            let hx = self.grids.hidden.0;
            for (p, &(_, tokens)) in pieces.iter().enumerate() {
                ops.push(piece(op(
                    "mlp_hidden",
                    &kernels.mlp_hidden,
                    hidden,
                    Some(slot(0, p)),
                    grid(tokens, self.hidden, hx),
                )));
            }
            for (p, &(_, tokens)) in pieces.iter().enumerate() {
                ops.push(piece(op(
                    "mlp_out",
                    &kernels.mlp_out,
                    out,
                    Some(slot(0, p)),
                    grid(tokens, d, ex),
                )));
            }
        }
        if self.finish {
            ops.push(op(
                "tangent_project",
                &kernels.tangent_project,
                &groups.project,
                None,
                (tx, ty, 1),
            ));
        }
        ops
    }

    /// Measures the attention kernel's speed with probes that grow 4x from 2^18 pairs until
    /// one takes `plan::PROBE_SECONDS` (or 2^28 pairs), then plans to `budget` seconds per
    /// dispatch. Probes run the kernel over query blocks of system 0 and keys of split 0 of
    /// `keys`; they overwrite the softmax state, which every evaluation starts afresh. Bind
    /// groups must be made again afterwards (the chunk buffer is new).
    pub fn calibrate(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        keys: &wgpu::Buffer,
        options: PassOptions,
        budget: f64,
    ) -> Result<Calibration> {
        let shape = Self::kernel_shape(kernels);
        let probes = plan::probes(self.plan.blocks, self.plan.split_keys, shape);
        let probe_chunk = ctx.buffer(&wgpu::BufferDescriptor {
            label: Some("probe chunk"),
            size: self.chunk_stride,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let group = self.attention_group(ctx, kernels, keys, &probe_chunk);
        let stamps = ctx
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| super::Timer::new(ctx));
        let run = |probe: Probe| -> Result<f64> {
            let slot = DispatchSlot {
                key_offset: 0,
                key_count: probe.keys,
                first: true,
                first_block: 0,
                first_system: 0,
                systems: 1,
                groups_x: probe.blocks.min(self.max_groups as usize) as u32,
                z_blocks: 1,
            };
            ctx.queue
                .write_buffer(&probe_chunk, 0, bytemuck::bytes_of(&chunk(&slot)));
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("probe"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("probe"),
                    timestamp_writes: stamps.as_ref().map(|t| t.writes()),
                });
                pass.set_pipeline(&kernels.attention);
                pass.set_bind_group(0, &group, &[0]);
                pass.dispatch_workgroups(slot.groups_x, 1, 1);
            }
            if let Some(t) = &stamps {
                t.resolve(&mut enc);
            }
            ctx.wait()?;
            let start = Instant::now();
            ctx.submit(enc.finish());
            ctx.wait()?;
            let host = start.elapsed().as_secs_f64();
            match &stamps {
                Some(t) => Ok(t.read(ctx)?.unwrap_or(host)),
                None => Ok(host),
            }
        };
        // A first tiny dispatch pays for the pipeline's first use.
        run(probes[0])?;
        let (probe, seconds, count) = plan::run_probes(&probes, run)?;
        let pairs = probe.pairs(shape);
        let calibration = Calibration {
            probe,
            pairs,
            seconds,
            speed: pairs / seconds,
            timestamps: stamps.is_some(),
            probes: count,
        };
        let (plan, stats_plan, token_plan) = Self::plans(
            ctx,
            kernels,
            self.sizes,
            options,
            Some(calibration.speed),
            Some(budget),
            self.hidden,
        )?;
        if (plan.splits, plan.split_keys) != (self.plan.splits, self.plan.split_keys)
            || (stats_plan.splits, stats_plan.split_keys)
                != (self.stats_plan.splits, self.stats_plan.split_keys)
        {
            return Err(Error::Gpu(
                "internal: the key splits changed with the measured speed".into(),
            ));
        }
        self.plan = plan;
        self.stats_plan = stats_plan;
        self.token_plan = token_plan;
        self.calibration = Some(calibration);
        self.upload_slots(ctx);
        Ok(calibration)
    }
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
