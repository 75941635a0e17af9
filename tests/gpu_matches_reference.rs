//! The GPU backend against the f64 reference (docs/model.md §1-2): after RK4 steps over the core
//! grid, per-system betas, the overflow report for USA beyond f32, and the adapter limits.
//! Every other adapter profile's kernels (and d up to 1024) run against the reference in
//! tests/gpu_specialisations.rs.

mod common;

use attnflow::gpu::codegen::Profile;
use attnflow::gpu::{GpuBackend, GpuOptions};

use attnflow::reference::ReferenceBackend;
use common::*;

/// Tolerance of f32 GPU results against f64 after 3 RK4 steps: |error| <= TOL + TOL |want|.
/// f32 rounding in a score is about beta d eps; the largest errors seen over the grid were
/// about 3e-6 (beta = 100, d = 128 included); the bound leaves 30x margin.
const TOL: f64 = 1e-4;
const STEPS: usize = 3;

/// The core grid on the GPU with `options` against the f64 reference after 3 RK4 steps (only
/// the cases `keep` takes). Returns the largest error.
fn grid_against_reference(options: GpuOptions, keep: impl Fn(&Case) -> bool, what: &str) -> f64 {
    let Some(ctx) = gpu() else { return 0.0 };
    let mut worst: f64 = 0.0;
    for case in grid().into_iter().filter(|c| keep(c)) {
        let model = case.model();
        let x0 = case.initial();
        let h = case.step_size();
        let want = evolve(
            &mut ReferenceBackend::new(&model, case.shape, &x0).unwrap(),
            &case,
            h,
            STEPS,
        );
        let mut gpu =
            GpuBackend::with_options(ctx.clone(), &model, case.shape, &x0, options).unwrap();
        let got = evolve(&mut gpu, &case, h, STEPS);
        let label = format!("{what}: {}", case.label());
        let err = assert_close(&got, &want, case.shape, TOL, TOL, &label);
        eprintln!("{label:<100} h={h:.2e} max|err|={err:.2e}");
        worst = worst.max(err);
    }
    eprintln!("{what}: largest GPU error over the grid: {worst:.3e}");
    worst
}

/// The kernels this adapter picks (on llvmpipe the N-body kernel with 2-16 queries per
/// invocation up to d = 128), trusted modules.
#[test]
fn gpu_matches_reference_over_the_core_grid() {
    grid_against_reference(GpuOptions::default(), |_| true, "default kernels");
}

/// Every kernel compiled with wgpu's runtime checks (ATTNFLOW_CHECKED_SHADERS=1): the same
/// results as the trusted modules over the grid for this adapter's kernels at d <= 16, every
/// n of the grid (partial tiles, one token, ensembles). At d = 64 and 128 the llvmpipe
/// profile's kernels are its largest texts: with an empty Mesa cache the checked d = 64 causal
/// specialisation took 28 s to compile and run, its pair statistics 16 s more (the catalogue
/// test's log, 2026-12-06, 2-core CI machine), against about 2 s at d = 16.
/// tests/gpu_specialisations.rs runs one specialisation in five checked, every profile's,
/// among them the llvmpipe profile's at d = 64 (causal) and d = 128 (full).
#[test]
fn gpu_checked_modules_match_reference_over_the_core_grid() {
    let options = GpuOptions {
        profile: Some(Profile::Software),
        checked: Some(true),
        ..Default::default()
    };
    grid_against_reference(options, |c| c.shape.d <= 16, "checked Software");
}

