//! The simulations of `selectivity`: the largest weight and effective number of keys of one
//! query over many independent key sets, and a Monte Carlo of the limit (Poisson) process.

use rayon::prelude::*;

use attnflow::attend::{attention_stats, derived_seed};
use attnflow::error::Result;
use attnflow::model::init::InitSpec;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// (max weight, effective keys) of the query e_1 for every key set and lambda at
/// beta = lambda scale: [set][lambda]. Seed by seed (streaming: one key set in memory per
/// thread).
pub fn key_sets(
    d: usize,
    n: usize,
    seeds: usize,
    lambdas: &[f64],
    scale: f64,
    base: u64,
) -> Result<Vec<Vec<(f64, f64)>>> {
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        vec![1.0],
    );
    let mut q = vec![0.0; d];
    q[0] = 1.0;
    (0..seeds)
        .into_par_iter()
        .map(|s| -> Result<Vec<(f64, f64)>> {
            let y = InitSpec::Uniform.generate(
                Shape::new(1, n, d)?,
                Geometry::Sphere,
                derived_seed(base, s as u64 + 1),
            )?;
            Ok(lambdas
                .iter()
                .map(|&l| {
                    let st = attention_stats(&model, l * scale, &q, &y, n, 0);
                    (st.max_weight, st.effective_keys)
                })
                .collect())
        })
        .collect::<Result<_>>()
}

/// Monte Carlo of the limit (Poisson) process: (max weight, effective keys) of every sample
/// at every lambda, [sample][lambda].
pub fn limit_process(d: usize, lambdas: &[f64], samples: usize, seed: u64) -> Vec<Vec<(f64, f64)>> {
    // Rate of the scaled gaps xi and the exponent of the weight e^{-phi(xi)}.
    let (rate, quadratic) = if d == 3 {
        (0.5, false)
    } else {
        (1.0 / std::f64::consts::PI, true)
    };
    let lam_min = lambdas.iter().cloned().fold(f64::INFINITY, f64::min);
    // Points beyond phi = 40 carry relative weight < e^{-40}.
    let xi_max = if quadratic {
        (80.0 / lam_min).sqrt()
    } else {
        40.0 / lam_min
    };
    (0..samples)
        .into_par_iter()
        .map(|s| {
            let mut rng = ChaCha8Rng::seed_from_u64(derived_seed(seed, 7));
            rng.set_stream(s as u64);
            let mut xi = Vec::new();
            let mut x = 0.0;
            loop {
                let u: f64 = rng.random();
                x += -(1.0 - u).ln() / rate;
                if x > xi_max {
                    break;
                }
                xi.push(x);
            }
            lambdas
                .iter()
                .map(|&l| {
                    let phi = |x: f64| if quadratic { l * x * x / 2.0 } else { l * x };
                    let m0 = xi.first().map_or(0.0, |&x| phi(x));
                    let (mut s1, mut s2) = (0.0, 0.0);
                    for &x in &xi {
                        let e = (m0 - phi(x)).exp();
                        if e < 1e-300 {
                            break;
                        }
                        s1 += e;
                        s2 += e * e;
                    }
                    (1.0 / s1, s1 * s1 / s2)
                })
                .collect()
        })
        .collect()
}
