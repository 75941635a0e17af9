//! Sizes and physical parameters of `selectivity` (each can be set with `--set KEY=VALUE`).

use crate::params::*;
use serde::{Deserialize, Serialize};

/// The quick and default sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Dimensions d (keys on S^{d-1}).
    pub dims: Vec<usize>,
    /// Key counts per d.
    pub ns: Vec<Vec<usize>>,
    /// Independent key sets per d and n.
    pub seeds: Vec<Vec<usize>>,
    /// Monte Carlo samples of the limit process.
    pub limit_samples: usize,
    /// lambda runs over 10^log10_lambda_min (d = 3 and above) or 10^log10_lambda_min_d2
    /// (d = 2: the effective number of keys grows like lambda^{-(d-1)/2}, more slowly) to
    /// 10^log10_lambda_max, lambdas_per_decade per decade.
    pub log10_lambda_min: f64,
    pub log10_lambda_min_d2: f64,
    pub log10_lambda_max: f64,
    pub lambdas_per_decade: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        let (dims, ns, seeds, limit_samples) = if quick {
            (
                vec![3],
                vec![vec![1000, 10_000, 100_000]],
                vec![vec![200, 200, 200]],
                2000,
            )
        } else {
            (
                vec![3, 2],
                vec![
                    vec![1000, 10_000, 100_000, 1_000_000],
                    vec![1000, 10_000, 100_000],
                ],
                vec![vec![1000, 1000, 1000, 1000], vec![1000, 1000, 1000]],
                20_000,
            )
        };
        Sizes {
            dims,
            ns,
            seeds,
            limit_samples,
            log10_lambda_min: -2.0,
            log10_lambda_min_d2: -4.0,
            log10_lambda_max: 2.0,
            lambdas_per_decade: 4,
        }
    }

    /// The lambdas of dimension d, evenly spaced in log10.
    pub fn lambdas(&self, d: usize) -> Vec<f64> {
        let low = if d == 2 {
            self.log10_lambda_min_d2
        } else {
            self.log10_lambda_min
        };
        let per = self.lambdas_per_decade as f64;
        (0..=((self.log10_lambda_max - low) * per).round() as usize)
            .map(|k| 10f64.powf(low + k as f64 / per))
            .collect()
    }
}

/// The temperature rule beta = lambda scale(n, d): the selectivity scale n^{2/(d-1)}, or a
/// deliberately wrong rule (`--mutate`): `beta-log-n` (ln n, the critical scaling of long
/// contexts, which is the wrong one for n uniform keys) or `beta-angle-scale` (n^{1/(d-1)}, the
/// inverse nearest-key angle instead of the inverse nearest-key gap 1 - cos).
pub fn scale(n: usize, d: usize, mutation: Option<&str>) -> f64 {
    let n = n as f64;
    match mutation {
        Some("beta-log-n") => n.ln(),
        Some("beta-angle-scale") => n.powf(1.0 / (d as f64 - 1.0)),
        _ => n.powf(2.0 / (d as f64 - 1.0)),
    }
}

/// The declared type and range of each parameter (see [`crate::params`]).
pub const PARAMS: &[Param] = &[
    counts("dims", 2, 64, "the dimensions: keys on S^{d-1}"),
    Param {
        name: "ns",
        ty: Ty::CountLists {
            min: 2,
            max: 16_777_216,
            len: LIST,
        },
        why: "key counts, one list per dimension",
    },
    Param {
        name: "seeds",
        ty: Ty::CountLists {
            min: 1,
            max: 1_000_000,
            len: LIST,
        },
        why: "key sets per (d, n), one list per dimension",
    },
    count(
        "limit_samples",
        1,
        100_000_000,
        "Monte Carlo samples of the limit process",
    ),
    real(
        "log10_lambda_min",
        -10.0,
        10.0,
        false,
        "the smallest lambda, as a power of ten (d >= 3)",
    ),
    real(
        "log10_lambda_min_d2",
        -10.0,
        10.0,
        false,
        "the smallest lambda, as a power of ten (d = 2)",
    ),
    real(
        "log10_lambda_max",
        -10.0,
        10.0,
        false,
        "the largest lambda, as a power of ten",
    ),
    count("lambdas_per_decade", 1, 1000, "lambdas per decade"),
];

impl Sizes {
    /// The checks of a combination of parameters, before any work: the memory estimate, the
    /// step counts and the constraints between parameters.
    pub fn check(&self) -> attnflow::error::Result<()> {
        if self.ns.len() != self.dims.len() || self.seeds.len() != self.dims.len() {
            return Err(refuse(format!(
                "selectivity: ns has {} lists and seeds {} but dims has {} dimensions: give one \
                 list of each per dimension",
                self.ns.len(),
                self.seeds.len(),
                self.dims.len()
            )));
        }
        for (i, (ns, seeds)) in self.ns.iter().zip(&self.seeds).enumerate() {
            if ns.len() != seeds.len() {
                return Err(refuse(format!(
                    "selectivity: ns[{i}] has {} counts but seeds[{i}] has {}: one seed count per n",
                    ns.len(),
                    seeds.len()
                )));
            }
        }
        for (name, low) in [
            ("log10_lambda_min", self.log10_lambda_min),
            ("log10_lambda_min_d2", self.log10_lambda_min_d2),
        ] {
            if low >= self.log10_lambda_max {
                return Err(refuse(format!(
                    "selectivity: {name} = {low} must be below log10_lambda_max = {}",
                    self.log10_lambda_max
                )));
            }
        }
        for (&d, ns) in self.dims.iter().zip(&self.ns) {
            for &n in ns {
                array("selectivity: the keys", &[("n", n), ("d", d)], 32)?;
            }
        }
        array(
            "selectivity: the limit process",
            &[("limit_samples", self.limit_samples)],
            64,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_and_the_temperature_rules() {
        let s = Sizes::new(true);
        let l = s.lambdas(3);
        assert_eq!(l.len(), 17);
        assert!((l[0] - 0.01).abs() < 1e-15 && (l[16] - 100.0).abs() < 1e-12);
        assert_eq!(s.lambdas(2).len(), 25);
        assert!((scale(1000, 3, None) - 1000.0).abs() < 1e-9);
        assert!((scale(1000, 2, None) - 1e6).abs() < 1e-6);
        assert!((scale(1000, 3, Some("beta-log-n")) - 1000f64.ln()).abs() < 1e-12);
        assert!((scale(10_000, 3, Some("beta-angle-scale")) - 100.0).abs() < 1e-9);
    }
}
