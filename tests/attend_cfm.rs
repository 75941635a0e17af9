//! One attention layer (`attend`) and contextual flow maps (`cfm`): cpu and gpu against the f64
//! reference, attention statistics against a literal softmax, and the vMF closed form of
//! docs/model.md §4: the finite-context attention output and the finite-context flow approach their
//! infinite-context limits at the parametric rate n^{-1/2}.

mod common;

use attnflow::attend::{LayerShape, TokenSource, attention_stats};
use attnflow::cfm::{Cfm, ContextMode, distances};
use attnflow::config::BackendChoice;
use attnflow::integrate::Integrator;
use attnflow::meanfield::{self, Adaptive, LawWeights, VmfLaw};
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};
use common::*;

fn draw(law: &InitSpec, batch: usize, n: usize, d: usize, seed: u64) -> Vec<f64> {
    law.generate(Shape::new(batch, n, d).unwrap(), Geometry::Sphere, seed)
        .unwrap()
}

fn backends() -> Vec<BackendChoice> {
    let mut all = vec![BackendChoice::Cpu];
    if gpu().is_some() {
        all.push(BackendChoice::Gpu);
    }
    all
}

/// cpu and gpu layers equal the reference layer (m != n, several draws, SA and USA, identity
/// and random Q, K, V, sphere and euclidean) to 1e-5 + 1e-5 |want|.
#[test]
fn attend_backends_match_reference() {
    for (attention, geometry, weights, m, n, d, batch, beta) in [
        (
            Attention::Sa,
            Geometry::Euclidean,
            Weights::identity(3),
            5,
            1000,
            3,
            3,
            4.0,
        ),
        (
            Attention::Usa,
            Geometry::Sphere,
            Weights::random(16, 2),
            33,
            257,
            16,
            1,
            1.0,
        ),
        (
            Attention::Sa,
            Geometry::Sphere,
            Weights::random(64, 5),
            70,
            129,
            64,
            2,
            10.0,
        ),
        (
            Attention::Sa,
            Geometry::Euclidean,
            Weights::identity(2),
            1,
            5000,
            2,
            1,
            100.0,
        ),
    ] {
        let model = Model::new(attention, geometry, Mask::Full, weights, vec![beta; batch]);
        let shape = LayerShape { batch, m, n, d };
        let y = draw(&InitSpec::Uniform, batch, n, d, 1);
        let z = draw(&InitSpec::Uniform, batch, m, d, 2);
        let (mut reference, ..) =
            attnflow::backend::build_layer(BackendChoice::Reference, &model, shape).unwrap();
        reference.set_keys(&y).unwrap();
        let want = reference.run(&z).unwrap();
        let label = format!("{attention:?} {geometry:?} m={m} n={n} d={d} B={batch}");
        for choice in backends() {
            let (mut layer, kind, _) =
                attnflow::backend::build_layer(choice, &model, shape).unwrap();
            assert_eq!(kind, choice);
            layer.set_keys(&y).unwrap();
            let got = layer.run(&z).unwrap();
            let shape = Shape::new(batch, m, d).unwrap();
            let err = assert_close(
                &got,
                &want,
                shape,
                1e-5,
                1e-5,
                &format!("{} {label}", choice.name()),
            );
            eprintln!("{} {label}: max error {err:.2e}", choice.name());
        }
    }
}

/// The streamed statistics equal those of the literal softmax weights.
#[test]
fn attention_stats_equal_the_literal_softmax() {
    let d = 4;
    let w = Weights::random(d, 9);
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        w.clone(),
        vec![1.0],
    );
    let y = draw(&InitSpec::Uniform, 1, 300, d, 3);
    let z = draw(&InitSpec::Uniform, 1, 1, d, 4);
    for beta in [0.0, 1.0, 30.0, 3000.0] {
        let got = attention_stats(&model, beta, &z, &y, 300, 5);
        let mut qz = vec![0.0; d];
        attnflow::model::weights::matvec(&w.q, &z, &mut qz);
        let scores: Vec<f64> = y
            .chunks(d)
            .map(|yj| {
                let mut ky = vec![0.0; d];
                attnflow::model::weights::matvec(&w.k, yj, &mut ky);
                beta * attnflow::model::linalg::dot(&qz, &ky)
            })
            .collect();
        let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = scores.iter().map(|s| (s - top).exp()).sum();
        let mut weights: Vec<f64> = scores.iter().map(|s| (s - top).exp() / sum).collect();
        let eff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let entropy: f64 = -weights
            .iter()
            .filter(|&&w| w > 0.0)
            .map(|w| w * w.ln())
            .sum::<f64>();
        weights.sort_by(|a, b| b.total_cmp(a));
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
                "beta {beta} {what}: {a} vs {b}"
            )
        };
        close(got.max_weight, weights[0], "max weight");
        close(got.effective_keys, eff, "effective keys");
        close(got.entropy, entropy, "entropy");
        assert_eq!(got.top.len(), 5);
        for (g, w) in got.top.iter().zip(&weights) {
            close(*g, *w, "top-k");
        }
    }
    // beta = 0: uniform weights.
    let s = attention_stats(&model, 0.0, &z, &y, 300, 0);
    assert!((s.effective_keys - 300.0).abs() < 1e-9 && (s.entropy - 300f64.ln()).abs() < 1e-12);
}

