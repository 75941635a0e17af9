//! Every WGSL kernel parses and validates with naga, for the dimensions, tile sizes and
//! variants the GPU backend generates, on any machine (no GPU needed).

use attnflow::gpu::codegen::{AttentionKernel, PairKernel, Profile, Target, Variant};
use attnflow::gpu::shaders;
use wgpu::naga;

fn validate(name: &str, source: &str) -> naga::Module {
    let source = &*shaders::for_naga(source);
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}:\n{}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::SUBGROUP,
    )
    .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
    .subgroup_operations(naga::valid::SubgroupOperationSet::all())
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.emit_to_string(source)));
    module
}

/// The dimensions the tests cover: the N-body kernel's every width, each Block bucket.
const DS: [usize; 14] = [2, 3, 4, 5, 7, 8, 9, 16, 33, 64, 128, 256, 512, 1024];

/// Workgroup memory a module declares, as naga lays it out.
fn workgroup_bytes(module: &naga::Module) -> u32 {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
        .map(|(_, g)| layouter[g.ty].size)
        .sum()
}

#[test]
fn every_shader_parses_and_validates_for_every_specialisation() {
    let mut checked = 0;
    for d in DS {
        for &(name, kernel) in shaders::KERNELS {
            validate(
                &format!("{name}.wgsl (d = {d})"),
                &shaders::source(kernel, d),
            );
            checked += 1;
        }
        // 16 KiB is wgpu's default workgroup memory, 32 KiB llvmpipe's, 48 KiB NVIDIA's.
        for workgroup_bytes in [16384u32, 32768, 49152] {
            for (profile, subgroup_min) in [
                (Profile::Hardware, None),
                (Profile::Hardware, Some(32)),
                (Profile::Software, Some(8)),
            ] {
                let target = Target {
                    workgroup_bytes,
                    subgroup_min,
                    profile,
                };
                let kernel = AttentionKernel::for_dimension(d, &target);
                assert!(
                    kernel.workgroup_bytes() <= workgroup_bytes,
                    "{kernel:?} overflows {workgroup_bytes} bytes"
                );
                for causal in [false, true] {
                    for alibi in [false, true] {
                        let variant = Variant { causal, alibi };
                        validate(
                            &format!("attention {kernel:?} {variant:?}"),
                            &kernel.source(variant),
                        );
                        checked += 1;
                    }
                }
            }
            for profile in [Profile::Hardware, Profile::Software] {
                let target = Target {
                    workgroup_bytes,
                    subgroup_min: None,
                    profile,
                };
                let pairs = PairKernel::for_dimension(d, &target);
                validate(&format!("pair_stats {pairs:?}"), &pairs.source());
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        DS.len() * (shaders::KERNELS.len() + 3 * (3 * 4 + 2))
    );
}

/// A file in shaders/ that no kernel list names would never be compiled or checked.
#[test]
fn every_wgsl_file_is_a_listed_kernel_or_common() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name
            .strip_suffix(".wgsl")
            .expect("only .wgsl files in shaders/");
        assert!(
            stem == "common"
                || shaders::KERNELS.iter().any(|(k, _)| *k == stem)
                || shaders::TEMPLATES.iter().any(|(k, _)| *k == stem)
                || attnflow::gpu::adaptive::KERNELS
                    .iter()
                    .any(|(k, _)| *k == stem),
            "shaders/{name} is not in gpu::shaders::KERNELS, TEMPLATES or gpu::adaptive::KERNELS"
        );
    }
}

