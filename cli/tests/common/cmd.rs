//! Running the `attnflow` binary from the CLI tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `attnflow ARGS` in `cwd` and returns its output.
pub fn attnflow(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attnflow"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the attnflow binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The standard output of a command that must succeed.
pub fn ok(args: &[&str], cwd: &Path) -> String {
    let o = attnflow(args, cwd);
    assert!(
        o.status.success(),
        "attnflow {args:?} failed:\n{}",
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The one-line error of a failing command: exit status 1, one line, no panic.
pub fn fails(args: &[&str], cwd: &Path) -> String {
    let o = attnflow(args, cwd);
    assert_eq!(
        o.status.code(),
        Some(1),
        "attnflow {args:?}: {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}
