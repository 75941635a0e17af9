//! The adapter profiles the kernel planner distinguishes, and the one place that turns an
//! adapter (a profile, or a real adapter's own limits) into the [`Target`] the kernels are
//! shaped for.
//!
//! Every kernel shape fits [`PORTABLE_WORKGROUP_BYTES`] of workgroup memory and
//! [`PORTABLE_INVOCATIONS`] invocations whatever the adapter offers beyond them (the limits of
//! llvmpipe, Apple GPUs and most integrated GPUs), and subgroup reductions span at most
//! [`PORTABLE_SUBGROUP_LANES`] lanes, so that every specialisation a GPU can get also runs on
//! llvmpipe in CI (tests/gpu_specialisations.rs executes each one). An adapter that offers
//! less (WebGPU's default 16 KiB) gets smaller shapes that fit.
//!
//! This module depends on nothing else in `gpu/`: codegen, kernels and the CLI read it.

/// What kind of machine runs the kernels. The kernel shapes follow its costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A GPU: registers are scarce (R = 2-4 queries per invocation at small d), workgroup
    /// memory is fast; FlashAttention-2 (`Block`) above d = 8.
    Hardware,
    /// A software rasteriser (llvmpipe): every load from memory costs about as much as 35
    /// pair interactions and registers spill cheaply to the stack, so the N-body kernel with
    /// many queries per invocation (R = 1-16, at most 96 vec4 registers: LLVM's compile time
    /// grows faster than the unrolled text, codegen/nbody.rs) is used up to d = 128.
    Software,
}

/// Most workgroup memory any kernel shape uses (llvmpipe's limit, and Apple's).
pub const PORTABLE_WORKGROUP_BYTES: u32 = 32768;
/// Most invocations per workgroup any kernel uses (WebGPU's default limit).
pub const PORTABLE_INVOCATIONS: u32 = 256;
/// Most lanes a subgroup reduction spans: llvmpipe's (and Intel's smallest) subgroups have 8.
/// A reduction over an aligned group of at most 8 consecutive invocations with
/// `subgroupShuffleXor` masks below 8 stays inside any subgroup of 8 or more lanes, so the
/// same text is correct on llvmpipe and on GPUs with subgroups of 16, 32 or 64.
pub const PORTABLE_SUBGROUP_LANES: u32 = 8;

/// The dimensions every profile's specialisations are enumerated (and executed) for: the
/// N-body kernel's widths, both sides of each Block bucket, a prime and non-multiples of 4.
pub const DIMENSIONS: &[usize] = &[2, 3, 4, 5, 8, 16, 17, 32, 64, 100, 128, 256, 1024];

/// What the kernel choice needs to know about the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub workgroup_bytes: u32,
    /// The smallest subgroup, when the adapter has subgroup operations (and they are wanted).
    pub subgroup_min: Option<u32>,
    pub profile: Profile,
}

impl Target {
    /// llvmpipe as CI has it: 32 KiB of workgroup memory, subgroups of 8.
    pub const LLVMPIPE: Target = LLVMPIPE.target();
    /// A large NVIDIA GPU under Vulkan: 48 KiB, subgroups of 32.
    pub const NVIDIA: Target = NVIDIA_DESKTOP.target();

    /// The largest d the N-body kernel takes on this target.
    pub fn nbody_max_d(&self) -> usize {
        match self.profile {
            Profile::Hardware => 8,
            Profile::Software => 128,
        }
    }

    /// What the kernel shapes may assume of this target: at most the portable workgroup
    /// memory, and subgroups of at most the portable lanes (see the module's comment).
    pub fn portable(&self) -> Target {
        Target {
            workgroup_bytes: self.workgroup_bytes.min(PORTABLE_WORKGROUP_BYTES),
            subgroup_min: self.subgroup_min.map(|s| s.min(PORTABLE_SUBGROUP_LANES)),
            profile: self.profile,
        }
    }

