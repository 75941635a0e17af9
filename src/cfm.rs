//! Contextual flow maps (docs/model.md §3): m query tokens z evolve against a context of n tokens
//! y,  dz_i/dt = P_{z_i}^perp sum_j w_ij V y_j  with w the attention weights of z_i over the
//! context. The context is frozen, or evolves by self-attention (SA of the same model, full
//! mask); queries never act on the context. Each evaluation costs O(m n) (plus O(n^2) for an
//! evolving context) and memory stays O((m + n) d): the layers are [`crate::attend`]'s.
//!
//! The flow is a dynamics of its own ([`Cfm`] implements [`Backend`] over the state
//! [queries; context]) driven by the one stepping engine, [`Stepper`]: Runge-Kutta stages are
//! formed on the host in f64 (O((m + n) d) per stage), and the attention runs on the chosen
//! backend.

use rayon::prelude::*;

use crate::attend::{Attend, LayerShape};
use crate::backend::reference::combine_by_system;
use crate::config::BackendChoice;
use crate::error::{Result, input};
use crate::integrate::{Backend, Integrator, NoiseStep, Slot, Stepper, Tokens};
use crate::model::observables::PairStats;
use crate::model::{Mask, Model, Shape};

/// Whether the context stays as drawn or evolves by self-attention.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum ContextMode {
    Frozen,
    Evolving,
}

impl ContextMode {
    pub fn name(self) -> &'static str {
        match self {
            ContextMode::Frozen => "frozen",
            ContextMode::Evolving => "evolving",
        }
    }
}

/// A contextual flow map in progress: queries z [batch, m, d] and context y [batch, n, d].
pub struct Cfm {
    model: Model,
    shape: LayerShape,
    mode: ContextMode,
    queries: Box<dyn Attend>,
    context: Option<Box<dyn Attend>>,
    pub z: Vec<f64>,
    pub y: Vec<f64>,
    /// Stage inputs and the field of each stage (queries and context).
    zs: Vec<f64>,
    ys: Vec<f64>,
    kz: Vec<Vec<f64>>,
    ky: Vec<Vec<f64>>,
    /// Steps taken.
    layer: u32,
    /// The backend used, and the note for the user when `auto` fell back.
    pub kind: BackendChoice,
    pub note: Option<String>,
}

impl Cfm {
    /// Builds the layers on the requested backend; `z0` [batch, m, d], `y0` [batch, n, d].
    pub fn new(
        choice: BackendChoice,
        model: &Model,
        shape: LayerShape,
        mode: ContextMode,
        z0: Vec<f64>,
        y0: Vec<f64>,
    ) -> Result<Self> {
        if model.mask != Mask::Full || model.alibi.is_some() {
            return Err(input(
                "contextual flow maps use the full mask: queries see the whole context",
            ));
        }
        let LayerShape { batch, m, n, d } = shape;
        if z0.len() != batch * m * d || y0.len() != batch * n * d {
            return Err(input(format!(
                "queries hold {} values and the context {}, expected [{batch}, {m}, {d}] and \
                 [{batch}, {n}, {d}]",
                z0.len(),
                y0.len()
            )));
        }
        let (mut queries, kind, note) = crate::backend::build_layer(choice, model, shape)?;
        queries.set_keys(&y0)?;
        let context = match mode {
            ContextMode::Frozen => None,
            ContextMode::Evolving => {
                let square = LayerShape { batch, m: n, n, d };
                Some(crate::backend::build_layer(kind, model, square)?.0)
            }
        };
        Ok(Cfm {
            model: model.clone(),
            shape,
            mode,
            queries,
            context,
            z: z0,
            y: y0,
            zs: Vec::new(),
            ys: Vec::new(),
            kz: Vec::new(),
            ky: Vec::new(),
            layer: 0,
            kind,
            note,
        })
    }

    pub fn describe(&self) -> String {
        self.queries.describe()
    }

