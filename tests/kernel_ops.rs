//! An instruction budget without a GPU: every attention and pair-statistics specialisation is
//! compiled to SPIR-V with naga the way wgpu's Vulkan backend does (trusted: no bounds
//! clamping, no loop bounding, no division guards; and checked, for comparison), and the
//! operations its key loop executes per pair interaction are counted.
//!
//! Counting: arithmetic, comparison, selection and extended (exp2, fma, min, max, sqrt)
//! instructions count once per component of their result (a vec4 fma is 4; a vec4 dot
//! product is 4: a multiply and three fused adds); loads and stores of workgroup, storage and
//! uniform memory count 1 each (a vec4 load is one instruction on a GPU); reads and writes of
//! function-local variables are registers and count 0, as do composite constructs, extracts
//! and shuffles; a conditional branch counts 1. Pairs per loop iteration are the exp2
//! instructions in it (one per pair).

use attnflow::gpu::codegen::{
    AttentionKernel, Block, PairKernel, Profile, Target, Variant, nbody_unroll,
};
use wgpu::naga;

const OP_EXT_INST: u32 = 12;
const OP_TYPE_INT: u32 = 21;
const OP_TYPE_FLOAT: u32 = 22;
const OP_TYPE_VECTOR: u32 = 23;
const OP_TYPE_ARRAY: u32 = 28;
const OP_TYPE_POINTER: u32 = 32;
const OP_CONSTANT: u32 = 43;
const OP_VARIABLE: u32 = 59;
const OP_LOAD: u32 = 61;
const OP_STORE: u32 = 62;
const OP_ACCESS_CHAIN: u32 = 65;
const OP_LOOP_MERGE: u32 = 246;
const OP_BRANCH: u32 = 249;
const OP_LABEL: u32 = 248;
const OP_BRANCH_CONDITIONAL: u32 = 250;
const OP_DOT: u32 = 148;
const GLSL_EXP2: u32 = 29;
const STORAGE_FUNCTION: u32 = 7;

/// Arithmetic, logic, conversion and subgroup opcodes (SPIR-V 1.3 numbering) that count per
/// component.
fn is_arithmetic(op: u32) -> bool {
    matches!(op, 109..=124 | 126..=147 | 149..=160 | 164..=202 | 333..=366)
}

const OP_IADD: u32 = 128;

#[derive(Debug, Default, Clone)]
struct LoopCount {
    /// Operations in the loop's body, its nested loops excluded.
    ops: u64,
    exp2: u64,
    nested: usize,
    /// Loops directly inside this one, in order.
    children: Vec<usize>,
}

#[derive(Debug)]
struct Report {
    loops: Vec<LoopCount>,
    /// Accesses into function-local arrays with an index that is not a constant.
    dynamic_private_index: usize,
}

fn spirv(source: &str, checked: bool) -> Vec<u32> {
    let source = attnflow::gpu::shaders::for_naga(source);
    let module = naga::front::wgsl::parse_str(&source).expect("parses");
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::SUBGROUP,
    )
    .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
    .subgroup_operations(naga::valid::SubgroupOperationSet::all())
    .validate(&module)
    .expect("validates");
    let policy = if checked {
        naga::proc::BoundsCheckPolicy::Restrict
    } else {
        naga::proc::BoundsCheckPolicy::Unchecked
    };
    let options = naga::back::spv::Options {
        lang_version: (1, 3),
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: policy,
            buffer: naga::proc::BoundsCheckPolicy::Unchecked,
            image_load: policy,
            binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
        },
        force_loop_bounding: checked,
        emit_int_div_checks: checked,
        ..Default::default()
    };
    naga::back::spv::write_vec(
        &module,
        &info,
        &options,
        Some(&naga::back::spv::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: "main".into(),
        }),
    )
    .expect("writes SPIR-V")
}