/// One field evaluation, kernel by kernel, against the f64 twins in reference::stages, with
/// the keys split into chunks of 7 so that the partial softmax states are merged 15 times.
#[test]
fn gpu_field_stages_match_their_twins_with_chunked_keys() {
    use attnflow::gpu::Chunking;
    use attnflow::integrate::{Backend, Slot};
    use attnflow::model::weights::QkvSpec;
    use attnflow::model::{Attention, Geometry, Mask, Shape};
    use attnflow::reference::stages;
    let Some(ctx) = gpu() else { return };
    for (attention, mask, geometry) in [
        (Attention::Sa, Mask::Full, Geometry::Sphere),
        (Attention::Usa, Mask::Causal, Geometry::Sphere),
        (Attention::Sa, Mask::Causal, Geometry::Euclidean),
    ] {
        let case = Case {
            shape: Shape::new(2, 100, 5).unwrap(),
            attention,
            geometry,
            mask,
            qkv: QkvSpec::Random(4),
            betas: vec![3.0, 0.5],
            seed: 9,
        };
        let (model, x0, shape) = (case.model(), case.initial(), case.shape);
        let options = GpuOptions {
            chunking: Chunking::Fixed(7),
            ..Default::default()
        };
        let mut gpu = GpuBackend::with_options(ctx.clone(), &model, shape, &x0, options).unwrap();
        assert_eq!(gpu.plan().chunks, 15);
        gpu.prepare(1).unwrap();
        gpu.field(Slot::State, 0).unwrap();
        let got = gpu.read_intermediates().unwrap();
        let field = gpu.read_field(0).unwrap().to_f64();

        let want_q = stages::queries(&model, &model.heads[0], shape, &x0);
        let mut partial = stages::Partial::empty(shape);
        let mut start = 0;
        while start < shape.n {
            stages::attention(&model, shape, shape.n, &want_q, &x0, start, 7, &mut partial);
            start += 7;
        }
        // The GPU's partial state is kept relative to a lazy maximum in base 2 and split
        // over keys: compare what does not depend on that, the log-sum-exp of the scores
        // and the merged mean.
        let d = shape.d;
        let want_lse: Vec<f64> = (0..shape.tokens())
            .map(|t| partial.m[t] + partial.l[t].ln())
            .collect();
        let want_mean: Vec<f64> = (0..shape.len())
            .map(|e| {
                let t = e / d;
                let scale = match attention {
                    Attention::Sa => 1.0 / partial.l[t],
                    Attention::Usa => {
                        (partial.m[t] - model.usa_log_normaliser(t % shape.n, shape.n)).exp()
                    }
                };
                partial.acc[e] * scale
            })
            .collect();
        let mut want_field = vec![0.0; shape.len()];
        let head = &model.heads[0];
        stages::attention_finish(
            &model,
            head,
            1.0,
            false,
            shape,
            shape.n,
            &partial,
            &mut want_field,
        );
        if geometry == Geometry::Sphere {
            for (f, x) in want_field.chunks_mut(shape.d).zip(x0.chunks(shape.d)) {
                attnflow::model::geometry::tangent_project(x, f);
            }
        }
        let label = format!("{attention:?} {mask:?} {geometry:?}");
        assert_close(
            &got.queries,
            &want_q,
            shape,
            1e-6,
            1e-6,
            &format!("queries, {label}"),
        );
        for (t, (g, w)) in got.lse.iter().zip(&want_lse).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "attention log-sum-exp of token {t}, {label}: got {g}, want {w}"
            );
        }
        assert_close(
            &got.mean,
            &want_mean,
            shape,
            1e-5,
            1e-5,
            &format!("attention and merge, {label}"),
        );
        assert_close(
            &field,
            &want_field,
            shape,
            1e-5,
            1e-5,
            &format!("attention_finish, {label}"),
        );
    }
}

/// Splitting the keys into chunks changes the order of summation only.
#[test]
fn gpu_chunked_keys_give_the_unchunked_field() {
    use attnflow::gpu::Chunking;
    use attnflow::integrate::{Backend, Slot};
    use attnflow::model::weights::QkvSpec;
    use attnflow::model::{Attention, Geometry, Mask, Shape};
    let Some(ctx) = gpu() else { return };
    let case = Case {
        shape: Shape::new(1, 300, 3).unwrap(),
        attention: Attention::Sa,
        geometry: Geometry::Sphere,
        mask: Mask::Causal,
        qkv: QkvSpec::Identity,
        betas: vec![20.0],
        seed: 2,
    };
    let (model, x0, shape) = (case.model(), case.initial(), case.shape);
    let field = |chunk| {
        let options = GpuOptions {
            chunking: Chunking::Fixed(chunk),
            ..Default::default()
        };
        let mut g = GpuBackend::with_options(ctx.clone(), &model, shape, &x0, options).unwrap();
        g.prepare(1).unwrap();
        g.field(Slot::State, 0).unwrap();
        g.read_field(0).unwrap().to_f64()
    };
    let whole = field(300);
    for chunk in [1, 64, 129] {
        assert_close(
            &field(chunk),
            &whole,
            shape,
            1e-6,
            1e-6,
            &format!("chunk {chunk}"),
        );
    }
}

