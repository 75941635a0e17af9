//! `attnflow view --live`: one self-contained page that runs SA/USA on the sphere in the
//! browser with WebGPU, on attnflow's own kernels.
//!
//! The page holds, for every specialisation its controls can reach (each adapter profile of
//! `gpu::profiles`, d = 2 and 3, full and causal masks), the spec-dialect WGSL of the six
//! kernels one RK4 step dispatches (`Specialisation::wgsl(Dialect::Spec)`, the text the
//! native backend compiles less nothing but naga's missing `enable subgroups;`), their bind
//! group layouts, the byte layouts of the uniform structs (`kernels::contract`, checked
//! against naga's), and the key-split plans the native planner makes for a set of n (the
//! page plans every n with a port of `gpu::plan::plan` and checks it against these first).
//! The page picks the profile of the WebGPU adapter it gets as `profiles::profile_for` does,
//! and replays the GPU backend's step: `queries`, `attention` per planned dispatch,
//! `attention_merge`, `attention_finish`, `tangent_project` for each of the four stages, with
//! `rk_combine` building the stage inputs and the renormalised state (docs/model.md §1-2).
//! Without WebGPU it says so and plays a trajectory computed here (reference backend).

use base64::Engine as _;
use serde::Serialize;

use crate::error::{Result, input};
use crate::gpu::attention::software_chunk_keys;
use crate::gpu::catalogue::{VARIANTS, specialisation, variant_name};
use crate::gpu::kernels::{Dialect, Specialisation, contract};
use crate::gpu::plan::{self, Budget, KernelShape, PlanInput};
use crate::gpu::profiles::{
    AdapterProfile, PORTABLE_WORKGROUP_BYTES, PROFILES, Profile, profile_for,
};
use crate::gpu::shaders;
use crate::integrate::{Backend, Integrator, Stepper};
use crate::model::init::InitSpec;
use crate::model::{Attention, Geometry, Mask, Model, Shape, Weights};
use crate::reference::ReferenceBackend;

const TEMPLATE: &str = include_str!("../assets/viewer/live.html");
const LIVE_JS: &str = include_str!("../assets/viewer/live.js");

/// The dimensions the live page simulates.
pub const LIVE_DIMENSIONS: [usize; 2] = [2, 3];
/// The most tokens the live page simulates.
pub const LIVE_MAX_N: usize = 65_536;
/// The kernels of one step, in the order of `Specialisation::wgsl`'s list.
const STEP_KERNELS: [&str; 6] = [
    "queries",
    "attention",
    "attention_merge",
    "attention_finish",
    "tangent_project",
    "rk_combine",
];
/// The n whose native plans the page checks its port of the planner against.
const PLAN_CHECK_N: [usize; 12] = [
    1, 7, 64, 100, 257, 1000, 1024, 2048, 4096, 5000, 16384, 65536,
];

#[derive(Serialize)]
struct ProfileData {
    name: &'static str,
    description: &'static str,
    /// GPUAdapterInfo.vendor of the adapters it stands for (None: any).
    vendor: Option<&'static str>,
    workgroup_bytes: u32,
    subgroups: Option<(u32, u32)>,
    software: bool,
}

#[derive(Serialize)]
struct KernelData {
    name: &'static str,
    /// The bind group layout's letters, reflected from the kernel (`gpu::reflect`): u uniform,
    /// d uniform with a dynamic offset, r read-only storage, w read-write storage, in binding
    /// order.
    layout: String,
    /// Index into `texts`.
    text: usize,
}

#[derive(Serialize)]
struct PlanCheck {
    n: usize,
    software: bool,
    splits: usize,
    split_keys: usize,
    /// (key_offset, key_count, first, groups_x, z_blocks) of every dispatch.
    slots: Vec<(usize, usize, bool, u32, u32)>,
}

#[derive(Serialize)]
struct SpecData {
    d: usize,
    mask: &'static str,
    /// The (profile) names that get it.
    profiles: Vec<&'static str>,
    describe: String,
    queries_per_group: usize,
    tile_keys: usize,
    workgroup_bytes: u32,
    subgroups: bool,
    /// Most keys per dispatch on a software (fallback) adapter.
    software_chunk_keys: usize,
    kernels: Vec<KernelData>,
    plans: Vec<PlanCheck>,
}

#[derive(Serialize)]
struct FieldData {
    name: &'static str,
    offset: usize,
    ty: &'static str,
}

#[derive(Serialize)]
struct StructData {
    wgsl: &'static str,
    size: usize,
    fields: Vec<FieldData>,
}

#[derive(Serialize)]
struct Playback {
    n: usize,
    d: usize,
    beta: f64,
    model: &'static str,
    h: f64,
    times: Vec<f64>,
    /// f32 little-endian [frames, n, d], base64.
    positions: String,
}

