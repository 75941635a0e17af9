//! What a step asks of the device, counted: one submission per RK4 step (or per planned slice
//! of a long step), the expected dispatches, no buffer map or wait for the device, and no
//! buffer, bind group or pipeline created while stepping. (The bound on submissions queued
//! ahead of the GPU is a unit test of `gpu::record::InFlight`: llvmpipe runs a submission
//! before the next is recorded.) Each test opens its own device so that the counts are its
//! own.

mod common;

use std::sync::Arc;
use std::time::Instant;

use attnflow::gpu::{Chunking, Counts, GpuBackend, GpuContext, GpuOptions};
use attnflow::integrate::{Backend, Integrator, Slot, Stepper};
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};

fn context() -> Option<Arc<GpuContext>> {
    common::gpu()?;
    Some(Arc::new(GpuContext::new().expect("a second device")))
}

/// SA on S^2 with Q = K = V = I, beta = 1.
fn sphere_model() -> Model {
    Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(3),
        vec![1.0],
    )
}

fn setup(ctx: Arc<GpuContext>, n: usize, options: GpuOptions) -> GpuBackend {
    let shape = Shape::new(1, n, 3).unwrap();
    let model = sphere_model();
    let x0 = InitSpec::Uniform
        .generate(shape, Geometry::Sphere, 4)
        .unwrap();
    let mut g = GpuBackend::with_options(ctx, &model, shape, &x0, options).unwrap();
    g.prepare(4).unwrap();
    g
}

/// Runs `steps` RK4 steps without syncing and returns what they asked of the device.
fn steps(g: &mut GpuBackend, steps: usize) -> Counts {
    let stepper = Stepper::new(&sphere_model(), Integrator::Rk4).unwrap();
    // One step first: the coefficient slots are uploaded on first use.
    stepper.step(g, 1e-3, 0).unwrap();
    g.sync().unwrap();
    let before = g.counts();
    for s in 1..=steps {
        stepper.step(g, 1e-3, s as u32).unwrap();
    }
    let after = g.counts();
    g.sync().unwrap();
    after - before
}

#[test]
fn an_rk4_step_is_one_submission_without_maps_waits_or_allocations() {
    let Some(ctx) = context() else { return };
    let mut g = setup(ctx, 3000, GpuOptions::default());
    let plan = g.plan();
    let n = 3;
    let c = steps(&mut g, n);
    // Per evaluation: queries, the planned attention dispatches, merge, finish, projection;
    // four evaluations and four combinations per step.
    let per_step = 4 * (1 + plan.dispatches() + 3) + 4;
    eprintln!("{c:?}, plan {plan:?}");
    assert_eq!(c.submissions, n as u64, "one submission per step");
    assert_eq!(c.dispatches, (n * per_step) as u64);
    assert_eq!(
        (c.maps, c.waits),
        (0, 0),
        "no map or device wait while stepping"
    );
    assert_eq!(
        (c.buffers, c.bind_groups, c.pipelines),
        (0, 0, 0),
        "nothing created while stepping"
    );
    // Waits for an older submission happen only beyond the in-flight bound.
    assert!(c.throttles <= c.submissions);
}

#[test]
fn long_steps_are_cut_into_submissions_of_the_planned_size() {
    let Some(ctx) = context() else { return };
    // A 5 ms dispatch budget (and 12.5 ms per submission) on llvmpipe: several chunks, a
    // few per submission.
    let budget = 5e-3;
    let options = GpuOptions {
        chunking: Chunking::Timed(budget),
        ..Default::default()
    };
    let mut g = setup(ctx, 4096, options);
    let plan = g.plan();
    let per_submission = plan.dispatches_per_submission.expect("a measured speed");
    let streaming = 4 * plan.dispatches();
    assert!(
        streaming > per_submission,
        "the test needs a step longer than a submission: {plan:?}"
    );
    let n = 2;
    let c = steps(&mut g, n);
    eprintln!("{c:?}, plan {plan:?}, calibration {:?}", g.calibration());
    // A submission whenever the budget is reached, and one at the end of the step.
    let expected = (streaming / per_submission + 1) * n;
    assert_eq!(c.submissions, expected as u64, "{plan:?}");
    assert_eq!((c.maps, c.waits), (0, 0));
    assert_eq!((c.buffers, c.bind_groups, c.pipelines), (0, 0, 0));
    // Every dispatch the probe planned stays within the budget at the measured speed, unless
    // the plan is already the smallest dispatch there is (one key tile against one query
    // block of one system: 256 keys on this profile), as on a machine the probe found loaded.
    let calibration = g.calibration().expect("probed");
    let seconds = plan.dispatch_pairs / calibration.speed;
    let smallest =
        plan.chunk_keys <= 256 && plan.blocks_per_dispatch == 1 && plan.systems_per_dispatch == 1;
    assert!(
        seconds <= budget || smallest,
        "{seconds} s per dispatch: {plan:?}"
    );
}

