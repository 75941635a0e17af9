//! Adaptive stepping on the GPU (docs/adaptive.md, `integrate::adaptive`): the per-system
//! operations of [`crate::integrate::Backend`] with everything on the device.
//!
//! - `combine_systems`, `interpolate` and the vector of `scaled_sums`: one dispatch of
//!   shaders/adaptive_combine.wgsl per four stages (a pair of up to eight stages: two, the
//!   second adding to the first's sum in `acc`), a coefficient per system and stage from a
//!   table on the device.
//! - `scaled_sums`: the error sum reduced on the device in f32, per workgroup of 64 tokens
//!   (adaptive_combine, mode 2), then per system (adaptive_reduce.wgsl): one f32 per system
//!   is read back.
//! - `accept_systems`: buffer copies of the accepted systems' ranges (state <- stage, and
//!   the FSAL copy of the last stage into the first).
//!
//! Everything is made in `prepare_adaptive`: the two pipelines (their text depends on neither
//! d nor the adapter profile: d is a runtime size), the buffers, the bind groups. The
//! per-call parameters and coefficients go to rings of slots on the device (dynamic offsets),
//! written with `queue.write_buffer`; a full ring submits what was recorded first, as
//! `rk_combine`'s slots do.

use super::kernels::{AdaptSlot, ReduceSlot, aligned, bind_group, compile_fixed, slot_binding};
use super::record::Op;
use super::{GpuBackend, map_and_read};
use crate::error::{Error, Result};

pub const ADAPTIVE_COMBINE: &str = include_str!("../../../shaders/adaptive_combine.wgsl");
pub const ADAPTIVE_REDUCE: &str = include_str!("../../../shaders/adaptive_reduce.wgsl");

/// The adaptive kernels by name: one text each for every d and every adapter profile.
pub const KERNELS: [(&str, &str); 2] = [
    ("adaptive_combine", ADAPTIVE_COMBINE),
    ("adaptive_reduce", ADAPTIVE_REDUCE),
];

/// Most stages an adaptive pair may have on the GPU (two dispatches of four).
pub const MAX_ADAPTIVE_STAGES: usize = 8;
/// Stages one dispatch of adaptive_combine reads (storage buffers: the table, state, stage,
/// work and four stages make WebGPU's portable limit of eight per stage).
const STAGES_PER_DISPATCH: usize = 4;
/// Invocations per workgroup of both kernels (`WG` in their text).
const WG: u32 = 64;
/// Parameter slots (one per dispatch) and coefficient tables (one per operation) kept on
/// the device; a step of dopri5 uses at most 2 x 8 and 8 between two read-backs.
const PARAM_SLOTS: usize = 64;
const TABLE_SLOTS: usize = 16;

/// What adaptive_combine writes (`Adapt::mode`).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Acc = 0,
    Stage = 1,
    Error = 2,
}

/// What v starts from (`Adapt::base`).
#[derive(Clone, Copy, PartialEq)]
enum Base {
    Zero = 0,
    State = 1,
    Acc = 2,
}

/// The device objects of adaptive stepping, made once by `prepare_adaptive`.
pub(crate) struct Adaptive {
    combine: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    /// adaptive_combine bound to stages 0-3 and 4-7 (repeating the last where fewer).
    groups: [wgpu::BindGroup; 2],
    reduce_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    param_stride: u64,
    table: wgpu::Buffer,
    /// [acc: batch n d][partials: batch groups][sums: batch], f32.
    pub work: wgpu::Buffer,
    sums_readback: wgpu::Buffer,
    acc_readback: wgpu::Buffer,
    next_param: usize,
    next_table: usize,
    /// Workgroups per system, and along x (the rest along y); z is the system.
    groups_per_system: u32,
    groups_x: u32,
    groups_y: u32,
    stages: usize,
    /// One table, dense: [batch][MAX_ADAPTIVE_STAGES].
    row: Vec<f32>,
}

impl Adaptive {
    /// Bytes allocated on the device.
    pub fn device_bytes(&self) -> u64 {
        self.work.size() + self.table.size() + self.params.size()
    }
}