    /// Pair interactions per step of `integrator`.
    pub fn pairs_per_step(&self, integrator: Integrator) -> f64 {
        let LayerShape { batch, .. } = self.shape;
        (batch * integrator.tableau().stages()) as f64 * self.pairs_per_evaluation()
    }

    /// Pair interactions of one field evaluation of one draw.
    pub fn pairs_per_evaluation(&self) -> f64 {
        let LayerShape { m, n, .. } = self.shape;
        let per_eval = match self.mode {
            ContextMode::Frozen => m * n,
            ContextMode::Evolving => m * n + n * n,
        };
        per_eval as f64 * self.model.head_count() as f64
    }

    /// One step of size h: every stage evaluates the queries against the context at that
    /// stage (and the context's own field when it evolves); the end of the step renormalises
    /// on the sphere.
    pub fn step(&mut self, integrator: Integrator, h: f64) -> Result<()> {
        self.advance(integrator, h)?;
        self.check_finite(integrator, h)
    }

    /// [`Cfm::step`] without the check of the queries.
    pub fn advance(&mut self, integrator: Integrator, h: f64) -> Result<()> {
        let stepper = Stepper::new(&self.model, integrator)?;
        if self.kz.len() != stepper.tableau().stages() {
            stepper.prepare(self)?;
        }
        let layer = self.layer;
        stepper.step(self, h, layer)?;
        self.layer += 1;
        Ok(())
    }

    /// Fails with [`crate::Error::NonFinite`], naming the step and the likely cause, when a
    /// query is NaN or infinite after the last step (of size h).
    pub fn check_finite(&self, integrator: Integrator, h: f64) -> Result<()> {
        if let Some(i) = self.z.iter().position(|v| !v.is_finite()) {
            return Err(crate::error::Error::NonFinite(format!(
                "query coordinate {i} became {} in step {} (t = {} to {}): {}",
                self.z[i],
                self.layer,
                self.layer.saturating_sub(1) as f64 * h,
                self.layer as f64 * h,
                self.blow_up_cause(integrator, h)
            )));
        }
        Ok(())
    }
}

impl Cfm {
    /// What made the queries overflow, read from the model's growth bound
    /// (model/stability.rs, as for a run): USA weights beyond the backend's floating point
    /// range, growth in R^d, or a step longer than the field allows.
    fn blow_up_cause(&self, integrator: Integrator, h: f64) -> String {
        use crate::model::{Attention, Geometry};
        let growth = crate::model::stability::Growth::of(&self.model, self.shape.n);
        let (exponent, lipschitz) = (growth.exponent, growth.lipschitz);
        let f64_backend = self.kind == crate::config::BackendChoice::Reference;
        let (limit, range) = if f64_backend {
            (709.0, "f64 (e^709)")
        } else {
            (88.0, "f32 (e^88)")
        };
        let usa = self.model.attention == Attention::Usa;
        let stable = growth.stable_h(integrator);
        if usa && exponent > limit {
            // f64 helps only where a practical step would then be stable.
            let reference = if !f64_backend && exponent <= 709.0 && stable > 1e-6 {
                ", --backend reference (f64)"
            } else {
                ""
            };
            return format!(
                "USA weights exp(beta <Qz, Ky>) reach about e^{exponent:.0}, beyond {range}: use \
                 SA{reference} or a smaller beta"
            );
        }
        if self.model.geometry == Geometry::Euclidean {
            return "in R^d the flow can grow without bound: a shorter --t-end, more --steps or \
                    the sphere"
                .into();
        }
        if h > stable {
            format!(
                "the step h = {h} is too long for this field (its speed changes by up to about \
                 {lipschitz:.3e} per unit move): steps below about {stable:.3e} would be stable; \
                 use more --steps or a smaller beta"
            )
        } else {
            format!(
                "the step h = {h} is below the field's stability bound (about {stable:.3e}): check \
                 the context, the queries and the weights"
            )
        }
    }
}

/// A flow's saved queries: the times (0 and every `save_every` steps, and the last step) and
/// the queries [batch, m, d] at each.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub snapshots: Vec<Vec<f64>>,
}

