//! Capture of exactly what the backend executes, for replay on another WebGPU implementation
//! (tests/gpu_specialisations.rs replays it under Dawn/Tint in headless Chromium; see
//! docs/gpu-portability.md).
//!
//! A context made with [`GpuContext::capturing`] keeps side tables of every buffer (label,
//! size), every kernel (name, bind-group layout letters, its WGSL as `Specialisation::sources`
//! gives it) and every bind group (buffer, offset and size per binding). Between
//! [`GpuContext::begin_capture`] and [`GpuContext::end_capture`] it records every dispatch in
//! order (kernel, bind group, dynamic offset, grid); at the submission that carries them it
//! reads every bound buffer back first (after the queue's pending writes, which the GPU
//! applies before that submission), and at the end again. A context made without it does
//! none of this: one `Option` check per buffer, bind group, pipeline, dispatch and submission.

use std::path::Path;

use serde::Serialize;

pub(crate) mod tables;

pub use tables::Kernel;
use tables::{Recorded, Tables, Window};

use super::GpuContext;
use super::record::Op;
use crate::error::{Error, Result};

/// One bound buffer range.
#[derive(Clone, Debug, Serialize)]
pub struct Binding {
    pub binding: u32,
    /// Index into `Capture::buffers`.
    pub buffer: usize,
    pub offset: u64,
    /// None: to the end of the buffer.
    pub size: Option<u64>,
}

/// One dispatch, in recording order.
#[derive(Clone, Debug, Serialize)]
pub struct Dispatch {
    /// Index into `Capture::kernels`.
    pub kernel: usize,
    pub label: String,
    pub bindings: Vec<Binding>,
    pub dynamic_offset: Option<u32>,
    pub grid: (u32, u32, u32),
}

/// A buffer's label and contents before the first dispatch and after the last.
#[derive(Clone, Debug, Serialize)]
pub struct BufferRecord {
    pub label: String,
    pub size: u64,
    #[serde(skip)]
    pub before: Vec<u8>,
    #[serde(skip)]
    pub after: Vec<u8>,
}

/// Everything one capture window executed.
#[derive(Clone, Debug, Serialize)]
pub struct Capture {
    pub kernels: Vec<Kernel>,
    pub buffers: Vec<BufferRecord>,
    pub dispatches: Vec<Dispatch>,
}

impl Capture {
    /// The index of the buffer labelled `label` (the first, if several are).
    pub fn buffer(&self, label: &str) -> Option<usize> {
        self.buffers.iter().position(|b| b.label == label)
    }

    /// Writes `capture.json` and, per buffer i, `b{i}.bin` (contents before the first
    /// dispatch) into `dir`, which must exist.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let io = |what: &str, e: std::io::Error| Error::File {
            path: dir.join(what),
            msg: format!("cannot write the capture: {e}"),
        };
        let json = serde_json::to_string(self).expect("a capture serialises");
        std::fs::write(dir.join("capture.json"), json).map_err(|e| io("capture.json", e))?;
        for (i, b) in self.buffers.iter().enumerate() {
            let name = format!("b{i}.bin");
            std::fs::write(dir.join(&name), &b.before).map_err(|e| io(&name, e))?;
        }
        Ok(())
    }
}

impl GpuContext {
    /// A capturing context on the best adapter (as `GpuContext::new` picks it) whose buffer
    /// offsets are aligned as every WebGPU implementation accepts (256 bytes, WebGPU's
    /// default; llvmpipe allows 64, SwiftShader under Dawn and NVIDIA GPUs want 256), so
    /// that a capture replays anywhere.
    pub fn for_capture() -> Result<Self> {
        let adapter = super::context::best_adapter()?;
        let mut limits = adapter.limits();
        limits.min_uniform_buffer_offset_alignment =
            limits.min_uniform_buffer_offset_alignment.max(256);
        limits.min_storage_buffer_offset_alignment =
            limits.min_storage_buffer_offset_alignment.max(256);
        Ok(Self::with_limits(adapter, limits)?.capturing())
    }

    /// This context, keeping the side tables a capture needs from now on (every buffer
    /// created from now on can also be copied from, for the read-backs).
    pub fn capturing(mut self) -> Self {
        self.capture = Some(std::sync::Mutex::new(Tables::default()));
        self
    }

