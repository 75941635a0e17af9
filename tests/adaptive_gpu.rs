//! Adaptive stepping on the GPU backend (docs/adaptive.md, src/backend/gpu/adaptive.rs)
//! against the f64 reference: each per-system operation at once (combine, error sums reduced
//! on the device, dense output, acceptance with the FSAL copy), over several workgroups per
//! system and a grid split over two dimensions; then whole runs of bosh3, dopri5 and tsit5
//! (accepted steps and states), an ensemble against separate runs, and one shared step.
//! Dawn/Tint: tests/adaptive_gpu_tint.rs.

mod common;

use attnflow::gpu::{GpuBackend, GpuOptions};
use attnflow::integrate::adaptive::{Options, SystemState, integrate_adaptive};
use attnflow::integrate::{Backend, Integrator, Slot};
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};
use attnflow::reference::ReferenceBackend;
use common::*;

const PAIRS: [Integrator; 3] = [Integrator::Bosh3, Integrator::Dopri5, Integrator::Tsit5];

fn clustering(batch: usize, n: usize, betas: Vec<f64>) -> (Model, Shape, Vec<f64>) {
    let shape = Shape::new(batch, n, 3).unwrap();
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(3),
        betas,
    );
    let x0 = InitSpec::Uniform
        .generate(shape, Geometry::Sphere, 11)
        .unwrap();
    (model, shape, x0)
}

