//! Experiment `critical-scaling` (docs/model.md §3, attention temperature beta_n = gamma log n):
//! with the critical scaling of long contexts, one attention layer (and a short flow) of n
//! similar tokens either collapses them onto their mean (gamma small) or stays near the
//! identity (gamma large), and the transition sits at a gamma that does not move with n.
//!
//! Tokens: x_i = sqrt(c0) e_1 + sqrt(1 - c0) u_i with u_i iid uniform on the unit sphere of
//! e_1^perp in R^d (d = 64), so |x_i| = 1 and <x_i, x_j> = c0 + (1 - c0) <u_i, u_j>: the
//! pairwise cosines concentrate at c0 with fluctuations (1 - c0) / sqrt(d - 1).
//!
//! Theory (derived here). The self-score of token i is beta, the others are
//! beta <x_i, x_j> = beta (c0 + (1 - c0) t_ij), so the weight of the token on itself is
//! p = 1 / (1 + Z), Z = sum_{j != i} e^{-beta (1 - c0)(1 - t_ij)} ~= n e^{-kappa} M(kappa), with
//! kappa = beta (1 - c0) = gamma (1 - c0) log n and M(kappa) = E e^{kappa t} (t a coordinate
//! of a uniform point of S^{d-2}; ln M ~= kappa^2 / (2 (d - 1)) for d large). Hence
//! Z ~= n^{1 - gamma (1 - c0)} up to a finite-d factor: for gamma (1 - c0) < 1 attention
//! averages over ~ n^{1 - gamma(1 - c0)} tokens and every output is the mean (mean cosine of
//! the normalised outputs -> 1); for gamma (1 - c0) > 1 the self-weight -> 1 (outputs = inputs,
//! mean cosine stays c0). The critical value is gamma_c = 1 / (1 - c0) as n -> infinity, the
//! same for every n: that is the point of the log n scaling. At finite n, d the output of
//! token i is ~ sqrt(c0) e_1 + sqrt(1 - c0) (P u_i + noise) with P = p + (1 - p) A(kappa)
//! (A = E[t e^{kappa t}] / M: the others are tilted towards u_i) and noise of squared size
//! (1 - p)^2 (1 - A^2) / n_eff (n_eff = n M(kappa)^2 / M(2 kappa)), so the mean output cosine is
//! c ~= c0 / (c0 + (1 - c0)(P^2 + noise)); its halfway crossing (c = (1 + c0) / 2, i.e.
//! P ~= sqrt(c0 / (1 + c0))) gives the finite-(n, d) prediction of gamma_c, which approaches
//! 1 / (1 - c0) like 1 / log n (plus a finite-d drift ~ log n / (2 (d - 1))).
//!
//! Measured: the mean pairwise cosine of the normalised outputs after one layer (SA, raw
//! euclidean outputs, m queries = the first m tokens attending to all n keys, an unbiased
//! estimate of the mean over all pairs) and after a short flow on the sphere (SA, RK4, t = 1,
//! all n tokens), against gamma for several n and c0; gamma_c(n, c0) where the curve crosses
//! halfway between its value at gamma = 0 (uniform attention: exactly 1 for one layer) and c0.
//! The flow at gamma = 0 is checked against its closed form: uniform attention moves every token
//! towards the mean sqrt(c0) e_1, y = <x, e_1> obeys y' = y (1 - y^2) and the mean cosine
//! c = y^2 follows c / (1 - c) = c0 / (1 - c0) e^{2t}, so by t = 1 it has not collapsed for
//! small c0 (0.45 at c0 = 0.1).

use super::plot::{self, Axes, Series};
use super::{Report, Setup, fit_line, simulate};
use crate::attend::{LayerShape, derived_seed};
use crate::error::Result;
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::observables::order_parameter;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

