//! What every generator of WGSL uses: indented text, the generated header, and small
//! expression builders.

use std::fmt::Write;

use super::WORKGROUP;

/// A tile whose softmax sum leaves [0, OVERFLOW] is redone with its exact maximum (N-body
/// kernels): 2^64, so that no term exceeds 2^64 and no sum over 2^24 keys overflows f32.
pub(super) const OVERFLOW: &str = "1.8446744e19";

/// Text with indentation, for generated code.
pub(super) struct Code {
    pub text: String,
    pub depth: usize,
}

impl Code {
    pub fn new(text: String) -> Self {
        Code { text, depth: 0 }
    }
    pub fn line(&mut self, s: impl AsRef<str>) {
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }
    pub fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.depth += 1;
    }
    pub fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }
    /// `} else {` after the if-branch's statements, the else-branch one level deeper still
    /// (its closing brace and what follows keep that depth: the kernels' text as the
    /// snapshots in tests/snapshots/wgsl hold it).
    pub fn else_open(&mut self) {
        self.line("} else {");
        self.depth += 1;
    }
}

/// The header of the register-tiled kernels (N-body attention, pair statistics): dimension d
/// in dv vec4 lanes, key tiles of tk, g workgroups per query block of qb queries.
pub(super) fn tiled_prelude(
    (d, dv, tk, g): (u32, u32, u32, u32),
    qb: u32,
    template: &str,
) -> String {
    prelude(
        &[
            ("D", d),
            ("DV", dv),
            ("WG", WORKGROUP),
            ("TK", tk),
            ("TILE_VECS", tk * dv),
            ("QB", qb),
            ("G", g),
        ],
        template,
    )
}

/// The header every generated kernel starts with, then common.wgsl and the template.
pub(super) fn prelude(constants: &[(&str, u32)], template: &str) -> String {
    let mut s = String::from("// Generated header (src/backend/gpu/codegen.rs).\n");
    for (name, value) in constants {
        let _ = writeln!(s, "const {name}: u32 = {value}u;");
    }
    s.push_str(&crate::backend::gpu::shaders::host_constants());
    s.push('\n');
    s.push_str(crate::backend::gpu::shaders::COMMON);
    s.push('\n');
    s.push_str(template);
    s.push('\n');
    s
}

/// The opening of every streaming kernel's `main`.
pub(super) fn main_signature(c: &mut Code) {
    c.line("@compute @workgroup_size(WG)");
    c.open("fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {");
}

/// `base + k` for a WGSL expression k (`base` when k is `0u`).
pub(super) fn plus(base: &str, k: &str) -> String {
    if k == "0u" {
        base.to_string()
    } else {
        format!("{base} + {k}")
    }
}

/// `base + k` (or `base`).
pub(super) fn offset(base: &str, k: u32) -> String {
    if k == 0 {
        base.to_string()
    } else {
        format!("{base} + {k}u")
    }
}

/// `vec4<f32>(x[o], x[o + 1u], ..., pad)`: token coordinates 4v..4v+3 at flat offset `o`.
pub(super) fn load_vec4(buf: &str, o: &str, d: u32, v: u32, pad: &str) -> String {
    let parts: Vec<String> = (0..4)
        .map(|k| {
            let c = 4 * v + k;
            if c < d {
                if c == 0 {
                    format!("{buf}[{o}]")
                } else {
                    format!("{buf}[{o} + {c}u]")
                }
            } else {
                pad.to_string()
            }
        })
        .collect();
    format!("vec4<f32>({})", parts.join(", "))
}
