//! Adaptive stepping (docs/model.md §2, "Adaptive steps"; `integrate::adaptive`): error
//! proportional to the tolerance on a closed form, cpu against the reference, ensembles
//! against separate runs, dense output that does not shorten steps, and the refusals.

use attnflow::cpu::CpuBackend;
use attnflow::integrate::adaptive::{Options, SystemState, integrate_adaptive};
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, LayerMap, Mask, Model, Shape, Weights};
use attnflow::reference::ReferenceBackend;

const PAIRS: [Integrator; 3] = [Integrator::Bosh3, Integrator::Dopri5, Integrator::Tsit5];

fn opts(tol: f64) -> Options {
    Options {
        rtol: tol,
        atol: tol,
        ..Options::default()
    }
}

/// Runs `integrator` on the backend: the states at `outputs` and the step statistics.
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

/// n orthonormal tokens e_1..e_n in d = n under SA with Q = K = V = I at beta = 0: all
/// pairwise cosines stay equal, c(t) = (1 - e^{-2t}) / (1 + (n - 1) e^{-2t})
/// (docs/model.md §4, symmetric reduction).
fn equiangular(n: usize) -> (Model, Shape, Vec<f64>) {
    let shape = Shape::new(1, n, n).unwrap();
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(n),
        vec![0.0],
    );
    let mut x0 = vec![0.0; n * n];
    for i in 0..n {
        x0[i * n + i] = 1.0;
    }
    (model, shape, x0)
}

/// The largest |<x_i, x_j> - c(t)| over pairs.
fn cosine_error(x: &[f64], n: usize, t: f64) -> f64 {
    let e = (-2.0 * t).exp();
    let c = (1.0 - e) / (1.0 + (n as f64 - 1.0) * e);
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = (0..n).map(|k| x[i * n + k] * x[j * n + k]).sum();
            worst = worst.max((dot - c).abs());
        }
    }
    worst
}

/// Global error roughly proportional to the tolerance: over rtol = atol = 1e-3 ... 1e-8 the
/// error at T = 3 falls with every tenfold tightening, stays below tol, and error / tol
/// varies by at most SPREAD (measured: bosh3 0.12 ... 0.34, dopri5 0.0017 ... 0.026, tsit5
/// 0.00019 ... 0.0053; the 5(4) pairs' errors go like tol^0.8 on this smooth problem).
/// The largest spread of error / tol over the six tolerances (measured 2.7, 15, 27).
const SPREAD: f64 = 40.0;

#[test]
fn global_error_follows_the_tolerance() {
    let (model, shape, x0) = equiangular(5);
    let t_end = 3.0;
    for integrator in PAIRS {
        let mut last = f64::INFINITY;
        let mut ratios = Vec::new();
        for k in 3..=8 {
            let tol = 10f64.powi(-k);
            let mut backend = ReferenceBackend::new(&model, shape, &x0).unwrap();
            let (x, stats) = solve(&mut backend, &model, integrator, opts(tol), t_end, &[]);
            let err = cosine_error(&x[0], shape.n, t_end);
            eprintln!(
                "{} tol {tol:.0e}: error {err:.3e} ({:.3} tol), {} steps, {} evaluations",
                integrator.name(),
                err / tol,
                stats[0].stats.accepted,
                stats[0].stats.evaluations
            );
            ratios.push(err / tol);
            assert!(
                err < last,
                "{} tol {tol:e}: error {err:e} did not fall",
                integrator.name()
            );
            last = err;
        }
        let (lo, hi) = ratios
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), r| (l.min(*r), h.max(*r)));
        assert!(
            hi <= 1.0 && hi / lo <= SPREAD,
            "{}: error / tol from {lo:.2e} to {hi:.2e}",
            integrator.name()
        );
    }
}

