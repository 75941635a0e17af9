//! The research variants (docs/model.md §3) on every backend: multi-head (sum and mean), random
//! deep attention with per-layer redraws, ALiBi for SA and USA, the perceptron block (ReLU and
//! GELU), Euler-Maruyama noise (independent and common), each GPU and cpu run against the f64
//! reference after several steps; and the identities that pin them down: one head equals the
//! core model, sigma = 0 equals the deterministic run, the device's redraws equal the host's.
//!
//! Tolerance: |got - want| <= 1e-5 + 1e-5 |want| per coordinate (measured errors are ~2e-7; f32
//! kernels against f64 after a few steps that move tokens by about 0.01 each).

mod common;

use attnflow::cpu::CpuBackend;
use attnflow::gpu::GpuBackend;
use attnflow::integrate::{Backend, Integrator};
use attnflow::model::init::InitSpec;
use attnflow::model::weights::{MlpSpec, QkvSpec, Weights};
use attnflow::model::{
    Activation, Attention, Geometry, HeadCombine, Mask, Model, Noise, RandomHeads, Shape,
};
use attnflow::reference::ReferenceBackend;
use attnflow::run::integrate_steps;
use common::*;

const TOL: f64 = 1e-5;

/// One variant case: a model, a shape, an integrator and how far to go.
struct Variant {
    name: String,
    model: Model,
    shape: Shape,
    integrator: Integrator,
    h: f64,
    steps: usize,
    seed: u64,
}

impl Variant {
    fn new(name: &str, model: Model, shape: Shape) -> Self {
        Variant {
            name: name.into(),
            model,
            shape,
            integrator: Integrator::Rk4,
            h: 0.02,
            steps: 3,
            seed: 11,
        }
    }

    fn initial(&self) -> Vec<f64> {
        InitSpec::Uniform
            .generate(self.shape, self.model.geometry, self.seed)
            .unwrap()
    }

    fn evolve(&self, backend: &mut dyn Backend) -> Vec<f64> {
        integrate_steps(backend, &self.model, self.integrator, self.h, self.steps)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        backend.read_state().unwrap().to_f64()
    }

    fn reference(&self) -> Vec<f64> {
        let x0 = self.initial();
        self.evolve(&mut ReferenceBackend::new(&self.model, self.shape, &x0).unwrap())
    }

    /// cpu and (when there is one) gpu against the reference; returns the largest errors.
    fn check(&self) -> (f64, Option<f64>) {
        let want = self.reference();
        let x0 = self.initial();
        // The run must actually move the tokens, or the comparison says little.
        let moved = want
            .iter()
            .zip(&x0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            want.iter().all(|v| v.is_finite()) && moved > 1e-3,
            "{}: tokens moved by {moved:.1e} (or the reference is not finite)",
            self.name
        );
        let got = self.evolve(&mut CpuBackend::new(&self.model, self.shape, &x0).unwrap());
        let cpu = assert_close(
            &got,
            &want,
            self.shape,
            TOL,
            TOL,
            &format!("cpu {}", self.name),
        );
        let gpu = gpu().map(|ctx| {
            let got = self.evolve(&mut GpuBackend::new(ctx, &self.model, self.shape, &x0).unwrap());
            assert_close(
                &got,
                &want,
                self.shape,
                TOL,
                TOL,
                &format!("gpu {}", self.name),
            )
        });
        eprintln!("{}: max error cpu {cpu:.2e}, gpu {gpu:?}", self.name);
        (cpu, gpu)
    }
}

fn model(attention: Attention, geometry: Geometry, mask: Mask, d: usize, betas: Vec<f64>) -> Model {
    Model::new(attention, geometry, mask, Weights::identity(d), betas)
}

fn random_heads(d: usize, seed: u64, heads: usize) -> Vec<Weights> {
    QkvSpec::Random(seed).resolve_heads(d, Some(heads)).unwrap()
}

#[test]
fn multi_head_sum_and_mean_match_reference() {
    for (combine, attention, geometry, mask, n, d, batch) in [
        (
            HeadCombine::Sum,
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            65,
            16,
            1,
        ),
        (
            HeadCombine::Mean,
            Attention::Usa,
            Geometry::Euclidean,
            Mask::Causal,
            33,
            3,
            2,
        ),
        (
            HeadCombine::Mean,
            Attention::Sa,
            Geometry::Sphere,
            Mask::Causal,
            70,
            64,
            1,
        ),
    ] {
        let shape = Shape::new(batch, n, d).unwrap();
        let mut m = model(attention, geometry, mask, d, vec![2.0; batch]);
        m.heads = random_heads(d, 7, 3);
        m.combine = combine;
        let v = Variant::new(
            &format!("3 heads {combine:?} {attention:?} {mask:?} n={n} d={d}"),
            m,
            shape,
        );
        v.check();
    }
}

