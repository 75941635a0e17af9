//! The Python extension (python/, built by maturin as a package of its own) resolves every
//! crate it shares with the test command's build to the same features, so that its build reuses
//! that build's compiled dependencies. A difference in one feature of one crate (naga's MSL
//! writer, which the core library's dev-dependencies enable, or a syn feature that pyo3's macros
//! enable) changes the hash of that crate and of everything above it: the Python stage of the
//! test command then compiled naga, wgpu, the core library and the experiments a second time
//! (4 min 32 s for the stage on the 2-core CI machine on 2026-12-06, most of it compiling).
//! python/Cargo.toml lists the features the other members add; this test fails when they drift.

use std::collections::BTreeMap;
use std::process::Command;

/// `cargo tree` of `packages` (with the edge kinds `edges`): each crate with its features.
fn features(packages: &[&str], edges: &str) -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "--prefix", "none"])
        .args(["--format", "{p}|{f}", "-e", edges])
        .args(packages)
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {packages:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // "name vX.Y.Z (path) (*)" -> "name vX.Y.Z"
        let package = package.split(" (").next().unwrap().to_string();
        let features = features.split(" (").next().unwrap().to_string();
        let seen = map.entry(package).or_default();
        if !seen.contains(&features) {
            seen.push(features);
        }
    }
    map
}

#[test]
fn the_python_extension_resolves_shared_crates_to_the_workspace_features() {
    // What `cargo test --workspace` builds (dev-dependencies included) and what maturin's
    // `cargo rustc -p attnflow-python` builds.
    let workspace = features(&["--workspace"], "normal,build,dev");
    let python = features(&["-p", "attnflow-python"], "normal,build");
    assert!(python.keys().any(|p| p.starts_with("pyo3 ")));
    assert!(python.keys().any(|p| p.starts_with("wgpu ")));
    let drift: Vec<String> = python
        .iter()
        .filter(|(package, _)| !package.starts_with("attnflow"))
        .filter_map(|(package, got)| {
            let want = workspace.get(package)?;
            (got != want).then(|| format!("{package}: python {got:?}, workspace {want:?}"))
        })
        .collect();
    assert!(
        drift.is_empty(),
        "the Python extension resolves {} shared crates to other features than the workspace \
         (add what the workspace enables to python/Cargo.toml's list):\n{}",
        drift.len(),
        drift.join("\n")
    );
}
