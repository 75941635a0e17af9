//! Random Q, K, V drawn per system of an ensemble (`--qkv random-per-system:SEED`,
//! `redraw-per-system:SEED`; docs/model.md §3): system b's heads come from the counter-based
//! generator keyed by (seed, b), so
//! - on the reference, an ensemble equals each of its systems run alone with its own heads,
//!   bit for bit (fixed heads for `random-per-system`, per-layer weights with one layer per step
//!   for `redraw-per-system`);
//! - the first systems of a larger batch are those of a smaller one, bit for bit (reference and
//!   cpu; gpu within the tolerance): a system's weights do not depend on the batch size;
//! - the cpu and gpu backends follow the reference within the tolerance of tests/variants.rs,
//!   |got - want| <= 1e-5 + 1e-5 |want| per coordinate, and the device's draws (matrices
//!   [H, batch, d, d]) equal the host's;
//! - run.toml records the spec and replays the run bit for bit.

mod common;

use attnflow::cpu::CpuBackend;
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{
    Attention, Geometry, HeadCombine, LayerMap, Mask, Model, PerLayer, RandomHeads, Shape,
};
use attnflow::reference::ReferenceBackend;
use attnflow::run::integrate_steps;
use common::*;

const TOL: f64 = 1e-5;
const H: f64 = 0.05;
const STEPS: usize = 4;

fn per_system_model(
    attention: Attention,
    mask: Mask,
    d: usize,
    betas: Vec<f64>,
    redraw: bool,
) -> Model {
    let mut m = Model::new(
        attention,
        Geometry::Sphere,
        mask,
        Weights::identity(d),
        betas,
    );
    let heads = 2;
    m.heads = vec![Weights::identity(d); heads];
    m.combine = HeadCombine::Mean;
    m.random = Some(RandomHeads {
        heads,
        scale: 1.5,
        seed: 77,
        redraw,
        per_system: true,
    });
    m
}

fn evolve(backend: &mut dyn Backend, model: &Model) -> Vec<f64> {
    // The residual layer maps are one Euler update per layer.
    let integrator = if model.layer.is_ode() {
        Integrator::Rk4
    } else {
        Integrator::Euler
    };
    integrate_steps(backend, model, integrator, H, STEPS).unwrap();
    backend.read_state().unwrap().to_f64()
}

fn reference(model: &Model, shape: Shape, x0: &[f64]) -> Vec<f64> {
    evolve(&mut ReferenceBackend::new(model, shape, x0).unwrap(), model)
}

fn cpu(model: &Model, shape: Shape, x0: &[f64]) -> Vec<f64> {
    evolve(&mut CpuBackend::new(model, shape, x0).unwrap(), model)
}

/// System b of `model` as a model of its own: batch 1, its beta, and its heads given
/// explicitly (fixed, or one per-layer entry per step when redrawn).
fn alone(model: &Model, b: usize, d: usize) -> Model {
    let r = model.random.unwrap();
    let mut m = model.clone();
    m.random = None;
    m.betas = vec![model.betas[b]];
    if r.redraw {
        let layers: Vec<Vec<Weights>> = (0..STEPS as u32).map(|l| r.draw(d, l, b)).collect();
        m.heads = layers[0].clone();
        m.per_layer = Some(PerLayer {
            steps_per_layer: 1,
            heads: Some(layers),
            mlps: None,
            selected: 0,
        });
    } else {
        m.heads = r.draw(d, 0, b);
    }
    m
}

fn cases() -> Vec<(String, Model, Shape)> {
    let mut out = Vec::new();
    for (attention, mask, layer, n, d) in [
        (Attention::Sa, Mask::Full, LayerMap::Ode, 20, 4),
        (Attention::Usa, Mask::Causal, LayerMap::Ode, 17, 3),
        (Attention::Sa, Mask::Full, LayerMap::PreLn, 12, 5),
    ] {
        for redraw in [false, true] {
            let betas = vec![0.5, 1.0, 2.0];
            let shape = Shape::new(betas.len(), n, d).unwrap();
            let mut m = per_system_model(attention, mask, d, betas, redraw);
            m.layer = layer;
            if attention == Attention::Usa {
                // USA's weights exp(beta <Qx, Kx>) are not normalised: smaller entries keep
                // the field, and RK4 at h = 0.05, tame.
                m.random = m.random.map(|r| RandomHeads { scale: 0.6, ..r });
            }
            let name = format!(
                "{} {} {} redraw={redraw}",
                attention.name(),
                mask.name(),
                layer.name()
            );
            out.push((name, m, shape));
        }
    }
    out
}

