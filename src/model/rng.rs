//! A counter-based random number generator: the value at a key is a pure function of the
//! key, so the GPU (shaders/common.wgsl, `rng_*`) and the CPU draw the same numbers for the
//! same seed without storing or uploading them: random attention weights redrawn at every
//! layer, and the noise of Euler-Maruyama steps.
//!
//! The mixing function is the PCG hash of Jarzynski and Olano ("Hash functions for GPU
//! rendering", JCGT 2020), chained over the words of the key. Uniforms take the top 24 bits
//! (exact in f32), normals use Box-Muller on two uniforms.

/// What a draw is for; part of the key so that streams never overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Stream {
    /// Query matrix of a random head.
    Query = 1,
    /// Key matrix of a random head.
    Key = 2,
    /// Value matrix of a random head.
    Value = 3,
    /// Noise independent per token.
    Noise = 4,
    /// Noise common to all tokens of a system.
    CommonNoise = 5,
    /// The seed of one system's weights, for weights drawn per system of an ensemble.
    System = 6,
}

/// The PCG hash of one word.
#[inline]
pub fn pcg(x: u32) -> u32 {
    let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The hash of a key (seed, stream, a, b, index).
#[inline]
pub fn hash(seed: u64, stream: Stream, a: u32, b: u32, index: u32) -> u32 {
    let mut h = pcg(index);
    h = pcg(h ^ b);
    h = pcg(h ^ a);
    h = pcg(h ^ stream as u32);
    h = pcg(h ^ (seed >> 32) as u32);
    pcg(h ^ seed as u32)
}

/// The seed of system `system`'s weights when every system of an ensemble draws its own
/// (`--qkv random-per-system:SEED`): two hashes of the key (seed, system), so that it depends
/// on the seed and the system's index only, never on the batch size.
pub fn system_seed(seed: u64, system: u32) -> u64 {
    let hi = hash(seed, Stream::System, system, 0, 0);
    let lo = hash(seed, Stream::System, system, 0, 1);
    (u64::from(hi) << 32) | u64::from(lo)
}

/// A uniform in (0, 1] from a hash: the top 24 bits, plus one, over 2^24.
#[inline]
pub fn uniform(h: u32) -> f64 {
    f64::from((h >> 8) + 1) / 16_777_216.0
}

/// A standard normal at a key (Box-Muller on the uniforms at indices 2 index and
/// 2 index + 1).
#[inline]
pub fn normal(seed: u64, stream: Stream, a: u32, b: u32, index: u32) -> f64 {
    let u1 = uniform(hash(seed, stream, a, b, index.wrapping_mul(2)));
    let u2 = uniform(hash(
        seed,
        stream,
        a,
        b,
        index.wrapping_mul(2).wrapping_add(1),
    ));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes of nearby keys look independent: every output bit is set half the time, and
    /// 20000 consecutive indices give 20000 different hashes.
    #[test]
    fn hashes_of_nearby_keys_are_balanced_and_distinct() {
        let hashes: Vec<u32> = (0..20_000)
            .map(|i| hash(1, Stream::Query, 0, 0, i))
            .collect();
        for bit in 0..32 {
            let ones = hashes.iter().filter(|h| (*h >> bit) & 1 == 1).count() as f64;
            let frac = ones / hashes.len() as f64;
            assert!(
                (frac - 0.5).abs() < 0.02,
                "bit {bit} set in {frac} of hashes"
            );
        }
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), hashes.len());
        assert_ne!(
            hash(1, Stream::Query, 0, 0, 0),
            hash(2, Stream::Query, 0, 0, 0)
        );
        assert_ne!(
            hash(1, Stream::Query, 0, 0, 0),
            hash(1, Stream::Key, 0, 0, 0)
        );
    }

    /// Per-system seeds differ from system to system and from seed to seed, and depend on
    /// (seed, system) only.
    #[test]
    fn system_seeds_are_distinct() {
        let mut seeds: Vec<u64> = (0..2000u32)
            .flat_map(|b| {
                [
                    system_seed(1, b),
                    system_seed(2, b),
                    system_seed(1 << 40, b),
                ]
            })
            .collect();
        assert_eq!(system_seed(7, 3), system_seed(7, 3));
        let total = seeds.len();
        seeds.sort_unstable();
        seeds.dedup();
        assert_eq!(seeds.len(), total);
    }

    /// Normals from the hash have mean 0 and variance 1 (100000 draws: standard errors
    /// 0.003 and 0.0045).
    #[test]
    fn normals_are_standard() {
        let n = 100_000u32;
        let draws: Vec<f64> = (0..n).map(|i| normal(7, Stream::Noise, 3, 5, i)).collect();
        let mean = draws.iter().sum::<f64>() / f64::from(n);
        let var = draws.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / f64::from(n);
        assert!(mean.abs() < 0.015, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        let tail = draws.iter().filter(|z| z.abs() > 1.96).count() as f64 / f64::from(n);
        assert!((tail - 0.05).abs() < 0.005, "P(|z| > 1.96) = {tail}");
    }
}
