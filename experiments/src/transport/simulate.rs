//! The draws of `transport` (base and target samples) and the engine's run of the constructed
//! flow: the K pieces as per-layer perceptron weights (W [K, 2, m], A [K, m, 2], b [K, m];
//! layer l on [l, l + 1) of [0, K]), attention switched off by V = 0, euclidean geometry, RK4.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::analyse::Neuron;
use crate::{Report, Setup, simulate};
use attnflow::backend::BackendChoice;
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::weights::Weights;
use attnflow::model::{Activation, Attention, Geometry, Mask, Mlp, Model, PerLayer, Shape};

/// The two measures.
#[derive(Clone, Copy, Debug)]
pub struct Measures {
    pub base_sd: f64,
    pub separation: f64,
    pub component_sd: f64,
}

/// A ChaCha8 stream of `seed`.
fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

impl Measures {
    /// n points of the base N(0, base_sd^2 I), stratified on the sides of x1 = 0: point i is
    /// drawn from the half x1 > 0 when i is even, x1 < 0 when odd (each half has mass 1/2).
    pub fn base(&self, seed: u64, stream: u64, n: usize) -> Vec<[f64; 2]> {
        let mut r = rng(seed, stream);
        (0..n)
            .map(|i| {
                let side = if i % 2 == 0 { 1.0 } else { -1.0 };
                let (x, y): (f64, f64) =
                    (StandardNormal.sample(&mut r), StandardNormal.sample(&mut r));
                [side * self.base_sd * x.abs(), self.base_sd * y]
            })
            .collect()
    }

    /// n points of the target (1/2) N((-m, 0), s^2 I) + (1/2) N((m, 0), s^2 I), stratified on
    /// the components: point i from the one at +m when i is even, -m when odd.
    pub fn target(&self, seed: u64, stream: u64, n: usize) -> Vec<[f64; 2]> {
        let mut r = rng(seed, stream);
        (0..n)
            .map(|i| {
                let side = if i % 2 == 0 { 1.0 } else { -1.0 };
                let (x, y): (f64, f64) =
                    (StandardNormal.sample(&mut r), StandardNormal.sample(&mut r));
                [
                    side * self.separation + self.component_sd * x,
                    self.component_sd * y,
                ]
            })
            .collect()
    }
}

/// The sorted coordinates of a sample.
pub fn sorted_coordinates(points: &[[f64; 2]]) -> [Vec<f64>; 2] {
    let col = |c: usize| {
        let mut v: Vec<f64> = points.iter().map(|p| p[c]).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    [col(0), col(1)]
}

/// The per-layer perceptron of the pieces: hidden width 1 (ReLU); with `linear`, width 2 and
/// w (z)_+ - w (-z)_+ = w z (the identity activation written with ReLUs).
fn mlps(neurons: &[Neuron], linear: bool) -> Vec<Mlp> {
    neurons
        .iter()
        .map(|n| {
            if linear {
                Mlp {
                    hidden: 2,
                    w: vec![n.w[0], -n.w[0], n.w[1], -n.w[1]],
                    a: vec![n.a[0], n.a[1], -n.a[0], -n.a[1]],
                    b: vec![n.b, -n.b],
                    activation: Activation::Relu,
                }
            } else {
                Mlp {
                    hidden: 1,
                    w: n.w.to_vec(),
                    a: n.a.to_vec(),
                    b: vec![n.b],
                    activation: Activation::Relu,
                }
            }
        })
        .collect()
}

/// The engine's run of the pieces (each for a time 1, `steps_per_piece` RK4 steps) from
/// `points`, each point its own system of one token (the attention of a token with itself is
/// V x = 0 anyway), on `backend`. Returns the final points.
pub fn engine_push(
    setup: &Setup,
    report: &mut Report,
    backend: BackendChoice,
    neurons: &[Neuron],
    points: &[[f64; 2]],
    steps_per_piece: usize,
    linear: bool,
) -> Result<Vec<[f64; 2]>> {
    // Through the memo with every input in its key (tests share it between the quick run and
    // the mutations it does not reach: see [`Setup::memo_with`]).
    setup.memo_with(
        report,
        "transport/engine_push",
        &(
            crate::memo::Debugged(&backend),
            neurons,
            points,
            steps_per_piece,
            linear,
        ),
        |setup, report, &(crate::memo::Debugged(backend), neurons, points, steps, linear)| {
            compute_push(setup, report, *backend, neurons, points, steps, linear)
        },
    )
}

fn compute_push(
    setup: &Setup,
    report: &mut Report,
    backend: BackendChoice,
    neurons: &[Neuron],
    points: &[[f64; 2]],
    steps_per_piece: usize,
    linear: bool,
) -> Result<Vec<[f64; 2]>> {
    let layers = neurons.len();
    let steps = layers * steps_per_piece;
    let shape = Shape::new(points.len(), 1, 2)?;
    let zero_v = Weights {
        d: 2,
        q: vec![1.0, 0.0, 0.0, 1.0],
        k: vec![1.0, 0.0, 0.0, 1.0],
        v: vec![0.0; 4],
    };
    let mut model = Model::new(
        Attention::Sa,
        Geometry::Euclidean,
        Mask::Full,
        zero_v,
        vec![1.0; points.len()],
    );
    let per = mlps(neurons, linear);
    model.mlp = Some(per[0].clone());
    model.per_layer = Some(PerLayer {
        steps_per_layer: PerLayer::steps_per_layer(steps, layers)?,
        heads: None,
        mlps: Some(per),
        selected: 0,
    });
    let x0: Vec<f64> = points.iter().flat_map(|p| p.iter().copied()).collect();
    let on = Setup {
        backend,
        ..setup.clone()
    };
    let x = simulate(
        &on,
        report,
        &model,
        shape,
        &x0,
        Integrator::Rk4,
        1.0 / steps_per_piece as f64,
        &[steps],
        |_, _| {},
    )?;
    Ok(x.chunks(2).map(|c| [c[0], c[1]]).collect())
}