#[test]
fn timestamps_do_not_stop_an_evaluation_being_cut_into_submissions() {
    let Some(ctx) = context() else { return };
    // As above, a budget that cuts one evaluation into several submissions on llvmpipe.
    let options = GpuOptions {
        chunking: Chunking::Timed(2e-3),
        ..Default::default()
    };
    let mut g = setup(ctx, 4096, options);
    let plan = g.plan();
    let per_submission = plan.dispatches_per_submission.expect("a measured speed");
    let expected = plan.dispatches() / per_submission;
    assert!(
        expected >= 2,
        "the test needs an evaluation of several submissions: {plan:?}"
    );
    // One evaluation, recorded untimed and then timed: the submissions made while recording
    // it (the rest goes with the sync), and its host time to the end of the sync.
    let evaluate = |g: &mut GpuBackend| {
        g.sync().unwrap();
        let before = g.counts();
        let start = Instant::now();
        g.field(Slot::State, 0).unwrap();
        let recorded = g.counts() - before;
        g.sync().unwrap();
        (recorded, start.elapsed().as_secs_f64())
    };
    let (untimed, _) = evaluate(&mut g);
    assert!(g.enable_timing(), "llvmpipe has timestamp queries");
    let (timed, host) = evaluate(&mut g);
    let gpu = g
        .last_field_seconds()
        .unwrap()
        .expect("two ordered timestamps");
    eprintln!("{untimed:?} untimed, {timed:?} timed, gpu {gpu} s, host {host} s, {plan:?}");
    assert_eq!(untimed.submissions, expected as u64, "{plan:?}");
    assert_eq!(timed.submissions, untimed.submissions, "{plan:?}");
    // The timestamps span the whole evaluation across its submissions: most of the host
    // time (which adds recording and the final wait), never more.
    assert!(
        gpu <= host && gpu >= 0.3 * host,
        "GPU {gpu} s against host {host} s"
    );
}

/// Adaptive stepping (dopri5) creates nothing on the device while stepping (everything is
/// made in `prepare_adaptive`) and maps one buffer per step attempt (its error sums, one f32
/// per system), three for the first step's norms and one for the state at the end.
#[test]
fn an_adaptive_run_allocates_nothing_and_maps_once_per_attempt() {
    use attnflow::integrate::adaptive::{AdaptiveStepper, Options};
    let Some(ctx) = context() else { return };
    let shape = Shape::new(1, 300, 3).unwrap();
    let model = sphere_model();
    let x0 = InitSpec::Uniform
        .generate(shape, Geometry::Sphere, 4)
        .unwrap();
    let mut g = GpuBackend::new(ctx, &model, shape, &x0).unwrap();
    let opts = Options {
        rtol: 1e-5,
        atol: 1e-7,
        ..Options::default()
    };
    let mut stepper = AdaptiveStepper::new(&model, shape, Integrator::Dopri5, opts).unwrap();
    stepper.prepare(&mut g).unwrap();
    let before = g.counts();
    let mut outputs = 0;
    stepper
        .advance(&mut g, 2.0, &[2.0], &mut |_, _| {
            outputs += 1;
            Ok(())
        })
        .unwrap();
    let c = g.counts() - before;
    let stats = &stepper.systems()[0].stats;
    let attempts = stats.accepted + stats.rejected;
    eprintln!("{c:?}, {stats:?}");
    assert_eq!(outputs, 1);
    assert!(attempts > 3, "{stats:?}");
    assert_eq!(
        (c.buffers, c.bind_groups, c.pipelines),
        (0, 0, 0),
        "nothing created while stepping"
    );
    assert_eq!(c.maps, attempts + 3 + 1, "maps per attempt");
}
