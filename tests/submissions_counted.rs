//! Every submission to the GPU goes through the counted path (`GpuContext::submit`), which
//! tests/gpu_counts.rs and the budgets rely on: a submission made straight on the queue would
//! be invisible to them. Checked in the sources: no `queue.submit` outside the counted method.
//! (At run time wgpu's own submission index cannot be compared with the counter: wgpu-core
//! also advances it for its internal flushes of queued writes, without a submission of ours.)

use std::path::Path;

/// Submissions straight on the queue that are allowed, each with its reason.
const ALLOWED: &[(&str, &str)] = &[
    // The counted path itself.
    (
        "src/backend/gpu/context.rs",
        "the counted `GpuContext::submit`",
    ),
    // The capture's read-backs of every bound buffer (tests of Dawn/Tint only): not the
    // backend's work, and a capturing context is never the one whose counts are asserted.
    ("src/backend/gpu/capture.rs", "the capture's read-backs"),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_submission_bypasses_the_counter() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "cli/src", "experiments/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut bypasses = Vec::new();
    let mut allowed_used = vec![false; ALLOWED.len()];
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            // `queue.submit(`, `queue().submit(`, `.queue\n.submit(` would all name the queue.
            let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.contains("queue.submit(") || compact.contains("queue().submit(") {
                match ALLOWED.iter().position(|(file, _)| *file == rel) {
                    Some(a) => allowed_used[a] = true,
                    None => bypasses.push(format!("{rel}:{}: {}", i + 1, line.trim())),
                }
            }
        }
    }
    assert!(
        bypasses.is_empty(),
        "submissions straight on the queue, not counted (use GpuContext::submit):\n{}",
        bypasses.join("\n")
    );
    for ((file, why), used) in ALLOWED.iter().zip(allowed_used) {
        assert!(
            used,
            "allowed entry {file} ({why}) submits nothing any more: remove it"
        );
    }
}