    fn tables(&self) -> Option<std::sync::MutexGuard<'_, Tables>> {
        self.capture
            .as_ref()
            .map(|t| t.lock().expect("capture tables"))
    }

    /// The usage a buffer gets: with COPY_SRC added while capturing (for the read-backs).
    pub(crate) fn capture_usage(&self, usage: wgpu::BufferUsages) -> wgpu::BufferUsages {
        let mappable = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE;
        if self.capture.is_some() && !usage.intersects(mappable) {
            usage | wgpu::BufferUsages::COPY_SRC
        } else {
            usage
        }
    }

    pub(crate) fn note_buffer(&self, buffer: &wgpu::Buffer, label: Option<&str>) {
        if let Some(mut t) = self.tables() {
            let id = t.next_buffer;
            t.next_buffer += 1;
            t.buffers
                .insert(buffer.clone(), (id, label.unwrap_or("").to_string()));
        }
    }

    pub(crate) fn note_kernel(
        &self,
        pipeline: &wgpu::ComputePipeline,
        name: &str,
        layout: &str,
        wgsl: &str,
    ) {
        if let Some(mut t) = self.tables() {
            t.kernels.insert(
                pipeline.clone(),
                Kernel {
                    name: name.into(),
                    layout: layout.into(),
                    wgsl: wgsl.into(),
                },
            );
        }
    }

    pub(crate) fn note_group(&self, group: &wgpu::BindGroup, resources: &[wgpu::BindingResource]) {
        if let Some(mut t) = self.tables() {
            let entries = resources
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    wgpu::BindingResource::Buffer(b) => (
                        i as u32,
                        b.buffer.clone(),
                        b.offset,
                        b.size.map(|s| s.get()),
                    ),
                    other => unreachable!("attnflow binds buffers only, not {other:?}"),
                })
                .collect();
            t.groups.insert(group.clone(), entries);
        }
    }

    pub(crate) fn note_op(&self, op: &Op) {
        if let Some(mut t) = self.tables()
            && let Some(w) = t.window.as_mut()
        {
            w.ops.push(Recorded {
                label: op.label,
                pipeline: op.pipeline.clone(),
                group: op.group.clone(),
                offset: op.offset,
                grid: op.grid,
            });
            w.pending += 1;
        }
    }

    /// Starts recording dispatches. Panics without [`GpuContext::capturing`].
    pub fn begin_capture(&self) {
        let mut t = self.tables().expect("a context made with capturing()");
        t.window = Some(Window::default());
    }

    /// Called before every submission: reads back the buffers the first submission that
    /// carries dispatches binds, before it runs.
    pub(crate) fn before_submit(&self) -> Result<()> {
        let Some(mut t) = self.tables() else {
            return Ok(());
        };
        let Some(w) = t.window.as_mut() else {
            return Ok(());
        };
        if w.pending == 0 {
            return Ok(());
        }
        w.pending = 0;
        w.submissions += 1;
        if w.submissions > 1 {
            // A later submission could follow host writes that a replay from the first
            // snapshot would miss.
            return Err(Error::Gpu(
                "a capture covers one submission with dispatches; this one took more \
                 (capture a smaller run)"
                    .into(),
            ));
        }
        let buffers = bound_buffers(&t)?;
        drop(t);
        let before = self.read_all(&buffers)?;
        let mut t = self.tables().expect("capturing");
        t.window.as_mut().expect("window").before = Some(before);
        Ok(())
    }

    /// Ends the window: waits for the GPU, reads every bound buffer again, and returns what
    /// ran.
    pub fn end_capture(&self) -> Result<Capture> {
        self.wait()?;
        let mut t = self.tables().expect("a context made with capturing()");
        let w = t.window.take().expect("begin_capture() first");
        let before = w
            .before
            .ok_or_else(|| Error::Gpu("the capture saw no submitted dispatch".into()))?;
        let mut pipelines: Vec<wgpu::ComputePipeline> = Vec::new();
        let mut dispatches = Vec::new();
        let index = |b: &wgpu::Buffer| before.iter().position(|(x, _)| x == b).expect("bound");
        for op in &w.ops {
            let kernel = match pipelines.iter().position(|p| *p == op.pipeline) {
                Some(i) => i,
                None => {
                    pipelines.push(op.pipeline.clone());
                    pipelines.len() - 1
                }
            };
            let entries = t.groups.get(&op.group).ok_or_else(|| {
                Error::Gpu(format!("{}: a bind group not made by bind_group", op.label))
            })?;
            dispatches.push(Dispatch {
                kernel,
                label: op.label.into(),
                bindings: entries
                    .iter()
                    .map(|(binding, b, offset, size)| Binding {
                        binding: *binding,
                        buffer: index(b),
                        offset: *offset,
                        size: *size,
                    })
                    .collect(),
                dynamic_offset: op.offset,
                grid: op.grid,
            });
        }
        let kernels = pipelines
            .iter()
            .map(|p| {
                t.kernels
                    .get(p)
                    .cloned()
                    .ok_or_else(|| Error::Gpu("a pipeline not made by Kernels::new".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let labels: Vec<String> = before
            .iter()
            .map(|(b, _)| t.buffers.get(b).map(|(_, l)| l.clone()).unwrap_or_default())
            .collect();
        drop(t);
        let handles: Vec<wgpu::Buffer> = before.iter().map(|(b, _)| b.clone()).collect();
        let after = self.read_all(&handles)?;
        let buffers = before
            .into_iter()
            .zip(after)
            .zip(labels)
            .map(|(((b, before), (_, after)), label)| BufferRecord {
                label,
                size: b.size(),
                before,
                after,
            })
            .collect();
        Ok(Capture {
            kernels,
            buffers,
            dispatches,
        })
    }

    /// Copies each buffer into a fresh mappable one (one submission) and reads them.
    fn read_all(&self, buffers: &[wgpu::Buffer]) -> Result<Vec<(wgpu::Buffer, Vec<u8>)>> {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("capture"),
            });
        let copies: Vec<wgpu::Buffer> = buffers
            .iter()
            .map(|b| {
                let copy = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("capture_readback"),
                    size: b.size(),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(b, 0, &copy, 0, b.size());
                copy
            })
            .collect();
        self.queue.submit([encoder.finish()]);
        buffers
            .iter()
            .zip(copies)
            .map(|(b, copy)| Ok((b.clone(), super::map_and_read(self, &copy)?)))
            .collect()
    }
}

/// Every buffer the window's dispatches bind, in order of first use.
fn bound_buffers(t: &Tables) -> Result<Vec<wgpu::Buffer>> {
    let w = t.window.as_ref().expect("window");
    let mut out: Vec<wgpu::Buffer> = Vec::new();
    for op in &w.ops {
        let entries = t.groups.get(&op.group).ok_or_else(|| {
            Error::Gpu(format!("{}: a bind group not made by bind_group", op.label))
        })?;
        for (_, b, _, _) in entries {
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
    }
    Ok(out)
}
