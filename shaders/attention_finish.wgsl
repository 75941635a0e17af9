// Stage 3 of the attention field (MODELS.md §1, §3) for one head h, one invocation per
// element (query t, row r), so each loops over d only:
//   SA:  a = V_h acc / l                      (softmax weights)
//   USA: a = V_h acc e^(m - log Z_i)          (unnormalised weights; Z_i = |J(i)|, or with
//                                              ALiBi the positional sum, from the host)
// written to the output for the first head and added for the others, times c_h.
// The perceptron and (on the sphere) tangent_project.wgsl follow.
// CPU twin: reference::stages::attention_finish.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> head: Head;
// V_h for every head, [H, d, d] row-major.
@group(0) @binding(2) var<storage, read> value_matrix: array<f32>;
@group(0) @binding(3) var<storage, read> acc_state: array<f32>;
@group(0) @binding(4) var<storage, read> ml_state: array<f32>;
// log Z_i of USA for every query position i.
@group(0) @binding(5) var<storage, read> log_normaliser: array<f32>;
@group(0) @binding(6) var<storage, read_write> field: array<f32>;

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
        // One exp, so that it overflows only when the result does.
        scale = exp(m - log_normaliser[t % params.n_queries]);
    }
    var a = 0.0;
    if has_flag(flags, FLAG_IDENTITY_VALUES) {
        a = scale * acc_state[e];
    } else {
        let v = head.index * D * D;
        var s = 0.0;
        for (var c = 0u; c < D; c++) {
            s += value_matrix[v + r * D + c] * acc_state[t * D + c];
        }
        a = scale * s;
    }
    var previous = 0.0;
    if head.accumulate != 0u {
        previous = field[e];
    }
    field[e] = previous + head.weight * a;
}
