//! Generated WGSL for the streaming kernels, specialised per run (d, tile sizes, mask).
//!
//! Two attention kernels, chosen by d ([`AttentionKernel::for_dimension`]):
//! - [`Nbody`] for d <= 8: R queries per invocation held in registers, keys as vec4 in
//!   workgroup memory, each read once per R queries; straight-line code for the coordinates
//!   and the queries, the key loop unrolled G keys at a time (`shaders/attention_small.wgsl`).
//! - [`Block`] for d >= 9: FlashAttention-2 in f32: a block of BQ queries per workgroup, a key
//!   tile of BK keys in workgroup memory that doubles as the value tile; each invocation
//!   computes a small block of scores as outer products over d and a slice of the output for
//!   several queries; row maxima by subgroup shuffles where the adapter has them, or through
//!   workgroup memory (`shaders/attention_block.wgsl`).
//!
//! Both write the same partial online-softmax state ([split][token]: acc as DV vec4s, (m, l)
//! with m in base 2), which `attention_finish.wgsl` merges, so everything downstream is shared.
//! The pair statistics behind the observables use the N-body shape as well.

use std::fmt::Write;

pub use super::profiles::{Profile, Target};
/// Invocations per workgroup of every streaming kernel.
pub use super::shaders::WORKGROUP;

/// A tile whose softmax sum leaves [0, OVERFLOW] is redone with its exact maximum (N-body
/// kernels): 2^64, so that no term exceeds 2^64 and no sum over 2^24 keys overflows f32.
const OVERFLOW: &str = "1.8446744e19";

/// The compile-time choices of the attention kernel that depend on the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Query i sees keys j <= i.
    pub causal: bool,
    /// ALiBi: scores lose slope (i - j).
    pub alibi: bool,
}

/// How the rows of a score block are reduced across invocations (Block kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// `subgroupShuffleXor` within a subgroup (the adapter has SUBGROUP and subgroups of at
    /// least the lanes that share a row).
    Subgroup,
    /// Through workgroup memory and a barrier (every adapter).
    Workgroup,
}

/// The N-body kernel for small d: every invocation holds `r` queries, the key loop reads `g`
/// keys per iteration from a tile of `tk` keys in workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nbody {
    pub d: u32,
    /// vec4s per token: ceil(d / 4).
    pub dv: u32,
    /// Queries per invocation.
    pub r: u32,
    /// Keys per iteration of the key loop.
    pub g: u32,
    /// Keys per workgroup-memory tile.
    pub tk: u32,
}

/// The FlashAttention-2 kernel for larger d (see `shaders/attention_block.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub d: u32,
    /// vec4s per token, ceil(d / 4), and padded to a multiple of `cg`.
    pub dv: u32,
    pub dvp: u32,
    /// Queries per workgroup and keys per tile.
    pub bq: u32,
    pub bk: u32,
    /// Score phase: row groups x key groups x d-slices = WORKGROUP invocations; each
    /// computes tqs x tks scores over its slice of d.
    pub sr: u32,
    pub sc: u32,
    pub ds: u32,
    /// Output phase: row groups x column groups = WORKGROUP; each owns tqo rows and tvo
    /// vec4 columns (interleaved by cg) of the output block.
    pub rg: u32,
    pub cg: u32,
    pub reduce: Reduce,
}

/// The attention kernel of one specialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttentionKernel {
    Nbody(Nbody),
    Block(Block),
}

impl Nbody {
    pub fn for_dimension(d: usize, target: &Target) -> Self {
        let dv = (d as u32).div_ceil(4);
        // Registers per query: q, acc and the tile sums, 3 DV vec4s.
        let (r, g) = match (target.profile, dv) {
            (Profile::Hardware, _) => (4, 4),
            (Profile::Software, 1..=2) => (16, 2),
            (Profile::Software, 3..=16) => (8, 1),
            (Profile::Software, _) => (4, 1),
        };
        // Tiles of up to 256 keys.
        let fit = (target.workgroup_bytes / (16 * dv)).clamp(g, 256);
        Nbody {
            d: d as u32,
            dv,
            r,
            g,
            tk: 1 << (31 - fit.leading_zeros()),
        }
    }

    pub fn queries_per_group(&self) -> u32 {
        WORKGROUP * self.r
    }

    pub fn workgroup_bytes(&self) -> u32 {
        16 * self.tk * self.dv
    }
}

impl Block {
    /// The largest configuration for d whose workgroup memory fits `workgroup_bytes`; the
    /// subgroup reduction when the adapter's smallest subgroup holds the lanes of one row.
    pub fn for_dimension(d: usize, workgroup_bytes: u32, subgroup_min: Option<u32>) -> Self {
        let dv = (d as u32).div_ceil(4);
        // (column groups, output rows per invocation, keys per tile, d-slices) by width:
        // at most 64 output floats and 32 scores per invocation.
        let (cg, tqo, bk, ds) = match dv {
            0..=4 => (4, 4, 32, 1),
            5..=16 => (8, 8, 32, 1),
            17..=32 => (8, 4, 32, 1),
            33..=64 => (8, 2, 16, 1),
            65..=128 => (8, 1, 16, 2),
            _ => (16, 1, 8, 4),
        };
        let make = |cg: u32, bq: u32, bk: u32, reduce: Reduce| {
            // Score phase: as many key groups as keys (up to 8), then rows, then d-slices.
            let sc = bk.min(8);
            let sr = (WORKGROUP / (sc * ds)).min(bq);
            Block {
                d: d as u32,
                dv,
                dvp: dv.next_multiple_of(cg),
                bq,
                bk,
                sr,
                sc,
                ds: WORKGROUP / (sc * sr),
                rg: WORKGROUP / cg,
                cg,
                reduce,
            }
        };
        // Sized for the workgroup-memory reduction, so that the blocks do not depend on
        // whether subgroups are used: fewer keys per tile down to 8, then fewer queries per
        // block, then fewer keys, then more column groups (fewer output rows), until it fits.
        let (mut cg, mut bq, mut bk) = (cg, (WORKGROUP / cg) * tqo, bk);
        let fits =
            |cg, bq, bk| make(cg, bq, bk, Reduce::Workgroup).workgroup_bytes() <= workgroup_bytes;
        while !fits(cg, bq, bk) {
            // Tiles of fewer than 8 keys only once the query block is as small as it goes
            // (WebGPU's 16 KiB would otherwise get tiles of one key).
            if bk > 8 || (bk > 1 && bq <= WORKGROUP / cg) {
                bk /= 2;
            } else if bq > WORKGROUP / cg {
                bq /= 2;
            } else if cg < WORKGROUP / 2 {
                cg *= 2;
                bq = WORKGROUP / cg;
            } else {
                break;
            }
        }
        let make = |bq, bk, reduce| make(cg, bq, bk, reduce);
        let block = make(bq, bk, Reduce::Workgroup);
        match subgroup_min {
            Some(s) if s >= block.sc * block.ds => Block {
                reduce: Reduce::Subgroup,
                ..block
            },
            _ => block,
        }
    }

    pub fn tqs(&self) -> u32 {
        self.bq / self.sr
    }
    pub fn tks(&self) -> u32 {
        self.bk / self.sc
    }
    pub fn tqo(&self) -> u32 {
        self.bq / self.rg
    }
    pub fn tvo(&self) -> u32 {
        self.dvp / self.cg
    }
    /// Row stride of the query and key tiles in vec4s (one spare vec4 spreads the rows over
    /// the memory banks).
    pub fn stride(&self) -> u32 {
        self.dvp + 1
    }
    /// Trips of the loops inside the tile loop, in order (per invocation, at most): the key
    /// tile's load, the score phase's slices of d (when not unrolled), the output phase.
    pub fn loop_trips(&self) -> Vec<u32> {
        let mut trips = vec![(self.bk * self.dvp).div_ceil(WORKGROUP)];
        let (_, score_iters) = score_loop(self);
        if score_iters > 1 {
            trips.push(score_iters);
        }
        trips.push(self.bk / unroll_keys(self));
        trips
    }

