// The tangent projection of the field on the sphere (docs/model.md §1), one invocation per query
// token x:
//   f <- f - (<x, f> / <x, x>) x,
// which is P_x^perp f for unit x and stays tangent at Runge-Kutta stage inputs slightly off
// the sphere. CPU twin: reference::tangent_project.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> field: array<f32>;

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
    var along = 0.0;
    var norm2 = 0.0;
    for (var c = 0u; c < D; c++) {
        along += x[o + c] * field[o + c];
        norm2 += x[o + c] * x[o + c];
    }
    along /= norm2;
    for (var c = 0u; c < D; c++) {
        field[o + c] -= along * x[o + c];
    }
}