/// Integer additions of a constant whose result is only ever an access-chain index: a GPU
/// folds them into the load's address offset, so they cost nothing.
fn folded_offsets(words: &[u32]) -> std::collections::HashSet<u32> {
    use std::collections::{HashMap, HashSet};
    let mut constants = HashSet::new();
    let mut candidates = HashSet::new();
    let mut other_use: HashMap<u32, bool> = HashMap::new();
    let mut i = 5;
    while i < words.len() {
        let (len, op) = ((words[i] >> 16) as usize, words[i] & 0xffff);
        let w = &words[i..i + len];
        if op == OP_CONSTANT {
            constants.insert(w[2]);
        }
        if op == OP_IADD && (constants.contains(&w[3]) || constants.contains(&w[4])) {
            candidates.insert(w[2]);
        }
        // The id operands that use a value (not types, results or literals).
        let operands: &[u32] = match op {
            OP_EXT_INST => &w[5..],
            OP_STORE => &w[2..],
            OP_BRANCH_CONDITIONAL => &w[1..2],
            _ if is_arithmetic(op) || (79..=82).contains(&op) || op == OP_DOT => &w[3..],
            _ => &w[..0],
        };
        for id in operands {
            if candidates.contains(id) {
                other_use.insert(*id, true);
            }
        }
        i += len;
    }
    candidates
        .into_iter()
        .filter(|id| !other_use.contains_key(id))
        .collect()
}

/// How a block ends.
#[derive(Debug, Clone, Copy)]
enum Term {
    Branch(u32),
    Cond(u32, u32),
    Other,
}

#[derive(Debug, Clone)]
struct BlockInfo {
    label: u32,
    ops: u64,
    exp2: u64,
    term: Term,
    /// (merge, continue) of a loop header.
    loop_merge: Option<(u32, u32)>,
}