    /// Whether p goes through workgroup memory as vec4s of four rows (both phases hold rows
    /// in fours).
    pub fn quads(&self) -> bool {
        self.tqs().is_multiple_of(4) && self.tqo().is_multiple_of(4) && self.bq.is_multiple_of(4)
    }

    /// Floats of the workgroup-memory reduction: one per invocation per value reduced.
    pub fn red_floats(&self) -> u32 {
        let values = if self.ds > 1 {
            self.tqs() * self.tks()
        } else {
            self.tqs()
        };
        WORKGROUP * values.max(self.tqs())
    }

    pub fn workgroup_bytes(&self) -> u32 {
        let red = if self.reduce == Reduce::Workgroup {
            4 * self.red_floats()
        } else {
            0
        };
        // p: BQ x BK floats, in quads with one spare vec4 per key (banks).
        let p = if self.quads() {
            16 * self.bk * (self.bq / 4 + 1)
        } else {
            4 * self.bq * self.bk
        };
        16 * (self.bq + self.bk) * self.stride() + p + 4 * self.bq + red
    }
}

impl AttentionKernel {
    /// The kernel for d on a target: N-body for small d (for d <= 128 on software
    /// adapters), FlashAttention-2 above; shaped for what the target offers within the
    /// portable limits (`Target::portable`), so that llvmpipe can run it too.
    pub fn for_dimension(d: usize, target: &Target) -> Self {
        let target = &target.portable();
        if d <= target.nbody_max_d() {
            AttentionKernel::Nbody(Nbody::for_dimension(d, target))
        } else {
            AttentionKernel::Block(Block::for_dimension(
                d,
                target.workgroup_bytes,
                target.subgroup_min,
            ))
        }
    }

    /// Queries one workgroup handles.
    pub fn queries_per_group(&self) -> u32 {
        match self {
            AttentionKernel::Nbody(k) => k.queries_per_group(),
            AttentionKernel::Block(k) => k.bq,
        }
    }

    /// Keys per workgroup-memory tile.
    pub fn tile_keys(&self) -> u32 {
        match self {
            AttentionKernel::Nbody(k) => k.tk,
            AttentionKernel::Block(k) => k.bk,
        }
    }

    pub fn workgroup_bytes(&self) -> u32 {
        match self {
            AttentionKernel::Nbody(k) => k.workgroup_bytes(),
            AttentionKernel::Block(k) => k.workgroup_bytes(),
        }
    }

    /// Whether the kernel uses subgroup operations.
    pub fn uses_subgroups(&self) -> bool {
        matches!(self, AttentionKernel::Block(b) if b.reduce == Reduce::Subgroup)
    }

    /// An upper bound of the loop iterations one invocation runs for `keys` keys per split
    /// (llvmpipe ends an invocation after 65535 iterations over all its loops).
    pub fn loop_iterations(&self, keys: usize) -> usize {
        let tiles = keys.div_ceil(self.tile_keys() as usize);
        match self {
            AttentionKernel::Nbody(k) => {
                let per_tile = 1
                    + (k.tk / WORKGROUP) as usize
                    + (k.tk / k.g) as usize
                    // The exact-maximum redo of a tile (two loops over it), at most 8 times.
                    ;
                tiles * per_tile + 8 * 2 * k.tk as usize + 8
            }
            AttentionKernel::Block(k) => {
                let load = (k.bk * k.dvp).div_ceil(WORKGROUP) as usize;
                let scores = score_loop(k).1 as usize;
                let values = (k.bk / unroll_keys(k)) as usize;
                tiles * (1 + load + scores + values) + 8 + 2 * k.dvp as usize
            }
        }
    }

    /// The WGSL of the attention kernel: the shared header, common.wgsl, the template and the
    /// generated `main`.
    pub fn source(&self, variant: Variant) -> String {
        match self {
            AttentionKernel::Nbody(k) => nbody_attention(k, variant),
            AttentionKernel::Block(k) => block_attention(k, variant),
        }
    }
}

/// Text with indentation, for generated code.
struct Code {
    text: String,
    depth: usize,
}

impl Code {
    fn new(text: String) -> Self {
        Code { text, depth: 0 }
    }
    fn line(&mut self, s: impl AsRef<str>) {
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }
    fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.depth += 1;
    }
    fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }
}

/// The header of the register-tiled kernels (N-body attention, pair statistics): dimension d
/// in dv vec4 lanes, key tiles of tk, g workgroups per query block of qb queries.
fn tiled_prelude((d, dv, tk, g): (u32, u32, u32, u32), qb: u32, template: &str) -> String {
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
fn prelude(constants: &[(&str, u32)], template: &str) -> String {
    let mut s = String::from("// Generated header (src/backend/gpu/codegen.rs).\n");
    for (name, value) in constants {
        let _ = writeln!(s, "const {name}: u32 = {value}u;");
    }
    s.push_str(&super::shaders::host_constants());
    s.push('\n');
    s.push_str(super::shaders::COMMON);
    s.push('\n');
    s.push_str(template);
    s.push('\n');
    s
}

/// The vector types of a token's registers in the pair statistics: vec4s, the last as narrow
/// as the coordinates it holds, so that no operation is spent on padding.
struct Lanes {
    dv: u32,
    /// Components of the last vector.
    last: u32,
}

impl Lanes {
    fn new(d: u32) -> Self {
        let dv = d.div_ceil(4);
        let rem = d - 4 * (dv - 1);
        // At least a vec2 (WGSL has no scalar dot product).
        Lanes {
            dv,
            last: rem.clamp(2, 4),
        }
    }
    fn width(&self, v: u32) -> u32 {
        if v + 1 == self.dv { self.last } else { 4 }
    }
    /// The swizzle that narrows a vec4 to vector v's width.
    fn swizzle(&self, v: u32) -> &'static str {
        [".x", ".xy", ".xyz", ""][self.width(v) as usize - 1]
    }
}

/// `base + k` for a WGSL expression k (`base` when k is `0u`).
fn plus(base: &str, k: &str) -> String {
    if k == "0u" {
        base.to_string()
    } else {
        format!("{base} + {k}")
    }
}

/// `base + k` (or `base`).
fn offset(base: &str, k: u32) -> String {
    if k == 0 {
        base.to_string()
    } else {
        format!("{base} + {k}u")
    }
}