/// H = 1 is the core model; H = 2 identical heads averaged is one head.
#[test]
fn one_head_and_averaged_identical_heads_equal_the_single_head_model() {
    let shape = Shape::new(1, 40, 8).unwrap();
    let w = Weights::random(8, 3);
    let single = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        w.clone(),
        vec![3.0],
    );
    let mut one = single.clone();
    one.heads = random_heads(8, 3, 1);
    assert_eq!(
        one.heads[0], w,
        "head 0 of random:SEED is the single-head draw"
    );
    one.combine = HeadCombine::Mean;
    let mut two = single.clone();
    two.heads = vec![w.clone(), w];
    two.combine = HeadCombine::Mean;
    let base = Variant::new("single head", single, shape);
    let want = base.reference();
    let x0 = base.initial();
    for (name, m) in [("H = 1 mean", one), ("H = 2 identical, mean", two)] {
        let v = Variant::new(name, m, shape);
        let got = v.reference();
        assert_close(
            &got,
            &want,
            shape,
            1e-13,
            1e-13,
            &format!("reference {name}"),
        );
        if let Some(ctx) = gpu() {
            let got = v.evolve(&mut GpuBackend::new(ctx.clone(), &v.model, shape, &x0).unwrap());
            let single = base.evolve(&mut GpuBackend::new(ctx, &base.model, shape, &x0).unwrap());
            assert_close(&got, &single, shape, 1e-6, 1e-6, &format!("gpu {name}"));
        }
    }
}

#[test]
fn alibi_matches_reference_for_sa_and_usa() {
    for (attention, lambda, n, d, beta, geometry) in [
        (Attention::Sa, 4.0, 63, 3, 5.0, Geometry::Sphere),
        (Attention::Usa, 2.0, 100, 2, 1.0, Geometry::Sphere),
        (Attention::Usa, 8.0, 65, 4, 0.5, Geometry::Euclidean),
        (Attention::Sa, 1.0, 257, 16, 2.0, Geometry::Sphere),
    ] {
        let shape = Shape::new(1, n, d).unwrap();
        let mut m = model(attention, geometry, Mask::Causal, d, vec![beta]);
        m.alibi = Some(attnflow::model::Alibi::new(lambda));
        Variant::new(
            &format!("ALiBi {attention:?} lambda={lambda} n={n} d={d}"),
            m,
            shape,
        )
        .check();
    }
}

/// ALiBi changes the answer (so the comparison above tests the bias, not its absence), and a
/// slope of 0 is no bias at all.
#[test]
fn alibi_slope_zero_is_no_bias_and_a_slope_changes_the_flow() {
    let shape = Shape::new(1, 50, 3).unwrap();
    let plain = Variant::new(
        "no ALiBi",
        model(Attention::Usa, Geometry::Sphere, Mask::Causal, 3, vec![1.0]),
        shape,
    );
    let want = plain.reference();
    let mut zero = plain.model.clone();
    zero.alibi = Some(attnflow::model::Alibi::new(0.0));
    let got = Variant::new("ALiBi 0", zero, shape).reference();
    assert_close(&got, &want, shape, 1e-14, 1e-14, "ALiBi slope 0");
    let mut biased = plain.model.clone();
    biased.alibi = Some(attnflow::model::Alibi::new(10.0));
    let got = Variant::new("ALiBi 10", biased, shape).reference();
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff > 1e-3, "ALiBi 10 moved the result by only {diff:.1e}");
}

#[test]
fn perceptron_block_matches_reference_with_relu_and_gelu() {
    for (activation, hidden, n, d, geometry, attention) in [
        (Activation::Relu, 32, 40, 8, Geometry::Sphere, Attention::Sa),
        (
            Activation::Gelu,
            16,
            65,
            3,
            Geometry::Euclidean,
            Attention::Sa,
        ),
        (
            Activation::Gelu,
            100,
            20,
            64,
            Geometry::Sphere,
            Attention::Usa,
        ),
    ] {
        let shape = Shape::new(1, n, d).unwrap();
        let mut m = model(attention, geometry, Mask::Full, d, vec![1.0]);
        m.mlp = Some(
            MlpSpec::Random { hidden, seed: 5 }
                .resolve(d, activation)
                .unwrap(),
        );
        Variant::new(
            &format!("MLP {activation:?} m={hidden} n={n} d={d}"),
            m,
            shape,
        )
        .check();
    }
}

