//! Quick kernel timing (median of 15 evaluations) while tuning; the real benchmarks are
//! `attnflow bench` and `cargo bench`.
use attnflow::cpu::{CpuBackend, CpuKernel};
use attnflow::integrate::{Backend, Slot};
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights, init::InitSpec};
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(8192);
    let d: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(3);
    let shape = Shape::new(1, n, d).unwrap();
    let model = Model {
        attention: Attention::Sa,
        geometry: Geometry::Sphere,
        mask: Mask::Full,
        weights: Weights::identity(d),
        betas: vec![1.0],
    };
    let x0 = InitSpec::Uniform
        .generate(shape, model.geometry, 1)
        .unwrap();
    let mut b = CpuBackend::with_kernel(&model, shape, &x0, CpuKernel::detect()).unwrap();
    b.prepare(1).unwrap();
    b.field(Slot::State, 0).unwrap();
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let t = std::time::Instant::now();
            b.field(Slot::State, 0).unwrap();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "n={n} d={d}: median {:.3e} pairs/s (min time {:.3e})",
        (n * n) as f64 / times[7],
        (n * n) as f64 / times[0]
    );
}
