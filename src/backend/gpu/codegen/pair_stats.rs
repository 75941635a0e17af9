//! The pair-statistics kernel behind the observables (`shaders/pair_stats.wgsl` and a
//! generated `main`): per token, the online softmax of beta <x_i, x_j> (m, l), the smallest
//! cosine, and the sums of cosines and scores over the keys; N-body shaped for every d.

use super::emit::{Code, OVERFLOW, load_vec4, main_signature, offset, tiled_prelude};
use super::{Profile, Target, WORKGROUP};

/// The largest key tile of the pair kernel on every profile: WebGPU's default
/// `maxComputeWorkgroupStorageSize`.
pub const PAIR_TILE_BYTES: u32 = 16384;

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
            // As the N-body kernel (codegen/nbody.rs: compile time): at most 96 vec4s.
            (Profile::Software, _) => super::nbody::software_queries(dv),
        };
        // The key tile fits WebGPU's default 16 KiB whatever the adapter offers: one kernel
        // text per d for every hardware profile instead of two, and llvmpipe's the same as
        // theirs where it takes one token per invocation (d > 128), so a GPU and the catalogue
        // test compile fewer; for at most twice the tiles (a barrier each) in an observable
        // that runs at metrics times only, not every step.
        let bytes = target.workgroup_bytes.min(PAIR_TILE_BYTES);
        let fit = (bytes / (16 * dv + 4)).clamp(1, 256);
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

    /// The generated header (every declaration of the kernel; `main` follows it).
    pub fn declarations(&self) -> String {
        tiled_prelude(
            (self.d, self.dv, self.tk, self.g),
            self.queries_per_group(),
            crate::backend::gpu::shaders::PAIR_STATS,
        )
    }

    /// The WGSL of the kernel.
    pub fn source(&self) -> String {
        let mut g = Gen {
            k: *self,
            lanes: Lanes::new(self.d),
            c: Code::new(self.declarations()),
        };
        g.setup();
        for qr in 0..self.r {
            g.query(qr);
            g.query_state(qr);
        }
        g.load_tile();
        g.key_loops();
        for qr in 0..self.r {
            g.redo_overflow(qr);
        }
        g.c.line("start += TK;");
        g.c.close();
        for qr in 0..self.r {
            g.write_row(qr);
        }
        g.c.close();
        g.c.text
    }
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

/// The generator of the pair-statistics kernel's `main`, phase by phase.
struct Gen {
    k: PairKernel,
    lanes: Lanes,
    c: Code,
}

impl Gen {
    /// `dot(a{v}, b{v}) + ...` over the token's vectors.
    fn dots(&self, a: &dyn Fn(u32) -> String, b: &dyn Fn(u32) -> String) -> String {
        let dots: Vec<String> = (0..self.k.dv)
            .map(|v| format!("dot({}, {})", a(v), b(v)))
            .collect();
        dots.join(" + ")
    }

    /// The cosine of query qr against the key at tile index `at` into `name`.
    fn cosine(&mut self, qr: u32, at: &str, name: &str) {
        if self.k.unrolled() {
            let sum = self.dots(&|v| format!("xi{qr}_{v}"), &|v| {
                format!("tile[({at}) * DV + {v}u]{}", self.lanes.swizzle(v))
            });
            self.c.line(format!("let {name} = {sum};"));
        } else {
            let c = &mut self.c;
            c.line(format!("var {name} = 0.0;"));
            c.open("for (var v = 0u; v < DV; v++) {");
            c.line(format!("{name} += dot(xi{qr}[v], tile[({at}) * DV + v]);"));
            c.close();
        }
    }

    /// The workgroup's tokens and key range.
    fn setup(&mut self) {
        let c = &mut self.c;
        main_signature(c);
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
    }

