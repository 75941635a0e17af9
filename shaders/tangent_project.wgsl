// The layer's finish of the field (docs/model.md §1, §3; CPU twin: Model::finish_token), one
// invocation per query token x:
//   ODE on the sphere (output_scale = 0):  f <- f - (<x, f> / <x, x>) x,
// which is P_x^perp f for unit x and stays tangent at Runge-Kutta stage inputs slightly off
// the sphere;
//   peri-ln and ngpt (output_scale = s > 0):  f <- s f / (|f| + 1e-9),
// the output normalisation N(a) of those layer maps (s = 1 for peri-ln, alpha for ngpt).

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
    if params.output_scale != 0.0 {
        var norm2 = 0.0;
        for (var c = 0u; c < D; c++) {
            norm2 += field[o + c] * field[o + c];
        }
        let scale = params.output_scale / (sqrt(norm2) + 1e-9);
        for (var c = 0u; c < D; c++) {
            field[o + c] *= scale;
        }
        return;
    }
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
