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

// Element e of token t after the combination (state + sum_s c_s k_s), with its noise.
fn combined(t: u32, e: u32, system: u32, i: u32, radial: f32) -> f32 {
    let c = combine.coeffs;
    let g = t * D + e;
    let x = state[g];
    var s = x;
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
    if combine.noise_amplitude != 0.0 {
        s += combine.noise_amplitude * (noise_draw(system, i, e) - radial * x);
    }
    return s;
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
    // Each element of the combination is computed where it is needed, in each of the two
    // passes (the norm, then the writes), rather than held in a private array of D floats:
    // llvmpipe takes minutes to compile such an array at d = 1024 (docs/accuracy.md, "The
    // test command"). Both passes compute it with the same operations, so the norm is that
    // of the values written.
    var system = 0u;
    var i = 0u;
    var radial = 0.0;
    if combine.noise_amplitude != 0.0 {
        system = t / combine.n;
        i = t % combine.n;
        // xi, projected onto the tangent space at the state token (on the sphere).
        var along = 0.0;
        var base2 = 0.0;
        for (var e = 0u; e < D; e++) {
            let x = state[t * D + e];
            along += x * noise_draw(system, i, e);
            base2 += x * x;
        }
        if combine.sphere != 0u {
            radial = along / base2;
        }
    }
    var norm2 = 0.0;
    for (var e = 0u; e < D; e++) {
        let s = combined(t, e, system, i, radial);
        norm2 += s * s;
    }
    var scale = 1.0;
    if combine.renormalise != 0u {
        scale = 1.0 / sqrt(norm2);
    }
    var bad = false;
    for (var e = 0u; e < D; e++) {
        // Element e of the token is read (in `combined`) before it is written.
        let s = combined(t, e, system, i, radial) * scale;
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
