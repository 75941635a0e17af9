//! How long this adapter takes to compile each distinct kernel of the catalogue (every
//! specialisation a GPU can get, src/backend/gpu/catalogue.rs): shader module plus compute
//! pipeline, and one empty dispatch (llvmpipe compiles a kernel at its first
//! dispatch, not at pipeline creation), one at a time, longest first. On llvmpipe this is what the GPU tests spend most
//! of their time on (docs/accuracy.md, "The test command").
//!
//! ```sh
//! MESA_SHADER_CACHE_DIR=$(mktemp -d) cargo run --release --example kernel_compile_times
//! ```
//!
//! Point `MESA_SHADER_CACHE_DIR` at an empty folder, or Mesa's on-disk cache answers instead
//! of the compiler. An argument keeps the kernels whose profile list (as printed) contains
//! it: `-- llvmpipe` for those the llvmpipe profile gets, `-- '(llvmpipe)'` for its own.

use std::collections::BTreeSet;
use std::time::Instant;

use attnflow::gpu::GpuContext;
use attnflow::gpu::catalogue;

fn main() {
    let only = std::env::args().nth(1);
    let ctx = GpuContext::new().expect("a GPU adapter");
    eprintln!("compiling on {}", ctx.describe());
    let mut seen = BTreeSet::new();
    let mut times: Vec<(f64, String)> = Vec::new();
    for entry in catalogue::specialisations() {
        for (name, layout, text) in entry.spec.sources() {
            if !seen.insert(text.clone()) {
                continue;
            }
            let who = format!(
                "{name} d={} ({})",
                entry.spec.d,
                if name == "attention" || name == "pair_stats" {
                    entry.profiles().join(",")
                } else {
                    "any profile".into()
                }
            );
            if only.as_ref().is_some_and(|o| !who.contains(o.as_str())) {
                continue;
            }
            let t = Instant::now();
            dispatch_once(&ctx, name, &layout, &text);
            ctx.wait().expect("compiles");
            let s = t.elapsed().as_secs_f64();
            eprintln!("{s:8.2} s  {who}");
            times.push((s, who));
        }
    }
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = times.iter().map(|t| t.0).sum();
    println!(
        "{} distinct kernel texts, {total:.1} s in all; longest first:",
        times.len()
    );
    for (s, who) in &times {
        println!("{s:8.2} s  {:5.1}%  {who}", 100.0 * s / total);
    }
}

/// Compiles `text` as the backend does (trusted module, explicit layout from the letters of
/// `kernels::layout`) and dispatches one workgroup with zeroed uniforms (every kernel returns
/// at once for zero tokens), so that the compiler runs.
fn dispatch_once(ctx: &GpuContext, name: &str, letters: &str, text: &str) {
    let device = &ctx.device;
    let entries: Vec<wgpu::BindGroupLayoutEntry> = letters
        .chars()
        .enumerate()
        .map(|(i, k)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match k {
                    'u' | 'd' => wgpu::BufferBindingType::Uniform,
                    'r' => wgpu::BufferBindingType::Storage { read_only: true },
                    'w' => wgpu::BufferBindingType::Storage { read_only: false },
                    other => panic!("binding kind {other}"),
                },
                has_dynamic_offset: k == 'd',
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(name),
        entries: &entries,
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(text.into()),
    };
    // SAFETY: as in kernels::Kernels::new, and every kernel returns before its first access
    // for zero tokens.
    let module = unsafe {
        device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
    };
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let buffers: Vec<wgpu::Buffer> = letters
        .chars()
        .map(|k| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 1 << 16,
                usage: if matches!(k, 'u' | 'd') {
                    wgpu::BufferUsages::UNIFORM
                } else {
                    wgpu::BufferUsages::STORAGE
                },
                mapped_at_creation: false,
            })
        })
        .collect();
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &bgl,
        entries: &buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b,
                    offset: 0,
                    size: None,
                }),
            })
            .collect::<Vec<_>>(),
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        let offsets: &[u32] = if letters.contains('d') { &[0] } else { &[] };
        pass.set_bind_group(0, &group, offsets);
        pass.dispatch_workgroups(1, 1, 1);
    }
    ctx.queue.submit([encoder.finish()]);
}
