//! The cpu backend against the f64 reference (MODELS.md §1-2): after RK4 steps over the core
//! grid, per-system betas, the overflow report for USA beyond f32, and the adapter limits.

mod common;

use attnflow::cpu::CpuBackend;

use attnflow::reference::ReferenceBackend;
use common::*;

/// Tolerance of f32 GPU results against f64 after 3 RK4 steps: |error| <= TOL + TOL |want|.
/// f32 rounding in a score is about beta d eps; the largest errors seen over the grid were
/// about 3e-6 (beta = 100, d = 128 included); the bound leaves 30x margin.
const TOL: f64 = 1e-4;
const STEPS: usize = 3;

#[test]
fn cpu_matches_reference_over_the_core_grid() {
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
        let mut cpu = CpuBackend::new(&model, case.shape, &x0).unwrap();
        let got = evolve(&mut cpu, &case, h, STEPS);
        let err = assert_close(&got, &want, case.shape, TOL, TOL, &case.label());
        eprintln!("{:<80} h={h:.2e} max|err|={err:.2e}", case.label());
        worst = worst.max(err);
    }
    eprintln!("largest cpu error over the grid: {worst:.3e}");
}