    /// The target of a real adapter from its own limits and subgroup sizes (`subgroup_min`:
    /// None without subgroup operations or when they are not wanted). The adapter's limits
    /// always win over any profile's.
    pub fn from_limits(
        device_type: wgpu::DeviceType,
        limits: &wgpu::Limits,
        subgroup_min: Option<u32>,
    ) -> Target {
        Target {
            workgroup_bytes: limits.max_compute_workgroup_storage_size,
            subgroup_min,
            profile: if device_type == wgpu::DeviceType::Cpu {
                Profile::Software
            } else {
                Profile::Hardware
            },
        }
    }
}

/// An adapter the planner distinguishes, with the limits its kernels are shaped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterProfile {
    /// File-name friendly: `nvidia-desktop`.
    pub name: &'static str,
    pub description: &'static str,
    /// PCI vendor id of the adapters it stands for (None: any vendor).
    pub vendor: Option<u32>,
    /// max_compute_workgroup_storage_size the adapter reports.
    pub workgroup_bytes: u32,
    /// max_compute_invocations_per_workgroup.
    pub invocations: u32,
    /// Smallest and largest subgroup, when it has subgroup operations.
    pub subgroups: Option<(u32, u32)>,
    /// Hardware GPU or software rasteriser.
    pub kind: Profile,
}

impl AdapterProfile {
    /// The target its kernels are planned for.
    pub const fn target(&self) -> Target {
        Target {
            workgroup_bytes: self.workgroup_bytes,
            subgroup_min: match self.subgroups {
                Some((min, _)) => Some(min),
                None => None,
            },
            profile: self.kind,
        }
    }

    /// The profile of this name.
    pub fn named(name: &str) -> Option<&'static AdapterProfile> {
        PROFILES.iter().find(|p| p.name == name)
    }
}

pub const NVIDIA_DESKTOP: AdapterProfile = AdapterProfile {
    name: "nvidia-desktop",
    description: "NVIDIA desktop or data-centre GPU (Vulkan, DX12): 48 KiB, subgroups of 32",
    vendor: Some(0x10de),
    workgroup_bytes: 49152,
    invocations: 1024,
    subgroups: Some((32, 32)),
    kind: Profile::Hardware,
};

pub const AMD_DESKTOP: AdapterProfile = AdapterProfile {
    name: "amd-desktop",
    description: "AMD desktop GPU (RDNA, Vulkan, DX12): 64 KiB, subgroups of 32 or 64",
    vendor: Some(0x1002),
    workgroup_bytes: 65536,
    invocations: 1024,
    subgroups: Some((32, 64)),
    kind: Profile::Hardware,
};

pub const INTEL_INTEGRATED: AdapterProfile = AdapterProfile {
    name: "intel-integrated",
    description: "Intel integrated GPU (Xe, Vulkan, DX12): 64 KiB, subgroups of 8 to 32",
    vendor: Some(0x8086),
    workgroup_bytes: 65536,
    invocations: 1024,
    subgroups: Some((8, 32)),
    kind: Profile::Hardware,
};

pub const APPLE_INTEGRATED: AdapterProfile = AdapterProfile {
    name: "apple-integrated",
    description: "Apple silicon GPU (Metal): 32 KiB, SIMD groups of 32",
    vendor: Some(0x106b),
    workgroup_bytes: 32768,
    invocations: 1024,
    subgroups: Some((32, 32)),
    kind: Profile::Hardware,
};

pub const WEBGPU_DEFAULTS: AdapterProfile = AdapterProfile {
    name: "webgpu-defaults",
    description: "WebGPU's default limits (a browser, or a device opened with wgpu's defaults): \
                  16 KiB, 256 invocations, no subgroups",
    vendor: None,
    workgroup_bytes: 16384,
    invocations: 256,
    subgroups: None,
    kind: Profile::Hardware,
};

pub const NO_SUBGROUPS: AdapterProfile = AdapterProfile {
    name: "no-subgroups",
    description: "a GPU without subgroup operations (wgpu's OpenGL backend, older Vulkan \
                  drivers, or subgroups turned off): 32 KiB",
    vendor: None,
    workgroup_bytes: 32768,
    invocations: 256,
    subgroups: None,
    kind: Profile::Hardware,
};

pub const LLVMPIPE: AdapterProfile = AdapterProfile {
    name: "llvmpipe",
    description: "Mesa llvmpipe, software Vulkan (CI): 32 KiB, subgroups of 8",
    vendor: None,
    workgroup_bytes: 32768,
    invocations: 1024,
    subgroups: Some((8, 8)),
    kind: Profile::Software,
};

