//! The simulations of `critical-scaling`: the tokens of the two models and the mean pairwise
//! cosine of the outputs of one attention layer for every gamma of beta = gamma ln n.

use crate::{Report, Setup};
use attnflow::attend::LayerShape;
use attnflow::config::BackendChoice;
use attnflow::error::Result;
use attnflow::model::init::InitSpec;
use attnflow::model::observables::order_parameter;
use attnflow::model::weights::Weights;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape};

/// Mean pairwise cosine of the rows of x [k, d] after normalising them:
/// (k |mean|^2 - 1) / (k - 1).
pub fn mean_pair_cos(x: &[f64], d: usize) -> f64 {
    let unit: Vec<f64> = x
        .chunks(d)
        .flat_map(|t| {
            let r = t.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
            t.iter().map(move |v| v / r)
        })
        .collect();
    let k = (x.len() / d) as f64;
    let r = order_parameter(&unit, d);
    (k * r * r - 1.0) / (k - 1.0)
}

/// The rule of the inverse temperature: beta = gamma ln n (docs/model.md §3), or one of the
/// deliberate errors of `--mutate`: `log-power-1.1` (gamma (ln n)^1.1), `log-power-1.02`
/// (gamma (ln n)^1.02: a wrong exponent by 2%) and `prefactor` (1.2 gamma ln n).
pub fn beta(setup: &Setup, gamma: f64, n: usize) -> f64 {
    let ln_n = (n as f64).ln();
    if setup.mutated("log-power-1.1") {
        gamma * ln_n.powf(1.1)
    } else if setup.mutated("log-power-1.02") {
        gamma * ln_n.powf(1.02)
    } else if setup.mutated("prefactor") {
        1.2 * gamma * ln_n
    } else {
        gamma * ln_n
    }
}

/// The simplex of the paper's model: n unit tokens x_i = sqrt(c0) e_0 + sqrt(1 - c0) e_{i+1}
/// in d = n + 1, every pairwise cosine exactly c0.
pub fn simplex_tokens(n: usize, c0: f64) -> Vec<f64> {
    let d = n + 1;
    let (a, b) = (c0.sqrt(), (1.0 - c0).sqrt());
    let mut x = vec![0.0; n * d];
    for i in 0..n {
        x[i * d] = a;
        x[i * d + 1 + i] = b;
    }
    x
}

/// n tokens x = sqrt(c0) e_1 + sqrt(1 - c0) u with u uniform on the sphere of e_1^perp.
pub fn tokens(n: usize, d: usize, c0: f64, seed: u64) -> Result<Vec<f64>> {
    let u = InitSpec::Uniform.generate(Shape::new(1, n, d - 1)?, Geometry::Sphere, seed)?;
    let (a, b) = (c0.sqrt(), (1.0 - c0).sqrt());
    let mut x = Vec::with_capacity(n * d);
    for t in u.chunks(d - 1) {
        x.push(a);
        x.extend(t.iter().map(|v| b * v));
    }
    Ok(x)
}

/// One layer (SA, euclidean, raw outputs), the first m tokens attending to all n of x [n, d]:
/// the mean output cosine at every gamma (beta from [`beta`]), in batches of gammas.
pub fn layer(
    setup: &Setup,
    report: &mut Report,
    x: &[f64],
    (m, n, d): (usize, usize, usize),
    gammas: &[f64],
) -> Result<Vec<f64>> {
    let per = ((1usize << 22) / (n * d)).clamp(1, gammas.len());
    let mut c_out = Vec::with_capacity(gammas.len());
    for chunk in gammas.chunks(per) {
        let b = chunk.len();
        let betas: Vec<f64> = chunk.iter().map(|&g| beta(setup, g, n)).collect();
        let model = Model::new(
            Attention::Sa,
            Geometry::Euclidean,
            Mask::Full,
            Weights::identity(d),
            betas,
        );
        let shape = LayerShape { batch: b, m, n, d };
        let (mut layer, _, note) = attnflow::backend::build_layer(setup.backend, &model, shape)?;
        if report.backend.is_none() {
            if let Some(note) = note {
                setup.say(&format!("note: {note}"));
            }
            report.backend = Some(layer.describe());
        }
        layer.set_keys(&x.repeat(b))?;
        let out = layer.run(&x[..m * d].repeat(b))?;
        for sys in out.chunks(m * d) {
            c_out.push(mean_pair_cos(sys, d));
        }
    }
    Ok(c_out)
}

/// The largest d of the GPU kernels (backend::gpu::MAX_D, compiled only with the `gpu` feature).
const GPU_MAX_D: usize = 1024;

/// One layer on the simplex x [n, d] at every inverse temperature of `betas`, in one system:
/// the engine runs at beta = 1 and the queries of pair k are beta_k x_0 and beta_k x_1, so that
/// their scores beta_k <x_i, x_j> are those at beta_k while the values (the keys) are unchanged
/// (SA, Q = K = V = I, euclidean raw outputs). The keys, n (n + 1) numbers, are set once, not
/// once per beta. Returns the cosine of each pair of outputs (every pair has the same one).
pub fn simplex_layer(
    setup: &Setup,
    report: &mut Report,
    x: &[f64],
    (n, d): (usize, usize),
    betas: &[f64],
) -> Result<Vec<f64>> {
    let m = 2 * betas.len();
    let model = Model::new(
        Attention::Sa,
        Geometry::Euclidean,
        Mask::Full,
        Weights::identity(d),
        vec![1.0],
    );
    let shape = LayerShape { batch: 1, m, n, d };
    // The GPU kernels take d <= 1024: larger simplices run on the CPU (one system, cheap).
    let choice = match setup.backend {
        BackendChoice::Auto | BackendChoice::Gpu if d > GPU_MAX_D => BackendChoice::Cpu,
        other => other,
    };
    let (mut layer, _, note) = attnflow::backend::build_layer(choice, &model, shape)?;
    if choice != setup.backend {
        // Said, and recorded with the backend that ran the rest: never a silent fallback.
        let what = format!("simplices with d > {GPU_MAX_D} on {}", layer.describe());
        match &mut report.backend {
            Some(b) if !b.contains(&what) => b.push_str(&format!("; {what}")),
            Some(_) => {}
            None => {
                setup.say(&format!(
                    "note: the GPU kernels take d <= {GPU_MAX_D}: {what}"
                ));
                report.backend = Some(what);
                return finish(layer.as_mut(), x, betas, d);
            }
        }
    }
    if report.backend.is_none() {
        if let Some(note) = note {
            setup.say(&format!("note: {note}"));
        }
        report.backend = Some(layer.describe());
    }
    finish(layer.as_mut(), x, betas, d)
}

/// The output cosine of the first query pair, scaled by each beta, against the simplex keys.
fn finish(
    layer: &mut dyn attnflow::attend::Attend,
    x: &[f64],
    betas: &[f64],
    d: usize,
) -> Result<Vec<f64>> {
    layer.set_keys(x)?;
    let queries: Vec<f64> = betas
        .iter()
        .flat_map(|&b| x[..2 * d].iter().map(move |v| b * v))
        .collect();
    let out = layer.run(&queries)?;
    Ok(out
        .chunks(2 * d)
        .map(|pair| mean_pair_cos(pair, d))
        .collect())
}
