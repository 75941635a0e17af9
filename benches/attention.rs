//! Criterion benches: one field evaluation and one RK4 step per backend, for n in {1024,
//! 4096, 16384, 65536} (and 2^18, 2^20 on a hardware GPU) and d in {3, 16, 64}, SA on the
//! sphere with Q = K = V = I. Throughput is in pair interactions (n^2 per evaluation, 4 n^2
//! per RK4 step), so criterion reports elements/s = pairs/s.
//!
//! Sizes are capped where a sample would take minutes: the f64 reference at n = 4096, a
//! software GPU (llvmpipe) at 16384. ATTNFLOW_BENCH_MAX_N lowers every cap; ATTNFLOW_BENCH
//! picks backends (comma list of cpu, reference, gpu). `scripts/bench-exponents` fits the
//! cost exponent in n from the results.
//!
//!     cargo bench --bench attention
//!     ATTNFLOW_BENCH=cpu ATTNFLOW_BENCH_MAX_N=16384 cargo bench --bench attention

use std::sync::Arc;
use std::time::Duration;

use attnflow::bench::bench_model;
use attnflow::cpu::CpuBackend;
use attnflow::gpu::{GpuBackend, GpuContext};
use attnflow::integrate::{Backend, Integrator, Slot, Stepper};
use attnflow::model::init::InitSpec;
use attnflow::model::{Mask, Shape};
use attnflow::reference::ReferenceBackend;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const NS: [usize; 6] = [1024, 4096, 16384, 65536, 1 << 18, 1 << 20];
const DS: [usize; 3] = [3, 16, 64];

fn wanted(name: &str) -> bool {
    std::env::var("ATTNFLOW_BENCH").map_or(true, |v| v.split(',').any(|b| b.trim() == name))
}

fn env_cap() -> usize {
    std::env::var("ATTNFLOW_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

type Make = Box<dyn Fn(Shape, &[f64]) -> Box<dyn Backend>>;

/// (name, largest n, constructor) for every backend to measure.
fn backends() -> Vec<(&'static str, usize, Make)> {
    let mut all: Vec<(&'static str, usize, Make)> = Vec::new();
    if wanted("cpu") {
        all.push((
            "cpu",
            65536,
            Box::new(|shape, x0| {
                let model = bench_model(shape.d, shape.batch, Mask::Full);
                Box::new(CpuBackend::new(&model, shape, x0).unwrap())
            }),
        ));
    }
    if wanted("reference") {
        all.push((
            "reference",
            4096,
            Box::new(|shape, x0| {
                let model = bench_model(shape.d, shape.batch, Mask::Full);
                Box::new(ReferenceBackend::new(&model, shape, x0).unwrap())
            }),
        ));
    }
    if wanted("gpu") {
        match GpuContext::new() {
            Ok(ctx) => {
                let cap = if ctx.is_software() { 16384 } else { 1 << 20 };
                eprintln!("GPU benches on {}", ctx.describe());
                let ctx = Arc::new(ctx);
                all.push((
                    "gpu",
                    cap,
                    Box::new(move |shape, x0| {
                        let model = bench_model(shape.d, shape.batch, Mask::Full);
                        Box::new(GpuBackend::new(ctx.clone(), &model, shape, x0).unwrap())
                    }),
                ));
            }
            Err(e) => eprintln!("no GPU benches: {e}"),
        }
    }
    all
}

fn attention(c: &mut Criterion) {
    // The default model of every bench backend: SA on the sphere, Q = K = V = I.
    let stepper = Stepper::new(&bench_model(3, 1, Mask::Full), Integrator::Rk4).unwrap();
    for (name, cap, make) in backends() {
        for kind in ["field", "rk4_step"] {
            let mut group = c.benchmark_group(format!("{kind}/{name}"));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
            for d in DS {
                for n in NS.into_iter().filter(|&n| n <= cap.min(env_cap())) {
                    let shape = Shape::new(1, n, d).unwrap();
                    let x0 = InitSpec::Uniform
                        .generate(shape, attnflow::model::Geometry::Sphere, 1)
                        .unwrap();
                    let mut backend = make(shape, &x0);
                    stepper.prepare(backend.as_mut()).unwrap();
                    let pairs = (n * n) as u64;
                    group.throughput(Throughput::Elements(if kind == "field" {
                        pairs
                    } else {
                        4 * pairs
                    }));
                    group.bench_with_input(BenchmarkId::new(format!("d{d}"), n), &n, |b, _| {
                        b.iter(|| {
                            if kind == "field" {
                                backend.field(Slot::State, 0).unwrap();
                            } else {
                                stepper.step(backend.as_mut(), 1e-3, 0).unwrap();
                            }
                            backend.sync().unwrap();
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters would look for fonts by name, and this crate's
    // plotters build registers its fonts explicitly (figures::register_fonts).
    config = Criterion::default().without_plots();
    targets = attention
}
criterion_main!(benches);