    /// Token qr's unit vector in registers and its norm.
    fn query(&mut self, qr: u32) {
        let (d, dv) = (self.k.d, self.k.dv);
        self.c
            .line(format!("let i{qr} = q0 + lid.x + {}u;", qr * WORKGROUP));
        self.c.line(format!("let ok{qr} = i{qr} < n;"));
        self.c
            .line(format!("let t{qr} = (key_base + min(i{qr}, n - 1u)) * D;"));
        if self.k.unrolled() {
            for v in 0..dv {
                let line = format!(
                    "var xi{qr}_{v} = {}{};",
                    load_vec4("x", &format!("t{qr}"), d, v, "0.0"),
                    self.lanes.swizzle(v)
                );
                self.c.line(line);
            }
            let n2 = self.dots(&|v| format!("xi{qr}_{v}"), &|v| format!("xi{qr}_{v}"));
            self.c.line(format!("let n{qr} = sqrt({n2});"));
            for v in 0..dv {
                self.c.line(format!("xi{qr}_{v} /= n{qr};"));
            }
        } else {
            let c = &mut self.c;
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
    }

    /// Token qr's statistics so far: the first key's score on a split's first chunk, else
    /// the state.
    fn query_state(&mut self, qr: u32) {
        let c = &mut self.c;
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
        c.else_open();
        c.line(format!("let row = stats[state0 + min(i{qr}, n - 1u)];"));
        c.line(format!("m{qr} = row.m;"));
        c.line(format!("l{qr} = row.l;"));
        c.line(format!("mn{qr} = row.min_cos;"));
        c.line(format!("sc{qr} = row.sum_cos;"));
        c.line(format!("sd{qr} = row.sum_dot / n{qr};"));
        c.close();
        c.line(format!("var nm{qr} = -m{qr};"));
    }

    /// The tile loop's head: the key tile's unit vectors and norms into workgroup memory.
    fn load_tile(&mut self) {
        let (d, dv) = (self.k.d, self.k.dv);
        let c = &mut self.c;
        c.line("var start = start0;");
        c.open("loop {");
        c.open("if start >= key_end {");
        c.line("break;");
        c.close();
        c.line("let len = min(TK, key_end - start);");
        c.line("workgroupBarrier();");
        c.open("for (var e = lid.x; e < TK; e += WG) {");
        if self.k.unrolled() {
            for v in 0..dv {
                c.line(format!("var key_{v} = vec4<f32>(0.0);"));
            }
            c.line("var norm = 0.0;");
            c.open("if e < len {");
            c.line("let o = (key_base + start + e) * D;");
            for v in 0..dv {
                c.line(format!("key_{v} = {};", load_vec4("x", "o", d, v, "0.0")));
            }
            let n2: Vec<String> = (0..dv).map(|v| format!("dot(key_{v}, key_{v})")).collect();
            c.line(format!("norm = sqrt({});", n2.join(" + ")));
            for v in 0..dv {
                c.line(format!("key_{v} /= norm;"));
            }
            c.close();
            for v in 0..dv {
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
        for qr in 0..self.k.r {
            c.line(format!("var tl{qr} = 0.0;"));
        }
    }

    /// The key loop, fast over a whole tile, else masked.
    fn key_loops(&mut self) {
        self.c.open("if len == TK {");
        self.key_loop(false);
        self.c.else_open();
        self.key_loop(true);
        self.c.close();
    }

    fn key_loop(&mut self, masked: bool) {
        let PairKernel { dv, r, g, .. } = self.k;
        let unrolled = self.k.unrolled();
        self.c.open("for (var kk = 0u; kk < len; kk += G) {");
        if unrolled {
            self.c.line("let kb = kk * DV;");
        }
        for gi in 0..g {
            self.c
                .line(format!("let kn{gi} = tile_norm[{}];", offset("kk", gi)));
            if unrolled {
                for v in 0..dv {
                    let line = format!(
                        "let k{gi}_{v} = tile[{}]{};",
                        offset("kb", gi * dv + v),
                        self.lanes.swizzle(v)
                    );
                    self.c.line(line);
                }
            }
        }
        for qr in 0..r {
            for gi in 0..g {
                if unrolled {
                    let sum = self.dots(&|v| format!("xi{qr}_{v}"), &|v| format!("k{gi}_{v}"));
                    self.c.line(format!("let c{qr}_{gi} = {sum};"));
                } else {
                    self.cosine(qr, &format!("kk + {gi}u"), &format!("c{qr}_{gi}"));
                }
                self.pair(qr, gi, masked);
            }
        }
        self.c.close();
    }

    /// The statistics of token qr and key gi of the iteration, from their cosine.
    fn pair(&mut self, qr: u32, gi: u32, masked: bool) {
        let c = &mut self.c;
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

    /// Token qr's tile sum into l; beyond 2^64 (or an overflow) the tile is redone with its
    /// exact maximum first.
    fn redo_overflow(&mut self, qr: u32) {
        self.c.open(format!("if !(tl{qr} <= {OVERFLOW}) {{"));
        self.c.line("var top = F32_LOWEST;");
        self.c.open("for (var kk = 0u; kk < len; kk++) {");
        self.cosine(qr, "kk", "cs");
        self.c.line(format!(
            "top = max(top, fma(cs * tile_norm[kk], bn{qr}, nm{qr}));"
        ));
        self.c.close();
        self.c.line("let delta = max(top, 0.0);");
        self.c.line(format!("nm{qr} -= delta;"));
        self.c.line(format!("l{qr} *= exp2(-delta);"));
        self.c.line(format!("tl{qr} = 0.0;"));
        self.c.open("for (var kk = 0u; kk < len; kk++) {");
        self.cosine(qr, "kk", "cs");
        self.c.line(format!(
            "tl{qr} += exp2(fma(cs * tile_norm[kk], bn{qr}, nm{qr}));"
        ));
        self.c.close();
        self.c.close();
        self.c.line(format!("l{qr} += tl{qr};"));
    }

    /// Token qr's row of statistics, without its own cosine.
    fn write_row(&mut self, qr: u32) {
        self.c.open(format!("if ok{qr} {{"));
        // The self term of the cosine sum, computed as in the loop.
        if self.k.unrolled() {
            let sum = self.dots(&|v| format!("xi{qr}_{v}"), &|v| format!("xi{qr}_{v}"));
            self.c.line(format!("var self_cos = {sum};"));
        } else {
            let c = &mut self.c;
            c.line("var self_cos = 0.0;");
            c.open("for (var v = 0u; v < DV; v++) {");
            c.line(format!("self_cos += dot(xi{qr}[v], xi{qr}[v]);"));
            c.close();
        }
        let c = &mut self.c;
        c.line(format!(
            "let sees_self = (i{qr} >= start0) & (i{qr} < key_end);"
        ));
        c.line(format!(
            "stats[state0 + i{qr}] = PairStats(-nm{qr}, l{qr}, mn{qr}, sc{qr} - select(0.0, self_cos, sees_self), sd{qr} * n{qr});"
        ));
        c.close();
    }
}
