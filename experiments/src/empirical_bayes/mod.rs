//! Experiment `empirical-bayes` (issue 13 §3): attention-only denoising under all-token
//! corruption as two-stage empirical Bayes (Smart, Ganguly, Metya, Morozov, Sengupta,
//! arXiv:2605.29351; the seed holds only the abstract, so the setting below is the one the
//! abstract and its public summaries describe, reconstructed, and the theory is derived here).
//!
//! The derivation, the quantities, the checks and the mutations are in
//! docs/experiments/empirical-bayes.md.

/// The deliberate errors of `--mutate` (see [`crate::Experiment::mutations`]).
/// `fast-depth-rate` is issue 24's wrong model: the mean field (the theory, not the
/// simulation) removes noise 1.3 times as fast per unit depth. `clean-context` leaves the
/// context uncorrupted: the seed's all-token corruption is what makes depth useful.
pub const MUTATIONS: &[&str] = &[
    "query-refined",
    "wrong-bandwidth",
    "wrong-prior",
    "fast-depth-rate",
    "clean-context",
];

/// The depth-rate factor of the wrong mean field of `--mutate fast-depth-rate`.
const WRONG_DEPTH_RATE: f64 = 1.3;

mod analyse;
mod simulate;
pub mod sizes;

use serde::Serialize;

use super::{Band, Check, Report, Setup, Test};
use analyse::{Prior, argmin, bayes_risk, mean_field_risk, mean_field_variances, optimal_depth};
use attnflow::error::{Result, input};
use attnflow::figures::{Axes, Series};
use attnflow::stats::{Fit, fit_line, fit_loglog, mean_se};
use simulate::{Ensemble, Measure};
use sizes::Sizes;

/// The mean-field curve is checked at depths up to this multiple of its best depth: the
/// depths where the finite-n lag of the context's collapse falls like 1/n, the premise of the
/// extrapolation 2 E(n) - E(n / 2). Beyond, at the smallest bandwidth, the collapse is
/// unstable (the context clumps, the clustering of attention dynamics) and the lag falls more
/// slowly: an n-scan at h = 0.4 (default size, n = 512, 1024, 2048, seed 0) measured the
/// context variance's lag over the mean field at 1.5 times the best depth as 0.370, 0.251,
/// 0.174 (n^-0.54), against 0.262, 0.134, 0.065 (1/n) at h = 0.5; docs/experiments/
/// empirical-bayes.md. The check `finite_n_lag_of_the_collapse_shrinks_with_n` measures the
/// lag at LAG_DEPTH times the best depth and requires it to shrink with n.
const MF_WINDOW: f64 = 1.25;
/// Where (a multiple of the mean field's best depth, smallest bandwidth) the finite-n lag of
/// the context's collapse is measured at n and n / 2.
const LAG_DEPTH: f64 = 1.5;
/// Largest relative excess of the mixture at the best depth of the smallest bandwidth.
const MIXTURE_TOL: f64 = 0.10;

#[derive(Serialize)]
struct Config {
    setting: &'static str,
    kernel: &'static str,
    stage1: &'static str,
    stage2: &'static str,
}

#[derive(Serialize)]
struct DepthPoint {
    layer: usize,
    depth: f64,
    risk: f64,
    risk_se: f64,
    /// risk minus the Bayes posterior mean's risk on the same queries (paired).
    excess: f64,
    excess_se: f64,
    /// E|x_hat - x_hat_B|^2 / d.
    distance_to_bayes: f64,
    context_var: f64,
    mean_field_risk: Option<f64>,
    mean_field_context_var: Option<f64>,
}

#[derive(Serialize)]
struct PerBandwidth {
    h: f64,
    beta_stage1: f64,
    best_depth: f64,
    best_depth_se: f64,
    mean_field_best_depth: Option<f64>,
    continuous_depth_noise_relation: Option<f64>,
    excess_at_best: f64,
    excess_at_best_se: f64,
    relative_excess_at_best: f64,
    points: Vec<DepthPoint>,
}

#[derive(Serialize)]
struct PerPrior {
    prior: String,
    bayes_risk: f64,
    bayes_risk_monte_carlo: f64,
    bayes_risk_monte_carlo_se: f64,
    per_bandwidth: Vec<PerBandwidth>,
}

#[derive(Serialize)]
struct ConvPoint {
    n: usize,
    distance_to_bayes: f64,
    distance_to_bayes_se: f64,
    excess: f64,
    excess_se: f64,
}

#[derive(Serialize)]
struct Convergence {
    bandwidth: f64,
    layers: usize,
    dt: f64,
    depth: f64,
    points: Vec<ConvPoint>,
    exponent_fit: Fit,
}

#[derive(Serialize)]
struct Measured {
    gaussian: PerPrior,
    mixture: PerPrior,
    /// Best depth of the Gaussian prior against 1 / h^2.
    depth_noise_fit: Fit,
    /// The same fit of the mean field's own best depths (layers of step dt): the slope the
    /// measured one is checked against.
    mean_field_depth_noise_fit: Fit,
    convergence: Convergence,
    /// The finite-n lag of the collapse at the smallest bandwidth, beyond the window of the
    /// mean-field curve's check.
    collapse_lag: Option<Lag>,
}

#[derive(Serialize)]
struct Prediction {
    gaussian_bayes_risk: f64,
    mixture_bayes_risk: f64,
    depth_noise_relation: &'static str,
    depth_noise_slope: f64,
    depth_noise_intercept: f64,
    excess_risk_exponent: f64,
    note: &'static str,
}