/// Least-squares slope of log y against log x and its standard error.
fn loglog_slope(x: &[f64], y: &[f64]) -> (f64, f64) {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let k = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / k, ly.iter().sum::<f64>() / k);
    let sxx: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    let slope = lx
        .iter()
        .zip(&ly)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / sxx;
    let resid: f64 = lx
        .iter()
        .zip(&ly)
        .map(|(a, b)| (b - my - slope * (a - mx)).powi(2))
        .sum();
    (slope, (resid / (k - 2.0) / sxx).sqrt())
}

/// docs/model.md §4: with keys iid vMF(mu, kappa), the attention output at z tends to
/// V A_d(|w|) w / |w|, w = beta K^T Q z + kappa mu; the RMS error over independent contexts
/// falls like n^{-1/2}: fitted log-log slope over n = 10^3 .. 10^5 within 0.1 of -0.5.
#[test]
fn vmf_attention_error_falls_like_inverse_square_root_of_n() {
    let d = 3;
    let (kappa, beta, seeds, m) = (2.0, 1.5, 48, 8);
    let w = Weights::random(d, 17);
    let mu = vec![0.0, 0.6, 0.8];
    let law = VmfLaw::new(mu.clone(), kappa).unwrap();
    let lw = LawWeights {
        q: Some(&w.q),
        k: Some(&w.k),
        v: Some(&w.v),
    };
    let keys = InitSpec::Vmf {
        kappa,
        mu: Some(mu),
    };
    let ns = [1000usize, 3162, 10000, 31623, 100000];
    let mut rms = Vec::new();
    for &n in &ns {
        let model = Model::new(
            Attention::Sa,
            Geometry::Euclidean,
            Mask::Full,
            w.clone(),
            vec![beta; seeds],
        );
        let shape = LayerShape {
            batch: seeds,
            m,
            n,
            d,
        };
        let (mut layer, ..) =
            attnflow::backend::build_layer(BackendChoice::Cpu, &model, shape).unwrap();
        let y = draw(&keys, seeds, n, d, n as u64);
        // The same m queries in every context.
        let z1 = draw(&InitSpec::Uniform, 1, m, d, 99);
        let z: Vec<f64> = (0..seeds).flat_map(|_| z1.iter().copied()).collect();
        layer.set_keys(&y).unwrap();
        let a = layer.run(&z).unwrap();
        let mut sq = 0.0;
        for (t, at) in a.chunks(d).enumerate() {
            let exact = meanfield::vmf_attention(&law, &lw, beta, &z[t * d..(t + 1) * d]);
            sq += at
                .iter()
                .zip(&exact)
                .map(|(p, q)| (p - q).powi(2))
                .sum::<f64>();
        }
        rms.push((sq / (seeds * m) as f64).sqrt());
    }
    let x: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let (slope, se) = loglog_slope(&x, &rms);
    eprintln!("vMF attention RMS error {rms:.3?} over n {ns:?}: slope {slope:.3} +- {se:.3}");
    assert!((slope + 0.5).abs() <= 0.1, "slope {slope:.3} (rms {rms:?})");
}

