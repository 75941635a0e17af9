//! How one evaluation of a streaming kernel (attention, pair statistics) is cut into
//! dispatches and submissions: a pure function of the sizes, the kernel's shape, the adapter's
//! measured speed and the budgets, so that its guarantees are unit-tested without a GPU.
//!
//! - **Splits** fill the GPU: the keys are cut into S contiguous splits with partial softmax
//!   states of their own (merged exactly afterwards), so that a dispatch has several waves of
//!   workgroups even at small n. S depends on n and the kernel only (not on the batch or the
//!   adapter's speed), so an ensemble's systems equal their separate runs bit for bit.
//! - **Chunks** bound a dispatch: each dispatch visits `chunk_keys` keys of every split (a
//!   multiple of the key tile, so that the sums do not depend on the chunking) for a slice of
//!   the query blocks, at most `Budget::dispatch_seconds` at the measured speed (an OS
//!   watchdog resets the GPU after about 2 s on Windows) and within llvmpipe's loop limit.
//! - **Submissions** hold about `Budget::submission_seconds` of work, and at most
//!   `Budget::in_flight` of them are queued ahead of the GPU.
//! - **The probe** that measures the speed grows 4x at a time from 2^18 pairs and stops at
//!   2^28 or as soon as one takes `PROBE_SECONDS`, so none takes more than 4 `PROBE_SECONDS`
//!   on any GPU ([`run_probes`]).
//! - **Token pieces** bound the O(n d^2) kernels (queries, attention_finish, the perceptron):
//!   each dispatch covers a range of whole tokens within `Budget::dispatch_seconds` at a
//!   conservative multiply-add rate derived from the measured pair rate ([`plan_tokens`]).

use crate::error::{Error, Result};

/// The budgets every plan keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Longest dispatch, at the measured speed halved.
    pub dispatch_seconds: f64,
    /// Work per submission (a step is cut into several when it is longer).
    pub submission_seconds: f64,
    /// Submissions queued beyond the one the GPU is running.
    pub in_flight: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            dispatch_seconds: 0.1,
            submission_seconds: 0.25,
            in_flight: 2,
        }
    }
}

/// The measured speed is halved before planning: the GPU may clock down, and the probe ran
/// on part of the work.
pub const SPEED_MARGIN: f64 = 2.0;

/// Workgroups one dispatch should have to fill a large GPU several waves deep.
pub const TARGET_GROUPS: usize = 2048;
/// Most key splits.
pub const MAX_SPLITS: usize = 64;
/// Fewest keys a split is worth (the merge and the first-key setup are per split).
pub const MIN_SPLIT_KEYS: usize = 1024;

/// The probe: first and largest pairs, and the time at which it stops growing.
pub const PROBE_FIRST_PAIRS: f64 = (1u64 << 18) as f64;
pub const PROBE_MAX_PAIRS: f64 = (1u64 << 28) as f64;
pub const PROBE_SECONDS: f64 = 0.02;

/// What the planner needs of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelShape {
    /// Queries one workgroup handles.
    pub queries_per_group: usize,
    /// Keys per workgroup-memory tile.
    pub tile_keys: usize,
}

/// The inputs of a plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput {
    pub batch: usize,
    pub n_queries: usize,
    pub n_keys: usize,
    pub kernel: KernelShape,
    /// Pair interactions per second of this kernel (None: not measured; software adapters
    /// have no watchdog).
    pub speed: Option<f64>,
    /// Most keys per split one dispatch may visit (llvmpipe's loop limit), if any.
    pub max_chunk_keys: Option<usize>,
    /// The adapter's max_compute_workgroups_per_dimension (or a test's lower cap).
    pub max_groups: u32,
    /// Forced split count (tests).
    pub splits: Option<usize>,
    /// Forced keys per split per dispatch (tests, `Chunking::Fixed`).
    pub chunk_keys: Option<usize>,
    pub budget: Budget,
}

