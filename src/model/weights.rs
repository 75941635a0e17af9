//! The attention weights Q, K, V (docs/model.md §1): d x d, row-major, (Q x)_r = sum_c Q[r][c] x_c.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Result, file_error, input};
use crate::npy;

/// Q, K and V of one attention head (defined in the parent module; its methods are below).
pub use super::Weights;

/// Which (Q, K, V) to use, as written on the command line or in a config.
#[derive(Clone, Debug, PartialEq)]
pub enum QkvSpec {
    Identity,
    /// iid N(0, 1/d) entries from a seed (one draw per head, fixed over depth).
    Random(u64),
    /// Random deep attention: every head redrawn at every layer from the seed.
    Redraw(u64),
    /// Every system of the ensemble draws its own heads (counter-based generator keyed by
    /// the seed and the system's index), fixed over depth.
    RandomPerSystem(u64),
    /// Every system draws its own heads, redrawn at every layer.
    RedrawPerSystem(u64),
    /// A folder holding Q.npy, K.npy, V.npy, each [d, d] or [heads, d, d].
    Dir(std::path::PathBuf),
    /// A GPT-2-style safetensors checkpoint, `safetensors:FILE[:gpt2]` (docs/model.md §6):
    /// every layer's heads, split from `h.{l}.attn.c_attn.weight` and `c_proj.weight`.
    Safetensors(std::path::PathBuf),
}

/// The prefix of a safetensors checkpoint in --qkv, --mlp and --init.
pub const SAFETENSORS: &str = "safetensors:";

impl QkvSpec {
    /// The files a folder of weights is read from (none for drawn weights).
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        match self {
            QkvSpec::Dir(dir) => ["Q.npy", "K.npy", "V.npy"].map(|f| dir.join(f)).to_vec(),
            QkvSpec::Safetensors(file) => vec![file.clone()],
            _ => Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "identity" {
            return Ok(QkvSpec::Identity);
        }
        type Make = fn(u64) -> QkvSpec;
        let kinds: [(&str, Make); 4] = [
            ("random:", QkvSpec::Random),
            ("redraw:", QkvSpec::Redraw),
            ("random-per-system:", QkvSpec::RandomPerSystem),
            ("redraw-per-system:", QkvSpec::RedrawPerSystem),
        ];
        for (prefix, make) in kinds {
            if let Some(seed) = s.strip_prefix(prefix) {
                let seed = seed.parse::<u64>().map_err(|_| {
                    input(format!(
                        "--qkv {prefix}SEED needs a whole number >= 0 as SEED, got '{seed}'"
                    ))
                })?;
                return Ok(make(seed));
            }
        }
        if let Some(rest) = s.strip_prefix(SAFETENSORS) {
            super::checkpoint::check_format("--qkv", rest, &["gpt2"])?;
            let (file, _) = super::checkpoint::split_spec(rest, &["gpt2"]);
            if file.is_empty() {
                return Err(input(
                    "--qkv safetensors: needs a file, as safetensors:FILE[:gpt2]",
                ));
            }
            return Ok(QkvSpec::Safetensors(file.into()));
        }
        if ["random", "redraw", "random-per-system", "redraw-per-system"].contains(&s) {
            return Err(input(format!("--qkv {s} needs a seed: {s}:SEED")));
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
            QkvSpec::Redraw(seed) => format!("redraw:{seed}"),
            QkvSpec::RandomPerSystem(seed) => format!("random-per-system:{seed}"),
            QkvSpec::RedrawPerSystem(seed) => format!("redraw-per-system:{seed}"),
            QkvSpec::Dir(p) => p.display().to_string(),
            QkvSpec::Safetensors(p) => format!("{SAFETENSORS}{}:gpt2", p.display()),
        }
    }

    /// The heads of every layer in dimension d, [L][H]: one layer unless a folder's files
    /// carry a leading layer axis. `heads` as in `resolve_heads`.
    pub fn resolve_layers(&self, d: usize, heads: Option<usize>) -> Result<Vec<Vec<Weights>>> {
        match self {
            QkvSpec::Dir(dir) => {
                let all = Weights::layers_from_dir(dir, d)?;
                if let Some(h) = heads
                    && h != all[0].len()
                {
                    return Err(input(format!(
                        "--heads {h} but the --qkv folder holds {} heads",
                        all[0].len()
                    )));
                }
                Ok(all)
            }
            QkvSpec::Safetensors(file) => {
                let heads = heads.ok_or_else(|| {
                    input(format!(
                        "--qkv {} needs --heads H (GPT-2 small: 12; the head size is d / H)",
                        self.to_config_string()
                    ))
                })?;
                super::checkpoint::SafetensorsFile::open(file)?.attention(d, heads)
            }
            _ => Ok(vec![self.resolve_heads(d, heads)?]),
        }
    }

