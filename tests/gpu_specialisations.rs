//! Every kernel specialisation a GPU can get is executed here, on this adapter (llvmpipe in
//! CI), against the f64 reference (docs/model.md §1-2). The planner is asked which
//! specialisation each adapter profile gets for every d of `profiles::DIMENSIONS`, full and
//! causal masks (and causal with ALiBi, which changes the code), SA and USA; each distinct one
//! runs RK4 steps and the pair statistics; the test fails if any kernel text a profile can get
//! was not executed.

mod common;

use std::collections::{BTreeSet, HashMap};

use attnflow::gpu::catalogue::{self, VARIANTS, variant_name};
use attnflow::gpu::codegen::{AttentionKernel, Variant};
use attnflow::gpu::profiles::{AdapterProfile, DIMENSIONS, PROFILES};
use attnflow::gpu::{GpuBackend, GpuOptions, Specialisation};
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::observables::summarise;
use attnflow::model::weights::QkvSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};
use attnflow::reference::ReferenceBackend;
use common::*;

/// As tests/gpu_matches_reference.rs: |error| <= TOL + TOL |want| after the RK4 steps.
const TOL: f64 = 1e-4;
const STEPS: usize = 2;

/// The model of one planner question.
fn model(
    d: usize,
    variant: Variant,
    attention: Attention,
    geometry: Geometry,
    qkv: QkvSpec,
    betas: Vec<f64>,
) -> Model {
    let mut model = Model::new(
        attention,
        geometry,
        if variant.causal {
            Mask::Causal
        } else {
            Mask::Full
        },
        qkv.resolve(d).unwrap(),
        betas,
    );
    if variant.alibi {
        model.alibi = Some(attnflow::model::Alibi::new(2.0));
    }
    model
}

fn options(profile: &AdapterProfile, checked: bool) -> GpuOptions {
    GpuOptions {
        target: Some(profile.target()),
        checked: Some(checked),
        ..Default::default()
    }
}

/// Tokens per case: several key tiles with a partial last one (N-body tiles hold up to 256
/// keys, FlashAttention-2 tiles at most 32 keys and blocks at most 64 queries).
fn tokens(spec: &Specialisation) -> usize {
    match spec.attention {
        AttentionKernel::Nbody(_) => 300,
        AttentionKernel::Block(_) => 70,
    }
}

/// The kernels whose text depends on the adapter profile, as the backend compiles them: the
/// attention and pair-statistics kernels (the other nine depend on d alone, the same text on
/// every profile).
fn generated(spec: &Specialisation) -> Vec<String> {
    spec.sources()
        .into_iter()
        .filter(|(name, _, _)| matches!(*name, "attention" | "pair_stats"))
        .map(|(_, _, text)| text)
        .collect()
}

fn run_rk4(backend: &mut dyn Backend, model: &Model, h: f64) -> Vec<f64> {
    attnflow::run::integrate_steps(backend, model, Integrator::Rk4, h, STEPS).unwrap();
    backend.read_state().unwrap().to_f64()
}

