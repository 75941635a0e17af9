//! The GPU context: adapter choice, a device created from the adapter's own limits, and error
//! capture that turns wgpu's uncaptured errors into `Error::Gpu` instead of panics.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// A device and queue with what we know about the adapter behind them. Kernels take a
/// `&GpuContext`, so tests can share one device across many runs.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    errors: Arc<Mutex<Vec<String>>>,
}

/// The adapters wgpu can see on this machine, best first (see [`rank`]).
pub fn adapters() -> Vec<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut all = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    all.sort_by_key(|a| std::cmp::Reverse(rank(&a.get_info())));
    all
}

/// Preference order: discrete > integrated > virtual > other > software (CPU) adapters, and
/// native APIs (Vulkan, Metal, DX12) before OpenGL.
pub fn rank(info: &wgpu::AdapterInfo) -> u32 {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 50,
        wgpu::DeviceType::IntegratedGpu => 40,
        wgpu::DeviceType::VirtualGpu => 30,
        wgpu::DeviceType::Other => 20,
        wgpu::DeviceType::Cpu => 10,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        _ => 0,
    };
    kind + api
}

/// A one-line description of an adapter: name, type, API, driver.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let driver = if info.driver_info.is_empty() {
        info.driver.clone()
    } else {
        format!("{} {}", info.driver, info.driver_info)
    };
    format!(
        "{} ({:?}, {:?}{})",
        info.name,
        info.device_type,
        info.backend,
        if driver.trim().is_empty() {
            String::new()
        } else {
            format!(", driver {}", driver.trim())
        }
    )
}

/// True for software rasterisers such as Mesa's llvmpipe.
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

impl GpuContext {
    /// The best adapter, or the first whose name contains `ATTNFLOW_ADAPTER` when that is set.
    pub fn new() -> Result<Self> {
        let all = adapters();
        if all.is_empty() {
            return Err(Error::Gpu(
                "no GPU adapter found. On Debian/Ubuntu, `apt-get install mesa-vulkan-drivers` \
                 provides a software Vulkan adapter; or use --backend cpu"
                    .into(),
            ));
        }
        let chosen = match std::env::var("ATTNFLOW_ADAPTER") {
            Ok(want) if !want.is_empty() => {
                let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                all.into_iter()
                    .find(|a| {
                        a.get_info()
                            .name
                            .to_lowercase()
                            .contains(&want.to_lowercase())
                    })
                    .ok_or_else(|| {
                        Error::Gpu(format!(
                            "ATTNFLOW_ADAPTER={want} matches none of the adapters: {}",
                            names.join(", ")
                        ))
                    })?
            }
            _ => all.into_iter().next().expect("non-empty"),
        };
        Self::from_adapter(chosen)
    }

    /// Creates a device asking for the adapter's own limits (not wgpu's conservative defaults).
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("attnflow"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("cannot open a device on {}: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("error sink").push(e.to_string());
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            lost.lock()
                .expect("error sink")
                .push(format!("device lost ({reason:?}): {msg}"));
        });
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            errors,
        })
    }

    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    pub fn is_software(&self) -> bool {
        is_software(&self.info)
    }

    /// Returns the first error wgpu reported since the last call, if any.
    pub fn take_error(&self) -> Result<()> {
        let mut errors = self.errors.lock().expect("error sink");
        if errors.is_empty() {
            return Ok(());
        }
        let first = errors.remove(0);
        errors.clear();
        Err(Error::Gpu(first))
    }

    /// Blocks until all submitted work is done, then reports any error.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        self.take_error()
    }
}
