// Random multi-head attention (docs/model.md §3): the weights of every head at this layer,
// drawn on the device from the counter-based generator (model::rng): entries of Q_h, K_h,
// V_h are scale / sqrt(d) times standard normals keyed by (seed, stream, layer, head, index),
// layer 0 unless redrawn at every layer; heads drawn per system use system b's seed
// rng::system_seed(seed, b). One invocation per element of [2, H, S, d, d] (S systems with
// heads of their own, 1 when shared): the first half writes M_hb = K_hb^T Q_hb (d draws of each
// per element), the second V_hb. CPU twin: model::RandomHeads::draw.

struct Redraw {
    seed_lo: u32,
    seed_hi: u32,
    heads: u32,
    // scale / sqrt(d)
    scale: f32,
    groups_x: u32,
    systems: u32,
    per_system: u32,
    layered: u32,
}

@group(0) @binding(0) var<uniform> redraw: Redraw;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> score_matrix: array<f32>;
@group(0) @binding(3) var<storage, read_write> value_matrix: array<f32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let per_head = D * D;
    let matrices = redraw.heads * redraw.systems;
    let e = token_index(lid, wid, redraw.groups_x);
    if e >= 2u * matrices * per_head {
        return;
    }
    let second = e >= matrices * per_head;
    let f = e % (matrices * per_head);
    let h = f / per_head / redraw.systems;
    let system = f / per_head % redraw.systems;
    let r = (f % per_head) / D;
    let c = f % D;
    var lo = redraw.seed_lo;
    var hi = redraw.seed_hi;
    if redraw.per_system != 0u {
        // rng::system_seed
        hi = rng_hash(redraw.seed_lo, redraw.seed_hi, STREAM_SYSTEM, system, 0u, 0u);
        lo = rng_hash(redraw.seed_lo, redraw.seed_hi, STREAM_SYSTEM, system, 0u, 1u);
    }
    let layer = select(0u, step.layer, redraw.layered != 0u);
    if second {
        value_matrix[f] = redraw.scale * rng_normal(lo, hi, STREAM_VALUE, layer, h, r * D + c);
        return;
    }
    // (K^T Q)_rc = sum_t K_tr Q_tc
    var s = 0.0;
    for (var t = 0u; t < D; t++) {
        let k = rng_normal(lo, hi, STREAM_KEY, layer, h, t * D + r);
        let q = rng_normal(lo, hi, STREAM_QUERY, layer, h, t * D + c);
        s += k * q;
    }
    score_matrix[f] = redraw.scale * redraw.scale * s;
}
