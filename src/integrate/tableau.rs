//! Butcher tableaux of the explicit methods attnflow offers (docs/model.md §2).

use serde::{Deserialize, Serialize};

/// The integrators a user can choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Integrator {
    /// x <- x + h f(x): exactly one residual transformer layer. Order 1.
    Euler,
    /// Heun's method (explicit trapezoid), order 2.
    Heun,
    /// The classical fourth-order Runge-Kutta method.
    Rk4,
}

impl Integrator {
    pub fn tableau(self) -> Tableau {
        match self {
            Integrator::Euler => Tableau {
                a: vec![vec![]],
                b: vec![1.0],
                c: vec![0.0],
                order: 1,
            },
            Integrator::Heun => Tableau {
                a: vec![vec![], vec![1.0]],
                b: vec![0.5, 0.5],
                c: vec![0.0, 1.0],
                order: 2,
            },
            Integrator::Rk4 => Tableau {
                a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
                b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
                c: vec![0.0, 0.5, 0.5, 1.0],
                order: 4,
            },
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Integrator::Euler => "euler",
            Integrator::Heun => "heun",
            Integrator::Rk4 => "rk4",
        }
    }
}

/// An explicit Runge-Kutta method: stage s evaluates f at x + h sum_{j<s} a[s][j] k_j, and
/// the step is x + h sum_s b[s] k_s.
#[derive(Clone, Debug, PartialEq)]
pub struct Tableau {
    pub a: Vec<Vec<f64>>,
    pub b: Vec<f64>,
    pub c: Vec<f64>,
    pub order: u32,
}

impl Tableau {
    pub fn stages(&self) -> usize {
        self.b.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consistency (sum b = 1) and the row-sum condition c_s = sum_j a_sj.
    #[test]
    fn tableaux_are_consistent() {
        for m in [Integrator::Euler, Integrator::Heun, Integrator::Rk4] {
            let t = m.tableau();
            assert!((t.b.iter().sum::<f64>() - 1.0).abs() < 1e-15, "{m:?}");
            for s in 0..t.stages() {
                let row: f64 = t.a[s].iter().sum();
                assert!((row - t.c[s]).abs() < 1e-15, "{m:?} stage {s}");
                assert!(t.a[s].len() == s, "{m:?} is not explicit at stage {s}");
            }
        }
    }
}
