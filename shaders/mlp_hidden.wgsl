// The perceptron block (docs/model.md §3), first half: hidden_tk = sigma(sum_c A_kc x_tc + b_k)
// for every query token t and hidden unit k, one invocation each (sigma: ReLU, or GELU in
// its tanh form). CPU twin: reference::stages::mlp_hidden.

@group(0) @binding(0) var<uniform> params: Params;
// A, [m, d] row-major.
@group(0) @binding(1) var<storage, read> mlp_a: array<f32>;
@group(0) @binding(2) var<storage, read> mlp_b: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
// [tokens, m].
@group(0) @binding(4) var<storage, read_write> hidden: array<f32>;
// The piece of the tokens this dispatch computes (only first_token and tokens are used).
@group(0) @binding(5) var<uniform> head: Head;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let m = params.mlp_hidden;
    let e = piece_element(lid, wid, params.hidden_groups_x, head, m);
    if e >= params.n_queries * params.batch * m {
        return;
    }
    let t = e / m;
    let k = e % m;
    var z = mlp_b[k];
    for (var c = 0u; c < D; c++) {
        z += mlp_a[k * D + c] * x[t * D + c];
    }
    if has_flag(params.flags, FLAG_GELU) {
        z = 0.5 * z * (1.0 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
    } else {
        z = max(z, 0.0);
    }
    hidden[e] = z;
}
