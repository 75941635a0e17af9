// The attention vector field (MODELS.md §1), one invocation per query token.
// CPU twin: reference::attention.
//
// Scores are s_ij = beta <Q x_i, K x_j> = <q_i, x_j> with q_i = beta K^T Q x_i, so keys and
// values are the raw tokens: a_i = V sum_j w_ij x_j. Keys stream through workgroup memory in
// tiles of TK; each query keeps an online softmax (running max m, sum l, accumulator acc), so
// nothing of size n x n exists.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> betas: array<f32>;
// K^T Q, row-major d x d.
@group(0) @binding(2) var<storage, read> score_matrix: array<f32>;
// V, row-major d x d.
@group(0) @binding(3) var<storage, read> value_matrix: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> field: array<f32>;

var<workgroup> tile: array<f32, TILE_FLOATS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let n = params.n;
    let flags = params.flags;
    let causal = has_flag(flags, FLAG_CAUSAL);
    let system = wid.y;
    let i = wid.x * WG + lid.x;
    let is_query = i < n;
    let base = system * n * D;

    var xi: array<f32, D>;
    var q: array<f32, D>;
    var acc: array<f32, D>;
    let beta = betas[system];
    if is_query {
        for (var c = 0u; c < D; c++) {
            xi[c] = x[base + i * D + c];
        }
        if has_flag(flags, FLAG_IDENTITY_SCORES) {
            for (var c = 0u; c < D; c++) {
                q[c] = beta * xi[c];
            }
        } else {
            for (var r = 0u; r < D; r++) {
                var s = 0.0;
                for (var c = 0u; c < D; c++) {
                    s += score_matrix[r * D + c] * xi[c];
                }
                q[r] = beta * s;
            }
        }
    }
    for (var c = 0u; c < D; c++) {
        acc[c] = 0.0;
    }
    var m = F32_LOWEST;
    var l = 0.0;

    // Keys this workgroup needs: all of them, or (causal) up to its last query.
    var key_end = n;
    if causal {
        key_end = min(n, (wid.x + 1u) * WG);
    }
    // Keys query i sees.
    var seen = n;
    if causal {
        seen = i + 1u;
    }
    for (var start = 0u; start < key_end; start += TK) {
        let len = min(TK, key_end - start);
        workgroupBarrier();
        for (var e = lid.x; e < len * D; e += WG) {
            tile[e] = x[base + start * D + e];
        }
        workgroupBarrier();
        if is_query && start < seen {
            let mine = min(len, seen - start);
            for (var kk = 0u; kk < mine; kk++) {
                var s = 0.0;
                for (var c = 0u; c < D; c++) {
                    s += q[c] * tile[kk * D + c];
                }
                if s > m {
                    let r = exp(m - s);
                    l *= r;
                    for (var c = 0u; c < D; c++) {
                        acc[c] *= r;
                    }
                    m = s;
                }
                let p = exp(s - m);
                l += p;
                for (var c = 0u; c < D; c++) {
                    acc[c] += p * tile[kk * D + c];
                }
            }
        }
    }
    if !is_query {
        return;
    }

    // SA: divide by the softmax sum. USA: exp(m) / |J(i)|, as one exp so that it overflows
    // only when the result does.
    var scale = 1.0 / l;
    if has_flag(flags, FLAG_USA) {
        scale = exp(m - log(f32(seen)));
    }
    var a: array<f32, D>;
    if has_flag(flags, FLAG_IDENTITY_VALUES) {
        for (var c = 0u; c < D; c++) {
            a[c] = scale * acc[c];
        }
    } else {
        for (var r = 0u; r < D; r++) {
            var s = 0.0;
            for (var c = 0u; c < D; c++) {
                s += value_matrix[r * D + c] * acc[c];
            }
            a[r] = scale * s;
        }
    }
    if has_flag(flags, FLAG_SPHERE) {
        // Tangent projection P_x^perp a = a - <x, a> x.
        var along = 0.0;
        for (var c = 0u; c < D; c++) {
            along += xi[c] * a[c];
        }
        for (var c = 0u; c < D; c++) {
            a[c] -= along * xi[c];
        }
    }
    for (var c = 0u; c < D; c++) {
        field[base + i * D + c] = a[c];
    }
}
