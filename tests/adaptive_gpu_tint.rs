//! The adaptive-stepping kernels (shaders/adaptive_combine.wgsl, adaptive_reduce.wgsl) under
//! Dawn/Tint in headless Chromium, against the f64 reference. Their text depends on neither d
//! nor the adapter profile (d is a runtime size), so the one text of each is what every GPU
//! gets: it is not part of the catalogue's specialisations (tests/gpu_specialisations.rs) but
//! compiled and executed here, as that test does for the catalogue: a capture
//! (src/backend/gpu/capture.rs) of one combination of a pair's seven stages (two dispatches,
//! renormalised) and one error sum (two dispatches and the reduction) on this adapter,
//! replayed by tests/browser/replay.py. The browser comes from scripts/setup-browser; a
//! missing browser fails this test, it never skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use attnflow::gpu::{GpuBackend, GpuContext};
use attnflow::integrate::{Backend, Slot};
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};
use attnflow::reference::ReferenceBackend;
use common::*;

fn browser_python(root: &Path) -> PathBuf {
    let out = Command::new(root.join("scripts/setup-browser"))
        .output()
        .expect("running scripts/setup-browser");
    assert!(
        out.status.success(),
        "scripts/setup-browser failed (this test needs Debian's chromium and Playwright for \
         Python):\n{}",
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

/// The stages k0..k6 of both backends, from the same combinations.
fn fill_stages(be: &mut dyn Backend) {
    be.prepare_adaptive(7).unwrap();
    be.field(Slot::State, 0).unwrap();
    for s in 1..7 {
        let stages: Vec<usize> = (0..s).collect();
        let coeffs: Vec<f64> = (0..2)
            .flat_map(|b| (0..s).map(move |j| 0.03 * (j as f64 + 1.0) * (b as f64 + 1.0)))
            .collect();
        be.combine_systems(&stages, &coeffs, false).unwrap();
        be.field(Slot::Stage, s).unwrap();
    }
}

#[test]
fn adaptive_kernels_match_reference_under_dawn_tint() {
    let start = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = browser_python(root);
    let ctx = match GpuContext::for_capture() {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            if std::env::var("ATTNFLOW_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("ATTNFLOW_REQUIRE_GPU=1 but no GPU adapter is available: {e}");
            }
            eprintln!("SKIPPED: no GPU adapter");
            return;
        }
    };
    // Two systems of 150 tokens: three workgroups of 64 per system, the last partial.
    let shape = Shape::new(2, 150, 5).unwrap();
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(5),
        vec![1.0, 4.0],
    );
    let x0 = InitSpec::Uniform
        .generate(shape, Geometry::Sphere, 5)
        .unwrap();
    let all: Vec<usize> = (0..7).collect();
    let c: Vec<f64> = (0..14)
        .map(|k| 0.01 * ((k * 7) % 5) as f64 - 0.015)
        .collect();
    let e_stages = [0usize, 2, 3, 4, 5, 6];
    let e: Vec<f64> = (0..12).map(|k| 1e-3 * (k as f64 - 5.5)).collect();
    let (atol, rtol) = (1e-6, 1e-4);

    let mut r = ReferenceBackend::new(&model, shape, &x0).unwrap();
    fill_stages(&mut r);
    r.combine_systems(&all, &c, true).unwrap();
    let want_stage = r.interpolate(&all, &c, true).unwrap();
    let mut want_sums = vec![0.0; 2];
    r.scaled_sums(&e_stages, &e, false, atol, rtol, &mut want_sums)
        .unwrap();

    let mut g = GpuBackend::new(ctx.clone(), &model, shape, &x0).unwrap();
    fill_stages(&mut g);
    g.sync().unwrap();
    ctx.begin_capture();
    g.combine_systems(&all, &c, true).unwrap();
    let mut native_sums = vec![0.0; 2];
    g.scaled_sums(&e_stages, &e, false, atol, rtol, &mut native_sums)
        .unwrap();
    let capture = ctx.end_capture().unwrap();
    let names: Vec<&str> = capture.kernels.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["adaptive_combine", "adaptive_reduce"]);
    assert_eq!(capture.dispatches.len(), 5);
    let stage = capture.buffer("stage").unwrap();
    let work = capture.buffer("adaptive_work").unwrap();
    let sums_at = shape.len() + 2 * shape.n.div_ceil(64);
    let native_stage = floats(&capture.buffers[stage].after);
    assert_close(
        &native_stage,
        &want_stage,
        shape,
        2e-6,
        2e-6,
        "llvmpipe stage",
    );
    assert_eq!(
        floats(&capture.buffers[work].after)[sums_at..],
        native_sums[..]
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-tint-adaptive");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let run_dir = dir.join("runs").join("adaptive");
    std::fs::create_dir_all(&run_dir).unwrap();
    let kernels: Vec<serde_json::Value> = capture
        .kernels
        .iter()
        .map(|k| serde_json::json!({ "name": k.name, "layout": k.layout, "wgsl": k.wgsl }))
        .collect();
    std::fs::write(
        dir.join("kernels.json"),
        serde_json::to_string(&kernels).unwrap(),
    )
    .unwrap();
    capture.write(&run_dir).unwrap();
    std::fs::write(run_dir.join("meta.json"), r#"{"subgroup_lanes": 0}"#).unwrap();
    std::fs::write(dir.join("runs").join("DONE"), "").unwrap();
    let status = Command::new(&python)
        .arg(root.join("tests/browser/replay.py"))
        .arg(&dir)
        .status()
        .expect("running tests/browser/replay.py");
    assert!(status.success(), "tests/browser/replay.py failed: {status}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    for (k, r) in kernels.iter().zip(results["compile"].as_array().unwrap()) {
        assert!(
            r["ok"] == true,
            "Dawn/Tint refused {}: {}",
            k["name"],
            r["messages"]
        );
    }
    let run = &results["runs"]["adaptive"];
    assert!(
        run["ok"] == true,
        "the browser replay failed: {}",
        run["error"]
    );
    let read =
        |i: usize| floats(&std::fs::read(run_dir.join(format!("browser_b{i}.bin"))).unwrap());
    let err = assert_close(
        &read(stage),
        &want_stage,
        shape,
        2e-6,
        2e-6,
        "Dawn/Tint stage",
    );
    let got_sums = &read(work)[sums_at..];
    for b in 0..2 {
        let (got, want) = (got_sums[b], want_sums[b]);
        assert!(
            want > 1.0 && (got - want).abs() <= 1e-5 * want,
            "Dawn/Tint error sum of system {b}: {got:e}, reference {want:e}"
        );
    }
    eprintln!(
        "Chromium {}: adaptive_combine and adaptive_reduce compiled ({:.1} s) and replayed: \
         stage error {err:.2e}, error sums {got_sums:?} (reference {want_sums:?}); total {:.1} s",
        results["chromium"],
        results["compile_seconds"].as_f64().unwrap_or(0.0),
        start.elapsed().as_secs_f64()
    );
}