#[test]
fn random_deep_attention_matches_reference_and_redraws_every_layer() {
    for (heads, scale, n, d, combine) in [
        (2, 1.0, 50, 8, HeadCombine::Sum),
        (4, 2.0, 33, 3, HeadCombine::Mean),
    ] {
        let shape = Shape::new(1, n, d).unwrap();
        let mut m = model(Attention::Sa, Geometry::Sphere, Mask::Full, d, vec![1.0]);
        m.heads = vec![Weights::identity(d); heads];
        m.random = Some(RandomHeads::redrawn(heads, scale, 9));
        m.combine = combine;
        let mut v = Variant::new(&format!("redraw H={heads} scale={scale} d={d}"), m, shape);
        v.steps = 5;
        v.check();
        // Each layer draws new weights: layer 0 and layer 1 differ.
        let r = v.model.random.unwrap();
        assert_ne!(r.layer(d, 0)[0].q, r.layer(d, 1)[0].q);
    }
}

/// The device draws the same weights as the host generator (model::RandomHeads::layer).
#[test]
fn gpu_redraws_equal_the_host_draws() {
    let Some(ctx) = gpu() else { return };
    let (d, heads) = (5, 3);
    let shape = Shape::new(1, 10, d).unwrap();
    let mut m = model(Attention::Sa, Geometry::Sphere, Mask::Full, d, vec![1.0]);
    m.heads = vec![Weights::identity(d); heads];
    m.random = Some(RandomHeads::redrawn(heads, 1.5, 12345678901));
    let x0 = InitSpec::Uniform
        .generate(shape, Geometry::Sphere, 1)
        .unwrap();
    let mut gpu = GpuBackend::new(ctx, &m, shape, &x0).unwrap();
    gpu.prepare(1).unwrap();
    for layer in [0u32, 1, 7, 1000] {
        gpu.begin_step(layer).unwrap();
        let (scores, values) = gpu.read_head_matrices().unwrap();
        let want = m.random.unwrap().layer(d, layer);
        let mut worst = 0.0f64;
        for (h, w) in want.iter().enumerate() {
            let score = w.score_matrix();
            for e in 0..d * d {
                let ds = (f64::from(scores[h * d * d + e]) - score[e]).abs();
                let dv = (f64::from(values[h * d * d + e]) - w.v[e]).abs();
                assert!(
                    ds <= 1e-5 * (1.0 + score[e].abs()) && dv <= 1e-6 * (1.0 + w.v[e].abs()),
                    "layer {layer} head {h} entry {e}: M {} vs {}, V {} vs {}",
                    scores[h * d * d + e],
                    score[e],
                    values[h * d * d + e],
                    w.v[e]
                );
                worst = worst.max(ds).max(dv);
            }
        }
        eprintln!("layer {layer}: largest |gpu - host| entry {worst:.1e}");
    }
}

fn noisy(common: bool, sigma: f64, d: usize, mask: Mask) -> Model {
    let mut m = model(Attention::Sa, Geometry::Sphere, mask, d, vec![1.0, 3.0]);
    m.noise = Some(Noise {
        sigma,
        common,
        seed: 77,
    });
    m
}

#[test]
fn euler_maruyama_noise_matches_reference_independent_and_common() {
    for (common, d, mask) in [
        (false, 3, Mask::Full),
        (true, 16, Mask::Causal),
        (false, 64, Mask::Full),
    ] {
        let shape = Shape::new(2, 40, d).unwrap();
        let mut v = Variant::new(
            &format!("noise common={common} d={d}"),
            noisy(common, 0.3, d, mask),
            shape,
        );
        v.integrator = Integrator::Euler;
        v.h = 0.01;
        v.steps = 20;
        v.check();
    }
}