/// `vec4<f32>(x[o], x[o + 1u], ..., pad)`: token coordinates 4v..4v+3 at flat offset `o`.
fn load_vec4(buf: &str, o: &str, d: u32, v: u32, pad: &str) -> String {
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

/// Keys per iteration of the N-body key loop: G, doubled up to 8 while a tile holds them and
/// the unrolled body stays small (R x keys x DV at most 32 vec4 products: 8 keys at d <= 4
/// with R = 4; llvmpipe's R = 8-16 shapes keep their G, more spills cost more than the loop),
/// so that the loop's counter, compare and branch weigh at most 1/8 per query and key.
pub fn nbody_unroll(k: &Nbody) -> u32 {
    let mut u = k.g.max(1);
    while u < 8 && 2 * u <= k.tk && k.r * 2 * u * k.dv <= 32 {
        u *= 2;
    }
    u
}

/// The registers of a token in the N-body kernel: DV vectors, the last exactly as wide as
/// the coordinates it holds (a scalar for one), so no operation is spent on padding.
struct Coords {
    d: u32,
    dv: u32,
}

impl Coords {
    fn width(&self, v: u32) -> u32 {
        if v + 1 == self.dv {
            self.d - 4 * (self.dv - 1)
        } else {
            4
        }
    }
    fn ty(&self, v: u32) -> String {
        match self.width(v) {
            1 => "f32".into(),
            w => format!("vec{w}<f32>"),
        }
    }
    /// The swizzle that narrows a vec4 to vector v's width.
    fn swizzle(&self, v: u32) -> &'static str {
        [".x", ".xy", ".xyz", ""][self.width(v) as usize - 1]
    }
    /// A vec4 from vector v's register `e`, zero padded.
    fn pad(&self, v: u32, e: &str) -> String {
        match self.width(v) {
            4 => e.to_string(),
            3 => format!("vec4<f32>({e}, 0.0)"),
            2 => format!("vec4<f32>({e}, 0.0, 0.0)"),
            _ => format!("vec4<f32>({e}, 0.0, 0.0, 0.0)"),
        }
    }
    /// Component i of vector v's register `e`.
    fn comp(&self, v: u32, e: &str, i: u32) -> String {
        if self.width(v) == 1 {
            e.to_string()
        } else {
            format!("{e}.{}", ["x", "y", "z", "w"][i as usize])
        }
    }
    /// `<a, b> + addend` as chains of FMAs over 8 coordinates, the addend innermost in the
    /// first (FlashAttention-2's "exp2(x * log2(e) - max * log2(e))": the maximum costs no
    /// operation of its own), the chains summed as a tree: d FMAs and ceil(d / 8) - 1 adds,
    /// the chains short enough for a CPU's FMA latency (llvmpipe) at large d.
    fn dot_plus(
        &self,
        a: &dyn Fn(u32) -> String,
        b: &dyn Fn(u32) -> String,
        addend: &str,
    ) -> String {
        let mut chains = Vec::new();
        for v0 in (0..self.dv).step_by(2) {
            let mut e = if v0 == 0 {
                addend.to_string()
            } else {
                String::new()
            };
            for v in (v0..(v0 + 2).min(self.dv)).rev() {
                for i in (0..self.width(v)).rev() {
                    let (x, y) = (self.comp(v, &a(v), i), self.comp(v, &b(v), i));
                    e = if e.is_empty() {
                        format!("{x} * {y}")
                    } else {
                        format!("fma({x}, {y}, {e})")
                    };
                }
            }
            chains.push(e);
        }
        while chains.len() > 1 {
            chains = chains
                .chunks(2)
                .map(|p| match p {
                    [x, y] => format!("({x} + {y})"),
                    [x] => x.clone(),
                    _ => unreachable!("chunks of two"),
                })
                .collect();
        }
        chains.pop().expect("d >= 1")
    }
}

/// The N-body attention kernel (d <= 8).
///
/// Per query and key: s - m as d FMAs with -m as the innermost addend, one exp2, d FMAs into
/// the tile's accumulator and one add into its sum: 2d + 2 operations (8 at d = 3), plus the
/// key's load per R queries and the loop's counter per R x U pairs.
fn nbody_attention(k: &Nbody, variant: Variant) -> String {
    let Nbody { d, dv, r, tk, .. } = *k;
    let unroll = nbody_unroll(k);
    let mut c = Code::new(tiled_prelude(
        (d, dv, tk, unroll),
        k.queries_per_group(),
        super::shaders::ATTENTION_SMALL,
    ));
    let rs = 0..r;
    let vs = 0..dv;
    let lanes = Coords { d, dv };
    let (ty, sw, widen) = (
        |v| lanes.ty(v),
        |v| lanes.swizzle(v),
        |v, e: &str| lanes.pad(v, e),
    );
    // The score of query `qr` against key vecs `key` minus b (s - m in base 2), without ALiBi.
    let score = |qr: u32, key: &dyn Fn(u32) -> String| -> String {
        lanes.dot_plus(&|v| format!("q{qr}_{v}"), key, &format!("nb{qr}"))
    };
    c.line("@compute @workgroup_size(WG)");
    c.open("fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {");
    c.line("let split = wid.z % params.splits;");
    c.line("let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;");
    c.line("let system = wid.y + chunk.first_system;");
    c.line("let q0 = block * QB;");
    c.line("let split_start = split * params.split_keys;");
    c.line("let split_end = min(split_start + params.split_keys, params.n_keys);");
    c.line("let start0 = split_start + chunk.key_offset;");
    c.line("var key_end = min(start0 + chunk.key_count, split_end);");
    if variant.causal {
        c.line("// Causal: no query of this workgroup sees keys past its last query.");
        c.line("key_end = min(key_end, q0 + QB);");
    }
    c.line("let key_base = system * params.n_keys;");
    c.line("let first = chunk.first != 0u;");
    c.line("let state0 = split * params.batch * params.n_queries + system * params.n_queries;");
    if variant.alibi {
        c.line("let alibi2 = params.alibi_slope * LOG2E;");
    }
    c.line("// The split's first key: the running maximum starts at its score.");
    for v in vs.clone() {
        c.line(format!(
            "let first_{v} = {}{};",
            load_vec4(
                "x",
                "(key_base + min(split_start, params.n_keys - 1u)) * D",
                d,
                v,
                "0.0"
            ),
            sw(v)
        ));
    }
    for qr in rs.clone() {
        c.line(format!("let i{qr} = q0 + lid.x + {}u;", qr * WORKGROUP));
        c.line(format!("let ok{qr} = i{qr} < params.n_queries;"));
        c.line(format!(
            "let t{qr} = system * params.n_queries + min(i{qr}, params.n_queries - 1u);"
        ));
        for v in vs.clone() {
            c.line(format!("let q{qr}_{v} = q[t{qr} * DV + {v}u]{};", sw(v)));
            c.line(format!("var acc{qr}_{v} = {}(0.0);", ty(v)));
        }
        c.line(format!("var m{qr} = F32_LOWEST;"));
        c.line(format!("var l{qr} = 0.0;"));
        c.open("if first {");
        let sees = if variant.causal {
            format!("(split_start <= i{qr}) & (split_start < params.n_keys)")
        } else {
            "split_start < params.n_keys".to_string()
        };
        c.open(format!("if {sees} {{"));
        let mut s0 = lanes.dot_plus(&|v| format!("q{qr}_{v}"), &|v| format!("first_{v}"), "0.0");
        if variant.alibi {
            let _ = write!(s0, " - alibi2 * f32(i{qr} - split_start)");
        }
        c.line(format!("m{qr} = {s0};"));
        c.close();
        c.line("} else {");
        c.depth += 1;
        c.line(format!(
            "let ml = ml_state[state0 + min(i{qr}, params.n_queries - 1u)];"
        ));
        c.line(format!("m{qr} = ml.x;"));
        c.line(format!("l{qr} = ml.y;"));
        for v in vs.clone() {
            c.line(format!(
                "acc{qr}_{v} = acc_state[(state0 + min(i{qr}, params.n_queries - 1u)) * DV + {v}u]{};",
                sw(v)
            ));
        }
        c.close();
        // nb = -(m (+ ALiBi's slope i)): the part of s - m that depends on the query only.
        if variant.alibi {
            c.line(format!("var nb{qr} = -(m{qr} + alibi2 * f32(i{qr}));"));
        } else {
            c.line(format!("var nb{qr} = -m{qr};"));
        }
    }
    c.line("var start = start0;");
    c.open("loop {");
    c.open("if start >= key_end {");
    c.line("break;");
    c.close();
    c.line("let len = min(TK, key_end - start);");
    c.line("workgroupBarrier();");
    c.open("for (var e = lid.x; e < TK; e += WG) {");
    for v in vs.clone() {
        c.line(format!("var key_{v} = vec4<f32>(0.0);"));
    }
    c.open("if e < len {");
    c.line("let o = (key_base + start + e) * D;");
    for v in vs.clone() {
        c.line(format!("key_{v} = {};", load_vec4("x", "o", d, v, "0.0")));
    }
    c.close();
    for v in vs.clone() {
        c.line(format!("tile[e * DV + {v}u] = key_{v};"));
    }
    c.close();
    c.line("workgroupBarrier();");
    c.line("// Keys of this tile each query sees.");
    for qr in rs.clone() {
        if variant.causal {
            c.line(format!(
                "let lim{qr} = select(0u, min(len, i{qr} + 1u - start), i{qr} >= start);"
            ));
        } else {
            c.line(format!("let lim{qr} = len;"));
        }
        for v in vs.clone() {
            c.line(format!("var tacc{qr}_{v} = {}(0.0);", ty(v)));
        }
        c.line(format!("var tl{qr} = 0.0;"));
    }
    // The key loop, fast (every query sees every key of the tile) or masked.
    let key_loop = |c: &mut Code, masked: bool| {
        if masked {
            c.line(format!("let top = lim{};", r - 1));
            c.open("for (var kk = 0u; kk < top; kk += G) {");
        } else {
            c.open("for (var kk = 0u; kk < TK; kk += G) {");
        }
        c.line("let kb = kk * DV;");
        for gi in 0..unroll {
            for v in vs.clone() {
                c.line(format!(
                    "let k{gi}_{v} = tile[{}]{};",
                    offset("kb", gi * dv + v),
                    sw(v)
                ));
            }
            if variant.alibi {
                c.line(format!("let j{gi} = alibi2 * f32(start + kk + {gi}u);"));
            }
        }
        for qr in rs.clone() {
            for gi in 0..unroll {
                let mut s = score(qr, &|v| format!("k{gi}_{v}"));
                if variant.alibi {
                    let _ = write!(s, " + j{gi}");
                }
                if masked {
                    c.line(format!(
                        "let p{qr}_{gi} = select(0.0, exp2({s}), kk + {gi}u < lim{qr});"
                    ));
                } else {
                    c.line(format!("let p{qr}_{gi} = exp2({s});"));
                }
                for v in vs.clone() {
                    c.line(format!(
                        "tacc{qr}_{v} = fma({}(p{qr}_{gi}), k{gi}_{v}, tacc{qr}_{v});",
                        ty(v)
                    ));
                }
                c.line(format!("tl{qr} += p{qr}_{gi};"));
            }
        }
        c.close();
    };
    // `&` rather than `&&` (see the causal mask of `block_attention`): one condition, no
    // branch per query.
    let all_full: Vec<String> = rs.clone().map(|qr| format!("(lim{qr} == TK)")).collect();
    c.open(format!("if {} {{", all_full.join(" & ")));
    key_loop(&mut c, false);
    c.line("} else {");
    c.depth += 1;
    key_loop(&mut c, true);
    c.close();
    c.line("// A term beyond 2^64 (or an overflow): redo the tile with its exact maximum.");
    for qr in rs.clone() {
        c.open(format!("if !(tl{qr} <= {OVERFLOW}) {{"));
        let tile_score = |c: &mut Code| {
            for v in vs.clone() {
                c.line(format!("let kv_{v} = tile[kk * DV + {v}u]{};", sw(v)));
            }
            let mut s = score(qr, &|v| format!("kv_{v}"));
            if variant.alibi {
                s.push_str(" + alibi2 * f32(start + kk)");
            }
            c.line(format!("let s = {s};"));
        };
        c.line("var top = F32_LOWEST;");
        c.open(format!("for (var kk = 0u; kk < lim{qr}; kk++) {{"));
        tile_score(&mut c);
        c.line("top = max(top, s);");
        c.close();
        c.line("let delta = max(top, 0.0);");
        c.line(format!("m{qr} += delta;"));
        c.line(format!("nb{qr} -= delta;"));
        c.line("let shrink = exp2(-delta);");
        for v in vs.clone() {
            c.line(format!("acc{qr}_{v} *= shrink;"));
            c.line(format!("tacc{qr}_{v} = {}(0.0);", ty(v)));
        }
        c.line(format!("l{qr} *= shrink;"));
        c.line(format!("tl{qr} = 0.0;"));
        c.open(format!("for (var kk = 0u; kk < lim{qr}; kk++) {{"));
        tile_score(&mut c);
        c.line("let p = exp2(s);");
        for v in vs.clone() {
            c.line(format!(
                "tacc{qr}_{v} = fma({}(p), kv_{v}, tacc{qr}_{v});",
                ty(v)
            ));
        }
        c.line(format!("tl{qr} += p;"));
        c.close();
        c.close();
        for v in vs.clone() {
            c.line(format!("acc{qr}_{v} += tacc{qr}_{v};"));
        }
        c.line(format!("l{qr} += tl{qr};"));
    }
    c.line("start += TK;");
    c.close();
    for qr in rs.clone() {
        c.open(format!("if ok{qr} {{"));
        c.line(format!("let s = state0 + i{qr};"));
        c.line(format!("ml_state[s] = vec2<f32>(m{qr}, l{qr});"));
        for v in vs.clone() {
            c.line(format!(
                "acc_state[s * DV + {v}u] = {};",
                widen(v, &format!("acc{qr}_{v}"))
            ));
        }
        c.close();
    }
    c.close();
    c.text
}