/// The O(n d^2) kernels (queries, attention_finish, the perceptron) cut into pieces of whole
/// tokens (1 and 13 tokens, pieces across the boundary of the two systems) give the field of
/// whole dispatches, with two heads (the second adds to the first) and a perceptron.
#[test]
fn gpu_token_pieces_give_the_whole_field() {
    use attnflow::gpu::Chunking;
    use attnflow::integrate::{Backend, Slot};
    use attnflow::model::weights::{MlpSpec, QkvSpec};
    use attnflow::model::{Activation, Attention, Geometry, Mask, Shape};
    let Some(ctx) = gpu() else { return };
    let case = Case {
        shape: Shape::new(2, 40, 5).unwrap(),
        attention: Attention::Sa,
        geometry: Geometry::Sphere,
        mask: Mask::Full,
        qkv: QkvSpec::Random(3),
        betas: vec![2.0, 0.7],
        seed: 4,
    };
    let (mut model, x0, shape) = (case.model(), case.initial(), case.shape);
    let mut second = model.heads[0].clone();
    second.v.iter_mut().for_each(|v| *v *= -0.5);
    model.heads.push(second);
    model.mlp = Some(
        MlpSpec::Random {
            hidden: 12,
            seed: 5,
        }
        .resolve(shape.d, Activation::Gelu)
        .unwrap(),
    );
    let field = |chunk| {
        let options = GpuOptions {
            chunking: Chunking::Fixed(chunk),
            ..Default::default()
        };
        let mut g = GpuBackend::with_options(ctx.clone(), &model, shape, &x0, options).unwrap();
        let pieces = g.token_plan();
        assert_eq!(
            (pieces.tokens_per_piece, pieces.pieces),
            (chunk, 80usize.div_ceil(chunk))
        );
        g.prepare(1).unwrap();
        g.field(Slot::State, 0).unwrap();
        g.read_field(0).unwrap().to_f64()
    };
    let whole = field(80);
    for chunk in [1, 13] {
        assert_close(
            &field(chunk),
            &whole,
            shape,
            1e-6,
            1e-6,
            &format!("pieces of {chunk} tokens"),
        );
    }
}

/// An ensemble is B independent systems: each equals its own single run, bit for bit.
#[test]
fn gpu_ensemble_systems_equal_separate_runs() {
    use attnflow::model::weights::QkvSpec;
    use attnflow::model::{Attention, Geometry, Mask, Shape};
    let Some(ctx) = gpu() else { return };
    let betas = vec![0.5, 4.0, 25.0];
    let ensemble = Case {
        shape: Shape::new(3, 50, 4).unwrap(),
        attention: Attention::Sa,
        geometry: Geometry::Sphere,
        mask: Mask::Full,
        qkv: QkvSpec::Random(1),
        betas: betas.clone(),
        seed: 5,
    };
    let x0 = ensemble.initial();
    let mut g = GpuBackend::new(ctx.clone(), &ensemble.model(), ensemble.shape, &x0).unwrap();
    let together = evolve(&mut g, &ensemble, 0.01, 5);
    let per = 50 * 4;
    for (b, beta) in betas.iter().enumerate() {
        let single = Case {
            shape: Shape::new(1, 50, 4).unwrap(),
            betas: vec![*beta],
            ..ensemble.clone()
        };
        let xb = &x0[b * per..(b + 1) * per];
        let mut g = GpuBackend::new(ctx.clone(), &single.model(), single.shape, xb).unwrap();
        let alone = evolve(&mut g, &single, 0.01, 5);
        assert_eq!(
            &together[b * per..(b + 1) * per],
            &alone[..],
            "system {b} (beta {beta})"
        );
    }
}

