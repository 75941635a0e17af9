//! Issue 22's experiment and render cases, end to end: a user's files are never replaced by
//! an experiment's or render's `--force`-less or `--force` run unless attnflow wrote them, and
//! every experiment parameter is checked before any work (each refusal exit 1, one line,
//! naming the parameter, the value and the range; nothing written).

mod common;

use std::path::Path;

use common::cmd::{attnflow, fails, ok, stderr};

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Was: `experiment clustering --quick --out DIR --force` with DIR holding only the user's
/// clustering.csv and clustering.png replaced both (exit 0); the same for integrator-order.
#[test]
fn experiment_force_keeps_a_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for (name, files) in [
        ("clustering", &["clustering.csv", "clustering.png"][..]),
        ("integrator-order", &["integrator_order.csv"][..]),
    ] {
        let out = p.join(name);
        std::fs::create_dir(&out).unwrap();
        for f in files {
            std::fs::write(out.join(f), b"MINE").unwrap();
        }
        let err = fails(
            &[
                "experiment",
                name,
                "--quick",
                "--backend",
                "cpu",
                "--out",
                name,
                "--force",
                "--quiet",
            ],
            p,
        );
        assert!(
            err.contains(files[0]) && err.contains("no attnflow command wrote"),
            "{err}"
        );
        for f in files {
            assert_eq!(read(&out.join(f)), b"MINE", "{name}: {f} replaced");
        }
        assert!(!out.join("summary.json").exists());
    }
    // An experiment's own folder is replaced with --force (its summary names its files), and
    // a second experiment into it replaces the first one's files.
    let args = |name: &'static str| {
        vec![
            "experiment",
            name,
            "--quick",
            "--backend",
            "cpu",
            "--out",
            "own",
            "--force",
            "--quiet",
        ]
    };
    ok(&args("integrator-order"), p);
    let before = read(&p.join("own/summary.json"));
    ok(&args("integrator-order"), p);
    assert_ne!(read(&p.join("own/summary.json")), before);
    // A file the user adds beside attnflow's results is theirs: --force refuses.
    std::fs::write(p.join("own/notes.txt"), b"MINE").unwrap();
    let err = fails(&args("integrator-order"), p);
    assert!(err.contains("notes.txt"), "{err}");
    assert_eq!(read(&p.join("own/notes.txt")), b"MINE");
}

/// Was: `render DIR` replaced a user's DIR/tokens.png, and had no --force.
#[test]
fn render_replaces_only_its_own_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    ok(
        &[
            "run",
            "--n",
            "16",
            "--d",
            "2",
            "--steps",
            "20",
            "--save-every",
            "10",
            "--backend",
            "cpu",
            "--out",
            "r",
            "--quiet",
        ],
        p,
    );
    let png = p.join("r/tokens.png");
    std::fs::write(&png, b"MINE").unwrap();
    let err = fails(&["render", "r"], p);
    assert!(
        err.contains("tokens.png")
            && err.contains("render did not draw it")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(read(&png), b"MINE");
    // The same for the GIF, the attention map, the frames and an --out file, before anything
    // is drawn.
    for (flag, name) in [
        ("--gif", "r/tokens.gif"),
        ("--attention", "r/attention.png"),
        ("--frames", "r/frames/frame_0001.png"),
    ] {
        std::fs::create_dir_all(p.join("r/frames")).unwrap();
        std::fs::write(p.join(name), b"MINE").unwrap();
        let err = fails(&["render", "r", "--out", "r/other.png", flag], p);
        assert!(err.contains(name.rsplit('/').next().unwrap()), "{err}");
        assert_eq!(read(&p.join(name)), b"MINE");
        assert!(!p.join("r/other.png").exists(), "drew before refusing");
        std::fs::remove_file(p.join(name)).unwrap();
    }
    std::fs::write(p.join("mine.png"), b"MINE").unwrap();
    fails(&["render", "r", "--out", "mine.png"], p);
    assert_eq!(read(&p.join("mine.png")), b"MINE");
    // --force replaces it; then render's own picture is replaced without --force, every
    // time, until the user edits it.
    ok(&["render", "r", "--force", "--gif", "--frames"], p);
    assert!(read(&png).starts_with(b"\x89PNG"));
    ok(&["render", "r", "--gif", "--frames"], p);
    ok(&["render", "r"], p);
    std::fs::write(&png, b"EDITED").unwrap();
    fails(&["render", "r"], p);
    assert_eq!(read(&png), b"EDITED");
}