/// How an evaluation is laid out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    batch: usize,
    pub splits: usize,
    /// Keys per split (the last split may have fewer).
    pub split_keys: usize,
    /// Keys per split visited by one dispatch.
    pub chunk_keys: usize,
    /// Dispatches over the keys: ceil(split_keys / chunk_keys).
    pub chunks: usize,
    /// Query blocks per system.
    pub blocks: usize,
    /// Query blocks per dispatch.
    pub blocks_per_dispatch: usize,
    /// Systems per dispatch (all of them unless even one query block of every system is
    /// too long).
    pub systems_per_dispatch: usize,
    /// Dispatches over the queries: ceil(blocks / blocks_per_dispatch) times
    /// ceil(batch / systems_per_dispatch).
    pub slices: usize,
    /// Upper bound of the pairs one dispatch visits.
    pub dispatch_pairs: f64,
    /// Estimated seconds of the longest dispatch at the margined speed, when measured.
    pub dispatch_seconds: Option<f64>,
    /// Streaming dispatches per submission (None: one submission per step).
    pub dispatches_per_submission: Option<usize>,
    pub in_flight: usize,
}

/// One dispatch of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchSlot {
    pub key_offset: usize,
    pub key_count: usize,
    pub first: bool,
    pub first_block: usize,
    pub first_system: usize,
    /// Systems along y.
    pub systems: u32,
    /// Query blocks along x; the grid is (groups_x, systems, z_blocks * splits).
    pub groups_x: u32,
    pub z_blocks: u32,
}

impl Plan {
    /// Streaming dispatches per evaluation.
    pub fn dispatches(&self) -> usize {
        self.chunks * self.slices
    }

    /// Systems of the evaluation.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Every dispatch in order: query slices outermost, so that a slice's chunks run in
    /// order of their keys (the state of a chunk continues the previous one).
    pub fn slots(&self, max_groups: u32) -> Vec<DispatchSlot> {
        let mut out = Vec::with_capacity(self.dispatches());
        let block_slices = self.blocks.div_ceil(self.blocks_per_dispatch);
        for s in 0..self.slices {
            let first_system = (s / block_slices) * self.systems_per_dispatch;
            let first_block = (s % block_slices) * self.blocks_per_dispatch;
            let blocks = self.blocks_per_dispatch.min(self.blocks - first_block);
            let systems = self.systems_per_dispatch.min(self.batch - first_system);
            let groups_x = blocks.min(max_groups as usize).max(1);
            let z_blocks = blocks.div_ceil(groups_x);
            for c in 0..self.chunks {
                let key_offset = c * self.chunk_keys;
                out.push(DispatchSlot {
                    key_offset,
                    key_count: self.chunk_keys.min(self.split_keys - key_offset),
                    first: c == 0,
                    first_block,
                    first_system,
                    systems: systems as u32,
                    groups_x: groups_x as u32,
                    z_blocks: z_blocks as u32,
                });
            }
        }
        out
    }
}

/// The split count for n keys and a kernel shape (independent of the batch and the speed).
pub fn splits_for(n_queries: usize, n_keys: usize, kernel: KernelShape) -> usize {
    let blocks = n_queries.div_ceil(kernel.queries_per_group).max(1);
    let by_groups = TARGET_GROUPS.div_ceil(blocks);
    let by_keys = (n_keys / MIN_SPLIT_KEYS.max(kernel.tile_keys)).max(1);
    by_groups.min(by_keys).clamp(1, MAX_SPLITS)
}

