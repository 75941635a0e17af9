// One Runge-Kutta combination (MODELS.md §2), one invocation per token:
//   stage input:  stage = state + sum_s c_s k_s
//   end of step:  state = state + sum_s c_s k_s, renormalised to unit length on the sphere.
// Flags any NaN or infinity it writes. CPU twin: reference::rk_combine.

struct Combine {
    coeffs: vec4<f32>,
    terms: u32,
    to_state: u32,
    renormalise: u32,
    tokens: u32,
    groups_x: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> combine: Combine;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;
@group(0) @binding(2) var<storage, read_write> stage: array<f32>;
@group(0) @binding(3) var<storage, read> k0: array<f32>;
@group(0) @binding(4) var<storage, read> k1: array<f32>;
@group(0) @binding(5) var<storage, read> k2: array<f32>;
@group(0) @binding(6) var<storage, read> k3: array<f32>;
@group(0) @binding(7) var<storage, read_write> status: atomic<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = (wid.y * combine.groups_x + wid.x) * WG + lid.x;
    if t >= combine.tokens {
        return;
    }
    let c = combine.coeffs;
    var v: array<f32, D>;
    var norm2 = 0.0;
    for (var e = 0u; e < D; e++) {
        let g = t * D + e;
        var s = state[g];
        if combine.terms > 0u {
            s += c.x * k0[g];
        }
        if combine.terms > 1u {
            s += c.y * k1[g];
        }
        if combine.terms > 2u {
            s += c.z * k2[g];
        }
        if combine.terms > 3u {
            s += c.w * k3[g];
        }
        v[e] = s;
        norm2 += s * s;
    }
    var scale = 1.0;
    if combine.renormalise != 0u {
        scale = 1.0 / sqrt(norm2);
    }
    var bad = false;
    for (var e = 0u; e < D; e++) {
        let s = v[e] * scale;
        bad = bad || non_finite(s);
        if combine.to_state != 0u {
            state[t * D + e] = s;
        } else {
            stage[t * D + e] = s;
        }
    }
    if bad {
        atomicOr(&status, 1u);
    }
}