/// Was: `view DIR` and `view --live` replaced a user's view.html or live.html (exit 0). A page
/// is replaced only when attnflow wrote it (its generator mark) or with --force; a folder in
/// its place is refused even then.
#[test]
fn view_replaces_only_its_own_pages() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    ok(
        &[
            "run",
            "--n",
            "16",
            "--d",
            "3",
            "--steps",
            "4",
            "--save-every",
            "2",
            "--backend",
            "cpu",
            "--out",
            "r",
            "--quiet",
        ],
        p,
    );
    let page = p.join("r/view.html");
    std::fs::write(&page, b"<!DOCTYPE html><p>MINE").unwrap();
    let err = fails(&["view", "r"], p);
    assert!(
        err.contains("view.html")
            && err.contains("attnflow did not write it")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(read(&page), b"<!DOCTYPE html><p>MINE");
    ok(&["view", "r", "--force"], p);
    assert!(String::from_utf8_lossy(&read(&page)).contains("attnflow view"));
    // Its own page is replaced without --force.
    ok(&["view", "r"], p);
    std::fs::create_dir(p.join("r/dir.html")).unwrap();
    let err = fails(&["view", "r", "--out", "r/dir.html", "--force"], p);
    assert!(err.contains("not a regular file"), "{err}");
    #[cfg(feature = "gpu")]
    {
        std::fs::write(p.join("live.html"), b"MINE").unwrap();
        let err = fails(&["view", "--live"], p);
        assert!(err.contains("attnflow did not write it"), "{err}");
        assert_eq!(read(&p.join("live.html")), b"MINE");
        ok(&["view", "--live", "--force"], p);
        ok(&["view", "--live"], p);
        assert!(String::from_utf8_lossy(&read(&p.join("live.html"))).contains("attnflow live"));
    }
}

/// Was: a panic (101), an abort on allocation (134), a spin, or results written. Each is now
/// refused before any work with the parameter, the value and its range named, and no
/// folder is made.
#[test]
fn experiment_parameters_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for (name, set, want) in [
        (
            "integrator-order",
            "truth_tolerance=0",
            "truth_tolerance takes a number in",
        ),
        (
            "clustering",
            "n=1000000000",
            "n takes a whole number from 2 to 4194304",
        ),
        (
            "clustering",
            "d=100000",
            "d takes a whole number from 2 to 4096",
        ),
        (
            "lost-in-the-middle",
            "n=1000000000",
            "n takes a whole number from 8 to 4096",
        ),
        ("kde-modes", "ns=10000000000", "ns takes a list"),
        ("chaos", "frozen_n=1000000000000", "frozen_n takes a list"),
        ("clustering", "h=0", "h takes a number in (0, 1]"),
        (
            "clustering",
            "t_end=1e300",
            "t_end takes a number in (0, 1000000]",
        ),
        (
            "clustering",
            "betas_usa=1000",
            "betas_usa takes a list of 1 to 64 numbers in [0, 50]",
        ),
        ("clustering", "betas_usa=45", "more than the 1e7"),
        ("clustering", "h=-0.1", "got -0.1"),
        ("clustering", "t_end=0", "t_end takes a number in (0"),
        ("clustering", "t_end=-1", "got -1"),
        (
            "integrator-order",
            "steps=0",
            "steps takes a list of 1 to 64 whole numbers from 1",
        ),
    ] {
        let started = std::time::Instant::now();
        let err = fails(
            &[
                "experiment",
                name,
                "--quick",
                "--backend",
                "cpu",
                "--out",
                "x",
                "--set",
                set,
                "--quiet",
            ],
            p,
        );
        let key = set.split('=').next().unwrap();
        assert!(
            err.contains(want) && err.contains(key),
            "{name} --set {set}: {err}"
        );
        assert!(started.elapsed().as_secs() < 20, "{name} --set {set}: slow");
        assert!(!p.join("x").exists(), "{name} --set {set}: left a folder");
    }
    // The message says why, after the range.
    let o = attnflow(
        &[
            "experiment",
            "clustering",
            "--quick",
            "--out",
            "x",
            "--set",
            "h=0",
        ],
        p,
    );
    assert!(stderr(&o).contains("the RK4 step"), "{}", stderr(&o));
}
