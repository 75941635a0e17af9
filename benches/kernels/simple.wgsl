// The simplest online-softmax attention kernel, the baseline of benches/side_by_side.rs: one
// query per invocation holding its query, maximum, sum and accumulator in registers, every key
// read from a storage buffer, a running maximum per pair, loops over the coordinates. Keys are visited in chunks (one dispatch each, state carried in
// buffers) only because llvmpipe ends an invocation after 65535 loop iterations.
// Prepended: const D: u32 (the dimension).

struct Chunk {
    n: u32,
    start: u32,
    count: u32,
    first: u32,
}

@group(0) @binding(0) var<uniform> chunk: Chunk;
// beta x, [n, D]
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
// acc [n, D] and (m, l) [n, 2]
@group(0) @binding(3) var<storage, read_write> acc_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> ml: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= chunk.n {
        return;
    }
    var qi: array<f32, D>;
    var acc: array<f32, D>;
    var m = -3.4028235e38;
    var l = 0.0;
    for (var c = 0u; c < D; c++) {
        qi[c] = q[i * D + c];
        acc[c] = 0.0;
    }
    if chunk.first == 0u {
        m = ml[2u * i];
        l = ml[2u * i + 1u];
        for (var c = 0u; c < D; c++) {
            acc[c] = acc_state[i * D + c];
        }
    }
    for (var j = chunk.start; j < chunk.start + chunk.count; j++) {
        var s = 0.0;
        for (var c = 0u; c < D; c++) {
            s += qi[c] * x[j * D + c];
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
            acc[c] += p * x[j * D + c];
        }
    }
    ml[2u * i] = m;
    ml[2u * i + 1u] = l;
    for (var c = 0u; c < D; c++) {
        acc_state[i * D + c] = acc[c];
    }
}