fn solve(
    backend: &mut dyn Backend,
    model: &Model,
    integrator: Integrator,
    o: Options,
    t_end: f64,
    outputs: &[f64],
) -> (Vec<Vec<f64>>, Vec<SystemState>) {
    integrate_adaptive(backend, model, integrator, o, t_end, outputs).unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Each operation of the 7 stages of a pair, gpu (f32) against the reference (f64), on 2
/// systems of 150 tokens (three workgroups of 64 per system, the last partial) in d = 5:
/// stage values within 2e-6 + 2e-6 |want|, error sums (f32 on the device) within 1e-5
/// relative. Then one system of 400 tokens in d = 2 with at most 4 workgroups per grid
/// dimension: its 7 workgroups take a 4 x 2 grid, one workgroup past the end.
#[test]
fn each_operation_matches_the_reference() {
    let Some(ctx) = gpu() else { return };
    for (batch, n, d, max_groups) in [(2, 150, 5, None), (1, 400, 2, Some(4))] {
        let shape = Shape::new(batch, n, d).unwrap();
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            [1.0, 4.0][..batch].to_vec(),
        );
        let x0 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 3)
            .unwrap();
        let options = GpuOptions {
            max_groups,
            ..Default::default()
        };
        let mut g = GpuBackend::with_options(ctx.clone(), &model, shape, &x0, options).unwrap();
        let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
        let both: [&mut dyn Backend; 2] = [&mut g, &mut r];
        let mut sums = [vec![0.0; batch], vec![0.0; batch]];
        let mut more_sums = [vec![0.0; batch], vec![0.0; batch]];
        let mut dense: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut fields: [Vec<Vec<f64>>; 2] = [Vec::new(), Vec::new()];
        let mut after: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut first_k: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        // The last system accepted, the first of two not.
        let accepted = [batch == 1, true];
        for (i, be) in both.into_iter().enumerate() {
            be.prepare_adaptive(7).unwrap();
            be.field(Slot::State, 0).unwrap();
            for s in 1..7 {
                // A different combination per system; every other one renormalised.
                let stages: Vec<usize> = (0..s).collect();
                let coeffs: Vec<f64> = (0..batch)
                    .flat_map(|b| (0..s).map(move |j| 0.03 * (j as f64 + 1.0) * (b as f64 + 1.0)))
                    .collect();
                be.combine_systems(&stages, &coeffs, s % 2 == 0).unwrap();
                be.field(Slot::Stage, s).unwrap();
            }
            fields[i] = (0..7).map(|s| be.read_field(s).unwrap().to_f64()).collect();
            // The new solution in the stage buffer (all seven stages, two dispatches).
            let all: Vec<usize> = (0..7).collect();
            let c: Vec<f64> = (0..7 * batch)
                .map(|k| 0.01 * ((k * 7) % 5) as f64 - 0.015)
                .collect();
            be.combine_systems(&all, &c, true).unwrap();
            // The error of an embedded pair: stages out of order, with a repeat.
            let e: Vec<f64> = (0..6 * batch).map(|k| 1e-3 * (k as f64 - 5.5)).collect();
            be.scaled_sums(&[6, 0, 2, 3, 4, 0], &e, false, 1e-6, 1e-4, &mut sums[i])
                .unwrap();
            // The first step's norms: the state and one stage.
            be.scaled_sums(
                &[2],
                &[0.5, 2.0][..batch],
                true,
                1e-6,
                1e-4,
                &mut more_sums[i],
            )
            .unwrap();
            dense[i] = be.interpolate(&all, &c, true).unwrap();
            be.accept_systems(&accepted[..batch], Some((6, 0))).unwrap();
            after[i] = be.read_state().unwrap().to_f64();
            first_k[i] = be.read_field(0).unwrap().to_f64();
        }
        let what = |op: &str| format!("{op} ({batch} x {n} tokens, d = {d})");
        for (g, r) in fields[0].iter().zip(&fields[1]) {
            assert_close(g, r, shape, 2e-6, 2e-6, &what("k"));
        }
        assert_close(
            &dense[0],
            &dense[1],
            shape,
            2e-6,
            2e-6,
            &what("interpolate"),
        );
        assert_close(&after[0], &after[1], shape, 2e-6, 2e-6, &what("accept"));
        assert_close(
            &first_k[0],
            &first_k[1],
            shape,
            2e-6,
            2e-6,
            &what("FSAL copy"),
        );
        for b in 0..batch {
            for (got, want, op) in [
                (sums[0][b], sums[1][b], "error sum"),
                (more_sums[0][b], more_sums[1][b], "state sum"),
            ] {
                eprintln!("{} system {b}: gpu {got:e}, reference {want:e}", what(op));
                assert!(
                    want > 1.0 && (got - want).abs() <= 1e-5 * want,
                    "{} system {b}: gpu {got:e}, reference {want:e}",
                    what(op)
                );
            }
        }
        let per = n * d;
        let one = Shape::new(1, n, d).unwrap();
        let last = (batch - 1) * per..;
        // The accepted system holds the new solution, and its k0 is its k6.
        assert_close(
            &after[0][last.clone()],
            &dense[1][last.clone()],
            one,
            2e-6,
            2e-6,
            &what("accepted state"),
        );
        assert_close(
            &first_k[0][last.clone()],
            &fields[1][6][last],
            one,
            2e-6,
            2e-6,
            &what("k0 <- k6"),
        );
        if batch == 2 {
            // The first was not accepted: its state and k0 are unchanged.
            assert_eq!(
                after[0][..per],
                g_state0(&x0, per)[..],
                "{}",
                what("rejected")
            );
            assert_close(
                &first_k[0][..per],
                &fields[1][0][..per],
                one,
                2e-6,
                2e-6,
                &what("k0 of the rejected system"),
            );
        }
    }
}

/// The initial state as f32 values (what the GPU holds).
fn g_state0(x0: &[f64], per: usize) -> Vec<f64> {
    x0[..per].iter().map(|&v| f64::from(v as f32)).collect()
}