/// The pair-statistics kernel: N-body shaped for every d (R tokens per invocation as the
/// attention's N-body kernel, one above its range), straight-line over coordinates up to
/// d = 128 and a loop over them beyond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairKernel {
    pub d: u32,
    pub dv: u32,
    pub r: u32,
    pub g: u32,
    pub tk: u32,
}

impl PairKernel {
    /// The pair kernel for d on a target, within the portable limits (`Target::portable`).
    pub fn for_dimension(d: usize, target: &Target) -> Self {
        let target = &target.portable();
        let dv = (d as u32).div_ceil(4);
        let r = match (target.profile, dv) {
            (Profile::Hardware, 1..=2) => 4,
            (Profile::Hardware, 3..=8) => 2,
            (Profile::Hardware, _) => 1,
            (Profile::Software, 1..=2) => 16,
            (Profile::Software, 3..=16) => 8,
            (Profile::Software, 17..=32) => 4,
            (Profile::Software, _) => 1,
        };
        let fit = (target.workgroup_bytes / (16 * dv + 4)).clamp(1, 256);
        let tk = 1u32 << (31 - fit.leading_zeros());
        PairKernel {
            d: d as u32,
            dv,
            r,
            g: tk.min(if r == 1 || dv <= 2 { 2 } else { 1 }),
            tk,
        }
    }

    /// Coordinates in registers by name (no loop over them) up to d = 128.
    pub fn unrolled(&self) -> bool {
        self.dv <= 32
    }

    pub fn queries_per_group(&self) -> u32 {
        WORKGROUP * self.r
    }

    /// The key tile (unit vectors as vec4s) and its norms.
    pub fn workgroup_bytes(&self) -> u32 {
        16 * self.tk * self.dv + 4 * self.tk
    }

    pub fn loop_iterations(&self, keys: usize) -> usize {
        let tiles = keys.div_ceil(self.tk as usize);
        let per_key = if self.unrolled() { 0 } else { self.dv as usize };
        let per_tile = 1
            + (self.tk / WORKGROUP).max(1) as usize * (1 + 2 * per_key.min(1) * self.dv as usize)
            + (self.tk / self.g) as usize
            + self.tk as usize * per_key;
        tiles * per_tile + 8 * 2 * self.tk as usize * (1 + per_key) + 4 * self.dv as usize + 8
    }

    pub fn source(&self) -> String {
        pair_stats(self)
    }
}

