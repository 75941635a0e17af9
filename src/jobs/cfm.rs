//! The `cfm` job: a contextual flow map (m queries moved by attention to a context of n
//! tokens, frozen or evolving), with the exact infinite-context twin of every query for a
//! uniform or vMF context. Writes final.npy, traj.npy, traj_t.npy (context_final.npy when the
//! context evolves; infinite.npy, distance.npy and distance.csv with the twin) and cfm.toml.

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::attend::{LayerShape, OneLayer, TokenSource, derived_seed};
use crate::backend::BackendChoice;
use crate::cfm::{Cfm, ContextMode, Trajectory, distances};
use crate::error::{Result, file_error, input};
use crate::integrate::Integrator;
use crate::integrate::adaptive::{
    AdaptiveStepper, Cursor, F32_MIN_RTOL, Options as AdaptiveOptions, SystemStats,
};
use crate::meanfield::VmfLaw;
use crate::model::init::InitSpec;
use crate::model::{Attention, Geometry, Mask, Model};
use crate::npy;
use crate::options::{BackendOpt, LayerOpts, OutputOpts};
use crate::output::{Kind, Output, Provenance};
use crate::run::Progress;

use super::driver::{Boundary, Saves, Schedule, StepLoop, drive, with_progress};

/// Everything `attnflow cfm` takes but the output folder.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CfmOptions {
    /// Number of query tokens per draw (ignored with a --queries file).
    #[arg(long, default_value_t = 64)]
    pub m: usize,
    /// Number of context tokens per draw (ignored with a --context file).
    #[arg(long, default_value_t = 10000)]
    pub n: usize,
    /// Token dimension (files set their own).
    #[arg(long, default_value_t = 3)]
    pub d: usize,
    /// The context law: uniform, gaussian, vmf:KAPPA[:MU1,MU2,...] (mean direction e_1 unless
    /// given), or file:PATH.npy ([n, d], or [seeds, n, d]).
    #[arg(long, visible_alias = "context-law", default_value = "uniform")]
    pub context: String,
    /// The queries' law, in the same forms.
    #[arg(long, default_value = "uniform")]
    pub queries: String,
    /// frozen: the context stays as drawn; evolving: it moves by self-attention (SA of the
    /// same model), O(n^2) per evaluation.
    #[arg(long, default_value = "frozen")]
    pub context_mode: ContextMode,
    #[command(flatten)]
    #[serde(flatten)]
    pub layer: LayerOpts,
    /// Geometry: sphere or euclidean.
    #[arg(long, default_value = "sphere")]
    pub geometry: Geometry,
    /// Q, K, V: identity, random:SEED, or a folder with Q.npy, K.npy, V.npy.
    #[arg(long, default_value = "identity")]
    pub qkv: String,
    /// Integrator: euler, heun, rk4, or adaptive bosh3, dopri5, tsit5 (with --rtol, --atol;
    /// the queries are saved at the same times, by the pair's dense output); not ros23.
    #[arg(long, default_value = "rk4")]
    pub integrator: Integrator,
    /// Relative tolerance of an adaptive --integrator (RMS over each draw's queries, and its
    /// context when it evolves, as for run; docs/adaptive.md) [default: 1e-6].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// Absolute tolerance of an adaptive --integrator [default: 1e-9].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    /// Largest step of an adaptive --integrator [default: none].
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h_max: Option<f64>,
    /// Final time T.
    #[arg(long, default_value_t = 5.0, allow_hyphen_values = true)]
    pub t_end: f64,
    /// Number of steps; h = T / steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Save the queries every K steps (and at t = 0) [default: about 10 saves].
    #[arg(long, value_name = "K")]
    pub save_every: Option<usize>,
    /// Also solve the infinite-context twin of every query (the context law in place of the
    /// sample; needs a uniform or vmf context, frozen, SA on the sphere) with an adaptive
    /// 8th-order integrator to --tol, and write the distances to it.
    #[arg(long)]
    pub infinite: bool,
    /// Tolerance of the infinite-context integrator (relative and absolute).
    #[arg(long, default_value_t = 1e-12)]
    pub tol: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub backend: BackendOpt,
}

