//! Initial conditions (issue: uniform on the sphere, von Mises-Fisher, Gaussian, from a file).
//!
//! Every system b of an ensemble draws from its own ChaCha8 stream (stream b of the seed), so
//! system b is the same whatever the batch size.

use std::path::PathBuf;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, StandardNormal};

use super::{Geometry, Shape};
use crate::error::{Result, file_error, input};
use crate::npy;

/// How to draw the initial tokens.
#[derive(Clone, Debug, PartialEq)]
pub enum InitSpec {
    /// Uniform on the unit sphere S^{d-1}.
    Uniform,
    /// iid standard normal coordinates (normalised on the sphere, which makes it uniform there).
    Gaussian,
    /// von Mises-Fisher with mean direction `mu` (default e_1) and concentration `kappa`.
    Vmf { kappa: f64, mu: Option<Vec<f64>> },
    /// Read from a .npy file of shape [n, d] (shared by all systems) or [B, n, d].
    File(PathBuf),
    /// Rows of an embedding tensor of a safetensors checkpoint, `safetensors:FILE:TENSOR`
    /// (`wte`: GPT-2's token embeddings `wte.weight` [vocab, d]), one per token id of
    /// `--tokens` (docs/model.md §6), shared by all systems.
    Embedding {
        file: PathBuf,
        tensor: String,
        /// The prompt's token ids (from --tokens; empty until resolved).
        tokens: Vec<u64>,
    },
}

/// Parses `--tokens 15496,995,...`.
pub fn parse_tokens(s: &str) -> Result<Vec<u64>> {
    s.split(',')
        .map(|t| {
            t.trim().parse::<u64>().map_err(|_| {
                input(format!(
                    "--tokens takes token ids (whole numbers >= 0) separated by commas, got '{s}'"
                ))
            })
        })
        .collect()
}