fn pair_stats(k: &PairKernel) -> String {
    let PairKernel { d, dv, r, g, tk } = *k;
    let unrolled = k.unrolled();
    let mut c = Code::new(tiled_prelude(
        (d, dv, tk, g),
        k.queries_per_group(),
        super::shaders::PAIR_STATS,
    ));
    let rs = 0..r;
    let vs = 0..dv;
    let lanes = Lanes::new(d);
    let sw = |v| lanes.swizzle(v);
    // Emits the cosine of query qr against the key at tile index `at` into `name`.
    let cosine = |c: &mut Code, qr: u32, at: &str, name: &str| {
        if unrolled {
            let dots: Vec<String> = (0..dv)
                .map(|v| format!("dot(xi{qr}_{v}, tile[({at}) * DV + {v}u]{})", sw(v)))
                .collect();
            c.line(format!("let {name} = {};", dots.join(" + ")));
        } else {
            c.line(format!("var {name} = 0.0;"));
            c.open("for (var v = 0u; v < DV; v++) {");
            c.line(format!("{name} += dot(xi{qr}[v], tile[({at}) * DV + v]);"));
            c.close();
        }
    };
    c.line("@compute @workgroup_size(WG)");
    c.open("fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {");
    c.line("let n = params.n_keys;");
    c.line("let split = wid.z % params.splits;");
    c.line("let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;");
    c.line("let system = wid.y + chunk.first_system;");
    c.line("let q0 = block * QB;");
    c.line("let split_start = split * params.split_keys;");
    c.line("let split_end = min(split_start + params.split_keys, n);");
    c.line("let start0 = split_start + chunk.key_offset;");
    c.line("let key_end = min(start0 + chunk.key_count, split_end);");
    c.line("let key_base = system * n;");
    c.line("let first = chunk.first != 0u;");
    c.line("let state0 = split * params.batch * n + system * n;");
    c.line("let beta2 = betas[system] * LOG2E;");
    c.line("let j0 = (key_base + min(split_start, n - 1u)) * D;");
    for qr in rs.clone() {
        c.line(format!("let i{qr} = q0 + lid.x + {}u;", qr * WORKGROUP));
        c.line(format!("let ok{qr} = i{qr} < n;"));
        c.line(format!("let t{qr} = (key_base + min(i{qr}, n - 1u)) * D;"));
        if unrolled {
            for v in vs.clone() {
                c.line(format!(
                    "var xi{qr}_{v} = {}{};",
                    load_vec4("x", &format!("t{qr}"), d, v, "0.0"),
                    sw(v)
                ));
            }
            let n2: Vec<String> = vs
                .clone()
                .map(|v| format!("dot(xi{qr}_{v}, xi{qr}_{v})"))
                .collect();
            c.line(format!("let n{qr} = sqrt({});", n2.join(" + ")));
            for v in vs.clone() {
                c.line(format!("xi{qr}_{v} /= n{qr};"));
            }
        } else {
            c.line(format!("var xi{qr}: array<vec4<f32>, DV>;"));
            c.line(format!("var nn{qr} = 0.0;"));
            c.open("for (var v = 0u; v < DV; v++) {");
            c.line("var w = vec4<f32>(0.0);");
            c.open("for (var k = 0u; k < 4u; k++) {");
            c.open("if 4u * v + k < D {");
            c.line(format!("w[k] = x[t{qr} + 4u * v + k];"));
            c.close();
            c.close();
            c.line(format!("xi{qr}[v] = w;"));
            c.line(format!("nn{qr} += dot(w, w);"));
            c.close();
            c.line(format!("let n{qr} = sqrt(nn{qr});"));
            c.open("for (var v = 0u; v < DV; v++) {");
            c.line(format!("xi{qr}[v] /= n{qr};"));
            c.close();
        }
        c.line(format!("let bn{qr} = beta2 * n{qr};"));
        c.line(format!("var m{qr} = F32_LOWEST;"));
        c.line(format!("var l{qr} = 0.0;"));
        c.line(format!("var mn{qr} = 3.0;"));
        c.line(format!("var sc{qr} = 0.0;"));
        c.line(format!("var sd{qr} = 0.0;"));
        c.open("if first {");
        c.open("if split_start < n {");
        // The first key's score: beta <x_i, x_j0> = beta n_i <xhat_i, x_j0>.
        c.line("var dot0 = 0.0;");
        c.open("for (var e = 0u; e < D; e++) {");
        c.line(format!("dot0 += x[t{qr} + e] * x[j0 + e];"));
        c.close();
        c.line(format!("m{qr} = beta2 * dot0;"));
        c.close();
        c.line("} else {");
        c.depth += 1;
        c.line(format!("let row = stats[state0 + min(i{qr}, n - 1u)];"));
        c.line(format!("m{qr} = row.m;"));
        c.line(format!("l{qr} = row.l;"));
        c.line(format!("mn{qr} = row.min_cos;"));
        c.line(format!("sc{qr} = row.sum_cos;"));
        c.line(format!("sd{qr} = row.sum_dot / n{qr};"));
        c.close();
        c.line(format!("var nm{qr} = -m{qr};"));
    }
    c.line("var start = start0;");
    c.open("loop {");
    c.open("if start >= key_end {");
    c.line("break;");
    c.close();
    c.line("let len = min(TK, key_end - start);");
    c.line("workgroupBarrier();");
    c.open("for (var e = lid.x; e < TK; e += WG) {");
    if unrolled {
        for v in vs.clone() {
            c.line(format!("var key_{v} = vec4<f32>(0.0);"));
        }
        c.line("var norm = 0.0;");
        c.open("if e < len {");
        c.line("let o = (key_base + start + e) * D;");
        for v in vs.clone() {
            c.line(format!("key_{v} = {};", load_vec4("x", "o", d, v, "0.0")));
        }
        let n2: Vec<String> = vs
            .clone()
            .map(|v| format!("dot(key_{v}, key_{v})"))
            .collect();
        c.line(format!("norm = sqrt({});", n2.join(" + ")));
        for v in vs.clone() {
            c.line(format!("key_{v} /= norm;"));
        }
        c.close();
        for v in vs.clone() {
            c.line(format!("tile[e * DV + {v}u] = key_{v};"));
        }
        c.line("tile_norm[e] = norm;");
    } else {
        c.line("var nn = 0.0;");
        c.open("if e < len {");
        c.line("let o = (key_base + start + e) * D;");
        c.open("for (var v = 0u; v < DV; v++) {");
        c.line("var w = vec4<f32>(0.0);");
        c.open("for (var k = 0u; k < 4u; k++) {");
        c.open("if 4u * v + k < D {");
        c.line("w[k] = x[o + 4u * v + k];");
        c.close();
        c.close();
        c.line("tile[e * DV + v] = w;");
        c.line("nn += dot(w, w);");
        c.close();
        c.close();
        c.line("let norm = sqrt(nn);");
        c.open("for (var v = 0u; v < DV; v++) {");
        c.line("tile[e * DV + v] = select(vec4<f32>(0.0), tile[e * DV + v] / norm, e < len);");
        c.close();
        c.line("tile_norm[e] = select(0.0, norm, e < len);");
    }
    c.close();
    c.line("workgroupBarrier();");
    for qr in rs.clone() {
        c.line(format!("var tl{qr} = 0.0;"));
    }
    let key_loop = |c: &mut Code, masked: bool| {
        c.open("for (var kk = 0u; kk < len; kk += G) {");
        if unrolled {
            c.line("let kb = kk * DV;");
        }
        for gi in 0..g {
            c.line(format!("let kn{gi} = tile_norm[{}];", offset("kk", gi)));
            if unrolled {
                for v in vs.clone() {
                    c.line(format!(
                        "let k{gi}_{v} = tile[{}]{};",
                        offset("kb", gi * dv + v),
                        sw(v)
                    ));
                }
            }
        }
        for qr in rs.clone() {
            for gi in 0..g {
                if unrolled {
                    let dots: Vec<String> = vs
                        .clone()
                        .map(|v| format!("dot(xi{qr}_{v}, k{gi}_{v})"))
                        .collect();
                    c.line(format!("let c{qr}_{gi} = {};", dots.join(" + ")));
                } else {
                    cosine(c, qr, &format!("kk + {gi}u"), &format!("c{qr}_{gi}"));
                }
                c.line(format!("let u{qr}_{gi} = c{qr}_{gi} * kn{gi};"));
                let p = format!("exp2(fma(u{qr}_{gi}, bn{qr}, nm{qr}))");
                if masked {
                    c.line(format!("let in{qr}_{gi} = kk + {gi}u < len;"));
                    c.line(format!("tl{qr} += select(0.0, {p}, in{qr}_{gi});"));
                    c.line(format!(
                        "mn{qr} = select(mn{qr}, min(mn{qr}, c{qr}_{gi}), in{qr}_{gi});"
                    ));
                } else {
                    c.line(format!("tl{qr} += {p};"));
                    c.line(format!("mn{qr} = min(mn{qr}, c{qr}_{gi});"));
                }
                // Keys past len are zero: they add nothing to these sums.
                c.line(format!("sc{qr} += c{qr}_{gi};"));
                c.line(format!("sd{qr} += u{qr}_{gi};"));
            }
        }
        c.close();
    };
    c.open("if len == TK {");
    key_loop(&mut c, false);
    c.line("} else {");
    c.depth += 1;
    key_loop(&mut c, true);
    c.close();
    for qr in rs.clone() {
        c.open(format!("if !(tl{qr} <= {OVERFLOW}) {{"));
        c.line("var top = F32_LOWEST;");
        c.open("for (var kk = 0u; kk < len; kk++) {");
        cosine(&mut c, qr, "kk", "cs");
        c.line(format!(
            "top = max(top, fma(cs * tile_norm[kk], bn{qr}, nm{qr}));"
        ));
        c.close();
        c.line("let delta = max(top, 0.0);");
        c.line(format!("nm{qr} -= delta;"));
        c.line(format!("l{qr} *= exp2(-delta);"));
        c.line(format!("tl{qr} = 0.0;"));
        c.open("for (var kk = 0u; kk < len; kk++) {");
        cosine(&mut c, qr, "kk", "cs");
        c.line(format!(
            "tl{qr} += exp2(fma(cs * tile_norm[kk], bn{qr}, nm{qr}));"
        ));
        c.close();
        c.close();
        c.line(format!("l{qr} += tl{qr};"));
    }
    c.line("start += TK;");
    c.close();
    for qr in rs.clone() {
        c.open(format!("if ok{qr} {{"));
        // The self term of the cosine sum, computed as in the loop.
        if unrolled {
            let dots: Vec<String> = vs
                .clone()
                .map(|v| format!("dot(xi{qr}_{v}, xi{qr}_{v})"))
                .collect();
            c.line(format!("var self_cos = {};", dots.join(" + ")));
        } else {
            c.line("var self_cos = 0.0;");
            c.open("for (var v = 0u; v < DV; v++) {");
            c.line(format!("self_cos += dot(xi{qr}[v], xi{qr}[v]);"));
            c.close();
        }
        c.line(format!(
            "let sees_self = (i{qr} >= start0) & (i{qr} < key_end);"
        ));
        c.line(format!(
            "stats[state0 + i{qr}] = PairStats(-nm{qr}, l{qr}, mn{qr}, sc{qr} - select(0.0, self_cos, sees_self), sd{qr} * n{qr});"
        ));
        c.close();
    }
    c.close();
    c.text
}