/// Counts the operations of every loop of the shader's one function along its fast path:
/// at a selection the first (true) branch, which the generator makes the common case, unless
/// it leaves the loop; nested loops are skipped (each has its own count).
fn count(words: &[u32]) -> Report {
    use std::collections::{HashMap, HashSet};
    let folded = folded_offsets(words);
    let mut components: HashMap<u32, u64> = HashMap::new();
    let mut arrays: HashSet<u32> = HashSet::new();
    // Pointer type -> (storage class, pointee); variable or access chain -> storage class.
    let mut pointer_types: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut pointers: HashMap<u32, u32> = HashMap::new();
    let mut private_arrays: HashSet<u32> = HashSet::new();
    let mut constants: HashSet<u32> = HashSet::new();
    let mut blocks: Vec<BlockInfo> = Vec::new();
    let mut dynamic_private_index = 0;
    // Result id -> result type, for every instruction that has both.
    let mut types: HashMap<u32, u32> = HashMap::new();
    let mut i = 5;
    while i < words.len() {
        let (len, op) = ((words[i] >> 16) as usize, words[i] & 0xffff);
        let w = &words[i..i + len];
        let result_components =
            |components: &HashMap<u32, u64>| components.get(&w[1]).copied().unwrap_or(1);
        let mut ops = 0u64;
        let mut exp2 = 0u64;
        if len >= 3
            && (op == OP_EXT_INST
                || op == OP_LOAD
                || op == OP_ACCESS_CHAIN
                || is_arithmetic(op)
                || (79..=82).contains(&op))
        {
            types.insert(w[2], w[1]);
        }
        match op {
            OP_TYPE_INT | OP_TYPE_FLOAT => {
                components.insert(w[1], 1);
            }
            OP_TYPE_VECTOR => {
                components.insert(w[1], u64::from(w[3]));
            }
            OP_TYPE_ARRAY => {
                arrays.insert(w[1]);
            }
            OP_TYPE_POINTER => {
                pointer_types.insert(w[1], (w[2], w[3]));
            }
            OP_CONSTANT => {
                constants.insert(w[2]);
            }
            OP_VARIABLE => {
                let class = w[3];
                pointers.insert(w[2], class);
                if class == STORAGE_FUNCTION
                    && pointer_types
                        .get(&w[1])
                        .is_some_and(|(_, pointee)| arrays.contains(pointee))
                {
                    private_arrays.insert(w[2]);
                }
            }
            OP_ACCESS_CHAIN => {
                let base = w[3];
                if let Some(&class) = pointers.get(&base) {
                    pointers.insert(w[2], class);
                }
                if private_arrays.contains(&base) && w[4..].iter().any(|ix| !constants.contains(ix))
                {
                    dynamic_private_index += 1;
                }
            }
            OP_LOAD if pointers.get(&w[3]).is_some_and(|&c| c != STORAGE_FUNCTION) => ops = 1,
            OP_STORE if pointers.get(&w[1]).is_some_and(|&c| c != STORAGE_FUNCTION) => ops = 1,
            OP_EXT_INST => {
                ops = result_components(&components);
                if w[4] == GLSL_EXP2 {
                    exp2 = 1;
                }
            }
            OP_DOT => {
                // The operands' width: a multiply and width - 1 fused adds.
                ops = types
                    .get(&w[3])
                    .and_then(|t| components.get(t))
                    .copied()
                    .unwrap_or(4);
            }
            OP_BRANCH_CONDITIONAL => {
                ops = 1;
                if let Some(b) = blocks.last_mut() {
                    b.term = Term::Cond(w[2], w[3]);
                }
            }
            OP_BRANCH => {
                if let Some(b) = blocks.last_mut() {
                    b.term = Term::Branch(w[1]);
                }
            }
            OP_LOOP_MERGE => {
                if let Some(b) = blocks.last_mut() {
                    b.loop_merge = Some((w[1], w[2]));
                }
            }
            OP_LABEL => blocks.push(BlockInfo {
                label: w[1],
                ops: 0,
                exp2: 0,
                term: Term::Other,
                loop_merge: None,
            }),
            OP_IADD if folded.contains(&w[2]) => {}
            _ if is_arithmetic(op) => ops = result_components(&components),
            _ => {}
        }
        if let Some(b) = blocks.last_mut() {
            b.ops += ops;
            b.exp2 += exp2;
        }
        i += len;
    }
    let index: HashMap<u32, usize> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| (b.label, i))
        .collect();
    let headers: Vec<usize> = (0..blocks.len())
        .filter(|&i| blocks[i].loop_merge.is_some())
        .collect();
    let loop_of: HashMap<usize, usize> = headers.iter().enumerate().map(|(l, &h)| (h, l)).collect();
    let loops = headers
        .iter()
        .map(|&h| {
            let (merge, _) = blocks[h].loop_merge.expect("a header");
            let mut out = LoopCount::default();
            let mut cur = h;
            for _ in 0..blocks.len() {
                let b = &blocks[cur];
                if let (true, Some((nested_merge, _))) = (cur != h, b.loop_merge) {
                    // A nested loop: counted on its own; go on after it.
                    out.nested += 1;
                    out.children.push(loop_of[&cur]);
                    cur = index[&nested_merge];
                    continue;
                }
                out.ops += b.ops;
                out.exp2 += b.exp2;

                // A target that leaves the loop: its merge, or an empty block branching to it.
                let leaves = |t: u32| {
                    t == merge
                        || index.get(&t).is_some_and(|&i| {
                            matches!(blocks[i].term, Term::Branch(m) if m == merge)
                                && blocks[i].ops == 0
                        })
                };
                let next = match b.term {
                    Term::Branch(t) => t,
                    Term::Cond(a, other) => {
                        if leaves(a) {
                            other
                        } else {
                            a
                        }
                    }
                    Term::Other => break,
                };
                if next == blocks[h].label || next == merge {
                    break;
                }
                cur = index[&next];
            }
            out
        })
        .collect();
    Report {
        loops,
        dynamic_private_index,
    }
}

/// The key loop of an N-body kernel: the first innermost loop with the most exp2 (one per
/// pair): the fast path, which the generator emits before the masked one and the redo of a
/// tile. Returns its operations per pair and the loop.
fn nbody_key_loop(report: &Report) -> (f64, &LoopCount) {
    let innermost = report.loops.iter().filter(|l| l.nested == 0);
    let most = innermost.clone().map(|l| l.exp2).max().expect("loops");
    let fast = innermost
        .clone()
        .find(|l| l.exp2 == most)
        .expect("a key loop");
    (fast.ops as f64 / fast.exp2 as f64, fast)
}