fn initial(shape: Shape, seed: u64) -> Vec<f64> {
    InitSpec::Uniform
        .generate(shape, Geometry::Sphere, seed)
        .unwrap()
}

/// The systems really have different heads, and a redraw changes them from layer to layer.
#[test]
fn every_system_draws_its_own_heads() {
    let m = per_system_model(Attention::Sa, Mask::Full, 4, vec![1.0; 3], true);
    let by_system = m.heads_by_system(4, 0, 3);
    assert_eq!(by_system.len(), 3);
    assert_ne!(by_system[0][0].q, by_system[1][0].q);
    assert_ne!(by_system[1][0].k, by_system[2][0].k);
    assert_ne!(by_system[0][0].v, by_system[0][1].v, "heads differ too");
    assert_ne!(m.heads_by_system(4, 1, 3)[1][0].q, by_system[1][0].q);
    let fixed = per_system_model(Attention::Sa, Mask::Full, 4, vec![1.0; 3], false);
    assert_eq!(
        fixed.heads_by_system(4, 0, 3),
        fixed.heads_by_system(4, 9, 3),
        "random-per-system keeps its heads over depth"
    );
    // A batch of 5 extends a batch of 3: system b's heads depend on (seed, b) only.
    assert_eq!(
        &m.heads_by_system(4, 2, 5)[..3],
        &m.heads_by_system(4, 2, 3)[..]
    );
}

