//! The contract between the host and the WGSL kernels, checked with naga on any machine (no
//! GPU needed): every `#[repr(C)]` mirror has the size and field offsets of the WGSL struct it
//! is written into, and every kernel's bind group layout is what its global variables declare.
//! A mismatch would not fail validation anywhere: the kernels would read shifted fields.

use attnflow::gpu::Specialisation;
use attnflow::gpu::codegen::{AttentionKernel, PairKernel, Target, Variant};
use attnflow::gpu::kernels::contract::{self, Mirror};
use attnflow::gpu::kernels::dynamic_bindings;
use attnflow::gpu::reflect::Layout;
use wgpu::naga;

/// Every specialisation kind: the N-body and Block attention kernels, the unrolled and tiled
/// pair kernels, each mask variant.
fn specialisations() -> Vec<Specialisation> {
    let mut out = Vec::new();
    for d in [3, 8, 64, 256] {
        for target in [Target::LLVMPIPE, Target::NVIDIA] {
            for (causal, alibi) in [(false, false), (true, true)] {
                out.push(Specialisation {
                    d,
                    attention: AttentionKernel::for_dimension(d, &target),
                    variant: Variant { causal, alibi },
                    pairs: PairKernel::for_dimension(d, &target),
                    checked: false,
                });
            }
        }
    }
    out
}

fn parse(name: &str, source: &str) -> naga::Module {
    let source = &*attnflow::gpu::shaders::for_naga(source);
    naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}:\n{}", e.emit_to_string(source)))
}

/// The scalar of a member (a scalar or a vector of them), as a Rust type name.
fn scalar(module: &naga::Module, ty: naga::Handle<naga::Type>) -> &'static str {
    let scalar = match module.types[ty].inner {
        naga::TypeInner::Scalar(s) | naga::TypeInner::Vector { scalar: s, .. } => s,
        ref other => panic!("unexpected member type {other:?}"),
    };
    match scalar {
        naga::Scalar::U32 => "u32",
        naga::Scalar::I32 => "i32",
        naga::Scalar::F32 => "f32",
        other => panic!("unexpected scalar {other:?}"),
    }
}

/// Checks a mirror against the WGSL struct of that name in `module`, field by field: each
/// Rust field starts at the offset of the WGSL member of its name, or of the run of members
/// `name0`, `name1`, ... that a Rust array stands for (a uniform struct cannot hold an array
/// of u32, so WGSL spells padding out); those members hold the field's scalar type and end
/// exactly where it ends. Returns the WGSL members checked.
fn check_mirror(kernel: &str, module: &naga::Module, mirror: &Mirror) -> usize {
    let (handle, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(mirror.wgsl))
        .expect("looked up by name");
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("{kernel}: {} is not a struct", mirror.wgsl);
    };
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    let what = format!("{kernel}: {} (Rust {})", mirror.wgsl, mirror.rust);
    assert_eq!(*span as usize, mirror.size, "{what}: size");
    assert_eq!(
        layouter[handle].size as usize, mirror.size,
        "{what}: layout size"
    );
    let mut next = 0;
    for field in &mirror.fields {
        let element = field.ty.trim_start_matches('[').split(';').next().unwrap();
        let start = next;
        if members.get(next).and_then(|m| m.name.as_deref()) == Some(field.name) {
            next += 1;
        } else {
            while members
                .get(next)
                .and_then(|m| m.name.as_deref())
                .is_some_and(|n| n == format!("{}{}", field.name, next - start))
            {
                next += 1;
            }
        }
        assert!(
            next > start,
            "{what}: field {} ({}) has no WGSL member at position {start} (found {:?})",
            field.name,
            field.ty,
            members.get(start).and_then(|m| m.name.as_deref())
        );
        assert_eq!(
            members[start].offset as usize, field.offset,
            "{what}: offset of {}",
            field.name
        );
        for m in &members[start..next] {
            assert_eq!(
                scalar(module, m.ty),
                element,
                "{what}: type of {:?} for Rust {}: {}",
                m.name,
                field.name,
                field.ty
            );
        }
        // Where the next member starts (or the struct ends): no gap, no overlap.
        let end = members.get(next).map_or(*span, |m| m.offset) as usize;
        let last = &members[next - 1];
        assert_eq!(
            (last.offset + layouter[last.ty].size) as usize,
            end,
            "{what}: padding after {:?}",
            last.name
        );
        assert_eq!(
            field.offset + field.size,
            end,
            "{what}: end of {}",
            field.name
        );
    }
    assert_eq!(
        next,
        members.len(),
        "{what}: WGSL members without a Rust field: {:?}",
        members[next..].iter().map(|m| &m.name).collect::<Vec<_>>()
    );
    members.len()
}