    /// The weights of one head in dimension d (the first head of a folder with several).
    pub fn resolve(&self, d: usize) -> Result<Weights> {
        Ok(self.resolve_heads(d, None)?.remove(0))
    }

    /// The fixed heads in dimension d: `heads` of them (None: one, or as many as a folder's
    /// files hold). A redraw or per-system spec has no fixed heads; it gives identity
    /// placeholders (the model's `RandomHeads` draws them).
    pub fn resolve_heads(&self, d: usize, heads: Option<usize>) -> Result<Vec<Weights>> {
        let count = heads.unwrap_or(1);
        if count == 0 {
            return Err(input("--heads must be at least 1"));
        }
        match self {
            QkvSpec::Identity
            | QkvSpec::Redraw(_)
            | QkvSpec::RandomPerSystem(_)
            | QkvSpec::RedrawPerSystem(_) => Ok(vec![Weights::identity(d); count]),
            QkvSpec::Random(seed) => Ok((0..count)
                .map(|h| Weights::random_head(d, *seed, h))
                .collect()),
            QkvSpec::Dir(dir) => {
                let all = Weights::from_dir(dir, d)?;
                if let Some(h) = heads
                    && h != all.len()
                {
                    return Err(input(format!(
                        "--heads {h} but the --qkv folder holds {} heads",
                        all.len()
                    )));
                }
                Ok(all)
            }
            QkvSpec::Safetensors(_) => {
                let mut layers = self.resolve_layers(d, heads)?;
                if layers.len() > 1 {
                    return Err(input(format!(
                        "--qkv {} holds {} layers: per-layer weights are for runs (attnflow \
                         run); here one layer is needed",
                        self.to_config_string(),
                        layers.len()
                    )));
                }
                Ok(layers.remove(0))
            }
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
        Self::random_head(d, seed, 0)
    }

    /// Head h of a random multi-head layer: streams 3h, 3h + 1, 3h + 2 (head 0 is `random`).
    pub fn random_head(d: usize, seed: u64, h: usize) -> Self {
        let h = h as u64;
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
            q: draw(3 * h),
            k: draw(3 * h + 1),
            v: draw(3 * h + 2),
        }
    }

    /// The heads in a folder of one layer: Q.npy, K.npy, V.npy each [d, d] (one head),
    /// [H, d, d], or [1, H, d, d]; a folder of several layers is refused.
    pub fn from_dir(dir: &Path, d: usize) -> Result<Vec<Self>> {
        let mut layers = Self::layers_from_dir(dir, d)?;
        if layers.len() > 1 {
            return Err(file_error(
                dir.join("Q.npy"),
                format!(
                    "holds {} layers [L, heads, {d}, {d}]: per-layer weights are for runs \
                     (attnflow run); here one layer is needed",
                    layers.len()
                ),
            ));
        }
        Ok(layers.remove(0))
    }