/// sigma = 0 is the deterministic run; common noise moves every token of a system by the same
/// draw, independent noise does not.
#[test]
fn noise_with_sigma_zero_is_deterministic_and_common_noise_is_shared() {
    let d = 3;
    let shape = Shape::new(2, 30, d).unwrap();
    let mut det = Variant::new(
        "deterministic",
        model(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Full,
            d,
            vec![1.0, 3.0],
        ),
        shape,
    );
    det.integrator = Integrator::Euler;
    let mut zero = Variant::new("sigma 0", noisy(false, 0.0, d, Mask::Full), shape);
    zero.integrator = Integrator::Euler;
    assert_close(
        &zero.reference(),
        &det.reference(),
        shape,
        0.0,
        0.0,
        "reference sigma 0",
    );
    if let Some(ctx) = gpu() {
        let x0 = det.initial();
        let a = zero.evolve(&mut GpuBackend::new(ctx.clone(), &zero.model, shape, &x0).unwrap());
        let b = det.evolve(&mut GpuBackend::new(ctx, &det.model, shape, &x0).unwrap());
        assert_close(&a, &b, shape, 1e-7, 1e-7, "gpu sigma 0");
    }
    // Without attention (beta = 0 on the euclidean plane the field is the mean, the same for
    // every token), the difference between two tokens is untouched by common noise.
    let spread = |common: bool| {
        let mut m = model(Attention::Sa, Geometry::Euclidean, Mask::Full, d, vec![0.0]);
        m.noise = Some(Noise {
            sigma: 1.0,
            common,
            seed: 3,
        });
        let shape = Shape::new(1, 2, d).unwrap();
        let mut v = Variant::new("spread", m, shape);
        v.integrator = Integrator::Euler;
        v.h = 0.01;
        v.steps = 10;
        let (x0, x) = (v.initial(), v.reference());
        (0..d)
            .map(|c| ((x[c] - x[d + c]) - (x0[c] - x0[d + c])).abs())
            .fold(0.0, f64::max)
    };
    assert!(
        spread(true) < 1e-12,
        "common noise changed a token difference by {:.1e}",
        spread(true)
    );
    assert!(
        spread(false) > 0.05,
        "independent noise changed a token difference by only {:.1e}",
        spread(false)
    );
}

/// Everything at once: two heads averaged, ALiBi, a GELU perceptron, USA, causal, a batch.
#[test]
fn all_variants_together_match_reference() {
    let (n, d) = (48, 8);
    let shape = Shape::new(2, n, d).unwrap();
    let mut m = model(
        Attention::Usa,
        Geometry::Sphere,
        Mask::Causal,
        d,
        vec![1.0, 4.0],
    );
    m.heads = random_heads(d, 21, 2);
    m.combine = HeadCombine::Mean;
    m.alibi = Some(attnflow::model::Alibi::new(3.0));
    m.mlp = Some(
        MlpSpec::Random {
            hidden: 24,
            seed: 2,
        }
        .resolve(d, Activation::Gelu)
        .unwrap(),
    );
    Variant::new("heads + ALiBi + MLP", m, shape).check();
}

/// The Post-LN layer x <- normalise(x + h a(x)) (the research code's layer map), written out
/// here in plain f64: SA, Q = K = V = I, a_i = sum_j softmax_j(beta <x_i, x_j>) x_j (causal: j
/// <= i), no tangent projection.
fn post_ln_by_hand(
    x: &[f64],
    n: usize,
    d: usize,
    beta: f64,
    h: f64,
    steps: usize,
    causal: bool,
) -> Vec<f64> {
    let mut x = x.to_vec();
    for _ in 0..steps {
        let mut next = x.clone();
        for i in 0..n {
            let xi = &x[i * d..(i + 1) * d];
            let seen = if causal { i + 1 } else { n };
            let scores: Vec<f64> = (0..seen)
                .map(|j| beta * (0..d).map(|c| xi[c] * x[j * d + c]).sum::<f64>())
                .collect();
            let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
            let total: f64 = w.iter().sum();
            let out = &mut next[i * d..(i + 1) * d];
            for c in 0..d {
                let a: f64 = (0..seen).map(|j| w[j] * x[j * d + c]).sum::<f64>() / total;
                out[c] = xi[c] + h * a;
            }
            let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
            out.iter_mut().for_each(|v| *v /= norm);
        }
        x = next;
    }
    x
}