#[test]
fn struct_mirrors_match_the_wgsl_layout() {
    let mirrors = contract::mirrors();
    let mut found = vec![0; mirrors.len()];
    let mut members = 0;
    for spec in specialisations() {
        for (kernel, _, source) in spec.sources() {
            let module = parse(kernel, &source);
            for (i, mirror) in mirrors.iter().enumerate() {
                if module
                    .types
                    .iter()
                    .any(|(_, t)| t.name.as_deref() == Some(mirror.wgsl))
                {
                    members += check_mirror(kernel, &module, mirror);
                    found[i] += 1;
                }
            }
        }
    }
    // Adaptive stepping's kernels, the same text for every specialisation.
    for (kernel, source) in attnflow::gpu::adaptive::KERNELS {
        let module = parse(kernel, source);
        for (i, mirror) in mirrors.iter().enumerate() {
            if module
                .types
                .iter()
                .any(|(_, t)| t.name.as_deref() == Some(mirror.wgsl))
            {
                members += check_mirror(kernel, &module, mirror);
                found[i] += 1;
            }
        }
    }
    for (mirror, found) in mirrors.iter().zip(found) {
        assert!(found > 0, "no kernel declares struct {}", mirror.wgsl);
    }
    eprintln!("{} mirrors, {members} WGSL members checked", mirrors.len());
}

/// Every kernel's layout as the library reflects it from the kernel's declarations
/// (`Specialisation::layouts`, what `Kernels::new` builds the bind group layouts from) is the
/// layout of the whole module: bindings 0, 1, ... of group 0, buffers only, every dynamic
/// offset on a uniform, no binding missed; and `sources()` lists those letters.
#[test]
fn bind_group_layouts_are_reflected_from_every_kernel() {
    let mut kernels = 0;
    for spec in specialisations() {
        for ((kernel, kinds, source), (name, reflected)) in
            spec.sources().into_iter().zip(spec.layouts())
        {
            assert_eq!(kernel, name);
            let module = parse(kernel, &source);
            let whole = Layout::of_module(kernel, &module, dynamic_bindings(kernel))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                whole, reflected,
                "{kernel}: the whole module and its declarations"
            );
            assert_eq!(kinds, whole.letters(), "{kernel}");
            let declared = module
                .global_variables
                .iter()
                .filter(|(_, g)| g.binding.is_some())
                .count();
            assert_eq!(whole.bindings.len(), declared, "{kernel}");
            kernels += 1;
        }
    }
    assert_eq!(kernels, 11 * specialisations().len());
}

/// The reflection refuses what the host cannot bind: a dynamic offset on a storage buffer,
/// a gap in the bindings, a second group, a texture.
#[test]
fn reflection_refuses_layouts_the_host_cannot_bind() {
    let ok = "@group(0) @binding(0) var<uniform> a: vec4<f32>;\n\
              @group(0) @binding(1) var<storage, read> b: array<f32>;\n\
              @group(0) @binding(2) var<storage, read_write> c: array<f32>;\n\
              @compute @workgroup_size(1) fn main() { c[0] = a.x + b[0]; }";
    let layout = Layout::reflect("ok", ok, &[0]).unwrap();
    assert_eq!(layout.letters(), "drw");
    assert_eq!(layout.entries().len(), 3);
    let err = Layout::reflect("dynamic-storage", ok, &[1]).unwrap_err();
    assert!(err.contains("binding 1"), "{err}");
    let gap = ok.replace("@binding(2)", "@binding(3)");
    let err = Layout::reflect("gap", &gap, &[]).unwrap_err();
    assert!(err.contains("without gaps"), "{err}");
    let group = ok.replace("@group(0) @binding(2)", "@group(1) @binding(0)");
    let err = Layout::reflect("group", &group, &[]).unwrap_err();
    assert!(err.contains("group 1"), "{err}");
}
