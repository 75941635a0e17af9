// Streamed pair statistics behind the observables (MODELS.md §1: energy, pairwise cosines),
// one invocation per token i of system b, over one chunk of tokens j per dispatch:
//   lse_max, lse_sum : sum_j exp(beta <x_i, x_j>) = exp(lse_max) lse_sum
//   min_cos, sum_cos : over j != i of cos(x_i, x_j)
//   sum_dot          : sum_j <x_i, x_j>
// CPU twin: reference::pair_stats.

struct PairStats {
    lse_max: f32,
    lse_sum: f32,
    min_cos: f32,
    sum_cos: f32,
    sum_dot: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read> betas: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<PairStats>;

var<workgroup> tile: array<vec4<f32>, TILE_VECS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let n = params.n_keys;
    let system = wid.y;
    let i = query_block_start(wid, params.query_groups_x) + lid.x;
    let is_query = i < n;
    let base = system * n * D;
    let beta = betas[system];

    var xi: array<vec4<f32>, DV>;
    var norm_i = 0.0;
    var out = PairStats(F32_LOWEST, 0.0, 3.0, 0.0, 0.0);
    if is_query {
        for (var v = 0u; v < DV; v++) {
            var w = vec4<f32>(0.0);
            for (var k = 0u; k < 4u; k++) {
                if 4u * v + k < D {
                    w[k] = x[base + i * D + 4u * v + k];
                }
            }
            xi[v] = w;
            norm_i += dot(w, w);
        }
        if chunk.first == 0u {
            out = stats[system * n + i];
        }
    }
    norm_i = sqrt(norm_i);
    let key_end = chunk.key_start + chunk.key_count;
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
        if is_query {
            for (var kk = 0u; kk < len; kk++) {
                var inner = 0.0;
                var norm_j = 0.0;
                for (var v = 0u; v < DV; v++) {
                    let w = tile[kk * DV + v];
                    inner += dot(xi[v], w);
                    norm_j += dot(w, w);
                }
                let e = beta * inner;
                if e > out.lse_max {
                    out.lse_sum *= exp(out.lse_max - e);
                    out.lse_max = e;
                }
                out.lse_sum += exp(e - out.lse_max);
                out.sum_dot += inner;
                if start + kk != i {
                    let cosine = inner / (norm_i * sqrt(norm_j));
                    out.min_cos = min(out.min_cos, cosine);
                    out.sum_cos += cosine;
                }
            }
        }
    }
    if is_query {
        stats[system * n + i] = out;
    }
}
