//! The cpu backend against the f64 reference (docs/model.md §1-2): after RK4 steps over the core
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

/// The streamed observables (energy, mean and minimum cosine) of both CPU kernels against
/// the reference's plain f64 loops: n across several key tiles, tokens off the sphere in R^d,
/// beta up to 50 (the per-tile maximum of the sum of exponentials moves).
#[test]
fn cpu_pair_stats_match_reference() {
    use attnflow::integrate::Backend;
    use attnflow::model::observables::summarise;
    use attnflow::model::weights::QkvSpec;
    use attnflow::model::{Attention, Geometry, Mask, Shape};
    for kernel in [CpuKernel::Avx2, CpuKernel::Portable] {
        if !kernel.supported() {
            continue;
        }
        for (n, d) in [(2501, 2), (3000, 3), (1101, 16), (700, 64)] {
            for geometry in [Geometry::Sphere, Geometry::Euclidean] {
                let case = Case {
                    shape: Shape::new(2, n, d).unwrap(),
                    attention: Attention::Sa,
                    geometry,
                    mask: Mask::Full,
                    qkv: QkvSpec::Identity,
                    betas: vec![1.0, 50.0],
                    seed: 3,
                };
                let (model, shape) = (case.model(), case.shape);
                // Off the sphere: scale every token by a factor in [0.5, 1.5].
                let x0: Vec<f64> = case
                    .initial()
                    .chunks(d)
                    .enumerate()
                    .flat_map(|(t, v)| {
                        let s = 0.5 + (t % 7) as f64 / 6.0;
                        v.iter().map(move |c| c * s).collect::<Vec<_>>()
                    })
                    .collect();
                let x32: Vec<f64> = x0.iter().map(|&v| f64::from(v as f32)).collect();
                let mut c = CpuBackend::with_kernel(&model, shape, &x0, kernel).unwrap();
                let got = c.pair_stats().unwrap();
                let want = attnflow::reference::pair_stats(&model.betas, shape, &x32);
                for b in 0..2 {
                    let rows = b * n..(b + 1) * n;
                    let (gm, wm) = (
                        summarise(&got[rows.clone()], model.betas[b]),
                        summarise(&want[rows.clone()], model.betas[b]),
                    );
                    let rel = |g: f64, w: f64| (g - w).abs() / w.abs().max(1e-3);
                    let label = format!(
                        "{} n = {n}, d = {d}, {geometry:?}, system {b}",
                        kernel.name()
                    );
                    assert!(
                        rel(gm.energy, wm.energy) < 1e-5
                            && (gm.mean_cos - wm.mean_cos).abs() < 1e-5
                            && (gm.min_cos - wm.min_cos).abs() < 1e-6,
                        "{label}: got {gm:?}, want {wm:?}"
                    );
                    // And per token: the log of the exponential sums, the cosine sums.
                    for (t, (g, w)) in got[rows.clone()].iter().zip(&want[rows]).enumerate() {
                        let (lg, lw) = (g.lse_max + g.lse_sum.ln(), w.lse_max + w.lse_sum.ln());
                        assert!(
                            (lg - lw).abs() <= 2e-6 * (1.0 + lw.abs())
                                && (g.sum_cos - w.sum_cos).abs() <= 1e-5 * n as f64
                                && (g.sum_dot - w.sum_dot).abs() <= 1e-5 * n as f64 * 2.25,
                            "{label}, token {t}: got {g:?}, want {w:?}"
                        );
                    }
                }
            }
        }
    }
}
