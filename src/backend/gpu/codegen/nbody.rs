//! The N-body attention kernel for small d (`shaders/attention_small.wgsl` and a generated
//! `main`): R queries per invocation held in registers, keys as vec4 in workgroup memory, each
//! read once per R queries; straight-line code for the coordinates and the queries, the key
//! loop unrolled several keys at a time.

use std::fmt::Write;

use super::emit::{Code, OVERFLOW, load_vec4, main_signature, offset, tiled_prelude};
use super::{Profile, Target, Variant, WORKGROUP};

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

impl Nbody {
    pub fn for_dimension(d: usize, target: &Target) -> Self {
        let dv = (d as u32).div_ceil(4);
        // Registers per query: q, acc and the tile sums, 3 DV vec4s; on llvmpipe at most 96
        // vec4s per invocation (`software_queries`: R = 16, 8, 4, 2, 1 as DV grows). LLVM's
        // compile time grows faster than the unrolled text, and the compile is what every run
        // and every test on llvmpipe pays, where the cpu backend is 4-10x faster than
        // llvmpipe in any case (3.0e8 pairs/s at d = 64). Against 192 vec4s (one R up), on
        // the 2-core CI machine, idle (2026-12-07): llvmpipe's own attention and
        // pair-statistics kernels of the catalogue compile in 66 s instead of 157 s
        // (`cargo run --release --example kernel_compile_times -- '(llvmpipe)'`, fresh Mesa
        // cache; d = 32: 8.0 s to 2.4 s, d = 64: 8.6 s to 3.8 s, d = 128: 18.3 s to 8.9 s per
        // attention kernel), for 28%, 35% and 44% fewer pairs/s on llvmpipe at d = 32, 64 and
        // 128 (`attnflow bench --backend gpu --n 4096`: 2.09e8 to 1.50e8, 7.8e7 to 5.0e7,
        // 2.3e7 to 1.3e7). At d <= 16 the shapes are unchanged.
        let (r, g) = match target.profile {
            Profile::Hardware => (4, 4),
            Profile::Software => (software_queries(dv), if dv <= 2 { 2 } else { 1 }),
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

    /// An upper bound of the loop iterations one invocation runs over `tiles` key tiles.
    pub(super) fn loop_iterations(&self, tiles: usize) -> usize {
        let per_tile = 1 + (self.tk / WORKGROUP) as usize + (self.tk / self.g) as usize;
        // The exact-maximum redo of a tile (two loops over it), at most 8 times.
        tiles * per_tile + 8 * 2 * self.tk as usize + 8
    }

    /// The generated header (every declaration of the kernel; `main` follows it).
    pub fn declarations(&self) -> String {
        tiled_prelude(
            (self.d, self.dv, self.tk, nbody_unroll(self)),
            self.queries_per_group(),
            crate::backend::gpu::shaders::ATTENTION_SMALL,
        )
    }

    /// The WGSL of the kernel for a mask variant.
    pub fn source(&self, variant: Variant) -> String {
        let mut g = Gen::new(self, variant);
        g.setup();
        g.first_key();
        for qr in 0..self.r {
            g.query(qr);
        }
        g.open_tile();
        g.key_loops();
        for qr in 0..self.r {
            g.redo_overflow(qr);
        }
        g.close_tile();
        g.write_state();
        g.c.text
    }
}

/// Queries per invocation on a software rasteriser, for both N-body shaped kernels (attention
/// and pair statistics): the largest power of two with R x DV <= 32, i.e. at most 96 vec4
/// registers for a query's 3 DV (see `Nbody::for_dimension`), and at most 16.
pub fn software_queries(dv: u32) -> u32 {
    let r = (32 / dv.max(1)).clamp(1, 16);
    1 << (31 - r.leading_zeros())
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

/// The generator of the N-body kernel's `main`, phase by phase.
///
/// Per query and key: s - m as d FMAs with -m as the innermost addend, one exp2, d FMAs into
/// the tile's accumulator and one add into its sum: 2d + 2 operations (8 at d = 3), plus the
/// key's load per R queries and the loop's counter per R x U pairs.
struct Gen {
    k: Nbody,
    variant: Variant,
    /// Keys per iteration of the key loop (`nbody_unroll`).
    unroll: u32,
    lanes: Coords,
    c: Code,
}

impl Gen {
    fn new(k: &Nbody, variant: Variant) -> Self {
        Gen {
            k: *k,
            variant,
            unroll: nbody_unroll(k),
            lanes: Coords { d: k.d, dv: k.dv },
            c: Code::new(k.declarations()),
        }
    }

    fn sw(&self, v: u32) -> &'static str {
        self.lanes.swizzle(v)
    }

    /// The score of query `qr` against key vecs `key` minus b (s - m in base 2), without
    /// ALiBi.
    fn score(&self, qr: u32, key: &dyn Fn(u32) -> String) -> String {
        self.lanes
            .dot_plus(&|v| format!("q{qr}_{v}"), key, &format!("nb{qr}"))
    }

    /// The workgroup's queries and key range.
    fn setup(&mut self) {
        let c = &mut self.c;
        main_signature(c);
        c.line("let split = wid.z % params.splits;");
        c.line("let block = (wid.z / params.splits) * chunk.groups_x + wid.x + chunk.first_block;");
        c.line("let system = wid.y + chunk.first_system;");
        c.line("let q0 = block * QB;");
        c.line("let split_start = split * params.split_keys;");
        c.line("let split_end = min(split_start + params.split_keys, params.n_keys);");
        c.line("let start0 = split_start + chunk.key_offset;");
        c.line("var key_end = min(start0 + chunk.key_count, split_end);");
        if self.variant.causal {
            c.line("// Causal: no query of this workgroup sees keys past its last query.");
            c.line("key_end = min(key_end, q0 + QB);");
        }
        c.line("let key_base = system * params.n_keys;");
        c.line("let first = chunk.first != 0u;");
        c.line("let state0 = split * params.batch * params.n_queries + system * params.n_queries;");
        if self.variant.alibi {
            c.line("let alibi2 = params.alibi_slope * LOG2E;");
        }
    }

    /// The split's first key, whose score starts the running maximum.
    fn first_key(&mut self) {
        self.c
            .line("// The split's first key: the running maximum starts at its score.");
        for v in 0..self.k.dv {
            let first = load_vec4(
                "x",
                "(key_base + min(split_start, params.n_keys - 1u)) * D",
                self.k.d,
                v,
                "0.0",
            );
            let line = format!("let first_{v} = {first}{};", self.sw(v));
            self.c.line(line);
        }
    }

    /// Query `qr`'s registers and its softmax state: the first key's score on a split's
    /// first chunk, else the state so far.
    fn query(&mut self, qr: u32) {
        let (dv, variant) = (self.k.dv, self.variant);
        let lanes = &self.lanes;
        let c = &mut self.c;
        c.line(format!("let i{qr} = q0 + lid.x + {}u;", qr * WORKGROUP));
        c.line(format!("let ok{qr} = i{qr} < params.n_queries;"));
        c.line(format!(
            "let t{qr} = system * params.n_queries + min(i{qr}, params.n_queries - 1u);"
        ));
        for v in 0..dv {
            c.line(format!(
                "let q{qr}_{v} = q[t{qr} * DV + {v}u]{};",
                lanes.swizzle(v)
            ));
            c.line(format!("var acc{qr}_{v} = {}(0.0);", lanes.ty(v)));
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
        c.else_open();
        c.line(format!(
            "let ml = ml_state[state0 + min(i{qr}, params.n_queries - 1u)];"
        ));
        c.line(format!("m{qr} = ml.x;"));
        c.line(format!("l{qr} = ml.y;"));
        for v in 0..dv {
            c.line(format!(
                "acc{qr}_{v} = acc_state[(state0 + min(i{qr}, params.n_queries - 1u)) * DV + {v}u]{};",
                lanes.swizzle(v)
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

    /// The tile loop's head: the key tile into workgroup memory, and the keys of it each
    /// query sees.
    fn open_tile(&mut self) {
        let (d, dv, r) = (self.k.d, self.k.dv, self.k.r);
        let lanes = &self.lanes;
        let c = &mut self.c;
        c.line("var start = start0;");
        c.open("loop {");
        c.open("if start >= key_end {");
        c.line("break;");
        c.close();
        c.line("let len = min(TK, key_end - start);");
        c.line("workgroupBarrier();");
        c.open("for (var e = lid.x; e < TK; e += WG) {");
        for v in 0..dv {
            c.line(format!("var key_{v} = vec4<f32>(0.0);"));
        }
        c.open("if e < len {");
        c.line("let o = (key_base + start + e) * D;");
        for v in 0..dv {
            c.line(format!("key_{v} = {};", load_vec4("x", "o", d, v, "0.0")));
        }
        c.close();
        for v in 0..dv {
            c.line(format!("tile[e * DV + {v}u] = key_{v};"));
        }
        c.close();
        c.line("workgroupBarrier();");
        c.line("// Keys of this tile each query sees.");
        for qr in 0..r {
            if self.variant.causal {
                c.line(format!(
                    "let lim{qr} = select(0u, min(len, i{qr} + 1u - start), i{qr} >= start);"
                ));
            } else {
                c.line(format!("let lim{qr} = len;"));
            }
            for v in 0..dv {
                c.line(format!("var tacc{qr}_{v} = {}(0.0);", lanes.ty(v)));
            }
            c.line(format!("var tl{qr} = 0.0;"));
        }
    }

    /// The key loop, fast where every query sees every key of the tile, else masked.
    fn key_loops(&mut self) {
        // `&` rather than `&&` (see the causal mask of the FlashAttention-2 kernel): one
        // condition, no branch per query.
        let all_full: Vec<String> = (0..self.k.r).map(|qr| format!("(lim{qr} == TK)")).collect();
        self.c.open(format!("if {} {{", all_full.join(" & ")));
        self.key_loop(false);
        self.c.else_open();
        self.key_loop(true);
        self.c.close();
    }

    fn key_loop(&mut self, masked: bool) {
        let (dv, r, unroll, alibi) = (self.k.dv, self.k.r, self.unroll, self.variant.alibi);
        if masked {
            self.c.line(format!("let top = lim{};", r - 1));
            self.c.open("for (var kk = 0u; kk < top; kk += G) {");
        } else {
            self.c.open("for (var kk = 0u; kk < TK; kk += G) {");
        }
        self.c.line("let kb = kk * DV;");
        for gi in 0..unroll {
            for v in 0..dv {
                let line = format!(
                    "let k{gi}_{v} = tile[{}]{};",
                    offset("kb", gi * dv + v),
                    self.sw(v)
                );
                self.c.line(line);
            }
            if alibi {
                self.c
                    .line(format!("let j{gi} = alibi2 * f32(start + kk + {gi}u);"));
            }
        }
        for qr in 0..r {
            for gi in 0..unroll {
                let mut s = self.score(qr, &|v| format!("k{gi}_{v}"));
                if alibi {
                    let _ = write!(s, " + j{gi}");
                }
                let c = &mut self.c;
                if masked {
                    c.line(format!(
                        "let p{qr}_{gi} = select(0.0, exp2({s}), kk + {gi}u < lim{qr});"
                    ));
                } else {
                    c.line(format!("let p{qr}_{gi} = exp2({s});"));
                }
                for v in 0..dv {
                    c.line(format!(
                        "tacc{qr}_{v} = fma({}(p{qr}_{gi}), k{gi}_{v}, tacc{qr}_{v});",
                        self.lanes.ty(v)
                    ));
                }
                c.line(format!("tl{qr} += p{qr}_{gi};"));
            }
        }
        self.c.close();
    }

    /// Query `qr`'s tile sums into its state; a term beyond 2^64 (or an overflow) redoes the
    /// tile with its exact maximum first.
    fn redo_overflow(&mut self, qr: u32) {
        let dv = self.k.dv;
        if qr == 0 {
            self.c.line(
                "// A term beyond 2^64 (or an overflow): redo the tile with its exact maximum.",
            );
        }
        self.c.open(format!("if !(tl{qr} <= {OVERFLOW}) {{"));
        self.c.line("var top = F32_LOWEST;");
        self.c
            .open(format!("for (var kk = 0u; kk < lim{qr}; kk++) {{"));
        self.tile_score(qr);
        self.c.line("top = max(top, s);");
        self.c.close();
        let c = &mut self.c;
        c.line("let delta = max(top, 0.0);");
        c.line(format!("m{qr} += delta;"));
        c.line(format!("nb{qr} -= delta;"));
        c.line("let shrink = exp2(-delta);");
        for v in 0..dv {
            c.line(format!("acc{qr}_{v} *= shrink;"));
            c.line(format!("tacc{qr}_{v} = {}(0.0);", self.lanes.ty(v)));
        }
        c.line(format!("l{qr} *= shrink;"));
        c.line(format!("tl{qr} = 0.0;"));
        c.open(format!("for (var kk = 0u; kk < lim{qr}; kk++) {{"));
        self.tile_score(qr);
        let c = &mut self.c;
        c.line("let p = exp2(s);");
        for v in 0..dv {
            c.line(format!(
                "tacc{qr}_{v} = fma({}(p), kv_{v}, tacc{qr}_{v});",
                self.lanes.ty(v)
            ));
        }
        c.line(format!("tl{qr} += p;"));
        c.close();
        c.close();
        for v in 0..dv {
            c.line(format!("acc{qr}_{v} += tacc{qr}_{v};"));
        }
        c.line(format!("l{qr} += tl{qr};"));
    }

    /// `s`: query `qr`'s score against key `kk` of the tile, minus its maximum.
    fn tile_score(&mut self, qr: u32) {
        for v in 0..self.k.dv {
            let line = format!("let kv_{v} = tile[kk * DV + {v}u]{};", self.sw(v));
            self.c.line(line);
        }
        let mut s = self.score(qr, &|v| format!("kv_{v}"));
        if self.variant.alibi {
            s.push_str(" + alibi2 * f32(start + kk)");
        }
        self.c.line(format!("let s = {s};"));
    }

    fn close_tile(&mut self) {
        self.c.line("start += TK;");
        self.c.close();
    }

    /// Each query's partial state: (m, l) and acc.
    fn write_state(&mut self) {
        let c = &mut self.c;
        for qr in 0..self.k.r {
            c.open(format!("if ok{qr} {{"));
            c.line(format!("let s = state0 + i{qr};"));
            c.line(format!("ml_state[s] = vec2<f32>(m{qr}, l{qr});"));
            for v in 0..self.k.dv {
                c.line(format!(
                    "acc_state[s * DV + {v}u] = {};",
                    self.lanes.pad(v, &format!("acc{qr}_{v}"))
                ));
            }
            c.close();
        }
        c.close();
    }
}