    /// The heads of every layer in a folder, [L][H]: Q.npy, K.npy, V.npy each [d, d] (one
    /// layer, one head), [H, d, d] (one layer) or [L, H, d, d] (L layers, docs/model.md §3).
    pub fn layers_from_dir(dir: &Path, d: usize) -> Result<Vec<Vec<Self>>> {
        if !dir.is_dir() {
            return Err(input(format!(
                "--qkv '{}' is neither identity, random:SEED, nor a folder holding Q.npy, K.npy and V.npy",
                dir.display()
            )));
        }
        // (layers, heads, data)
        let load = |name: &str| -> Result<(usize, usize, Vec<f64>)> {
            let path = dir.join(name);
            if !path.exists() {
                return Err(file_error(
                    &path,
                    "missing: a --qkv folder must hold Q.npy, K.npy and V.npy",
                ));
            }
            let arr = npy::read_f64(&path)?;
            let dd = d as u64;
            match arr.shape.as_slice() {
                [r, c] if *r == dd && *c == dd => Ok((1, 1, arr.data)),
                [h, r, c] if *h > 0 && *r == dd && *c == dd => Ok((1, *h as usize, arr.data)),
                [l, h, r, c] if *l > 0 && *h > 0 && *r == dd && *c == dd => {
                    Ok((*l as usize, *h as usize, arr.data))
                }
                other => Err(file_error(
                    &path,
                    format!(
                        "has shape {other:?}, expected [{d}, {d}], [heads, {d}, {d}] or \
                         [layers, heads, {d}, {d}] for d = {d}"
                    ),
                )),
            }
        };
        let (q, k, v) = (load("Q.npy")?, load("K.npy")?, load("V.npy")?);
        if (q.0, q.1) != (k.0, k.1) || (q.0, q.1) != (v.0, v.1) {
            // Without a layer axis anywhere, the heads alone disagree.
            let what = if q.0 == 1 && k.0 == 1 && v.0 == 1 {
                format!("{}, {} and {} heads", q.1, k.1, v.1)
            } else {
                format!(
                    "{} x {}, {} x {} and {} x {} layers x heads",
                    q.0, q.1, k.0, k.1, v.0, v.1
                )
            };
            return Err(file_error(
                dir,
                format!("Q.npy, K.npy and V.npy hold {what}: they must agree"),
            ));
        }
        let (layers, heads, dd) = (q.0, q.1, d * d);
        Ok((0..layers)
            .map(|l| {
                (0..heads)
                    .map(|h| {
                        let r = (l * heads + h) * dd..(l * heads + h + 1) * dd;
                        Weights {
                            d,
                            q: q.2[r.clone()].to_vec(),
                            k: k.2[r.clone()].to_vec(),
                            v: v.2[r].to_vec(),
                        }
                    })
                    .collect()
            })
            .collect())
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
        // m[r][c] = sum_t k[t][r] q[t][c], summed in row order so that every inner loop is
        // contiguous (d = 1024 takes well under a second).
        for t in 0..d {
            let q_row = &self.q[t * d..(t + 1) * d];
            for r in 0..d {
                let k_tr = self.k[t * d + r];
                for (m, &q) in m[r * d..(r + 1) * d].iter_mut().zip(q_row) {
                    *m += k_tr * q;
                }
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

pub use super::linalg::matvec;

/// Which perceptron to use (docs/model.md §3), as written on the command line or in a config.
#[derive(Clone, Debug, PartialEq)]
pub enum MlpSpec {
    /// Hidden width m, weights drawn from a seed: A ~ N(0, 1/d), W ~ N(0, 1/m), b ~ N(0, 1).
    Random { hidden: usize, seed: u64 },
    /// A folder holding W.npy [d, m], A.npy [m, d], b.npy [m].
    Dir(std::path::PathBuf),
    /// A GPT-2-style safetensors checkpoint, `safetensors:FILE[:gpt2]` (docs/model.md §6):
    /// every layer's `h.{l}.mlp.c_fc` and `c_proj`.
    Safetensors(std::path::PathBuf),
}

impl MlpSpec {
    /// The files a folder of weights is read from (none for drawn weights).
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        match self {
            MlpSpec::Dir(dir) => ["W.npy", "A.npy", "b.npy"].map(|f| dir.join(f)).to_vec(),
            MlpSpec::Safetensors(file) => vec![file.clone()],
            MlpSpec::Random { .. } => Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("random:") {
            let (m, seed) = rest.split_once(':').unwrap_or((rest, "0"));
            let hidden = m.parse::<usize>().ok().filter(|&m| m > 0);
            let seed = seed.parse::<u64>().ok();
            return match (hidden, seed) {
                (Some(hidden), Some(seed)) => Ok(MlpSpec::Random { hidden, seed }),
                _ => Err(input(format!(
                    "--mlp random:M[:SEED] needs a hidden width M >= 1 and a seed, got '{s}'"
                ))),
            };
        }
        if let Some(rest) = s.strip_prefix(SAFETENSORS) {
            super::checkpoint::check_format("--mlp", rest, &["gpt2"])?;
            let (file, _) = super::checkpoint::split_spec(rest, &["gpt2"]);
            if file.is_empty() {
                return Err(input(
                    "--mlp safetensors: needs a file, as safetensors:FILE[:gpt2]",
                ));
            }
            return Ok(MlpSpec::Safetensors(file.into()));
        }
        if s.is_empty() {
            return Err(input(
                "--mlp is empty: use random:M[:SEED] or a folder with W.npy, A.npy, b.npy",
            ));
        }
        Ok(MlpSpec::Dir(s.into()))
    }

    pub fn to_config_string(&self) -> String {
        match self {
            MlpSpec::Random { hidden, seed } => format!("random:{hidden}:{seed}"),
            MlpSpec::Dir(p) => p.display().to_string(),
            MlpSpec::Safetensors(p) => format!("{SAFETENSORS}{}:gpt2", p.display()),
        }
    }

    /// The perceptron in dimension d.
    pub fn resolve(
        &self,
        d: usize,
        activation: crate::model::Activation,
    ) -> Result<crate::model::Mlp> {
        match self {
            MlpSpec::Random { hidden, seed } => {
                let m = *hidden;
                let draw = |stream: u64, len: usize, sd: f64| {
                    let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                    rng.set_stream(1000 + stream);
                    (0..len)
                        .map(|_| {
                            sd * <StandardNormal as Distribution<f64>>::sample(
                                &StandardNormal,
                                &mut rng,
                            )
                        })
                        .collect::<Vec<f64>>()
                };
                Ok(crate::model::Mlp {
                    hidden: m,
                    w: draw(0, d * m, 1.0 / (m as f64).sqrt()),
                    a: draw(1, m * d, 1.0 / (d as f64).sqrt()),
                    b: draw(2, m, 1.0),
                    activation,
                })
            }
            MlpSpec::Dir(_) | MlpSpec::Safetensors(_) => {
                let mut layers = self.resolve_layers(d, activation)?;
                if layers.len() > 1 {
                    return Err(input(format!(
                        "--mlp '{}' holds {} layers [L, d, m]: per-layer weights are for runs \
                         (attnflow run); here one layer is needed",
                        self.to_config_string(),
                        layers.len()
                    )));
                }
                Ok(layers.remove(0))
            }
        }
    }
}

impl MlpSpec {
    /// The perceptron of every layer in dimension d: one unless a folder's files carry a
    /// leading layer axis, W.npy [L, d, m], A.npy [L, m, d], b.npy [L, m] (docs/model.md §3).
    pub fn resolve_layers(
        &self,
        d: usize,
        activation: crate::model::Activation,
    ) -> Result<Vec<crate::model::Mlp>> {
        let dir = match self {
            MlpSpec::Random { .. } => return Ok(vec![self.resolve(d, activation)?]),
            MlpSpec::Dir(dir) => dir,
            MlpSpec::Safetensors(file) => {
                return super::checkpoint::SafetensorsFile::open(file)?.perceptron(d, activation);
            }
        };
        if !dir.is_dir() {
            return Err(input(format!(
                "--mlp '{}' is neither random:M[:SEED] nor a folder holding W.npy, A.npy and b.npy",
                dir.display()
            )));
        }
        let load = |name: &str| -> Result<npy::Array> {
            let path = dir.join(name);
            if !path.exists() {
                return Err(file_error(
                    &path,
                    "missing: an --mlp folder must hold W.npy, A.npy and b.npy",
                ));
            }
            npy::read_f64(&path)
        };
        let (w, a, b) = (load("W.npy")?, load("A.npy")?, load("b.npy")?);
        // b is [m] (one layer) or [L, m]; W and A follow it.
        let (layers, m) = match b.shape.as_slice() {
            [m] => (None, *m),
            [l, m] if *l > 0 => (Some(*l), *m),
            _ => (None, 0),
        };
        let d64 = d as u64;
        let expect = |tail: [u64; 2]| -> Vec<u64> { layers.into_iter().chain(tail).collect() };
        if m == 0 || w.shape != expect([d64, m]) || a.shape != expect([m, d64]) {
            return Err(file_error(
                dir,
                format!(
                    "W.npy {:?}, A.npy {:?}, b.npy {:?}: expected [{d}, m], [m, {d}] and [m], or \
                     with a leading layer axis [L, {d}, m], [L, m, {d}] and [L, m]",
                    w.shape, a.shape, b.shape
                ),
            ));
        }
        let (l, m) = (layers.unwrap_or(1) as usize, m as usize);
        Ok((0..l)
            .map(|i| crate::model::Mlp {
                hidden: m,
                w: w.data[i * d * m..(i + 1) * d * m].to_vec(),
                a: a.data[i * m * d..(i + 1) * m * d].to_vec(),
                b: b.data[i * m..(i + 1) * m].to_vec(),
                activation,
            })
            .collect())
    }
}
