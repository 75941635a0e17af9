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
                || shaders::TEMPLATES.iter().any(|(k, _)| *k == stem),
            "shaders/{name} is not in gpu::shaders::KERNELS or TEMPLATES"
        );
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
