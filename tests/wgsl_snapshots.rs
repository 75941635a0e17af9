//! The WGSL of every kernel specialisation a GPU can get, as `attnflow kernels --emit` writes
//! it (spec dialect, `catalogue::emit_all`), compared with the committed files in
//! tests/snapshots/wgsl/: a change to codegen shows up as a reviewable diff of the kernels it
//! changes, and a refactor that should change nothing is proved to by this test.
//!
//! Identical texts are stored once, under the name of the first file that has them;
//! `index.txt` maps every emitted file name to its snapshot, so a change of which profile gets
//! which kernel shows up too.
//!
//! Bless mode, after a deliberate change of the generated code (review the diff, then commit
//! it in its own commit that says why):
//!
//! ```text
//! ATTNFLOW_BLESS=1 cargo test --release --test wgsl_snapshots
//! git diff --stat tests/snapshots/wgsl
//! ```
//!
//! It rewrites every snapshot and the index and removes snapshots no kernel has any more.
#![cfg(feature = "gpu")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use attnflow::gpu::catalogue;
use attnflow::gpu::kernels::Dialect;

const INDEX: &str = "index.txt";

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/wgsl")
}

/// Where the current text of a mismatching kernel is written for `diff`.
fn actual_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wgsl-snapshots/actual")
}

/// The distinct texts (snapshot name -> text) and the index (emitted file -> snapshot name).
fn expected() -> (BTreeMap<String, String>, String) {
    let mut by_text: BTreeMap<String, String> = BTreeMap::new();
    let mut snapshots = BTreeMap::new();
    let mut index = String::new();
    for e in catalogue::emit_all(Dialect::Spec) {
        let name = by_text
            .entry(e.text.clone())
            .or_insert_with(|| e.file.clone())
            .clone();
        snapshots.entry(name.clone()).or_insert(e.text);
        index.push_str(&format!("{} {name}\n", e.file));
    }
    (snapshots, index)
}

/// The first line where two texts differ, 1-based, with both lines.
fn first_difference(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for n in 1.. {
        match (w.next(), g.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => return "only line endings differ".into(),
            (a, b) => {
                return format!(
                    "line {n}: committed {:?}, emitted {:?}",
                    a.unwrap_or("<end>"),
                    b.unwrap_or("<end>")
                );
            }
        }
    }
    unreachable!()
}

#[test]
fn emitted_wgsl_matches_the_committed_snapshots() {
    let dir = snapshot_dir();
    let (snapshots, index) = expected();
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();

    if std::env::var("ATTNFLOW_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &snapshots {
            if std::fs::read_to_string(dir.join(name)).ok().as_ref() != Some(text) {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
        std::fs::write(dir.join(INDEX), &index).unwrap();
        for stale in committed
            .iter()
            .filter(|f| f.as_str() != INDEX && !snapshots.contains_key(f.as_str()))
        {
            std::fs::remove_file(dir.join(stale)).unwrap();
        }
        eprintln!(
            "blessed {} snapshots of {} emitted kernels in {}",
            snapshots.len(),
            index.lines().count(),
            dir.display()
        );
        return;
    }

    let mut problems = Vec::new();
    let actual = actual_dir();
    let _ = std::fs::remove_dir_all(&actual);
    for (name, text) in &snapshots {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(want) if &want == text => {}
            Ok(want) => {
                std::fs::create_dir_all(&actual).unwrap();
                std::fs::write(actual.join(name), text).unwrap();
                problems.push(format!(
                    "{name} differs ({}):\n    diff -u {} {}",
                    first_difference(&want, text),
                    path.display(),
                    actual.join(name).display()
                ));
            }
            Err(_) => {
                std::fs::create_dir_all(&actual).unwrap();
                std::fs::write(actual.join(name), text).unwrap();
                problems.push(format!(
                    "{name} is emitted but has no snapshot (new text in {})",
                    actual.join(name).display()
                ));
            }
        }
    }
    for stale in committed
        .iter()
        .filter(|f| f.as_str() != INDEX && !snapshots.contains_key(f.as_str()))
    {
        problems.push(format!(
            "{stale} is committed but no kernel emits it any more"
        ));
    }
    match std::fs::read_to_string(dir.join(INDEX)) {
        Ok(want) if want == index => {}
        Ok(want) => {
            std::fs::create_dir_all(&actual).unwrap();
            std::fs::write(actual.join(INDEX), &index).unwrap();
            problems.push(format!(
                "{INDEX} (which profile gets which text) differs ({}):\n    diff -u {} {}",
                first_difference(&want, &index),
                dir.join(INDEX).display(),
                actual.join(INDEX).display()
            ));
        }
        Err(e) => problems.push(format!("{}: {e}", dir.join(INDEX).display())),
    }
    let shown = problems.len().min(20);
    assert!(
        problems.is_empty(),
        "{} of {} WGSL snapshots do not match what codegen emits:\n{}{}\n\
         If the change is deliberate, review it and bless: \
         ATTNFLOW_BLESS=1 cargo test --release --test wgsl_snapshots",
        problems.len(),
        snapshots.len(),
        problems[..shown].join("\n"),
        if shown < problems.len() {
            format!("\n... and {} more", problems.len() - shown)
        } else {
            String::new()
        }
    );
}
