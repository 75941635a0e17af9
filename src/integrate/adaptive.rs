//! The embedded-pair engine with error control: Dormand-Prince 8(5,3) (DOP853) on the host
//! in f64, for fields of small dimension on the unit sphere (the infinite-context twins of
//! `meanfield`, the truth of integrator-order). Its coefficients are data in `tableau::dop853`.
//! Steps are clipped to land on each output time and the state is put back on the field's
//! manifold after every accepted step ([`OdeField::renormalise`]).

use crate::model::linalg::norm;

/// A vector field on a manifold the state is put back on after every accepted step (by
/// default the unit sphere of R^dim), evaluated on the host.
pub trait OdeField {
    fn dim(&self) -> usize;
    /// out <- f(z).
    fn velocity(&mut self, z: &[f64], out: &mut [f64]);
    /// Puts the state back on the field's manifold: the start, and the state after every
    /// accepted step. Default: z / |z| (the unit sphere of R^dim).
    fn renormalise(&self, z: &mut [f64]) {
        let n = norm(z);
        assert!(
            n > 0.0 && n.is_finite(),
            "the state must be a nonzero finite vector (|z| = {n})"
        );
        z.iter_mut().for_each(|v| *v /= n);
    }
}

/// Tolerances of the adaptive integrator: a step is accepted when its error estimate is
/// below atol + rtol * |z_i| per component (RMS over components). The default
/// rtol = atol = 1e-13 gives about 1e-10 absolute global accuracy (typically ~1e-12) on
/// t in [0, 10] for O(1) beta, kappa and weights. rtol below 1e-15 is raised to 1e-15.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive {
    pub rtol: f64,
    pub atol: f64,
}

impl Adaptive {
    /// rtol = atol = `tol`.
    pub fn uniform(tol: f64) -> Self {
        Adaptive {
            rtol: tol,
            atol: tol,
        }
    }
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive::uniform(1e-13)
    }
}

/// DOP853 stepper state: stage derivatives and work vectors for dimension d.
pub struct Dop853 {
    rtol: f64,
    atol: f64,
    k: Vec<Vec<f64>>,
    stage: Vec<f64>,
    y_new: Vec<f64>,
}

impl Dop853 {
    const SAFETY: f64 = 0.9;
    const MIN_FACTOR: f64 = 0.2;
    const MAX_FACTOR: f64 = 10.0;

    pub fn new(d: usize, tol: &Adaptive) -> Self {
        assert!(
            tol.rtol > 0.0 && tol.atol > 0.0 && tol.rtol.is_finite() && tol.atol.is_finite(),
            "tolerances must be positive and finite, got rtol = {}, atol = {}",
            tol.rtol,
            tol.atol
        );
        Dop853 {
            rtol: tol.rtol.max(1e-15),
            atol: tol.atol,
            k: vec![vec![0.0; d]; super::tableau::dop853::STAGES],
            stage: vec![0.0; d],
            y_new: vec![0.0; d],
        }
    }