/// `--layer post-ln`: the reference equals the layer written out by hand to round-off, the
/// cpu and gpu backends equal the reference, it differs from the ODE's Euler step (which
/// projects the field) by O(h^2) per layer, and it refuses a Runge-Kutta integrator.
#[test]
fn post_ln_layer_matches_its_transcription_on_every_backend() {
    use attnflow::model::LayerMap;
    let (n, d, beta, h, steps) = (24, 3, 2.0, 0.1, 5);
    for mask in [Mask::Full, Mask::Causal] {
        let shape = Shape::new(1, n, d).unwrap();
        let mut m = model(Attention::Sa, Geometry::Sphere, mask, d, vec![beta]);
        m.layer = LayerMap::PostLn;
        let mut v = Variant::new("post-ln", m.clone(), shape);
        v.integrator = Integrator::Euler;
        v.h = h;
        v.steps = steps;
        let got = v.reference();
        let want = post_ln_by_hand(&v.initial(), n, d, beta, h, steps, mask == Mask::Causal);
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-12,
            "{mask:?}: reference vs transcription {err:.1e}"
        );
        v.check();
        // The ODE's Euler layer projects the field: the two maps differ, by O(h^2) per layer.
        let mut ode = Variant::new(
            "euler",
            Model {
                layer: LayerMap::Ode,
                ..m.clone()
            },
            shape,
        );
        ode.integrator = Integrator::Euler;
        ode.h = h;
        ode.steps = steps;
        let diff = ode
            .reference()
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            diff > 1e-4 && diff < 10.0 * steps as f64 * h * h,
            "{mask:?}: post-ln vs ode euler differ by {diff:.1e}"
        );
        let x0 = v.initial();
        let mut b = ReferenceBackend::new(&m, shape, &x0).unwrap();
        let e = integrate_steps(&mut b, &m, Integrator::Rk4, h, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--integrator euler"), "{e}");
    }
}

/// simuformer's layer maps (`SimuXForm.step`, `--norm preln | periln | ngpt`), transcribed here
/// in plain f64 on the residual stream x: Q = K = V = I, the block sees y = normalise(x)
/// (pre-ln, peri-ln) or x itself (ngpt), a_i = sum_j w_ij y_j with w the softmax of
/// beta <y_i, y_j> (SA) or exp(beta <y_i, y_j>) / |J(i)| (USA), over j <= i when causal; then
/// pre-ln x + h a, peri-ln x + h a / (|a| + 1e-9), ngpt normalise(x + h alpha a / (|a| + 1e-9)).
#[allow(clippy::too_many_arguments)]
fn simuformer_by_hand(
    map: attnflow::model::LayerMap,
    usa: bool,
    x: &[f64],
    n: usize,
    d: usize,
    beta: f64,
    h: f64,
    steps: usize,
    causal: bool,
) -> Vec<f64> {
    use attnflow::model::LayerMap;
    let unit = |v: &[f64]| {
        let norm = v.iter().map(|c| c * c).sum::<f64>().sqrt();
        v.iter().map(|c| c / norm).collect::<Vec<f64>>()
    };
    let mut x = x.to_vec();
    for _ in 0..steps {
        let y: Vec<f64> = match map {
            LayerMap::PreLn | LayerMap::PeriLn => x.chunks(d).flat_map(unit).collect(),
            _ => x.clone(),
        };
        let mut next = x.clone();
        for i in 0..n {
            let yi = &y[i * d..(i + 1) * d];
            let seen = if causal { i + 1 } else { n };
            let scores: Vec<f64> = (0..seen)
                .map(|j| beta * (0..d).map(|c| yi[c] * y[j * d + c]).sum::<f64>())
                .collect();
            let w: Vec<f64> = if usa {
                scores.iter().map(|s| s.exp() / seen as f64).collect()
            } else {
                let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
                let total: f64 = e.iter().sum();
                e.iter().map(|e| e / total).collect()
            };
            let mut a: Vec<f64> = (0..d)
                .map(|c| (0..seen).map(|j| w[j] * y[j * d + c]).sum::<f64>())
                .collect();
            if matches!(map, LayerMap::PeriLn | LayerMap::Ngpt { .. }) {
                let norm = a.iter().map(|c| c * c).sum::<f64>().sqrt() + 1e-9;
                let s = if let LayerMap::Ngpt { alpha } = map {
                    alpha
                } else {
                    1.0
                };
                a.iter_mut().for_each(|c| *c *= s / norm);
            }
            let out = &mut next[i * d..(i + 1) * d];
            for c in 0..d {
                out[c] = x[i * d + c] + h * a[c];
            }
            if matches!(map, LayerMap::Ngpt { .. }) {
                let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
                out.iter_mut().for_each(|v| *v /= norm);
            }
        }
        x = next;
    }
    x
}