/// Operations per pair of the Block kernel's tile loop: the loop with exp2 (the scores of a
/// tile), with its nested loops (tile load, score slices, output) weighted by their trips.
fn block_ops_per_pair(report: &Report, block: &Block) -> f64 {
    let (tile, l) = report
        .loops
        .iter()
        .enumerate()
        .filter(|(_, l)| l.exp2 > 0)
        .max_by_key(|(_, l)| l.exp2)
        .expect("a tile loop");
    let trips = block.loop_trips();
    assert_eq!(
        l.children.len(),
        trips.len(),
        "tile loop {tile}: nested loops {:?}",
        l.children
    );
    let nested: f64 = l
        .children
        .iter()
        .zip(trips)
        .map(|(&c, t)| report.loops[c].ops as f64 * t as f64)
        .sum();
    let pairs = (block.bq * block.bk) as f64 / 64.0;
    (l.ops as f64 + nested) / pairs
}

#[test]
fn small_d_key_loop_stays_within_the_instruction_budget() {
    for target in [Target::NVIDIA, Target::LLVMPIPE] {
        for d in 2..=8usize {
            let AttentionKernel::Nbody(k) = AttentionKernel::for_dimension(d, &target) else {
                panic!("d = {d} is N-body on every target");
            };
            let kernel = AttentionKernel::Nbody(k);
            for variant in [
                Variant::default(),
                Variant {
                    causal: true,
                    alibi: false,
                },
            ] {
                // The code this target gets (a causal kernel may carry ALiBi).
                let variant = variant.for_kernel(&kernel, &target);
                let trusted = count(&spirv(&kernel.source(variant), false));
                let checked = count(&spirv(&kernel.source(variant), true));
                let (per_pair, key_loop) = nbody_key_loop(&trusted);
                let (per_pair_checked, _) = nbody_key_loop(&checked);
                // 2d + 2 (d FMAs for s - m, exp2, d FMAs and an add) and the key loads
                // and loop counter; with ALiBi's code one add more per pair (its key's term,
                // a convert and a scale, is shared by the R queries).
                let budget = 2.0 * d as f64 + 3.0 + if variant.alibi { 1.0 } else { 0.0 };
                eprintln!(
                    "{:?} d = {d} (R = {}, G = {}) {variant:?}: {per_pair:.2} ops per pair \
                     trusted, {per_pair_checked:.2} checked (budget {budget})",
                    target.profile, k.r, k.g
                );
                assert!(
                    per_pair <= budget,
                    "d = {d}: {per_pair:.2} operations per pair > {budget}"
                );
                assert_eq!(key_loop.nested, 0, "d = {d}: a loop inside the key loop");
                assert_eq!(
                    key_loop.exp2,
                    u64::from(k.r * nbody_unroll(&k)),
                    "pairs per iteration"
                );
                assert_eq!(
                    trusted.dynamic_private_index, 0,
                    "d = {d}: dynamic index into a private array"
                );
                assert!(
                    per_pair <= per_pair_checked,
                    "checks cannot make it cheaper"
                );
            }
        }
    }
}

#[test]
fn the_d3_key_loop_is_at_most_eight_and_a_half_operations_per_pair() {
    // Three FMAs with -m as the innermost addend, one exp2, three FMAs into the accumulator
    // and one add into the sum: 8; a key load per R = 4 queries and the loop's counter,
    // compare and branch per 32 pairs (8 keys unrolled) bring it to about 8.4.
    let kernel = AttentionKernel::for_dimension(3, &Target::NVIDIA);
    let AttentionKernel::Nbody(k) = kernel else {
        panic!("d = 3 is N-body");
    };
    assert_eq!(nbody_unroll(&k), 8, "keys per iteration");
    for variant in [
        Variant::default(),
        Variant {
            causal: true,
            alibi: false,
        },
    ] {
        let (per_pair, _) = nbody_key_loop(&count(&spirv(&kernel.source(variant), false)));
        eprintln!("d = 3 {variant:?}: {per_pair:.3} ops per pair (trusted)");
        assert!((8.0..=8.5).contains(&per_pair), "{per_pair}");
    }
}

/// Operations per pair of the attention kernel for d on a target.
fn attention_ops(d: usize, target: &Target) -> f64 {
    let kernel = AttentionKernel::for_dimension(d, target);
    let report = count(&spirv(&kernel.source(Variant::default()), false));
    assert_eq!(report.dynamic_private_index, 0, "d = {d}");
    match kernel {
        AttentionKernel::Nbody(_) => {
            let (p, key_loop) = nbody_key_loop(&report);
            assert_eq!(key_loop.nested, 0, "d = {d}");
            p
        }
        AttentionKernel::Block(b) => block_ops_per_pair(&report, &b),
    }
}