/// Every profile the planner distinguishes.
pub const PROFILES: &[AdapterProfile] = &[
    NVIDIA_DESKTOP,
    AMD_DESKTOP,
    INTEL_INTEGRATED,
    APPLE_INTEGRATED,
    WEBGPU_DEFAULTS,
    NO_SUBGROUPS,
    LLVMPIPE,
];

/// The profile a real adapter is closest to: software adapters are llvmpipe's; a hardware
/// adapter without usable subgroups (`subgroup_min` None) is `no-subgroups`, or
/// `webgpu-defaults` below 32 KiB; otherwise by PCI vendor id, then the portable limits. Its
/// kernels are those of the profile whenever its limits are at least the profile's portable
/// ones; the adapter's own limits are what the kernels are planned from
/// ([`Target::from_limits`]).
pub fn profile_for(
    vendor: u32,
    device_type: wgpu::DeviceType,
    limits: &wgpu::Limits,
    subgroup_min: Option<u32>,
) -> &'static AdapterProfile {
    if device_type == wgpu::DeviceType::Cpu {
        return &PROFILES[6];
    }
    if limits.max_compute_workgroup_storage_size < PORTABLE_WORKGROUP_BYTES {
        return &PROFILES[4];
    }
    if subgroup_min.is_none() {
        return &PROFILES[5];
    }
    PROFILES
        .iter()
        .find(|p| p.vendor == Some(vendor))
        .unwrap_or(&PROFILES[0])
}

/// [`profile_for`] of an adapter as wgpu lists it (its info, limits and subgroup feature).
pub fn profile_of_adapter(adapter: &wgpu::Adapter) -> &'static AdapterProfile {
    let info = adapter.get_info();
    let subgroup_min = adapter
        .features()
        .contains(wgpu::Features::SUBGROUP)
        .then_some(info.subgroup_min_size);
    profile_for(
        info.vendor,
        info.device_type,
        &adapter.limits(),
        subgroup_min,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_have_distinct_names_and_portable_targets_within_llvmpipe() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert!(PROFILES[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert_eq!(AdapterProfile::named(p.name), Some(p));
            let t = p.target().portable();
            assert!(t.workgroup_bytes <= LLVMPIPE.workgroup_bytes);
            assert!(t.workgroup_bytes <= p.workgroup_bytes);
            assert!(t.subgroup_min.is_none_or(|s| s <= 8));
            assert!(PORTABLE_INVOCATIONS <= p.invocations);
        }
    }

    #[test]
    fn real_adapters_map_to_their_profiles() {
        let limits = |bytes| wgpu::Limits {
            max_compute_workgroup_storage_size: bytes,
            ..wgpu::Limits::default()
        };
        let hw = wgpu::DeviceType::DiscreteGpu;
        let name = |v, t, b, s| profile_for(v, t, &limits(b), s).name;
        assert_eq!(name(0x10de, hw, 49152, Some(32)), "nvidia-desktop");
        assert_eq!(name(0x1002, hw, 65536, Some(32)), "amd-desktop");
        let igpu = wgpu::DeviceType::IntegratedGpu;
        assert_eq!(name(0x8086, igpu, 65536, Some(8)), "intel-integrated");
        assert_eq!(name(0x106b, igpu, 32768, Some(32)), "apple-integrated");
        assert_eq!(name(0x10de, hw, 16384, Some(32)), "webgpu-defaults");
        assert_eq!(name(0x10de, hw, 49152, None), "no-subgroups");
        assert_eq!(
            name(0x10005, wgpu::DeviceType::Cpu, 32768, Some(8)),
            "llvmpipe"
        );
        // An unknown vendor with subgroups gets the kernels of a hardware profile with them.
        assert_eq!(name(0x5143, hw, 32768, Some(64)), "nvidia-desktop");
        // The adapter's own limits are what is planned from.
        let t = Target::from_limits(hw, &limits(20000), Some(16));
        assert_eq!((t.workgroup_bytes, t.subgroup_min), (20000, Some(16)));
        assert_eq!(t.portable().subgroup_min, Some(8));
    }
}