/// Mean and standard error over draws of f(measure) at one depth.
fn stat(ms: &[&Vec<Measure>], layer: usize, f: impl Fn(&Measure) -> f64) -> (f64, f64) {
    mean_se(&ms.iter().map(|m| f(&m[layer])).collect::<Vec<_>>())
}

/// The vertex of the parabola through the grid minimum of `v` and its neighbours, in layers.
fn vertex(v: &[f64]) -> f64 {
    let i = argmin(v);
    if i == 0 || i + 1 == v.len() {
        return i as f64;
    }
    let (a, b, c) = (v[i - 1], v[i], v[i + 1]);
    let den = a - 2.0 * b + c;
    if den <= 0.0 {
        i as f64
    } else {
        i as f64 + 0.5 * (a - c) / den
    }
}

/// Best depth (layers) of the draw-averaged risk curve and its jackknife standard error.
fn best_layer(ms: &[&Vec<Measure>]) -> (f64, f64) {
    let k = ms.len();
    let layers = ms[0].len();
    let curve = |skip: Option<usize>| {
        (0..layers)
            .map(|l| {
                let (s, c) = ms
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != skip)
                    .fold((0.0, 0.0), |(s, c), (_, m)| (s + m[l].mse, c + 1.0));
                s / c
            })
            .collect::<Vec<f64>>()
    };
    let full = vertex(&curve(None));
    let jk: Vec<f64> = (0..k).map(|i| vertex(&curve(Some(i)))).collect();
    let m = jk.iter().sum::<f64>() / k as f64;
    let var = jk.iter().map(|v| (v - m).powi(2)).sum::<f64>() * (k as f64 - 1.0) / k as f64;
    (full, var.sqrt())
}

struct Outcome {
    summary: PerPrior,
    mc: Vec<Check>,
    bayes: Vec<Check>,
    trade_off: Vec<Check>,
    mean_field: Vec<Check>,
    depth: Vec<Check>,
    best_depths: Vec<f64>,
    best_depth_ses: Vec<f64>,
    /// The mean field's own best depths (layers of step dt), Gaussian prior.
    mf_best_depths: Vec<f64>,
    /// The finite-n lag of the collapse at the smallest bandwidth (Gaussian prior).
    lag: Option<(Lag, Check)>,
}

/// The context variance's lag behind the simulation's mean field (the true depth rate; each
/// context against the mean field from its own initial variance) at one layer of the
/// smallest bandwidth, at n and n / 2 (independent contexts).
#[derive(Clone, Serialize)]
struct LagPoint {
    layer: usize,
    depth_over_best: f64,
    mean_field_context_var: f64,
    lag_n: f64,
    lag_n_se: f64,
    lag_half_n: f64,
    lag_half_n_se: f64,
    /// log2(lag(n / 2) / lag(n)): 1 where the lag falls like 1/n.
    exponent: f64,
    /// Its delta-method standard error.
    exponent_se: f64,
    /// 2 lag(n) - lag(n / 2): the part of the lag that the 1/n extrapolation leaves.
    extrapolated_lag: f64,
    /// That residual carried to the excess risk through the mean field's slope in the context
    /// variance (d risk / dv at the mean field's v): the shift of the extrapolated excess
    /// that the lag predicts.
    extrapolated_lag_in_excess: f64,
}

/// The finite-n lag of the collapse at the smallest bandwidth, every layer up to LAG_DEPTH
/// times the best depth (the last is the checked one).
#[derive(Clone, Serialize)]
struct Lag {
    h: f64,
    window_over_best: f64,
    points: Vec<LagPoint>,
}

/// Scan of one prior: the depth scan at every bandwidth (and, for the Gaussian prior, at n / 2
/// for the extrapolation to n = infinity), its checks and its summary.
fn depth_scan(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    prior: Prior,
    name: &str,
    stream: u64,
    rows: &mut Vec<Vec<f64>>,
) -> Result<Outcome> {
    let gaussian = prior.mu == 0.0;
    let PriorRuns { all, half } = simulate_prior(setup, report, sz, prior, name, stream)?;
    let bayes = bayes_risk(prior, sz.sigma, sz.d);
    let mut out = prior_outcome(sz, prior, name, bayes, &all);
    // The theory's depth rate (the wrong model of --mutate fast-depth-rate: 1.3 times).
    let rate = if setup.mutated("fast-depth-rate") {
        WRONG_DEPTH_RATE
    } else {
        1.0
    };
    let smallest_h = sz.bandwidths.iter().copied().fold(f64::INFINITY, f64::min);
    for (hi, &h) in sz.bandwidths.iter().enumerate() {
        let ms: Vec<&Vec<Measure>> = all[hi * sz.draws..(hi + 1) * sz.draws].iter().collect();
        let ms_half: Vec<&Vec<Measure>> = if gaussian {
            half[hi * sz.draws..(hi + 1) * sz.draws].iter().collect()
        } else {
            Vec::new()
        };
        let b = BandwidthScan {
            sz,
            name,
            gaussian,
            h,
            ms: &ms,
            ms_half: &ms_half,
            bayes,
            rate,
        };
        let mf = b.mean_field();
        let points = b.depth_points(&mf, &mut out, rows);
        if gaussian && h == smallest_h {
            out.lag = Some(b.collapse_lag(setup, &mf));
        }
        b.best_depth(setup, &mf, points, &mut out);
    }
    Ok(out)
}

