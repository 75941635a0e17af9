//! One attention layer with separate queries and keys, on every backend: the engine of
//! `attnflow attend` (one layer, no dynamics) and of contextual flow maps ([`crate::cfm`]).
//!
//! Queries z [batch, m, d] attend to keys y [batch, n, d] of the same system; the output of
//! query i is a_i = sum_h c_h sum_j w_ij V_h y_j with w the softmax (SA) or unnormalised (USA)
//! weights of the scores beta <Q_h z_i, K_h y_j>, and on the sphere its tangent projection at
//! z_i. Memory is O((m + n) d): no m x n matrix is formed. [`attention_stats`] measures how
//! concentrated the weights of one query are, streaming over the keys in f64.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use crate::backend::traits::{Attend, LayerShape};
use crate::error::{Result, input};
use crate::model::init::InitSpec;
use crate::model::{Geometry, Model, Shape};
use crate::npy;

/// What `attend` and `cfm` share: one layer's inverse temperature (`beta` under `beta_rule`
/// for n keys in d dimensions), its attention kind and the single head of `qkv`, from the
/// names a user writes (`"selective"`, `"usa"`, `"random:3"`).
#[derive(Clone, Debug)]
pub struct OneLayer {
    pub rule: crate::config::BetaRule,
    pub beta: f64,
    pub attention: crate::model::Attention,
    pub weights: crate::model::weights::Weights,
}

impl OneLayer {
    /// The model of `attnflow attend` for `batch` draws: raw outputs a_i, no tangent
    /// projection (the euclidean form of the same layer), full mask.
    pub fn attend_model(self, batch: usize) -> Model {
        Model::new(
            self.attention,
            crate::model::Geometry::Euclidean,
            crate::model::Mask::Full,
            self.weights,
            vec![self.beta; batch],
        )
    }
}

/// See [`OneLayer`]; `command` names the caller in errors.
pub fn one_layer(
    command: &str,
    layer: &crate::options::LayerOpts,
    qkv: &str,
    n: usize,
    d: usize,
) -> Result<OneLayer> {
    let (rule, gamma) = (layer.beta_rule, layer.beta);
    crate::model::check_beta(gamma)?;
    let spec = crate::model::weights::QkvSpec::parse(qkv)?;
    if let crate::model::weights::QkvSpec::Redraw(_)
    | crate::model::weights::QkvSpec::RandomPerSystem(_)
    | crate::model::weights::QkvSpec::RedrawPerSystem(_) = spec
    {
        return Err(crate::error::input(format!(
            "{command} takes one fixed head: --qkv identity, random:SEED or a folder, not '{qkv}'"
        )));
    }
    let mut heads = spec.resolve_heads(d, None)?;
    if heads.len() != 1 {
        return Err(crate::error::input(format!(
            "{command} takes one head; the --qkv folder holds {}",
            heads.len()
        )));
    }
    Ok(OneLayer {
        rule,
        beta: rule.apply(gamma, n, d),
        attention: layer.model,
        weights: heads.remove(0),
    })
}

/// How concentrated the attention weights w_j of one query are (softmax weights of the first
/// head's scores; for USA the same normalised weights).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionStats {
    /// max_j w_j.
    pub max_weight: f64,
    /// 1 / sum_j w_j^2: n for uniform weights, 1 for a single key.
    pub effective_keys: f64,
    /// -sum_j w_j ln w_j (nats): ln n for uniform weights, 0 for a single key.
    pub entropy: f64,
    /// The largest `top_k` weights, largest first.
    pub top: Vec<f64>,
}

/// [`attention_stats`] of every query of a batch: queries z [batch, m, d] against keys
/// y [batch, n, d] (query t of the batch is draw t / m), in parallel over the queries.
/// `top_k` is at most n (checked here).
#[allow(clippy::too_many_arguments)]
pub fn batch_stats(
    model: &Model,
    beta: f64,
    z: &[f64],
    y: &[f64],
    (batch, m, n, d): (usize, usize, usize, usize),
    top_k: usize,
) -> Result<Vec<AttentionStats>> {
    if top_k > n {
        return Err(crate::error::input(format!(
            "--top-k {top_k} exceeds the number of keys n = {n}"
        )));
    }
    Ok((0..batch * m)
        .into_par_iter()
        .map(|t| {
            let b = t / m;
            attention_stats(
                model,
                beta,
                &z[t * d..(t + 1) * d],
                &y[b * n * d..(b + 1) * n * d],
                n,
                top_k,
            )
        })
        .collect())
}

