//! Per-layer weights (docs/model.md §3, "Per-layer weights"): Q, K, V of shape [L, H, d, d] and
//! a perceptron of [L, d, m], [L, m, d], [L, m], layer l used on the l-th of L equal pieces of
//! [0, T] (step k of S uses layer floor(k L / S) for all its Runge-Kutta stages).
//! - the reference equals an f64 transcription written here (RK4, layer fixed per step) to
//!   1e-12, and differs from a run on layer 0's weights alone (so the schedule is exercised);
//! - cpu and gpu (layers resident, and written from the host at each change) agree with the
//!   reference as for constant weights (tests/cpu_matches_reference.rs: 1e-4);
//! - files with L = 1 ([1, H, d, d], [1, d, m], ...) run bit-identically to files without the
//!   layer axis;
//! - bad shapes, disagreeing L and a step count that is not a multiple of L are refused with
//!   one line naming the file and the expected shapes.

mod common;

use std::path::Path;

use attnflow::config::{self, ConfigLayer, Resolved};
use attnflow::cpu::CpuBackend;
use attnflow::gpu::{GpuBackend, GpuOptions};
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::init::InitSpec;
use attnflow::reference::ReferenceBackend;
use common::*;

const N: usize = 6;
const D: usize = 3;
const HEADS: usize = 2;
const HIDDEN: usize = 4;
const LAYERS: usize = 3;
/// Tolerance of f32 backends against f64 (as tests/cpu_matches_reference.rs).
const TOL: f64 = 1e-4;

/// Deterministic entries in [-scale, scale).
fn entries(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    lcg_entries(len, seed, scale)
}

/// Per-layer weights: Q, K, V [layers, HEADS, D, D], W [layers, D, m], A [layers, m, D],
/// b [layers, m], as flat vectors.
struct Files {
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

fn weights(layers: usize) -> Files {
    let m = layers * HEADS * D * D;
    Files {
        q: entries(m, 1, 1.5),
        k: entries(m, 2, 1.5),
        v: entries(m, 3, 1.0),
        w: entries(layers * D * HIDDEN, 4, 0.7),
        a: entries(layers * HIDDEN * D, 5, 1.0),
        b: entries(layers * HIDDEN, 6, 0.5),
    }
}

/// Writes the attention files with the given leading shape ([L, H], [H] or []) and the
/// perceptron files with the given leading shape ([L] or []).
fn write(dir: &Path, f: &Files, qkv_lead: &[usize], mlp_lead: &[usize]) {
    let (qkv, mlp) = (dir.join("qkv"), dir.join("mlp"));
    std::fs::create_dir_all(&qkv).unwrap();
    std::fs::create_dir_all(&mlp).unwrap();
    let with = |lead: &[usize], tail: &[usize]| [lead, tail].concat();
    for (name, data) in [("Q.npy", &f.q), ("K.npy", &f.k), ("V.npy", &f.v)] {
        attnflow::npy::write(&qkv.join(name), &with(qkv_lead, &[D, D]), data).unwrap();
    }
    attnflow::npy::write(&mlp.join("W.npy"), &with(mlp_lead, &[D, HIDDEN]), &f.w).unwrap();
    attnflow::npy::write(&mlp.join("A.npy"), &with(mlp_lead, &[HIDDEN, D]), &f.a).unwrap();
    attnflow::npy::write(&mlp.join("b.npy"), &with(mlp_lead, &[HIDDEN]), &f.b).unwrap();
}

fn layer_config(dir: &Path, steps: usize) -> ConfigLayer {
    ConfigLayer {
        n: Some(N),
        d: Some(D),
        beta: Some(config::BetaSpec::One(2.0)),
        t_end: Some(1.2),
        steps: Some(steps),
        qkv: Some(dir.join("qkv").display().to_string()),
        mlp: Some(dir.join("mlp").display().to_string()),
        ..Default::default()
    }
}

fn resolve(dir: &Path, steps: usize) -> Resolved {
    config::resolve(&layer_config(dir, steps)).unwrap()
}

fn initial(r: &Resolved) -> Vec<f64> {
    InitSpec::Uniform
        .generate(r.shape, r.config.geometry, 5)
        .unwrap()
}

fn run(backend: &mut dyn Backend, r: &Resolved) -> Vec<f64> {
    attnflow::run::integrate_steps(
        backend,
        &r.model,
        Integrator::Rk4,
        r.step_size(),
        r.config.steps,
    )
    .unwrap();
    backend.read_state().unwrap().to_f64()
}

/// The field of docs/model.md §1, §3 on the sphere with layer `l`'s weights, written out:
/// f_i = P_{x_i}^perp (sum_h sum_j softmax_j(beta <Q x_i, K x_j>) V x_j + W relu(A x_i + b)).
fn transcribed_field(f: &Files, l: usize, beta: f64, x: &[f64]) -> Vec<f64> {
    let mat = |m: &[f64], v: &[f64], rows: usize, cols: usize| -> Vec<f64> {
        (0..rows)
            .map(|r| (0..cols).map(|c| m[r * cols + c] * v[c]).sum())
            .collect()
    };
    let tok = |i: usize| &x[i * D..(i + 1) * D];
    let mut out = vec![0.0; N * D];
    for i in 0..N {
        let mut a = [0.0; D];
        for h in 0..HEADS {
            let o = (l * HEADS + h) * D * D;
            let (q, k, v) = (&f.q[o..o + D * D], &f.k[o..o + D * D], &f.v[o..o + D * D]);
            let qx = mat(q, tok(i), D, D);
            let s: Vec<f64> = (0..N)
                .map(|j| {
                    let kx = mat(k, tok(j), D, D);
                    beta * qx.iter().zip(&kx).map(|(a, b)| a * b).sum::<f64>()
                })
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|s| (s - mx).exp()).sum();
            for (j, sj) in s.iter().enumerate() {
                let vx = mat(v, tok(j), D, D);
                let p = (sj - mx).exp() / z;
                a.iter_mut().zip(&vx).for_each(|(a, v)| *a += p * v);
            }
        }
        let w = &f.w[l * D * HIDDEN..(l + 1) * D * HIDDEN];
        let am = &f.a[l * HIDDEN * D..(l + 1) * HIDDEN * D];
        let b = &f.b[l * HIDDEN..(l + 1) * HIDDEN];
        let hidden: Vec<f64> = mat(am, tok(i), HIDDEN, D)
            .iter()
            .zip(b)
            .map(|(z, b)| (z + b).max(0.0))
            .collect();
        let mlp = mat(w, &hidden, D, HIDDEN);
        a.iter_mut().zip(&mlp).for_each(|(a, m)| *a += m);
        // P_x^perp a = a - (<x, a> / <x, x>) x (stage inputs are slightly off the sphere).
        let xa: f64 = a.iter().zip(tok(i)).map(|(a, x)| a * x).sum();
        let xx: f64 = tok(i).iter().map(|x| x * x).sum();
        for c in 0..D {
            out[i * D + c] = a[c] - xa / xx * tok(i)[c];
        }
    }
    out
}

