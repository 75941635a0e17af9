//! The attention weights Q, K, V (MODELS.md §1): d x d, row-major, (Q x)_r = sum_c Q[r][c] x_c.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Result, file_error, input};
use crate::npy;

/// Q, K and V of one attention head.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub d: usize,
    pub q: Vec<f64>,
    pub k: Vec<f64>,
    pub v: Vec<f64>,
}

/// Which (Q, K, V) to use, as written on the command line or in a config.
#[derive(Clone, Debug, PartialEq)]
pub enum QkvSpec {
    Identity,
    /// iid N(0, 1/d) entries from a seed.
    Random(u64),
    /// A folder holding Q.npy, K.npy, V.npy.
    Dir(std::path::PathBuf),
}

impl QkvSpec {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "identity" {
            return Ok(QkvSpec::Identity);
        }
        if let Some(seed) = s.strip_prefix("random:") {
            let seed = seed.parse::<u64>().map_err(|_| {
                input(format!(
                    "--qkv random:SEED needs a whole number >= 0 as SEED, got '{seed}'"
                ))
            })?;
            return Ok(QkvSpec::Random(seed));
        }
        if s == "random" {
            return Err(input("--qkv random needs a seed: random:SEED"));
        }
        if s.is_empty() {
            return Err(input(
                "--qkv is empty: use identity, random:SEED or a folder with Q.npy, K.npy, V.npy",
            ));
        }
        Ok(QkvSpec::Dir(s.into()))
    }

    pub fn to_config_string(&self) -> String {
        match self {
            QkvSpec::Identity => "identity".into(),
            QkvSpec::Random(seed) => format!("random:{seed}"),
            QkvSpec::Dir(p) => p.display().to_string(),
        }
    }

    /// The weights in dimension d.
    pub fn resolve(&self, d: usize) -> Result<Weights> {
        match self {
            QkvSpec::Identity => Ok(Weights::identity(d)),
            QkvSpec::Random(seed) => Ok(Weights::random(d, *seed)),
            QkvSpec::Dir(dir) => Weights::from_dir(dir, d),
        }
    }
}

impl Weights {
    pub fn identity(d: usize) -> Self {
        let eye = identity_matrix(d);
        Weights {
            d,
            q: eye.clone(),
            k: eye.clone(),
            v: eye,
        }
    }

    /// Q, K, V with iid N(0, 1/d) entries, as at initialisation of training. Q, K and V use
    /// streams 0, 1 and 2 of ChaCha8 seeded with `seed`, so each is reproducible on its own.
    pub fn random(d: usize, seed: u64) -> Self {
        let draw = |stream: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(stream);
            let sd = 1.0 / (d as f64).sqrt();
            (0..d * d)
                .map(|_| {
                    sd * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
                })
                .collect::<Vec<f64>>()
        };
        Weights {
            d,
            q: draw(0),
            k: draw(1),
            v: draw(2),
        }
    }

    pub fn from_dir(dir: &Path, d: usize) -> Result<Self> {
        if !dir.is_dir() {
            return Err(input(format!(
                "--qkv '{}' is neither identity, random:SEED, nor a folder holding Q.npy, K.npy and V.npy",
                dir.display()
            )));
        }
        let load = |name: &str| -> Result<Vec<f64>> {
            let path = dir.join(name);
            if !path.exists() {
                return Err(file_error(
                    &path,
                    "missing: a --qkv folder must hold Q.npy, K.npy and V.npy",
                ));
            }
            let arr = npy::read_f64(&path)?;
            if arr.shape != [d as u64, d as u64] {
                return Err(file_error(
                    &path,
                    format!("has shape {:?}, expected [{d}, {d}] for d = {d}", arr.shape),
                ));
            }
            Ok(arr.data)
        };
        Ok(Weights {
            d,
            q: load("Q.npy")?,
            k: load("K.npy")?,
            v: load("V.npy")?,
        })
    }

    pub fn is_identity(&self) -> bool {
        let eye = identity_matrix(self.d);
        self.q == eye && self.k == eye && self.v == eye
    }

    pub fn v_is_identity(&self) -> bool {
        self.v == identity_matrix(self.d)
    }

    /// M = K^T Q, so that <Q x, K y> = <M x, y>.
    pub fn score_matrix(&self) -> Vec<f64> {
        let d = self.d;
        let mut m = vec![0.0; d * d];
        for r in 0..d {
            for c in 0..d {
                m[r * d + c] = (0..d).map(|t| self.k[t * d + r] * self.q[t * d + c]).sum();
            }
        }
        m
    }
}

pub fn identity_matrix(d: usize) -> Vec<f64> {
    let mut m = vec![0.0; d * d];
    for i in 0..d {
        m[i * d + i] = 1.0;
    }
    m
}

/// y = A x for a row-major d x d matrix.
pub fn matvec(a: &[f64], x: &[f64], y: &mut [f64]) {
    let d = x.len();
    for r in 0..d {
        y[r] = a[r * d..(r + 1) * d]
            .iter()
            .zip(x)
            .map(|(a, x)| a * x)
            .sum();
    }
}