/// Lays out one evaluation, or says which limit it exceeds.
pub fn plan(input: &PlanInput) -> Result<Plan> {
    let PlanInput {
        batch,
        n_queries,
        n_keys,
        kernel,
        ..
    } = *input;
    if batch == 0 || n_queries == 0 || n_keys == 0 {
        return Err(Error::Input(
            "an evaluation needs at least one system, query and key".into(),
        ));
    }
    let tk = kernel.tile_keys.max(1);
    let qb = kernel.queries_per_group.max(1);
    let max_groups = input.max_groups.max(1) as usize;
    let blocks = n_queries.div_ceil(qb);
    let wanted = input
        .splits
        .unwrap_or_else(|| splits_for(n_queries, n_keys, kernel))
        .clamp(1, n_keys);
    // Whole tiles per split, and no empty split.
    let split_keys = if input.splits.is_some() {
        n_keys.div_ceil(wanted)
    } else {
        n_keys.div_ceil(wanted).next_multiple_of(tk).min(n_keys)
    };
    let splits = n_keys.div_ceil(split_keys);
    if batch > max_groups {
        return Err(Error::Limit(format!(
            "batch = {batch} exceeds this adapter's max_compute_workgroups_per_dimension of \
             {max_groups}"
        )));
    }
    let pairs_per_key_block = (batch * qb * splits) as f64;
    // Keys per split per dispatch: forced, or the whole split within the loop limit and the
    // time budget, in whole tiles.
    let speed = input.speed.map(|s| s / SPEED_MARGIN);
    let mut blocks_per_dispatch = blocks;
    let mut systems_per_dispatch = batch;
    let chunk_keys = match input.chunk_keys {
        Some(k) => k.clamp(1, split_keys),
        None => {
            let mut k = split_keys;
            if let Some(cap) = input.max_chunk_keys {
                k = k.min((cap / tk).max(1) * tk);
            }
            if let Some(speed) = speed {
                let affordable =
                    input.budget.dispatch_seconds * speed / (pairs_per_key_block * blocks as f64);
                if affordable < tk as f64 {
                    // Not even one tile against every query: cut the queries too, by blocks
                    // and, when one block of every system is too much, by systems.
                    k = k.min(tk);
                    let per_block = pairs_per_key_block * k as f64 / speed;
                    blocks_per_dispatch =
                        ((input.budget.dispatch_seconds / per_block).floor() as usize).max(1);
                    if per_block > input.budget.dispatch_seconds {
                        let per_system = per_block / batch as f64;
                        systems_per_dispatch =
                            ((input.budget.dispatch_seconds / per_system).floor() as usize)
                                .clamp(1, batch);
                    }
                } else {
                    k = k.min(((affordable / tk as f64).floor() as usize).max(1) * tk);
                }
            }
            k.clamp(1, split_keys)
        }
    };
    let chunks = split_keys.div_ceil(chunk_keys);
    let blocks_per_dispatch = blocks_per_dispatch.min(blocks);
    let slices = blocks.div_ceil(blocks_per_dispatch) * batch.div_ceil(systems_per_dispatch);
    let groups_x = blocks_per_dispatch.min(max_groups);
    let z = blocks_per_dispatch.div_ceil(groups_x) * splits;
    if z > max_groups {
        return Err(Error::Limit(format!(
            "{n_queries} queries in blocks of {qb} over {splits} key splits need {z} \
             workgroups along z, beyond this adapter's max_compute_workgroups_per_dimension \
             of {max_groups}"
        )));
    }
    let dispatch_pairs =
        (systems_per_dispatch * qb * splits * blocks_per_dispatch * chunk_keys) as f64;
    let dispatch_seconds = speed.map(|s| dispatch_pairs / s);
    let dispatches_per_submission = dispatch_seconds
        .map(|t| ((input.budget.submission_seconds / t.max(1e-9)).floor() as usize).max(1));
    Ok(Plan {
        batch,
        splits,
        split_keys,
        chunk_keys,
        chunks,
        blocks,
        blocks_per_dispatch,
        systems_per_dispatch,
        slices,
        dispatch_pairs,
        dispatch_seconds,
        dispatches_per_submission,
        in_flight: input.budget.in_flight,
    })
}

/// One probe dispatch: `blocks` query blocks of system 0 against `keys` keys of split 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub blocks: usize,
    pub keys: usize,
}

impl Probe {
    pub fn pairs(&self, kernel: KernelShape) -> f64 {
        (self.blocks * kernel.queries_per_group * self.keys) as f64
    }
}

/// The probes in order, each about 4x the pairs of the one before: more query blocks first
/// (to fill the GPU), then more keys, from about 2^18 pairs up to at most 2^28. The caller
/// stops at the first that takes `PROBE_SECONDS` or more.
pub fn probes(blocks: usize, split_keys: usize, kernel: KernelShape) -> Vec<Probe> {
    let tk = kernel.tile_keys.max(1);
    let per_block_tile = (kernel.queries_per_group * tk) as f64;
    let mut probe = Probe {
        blocks: ((PROBE_FIRST_PAIRS / per_block_tile).floor() as usize).clamp(1, blocks),
        keys: tk.min(split_keys),
    };
    let mut out = vec![probe];
    loop {
        let mut next = probe;
        if next.blocks < blocks {
            next.blocks = (next.blocks * 4).min(blocks);
        } else if next.keys < split_keys {
            next.keys = (next.keys * 4).min(split_keys);
        } else {
            break;
        }
        if next.pairs(kernel) > PROBE_MAX_PAIRS {
            break;
        }
        out.push(next);
        probe = next;
    }
    out
}