fn clustering(batch: usize, betas: Vec<f64>) -> (Model, Shape, Vec<f64>) {
    let shape = Shape::new(batch, 24, 3).unwrap();
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

/// cpu (f32) against the reference at rtol = 1e-5, atol = 1e-7: accepted steps within 3,
/// states within 2e-5 (f32 rounding over the run, far below the tolerance's 1e-4 scale).
#[test]
fn cpu_takes_the_reference_steps() {
    let (model, shape, x0) = clustering(2, vec![1.0, 6.0]);
    let o = Options {
        rtol: 1e-5,
        atol: 1e-7,
        ..Options::default()
    };
    for integrator in PAIRS {
        let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
        let mut c = CpuBackend::new(&model, shape, &x0).unwrap();
        let outputs = [0.5, 2.0, 4.0];
        let (xr, sr) = solve(&mut r, &model, integrator, o, 4.0, &outputs);
        let (xc, sc) = solve(&mut c, &model, integrator, o, 4.0, &outputs);
        for b in 0..shape.batch {
            let (a, bb) = (sr[b].stats.accepted, sc[b].stats.accepted);
            eprintln!(
                "{} system {b}: reference {a} accepted ({} rejected), cpu {bb} ({})",
                integrator.name(),
                sr[b].stats.rejected,
                sc[b].stats.rejected
            );
            assert!(
                a.abs_diff(bb) <= 3,
                "{} system {b}: {a} vs {bb}",
                integrator.name()
            );
        }
        for (j, (r, c)) in xr.iter().zip(&xc).enumerate() {
            let diff = r
                .iter()
                .zip(c)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                diff < 2e-5,
                "{} output {j}: cpu differs from the reference by {diff:e}",
                integrator.name()
            );
        }
    }
}

/// Each system of an ensemble steps as it would alone: the same states to the bit and the
/// same step statistics, though the betas (1, 6, 20) need very different steps.
#[test]
fn ensemble_equals_separate_runs() {
    let betas = vec![1.0, 6.0, 20.0];
    let (model, shape, x0) = clustering(3, betas.clone());
    let outputs = [0.25, 1.0, 3.0];
    let mut backend = ReferenceBackend::new(&model, shape, &x0).unwrap();
    let (all, stats) = solve(
        &mut backend,
        &model,
        Integrator::Dopri5,
        opts(1e-7),
        3.0,
        &outputs,
    );
    let per = shape.n * shape.d;
    for (b, &beta) in betas.iter().enumerate() {
        let one = Shape::new(1, shape.n, shape.d).unwrap();
        let mut m = model.clone();
        m.betas = vec![beta];
        let x0b = &x0[b * per..(b + 1) * per];
        let mut alone = ReferenceBackend::new(&m, one, x0b).unwrap();
        let (xs, s) = solve(
            &mut alone,
            &m,
            Integrator::Dopri5,
            opts(1e-7),
            3.0,
            &outputs,
        );
        assert_eq!(s[0], stats[b], "system {b}: statistics differ");
        for (j, x) in xs.iter().enumerate() {
            assert_eq!(
                x[..],
                all[j][b * per..(b + 1) * per],
                "system {b}, output {j}"
            );
        }
    }
    assert!(
        stats[0].stats != stats[1].stats && stats[1].stats != stats[2].stats,
        "the systems should have stepped differently: {stats:?}"
    );
    // One shared step: every system takes the steps of the hardest, and stays accurate.
    let mut backend = ReferenceBackend::new(&model, shape, &x0).unwrap();
    let shared = Options {
        shared_step: true,
        ..opts(1e-7)
    };
    let (xs, s) = solve(
        &mut backend,
        &model,
        Integrator::Dopri5,
        shared,
        3.0,
        &outputs,
    );
    assert!(s.iter().all(|x| x.stats.accepted == s[0].stats.accepted));
    assert!(s[0].stats.accepted >= stats[2].stats.accepted);
    let diff = xs[2]
        .iter()
        .zip(&all[2])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-5, "shared steps moved the result by {diff:e}");
}