/// The measurements of one prior's systems, per system per layer.
struct PriorRuns {
    /// At n: bandwidth-major, `draws` systems per bandwidth.
    all: Vec<Vec<Measure>>,
    /// At n / 2 (independent draws), for the Gaussian prior only (empty otherwise).
    half: Vec<Vec<Measure>>,
}

/// The ensemble of one prior at n and, for the Gaussian prior, at n / 2 (independent
/// draws; empty otherwise).
fn simulate_prior(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    prior: Prior,
    name: &str,
    stream: u64,
) -> Result<PriorRuns> {
    let gaussian = prior.mu == 0.0;
    let hs: Vec<f64> = sz
        .bandwidths
        .iter()
        .flat_map(|&h| std::iter::repeat_n(h, sz.draws))
        .collect();
    setup.say(&format!(
        "{name} prior: {} bandwidths x {} draws, n = {}, {} layers of dt = {}",
        sz.bandwidths.len(),
        sz.draws,
        sz.n,
        sz.layers,
        sz.dt
    ));
    let ens = Ensemble {
        prior,
        sigma: sz.sigma,
        d: sz.d,
        n: sz.n,
        q: sz.queries,
        bandwidths: &hs,
        dt: sz.dt,
        layers: sz.layers,
        every_layer: true,
        stream,
    };
    let all = simulate::run(setup, report, &ens)?;
    // The Gaussian prior again at half the context (independent draws): the finite-n excess
    // falls like 1/n (the convergence scan checks the exponent), so 2 E(n) - E(n / 2) is the
    // n -> infinity excess (Richardson), the mean field's to compare.
    let half = if gaussian {
        setup.say(&format!("{name} prior at n / 2 = {}", sz.n / 2));
        simulate::run(
            setup,
            report,
            &Ensemble {
                n: sz.n / 2,
                stream: stream + 100,
                ..ens
            },
        )?
    } else {
        Vec::new()
    };
    Ok(PriorRuns { all, half })
}

/// The outcome of one prior before its bandwidths: the summary's header and the Monte Carlo
/// Bayes risk's check.
fn prior_outcome(
    sz: &Sizes,
    prior: Prior,
    name: &str,
    bayes: f64,
    all: &[Vec<Measure>],
) -> Outcome {
    let gaussian = prior.mu == 0.0;
    let (bmc, bmc_se) = mean_se(&all.iter().map(|m| m[0].bayes_mse).collect::<Vec<_>>());
    let draws = format!("{} independent contexts", sz.draws);
    Outcome {
        summary: PerPrior {
            prior: if gaussian {
                format!("N(0, {}^2 I)", sz.tau)
            } else {
                format!("(1/2) N(+-{} e_1, {}^2 I)", prior.mu, prior.s)
            },
            bayes_risk: bayes,
            bayes_risk_monte_carlo: bmc,
            bayes_risk_monte_carlo_se: bmc_se,
            per_bandwidth: Vec::new(),
        },
        mc: vec![
            Check::new(
                format!("{name}: Monte Carlo Bayes risk"),
                bmc,
                Test::Within,
                bayes,
                Band::stat(3.0, bmc_se, &draws),
            )
            .rejects(
                &["wrong-prior"],
                "a Bayes predictor that is not the posterior mean",
            ),
        ],
        bayes: Vec::new(),
        trade_off: Vec::new(),
        mean_field: Vec::new(),
        depth: Vec::new(),
        best_depths: Vec::new(),
        best_depth_ses: Vec::new(),
        mf_best_depths: Vec::new(),
        lag: None,
    }
}

/// One bandwidth of one prior's depth scan: its draws at n (and n / 2 for the Gaussian
/// prior) and what the checks compare them with.
struct BandwidthScan<'a> {
    sz: &'a Sizes,
    name: &'a str,
    gaussian: bool,
    h: f64,
    ms: &'a [&'a Vec<Measure>],
    ms_half: &'a [&'a Vec<Measure>],
    bayes: f64,
    /// The theory's depth rate (1.3 under `--mutate fast-depth-rate`).
    rate: f64,
}

/// The mean field of one bandwidth: the theory's (at its depth rate) and the simulation's own
/// (the true rate), whose best depth sets the window of the comparison.
struct MeanField {
    /// The theory's context variance per layer.
    v: Vec<f64>,
    /// The theory's risk per layer.
    risk: Vec<f64>,
    /// The simulation's own mean-field context variance per layer.
    true_v: Vec<f64>,
    /// The simulation's own mean field's best depth, in layers.
    true_best: f64,
}

