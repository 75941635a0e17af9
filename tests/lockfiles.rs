//! The Python extension (python/, a workspace of its own with its own lock file) builds
//! against the same versions of every crate it shares with the root workspace. A drift makes
//! the test command compile wgpu, naga and their dependents a second time (measured: the
//! python stage recompiled wgpu-core, wgpu-hal, naga and wgpu for 30.0.2 beside the root's
//! 30.0.1, minutes on the 2-core CI machine), and lets the extension run other code than the
//! CLI it is tested beside.

use std::collections::{BTreeMap, BTreeSet};

fn versions(path: &str) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lock: toml::Table = text.parse().unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in lock["package"].as_array().expect("[[package]]") {
        out.entry(p["name"].as_str().unwrap().to_string())
            .or_default()
            .insert(p["version"].as_str().unwrap().to_string());
    }
    out
}

/// The part of a version that cargo unifies within: the major, or 0.minor below 1.0.
fn compat(v: &str) -> String {
    let mut parts = v.split(['.', '+', '-']);
    let major = parts.next().unwrap_or("");
    if major == "0" {
        format!("0.{}", parts.next().unwrap_or(""))
    } else {
        major.to_string()
    }
}

#[test]
fn the_python_lock_file_pins_the_root_versions_of_every_shared_crate() {
    let root = versions(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
    let python = versions(concat!(env!("CARGO_MANIFEST_DIR"), "/python/Cargo.lock"));
    let drift: Vec<String> = python
        .iter()
        .filter_map(|(name, vs)| {
            let want = root.get(name)?;
            // A version the root lacks though it has a semver-compatible one (pyo3 may bring
            // rustc-hash 2 beside wgpu's 1: both are built in either workspace).
            let odd: Vec<&String> = vs
                .iter()
                .filter(|v| !want.contains(*v) && want.iter().any(|w| compat(w) == compat(v)))
                .collect();
            (!odd.is_empty()).then(|| format!("{name}: python {odd:?}, root {want:?}"))
        })
        .collect();
    assert!(
        drift.is_empty(),
        "python/Cargo.lock differs from Cargo.lock in {} shared crates (copy the root's lock \
         into python/ and run `cargo tree --manifest-path python/Cargo.toml`):\n{}",
        drift.len(),
        drift.join("\n")
    );
    assert!(python.contains_key("wgpu") && python.contains_key("pyo3"));
}