impl CfmOptions {
    /// The options of `attnflow cfm FLAGS...` (see [`crate::options::from_flags`]).
    pub fn from_flags(flags: &[String]) -> Result<Self> {
        crate::options::from_flags(flags)
    }
}

/// What cfm.toml records besides the provenance.
#[derive(Serialize)]
struct Record<'a> {
    m: usize,
    n: usize,
    d: usize,
    context: &'a str,
    queries: &'a str,
    context_mode: &'a str,
    seeds: usize,
    seed: u64,
    model: &'a str,
    geometry: &'a str,
    qkv: &'a str,
    beta_rule: &'a str,
    gamma: f64,
    beta: f64,
    integrator: &'a str,
    t_end: f64,
    steps: usize,
    save_every: usize,
    infinite: bool,
    tol: f64,
    backend: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtol: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    atol: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h_max: Option<f64>,
}

/// The distances of the queries to their infinite-context twins at one saved time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwinDistance {
    pub t: f64,
    pub mean: f64,
    pub rms: f64,
    pub max: f64,
}

/// A flow map computed: the queries at the saved times, and what ran.
#[derive(Clone, Debug)]
pub struct CfmResult {
    pub shape: LayerShape,
    pub beta: f64,
    pub times: Vec<f64>,
    /// The queries at each saved time, each [seeds, m, d].
    pub snapshots: Vec<Vec<f64>>,
    /// The context at the end ([seeds, n, d]; as drawn when frozen).
    pub context_final: Vec<f64>,
    /// With `infinite`: the twins at each saved time (concatenated like the snapshots), the
    /// distance of every query to its twin [times, seeds, m], and their summary per time.
    pub infinite: Option<Vec<f64>>,
    pub distance: Option<Vec<f64>>,
    pub distance_summary: Vec<TwinDistance>,
    /// Seconds of the twin solves.
    pub infinite_s: f64,
    pub backend: BackendChoice,
    pub device: String,
    pub note: Option<String>,
    /// Seconds of the flow itself.
    pub elapsed_s: f64,
    /// Pair interactions of one step of the flow (of a fixed-step integrator).
    pub pairs_per_step: f64,
    /// Pair interactions of the whole flow (an adaptive pair's: of its field evaluations).
    pub pairs: f64,
    pub files: Vec<String>,
}

fn tokens(spec: &str, count: usize, what: &str) -> Result<TokenSource> {
    let spec = spec.trim();
    if spec.starts_with("file:") || spec.ends_with(".npy") {
        TokenSource::parse(spec, what)
    } else {
        TokenSource::parse(&format!("{spec}:{count}"), what)
    }
}

/// Context or queries handed over in memory (a binding's arrays), read in place: each
/// `(shape, values)` with shape [n, d] (shared by every draw) or [seeds, n, d], row-major; they
/// replace --context / --queries. With `keep`, they are written beside the results
/// (context.npy, queries.npy) and cfm.toml names those files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Given<'a> {
    pub context: Option<(&'a [usize], crate::model::init::TokenSlice<'a>)>,
    pub queries: Option<(&'a [usize], crate::model::init::TokenSlice<'a>)>,
    pub keep: bool,
}

/// Where the context or the queries come from: a law or a file, or memory.
enum Source<'a> {
    Spec(TokenSource),
    Memory(
        &'static str,
        &'a [usize],
        crate::model::init::TokenSlice<'a>,
    ),
}

impl Source<'_> {
    fn size(&self, d: usize) -> Result<(usize, usize)> {
        match self {
            Source::Spec(t) => t.size(d),
            Source::Memory(_, [n, d] | [_, n, d], _) => Ok((*n, *d)),
            Source::Memory(what, shape, _) => Err(input(format!(
                "{what} must have 2 or 3 dimensions ([n, d] or [S, n, d]), got shape {shape:?}"
            ))),
        }
    }

    fn file(&self) -> Option<&std::path::Path> {
        match self {
            Source::Spec(t) => t.file(),
            Source::Memory(..) => None,
        }
    }

    fn generate(&self, batch: usize, d: usize, seed: u64) -> Result<Vec<f64>> {
        match self {
            Source::Spec(t) => t.generate(batch, d, seed),
            Source::Memory(what, shape, values) => {
                let (n, d) = self.size(d)?;
                InitSpec::from_tokens(
                    what,
                    shape,
                    *values,
                    crate::model::Shape::new(batch, n, d)?,
                    Geometry::Sphere,
                )
            }
        }
    }

    /// What cfm.toml records: the law or file, or the kept copy of an array (`kept`).
    fn record(&self, kept: Option<&std::path::Path>) -> String {
        match (self, kept) {
            (Source::Spec(t), _) => t.to_config_string(),
            (Source::Memory(..), Some(p)) => format!("file:{}", p.display()),
            (Source::Memory(_, shape, _), None) => format!("array {shape:?} (not kept)"),
        }
    }
}