impl BandwidthScan<'_> {
    fn tau2_sigma2(&self) -> (f64, f64) {
        (self.sz.tau * self.sz.tau, self.sz.sigma * self.sz.sigma)
    }

    fn paired(&self) -> String {
        format!(
            "{} independent contexts, paired on the same queries",
            self.sz.draws
        )
    }

    fn mean_field(&self) -> MeanField {
        let (sz, h2) = (self.sz, self.h * self.h);
        let (tau2, sigma2) = self.tau2_sigma2();
        let v = mean_field_variances(tau2, sigma2, h2, self.rate * sz.dt, sz.layers);
        let risk: Vec<f64> = v
            .iter()
            .map(|&v| mean_field_risk(tau2, sigma2, v, sigma2))
            .collect();
        // The simulation's own mean field (the true depth rate; the mutation is the
        // theory's): where its finite-n lag falls like 1/n, the window of the comparison.
        let true_v = mean_field_variances(tau2, sigma2, h2, sz.dt, sz.layers);
        let true_best = vertex(
            &true_v
                .iter()
                .map(|&v| mean_field_risk(tau2, sigma2, v, sigma2))
                .collect::<Vec<_>>(),
        );
        MeanField {
            v,
            risk,
            true_v,
            true_best,
        }
    }

    /// The measured risk curve, layer by layer (points, rows of depth_scan.csv) and, for the
    /// Gaussian prior within the window, its checks against the mean field.
    fn depth_points(
        &self,
        mf: &MeanField,
        out: &mut Outcome,
        rows: &mut Vec<Vec<f64>>,
    ) -> Vec<DepthPoint> {
        let (sz, h, gaussian, ms) = (self.sz, self.h, self.gaussian, self.ms);
        let mf_window = MF_WINDOW * mf.true_best * sz.dt;
        let mut points = Vec::new();
        for layer in 0..=sz.layers {
            let (risk, risk_se) = stat(ms, layer, |m| m.mse);
            let (excess, excess_se) = stat(ms, layer, |m| m.mse - m.bayes_mse);
            let (dist, _) = stat(ms, layer, |m| m.to_bayes);
            let (cv, _) = stat(ms, layer, |m| m.context_var);
            // The excess over the Bayes predictor on the same queries against the mean
            // field's: the query noise they share cancels (paired).
            if gaussian && layer as f64 * sz.dt <= mf_window {
                out.mean_field
                    .push(self.mean_field_check(mf, layer, excess, excess_se));
            }
            rows.push(vec![
                if gaussian { 0.0 } else { 1.0 },
                h,
                layer as f64,
                layer as f64 * sz.dt,
                risk,
                risk_se,
                excess,
                excess_se,
                dist,
                cv,
                if gaussian { mf.risk[layer] } else { f64::NAN },
                self.bayes,
            ]);
            points.push(DepthPoint {
                layer,
                depth: layer as f64 * sz.dt,
                risk,
                risk_se,
                excess,
                excess_se,
                distance_to_bayes: dist,
                context_var: cv,
                mean_field_risk: gaussian.then_some(mf.risk[layer]),
                mean_field_context_var: gaussian.then_some(mf.v[layer]),
            });
        }
        points
    }

    /// The Gaussian excess at one layer, extrapolated to n = infinity, against the mean
    /// field's.
    fn mean_field_check(&self, mf: &MeanField, layer: usize, excess: f64, excess_se: f64) -> Check {
        let h = self.h;
        let (ex_half, ex_half_se) = stat(self.ms_half, layer, |m| m.mse - m.bayes_mse);
        Check::new(
            format!(
                "gaussian excess risk extrapolated to n = infinity (2 E(n) - E(n/2)), \
                 h = {h}, layer {layer}"
            ),
            2.0 * excess - ex_half,
            Test::Within,
            mf.risk[layer] - self.bayes,
            Band::stat(
                3.0,
                (4.0 * excess_se * excess_se + ex_half_se * ex_half_se).sqrt(),
                format!(
                    "{} independent contexts at n and at n / 2, paired on the same \
                     queries",
                    self.sz.draws
                ),
            ),
        )
        .rejects(
            &[
                "fast-depth-rate",
                "wrong-bandwidth",
                "query-refined",
                "clean-context",
            ],
            "a mean field with a 1.3x depth rate; a wrong stage-2 bandwidth; a \
             refined query; an uncorrupted context",
        )
    }

    /// The finite-n lag of the collapse at this (the smallest) bandwidth behind the
    /// simulation's mean field, at n and n / 2, and its check.
    fn collapse_lag(&self, setup: &Setup, mf: &MeanField) -> (Lag, Check) {
        let (sz, h) = (self.sz, self.h);
        let h2 = h * h;
        let (tau2, sigma2) = self.tau2_sigma2();
        let (true_v, true_best) = (&mf.true_v, mf.true_best);
        // The finite-n lag of the collapse behind the simulation's mean field, per
        // context from its own initial variance (the initial spread, of order
        // n^(-1/2), cancels): paired within each context.
        let layer = ((LAG_DEPTH * true_best).round() as usize).min(sz.layers);
        let lags = |ms: &[&Vec<Measure>]| -> Vec<Vec<f64>> {
            ms.iter()
                .map(|m| {
                    let v0 = m[0].context_var;
                    let v = mean_field_variances(v0 - sigma2, sigma2, h2, sz.dt, layer);
                    (0..=layer).map(|l| m[l].context_var - v[l]).collect()
                })
                .collect()
        };
        let (at_n, at_half) = (lags(self.ms), lags(self.ms_half));
        let points: Vec<LagPoint> = (0..=layer)
            .map(|k| {
                let (l, l_se) = mean_se(&at_n.iter().map(|v| v[k]).collect::<Vec<_>>());
                let (lh, lh_se) = mean_se(&at_half.iter().map(|v| v[k]).collect::<Vec<_>>());
                LagPoint {
                    layer: k,
                    depth_over_best: k as f64 / true_best,
                    mean_field_context_var: true_v[k],
                    lag_n: l,
                    lag_n_se: l_se,
                    lag_half_n: lh,
                    lag_half_n_se: lh_se,
                    exponent: (lh / l).log2(),
                    exponent_se: (l_se / l).hypot(lh_se / lh) / std::f64::consts::LN_2,
                    extrapolated_lag: 2.0 * l - lh,
                    extrapolated_lag_in_excess: (2.0 * l - lh) * {
                        let (v, e) = (true_v[k], 1e-6);
                        (mean_field_risk(tau2, sigma2, v + e, sigma2)
                            - mean_field_risk(tau2, sigma2, v - e, sigma2))
                            / (2.0 * e)
                    },
                }
            })
            .collect();
        let last = points.last().expect("layer 0").clone();
        let (l, l_se, lh, lh_se) = (
            last.lag_n,
            last.lag_n_se,
            last.lag_half_n,
            last.lag_half_n_se,
        );
        let lag = Lag {
            h,
            window_over_best: MF_WINDOW,
            points,
        };
        let check = Check::new(
            format!(
                "lag of the context variance behind the mean field at n / 2 minus at n, h = \
                 {h}, layer {layer} ({LAG_DEPTH} x the best depth; lags {:.4} and {:.4})",
                lh, l
            ),
            lh - l,
            Test::Above,
            0.0,
            Band::stat(
                3.0,
                l_se.hypot(lh_se),
                format!(
                    "{} independent contexts at n and at n / 2, each against the mean \
                     field from its own initial variance",
                    sz.draws
                ),
            ),
        )
        .rejects(
            &[],
            "a lag of the collapse behind the mean field that does not shrink with n (not \
             a finite-n effect)",
        )
        .smoke_if(
            setup.quick,
            "no mutation of the study makes the lag stop shrinking; an uncorrupted context \
             (`clean-context`) starts nearer its collapse and is rejected by the depth checks",
        );
        (lag, check)
    }

    /// The best depth of this bandwidth: its checks (not below Bayes, the trade-off, the
    /// mean field's best depth) and its summary.
    fn best_depth(
        &self,
        setup: &Setup,
        mf: &MeanField,
        points: Vec<DepthPoint>,
        out: &mut Outcome,
    ) {
        let (sz, h, ms, bayes) = (self.sz, self.h, self.ms, self.bayes);
        let (tau2, sigma2) = self.tau2_sigma2();
        let h2 = h * h;
        let (best, best_se) = best_layer(ms);
        let bl = (best.round() as usize).min(sz.layers);
        let (ex, ex_se) = stat(ms, bl, |m| m.mse - m.bayes_mse);
        self.bayes_and_trade_off(out, bl);
        let mf_best = self.gaussian.then(|| vertex(&mf.risk) * sz.dt);
        if let Some(t) = mf_best {
            // Extrapolated to n = infinity like the excess (2 b(n) - b(n / 2)): at the
            // default size the best depth at n = 1024 sits 3.8 se below the mean field's at
            // h = 0.85, a finite-n lag.
            let (bh, bh_se) = best_layer(self.ms_half);
            let draws = format!("{} independent contexts", sz.draws);
            out.depth.push(
                Check::new(
                    format!("best depth extrapolated to n = infinity, h = {h}"),
                    (2.0 * best - bh) * sz.dt,
                    Test::Within,
                    t,
                    Band::stat(
                        3.0,
                        (4.0 * best_se * best_se + bh_se * bh_se).sqrt() * sz.dt,
                        format!("jackknife over {draws} at n and at n / 2"),
                    ),
                )
                .rejects(
                    &["wrong-bandwidth", "query-refined", "clean-context"],
                    "a wrong stage-2 bandwidth; a refined query; an uncorrupted context (a \
                     1.3x depth rate fails the mean-field curve)",
                ),
            );
            out.mf_best_depths.push(t);
        }
        out.best_depths.push(best * sz.dt);
        out.best_depth_ses.push(best_se * sz.dt);
        setup.say(&format!(
            "  h = {h}: best depth {:.3} +- {:.3} (mean field {:?}), excess {:.5} +- {:.5} \
             (Bayes {:.5})",
            best * sz.dt,
            best_se * sz.dt,
            mf_best,
            ex,
            ex_se,
            bayes
        ));
        out.summary.per_bandwidth.push(PerBandwidth {
            h,
            beta_stage1: 1.0 / h2,
            best_depth: best * sz.dt,
            best_depth_se: best_se * sz.dt,
            mean_field_best_depth: mf_best,
            continuous_depth_noise_relation: self.gaussian.then(|| optimal_depth(tau2, sigma2, h2)),
            excess_at_best: ex,
            excess_at_best_se: ex_se,
            relative_excess_at_best: ex / bayes,
            points,
        });
    }

    /// At the best layer `bl`: the excess is not below Bayes and is the distance to Bayes;
    /// the risk at depth 0 and at the last depth is above the best's.
    fn bayes_and_trade_off(&self, out: &mut Outcome, bl: usize) {
        let (sz, h, name, ms) = (self.sz, self.h, self.name, self.ms);
        let paired = self.paired();
        let (ex, ex_se) = stat(ms, bl, |m| m.mse - m.bayes_mse);
        let (cross, cross_se) = stat(ms, bl, |m| m.mse - m.bayes_mse - m.to_bayes);
        let wrong_bayes = "a Bayes predictor that is not the posterior mean";
        out.bayes.push(
            Check::new(
                format!("{name}: excess at the best depth, h = {h}"),
                ex,
                Test::AtLeast,
                0.0,
                Band::stat(3.0, ex_se, &paired),
            )
            .rejects(&["wrong-prior"], wrong_bayes),
        );
        out.bayes.push(
            Check::new(
                format!("{name}: excess - distance to Bayes (cross term), h = {h}"),
                cross,
                Test::Within,
                0.0,
                Band::stat(3.0, cross_se, &paired),
            )
            .rejects(&["wrong-prior"], wrong_bayes),
        );
        let d0: Vec<f64> = ms.iter().map(|m| m[0].mse - m[bl].mse).collect();
        let dl: Vec<f64> = ms.iter().map(|m| m[sz.layers].mse - m[bl].mse).collect();
        let ((a, a_se), (b, b_se)) = (mean_se(&d0), mean_se(&dl));
        for (what, v, se) in [("depth 0", a, a_se), ("the last depth", b, b_se)] {
            out.trade_off.push(
                Check::new(
                    format!("{name}: risk at {what} minus at the best, h = {h}"),
                    v,
                    Test::Above,
                    0.0,
                    Band::stat(3.0, se, &paired),
                )
                .rejects(
                    &["clean-context"],
                    "no depth trade-off: an uncorrupted context, where depth does not help \
                     (the seed's all-token corruption is what makes depth useful)",
                ),
            );
        }
    }
}