#[derive(Serialize)]
struct LiveData {
    attnflow: &'static str,
    three: &'static str,
    workgroup: u32,
    max_n: usize,
    dimensions: [usize; 2],
    flags: Vec<(&'static str, u32)>,
    profiles: Vec<ProfileData>,
    /// `profiles::profile_for`'s choices by name: a software adapter's, one below the
    /// portable workgroup memory, one without subgroups, and a hardware GPU of no listed
    /// vendor.
    profile_rule: ProfileRule,
    portable_workgroup_bytes: u32,
    specs: Vec<SpecData>,
    /// "profile/d/mask" -> index into `specs`.
    choose: std::collections::BTreeMap<String, usize>,
    texts: Vec<String>,
    structs: Vec<StructData>,
    tableau: TableauData,
    playback: Playback,
}

#[derive(Serialize)]
struct ProfileRule {
    software: &'static str,
    small: &'static str,
    no_subgroups: &'static str,
    fallback: &'static str,
}

#[derive(Serialize)]
struct TableauData {
    a: Vec<Vec<f64>>,
    b: Vec<f64>,
}

/// The browser's `GPUAdapterInfo.vendor` for a PCI vendor id.
fn vendor_name(id: Option<u32>) -> Option<&'static str> {
    match id? {
        0x10de => Some("nvidia"),
        0x1002 => Some("amd"),
        0x8086 => Some("intel"),
        0x106b => Some("apple"),
        _ => None,
    }
}

fn kernel_shape(spec: &Specialisation) -> KernelShape {
    KernelShape {
        queries_per_group: spec.attention.queries_per_group() as usize,
        tile_keys: spec.attention.tile_keys() as usize,
    }
}

/// The native plan of one evaluation of n tokens (one system, speed not measured), as the
/// GPU backend makes it on a hardware or a software adapter.
fn plan_check(spec: &Specialisation, n: usize, software: bool) -> Result<PlanCheck> {
    let shape = kernel_shape(spec);
    let cap = software.then(|| {
        software_chunk_keys(
            &|k| spec.attention.loop_iterations(k),
            shape.tile_keys.max(1),
        )
    });
    let p = plan::plan(&PlanInput {
        batch: 1,
        n_queries: n,
        n_keys: n,
        kernel: shape,
        speed: None,
        max_chunk_keys: cap,
        max_groups: 65535,
        splits: None,
        chunk_keys: None,
        budget: Budget::default(),
    })?;
    Ok(PlanCheck {
        n,
        software,
        splits: p.splits,
        split_keys: p.split_keys,
        slots: p
            .slots(65535)
            .iter()
            .map(|s| (s.key_offset, s.key_count, s.first, s.groups_x, s.z_blocks))
            .collect(),
    })
}

/// A small trajectory for browsers without WebGPU: SA, d = 3, on the reference backend (f64,
/// the same bits on every machine, so that docs/live.html can be checked for staleness).
fn playback() -> Result<Playback> {
    let (n, d, beta, h, steps, every) = (192, 3, 4.0, 0.1, 200, 5);
    let shape = Shape::new(1, n, d)?;
    let model = Model::new(
        Attention::Sa,
        Geometry::Sphere,
        Mask::Full,
        Weights::identity(d),
        vec![beta],
    );
    let x0 = InitSpec::Uniform.generate(shape, model.geometry, 0)?;
    let mut backend = ReferenceBackend::new(&model, shape, &x0)?;
    let stepper = Stepper::new(&model, Integrator::Rk4)?;
    stepper.prepare(&mut backend)?;
    let mut times = Vec::new();
    let mut bytes = Vec::new();
    for step in 0..=steps {
        if step % every == 0 {
            times.push(step as f64 * h);
            for v in backend.read_state()?.to_f64() {
                bytes.extend_from_slice(&(v as f32).to_le_bytes());
            }
        }
        if step < steps {
            stepper.step(&mut backend, h, step as u32)?;
        }
    }
    Ok(Playback {
        n,
        d,
        beta,
        model: "sa",
        h,
        times,
        positions: base64::engine::general_purpose::STANDARD.encode(&bytes),
    })
}

fn profile_data(p: &AdapterProfile) -> ProfileData {
    ProfileData {
        name: p.name,
        description: p.description,
        vendor: vendor_name(p.vendor),
        workgroup_bytes: p.workgroup_bytes,
        subgroups: p.subgroups,
        software: p.kind == Profile::Software,
    }
}

