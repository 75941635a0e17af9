//! Every kernel specialisation a GPU can get is executed here on two independent WGSL
//! implementations against the f64 reference (docs/model.md §1-2, issue 20 §1): natively on
//! this adapter (llvmpipe in CI) and under Dawn/Tint (Chrome's WebGPU, which translates WGSL to
//! HLSL, MSL or SPIR-V as consumer machines do) in headless Chromium on SwiftShader.
//!
//! The planner is asked which specialisation each adapter profile gets for every d of
//! `profiles::DIMENSIONS`, full and causal masks (and causal with ALiBi: the same kernel as
//! causal except on the hardware profiles' N-body shapes, `Variant::for_kernel`; a kernel with
//! ALiBi's code runs here with ALiBi on), SA and USA; it must agree with `catalogue::specialisations()`. Each distinct one:
//!
//! 1. runs natively: the pair statistics, then two RK4 steps, against the reference; the
//!    first step with capture on (src/backend/gpu/capture.rs): every dispatch in order, its
//!    kernel's WGSL (the very text the backend compiled), its bindings, and every buffer's
//!    contents before it;
//! 2. under Dawn/Tint: tests/browser/replay.py compiles every distinct kernel text of the
//!    catalogue once, on one device, while the native side runs (the two compilers use the
//!    two cores), then replays each capture (tests/browser/host.html); the state after the
//!    replay must match the f64 reference of that step.
//!
//! The test fails if any kernel text a profile can get was not executed natively, if any
//! kernel does not compile under Tint, or if any specialisation was neither replayed under
//! Tint nor excluded with its reason: a subgroup reduction over more lanes than the browser's
//! smallest subgroup (SwiftShader's hold 4), or a specialisation that only the llvmpipe
//! profile gets at a d the live page does not offer. Those reach a user only through wgpu
//! (naga's SPIR-V) on a software Vulkan adapter, which is the native half here; a browser gets
//! the llvmpipe profile only on the live page (a fallback adapter, d = 2 and 3:
//! `live::LIVE_DIMENSIONS`), and those stay in. They are the largest texts of the catalogue
//! (4.7 of its 10.8 MB of distinct kernel text on 2026-12-06: many queries per invocation,
//! unrolled), and SwiftShader's compile time grows with the text. The browser comes from scripts/setup-browser
//! (Debian's chromium and Playwright for Python); a missing browser fails this test, it
//! never skips.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Instant;

use attnflow::gpu::catalogue::{self, VARIANTS, variant_name};
use attnflow::gpu::codegen::{AttentionKernel, Reduce, Variant};
use attnflow::gpu::kernels::Dialect;
use attnflow::gpu::profiles::{AdapterProfile, DIMENSIONS, PROFILES, Profile};
use attnflow::gpu::{GpuBackend, GpuContext, GpuOptions, Specialisation};
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::observables::summarise;
use attnflow::model::weights::QkvSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};
use attnflow::reference::ReferenceBackend;
use common::*;

/// As tests/gpu_matches_reference.rs: |error| <= TOL + TOL |want| after the RK4 steps, on
/// llvmpipe and under Dawn/Tint alike.
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

/// Whether a specialisation is compiled and replayed under Dawn/Tint: every one a hardware
/// profile gets, and the llvmpipe profile's at the d the live page offers (a browser's fallback
/// adapter); see the module's comment. `who`: the planner questions that gave it.
fn under_tint(spec: &Specialisation, who: &[String]) -> bool {
    let software = |w: &String| {
        let name = w.split(' ').next().unwrap();
        AdapterProfile::named(name).unwrap().kind == Profile::Software
    };
    !who.iter().all(software) || attnflow::live::LIVE_DIMENSIONS.contains(&spec.d)
}

/// Lanes that the subgroup reduction of a specialisation assumes one subgroup holds (0: none).
fn subgroup_lanes(spec: &Specialisation) -> u32 {
    match spec.attention {
        AttentionKernel::Block(b) if b.reduce == Reduce::Subgroup => b.sc * b.ds,
        _ => 0,
    }
}

