// Streamed pair statistics behind the observables (docs/model.md §1: energy, pairwise cosines),
// N-body style like attention_small.wgsl: every invocation holds R tokens i of system b
// (normalised, in registers), and tiles of normalised keys x_j / |x_j| with their norms stream
// through workgroup memory, so norms are taken once per token, not once per pair. Per token:
//   m, l          : sum_j exp(beta <x_i, x_j>) = 2^m l  (m in base 2, lazy as in attention)
//   min_cos       : min over j of cos(x_i, x_j) (j = i included: cos = 1 is never below
//                   another pair's cosine by more than rounding)
//   sum_cos       : sum over j != i of cos(x_i, x_j)
//   sum_dot       : sum_j <x_i, x_j>
// The keys are cut into `params.splits` splits with their own rows, [split][token], which the
// host merges in f64. `main` is generated (src/backend/gpu/codegen.rs).
// CPU twin: reference::pair_stats.

struct PairStats {
    m: f32,
    l: f32,
    min_cos: f32,
    sum_cos: f32,
    sum_dot: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read> betas: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<PairStats>;

var<workgroup> tile: array<vec4<f32>, TILE_VECS>;
var<workgroup> tile_norm: array<f32, TK>;