/// Computes the flow map (and its twins) and writes `out`. `command` is recorded in the
/// provenance; `say` gets the lines a user sees; `progress` counts the steps.
pub fn run(
    opts: &CfmOptions,
    out: &OutputOpts,
    command: &str,
    say: &mut dyn FnMut(String),
    progress: &mut dyn Progress,
) -> Result<CfmResult> {
    run_with(opts, out, command, say, progress, Given::default())
}

/// [`run`] with the context or the queries given in memory.
pub fn run_with(
    opts: &CfmOptions,
    out: &OutputOpts,
    command: &str,
    say: &mut dyn FnMut(String),
    progress: &mut dyn Progress,
    given: Given<'_>,
) -> Result<CfmResult> {
    let Plan {
        context,
        queries,
        shape,
        beta,
        model,
        law,
        adaptive,
    } = plan(opts, given)?;
    let LayerShape { batch, m, n, d } = shape;
    let (attention, mode) = (model.attention, opts.context_mode);
    let output = open_output(opts, out, [&context, &queries])?;
    let y0 = context.generate(batch, d, opts.layer.seed)?;
    let z0 = queries.generate(batch, d, derived_seed(opts.layer.seed, 1))?;
    let kept = keep_given(&output, given, [&context, &queries])?;
    say(format!(
        "attnflow cfm: {m} queries against a {} context of {n} tokens, d = {d}, {batch} draw(s), \
         {} beta = {beta}, {} T = {} in {}",
        mode.name(),
        attention.name().to_uppercase(),
        opts.integrator.name(),
        opts.t_end,
        match adaptive {
            Some(a) => format!("adaptive steps (rtol {:e}, atol {:e})", a.rtol, a.atol),
            None => format!("{} steps", opts.steps),
        }
    ));
    let started = crate::output::unix_now();
    let mut flow = Cfm::new(opts.backend.choice, &model, shape, mode, z0.clone(), y0)?;
    if let Some(note) = &flow.note {
        say(format!("note: {note}"));
    }
    let device = flow.describe();
    say(format!("backend: {device}"));
    let save_every = opts.save_every.unwrap_or((opts.steps / 10).max(1)).max(1);
    let start = std::time::Instant::now();
    let (Trajectory { times, snapshots }, steps) = match adaptive {
        Some(a) => {
            let (trajectory, steps) =
                adaptive_flow(&mut flow, &model, opts, a, save_every, progress)?;
            (trajectory, Some(steps))
        }
        None => (fixed_flow(&mut flow, opts, save_every, progress)?, None),
    };
    let elapsed_s = start.elapsed().as_secs_f64();
    let (mut files, traj_shape) = write_flow(&output, &flow, shape, mode, &times, &snapshots)?;
    let twins = match law {
        Some(law) => {
            let solve = TwinSolve {
                law: &law,
                model: &model,
                beta,
                z0: &z0,
                shape,
                traj_shape: &traj_shape,
            };
            let twins = solve.write(&output, opts, &times, &snapshots, say)?;
            files.extend(["infinite.npy", "distance.npy", "distance.csv"]);
            twins
        }
        None => Twins::default(),
    };
    let sources = [
        context.record(kept[0].as_deref()),
        queries.record(kept[1].as_deref()),
    ];
    let record = record_of(opts, shape, beta, &sources, save_every, flow.kind, adaptive);
    let provenance = provenance_of(opts, steps.as_ref(), &device, started, elapsed_s, command);
    write_record(&output, &record, &provenance, steps.as_ref())?;
    files.push("cfm.toml");
    output.commit()?;
    Ok(CfmResult {
        shape,
        beta,
        times,
        snapshots,
        pairs_per_step: flow.pairs_per_step(opts.integrator),
        pairs: match &steps {
            Some(s) => {
                let evaluations: u64 = s.adaptive.systems.iter().map(|s| s.evaluations).sum();
                evaluations as f64 * flow.pairs_per_evaluation()
            }
            None => flow.pairs_per_step(opts.integrator) * opts.steps as f64,
        },
        context_final: flow.y,
        infinite: twins.infinite,
        distance: twins.distance,
        distance_summary: twins.summary,
        infinite_s: twins.infinite_s,
        backend: flow.kind,
        device,
        note: flow.note,
        elapsed_s,
        files: files.into_iter().map(String::from).collect(),
    })
}

