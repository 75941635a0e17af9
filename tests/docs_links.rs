//! Every relative link of README.md and docs/ resolves: the file exists, and a `#anchor`
//! names a heading of the page it points to (GitHub's slugs). External links (http, mailto)
//! are not fetched. Code blocks and inline code are not links.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Pages being written on other branches at the same time as the links to them (issue 21):
/// a link to one of these (or under a folder ending in `/`) may dangle until the merge. The
/// lead removes the entries after merging; an entry whose page exists fails the test, so
/// the list cannot outlive its reason.
const PENDING: &[&str] = &[];

/// GitHub's anchor of a heading: lower case, spaces to '-', punctuation other than '-' and
/// '_' dropped; a repeated slug gets "-1", "-2", ...
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The page's text outside fenced code blocks, with inline code blanked.
fn prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Blank `code` spans (links inside them are literal text).
        let mut kept = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                kept += part;
            } else {
                kept += &" ".repeat(part.len() + 2);
            }
        }
        out.push(kept);
    }
    out
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            let base = slug(h.trim_start_matches('#'));
            let mut s = base.clone();
            let mut k = 0;
            while seen.contains(&s) {
                k += 1;
                s = format!("{base}-{k}");
            }
            seen.insert(s);
        }
    }
    seen
}

/// The targets of `[text](target)` and `![alt](target)` links, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text).iter().enumerate() {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            // A title after the target: [a](b "title").
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((n + 1, target.to_string()));
            rest = &after[end..];
        }
    }
    out
}

fn pages(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bad = Vec::new();
    let mut checked = 0;
    let mut pending_used = BTreeSet::new();
    for page in pages(root) {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(root).unwrap().display().to_string();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            checked += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            // The target relative to the root, normalised ("docs/../README.md" -> "README.md").
            let mut parts: Vec<String> = Vec::new();
            for c in path.strip_prefix(root).unwrap_or(&path).components() {
                match c {
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    std::path::Component::CurDir => {}
                    c => parts.push(c.as_os_str().to_string_lossy().into_owned()),
                }
            }
            let rel = parts.join("/");
            if !path.exists() {
                if let Some(p) = PENDING
                    .iter()
                    .find(|p| rel == **p || (p.ends_with('/') && rel.starts_with(**p)))
                {
                    pending_used.insert(*p);
                    continue;
                }
                bad.push(format!("{name}:{line}: {target}: no file {rel}"));
                continue;
            }
            if let Some(anchor) = anchor
                && path.extension().is_some_and(|e| e == "md")
                && !anchors(&std::fs::read_to_string(&path).unwrap()).contains(anchor)
            {
                bad.push(format!(
                    "{name}:{line}: {target}: no heading #{anchor} in {rel}"
                ));
            }
        }
    }
    for p in PENDING {
        let exists = root.join(p).exists();
        if exists {
            bad.push(format!(
                "{p} exists now: remove it from PENDING in tests/docs_links.rs"
            ));
        }
    }
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
    assert!(checked >= 50, "only {checked} relative links found");
}

#[test]
fn the_link_checker_sees_files_anchors_and_skips_code() {
    let text = "# A title\n## `run`: the command\n## A title\n\
                [x](a.md#b) `[no](c.md)` ![img](p.png \"t\")\n```\n[no](d.md)\n```\n";
    assert_eq!(
        links(text),
        [(4, "a.md#b".to_string()), (4, "p.png".to_string())]
    );
    let a = anchors(text);
    assert!(a.contains("a-title") && a.contains("run-the-command") && a.contains("a-title-1"));
    assert_eq!(
        slug("Research variants (model.md §3)"),
        "research-variants-modelmd-3"
    );
}
