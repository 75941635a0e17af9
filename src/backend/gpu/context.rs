//! The GPU context: adapter choice, a device created from the adapter's own limits, and error
//! capture that turns wgpu's uncaptured errors into `Error::Gpu` instead of panics.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// What the backends asked of the device (tests assert the counts per step).
    pub counters: Counters,
    errors: Arc<Mutex<Vec<String>>>,
    /// Kernels compiled on this device by (source, layout letters, runtime checks): a second
    /// backend of the same kernels (an experiment's next run, a test's next case) reuses them
    /// instead of compiling them again.
    pub(crate) compiled: Mutex<KernelCache>,
    /// The side tables of a capture (`capture.rs`), when this context was made capturing.
    pub(crate) capture: Option<Mutex<super::capture::tables::Tables>>,
}

/// Compiled kernels and their bind group layouts (see `GpuContext::compiled`).
pub(crate) type KernelCache = std::collections::HashMap<
    (String, &'static str, bool),
    (wgpu::ComputePipeline, wgpu::BindGroupLayout),
>;

/// Counts of the device operations that cost: every one the GPU code does goes through a
/// method of [`GpuContext`] that counts it.
#[derive(Debug, Default)]
pub struct Counters {
    pub submissions: AtomicU64,
    pub dispatches: AtomicU64,
    /// Blocking waits for all queued work (a sync), and waits for an older submission when
    /// too many are queued (the in-flight bound).
    pub waits: AtomicU64,
    pub throttles: AtomicU64,
    pub maps: AtomicU64,
    pub buffers: AtomicU64,
    pub bind_groups: AtomicU64,
    pub pipelines: AtomicU64,
}

/// A snapshot of [`Counters`]; differences of two say what happened in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub submissions: u64,
    pub dispatches: u64,
    pub waits: u64,
    pub throttles: u64,
    pub maps: u64,
    pub buffers: u64,
    pub bind_groups: u64,
    pub pipelines: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            submissions: get(&self.submissions),
            dispatches: get(&self.dispatches),
            waits: get(&self.waits),
            throttles: get(&self.throttles),
            maps: get(&self.maps),
            buffers: get(&self.buffers),
            bind_groups: get(&self.bind_groups),
            pipelines: get(&self.pipelines),
        }
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            submissions: self.submissions - o.submissions,
            dispatches: self.dispatches - o.dispatches,
            waits: self.waits - o.waits,
            throttles: self.throttles - o.throttles,
            maps: self.maps - o.maps,
            buffers: self.buffers - o.buffers,
            bind_groups: self.bind_groups - o.bind_groups,
            pipelines: self.pipelines - o.pipelines,
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
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

/// The best adapter, or the first whose name contains `ATTNFLOW_ADAPTER` when that is set.
pub(crate) fn best_adapter() -> Result<wgpu::Adapter> {
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
    Ok(chosen)
}

impl GpuContext {
    /// The best adapter, or the first whose name contains `ATTNFLOW_ADAPTER` when that is set.
    pub fn new() -> Result<Self> {
        Self::from_adapter(best_adapter()?)
    }

    /// Creates a device asking for the adapter's own limits (not wgpu's conservative defaults).
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let limits = adapter.limits();
        Self::with_limits(adapter, limits)
    }

    /// A device with these limits (at most the adapter's).
    pub fn with_limits(adapter: wgpu::Adapter, limits: wgpu::Limits) -> Result<Self> {
        let info = adapter.get_info();
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
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
            counters: Counters::default(),
            errors,
            compiled: Mutex::default(),
            capture: None,
        })
    }

    /// The smallest subgroup the adapter may run, when it has subgroup operations.
    pub fn subgroup_min(&self) -> Option<u32> {
        self.features
            .contains(wgpu::Features::SUBGROUP)
            .then_some(self.info.subgroup_min_size)
    }

    pub fn buffer(&self, desc: &wgpu::BufferDescriptor<'_>) -> wgpu::Buffer {
        bump(&self.counters.buffers);
        if self.capture.is_none() {
            return self.device.create_buffer(desc);
        }
        let usage = self.capture_usage(desc.usage);
        let buffer = self
            .device
            .create_buffer(&wgpu::BufferDescriptor { usage, ..*desc });
        self.note_buffer(&buffer, desc.label);
        buffer
    }

    pub fn buffer_init(&self, desc: &wgpu::util::BufferInitDescriptor<'_>) -> wgpu::Buffer {
        bump(&self.counters.buffers);
        if self.capture.is_none() {
            return wgpu::util::DeviceExt::create_buffer_init(&self.device, desc);
        }
        let usage = self.capture_usage(desc.usage);
        let buffer = wgpu::util::DeviceExt::create_buffer_init(
            &self.device,
            &wgpu::util::BufferInitDescriptor { usage, ..*desc },
        );
        self.note_buffer(&buffer, desc.label);
        buffer
    }

    pub fn bind_group(&self, desc: &wgpu::BindGroupDescriptor<'_>) -> wgpu::BindGroup {
        bump(&self.counters.bind_groups);
        self.device.create_bind_group(desc)
    }

    pub fn pipeline(&self, desc: &wgpu::ComputePipelineDescriptor<'_>) -> wgpu::ComputePipeline {
        bump(&self.counters.pipelines);
        self.device.create_compute_pipeline(desc)
    }

    /// Records that a dispatch was recorded (the pass records it itself).
    pub fn count_dispatch(&self) {
        bump(&self.counters.dispatches);
    }

    pub fn submit(&self, commands: wgpu::CommandBuffer) -> wgpu::SubmissionIndex {
        bump(&self.counters.submissions);
        self.queue.submit([commands])
    }

    /// Blocks until the submission `index` (an older one, of the in-flight bound) is done.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        bump(&self.counters.throttles);
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        self.take_error()
    }

    pub(crate) fn count_map(&self) {
        bump(&self.counters.maps);
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
        bump(&self.counters.waits);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        self.take_error()
    }
}