impl InitSpec {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "uniform" => return Ok(InitSpec::Uniform),
            "gaussian" => return Ok(InitSpec::Gaussian),
            _ => {}
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(input("--init file: needs a path, as file:PATH.npy"));
            }
            return Ok(InitSpec::File(path.into()));
        }
        if let Some(rest) = s.strip_prefix(super::weights::SAFETENSORS) {
            let (file, tensor) = rest.rsplit_once(':').unwrap_or(("", rest));
            if file.is_empty() || tensor.is_empty() {
                return Err(input(format!(
                    "--init safetensors:FILE:TENSOR needs a file and a tensor name, as \
                     safetensors:gpt2.safetensors:wte, got '{s}'"
                )));
            }
            return Ok(InitSpec::Embedding {
                file: file.into(),
                tensor: tensor.into(),
                tokens: Vec::new(),
            });
        }
        if let Some(rest) = s.strip_prefix("vmf:") {
            let (kappa, mu) = match rest.split_once(':') {
                Some((k, mu)) => (k, Some(mu)),
                None => (rest, None),
            };
            let kappa: f64 = kappa.parse().map_err(|_| {
                input(format!(
                    "--init vmf:KAPPA needs a number as KAPPA, got '{kappa}'"
                ))
            })?;
            if !kappa.is_finite() || kappa < 0.0 {
                return Err(input(format!(
                    "--init vmf: kappa must be finite and >= 0, got {kappa}"
                )));
            }
            let mu = mu
                .map(|m| {
                    m.split(',')
                        .map(|v| {
                            v.trim().parse::<f64>().map_err(|_| {
                                input(format!(
                                    "--init vmf:KAPPA:MU needs MU as comma-separated numbers, got '{m}'"
                                ))
                            })
                        })
                        .collect::<Result<Vec<f64>>>()
                })
                .transpose()?;
            return Ok(InitSpec::Vmf { kappa, mu });
        }
        Err(input(format!(
            "unknown --init '{s}': use uniform, gaussian, vmf:KAPPA[:MU1,MU2,...], file:PATH.npy \
             or safetensors:FILE:TENSOR (with --tokens)"
        )))
    }

    pub fn to_config_string(&self) -> String {
        match self {
            InitSpec::Uniform => "uniform".into(),
            InitSpec::Gaussian => "gaussian".into(),
            InitSpec::Vmf { kappa, mu: None } => format!("vmf:{kappa}"),
            InitSpec::Vmf {
                kappa,
                mu: Some(mu),
            } => format!(
                "vmf:{kappa}:{}",
                mu.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            InitSpec::File(p) => format!("file:{}", p.display()),
            InitSpec::Embedding { file, tensor, .. } => {
                format!("{}{}:{tensor}", super::weights::SAFETENSORS, file.display())
            }
        }
    }

    /// The file the tokens are read from, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            InitSpec::File(p) | InitSpec::Embedding { file: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The embedding rows of the prompt, (d, [n, d]).
    fn embedding(&self) -> Result<Option<(usize, Vec<f64>)>> {
        match self {
            InitSpec::Embedding {
                file,
                tensor,
                tokens,
            } => Ok(Some(
                super::checkpoint::SafetensorsFile::open(file)?.embedding(tensor, tokens)?,
            )),
            _ => Ok(None),
        }
    }

    /// The (batch?, n, d) a file holds, without the data (used to infer n and d).
    pub fn file_shape(&self) -> Result<Option<Vec<u64>>> {
        match self {
            InitSpec::File(path) => Ok(Some(npy::read_f64(path)?.shape)),
            InitSpec::Embedding { tokens, .. } => {
                let (d, _) = self.embedding()?.expect("an embedding");
                Ok(Some(vec![tokens.len() as u64, d as u64]))
            }
            _ => Ok(None),
        }
    }

    /// The initial state, `[batch, n, d]` row-major, normalised on the sphere.
    pub fn generate(&self, shape: Shape, geometry: Geometry, seed: u64) -> Result<Vec<f64>> {
        let Shape { batch, n, d } = shape;
        let mut x = match self {
            InitSpec::File(path) => from_file(path, shape)?,
            InitSpec::Embedding { file, .. } => {
                let (fd, one) = self.embedding()?.expect("an embedding");
                if one.len() != n * d || fd != d {
                    return Err(file_error(
                        file,
                        format!(
                            "the embedding rows are [{}, {fd}] but the run has n = {n}, d = {d}",
                            one.len() / fd.max(1)
                        ),
                    ));
                }
                one.repeat(batch)
            }
            _ => {
                let mut x = vec![0.0; shape.len()];
                for (b, sys) in x.chunks_mut(n * d).enumerate() {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(b as u64);
                    match self {
                        InitSpec::Uniform => sys.chunks_mut(d).for_each(|t| uniform(&mut rng, t)),
                        InitSpec::Gaussian => sys.chunks_mut(d).for_each(|t| gaussian(&mut rng, t)),
                        InitSpec::Vmf { kappa, mu } => {
                            let mu = mean_direction(mu.as_deref(), d)?;
                            let sampler = Vmf::new(*kappa, &mu);
                            sys.chunks_mut(d).for_each(|t| sampler.sample(&mut rng, t));
                        }
                        InitSpec::File(_) | InitSpec::Embedding { .. } => unreachable!(),
                    }
                }
                x
            }
        };
        normalise(&mut x, shape, geometry)?;
        debug_assert_eq!(x.len(), batch * n * d);
        Ok(x)
    }

    /// The initial state from tokens handed over in memory (a binding's array, read in place):
    /// `shape` is [n, d] (shared by every system) or [batch, n, d], row-major. Checked as an
    /// --init file is (shape, every element finite, no zero token on the sphere) and normalised
    /// on the sphere; the result is the run's one copy of the state.
    pub fn from_tokens(
        what: &str,
        shape: &[usize],
        tokens: TokenSlice<'_>,
        target: Shape,
        geometry: Geometry,
    ) -> Result<Vec<f64>> {
        let Shape { batch, n, d } = target;
        let shared = match shape {
            [fn_, fd] if *fn_ == n && *fd == d => true,
            [fb, fn_, fd] if *fb == batch && *fn_ == n && *fd == d => false,
            _ => {
                return Err(input(format!(
                    "{what} has shape {shape:?}, but the run has n = {n}, d = {d}, batch = {batch}: \
                     expected [{n}, {d}] or [{batch}, {n}, {d}]"
                )));
            }
        };
        let len = shape.iter().product::<usize>();
        if tokens.len() != len {
            return Err(input(format!(
                "{what} holds {} values but its shape {shape:?} needs {len}",
                tokens.len()
            )));
        }
        let one: Vec<f64> = match tokens {
            TokenSlice::F64(v) => v.to_vec(),
            TokenSlice::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        };
        if let Some(bad) = one.iter().position(|v| !v.is_finite()) {
            let dims: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
            return Err(input(format!(
                "{what}: element {} is {}: inputs must be finite",
                npy::unravel(bad, &dims),
                one[bad]
            )));
        }
        let mut x = if shared && batch > 1 {
            one.repeat(batch)
        } else {
            one
        };
        normalise(&mut x, target, geometry)?;
        Ok(x)
    }
}

/// Tokens handed over in memory (borrowed), in their own precision.
#[derive(Clone, Copy, Debug)]
pub enum TokenSlice<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
}

