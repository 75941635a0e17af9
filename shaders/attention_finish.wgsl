// Stage 3 of the attention field (MODELS.md §1), one invocation per element (token t,
// row r), so each loops over d only:
//   SA:  a = V acc / l            (softmax weights)
//   USA: a = V acc e^m / |J(i)|   (unnormalised weights, |J(i)| the keys token i sees)
// On the sphere tangent_project.wgsl follows. CPU twin: reference::stages::attention_finish.

@group(0) @binding(0) var<uniform> params: Params;
// V, row-major d x d.
@group(0) @binding(1) var<storage, read> value_matrix: array<f32>;
@group(0) @binding(2) var<storage, read> acc_state: array<f32>;
@group(0) @binding(3) var<storage, read> ml_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> field: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let e = token_index(lid, wid, params.element_groups_x);
    if e >= params.n_queries * params.batch * D {
        return;
    }
    let t = e / D;
    let r = e % D;
    let flags = params.flags;
    let m = ml_state[2u * t];
    let l = ml_state[2u * t + 1u];
    var scale = 1.0 / l;
    if has_flag(flags, FLAG_USA) {
        var seen = params.n_keys;
        if has_flag(flags, FLAG_CAUSAL) {
            seen = t % params.n_queries + 1u;
        }
        // One exp, so that it overflows only when the result does.
        scale = exp(m - log(f32(seen)));
    }
    if has_flag(flags, FLAG_IDENTITY_VALUES) {
        field[e] = scale * acc_state[e];
        return;
    }
    var s = 0.0;
    for (var c = 0u; c < D; c++) {
        s += value_matrix[r * D + c] * acc_state[t * D + c];
    }
    field[e] = scale * s;
}
