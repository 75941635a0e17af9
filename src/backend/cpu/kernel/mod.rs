//! The interface of the fast CPU attention kernel: a block of QB queries folds one tile of
//! keys (structure-of-arrays layout) into its online-softmax state. The kernel itself is
//! written with AVX2 + FMA intrinsics (`avx2`) and picked at run time; CPUs without
//! them (or other architectures) use the portable loop (`portable`). AVX-512 machines run the
//! AVX2 kernel.

pub(super) mod avx2;
pub(super) mod portable;

/// Keys' rows are padded to a multiple of this many floats, and tiles start on it.
pub const LANES: usize = 16;
/// Queries per block: each key vector is reused QB times from registers.
pub const QB: usize = 6;

/// Which version of the kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKernel {
    /// AVX2 with FMA intrinsics (x86-64).
    Avx2,
    /// No SIMD extension assumed: the per-query loop in `portable`.
    Portable,
}

impl CpuKernel {
    /// The best version this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return CpuKernel::Avx2;
            }
        }
        CpuKernel::Portable
    }

    /// Whether this CPU can run this version.
    pub fn supported(self) -> bool {
        self == CpuKernel::Portable || Self::detect() == CpuKernel::Avx2
    }

    pub fn name(self) -> &'static str {
        match self {
            CpuKernel::Avx2 => "avx2",
            CpuKernel::Portable => "portable",
        }
    }
}

/// How a system's keys are laid out for the kernel (both zero-padded past n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Coordinate c of key j at `c * stride + j`.
    Rows,
    /// Blocks of 8 keys with their d coordinates contiguous: coordinate c of key j at
    /// `((j / 8) * d + c) * 8 + j % 8` (the scores of d > 4 read these).
    Blocked,
}

impl Layout {
    /// Index of coordinate c of key j.
    #[inline(always)]
    pub fn index(self, d: usize, stride: usize, j: usize, c: usize) -> usize {
        match self {
            Layout::Rows => c * stride + j,
            Layout::Blocked => ((j / 8) * d + c) * 8 + j % 8,
        }
    }
}

/// Inputs of one call: QB queries of one system against one tile of its keys.
pub struct Block<'a> {
    pub d: usize,
    /// Keys of the system in the row layout, stride * d floats.
    pub rows: &'a [f32],
    /// For d > 4, the same keys in the blocked layout (else the row layout again).
    pub keys: &'a [f32],
    /// Keys per row (Rows) or keys' capacity (Blocked): n rounded up past LANES.
    pub stride: usize,
    /// QB queries, row-major (QB x d), already multiplied by beta K^T Q.
    pub q: &'a [f32],
    /// One past the last key each query sees (n, or i + 1 under the causal mask).
    pub ends: [usize; QB],
    /// ALiBi slope per key index (natural units): scores lose slope (i - j), i = end - 1.
    pub alibi: f32,
    /// The tile of keys this call folds in: [start, stop), start a multiple of LANES and
    /// stop - start at most the scratch's tile length.
    pub start: usize,
    pub stop: usize,
}

/// Online-softmax state of QB queries: running max (natural units), sum and accumulator
/// (QB x d), in f64.
pub struct BlockState<'a> {
    pub m: &'a mut [f64],
    pub l: &'a mut [f64],
    pub acc: &'a mut [f64],
}

/// Folds one tile of keys into the block's state with the given version (which must be
/// supported). `scratch` holds QB rows of one tile's scores.
pub fn run_block(kernel: CpuKernel, b: &Block, scratch: &mut [f32], out: &mut BlockState) {
    assert!(b.start.is_multiple_of(LANES) && b.stop - b.start <= scratch.len() / QB);
    assert!(b.keys.len() >= b.d * b.stride && b.rows.len() >= b.d * b.stride);
    assert!(b.stride.is_multiple_of(LANES) && b.stride >= b.start + 2 * LANES);
    assert!(b.q.len() >= QB * b.d && out.acc.len() >= QB * b.d && out.m.len() >= QB);
    match kernel {
        #[cfg(target_arch = "x86_64")]
        CpuKernel::Avx2 => {
            assert!(kernel.supported(), "this CPU lacks AVX2 or FMA");
            // SAFETY: AVX2 and FMA are present (checked above); every access is within the
            // bounds asserted above (padded rows, scratch of QB tiles).
            unsafe { avx2::block(b, scratch, out) }
        }
        _ => unreachable!("the portable path does not use blocks"),
    }
}
