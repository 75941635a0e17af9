//! The FlashAttention-2 kernel for larger d (`shaders/attention_block.wgsl` and a generated
//! `main`): a block of BQ queries per workgroup, a key tile of BK keys in workgroup memory
//! that doubles as the value tile; each invocation computes a small block of scores as outer
//! products over d and a slice of the output for several queries; row maxima by subgroup
//! shuffles where the adapter has them, or through workgroup memory.

use super::emit::{Code, main_signature, offset, plus, prelude};
use super::{Reduce, Variant, WORKGROUP};
use crate::backend::gpu::shaders;

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
        let (_, score_iters) = self.score_loop();
        if score_iters > 1 {
            trips.push(score_iters);
        }
        trips.push(self.bk / self.unroll_keys());
        trips
    }

    /// An upper bound of the loop iterations one invocation runs over `tiles` key tiles.
    pub(super) fn loop_iterations(&self, tiles: usize) -> usize {
        let load = (self.bk * self.dvp).div_ceil(WORKGROUP) as usize;
        let scores = self.score_loop().1 as usize;
        let values = (self.bk / self.unroll_keys()) as usize;
        tiles * (1 + load + scores + values) + 8 + 2 * self.dvp as usize
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

    /// Vec4s per iteration of the score loop, and iterations per tile.
    fn score_loop(&self) -> (u32, u32) {
        let per_slice = self.dvp / self.ds;
        if per_slice <= 16 {
            (per_slice, 1)
        } else {
            (4, per_slice / 4)
        }
    }

    /// Keys per iteration of the output loop.
    fn unroll_keys(&self) -> u32 {
        self.bk.min(4)
    }

    /// The WGSL of the kernel for a mask variant.
    pub fn source(&self, variant: Variant) -> String {
        let mut g = Gen {
            k: *self,
            variant,
            c: Code::new(header(self)),
        };
        g.setup();
        g.load_queries();
        g.score_lanes();
        g.output_lanes();
        g.load_state();
        g.load_keys();
        g.scores();
        g.softmax_tile();
        g.store_p();
        g.output_phase();
        g.write_state();
        g.c.text
    }
}

/// The generated header: the block's constants, common.wgsl, the template and the
/// declarations that depend on the shape (`x` as vec4s when d is a multiple of 4, p in quads,
/// the reduction's scratch), `enable subgroups;` first where shuffles reduce.
pub(super) fn header(k: &Block) -> String {
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
    let mut template = shaders::ATTENTION_BLOCK.to_string();
    template.push_str(if k.d.is_multiple_of(4) {
        "// Keys (and values), [batch, n_keys, D] as vec4s (D is a multiple of 4).\n\
         @group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;\n"
    } else {
        "// Keys (and values), [batch, n_keys, D].\n\
         @group(0) @binding(3) var<storage, read> x: array<f32>;\n"
    });
    if k.quads() {
        constants.push(("BQ4", k.bq / 4));
        constants.push(("PSTR", k.bq / 4 + 1));
        template.push_str("var<workgroup> ps: array<vec4<f32>, PSTR * BK>;\n");
    } else {
        template.push_str("var<workgroup> ps: array<f32, BQ * BK>;\n");
    }
    let workgroup_reduce = k.reduce == Reduce::Workgroup;
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
        text.insert_str(0, shaders::ENABLE_SUBGROUPS);
    }
    text
}

fn us(n: u32) -> std::ops::Range<u32> {
    0..n
}

const COMP: [&str; 4] = ["x", "y", "z", "w"];

/// The generator of the FlashAttention-2 kernel's `main`, phase by phase.
///
/// With p in quads the rows are interleaved (shared-memory banks): the score phase's lane
/// srow holds rows srow + SR u, so that the lanes of a warp read query rows 1 apart (STR
/// vec4s, distinct banks) rather than TQS apart (8 rows of 17 vec4s are 4 x 32 words: the
/// same banks). Quad j of p holds rows s + SR (4 q + i), i < 4, for j = s + SR q; the output
/// phase's lane orow holds quads orow + RG q. The rows of the p tile (one per key) are PSTR =
/// BQ4 + 1 vec4s apart, so that the score lanes of one quad (keys kg) store to different
/// banks.
struct Gen {
    k: Block,
    variant: Variant,
    c: Code,
}

