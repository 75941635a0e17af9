// Stage 2 of the attention field (MODELS.md §1): the online softmax of every query over one
// chunk of keys, one invocation per query. Keys stream through workgroup memory in tiles of
// TK; each query carries a running maximum m, sum l and accumulator acc (the keys are also
// the values: a = V sum_j w_j x_j, applied in attention_finish), merged exactly across
// chunks, so nothing of size n x n exists. CPU twin: reference::stages::attention.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
// Partial state per token: acc [tokens, D] and (m, l) [tokens, 2].
@group(0) @binding(4) var<storage, read_write> acc_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> ml_state: array<f32>;

var<workgroup> tile: array<f32, TILE_FLOATS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let n = params.n;
    let causal = has_flag(params.flags, FLAG_CAUSAL);
    let system = wid.y;
    let i = wid.x * WG + lid.x;
    let is_query = i < n;
    let base = system * n * D;
    let t = system * n + i;

    var qi: array<f32, D>;
    var acc: array<f32, D>;
    var m = F32_LOWEST;
    var l = 0.0;
    if is_query {
        for (var c = 0u; c < D; c++) {
            qi[c] = q[t * D + c];
            acc[c] = 0.0;
        }
        if chunk.first == 0u {
            m = ml_state[2u * t];
            l = ml_state[2u * t + 1u];
            for (var c = 0u; c < D; c++) {
                acc[c] = acc_state[t * D + c];
            }
        }
    }

    // Keys of this chunk the workgroup needs: all, or (causal) up to its last query.
    var key_end = chunk.key_start + chunk.key_count;
    if causal {
        key_end = min(key_end, (wid.x + 1u) * WG);
    }
    // One past the last key query i sees.
    var seen_end = n;
    if causal {
        seen_end = i + 1u;
    }
    for (var start = chunk.key_start; start < key_end; start += TK) {
        let len = min(TK, key_end - start);
        workgroupBarrier();
        for (var e = lid.x; e < len * D; e += WG) {
            tile[e] = x[base + start * D + e];
        }
        workgroupBarrier();
        if is_query && start < seen_end {
            let mine = min(len, seen_end - start);
            for (var kk = 0u; kk < mine; kk++) {
                var s = 0.0;
                for (var c = 0u; c < D; c++) {
                    s += qi[c] * tile[kk * D + c];
                }
                if s > m {
                    // The running maximum moves: rescale what was summed so far.
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
    if is_query {
        ml_state[2u * t] = m;
        ml_state[2u * t + 1u] = l;
        for (var c = 0u; c < D; c++) {
            acc_state[t * D + c] = acc[c];
        }
    }
}
