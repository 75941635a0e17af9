//! `attnflow kernels`: the kernel specialisations each adapter profile gets, and their WGSL.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct KernelsArgs {
    /// Write every kernel of every profile's specialisations as spec-conformant WGSL into
    /// DIR, one file per profile, kernel, d (and mask, for the attention kernel), e.g.
    /// `nvidia-desktop.attention.d64.causal.wgsl`, and DIR/index.json describing each file.
    #[arg(long, value_name = "DIR")]
    emit: Option<PathBuf>,
    /// Only this profile (see the listing for the names).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

#[cfg(not(feature = "gpu"))]
pub fn kernels(_args: KernelsArgs) -> Result<()> {
    bail!("this attnflow was built without the gpu feature: it has no GPU kernels")
}

#[cfg(feature = "gpu")]
pub fn kernels(args: KernelsArgs) -> Result<()> {
    use attnflow::gpu::catalogue::{self, VARIANTS, variant_name};
    use attnflow::gpu::codegen::AttentionKernel;
    use attnflow::gpu::kernels::Dialect;
    use attnflow::gpu::profiles::{self, DIMENSIONS, PROFILES};

    if let Some(name) = &args.profile
        && profiles::AdapterProfile::named(name).is_none()
    {
        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        bail!(
            "--profile {name}: no such adapter profile; the profiles are {}",
            names.join(", ")
        );
    }
    let wanted = |name: &str| args.profile.as_deref().is_none_or(|p| p == name);

    if let Some(dir) = &args.emit {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut index = Vec::new();
        let mut written = 0;
        for e in catalogue::emit_all(Dialect::Spec) {
            if !wanted(e.profile) {
                continue;
            }
            let path = dir.join(&e.file);
            attnflow::output::write_atomic(&path, |tmp| Ok(std::fs::write(tmp, &e.text)?))?;
            index.push(serde_json::json!({
                "file": e.file,
                "profile": e.profile,
                "kernel": e.kernel,
                "d": e.d,
                "mask": e.variant.map(variant_name),
                "layout": e.layout,
                "workgroup_bytes": e.workgroup_bytes,
                "subgroups": e.subgroups,
            }));
            written += 1;
        }
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "dialect": "WGSL spec (Dawn/Tint); wgpu/naga 30 compiles the same text without \
                        its `enable subgroups;` line",
            "layout_letters": "u uniform, d uniform with dynamic offset, r read-only storage, \
                               w read-write storage, in binding order (group 0)",
            "files": index,
        }))?;
        attnflow::output::write_atomic(&dir.join("index.json"), |tmp| {
            Ok(std::fs::write(tmp, json)?)
        })?;
        outln!(
            "wrote {written} kernels and index.json to {} (spec-conformant WGSL)",
            dir.display()
        );
        return Ok(());
    }

    let all = catalogue::specialisations();
    outln!(
        "Kernel specialisations by adapter profile (d in {:?}; masks full, causal, causal \
         with ALiBi; a causal kernel carries ALiBi, slope 0 without it, except the hardware \
         profiles' nbody kernels). Every shape fits {} bytes of workgroup memory and {} invocations; \
         subgroup reductions span at most {} lanes.",
        DIMENSIONS,
        profiles::PORTABLE_WORKGROUP_BYTES,
        profiles::PORTABLE_INVOCATIONS,
        profiles::PORTABLE_SUBGROUP_LANES,
    );
    for profile in PROFILES.iter().filter(|p| wanted(p.name)) {
        outln!();
        outln!(
            "{}: {} (offers {} B workgroup memory, {} invocations, subgroups {})",
            profile.name,
            profile.description,
            profile.workgroup_bytes,
            profile.invocations,
            profile
                .subgroups
                .map_or("none".to_string(), |(a, b)| if a == b {
                    format!("{a}")
                } else {
                    format!("{a}-{b}")
                })
        );
        outln!("| d | attention kernel | shape | workgroup bytes | features | pair_stats |");
        outln!("|---|---|---|---|---|---|");
        // One row per attention shape, with the d that get it.
        let mut rows: Vec<(AttentionKernel, Vec<usize>, String)> = Vec::new();
        for &d in DIMENSIONS {
            let spec = catalogue::specialisation(profile, d, VARIANTS[0]);
            let pairs = format!(
                "{} tokens/workgroup, {} keys/tile, {} B",
                spec.pairs.queries_per_group(),
                spec.pairs.tk,
                spec.pairs.workgroup_bytes()
            );
            // Shapes equal up to d (the kernel's fields include d): compare descriptions.
            let key = catalogue::describe_attention(&spec.attention);
            match rows
                .iter_mut()
                .find(|(k, _, p)| catalogue::describe_attention(k) == key && *p == pairs)
            {
                Some(row) => row.1.push(d),
                None => rows.push((spec.attention, vec![d], pairs)),
            }
        }
        for (kernel, ds, pairs) in rows {
            let ds: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
            let (name, shape, features) = match kernel {
                AttentionKernel::Nbody(k) => (
                    "nbody",
                    format!(
                        "{} queries/invocation, {} queries x {} keys per tile",
                        k.r,
                        k.queries_per_group(),
                        k.tk
                    ),
                    "-".to_string(),
                ),
                AttentionKernel::Block(k) => (
                    "flash2",
                    format!(
                        "{} queries x {} keys, {} d-slice{}",
                        k.bq,
                        k.bk,
                        k.ds,
                        if k.ds > 1 { "s" } else { "" }
                    ),
                    if kernel.uses_subgroups() {
                        format!("subgroups (shuffles over {} lanes)", k.sc * k.ds)
                    } else {
                        "workgroup-memory reductions".to_string()
                    },
                ),
            };
            outln!(
                "| {} | {name} | {shape} | {} | {features} | {pairs} |",
                ds.join(", "),
                kernel.workgroup_bytes()
            );
        }
    }
    let texts: std::collections::HashSet<String> = all
        .iter()
        .map(|e| e.spec.attention.source(e.spec.variant))
        .collect();
    outln!();
    outln!(
        "{} distinct specialisations ({} distinct attention kernels) over {} profiles x {} d \
         x {} masks; tests/gpu_specialisations.rs executes every one on llvmpipe.",
        all.len(),
        texts.len(),
        PROFILES.len(),
        DIMENSIONS.len(),
        VARIANTS.len()
    );
    outln!("Shared by several profiles:");
    let mut shared: Vec<(Vec<&str>, usize)> = Vec::new();
    for e in &all {
        let names = e.profiles();
        if names.len() > 1 {
            match shared.iter_mut().find(|(n, _)| *n == names) {
                Some(s) => s.1 += 1,
                None => shared.push((names, 1)),
            }
        }
    }
    for (names, count) in shared {
        outln!("  {count} specialisations: {}", names.join(", "));
    }
    Ok(())
}
