// Stage 2 of the attention field for small d (docs/model.md §1), N-body style: each
// invocation holds R queries in registers, keys stream through workgroup memory in tiles of
// TK (one vec4 per key and DV = ceil(D / 4) <= 2), and each key read from workgroup memory
// serves R queries. `main` is generated (src/backend/gpu/codegen.rs) as straight-line code: no loop
// over coordinates or queries inside the key loop, keys unrolled G at a time (8 where the
// body stays small).
//
// Scores are in base 2: the queries kernel folds beta log2(e) into q, so p = exp2(<q, x_j> - m).
// s - m is one chain of D FMAs with -m as the innermost addend (no operation of its own; a
// spare lane carrying -m would cost a multiply), then exp2, D FMAs into the accumulator and
// one add into the sum: 2 D + 2 operations per pair.
// The maximum is lazy: it starts at the score of the split's first key and moves only when a
// tile's sum leaves [0, 2^64] (a score more than about 64 above m); that tile is then redone
// with its exact maximum. Sums stay exact in meaning (l 2^m = sum_j 2^{s_j}) and no term can
// overflow. Each tile is summed on its own and added to the running sums afterwards, so
// rounding grows with TK + n / TK rather than n.
//
// The keys of one evaluation are cut into `params.splits` contiguous splits (workgroups along
// z), each with its own partial state [split][token]; a dispatch visits keys
// [chunk.key_offset, + chunk.key_count) of every split. attention_finish merges the splits.
// CPU twin: reference::stages::attention.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Queries, [batch * n_queries][DV] vec4 (pad lanes zero), in log2 units.
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
// Keys (and values), [batch, n_keys, D].
@group(0) @binding(3) var<storage, read> x: array<f32>;
// Partial state per split and query: acc [splits][batch * n_queries][DV] vec4 and (m, l).
@group(0) @binding(4) var<storage, read_write> acc_state: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ml_state: array<vec2<f32>>;

var<workgroup> tile: array<vec4<f32>, TILE_VECS>;
