//! Real models: the weights and token embeddings of a GPT-2-style safetensors checkpoint,
//! mapped onto attnflow's per-layer heads and perceptrons (docs/model.md §6, "Real models").
//!
//! GPT-2 stores its linear maps as Conv1D, y = x W + b with W [in, out]. Per layer l:
//! - `h.{l}.attn.c_attn.weight` [d, 3d] holds the query, key and value projections side by
//!   side (columns 0..d, d..2d, 2d..3d); head h owns columns h dh..(h + 1) dh of each, dh = d / H.
//!   attnflow's head h is square: Q_h (K_h) is the transposed query (key) projection with every
//!   row outside the head's dh rows zero, so <Q_h x, K_h y> = q_h(x) . k_h(y) exactly, and
//!   V_h = W_O,h W_V,h, the head's rows of `h.{l}.attn.c_proj.weight` (transposed) times its
//!   value projection; GPT-2's concatenation followed by c_proj is the sum of the heads' V_h.
//! - `h.{l}.mlp.c_fc.weight` [d, 4d], `h.{l}.mlp.c_fc.bias` [4d], `h.{l}.mlp.c_proj.weight`
//!   [4d, d]: A = c_fc^T, b = c_fc.bias, W = c_proj^T in W sigma(A x + b), sigma GPT-2's tanh GELU.
//! - `wte.weight` [vocab, d]: token embeddings, the initial tokens of a prompt.
//!
//! Dropped: the biases of c_attn and of both c_proj, the position embeddings, and the layer
//! norms' gains and biases (the tokens are normalised onto the sphere instead). Names are
//! accepted bare or with the `transformer.` prefix (GPT2LMHeadModel); f32, f16, bf16 and f64
//! tensors are read and converted to f64.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::{Activation, Mlp, Weights};
use crate::error::{Result, file_error, input};

/// The name prefixes tried, in order.
const PREFIXES: [&str; 2] = ["", "transformer."];

