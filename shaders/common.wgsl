// Shared by every kernel; prepended after the generated header, which defines
//   const D: u32            the token dimension,
//   const WG: u32           invocations per workgroup,
//   const TK: u32           keys per workgroup-memory tile,
//   const TILE_FLOATS: u32  TK * D.

// Per-run parameters of the attention and pair-statistics kernels.
struct Params {
    n: u32,
    batch: u32,
    // FLAG_* bits below.
    flags: u32,
    // Workgroups along x of a dispatch.
    groups_x: u32,
}

const FLAG_USA: u32 = 1u;
const FLAG_SPHERE: u32 = 2u;
const FLAG_CAUSAL: u32 = 4u;
const FLAG_IDENTITY_SCORES: u32 = 8u;
const FLAG_IDENTITY_VALUES: u32 = 16u;

// Largest finite f32; the running maximum starts below every score.
const F32_LOWEST: f32 = -3.4028235e38;

fn has_flag(flags: u32, flag: u32) -> bool {
    return (flags & flag) != 0u;
}

// True for +-inf and NaN: exponent bits all ones.
fn non_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}