#[test]
fn reference_ensemble_equals_each_system_alone_bit_for_bit() {
    for (name, m, shape) in cases() {
        let x0 = initial(shape, 5);
        let all = reference(&m, shape, &x0);
        let len = shape.n * shape.d;
        let moved = all
            .iter()
            .zip(&x0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(moved > 1e-3, "{name}: tokens moved by {moved:.1e}");
        let one = Shape::new(1, shape.n, shape.d).unwrap();
        for b in 0..shape.batch {
            let own = alone(&m, b, shape.d);
            let got = reference(&own, one, &x0[b * len..(b + 1) * len]);
            assert_eq!(
                got,
                all[b * len..(b + 1) * len],
                "{name}: system {b} alone differs from the ensemble"
            );
        }
        // Shared heads would give a different ensemble: the per-system draw matters.
        let mut shared = m.clone();
        shared.random = Some(RandomHeads {
            per_system: false,
            ..m.random.unwrap()
        });
        assert_ne!(reference(&shared, shape, &x0), all, "{name}");
    }
}

#[test]
fn cpu_matches_reference_with_heads_per_system() {
    for (name, m, shape) in cases() {
        let x0 = initial(shape, 8);
        let want = reference(&m, shape, &x0);
        let got = cpu(&m, shape, &x0);
        let err = assert_close(&got, &want, shape, TOL, TOL, &format!("cpu {name}"));
        eprintln!("{name}: max error cpu {err:.2e}");
    }
}

/// The first two systems of a batch of five are a batch of two, bit for bit, on the reference
/// and on the cpu (on the gpu within the tolerance).
#[test]
fn systems_do_not_depend_on_the_batch_size() {
    for (name, m, shape) in cases() {
        let big = Shape::new(5, shape.n, shape.d).unwrap();
        let small = Shape::new(2, shape.n, shape.d).unwrap();
        let mut mb = m.clone();
        mb.betas = vec![0.5, 2.0, 1.0, 3.0, 0.7];
        let mut ms = m.clone();
        ms.betas = mb.betas[..2].to_vec();
        let x0 = initial(big, 3);
        let head = 2 * shape.n * shape.d;
        for (backend, run) in [
            (
                "reference",
                reference as fn(&Model, Shape, &[f64]) -> Vec<f64>,
            ),
            ("cpu", cpu),
        ] {
            let b5 = run(&mb, big, &x0);
            let b2 = run(&ms, small, &x0[..head]);
            assert_eq!(b5[..head], b2[..], "{backend} {name}");
        }
        // The gpu's dispatch plan depends on the batch: the same systems within the tolerance.
        if let Some(ctx) = gpu() {
            let mut g5 = attnflow::gpu::GpuBackend::new(ctx.clone(), &mb, big, &x0).unwrap();
            let mut g2 = attnflow::gpu::GpuBackend::new(ctx, &ms, small, &x0[..head]).unwrap();
            let (b5, b2) = (evolve(&mut g5, &mb), evolve(&mut g2, &ms));
            assert_close(&b5[..head], &b2, small, TOL, TOL, &format!("gpu {name}"));
        }
    }
}

/// The gpu backend (matrices [H, batch, d, d], drawn on the device) against the reference.
#[test]
fn gpu_matches_reference_with_heads_per_system() {
    let Some(ctx) = gpu() else { return };
    for (name, m, shape) in cases() {
        let x0 = initial(shape, 8);
        let want = reference(&m, shape, &x0);
        let mut backend = attnflow::gpu::GpuBackend::new(ctx.clone(), &m, shape, &x0).unwrap();
        let got = evolve(&mut backend, &m);
        let err = assert_close(&got, &want, shape, TOL, TOL, &format!("gpu {name}"));
        eprintln!("{name}: max error gpu {err:.2e}");
    }
}

/// The device's per-system draws equal the host's (`Model::heads_by_system`), at several
/// layers, for a redraw and a fixed draw.
#[test]
fn gpu_draws_per_system_equal_the_host_draws() {
    let Some(ctx) = gpu() else { return };
    let (d, batch) = (4, 3);
    let shape = Shape::new(batch, 6, d).unwrap();
    for redraw in [true, false] {
        let m = per_system_model(Attention::Sa, Mask::Full, d, vec![1.0; batch], redraw);
        let heads = m.random.unwrap().heads;
        let x0 = initial(shape, 1);
        let mut gpu = attnflow::gpu::GpuBackend::new(ctx.clone(), &m, shape, &x0).unwrap();
        gpu.prepare(1).unwrap();
        for layer in [0u32, 1, 9] {
            gpu.begin_step(layer).unwrap();
            let (scores, values) = gpu.read_head_matrices().unwrap();
            let want = m.heads_by_system(d, layer, batch);
            for h in 0..heads {
                for (b, system) in want.iter().enumerate() {
                    let w = &system[h];
                    let at = (h * batch + b) * d * d;
                    let score = w.score_matrix();
                    for e in 0..d * d {
                        let ds = (f64::from(scores[at + e]) - score[e]).abs();
                        let dv = (f64::from(values[at + e]) - w.v[e]).abs();
                        assert!(
                            ds <= 1e-5 * (1.0 + score[e].abs())
                                && dv <= 1e-6 * (1.0 + w.v[e].abs()),
                            "redraw={redraw} layer {layer} head {h} system {b} entry {e}"
                        );
                    }
                }
            }
        }
    }
}

/// run.toml records `qkv = "redraw-per-system:SEED"` and replays the run bit for bit; the
/// reference and cpu runs of the command line agree within the tolerance.
#[test]
fn run_toml_records_the_per_system_spec_and_replays() {
    use common::cmd::ok;
    let dir = tempfile::tempdir().unwrap();
    for (qkv, backend) in [
        ("redraw-per-system:3", "cpu"),
        ("random-per-system:4", "reference"),
    ] {
        let first = format!("first-{backend}");
        let again = format!("again-{backend}");
        ok(
            &[
                "run",
                "--n",
                "16",
                "--d",
                "3",
                "--beta",
                "0.5,1,2",
                "--heads",
                "2",
                "--qkv",
                qkv,
                "--steps",
                "5",
                "--t-end",
                "0.5",
                "--backend",
                backend,
                "--out",
                &first,
                "--quiet",
            ],
            dir.path(),
        );
        let run = std::fs::read_to_string(dir.path().join(&first).join("run.toml")).unwrap();
        let table: toml::Table = toml::from_str(&run).unwrap();
        assert_eq!(table["qkv"].as_str(), Some(qkv), "{run}");
        ok(
            &[
                "run",
                "--config",
                &format!("{first}/run.toml"),
                "--out",
                &again,
                "--quiet",
            ],
            dir.path(),
        );
        let read = |p: &str| std::fs::read(dir.path().join(p).join("final.npy")).unwrap();
        assert_eq!(read(&first), read(&again), "{qkv}");
    }
}
