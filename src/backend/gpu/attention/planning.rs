//! How an evaluation is cut into dispatches: the plans of the attention, the pair statistics
//! and the O(n d^2) kernels (`plan`), and the speed probe (`AttentionPass::calibrate`) that
//! plans them to a dispatch budget on hardware adapters.

use std::time::Instant;

use super::{AttentionPass, PassOptions, chunk};
use crate::backend::LayerShape;
use crate::backend::gpu::kernels::Kernels;
use crate::backend::gpu::plan::{
    self, Budget, DispatchSlot, KernelShape, Plan, PlanInput, Probe, TokenPlan,
};
use crate::backend::gpu::{GpuContext, Timer, shaders};
use crate::error::{Error, Result};

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

/// The attention kernel's shape, as the planner sees it.
pub(super) fn kernel_shape(kernels: &Kernels) -> KernelShape {
    KernelShape {
        queries_per_group: kernels.spec.attention.queries_per_group() as usize,
        tile_keys: kernels.spec.attention.tile_keys() as usize,
    }
}

/// The pair-statistics kernel's shape, as the planner sees it.
fn stats_shape(kernels: &Kernels) -> KernelShape {
    KernelShape {
        queries_per_group: kernels.spec.pairs.queries_per_group() as usize,
        tile_keys: kernels.spec.pairs.tk as usize,
    }
}

/// The plans of one evaluation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plans {
    pub attention: Plan,
    /// The pair statistics (self-attention only).
    pub stats: Plan,
    /// The pieces of whole tokens of the O(n d^2) kernels.
    pub tokens: TokenPlan,
}

/// The plans of the attention and the pair statistics at a measured speed (None: not
/// measured) with the dispatch budget `budget`.
pub(super) fn plans(
    ctx: &GpuContext,
    kernels: &Kernels,
    sizes: LayerShape,
    options: PassOptions,
    speed: Option<f64>,
    budget: Option<f64>,
    hidden: usize,
) -> Result<Plans> {
    let software = ctx.is_software();
    let max_groups = options.groups_per_dimension(ctx);
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
        kernel: kernel_shape(kernels),
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
        kernel: stats_shape(kernels),
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
    Ok(Plans {
        attention,
        stats,
        tokens,
    })
}

impl AttentionPass {
    /// Measures the attention kernel's speed with probes that grow 4x from 2^18 pairs until
    /// one takes `plan::PROBE_SECONDS` (or 2^28 pairs), then plans to `budget` seconds per
    /// dispatch. Probes run the kernel over query blocks of system 0 and keys of split 0 of
    /// `keys`; they overwrite the softmax state, which every evaluation starts afresh. Bind
    /// groups must be made again afterwards (the chunk and head-slot buffers are new).
    pub fn calibrate(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        keys: &wgpu::Buffer,
        options: PassOptions,
        budget: f64,
    ) -> Result<Calibration> {
        let calibration = self.probe_speed(ctx, kernels, keys)?;
        self.replan(ctx, kernels, options, calibration.speed, budget)?;
        self.calibration = Some(calibration);
        Ok(calibration)
    }

    /// Runs the probes (see `calibrate`) and reports the speed of the largest.
    fn probe_speed(
        &self,
        ctx: &GpuContext,
        kernels: &Kernels,
        keys: &wgpu::Buffer,
    ) -> Result<Calibration> {
        let shape = kernel_shape(kernels);
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
            .then(|| Timer::new(ctx));
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
        Ok(Calibration {
            probe,
            pairs,
            seconds,
            speed: pairs / seconds,
            timestamps: stamps.is_some(),
            probes: count,
        })
    }

    /// Plans again at the measured `speed` to `budget` seconds per dispatch, keeping the key
    /// splits (the softmax state and the parameters are sized by them), and writes the new
    /// chunks and head slots.
    fn replan(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        options: PassOptions,
        speed: f64,
        budget: f64,
    ) -> Result<()> {
        let hidden = self.mlp.as_ref().map_or(0, |m| m.width);
        let plans = plans(
            ctx,
            kernels,
            self.sizes,
            options,
            Some(speed),
            Some(budget),
            hidden,
        )?;
        let splits = |p: &Plan| (p.splits, p.split_keys);
        if splits(&plans.attention) != splits(&self.plan)
            || splits(&plans.stats) != splits(&self.stats.plan)
        {
            return Err(Error::Gpu(
                "internal: the key splits changed with the measured speed".into(),
            ));
        }
        self.upload_plans(ctx, plans);
        Ok(())
    }
}