impl GpuBackend {
    /// The k buffers (as `prepare`) and everything adaptive stepping needs on the device.
    pub(crate) fn prepare_adaptive_stages(&mut self, stages: usize) -> Result<()> {
        if stages == 0 || stages > MAX_ADAPTIVE_STAGES {
            return Err(Error::Input(format!(
                "the GPU backend steps adaptively with 1 to {MAX_ADAPTIVE_STAGES} stages, not \
                 {stages}"
            )));
        }
        let shape = self.shape;
        let (n, d, batch) = (shape.n, shape.d, shape.batch);
        let limits = self.ctx.limits.clone();
        let max_groups = self.max_groups;
        let groups = n.div_ceil(WG as usize) as u64;
        let groups_x = groups.min(u64::from(max_groups)).max(1);
        let groups_y = groups.div_ceil(groups_x).max(1);
        let len = shape.len() as u64;
        let work_floats = len + batch as u64 * (groups + 1);
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let table_floats = (TABLE_SLOTS * batch * MAX_ADAPTIVE_STAGES) as u64;
        if groups_y > u64::from(max_groups)
            || batch as u64 > u64::from(max_groups)
            || 4 * work_floats > max_binding
            || 4 * table_floats > max_binding
        {
            return Err(Error::Limit(format!(
                "adaptive stepping of {batch} x {n} tokens of d = {d} needs a work buffer of \
                 {} bytes and a grid of {groups} x {batch} workgroups, beyond this adapter's \
                 limits (max_storage_buffer_binding_size {max_binding}, \
                 max_compute_workgroups_per_dimension {max_groups}): use a fixed-step \
                 integrator or fewer tokens",
                4 * work_floats
            )));
        }
        crate::integrate::Backend::prepare(self, stages)?;
        let ctx = self.ctx.clone();
        let checked = self.kernels.spec.checked;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let (combine, combine_layout) =
            compile_fixed(&ctx, checked, "adaptive_combine", ADAPTIVE_COMBINE)?;
        let (reduce, reduce_layout) =
            compile_fixed(&ctx, checked, "adaptive_reduce", ADAPTIVE_REDUCE)?;
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let param_stride = aligned(
            std::mem::size_of::<AdaptSlot>(),
            limits.min_uniform_buffer_offset_alignment,
        );
        let params = buffer(
            "adaptive_params",
            param_stride * PARAM_SLOTS as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let table = buffer(
            "adaptive_table",
            4 * table_floats,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        let work = buffer(
            "adaptive_work",
            4 * work_floats,
            wgpu::BufferUsages::STORAGE | copy,
        );
        let reduce_params = buffer(
            "adaptive_reduce",
            std::mem::size_of::<ReduceSlot>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        ctx.queue.write_buffer(
            &reduce_params,
            0,
            bytemuck::bytes_of(&ReduceSlot {
                groups: groups as u32,
                partials: len as u32,
                sums: (len + batch as u64 * groups) as u32,
                pad: 0,
            }),
        );
        let readback = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let sums_readback = buffer("adaptive_sums_readback", 4 * batch as u64, readback);
        let acc_readback = buffer("adaptive_dense_readback", 4 * len, readback);
        let k = |s: usize| self.k[s.min(stages - 1)].as_entire_binding();
        let group = |first: usize| {
            bind_group(
                &ctx,
                "adaptive_combine",
                &combine_layout,
                &[
                    slot_binding::<AdaptSlot>(&params),
                    table.as_entire_binding(),
                    self.state.as_entire_binding(),
                    self.stage.as_entire_binding(),
                    work.as_entire_binding(),
                    k(first),
                    k(first + 1),
                    k(first + 2),
                    k(first + 3),
                ],
            )
        };
        let groups_ab = [group(0), group(STAGES_PER_DISPATCH)];
        let reduce_group = bind_group(
            &ctx,
            "adaptive_reduce",
            &reduce_layout,
            &[reduce_params.as_entire_binding(), work.as_entire_binding()],
        );
        // read_state during stepping (outputs a step lands on) reuses this one.
        if self.readback.as_ref().is_none_or(|b| b.size() < 4 * len) {
            self.readback = Some(buffer("readback", 4 * len, readback));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("setting up adaptive stepping: {e}")));
        }
        self.adaptive = Some(Adaptive {
            combine,
            reduce,
            groups: groups_ab,
            reduce_group,
            params,
            param_stride,
            table,
            work,
            sums_readback,
            acc_readback,
            next_param: 0,
            next_table: 0,
            groups_per_system: groups as u32,
            groups_x: groups_x as u32,
            groups_y: groups_y as u32,
            stages,
            row: vec![0.0; batch * MAX_ADAPTIVE_STAGES],
        });
        self.ctx.take_error()
    }

    fn adaptive(&mut self) -> Result<&mut Adaptive> {
        self.adaptive.as_mut().ok_or_else(|| {
            Error::Input("the GPU backend was not prepared for adaptive stepping".into())
        })
    }

    /// Records v = base + sum_j coeffs[b][j] k[stages[j]] with its output (`mode`): one
    /// dispatch per four stages, the first ones summing into acc.
    fn record_sum(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        base: Base,
        mode: Mode,
        renormalise: bool,
        tolerances: (f64, f64),
    ) -> Result<()> {
        let shape = self.shape;
        let batch = shape.batch;
        let m = stages.len();
        if coeffs.len() != batch * m {
            return Err(Error::Input(format!(
                "{} coefficients for {batch} systems of {m} stages",
                coeffs.len()
            )));
        }
        let available = self.adaptive()?.stages;
        if let Some(&s) = stages.iter().find(|&&s| s >= available) {
            return Err(Error::Input(format!(
                "stage {s} does not exist ({available} prepared)"
            )));
        }
        // Stages read: 0..top, in dispatches of four.
        let top = stages.iter().map(|&s| s + 1).max().unwrap_or(0);
        let dispatches = top.div_ceil(STAGES_PER_DISPATCH).max(1);
        // A full ring: what was recorded may still read the old slots; submit it first.
        let full = {
            let a = self.adaptive()?;
            a.next_table == TABLE_SLOTS || a.next_param + dispatches > PARAM_SLOTS
        };
        if full {
            self.flush()?;
            let a = self.adaptive()?;
            a.next_table = 0;
            a.next_param = 0;
        }
        let ctx = self.ctx.clone();
        let a = self.adaptive.as_mut().expect("checked above");
        a.row.iter_mut().for_each(|c| *c = 0.0);
        for b in 0..batch {
            for (j, &s) in stages.iter().enumerate() {
                a.row[b * MAX_ADAPTIVE_STAGES + s] += coeffs[b * m + j] as f32;
            }
        }
        let table_slot = a.next_table;
        a.next_table += 1;
        let slot_base = table_slot * batch * MAX_ADAPTIVE_STAGES;
        ctx.queue
            .write_buffer(&a.table, 4 * slot_base as u64, bytemuck::cast_slice(&a.row));
        let mut ops = Vec::with_capacity(dispatches + 1);
        for p in 0..dispatches {
            let last = p + 1 == dispatches;
            let first = p * STAGES_PER_DISPATCH;
            let slot = AdaptSlot {
                mode: if last { mode } else { Mode::Acc } as u32,
                base: if p == 0 { base } else { Base::Acc } as u32,
                terms: (top.saturating_sub(first)).min(STAGES_PER_DISPATCH) as u32,
                first: first as u32,
                slot_base: slot_base as u32,
                stride: MAX_ADAPTIVE_STAGES as u32,
                renormalise: (last && renormalise) as u32,
                n: shape.n as u32,
                d: shape.d as u32,
                groups_x: a.groups_x,
                groups: a.groups_per_system,
                partials: shape.len() as u32,
                atol: tolerances.0 as f32,
                rtol: tolerances.1 as f32,
                pad0: 0,
                pad1: 0,
            };
            let offset = a.next_param as u64 * a.param_stride;
            a.next_param += 1;
            ctx.queue
                .write_buffer(&a.params, offset, bytemuck::bytes_of(&slot));
            ops.push(Op {
                label: "adaptive_combine",
                pipeline: a.combine.clone(),
                group: a.groups[p].clone(),
                offset: Some(offset as u32),
                grid: (a.groups_x, a.groups_y, batch as u32),
                streaming: false,
            });
        }
        if mode == Mode::Error {
            ops.push(Op {
                label: "adaptive_reduce",
                pipeline: a.reduce.clone(),
                group: a.reduce_group.clone(),
                offset: None,
                grid: (batch as u32, 1, 1),
                streaming: false,
            });
        }
        self.recorder.record(&self.ctx, &ops, None)
    }

    /// Copies `bytes` of `src` from `offset` to a MAP_READ buffer made in prepare and reads
    /// it (everything recorded is submitted and done after it).
    fn read_range(&mut self, offset: u64, bytes: u64, sums: bool) -> Result<Vec<u8>> {
        let a = self.adaptive.as_ref().expect("prepared");
        let (work, dst) = (
            a.work.clone(),
            if sums {
                a.sums_readback.clone()
            } else {
                a.acc_readback.clone()
            },
        );
        self.recorder
            .encoder(&self.ctx)
            .copy_buffer_to_buffer(&work, offset, &dst, 0, bytes);
        self.recorder.submit(&self.ctx)?;
        let out = map_and_read(&self.ctx, &dst)?;
        // Every submission is done: the rings start over.
        let a = self.adaptive()?;
        a.next_param = 0;
        a.next_table = 0;
        Ok(out)
    }

    pub(crate) fn adaptive_combine(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<()> {
        self.record_sum(
            stages,
            coeffs,
            Base::State,
            Mode::Stage,
            renormalise,
            (0.0, 0.0),
        )
    }

    pub(crate) fn adaptive_scaled_sums(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        with_state: bool,
        tolerances: (f64, f64),
        out: &mut [f64],
    ) -> Result<()> {
        let base = if with_state { Base::State } else { Base::Zero };
        self.record_sum(stages, coeffs, base, Mode::Error, false, tolerances)?;
        let shape = self.shape;
        let groups = self.adaptive()?.groups_per_system as u64;
        let sums = 4 * (shape.len() as u64 + shape.batch as u64 * groups);
        let bytes = self.read_range(sums, 4 * shape.batch as u64, true)?;
        let got: &[f32] = bytemuck::cast_slice(&bytes);
        out.iter_mut()
            .zip(got)
            .for_each(|(o, &g)| *o = f64::from(g));
        Ok(())
    }

    pub(crate) fn adaptive_accept(
        &mut self,
        accepted: &[bool],
        copy: Option<(usize, usize)>,
    ) -> Result<()> {
        let available = self.adaptive()?.stages;
        if let Some((from, to)) = copy
            && (from >= available || to >= available)
        {
            return Err(Error::Input(format!(
                "stages {from} -> {to} do not exist ({available} prepared)"
            )));
        }
        let per = 4 * (self.shape.n * self.shape.d) as u64;
        let (state, stage) = (self.state.clone(), self.stage.clone());
        let ks = copy.map(|(from, to)| (self.k[from].clone(), self.k[to].clone()));
        let enc = self.recorder.encoder(&self.ctx);
        // Runs of consecutive accepted systems: one copy each (systems are contiguous).
        let mut b = 0;
        while b < accepted.len() {
            if !accepted[b] {
                b += 1;
                continue;
            }
            let start = b;
            while b < accepted.len() && accepted[b] {
                b += 1;
            }
            let (offset, size) = (start as u64 * per, (b - start) as u64 * per);
            enc.copy_buffer_to_buffer(&stage, offset, &state, offset, size);
            if let Some((from, to)) = &ks {
                enc.copy_buffer_to_buffer(from, offset, to, offset, size);
            }
        }
        // One submission per step.
        self.flush()
    }

    pub(crate) fn adaptive_interpolate(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<Vec<f64>> {
        self.record_sum(
            stages,
            coeffs,
            Base::State,
            Mode::Acc,
            renormalise,
            (0.0, 0.0),
        )?;
        let bytes = self.read_range(0, 4 * self.shape.len() as u64, false)?;
        Ok(bytemuck::cast_slice::<u8, f32>(&bytes)
            .iter()
            .map(|&v| f64::from(v))
            .collect())
    }
}
