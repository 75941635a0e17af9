//! The library's modules form no import cycle (issue 21): a newcomer can read them bottom-up.
//!
//! The graph is built from the sources, not from rustc: the module tree from the `mod`
//! declarations starting at src/lib.rs (and, apart, cli/src/main.rs and experiments/src/lib.rs), and one edge per path that
//! a file names into its own crate (`use crate::..`, `super::..`, `self::..`, a child module's
//! name, and `crate::..` paths inside code), resolved through `use` re-exports to the module
//! that holds the item. Inline modules (`mod tests { .. }`) belong to their file. A module's
//! use of its own descendants is not an edge: declaring and re-exporting one's children is
//! the facade pattern, while a child's use of its ancestor is (a cycle through an ancestor
//! still fails). On failure the test prints every strongly connected component with one
//! cycle through it, each edge with the file and line that makes it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// Cycles tolerated for now, each with the reason and who removes the entry. A component is
/// allowed when its modules are a subset of one entry; an entry that matches no component
/// fails the test, so a fixed cycle cannot come back unnoticed.
const ALLOWED: &[(&str, &[&str])] = &[];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Rust tokens without comments, string, char and number literals, lifetimes or `$crate`:
/// only what paths are made of. Each token with its 1-based line.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += (c[i] == '\n') as usize;
                    i += 1;
                }
            }
        } else if ch == '"'
            || ((ch == 'r' || ch == 'b' || ch == 'c')
                && (at(i + 1) == '"'
                    || (at(i + 1) == '#' && (at(i + 2) == '"' || at(i + 2) == '#'))
                    || (ch != 'r' && at(i + 1) == 'r' && matches!(at(i + 2), '"' | '#'))))
        {
            // A string: plain ("..", b"..", c"..") with escapes, or raw (r#".."#).
            let mut j = i;
            while c[j] != '"' && c[j] != '#' {
                j += 1;
            }
            let raw = c[i..j].contains(&'r');
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= c.len() {
                    break;
                }
                if !raw && c[j] == '\\' {
                    line += (at(j + 1) == '\n') as usize;
                    j += 2;
                    continue;
                }
                if c[j] == '"' && (0..hashes).all(|h| at(j + 1 + h) == '#') {
                    j += 1 + hashes;
                    break;
                }
                line += (c[j] == '\n') as usize;
                j += 1;
            }
            i = j;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: '\n', '\'', '\u{..}'.
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(i + 2) == '\'' {
                i += 3; // 'x'
            } else {
                i += 1; // a lifetime or label: its name follows and is skipped
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
        } else if ch == '$' {
            i += 1; // $crate and macro variables name no module of this crate
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
        } else if ident_char(ch) {
            let start = if ch == 'r' && at(i + 1) == '#' {
                i + 2
            } else {
                i
            };
            let mut j = start;
            while j < c.len() && ident_char(c[j]) {
                j += 1;
            }
            out.push((Tok::Ident(c[start..j].iter().collect()), line));
            i = j;
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// A path as written, in the module (file path + inline modules) where it was written.
struct RawPath {
    module: Vec<String>,
    segments: Vec<String>,
    /// For a `use`: the name it brings into scope (None for a glob or a path in code).
    binds: Option<String>,
    line: usize,
}

struct Parsed {
    /// Child modules declared with `mod name;` (relative to the file's module + inline path).
    file_mods: Vec<Vec<String>>,
    /// Inline modules `mod name { .. }` (relative paths).
    inline_mods: Vec<Vec<String>>,
    paths: Vec<RawPath>,
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// Parses a use tree starting at `toks[*i]`, pushing every leaf (full segments, bound name).
fn use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut segs = prefix;
    loop {
        match toks.get(*i).map(|t| &t.0) {
            Some(Tok::Path) => *i += 1,
            Some(Tok::Punct('{')) => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|t| &t.0) {
                        Some(Tok::Punct('}')) | None => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *i += 1,
                        _ => use_tree(toks, i, segs.clone(), out),
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push((segs, None));
                return;
            }
            Some(Tok::Ident(s)) if s == "as" => {
                *i += 1;
                let alias = ident(toks.get(*i)).map(String::from);
                *i += 1;
                out.push((segs, alias.filter(|a| a != "_")));
                return;
            }
            Some(Tok::Ident(s)) => {
                segs.push(s.clone());
                *i += 1;
            }
            _ => {
                // `,`, `}` or `;` ends this leaf. `use a::{self}` binds `a`.
                if segs.last().is_some_and(|s| s == "self") {
                    segs.pop();
                }
                let name = segs.last().cloned();
                out.push((segs, name));
                return;
            }
        }
    }
}

