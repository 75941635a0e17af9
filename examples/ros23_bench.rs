//! Field evaluations of the stiff method ros23 (docs/adaptive.md, "A stiff method") against T
//! in the metastability setting: n = 256 tokens on the circle, SA with Q = K = V = I,
//! beta = 36, a uniform start, on the reference backend. Not a timed test: it counts
//! evaluations.
//!
//! For each T of the list: ros23's evaluations (GMRES iterations included), steps and largest
//! step, and with `dopri5` dopri5's evaluations at the same tolerance. With a truth time T*:
//! the error (largest |x - truth|) of both at T* against dopri5 at rtol = atol = 1e-10.
//!
//! cargo run --release --example ros23_bench -- RTOL T1,T2,... [TRUTH_T] [dopri5]
//! e.g. cargo run --release --example ros23_bench -- 1e-6 1e2,1e3,1e4,1e5 1e3 dopri5

use attnflow::backend::{BackendChoice, build_dynamics};
use attnflow::integrate::Integrator;
use attnflow::integrate::adaptive::{Options, integrate_adaptive};
use attnflow::integrate::rosenbrock::integrate_ros23;
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};

fn main() -> attnflow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rtol: f64 = args.first().map_or(Ok(1e-6), |s| s.parse()).expect("RTOL");
    let times: Vec<f64> = args
        .get(1)
        .map_or("1e2,1e3", String::as_str)
        .split(',')
        .map(|s| s.parse().expect("a time"))
        .collect();
    let truth_t: Option<f64> = args
        .get(2)
        .filter(|s| *s != "dopri5")
        .map(|s| s.parse().expect("TRUTH_T"));
    let with_dopri5 = args.iter().any(|s| s == "dopri5");
    let (n, beta) = (256, 36.0);
    let shape = Shape::new(1, n, 2)?;
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(2),
        vec![beta],
    );
    let x0 = InitSpec::Uniform.generate(shape, Geometry::Sphere, 1)?;
    let opts = |rtol: f64, atol: f64| Options {
        rtol,
        atol,
        ..Options::default()
    };
    let dopri5 = |o: Options, t: f64| {
        let mut b = build_dynamics(BackendChoice::Reference, &model, shape, &x0)?.backend;
        let (x, s) = integrate_adaptive(b.as_mut(), &model, Integrator::Dopri5, o, t, &[])?;
        Ok::<_, attnflow::Error>((x.into_iter().next().unwrap(), s[0].stats.evaluations))
    };
    let diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    println!(
        "n = {n}, d = 2, beta = {beta}, rtol = {rtol:e}, atol = {:e}, reference",
        rtol / 100.0
    );
    for &t in &times {
        let clock = std::time::Instant::now();
        let (x, stats) = integrate_ros23(&model, shape, &x0, opts(rtol, rtol / 100.0), t, &[t])?;
        let s = &stats[0];
        let mut line = format!(
            "T = {t:e}: ros23 {} evaluations ({} in GMRES), {} accepted, {} rejected, largest \
             step {:.3e} ({:.1} s)",
            s.steps.evaluations,
            s.krylov,
            s.steps.accepted,
            s.steps.rejected,
            s.steps.h_largest,
            clock.elapsed().as_secs_f64()
        );
        let dp = if with_dopri5 || truth_t == Some(t) {
            let (xd, ev) = dopri5(opts(rtol, rtol / 100.0), t)?;
            line += &format!("; dopri5 {ev} evaluations");
            Some(xd)
        } else {
            None
        };
        if truth_t == Some(t) {
            let (truth, ev) = dopri5(opts(1e-10, 1e-10), t)?;
            line += &format!(
                "; against dopri5 at 1e-10 ({ev} evaluations): ros23 error {:.3e}, dopri5 error \
                 {:.3e}",
                diff(&x[0], &truth),
                diff(dp.as_ref().unwrap(), &truth)
            );
        }
        println!("{line}");
    }
    Ok(())
}