/// What a flow map computes, checked before any work: the context and the queries, the
/// sizes, the layer, the law of the twins and the adaptive tolerances.
struct Plan<'a> {
    context: Source<'a>,
    queries: Source<'a>,
    shape: LayerShape,
    beta: f64,
    model: Model,
    law: Option<VmfLaw>,
    adaptive: Option<AdaptiveOptions>,
}

/// The [`Plan`] of `opts` with the arrays `given`, or why they are refused.
fn plan<'a>(opts: &CfmOptions, given: Given<'a>) -> Result<Plan<'a>> {
    check_sizes(opts)?;
    let context = match given.context {
        Some((shape, values)) => Source::Memory("context", shape, values),
        None => Source::Spec(tokens(&opts.context, opts.n, "--context")?),
    };
    let queries = match given.queries {
        Some((shape, values)) => Source::Memory("queries", shape, values),
        None => Source::Spec(tokens(&opts.queries, opts.m, "--queries")?),
    };
    let (n, d) = context.size(opts.d)?;
    let (m, dq) = queries.size(d)?;
    if dq != d {
        return Err(input(format!(
            "the queries have d = {dq} but the context has d = {d}"
        )));
    }
    // Context and queries in f64 with a few stage copies, the d x d weights.
    crate::limits::ensure_layer_memory("cfm", opts.layer.seeds, n, m, d, 64)?;
    let OneLayer {
        rule: _,
        beta,
        attention,
        weights,
    } = crate::attend::one_layer("cfm", &opts.layer, &opts.qkv, n, d)?;
    if d < 2 {
        return Err(input(format!(
            "d = {d} is too small: tokens live in R^d with d >= 2"
        )));
    }
    // The population law of the context, for the infinite-context twin.
    let law = twin_law(opts, &context, attention, d)?;
    if !(opts.tol.is_finite() && opts.tol > 0.0 && opts.tol < 1.0) {
        return Err(input(format!(
            "--tol must be in (0, 1), got {:e}",
            opts.tol
        )));
    }
    let adaptive = adaptive_options(opts)?;
    let batch = opts.layer.seeds;
    let model = Model::new(
        attention,
        opts.geometry,
        Mask::Full,
        weights,
        vec![beta; batch],
    );
    Ok(Plan {
        context,
        queries,
        shape: LayerShape { batch, m, n, d },
        beta,
        model,
        law,
        adaptive,
    })
}

/// final.npy, traj.npy, traj_t.npy and, when the context evolves, context_final.npy: the
/// files and traj.npy's shape.
fn write_flow(
    output: &Output,
    flow: &Cfm,
    shape: LayerShape,
    mode: ContextMode,
    times: &[f64],
    snapshots: &[Vec<f64>],
) -> Result<(Vec<&'static str>, Vec<usize>)> {
    let LayerShape { batch, m, n, d } = shape;
    let tokens_shape = |count: usize| -> Vec<usize> {
        if batch == 1 {
            vec![count, d]
        } else {
            vec![batch, count, d]
        }
    };
    let mut files = vec!["final.npy", "traj.npy", "traj_t.npy"];
    npy::write(&output.path("final.npy"), &tokens_shape(m), &flow.z)?;
    let mut traj_shape = vec![snapshots.len()];
    traj_shape.extend(tokens_shape(m));
    npy::write(&output.path("traj.npy"), &traj_shape, &snapshots.concat())?;
    npy::write(&output.path("traj_t.npy"), &[times.len()], times)?;
    if mode == ContextMode::Evolving {
        npy::write(&output.path("context_final.npy"), &tokens_shape(n), &flow.y)?;
        files.push("context_final.npy");
    }
    Ok((files, traj_shape))
}

