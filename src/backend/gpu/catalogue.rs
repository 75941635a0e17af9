//! Every kernel specialisation a GPU can get: the planner (`Specialisation::for_target`) asked
//! for each adapter profile, each d of `profiles::DIMENSIONS` and each mask variant, grouped
//! into the distinct specialisations with the (profile, d, variant) that get each. What
//! tests/gpu_specialisations.rs executes, tests/shaders_validate.rs translates to HLSL and MSL,
//! and `attnflow kernels` lists and emits.

use std::collections::HashMap;

use super::codegen::{AttentionKernel, Reduce, Variant};
use super::kernels::{Dialect, Specialisation};
use super::profiles::{AdapterProfile, DIMENSIONS, PROFILES};

/// The mask variants a model can ask for: full, causal, causal with ALiBi (ALiBi needs the
/// causal mask). SA and USA, the geometry and the weights are runtime flags: the same code.
/// Causal and causal with ALiBi get the same kernel except on the hardware profiles' N-body
/// shapes (`Variant::for_kernel`).
pub const VARIANTS: [Variant; 3] = [
    Variant {
        causal: false,
        alibi: false,
    },
    Variant {
        causal: true,
        alibi: false,
    },
    Variant {
        causal: true,
        alibi: true,
    },
];

/// The name of a variant in file names and listings.
pub fn variant_name(v: Variant) -> &'static str {
    match (v.causal, v.alibi) {
        (false, _) => "full",
        (true, false) => "causal",
        (true, true) => "causal-alibi",
    }
}

/// One distinct specialisation and who gets it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub spec: Specialisation,
    /// Every (profile, d, variant) the planner gives this specialisation.
    pub uses: Vec<(&'static AdapterProfile, usize, Variant)>,
}

impl Entry {
    /// The names of the profiles that get it, in the order of `PROFILES`, without repeats.
    pub fn profiles(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for (p, _, _) in &self.uses {
            if !names.contains(&p.name) {
                names.push(p.name);
            }
        }
        names
    }
}

/// Every distinct specialisation over `PROFILES` x `DIMENSIONS` x `VARIANTS` (unchecked
/// modules; the runtime checks do not change the text), in order of first appearance.
pub fn specialisations() -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut index: HashMap<Specialisation, usize> = HashMap::new();
    for profile in PROFILES {
        for &d in DIMENSIONS {
            for variant in VARIANTS {
                let spec = Specialisation::for_target(d, &profile.target(), variant, false);
                let i = *index.entry(spec).or_insert_with(|| {
                    out.push(Entry {
                        spec,
                        uses: Vec::new(),
                    });
                    out.len() - 1
                });
                out[i].uses.push((profile, d, variant));
            }
        }
    }
    out
}

/// The specialisation one profile gets for d and a variant.
pub fn specialisation(profile: &AdapterProfile, d: usize, variant: Variant) -> Specialisation {
    Specialisation::for_target(d, &profile.target(), variant, false)
}

/// A one-line description of an attention kernel's shape: kernel, tile, workgroup memory and
/// the features it uses.
pub fn describe_attention(kernel: &AttentionKernel) -> String {
    match kernel {
        AttentionKernel::Nbody(k) => format!(
            "nbody: {} queries/invocation, {} queries/workgroup, {} keys/tile, {} B, no subgroups",
            k.r,
            k.queries_per_group(),
            k.tk,
            k.workgroup_bytes()
        ),
        AttentionKernel::Block(k) => format!(
            "flash2: {}x{} block (queries x keys), {} d-slices, {} B, {}",
            k.bq,
            k.bk,
            k.ds,
            k.workgroup_bytes(),
            match k.reduce {
                Reduce::Subgroup => format!("subgroup shuffles over {} lanes", k.sc * k.ds),
                Reduce::Workgroup => "workgroup-memory reductions".to_string(),
            }
        ),
    }
}

