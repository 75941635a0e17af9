//! Field evaluations of adaptive stepping against fixed-step RK4 in the metastability setting
//! (docs/adaptive.md): n = 256 tokens on the circle, SA with Q = K = V = I, beta = 36, a
//! uniform start. Not a timed test: it counts evaluations.
//!
//! 1. The truth at T: dopri5 on the reference backend at rtol = atol = 1e-10.
//! 2. dopri5 at the given rtol (atol = rtol / 100): its error (largest |x - truth|) and
//!    evaluations.
//! 3. Evaluations of the adaptive run against T = 10^2 ... 10^5 (the last argument).
//! 4. Fixed-step RK4 with h = 0.2, 0.1, 0.05, ...: the largest h whose error is at most the
//!    adaptive one, and its evaluations (4 T / h); the ratio.
//!
//! cargo run --release --example adaptive_bench -- [T] [rtol] [backend] [growth T list]
//! e.g. cargo run --release --example adaptive_bench -- 1e4 1e-6 cpu 1e2,1e3,1e4,1e5

use attnflow::backend::{BackendChoice, build_dynamics};
use attnflow::integrate::adaptive::{Options, integrate_adaptive};
use attnflow::integrate::{Integrator, Stepper};
use attnflow::model::init::InitSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, Weights};

fn main() -> attnflow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.to_string());
    let t_end: f64 = arg(0, "1e4").parse().expect("T");
    let rtol: f64 = arg(1, "1e-6").parse().expect("rtol");
    let choice: BackendChoice = arg(2, "cpu").parse()?;
    let growth: Vec<f64> = arg(3, "")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a time"))
        .collect();
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
    let adaptive = |choice: BackendChoice, rtol: f64, atol: f64, t: f64| {
        let mut b = build_dynamics(choice, &model, shape, &x0)?.backend;
        let o = Options {
            rtol,
            atol,
            ..Options::default()
        };
        let (x, s) = integrate_adaptive(b.as_mut(), &model, Integrator::Dopri5, o, t, &[])?;
        Ok::<_, attnflow::Error>((x.into_iter().next().unwrap(), s.into_iter().next().unwrap()))
    };
    let diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    println!(
        "n = {n}, d = 2, beta = {beta}, T = {t_end}, backend {}",
        choice.name()
    );
    let clock = std::time::Instant::now();
    let (truth, ts) = adaptive(BackendChoice::Reference, 1e-10, 1e-10, t_end)?;
    println!(
        "truth: dopri5 rtol 1e-10 on the reference: {} steps, {} evaluations ({:.0} s)",
        ts.stats.accepted,
        ts.stats.evaluations,
        clock.elapsed().as_secs_f64()
    );
    let (x, s) = adaptive(choice, rtol, rtol / 100.0, t_end)?;
    let err = diff(&x, &truth);
    println!(
        "dopri5 rtol {rtol:e}: error {err:.3e}, {} accepted, {} rejected, h in [{:.3e}, {:.3e}], \
         {} evaluations",
        s.stats.accepted,
        s.stats.rejected,
        s.stats.h_smallest,
        s.stats.h_largest,
        s.stats.evaluations
    );
    for t in growth {
        let (_, s) = adaptive(choice, rtol, rtol / 100.0, t)?;
        println!(
            "T = {t:e}: {} evaluations, {} accepted, {} rejected, largest step {:.3e}",
            s.stats.evaluations, s.stats.accepted, s.stats.rejected, s.stats.h_largest
        );
    }
    let mut h = 0.2;
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..6 {
        let steps = (t_end / h).round() as usize;
        let mut b = build_dynamics(choice, &model, shape, &x0)?.backend;
        let stepper = Stepper::new(&model, Integrator::Rk4)?;
        stepper.prepare(b.as_mut())?;
        stepper.steps(b.as_mut(), t_end / steps as f64, 0..steps as u32)?;
        let e = diff(&b.read_state()?.to_f64(), &truth);
        let evals = 4.0 * steps as f64;
        println!("rk4 h = {h}: error {e:.3e}, {evals} evaluations");
        if e <= err {
            best = Some((h, evals));
            break;
        }
        h /= 2.0;
    }
    match best {
        Some((h, evals)) => println!(
            "rk4 needs h = {h} ({evals} evaluations) for the adaptive run's accuracy: {:.1}x the \
             adaptive run's {}",
            evals / s.stats.evaluations as f64,
            s.stats.evaluations
        ),
        None => println!("rk4 did not reach the adaptive run's accuracy down to h = {h}"),
    }
    Ok(())
}