/// Refuses sizes that leave nothing to compute.
fn check_sizes(opts: &CfmOptions) -> Result<()> {
    if opts.layer.seeds == 0 {
        return Err(input("--seeds must be at least 1"));
    }
    if opts.steps == 0 {
        return Err(input("steps must be at least 1"));
    }
    if !opts.t_end.is_finite() || opts.t_end <= 0.0 {
        return Err(input(format!(
            "t-end must be a finite number > 0, got {}",
            opts.t_end
        )));
    }
    if opts.m == 0 {
        return Err(input(
            "m = 0: a contextual flow map needs at least one query",
        ));
    }
    if opts.n == 0 {
        return Err(input(
            "n = 0: a contextual flow map needs at least one context token",
        ));
    }
    Ok(())
}

/// With --infinite, the population law of the context (which the twins solve against);
/// refuses a flow or a context the twins do not cover.
fn twin_law(
    opts: &CfmOptions,
    context: &Source<'_>,
    attention: Attention,
    d: usize,
) -> Result<Option<VmfLaw>> {
    if !opts.infinite {
        return Ok(None);
    }
    if opts.context_mode != ContextMode::Frozen
        || attention != Attention::Sa
        || opts.geometry != Geometry::Sphere
    {
        return Err(input(
            "--infinite solves the frozen-context SA flow on the sphere: use \
             --context-mode frozen --model sa --geometry sphere",
        ));
    }
    match context {
        Source::Spec(TokenSource::Law {
            law: InitSpec::Uniform | InitSpec::Gaussian,
            ..
        }) => Ok(Some(VmfLaw::uniform(d))),
        Source::Spec(TokenSource::Law {
            law: InitSpec::Vmf { kappa, mu },
            ..
        }) => {
            let mu = mu.clone().unwrap_or_else(|| {
                let mut e1 = vec![0.0; d];
                e1[0] = 1.0;
                e1
            });
            Ok(Some(
                VmfLaw::new(mu, *kappa).map_err(|e| input(format!("--context: {e}")))?,
            ))
        }
        _ => Err(input(
            "--infinite needs the context's law: --context uniform or vmf:KAPPA[:MU], \
             not a file or an array",
        )),
    }
}

