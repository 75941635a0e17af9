// One Runge-Kutta combination (docs/model.md §2), one invocation per token:
//   stage input:  stage = state + sum_s c_s k_s
//   end of step:  state = state + sum_s c_s k_s (+ sigma sqrt(h) P^perp xi, Euler-Maruyama
//                 noise drawn from the counter-based generator for this step), renormalised
//                 to unit length on the sphere.
// Flags any NaN or infinity it writes, with the layer in which it first appeared. CPU twin:
// reference::rk_combine.

struct Combine {
    coeffs: vec4<f32>,
    terms: u32,
    to_state: u32,
    renormalise: u32,
    tokens: u32,
    groups_x: u32,
    // Noise: amplitude sigma sqrt(h) (0: none), common to the system or per token, its seed,
    // and n (tokens per system) and the sphere flag for the projection.
    noise_amplitude: f32,
    noise_common: u32,
    seed_lo: u32,
    seed_hi: u32,
    n: u32,
    sphere: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> combine: Combine;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> stage: array<f32>;
@group(0) @binding(4) var<storage, read> k0: array<f32>;
@group(0) @binding(5) var<storage, read> k1: array<f32>;
@group(0) @binding(6) var<storage, read> k2: array<f32>;
@group(0) @binding(7) var<storage, read> k3: array<f32>;
@group(0) @binding(8) var<storage, read_write> status: atomic<u32>;

// Draw e of token i's noise in this step (one shared draw per system for common noise).
fn noise_draw(system: u32, i: u32, e: u32) -> f32 {
    if combine.noise_common != 0u {
        return rng_normal(combine.seed_lo, combine.seed_hi, STREAM_COMMON_NOISE, step.layer, system, e);
    }
    return rng_normal(combine.seed_lo, combine.seed_hi, STREAM_NOISE, step.layer, system, i * D + e);
}

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
    }
    if combine.noise_amplitude != 0.0 {
        // xi, projected onto the tangent space at the state token (on the sphere). The draws
        // are regenerated in the second loop rather than held in a private array of size D
        // (which llvmpipe compiles slowly for large D).
        let system = t / combine.n;
        let i = t % combine.n;
        var along = 0.0;
        var base2 = 0.0;
        for (var e = 0u; e < D; e++) {
            let x = state[t * D + e];
            along += x * noise_draw(system, i, e);
            base2 += x * x;
        }
        var radial = 0.0;
        if combine.sphere != 0u {
            radial = along / base2;
        }
        for (var e = 0u; e < D; e++) {
            let x = state[t * D + e];
            v[e] += combine.noise_amplitude * (noise_draw(system, i, e) - radial * x);
        }
    }
    for (var e = 0u; e < D; e++) {
        norm2 += v[e] * v[e];
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
        // The first layer that went bad wins: status holds 0xffffffff - layer (0: none).
        atomicMax(&status, 0xffffffffu - step.layer);
    }
}
