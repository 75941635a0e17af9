// The tokens the Pre-LN family's block sees (docs/model.md §3), one invocation per token:
//   out <- x / |x|.
// CPU twin: reference::normalised_tokens.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = token_index(lid, wid, params.token_groups_x);
    if t >= params.n_queries * params.batch {
        return;
    }
    let o = t * D;
    var norm2 = 0.0;
    for (var c = 0u; c < D; c++) {
        norm2 += x[o + c] * x[o + c];
    }
    let inv = 1.0 / sqrt(norm2);
    for (var c = 0u; c < D; c++) {
        out[o + c] = x[o + c] * inv;
    }
}