/// The contextual flow map on cpu and gpu equals the reference, frozen and evolving.
#[test]
fn cfm_backends_match_reference() {
    for (mode, m, n, d, batch, beta) in [
        (ContextMode::Frozen, 9, 500, 3, 2, 2.0),
        (ContextMode::Evolving, 16, 65, 8, 1, 1.0),
    ] {
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::random(d, 4),
            vec![beta; batch],
        );
        let shape = LayerShape { batch, m, n, d };
        let y = draw(
            &InitSpec::Vmf {
                kappa: 1.0,
                mu: None,
            },
            batch,
            n,
            d,
            5,
        );
        let z = draw(&InitSpec::Uniform, batch, m, d, 6);
        let evolve = |choice| {
            let mut f = Cfm::new(choice, &model, shape, mode, z.clone(), y.clone()).unwrap();
            for _ in 0..5 {
                f.step(Integrator::Rk4, 0.05).unwrap();
            }
            (f.z, f.y)
        };
        let (want_z, want_y) = evolve(BackendChoice::Reference);
        let moved = distances(&want_z, &z, d).into_iter().fold(0.0, f64::max);
        assert!(moved > 1e-3, "{mode:?}: queries moved only {moved:.1e}");
        if mode == ContextMode::Frozen {
            assert_eq!(want_y, y, "a frozen context does not move");
        }
        for choice in backends() {
            let (got_z, got_y) = evolve(choice);
            let label = format!("{} {mode:?}", choice.name());
            assert_close(
                &got_z,
                &want_z,
                Shape::new(batch, m, d).unwrap(),
                1e-5,
                1e-5,
                &label,
            );
            assert_close(
                &got_y,
                &want_y,
                Shape::new(batch, n, d).unwrap(),
                1e-5,
                1e-5,
                &label,
            );
        }
    }
}

/// Queries never act on the context: an evolving context moves exactly as the same tokens
/// under plain self-attention (the `run` engine), whatever the queries.
#[test]
fn an_evolving_context_ignores_the_queries() {
    let (n, d) = (40, 3);
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        vec![3.0],
    );
    let y = draw(&InitSpec::Uniform, 1, n, d, 8);
    let mut flow = Cfm::new(
        BackendChoice::Reference,
        &model,
        LayerShape {
            batch: 1,
            m: 5,
            n,
            d,
        },
        ContextMode::Evolving,
        draw(&InitSpec::Uniform, 1, 5, d, 9),
        y.clone(),
    )
    .unwrap();
    let shape = Shape::new(1, n, d).unwrap();
    let mut sa = attnflow::reference::ReferenceBackend::new(&model, shape, &y).unwrap();
    attnflow::run::integrate_steps(&mut sa, &model, Integrator::Rk4, 0.05, 10).unwrap();
    for _ in 0..10 {
        flow.step(Integrator::Rk4, 0.05).unwrap();
    }
    assert_close(
        &flow.y,
        sa.state(),
        shape,
        1e-13,
        1e-13,
        "context vs self-attention",
    );
}

/// A frozen vMF context: the finite-context flow of each query approaches its infinite-context
/// twin (solved to 1e-12) like n^{-1/2}: fitted slope of the RMS distance at T = 1 over
/// n = 10^3 .. 10^5 within 0.15 of -0.5 (16 contexts of 16 queries each).
#[test]
fn finite_context_flow_approaches_its_infinite_twin_like_inverse_square_root_of_n() {
    let d = 3;
    let (kappa, beta, seeds, m) = (1.0, 2.0, 16, 16);
    let law = VmfLaw::new(vec![1.0, 0.0, 0.0], kappa).unwrap();
    let model0 = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        vec![beta; seeds],
    );
    let z1 = draw(&InitSpec::Uniform, 1, m, d, 7);
    let z: Vec<f64> = (0..seeds).flat_map(|_| z1.iter().copied()).collect();
    let twins: Vec<Vec<f64>> = z1
        .chunks(d)
        .map(|z| {
            let out = meanfield::integrate_infinite_cfm(
                &law,
                &LawWeights::identity(),
                beta,
                z,
                &[1.0],
                &Adaptive::uniform(1e-12),
            );
            out[0].clone()
        })
        .collect();
    let want: Vec<f64> = (0..seeds).flat_map(|_| twins.concat()).collect();
    let ns = [1000usize, 4000, 16000, 64000];
    let mut rms = Vec::new();
    for &n in &ns {
        let y = draw(
            &InitSpec::Vmf { kappa, mu: None },
            seeds,
            n,
            d,
            1000 + n as u64,
        );
        let shape = LayerShape {
            batch: seeds,
            m,
            n,
            d,
        };
        let mut flow = Cfm::new(
            BackendChoice::Cpu,
            &model0,
            shape,
            ContextMode::Frozen,
            z.clone(),
            y,
        )
        .unwrap();
        for _ in 0..20 {
            flow.step(Integrator::Rk4, 0.05).unwrap();
        }
        let dist = distances(&flow.z, &want, d);
        rms.push((dist.iter().map(|v| v * v).sum::<f64>() / dist.len() as f64).sqrt());
    }
    let x: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let (slope, se) = loglog_slope(&x, &rms);
    eprintln!(
        "CFM distance to the infinite twin {rms:.3?} over n {ns:?}: slope {slope:.3} +- {se:.3}"
    );
    assert!(
        (slope + 0.5).abs() <= 0.15,
        "slope {slope:.3} (rms {rms:?})"
    );
}

