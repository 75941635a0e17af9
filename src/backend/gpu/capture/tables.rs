//! The side tables of a capturing context, as plain wgpu handles: a leaf that the context
//! (which owns them) and the capture (which fills and reads them) both use, so that neither
//! depends on the other's module nor on the recorder's `Op`.

use std::collections::HashMap;

use serde::Serialize;

/// A binding of a bind group: binding index, buffer, offset, size (None: to the end).
pub(crate) type Bound = (u32, wgpu::Buffer, u64, Option<u64>);

/// The side tables and the window of a capturing context.
#[derive(Default)]
pub(crate) struct Tables {
    pub buffers: HashMap<wgpu::Buffer, (usize, String)>,
    pub next_buffer: usize,
    pub kernels: HashMap<wgpu::ComputePipeline, Kernel>,
    pub groups: HashMap<wgpu::BindGroup, Vec<Bound>>,
    pub window: Option<Window>,
}

/// One kernel as the backend compiled it.
#[derive(Clone, Debug, Serialize)]
pub struct Kernel {
    pub name: String,
    /// The bind group layout in `kernels::layout`'s letters: 'u' uniform, 'd' uniform with a
    /// dynamic offset, 'r' read-only storage, 'w' read-write storage, in binding order.
    pub layout: String,
    /// The spec-conformant WGSL (naga compiled it less `enable subgroups;`).
    pub wgsl: String,
}

/// One recorded dispatch: the pipeline, bind group, dynamic offset and grid of the
/// recorder's op, without the recorder's type.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub label: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub group: wgpu::BindGroup,
    pub offset: Option<u32>,
    pub grid: (u32, u32, u32),
}

/// The dispatches between `begin_capture` and `end_capture`.
#[derive(Default)]
pub(crate) struct Window {
    pub ops: Vec<Recorded>,
    /// Ops recorded since the last submission.
    pub pending: usize,
    /// Submissions that carried dispatches.
    pub submissions: usize,
    pub before: Option<Vec<(wgpu::Buffer, Vec<u8>)>>,
}
