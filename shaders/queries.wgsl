// Stage 1 of the attention field (docs/model.md §1): the queries of one head h, in base 2,
//   q_t = beta_b log2(e) K_h^T Q_h x_t   (beta_b log2(e) x_t when every K^T Q = I),
// x the query tokens, so that the score against key x_j is s log2(e) = <q_t, x_j> and the
// attention kernels take exp2 of it. Written as DV vec4s per token; the pad lanes past D are
// never written and stay zero. One invocation per element (token t, row r), so each loops
// over d only. CPU twin: reference::stages::queries (natural units).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> head: Head;
@group(0) @binding(2) var<storage, read> betas: array<f32>;
// K_h^T Q_h for every head, [H, d, d] row-major ([H, batch, d, d] with heads per system).
@group(0) @binding(3) var<storage, read> score_matrix: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
// [batch * n_queries][DV] vec4, as floats.
@group(0) @binding(5) var<storage, read_write> q: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let e = piece_element(lid, wid, params.element_groups_x, head, D);
    if e >= params.n_queries * params.batch * D {
        return;
    }
    let t = e / D;
    let r = e % D;
    let out = t * DV * 4u + r;
    let beta = betas[t / params.n_queries] * LOG2E;
    if has_flag(params.flags, FLAG_IDENTITY_SCORES) {
        q[out] = beta * x[e];
        return;
    }
    // Heads drawn per system: [H, batch, d, d].
    var m = head.index * D * D;
    if has_flag(params.flags, FLAG_HEADS_PER_SYSTEM) {
        m = (head.index * params.batch + t / params.n_queries) * D * D;
    }
    var s = 0.0;
    for (var c = 0u; c < D; c++) {
        s += score_matrix[m + r * D + c] * x[t * D + c];
    }
    q[out] = beta * s;
}
