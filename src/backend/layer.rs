//! One attention layer (queries and keys apart, [`Attend`]) on each backend: the arms of the
//! factory [`super::build_layer`], wrapping each backend's layer in f64 at its boundary.

#[cfg(feature = "gpu")]
use std::sync::Arc;

use rayon::prelude::*;

use super::BackendChoice;
use super::cpu::CpuKernel;
use super::cpu::attend::CpuAttend;
#[cfg(feature = "gpu")]
use super::gpu::attend::GpuAttend;
#[cfg(feature = "gpu")]
use super::gpu::{GpuContext, GpuOptions};
use super::reference;
use super::traits::{Attend, LayerShape};
use crate::error::{Result, input};
use crate::model::geometry::tangent_project;
use crate::model::{Geometry, Model};

/// The f64 reference: [`reference::attention_output`] literally.
struct ReferenceAttend {
    model: Model,
    shape: LayerShape,
    keys: Vec<f64>,
}

impl Attend for ReferenceAttend {
    fn describe(&self) -> String {
        format!("reference (f64, {} threads)", rayon::current_num_threads())
    }
    fn set_keys(&mut self, y: &[f64]) -> Result<()> {
        check_len(
            "key",
            y.len(),
            self.shape.batch * self.shape.n * self.shape.d,
        )?;
        self.keys = y.to_vec();
        Ok(())
    }
    fn run(&mut self, z: &[f64]) -> Result<Vec<f64>> {
        let LayerShape { batch, m, d, .. } = self.shape;
        check_len("query", z.len(), batch * m * d)?;
        let mut a =
            reference::attention_output(&self.model, &self.model.heads, batch, d, z, &self.keys);
        if self.model.geometry == Geometry::Sphere {
            a.par_chunks_mut(d)
                .zip(z.par_chunks(d))
                .for_each(|(a, z)| tangent_project(z, a));
        }
        Ok(a)
    }
    fn is_f64(&self) -> bool {
        true
    }
}

struct Cpu(CpuAttend);

impl Attend for Cpu {
    fn describe(&self) -> String {
        format!(
            "cpu ({} threads, {})",
            rayon::current_num_threads(),
            CpuKernel::detect().name()
        )
    }
    fn set_keys(&mut self, y: &[f64]) -> Result<()> {
        self.0.set_keys(&to_f32(y))
    }
    fn run(&mut self, z: &[f64]) -> Result<Vec<f64>> {
        Ok(to_f64(&self.0.run(&to_f32(z))?))
    }
}

#[cfg(feature = "gpu")]
struct Gpu(GpuAttend, Arc<GpuContext>);

#[cfg(feature = "gpu")]
impl Attend for Gpu {
    fn describe(&self) -> String {
        format!("gpu: {}", self.1.describe())
    }
    fn set_keys(&mut self, y: &[f64]) -> Result<()> {
        self.0.set_keys(&to_f32(y))
    }
    fn run(&mut self, z: &[f64]) -> Result<Vec<f64>> {
        self.0.set_queries(&to_f32(z))?;
        Ok(to_f64(&self.0.run()?))
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.par_iter().map(|&x| x as f32).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.par_iter().map(|&x| f64::from(x)).collect()
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(input(format!("{got} {what} values, expected {want}")));
    }
    Ok(())
}

/// The attention layer of a resolved backend request (the factory is
/// [`super::build_layer`]).
pub(super) fn layer_on(
    picked: &super::Picked,
    model: &Model,
    shape: LayerShape,
) -> Result<Box<dyn Attend>> {
    Ok(match (picked.kind, &picked.gpu) {
        (BackendChoice::Reference, _) => Box::new(ReferenceAttend {
            model: model.clone(),
            shape,
            keys: Vec::new(),
        }),
        #[cfg(feature = "gpu")]
        (BackendChoice::Gpu, Some(ctx)) => {
            let layer = GpuAttend::new(ctx.clone(), model, shape, GpuOptions::default())?;
            Box::new(Gpu(layer, ctx.clone()))
        }
        _ => Box::new(Cpu(CpuAttend::new(
            model,
            shape.batch,
            shape.m,
            shape.n,
            shape.d,
        )?)),
    })
}