fn validate(sz: &Sizes) -> Result<()> {
    if sz.d < 1
        || sz.draws < 3
        || sz.conv_draws < 3
        || sz.bandwidths.len() < 2
        || sz.conv_ns.len() < 3
        || sz.layers < 2
        || sz.conv_layers < 1
        || !(sz.dt > 0.0 && sz.dt <= 1.0)
        || sz.sigma <= 0.0
        || sz.tau <= 0.0
        || sz.mixture_s <= 0.0
        || sz.bandwidths.iter().any(|&h| h <= 0.0)
    {
        return Err(input(
            "empirical-bayes: needs d >= 1, draws and conv_draws >= 3, two bandwidths > 0, three \
             conv_ns, layers >= 2, conv_layers >= 1, 0 < dt <= 1, sigma, tau, mixture_s > 0",
        ));
    }
    Ok(())
}

pub fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let sz = setup.sizes(Sizes::new(setup.quick))?;
    validate(&sz)?;
    report.add_config(&sz);
    report.add_config(&Config {
        setting: "euclidean R^d; clean tokens iid from the prior, every token y = x + sigma eps",
        kernel: "Gaussian exp(-|z - x|^2 / (2 h^2)): SA with beta = 1 / h^2 and key bias \
                 -beta |x|^2 / 2",
        stage1: "context flows by x <- x + dt (m_h(x) - x), fixed bandwidth h",
        stage2: "held-out noisy query y* attends with bandwidth sigma to the refined context",
    });
    let mut rows = Vec::new();
    let g = depth_scan(
        setup,
        report,
        &sz,
        Prior::gaussian(sz.tau),
        "gaussian",
        1,
        &mut rows,
    )?;
    let mixture = Prior {
        mu: sz.mixture_mu,
        s: sz.mixture_s,
    };
    let m = depth_scan(setup, report, &sz, mixture, "mixture", 2, &mut rows)?;
    let slope = depth_noise(&sz, &g);
    let (conv, exp_check) = convergence(setup, report, &sz)?;
    let mixture_check = mixture_at_smallest_bandwidth(setup, &sz, &m);
    check_all(
        report,
        &g,
        &m,
        slope.check.clone(),
        mixture_check,
        exp_check,
    );
    files(setup, report, &sz, &rows, &g, &m, &conv)?;
    summary(report, &sz, mixture, g, m, slope, conv);
    Ok(())
}

