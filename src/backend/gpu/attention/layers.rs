//! Per-layer weights on the device: the model (whose `select_layer` maps a step to its layer)
//! and every layer's f32 values of each weight that varies, resident on the device when they
//! fit (uploaded once; a layer's slice is copied into the working buffers when the schedule
//! reaches it) and written from the host at each change of layer otherwise.

use super::heads::HeadStore;
use super::mlp::MlpPass;
use crate::backend::gpu::GpuContext;
use crate::model::Model;

/// Which working buffer a per-layer part is selected into.
#[derive(Clone, Copy, Debug)]
enum LayerTarget {
    Scores,
    Values,
    MlpA,
    MlpB,
    MlpW,
}

/// Where every layer's values of one part are kept.
enum LayerSource {
    /// On the device, all layers one after another.
    Resident(wgpu::Buffer),
    /// On the host, f32 bytes of all layers one after another.
    Host(Vec<u8>),
}

/// Per-layer weights on the device: the model (whose `select_layer` maps a step to its layer)
/// and, for each weight that varies, every layer's f32 values.
pub(crate) struct LayerStore {
    model: Model,
    parts: Vec<(LayerTarget, u64, LayerSource)>,
}

impl LayerStore {
    /// The per-layer weights of `model` (None: it has none), resident when all layers fit in
    /// `cap` bytes and every part in one buffer.
    pub fn new(ctx: &GpuContext, model: &Model, d: usize, cap: u64) -> Option<Self> {
        let per = model.per_layer.as_ref()?;
        let f32s = |v: &mut Vec<u8>, x: &[f64]| {
            v.extend(x.iter().flat_map(|&x| (x as f32).to_ne_bytes()));
        };
        let mut parts: Vec<(LayerTarget, u64, Vec<u8>)> = Vec::new();
        if let Some(layers) = &per.heads {
            let (mut scores, mut values) = (Vec::new(), Vec::new());
            for heads in layers {
                for w in heads {
                    f32s(&mut scores, &w.score_matrix());
                    f32s(&mut values, &w.v);
                }
            }
            let bytes = 4 * (layers[0].len() * d * d) as u64;
            parts.push((LayerTarget::Scores, bytes, scores));
            parts.push((LayerTarget::Values, bytes, values));
        }
        if let Some(mlps) = &per.mlps {
            let (mut a, mut b, mut w) = (Vec::new(), Vec::new(), Vec::new());
            for m in mlps {
                f32s(&mut a, &m.a);
                f32s(&mut b, &m.b);
                f32s(&mut w, &m.w);
            }
            let m = mlps[0].hidden as u64;
            parts.push((LayerTarget::MlpA, 4 * m * d as u64, a));
            parts.push((LayerTarget::MlpB, 4 * m, b));
            parts.push((LayerTarget::MlpW, 4 * m * d as u64, w));
        }
        let total: u64 = parts.iter().map(|p| p.2.len() as u64).sum();
        let resident = total <= cap
            && parts
                .iter()
                .all(|p| p.2.len() as u64 <= ctx.limits.max_buffer_size);
        let parts = parts
            .into_iter()
            .map(|(target, bytes, values)| {
                let source = if resident {
                    LayerSource::Resident(ctx.buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("per_layer_weights"),
                        contents: &values,
                        usage: wgpu::BufferUsages::COPY_SRC,
                    }))
                } else {
                    LayerSource::Host(values)
                };
                (target, bytes, source)
            })
            .collect();
        Some(LayerStore {
            model: model.clone(),
            parts,
        })
    }

    /// Whether every layer is held on the device.
    pub fn resident(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p.2, LayerSource::Resident(_)))
    }

    /// Bytes held on the device for the layers.
    pub fn device_bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| match &p.2 {
                LayerSource::Resident(b) => b.size(),
                LayerSource::Host(_) => 0,
            })
            .sum()
    }

    /// When step `step` starts a new layer of the schedule, writes that layer's weights into
    /// the working buffers of `heads` and `mlp` (a device copy from the resident layers, or a
    /// write from the host), queued before the next submission. Returns whether it did.
    pub fn select_layer(
        &mut self,
        ctx: &GpuContext,
        step: u32,
        heads: &HeadStore,
        mlp: Option<&MlpPass>,
    ) -> bool {
        let Some(l) = self.model.select_layer(step) else {
            return false;
        };
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("select_layer"),
            });
        for (target, bytes, source) in &self.parts {
            let dst = match target {
                LayerTarget::Scores => &heads.score_matrix,
                LayerTarget::Values => &heads.value_matrix,
                LayerTarget::MlpA => &mlp.expect("a perceptron").a,
                LayerTarget::MlpB => &mlp.expect("a perceptron").b,
                LayerTarget::MlpW => &mlp.expect("a perceptron").w,
            };
            let offset = l as u64 * bytes;
            match source {
                LayerSource::Resident(all) => {
                    encoder.copy_buffer_to_buffer(all, offset, dst, 0, *bytes);
                }
                LayerSource::Host(all) => {
                    ctx.queue
                        .write_buffer(dst, 0, &all[offset as usize..(offset + bytes) as usize])
                }
            }
        }
        // Through the counted path, like every submission (tests/submissions_counted.rs).
        ctx.submit(encoder.finish());
        true
    }
}