/// Runs the probes in order until one takes `PROBE_SECONDS` or more (or none is left):
/// `time` runs one and returns its seconds. Returns the last probe run, its seconds and how
/// many ran. Each probe is at most 4x the one before, which took less than `PROBE_SECONDS`,
/// so none runs longer than 4 `PROBE_SECONDS` beyond the first.
pub fn run_probes(
    probes: &[Probe],
    mut time: impl FnMut(Probe) -> Result<f64>,
) -> Result<(Probe, f64, usize)> {
    let mut last = None;
    for (i, &probe) in probes.iter().enumerate() {
        let seconds = time(probe)?.max(1e-7);
        last = Some((probe, seconds, i + 1));
        if seconds >= PROBE_SECONDS {
            break;
        }
    }
    last.ok_or_else(|| Error::Gpu("internal: no speed probe to run".into()))
}

/// How the O(n d^2) kernels of an evaluation (queries, attention_finish, mlp_hidden,
/// mlp_out: one invocation per element, each a loop over d or the hidden width) are cut into
/// dispatches: contiguous pieces of whole tokens (of all systems, flattened).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenPlan {
    pub tokens: usize,
    pub tokens_per_piece: usize,
    pub pieces: usize,
    /// Estimated seconds of the longest piece at the margined speed, when measured.
    pub piece_seconds: Option<f64>,
}

impl TokenPlan {
    /// (first token, tokens) of every piece, in order.
    pub fn pieces(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.pieces).map(|p| {
            let first = p * self.tokens_per_piece;
            (first, self.tokens_per_piece.min(self.tokens - first))
        })
    }
}

/// Multiply-adds per token of the heaviest dense kernel: d x d (queries, the value
/// projection of attention_finish) or d x hidden (each of the perceptron's two).
pub fn dense_fmas_per_token(d: usize, hidden: usize) -> f64 {
    (d * d.max(hidden)) as f64
}

/// A conservative multiply-add rate of the dense kernels from the attention kernel's measured
/// pair rate at dimension d: a pair costs at least 2d + 2 operations there (kernel_ops.rs),
/// a dense multiply-add one FMA and two loads, mostly from cache; charged d / 4 multiply-adds
/// per pair (a factor 2 or more below the issue slots, for the loads that miss), and never
/// more than one per pair.
pub fn dense_speed(pair_speed: f64, d: usize) -> f64 {
    pair_speed * (d as f64 / 4.0).max(1.0)
}