/// RK4 with step k on layer floor(k L / S), the stages unnormalised, each step renormalised.
fn transcribed_run(
    f: &Files,
    layers: usize,
    steps: usize,
    h: f64,
    beta: f64,
    x0: &[f64],
) -> Vec<f64> {
    let mut x = x0.to_vec();
    let axpy = |x: &[f64], c: f64, k: &[f64]| -> Vec<f64> {
        x.iter().zip(k).map(|(x, k)| x + c * k).collect()
    };
    for step in 0..steps {
        let l = step * layers / steps;
        let k1 = transcribed_field(f, l, beta, &x);
        let k2 = transcribed_field(f, l, beta, &axpy(&x, h / 2.0, &k1));
        let k3 = transcribed_field(f, l, beta, &axpy(&x, h / 2.0, &k2));
        let k4 = transcribed_field(f, l, beta, &axpy(&x, h, &k3));
        for t in 0..x.len() {
            x[t] += h / 6.0 * (k1[t] + 2.0 * k2[t] + 2.0 * k3[t] + k4[t]);
        }
        for tok in x.chunks_mut(D) {
            let norm = tok.iter().map(|v| v * v).sum::<f64>().sqrt();
            tok.iter_mut().for_each(|v| *v /= norm);
        }
    }
    x
}

#[test]
fn reference_with_three_layers_matches_the_transcription() {
    let dir = tempfile::tempdir().unwrap();
    let f = weights(LAYERS);
    write(dir.path(), &f, &[LAYERS, HEADS], &[LAYERS]);
    // 6 steps: layers 0, 0, 1, 1, 2, 2.
    let r = resolve(dir.path(), 6);
    let per = r.model.per_layer.as_ref().expect("per-layer weights");
    assert_eq!((per.layers(), per.steps_per_layer), (LAYERS, 2));
    let x0 = initial(&r);
    let got = run(
        &mut ReferenceBackend::new(&r.model, r.shape, &x0).unwrap(),
        &r,
    );
    let want = transcribed_run(&f, LAYERS, 6, r.step_size(), 2.0, &x0);
    let err = assert_close(
        &got,
        &want,
        r.shape,
        1e-12,
        0.0,
        "reference vs transcription",
    );
    eprintln!("reference vs transcription, L = {LAYERS}: max|err| = {err:.2e}");
    // The schedule matters: layer 0's weights throughout differ far beyond that.
    let first = transcribed_run(&f, 1, 6, r.step_size(), 2.0, &x0);
    let diff = got
        .iter()
        .zip(&first)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("per-layer vs layer 0 only: max|diff| = {diff:.2e}");
    assert!(diff > 1e-3, "the layers barely matter: {diff:.2e}");
}