fn parse(src: &str) -> Parsed {
    let toks = lex(src);
    let mut p = Parsed {
        file_mods: Vec::new(),
        inline_mods: Vec::new(),
        paths: Vec::new(),
    };
    // Inline modules open at a brace depth; `depth` counts every `{`.
    let (mut inline, mut opened_at, mut depth): (Vec<String>, Vec<usize>, usize) =
        (Vec::new(), Vec::new(), 0);
    let mut i = 0;
    while i < toks.len() {
        let prev_is_path = i > 0 && toks[i - 1].0 == Tok::Path;
        match &toks[i].0 {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if opened_at.last() == Some(&depth) {
                    opened_at.pop();
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(k) if k == "mod" && !prev_is_path => {
                let name = ident(toks.get(i + 1)).unwrap_or("").to_string();
                let mut path = inline.clone();
                path.push(name.clone());
                match toks.get(i + 2).map(|t| &t.0) {
                    Some(Tok::Punct(';')) => p.file_mods.push(path),
                    Some(Tok::Punct('{')) => {
                        p.inline_mods.push(path);
                        inline.push(name);
                        depth += 1;
                        opened_at.push(depth);
                        i += 1;
                    }
                    _ => {}
                }
                i += 2;
            }
            Tok::Ident(k) if k == "use" && !prev_is_path => {
                let line = toks[i].1;
                i += 1;
                let mut leaves = Vec::new();
                use_tree(&toks, &mut i, Vec::new(), &mut leaves);
                while i < toks.len() && toks[i].0 != Tok::Punct(';') {
                    i += 1;
                }
                for (segments, binds) in leaves {
                    p.paths.push(RawPath {
                        module: inline.clone(),
                        segments,
                        binds,
                        line,
                    });
                }
            }
            Tok::Ident(k)
                if !prev_is_path
                    && matches!(k.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path) =>
            {
                let line = toks[i].1;
                let mut segments = vec![k.clone()];
                i += 1;
                while toks.get(i).map(|t| &t.0) == Some(&Tok::Path) {
                    match ident(toks.get(i + 1)) {
                        Some(s) => segments.push(s.to_string()),
                        None => break,
                    }
                    i += 2;
                }
                p.paths.push(RawPath {
                    module: inline.clone(),
                    segments,
                    binds: None,
                    line,
                });
            }
            _ => i += 1,
        }
    }
    p
}

type Module = Vec<String>;

struct Crate {
    /// Every module (file-backed or inline) -> the file-backed module it belongs to.
    owner: BTreeMap<Module, Module>,
    /// File-backed module -> its file, relative to the project's root.
    files: BTreeMap<Module, PathBuf>,
    /// Per module, the names its `use` items bring into scope -> absolute paths.
    imports: BTreeMap<Module, BTreeMap<String, Vec<String>>>,
    /// (file-backed module, absolute segments, line) of every path.
    uses: Vec<(Module, Vec<String>, usize)>,
}

fn load(root: &Path, crate_root: &str) -> Crate {
    let mut krate = Crate {
        owner: BTreeMap::new(),
        files: BTreeMap::new(),
        imports: BTreeMap::new(),
        uses: Vec::new(),
    };
    // (module, file, directory its children live in)
    let mut queue: VecDeque<(Module, PathBuf)> = VecDeque::from([(Vec::new(), crate_root.into())]);
    let mut raw: Vec<(Module, RawPath)> = Vec::new();
    while let Some((module, file)) = queue.pop_front() {
        let src = std::fs::read_to_string(root.join(&file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_str().unwrap();
        let dir = if ["lib.rs", "main.rs", "mod.rs"].contains(&name) {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let parsed = parse(&src);
        krate.owner.insert(module.clone(), module.clone());
        krate.files.insert(module.clone(), file.clone());
        for m in &parsed.inline_mods {
            krate
                .owner
                .insert([module.clone(), m.clone()].concat(), module.clone());
        }
        for m in &parsed.file_mods {
            let rel: PathBuf = m.iter().collect();
            let flat = dir.join(&rel).with_extension("rs");
            let nested = dir.join(&rel).join("mod.rs");
            let child = if root.join(&flat).exists() {
                flat
            } else if root.join(&nested).exists() {
                nested
            } else {
                panic!("{}: `mod {}` has no file", file.display(), m.join("::"));
            };
            queue.push_back(([module.clone(), m.clone()].concat(), child));
        }
        for p in parsed.paths {
            raw.push((module.clone(), p));
        }
    }
    // Make the written paths absolute, now that every module is known.
    for (file_module, p) in raw {
        let here = [file_module.clone(), p.module.clone()].concat();
        let mut segs = p.segments.iter().map(String::as_str).peekable();
        let mut abs: Vec<String> = match segs.peek() {
            Some(&"crate") => {
                segs.next();
                Vec::new()
            }
            Some(&"self") => {
                segs.next();
                here.clone()
            }
            Some(&"super") => {
                let mut m = here.clone();
                while segs.peek() == Some(&"super") {
                    segs.next();
                    m.pop();
                }
                m
            }
            Some(first)
                if krate
                    .owner
                    .contains_key(&[here.clone(), vec![first.to_string()]].concat()) =>
            {
                here.clone()
            }
            _ => continue, // another crate, std, or a local item
        };
        abs.extend(segs.map(String::from));
        if let Some(name) = p.binds {
            krate
                .imports
                .entry(here.clone())
                .or_default()
                .insert(name, abs.clone());
        }
        krate.uses.push((file_module, abs, p.line));
    }
    krate
}

/// The file-backed module that holds what `path` names, following `use` re-exports.
fn resolve(k: &Crate, path: &[String], hops: usize) -> Module {
    let mut cur: Module = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        let child = [cur.clone(), vec![seg.clone()]].concat();
        if k.owner.contains_key(&child) {
            cur = child;
            continue;
        }
        if hops < 16
            && let Some(target) = k.imports.get(&cur).and_then(|m| m.get(seg))
            && target.as_slice() != path
        {
            let rest = [target.clone(), path[i + 1..].to_vec()].concat();
            return resolve(k, &rest, hops + 1);
        }
        break;
    }
    k.owner[&cur].clone()
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// The module graph: edge (from, to) -> the first "file:line" that makes it.
fn graph(k: &Crate) -> BTreeMap<(Module, Module), String> {
    let mut edges = BTreeMap::new();
    for (from, path, line) in &k.uses {
        let to = resolve(k, path, 0);
        // A module using itself or its own descendants is no edge (see the module comment).
        if to.starts_with(from) {
            continue;
        }
        edges
            .entry((from.clone(), to))
            .or_insert_with(|| format!("{}:{line}", k.files[from].display()));
    }
    edges
}

/// Strongly connected components with more than one module, each with one cycle through it.
fn cycles(edges: &BTreeMap<(Module, Module), String>) -> Vec<(BTreeSet<Module>, Vec<Module>)> {
    let mut next: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &Module| -> BTreeSet<Module> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([from.clone()]);
        while let Some(m) = queue.pop_front() {
            for &n in next.get(&m).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(n.clone()) {
                    queue.push_back(n.clone());
                }
            }
        }
        seen
    };
    let nodes: BTreeSet<Module> = edges
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let reach: BTreeMap<Module, BTreeSet<Module>> =
        nodes.iter().map(|m| (m.clone(), reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in &nodes {
        if done.contains(m) || !reach[m].contains(m) {
            continue;
        }
        let scc: BTreeSet<Module> = nodes
            .iter()
            .filter(|n| reach[m].contains(*n) && reach[*n].contains(m))
            .cloned()
            .collect();
        done.extend(scc.iter().cloned());
        // The shortest cycle through m inside the component (breadth first).
        let mut parent: BTreeMap<Module, Module> = BTreeMap::new();
        let mut queue = VecDeque::from([m.clone()]);
        'search: while let Some(a) = queue.pop_front() {
            for &b in next.get(&a).map(Vec::as_slice).unwrap_or(&[]) {
                if !scc.contains(b) || parent.contains_key(b) {
                    continue;
                }
                parent.insert(b.clone(), a.clone());
                if b == m {
                    break 'search;
                }
                queue.push_back(b.clone());
            }
        }
        let mut cycle = vec![m.clone()];
        let mut cur = parent[m].clone();
        while &cur != m {
            cycle.push(cur.clone());
            cur = parent[&cur].clone();
        }
        cycle.push(m.clone());
        cycle.reverse();
        out.push((scc, cycle));
    }
    out
}

fn check(crate_root: &str, allowed: &[(&str, &[&str])], min_edges: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let k = load(root, crate_root);
    let edges = graph(&k);
    let mut report = String::new();
    let mut used = vec![false; allowed.len()];
    for (scc, cycle) in cycles(&edges) {
        let names: BTreeSet<String> = scc.iter().map(name).collect();
        if let Some(a) = allowed
            .iter()
            .position(|(_, set)| names.iter().all(|n| set.contains(&n.as_str())))
        {
            used[a] = true;
            continue;
        }
        report += &format!(
            "cycle among {{{}}}:\n",
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
        for w in cycle.windows(2) {
            let at = &edges[&(w[0].clone(), w[1].clone())];
            report += &format!("  {} -> {}   ({at})\n", name(&w[0]), name(&w[1]));
        }
    }
    for (a, (why, _)) in allowed.iter().enumerate() {
        if !used[a] {
            report +=
                &format!("allow-listed cycle '{why}' is gone: remove its entry from ALLOWED\n");
        }
    }
    assert!(
        report.is_empty(),
        "{crate_root}: the module graph has cycles (break each: move the shared item down to \
         a module both sides may use, or invert the call):\n{report}"
    );
    // The graph is not vacuous: the library's modules use each other.
    assert!(edges.len() >= min_edges, "only {} edges found", edges.len());
}

#[test]
fn the_library_has_no_module_cycle() {
    check("src/lib.rs", ALLOWED, 100);
}

#[test]
fn the_command_line_tool_has_no_module_cycle() {
    check("cli/src/main.rs", &[], 2);
}

#[test]
fn the_experiments_crate_has_no_module_cycle() {
    check("experiments/src/lib.rs", &[], 20);
}

/// The checker finds what it must: a cycle through a re-export, one through `super`, and a
/// path written inside code; nothing in comments or strings.
#[test]
fn the_checker_sees_cycles_through_reexports_super_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let write = |p: &str, s: &str| {
        let p = dir.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    write(
        "src/lib.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub use a::A;\n",
    );
    // a -> b::inner by a path in code; a comment and a string name c, which is no edge.
    write(
        "src/a.rs",
        "pub struct A;\nfn f() { crate::b::inner::g(); }\n// crate::c::C\nconst S: &str = \"crate::c::C {\";\n",
    );
    // b::inner -> c through a `use` group with `super::super`, c -> a through the crate
    // root's re-export of a::A; c's own test module using `super::*` is no edge.
    write("src/b/mod.rs", "pub mod inner;\npub struct B;\n");
    write(
        "src/b/inner.rs",
        "use super::super::{c::{self, C}};\npub fn g() {}\n",
    );
    write(
        "src/c.rs",
        "pub struct C;\nuse crate::A;\nmod tests { use super::*; }\n",
    );
    let k = load(dir.path(), "src/lib.rs");
    let edges = graph(&k);
    let e = |a: &str, b: &str| {
        let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
        edges.contains_key(&(m(a), m(b)))
    };
    assert!(
        e("a", "b::inner") && e("b::inner", "c") && e("c", "a"),
        "{edges:?}"
    );
    assert!(
        !e("a", "c"),
        "a comment or a string made an edge: {edges:?}"
    );
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{found:?}");
    let names: Vec<String> = found[0].0.iter().map(name).collect();
    assert_eq!(names, ["a", "b::inner", "c"]);
}
