//! Generated WGSL for the streaming kernels, specialised per run (d, tile sizes, mask).
//!
//! Two attention kernels, chosen by d ([`AttentionKernel::for_dimension`]):
//! - [`Nbody`] for d <= 8 (`nbody.rs`): R queries per invocation held in registers, keys as
//!   vec4 in workgroup memory, each read once per R queries; straight-line code for the
//!   coordinates and the queries, the key loop unrolled G keys at a time
//!   (`shaders/attention_small.wgsl`).
//! - [`Block`] for d >= 9 (`block.rs`): FlashAttention-2 in f32: a block of BQ queries per
//!   workgroup, a key tile of BK keys in workgroup memory that doubles as the value tile;
//!   each invocation computes a small block of scores as outer products over d and a slice of
//!   the output for several queries; row maxima by subgroup shuffles where the adapter has
//!   them, or through workgroup memory (`shaders/attention_block.wgsl`).
//!
//! Both write the same partial online-softmax state ([split][token]: acc as DV vec4s, (m, l)
//! with m in base 2), which `attention_finish.wgsl` merges, so everything downstream is shared.
//! The pair statistics behind the observables (`pair_stats.rs`) use the N-body shape as well.
//! `emit.rs` holds what the generators share. Each generator is a struct whose methods emit
//! one phase of the kernel each; tests/wgsl_snapshots.rs holds the text they emit.

mod block;
mod emit;
mod nbody;
mod pair_stats;

pub use block::Block;
pub use nbody::{Nbody, nbody_unroll};
pub use pair_stats::PairKernel;

pub use super::profiles::{Profile, Target};
/// Invocations per workgroup of every streaming kernel.
pub use super::shaders::WORKGROUP;

/// The compile-time choices of the attention kernel that depend on the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Query i sees keys j <= i.
    pub causal: bool,
    /// ALiBi: scores lose slope (i - j). In a specialisation, whether the kernel has ALiBi's
    /// code (see [`Variant::for_kernel`]).
    pub alibi: bool,
}

impl Variant {
    /// The code a kernel gets for a model's mask and ALiBi: every causal kernel carries ALiBi,
    /// its slope a uniform (0 without ALiBi, where its terms add exactly 0: a plain causal run
    /// computes the same bits), so that one kernel serves both and a GPU compiles (and the
    /// tests execute) one causal kernel per shape instead of two. Except the N-body kernels of
    /// the hardware profiles: their key loop is about 8 operations per pair at d = 3
    /// (tests/kernel_ops.rs), and ALiBi's add and scale would make it 10.4 (+25%); those keep a
    /// plain causal kernel beside the ALiBi one. Elsewhere ALiBi costs about 2 of the 2d + 3 or
    /// more operations per pair (the Block kernels, d >= 9) or runs on a CPU (llvmpipe).
    pub fn for_kernel(self, kernel: &AttentionKernel, target: &Target) -> Variant {
        let separate =
            matches!(kernel, AttentionKernel::Nbody(_)) && target.profile == Profile::Hardware;
        Variant {
            causal: self.causal,
            alibi: self.alibi || (self.causal && !separate),
        }
    }
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

/// The attention kernel of one specialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttentionKernel {
    Nbody(Nbody),
    Block(Block),
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
            AttentionKernel::Nbody(k) => k.loop_iterations(tiles),
            AttentionKernel::Block(k) => k.loop_iterations(tiles),
        }
    }

    /// The kernel's text before its generated `main`: every module-scope declaration (WGSL
    /// declares none inside a function), so what its bind group layout is reflected from.
    pub fn declarations(&self) -> String {
        match self {
            AttentionKernel::Nbody(k) => k.declarations(),
            AttentionKernel::Block(k) => block::header(k),
        }
    }

    /// The WGSL of the attention kernel: the shared header, common.wgsl, the template and the
    /// generated `main`.
    pub fn source(&self, variant: Variant) -> String {
        match self {
            AttentionKernel::Nbody(k) => k.source(variant),
            AttentionKernel::Block(k) => k.source(variant),
        }
    }
}
