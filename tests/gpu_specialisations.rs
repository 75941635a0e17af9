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
fn model(d: usize, variant: Variant, attention: Attention, qkv: QkvSpec, beta: f64) -> Model {
    let mut model = Model::new(
        attention,
        Geometry::Sphere,
        if variant.causal {
            Mask::Causal
        } else {
            Mask::Full
        },
        qkv.resolve(d).unwrap(),
        vec![beta],
    );
    if variant.alibi {
        model.alibi = Some(2.0);
    }
    model
}

fn options(profile: &AdapterProfile) -> GpuOptions {
    GpuOptions {
        target: Some(profile.target()),
        checked: Some(false),
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
                    let m = model(d, variant, attention, QkvSpec::Identity, 1.0);
                    let spec = Specialisation::new(&ctx, &m, d, &options(profile));
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
        // SA and USA, identity and random weights, sphere and beta alternate over the cases.
        let attention = if k % 2 == 0 {
            Attention::Sa
        } else {
            Attention::Usa
        };
        let qkv = if k % 4 < 2 {
            QkvSpec::Random(7 + k as u64)
        } else {
            QkvSpec::Identity
        };
        let beta = [1.0, 4.0, 0.5][k % 3];
        let m = model(d, spec.variant, attention, qkv.clone(), beta);
        let shape = Shape::new(1, tokens(spec), d).unwrap();
        let case = Case {
            shape,
            attention,
            geometry: Geometry::Sphere,
            mask: m.mask,
            qkv,
            betas: vec![beta],
            seed: k as u64,
        };
        let x0 = case.initial();
        let h = case.step_size().min(0.05);
        let profile = AdapterProfile::named(who[0].split(' ').next().unwrap()).unwrap();
        let t0 = std::time::Instant::now();
        let mut gpu = GpuBackend::with_options(ctx.clone(), &m, shape, &x0, options(profile))
            .unwrap_or_else(|e| panic!("{who:?}: {e}"));
        let setup = t0.elapsed().as_secs_f64();
        assert_eq!(gpu.specialisation(), *spec, "{who:?}");
        // The pair statistics at the initial state, then the dynamics.
        let stats = gpu.pair_stats().unwrap();
        let want_stats = attnflow::reference::pair_stats(&m.betas, shape, &x0);
        let (g, w) = (summarise(&stats, beta), summarise(&want_stats, beta));
        let label = format!("{} ({} and {} more)", who[0], case.label(), who.len() - 1);
        assert!(
            (g.energy - w.energy).abs() <= 1e-5 * w.energy.abs().max(1e-3)
                && (g.mean_cos - w.mean_cos).abs() <= 1e-5
                && (g.min_cos - w.min_cos).abs() <= 1e-5,
            "pair statistics, {label}: got {g:?}, want {w:?}"
        );
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
            "{k:3} {:<70} {} max|err|={err:.2e} (compile {setup:.1} s, reference {reference:.1} s, gpu {run:.1} s)",
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