#[test]
fn every_specialisation_a_profile_can_get_matches_reference_on_this_adapter() {
    let Some(ctx) = gpu() else { return };
    let start = std::time::Instant::now();
    // The planner's answers, through the backend's own path (Specialisation::new from a model
    // and the options), for every question.
    let mut planned: HashMap<Specialisation, Vec<String>> = HashMap::new();
    let mut order = Vec::new();
    for profile in PROFILES {
        for &d in DIMENSIONS {
            for variant in VARIANTS {
                for attention in [Attention::Sa, Attention::Usa] {
                    let m = model(
                        d,
                        variant,
                        attention,
                        Geometry::Sphere,
                        QkvSpec::Identity,
                        vec![1.0],
                    );
                    let spec = Specialisation::new(&ctx, &m, d, &options(profile, false));
                    let who = format!(
                        "{} d={d} {} {attention:?}",
                        profile.name,
                        variant_name(variant)
                    );
                    planned
                        .entry(spec)
                        .or_insert_with(|| {
                            order.push(spec);
                            Vec::new()
                        })
                        .push(who);
                }
            }
        }
    }
    // The same set as the catalogue that `attnflow kernels` lists and emits.
    let listed: BTreeSet<String> = catalogue::specialisations()
        .iter()
        .map(|e| format!("{:?}", e.spec))
        .collect();
    let asked: BTreeSet<String> = planned.keys().map(|s| format!("{s:?}")).collect();
    assert_eq!(asked, listed, "the planner and the catalogue disagree");

    let mut executed: BTreeSet<String> = BTreeSet::new();
    let mut worst: f64 = 0.0;
    for (k, spec) in order.iter().enumerate() {
        let d = spec.d;
        let who = &planned[spec];
        // SA and USA, identity and random weights, the geometry, beta, ensembles of two
        // systems and wgpu's runtime checks (ATTNFLOW_CHECKED_SHADERS) vary over the cases.
        let attention = if k % 2 == 0 {
            Attention::Sa
        } else {
            Attention::Usa
        };
        // (Random d x d weights at d > 128 cost llvmpipe seconds without touching the
        // kernels that vary by profile.)
        let qkv = if k % 4 < 2 && d <= 128 {
            QkvSpec::Random(7 + k as u64)
        } else {
            QkvSpec::Identity
        };
        let geometry = if k % 5 == 3 {
            Geometry::Euclidean
        } else {
            Geometry::Sphere
        };
        let beta = [1.0, 4.0, 0.5, 10.0][(k / 2 + k / 7) % 4];
        let betas = if k % 6 == 5 {
            vec![beta, beta / 4.0]
        } else {
            vec![beta]
        };
        let checked = k % 5 == 4;
        let m = model(
            d,
            spec.variant,
            attention,
            geometry,
            qkv.clone(),
            betas.clone(),
        );
        let shape = Shape::new(betas.len(), tokens(spec), d).unwrap();
        let case = Case {
            shape,
            attention,
            geometry,
            mask: m.mask,
            qkv,
            betas,
            seed: k as u64,
        };
        let x0 = case.initial();
        let h = case.step_size().min(0.05);
        let profile = AdapterProfile::named(who[0].split(' ').next().unwrap()).unwrap();
        let t0 = std::time::Instant::now();
        let mut gpu =
            GpuBackend::with_options(ctx.clone(), &m, shape, &x0, options(profile, checked))
                .unwrap_or_else(|e| panic!("{who:?}: {e}"));
        let setup = t0.elapsed().as_secs_f64();
        let got_spec = gpu.specialisation();
        assert_eq!(got_spec.checked, checked);
        assert_eq!(
            Specialisation {
                checked: false,
                ..got_spec
            },
            *spec,
            "{who:?}"
        );
        // The pair statistics at the initial state, then the dynamics.
        let t3 = std::time::Instant::now();
        let stats = gpu.pair_stats().unwrap();
        let stats_time = t3.elapsed().as_secs_f64();
        let want_stats = attnflow::reference::pair_stats(&m.betas, shape, &x0);
        let label = format!("{} ({} and {} more)", who[0], case.label(), who.len() - 1);
        let n = shape.n;
        for (b, &beta) in case.betas.iter().enumerate() {
            let rows = b * n..(b + 1) * n;
            let (g, w) = (
                summarise(&stats[rows.clone()], beta),
                summarise(&want_stats[rows], beta),
            );
            assert!(
                (g.energy - w.energy).abs() <= 1e-5 * w.energy.abs().max(1e-3)
                    && (g.mean_cos - w.mean_cos).abs() <= 1e-5
                    && (g.min_cos - w.min_cos).abs() <= 1e-5,
                "pair statistics of system {b}, {label}: got {g:?}, want {w:?}"
            );
        }
        let t1 = std::time::Instant::now();
        let want = run_rk4(&mut ReferenceBackend::new(&m, shape, &x0).unwrap(), &m, h);
        let reference = t1.elapsed().as_secs_f64();
        let t2 = std::time::Instant::now();
        let got = run_rk4(&mut gpu, &m, h);
        let run = t2.elapsed().as_secs_f64();
        let err = assert_close(&got, &want, shape, TOL, TOL, &label);
        worst = worst.max(err);
        executed.extend(generated(&gpu.specialisation()));
        eprintln!(
            "{k:3} {:<70} {} max|err|={err:.2e} (setup {setup:.1} s, pair stats {stats_time:.1} s, reference {reference:.1} s, gpu {run:.1} s)",
            label.chars().take(70).collect::<String>(),
            catalogue::describe_attention(&spec.attention)
        );
    }
    // Every generated kernel text any profile can get was compiled and run above.
    let wanted: BTreeSet<String> = order.iter().flat_map(generated).collect();
    let missing = wanted.difference(&executed).count();
    assert_eq!(missing, 0, "{missing} kernel texts were never executed");
    eprintln!(
        "{} distinct specialisations ({} kernel texts) executed in {:.1} s; largest error {worst:.3e}",
        order.len(),
        executed.len(),
        start.elapsed().as_secs_f64()
    );
}