/// The infinite-context twins (docs/model.md §4) of the initial queries z0 [batch, m, d] of a
/// flow with one head against a context drawn from `law`, at each of `times`:
/// [times, batch * m, d], solved by the adaptive DOP853 engine to `tol`.
pub fn infinite_twins(
    law: &crate::meanfield::VmfLaw,
    head: &crate::model::Weights,
    beta: f64,
    z0: &[f64],
    times: &[f64],
    tol: f64,
) -> Vec<f64> {
    use crate::meanfield::{Adaptive, LawWeights, integrate_infinite_cfm};
    let d = head.d;
    let lw = LawWeights {
        q: Some(&head.q),
        k: Some(&head.k),
        v: Some(&head.v),
    };
    let tol = Adaptive {
        rtol: tol,
        atol: tol,
    };
    // Each query's twin, at every saved time: [queries][saves][d].
    let twins: Vec<Vec<Vec<f64>>> = z0
        .par_chunks(d)
        .map(|z| integrate_infinite_cfm(law, &lw, beta, z, times, &tol))
        .collect();
    let mut out = Vec::with_capacity(times.len() * z0.len());
    for s in 0..times.len() {
        for twin in &twins {
            out.extend_from_slice(&twin[s]);
        }
    }
    out
}

/// The flow as a dynamics over [queries; context] for the stepping engine. Its state is the
/// queries (what `read_state` returns); the context rides along, evolving or not.
impl Backend for Cfm {
    fn describe(&self) -> String {
        self.queries.describe()
    }
    fn shape(&self) -> Shape {
        let LayerShape { batch, m, d, .. } = self.shape;
        Shape { batch, n: m, d }
    }
    fn prepare(&mut self, stages: usize) -> Result<()> {
        self.kz = vec![Vec::new(); stages];
        self.ky = vec![Vec::new(); stages];
        Ok(())
    }
    fn field(&mut self, input: Slot, stage: usize) -> Result<()> {
        let (z, y) = match input {
            Slot::State => (&self.z, &self.y),
            Slot::Stage => (&self.zs, &self.ys),
        };
        if let Some(ctx) = self.context.as_mut() {
            // The queries see the context at this stage (the copy is O(n d), the evaluation
            // O(n^2 d)): adaptive steps accept some systems and not others.
            self.queries.set_keys(y)?;
            ctx.set_keys(y)?;
            self.ky[stage] = ctx.run(y)?;
        }
        self.kz[stage] = self.queries.run(z)?;
        Ok(())
    }
    fn combine(
        &mut self,
        dst: Slot,
        terms: &[(usize, f64)],
        renormalise: bool,
        noise: Option<NoiseStep>,
    ) -> Result<()> {
        if noise.is_some() {
            return Err(input("contextual flow maps take no noise"));
        }
        let d = self.shape.d;
        let evolving = self.context.is_some();
        let mut z = combine(&self.z, &self.kz, terms);
        let mut y = if evolving {
            combine(&self.y, &self.ky, terms)
        } else {
            Vec::new()
        };
        if renormalise {
            crate::model::geometry::normalise_tokens(&mut z, d);
            crate::model::geometry::normalise_tokens(&mut y, d);
        }
        match dst {
            Slot::Stage => {
                self.zs = z;
                if evolving {
                    self.ys = y;
                }
            }
            Slot::State => {
                self.z = z;
                if evolving {
                    self.y = y;
                    self.queries.set_keys(&self.y)?;
                }
            }
        }
        Ok(())
    }
    /// Adaptive steps on every backend, on the host in f64 like the fixed ones (only the
    /// attention runs on the backend). With an evolving context the context is stepped, its
    /// error controlled and its step accepted or rejected with the queries of its system: the
    /// error norm of a system is the RMS over its (m + n) d components, queries and context.
    fn supports_adaptive(&self) -> bool {
        true
    }
    fn norm_components(&self) -> usize {
        let LayerShape { m, n, d, .. } = self.shape;
        match self.context {
            Some(_) => (m + n) * d,
            None => m * d,
        }
    }
    fn combine_systems(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<()> {
        let LayerShape { batch, m, n, d } = self.shape;
        let mut zs = std::mem::take(&mut self.zs);
        zs.resize(self.z.len(), 0.0);
        let queries = Shape { batch, n: m, d };
        combine_by_system(
            queries,
            &self.z,
            &self.kz,
            stages,
            coeffs,
            renormalise,
            &mut zs,
        );
        self.zs = zs;
        if self.context.is_some() {
            let mut ys = std::mem::take(&mut self.ys);
            ys.resize(self.y.len(), 0.0);
            let context = Shape { batch, n, d };
            combine_by_system(
                context,
                &self.y,
                &self.ky,
                stages,
                coeffs,
                renormalise,
                &mut ys,
            );
            self.ys = ys;
        }
        Ok(())
    }
    fn scaled_sums(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        with_state: bool,
        atol: f64,
        rtol: f64,
        out: &mut [f64],
    ) -> Result<()> {
        use crate::backend::reference::scaled_sums_by_system;
        let LayerShape { m, n, d, .. } = self.shape;
        let buffers = (&self.z[..], &self.zs[..], &self.kz[..]);
        scaled_sums_by_system(m * d, buffers, stages, coeffs, with_state, atol, rtol, out);
        if self.context.is_some() {
            let mut context = vec![0.0; out.len()];
            let buffers = (&self.y[..], &self.ys[..], &self.ky[..]);
            scaled_sums_by_system(
                n * d,
                buffers,
                stages,
                coeffs,
                with_state,
                atol,
                rtol,
                &mut context,
            );
            out.iter_mut().zip(&context).for_each(|(o, c)| *o += c);
        }
        Ok(())
    }
    fn accept_systems(&mut self, accepted: &[bool], copy: Option<(usize, usize)>) -> Result<()> {
        let LayerShape { m, n, d, .. } = self.shape;
        let (z, zs, kz) = (&mut self.z, &self.zs, &mut self.kz);
        crate::backend::reference::accept_by_system(m * d, z, zs, kz, accepted, copy);
        if self.context.is_some() {
            let (y, ys, ky) = (&mut self.y, &self.ys, &mut self.ky);
            crate::backend::reference::accept_by_system(n * d, y, ys, ky, accepted, copy);
        }
        Ok(())
    }
    /// The dense output of the queries (what a flow saves); the context's stages enter it
    /// through the queries' fields, evaluated against the context at each stage.
    fn interpolate(
        &mut self,
        stages: &[usize],
        coeffs: &[f64],
        renormalise: bool,
    ) -> Result<Vec<f64>> {
        let mut out = vec![0.0; self.z.len()];
        let shape = Backend::shape(self);
        combine_by_system(
            shape,
            &self.z,
            &self.kz,
            stages,
            coeffs,
            renormalise,
            &mut out,
        );
        Ok(out)
    }
    fn read_state(&mut self) -> Result<Tokens> {
        Ok(Tokens::F64(self.z.clone()))
    }
    fn read_field(&mut self, stage: usize) -> Result<Tokens> {
        Ok(Tokens::F64(self.kz[stage].clone()))
    }
    fn pair_stats(&mut self) -> Result<Vec<PairStats>> {
        Err(input(
            "contextual flow maps have no pair statistics: the queries do not interact",
        ))
    }
}

/// base + sum_j c_j k_j.
fn combine(base: &[f64], ks: &[Vec<f64>], coeffs: &[(usize, f64)]) -> Vec<f64> {
    let mut out = base.to_vec();
    for &(j, c) in coeffs {
        out.par_iter_mut()
            .zip(ks[j].par_iter())
            .for_each(|(o, k)| *o += c * k);
    }
    out
}

/// Euclidean distance between matching tokens of two [.., d] arrays.
pub fn distances(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    a.chunks(d)
        .zip(b.chunks(d))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}