/// Mean pairwise cosine of the rows of x [k, d] after normalising them:
/// (k |mean|^2 - 1) / (k - 1).
fn mean_pair_cos(x: &[f64], d: usize) -> f64 {
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

/// n tokens x = sqrt(c0) e_1 + sqrt(1 - c0) u with u uniform on the sphere of e_1^perp.
fn tokens(n: usize, d: usize, c0: f64, seed: u64) -> Result<Vec<f64>> {
    let u = InitSpec::Uniform.generate(Shape::new(1, n, d - 1)?, Geometry::Sphere, seed)?;
    let (a, b) = (c0.sqrt(), (1.0 - c0).sqrt());
    let mut x = Vec::with_capacity(n * d);
    for t in u.chunks(d - 1) {
        x.push(a);
        x.extend(t.iter().map(|v| b * v));
    }
    Ok(x)
}

/// ln E e^{k t}, E[t e^{k t}] / E e^{k t} for t a coordinate of a uniform point of S^{m-1}
/// (density proportional to (1 - t^2)^{(m - 3) / 2}), by quadrature.
fn tilt(k: f64, m: usize) -> (f64, f64) {
    let q = 4000;
    let e = (m as f64 - 3.0) / 2.0;
    let (mut lw, mut lt) = (Vec::with_capacity(q), Vec::with_capacity(q));
    for i in 0..q {
        let t = -1.0 + 2.0 * (i as f64 + 0.5) / q as f64;
        let base = e * (1.0 - t * t).ln();
        lw.push(base);
        lt.push(base + k * t);
    }
    let lse = |v: &[f64]| {
        let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        mx + v.iter().map(|x| (x - mx).exp()).sum::<f64>().ln()
    };
    let (l0, l1) = (lse(&lw), lse(&lt));
    let mx = lt.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (mut num, mut den) = (0.0, 0.0);
    for (i, l) in lt.iter().enumerate() {
        let t = -1.0 + 2.0 * (i as f64 + 0.5) / q as f64;
        let w = (l - mx).exp();
        num += t * w;
        den += w;
    }
    (l1 - l0, num / den)
}

/// The finite-(n, d) prediction of the mean output cosine after one layer (module doc).
fn predicted_cos(c0: f64, n: usize, d: usize, gamma: f64) -> f64 {
    let kappa = gamma * (1.0 - c0) * (n as f64).ln();
    let (lm, a) = tilt(kappa, d - 1);
    let (lm2, _) = tilt(2.0 * kappa, d - 1);
    let nn = (n - 1) as f64;
    let z = (nn.ln() - kappa + lm).exp();
    let p = 1.0 / (1.0 + z);
    let n_eff = (nn.ln() + 2.0 * lm - lm2).exp();
    let big_p = p + (1.0 - p) * a;
    let noise = (1.0 - p).powi(2) * (1.0 - a * a) / n_eff;
    c0 / (c0 + (1.0 - c0) * (big_p * big_p + noise))
}

/// Where the curve (gamma_k, c_k) first crosses `half` downwards, interpolated linearly.
fn crossing(gammas: &[f64], c: &[f64], half: f64) -> Option<f64> {
    (1..gammas.len()).find_map(|k| {
        (c[k - 1] > half && c[k] <= half).then(|| {
            gammas[k - 1] + (gammas[k] - gammas[k - 1]) * (c[k - 1] - half) / (c[k - 1] - c[k])
        })
    })
}

/// Largest rise of a curve that should decrease: max_k (c_{k+1} - c_k), 0 if monotone.
fn max_rise(c: &[f64]) -> f64 {
    c.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

struct Sizes {
    d: usize,
    c0s: Vec<f64>,
    layer_ns: Vec<usize>,
    queries: usize,
    flow_ns: Vec<usize>,
    gammas: Vec<f64>,
    flow_every: usize,
    t_end: f64,
    h: f64,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = if setup.quick {
        Sizes {
            d: 64,
            c0s: vec![0.2, 0.4, 0.6],
            layer_ns: vec![256, 1024, 4096, 16384],
            queries: 128,
            flow_ns: vec![128, 256, 512],
            gammas: (1..=40).map(|k| 0.1 * k as f64).collect(),
            flow_every: 2,
            t_end: 1.0,
            h: 0.25,
        }
    } else {
        Sizes {
            d: 64,
            c0s: vec![0.1, 0.2, 0.4, 0.6, 0.75],
            layer_ns: vec![1000, 10_000, 100_000, 1_000_000],
            queries: 256,
            flow_ns: vec![1024, 4096, 16384],
            gammas: (1..=60).map(|k| 0.1 * k as f64).collect(),
            flow_every: 2,
            t_end: 1.0,
            h: 0.25,
        }
    };
    let d = sz.d;
    // gamma = 0 (uniform attention) first: the collapsed end of every curve.
    let mut gammas = vec![0.0];
    gammas.extend(&sz.gammas);
    let flow_gammas: Vec<f64> = gammas
        .iter()
        .enumerate()
        .filter(|(k, _)| k % sz.flow_every == 0)
        .map(|(_, g)| *g)
        .collect();
    report.config("d", d);
    report.config("c0", &sz.c0s);
    report.config("layer_n", &sz.layer_ns);
    report.config("layer_queries", sz.queries);
    report.config("flow_n", &sz.flow_ns);
    report.config("gammas_layer", &gammas);
    report.config("gammas_flow", &flow_gammas);
    report.config("beta", "gamma ln n");
    report.config(
        "tokens",
        "x = sqrt(c0) e_1 + sqrt(1 - c0) u, u uniform on the sphere of e_1^perp",
    );
    report.config("layer", "SA, Q = K = V = I, euclidean (raw outputs)");
    report.config("flow", "SA on the sphere, Q = K = V = I, RK4");
    report.config("flow_t", sz.t_end);
    report.config("flow_h", sz.h);

    let mut layer_rows = Vec::new();
    let mut flow_rows = Vec::new();
    let mut gc_rows = Vec::new();
    let mut measured = serde_json::Map::new();
    let mut predicted = serde_json::Map::new();
    let (mut collapse_small, mut identity_large, mut monotone) = (true, true, true);
    let (mut flow_uniform_closed_form, mut flow_identity, mut flow_monotone) = (true, true, true);
    let mut gc_layer_by_c0: Vec<Vec<f64>> = Vec::new();
    let mut gc_flow_by_c0: Vec<Vec<f64>> = Vec::new();
    let mut worst_rise: f64 = 0.0;
    let mut worst_flow_rise: f64 = 0.0;
    let mut worst_uniform_dev: f64 = 0.0;

    for &c0 in &sz.c0s {
        let mut series = Vec::new();
        let mut theory = Vec::new();
        let mut gcs = Vec::new();
        let mut gc_pred_n = Vec::new();
        // One layer.
        for (ni, &n) in sz.layer_ns.iter().enumerate() {
            // The same u for every c0 (common random numbers).
            let x = tokens(n, d, c0, derived_seed(setup.seed, 1 + ni as u64))?;
            let m = sz.queries.min(n);
            let c_in = mean_pair_cos(&x[..m * d], d);
            let per = ((1usize << 22) / (n * d)).clamp(1, gammas.len());
            let mut c_out = Vec::with_capacity(gammas.len());
            for chunk in gammas.chunks(per) {
                let b = chunk.len();
                let betas: Vec<f64> = chunk.iter().map(|g| g * (n as f64).ln()).collect();
                let model = Model::new(
                    Attention::Sa,
                    Geometry::Euclidean,
                    Mask::Full,
                    Weights::identity(d),
                    betas,
                );
                let shape = LayerShape { batch: b, m, n, d };
                let (mut layer, _, note) =
                    crate::backend::build_layer(setup.backend, &model, shape)?;
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
            let half = 0.5 * (c_in + c_out[0]);
            let gc = crossing(&gammas, &c_out, half);
            let pred: Vec<f64> = gammas
                .iter()
                .map(|&g| predicted_cos(c_in, n, d, g))
                .collect();
            let gc_pred = crossing(&gammas, &pred, half);
            setup.say(&format!(
                "layer c0 {c0}, n {n}: c_in {c_in:.4}, gamma_c {gc:?} (finite-n theory {gc_pred:?})"
            ));
            for (k, &g) in gammas.iter().enumerate() {
                layer_rows.push(vec![c0, n as f64, g, c_in, c_out[k], pred[k]]);
            }
            // Collapse at small gamma (gamma (1 - c0) = 0.25 or less): within 10% of the gap
            // from 1; near identity at the largest gamma: within 0.05 of the input's cosine.
            let small = gammas
                .iter()
                .position(|&g| g * (1.0 - c0) > 0.25)
                .unwrap_or(1)
                .max(2)
                - 1;
            collapse_small &= c_out[small] > 1.0 - 0.1 * (1.0 - c_in);
            identity_large &= (c_out[c_out.len() - 1] - c_in).abs() < 0.05;
            let rise = max_rise(&c_out);
            worst_rise = worst_rise.max(rise);
            monotone &= rise < 0.01;
            gcs.push(gc.unwrap_or(f64::NAN));
            gc_pred_n.push(gc_pred.unwrap_or(f64::NAN));
            gc_rows.push(vec![
                0.0,
                c0,
                n as f64,
                c_in,
                gc.unwrap_or(f64::NAN),
                gc_pred.unwrap_or(f64::NAN),
            ]);
            series.push(Series::line(
                format!("n = {n}"),
                gammas.iter().copied().zip(c_out.iter().copied()).collect(),
            ));
            theory.push(Series::theory(
                format!("theory n = {n}"),
                gammas.iter().copied().zip(pred).collect(),
            ));
        }
        let mut all = series;
        all.extend(theory);
        all.push(Series::markers(
            "gamma = 1/(1 - c0)",
            vec![(1.0 / (1.0 - c0), c0), (1.0 / (1.0 - c0), 1.0)],
        ));
        let name = format!("layer_cos_c0_{c0}.png");
        plot::lines(
            &setup.path(&name),
            &Axes {
                title: &format!("One attention layer, beta = gamma ln n, c0 = {c0}, d = {d}"),
                x_label: "gamma",
                y_label: "mean pairwise cosine of outputs",
                log_x: false,
                log_y: false,
            },
            &all,
        )?;
        report.files.push(name);
        measured.insert(
            format!("layer_gamma_c_c0_{c0}"),
            serde_json::json!({"n": sz.layer_ns, "gamma_c": gcs}),
        );
        predicted.insert(
            format!("layer_gamma_c_c0_{c0}"),
            serde_json::json!({"asymptotic": 1.0 / (1.0 - c0), "finite_n_d": gc_pred_n}),
        );
        gc_layer_by_c0.push(gcs);

        // Short flow.
        let mut fseries = Vec::new();
        let mut fgcs = Vec::new();
        for (ni, &n) in sz.flow_ns.iter().enumerate() {
            let x = tokens(n, d, c0, derived_seed(setup.seed, 100 + ni as u64))?;
            let c_in = mean_pair_cos(&x, d);
            let steps = (sz.t_end / sz.h).round() as usize;
            let per = ((1usize << 22) / (n * d)).clamp(1, flow_gammas.len());
            let mut c_out = Vec::with_capacity(flow_gammas.len());
            for chunk in flow_gammas.chunks(per) {
                let b = chunk.len();
                let betas: Vec<f64> = chunk.iter().map(|g| g * (n as f64).ln()).collect();
                let model = Model::new(
                    Attention::Sa,
                    Geometry::Sphere,
                    Mask::Full,
                    Weights::identity(d),
                    betas,
                );
                let shape = Shape::new(b, n, d)?;
                let fin = simulate(
                    setup,
                    report,
                    &model,
                    shape,
                    &x.repeat(b),
                    Integrator::Rk4,
                    sz.h,
                    &[steps],
                    |_, _| {},
                )?;
                for sys in fin.chunks(n * d) {
                    c_out.push(mean_pair_cos(sys, d));
                }
            }
            let half = 0.5 * (c_in + c_out[0]);
            let gc = crossing(&flow_gammas, &c_out, half);
            setup.say(&format!(
                "flow c0 {c0}, n {n}: c_in {c_in:.4}, c(gamma=0) {:.4}, gamma_c {gc:?}",
                c_out[0]
            ));
            for (k, &g) in flow_gammas.iter().enumerate() {
                flow_rows.push(vec![c0, n as f64, g, c_in, c_out[k]]);
            }
            // gamma = 0 is uniform attention: every token moves towards the mean
            // sqrt(c0) e_1, and y = <x, e_1> obeys y' = y (1 - y^2), so the mean cosine
            // c = y^2 follows c / (1 - c) = c_in / (1 - c_in) e^{2t} (n -> infinity).
            let odds = c_in / (1.0 - c_in) * (2.0 * sz.t_end).exp();
            let c_uniform = odds / (1.0 + odds);
            worst_uniform_dev = worst_uniform_dev.max((c_out[0] - c_uniform).abs());
            flow_uniform_closed_form &= (c_out[0] - c_uniform).abs() < 0.02;
            flow_identity &= (c_out[c_out.len() - 1] - c_in).abs() < 0.05;
            let rise = max_rise(&c_out);
            worst_flow_rise = worst_flow_rise.max(rise);
            flow_monotone &= rise < 0.01;
            fgcs.push(gc.unwrap_or(f64::NAN));
            gc_rows.push(vec![
                1.0,
                c0,
                n as f64,
                c_in,
                gc.unwrap_or(f64::NAN),
                f64::NAN,
            ]);
            fseries.push(Series::line(
                format!("n = {n}"),
                flow_gammas
                    .iter()
                    .copied()
                    .zip(c_out.iter().copied())
                    .collect(),
            ));
        }
        fseries.push(Series::markers(
            "gamma = 1/(1 - c0)",
            vec![(1.0 / (1.0 - c0), c0), (1.0 / (1.0 - c0), 1.0)],
        ));
        let name = format!("flow_cos_c0_{c0}.png");
        plot::lines(
            &setup.path(&name),
            &Axes {
                title: &format!(
                    "SA flow to t = {}, beta = gamma ln n, c0 = {c0}, d = {d}",
                    sz.t_end
                ),
                x_label: "gamma",
                y_label: "mean pairwise cosine at time t",
                log_x: false,
                log_y: false,
            },
            &fseries,
        )?;
        report.files.push(name);
        measured.insert(
            format!("flow_gamma_c_c0_{c0}"),
            serde_json::json!({"n": sz.flow_ns, "gamma_c": fgcs}),
        );
        gc_flow_by_c0.push(fgcs);
    }

    setup.csv(
        report,
        "layer.csv",
        &["c0", "n", "gamma", "cos_in", "cos_out", "cos_theory"],
        &layer_rows,
    )?;
    setup.csv(
        report,
        "flow.csv",
        &["c0", "n", "gamma", "cos_in", "cos_t"],
        &flow_rows,
    )?;
    setup.csv(
        report,
        "gamma_c.csv",
        &[
            "flow",
            "c0",
            "n",
            "cos_in",
            "gamma_c",
            "gamma_c_finite_n_theory",
        ],
        &gc_rows,
    )?;

    // gamma_c against c0, stability across n, and the fit gamma_c = a + b / (1 - c0).
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        hi - lo
    };
    let all_found = gc_layer_by_c0.iter().flatten().all(|v| v.is_finite())
        && gc_flow_by_c0.iter().flatten().all(|v| v.is_finite());
    let layer_mean: Vec<f64> = gc_layer_by_c0.iter().map(|v| mean(v)).collect();
    let layer_rel_spread: Vec<f64> = gc_layer_by_c0.iter().map(|v| spread(v) / mean(v)).collect();
    let flow_mean: Vec<f64> = gc_flow_by_c0.iter().map(|v| mean(v)).collect();
    let flow_rel_spread: Vec<f64> = gc_flow_by_c0.iter().map(|v| spread(v) / mean(v)).collect();
    let inv: Vec<f64> = sz.c0s.iter().map(|c| 1.0 / (1.0 - c)).collect();
    let fit_layer = fit_line(&inv, &layer_mean);
    let fit_flow = fit_line(&inv, &flow_mean);
    // gamma_c (1 - c0) at the largest n: the asymptotic theory says 1.
    let g_largest: Vec<f64> = gc_layer_by_c0
        .iter()
        .zip(&sz.c0s)
        .map(|(v, c)| v[v.len() - 1] * (1.0 - c))
        .collect();
    measured.insert(
        "layer_gamma_c_mean_over_n".into(),
        serde_json::json!(layer_mean),
    );
    measured.insert(
        "layer_gamma_c_relative_spread_over_n".into(),
        serde_json::json!(layer_rel_spread),
    );
    measured.insert(
        "layer_gamma_c_times_1_minus_c0_at_largest_n".into(),
        serde_json::json!(g_largest),
    );
    measured.insert(
        "flow_gamma_c_mean_over_n".into(),
        serde_json::json!(flow_mean),
    );
    measured.insert(
        "flow_gamma_c_relative_spread_over_n".into(),
        serde_json::json!(flow_rel_spread),
    );
    measured.insert(
        "fit_layer_gamma_c_vs_1_over_1_minus_c0".into(),
        serde_json::json!(fit_layer),
    );
    measured.insert(
        "fit_flow_gamma_c_vs_1_over_1_minus_c0".into(),
        serde_json::json!(fit_flow),
    );
    measured.insert(
        "layer_max_rise_in_gamma".into(),
        serde_json::json!(worst_rise),
    );
    measured.insert(
        "flow_max_rise_in_gamma".into(),
        serde_json::json!(worst_flow_rise),
    );
    for (k, v) in measured {
        report.measured.insert(k, v);
    }
    for (k, v) in predicted {
        report.prediction.insert(k, v);
    }
    report.prediction(
        "gamma_c",
        "1 / (1 - c0) as n -> infinity, independent of n (self-score beta vs beta c0 + ln n)",
    );
    report.prediction("fit_slope_vs_1_over_1_minus_c0", 1.0);
    report.prediction("fit_intercept", 0.0);
    report.prediction(
        "finite_n_d",
        "layer: c ~= c0 / (c0 + (1 - c0)(P^2 + noise)), P = p + (1 - p) A(kappa) (module doc); \
         flow: qualitative, same gamma_c ~ 1/(1 - c0) (collapse feeds back: c grows, so the \
         flow's gamma_c sits at or above the layer's)",
    );

    // Figure: gamma_c against c0 with the predictions.
    let mut series = Vec::new();
    for (ni, &n) in sz.layer_ns.iter().enumerate() {
        series.push(Series::markers(
            format!("one layer, n = {n}"),
            sz.c0s
                .iter()
                .zip(&gc_layer_by_c0)
                .map(|(&c, v)| (c, v[ni]))
                .collect(),
        ));
    }
    for (ni, &n) in sz.flow_ns.iter().enumerate() {
        series.push(Series::markers(
            format!("flow t = {}, n = {n}", sz.t_end),
            sz.c0s
                .iter()
                .zip(&gc_flow_by_c0)
                .map(|(&c, v)| (c, v[ni]))
                .collect(),
        ));
    }
    let c_lo = (sz.c0s[0] - 0.1).max(0.0);
    let c_hi = sz.c0s[sz.c0s.len() - 1] + 0.2;
    series.push(Series::theory(
        "1 / (1 - c0) (n -> infinity)",
        (0..=50)
            .map(|k| {
                let c = c_lo + (c_hi - c_lo) * k as f64 / 50.0;
                (c, 1.0 / (1.0 - c))
            })
            .collect(),
    ));
    plot::lines(
        &setup.path("gamma_c_vs_c0.png"),
        &Axes {
            title: &format!("Critical gamma of beta = gamma ln n (d = {d})"),
            x_label: "c0 = mean initial pairwise cosine",
            y_label: "gamma_c",
            log_x: false,
            log_y: false,
        },
        &series,
    )?;
    report.files.push("gamma_c_vs_c0.png".into());

    let increasing = |v: &[f64]| v.windows(2).all(|w| w[1] > w[0]);
    report.check("every_curve_crosses_halfway", all_found);
    report.check("layer_collapses_at_small_gamma", collapse_small);
    report.check("layer_near_identity_at_large_gamma", identity_large);
    report.check("layer_monotone_in_gamma", monotone);
    report.check("layer_gamma_c_increases_with_c0", increasing(&layer_mean));
    report.check(
        "layer_gamma_c_spread_over_n_below_15_percent",
        layer_rel_spread.iter().all(|s| *s < 0.15),
    );
    report.check(
        "layer_gamma_c_within_25_percent_of_1_over_1_minus_c0_at_largest_n",
        g_largest.iter().all(|g| (g - 1.0).abs() < 0.25),
    );
    report.measured(
        "flow_gamma_0_largest_deviation_from_closed_form",
        worst_uniform_dev,
    );
    report.prediction(
        "flow_gamma_0",
        "uniform attention: c / (1 - c) = c0 / (1 - c0) e^{2t} (n -> infinity)",
    );
    report.check(
        "flow_at_gamma_0_follows_the_uniform_attention_closed_form_within_0.02",
        flow_uniform_closed_form,
    );
    report.check("flow_near_identity_at_large_gamma", flow_identity);
    report.check("flow_monotone_in_gamma", flow_monotone);
    report.check("flow_gamma_c_increases_with_c0", increasing(&flow_mean));
    report.check(
        "flow_gamma_c_spread_over_n_below_20_percent",
        flow_rel_spread.iter().all(|s| *s < 0.2),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_critical_scaling_has_an_n_independent_transition() {
        let (_dir, out, s) = super::super::quick_run_checked("critical-scaling", 3);
        // gamma_c (1 - c0) at the largest n is near 1 for every c0.
        for g in s["measured"]["layer_gamma_c_times_1_minus_c0_at_largest_n"]
            .as_array()
            .unwrap()
        {
            let g = g.as_f64().unwrap();
            assert!((0.8..1.25).contains(&g), "{g}");
        }
        assert!(out.join("gamma_c_vs_c0.png").exists());
    }
}