/// The output folder, locked and checked before any work: the files read (`sources`, the
/// weights) are never replaced.
fn open_output(opts: &CfmOptions, out: &OutputOpts, sources: [&Source<'_>; 2]) -> Result<Output> {
    let mut inputs: Vec<std::path::PathBuf> = sources
        .into_iter()
        .filter_map(|t| t.file().map(|p| p.to_path_buf()))
        .collect();
    inputs.extend(crate::model::weights::QkvSpec::parse(&opts.qkv)?.files());
    Output::open(&out.out, Kind::Cfm, out.force, &inputs)
}

/// Arrays given in memory, kept beside the results when asked (context.npy, queries.npy):
/// the copies' paths, for cfm.toml.
fn keep_given(
    output: &Output,
    given: Given<'_>,
    sources: [&Source<'_>; 2],
) -> Result<[Option<std::path::PathBuf>; 2]> {
    let mut kept: [Option<std::path::PathBuf>; 2] = [None, None];
    if !given.keep {
        return Ok(kept);
    }
    let dir = std::fs::canonicalize(output.dir())
        .map_err(|e| file_error(output.dir(), format!("cannot open: {e}")))?;
    for (k, (source, name)) in sources
        .into_iter()
        .zip(["context.npy", "queries.npy"])
        .enumerate()
    {
        if let Source::Memory(_, shape, values) = source {
            output.claim(name)?;
            let path = output.path(name);
            match values {
                crate::model::init::TokenSlice::F64(v) => npy::write(&path, shape, v)?,
                crate::model::init::TokenSlice::F32(v) => npy::write(&path, shape, v)?,
            }
            kept[k] = Some(dir.join(name));
        }
    }
    Ok(kept)
}

/// The flow with a fixed-step --integrator: the queries at the start, every `save_every`
/// steps and at the last step.
fn fixed_flow(
    flow: &mut Cfm,
    opts: &CfmOptions,
    save_every: usize,
    progress: &mut dyn Progress,
) -> Result<Trajectory> {
    let h = opts.t_end / opts.steps as f64;
    fixed_steps(flow, opts.integrator, h, opts.steps, save_every, progress)
}

/// Integrates `steps` steps of size h from the flow's current state on the one step driver
/// (the queries checked after every step), saving the queries at the start, every
/// `save_every` steps and at the last step. A stop asked for before the last step writes
/// nothing ([`crate::Error::Interrupted`]: a flow map is not resumable).
pub fn fixed_steps(
    flow: &mut Cfm,
    integrator: Integrator,
    h: f64,
    steps: usize,
    save_every: usize,
    progress: &mut dyn Progress,
) -> Result<Trajectory> {
    let mut fixed = FixedFlow {
        flow,
        integrator,
        h,
        trajectory: Trajectory {
            times: vec![0.0],
            snapshots: Vec::new(),
        },
    };
    fixed.trajectory.snapshots.push(fixed.flow.z.clone());
    let schedule = Schedule {
        first: 0,
        steps,
        metrics_every: 0,
        saves: Saves::Every(save_every.max(1)),
        checkpoint_every: Some(0),
        check_every_step: true,
    };
    let driven = drive(&schedule, progress, &mut fixed)?;
    if driven.interrupted.is_some() && driven.steps_done < steps {
        return Err(crate::Error::Interrupted(format!(
            "the flow map stopped at step {} of {steps} on request; nothing was written (a \
             flow map is not resumable: run it again)",
            driven.steps_done
        )));
    }
    Ok(fixed.trajectory)
}

/// A fixed-step flow in progress.
struct FixedFlow<'a> {
    flow: &'a mut Cfm,
    integrator: Integrator,
    h: f64,
    trajectory: Trajectory,
}

impl StepLoop for FixedFlow<'_> {
    fn step(&mut self, _step: usize) -> Result<()> {
        self.flow.advance(self.integrator, self.h)
    }

    fn check_finite(&mut self, _checked: usize, _step: usize) -> Result<()> {
        self.flow.check_finite(self.integrator, self.h)
    }

    fn observe(&mut self, at: &Boundary) -> Result<()> {
        if at.snapshot {
            self.trajectory.times.push(at.step as f64 * self.h);
            self.trajectory.snapshots.push(self.flow.z.clone());
        }
        Ok(())
    }
}

/// What the infinite-context twins give: the twins at each saved time, the distances of the
/// queries to them and their summary per time, and the seconds of the solves.
#[derive(Default)]
struct Twins {
    infinite: Option<Vec<f64>>,
    distance: Option<Vec<f64>>,
    summary: Vec<TwinDistance>,
    infinite_s: f64,
}

/// The twins of the initial queries `z0` against `law`.
struct TwinSolve<'a> {
    law: &'a VmfLaw,
    model: &'a Model,
    beta: f64,
    z0: &'a [f64],
    shape: LayerShape,
    traj_shape: &'a [usize],
}