#[test]
fn cpu_and_gpu_match_the_reference_with_three_layers() {
    let dir = tempfile::tempdir().unwrap();
    let f = weights(LAYERS);
    write(dir.path(), &f, &[LAYERS, HEADS], &[LAYERS]);
    let r = resolve(dir.path(), 6);
    let x0 = initial(&r);
    let want = run(
        &mut ReferenceBackend::new(&r.model, r.shape, &x0).unwrap(),
        &r,
    );
    let got = run(&mut CpuBackend::new(&r.model, r.shape, &x0).unwrap(), &r);
    let err = assert_close(&got, &want, r.shape, TOL, TOL, "cpu vs reference");
    eprintln!("cpu vs reference, L = {LAYERS}: max|err| = {err:.2e}");
    let Some(ctx) = gpu() else { return };
    // Resident layers (the default cap), and layers written from the host (cap 0).
    for (cap, resident) in [
        (GpuOptions::default().resident_layer_bytes, true),
        (0, false),
    ] {
        let options = GpuOptions {
            resident_layer_bytes: cap,
            ..Default::default()
        };
        let mut gpu =
            GpuBackend::with_options(ctx.clone(), &r.model, r.shape, &x0, options).unwrap();
        assert_eq!(gpu.layers_resident(), Some(resident));
        let got = run(&mut gpu, &r);
        let what = format!("gpu (resident: {resident}) vs reference");
        let err = assert_close(&got, &want, r.shape, TOL, TOL, &what);
        eprintln!("{what}, L = {LAYERS}: max|err| = {err:.2e}");
    }
}

#[test]
fn one_layer_files_run_bit_identically_to_files_without_the_axis() {
    let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let f = weights(1);
    write(with.path(), &f, &[1, HEADS], &[1]);
    write(without.path(), &f, &[HEADS], &[]);
    let (a, b) = (resolve(with.path(), 5), resolve(without.path(), 5));
    let x0 = initial(&a);
    let same = |what: &str, x: Vec<f64>, y: Vec<f64>| {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&x),
            bits(&y),
            "{what}: [1, ...] files differ from [...] files"
        );
    };
    let refs = |r: &Resolved| {
        run(
            &mut ReferenceBackend::new(&r.model, r.shape, &x0).unwrap(),
            r,
        )
    };
    same("reference", refs(&a), refs(&b));
    let cpus = |r: &Resolved| run(&mut CpuBackend::new(&r.model, r.shape, &x0).unwrap(), r);
    same("cpu", cpus(&a), cpus(&b));
    if let Some(ctx) = gpu() {
        let gpus = |r: &Resolved| {
            run(
                &mut GpuBackend::new(ctx.clone(), &r.model, r.shape, &x0).unwrap(),
                r,
            )
        };
        same("gpu", gpus(&a), gpus(&b));
    }
}

/// The one-line error of a configuration.
fn refusal(layer: &ConfigLayer) -> String {
    let e = config::resolve(layer).unwrap_err().to_string();
    assert!(!e.trim().contains('\n'), "not one line: {e}");
    e
}

#[test]
fn bad_per_layer_files_are_refused_with_the_expected_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let f = weights(LAYERS);
    write(p, &f, &[LAYERS, HEADS], &[LAYERS]);
    // Steps not a multiple of L.
    let e = refusal(&layer_config(p, 7));
    assert!(e.contains("--steps 7 is not a multiple of 3"), "{e}");
    // K with another L than Q.
    let k = &f.k[..2 * HEADS * D * D];
    attnflow::npy::write(&p.join("qkv/K.npy"), &[2, HEADS, D, D], k).unwrap();
    let e = refusal(&layer_config(p, 6));
    assert!(
        e.contains("Q.npy, K.npy and V.npy hold 3 x 2, 2 x 2 and 3 x 2"),
        "{e}"
    );
    // A five-axis Q.
    attnflow::npy::write(&p.join("qkv/Q.npy"), &[LAYERS, 1, HEADS, D, D], &f.q).unwrap();
    let e = refusal(&layer_config(p, 6));
    assert!(
        e.contains("Q.npy")
            && e.contains("expected [3, 3], [heads, 3, 3] or [layers, heads, 3, 3]"),
        "{e}"
    );
    // The perceptron's b with another L than W and A.
    write(p, &f, &[LAYERS, HEADS], &[LAYERS]);
    attnflow::npy::write(&p.join("mlp/b.npy"), &[2, HIDDEN], &f.b[..2 * HIDDEN]).unwrap();
    let e = refusal(&layer_config(p, 6));
    assert!(
        e.contains("mlp") && e.contains("[L, 3, m], [L, m, 3] and [L, m]"),
        "{e}"
    );
    // Attention and perceptron with different L.
    let two = weights(2);
    write(p, &f, &[LAYERS, HEADS], &[LAYERS]);
    for (name, data) in [("Q.npy", &two.q), ("K.npy", &two.k), ("V.npy", &two.v)] {
        attnflow::npy::write(&p.join("qkv").join(name), &[2, HEADS, D, D], data).unwrap();
    }
    let e = refusal(&layer_config(p, 6));
    assert!(
        e.contains("hold 2 layers but the --mlp files hold 3"),
        "{e}"
    );
}