/// gpu (f32) against the reference at rtol = 1e-5, atol = 1e-7 on 2 systems of 100 tokens
/// (beta 1 and 6): accepted steps within 3 per system, states at the outputs within 2e-5 (as
/// the cpu backend in tests/adaptive.rs).
#[test]
fn gpu_takes_the_reference_steps() {
    let Some(ctx) = gpu() else { return };
    let (model, shape, x0) = clustering(2, 100, vec![1.0, 6.0]);
    let o = Options {
        rtol: 1e-5,
        atol: 1e-7,
        ..Options::default()
    };
    let outputs = [0.5, 2.0, 4.0];
    for integrator in PAIRS {
        let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
        let mut g = GpuBackend::new(ctx.clone(), &model, shape, &x0).unwrap();
        let (xr, sr) = solve(&mut r, &model, integrator, o, 4.0, &outputs);
        let (xg, sg) = solve(&mut g, &model, integrator, o, 4.0, &outputs);
        for b in 0..shape.batch {
            let (a, bb) = (sr[b].stats.accepted, sg[b].stats.accepted);
            eprintln!(
                "{} system {b}: reference {a} accepted ({} rejected), gpu {bb} ({})",
                integrator.name(),
                sr[b].stats.rejected,
                sg[b].stats.rejected
            );
            assert!(
                a.abs_diff(bb) <= 3,
                "{} system {b}: {a} vs {bb}",
                integrator.name()
            );
        }
        for (j, (r, g)) in xr.iter().zip(&xg).enumerate() {
            let diff = max_diff(r, g);
            eprintln!(
                "{} output {j}: |gpu - reference| {diff:.2e}",
                integrator.name()
            );
            assert!(
                diff < 2e-5,
                "{} output {j}: gpu differs from the reference by {diff:e}",
                integrator.name()
            );
        }
    }
}

/// An ensemble of 3 systems at beta 1, 6, 20 on the GPU steps each system as its run alone:
/// the same step statistics and the same states to 1e-6 (the f32 field of a system does not
/// depend on the others); one shared step takes the hardest system's steps for all.
#[test]
fn ensemble_equals_separate_runs_and_shares_a_step() {
    let Some(ctx) = gpu() else { return };
    let betas = vec![1.0, 6.0, 20.0];
    let (model, shape, x0) = clustering(3, 24, betas.clone());
    let outputs = [0.25, 1.0, 3.0];
    let o = Options {
        rtol: 1e-6,
        atol: 1e-8,
        ..Options::default()
    };
    let mut g = GpuBackend::new(ctx.clone(), &model, shape, &x0).unwrap();
    let (all, stats) = solve(&mut g, &model, Integrator::Dopri5, o, 3.0, &outputs);
    let per = shape.n * shape.d;
    let mut worst = 0.0f64;
    for (b, &beta) in betas.iter().enumerate() {
        let one = Shape::new(1, shape.n, shape.d).unwrap();
        let mut m = model.clone();
        m.betas = vec![beta];
        let mut alone = GpuBackend::new(ctx.clone(), &m, one, &x0[b * per..(b + 1) * per]).unwrap();
        let (xs, s) = solve(&mut alone, &m, Integrator::Dopri5, o, 3.0, &outputs);
        assert_eq!(s[0], stats[b], "system {b}: statistics differ");
        for (j, x) in xs.iter().enumerate() {
            let diff = max_diff(x, &all[j][b * per..(b + 1) * per]);
            worst = worst.max(diff);
            assert!(diff <= 1e-6, "system {b}, output {j}: {diff:e}");
        }
    }
    eprintln!("ensemble against separate runs: largest difference {worst:e}");
    assert!(
        stats[0].stats != stats[1].stats && stats[1].stats != stats[2].stats,
        "the systems should have stepped differently: {stats:?}"
    );
    let mut g = GpuBackend::new(ctx.clone(), &model, shape, &x0).unwrap();
    let shared = Options {
        shared_step: true,
        ..o
    };
    let (xs, s) = solve(&mut g, &model, Integrator::Dopri5, shared, 3.0, &outputs);
    assert!(s.iter().all(|x| x.stats.accepted == s[0].stats.accepted));
    assert!(s[0].stats.accepted >= stats[2].stats.accepted);
    let diff = max_diff(&xs[2], &all[2]);
    eprintln!(
        "shared step: {} accepted steps (hardest alone {}), moved the result by {diff:e}",
        s[0].stats.accepted, stats[2].stats.accepted
    );
    assert!(diff < 1e-5, "shared steps moved the result by {diff:e}");
}