/// The streamed observables (energy, cosines) match the reference's plain loops.
#[test]
fn gpu_pair_stats_match_reference() {
    use attnflow::gpu::Chunking;
    use attnflow::integrate::Backend;
    use attnflow::model::observables::summarise;
    use attnflow::model::weights::QkvSpec;
    use attnflow::model::{Attention, Geometry, Mask, Shape};
    let Some(ctx) = gpu() else { return };
    for geometry in [Geometry::Sphere, Geometry::Euclidean] {
        let case = Case {
            shape: Shape::new(2, 300, 16).unwrap(),
            attention: Attention::Sa,
            geometry,
            mask: Mask::Full,
            qkv: QkvSpec::Identity,
            betas: vec![1.0, 8.0],
            seed: 3,
        };
        let (model, shape) = (case.model(), case.shape);
        // Off the sphere too: scale every token by a factor in [0.5, 1.5].
        let x0: Vec<f64> = case
            .initial()
            .chunks(16)
            .enumerate()
            .flat_map(|(t, v)| {
                let s = if geometry == Geometry::Euclidean {
                    0.5 + (t % 7) as f64 / 6.0
                } else {
                    1.0
                };
                v.iter().map(move |c| c * s).collect::<Vec<_>>()
            })
            .collect();
        let options = GpuOptions {
            chunking: Chunking::Fixed(77),
            ..Default::default()
        };
        let mut g = GpuBackend::with_options(ctx.clone(), &model, shape, &x0, options).unwrap();
        let got = g.pair_stats().unwrap();
        let want = attnflow::reference::pair_stats(&model.betas, shape, &x0);
        for b in 0..2 {
            let (gm, wm) = (
                summarise(&got[b * 300..(b + 1) * 300], model.betas[b]),
                summarise(&want[b * 300..(b + 1) * 300], model.betas[b]),
            );
            let rel = |g: f64, w: f64| (g - w).abs() / w.abs().max(1e-3);
            assert!(
                rel(gm.energy, wm.energy) < 1e-5
                    && (gm.mean_cos - wm.mean_cos).abs() < 1e-5
                    && (gm.min_cos - wm.min_cos).abs() < 1e-6,
                "{geometry:?} system {b}: got {gm:?}, want {wm:?}"
            );
        }
    }
}

/// LayerShape beyond the adapter's limits are refused before anything is allocated, with the
/// limit's name and the largest size that fits.
#[test]
fn sizes_beyond_adapter_limits_are_refused_with_the_limit_named() {
    use attnflow::gpu::{LayerShape, check_sizes};
    let Some(ctx) = gpu() else { return };
    let limits = &ctx.limits;
    let max_floats = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        / 4;
    let sizes = |n, d| LayerShape {
        batch: 1,
        m: n,
        n,
        d,
    };
    let n = (max_floats / 128 + 1) as usize;
    let err = check_sizes(limits, sizes(n, 128), 1, 1, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_storage_buffer_binding_size")
            && err.contains(&format!(
                "largest n that fits with d = 128, batch = 1 is {}",
                n - 1
            )),
        "{err}"
    );
    // Queries beyond one grid dimension go over two: with at most 60 groups per dimension,
    // 100000 queries (1563 groups of 64) take 60 x 27, and 4 x 4 is too few.
    let split = check_sizes(limits, sizes(100_000, 2), 1, 1, Some(60)).unwrap();
    assert_eq!(split.tokens, (60, 27));
    let err = check_sizes(limits, sizes(100_000, 2), 1, 1, Some(4))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_compute_workgroups_per_dimension"),
        "{err}"
    );
}

/// d beyond the GPU's limit of 1024 is refused with a clear error (every d up to it, 256 and
/// 1024 included, runs against the reference in tests/gpu_specialisations.rs).
#[test]
fn d_beyond_the_gpu_limit_is_refused_with_a_clear_error() {
    use attnflow::gpu::{LayerShape, MAX_D, check_sizes};
    let Some(ctx) = gpu() else { return };
    let sizes = LayerShape {
        batch: 1,
        m: 10,
        n: 10,
        d: MAX_D + 1,
    };
    let err = check_sizes(&ctx.limits, sizes, 1, 1, None).unwrap_err();
    assert!(err.to_string().contains("support d up to 1024"), "{err}");
}
