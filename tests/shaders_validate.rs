//! Every WGSL kernel parses and validates with naga, for the dimensions and tile sizes the
//! GPU backend generates, on any machine (no GPU needed).

use attnflow::gpu::shaders::{self, Specialisation};
use wgpu::naga;

#[test]
fn every_shader_parses_and_validates_for_every_specialisation() {
    let mut checked = 0;
    for &(name, kernel) in shaders::KERNELS {
        for d in [2usize, 3, 4, 16, 64, 128] {
            // 16 KiB is wgpu's default workgroup memory, 32 KiB llvmpipe's.
            for workgroup_bytes in [16384u32, 32768] {
                let spec = Specialisation::for_dimension(d, workgroup_bytes);
                assert!(
                    16 * spec.tile_keys * spec.d.div_ceil(4) <= workgroup_bytes,
                    "{spec:?} overflows"
                );
                let source = shaders::source(kernel, spec);
                let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
                    panic!("{name}.wgsl ({spec:?}):\n{}", e.emit_to_string(&source))
                });
                naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::default(),
                )
                .validate(&module)
                .unwrap_or_else(|e| {
                    panic!(
                        "{name}.wgsl ({spec:?}) does not validate:\n{}",
                        e.emit_to_string(&source)
                    )
                });
                checked += 1;
            }
        }
    }
    assert_eq!(checked, shaders::KERNELS.len() * 12);
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
            stem == "common" || shaders::KERNELS.iter().any(|(k, _)| *k == stem),
            "shaders/{name} is not in gpu::shaders::KERNELS"
        );
    }
}

/// The loop budget keeps a streaming dispatch under llvmpipe's 65535 iterations.
#[test]
fn chunk_sizes_respect_the_software_loop_budget() {
    for d in [2usize, 3, 16, 64, 128, 1024] {
        let spec = Specialisation::for_dimension(d, 32768);
        let keys = spec.keys_within_loop_budget(shaders::SOFTWARE_LOOP_BUDGET);
        let dv = d.div_ceil(4);
        let tiles = keys.div_ceil(spec.tile_keys as usize);
        let per_tile_load = 5 * (spec.tile_keys as usize * dv).div_ceil(spec.workgroup as usize);
        let iterations = keys * (3 * dv + 1) + tiles * (1 + 2 * dv + per_tile_load) + 10 * dv;
        assert!(
            iterations < 65535,
            "d = {d}: {keys} keys take {iterations} iterations"
        );
        assert!(keys >= 16, "d = {d}: only {keys} keys per chunk");
    }
}