/// The file name of one kernel of a specialisation as a profile gets it:
/// `nvidia-desktop.attention.d64.causal.wgsl`; kernels that do not depend on the mask have no
/// mask in their name.
pub fn file_name(profile: &str, kernel: &str, d: usize, variant: Option<Variant>) -> String {
    match variant {
        Some(v) => format!("{profile}.{kernel}.d{d}.{}.wgsl", variant_name(v)),
        None => format!("{profile}.{kernel}.d{d}.wgsl"),
    }
}

/// One emitted kernel file.
#[derive(Clone, Debug)]
pub struct Emitted {
    pub file: String,
    pub profile: &'static str,
    pub kernel: &'static str,
    pub d: usize,
    /// None for the kernels whose code does not depend on the mask.
    pub variant: Option<Variant>,
    /// The bind group layout in letters (`reflect::Layout::letters`): u uniform, d uniform
    /// with a dynamic offset, r read-only storage, w read-write storage, in binding order.
    pub layout: String,
    pub workgroup_bytes: u32,
    pub subgroups: bool,
    pub text: String,
}

/// Every kernel of every profile's specialisations in spec-conformant WGSL (`Dialect::Spec`):
/// one per (profile, kernel, d), and per variant for the attention kernel.
pub fn emit_all(dialect: Dialect) -> Vec<Emitted> {
    let mut out = Vec::new();
    for profile in PROFILES {
        for &d in DIMENSIONS {
            for (i, variant) in VARIANTS.into_iter().enumerate() {
                let spec = specialisation(profile, d, variant);
                for (kernel, layout, text) in spec.wgsl(dialect) {
                    let per_variant = kernel == "attention";
                    if !per_variant && i > 0 {
                        continue;
                    }
                    let v = per_variant.then_some(variant);
                    let (workgroup_bytes, subgroups) = match kernel {
                        "attention" => (
                            spec.attention.workgroup_bytes(),
                            spec.attention.uses_subgroups(),
                        ),
                        "pair_stats" => (spec.pairs.workgroup_bytes(), false),
                        _ => (0, false),
                    };
                    out.push(Emitted {
                        file: file_name(profile.name, kernel, d, v),
                        profile: profile.name,
                        kernel,
                        d,
                        variant: v,
                        layout,
                        workgroup_bytes,
                        subgroups,
                        text,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::profiles::{PORTABLE_SUBGROUP_LANES, PORTABLE_WORKGROUP_BYTES};

    #[test]
    fn every_specialisation_fits_llvmpipe_and_the_profile_that_gets_it() {
        let all = specialisations();
        for e in &all {
            let bytes = e
                .spec
                .attention
                .workgroup_bytes()
                .max(e.spec.pairs.workgroup_bytes());
            assert!(bytes <= PORTABLE_WORKGROUP_BYTES, "{e:?}");
            for (p, _, _) in &e.uses {
                assert!(bytes <= p.workgroup_bytes, "{} {e:?}", p.name);
            }
            if let AttentionKernel::Block(k) = e.spec.attention
                && k.reduce == Reduce::Subgroup
            {
                assert!(k.sc * k.ds <= PORTABLE_SUBGROUP_LANES, "{k:?}");
                for (p, _, _) in &e.uses {
                    let (min, _) = p.subgroups.expect("a profile with subgroups");
                    assert!(k.sc * k.ds <= min, "{} {k:?}", p.name);
                }
            }
        }
        // Every (profile, d, variant) is in exactly one entry.
        let uses: usize = all.iter().map(|e| e.uses.len()).sum();
        assert_eq!(uses, PROFILES.len() * DIMENSIONS.len() * VARIANTS.len());
    }

    #[test]
    fn the_naga_text_is_the_spec_text_without_the_subgroups_directive() {
        for e in specialisations() {
            let spec = e.spec.texts(Dialect::Spec);
            let naga = e.spec.texts(Dialect::Naga);
            for ((name, s), (_, n)) in spec.iter().zip(&naga) {
                let uses = e.spec.attention.uses_subgroups() && *name == "attention";
                assert_eq!(s.contains("subgroupShuffle"), uses, "{name}");
                if uses {
                    assert_eq!(s, &format!("enable subgroups;\n{n}"));
                } else {
                    assert_eq!(s, n);
                }
            }
        }
    }
}
