//! The one owner of backend choice: what `auto` means for every command, and the only
//! factories of a dynamics backend ([`build_dynamics`]) and of one attention layer
//! ([`build_layer`]). The backends themselves live in `reference/`, `cpu/` and `gpu/`; the
//! traits they implement are [`Backend`] (a particle system stepped by the engine) and
//! [`Attend`] (one layer with separate queries and keys; the arms in `layer.rs`).

pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;
mod layer;
pub mod reference;
pub mod traits;

pub use traits::{Attend, Backend, LayerShape};

#[cfg(feature = "gpu")]
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cpu::CpuBackend;
use crate::error::{Result, input};
#[cfg(feature = "gpu")]
use crate::gpu::{GpuBackend, GpuContext};
use crate::model::{Model, Shape};
use crate::reference::ReferenceBackend;

/// Where to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else `cpu` (said plainly).
    Auto,
    Gpu,
    Cpu,
    Reference,
}

impl BackendChoice {
    /// The names a user writes (`--backend NAME`).
    pub const NAMES: [&'static str; 4] = ["auto", "gpu", "cpu", "reference"];

    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Reference => "reference",
        }
    }
}

impl std::str::FromStr for BackendChoice {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "gpu" => Ok(BackendChoice::Gpu),
            "cpu" => Ok(BackendChoice::Cpu),
            "reference" => Ok(BackendChoice::Reference),
            _ => Err(input(format!(
                "unknown backend {s:?}: use one of {}",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

/// An open GPU device, shared by the backends built on it.
#[cfg(feature = "gpu")]
pub type GpuDevice = Arc<GpuContext>;
/// Built without the `gpu` feature there is no GPU device (the type has no values).
#[cfg(not(feature = "gpu"))]
#[derive(Clone, Debug)]
pub enum GpuDevice {}

/// What a request resolves to: the kind (never `auto`), its GPU device when it is `gpu`, and
/// what to tell the user when `auto` did not get a hardware GPU.
#[derive(Clone)]
pub struct Picked {
    pub kind: BackendChoice,
    pub gpu: Option<GpuDevice>,
    pub note: Option<String>,
}

/// Runs `f` on a worker thread of rayon's global pool, the calling thread waiting, or in place
/// when it is one already.
///
/// The cpu and reference backends split every pass over the tokens with rayon. Called from a
/// thread outside the pool, each such pass is handed to a worker and waited for (two thread
/// wake-ups, tens of microseconds) even when it is a single task; from a worker it runs in
/// place. A run of small systems makes dozens of passes per step, so a job that steps them
/// from its own thread (the CLI's commands, an experiment's simulations) spent much of its
/// time handing work over: `metastability`'s four unit tests took 70-80 CPU-s that way, 19 of
/// them system time, and 60-64 on a worker, 8 of them system time (2-core CI machine,
/// 2026-12-07). The results are the same: no pass reduces floats across tasks.
///
/// `f` must not wait for work that needs a free worker of the pool (a worker blocked in it
/// is one less to do that work).
pub fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(move |_| f())
    }
}

/// Resolves a backend request. `auto` takes a hardware GPU adapter when there is one; with
/// only a software adapter (llvmpipe, far slower than the native CPU path) or none, it picks
/// `cpu` and says so.
pub fn select(choice: BackendChoice) -> Result<Picked> {
    select_sharing(choice, None)
}

/// [`select`], reusing an open GPU device when one is given (several backends measured in one
/// process share it).
#[cfg(feature = "gpu")]
pub fn select_sharing(choice: BackendChoice, gpu: Option<GpuDevice>) -> Result<Picked> {
    let picked = |kind, gpu, note| Picked { kind, gpu, note };
    let open = |gpu: Option<GpuDevice>| -> Result<GpuDevice> {
        match gpu {
            Some(ctx) => Ok(ctx),
            None => Ok(Arc::new(GpuContext::new()?)),
        }
    };
    match choice {
        BackendChoice::Reference | BackendChoice::Cpu => Ok(picked(choice, None, None)),
        BackendChoice::Gpu => Ok(picked(choice, Some(open(gpu)?), None)),
        BackendChoice::Auto => {
            let note = match open(gpu) {
                Ok(ctx) if !ctx.is_software() => {
                    return Ok(picked(BackendChoice::Gpu, Some(ctx), None));
                }
                Ok(ctx) => format!(
                    "no hardware GPU found (only the software adapter {}); falling back to the \
                     cpu backend, which is faster here. Use --backend gpu to run on it anyway.",
                    ctx.describe()
                ),
                Err(e) => format!("{e}; falling back to the cpu backend"),
            };
            Ok(picked(BackendChoice::Cpu, None, Some(note)))
        }
    }
}

/// Built without the `gpu` feature: `gpu` is refused, `auto` is the cpu backend.
#[cfg(not(feature = "gpu"))]
pub fn select_sharing(choice: BackendChoice, _gpu: Option<GpuDevice>) -> Result<Picked> {
    let picked = |kind, note: Option<&str>| Picked {
        kind,
        gpu: None,
        note: note.map(String::from),
    };
    match choice {
        BackendChoice::Reference | BackendChoice::Cpu => Ok(picked(choice, None)),
        BackendChoice::Gpu => Err(input(
            "this attnflow was built without the gpu feature: rebuild it with default features \
             for --backend gpu",
        )),
        BackendChoice::Auto => Ok(picked(
            BackendChoice::Cpu,
            Some("built without the gpu feature; running on the cpu backend"),
        )),
    }
}

/// A dynamics backend ready to run, with what was chosen and why.
pub struct Chosen {
    pub backend: Box<dyn Backend>,
    /// The backend actually used (never `auto`).
    pub kind: BackendChoice,
    /// Said to the user when `auto` did not get a hardware GPU.
    pub note: Option<String>,
}

/// Builds the requested dynamics backend (see [`select`] for `auto`) with state `x0`.
pub fn build_dynamics(
    choice: BackendChoice,
    model: &Model,
    shape: Shape,
    x0: &[f64],
) -> Result<Chosen> {
    let picked = select(choice)?;
    let backend = dynamics_on(&picked, model, shape, x0)?;
    Ok(Chosen {
        backend,
        kind: picked.kind,
        note: picked.note,
    })
}

/// The dynamics backend of a resolved request.
pub fn dynamics_on(
    picked: &Picked,
    model: &Model,
    shape: Shape,
    x0: &[f64],
) -> Result<Box<dyn Backend>> {
    if picked.kind != BackendChoice::Reference {
        model.ensure_f32_scores(picked.kind.name())?;
    }
    Ok(match (picked.kind, &picked.gpu) {
        (BackendChoice::Reference, _) => Box::new(ReferenceBackend::new(model, shape, x0)?),
        #[cfg(feature = "gpu")]
        (BackendChoice::Gpu, Some(ctx)) => {
            Box::new(GpuBackend::new(ctx.clone(), model, shape, x0)?)
        }
        _ => Box::new(CpuBackend::new(model, shape, x0)?),
    })
}

/// One attention layer on the requested backend (see [`select`] for `auto`), with the
/// backend actually used and the note for the user.
pub fn build_layer(
    choice: BackendChoice,
    model: &Model,
    shape: LayerShape,
) -> Result<(Box<dyn Attend>, BackendChoice, Option<String>)> {
    shape.check(model)?;
    let picked = select(choice)?;
    if picked.kind != BackendChoice::Reference {
        model.ensure_f32_scores(picked.kind.name())?;
    }
    let layer = layer::layer_on(&picked, model, shape)?;
    Ok((layer, picked.kind, picked.note))
}

/// The GPU adapters wgpu sees, best first, described (none without the `gpu` feature).
pub fn adapter_names() -> Vec<String> {
    #[cfg(feature = "gpu")]
    {
        crate::gpu::context::adapters()
            .iter()
            .map(|a| crate::gpu::context::describe(&a.get_info()))
            .collect()
    }
    #[cfg(not(feature = "gpu"))]
    {
        Vec::new()
    }
}