impl TokenSlice<'_> {
    pub fn len(&self) -> usize {
        match self {
            TokenSlice::F64(v) => v.len(),
            TokenSlice::F32(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// On the sphere, every token divided by its norm; a zero token is refused by name.
fn normalise(x: &mut [f64], shape: Shape, geometry: Geometry) -> Result<()> {
    let Shape { n, d, .. } = shape;
    if geometry == Geometry::Sphere {
        for (t, tok) in x.chunks_mut(d).enumerate() {
            let norm = tok.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Err(input(format!(
                    "initial token {} of system {} is the zero vector, which has no direction on the sphere",
                    t % n,
                    t / n
                )));
            }
            tok.iter_mut().for_each(|v| *v /= norm);
        }
    }
    Ok(())
}

fn from_file(path: &PathBuf, shape: Shape) -> Result<Vec<f64>> {
    let Shape { batch, n, d } = shape;
    let arr = npy::read_f64(path)?;
    let s: Vec<usize> = arr.shape.iter().map(|&v| v as usize).collect();
    match s.as_slice() {
        [fn_, fd] if *fn_ == n && *fd == d => {
            // One set of tokens shared by every system of the ensemble.
            Ok(arr.data.repeat(batch))
        }
        [fb, fn_, fd] if *fb == batch && *fn_ == n && *fd == d => Ok(arr.data),
        _ => Err(file_error(
            path,
            format!(
                "has shape {s:?}, but the run has n = {n}, d = {d}, batch = {batch}: \
                 expected [{n}, {d}] or [{batch}, {n}, {d}]"
            ),
        )),
    }
}

fn gaussian(rng: &mut ChaCha8Rng, t: &mut [f64]) {
    for v in t.iter_mut() {
        *v = StandardNormal.sample(rng);
    }
}

fn uniform(rng: &mut ChaCha8Rng, t: &mut [f64]) {
    loop {
        gaussian(rng, t);
        let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 1e-12 {
            t.iter_mut().for_each(|v| *v /= norm);
            return;
        }
    }
}

fn mean_direction(mu: Option<&[f64]>, d: usize) -> Result<Vec<f64>> {
    let mu = match mu {
        None => {
            let mut e1 = vec![0.0; d];
            e1[0] = 1.0;
            return Ok(e1);
        }
        Some(mu) => mu,
    };
    if mu.len() != d {
        return Err(input(format!(
            "--init vmf: the mean direction has {} coordinates but d = {d}",
            mu.len()
        )));
    }
    let norm = mu.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(input(
            "--init vmf: the mean direction must be a finite non-zero vector",
        ));
    }
    Ok(mu.iter().map(|v| v / norm).collect())
}

/// Wood's (1994) rejection sampler for the von Mises-Fisher law on S^{d-1}. For kappa so
/// large that Wood's constants round away (b below 1e-12), 1 - <x, mu> is drawn from its
/// large-kappa limit Gamma((d - 1) / 2) / kappa instead (relative error O(1/kappa) < 1e-11), so
/// the sampler is finite for every finite kappa and tends to the point mass at mu.
pub struct Vmf<'a> {
    kappa: f64,
    mu: &'a [f64],
    b: f64,
    x0: f64,
    c: f64,
    beta: Option<Beta<f64>>,
    /// The large-kappa limit law of kappa (1 - <x, mu>), when it is used.
    tail: Option<rand_distr::Gamma<f64>>,
}

impl<'a> Vmf<'a> {
    pub fn new(kappa: f64, mu: &'a [f64]) -> Self {
        let dm1 = (mu.len() - 1) as f64;
        // b = (-2k + sqrt(4k^2 + (d-1)^2)) / (d-1), written without cancellation.
        let b = dm1 / (2.0 * kappa + (4.0 * kappa * kappa + dm1 * dm1).sqrt());
        let x0 = (1.0 - b) / (1.0 + b);
        let c = kappa * x0 + dm1 * (1.0 - x0 * x0).ln();
        let beta = (kappa > 0.0).then(|| Beta::new(dm1 / 2.0, dm1 / 2.0).expect("d >= 2"));
        let tail = (kappa > 0.0 && b < 1e-12)
            .then(|| rand_distr::Gamma::new(dm1 / 2.0, 1.0).expect("d >= 2"));
        Vmf {
            kappa,
            mu,
            b,
            x0,
            c,
            beta,
            tail,
        }
    }

