// Stage 2 of the attention field (docs/model.md §1): the online softmax of every query over one
// chunk of keys, one invocation per query. Keys stream through workgroup memory in tiles of
// TK, each key as DV vec4s (zero padded past D); each query carries a running maximum m,
// sum l and accumulator acc (the keys are also the values: a = V sum_j w_j x_j, applied in
// attention_finish), merged exactly across chunks, so nothing of size n x n exists. Each
// tile is summed on its own and then added to the running sums, so rounding grows with
// TK + n / TK rather than n. ALiBi subtracts slope (i - j) from the scores.
// CPU twin: reference::stages::attention.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
// Queries (from queries.wgsl), [batch, n_queries, D].
@group(0) @binding(2) var<storage, read> q: array<f32>;
// Keys (and values), [batch, n_keys, D].
@group(0) @binding(3) var<storage, read> x: array<f32>;
// Partial state per query: acc [batch * n_queries, D] and (m, l) [batch * n_queries, 2].
@group(0) @binding(4) var<storage, read_write> acc_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> ml_state: array<f32>;

var<workgroup> tile: array<vec4<f32>, TILE_VECS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let causal = has_flag(params.flags, FLAG_CAUSAL);
    let alibi = has_flag(params.flags, FLAG_ALIBI);
    let system = wid.y;
    let first_query = query_block_start(wid, params.query_groups_x);
    let i = first_query + lid.x;
    let is_query = i < params.n_queries;
    let base = system * params.n_keys * D;
    let t = system * params.n_queries + i;

    var qi: array<vec4<f32>, DV>;
    var acc: array<vec4<f32>, DV>;
    var tacc: array<vec4<f32>, DV>;
    var m = F32_LOWEST;
    var l = 0.0;
    if is_query {
        let first = chunk.first != 0u;
        if !first {
            m = ml_state[2u * t];
            l = ml_state[2u * t + 1u];
        }
        for (var v = 0u; v < DV; v++) {
            var qv = vec4<f32>(0.0);
            var av = vec4<f32>(0.0);
            for (var k = 0u; k < 4u; k++) {
                let c = 4u * v + k;
                if c < D {
                    qv[k] = q[t * D + c];
                    if !first {
                        av[k] = acc_state[t * D + c];
                    }
                }
            }
            qi[v] = qv;
            acc[v] = av;
        }
    }

    // Keys of this chunk the workgroup needs: all, or (causal) up to its last query.
    var key_end = chunk.key_start + chunk.key_count;
    if causal {
        key_end = min(key_end, first_query + WG);
    }
    // One past the last key query i sees.
    var seen_end = params.n_keys;
    if causal {
        seen_end = i + 1u;
    }
    for (var start = chunk.key_start; start < key_end; start += TK) {
        let len = min(TK, key_end - start);
        workgroupBarrier();
        for (var e = lid.x; e < len * DV; e += WG) {
            let o = base + (start + e / DV) * D + 4u * (e % DV);
            var w = vec4<f32>(0.0);
            for (var k = 0u; k < 4u; k++) {
                if 4u * (e % DV) + k < D {
                    w[k] = x[o + k];
                }
            }
            tile[e] = w;
        }
        workgroupBarrier();
        if is_query && start < seen_end {
            let mine = min(len, seen_end - start);
            var tl = 0.0;
            for (var v = 0u; v < DV; v++) {
                tacc[v] = vec4<f32>(0.0);
            }
            for (var kk = 0u; kk < mine; kk++) {
                var s = 0.0;
                for (var v = 0u; v < DV; v++) {
                    s += dot(qi[v], tile[kk * DV + v]);
                }
                if alibi {
                    // ALiBi (causal only, so start + kk <= i).
                    s -= params.alibi_slope * f32(i - (start + kk));
                }
                if s > m {
                    // The running maximum moves: rescale everything summed so far.
                    let r = exp(m - s);
                    l *= r;
                    tl *= r;
                    for (var v = 0u; v < DV; v++) {
                        acc[v] *= r;
                        tacc[v] *= r;
                    }
                    m = s;
                }
                let p = exp(s - m);
                tl += p;
                for (var v = 0u; v < DV; v++) {
                    tacc[v] += p * tile[kk * DV + v];
                }
            }
            l += tl;
            for (var v = 0u; v < DV; v++) {
                acc[v] += tacc[v];
            }
        }
    }
    if is_query {
        ml_state[2u * t] = m;
        ml_state[2u * t + 1u] = l;
        for (var v = 0u; v < DV; v++) {
            for (var k = 0u; k < 4u; k++) {
                let c = 4u * v + k;
                if c < D {
                    acc_state[t * D + c] = acc[v][k];
                }
            }
        }
    }
}