/// The depth-noise relation: the best depths' fit in 1 / h^2 and its check.
struct DepthNoise {
    fit: Fit,
    mean_field_fit: Fit,
    check: Check,
}

/// The depth-noise relation: best depth against 1 / h^2, beside the same fit of the mean
/// field's own best depths (layers of step dt). The bandwidths' draws are independent, so
/// the slope's standard error is the jackknife errors of the best depths propagated
/// through the fit's weights (not the fit's residuals: three points leave one degree of
/// freedom at the quick size).
fn depth_noise(sz: &Sizes, g: &Outcome) -> DepthNoise {
    let inv_h2: Vec<f64> = sz.bandwidths.iter().map(|h| 1.0 / (h * h)).collect();
    let depth_fit = fit_line(&inv_h2, &g.best_depths);
    let mf_depth_fit = fit_line(&inv_h2, &g.mf_best_depths);
    let slope_se = propagated_slope_se(&inv_h2, &g.best_depth_ses);
    let check = Check::new(
        "slope of the best depth in 1 / h^2",
        depth_fit.slope,
        Test::Within,
        mf_depth_fit.slope,
        Band::stat(
            3.0,
            slope_se,
            format!(
                "jackknife over {} contexts per bandwidth, propagated through the fit",
                sz.draws
            ),
        ),
    )
    .rejects(
        &["wrong-bandwidth", "query-refined", "clean-context"],
        "a wrong stage-2 bandwidth; a refined query; an uncorrupted context (a 1.3x depth rate, \
         slope sigma^2 / 2.6, is 1.9 se off at the quick size: the best-depth check rejects it)",
    );
    DepthNoise {
        fit: depth_fit,
        mean_field_fit: mf_depth_fit,
        check,
    }
}

