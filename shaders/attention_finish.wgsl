// Stage 4 of the attention field (docs/model.md §1, §3) for one head h, one invocation per
// element (query t, row r): a = V_h mean (mean from attention_merge, in split 0's
// accumulator), written to the output for the first head and added for the others, times
// c_h. The perceptron and (on the sphere) tangent_project.wgsl follow.
// CPU twin: reference::stages::attention_finish.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> head: Head;
// V_h for every head, [H, d, d] row-major ([H, batch, d, d] with heads per system).
@group(0) @binding(2) var<storage, read> value_matrix: array<f32>;
// The merged means, [batch * n_queries][DV] vec4 as floats (split 0 of the state).
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> field: array<f32>;

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
    let row = t * DV * 4u;
    var a = 0.0;
    if has_flag(params.flags, FLAG_IDENTITY_VALUES) {
        a = mean[row + r];
    } else {
        // Heads drawn per system: [H, batch, d, d].
        var v = head.index * D * D;
        if has_flag(params.flags, FLAG_HEADS_PER_SYSTEM) {
            v = (head.index * params.batch + t / params.n_queries) * D * D;
        }
        for (var c = 0u; c < D; c++) {
            a += value_matrix[v + r * D + c] * mean[row + c];
        }
    }
    var previous = 0.0;
    if head.accumulate != 0u {
        previous = field[e];
    }
    field[e] = previous + head.weight * a;
}