/// Output times are served by the dense output: asking for 40 of them changes no step, and
/// each interpolated state is as accurate as the tolerance (against a tight run), on the
/// sphere.
#[test]
fn dense_output_does_not_shorten_steps() {
    let (model, shape, x0) = clustering(1, vec![4.0]);
    let times: Vec<f64> = (0..=40).map(|i| 0.1 * i as f64).collect();
    for integrator in PAIRS {
        let mut a = ReferenceBackend::new(&model, shape, &x0).unwrap();
        let (_, plain) = solve(&mut a, &model, integrator, opts(1e-6), 4.0, &[]);
        let mut b = ReferenceBackend::new(&model, shape, &x0).unwrap();
        let (xs, dense) = solve(&mut b, &model, integrator, opts(1e-6), 4.0, &times);
        assert_eq!(
            plain,
            dense,
            "{}: outputs changed the steps",
            integrator.name()
        );
        assert_eq!(xs.len(), times.len());
        let mut t = ReferenceBackend::new(&model, shape, &x0).unwrap();
        let (truth, _) = solve(&mut t, &model, Integrator::Dopri5, opts(1e-12), 4.0, &times);
        let mut worst = 0.0f64;
        for (x, y) in xs.iter().zip(&truth) {
            for tok in x.chunks(shape.d) {
                let norm: f64 = tok.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!((norm - 1.0).abs() < 1e-14, "off the sphere: {norm}");
            }
            worst = x
                .iter()
                .zip(y)
                .map(|(a, b)| (a - b).abs())
                .fold(worst, f64::max);
        }
        eprintln!(
            "{}: {} steps, dense output error {worst:.2e}",
            integrator.name(),
            plain[0].stats.accepted
        );
        assert!(
            worst < 1e-4,
            "{}: dense output error {worst:e}",
            integrator.name()
        );
    }
}

