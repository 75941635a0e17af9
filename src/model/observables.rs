//! Observables of a configuration (MODELS.md §1): the energy E_beta and pairwise cosines.
//!
//! The O(n^2) part is streamed per query by each backend as [`PairStats`] (the `pair_stats`
//! kernel and its twins); this module turns those per-token rows into per-system numbers in
//! f64, identically for every backend.

/// Per-token row of the pair statistics of token i against all tokens j of its system.
///
/// `lse_max` and `lse_sum` hold sum_j exp(beta <x_i, x_j>) = exp(lse_max) * lse_sum in a form
/// that cannot overflow; cosines are between the normalised tokens and exclude j = i.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairStats {
    pub lse_max: f64,
    pub lse_sum: f64,
    pub min_cos: f64,
    pub sum_cos: f64,
    /// sum_j <x_i, x_j> over all j (j = i included), for the beta = 0 energy.
    pub sum_dot: f64,
}

/// The per-system observables written to metrics.csv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// E_beta = 1/(2 beta n^2) sum_{i,j} exp(beta <x_i, x_j>). At beta = 0 the beta -> 0 limit
    /// with the constant 1/(2 beta) removed: 1/(2 n^2) sum_{i,j} <x_i, x_j>.
    pub energy: f64,
    /// Mean of cos(x_i, x_j) over pairs i != j (1 when n = 1).
    pub mean_cos: f64,
    /// Minimum of cos(x_i, x_j) over pairs i != j (1 when n = 1).
    pub min_cos: f64,
}

/// Reduces the per-token rows of one system (length n) to its observables.
pub fn summarise(rows: &[PairStats], beta: f64) -> Metrics {
    let n = rows.len() as f64;
    let energy = if beta > 0.0 {
        // log sum_i exp(lse_max_i) * lse_sum_i, then one exp at the end.
        let top = rows
            .iter()
            .map(|r| r.lse_max)
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = rows
            .iter()
            .map(|r| (r.lse_max - top).exp() * r.lse_sum)
            .sum();
        (top + s.ln() - (2.0 * beta * n * n).ln()).exp()
    } else {
        rows.iter().map(|r| r.sum_dot).sum::<f64>() / (2.0 * n * n)
    };
    if rows.len() < 2 {
        return Metrics {
            energy,
            mean_cos: 1.0,
            min_cos: 1.0,
        };
    }
    let mean_cos = rows.iter().map(|r| r.sum_cos).sum::<f64>() / (n * (n - 1.0));
    let min_cos = rows.iter().map(|r| r.min_cos).fold(f64::INFINITY, f64::min);
    Metrics {
        energy,
        mean_cos,
        min_cos,
    }
}
