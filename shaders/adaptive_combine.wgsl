// The per-system combinations of adaptive stepping (src/integrate/adaptive.rs; docs/model.md
// §2, "Adaptive steps"), one invocation per token, a workgroup's tokens all of one system:
// the grid is (x, y) workgroups over a system's n tokens and z = the system. For token t of
// system b, element e (g = t d + e):
//   v = base + sum_j table[slot][b][first + j] k_j[g], j < terms (four stages per dispatch),
// base = 0, the state or `acc` (the running sum of a combination of more than four stages,
// made in two dispatches). Then, by mode:
//   0: acc <- v (each token renormalised if asked: the dense output),
//   1: stage <- v (each token renormalised if asked: a stage input, the new solution),
//   2: the error sum: partial[b][w] <- sum over the workgroup's tokens of
//      (v / (atol + rtol max(|x|, |stage|)))^2, reduced in workgroup memory (f32); the
//      partials of a system are summed by adaptive_reduce.wgsl.
// f64 twins (src/backend/reference/mod.rs): combine_by_system (modes 0, 1) and
// scaled_sums_by_system (mode 2 with adaptive_reduce.wgsl).
// The token dimension is a runtime size: the text is the same for every d and every adapter
// profile. CPU twins: cpu::CpuBackend::{combine_systems, scaled_sums, interpolate}.

const WG: u32 = 64u;

struct Adapt {
    mode: u32,
    base: u32,
    terms: u32,
    first: u32,
    // Coefficients of this dispatch: table[slot_base + b * stride + first + j].
    slot_base: u32,
    stride: u32,
    renormalise: u32,
    n: u32,
    d: u32,
    groups_x: u32,
    // Workgroups per system, and where the partial sums start in `work`.
    groups: u32,
    partials: u32,
    atol: f32,
    rtol: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> adapt: Adapt;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> stage: array<f32>;
// [acc: batch n d][partials: batch groups][sums: batch]
@group(0) @binding(4) var<storage, read_write> work: array<f32>;
@group(0) @binding(5) var<storage, read> k0: array<f32>;
@group(0) @binding(6) var<storage, read> k1: array<f32>;
@group(0) @binding(7) var<storage, read> k2: array<f32>;
@group(0) @binding(8) var<storage, read> k3: array<f32>;

var<workgroup> red: array<f32, WG>;

// Element g of v for system b.
fn combined(b: u32, g: u32) -> f32 {
    var v = 0.0;
    if adapt.base == 1u {
        v = state[g];
    } else if adapt.base == 2u {
        v = work[g];
    }
    let c = adapt.slot_base + b * adapt.stride + adapt.first;
    if adapt.terms > 0u {
        v += table[c] * k0[g];
    }
    if adapt.terms > 1u {
        v += table[c + 1u] * k1[g];
    }
    if adapt.terms > 2u {
        v += table[c + 2u] * k2[g];
    }
    if adapt.terms > 3u {
        v += table[c + 3u] * k3[g];
    }
    return v;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let b = wid.z;
    let w = wid.y * adapt.groups_x + wid.x;
    let i = w * WG + lid.x;
    let inside = w < adapt.groups && i < adapt.n;
    let first = (b * adapt.n + i) * adapt.d;
    if adapt.mode == 2u {
        var sum = 0.0;
        if inside {
            for (var e = 0u; e < adapt.d; e++) {
                let g = first + e;
                let v = combined(b, g);
                let scale = adapt.atol + adapt.rtol * max(abs(state[g]), abs(stage[g]));
                let r = v / scale;
                sum += r * r;
            }
        }
        // The workgroup's tokens summed in workgroup memory (barriers in uniform control
        // flow: the mode is a uniform, every invocation takes part).
        red[lid.x] = sum;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s = s / 2u) {
            if lid.x < s {
                red[lid.x] += red[lid.x + s];
            }
            workgroupBarrier();
        }
        if lid.x == 0u && w < adapt.groups {
            work[adapt.partials + b * adapt.groups + w] = red[0];
        }
        return;
    }
    if !inside {
        return;
    }
    // As rk_combine.wgsl: each element computed in both passes (the norm, then the writes)
    // rather than held in a private array of d floats; element g is read before it is
    // written (acc may be both the base and the output).
    var scale = 1.0;
    if adapt.renormalise != 0u {
        var norm2 = 0.0;
        for (var e = 0u; e < adapt.d; e++) {
            let v = combined(b, first + e);
            norm2 += v * v;
        }
        scale = 1.0 / sqrt(norm2);
    }
    for (var e = 0u; e < adapt.d; e++) {
        let g = first + e;
        let v = combined(b, g) * scale;
        if adapt.mode == 0u {
            work[g] = v;
        } else {
            stage[g] = v;
        }
    }
}