/// Adaptive stepping's kernels (one text for every d and profile) validate, translate to HLSL
/// (shader model 6.0) and MSL (2.4), and fit the portable limits.
#[test]
fn adaptive_kernels_translate_to_hlsl_and_msl_within_the_portable_limits() {
    use attnflow::gpu::profiles::{PORTABLE_INVOCATIONS, PORTABLE_WORKGROUP_BYTES};
    for (name, text) in attnflow::gpu::adaptive::KERNELS {
        let module = validate(name, text);
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap();
        let bytes = workgroup_bytes(&module);
        let storage = module
            .global_variables
            .iter()
            .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
            .count();
        let [x, y, z] = module.entry_points[0].workgroup_size;
        assert!(x * y * z <= PORTABLE_INVOCATIONS, "{name}: {x}x{y}x{z}");
        assert!(bytes <= PORTABLE_WORKGROUP_BYTES, "{name}: {bytes} bytes");
        // WebGPU's default maxStorageBuffersPerShaderStage.
        assert!(storage <= 8, "{name}: {storage} storage buffers");
        let mut hlsl = String::new();
        naga::back::hlsl::Writer::new(
            &mut hlsl,
            &naga::back::hlsl::Options {
                shader_model: naga::back::hlsl::ShaderModel::V6_0,
                ..Default::default()
            },
            &naga::back::hlsl::PipelineOptions::default(),
        )
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
        naga::back::msl::write_string(
            &module,
            &info,
            &naga::back::msl::Options {
                lang_version: (2, 4),
                ..Default::default()
            },
            &naga::back::msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
        assert_no_out_of_range_f32(name, text);
    }
}

/// The planned chunks keep a streaming dispatch under llvmpipe's 65535 loop iterations.
#[test]
fn loop_iteration_bounds_allow_long_chunks() {
    for d in DS {
        for target in [Target::LLVMPIPE, Target::NVIDIA] {
            let kernel = AttentionKernel::for_dimension(d, &target);
            let tk = kernel.tile_keys() as usize;
            assert!(
                kernel.loop_iterations(tk) < 65535,
                "d = {d}: one tile is too long"
            );
            let pairs = PairKernel::for_dimension(d, &target);
            assert!(pairs.loop_iterations(pairs.tk as usize) < 65535, "d = {d}");
        }
    }
}

/// Every kernel of every specialisation any adapter profile can get (the catalogue that
/// tests/gpu_specialisations.rs executes): validates as wgpu compiles it, translates to HLSL
/// (DX12, shader model 6.0, which wave intrinsics need) and MSL (Metal 2.4) without error,
/// keeps within the workgroup memory and invocations of every profile that gets it, and its
/// spec-conformant text has no f32 literal outside f32's finite range.
#[test]
fn every_specialisation_translates_to_hlsl_and_msl_and_fits_its_profiles() {
    use attnflow::gpu::catalogue;
    use attnflow::gpu::kernels::Dialect;
    use attnflow::gpu::profiles::{PORTABLE_INVOCATIONS, PORTABLE_WORKGROUP_BYTES};
    use std::collections::HashSet;

    let mut seen = HashSet::new();
    let mut translated = 0;
    for entry in catalogue::specialisations() {
        let spec_texts = entry.spec.wgsl(Dialect::Spec);
        for ((name, _, text), (_, _, spec_text)) in entry.spec.sources().iter().zip(&spec_texts) {
            let who = format!("{name} of {:?} ({:?})", entry.spec, entry.profiles());
            assert_no_out_of_range_f32(&who, spec_text);
            if !seen.insert(text.clone()) {
                continue;
            }
            let module = validate(&who, text);
            let info = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::SUBGROUP,
            )
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap();
            // Workgroup memory and size, as naga lays them out.
            let bytes = workgroup_bytes(&module);
            let [x, y, z] = module.entry_points[0].workgroup_size;
            assert!(x * y * z <= PORTABLE_INVOCATIONS, "{who}: {x}x{y}x{z}");
            assert!(bytes <= PORTABLE_WORKGROUP_BYTES, "{who}: {bytes} bytes");
            for (profile, _, _) in &entry.uses {
                assert!(
                    bytes <= profile.workgroup_bytes,
                    "{who} on {}",
                    profile.name
                );
                assert!(
                    x * y * z <= profile.invocations,
                    "{who} on {}",
                    profile.name
                );
            }
            if *name == "attention" {
                assert_eq!(bytes, entry.spec.attention.workgroup_bytes(), "{who}");
            }
            if *name == "pair_stats" {
                assert_eq!(bytes, entry.spec.pairs.workgroup_bytes(), "{who}");
            }

            let hlsl_options = naga::back::hlsl::Options {
                shader_model: naga::back::hlsl::ShaderModel::V6_0,
                ..Default::default()
            };
            let mut hlsl = String::new();
            naga::back::hlsl::Writer::new(
                &mut hlsl,
                &hlsl_options,
                &naga::back::hlsl::PipelineOptions::default(),
            )
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{who}: HLSL: {e}"));
            let msl_options = naga::back::msl::Options {
                lang_version: (2, 4),
                ..Default::default()
            };
            naga::back::msl::write_string(
                &module,
                &info,
                &msl_options,
                &naga::back::msl::PipelineOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{who}: MSL: {e}"));
            translated += 1;
        }
    }
    eprintln!("{translated} distinct kernels translated to HLSL and MSL");
    assert!(translated > 100, "{translated}");
}

/// A decimal or hex float literal beyond f32's finite range is a shader-creation error under
/// the WGSL spec (Tint enforces it; naga rounds it to infinity or the largest f32).
fn assert_no_out_of_range_f32(who: &str, text: &str) {
    // The code without its line comments.
    let text: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.as_str();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts = c.is_ascii_digit()
            && (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        let hex = text[i..].starts_with("0x") || text[i..].starts_with("0X");
        if hex {
            j += 2;
        }
        // The characters of a literal: digits (hex digits after 0x), the point, the exponent
        // letter and its sign.
        let exponent: &[u8] = if hex { b"pP" } else { b"eE" };
        while j < bytes.len() {
            let c = bytes[j];
            let digit = if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            };
            let sign = (c == b'+' || c == b'-') && exponent.contains(&bytes[j - 1]);
            if !(digit || c == b'.' || exponent.contains(&c) || sign) {
                break;
            }
            j += 1;
        }
        let literal = &text[i..j];
        let value = if hex {
            hex_float(literal)
        } else {
            literal.parse::<f64>().ok()
        };
        if let Some(v) = value {
            assert!(
                v.abs() <= f32::MAX as f64,
                "{who}: the literal {literal} is outside f32's finite range"
            );
        }
        i = j.max(i + 1);
    }
}