#[test]
fn larger_d_stays_near_two_fmas_per_coordinate() {
    for target in [Target::NVIDIA, Target::LLVMPIPE] {
        for d in [16usize, 64, 128, 256, 1024] {
            let per_pair = attention_ops(d, &target);
            // 2d FMAs (score and output) and some per pair: loads, the softmax, the
            // reductions; FlashAttention-2's blocks shrink with d to fit workgroup memory.
            let two_d = 2.0 * (4 * d.div_ceil(4)) as f64;
            let budget = match AttentionKernel::for_dimension(d, &target) {
                AttentionKernel::Nbody(_) => 1.25 * two_d + 16.0,
                // FlashAttention-2: 1.2 (2d) + 8 at full tiles of 32 keys. Where the 32 KiB
                // cap halves the tile (d = 64: 64 queries x 16 keys), each query's output
                // rescale by e^(m_old - m_new), 4 dvp multiplies per tile, is shared by half
                // as many keys: 4 dvp (1/bk - 1/32) more per pair (+2 at d = 64).
                AttentionKernel::Block(b) if d <= 64 => {
                    1.2 * two_d
                        + 8.0
                        + 4.0 * b.dvp as f64 * (1.0 / b.bk as f64 - 1.0 / 32.0).max(0.0)
                }
                AttentionKernel::Block(_) if d <= 128 => 1.5 * two_d + 16.0,
                AttentionKernel::Block(_) => 3.5 * two_d,
            };
            eprintln!(
                "{:?} attention d = {d} ({}): {per_pair:.2} ops per pair (2d = {})",
                target.profile,
                match AttentionKernel::for_dimension(d, &target) {
                    AttentionKernel::Nbody(_) => "N-body",
                    AttentionKernel::Block(_) => "FlashAttention-2",
                },
                2 * d
            );
            assert!(per_pair <= budget, "d = {d}: {per_pair:.2} > {budget}");
        }
    }
}

/// A metrics row may cost about one field evaluation: the pair statistics' key loop does at
/// most 1.4x the attention's operations per pair plus 3: its fixed part (the scale, the
/// exponential's FMA, the exponential, the minimum and three sums: 7 per pair) has no FMA
/// to hide in, where the attention's (exp2 and the sum's add) is 2, which weighs most at
/// d = 2 (10 against 6.4 operations).
#[test]
fn pair_statistics_cost_about_one_field_evaluation() {
    for target in [Target::NVIDIA, Target::LLVMPIPE] {
        for d in [2usize, 3, 8, 16, 64, 128] {
            let pairs = PairKernel::for_dimension(d, &target);
            let report = count(&spirv(&pairs.source(), false));
            let (per_pair, key_loop) = nbody_key_loop(&report);
            let attention = attention_ops(d, &target);
            eprintln!(
                "{:?} d = {d}: pair_stats {per_pair:.2} ops per pair, attention {attention:.2}",
                target.profile
            );
            assert!(
                per_pair <= 1.4 * attention + 3.0,
                "pair_stats d = {d}: {per_pair:.2} vs attention {attention:.2}"
            );
            if pairs.unrolled() {
                assert_eq!(key_loop.nested, 0);
                assert_eq!(report.dynamic_private_index, 0);
            }
        }
    }
}

#[test]
fn loop_bounding_and_clamping_show_in_the_checked_build() {
    // The checked build adds a loop counter and index clamps: the trusted key loop must be
    // measurably smaller, or the trusted modules would buy nothing.
    let kernel = AttentionKernel::for_dimension(3, &Target::NVIDIA);
    let source = kernel.source(Variant::default());
    let (trusted, _) = nbody_key_loop(&count(&spirv(&source, false)));
    let (checked, _) = nbody_key_loop(&count(&spirv(&source, true)));
    eprintln!("d = 3: trusted {trusted:.2}, checked {checked:.2} ops per pair");
    assert!(checked > trusted, "checked {checked} vs trusted {trusted}");
    let _ = Profile::Hardware;
}