/// `--layer pre-ln | peri-ln | ngpt`: for SA and USA, full and causal masks, the reference
/// equals simuformer's rule written out by hand to 1e-12 and the cpu and gpu backends equal the
/// reference (1e-5); the Pre-LN family leaves the sphere while ngpt stays on it, and the
/// observables of pre-ln are those of the normalised tokens.
#[test]
fn simuformer_layers_match_their_transcription_on_every_backend() {
    use attnflow::model::LayerMap;
    let (n, d, h, steps, alpha) = (24, 3, 0.1, 5, 0.3);
    for map in [LayerMap::PreLn, LayerMap::PeriLn, LayerMap::Ngpt { alpha }] {
        for attention in [Attention::Sa, Attention::Usa] {
            for mask in [Mask::Full, Mask::Causal] {
                let beta = if attention == Attention::Sa { 2.0 } else { 1.0 };
                let shape = Shape::new(1, n, d).unwrap();
                let mut m = model(attention, Geometry::Sphere, mask, d, vec![beta]);
                m.layer = map;
                let name = format!("{} {attention:?} {mask:?}", map.name());
                let mut v = Variant::new(&name, m.clone(), shape);
                v.integrator = Integrator::Euler;
                v.h = h;
                v.steps = steps;
                let got = v.reference();
                let want = simuformer_by_hand(
                    map,
                    attention == Attention::Usa,
                    &v.initial(),
                    n,
                    d,
                    beta,
                    h,
                    steps,
                    mask == Mask::Causal,
                );
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(err < 1e-12, "{name}: reference vs transcription {err:.1e}");
                // Off the sphere exactly for the Pre-LN family (the residual stream grows).
                let off = got
                    .chunks(d)
                    .map(|t| (t.iter().map(|c| c * c).sum::<f64>().sqrt() - 1.0).abs())
                    .fold(0.0, f64::max);
                if map.normalises_input() {
                    assert!(
                        off > 0.05,
                        "{name}: tokens stayed within {off:.1e} of the sphere"
                    );
                } else {
                    assert!(off < 1e-12, "{name}: tokens left the sphere by {off:.1e}");
                }
                v.check();
                if map == LayerMap::PreLn && mask == Mask::Full {
                    // metrics.csv: the observables of normalise(x).
                    let x0 = v.initial();
                    let mut b = ReferenceBackend::new(&m, shape, &x0).unwrap();
                    integrate_steps(&mut b, &m, Integrator::Euler, h, steps).unwrap();
                    let rows = b.pair_stats().unwrap();
                    let mut y = b.state().to_vec();
                    attnflow::model::geometry::normalise_tokens(&mut y, d);
                    let want = attnflow::reference::pair_stats(&m.betas, shape, &y);
                    assert_eq!(rows, want, "{name}: pair statistics of normalise(x)");
                }
            }
        }
    }
}

/// The residual layers refuse what makes no sense, each with one line: Runge-Kutta methods,
/// euclidean geometry, a non-positive nGPT alpha.
#[test]
fn simuformer_layers_refuse_nonsense() {
    use attnflow::model::LayerMap;
    let (n, d) = (8, 3);
    let shape = Shape::new(1, n, d).unwrap();
    let ngpt = LayerMap::Ngpt {
        alpha: attnflow::model::DEFAULT_NGPT_ALPHA,
    };
    for map in [LayerMap::PreLn, LayerMap::PeriLn, ngpt] {
        let mut m = model(Attention::Sa, Geometry::Sphere, Mask::Full, d, vec![1.0]);
        m.layer = map;
        let x0 = InitSpec::Uniform
            .generate(shape, Geometry::Sphere, 1)
            .unwrap();
        let mut b = ReferenceBackend::new(&m, shape, &x0).unwrap();
        let e = integrate_steps(&mut b, &m, Integrator::Heun, 0.1, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--integrator euler") && !e.contains('\n'), "{e}");
        let e = Model {
            geometry: Geometry::Euclidean,
            ..m.clone()
        }
        .validate(shape)
        .unwrap_err()
        .to_string();
        assert!(e.contains("--geometry sphere"), "{e}");
    }
    let mut m = model(Attention::Sa, Geometry::Sphere, Mask::Full, d, vec![1.0]);
    m.layer = LayerMap::Ngpt { alpha: 0.0 };
    let e = m.validate(shape).unwrap_err().to_string();
    assert!(e.contains("--ngpt-alpha"), "{e}");
}