/// The value of a WGSL hex float literal `0xH.HpE` (None for a hex integer).
fn hex_float(literal: &str) -> Option<f64> {
    let body = &literal[2..];
    let (mantissa, exp) = body.split_once(['p', 'P'])?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp.trim_end_matches(['f', 'h']).parse().ok()?))
}

#[test]
fn the_out_of_range_check_catches_the_old_lowest_f32() {
    let caught = std::panic::catch_unwind(|| {
        assert_no_out_of_range_f32("old", "const F32_LOWEST: f32 = -3.4028235e38;")
    });
    assert!(caught.is_err());
    assert_no_out_of_range_f32("new", "const F32_LOWEST: f32 = -0x1.fffffep+127f;");
    assert_no_out_of_range_f32("comment", "// not code: -3.4028235e38");
    assert_no_out_of_range_f32(
        "max",
        "let a = 3.40282346e38; let b = 1e-3; let c = 0x7f800000u;",
    );
    assert_eq!(hex_float("0x1.fffffep+127"), Some(f32::MAX as f64));
}

/// WGSL's `&&` and `||` short-circuit, so Tint (Chrome's WebGPU) turns each into a branch of
/// its own. The causal FlashAttention-2 kernels for d = 9-32 once masked their 32 scores per
/// invocation with `kin && start + kj <= si`: SwiftShader's compiler never finished them and
/// Chrome lost the device (docs/gpu-portability.md). The masks use `&` now; a generated
/// kernel has at most a few short-circuit operators, none per score, key or query.
#[test]
fn generated_kernels_have_no_short_circuit_per_score() {
    const MOST: usize = 3;
    let short_circuits = |module: &naga::Module| {
        module.entry_points[0]
            .function
            .expressions
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    naga::Expression::Binary {
                        op: naga::BinaryOperator::LogicalAnd | naga::BinaryOperator::LogicalOr,
                        ..
                    }
                )
            })
            .count()
    };
    for d in DS {
        for (profile, subgroup_min) in [
            (Profile::Hardware, None),
            (Profile::Hardware, Some(32)),
            (Profile::Software, Some(8)),
        ] {
            let target = Target {
                workgroup_bytes: 32768,
                subgroup_min,
                profile,
            };
            let kernel = AttentionKernel::for_dimension(d, &target);
            for causal in [false, true] {
                for alibi in [false, true] {
                    let variant = Variant { causal, alibi };
                    let name = format!("attention {kernel:?} {variant:?}");
                    let n = short_circuits(&validate(&name, &kernel.source(variant)));
                    assert!(n <= MOST, "{name}: {n} short-circuit operators");
                }
            }
            let pairs = PairKernel::for_dimension(d, &target);
            let name = format!("pair_stats {pairs:?}");
            let n = short_circuits(&validate(&name, &pairs.source()));
            assert!(n <= MOST, "{name}: {n} short-circuit operators");
        }
    }
}
