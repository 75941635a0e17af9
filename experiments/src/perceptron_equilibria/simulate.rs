//! The runs of `perceptron-equilibria`: n tokens on the circle under the engine's perceptron
//! block (tied weights, W = A^T diag(c)) and SA attention with Q = K = I, V = v I (v = 0: no
//! attention), RK4, from iid uniform starts; with the experiment's mutations applied to the
//! engine's model (never to the analysis).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::analyse::{Act, Perceptron};
use super::sizes::Sizes;
use crate::{Report, Setup, simulate};
use attnflow::error::Result;
use attnflow::integrate::Integrator;
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{Activation, Attention, Geometry, Mask, Mlp, Model, Shape};

/// The weights of draw `draw` at width m: a_k iid N(0, a_sd^2 I_2), b_k iid N(0, b_sd^2),
/// c_k iid N(0, c_sd^2 / m), from ChaCha8 keyed by (seed, part, m, draw).
pub fn draw_perceptron(
    sz: &Sizes,
    act: Act,
    seed: u64,
    part: u64,
    m: usize,
    draw: usize,
) -> Perceptron {
    let key = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(part.wrapping_mul(1_000_003))
        .wrapping_add((m as u64) << 20)
        .wrapping_add(draw as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    let mut g = || -> f64 { StandardNormal.sample(&mut rng) };
    let a = (0..m).map(|_| [sz.a_sd * g(), sz.a_sd * g()]).collect();
    let b = (0..m).map(|_| sz.b_sd * g()).collect();
    let c = (0..m).map(|_| sz.c_sd * g() / (m as f64).sqrt()).collect();
    Perceptron { a, b, c, act }
}

/// The engine's perceptron for p: W [2, M] with W[r][k] = c_k a_k[r], A [M, 2], b [M].
/// Mutations: `relu-in-simulation` gives the engine ReLU whatever the analysis uses;
/// `perceptron-sign-flipped` negates W (descent of the potential instead of ascent).
fn engine_mlp(setup: &Setup, p: &Perceptron) -> Mlp {
    let m = p.c.len();
    let sign = if setup.mutated("perceptron-sign-flipped") {
        -1.0
    } else {
        1.0
    };
    let mut w = vec![0.0; 2 * m];
    for k in 0..m {
        for r in 0..2 {
            w[r * m + k] = sign * p.c[k] * p.a[k][r];
        }
    }
    let activation = if setup.mutated("relu-in-simulation") {
        Activation::Relu
    } else {
        match p.act {
            Act::Relu => Activation::Relu,
            Act::Gelu => Activation::Gelu,
        }
    };
    Mlp {
        hidden: m,
        w,
        a: p.a.iter().flat_map(|r| r.iter().copied()).collect(),
        b: p.b.clone(),
        activation,
    }
}

/// iid uniform starts on the circle for one system, as angles and as the engine's [n, 2].
pub fn starts(n: usize, seed: u64) -> Result<(Vec<f64>, Vec<f64>)> {
    let x0 = InitSpec::Uniform.generate(Shape::new(1, n, 2)?, Geometry::Sphere, seed)?;
    let angles = x0.chunks(2).map(|x| x[1].atan2(x[0])).collect();
    Ok((angles, x0))
}

/// Runs the tokens x0 ([n, 2] of one system) under perceptron p with attention strength v, one
/// system per beta (all from the same x0); returns the final angles of each system.
pub fn run(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    p: &Perceptron,
    v: f64,
    betas: &[f64],
    x0: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let d = 2;
    let weights = Weights {
        v: attnflow::model::weights::identity_matrix(d)
            .into_iter()
            .map(|e| v * e)
            .collect(),
        ..Weights::identity(d)
    };
    // The mutation attention-beta-zero: the attention at beta = 0 whatever beta (asked only
    // where some beta is not 0, so the width scan's runs stay shared through the memo).
    let betas_seen: Vec<f64> =
        if betas.iter().any(|&b| b != 0.0) && setup.mutated("attention-beta-zero") {
            vec![0.0; betas.len()]
        } else {
            betas.to_vec()
        };
    let mut model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        weights,
        betas_seen,
    );
    model.mlp = Some(engine_mlp(setup, p));
    let shape = Shape::new(betas.len(), sz.n, d)?;
    let xs: Vec<f64> = (0..betas.len()).flat_map(|_| x0.iter().copied()).collect();
    let h = sz.t_end / sz.steps as f64;
    let fin = simulate(
        setup,
        report,
        &model,
        shape,
        &xs,
        Integrator::Rk4,
        h,
        &[sz.steps],
        |_, _| {},
    )?;
    Ok(fin
        .chunks(sz.n * d)
        .map(|sys| sys.chunks(d).map(|x| x[1].atan2(x[0])).collect())
        .collect())
}
