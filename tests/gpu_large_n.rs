//! The million-token paths on the GPU, at sizes llvmpipe can run: float32 accuracy of one
//! attention evaluation over 2^18 and 2^20 keys (a sample of queries against every key), and
//! the dynamics with the key range chunked, the queries split over two grid dimensions and
//! the chunk size calibrated, all forced at small n by the test knobs.

mod common;

use attnflow::gpu::attend::GpuAttend;
use attnflow::gpu::codegen::Profile;
use attnflow::gpu::{Chunking, GpuBackend, GpuOptions, LayerShape};
use attnflow::integrate::{Backend, Slot};
use attnflow::model::init::InitSpec;
use attnflow::model::weights::QkvSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};
use attnflow::reference::stages;
use common::*;

const EPS: f64 = f32::EPSILON as f64;

/// Largest |got - want| over the largest |want|.
fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, f64::max)
        / scale
}

/// 256 queries (tokens of the context itself) against all n keys, SA, Q = K = V = I: the
/// attention output in float32 stays within sqrt(n) eps of an f64 evaluation of the same
/// (f32-rounded) inputs. Tiles are summed separately before joining the running sums, so the
/// error grows like sqrt(TK) + sqrt(n / TK) rather than n.
#[test]
fn gpu_attention_over_a_million_keys_stays_within_sqrt_n_eps() {
    million_keys(false);
}

/// The same with wgpu's runtime checks in every kernel.
#[test]
fn gpu_attention_over_a_million_keys_stays_within_sqrt_n_eps_checked() {
    million_keys(true);
}

fn million_keys(checked: bool) {
    let Some(ctx) = gpu() else { return };
    let m = 256;
    for beta in [1.0, 30.0] {
        let mut errors = Vec::new();
        for log_n in [18u32, 20] {
            let n = 1usize << log_n;
            let d = 3;
            let model = Model::new(
                Attention::Sa,
                Geometry::Euclidean,
                Mask::Full,
                Weights::identity(d),
                vec![beta],
            );
            let keys: Vec<f32> = InitSpec::Uniform
                .generate(Shape::new(1, n, d).unwrap(), Geometry::Sphere, 7)
                .unwrap()
                .into_iter()
                .map(|v| v as f32)
                .collect();
            // Every (n / m)-th token is a query.
            let queries: Vec<f32> = (0..m)
                .flat_map(|i| keys[i * (n / m) * d..(i * (n / m) + 1) * d].to_vec())
                .collect();
            let sizes = LayerShape { batch: 1, m, n, d };
            let options = GpuOptions {
                checked: Some(checked),
                ..Default::default()
            };
            let mut gpu = GpuAttend::new(ctx.clone(), &model, sizes, options).unwrap();
            gpu.set_keys(&keys).unwrap();
            gpu.set_queries(&queries).unwrap();
            let got = gpu.run().unwrap();
            let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
            let shape_q = Shape::new(1, m, d).unwrap();
            let want = stages::field(
                &model,
                &model.heads,
                shape_q,
                &to64(&queries),
                &to64(&keys),
                n,
            );
            let err = relative_error(&got, &want);
            let bound = (n as f64).sqrt() * EPS;
            eprintln!(
                "beta {beta}, n = 2^{log_n}: relative error {err:.2e}, sqrt(n) eps = {bound:.2e}, {} keys per dispatch",
                gpu.chunk_keys()
            );
            assert!(
                err <= bound,
                "beta {beta}, n = 2^{log_n}: error {err:.3e} > sqrt(n) eps = {bound:.3e}"
            );
            errors.push(err);
        }
        // Four times the keys may not cost more than twice the error (sqrt(4)), with a margin
        // of 1.5 for the sampling of which queries happen to be hardest.
        assert!(
            errors[1] <= 3.0 * errors[0].max(EPS),
            "beta {beta}: error grew from {:.2e} to {:.2e} for 4x the keys",
            errors[0],
            errors[1]
        );
    }
}

/// The dynamics with every large-n mechanism forced on at n = 5000 with the hardware kernels:
/// three key splits of 1667 keys, 37 keys per split per dispatch (46 chunks), query blocks
/// over two grid dimensions (20 blocks of 256, at most 16 per dimension), against the f64
/// reference after two RK4 steps; and the calibrated chunking gives the same field.
#[test]
fn gpu_dynamics_with_forced_chunks_and_split_queries_match_reference() {
    forced_chunks(false);
}

/// The same with wgpu's runtime checks in every kernel.
#[test]
fn gpu_dynamics_with_forced_chunks_and_split_queries_match_reference_checked() {
    forced_chunks(true);
}

fn forced_chunks(checked: bool) {
    let Some(ctx) = gpu() else { return };
    let case = Case {
        shape: Shape::new(1, 5000, 3).unwrap(),
        attention: Attention::Sa,
        geometry: Geometry::Sphere,
        mask: Mask::Causal,
        qkv: QkvSpec::Random(3),
        betas: vec![4.0],
        seed: 12,
    };
    let (model, x0) = (case.model(), case.initial());
    let forced = GpuOptions {
        chunking: Chunking::Fixed(37),
        max_groups: Some(16),
        splits: Some(3),
        profile: Some(Profile::Hardware),
        checked: Some(checked),
        ..Default::default()
    };
    let mut gpu = GpuBackend::with_options(ctx.clone(), &model, case.shape, &x0, forced).unwrap();
    let plan = gpu.plan();
    assert_eq!((plan.splits, plan.split_keys, plan.chunks), (3, 1667, 46));
    let slot = plan.slots(16)[0];
    assert_eq!((plan.blocks, slot.groups_x, slot.z_blocks), (20, 16, 2));
    let got = evolve(&mut gpu, &case, 0.05, 2);
    let mut reference =
        attnflow::reference::ReferenceBackend::new(&model, case.shape, &x0).unwrap();
    let want = evolve(&mut reference, &case, 0.05, 2);
    assert_close(
        &got,
        &want,
        case.shape,
        1e-4,
        1e-4,
        "forced chunks and split queries",
    );

    // Calibrated chunks (a 1 ms target forces several) against one chunk of all keys.
    let field = |options: GpuOptions| {
        let mut g =
            GpuBackend::with_options(ctx.clone(), &model, case.shape, &x0, options).unwrap();
        g.prepare(1).unwrap();
        g.field(Slot::State, 0).unwrap();
        (g.plan().chunk_keys, g.read_field(0).unwrap().to_f64())
    };
    let (calibrated_keys, calibrated) = field(GpuOptions {
        chunking: Chunking::Timed(1e-3),
        checked: Some(checked),
        ..Default::default()
    });
    let (_, whole) = field(GpuOptions {
        chunking: Chunking::Fixed(5000),
        checked: Some(checked),
        ..Default::default()
    });
    eprintln!("calibrated: {calibrated_keys} keys per dispatch for a 1 ms target");
    assert!(
        calibrated_keys < 5000,
        "a 1 ms target on llvmpipe should need several chunks"
    );
    assert_close(
        &calibrated,
        &whole,
        case.shape,
        1e-6,
        1e-6,
        "calibrated chunks",
    );
}
