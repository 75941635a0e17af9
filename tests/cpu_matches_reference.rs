//! The cpu backend against the f64 reference (MODELS.md §1-2): after RK4 steps over the core
//! grid, per-system betas, the overflow report for USA beyond f32, and the adapter limits.

mod common;

use attnflow::cpu::{CpuBackend, CpuKernel};

use attnflow::reference::ReferenceBackend;
use common::*;

/// Tolerance of f32 GPU results against f64 after 3 RK4 steps: |error| <= TOL + TOL |want|.
/// f32 rounding in a score is about beta d eps; the largest errors seen over the grid were
/// about 3e-6 (beta = 100, d = 128 included); the bound leaves 30x margin.
const TOL: f64 = 1e-4;
const STEPS: usize = 3;

/// Every kernel version this CPU runs (AVX2 where present, and the portable loop).
#[test]
fn cpu_matches_reference_over_the_core_grid() {
    for kernel in [CpuKernel::Avx2, CpuKernel::Portable] {
        if kernel.supported() {
            grid_with(kernel);
        } else {
            eprintln!("this CPU cannot run the {} kernel", kernel.name());
        }
    }
}

fn grid_with(kernel: CpuKernel) {
    let mut worst: f64 = 0.0;
    for case in grid() {
        let model = case.model();
        let x0 = case.initial();
        let h = case.step_size();
        let want = evolve(
            &mut ReferenceBackend::new(&model, case.shape, &x0).unwrap(),
            &case,
            h,
            STEPS,
        );
        let mut cpu = CpuBackend::with_kernel(&model, case.shape, &x0, kernel).unwrap();
        let got = evolve(&mut cpu, &case, h, STEPS);
        let err = assert_close(&got, &want, case.shape, TOL, TOL, &case.label());
        eprintln!(
            "{} {:<80} h={h:.2e} max|err|={err:.2e}",
            kernel.name(),
            case.label()
        );
        worst = worst.max(err);
    }
    eprintln!(
        "largest cpu ({}) error over the grid: {worst:.3e}",
        kernel.name()
    );
}

/// One field evaluation with many key tiles and query chunks (n beyond the grid), where the
/// running maximum moves between tiles: scores grow along the sequence.
#[test]
fn cpu_field_matches_reference_across_many_tiles() {
    use attnflow::integrate::{Backend, Slot};
    use attnflow::model::weights::QkvSpec;
    use attnflow::model::{Attention, Geometry, Mask, Shape};
    for (d, attention, mask) in [
        (3, Attention::Sa, Mask::Full),
        (3, Attention::Usa, Mask::Causal),
        (16, Attention::Sa, Mask::Causal),
    ] {
        let case = Case {
            shape: Shape::new(1, 5003, d).unwrap(),
            attention,
            geometry: Geometry::Euclidean,
            mask,
            qkv: QkvSpec::Identity,
            betas: vec![2.0],
            seed: 8,
        };
        let model = case.model();
        // Tokens that lengthen along the sequence, so later tiles hold larger scores.
        let x0: Vec<f64> = case
            .initial()
            .chunks(d)
            .enumerate()
            .flat_map(|(j, t)| {
                t.iter()
                    .map(move |v| v * (1.0 + 1.5 * j as f64 / 5003.0))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut want = vec![0.0; x0.len()];
        attnflow::reference::field(&model, case.shape, &x0, &mut want);
        for kernel in [CpuKernel::Avx2, CpuKernel::Portable] {
            if !kernel.supported() {
                continue;
            }
            let mut cpu = CpuBackend::with_kernel(&model, case.shape, &x0, kernel).unwrap();
            cpu.prepare(1).unwrap();
            cpu.field(Slot::State, 0).unwrap();
            let got = cpu.read_field(0).unwrap().to_f64();
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert_close(
                &got,
                &want,
                case.shape,
                1e-5 * scale,
                1e-5,
                &format!("{} {}", kernel.name(), case.label()),
            );
        }
    }
}