/// A step that must fall below the minimum stops the run with an error naming the time, the
/// system and the error norm, instead of looping; a tolerance below f32's precision is
/// refused on the cpu backend before it starts.
#[test]
fn a_step_below_the_minimum_stops_with_a_message() {
    let (model, shape, x0) = clustering(2, vec![1.0, 6.0]);
    let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
    let o = Options {
        h_min: 0.05,
        ..opts(1e-10)
    };
    let err = integrate_adaptive(&mut r, &model, Integrator::Dopri5, o, 4.0, &[])
        .unwrap_err()
        .to_string();
    for want in [
        "step size fell below",
        "at t = ",
        "in system ",
        "error norm",
        "--rtol",
    ] {
        assert!(err.contains(want), "{want:?} missing from: {err}");
    }
    let mut c = CpuBackend::new(&model, shape, &x0).unwrap();
    let err = integrate_adaptive(&mut c, &model, Integrator::Dopri5, opts(1e-9), 4.0, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("f32") && err.contains("--backend reference"),
        "{err}"
    );
    // A run that would take more steps than allowed stops, saying where it was.
    let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
    let o = Options {
        max_steps: 5,
        ..opts(1e-8)
    };
    let err = integrate_adaptive(&mut r, &model, Integrator::Dopri5, o, 4.0, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 5 steps"), "{err}");
}

/// What adaptive stepping cannot integrate is refused, saying why and what to do.
#[test]
fn refuses_noise_layer_maps_and_changing_weights() {
    let (model, shape, x0) = clustering(1, vec![1.0]);
    let run = |m: &Model| {
        let mut r = ReferenceBackend::new(m, shape, &x0).unwrap();
        integrate_adaptive(&mut r, m, Integrator::Dopri5, opts(1e-6), 1.0, &[])
            .unwrap_err()
            .to_string()
    };
    let mut noisy = model.clone();
    noisy.noise = Some(attnflow::model::Noise {
        sigma: 0.1,
        common: false,
        seed: 1,
    });
    assert!(run(&noisy).contains("--noise"), "{}", run(&noisy));
    let mut post = model.clone();
    post.layer = LayerMap::PostLn;
    assert!(run(&post).contains("post-ln"), "{}", run(&post));
    let mut random = model.clone();
    random.random = Some(attnflow::model::RandomHeads::redrawn(1, 1.0, 3));
    let msg = run(&random);
    assert!(msg.contains("fixed in time"), "{msg}");
    // A fixed-step job refuses an adaptive integrator.
    let e = attnflow::integrate::Stepper::new(&model, Integrator::Dopri5).unwrap_err();
    assert!(e.to_string().contains("adaptively"), "{e}");
    // And bad options are refused.
    let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
    let bad = Options {
        rtol: -1.0,
        ..opts(1e-6)
    };
    let e = integrate_adaptive(&mut r, &model, Integrator::Dopri5, bad, 1.0, &[]).unwrap_err();
    assert!(e.to_string().contains("--rtol"), "{e}");
}

/// A pause at any step boundary, saved (the state read back, each system's `SystemState`,
/// the outputs' `Cursor`) and continued on a new backend and stepper, gives the bits of the
/// run never paused: outputs, final state and statistics, for every pair, on both backends,
/// with three systems whose steps differ (so that some pauses fall between the systems'
/// passing of an output time, and the partial outputs travel in the cursor).
#[test]
fn a_run_continued_from_any_step_boundary_has_the_bits_of_the_run_never_paused() {
    use attnflow::integrate::adaptive::{AdaptiveStepper, Cursor};
    let (model, shape, x0) = clustering(3, vec![1.0, 6.0, 20.0]);
    let outputs: Vec<f64> = (0..=12).map(|k| 0.25 * f64::from(k)).collect();
    let o = Options {
        rtol: 1e-6,
        atol: 1e-8,
        ..Options::default()
    };
    let new_backend = |cpu: bool, x: &[f64]| -> Box<dyn Backend> {
        if cpu {
            Box::new(CpuBackend::new(&model, shape, x).unwrap())
        } else {
            Box::new(ReferenceBackend::new(&model, shape, x).unwrap())
        }
    };
    for cpu in [false, true] {
        for integrator in PAIRS {
            let mut backend = new_backend(cpu, &x0);
            let mut stepper = AdaptiveStepper::new(&model, shape, integrator, o).unwrap();
            stepper.prepare(backend.as_mut()).unwrap();
            let mut want = Vec::new();
            stepper
                .advance(backend.as_mut(), 3.0, &outputs, &mut |_, x| {
                    want.push(x.to_vec());
                    Ok(())
                })
                .unwrap();
            let want_final = backend.read_state().unwrap().to_f64();
            let want_stats = stepper.systems().to_vec();
            let attempts = want_stats
                .iter()
                .map(|s| s.stats.accepted + s.stats.rejected);
            let attempts = attempts.max().unwrap();
            // Pauses after attempts 1, 4, 7, ...: each one a save and a continuation.
            let mut backend = new_backend(cpu, &x0);
            let mut stepper = AdaptiveStepper::new(&model, shape, integrator, o).unwrap();
            stepper.prepare(backend.as_mut()).unwrap();
            let mut cursor = Cursor::default();
            let mut got = Vec::new();
            let (mut pauses, mut partial) = (0, 0);
            loop {
                let done = stepper
                    .advance_until(
                        backend.as_mut(),
                        3.0,
                        &outputs,
                        &mut cursor,
                        &mut |_, x| {
                            got.push(x.to_vec());
                            Ok(())
                        },
                        &mut |a, _| a % 3 == 1,
                    )
                    .unwrap();
                if done {
                    break;
                }
                pauses += 1;
                partial += usize::from(!cursor.partial.is_empty());
                let state = backend.read_state().unwrap().to_f64();
                let systems = stepper.systems().to_vec();
                backend = new_backend(cpu, &state);
                stepper = AdaptiveStepper::new(&model, shape, integrator, o).unwrap();
                stepper.prepare(backend.as_mut()).unwrap();
                stepper.restore(systems).unwrap();
            }
            let name = format!("{} on {}", integrator.name(), backend.describe());
            assert!(
                pauses as u64 >= attempts / 3 && partial > 0,
                "{name}: {pauses} pauses, {partial} with partial outputs"
            );
            assert_eq!(got, want, "{name}: outputs differ");
            assert_eq!(
                backend.read_state().unwrap().to_f64(),
                want_final,
                "{name}: final state differs"
            );
            assert_eq!(
                stepper.systems(),
                &want_stats[..],
                "{name}: statistics differ"
            );
        }
    }
}