#[test]
fn token_sources_parse_and_refuse_bad_input() {
    assert_eq!(
        TokenSource::parse("vmf:2.5:0,1:100", "--keys").unwrap(),
        TokenSource::Law {
            law: InitSpec::Vmf {
                kappa: 2.5,
                mu: Some(vec![0.0, 1.0])
            },
            n: 100
        }
    );
    assert_eq!(
        TokenSource::parse("k.npy", "--keys").unwrap(),
        TokenSource::File("k.npy".into())
    );
    for (bad, want) in [
        ("uniform", "expected a .npy file"),
        ("uniform:0", "at least 1"),
        ("sobol:10", "unknown --init 'sobol'"),
        ("vmf:-1:10", "kappa must be finite and >= 0"),
    ] {
        let err = TokenSource::parse(bad, "--keys").unwrap_err().to_string();
        assert!(err.contains(want), "{bad}: {err}");
    }
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(3),
        vec![1.0],
    );
    let err = attnflow::backend::build_layer(
        BackendChoice::Cpu,
        &model,
        LayerShape {
            batch: 1,
            m: 0,
            n: 5,
            d: 3,
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("m = 0"), "{err}");
}

/// A flow stepped adaptively (issue 25) by `pair` at rtol, atol = `tol` to T, with the queries
/// at `outputs` (dense output): (the snapshots, the final queries and context, each draw's
/// accepted steps and evaluations).
#[allow(clippy::type_complexity)]
fn adaptive_cfm(
    choice: BackendChoice,
    model: &Model,
    shape: LayerShape,
    mode: ContextMode,
    (z, y): (&[f64], &[f64]),
    (pair, tol, t_end, outputs): (Integrator, (f64, f64), f64, &[f64]),
) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>, Vec<(u64, u64)>) {
    use attnflow::integrate::Backend as _;
    use attnflow::integrate::adaptive::{AdaptiveStepper, Options};
    let mut flow = Cfm::new(choice, model, shape, mode, z.to_vec(), y.to_vec()).unwrap();
    let opts = Options {
        rtol: tol.0,
        atol: tol.1,
        ..Options::default()
    };
    let mut stepper = AdaptiveStepper::new(model, flow.shape(), pair, opts).unwrap();
    stepper.prepare(&mut flow).unwrap();
    let mut saved = Vec::new();
    stepper
        .advance(&mut flow, t_end, outputs, &mut |_, x| {
            saved.push(x.to_vec());
            Ok(())
        })
        .unwrap();
    let stats = stepper
        .systems()
        .iter()
        .map(|s| (s.stats.accepted, s.stats.evaluations))
        .collect();
    (saved, flow.z, flow.y, stats)
}