impl Gen {
    fn quads(&self) -> bool {
        self.k.quads()
    }

    /// The block row of the score lane's row u.
    fn score_row(&self, u: u32) -> String {
        if self.quads() {
            offset("srow", self.k.sr * u)
        } else {
            format!("srow * {}u + {u}u", self.k.tqs())
        }
    }

    /// The workgroup's block of queries, its split and its key range.
    fn setup(&mut self) {
        let c = &mut self.c;
        main_signature(c);
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
        if self.variant.causal {
            c.line("key_end = min(key_end, q0 + BQ);");
        }
        c.line("let key_base = system * params.n_keys;");
        c.line("let first = chunk.first != 0u;");
        c.line("let state0 = split * params.batch * nq + system * nq;");
        if self.variant.alibi {
            c.line("let alibi2 = params.alibi_slope * LOG2E;");
        }
    }

    /// The query block into workgroup memory.
    fn load_queries(&mut self) {
        let c = &mut self.c;
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
    }

    /// The score phase's lanes: their rows (with m and their part of l), keys and places in
    /// the p tile.
    fn score_lanes(&mut self) {
        let (tqs, tks, ds, sc) = (self.k.tqs(), self.k.tks(), self.k.ds, self.k.sc);
        let quads = self.quads();
        let rows: Vec<String> = us(tqs).map(|u| self.score_row(u)).collect();
        let c = &mut self.c;
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
            c.line(format!("let si{u} = q0 + {};", rows[u as usize]));
            c.line(format!("let qb{u} = ({}) * STR;", rows[u as usize]));
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
    }

    /// The output phase's lanes: their rows (or quads of rows), vec4 columns and output
    /// registers.
    fn output_lanes(&mut self) {
        let (tqo, tvo, cg, sr, rg) = (self.k.tqo(), self.k.tvo(), self.k.cg, self.k.sr, self.k.rg);
        let quads = self.quads();
        let c = &mut self.c;
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
    }

    /// The state so far, unless this is a split's first chunk.
    fn load_state(&mut self) {
        let (tqs, tqo, tvo) = (self.k.tqs(), self.k.tqo(), self.k.tvo());
        let c = &mut self.c;
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
    }

    /// The tile loop's head and the key tile into workgroup memory.
    fn load_keys(&mut self) {
        let (d, dv) = (self.k.d, self.k.dv);
        let c = &mut self.c;
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
        if d.is_multiple_of(4) {
            c.open("if v < DV {");
            c.line("val = x[(key_base + start + key) * DV + v];");
            c.close();
        } else {
            c.line("let o = (key_base + start + key) * D + 4u * v;");
            token_vec(c, "val", "o", d - 4 * (dv - 1));
        }
        c.close();
        c.line("kt[key * STR + v] = val;");
        c.close();
        c.line("workgroupBarrier();");
    }

    /// The score phase: each lane's block of scores over its slice of d, the slices summed.
    fn scores(&mut self) {
        let (tqs, tks, ds) = (self.k.tqs(), self.k.tks(), self.k.ds);
        let (score_vecs, score_iters) = self.k.score_loop();
        for u in us(tqs) {
            for w in us(tks) {
                self.c.line(format!("var s{u}_{w} = 0.0;"));
            }
        }
        if score_iters == 1 {
            self.score_body(None);
        } else {
            self.c.open(format!(
                "for (var zb = 0u; zb < {}u; zb += {score_vecs}u) {{",
                score_iters * score_vecs
            ));
            self.score_body(Some("zb"));
            self.c.close();
        }
        let scores: Vec<String> = us(tqs)
            .flat_map(|u| us(tks).map(move |w| format!("s{u}_{w}")))
            .collect();
        if ds > 1 {
            self.c.line("// Sum the d-slices.");
            self.reduce(&scores, "+", 1, ds);
        }
    }

