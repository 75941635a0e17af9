//! Sizes checked before anything is allocated: products of sizes that overflow, and jobs that
//! need more host memory than the machine has, are refused with one line naming the sizes and
//! the limit (instead of an abort on a failed allocation).

use crate::error::{Error, Result};

/// The product of named sizes, or an error naming them when it overflows.
pub fn product(what: &str, parts: &[(&str, usize)]) -> Result<u64> {
    let mut p: u64 = 1;
    for (_, v) in parts {
        p = p
            .checked_mul(*v as u64)
            .ok_or_else(|| overflow(what, parts))?;
    }
    Ok(p)
}

fn overflow(what: &str, parts: &[(&str, usize)]) -> Error {
    let named: Vec<String> = parts.iter().map(|(n, v)| format!("{n} = {v}")).collect();
    Error::Limit(format!(
        "{what}: {} overflows a 64-bit size; choose smaller sizes",
        named.join(" x ")
    ))
}

/// Bytes of memory the system can give this process now (Linux: MemAvailable), if known.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a job that needs `bytes` of host memory when the machine has less available.
pub fn ensure_memory(what: &str, bytes: u64) -> Result<()> {
    ensure_memory_within(what, bytes, available_bytes())
}

/// [`ensure_memory`] against a given budget (None: only absurd sizes, above 2^50 bytes, are
/// refused).
pub fn ensure_memory_within(what: &str, bytes: u64, available: Option<u64>) -> Result<()> {
    let limit = available.unwrap_or(1 << 50);
    if bytes > limit {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        return Err(Error::Limit(format!(
            "{what} needs about {:.1} GiB of memory, more than the {:.1} GiB {}; choose smaller \
             sizes",
            gib(bytes),
            gib(limit),
            if available.is_some() {
                "this machine has available"
            } else {
                "attnflow allows"
            }
        )));
    }
    Ok(())
}

/// Bytes the host holds for a run of `batch` systems of n tokens in d dimensions with `heads`
/// heads and a perceptron of `hidden` units: the tokens in f64 (initial state and the
/// reference's stages, about 8 copies), every head's Q, K, V and K^T Q (4 d x d f64), the
/// perceptron's weights and, on the GPU, one hidden value per token and unit.
pub fn run_bytes(batch: usize, n: usize, d: usize, heads: usize, hidden: usize) -> Result<u64> {
    let what = "the run";
    let tokens = product(what, &[("batch", batch), ("n", n), ("d", d)])?;
    let weights = product(what, &[("heads", heads), ("d", d), ("d", d)])?;
    let mlp = product(what, &[("hidden", hidden), ("d", d)])?;
    let hidden_values = product(what, &[("batch", batch), ("n", n), ("hidden", hidden)])?;
    [
        tokens.checked_mul(8 * 8),
        weights.checked_mul(4 * 8),
        mlp.checked_mul(2 * 8),
        hidden_values.checked_mul(4),
    ]
    .into_iter()
    .try_fold(0u64, |acc, b| acc.checked_add(b?))
    .ok_or_else(|| {
        overflow(
            what,
            &[("batch", batch), ("n", n), ("d", d), ("heads", heads)],
        )
    })
}

/// Refuses a layer of `seeds` draws of n keys and m queries in dimension d (with its d x d
/// weights) whose memory, at `bytes_per_value` per token coordinate and 32 bytes per weight,
/// does not fit, or whose sizes overflow: the check of `attend` and `cfm` before anything is
/// allocated.
pub fn ensure_layer_memory(
    what: &str,
    seeds: usize,
    n: usize,
    m: usize,
    d: usize,
    bytes_per_value: u64,
) -> Result<()> {
    let tokens = product(
        what,
        &[("seeds", seeds), ("n + m", n.saturating_add(m)), ("d", d)],
    )?;
    let weights = product(what, &[("d", d), ("d", d)])?;
    ensure_memory(
        what,
        tokens
            .saturating_mul(bytes_per_value)
            .saturating_add(weights.saturating_mul(32)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused_with_their_names() {
        let e = run_bytes(100_000_000_000, 1_000_000_000_000, 3, 1, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("batch = 100000000000") && e.contains("overflows"),
            "{e}"
        );
        let bytes = run_bytes(1, 1_000_000_000_000, 3, 1, 0).unwrap();
        let e = ensure_memory_within("the run", bytes, Some(1 << 34))
            .unwrap_err()
            .to_string();
        assert!(e.contains("GiB") && e.contains("available"), "{e}");
        // The default job fits anywhere.
        let bytes = run_bytes(1, 4096, 3, 1, 0).unwrap();
        assert!(bytes < 1 << 24);
        ensure_memory_within("the run", bytes, Some(1 << 30)).unwrap();
    }
}