/// Adaptive flow maps (dopri5, rtol 1e-6, atol 1e-8, T = 2) on cpu and gpu against the f64
/// reference at the same tolerance, frozen and evolving context (the shapes of
/// `cfm_backends_match_reference`): accepted steps within 3 of the reference's per draw,
/// queries at t = 0.5, 1, 2 and the final context within 1e-6 (f32 attention; measured at
/// most 7.2e-8 on llvmpipe).
#[test]
fn adaptive_cfm_backends_match_reference() {
    for (mode, m, n, d, batch, beta) in [
        (ContextMode::Frozen, 9, 500, 3, 2, 2.0),
        (ContextMode::Evolving, 16, 65, 8, 1, 1.0),
    ] {
        let model = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            Weights::random(d, 4),
            vec![beta; batch],
        );
        let shape = LayerShape { batch, m, n, d };
        let y = draw(
            &InitSpec::Vmf {
                kappa: 1.0,
                mu: None,
            },
            batch,
            n,
            d,
            5,
        );
        let z = draw(&InitSpec::Uniform, batch, m, d, 6);
        let outputs = [0.5, 1.0, 2.0];
        let run = |choice| {
            let setup = (Integrator::Dopri5, (1e-6, 1e-8), 2.0, &outputs[..]);
            adaptive_cfm(choice, &model, shape, mode, (&z, &y), setup)
        };
        let (want, _, want_y, want_steps) = run(BackendChoice::Reference);
        let moved = distances(&want[2], &z, d).into_iter().fold(0.0, f64::max);
        assert!(moved > 1e-2, "{mode:?}: queries moved only {moved:.1e}");
        let context_moved = distances(&want_y, &y, d).into_iter().fold(0.0, f64::max);
        assert_eq!(
            context_moved > 1e-2,
            mode == ContextMode::Evolving,
            "{mode:?}: the context moved by {context_moved:.1e}"
        );
        for choice in backends() {
            let (got, _, got_y, steps) = run(choice);
            let label = format!("adaptive {} {mode:?}", choice.name());
            eprintln!("{label}: (accepted, evaluations) {steps:?}, reference {want_steps:?}");
            for (g, w) in steps.iter().zip(&want_steps) {
                assert!(
                    g.0.abs_diff(w.0) <= 3,
                    "{label}: {steps:?} vs {want_steps:?}"
                );
            }
            let queries = Shape::new(batch, m, d).unwrap();
            for (t, (g, w)) in outputs.iter().zip(got.iter().zip(&want)) {
                let err = assert_close(g, w, queries, 1e-6, 0.0, &format!("{label} t = {t}"));
                eprintln!("{label}: queries at t = {t} within {err:.2e}");
            }
            let context = Shape::new(batch, n, d).unwrap();
            let err = assert_close(&got_y, &want_y, context, 1e-6, 0.0, &label);
            eprintln!("{label}: context at T within {err:.2e}");
        }
    }
}

/// An adaptive ensemble of flow maps with evolving contexts (two draws at beta 1 and 6, which
/// take different steps) equals each draw run alone, to the bit: queries at every output time,
/// the final queries and context, and the step statistics (reference and cpu).
#[test]
fn an_adaptive_ensemble_of_evolving_flows_equals_its_draws_alone() {
    let (m, n, d, betas) = (5, 40, 3, [1.0, 6.0]);
    let z = draw(&InitSpec::Uniform, 2, m, d, 11);
    let y = draw(&InitSpec::Uniform, 2, n, d, 12);
    let outputs = [0.25, 1.0, 3.0];
    let setup = (Integrator::Dopri5, (1e-6, 1e-8), 3.0, &outputs[..]);
    for choice in [BackendChoice::Reference, BackendChoice::Cpu] {
        let model = |betas: &[f64]| {
            Model::new(
                Attention::Sa,
                Geometry::Sphere,
                Mask::Full,
                Weights::identity(d),
                betas.to_vec(),
            )
        };
        let shape = |batch| LayerShape { batch, m, n, d };
        let both = adaptive_cfm(
            choice,
            &model(&betas),
            shape(2),
            ContextMode::Evolving,
            (&z, &y),
            setup,
        );
        assert_ne!(both.3[0].0, both.3[1].0, "the draws take different steps");
        for b in 0..2 {
            let (zq, yk) = (m * d, n * d);
            let alone = adaptive_cfm(
                choice,
                &model(&betas[b..=b]),
                shape(1),
                ContextMode::Evolving,
                (&z[b * zq..(b + 1) * zq], &y[b * yk..(b + 1) * yk]),
                setup,
            );
            let label = format!("{} draw {b}", choice.name());
            for (s, snap) in alone.0.iter().enumerate() {
                assert_eq!(
                    snap[..],
                    both.0[s][b * zq..(b + 1) * zq],
                    "{label} output {s}"
                );
            }
            assert_eq!(alone.1[..], both.1[b * zq..(b + 1) * zq], "{label} queries");
            assert_eq!(alone.2[..], both.2[b * yk..(b + 1) * yk], "{label} context");
            assert_eq!(alone.3[0], both.3[b], "{label} steps");
        }
        eprintln!("{}: (accepted, evaluations) {:?}", choice.name(), both.3);
    }
}