/// The FlashAttention-2 kernel (d >= 9).
fn block_attention(k: &Block, variant: Variant) -> String {
    let (tqs, tks, tqo, tvo) = (k.tqs(), k.tks(), k.tqo(), k.tvo());
    let (ds, sc, cg) = (k.ds, k.sc, k.cg);
    let workgroup_reduce = k.reduce == Reduce::Workgroup;
    // p in vec4s of four consecutive rows, when both phases hold rows in fours.
    let quads = k.quads();
    let mut constants = vec![
        ("D", k.d),
        ("DV", k.dv),
        ("DVP", k.dvp),
        ("STR", k.stride()),
        ("WG", WORKGROUP),
        ("BQ", k.bq),
        ("BK", k.bk),
        ("QS_VECS", k.bq * k.stride()),
        ("KT_VECS", k.bk * k.stride()),
    ];
    let mut template = super::shaders::ATTENTION_BLOCK.to_string();
    template.push_str(if k.d.is_multiple_of(4) {
        "// Keys (and values), [batch, n_keys, D] as vec4s (D is a multiple of 4).\n\
         @group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;\n"
    } else {
        "// Keys (and values), [batch, n_keys, D].\n\
         @group(0) @binding(3) var<storage, read> x: array<f32>;\n"
    });
    if quads {
        constants.push(("BQ4", k.bq / 4));
        constants.push(("PSTR", k.bq / 4 + 1));
        template.push_str("var<workgroup> ps: array<vec4<f32>, PSTR * BK>;\n");
    } else {
        template.push_str("var<workgroup> ps: array<f32, BQ * BK>;\n");
    }
    if workgroup_reduce {
        constants.push(("RED_FLOATS", k.red_floats()));
        template.push_str(
            "// Scratch of the workgroup-memory reductions (no subgroup operations).\n\
             var<workgroup> red: array<f32, RED_FLOATS>;\n",
        );
    }
    let mut text = prelude(&constants, &template);
    if !workgroup_reduce {
        // Directives come before every declaration; the spec (and Tint) require this one for
        // subgroupShuffleXor. naga 30 refuses it: `shaders::for_naga` drops exactly this line.
        text.insert_str(0, super::shaders::ENABLE_SUBGROUPS);
    }
    let mut c = Code::new(text);
    let us = |n: u32| 0..n;
    let (score_vecs, score_iters) = score_loop(k);
    let uk = unroll_keys(k);
    let last_lanes = k.d - 4 * (k.dv - 1);
    let comp = ["x", "y", "z", "w"];
    // vec4 v of the token at flat offset o (v < DV), zero past D.
    let token_vec = |c: &mut Code, target: &str, o: &str| {
        c.open("if v + 1u < DV {");
        c.line(format!(
            "{target} = vec4<f32>(x[{o}], x[{o} + 1u], x[{o} + 2u], x[{o} + 3u]);"
        ));
        c.line("} else if v + 1u == DV {");
        c.depth += 1;
        let parts: Vec<String> = (0..4)
            .map(|l| {
                if l < last_lanes {
                    format!("x[{}]", offset(o, l))
                } else {
                    "0.0".into()
                }
            })
            .collect();
        c.line(format!("{target} = vec4<f32>({});", parts.join(", ")));
        c.close();
    };
    // Reduces `values` over the lanes that share a row: `op` is "+" or "max"; `stride` the
    // lane distance of the first step, `lanes` how many lanes.
    let reduce = |c: &mut Code, values: &[String], op: &str, stride: u32, lanes: u32| {
        if lanes <= 1 {
            return;
        }
        let combine = |a: &str, b: &str| {
            if op == "+" {
                format!("{a} + {b}")
            } else {
                format!("max({a}, {b})")
            }
        };
        if workgroup_reduce {
            for (i, v) in values.iter().enumerate() {
                c.line(format!("red[{i}u * WG + t] = {v};"));
            }
            c.line("workgroupBarrier();");
            c.line(format!(
                "let lane0 = t - ((t / {stride}u) % {lanes}u) * {stride}u;"
            ));
            for (i, v) in values.iter().enumerate() {
                let mut e = format!("red[{i}u * WG + lane0]");
                for g in 1..lanes {
                    e = combine(&e, &format!("red[{i}u * WG + lane0 + {}u]", g * stride));
                }
                c.line(format!("{v} = {e};"));
            }
            c.line("workgroupBarrier();");
        } else {
            let mut mask = stride;
            while mask < stride * lanes {
                for v in values {
                    c.line(format!(
                        "{v} = {};",
                        combine(v, &format!("subgroupShuffleXor({v}, {mask}u)"))
                    ));
                }
                mask *= 2;
            }
        }
    };

    c.line("@compute @workgroup_size(WG)");
    c.open("fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {");
    c.line("let t = lid.x;");
    c.line("let split = wid.z % params.splits;");
    c.line("let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;");
    c.line("let system = wid.y + chunk.first_system;");
    c.line("let nq = params.n_queries;");
    c.line("let q0 = block * BQ;");
    c.line("let split_start = split * params.split_keys;");
    c.line("let split_end = min(split_start + params.split_keys, params.n_keys);");
    c.line("let start0 = split_start + chunk.key_offset;");
    c.line("var key_end = min(start0 + chunk.key_count, split_end);");
    if variant.causal {
        c.line("key_end = min(key_end, q0 + BQ);");
    }
    c.line("let key_base = system * params.n_keys;");
    c.line("let first = chunk.first != 0u;");
    c.line("let state0 = split * params.batch * nq + system * nq;");
    if variant.alibi {
        c.line("let alibi2 = params.alibi_slope * LOG2E;");
    }
    c.line("// The query block, zero past the queries and past DV.");
    c.open("for (var e = t; e < BQ * DVP; e += WG) {");
    c.line("let row = e / DVP;");
    c.line("let v = e % DVP;");
    c.line("var val = vec4<f32>(0.0);");
    c.open("if q0 + row < nq && v < DV {");
    c.line("val = q[(system * nq + q0 + row) * DV + v];");
    c.close();
    c.line("qs[row * STR + v] = val;");
    c.close();
    // With p in quads the rows are interleaved (shared-memory banks): the score phase's lane
    // srow holds rows srow + SR u, so that the lanes of a warp read query rows 1 apart (STR
    // vec4s, distinct banks) rather than TQS apart (8 rows of 17 vec4s are 4 x 32 words: the
    // same banks). Quad j of p holds rows s + SR (4 q + i), i < 4, for j = s + SR q; the
    // output phase's lane orow holds quads orow + RG q. The rows of the p tile (one per key)
    // are PSTR = BQ4 + 1 vec4s apart, so that the score lanes of one quad (keys kg) store to
    // different banks.
    let sr = k.sr;
    let rg = k.rg;
    let score_row = |u: u32| {
        if quads {
            offset("srow", sr * u)
        } else {
            format!("srow * {tqs}u + {u}u")
        }
    };
    if quads {
        c.line("// Score phase: rows srow + SR u, keys kg + SC w, vec4s ds + DS z.");
    } else {
        c.line("// Score phase: rows srow * TQS + u, keys kg + SC w, vec4s ds + DS z.");
    }
    c.line(format!("let ds = t % {ds}u;"));
    c.line(format!("let kg = (t / {ds}u) % {sc}u;"));
    c.line(format!("let srow = t / {}u;", ds * sc));
    c.line("let lead = ds == 0u && kg == 0u;");
    for u in us(tqs) {
        c.line(format!("let si{u} = q0 + {};", score_row(u)));
        c.line(format!("let qb{u} = ({}) * STR;", score_row(u)));
        c.line(format!("var m{u} = F32_LOWEST;"));
        c.line("// This lane's part of the row's sum l (its keys kg + SC w).");
        c.line(format!("var l{u} = 0.0;"));
    }
    for w in us(tks) {
        c.line(format!("let kj{w} = kg + {}u;", sc * w));
        c.line(format!("let kr{w} = kj{w} * STR;"));
        if quads {
            c.line(format!("let pw{w} = kj{w} * PSTR + srow;"));
        } else {
            c.line(format!("let pw{w} = kj{w} * BQ + srow * {tqs}u;"));
        }
    }
    if quads {
        c.line("// Output phase: quads orow + RG q (rows as above), vec4 columns co + CG w.");
    } else {
        c.line("// Output phase: rows orow * TQO + u, vec4 columns co + CG w.");
    }
    c.line(format!("let co = t % {cg}u;"));
    c.line(format!("let orow = t / {cg}u;"));
    for w in us(tvo) {
        c.line(format!("let col{w} = co + {}u;", cg * w));
    }
    if quads {
        for qd in 0..tqo / 4 {
            c.line(format!("let oj{qd} = {};", offset("orow", rg * qd)));
            for i in 0..4 {
                c.line(format!(
                    "let or{u} = oj{qd} % {sr}u + {sr}u * (4u * (oj{qd} / {sr}u) + {i}u);",
                    u = 4 * qd + i
                ));
            }
        }
    } else {
        c.line(format!("let orow_p = orow * {tqo}u;"));
        for u in us(tqo) {
            c.line(format!("let or{u} = orow * {tqo}u + {u}u;"));
        }
    }
    for u in us(tqo) {
        c.line(format!("let oi{u} = q0 + or{u};"));
        for w in us(tvo) {
            c.line(format!("var o{u}_{w} = vec4<f32>(0.0);"));
        }
    }
    c.open("if !first {");
    for u in us(tqs) {
        c.line(format!("let sm{u} = 2u * (state0 + min(si{u}, nq - 1u));"));
        c.line(format!("m{u} = ml_state[sm{u}];"));
        c.line(format!("l{u} = select(0.0, ml_state[sm{u} + 1u], lead);"));
    }
    for u in us(tqo) {
        c.line(format!("let so{u} = state0 + min(oi{u}, nq - 1u);"));
        for w in us(tvo) {
            c.open(format!("if col{w} < DV {{"));
            c.line(format!("o{u}_{w} = acc_state[so{u} * DV + col{w}];"));
            c.close();
        }
    }
    c.close();

    c.line("var start = start0;");
    c.open("loop {");
    c.open("if start >= key_end {");
    c.line("break;");
    c.close();
    c.line("let len = min(BK, key_end - start);");
    c.line("workgroupBarrier();");
    c.open("for (var e = t; e < BK * DVP; e += WG) {");
    c.line("let key = e / DVP;");
    c.line("let v = e % DVP;");
    c.line("var val = vec4<f32>(0.0);");
    c.open("if key < len {");
    if k.d.is_multiple_of(4) {
        c.open("if v < DV {");
        c.line("val = x[(key_base + start + key) * DV + v];");
        c.close();
    } else {
        c.line("let o = (key_base + start + key) * D + 4u * v;");
        token_vec(&mut c, "val", "o");
    }
    c.close();
    c.line("kt[key * STR + v] = val;");
    c.close();
    c.line("workgroupBarrier();");

    // Score phase.
    for u in us(tqs) {
        for w in us(tks) {
            c.line(format!("var s{u}_{w} = 0.0;"));
        }
    }
    let score_body = |c: &mut Code, base: Option<&str>| {
        for z in 0..score_vecs {
            // The vec4 index within a row: a constant when unrolled with one slice.
            let v = match (base, ds) {
                (None, 1) => format!("{z}u"),
                (Some(b), 1) => offset(b, z),
                (None, _) => {
                    c.line(format!("let v{z} = ds + {}u;", ds * z));
                    format!("v{z}")
                }
                (Some(b), _) => {
                    c.line(format!("let v{z} = ds + {ds}u * ({});", offset(b, z)));
                    format!("v{z}")
                }
            };
            for u in us(tqs) {
                c.line(format!(
                    "let qv{u}_{z} = qs[{}];",
                    plus(&format!("qb{u}"), &v)
                ));
            }
            for w in us(tks) {
                c.line(format!(
                    "let kv{w}_{z} = kt[{}];",
                    plus(&format!("kr{w}"), &v)
                ));
            }
            for u in us(tqs) {
                for w in us(tks) {
                    let (a, b) = (format!("qv{u}_{z}"), format!("kv{w}_{z}"));
                    c.line(format!(
                        "s{u}_{w} = fma({a}.x, {b}.x, fma({a}.y, {b}.y, fma({a}.z, {b}.z, fma({a}.w, {b}.w, s{u}_{w}))));"
                    ));
                }
            }
        }
    };
    if score_iters == 1 {
        score_body(&mut c, None);
    } else {
        c.open(format!(
            "for (var zb = 0u; zb < {}u; zb += {score_vecs}u) {{",
            score_iters * score_vecs
        ));
        score_body(&mut c, Some("zb"));
        c.close();
    }
    let scores: Vec<String> = us(tqs)
        .flat_map(|u| us(tks).map(move |w| format!("s{u}_{w}")))
        .collect();
    if ds > 1 {
        c.line("// Sum the d-slices.");
        reduce(&mut c, &scores, "+", 1, ds);
    }
    // The softmax of the tile: m moves once, p = exp2(s - m) and this lane's part of l.
    // Without masks when every row sees every key of the tile.
    let softmax = |c: &mut Code, masked: bool| {
        if masked {
            for w in us(tks) {
                c.line(format!("let kin{w} = kj{w} < len;"));
            }
        }
        for u in us(tqs) {
            for w in us(tks) {
                let mut val = format!("s{u}_{w}");
                if variant.alibi {
                    val = format!("s{u}_{w} + alibi2 * (f32(start + kj{w}) - f32(si{u}))");
                }
                if masked {
                    // `&`, not `&&`: WGSL's `&&` short-circuits, so Tint turns each into a
                    // branch, and SwiftShader's compiler never finished the 32 of a causal
                    // tile (d = 9-32: lost device). Both sides are plain comparisons.
                    let vis = if variant.causal {
                        format!("kin{w} & (start + kj{w} <= si{u})")
                    } else {
                        format!("kin{w}")
                    };
                    c.line(format!("let vis{u}_{w} = {vis};"));
                    c.line(format!("s{u}_{w} = select(F32_LOWEST, {val}, vis{u}_{w});"));
                } else if variant.alibi {
                    c.line(format!("s{u}_{w} = {val};"));
                }
            }
            let mut top = format!("s{u}_0");
            for w in 1..tks {
                top = format!("max({top}, s{u}_{w})");
            }
            c.line(format!("top{u} = {top};"));
        }
        let tops: Vec<String> = us(tqs).map(|u| format!("top{u}")).collect();
        reduce(c, &tops, "max", ds, sc);
        for u in us(tqs) {
            c.line(format!("let m_new{u} = max(m{u}, top{u});"));
            c.line(format!("alpha{u} = exp2(m{u} - m_new{u});"));
            c.line(format!("m{u} = m_new{u};"));
            let mut sum = Vec::new();
            for w in us(tks) {
                if masked {
                    c.line(format!(
                        "p{u}_{w} = select(0.0, exp2(s{u}_{w} - m{u}), vis{u}_{w});"
                    ));
                } else {
                    c.line(format!("p{u}_{w} = exp2(s{u}_{w} - m{u});"));
                }
                sum.push(format!("p{u}_{w}"));
            }
            c.line(format!("l{u} = fma(l{u}, alpha{u}, {});", sum.join(" + ")));
        }
    };
    for u in us(tqs) {
        c.line(format!("var top{u}: f32;"));
        c.line(format!("var alpha{u}: f32;"));
        for w in us(tks) {
            c.line(format!("var p{u}_{w}: f32;"));
        }
    }
    let full = if variant.causal {
        "len == BK && start + BK <= q0 + 1u"
    } else {
        "len == BK"
    };
    c.open(format!("if {full} {{"));
    softmax(&mut c, false);
    c.line("} else {");
    c.depth += 1;
    softmax(&mut c, true);
    c.close();
    c.open("if ds == 0u {");
    for w in us(tks) {
        if quads {
            for qd in 0..tqs / 4 {
                let ps: Vec<String> = (0..4).map(|i| format!("p{}_{w}", 4 * qd + i)).collect();
                c.line(format!(
                    "ps[{}] = vec4<f32>({});",
                    offset(&format!("pw{w}"), sr * qd),
                    ps.join(", ")
                ));
            }
        } else {
            for u in us(tqs) {
                c.line(format!("ps[{}] = p{u}_{w};", offset(&format!("pw{w}"), u)));
            }
        }
    }
    c.open("if kg == 0u {");
    for u in us(tqs) {
        c.line(format!("alpha[{}] = alpha{u};", score_row(u)));
    }
    c.close();
    c.close();
    c.line("workgroupBarrier();");

    // Output phase.
    for u in us(tqo) {
        c.line(format!("let a{u} = alpha[or{u}];"));
        for w in us(tvo) {
            c.line(format!("o{u}_{w} *= a{u};"));
        }
    }
    c.open(format!("for (var kk = 0u; kk < BK; kk += {uk}u) {{"));
    if quads {
        c.line("let pb = kk * PSTR;");
        for qd in 0..tqo / 4 {
            c.line(format!("let pb{qd} = pb + oj{qd};"));
        }
    } else {
        c.line("let pb = kk * BQ + orow_p;");
    }
    for w in us(tvo) {
        c.line(format!("let vb{w} = kk * STR + col{w};"));
    }
    for g in 0..uk {
        let p = |u: u32| {
            if quads {
                format!("p{g}_{}.{}", u / 4, comp[(u % 4) as usize])
            } else {
                format!("p{g}_{u}")
            }
        };
        if quads {
            for qd in 0..tqo / 4 {
                c.line(format!(
                    "let p{g}_{qd} = ps[{}];",
                    offset(&format!("pb{qd}"), g * (k.bq / 4 + 1))
                ));
            }
        } else {
            for u in us(tqo) {
                c.line(format!(
                    "let p{g}_{u} = ps[{}];",
                    offset("pb", g * k.bq + u)
                ));
            }
        }
        for w in us(tvo) {
            c.line(format!(
                "let vv{g}_{w} = kt[{}];",
                offset(&format!("vb{w}"), g * k.stride())
            ));
        }
        for u in us(tqo) {
            for w in us(tvo) {
                c.line(format!(
                    "o{u}_{w} = fma(vec4<f32>({}), vv{g}_{w}, o{u}_{w});",
                    p(u)
                ));
            }
        }
    }
    c.close();
    c.line("start += BK;");
    c.close();

    c.line("// The state: m and l (summed over the lanes of a row) from the score phase, acc");
    c.line("// from the output phase.");
    let ls: Vec<String> = us(tqs).map(|u| format!("l{u}")).collect();
    reduce(&mut c, &ls, "+", ds, sc);
    c.open("if lead {");
    for u in us(tqs) {
        c.open(format!("if si{u} < nq {{"));
        c.line(format!("ml_state[2u * (state0 + si{u})] = m{u};"));
        c.line(format!("ml_state[2u * (state0 + si{u}) + 1u] = l{u};"));
        c.close();
    }
    c.close();
    for u in us(tqo) {
        c.open(format!("if oi{u} < nq {{"));
        for w in us(tvo) {
            c.open(format!("if col{w} < DV {{"));
            c.line(format!(
                "acc_state[(state0 + oi{u}) * DV + col{w}] = o{u}_{w};"
            ));
            c.close();
        }
        c.close();
    }
    c.close();
    c.text
}

/// Vec4s per iteration of the score loop, and iterations per tile.
fn score_loop(k: &Block) -> (u32, u32) {
    let per_slice = k.dvp / k.ds;
    if per_slice <= 16 {
        (per_slice, 1)
    } else {
        (4, per_slice / 4)
    }
}

/// Keys per iteration of the output loop.
fn unroll_keys(k: &Block) -> u32 {
    k.bk.min(4)
}
