//! `attnflow render` end to end: tokens.png, one PNG per snapshot (--frames), an animated
//! GIF with one frame per snapshot (--gif), attention heat maps (--attention), for d = 2,
//! d = 5 (principal directions) and a system of an ensemble; one-line errors otherwise.

mod common;

use std::path::Path;

use common::cmd::{fails, ok};

/// The number of images in a GIF, walking its block structure (GIF89a: header, logical
/// screen descriptor, global colour table, then extensions 0x21, images 0x2C, trailer 0x3B).
fn gif_frames(bytes: &[u8]) -> usize {
    assert!(bytes.starts_with(b"GIF89a"), "not a GIF89a file");
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let mut p = 13 + table(bytes[10]);
    let skip_sub_blocks = |mut p: usize| {
        while bytes[p] != 0 {
            p += 1 + bytes[p] as usize;
        }
        p + 1
    };
    let mut images = 0;
    loop {
        match bytes[p] {
            0x21 => p = skip_sub_blocks(p + 2),
            0x2C => {
                images += 1;
                let flags = bytes[p + 9];
                p += 10 + table(flags);
                p = skip_sub_blocks(p + 1); // after the LZW minimum code size
            }
            0x3B => return images,
            other => panic!("unexpected GIF block 0x{other:02x} at byte {p}"),
        }
    }
}

fn pngs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a PNG"
        );
    }
    names
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
}

#[test]
fn render_writes_frames_gif_and_attention_on_the_circle() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let run = [
        "run",
        "--n",
        "30",
        "--d",
        "2",
        "--steps",
        "20",
        "--save-every",
        "5",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        "r",
    ];
    ok(&run, cwd);
    let out = ok(
        &[
            "render",
            "r",
            "--frames",
            "--gif",
            "--attention",
            "--delay-ms",
            "50",
        ],
        cwd,
    );
    let r = cwd.join("r");
    assert_png(&r.join("tokens.png"));
    // Steps 0, 5, 10, 15, 20: five snapshots.
    let frames = pngs(&r.join("frames"));
    assert_eq!(
        frames,
        (0..5)
            .map(|k| format!("frame_{k:04}.png"))
            .collect::<Vec<_>>()
    );
    let gif = std::fs::read(r.join("tokens.gif")).unwrap();
    assert_eq!(gif_frames(&gif), 5);
    assert_png(&r.join("attention.png"));
    assert!(out.contains("tokens.gif (5 frames, 50 ms each)"), "{out}");

    // A second rendering of a shorter trajectory leaves no stale frames behind.
    let mut again = run.to_vec();
    again[6] = "10"; // --steps 10: snapshots at steps 0, 5, 10
    again.push("--force");
    ok(&again, cwd);
    ok(&["render", "r", "--frames", "--gif"], cwd);
    assert_eq!(pngs(&r.join("frames")).len(), 3);
    assert_eq!(gif_frames(&std::fs::read(r.join("tokens.gif")).unwrap()), 3);
}

#[test]
fn render_projects_d5_and_draws_the_chosen_system_of_an_ensemble() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    // d = 5, a batch of two temperatures, causal mask, three random heads.
    ok(
        &[
            "run",
            "--n",
            "40",
            "--d",
            "5",
            "--beta",
            "1,4",
            "--mask",
            "causal",
            "--qkv",
            "random:3",
            "--heads",
            "3",
            "--steps",
            "12",
            "--save-every",
            "4",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "e",
        ],
        cwd,
    );
    let out = ok(
        &[
            "render",
            "e",
            "--system",
            "1",
            "--frames",
            "--gif",
            "--attention",
        ],
        cwd,
    );
    let e = cwd.join("e");
    assert_png(&e.join("tokens.png"));
    assert_eq!(pngs(&e.join("frames")).len(), 4);
    assert_eq!(gif_frames(&std::fs::read(e.join("tokens.gif")).unwrap()), 4);
    assert_png(&e.join("attention.png"));
    assert!(out.contains("attention.png"), "{out}");

    // Random deep attention (weights redrawn at every layer) also rebuilds from run.toml.
    ok(
        &[
            "run",
            "--n",
            "20",
            "--d",
            "3",
            "--qkv",
            "redraw:7",
            "--steps",
            "6",
            "--save-every",
            "3",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "w",
        ],
        cwd,
    );
    ok(&["render", "w", "--attention"], cwd);
    assert_png(&cwd.join("w").join("attention.png"));
}

#[test]
fn render_errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    // No trajectory saved: --frames and --gif say how to get one; a plain render still works.
    ok(
        &[
            "run",
            "--n",
            "12",
            "--d",
            "3",
            "--beta",
            "1,2",
            "--steps",
            "4",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "f",
        ],
        cwd,
    );
    for flag in ["--frames", "--gif"] {
        let err = fails(&["render", "f", flag], cwd);
        assert!(
            err.contains("traj.npy") && err.contains("--save-every"),
            "{err}"
        );
    }
    assert!(!cwd.join("f").join("tokens.gif").exists());
    ok(&["render", "f", "--attention"], cwd);
    assert_png(&cwd.join("f").join("attention.png"));
    // A system that the ensemble does not have.
    let err = fails(&["render", "f", "--system", "2"], cwd);
    assert!(
        err.contains("--system 2") && err.contains("2 systems"),
        "{err}"
    );
    // Not an output folder.
    let err = fails(&["render", "nowhere"], cwd);
    assert!(
        err.contains("nowhere") && err.contains("not a folder"),
        "{err}"
    );
    // Too many tokens for an attention heat map: the limit is named.
    ok(
        &[
            "run",
            "--n",
            "2049",
            "--d",
            "2",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "big",
        ],
        cwd,
    );
    let err = fails(&["render", "big", "--attention"], cwd);
    assert!(err.contains("2048") && err.contains("n = 2049"), "{err}");
    // A GIF delay GIF cannot store.
    ok(
        &[
            "run",
            "--n",
            "8",
            "--d",
            "2",
            "--steps",
            "2",
            "--save-every",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            "s",
        ],
        cwd,
    );
    let err = fails(&["render", "s", "--gif", "--delay-ms", "0"], cwd);
    assert!(err.contains("--delay-ms"), "{err}");
}
