//! The side-by-side benchmark: attnflow's attention evaluation against two baseline kernels
//! on the same adapter and the same tokens, in one process: the simplest online-softmax
//! kernel one could write (`benches/kernels/simple.wgsl`: one query per invocation, keys
//! from a storage buffer) and attnflow's own kernel before the generated ones
//! (`benches/kernels/attention_v1.wgsl`). All three are compiled the same way (trusted
//! modules), timed by the host clock from submission to completion, medians of repeated
//! evaluations; the baselines' outputs are checked against attnflow's, so that a fast but
//! wrong baseline cannot flatter anyone.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use wgpu::util::DeviceExt;

use super::Stats;
use crate::error::{Error, Result};
use crate::gpu::codegen::Profile;
use crate::gpu::{GpuBackend, GpuContext, GpuOptions};
use crate::integrate::{Backend, Slot};
use crate::model::init::InitSpec;
use crate::model::{Attention, Geometry, Mask, Model, Shape, Weights};

const SIMPLE: &str = include_str!("../../../benches/kernels/simple.wgsl");
const V1: &str = include_str!("../../../benches/kernels/attention_v1.wgsl");
const V1_HEADER: &str = include_str!("../../../benches/kernels/attention_v1_header.wgsl");

/// llvmpipe's loop budget per invocation, as attnflow uses it.
const LOOP_BUDGET: usize = 60_000;

/// One kernel's measurement.
#[derive(Clone, Debug, Serialize)]
pub struct KernelTiming {
    pub kernel: String,
    pub seconds: Stats,
    pub pairs_per_second: f64,
    /// Largest |difference| from attnflow's field, over the largest |field| (attnflow: 0).
    pub relative_difference: f64,
}

/// One side-by-side comparison.
#[derive(Clone, Debug, Serialize)]
pub struct SideBySide {
    pub adapter: String,
    pub n: usize,
    pub d: usize,
    pub evals: usize,
    pub attnflow: KernelTiming,
    /// attnflow with the kernels of the other profile (the hardware kernels on a software
    /// adapter and the other way round), for reference.
    pub attnflow_other_profile: KernelTiming,
    pub simple: KernelTiming,
    /// attention_v1 compiled as attnflow compiles its kernels now (trusted modules: no index
    /// clamping, no loop bounding), and as it shipped (wgpu's checked modules).
    pub v1: KernelTiming,
    pub v1_as_shipped: KernelTiming,
    /// attnflow's pairs per second over each baseline's.
    pub ratio_to_simple: f64,
    pub ratio_to_v1: f64,
    pub ratio_to_v1_as_shipped: f64,
}

impl SideBySide {
    /// Every kernel timed, in the order of the report.
    pub fn kernels(&self) -> [&KernelTiming; 5] {
        [
            &self.attnflow,
            &self.attnflow_other_profile,
            &self.simple,
            &self.v1,
            &self.v1_as_shipped,
        ]
    }
}

fn model(d: usize) -> Model {
    Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        vec![1.0],
    )
}