    pub fn sample(&self, rng: &mut ChaCha8Rng, out: &mut [f64]) {
        let Some(beta) = &self.beta else {
            return uniform(rng, out);
        };
        let dm1 = (self.mu.len() - 1) as f64;
        // w = <x, mu>, drawn by rejection (or from the large-kappa limit).
        let w = match &self.tail {
            Some(tail) => 1.0 - (tail.sample(rng) / self.kappa).min(2.0),
            None => loop {
                let z: f64 = beta.sample(rng);
                let w = (1.0 - (1.0 + self.b) * z) / (1.0 - (1.0 - self.b) * z);
                let u: f64 = rng.random();
                if self.kappa * w + dm1 * (1.0 - self.x0 * w).ln() - self.c >= u.ln() {
                    break w;
                }
            },
        };
        // A uniform direction orthogonal to mu.
        loop {
            gaussian(rng, out);
            let along: f64 = out.iter().zip(self.mu).map(|(a, b)| a * b).sum();
            out.iter_mut()
                .zip(self.mu)
                .for_each(|(v, m)| *v -= along * m);
            let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 1e-12 {
                let s = (1.0 - w * w).max(0.0).sqrt() / norm;
                out.iter_mut()
                    .zip(self.mu)
                    .for_each(|(v, m)| *v = w * m + s * *v);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every finite kappa gives samples (it looped forever from about 1e16), tending to mu.
    #[test]
    fn vmf_samples_exist_for_every_finite_kappa() {
        use rand::SeedableRng;
        for d in [2usize, 3, 64] {
            let mut mu = vec![0.0; d];
            mu[1] = 1.0;
            for kappa in [1e6, 1e12, 1e16, 1e100, f64::MAX] {
                let v = Vmf::new(kappa, &mu);
                let mut rng = ChaCha8Rng::seed_from_u64(3);
                let mut x = vec![0.0; d];
                for _ in 0..100 {
                    v.sample(&mut rng, &mut x);
                    let along: f64 = x.iter().zip(&mu).map(|(a, b)| a * b).sum();
                    let norm: f64 = x.iter().map(|a| a * a).sum::<f64>().sqrt();
                    assert!(x.iter().all(|a| a.is_finite()), "d = {d}, kappa = {kappa}");
                    assert!(
                        (norm - 1.0).abs() < 1e-12,
                        "d = {d}, kappa = {kappa}: |x| = {norm}"
                    );
                    // 1 - <x, mu> ~ (d - 1) / (2 kappa) on average.
                    assert!(
                        1.0 - along < 1e3 * d as f64 / kappa.min(1e300),
                        "d = {d}, kappa = {kappa}"
                    );
                }
            }
            // Where both apply, the limit law agrees with Wood's sampler: kappa = 1e11 (Wood)
            // and the mean of kappa (1 - w), (d - 1) / 2 in the limit.
            for kappa in [1e11, 1e13] {
                let v = Vmf::new(kappa, &mu);
                let mut rng = ChaCha8Rng::seed_from_u64(4);
                let mut x = vec![0.0; d];
                let m = 4000;
                let mean = (0..m)
                    .map(|_| {
                        v.sample(&mut rng, &mut x);
                        let along: f64 = x.iter().zip(&mu).map(|(a, b)| a * b).sum();
                        kappa * (1.0 - along)
                    })
                    .sum::<f64>()
                    / m as f64;
                let want = (d as f64 - 1.0) / 2.0;
                // The Gamma((d-1)/2) mean has standard error sqrt((d-1)/2 / m); 5 of them, and
                // the f64 resolution of 1 - w at kappa = 1e13 (1e-16 kappa = 1e-3).
                let tol = 5.0 * (want / m as f64).sqrt() + 2e-3 * kappa / 1e13;
                assert!(
                    (mean - want).abs() < tol,
                    "d = {d}, kappa = {kappa}: {mean} vs {want}"
                );
            }
        }
    }

    fn mean_along(x: &[f64], d: usize, mu: &[f64]) -> f64 {
        let n = x.len() / d;
        x.chunks(d)
            .map(|t| t.iter().zip(mu).map(|(a, b)| a * b).sum::<f64>())
            .sum::<f64>()
            / n as f64
    }

    /// Modified Bessel I_nu(k) by its power series (fine for the small k used here).
    fn bessel_i(nu: f64, k: f64) -> f64 {
        let mut term = (k / 2.0).powf(nu) / gamma(nu + 1.0);
        let mut sum = term;
        for m in 1..200 {
            let m = m as f64;
            term *= (k / 2.0).powi(2) / (m * (m + nu));
            sum += term;
        }
        sum
    }

    fn gamma(x: f64) -> f64 {
        // Integer and half-integer arguments only.
        if (x - x.round()).abs() < 1e-12 {
            (1..x.round() as u64).map(|v| v as f64).product()
        } else {
            let mut g = std::f64::consts::PI.sqrt();
            let mut a = 0.5;
            while a < x - 0.25 {
                g *= a;
                a += 1.0;
            }
            g
        }
    }

    /// E<x, mu> under vMF(mu, kappa) is A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa)
    /// (docs/model.md §4); 40000 samples give a standard error below 0.004.
    #[test]
    fn vmf_samples_have_the_mean_resultant_length_a_d() {
        for (d, kappa) in [(2usize, 1.5), (3, 2.0), (3, 10.0), (8, 5.0)] {
            let shape = Shape::new(1, 40_000, d).unwrap();
            let mut mu = vec![0.0; d];
            mu[d - 1] = 1.0;
            let spec = InitSpec::Vmf {
                kappa,
                mu: Some(mu.clone()),
            };
            let x = spec.generate(shape, Geometry::Sphere, 3).unwrap();
            let got = mean_along(&x, d, &mu);
            let nu = d as f64 / 2.0;
            let want = bessel_i(nu, kappa) / bessel_i(nu - 1.0, kappa);
            if d == 3 {
                let closed = 1.0 / kappa.tanh() - 1.0 / kappa;
                assert!(
                    (want - closed).abs() < 1e-12,
                    "series vs coth: {want} {closed}"
                );
            }
            assert!(
                (got - want).abs() < 0.012,
                "d = {d}, kappa = {kappa}: {got} vs A_d = {want}"
            );
        }
    }

    /// Uniform on the sphere: mean ~ 0 and second moment E[x x^T] = I / d.
    #[test]
    fn uniform_samples_are_isotropic() {
        let d = 5;
        let x = InitSpec::Uniform
            .generate(Shape::new(1, 40_000, d).unwrap(), Geometry::Sphere, 1)
            .unwrap();
        for c in 0..d {
            let mean: f64 = x.chunks(d).map(|t| t[c]).sum::<f64>() / 40_000.0;
            let second: f64 = x.chunks(d).map(|t| t[c] * t[c]).sum::<f64>() / 40_000.0;
            assert!(mean.abs() < 0.01, "coordinate {c} mean {mean}");
            assert!(
                (second - 1.0 / d as f64).abs() < 0.01,
                "coordinate {c} second moment {second}"
            );
        }
    }

    /// System b draws from stream b: the same whatever the batch size.
    #[test]
    fn system_b_does_not_depend_on_the_batch_size() {
        let one = InitSpec::Gaussian
            .generate(Shape::new(1, 10, 3).unwrap(), Geometry::Euclidean, 4)
            .unwrap();
        let three = InitSpec::Gaussian
            .generate(Shape::new(3, 10, 3).unwrap(), Geometry::Euclidean, 4)
            .unwrap();
        assert_eq!(&three[..30], &one[..]);
        assert_ne!(&three[30..60], &one[..]);
    }

    #[test]
    fn tokens_in_memory_are_checked_and_shared_like_a_file() {
        let shape = Shape::new(2, 2, 3).unwrap();
        let one = [3.0f32, 0.0, 4.0, 0.0, 2.0, 0.0];
        let x = InitSpec::from_tokens(
            "x0",
            &[2, 3],
            TokenSlice::F32(&one),
            shape,
            Geometry::Sphere,
        )
        .unwrap();
        assert_eq!(
            x,
            vec![0.6, 0.0, 0.8, 0.0, 1.0, 0.0, 0.6, 0.0, 0.8, 0.0, 1.0, 0.0]
        );
        let e = InitSpec::from_tokens(
            "x0",
            &[3, 2],
            TokenSlice::F32(&one),
            shape,
            Geometry::Sphere,
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("expected [2, 3] or [2, 2, 3]")
        );
        let mut bad = [1.0f64; 12];
        bad[7] = f64::NAN;
        let e = InitSpec::from_tokens(
            "x0",
            &[2, 2, 3],
            TokenSlice::F64(&bad),
            shape,
            Geometry::Sphere,
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("x0: element [1, 0, 1] is NaN")
        );
        let zero = [0.0f64; 6];
        let e = InitSpec::from_tokens(
            "x0",
            &[2, 3],
            TokenSlice::F64(&zero),
            shape,
            Geometry::Sphere,
        );
        assert!(e.unwrap_err().to_string().contains("zero vector"));
        // Off the sphere the tokens are taken as given.
        let x = InitSpec::from_tokens(
            "x0",
            &[2, 3],
            TokenSlice::F64(&zero),
            shape,
            Geometry::Euclidean,
        );
        assert_eq!(x.unwrap(), vec![0.0; 12]);
    }
}
