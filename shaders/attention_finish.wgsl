// Stage 3 of the attention field (MODELS.md §1), one invocation per token:
//   SA:  a = V acc / l            (softmax weights)
//   USA: a = V acc e^m / |J(i)|   (unnormalised weights, |J(i)| the keys token i sees)
// then on the sphere the tangent projection f = a - (<x, a> / <x, x>) x, which is
// P_x^perp a for unit x and stays tangent at Runge-Kutta stage inputs slightly off the
// sphere. CPU twin: reference::stages::attention_finish.

@group(0) @binding(0) var<uniform> params: Params;
// V, row-major d x d.
@group(0) @binding(1) var<storage, read> value_matrix: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> acc_state: array<f32>;
@group(0) @binding(4) var<storage, read> ml_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> field: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = token_index(lid, wid, params.token_groups_x);
    if t >= params.n * params.batch {
        return;
    }
    let flags = params.flags;
    let m = ml_state[2u * t];
    let l = ml_state[2u * t + 1u];
    var scale = 1.0 / l;
    if has_flag(flags, FLAG_USA) {
        var seen = params.n;
        if has_flag(flags, FLAG_CAUSAL) {
            seen = t % params.n + 1u;
        }
        // One exp, so that it overflows only when the result does.
        scale = exp(m - log(f32(seen)));
    }
    let o = t * D;
    for (var r = 0u; r < D; r++) {
        if has_flag(flags, FLAG_IDENTITY_VALUES) {
            field[o + r] = scale * acc_state[o + r];
        } else {
            var s = 0.0;
            for (var c = 0u; c < D; c++) {
                s += value_matrix[r * D + c] * acc_state[o + c];
            }
            field[o + r] = scale * s;
        }
    }
    if has_flag(flags, FLAG_SPHERE) {
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
}
