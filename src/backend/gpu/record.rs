//! Recording and submitting work: one compute pass per dispatch into one command encoder,
//! submitted when a step ends or when the plan's budget of streaming dispatches per
//! submission is reached, with at most `in_flight` submissions queued ahead of the GPU.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::GpuContext;
use crate::error::Result;

/// One dispatch to record.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub label: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub group: wgpu::BindGroup,
    /// The dynamic offset of the group's one dynamic uniform, if it has one.
    pub offset: Option<u32>,
    pub grid: (u32, u32, u32),
    /// A streaming (O(n^2)) dispatch, which counts against the submission budget.
    pub streaming: bool,
}

/// GPU timestamps around a sequence of ops (a field evaluation).
#[derive(Clone, Debug)]
pub(crate) struct Stamps {
    pub queries: wgpu::QuerySet,
}

/// The bookkeeping of submissions queued ahead of the GPU: which to wait for, if any, so
/// that at most `in_flight` are queued beyond the one running.
#[derive(Debug)]
pub struct InFlight<T> {
    /// Submissions not known to be done, oldest first, with their sequence numbers.
    queued: VecDeque<(u64, T)>,
    submitted: u64,
    pub in_flight: usize,
}

impl<T> InFlight<T> {
    pub fn new(in_flight: usize) -> Self {
        InFlight {
            queued: VecDeque::new(),
            submitted: 0,
            in_flight,
        }
    }

    /// Records a submission; returns its sequence number (1, 2, ...).
    pub fn submitted(&mut self, index: T) -> u64 {
        self.submitted += 1;
        self.queued.push_back((self.submitted, index));
        self.submitted
    }

    /// Forgets the submissions the device reported done (the first `done` of them).
    pub fn done(&mut self, done: u64) {
        while self.queued.front().is_some_and(|(seq, _)| *seq <= done) {
            self.queued.pop_front();
        }
    }

    /// The oldest submission to wait for, while too many are queued.
    pub fn over(&mut self) -> Option<T> {
        (self.queued.len() > self.in_flight + 1).then(|| self.queued.pop_front().expect("queued").1)
    }

    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    pub fn clear(&mut self) {
        self.queued.clear();
    }
}

pub(crate) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    queue: InFlight<wgpu::SubmissionIndex>,
    /// How many submissions the device reported done (callbacks run during polls).
    done: Arc<AtomicU64>,
    streaming: usize,
    /// Streaming dispatches per submission (None: no limit; the caller submits per step).
    pub per_submission: Option<usize>,
}

impl Recorder {
    pub fn new(per_submission: Option<usize>, in_flight: usize) -> Self {
        Recorder {
            encoder: None,
            queue: InFlight::new(in_flight),
            done: Arc::new(AtomicU64::new(0)),
            streaming: 0,
            per_submission,
        }
    }

    pub fn encoder(&mut self, ctx: &GpuContext) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            ctx.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("attnflow"),
                })
        })
    }

    /// Records the ops in order, each in its own compute pass; with `stamps`, timestamps at
    /// the start of the first and the end of the last. Submits whenever the streaming
    /// budget of a submission is reached, timestamps or not.
    pub fn record(&mut self, ctx: &GpuContext, ops: &[Op], stamps: Option<&Stamps>) -> Result<()> {
        let last = ops.len().saturating_sub(1);
        for (i, op) in ops.iter().enumerate() {
            let writes = stamps.and_then(|s| {
                (i == 0 || i == last).then(|| wgpu::ComputePassTimestampWrites {
                    query_set: &s.queries,
                    beginning_of_pass_write_index: (i == 0).then_some(0),
                    end_of_pass_write_index: (i == last).then_some(1),
                })
            });
            {
                let enc = self.encoder(ctx);
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(op.label),
                    timestamp_writes: writes,
                });
                pass.set_pipeline(&op.pipeline);
                match op.offset {
                    Some(o) => pass.set_bind_group(0, &op.group, &[o]),
                    None => pass.set_bind_group(0, &op.group, &[]),
                }
                pass.dispatch_workgroups(op.grid.0, op.grid.1, op.grid.2);
            }
            ctx.count_dispatch();
            if ctx.capture.is_some() {
                ctx.note_op(op);
            }
            if op.streaming {
                self.streaming += 1;
                // Also between an evaluation's two timestamps: a query set's writes may lie in
                // different submissions of one queue, and an evaluation held in one
                // submission could outlast a watchdog (issue 20).
                if self.per_submission.is_some_and(|m| self.streaming >= m) {
                    self.submit(ctx)?;
                }
            }
        }
        Ok(())
    }

    /// Submits what is recorded; then, if more than `in_flight` submissions are queued
    /// ahead of the GPU, waits for the oldest.
    pub fn submit(&mut self, ctx: &GpuContext) -> Result<()> {
        if let Some(enc) = self.encoder.take() {
            if ctx.capture.is_some() {
                ctx.before_submit()?;
            }
            let index = ctx.submit(enc.finish());
            let done = self.done.clone();
            ctx.queue.on_submitted_work_done(move || {
                done.fetch_add(1, Ordering::Relaxed);
            });
            self.queue.submitted(index);
            self.streaming = 0;
            // Let finished submissions report themselves, without blocking.
            let _ = ctx.device.poll(wgpu::PollType::Poll);
            self.queue.done(self.done.load(Ordering::Relaxed));
            while let Some(oldest) = self.queue.over() {
                ctx.wait_for(oldest)?;
            }
        }
        ctx.take_error()
    }

    /// Submits and waits for everything.
    pub fn sync(&mut self, ctx: &GpuContext) -> Result<()> {
        self.submit(ctx)?;
        self.queue.clear();
        ctx.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn at_most_in_flight_submissions_wait_beyond_the_running_one() {
        let mut q = InFlight::new(2);
        // The GPU finishes nothing: from the fourth submission on, each waits for the
        // oldest, so that three are queued (one running, two waiting).
        let mut waited = Vec::new();
        for s in 1..=6u32 {
            q.submitted(s);
            while let Some(w) = q.over() {
                waited.push(w);
            }
            assert!(q.queued() <= 3);
        }
        assert_eq!(waited, vec![1, 2, 3]);
        // Submissions reported done are forgotten without waiting.
        q.done(5);
        assert_eq!(q.queued(), 1);
        q.submitted(7);
        q.submitted(8);
        assert_eq!(q.over(), None);
        q.submitted(9);
        assert_eq!(q.over(), Some(6));
    }
}
