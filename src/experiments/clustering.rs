//! Experiment `clustering` (docs/model.md §4): with Q = K = V = I on S^2, tokens collapse to one
//! point, and 1 - min_{i,j} <x_i, x_j> decays exponentially once they are in an open
//! hemisphere. Linearising at a single cluster (all weights equal, each token pulled to the
//! mean) gives the rate: x_i - x_j decays like e^{-c t}, so 1 - cos like e^{-2 c t}, with
//! c = 1 for SA and c = e^beta for USA (its weights are e^{beta <x_i, x_j>} / n -> e^beta / n).

use super::plot::{self, Axes, Series};
use super::{Report, Setup, fit_line, simulate};
use crate::error::Result;
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

fn min_cos(x: &[f64], d: usize) -> f64 {
    let n = x.len() / d;
    let mut m: f64 = 1.0;
    for i in 0..n {
        for j in i + 1..n {
            let c: f64 = (0..d).map(|k| x[i * d + k] * x[j * d + k]).sum();
            m = m.min(c);
        }
    }
    m
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let d = 3;
    // USA at large beta sits in metastable clusters far longer (its inter-cluster weights are
    // e^{beta (cos - 1)} smaller), so it gets smaller betas.
    let (n, betas, usa_betas, t_end, h) = if setup.quick {
        (48, vec![0.5, 1.0, 2.0], vec![0.5, 1.0], 30.0, 0.05)
    } else {
        (
            2048,
            vec![0.25, 0.5, 1.0, 2.0],
            vec![0.5, 1.0, 2.0],
            80.0,
            0.05,
        )
    };
    report.config("n", n);
    report.config("d", d);
    report.config("betas_sa", &betas);
    report.config("betas_usa", &usa_betas);
    report.config("t_end", t_end);
    report.config("h", h);
    report.config("integrator", "rk4");
    report.config("init", "uniform");
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut rates = serde_json::Map::new();
    let mut predicted = serde_json::Map::new();
    let mut all_collapse = true;
    let mut all_match = true;
    // SA: one ensemble of every beta. USA moves e^beta times faster near collapse, so each
    // beta runs alone with h <= 0.25 e^-beta (RK4 stays accurate), over the same T.
    let mut groups: Vec<(Attention, Vec<f64>, f64)> = vec![(Attention::Sa, betas.clone(), h)];
    for &beta in &usa_betas {
        groups.push((Attention::Usa, vec![beta], h.min(0.25 * f64::exp(-beta))));
    }
    for (attention, betas, h_run) in groups {
        let steps = (t_end / h_run).round() as usize;
        // Observe often enough to resolve the final decay e^{-2 c t} (c = 1 for SA, e^beta for
        // USA): at least ten points per e-fold, at most 2000 in all.
        let c = match attention {
            Attention::Sa => 1.0,
            Attention::Usa => f64::exp(betas[0]),
        };
        let every = ((0.05 / (c * h_run)) as usize).max(steps / 2000).max(1);
        let at: Vec<usize> = (1..=steps)
            .filter(|s| s % every == 0 || *s == steps)
            .collect();
        let shape = Shape::new(betas.len(), n, d)?;
        let model = Model::new(
            attention,
            Geometry::Sphere,
            Mask::Full,
            Weights::identity(d),
            betas.clone(),
        );
        let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, setup.seed)?;
        let mut curves: Vec<Vec<(f64, f64)>> = vec![Vec::new(); betas.len()];
        setup.say(&format!(
            "{}: beta {betas:?}, n = {n}, h = {h_run:.4}",
            attention.name()
        ));
        simulate(
            setup,
            report,
            &model,
            shape,
            &x0,
            Integrator::Rk4,
            h_run,
            &at,
            |step, x| {
                for (b, curve) in curves.iter_mut().enumerate() {
                    let sys = &x[b * n * d..(b + 1) * n * d];
                    curve.push((step as f64 * h_run, 1.0 - min_cos(sys, d)));
                }
            },
        )?;
        for (b, &beta) in betas.iter().enumerate() {
            let curve = &curves[b];
            for &(t, gap) in curve {
                rows.push(vec![
                    t,
                    (attention == Attention::Usa) as u8 as f64,
                    beta,
                    gap,
                ]);
            }
            // The final exponential phase: gaps between 1e-2 and 100 x the f32 floor.
            let tail: Vec<(f64, f64)> = curve
                .iter()
                .copied()
                .filter(|&(_, g)| g < 1e-2 && g > 1e-5)
                .collect();
            let final_gap = curve.last().map_or(1.0, |p| p.1);
            let collapsed = final_gap < 1e-3;
            all_collapse &= collapsed;
            let c = match attention {
                Attention::Sa => 1.0,
                Attention::Usa => f64::exp(beta),
            };
            let key = format!("{}_beta_{beta}", attention.name());
            predicted.insert(key.clone(), serde_json::json!(2.0 * c));
            if tail.len() >= 4 {
                let fit = fit_line(
                    &tail.iter().map(|p| p.0).collect::<Vec<_>>(),
                    &tail.iter().map(|p| p.1.ln()).collect::<Vec<_>>(),
                );
                let rate = -fit.slope;
                all_match &= (rate / (2.0 * c) - 1.0).abs() < 0.15;
                rates.insert(
                    key.clone(),
                    serde_json::json!({"rate": rate, "rate_se": fit.slope_se, "r2": fit.r2,
                        "points": tail.len(), "final_gap": final_gap}),
                );
                let (t0, t1) = (tail[0].0, tail[tail.len() - 1].0);
                series.push(Series::theory(
                    format!(
                        "fit {} beta {beta}: rate {rate:.3}",
                        attention.name().to_uppercase()
                    ),
                    vec![
                        (t0, (fit.intercept + fit.slope * t0).exp()),
                        (t1, (fit.intercept + fit.slope * t1).exp()),
                    ],
                ));
            } else {
                all_match = false;
                rates.insert(
                    key,
                    serde_json::json!({"rate": null, "final_gap": final_gap}),
                );
            }
            series.push(Series::line(
                format!("{} beta {beta}", attention.name().to_uppercase()),
                curve.clone(),
            ));
        }
    }
    setup.csv(
        report,
        "clustering.csv",
        &["t", "usa", "beta", "one_minus_min_cos"],
        &rows,
    )?;
    plot::lines(
        &setup.path("clustering.png"),
        &Axes {
            title: &format!("Collapse of {n} tokens on S^2 (Q = K = V = I)"),
            x_label: "t",
            y_label: "1 - min_ij <x_i, x_j>",
            log_x: false,
            log_y: true,
        },
        &series,
    )?;
    report.files.push("clustering.png".into());
    report.measured("decay_rate_of_one_minus_min_cos", rates);
    report.prediction("decay_rate_of_one_minus_min_cos", predicted);
    report.prediction(
        "note",
        "linearisation at one cluster: rate 2 for SA, 2 e^beta for USA",
    );
    report.check("every_system_collapses_below_1e-3", all_collapse);
    report.check("rates_within_15_percent_of_linearisation", all_match);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_clustering_collapses_at_the_predicted_rate() {
        let (_dir, out, _) = super::super::quick_run_checked("clustering", 1);
        assert!(out.join("clustering.png").exists());
    }
}