/// The names `profile_for` returns in each of its cases, asked of it with stand-in adapters.
fn profile_rule() -> ProfileRule {
    let limits = |bytes| wgpu::Limits {
        max_compute_workgroup_storage_size: bytes,
        ..wgpu::Limits::default()
    };
    let hw = wgpu::DeviceType::DiscreteGpu;
    let big = PORTABLE_WORKGROUP_BYTES;
    ProfileRule {
        software: profile_for(0, wgpu::DeviceType::Cpu, &limits(big), Some(8)).name,
        small: profile_for(0, hw, &limits(big / 2), Some(32)).name,
        no_subgroups: profile_for(0, hw, &limits(big), None).name,
        // A vendor id no profile names.
        fallback: profile_for(0xffff, hw, &limits(big), Some(32)).name,
    }
}

/// The live page's text (deterministic: docs/live.html is this text).
pub fn page() -> Result<String> {
    let mut specs: Vec<(Specialisation, SpecData)> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut choose = std::collections::BTreeMap::new();
    for profile in PROFILES {
        for d in LIVE_DIMENSIONS {
            // Full and causal; ALiBi is not among the live page's controls.
            for variant in VARIANTS.into_iter().filter(|v| !v.alibi) {
                let spec = specialisation(profile, d, variant);
                let i = match specs.iter().position(|(s, _)| *s == spec) {
                    Some(i) => i,
                    None => {
                        let mut kernels = Vec::new();
                        for (name, layout, text) in spec.wgsl(Dialect::Spec) {
                            if !STEP_KERNELS.contains(&name) {
                                continue;
                            }
                            let t = match texts.iter().position(|x| *x == text) {
                                Some(t) => t,
                                None => {
                                    texts.push(text);
                                    texts.len() - 1
                                }
                            };
                            kernels.push(KernelData {
                                name,
                                layout,
                                text: t,
                            });
                        }
                        let shape = kernel_shape(&spec);
                        let mut plans = Vec::new();
                        for n in PLAN_CHECK_N {
                            for software in [false, true] {
                                plans.push(plan_check(&spec, n, software)?);
                            }
                        }
                        let data = SpecData {
                            d,
                            mask: variant_name(variant),
                            profiles: Vec::new(),
                            describe: crate::gpu::catalogue::describe_attention(&spec.attention),
                            queries_per_group: shape.queries_per_group,
                            tile_keys: shape.tile_keys,
                            workgroup_bytes: spec.attention.workgroup_bytes(),
                            subgroups: spec.attention.uses_subgroups(),
                            software_chunk_keys: software_chunk_keys(
                                &|k| spec.attention.loop_iterations(k),
                                shape.tile_keys.max(1),
                            ),
                            kernels,
                            plans,
                        };
                        specs.push((spec, data));
                        specs.len() - 1
                    }
                };
                if !specs[i].1.profiles.contains(&profile.name) {
                    specs[i].1.profiles.push(profile.name);
                }
                choose.insert(format!("{}/{d}/{}", profile.name, variant_name(variant)), i);
            }
        }
    }
    let structs = contract::mirrors()
        .into_iter()
        .map(|m| StructData {
            wgsl: m.wgsl,
            size: m.size,
            fields: m
                .fields
                .iter()
                .map(|f| FieldData {
                    name: f.name,
                    offset: f.offset,
                    ty: f.ty,
                })
                .collect(),
        })
        .collect();
    let tableau = Integrator::Rk4.tableau();
    let data = LiveData {
        attnflow: env!("CARGO_PKG_VERSION"),
        three: crate::view::THREE_VERSION,
        workgroup: shaders::WORKGROUP,
        max_n: LIVE_MAX_N,
        dimensions: LIVE_DIMENSIONS,
        flags: shaders::FLAGS.to_vec(),
        profiles: PROFILES.iter().map(profile_data).collect(),
        profile_rule: profile_rule(),
        portable_workgroup_bytes: PORTABLE_WORKGROUP_BYTES,
        specs: specs.into_iter().map(|(_, s)| s).collect(),
        choose,
        texts,
        structs,
        tableau: TableauData {
            a: tableau.a,
            b: tableau.b,
        },
        playback: playback()?,
    };
    let json = serde_json::to_string(&data)
        .map_err(|e| input(format!("cannot encode the live page's data: {e}")))?
        .replace("</", "<\\/");
    Ok(TEMPLATE
        .replacen("/*@IMPORTMAP@*/", &crate::view::import_map(), 1)
        .replacen("/*@DATA@*/", &json, 1)
        .replacen("/*@LIVE@*/", &LIVE_JS.replace("</script", "<\\/script"), 1))
}

/// Writes the live page to `out` (a .html file, written atomically); returns its bytes.
pub fn write_live(out: &std::path::Path, force: bool) -> Result<u64> {
    crate::view::check_html_out(out, force)?;
    let page = page()?;
    crate::output::write_atomic(out, |tmp| {
        std::fs::write(tmp, page.as_bytes())
            .map_err(|e| crate::error::file_error(out, format!("cannot write: {e}")))
    })?;
    Ok(page.len() as u64)
}