/// Convergence in n at the mean-field-optimal depth (Gaussian prior): the distance to Bayes
/// per n, its exponent and the exponent's check.
fn convergence(setup: &Setup, report: &mut Report, sz: &Sizes) -> Result<(Convergence, Check)> {
    let (tau2, sigma2) = (sz.tau * sz.tau, sz.sigma * sz.sigma);
    let h = sz.conv_bandwidth;
    let dt =
        analyse::step_reaching_prior(tau2, sigma2, h * h, sz.conv_layers).ok_or_else(|| {
            input(format!(
                "empirical-bayes: {} layers of step <= 1 at bandwidth {h} cannot remove the noise: \
             raise conv_layers",
                sz.conv_layers
            ))
        })?;
    let mut conv_points = Vec::new();
    for (i, &n) in sz.conv_ns.iter().enumerate() {
        setup.say(&format!("convergence: n = {n}, {} draws", sz.conv_draws));
        let hs = vec![h; sz.conv_draws];
        let ens = Ensemble {
            prior: Prior::gaussian(sz.tau),
            sigma: sz.sigma,
            d: sz.d,
            n,
            q: sz.queries,
            bandwidths: &hs,
            dt,
            layers: sz.conv_layers,
            every_layer: false,
            stream: 10 + i as u64,
        };
        let r = simulate::run(setup, report, &ens)?;
        let (dist, dist_se) = mean_se(&r.iter().map(|m| m[0].to_bayes).collect::<Vec<_>>());
        let (ex, ex_se) = mean_se(
            &r.iter()
                .map(|m| m[0].mse - m[0].bayes_mse)
                .collect::<Vec<_>>(),
        );
        conv_points.push(ConvPoint {
            n,
            distance_to_bayes: dist,
            distance_to_bayes_se: dist_se,
            excess: ex,
            excess_se: ex_se,
        });
    }
    let ns: Vec<f64> = sz.conv_ns.iter().map(|&n| n as f64).collect();
    let dists: Vec<f64> = conv_points.iter().map(|p| p.distance_to_bayes).collect();
    let exp_fit = fit_loglog(&ns, &dists);
    // The points' own errors (independent contexts per n) propagated to the exponent.
    let log_ses: Vec<f64> = conv_points
        .iter()
        .map(|p| p.distance_to_bayes_se / p.distance_to_bayes)
        .collect();
    let exp_se = propagated_slope_se(&ns.iter().map(|n| n.ln()).collect::<Vec<_>>(), &log_ses);
    let exp_check = Check::new(
        "exponent of the distance to Bayes in n",
        exp_fit.slope,
        Test::Within,
        -1.0,
        Band::stat(
            3.0,
            exp_se,
            format!(
                "{} independent contexts per n, propagated through the fit",
                sz.conv_draws
            ),
        ),
    )
    .rejects(
        &["wrong-bandwidth", "query-refined", "clean-context"],
        "an excess that does not vanish like 1/n (a wrong stage-2 bandwidth, a refined query, \
         an uncorrupted context)",
    );
    let conv = Convergence {
        bandwidth: h,
        layers: sz.conv_layers,
        dt,
        depth: dt * sz.conv_layers as f64,
        points: conv_points,
        exponent_fit: exp_fit,
    };
    Ok((conv, exp_check))
}

/// The mixture at the smallest bandwidth: its excess over Bayes at the best depth.
fn mixture_at_smallest_bandwidth(setup: &Setup, sz: &Sizes, m: &Outcome) -> Check {
    let smallest = m
        .summary
        .per_bandwidth
        .iter()
        .min_by(|a, b| a.h.total_cmp(&b.h))
        .expect("bandwidths");
    Check::new(
        "mixture: excess / Bayes risk at the best depth, smallest h",
        smallest.relative_excess_at_best,
        Test::AtMost,
        MIXTURE_TOL,
        Band::stat(
            3.0,
            smallest.excess_at_best_se / m.summary.bayes_risk,
            format!("{} independent contexts, paired", sz.draws),
        ),
    )
    .rejects(
        &[],
        "a denoiser that does not reach Bayes on a non-Gaussian prior",
    )
    .smoke_if(
        setup.quick,
        "no mutation of the study fails it at the quick size",
    )
}

fn check_all(
    report: &mut Report,
    g: &Outcome,
    m: &Outcome,
    slope_check: Check,
    mixture_check: Check,
    exp_check: Check,
) {
    let all = |a: &[Check], b: &[Check]| Check::all([a, b].concat()).expect("checks");
    report.band_check(
        "bayes_risk_monte_carlo_within_3se_of_closed_form",
        all(&g.mc, &m.mc),
    );
    report.band_check(
        "best_depth_not_below_bayes_and_excess_is_distance_to_bayes",
        all(&g.bayes, &m.bayes),
    );
    report.band_check(
        "gaussian_risk_follows_mean_field_curve",
        Check::all(g.mean_field.clone()).expect("mean-field points"),
    );
    report.band_check(
        "best_depth_follows_mean_field_best_depth",
        Check::all(g.depth.clone()).expect("bandwidths"),
    );
    report.band_check("best_depth_slope_follows_mean_field", slope_check);
    if let Some((_, c)) = &g.lag {
        report.band_check("finite_n_lag_of_the_collapse_shrinks_with_n", c.clone());
    }
    report.band_check(
        "depth_trade_off_best_depth_beats_shallow_and_deep",
        all(&g.trade_off, &m.trade_off),
    );
    report.band_check("mixture_best_depth_within_10pct_of_bayes", mixture_check);
    report.band_check("excess_risk_exponent_within_3se_of_minus_1", exp_check);
}

