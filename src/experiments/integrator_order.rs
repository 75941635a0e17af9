//! Experiment `integrator-order` (docs/model.md §2): the error at a fixed time T against the step
//! size h for Euler, Heun and RK4, and the fitted orders (theory: 1, 2, 4). The error is
//! max_i |x_i(T) - x_i^ref(T)| against an RK4 run with a 16 times smaller step than the finest
//! tested, in f64 (the `reference` backend) so that round-off does not hide the order; the
//! chosen backend is measured beside it, where f32 round-off sets a floor near 1e-7.

use super::plot::{self, Axes, Series};
use super::{Report, Setup, fit_loglog};
use crate::config::BackendChoice;
use crate::error::Result;
use crate::integrate::Integrator;
use crate::model::init::InitSpec;
use crate::model::weights::Weights;
use crate::model::{Attention, Geometry, Mask, Model, Shape};

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let (n, d, t_end) = if setup.quick {
        (32, 3, 1.0)
    } else {
        (512, 16, 1.0)
    };
    let steps: Vec<usize> = vec![8, 16, 32, 64, 128];
    let reference_steps = 16 * steps[steps.len() - 1];
    let beta = 2.0;
    let shape = Shape::new(1, n, d)?;
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Causal,
        Weights::random(d, setup.seed),
        vec![beta],
    );
    let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, setup.seed)?;
    report.config("n", n);
    report.config("d", d);
    report.config("beta", beta);
    report.config("t_end", t_end);
    report.config("model", "SA, causal, random Q K V");
    report.config("steps", &steps);
    report.config("reference_steps", reference_steps);
    let evolve = |choice: BackendChoice,
                  integrator: Integrator,
                  steps: usize|
     -> Result<Vec<f64>> {
        let mut b = crate::backend::build_dynamics(choice, &model, shape, &x0)?.backend;
        crate::run::integrate_steps(b.as_mut(), &model, integrator, t_end / steps as f64, steps)?;
        Ok(b.read_state()?.to_f64())
    };
    setup.say(&format!(
        "reference solution: RK4 with {reference_steps} steps (f64)"
    ));
    let truth = evolve(BackendChoice::Reference, Integrator::Rk4, reference_steps)?;
    let mut backends = vec![BackendChoice::Reference];
    let chosen = crate::backend::select(setup.backend)?.kind;
    if chosen != BackendChoice::Reference {
        backends.push(chosen);
    }
    report.backend = Some(format!("reference (f64) and {}", chosen.name()));
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut orders = serde_json::Map::new();
    let mut all_ok = true;
    for &choice in &backends {
        for (integrator, order) in [
            (Integrator::Euler, 1.0),
            (Integrator::Heun, 2.0),
            (Integrator::Rk4, 4.0),
        ] {
            let mut pts = Vec::new();
            for &s in &steps {
                let x = evolve(choice, integrator, s)?;
                let err = x
                    .iter()
                    .zip(&truth)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                pts.push((t_end / s as f64, err));
                rows.push(vec![
                    (choice == BackendChoice::Reference) as u8 as f64,
                    order,
                    t_end / s as f64,
                    err,
                ]);
            }
            // f32 backends: fit only errors well above their round-off floor.
            let usable: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|&(_, e)| choice == BackendChoice::Reference || e > 1e-5)
                .collect();
            let key = format!("{}_{}", choice.name(), integrator.name());
            if usable.len() >= 3 {
                let fit = fit_loglog(
                    &usable.iter().map(|p| p.0).collect::<Vec<_>>(),
                    &usable.iter().map(|p| p.1).collect::<Vec<_>>(),
                );
                if choice == BackendChoice::Reference {
                    all_ok &= (fit.slope - order).abs() <= 0.2;
                }
                orders.insert(key, serde_json::json!({"order": fit.slope, "order_se": fit.slope_se, "points": usable.len()}));
            } else {
                orders.insert(key, serde_json::json!({"order": null, "points": usable.len(), "note": "errors at the f32 floor"}));
            }
            let label = format!(
                "{} {}",
                integrator.name(),
                if choice == BackendChoice::Reference {
                    "(f64)"
                } else {
                    "(f32)"
                }
            );
            series.push(if choice == BackendChoice::Reference {
                Series::line(label, pts)
            } else {
                Series::markers(label, pts)
            });
        }
    }
    // Reference slopes h^p through the finest f64 point of each method.
    for (i, p) in [1.0f64, 2.0, 4.0].iter().enumerate() {
        let s = &series[i].points;
        let (h0, e0) = s[s.len() - 1];
        let h1 = s[0].0;
        series.push(Series::theory(
            format!("h^{p}"),
            vec![(h0, e0), (h1, e0 * (h1 / h0).powf(*p))],
        ));
    }
    setup.csv(
        report,
        "integrator_order.csv",
        &["f64", "order", "h", "max_error"],
        &rows,
    )?;
    plot::lines(
        &setup.path("integrator_order.png"),
        &Axes {
            title: &format!("Error at T = {t_end} against h ({n} tokens, d = {d})"),
            x_label: "step size h",
            y_label: "max_i |x_i(T) - x_i^ref(T)|",
            log_x: true,
            log_y: true,
        },
        &series,
    )?;
    report.files.push("integrator_order.png".into());
    report.measured("fitted_orders", orders);
    report.prediction(
        "orders",
        serde_json::json!({"euler": 1, "heun": 2, "rk4": 4}),
    );
    report.check("f64_orders_within_0.2_of_1_2_4", all_ok);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_integrator_orders_are_1_2_4() {
        let (_dir, _, s) = super::super::quick_run_checked("integrator-order", 3);
        let rk4 = s["measured"]["fitted_orders"]["reference_rk4"]["order"]
            .as_f64()
            .unwrap();
        assert!((rk4 - 4.0).abs() < 0.2, "{rk4}");
    }
}