/// Cuts `tokens` tokens of `fmas_per_token` multiply-adds into pieces of at most
/// `budget.dispatch_seconds` at `speed` (multiply-adds per second, halved by SPEED_MARGIN;
/// None: not measured, one piece), or of `forced` tokens (tests).
pub fn plan_tokens(
    tokens: usize,
    fmas_per_token: f64,
    speed: Option<f64>,
    budget: &Budget,
    forced: Option<usize>,
) -> TokenPlan {
    let tokens = tokens.max(1);
    let speed = speed.map(|s| s / SPEED_MARGIN);
    let per_piece = match (forced, speed) {
        (Some(k), _) => k,
        (None, Some(speed)) => {
            (budget.dispatch_seconds * speed / fmas_per_token.max(1.0)).floor() as usize
        }
        (None, None) => tokens,
    }
    .clamp(1, tokens);
    TokenPlan {
        tokens,
        tokens_per_piece: per_piece,
        pieces: tokens.div_ceil(per_piece),
        piece_seconds: speed.map(|s| per_piece as f64 * fmas_per_token / s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::codegen::{AttentionKernel, Target};

    /// Pair interactions per second of an H100 by d (GPU-NOTES: 3.3e12 at d = 3 issue-bound,
    /// 2.5e11 at d = 64), about 2d + 6 instructions per pair over 1.06e13 instructions/s.
    fn h100(d: usize) -> f64 {
        1.06e13 / (2.0 * d as f64 + 6.0) * if d >= 16 { 0.5 } else { 1.0 }
    }

    /// The attention kernel codegen builds for d on a large NVIDIA GPU.
    fn shape(d: usize) -> KernelShape {
        shape_on(d, &Target::NVIDIA)
    }

    fn shape_on(d: usize, target: &Target) -> KernelShape {
        let k = AttentionKernel::for_dimension(d, target);
        KernelShape {
            queries_per_group: k.queries_per_group() as usize,
            tile_keys: k.tile_keys() as usize,
        }
    }

    fn input(batch: usize, n: usize, d: usize, speed: Option<f64>) -> PlanInput {
        PlanInput {
            batch,
            n_queries: n,
            n_keys: n,
            kernel: shape(d),
            speed,
            max_chunk_keys: None,
            max_groups: 65535,
            splits: None,
            chunk_keys: None,
            budget: Budget::default(),
        }
    }

    /// Every (query block, key) pair of every split is visited exactly once, in key order
    /// within each slice.
    fn assert_covers(p: &Plan, n_keys: usize) {
        let slots = p.slots(65535);
        assert_eq!(slots.len(), p.dispatches());
        let mut covered = vec![0usize; p.blocks * p.batch()];
        for slice in slots.chunks(p.chunks) {
            let mut next = 0;
            for s in slice {
                assert_eq!(s.key_offset, next, "chunks out of order");
                assert_eq!(s.first, next == 0);
                next += s.key_count;
                let blocks = (s.groups_x * s.z_blocks) as usize;
                assert!(blocks >= p.blocks_per_dispatch.min(p.blocks - s.first_block));
            }
            assert_eq!(next, p.split_keys);
            let first = slice[0].first_block;
            let end = (first + p.blocks_per_dispatch).min(p.blocks);
            let s0 = slice[0].first_system;
            for system in s0..s0 + slice[0].systems as usize {
                covered[system * p.blocks + first..system * p.blocks + end]
                    .iter_mut()
                    .for_each(|c| *c += 1);
            }
        }
        assert!(
            covered.iter().all(|&c| c == 1),
            "query blocks covered {covered:?}"
        );
        assert!(p.splits * p.split_keys >= n_keys && (p.splits - 1) * p.split_keys < n_keys);
    }

    #[test]
    fn no_dispatch_beyond_the_budget_at_a_million_tokens_on_a_gpu_100x_slower_than_an_h100() {
        for d in [2, 3, 4, 8, 16, 32, 64, 128, 256, 512, 1024] {
            let n = 1 << 20;
            let speed = h100(d) / 100.0;
            let p = plan(&input(1, n, d, Some(speed))).unwrap();
            // The real time of the longest dispatch at the measured speed itself.
            let real = p.dispatch_pairs / speed;
            assert!(
                real <= Budget::default().dispatch_seconds / SPEED_MARGIN + 1e-12,
                "d = {d}: a dispatch of {:.3e} pairs takes {real:.3} s at {speed:.2e} pairs/s",
                p.dispatch_pairs
            );
            assert_covers(&p, n);
            // A submission holds about 0.25 s of work: never more than that plus a dispatch.
            let per_submission = p.dispatches_per_submission.unwrap() as f64 * real;
            assert!(
                per_submission <= Budget::default().submission_seconds,
                "d = {d}: {per_submission:.3} s per submission"
            );
            // And the probe never runs a dispatch longer than 4 PROBE_SECONDS: each probe is
            // at most 4x one that took less than PROBE_SECONDS, the first at most 2^18 pairs.
            let probes = probes(p.blocks, p.split_keys, shape(d));
            let first = probes[0].pairs(shape(d)) / speed;
            assert!(
                probes[0].pairs(shape(d))
                    <= PROBE_FIRST_PAIRS
                        .max((shape(d).queries_per_group * shape(d).tile_keys) as f64),
                "d = {d}: first probe {:?}",
                probes[0]
            );
            assert!(
                first <= 4.0 * PROBE_SECONDS,
                "d = {d}: first probe takes {first:.3} s"
            );
            for w in probes.windows(2) {
                assert!(w[1].pairs(shape(d)) <= 4.0 * w[0].pairs(shape(d)) + 1.0);
                assert!(w[1].pairs(shape(d)) <= PROBE_MAX_PAIRS);
            }
            eprintln!(
                "d = {d:4}: {} splits, {} keys per dispatch, {} of {} query blocks, {} dispatches, {:.1} ms each, {} per submission",
                p.splits,
                p.chunk_keys,
                p.blocks_per_dispatch,
                p.blocks,
                p.dispatches(),
                1e3 * real,
                p.dispatches_per_submission.unwrap()
            );
        }
    }

    #[test]
    fn huge_ensembles_are_cut_into_query_slices() {
        // 4096 systems of 2^16 tokens at d = 3 on a slow GPU: even one tile of keys against
        // every query is several seconds, so the queries are sliced.
        let speed = h100(3) / 100.0;
        let p = plan(&input(4096, 1 << 16, 3, Some(speed))).unwrap();
        assert!(p.slices > 1, "{p:?}");
        assert!(p.dispatch_pairs / speed <= 0.05 + 1e-12, "{p:?}");
        assert_covers(&p, 1 << 16);
    }

    #[test]
    fn splits_fill_the_gpu_and_do_not_depend_on_batch_or_speed() {
        let k = shape(3);
        // 2^14 tokens are 64 blocks: 16 splits of 1024 keys give 1024 workgroups.
        assert_eq!(splits_for(1 << 14, 1 << 14, k), 16);
        // A million tokens fill the GPU without splitting.
        assert_eq!(splits_for(1 << 20, 1 << 20, k), 1);
        // Small n: splits stay at least MIN_SPLIT_KEYS long.
        assert_eq!(splits_for(100, 100, k), 1);
        for batch in [1, 7, 300] {
            for speed in [None, Some(1e9), Some(1e13)] {
                let p = plan(&input(batch, 1 << 14, 3, speed)).unwrap();
                assert_eq!(
                    (p.splits, p.split_keys),
                    (16, 1024),
                    "batch {batch}, {speed:?}"
                );
            }
        }
    }

    #[test]
    fn chunks_are_whole_tiles_within_the_loop_limit() {
        let mut i = input(1, 1 << 20, 3, None);
        i.max_chunk_keys = Some(200_000);
        let p = plan(&i).unwrap();
        assert_eq!(p.chunk_keys % 256, 0);
        assert!(p.chunk_keys <= 200_000);
        assert_eq!(p.chunks, (1usize << 20).div_ceil(p.chunk_keys));
        assert_eq!(p.dispatches_per_submission, None);
        assert_covers(&p, 1 << 20);
        // Forced chunks (tests) are taken as they are.
        let mut f = input(2, 100, 5, None);
        f.chunk_keys = Some(7);
        let p = plan(&f).unwrap();
        assert_eq!((p.splits, p.chunk_keys, p.chunks), (1, 7, 15));
        assert_covers(&p, 100);
    }

    #[test]
    fn limits_are_named() {
        let mut i = input(70_000, 1000, 3, None);
        let e = plan(&i).unwrap_err().to_string();
        assert!(e.contains("max_compute_workgroups_per_dimension"), "{e}");
        i.batch = 1;
        i.max_groups = 4;
        i.n_queries = 100_000;
        i.n_keys = 100_000;
        let e = plan(&i).unwrap_err().to_string();
        assert!(e.contains("workgroups along z"), "{e}");
    }

    #[test]
    fn the_planner_sees_the_kernel_shapes_codegen_builds() {
        // The shapes above are codegen's, for both profiles: every plan covers the keys and
        // queries and keeps the budget at a million tokens on a GPU 100x slower than an H100.
        for target in [Target::NVIDIA, Target::LLVMPIPE] {
            for d in [3, 16, 64, 128, 1024] {
                let mut i = input(1, 1 << 20, d, Some(h100(d) / 100.0));
                i.kernel = shape_on(d, &target);
                assert!(i.kernel.queries_per_group >= 1 && i.kernel.tile_keys >= 1);
                let p = plan(&i).unwrap();
                assert!(
                    p.dispatch_pairs / (h100(d) / 100.0) <= 0.05 + 1e-12,
                    "{d}: {p:?}"
                );
                assert_covers(&p, 1 << 20);
            }
        }
    }

    #[test]
    fn the_probe_stops_at_the_first_run_that_takes_probe_seconds() {
        for d in [3, 64, 1024] {
            let k = shape(d);
            let p = plan(&input(1, 1 << 20, d, None)).unwrap();
            let all = probes(p.blocks, p.split_keys, k);
            // GPUs from 1e6 to 1e14 pairs/s: the probe stops at the first run that takes
            // PROBE_SECONDS, every run before took less, and none took more than 4x that
            // (or the first probe, on a GPU too slow for even that).
            for speed in [1e6, 1e8, 1e10, 1e12, 1e14] {
                let mut ran = Vec::new();
                let (last, seconds, count) = run_probes(&all, |probe| {
                    ran.push(probe);
                    Ok(probe.pairs(k) / speed)
                })
                .unwrap();
                assert_eq!(count, ran.len());
                assert_eq!(last, *ran.last().unwrap());
                assert_eq!(seconds, (last.pairs(k) / speed).max(1e-7));
                for earlier in &ran[..ran.len() - 1] {
                    assert!(earlier.pairs(k) / speed < PROBE_SECONDS);
                }
                if seconds < PROBE_SECONDS {
                    assert_eq!(count, all.len(), "stopped early at {speed:e}");
                }
                let first = all[0].pairs(k) / speed;
                assert!(
                    seconds <= (4.0 * PROBE_SECONDS).max(first),
                    "d = {d}, {speed:e} pairs/s: a probe of {seconds} s"
                );
            }
        }
        // An error stops the probe and is passed on.
        let k = shape(3);
        let all = probes(64, 1 << 16, k);
        let e = run_probes(&all, |_| Err(Error::Gpu("lost".into()))).unwrap_err();
        assert!(e.to_string().contains("lost"));
        assert!(run_probes(&[], |_| Ok(1.0)).is_err());
    }

    #[test]
    fn dense_kernels_at_half_a_million_tokens_and_d_1024_keep_the_budget_on_a_slow_gpu() {
        // n = 2^19, d = 1024 with weights: queries alone is 5.5e11 multiply-adds, seconds on
        // a GPU 100x slower than an H100 in one dispatch.
        let (n, d) = (1usize << 19, 1024);
        let fmas = dense_fmas_per_token(d, 0);
        assert_eq!(n as f64 * fmas, 549_755_813_888.0);
        let budget = Budget::default();
        for hidden in [0, 4 * d] {
            let per_token = dense_fmas_per_token(d, hidden);
            let pair_speed = h100(d) / 100.0;
            let speed = dense_speed(pair_speed, d);
            let p = plan_tokens(n, per_token, Some(speed), &budget, None);
            // The real time of the longest piece at the conservative speed itself.
            let real = p.tokens_per_piece as f64 * per_token / speed;
            assert!(
                real <= budget.dispatch_seconds / SPEED_MARGIN + 1e-12,
                "hidden {hidden}: {real} s per piece"
            );
            assert!(p.pieces > 1, "{p:?}");
            let covered: Vec<(usize, usize)> = p.pieces().collect();
            assert_eq!(covered.len(), p.pieces);
            let mut next = 0;
            for (first, count) in covered {
                assert_eq!(first, next);
                assert!(count >= 1 && count <= p.tokens_per_piece);
                next += count;
            }
            assert_eq!(next, n);
            eprintln!(
                "n = 2^19, d = 1024, hidden {hidden}: {} pieces of {} tokens, {:.1} ms each",
                p.pieces,
                p.tokens_per_piece,
                1e3 * real
            );
        }
        // The conservative rate is below what the attention kernel's issue slots allow.
        for d in [3, 16, 64, 1024] {
            let pair = h100(d);
            assert!(
                dense_speed(pair, d) <= pair * (2 * d + 2) as f64 / 2.0,
                "d = {d}"
            );
        }
        // Unmeasured: one piece; forced: as asked; a token over the budget: one per piece.
        assert_eq!(plan_tokens(1000, 9.0, None, &budget, None).pieces, 1);
        let forced = plan_tokens(300, 9.0, None, &budget, Some(7));
        assert_eq!((forced.pieces, forced.tokens_per_piece), (43, 7));
        assert_eq!(forced.pieces().last(), Some((294, 6)));
        let slow = plan_tokens(10, 1e12, Some(1.0), &budget, None);
        assert_eq!((slow.pieces, slow.tokens_per_piece), (10, 1));
    }
}