fn run_rk4(backend: &mut dyn Backend, model: &Model, h: f64, steps: usize) -> Vec<f64> {
    attnflow::run::integrate_steps(backend, model, Integrator::Rk4, h, steps).unwrap();
    backend.read_state().unwrap().to_f64()
}

/// The Python of scripts/setup-browser (which installs what is missing).
fn browser_python(root: &Path) -> PathBuf {
    let out = Command::new(root.join("scripts/setup-browser"))
        .output()
        .expect("running scripts/setup-browser");
    assert!(
        out.status.success(),
        "scripts/setup-browser failed (the Dawn/Tint half of this test needs Debian's chromium \
         and Playwright for Python):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn floats(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .collect()
}

/// The browser process, killed if the test fails before it is waited for.
struct Browser(Option<Child>);

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A capture handed to the browser, with what its replay must match.
struct Replay {
    label: String,
    shape: Shape,
    /// The f64 reference after the captured step.
    want: Vec<f64>,
    state: usize,
    lanes: u32,
}

/// The capturing context shared by the cases, as common::gpu() but with capture on (256-byte
/// offset alignment, so that a capture replays on any WebGPU implementation).
fn capture_context() -> Option<Arc<GpuContext>> {
    match GpuContext::for_capture() {
        Ok(ctx) => {
            eprintln!("GPU tests run on {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e) => {
            if std::env::var("ATTNFLOW_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("ATTNFLOW_REQUIRE_GPU=1 but no GPU adapter is available: {e}");
            }
            eprintln!(
                "SKIPPED: no GPU adapter (set ATTNFLOW_REQUIRE_GPU=1 to make this a failure)"
            );
            None
        }
    }
}

#[test]
fn every_specialisation_a_profile_can_get_matches_reference_on_this_adapter_and_dawn_tint() {
    let start = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // First, so that a missing browser fails the test whatever the adapter.
    let python = browser_python(root);
    let Some(ctx) = capture_context() else { return };
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
    // A subgroup reduction over more lanes than this adapter's smallest subgroup cannot run
    // here (llvmpipe's subgroups hold 8 lanes with 256-bit vectors, 4 with 128, as on a CPU
    // without AVX or under LP_NATIVE_VECTOR_WIDTH=128): said before anything runs, instead of
    // as a wrong number in the first such case. A GPU gets these kernels only when its own
    // subgroups hold that many lanes (the planner reads the adapter's).
    let lanes_here = ctx.subgroup_min().unwrap_or(0);
    let narrow: Vec<String> = order
        .iter()
        .filter(|s| subgroup_lanes(s) > lanes_here)
        .map(|s| format!("{} ({} lanes)", planned[s][0], subgroup_lanes(s)))
        .collect();
    assert!(
        narrow.is_empty(),
        "{}: its subgroups hold {lanes_here} lanes at least, and {} specialisations reduce \
         over more, so they cannot be executed on it: {}; this test needs an adapter whose \
         subgroups hold {} lanes (llvmpipe with 256-bit vectors, on a CPU with AVX)",
        ctx.describe(),
        narrow.len(),
        narrow.join(", "),
        order.iter().map(subgroup_lanes).max().unwrap_or(0),
    );

    // Every distinct kernel text of the catalogue, in the spec-conformant dialect, for the
    // browser to compile once each while the native side runs.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-tint");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(dir.join("runs")).unwrap();
    let mut kernels: Vec<serde_json::Value> = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for spec in order.iter().filter(|s| under_tint(s, &planned[s])) {
        for (name, layout, wgsl) in spec.wgsl(Dialect::Spec) {
            if seen.insert((wgsl.clone(), layout.clone())) {
                kernels.push(serde_json::json!({
                    "name": format!("{name} ({})", planned[spec][0]),
                    "layout": layout,
                    "wgsl": wgsl,
                }));
            }
        }
    }
    std::fs::write(
        dir.join("kernels.json"),
        serde_json::to_string(&kernels).unwrap(),
    )
    .unwrap();
    let mut browser = Browser(Some(
        Command::new(&python)
            .arg(root.join("tests/browser/replay.py"))
            .arg(&dir)
            .spawn()
            .expect("running tests/browser/replay.py"),
    ));

    let mut executed: BTreeSet<String> = BTreeSet::new();
    let mut replays: Vec<Replay> = Vec::new();
    let mut native_only: Vec<String> = Vec::new();
    let mut worst: f64 = 0.0;
    // The llvmpipe profile's specialisations first (the cases vary with k, their place in
    // `order`, as before): the other GPU tests of the test command run on llvmpipe while this
    // one runs (scripts/test), and get their kernels from Mesa's shader cache once compiled.
    let mut sequence: Vec<(usize, &Specialisation)> = order.iter().enumerate().collect();
    sequence.sort_by_key(|(_, s)| !planned[*s].iter().any(|w| w.starts_with("llvmpipe ")));
    for (k, spec) in sequence {
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
        let t0 = Instant::now();
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
        let t3 = Instant::now();
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
        let t1 = Instant::now();
        let want1 = run_rk4(
            &mut ReferenceBackend::new(&m, shape, &x0).unwrap(),
            &m,
            h,
            1,
        );
        let want = run_rk4(
            &mut ReferenceBackend::new(&m, shape, &x0).unwrap(),
            &m,
            h,
            STEPS,
        );
        let reference = t1.elapsed().as_secs_f64();
        // The first step captured for the browser, then the rest.
        let t2 = Instant::now();
        let tint = under_tint(spec, who);
        if tint {
            ctx.begin_capture();
        }
        let after1 = run_rk4(&mut gpu, &m, h, 1);
        let capture = tint.then(|| ctx.end_capture().unwrap_or_else(|e| panic!("{label}: {e}")));
        let got = run_rk4(&mut gpu, &m, h, STEPS - 1);
        let run = t2.elapsed().as_secs_f64();
        let err = assert_close(&got, &want, shape, TOL, TOL, &label);
        worst = worst.max(err);
        executed.extend(generated(&gpu.specialisation()));
        let describe = catalogue::describe_attention(&spec.attention);
        let Some(capture) = capture else {
            eprintln!(
                "{k:3} {:<70} {describe} max|err|={err:.2e} (setup {setup:.1} s, pair stats {stats_time:.1} s, reference {reference:.1} s, gpu {run:.1} s; llvmpipe only)",
                label.chars().take(70).collect::<String>(),
            );
            native_only.push(label);
            continue;
        };
        let state = capture.buffer("state").expect("the state buffer is bound");
        // The capture is what ran: its state after the step is the native result.
        assert_eq!(floats(&capture.buffers[state].after), after1, "{label}");
        let name = format!("{k:03}-{}", who[0].replace([' ', '='], "-"));
        let run_dir = dir.join("runs").join(&name);
        std::fs::create_dir_all(&run_dir).unwrap();
        capture.write(&run_dir).unwrap();
        let lanes = subgroup_lanes(spec);
        // Written last: the browser replays a run once its meta.json exists.
        std::fs::write(
            run_dir.join("meta.json"),
            serde_json::json!({ "subgroup_lanes": lanes }).to_string(),
        )
        .unwrap();
        replays.push(Replay {
            label: name,
            shape,
            want: want1,
            state,
            lanes,
        });
        eprintln!(
            "{k:3} {:<70} {describe} max|err|={err:.2e} (setup {setup:.1} s, pair stats {stats_time:.1} s, reference {reference:.1} s, gpu {run:.1} s)",
            label.chars().take(70).collect::<String>(),
        );
    }
    // Every generated kernel text any profile can get was compiled and run above.
    let wanted: BTreeSet<String> = order.iter().flat_map(generated).collect();
    let missing = wanted.difference(&executed).count();
    assert_eq!(missing, 0, "{missing} kernel texts were never executed");
    let native = start.elapsed().as_secs_f64();
    eprintln!(
        "llvmpipe: {} distinct specialisations ({} kernel texts) executed in {native:.1} s; \
         largest error {worst:.3e}",
        order.len(),
        executed.len(),
    );

    // The browser: every run is written; it finishes the replays and its results.
    std::fs::write(dir.join("runs").join("DONE"), "").unwrap();
    let status = browser.0.take().unwrap().wait().unwrap();
    assert!(status.success(), "tests/browser/replay.py failed: {status}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let adapter = &results["adapter"];
    eprintln!(
        "Chromium {} adapter {} {} (subgroups {}..{}, {} B workgroup memory, {} invocations)",
        results["chromium"],
        adapter["vendor"],
        adapter["architecture"],
        adapter["subgroupMinSize"],
        adapter["subgroupMaxSize"],
        adapter["maxComputeWorkgroupStorageSize"],
        adapter["maxComputeInvocationsPerWorkgroup"]
    );

    // 1. Every kernel compiles under Tint.
    let compiled = results["compile"].as_array().unwrap();
    assert_eq!(compiled.len(), kernels.len());
    let failures: Vec<String> = kernels
        .iter()
        .zip(compiled)
        .filter(|(_, r)| r["ok"] != true)
        .map(|(k, r)| format!("{}: {}", k["name"], r["messages"]))
        .collect();
    assert!(
        failures.is_empty(),
        "Dawn/Tint refused {} of {} kernels:\n{}",
        failures.len(),
        kernels.len(),
        failures.join("\n")
    );

    // 2. Every specialisation is replayed and matches the reference, or is excluded with its
    // reason: a subgroup reduction is executed where the browser's smallest subgroup holds
    // the lanes it assumes (SwiftShader's hold 4), compiled above in any case.
    let min = adapter["subgroupMinSize"].as_u64().unwrap_or(0) as u32;
    let bytes = adapter["maxComputeWorkgroupStorageSize"]
        .as_u64()
        .unwrap_or(0);
    let invocations = adapter["maxComputeInvocationsPerWorkgroup"]
        .as_u64()
        .unwrap_or(0);
    // Every catalogue shape fits the portable limits (src/backend/gpu/catalogue.rs tests);
    // an adapter below them would leave specialisations unexecuted unnoticed.
    assert!(
        bytes >= 32768 && invocations >= 256,
        "the browser's adapter offers {bytes} B of workgroup memory and {invocations} \
         invocations, below the portable limits every specialisation is shaped for"
    );
    let (mut replayed, mut replay_worst, mut compile_only) = (0, 0.0f64, Vec::new());
    for run in &replays {
        let r = &results["runs"][&run.label];
        if run.lanes > min {
            assert!(
                r.is_null(),
                "{}: replayed though the adapter cannot",
                run.label
            );
            compile_only.push(format!(
                "{} (a subgroup reduction over {} lanes; the adapter's subgroups hold {min})",
                run.label, run.lanes
            ));
            continue;
        }
        assert!(
            r["ok"] == true,
            "{}: the browser replay failed: {}",
            run.label,
            r["error"]
        );
        let bytes = std::fs::read(
            dir.join("runs")
                .join(&run.label)
                .join(format!("browser_b{}.bin", run.state)),
        )
        .unwrap();
        let err = assert_close(
            &floats(&bytes),
            &run.want,
            run.shape,
            TOL,
            TOL,
            &format!("Dawn/Tint {}", run.label),
        );
        replay_worst = replay_worst.max(err);
        replayed += 1;
    }
    assert_eq!(
        replayed + compile_only.len() + native_only.len(),
        order.len()
    );
    eprintln!(
        "Dawn/Tint: {} kernel texts compiled ({:.1} s), {replayed} of {} specialisations \
         executed ({:.1} s), largest error against the f64 reference {replay_worst:.2e}; \
         total {:.1} s",
        kernels.len(),
        results["compile_seconds"].as_f64().unwrap_or(0.0),
        order.len(),
        results["replay_seconds"].as_f64().unwrap_or(0.0),
        start.elapsed().as_secs_f64()
    );
    eprintln!(
        "llvmpipe only, not compiled under Tint (the llvmpipe profile beyond the live page's d, \
         {}):\n  {}",
        native_only.len(),
        native_only.join("\n  ")
    );
    if !compile_only.is_empty() {
        eprintln!(
            "compiled under Tint, not executed ({}):\n  {}",
            compile_only.len(),
            compile_only.join("\n  ")
        );
    }
    assert!(replayed > 0);
}
