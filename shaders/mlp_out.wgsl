// The perceptron block (docs/model.md §3), second half: field_tr += sum_k W_rk hidden_tk, one
// invocation per element (query token t, row r). CPU twin: reference::stages::mlp_out.

@group(0) @binding(0) var<uniform> params: Params;
// W, [d, m] row-major.
@group(0) @binding(1) var<storage, read> mlp_w: array<f32>;
@group(0) @binding(2) var<storage, read> hidden: array<f32>;
@group(0) @binding(3) var<storage, read_write> field: array<f32>;
// The piece of the tokens this dispatch computes (only first_token and tokens are used).
@group(0) @binding(4) var<uniform> head: Head;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let e = piece_element(lid, wid, params.element_groups_x, head, D);
    if e >= params.n_queries * params.batch * D {
        return;
    }
    let m = params.mlp_hidden;
    let t = e / D;
    let r = e % D;
    var s = 0.0;
    for (var k = 0u; k < m; k++) {
        s += mlp_w[r * m + k] * hidden[t * m + k];
    }
    field[e] += s;
}
