//! The bind group layout of a kernel read from its WGSL with naga (vello's habit: the shader
//! contract is read from the shaders, so Rust never restates a binding layout by hand).
//!
//! A kernel's module says, for each binding of group 0, whether it is a uniform or a storage
//! buffer and whether the kernel writes it; the one thing it cannot say is whether the host
//! binds a uniform at a dynamic offset (a slot of an array of per-head or per-chunk structs),
//! which the host names per kernel (`kernels::dynamic_bindings`).

use wgpu::naga;

/// One binding of group 0 as the module declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    Uniform,
    /// Storage the kernel only reads (`var<storage, read>`).
    ReadOnly,
    /// Storage the kernel may write (`var<storage, read_write>`).
    ReadWrite,
}

/// A kernel's layout: its bindings in binding order (0, 1, ...) and the uniforms the host
/// binds at a dynamic offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    pub bindings: Vec<Binding>,
    pub dynamic: &'static [u32],
}

impl Layout {
    /// Reflects a kernel's WGSL (naga's dialect: `kernels::Dialect::Naga`); `dynamic` are
    /// the uniform bindings the host binds at a dynamic offset. Errors say which kernel and
    /// binding is not what the host can bind.
    pub fn reflect(kernel: &str, wgsl: &str, dynamic: &'static [u32]) -> Result<Self, String> {
        let module = naga::front::wgsl::parse_str(wgsl)
            .map_err(|e| format!("{kernel}: {}", e.emit_to_string(wgsl)))?;
        Self::of_module(kernel, &module, dynamic)
    }

    /// The layout of a parsed module.
    pub fn of_module(
        kernel: &str,
        module: &naga::Module,
        dynamic: &'static [u32],
    ) -> Result<Self, String> {
        let mut found: Vec<(u32, Binding)> = Vec::new();
        for (_, g) in module.global_variables.iter() {
            let Some(b) = &g.binding else { continue };
            let name = g.name.as_deref().unwrap_or("?");
            if b.group != 0 {
                return Err(format!(
                    "{kernel}: `{name}` is in group {}; attnflow binds group 0 only",
                    b.group
                ));
            }
            let binding = match g.space {
                naga::AddressSpace::Uniform => Binding::Uniform,
                naga::AddressSpace::Storage { access }
                    if access.contains(naga::StorageAccess::STORE) =>
                {
                    Binding::ReadWrite
                }
                naga::AddressSpace::Storage { .. } => Binding::ReadOnly,
                other => {
                    return Err(format!(
                        "{kernel}: `{name}` is a {other:?} resource; attnflow binds buffers only"
                    ));
                }
            };
            found.push((b.binding, binding));
        }
        found.sort_unstable_by_key(|(i, _)| *i);
        for (i, (binding, _)) in found.iter().enumerate() {
            if *binding as usize != i {
                return Err(format!(
                    "{kernel}: bindings are {:?}; the host binds 0, 1, ... without gaps",
                    found.iter().map(|(b, _)| b).collect::<Vec<_>>()
                ));
            }
        }
        let bindings: Vec<Binding> = found.into_iter().map(|(_, b)| b).collect();
        for &d in dynamic {
            if bindings.get(d as usize) != Some(&Binding::Uniform) {
                return Err(format!(
                    "{kernel}: binding {d} is bound at a dynamic offset but the module \
                     declares {:?} there, not a uniform",
                    bindings.get(d as usize)
                ));
            }
        }
        Ok(Layout { bindings, dynamic })
    }

    /// The layout in letters, in binding order: 'u' uniform, 'd' uniform at a dynamic
    /// offset, 'r' read-only storage, 'w' read-write storage (`attnflow kernels --emit`'s
    /// index.json and the Dawn/Tint test use them).
    pub fn letters(&self) -> String {
        self.bindings
            .iter()
            .enumerate()
            .map(|(i, b)| match b {
                Binding::Uniform if self.dynamic.contains(&(i as u32)) => 'd',
                Binding::Uniform => 'u',
                Binding::ReadOnly => 'r',
                Binding::ReadWrite => 'w',
            })
            .collect()
    }

    /// The wgpu entries of this layout (every binding visible to compute).
    pub fn entries(&self) -> Vec<wgpu::BindGroupLayoutEntry> {
        self.bindings
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let ty = match b {
                    Binding::Uniform => wgpu::BufferBindingType::Uniform,
                    Binding::ReadOnly => wgpu::BufferBindingType::Storage { read_only: true },
                    Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                };
                wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty,
                        has_dynamic_offset: self.dynamic.contains(&(i as u32)),
                        min_binding_size: None,
                    },
                    count: None,
                }
            })
            .collect()
    }

    /// Checks what a pass binds against this layout: one buffer per binding, with the usage
    /// the binding needs (UNIFORM or STORAGE), and a sized slot where the offset is dynamic.
    /// wgpu would refuse a mismatch too, but as a device error far from the pass that made
    /// it; this names the kernel and the binding.
    pub fn check(
        &self,
        kernel: &str,
        resources: &[wgpu::BindingResource<'_>],
    ) -> Result<(), String> {
        if resources.len() != self.bindings.len() {
            return Err(format!(
                "{kernel}: the pass binds {} buffers, the kernel declares {} ({})",
                resources.len(),
                self.bindings.len(),
                self.letters()
            ));
        }
        for (i, (r, b)) in resources.iter().zip(&self.bindings).enumerate() {
            let wgpu::BindingResource::Buffer(buffer) = r else {
                return Err(format!("{kernel}: binding {i} is not a buffer"));
            };
            let usage = buffer.buffer.usage();
            let needs = match b {
                Binding::Uniform => wgpu::BufferUsages::UNIFORM,
                Binding::ReadOnly | Binding::ReadWrite => wgpu::BufferUsages::STORAGE,
            };
            if !usage.contains(needs) {
                return Err(format!(
                    "{kernel}: binding {i} is declared {b:?} but the pass binds a buffer with \
                     usage {usage:?}"
                ));
            }
            if self.dynamic.contains(&(i as u32)) && buffer.size.is_none() {
                return Err(format!(
                    "{kernel}: binding {i} is bound at a dynamic offset: the pass must bind \
                     one slot (a size), not the whole buffer"
                ));
            }
        }
        Ok(())
    }
}