/// Streams over the keys y [n, d] of one system with running-max rescaling (f64, O(n d) time,
/// O(d + top_k) memory): with M the running max of the scores s_j and L = sum e^{s_j - M},
/// S = sum e^{2(s_j - M)}, T = sum s_j e^{s_j - M}, the statistics are max w = 1 / L,
/// 1 / sum w^2 = L^2 / S and entropy = M + ln L - T / L. Keys past the query's position under
/// the causal mask (i = query index) are skipped.
pub fn attention_stats(
    model: &Model,
    beta: f64,
    z: &[f64],
    y: &[f64],
    seen: usize,
    top_k: usize,
) -> AttentionStats {
    let d = z.len();
    let head = &model.heads[0];
    let mut qz = vec![0.0; d];
    let mut q = vec![0.0; d];
    crate::model::weights::matvec(&head.q, z, &mut qz);
    // q = beta K^T Q z, so that the score of key y is <q, y>.
    for (c, qc) in q.iter_mut().enumerate() {
        *qc = beta * (0..d).map(|r| head.k[r * d + c] * qz[r]).sum::<f64>();
    }
    let (mut big_m, mut l, mut s2, mut t) = (f64::NEG_INFINITY, 0.0, 0.0, 0.0);
    // The top_k scores, largest first.
    let mut top: Vec<f64> = Vec::with_capacity(top_k + 1);
    for yj in y.chunks(d).take(seen) {
        let s = crate::model::linalg::dot(&q, yj);
        if s > big_m {
            let r = (big_m - s).exp();
            (l, s2, t) = (l * r, s2 * r * r, t * r);
            big_m = s;
        }
        let e = (s - big_m).exp();
        l += e;
        s2 += e * e;
        t += s * e;
        if top_k > 0 && (top.len() < top_k || s > top[top.len() - 1]) {
            let at = top.partition_point(|&v| v >= s);
            top.insert(at, s);
            top.truncate(top_k);
        }
    }
    AttentionStats {
        max_weight: 1.0 / l,
        effective_keys: l * l / s2,
        entropy: big_m + l.ln() - t / l,
        top: top.iter().map(|&s| (s - big_m).exp() / l).collect(),
    }
}

/// Where tokens come from: drawn from a law (`uniform:N`, `gaussian:N`, `vmf:KAPPA[:MU]:N`),
/// or a .npy file ([n, d] shared by every system, or [batch, n, d]).
#[derive(Clone, Debug, PartialEq)]
pub enum TokenSource {
    Law { law: InitSpec, n: usize },
    File(PathBuf),
}

impl TokenSource {
    /// Parses `LAW:N`, `file:PATH` or a path ending in .npy; `what` names the flag in errors.
    pub fn parse(s: &str, what: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("file:") {
            return Ok(TokenSource::File(path.into()));
        }
        if s.ends_with(".npy") {
            return Ok(TokenSource::File(s.into()));
        }
        let bad = || {
            input(format!(
                "{what} '{s}': expected a .npy file, file:PATH, or a law with a count: \
                 uniform:N, gaussian:N or vmf:KAPPA[:MU1,MU2,...]:N"
            ))
        };
        let (law, n) = s.rsplit_once(':').ok_or_else(bad)?;
        let n: usize = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(input(format!("{what} '{s}': the count must be at least 1")));
        }
        let law = InitSpec::parse(law).map_err(|e| input(format!("{what} '{s}': {e}")))?;
        if matches!(law, InitSpec::File(_) | InitSpec::Embedding { .. }) {
            return Err(bad());
        }
        Ok(TokenSource::Law { law, n })
    }

    /// The file these tokens are read from, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            TokenSource::File(p) => Some(p),
            TokenSource::Law { .. } => None,
        }
    }

    pub fn to_config_string(&self) -> String {
        match self {
            TokenSource::Law { law, n } => format!("{}:{n}", law.to_config_string()),
            TokenSource::File(p) => format!("file:{}", p.display()),
        }
    }

    /// The file's shape, read from its header ([n, d] or [batch, n, d]).
    fn file_shape(path: &Path) -> Result<Vec<u64>> {
        Ok(npy::read_f64(path)?.shape)
    }

    /// Tokens per system and their dimension: from the file, or (N, `d`) for a law.
    pub fn size(&self, d: usize) -> Result<(usize, usize)> {
        match self {
            TokenSource::Law { n, .. } => Ok((*n, d)),
            TokenSource::File(path) => {
                let shape = Self::file_shape(path)?;
                match shape[..] {
                    [n, d] | [_, n, d] => Ok((n as usize, d as usize)),
                    _ => Err(crate::error::file_error(
                        path,
                        format!("shape {shape:?} must be [n, d] or [batch, n, d]"),
                    )),
                }
            }
        }
    }

    /// [batch, n, d] unit vectors: system b of a law draws from stream b of `seed`; a file is
    /// shared by all systems ([n, d]) or gives each its own ([batch, n, d]).
    pub fn generate(&self, batch: usize, d: usize, seed: u64) -> Result<Vec<f64>> {
        let (n, d) = self.size(d)?;
        let shape = Shape::new(batch, n, d)?;
        let spec = match self {
            TokenSource::Law { law, .. } => law.clone(),
            TokenSource::File(p) => InitSpec::File(p.clone()),
        };
        spec.generate(shape, Geometry::Sphere, seed)
    }
}

/// A seed for a second, independent set of draws (queries next to keys) from the same user
/// seed.
pub fn derived_seed(seed: u64, stream: u64) -> u64 {
    seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