    /// One iteration (or all, unrolled) of the score loop: outer products of the query and
    /// key vec4s, from index `base` on.
    fn score_body(&mut self, base: Option<&str>) {
        let (tqs, tks, ds) = (self.k.tqs(), self.k.tks(), self.k.ds);
        let (score_vecs, _) = self.k.score_loop();
        let c = &mut self.c;
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
    }

    /// The softmax of the tile, without masks when every row sees every key of the tile.
    fn softmax_tile(&mut self) {
        let (tqs, tks) = (self.k.tqs(), self.k.tks());
        for u in us(tqs) {
            self.c.line(format!("var top{u}: f32;"));
            self.c.line(format!("var alpha{u}: f32;"));
            for w in us(tks) {
                self.c.line(format!("var p{u}_{w}: f32;"));
            }
        }
        let full = if self.variant.causal {
            "len == BK && start + BK <= q0 + 1u"
        } else {
            "len == BK"
        };
        self.c.open(format!("if {full} {{"));
        self.softmax(false);
        self.c.else_open();
        self.softmax(true);
        self.c.close();
    }

    /// m moves once, p = exp2(s - m) and this lane's part of l.
    fn softmax(&mut self, masked: bool) {
        let (tqs, tks, ds, sc) = (self.k.tqs(), self.k.tks(), self.k.ds, self.k.sc);
        let variant = self.variant;
        let c = &mut self.c;
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
        self.reduce(&tops, "max", ds, sc);
        let c = &mut self.c;
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
    }

    /// p and the rows' rescaling factors into workgroup memory for the output phase.
    fn store_p(&mut self) {
        let (tqs, tks, sr) = (self.k.tqs(), self.k.tks(), self.k.sr);
        let quads = self.quads();
        let rows: Vec<String> = us(tqs).map(|u| self.score_row(u)).collect();
        let c = &mut self.c;
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
            c.line(format!("alpha[{}] = alpha{u};", rows[u as usize]));
        }
        c.close();
        c.close();
        c.line("workgroupBarrier();");
    }

    /// The output phase: rescale the output by alpha, then add p times the value tile.
    fn output_phase(&mut self) {
        let (tqo, tvo) = (self.k.tqo(), self.k.tvo());
        let uk = self.k.unroll_keys();
        let quads = self.quads();
        let c = &mut self.c;
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
            self.output_key(g);
        }
        let c = &mut self.c;
        c.close();
        c.line("start += BK;");
        c.close();
    }

    /// Key `kk + g` of the output loop: its p for this lane's rows and its value vec4s.
    fn output_key(&mut self, g: u32) {
        let k = self.k;
        let (tqo, tvo) = (k.tqo(), k.tvo());
        let quads = self.quads();
        let c = &mut self.c;
        let p = |u: u32| {
            if quads {
                format!("p{g}_{}.{}", u / 4, COMP[(u % 4) as usize])
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

    /// The state: m and l (l summed over the lanes of a row) from the score phase, acc from
    /// the output phase.
    fn write_state(&mut self) {
        let (tqs, tqo, tvo, ds, sc) = (
            self.k.tqs(),
            self.k.tqo(),
            self.k.tvo(),
            self.k.ds,
            self.k.sc,
        );
        self.c.line(
            "// The state: m and l (summed over the lanes of a row) from the score phase, acc",
        );
        self.c.line("// from the output phase.");
        let ls: Vec<String> = us(tqs).map(|u| format!("l{u}")).collect();
        self.reduce(&ls, "+", ds, sc);
        let c = &mut self.c;
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
    }

    /// Reduces `values` over the lanes that share a row: `op` is "+" or "max"; `stride` the
    /// lane distance of the first step, `lanes` how many lanes.
    fn reduce(&mut self, values: &[String], op: &str, stride: u32, lanes: u32) {
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
        let c = &mut self.c;
        if self.k.reduce == Reduce::Workgroup {
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
    }
}

/// vec4 v of the token at flat offset o (v < DV) into `target`, zero past D (`last_lanes`
/// coordinates in the last vec4).
fn token_vec(c: &mut Code, target: &str, o: &str, last_lanes: u32) {
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
}
