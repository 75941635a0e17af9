//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use attnflow::gpu::GpuContext;
use attnflow::integrate::Backend;
use attnflow::model::weights::QkvSpec;
use attnflow::model::{Attention, Geometry, Mask, Model, Shape, init::InitSpec};
use attnflow::reference;

/// One GPU device shared by all tests of a test binary. Returns None when there is no
/// adapter, unless ATTNFLOW_REQUIRE_GPU=1 (set by the project's test command), in which case a
/// missing adapter fails the test instead of skipping it.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU tests run on {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e) => {
            eprintln!("no GPU: {e}");
            None
        }
    });
    if ctx.is_none() && std::env::var("ATTNFLOW_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("ATTNFLOW_REQUIRE_GPU=1 but no GPU adapter is available");
    }
    if ctx.is_none() {
        eprintln!("SKIPPED: no GPU adapter (set ATTNFLOW_REQUIRE_GPU=1 to make this a failure)");
    }
    ctx.clone()
}

/// Checks |got - want| <= atol + rtol |want| elementwise. On failure names the worst element
/// (system, token, coordinate), got, want and the tolerance. Returns the largest error.
pub fn assert_close(
    got: &[f64],
    want: &[f64],
    shape: Shape,
    atol: f64,
    rtol: f64,
    what: &str,
) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0.0f64, f64::NEG_INFINITY);
    let mut max_err = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let excess = err - (atol + rtol * w.abs());
        if !g.is_finite() || excess > worst.2 {
            worst = (i, err, if g.is_finite() { excess } else { f64::INFINITY });
        }
        max_err = max_err.max(if g.is_finite() { err } else { f64::INFINITY });
    }
    let (i, err, excess) = worst;
    let (b, rest) = (i / (shape.n * shape.d), i % (shape.n * shape.d));
    assert!(
        excess <= 0.0,
        "{what}: system {b}, token {}, coordinate {}: got {:.9e}, want {:.9e}, |error| {err:.3e} > \
         tolerance {atol:.1e} + {rtol:.1e} |want|",
        rest / shape.d,
        rest % shape.d,
        got[i],
        want[i]
    );
    max_err
}

/// A grid case: everything a run needs.
#[derive(Clone, Debug)]
pub struct Case {
    pub shape: Shape,
    pub attention: Attention,
    pub geometry: Geometry,
    pub mask: Mask,
    pub qkv: QkvSpec,
    pub betas: Vec<f64>,
    pub seed: u64,
}

impl Case {
    pub fn model(&self) -> Model {
        Model::new(
            self.attention,
            self.geometry,
            self.mask,
            self.qkv.resolve(self.shape.d).unwrap(),
            self.betas.clone(),
        )
    }
    pub fn initial(&self) -> Vec<f64> {
        InitSpec::Uniform
            .generate(self.shape, self.geometry, self.seed)
            .unwrap()
    }
    /// A step size that moves no token by more than 0.01 per step and keeps h beta <= 0.5,
    /// measured from the f64 field at the initial state.
    pub fn step_size(&self) -> f64 {
        let model = self.model();
        let x0 = self.initial();
        let mut f = vec![0.0; x0.len()];
        reference::field(&model, self.shape, &x0, &mut f);
        let speed = f
            .chunks(self.shape.d)
            .map(|v| v.iter().map(|c| c * c).sum::<f64>().sqrt())
            .fold(1e-12, f64::max);
        let beta = self.betas.iter().copied().fold(0.0, f64::max);
        (0.01 / speed).min(0.5 / beta.max(1e-12)).min(0.1)
    }
    pub fn label(&self) -> String {
        format!(
            "n={} d={} B={} {:?} {:?} {:?} {} beta={:?}",
            self.shape.n,
            self.shape.d,
            self.shape.batch,
            self.attention,
            self.mask,
            self.geometry,
            self.qkv.to_config_string(),
            self.betas
        )
    }
}

pub const NS: [usize; 7] = [1, 2, 7, 63, 65, 257, 1000];
pub const DS: [usize; 5] = [2, 3, 16, 64, 128];
pub const BETAS: [f64; 4] = [0.1, 1.0, 10.0, 100.0];

/// The comparison grid of the core issue, as a covering design: every (n, d) pair once; the
/// four binary factors (SA/USA, full/causal, sphere/euclidean, identity/random QKV) follow the
/// bits of the case number, so each of their 16 combinations occurs at least twice; beta
/// cycles through {0.1, 1, 10, 100} (USA takes 10 where the cycle says 100: e^100 is beyond
/// f32, see `usa_beyond_f32_range_is_reported`); every third case is an ensemble of 3
/// systems with different betas.
pub fn grid() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut k = 0usize;
    for &n in &NS {
        for &d in &DS {
            let bits = k % 16;
            let attention = if bits & 1 == 0 {
                Attention::Sa
            } else {
                Attention::Usa
            };
            let mask = if bits & 2 == 0 {
                Mask::Full
            } else {
                Mask::Causal
            };
            let geometry = if bits & 4 == 0 {
                Geometry::Sphere
            } else {
                Geometry::Euclidean
            };
            let qkv = if bits & 8 == 0 {
                QkvSpec::Identity
            } else {
                QkvSpec::Random(100 + k as u64)
            };
            let mut beta = BETAS[(k / 2 + k / 7) % 4];
            if attention == Attention::Usa && beta > 10.0 {
                beta = 10.0;
            }
            let (batch, betas) = if k % 3 == 2 {
                (3, vec![beta, beta / 10.0, beta / 3.0])
            } else {
                (1, vec![beta])
            };
            cases.push(Case {
                shape: Shape::new(batch, n, d).unwrap(),
                attention,
                geometry,
                mask,
                qkv,
                betas,
                seed: k as u64,
            });
            k += 1;
        }
    }
    cases
}

/// Runs `steps` RK4 steps of size h and returns the state in f64.
pub fn evolve(backend: &mut dyn Backend, case: &Case, h: f64, steps: usize) -> Vec<f64> {
    attnflow::run::integrate_steps(
        backend,
        &case.model(),
        attnflow::integrate::Integrator::Rk4,
        h,
        steps,
    )
    .unwrap();
    backend.read_state().unwrap().to_f64()
}

/// Deterministic entries in [-scale, scale) from a small LCG: weights for tests that write
/// their own files (the same values on every machine, no rng crate state involved).
pub fn lcg_entries(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            scale * (((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
        })
        .collect()
}