fn files(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    rows: &[Vec<f64>],
    g: &Outcome,
    m: &Outcome,
    conv: &Convergence,
) -> Result<()> {
    setup.csv(
        report,
        "depth_scan.csv",
        &[
            "prior_mixture",
            "h",
            "layer",
            "depth",
            "risk",
            "risk_se",
            "excess",
            "excess_se",
            "distance_to_bayes",
            "context_var",
            "mean_field_risk",
            "bayes_risk",
        ],
        rows,
    )?;
    setup.csv(
        report,
        "convergence.csv",
        &["n", "distance_to_bayes", "se", "excess", "excess_se"],
        &conv
            .points
            .iter()
            .map(|p| {
                vec![
                    p.n as f64,
                    p.distance_to_bayes,
                    p.distance_to_bayes_se,
                    p.excess,
                    p.excess_se,
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    for (o, file, title) in [
        (
            g,
            "risk_gaussian.png",
            "Gaussian prior: denoising risk over depth",
        ),
        (
            m,
            "risk_mixture.png",
            "Two-Gaussian mixture prior: denoising risk over depth",
        ),
    ] {
        risk_figure(setup, report, sz, o, file, title)?;
    }
    convergence_figure(setup, report, conv)
}

/// The risk over depth of one prior, per bandwidth, with the mean field and the Bayes risk.
fn risk_figure(
    setup: &Setup,
    report: &mut Report,
    sz: &Sizes,
    o: &Outcome,
    file: &str,
    title: &str,
) -> Result<()> {
    let mut series = Vec::new();
    for pb in &o.summary.per_bandwidth {
        series.push(Series::markers(
            format!("h = {}", pb.h),
            pb.points.iter().map(|p| (p.depth, p.risk)).collect(),
        ));
        if pb.points[0].mean_field_risk.is_some() {
            series.push(Series::theory(
                format!("mean field, h = {}", pb.h),
                pb.points
                    .iter()
                    .map(|p| (p.depth, p.mean_field_risk.unwrap_or(f64::NAN)))
                    .collect(),
            ));
        }
    }
    let last = sz.layers as f64 * sz.dt;
    series.push(Series::theory(
        "Bayes risk",
        vec![(0.0, o.summary.bayes_risk), (last, o.summary.bayes_risk)],
    ));
    setup.lines(
        report,
        file,
        &Axes {
            title,
            x_label: "depth t (layers x dt)",
            y_label: "risk per coordinate",
            log_x: false,
            log_y: true,
        },
        &series,
    )
}

fn convergence_figure(setup: &Setup, report: &mut Report, conv: &Convergence) -> Result<()> {
    let ns: Vec<f64> = conv.points.iter().map(|p| p.n as f64).collect();
    let dists: Vec<f64> = conv.points.iter().map(|p| p.distance_to_bayes).collect();
    let exp_fit = &conv.exponent_fit;
    setup.lines(
        report,
        "convergence.png",
        &Axes {
            title: "Excess risk over Bayes at the mean-field-optimal depth (Gaussian prior)",
            x_label: "context length n",
            y_label: "E|x_hat - x_hat_Bayes|^2 / d",
            log_x: true,
            log_y: true,
        },
        &[
            Series::markers(
                format!(
                    "measured: exponent {:.3} +- {:.3}",
                    exp_fit.slope, exp_fit.slope_se
                ),
                ns.iter().copied().zip(dists.iter().copied()).collect(),
            ),
            Series::theory(
                "fit",
                ns.iter()
                    .map(|&n| (n, (exp_fit.intercept + exp_fit.slope * n.ln()).exp()))
                    .collect(),
            ),
        ],
    )
}

fn summary(
    report: &mut Report,
    sz: &Sizes,
    mixture: Prior,
    g: Outcome,
    m: Outcome,
    slope: DepthNoise,
    conv: Convergence,
) {
    let (tau2, sigma2) = (sz.tau * sz.tau, sz.sigma * sz.sigma);
    report.add_measured(&Measured {
        gaussian: g.summary,
        mixture: m.summary,
        depth_noise_fit: slope.fit,
        mean_field_depth_noise_fit: slope.mean_field_fit,
        collapse_lag: g.lag.map(|(l, _)| l),
        convergence: conv,
    });
    report.add_prediction(&Prediction {
        gaussian_bayes_risk: bayes_risk(Prior::gaussian(sz.tau), sz.sigma, sz.d),
        mixture_bayes_risk: bayes_risk(mixture, sz.sigma, sz.d),
        depth_noise_relation: "t* = sigma^2 / (2 h^2) + ln(1 + sigma^2 / tau^2) / 2 \
                               (continuous depth; the layers' own optimum is in \
                               mean_field_best_depth)",
        depth_noise_slope: sigma2 / 2.0,
        depth_noise_intercept: (1.0 + sigma2 / tau2).ln() / 2.0,
        excess_risk_exponent: -1.0,
        note: "derived here: the seed gives only the abstract of arXiv:2605.29351 (no rate is \
               quoted); the mean field is exact for the Gaussian prior",
    });
}

/// The standard error of a least-squares slope through points with independent errors
/// `ses`: sqrt(sum w_i^2 se_i^2) with w_i = (x_i - mean x) / S_xx.
fn propagated_slope_se(x: &[f64], ses: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    let sxx: f64 = x.iter().map(|v| (v - m).powi(2)).sum();
    x.iter()
        .zip(ses)
        .map(|(v, s)| ((v - m) / sxx * s).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    #[test]
    fn quick_empirical_bayes_denoises_like_bayes() {
        let (_dir, out, _) = super::super::quick_run_checked("empirical-bayes");
        assert!(out.join("risk_gaussian.png").exists());
    }
}
