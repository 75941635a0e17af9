//! Experiment `integrator-order` (docs/model.md §2): the error at a fixed time T against the step
//! size h for Euler, Heun and RK4, and the fitted orders (theory: 1, 2, 4). The error is
//! max_i |x_i(T) - x_i^true(T)| against the true solution from another engine: the adaptive
//! Dormand-Prince 8(5,3) integrator (`integrate::adaptive`, order 8 with error control, at
//! tolerance 1e-13: ~1e-12 accurate) driving the reference backend's f64 field, so that neither
//! a flaw shared by the fixed-step methods nor round-off hides the order. The tested runs use
//! the `reference` backend (f64); the chosen backend is measured beside it, where f32 round-off
//! sets a floor near 1e-7 (its orders are reported, not checked).
//!
//! Check (issue 24's bands): each fitted f64 order (log-log slope of the error over the step
//! sizes) is within 3 se of 1, 2 and 4 plus a systematic part from the step scan (was: within
//! 0.2). Each curve is one deterministic run, so there are no independent units to resample:
//! the se is the fit's residual error over the step sizes, and the systematic is the drift of
//! the local order between the coarsest and the finest pair of steps (the error's next term,
//! relative O(h), bends the log-log line by that much; the full fit lies within it).
//! Parameters (`--set`): n, d, t_end, steps, beta, truth_tolerance.
//!
//! Mutations (a wrong Butcher coefficient): `rk4-wrong-a43` (the fourth RK4 stage at
//! x + h k3 / 2, order 1) and `heun-wrong-weights` (weights 1/4, 3/4, order 1).

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
pub const MUTATIONS: &[&str] = &["rk4-wrong-a43", "heun-wrong-weights"];

mod analyse;
mod simulate;
pub mod sizes;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Band, Check, Report, Setup, Test};
use attnflow::config::BackendChoice;
use attnflow::error::Result;
use attnflow::figures::{Axes, Series};
use sizes::Sizes;

#[derive(Serialize)]
struct Config {
    model: &'static str,
    truth: &'static str,
}

/// The fitted order of one backend and integrator (none at the f32 floor).
#[derive(Serialize)]
struct Order {
    order: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_se: Option<f64>,
    points: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

#[derive(Serialize)]
struct Measured {
    fitted_orders: BTreeMap<String, Order>,
}

#[derive(Serialize)]
struct Orders {
    euler: u32,
    heun: u32,
    rk4: u32,
}

#[derive(Serialize)]
struct Prediction {
    orders: Orders,
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    let (n, d, t_end) = (sz.n, sz.d, sz.t_end);
    report.add_config(&sz);
    report.add_config(&Config {
        model: "SA, causal, random Q K V",
        truth: "DOP853 (adaptive, f64) at truth_tolerance",
    });
    let (curves, chosen) =
        setup.memo_with(report, "integrator-order/errors", &sz, |setup, _, sz| {
            simulate::errors(setup, sz)
        })?;
    report.backend = Some(format!("reference (f64) and {}", chosen.name()));
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut orders = BTreeMap::new();
    let mut checks = Vec::new();
    for c in &curves {
        let f64_backend = c.backend == BackendChoice::Reference;
        for &(h, err) in &c.points {
            rows.push(vec![f64_backend as u8 as f64, c.order, h, err]);
        }
        let key = format!("{}_{}", c.backend.name(), c.integrator.name());
        let (fit, points) = analyse::fitted_order(&c.points, f64_backend);
        let order = match fit {
            Some(fit) => {
                if f64_backend {
                    checks.push(order_check(
                        &key,
                        fit.slope,
                        fit.slope_se,
                        &c.points,
                        c.order,
                    ));
                }
                Order {
                    order: Some(fit.slope),
                    order_se: Some(fit.slope_se),
                    points,
                    note: None,
                }
            }
            None => {
                if f64_backend {
                    checks.push(order_check(&key, f64::NAN, f64::NAN, &c.points, c.order));
                }
                Order {
                    order: None,
                    order_se: None,
                    points,
                    note: Some("errors at the f32 floor"),
                }
            }
        };
        orders.insert(key, order);
        let label = format!(
            "{} {}",
            c.integrator.name(),
            if f64_backend { "(f64)" } else { "(f32)" }
        );
        series.push(if f64_backend {
            Series::line(label, c.points.clone())
        } else {
            Series::markers(label, c.points.clone())
        });
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
    setup.lines(
        report,
        "integrator_order.png",
        &Axes {
            title: &format!("Error at T = {t_end} against h ({n} tokens, d = {d})"),
            x_label: "step size h",
            y_label: "max_i |x_i(T) - x_i^true(T)|",
            log_x: true,
            log_y: true,
        },
        &series,
    )?;
    report.add_measured(&Measured {
        fitted_orders: orders,
    });
    report.add_prediction(&Prediction {
        orders: Orders {
            euler: 1,
            heun: 2,
            rk4: 4,
        },
    });
    report.band_check(
        "f64_orders_within_3se_plus_step_drift_of_1_2_4",
        Check::all(checks).expect("f64 curves"),
    );
    Ok(())
}

/// The fitted order of one f64 curve against the method's order: 3 fit se over the step sizes
/// plus the drift of the local order from the coarsest to the finest pair of steps.
fn order_check(key: &str, order: f64, se: f64, points: &[(f64, f64)], expected: f64) -> Check {
    let local = |a: (f64, f64), b: (f64, f64)| (a.1 / b.1).ln() / (a.0 / b.0).ln();
    let k = points.len();
    let drift = if k >= 3 {
        (local(points[0], points[1]) - local(points[k - 2], points[k - 1])).abs()
    } else {
        f64::NAN
    };
    Check::new(
        format!("fitted order of the error in h, {key}"),
        order,
        Test::Within,
        expected,
        Band::stat(
            3.0,
            se,
            format!(
                "the fit's residuals over {k} step sizes of one deterministic run (no \
                 independent units)"
            ),
        )
        .plus(
            drift,
            "step scan: |local order over the two coarsest steps - over the two finest| (the \
             error's next term is relative O(h))",
        ),
    )
    .rejects(
        &["rk4-wrong-a43", "heun-wrong-weights"],
        "a wrong Butcher coefficient (RK4's fourth stage at x + h k3 / 2; Heun's weights 1/4, \
         3/4): order 1",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_integrator_orders_are_1_2_4() {
        let (_dir, _, s) = super::super::quick_run_checked("integrator-order");
        let rk4 = s["measured"]["fitted_orders"]["reference_rk4"]["order"]
            .as_f64()
            .unwrap();
        assert!((rk4 - 4.0).abs() < 0.2, "{rk4}");
    }
}