impl TwinSolve<'_> {
    /// Solves the twins at `times` and writes infinite.npy, distance.csv and distance.npy
    /// (the distances to the `snapshots`).
    fn write(
        &self,
        output: &Output,
        opts: &CfmOptions,
        times: &[f64],
        snapshots: &[Vec<f64>],
        say: &mut dyn FnMut(String),
    ) -> Result<Twins> {
        let LayerShape { batch, m, d, .. } = self.shape;
        let istart = std::time::Instant::now();
        let twins = crate::cfm::infinite_twins(
            self.law,
            &self.model.heads[0],
            self.beta,
            self.z0,
            times,
            opts.tol,
        );
        npy::write(&output.path("infinite.npy"), self.traj_shape, &twins)?;
        let per = batch * m * d;
        let mut summary = Vec::with_capacity(snapshots.len());
        let mut dist = Vec::with_capacity(snapshots.len() * batch * m);
        for (s, snap) in snapshots.iter().enumerate() {
            let dd = distances(snap, &twins[s * per..(s + 1) * per], d);
            summary.push(TwinDistance {
                t: times[s],
                mean: dd.iter().sum::<f64>() / dd.len() as f64,
                rms: (dd.iter().map(|v| v * v).sum::<f64>() / dd.len() as f64).sqrt(),
                max: dd.iter().copied().fold(0.0, f64::max),
            });
            dist.extend(dd);
        }
        write_distances(&output.path("distance.csv"), &summary)?;
        let mut dshape = vec![snapshots.len()];
        if batch > 1 {
            dshape.push(batch);
        }
        dshape.push(m);
        npy::write(&output.path("distance.npy"), &dshape, &dist)?;
        let infinite_s = istart.elapsed().as_secs_f64();
        let last = summary.last().expect("t = 0 is always saved");
        say(format!(
            "infinite-context twins: {} queries in {infinite_s:.2} s (tol {:e}); at T = {}: \
             distance mean {:.4e}, rms {:.4e}, max {:.4e}",
            batch * m,
            opts.tol,
            opts.t_end,
            last.mean,
            last.rms,
            last.max
        ));
        Ok(Twins {
            infinite: Some(twins),
            distance: Some(dist),
            summary,
            infinite_s,
        })
    }
}

/// What cfm.toml records besides the provenance; `sources`: what the context and the
/// queries were.
fn record_of<'a>(
    opts: &'a CfmOptions,
    shape: LayerShape,
    beta: f64,
    sources: &'a [String; 2],
    save_every: usize,
    kind: BackendChoice,
    adaptive: Option<AdaptiveOptions>,
) -> Record<'a> {
    let LayerShape { batch, m, n, d } = shape;
    let mode = opts.context_mode;
    Record {
        m,
        n,
        d,
        context: &sources[0],
        queries: &sources[1],
        context_mode: mode.name(),
        seeds: batch,
        seed: opts.layer.seed,
        model: opts.layer.model.name(),
        geometry: opts.geometry.name(),
        qkv: &opts.qkv,
        beta_rule: opts.layer.beta_rule.name(),
        gamma: opts.layer.beta,
        beta,
        integrator: opts.integrator.name(),
        t_end: opts.t_end,
        steps: opts.steps,
        save_every,
        infinite: opts.infinite,
        tol: opts.tol,
        backend: kind.name(),
        rtol: adaptive.map(|a| a.rtol),
        atol: adaptive.map(|a| a.atol),
        h_max: adaptive.map(|a| a.h_max).filter(|h| h.is_finite()),
    }
}

/// cfm.toml's provenance: the steps done (an adaptive pair's: the most accepted of a draw).
fn provenance_of(
    opts: &CfmOptions,
    steps: Option<&StepTable>,
    device: &str,
    started: u64,
    elapsed_s: f64,
    command: &str,
) -> Provenance {
    let accepted = steps.map(|s| {
        s.adaptive
            .systems
            .iter()
            .map(|s| s.accepted)
            .max()
            .unwrap_or(0) as usize
    });
    Provenance {
        steps_done: Some(accepted.unwrap_or(opts.steps)),
        t_done: Some(opts.t_end),
        ..Provenance::finished(
            opts.backend.choice.name(),
            device.to_string(),
            started,
            elapsed_s,
            command,
        )
    }
}

/// cfm.toml: the record, its provenance and, with an adaptive pair, its step statistics.
fn write_record(
    output: &Output,
    record: &Record<'_>,
    provenance: &Provenance,
    steps: Option<&StepTable>,
) -> Result<()> {
    let path = output.path("cfm.toml");
    let mut text = crate::output::record_toml(record, provenance)?;
    if let Some(steps) = steps {
        text.push('\n');
        text.push_str(
            &toml::to_string(steps)
                .map_err(|e| input(format!("cannot serialise the step statistics: {e}")))?,
        );
    }
    std::fs::write(&path, text).map_err(|e| file_error(&path, format!("cannot write: {e}")))
}