/// The tangent projection of `mean` at the tokens: what attnflow's field is.
fn project(x: &[f32], mean: &[f64], d: usize) -> Vec<f64> {
    mean.chunks(d)
        .zip(x.chunks(d))
        .flat_map(|(a, x)| {
            let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let along: f64 = a.iter().zip(&x).map(|(a, x)| a * x).sum::<f64>()
                / x.iter().map(|v| v * v).sum::<f64>();
            a.iter()
                .zip(&x)
                .map(|(a, x)| a - along * x)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn relative(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
        / scale
}

/// A baseline kernel: one pipeline run over chunks of keys, with its state buffers.
struct Baseline {
    pipeline: wgpu::ComputePipeline,
    groups: Vec<wgpu::BindGroup>,
    grid: (u32, u32, u32),
    acc: wgpu::Buffer,
    ml: wgpu::Buffer,
    /// acc is [n, stride] floats.
    stride: usize,
}

impl Baseline {
    fn pipeline(
        ctx: &GpuContext,
        label: &str,
        source: String,
        checked: bool,
    ) -> wgpu::ComputePipeline {
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if checked {
            ctx.device.create_shader_module(desc)
        } else {
            // SAFETY: both baselines index within the buffers their chunks describe and
            // loop a bounded number of times; they are compiled as attnflow's kernels are.
            unsafe {
                ctx.device
                    .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        };
        ctx.pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    fn storage(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            })
    }

    fn simple(ctx: &GpuContext, q: &[f32], x: &[f32], n: usize, d: usize) -> Self {
        let pipeline = Self::pipeline(
            ctx,
            "simple",
            format!("const D: u32 = {d}u;\n{SIMPLE}"),
            false,
        );
        let (qb, xb) = (Self::storage(ctx, "q", q), Self::storage(ctx, "x", x));
        let acc = Self::storage(ctx, "acc", &vec![0.0; n * d]);
        let ml = Self::storage(ctx, "ml", &vec![0.0; 2 * n]);
        // Per key: the score and accumulate loops (2 d + 1 iterations).
        let keys = (LOOP_BUDGET / (2 * d + 2)).max(1);
        let groups = (0..n.div_ceil(keys))
            .map(|c| {
                let start = c * keys;
                let chunk = [
                    n as u32,
                    start as u32,
                    keys.min(n - start) as u32,
                    (c == 0) as u32,
                ];
                let uniform = ctx
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("chunk"),
                        contents: bytemuck::cast_slice(&chunk),
                        usage: wgpu::BufferUsages::UNIFORM,
                    });
                ctx.bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("simple"),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &[
                        (0, uniform.as_entire_binding()),
                        (1, qb.as_entire_binding()),
                        (2, xb.as_entire_binding()),
                        (3, acc.as_entire_binding()),
                        (4, ml.as_entire_binding()),
                    ]
                    .map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource }),
                })
            })
            .collect();
        Baseline {
            pipeline,
            groups,
            grid: (n.div_ceil(64) as u32, 1, 1),
            acc,
            ml,
            stride: d,
        }
    }

    fn v1(ctx: &GpuContext, q: &[f32], x: &[f32], n: usize, d: usize, checked: bool) -> Self {
        let dv = d.div_ceil(4);
        let per_key = 16 * dv as u32;
        let fit = (ctx.limits.max_compute_workgroup_storage_size / per_key).clamp(1, 256);
        let tk = 1usize << (31 - fit.leading_zeros());
        let header = format!(
            "const D: u32 = {d}u;\nconst DV: u32 = {dv}u;\nconst WG: u32 = 64u;\n\
             const TK: u32 = {tk}u;\nconst TILE_VECS: u32 = {}u;\n{V1_HEADER}",
            tk * dv
        );
        let pipeline = Self::pipeline(ctx, "attention_v1", format!("{header}\n{V1}"), checked);
        let (qb, xb) = (Self::storage(ctx, "q", q), Self::storage(ctx, "x", x));
        let acc = Self::storage(ctx, "acc", &vec![0.0; n * d]);
        let ml = Self::storage(ctx, "ml", &vec![0.0; 2 * n]);
        let blocks = n.div_ceil(64);
        let params: [u32; 12] = [n as u32, n as u32, 1, 0, 0, 0, blocks as u32, 0, 0, 0, 0, 0];
        let params = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        // Its own loop budget (src/backend/gpu/shaders.rs of its day).
        let per_tile = 1 + 2 * dv + 5 * (tk * dv).div_ceil(64);
        let per_key = (3 * dv + 1) as f64 + per_tile as f64 / tk as f64;
        let keys = (((LOOP_BUDGET - 10 * dv - 16) as f64 / per_key) as usize).max(1);
        let groups = (0..n.div_ceil(keys))
            .map(|c| {
                let start = c * keys;
                let chunk = [start as u32, keys.min(n - start) as u32, (c == 0) as u32, 0];
                let uniform = ctx
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("chunk"),
                        contents: bytemuck::cast_slice(&chunk),
                        usage: wgpu::BufferUsages::UNIFORM,
                    });
                ctx.bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("attention_v1"),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &[
                        (0, params.as_entire_binding()),
                        (1, uniform.as_entire_binding()),
                        (2, qb.as_entire_binding()),
                        (3, xb.as_entire_binding()),
                        (4, acc.as_entire_binding()),
                        (5, ml.as_entire_binding()),
                    ]
                    .map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource }),
                })
            })
            .collect();
        Baseline {
            pipeline,
            groups,
            grid: (blocks as u32, 1, 1),
            acc,
            ml,
            stride: d,
        }
    }

    /// One evaluation: every chunk, submitted together; returns host seconds.
    fn run(&self, ctx: &GpuContext) -> Result<f64> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        for group in &self.groups {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(self.grid.0, self.grid.1, self.grid.2);
        }
        let t = Instant::now();
        ctx.submit(enc.finish());
        ctx.wait()?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// The softmax mean acc / l of every query.
    fn mean(&self, ctx: &GpuContext, n: usize, d: usize) -> Result<Vec<f64>> {
        let acc = read(ctx, &self.acc)?;
        let ml = read(ctx, &self.ml)?;
        Ok((0..n * d)
            .map(|e| f64::from(acc[(e / d) * self.stride + e % d]) / f64::from(ml[2 * (e / d) + 1]))
            .collect())
    }
}