    pub fn run(&mut self, field: &mut dyn OdeField, z0: &[f64], times: &[f64]) -> Vec<Vec<f64>> {
        let d = field.dim();
        assert_eq!(
            z0.len(),
            d,
            "z0 has dimension {} but the law has {d}",
            z0.len()
        );
        let mut z = z0.to_vec();
        field.renormalise(&mut z);
        let mut prev = 0.0;
        for &t in times {
            assert!(
                t.is_finite() && t >= prev,
                "output times must be finite, >= 0 and non-decreasing (got {t} after {prev})"
            );
            prev = t;
        }

        let mut out = Vec::with_capacity(times.len());
        let mut t = 0.0_f64;
        let mut h: Option<f64> = None;
        for &t_out in times {
            while t < t_out {
                // k[0] = f(z) (recomputed each step: the state is renormalised after a step).
                let (k0, _) = self.k.split_first_mut().expect("12 stages");
                field.velocity(&z, k0);
                let mut h_try = match h {
                    Some(h) => h,
                    None => self.initial_step(field, &z),
                };
                loop {
                    let remaining = t_out - t;
                    let clipped = h_try >= remaining;
                    let step = if clipped { remaining } else { h_try };
                    assert!(
                        step > 1e-14 * t.abs().max(1.0) || clipped,
                        "integrate_infinite_cfm: step size underflow at t = {t} (h = {step})"
                    );
                    let err = self.attempt(field, &z, step);
                    assert!(
                        err.is_finite(),
                        "integrate_infinite_cfm: non-finite state or error at t = {t}"
                    );
                    if err <= 1.0 {
                        let factor = if err == 0.0 {
                            Self::MAX_FACTOR
                        } else {
                            (Self::SAFETY * err.powf(-1.0 / 8.0))
                                .clamp(Self::MIN_FACTOR, Self::MAX_FACTOR)
                        };
                        // A step shortened only to land on t_out says little about the
                        // step size the solution allows: keep at least the unclipped one.
                        h = Some(if clipped {
                            (step * factor).max(h_try)
                        } else {
                            step * factor
                        });
                        t = if clipped { t_out } else { t + step };
                        z.copy_from_slice(&self.y_new);
                        field.renormalise(&mut z);
                        break;
                    }
                    let factor = (Self::SAFETY * err.powf(-1.0 / 8.0)).max(Self::MIN_FACTOR);
                    h_try = step * factor;
                }
            }
            out.push(z.clone());
        }
        out
    }

    /// Hairer's starting step: h ~ (0.01 / max(|f|, |f'|))^(1/8) in the scaled norm, with
    /// k[0] = f(z) already computed.
    fn initial_step(&mut self, field: &mut dyn OdeField, z: &[f64]) -> f64 {
        let d = z.len();
        let scale = |i: usize| self.atol + self.rtol * z[i].abs();
        let rms = |v: &dyn Fn(usize) -> f64| {
            ((0..d).map(|i| (v(i) / scale(i)).powi(2)).sum::<f64>() / d as f64).sqrt()
        };
        let f0 = &self.k[0];
        let d0 = rms(&|i| z[i]);
        let d1 = rms(&|i| f0[i]);
        let h0 = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        for i in 0..d {
            self.stage[i] = z[i] + h0 * f0[i];
        }
        field.velocity(&self.stage, &mut self.y_new);
        let f1 = &self.y_new;
        let d2 = rms(&|i| f1[i] - f0[i]) / h0;
        let h1 = if d1.max(d2) <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / d1.max(d2)).powf(1.0 / 8.0)
        };
        (100.0 * h0).min(h1)
    }

    /// One DOP853 step of size h from z (k[0] = f(z) given); leaves the 8th-order result in
    /// y_new and returns the scaled error norm (accept when <= 1).
    fn attempt(&mut self, field: &mut dyn OdeField, z: &[f64], h: f64) -> f64 {
        use super::tableau::dop853::{A, B, C, E3, E5, STAGES};
        let d = z.len();
        for s in 1..STAGES {
            debug_assert!(C[s] > 0.0);
            for (i, (st, &zi)) in self.stage.iter_mut().zip(z).enumerate() {
                let mut acc = 0.0;
                for (j, a) in A[s][..s].iter().enumerate() {
                    acc += a * self.k[j][i];
                }
                *st = zi + h * acc;
            }
            field.velocity(&self.stage, &mut self.k[s]);
        }
        let mut err5 = 0.0;
        let mut err3 = 0.0;
        for (i, (yn, &zi)) in self.y_new.iter_mut().zip(z).enumerate() {
            let (mut incr, mut e5, mut e3) = (0.0, 0.0, 0.0);
            for s in 0..STAGES {
                let ks = self.k[s][i];
                incr += B[s] * ks;
                e5 += E5[s] * ks;
                e3 += E3[s] * ks;
            }
            let y = zi + h * incr;
            *yn = y;
            let sk = self.atol + self.rtol * zi.abs().max(y.abs());
            err5 += (e5 / sk).powi(2);
            err3 += (e3 / sk).powi(2);
        }
        let mut denom = err5 + 0.01 * err3;
        if denom <= 0.0 {
            denom = 1.0;
        }
        h.abs() * err5 / (denom * d as f64).sqrt()
    }
}
