// Stage 2 of the attention field for larger d (docs/model.md §1): FlashAttention-2 in f32. A
// workgroup takes a block of BQ queries (kept in workgroup memory) and streams the keys of
// its split in tiles of BK; the key tile doubles as the value tile (the values are the keys:
// V is applied after the merge). Per tile:
//   1. score phase: invocation (row group, key group, d-slice) computes a TQS x TKS block of
//      scores <q_i, x_j> (base 2) as outer products over its slice of d; the slices are
//      summed and each row's maximum is taken across the invocations that share the row by
//      subgroup shuffles (where the adapter has them) or through workgroup memory;
//      the running maximum moves once per tile, p = exp2(s - m) goes to workgroup memory
//      with the rescale factor of each row;
//   2. output phase: invocation (row group, column group) rescales and accumulates its TQO
//      rows x TVO vec4 columns of sum_j p_ij x_j, and the row sums l.
// Where p travels as vec4s of four rows ("quads"), an invocation's rows are interleaved
// (rows srow + SR u, not srow TQS + u) and the rows of p (one per key) are BQ / 4 + 1 vec4s
// apart, so that the lanes of a warp meet distinct shared-memory banks
// (tests/shared_memory_banks.rs).
// The state written is the one attention_small.wgsl writes: [split][token] acc (DV vec4s)
// and (m, l), merged by attention_merge.wgsl. `main` is generated (src/backend/gpu/codegen.rs).
// CPU twin: reference::stages::attention.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Queries, [batch * n_queries][DV] vec4 (pad lanes zero), in log2 units.
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
// Partial state per split and query: acc [splits][batch * n_queries][DV] vec4 and (m, l).
@group(0) @binding(4) var<storage, read_write> acc_state: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ml_state: array<f32>;

// Query block and key tile, rows of STR vec4s (DVP used, one spare against bank conflicts).
var<workgroup> qs: array<vec4<f32>, QS_VECS>;
var<workgroup> kt: array<vec4<f32>, KT_VECS>;
// Each row's rescale factor 2^(m_old - m_new) for the tile; after it the generator declares
// the keys `x` at binding 3 (as vec4s when D is a multiple of 4), `ps`, the tile's p
// [key][row] (as vec4s of four rows where it can), and for adapters without subgroups `red`,
// the scratch of the reductions.
var<workgroup> alpha: array<f32, BQ>;