/// A safetensors file read into memory.
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        use std::io::Read;
        // A regular file only (a FIFO would block, /dev/zero never end), whose header fits
        // in it, read whole only when the machine can hold it.
        let mut file = crate::output::open_input(path)?;
        let len = file
            .metadata()
            .map_err(|e| file_error(path, format!("cannot read the safetensors file: {e}")))?
            .len();
        let mut head = [0u8; 8];
        file.read_exact(&mut head).map_err(|_| {
            file_error(
                path,
                format!(
                    "is not a safetensors file: {len} bytes, shorter than the 8-byte length of \
                     its header"
                ),
            )
        })?;
        let header = u64::from_le_bytes(head);
        if header > len - 8 || header > 100 << 20 {
            return Err(file_error(
                path,
                format!(
                    "is not a safetensors file: its first 8 bytes give a header of {header} \
                     bytes, {}",
                    if header > len - 8 {
                        format!("more than the {} bytes that follow", len - 8)
                    } else {
                        "more than the format's 100 MiB".to_string()
                    }
                ),
            ));
        }
        crate::limits::ensure_memory(&format!("reading {}", path.display()), len)?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(usize::MAX));
        bytes.extend_from_slice(&head);
        file.take(len - 8)
            .read_to_end(&mut bytes)
            .map_err(|e| file_error(path, format!("cannot read the safetensors file: {e}")))?;
        let ck = SafetensorsFile {
            path: path.to_path_buf(),
            bytes,
        };
        ck.tensors()?;
        Ok(ck)
    }

    fn tensors(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes)
            .map_err(|e| file_error(&self.path, format!("is not a safetensors file: {e}")))
    }

    /// The tensor `name` (bare or with a known prefix) as f64, with its shape; None if absent.
    fn find(&self, name: &str) -> Result<Option<(Vec<usize>, Vec<f64>)>> {
        let st = self.tensors()?;
        for prefix in PREFIXES {
            let full = format!("{prefix}{name}");
            let Ok(view) = st.tensor(&full) else {
                continue;
            };
            let raw = view.data();
            let data: Vec<f64> = match view.dtype() {
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
                    .collect(),
                Dtype::F16 => raw
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64())
                    .collect(),
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f64())
                    .collect(),
                other => {
                    return Err(file_error(
                        &self.path,
                        format!("tensor '{full}' has dtype {other:?}: f32, f16, bf16 or f64 only"),
                    ));
                }
            };
            if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
                return Err(file_error(
                    &self.path,
                    format!(
                        "tensor '{full}': element {bad} is {}: weights must be finite",
                        data[bad]
                    ),
                ));
            }
            return Ok(Some((view.shape().to_vec(), data)));
        }
        Ok(None)
    }

    /// The tensor `name` with exactly `shape`, refused by name when missing or misshapen.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let (got, data) = self.find(name)?.ok_or_else(|| {
            file_error(
                &self.path,
                format!("tensor '{name}' is missing (also looked for 'transformer.{name}')"),
            )
        })?;
        if got != shape {
            return Err(file_error(
                &self.path,
                format!("tensor '{name}' has shape {got:?}, expected {shape:?}"),
            ));
        }
        Ok(data)
    }

    /// The number of layers L: h.0 .. h.{L-1} hold `attn.c_attn.weight`.
    pub fn layers(&self) -> Result<usize> {
        let st = self.tensors()?;
        let has = |l: usize| {
            PREFIXES
                .iter()
                .any(|p| st.tensor(&format!("{p}h.{l}.attn.c_attn.weight")).is_ok())
        };
        let layers = (0..).take_while(|&l| has(l)).count();
        // A tensor of a later layer would be silently dropped: refused by name.
        let mut stray: Vec<(usize, &str)> = st
            .names()
            .into_iter()
            .filter_map(|name| {
                let bare = PREFIXES
                    .iter()
                    .rev()
                    .find_map(|p| name.strip_prefix(p).filter(|_| !p.is_empty()))
                    .unwrap_or(name);
                let l = bare
                    .strip_prefix("h.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()?;
                (l >= layers).then_some((l, name))
            })
            .collect();
        stray.sort();
        if let Some((l, name)) = stray.first()
            && layers > 0
        {
            return Err(file_error(
                &self.path,
                format!(
                    "tensor '{name}' belongs to layer {l}, but the layers run h.0 .. h.{} \
                     (h.{layers}.attn.c_attn.weight is missing): a GPT-2 checkpoint's layers \
                     are numbered without gaps; remove the stray tensors, or add the missing \
                     layers",
                    layers - 1
                ),
            ));
        }
        if layers == 0 {
            return Err(file_error(
                &self.path,
                "tensor 'h.0.attn.c_attn.weight' is missing (also looked for \
                 'transformer.h.0.attn.c_attn.weight'): not a GPT-2-style checkpoint",
            ));
        }
        Ok(layers)
    }

    /// The heads of every layer, [L][H], in dimension d (module doc for the mapping).
    pub fn attention(&self, d: usize, heads: usize) -> Result<Vec<Vec<Weights>>> {
        if heads == 0 || !d.is_multiple_of(heads) {
            return Err(input(format!(
                "--heads {heads} must divide d = {d} for a GPT-2 checkpoint (head size d / H)"
            )));
        }
        let dh = d / heads;
        (0..self.layers()?)
            .map(|l| {
                let qkv = self.tensor(&format!("h.{l}.attn.c_attn.weight"), &[d, 3 * d])?;
                let proj = self.tensor(&format!("h.{l}.attn.c_proj.weight"), &[d, d])?;
                Ok((0..heads)
                    .map(|h| head(&qkv, &proj, d, dh, h))
                    .collect::<Vec<_>>())
            })
            .collect()
    }

    /// The perceptron of every layer, [L], in dimension d.
    pub fn perceptron(&self, d: usize, activation: Activation) -> Result<Vec<Mlp>> {
        let layers = self.layers()?;
        let first = "h.0.mlp.c_fc.bias";
        let (shape, _) = self.find(first)?.ok_or_else(|| {
            file_error(
                &self.path,
                format!("tensor '{first}' is missing (also looked for 'transformer.{first}')"),
            )
        })?;
        let m = match shape.as_slice() {
            [m] if *m > 0 => *m,
            other => {
                return Err(file_error(
                    &self.path,
                    format!("tensor '{first}' has shape {other:?}, expected [hidden]"),
                ));
            }
        };
        (0..layers)
            .map(|l| {
                let fc = self.tensor(&format!("h.{l}.mlp.c_fc.weight"), &[d, m])?;
                let b = self.tensor(&format!("h.{l}.mlp.c_fc.bias"), &[m])?;
                let proj = self.tensor(&format!("h.{l}.mlp.c_proj.weight"), &[m, d])?;
                // A [m, d] = c_fc^T; W [d, m] = c_proj^T.
                Ok(Mlp {
                    hidden: m,
                    a: transpose(&fc, d, m),
                    w: transpose(&proj, m, d),
                    b,
                    activation,
                })
            })
            .collect()
    }

    /// The rows `tokens` of the embedding tensor `name` ([vocab, d]; `wte` reads `wte.weight`):
    /// (d, [n, d] row-major).
    pub fn embedding(&self, name: &str, tokens: &[u64]) -> Result<(usize, Vec<f64>)> {
        let full = if name.ends_with(".weight") {
            name.to_string()
        } else {
            format!("{name}.weight")
        };
        let (shape, data) = match self.find(&full)? {
            Some(t) => t,
            None => self.find(name)?.ok_or_else(|| {
                file_error(
                    &self.path,
                    format!(
                        "tensor '{full}' is missing (also looked for 'transformer.{full}' \
                         and '{name}')"
                    ),
                )
            })?,
        };
        let (vocab, d) = match shape.as_slice() {
            [v, d] if *v > 0 && *d > 0 => (*v, *d),
            other => {
                return Err(file_error(
                    &self.path,
                    format!("tensor '{full}' has shape {other:?}, expected [vocab, d]"),
                ));
            }
        };
        if tokens.is_empty() {
            return Err(input(
                "--tokens is empty: give the prompt's token ids, as 15496,995",
            ));
        }
        let mut x = Vec::with_capacity(tokens.len() * d);
        for &t in tokens {
            if t >= vocab as u64 {
                return Err(file_error(
                    &self.path,
                    format!(
                        "token id {t} is out of range for tensor '{full}' (vocab {vocab}: ids 0..{})",
                        vocab - 1
                    ),
                ));
            }
            let t = t as usize;
            x.extend_from_slice(&data[t * d..(t + 1) * d]);
        }
        Ok((d, x))
    }
}