fn read(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    ctx.submit(enc.finish());
    let bytes = crate::gpu::map_and_read(ctx, &staging)?;
    Ok(bytemuck::cast_slice(&bytes).to_vec())
}

fn timing(kernel: &str, seconds: &[f64], pairs: f64, difference: f64) -> KernelTiming {
    let stats = Stats::of(seconds);
    KernelTiming {
        kernel: kernel.to_string(),
        seconds: stats,
        pairs_per_second: pairs / stats.median,
        relative_difference: difference,
    }
}

/// Measures attnflow's evaluation (SA on the sphere, Q = K = V = I, beta = 1, n uniform
/// tokens in dimension d) and both baselines, `evals` times each after a warm-up.
pub fn side_by_side(ctx: Arc<GpuContext>, n: usize, d: usize, evals: usize) -> Result<SideBySide> {
    if evals == 0 || n == 0 || d < 2 {
        return Err(Error::Input(
            "side by side needs n >= 1, d >= 2 and evals >= 1".into(),
        ));
    }
    let shape = Shape::new(1, n, d)?;
    let model = model(d);
    let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, 1)?;
    let x: Vec<f32> = x0.iter().map(|&v| v as f32).collect();
    let pairs = (n * n) as f64;
    let ours = if ctx.is_software() {
        Profile::Software
    } else {
        Profile::Hardware
    };
    let other = match ours {
        Profile::Software => Profile::Hardware,
        Profile::Hardware => Profile::Software,
    };
    let attnflow = |profile: Profile| -> Result<(Vec<f64>, Vec<f64>)> {
        let options = GpuOptions {
            profile: Some(profile),
            ..Default::default()
        };
        let mut g = GpuBackend::with_options(ctx.clone(), &model, shape, &x0, options)?;
        g.prepare(1)?;
        g.field(Slot::State, 0)?;
        g.sync()?;
        let mut seconds = Vec::with_capacity(evals);
        for _ in 0..evals {
            let t = Instant::now();
            g.field(Slot::State, 0)?;
            g.sync()?;
            seconds.push(t.elapsed().as_secs_f64());
        }
        Ok((seconds, g.read_field(0)?.to_f64()))
    };
    let (ours_s, field) = attnflow(ours)?;
    let (other_s, other_field) = attnflow(other)?;
    // The baselines take q = beta x (beta = 1) in natural units.
    let baseline = |b: Baseline| -> Result<(Vec<f64>, f64)> {
        b.run(&ctx)?;
        let seconds = (0..evals)
            .map(|_| b.run(&ctx))
            .collect::<Result<Vec<_>>>()?;
        let mean = b.mean(&ctx, n, d)?;
        Ok((seconds, relative(&project(&x, &mean, d), &field)))
    };
    let (simple_s, simple_diff) = baseline(Baseline::simple(&ctx, &x, &x, n, d))?;
    let (v1_s, v1_diff) = baseline(Baseline::v1(&ctx, &x, &x, n, d, false))?;
    let (shipped_s, shipped_diff) = baseline(Baseline::v1(&ctx, &x, &x, n, d, true))?;
    let attnflow = timing(&format!("attnflow ({ours:?} kernels)"), &ours_s, pairs, 0.0);
    let simple = timing("simple", &simple_s, pairs, simple_diff);
    let v1 = timing("attention_v1 (trusted)", &v1_s, pairs, v1_diff);
    let shipped = timing("attention_v1 (as shipped)", &shipped_s, pairs, shipped_diff);
    Ok(SideBySide {
        adapter: ctx.describe(),
        n,
        d,
        evals,
        ratio_to_simple: attnflow.pairs_per_second / simple.pairs_per_second,
        ratio_to_v1: attnflow.pairs_per_second / v1.pairs_per_second,
        ratio_to_v1_as_shipped: attnflow.pairs_per_second / shipped.pairs_per_second,
        attnflow_other_profile: timing(
            &format!("attnflow ({other:?} kernels)"),
            &other_s,
            pairs,
            relative(&other_field, &field),
        ),
        attnflow,
        simple,
        v1,
        v1_as_shipped: shipped,
    })
}
