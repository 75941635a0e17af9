//! Using attnflow as a library: watch 256 tokens on S^2 cluster under softmax attention, on
//! the f32 cpu backend, and print the minimum pairwise cosine as depth grows.
//!
//!     cargo run --release --example cluster

use attnflow::cpu::CpuBackend;
use attnflow::integrate::{Backend, Integrator, Stepper};
use attnflow::model::init::InitSpec;
use attnflow::model::observables::summarise;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};

fn main() -> attnflow::Result<()> {
    let shape = Shape::new(1, 256, 3)?;
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(3),
        vec![1.0],
    );
    let x0 = InitSpec::Uniform.generate(shape, model.geometry, 42)?;
    let mut backend = CpuBackend::new(&model, shape, &x0)?;
    let stepper = Stepper::new(&model, Integrator::Rk4)?;
    stepper.prepare(&mut backend)?;
    let h = 0.1;
    for step in 0..=200 {
        if step % 20 == 0 {
            let m = summarise(&backend.pair_stats()?, model.betas[0]);
            println!(
                "t = {:5.1}  energy {:.6}  min cos {:+.6}",
                step as f64 * h,
                m.energy,
                m.min_cos
            );
        }
        stepper.step(&mut backend, h, step)?;
    }
    Ok(())
}
