//! One attention layer on the CPU with separate queries and keys: `batch` systems in which
//! `n_queries` query tokens attend to `n_keys` keys (contextual flow maps and `attend`).

use super::{CpuKernel, Kernel, KeyLayouts};
use crate::error::{Result, input};
use crate::model::{Model, Shape};

pub struct CpuAttend {
    kernel: Kernel,
    keys: KeyLayouts,
    shape: Shape,
    n_keys: usize,
}

impl CpuAttend {
    pub fn new(
        model: &Model,
        batch: usize,
        n_queries: usize,
        n_keys: usize,
        d: usize,
    ) -> Result<Self> {
        if n_queries == 0 || n_keys == 0 {
            return Err(input("attention needs at least one query and one key"));
        }
        let shape = Shape::new(batch, n_queries, d)?;
        let kernel = Kernel::new(model, shape, n_keys, CpuKernel::detect())?;
        let keys = kernel.layouts();
        Ok(CpuAttend {
            kernel,
            keys,
            shape,
            n_keys,
        })
    }

    /// The keys (and values), [batch, n_keys, d].
    pub fn set_keys(&mut self, y: &[f32]) -> Result<()> {
        let want = self.shape.batch * self.n_keys * self.shape.d;
        if y.len() != want {
            return Err(input(format!("{} key values, expected {want}", y.len())));
        }
        self.kernel.transpose(y, &mut self.keys);
        Ok(())
    }

    /// Per query the attention output V sum_j w_j y_j (summed over heads), or on the sphere
    /// its tangent projection at the query, [batch, n_queries, d].
    pub fn run(&self, z: &[f32]) -> Result<Vec<f32>> {
        if z.len() != self.shape.len() {
            return Err(input(format!(
                "{} query values, expected {}",
                z.len(),
                self.shape.len()
            )));
        }
        let mut out = vec![0.0; self.shape.len()];
        self.kernel.attention(&self.keys, z, &mut out);
        self.kernel.finish(z, &mut out);
        Ok(out)
    }
}