/// The tolerances of an adaptive --integrator; refuses them with a fixed-step one.
fn adaptive_options(opts: &CfmOptions) -> Result<Option<AdaptiveOptions>> {
    if opts.integrator == Integrator::Ros23 {
        return Err(input(
            "--integrator ros23 is on `attnflow run` only (a particle system on the f64 \
             reference field); cfm's flow takes bosh3, dopri5 or tsit5 (or euler, heun, rk4)",
        ));
    }
    if !opts.integrator.is_adaptive() {
        if opts.rtol.is_some() || opts.atol.is_some() || opts.h_max.is_some() {
            return Err(input(format!(
                "--rtol, --atol and --h-max set the error control of an adaptive integrator, \
                 and --integrator {} takes fixed steps: use bosh3, dopri5 or tsit5, or drop them",
                opts.integrator.name()
            )));
        }
        return Ok(None);
    }
    let defaults = AdaptiveOptions::default();
    let a = AdaptiveOptions {
        rtol: opts.rtol.unwrap_or(defaults.rtol),
        atol: opts.atol.unwrap_or(defaults.atol),
        h_max: opts.h_max.unwrap_or(f64::INFINITY),
        ..defaults
    };
    a.validate()?;
    Ok(Some(a))
}

/// What cfm.toml's `[adaptive]` table records: the pair and each draw's step statistics.
#[derive(Serialize)]
struct StepTable {
    adaptive: Steps,
}

#[derive(Serialize)]
struct Steps {
    pair: &'static str,
    systems: Vec<SystemStats>,
}

/// The flow with an adaptive pair: the queries at the times a fixed-step flow saves them
/// (every `save_every` steps of T / steps, and T), from the pair's dense output.
fn adaptive_flow(
    flow: &mut Cfm,
    model: &Model,
    opts: &CfmOptions,
    a: AdaptiveOptions,
    save_every: usize,
    progress: &mut dyn Progress,
) -> Result<(Trajectory, StepTable)> {
    use crate::integrate::Backend as _;
    let mut stepper = AdaptiveStepper::new(model, flow.shape(), opts.integrator, a)?;
    if flow.kind != BackendChoice::Reference && a.rtol < F32_MIN_RTOL {
        return Err(input(format!(
            "--rtol {:e} is below what the f32 attention of {} resolves: use --rtol {:e} or \
             more, or --backend reference (f64)",
            a.rtol,
            flow.describe(),
            F32_MIN_RTOL
        )));
    }
    stepper.prepare(flow)?;
    let h = opts.t_end / opts.steps as f64;
    let times: Vec<f64> = (0..=opts.steps)
        .filter(|s| s % save_every == 0 || *s == opts.steps)
        .map(|s| {
            if s == opts.steps {
                opts.t_end
            } else {
                s as f64 * h
            }
        })
        .collect();
    let mut snapshots = Vec::with_capacity(times.len());
    let mut cursor = Cursor::default();
    let done = with_progress(progress, times.len() as u64, 0, |progress| {
        stepper.advance_until(
            flow,
            opts.t_end,
            &times,
            &mut cursor,
            &mut |_, x| {
                snapshots.push(x.to_vec());
                Ok(())
            },
            &mut |_, saved| {
                progress.step(saved as u64);
                progress.interrupted().is_some()
            },
        )
    })?;
    if !done {
        return Err(crate::Error::Interrupted(format!(
            "the flow map stopped at t = {} on request; nothing was written (a flow map is \
             not resumable: run it again)",
            stepper
                .systems()
                .iter()
                .map(|s| s.t)
                .fold(f64::INFINITY, f64::min)
        )));
    }
    let steps = StepTable {
        adaptive: Steps {
            pair: stepper.pair().name,
            systems: stepper.systems().iter().map(|s| s.stats.clone()).collect(),
        },
    };
    Ok((Trajectory { times, snapshots }, steps))
}

fn write_distances(path: &std::path::Path, rows: &[TwinDistance]) -> Result<()> {
    let mut csv = crate::csv::CsvWriter::create(path, "t,mean,rms,max")?;
    for r in rows {
        csv.line(format_args!(
            "{},{:.9e},{:.9e},{:.9e}",
            r.t, r.mean, r.rms, r.max
        ))?;
    }
    csv.finish()
}
