// Stage 3 of the attention field (docs/model.md §1): merges the partial softmax states of the
// key splits of one head, one invocation per element (query t, coordinate r). With
// M = max_s m_s (base 2) and weights w_s = 2^(m_s - M):
//   SA:  mean = sum_s w_s acc_s / sum_s w_s l_s            (the softmax-weighted mean of keys)
//   USA: mean = sum_s w_s acc_s 2^(M - log2(e) log Z_i)    (unnormalised weights; Z_i = |J(i)|,
//                                                           or with ALiBi the positional sum)
// written in place over split 0's accumulator (lane r of token t), which attention_finish
// reads. The (m, l) pairs are left as they are. A split a query sees no key of has l = 0 and
// m = F32_LOWEST and weighs nothing. CPU twin: reference::stages::attention_finish (its
// first half).

@group(0) @binding(0) var<uniform> params: Params;
// [splits][batch * n_queries][DV] vec4, as floats.
@group(0) @binding(1) var<storage, read_write> acc_state: array<f32>;
// [splits][batch * n_queries] (m, l).
@group(0) @binding(2) var<storage, read> ml_state: array<f32>;
// log Z_i of USA for every query position i.
@group(0) @binding(3) var<storage, read> log_normaliser: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let e = token_index(lid, wid, params.element_groups_x);
    let tokens = params.n_queries * params.batch;
    if e >= tokens * D {
        return;
    }
    let t = e / D;
    let r = e % D;
    var top = F32_LOWEST;
    for (var s = 0u; s < params.splits; s++) {
        top = max(top, ml_state[2u * (s * tokens + t)]);
    }
    var l = 0.0;
    var a = 0.0;
    for (var s = 0u; s < params.splits; s++) {
        let u = s * tokens + t;
        let w = exp2(ml_state[2u * u] - top);
        l += w * ml_state[2u * u + 1u];
        a += w * acc_state[u * DV * 4u + r];
    }
    var scale = 1.0 / l;
    if has_flag(params.flags, FLAG_USA) {
        // One exp2, so that it overflows only when the result does.
        scale = exp2(top - LOG2E * log_normaliser[t % params.n_queries]);
    }
    acc_state[t * DV * 4u + r] = scale * a;
}