/// Head h of a layer: c_attn [d, 3d] and c_proj [d, d], both Conv1D (y = x W).
fn head(qkv: &[f64], proj: &[f64], d: usize, dh: usize, h: usize) -> Weights {
    let (mut q, mut k, mut v) = (vec![0.0; d * d], vec![0.0; d * d], vec![0.0; d * d]);
    let cols = h * dh..(h + 1) * dh;
    // (Q_h x)_r = sum_c c_attn[c][r] x_c for r in the head's columns, 0 elsewhere.
    for r in cols.clone() {
        for c in 0..d {
            q[r * d + c] = qkv[c * 3 * d + r];
            k[r * d + c] = qkv[c * 3 * d + d + r];
        }
    }
    // V_h[o][c] = sum_{j in head} c_proj[j][o] c_attn[c][2d + j].
    for o in 0..d {
        for c in 0..d {
            v[o * d + c] = cols
                .clone()
                .map(|j| proj[j * d + o] * qkv[c * 3 * d + 2 * d + j])
                .sum();
        }
    }
    Weights { d, q, k, v }
}

/// The transpose of a row-major rows x cols matrix.
fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// Splits `safetensors:FILE[:SUFFIX]` where SUFFIX is one of `suffixes` (the file may hold
/// colons): (FILE, the suffix given).
pub fn split_spec<'a>(rest: &'a str, suffixes: &[&'a str]) -> (&'a str, Option<&'a str>) {
    for s in suffixes {
        if let Some(file) = rest.strip_suffix(s).and_then(|f| f.strip_suffix(':')) {
            return (file, Some(s));
        }
    }
    (rest, None)
}

/// Refuses `safetensors:FILE:FORMAT` with a FORMAT attnflow does not know (`llama`), instead of
/// reading `FILE:FORMAT` as a file name that does not exist. `known`: the suffixes taken.
pub fn check_format(option: &str, rest: &str, known: &[&str]) -> Result<()> {
    if let Some((file, tail)) = rest.rsplit_once(':')
        && !tail.is_empty()
        && tail
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !known.contains(&tail)
        && !Path::new(rest).exists()
    {
        return Err(input(format!(
            "{option} safetensors:{rest}: unknown format '{tail}': attnflow reads GPT-2 \
             checkpoints, as safetensors:{file}:{}",
            known.join(" or :")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_split() {
        assert_eq!(
            transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
        assert_eq!(
            split_spec("a:b.st:gpt2", &["gpt2"]),
            ("a:b.st", Some("gpt2"))
        );
        assert_eq!(split_spec("a.st", &["gpt2"]), ("a.st", None));
    }
}
