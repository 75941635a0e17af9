//! Options, each defined once: one field carries its flag (clap), its TOML key (serde), its
//! help and its default in the help text; every subcommand flattens the groups it takes.
//!
//! - [`ConfigLayer`]: everything `attnflow run` takes, as flags and as the keys of a TOML
//!   config or a run.toml (one struct for both, so a flag cannot exist without its key);
//!   resolved and validated in one place, [`crate::config::resolve`].
//! - [`LayerOpts`]: the attention layer of `attend` and `cfm` (draws, seed, temperature and
//!   its rule, SA or USA), checked in one place, [`crate::attend::one_layer`].
//! - [`BackendOpt`] and [`OutputOpts`]: `--backend`, `--out` and `--force` of every command
//!   that computes and writes a folder.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::error::{Result, file_error, input};
use crate::integrate::Integrator;
use crate::model::{Activation, Attention, Geometry, HeadCombine, LayerKind, Mask};

/// How beta follows the context length (docs/model.md §3): the given values are gamma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum BetaRule {
    /// beta = gamma.
    Const,
    /// beta = gamma log n (critical attention scaling of long contexts).
    Log,
    /// beta = gamma n^(2 / (d - 1)) (the selectivity scale of n uniform keys).
    Selective,
}

impl BetaRule {
    pub fn name(self) -> &'static str {
        match self {
            BetaRule::Const => "const",
            BetaRule::Log => "log",
            BetaRule::Selective => "selective",
        }
    }

    pub fn apply(self, gamma: f64, n: usize, d: usize) -> f64 {
        match self {
            BetaRule::Const => gamma,
            BetaRule::Log => gamma * (n as f64).ln(),
            BetaRule::Selective => gamma * (n as f64).powf(2.0 / (d as f64 - 1.0)),
        }
    }
}

/// Whether Euler-Maruyama noise is drawn per token or shared by a system's tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum NoiseKind {
    Independent,
    Common,
}

/// One beta for every system, or one per system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BetaSpec {
    One(f64),
    Many(Vec<f64>),
}

impl BetaSpec {
    /// Parses "1", "0.5,1,2".
    pub fn parse(s: &str) -> Result<Self> {
        let values = s
            .split(',')
            .map(|v| {
                v.trim().parse::<f64>().map_err(|_| {
                    input(format!(
                        "--beta takes numbers separated by commas, got '{s}'"
                    ))
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(match values.as_slice() {
            [one] => BetaSpec::One(*one),
            _ => BetaSpec::Many(values),
        })
    }
    /// [`BetaSpec::parse`] for clap.
    pub fn parse_flag(s: &str) -> std::result::Result<Self, String> {
        Self::parse(s).map_err(|e| e.to_string())
    }
    pub fn values(&self) -> Vec<f64> {
        match self {
            BetaSpec::One(b) => vec![*b],
            BetaSpec::Many(v) => v.clone(),
        }
    }
}

/// What one option of `attnflow run` is besides its flag, key and help: whether run.toml records
/// it, whether `--resume` takes it, whether Python's `attnflow.run` takes it as a keyword. The
/// one rule per option from which [`ConfigLayer::OPTIONS`] and its derived sets come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionRole {
    /// The run's own (what it computes): recorded, a Python keyword, refused by `--resume`
    /// (a resumed run is the run never stopped).
    Fixed,
    /// How far and where the run goes (t_end, steps, backend, checkpoint_every): recorded, a
    /// Python keyword, and `--resume` applies it (a longer run, the same step size).
    Continued,
    /// The output folder: not recorded (the record lives in it), Python's `out=` argument,
    /// refused by `--resume` (which names the folder).
    Out,
    /// A command-line flag about this invocation (never recorded or read from TOML, not a
    /// Python keyword); `--resume` applies it.
    Flag,
}

impl OptionRole {
    /// Whether `--resume DIR` takes the option (and applies it) rather than refusing it.
    pub fn resumable(self) -> bool {
        matches!(self, OptionRole::Continued | OptionRole::Flag)
    }
    /// Whether run.toml records the option (and a --config file may give it).
    pub fn recorded(self) -> bool {
        matches!(self, OptionRole::Fixed | OptionRole::Continued)
    }
    /// Whether Python's `attnflow.run` takes it as a keyword argument.
    pub fn python_keyword(self) -> bool {
        self.recorded()
    }
}

/// Defines [`ConfigLayer`] from one list of options (each `Option<T>`: unset means "not
/// given here", with its [`OptionRole`]), its `overlay` and [`ConfigLayer::OPTIONS`], so that
/// adding an option is adding one field: its flag, TOML key, record key, Python keyword and
/// rule on `--resume` all follow from that line (tests tie clap's arguments, run.toml's keys
/// and the Python keywords to it).
macro_rules! config_layer {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $( $(#[$fattr:meta])* $field:ident: $ty:ty => $role:ident, )*
        }
        recorded {
            $( $(#[$rattr:meta])* $rfield:ident: $rty:ty, )*
        }
    ) => {
        $(#[$attr])*
        pub struct $name {
            $( $(#[$fattr])* pub $field: Option<$ty>, )*
            $( $(#[$rattr])* pub $rfield: Option<$rty>, )*
        }

        impl $name {
            /// Every option a user gives (its TOML key; the flag is `--` and `-` for `_`) with
            /// its role, in the order of `--help`.
            pub const OPTIONS: &[(&str, OptionRole)] =
                &[ $( (stringify!($field), OptionRole::$role), )* ];

            /// The keys attnflow writes into a record beside the options (read back and
            /// ignored, or checked): not options.
            pub const RECORD_FIELDS: &[&str] = &[ $( stringify!($rfield), )* ];

            /// `other`'s options that are set replace ours; what a run.toml recorded stays.
            pub fn overlay(mut self, other: $name) -> Self {
                // A new beta replaces the gamma a run.toml recorded.
                if other.beta.is_some() {
                    self.gamma = None;
                }
                $( if other.$field.is_some() { self.$field = other.$field; } )*
                self
            }
        }
    };
}

config_layer! {
    /// A configuration as a user writes it: every field optional. A TOML file and the command
    /// line each give one of these; later ones win.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Args)]
    #[serde(deny_unknown_fields)]
    pub struct ConfigLayer {
        /// Output folder [default: runs/run-NNN, the next free number].
        #[arg(long, value_name = "DIR", help_heading = "Output")]
        out: PathBuf => Out,
        /// Number of tokens per system [default: 4096, or from an --init file].
        #[arg(long, help_heading = "Tokens")]
        n: usize => Fixed,
        /// Token dimension, 2 or more [default: 3, or from an --init file].
        #[arg(long, help_heading = "Tokens")]
        d: usize => Fixed,
        /// Number of independent systems in the ensemble [default: 1, or the number of --beta
        /// values].
        #[arg(long, help_heading = "Tokens")]
        batch: usize => Fixed,
        /// Attention: sa (softmax) or usa (unnormalised) [default: sa].
        #[arg(long, help_heading = "Model")]
        model: Attention => Fixed,
        /// Geometry: sphere (tangent projection + renormalisation) or euclidean [default: sphere].
        #[arg(long, help_heading = "Model")]
        geometry: Geometry => Fixed,
        /// Mask: full or causal (token i sees tokens 1..i) [default: full].
        #[arg(long, help_heading = "Model")]
        mask: Mask => Fixed,
        /// Inverse temperature: one value, or one per system separated by commas
        /// (--beta 0.5,1,2) [default: 1; 1 / sqrt(d / heads) with a safetensors --qkv].
        #[arg(long, allow_hyphen_values = true, value_parser = BetaSpec::parse_flag, help_heading = "Model")]
        beta: BetaSpec => Fixed,
        /// Q, K, V: identity, random:SEED (iid N(0, 1/d) entries, fixed over depth),
        /// redraw:SEED (random deep attention: redrawn at every layer and head),
        /// random-per-system:SEED or redraw-per-system:SEED (the same, but every system of the
        /// ensemble draws its own heads, keyed by the seed and its index b: independent of
        /// --batch; entries N(0, scale^2 / d), --weight-scale), a folder with Q.npy, K.npy,
        /// V.npy, each [d, d], [heads, d, d] or [layers, heads, d, d], or
        /// safetensors:FILE[:gpt2] (a GPT-2 checkpoint's heads per layer, with --heads;
        /// docs/model.md §6); the score is beta <Q x_i, K x_j>, the value V x_j
        /// [default: identity].
        #[arg(long, help_heading = "Model")]
        qkv: String => Fixed,
        /// Attention heads (with identity or a drawn --qkv; a folder sets its own; required
        /// with a safetensors checkpoint, head size d / heads) [default: 1].
        #[arg(long, help_heading = "Model")]
        heads: usize => Fixed,
        /// How heads combine: sum or mean of their outputs [default: sum].
        #[arg(long, help_heading = "Model")]
        head_combine: HeadCombine => Fixed,
        /// Scale of redrawn or per-system weights: entries N(0, scale^2 / d) [default: 1].
        #[arg(long, help_heading = "Model")]
        weight_scale: f64 => Fixed,
        /// Perceptron block dx/dt = P(attention + W sigma(A x + b)): random:M[:SEED] (hidden width
        /// M), a folder with W.npy [d, M], A.npy [M, d], b.npy [M] (or [L, ...]), or
        /// safetensors:FILE[:gpt2] (a GPT-2 checkpoint's c_fc, c_proj per layer) [default: none].
        #[arg(long, help_heading = "Model")]
        mlp: String => Fixed,
        /// The perceptron's sigma: relu or gelu (tanh form) [default: relu; gelu with a
        /// safetensors --mlp].
        #[arg(long, help_heading = "Model")]
        activation: Activation => Fixed,
        /// Noise strength sigma: dx = f dt + sigma P dB, Euler-Maruyama (needs --integrator
        /// euler), seeded by --seed [default: 0].
        #[arg(long, allow_hyphen_values = true, help_heading = "Model")]
        noise: f64 => Fixed,
        /// Noise per token (independent) or one dB for all tokens of a system (common)
        /// [default: independent].
        #[arg(long, help_heading = "Model")]
        noise_kind: NoiseKind => Fixed,
        /// ALiBi positional bias of causal attention: scores lose (lambda / n)(i - j)
        /// [default: none].
        #[arg(long, value_name = "LAMBDA", allow_hyphen_values = true, help_heading = "Model")]
        alibi: f64 => Fixed,
        /// With USA and --alibi: leave token i out of its own positional normaliser (sum over
        /// keys k < i, the convention of the lost-in-the-middle code) [default: false, k <= i].
        #[arg(long, num_args = 0, default_missing_value = "true", help_heading = "Model")]
        alibi_excludes_self: bool => Fixed,
        /// Temperature rule: const (beta as given), log (beta = gamma log n) or selective
        /// (beta = gamma n^(2/(d-1))), with gamma the --beta values [default: const].
        #[arg(long, help_heading = "Model")]
        beta_rule: BetaRule => Fixed,
        /// Layer map: ode (dx/dt = P_x a(x), integrated by --integrator) or a residual layer
        /// (with --integrator euler): post-ln x <- normalise(x + h a(x)), pre-ln
        /// x <- x + h a(normalise(x)), peri-ln x <- x + h N(a(normalise(x))), ngpt
        /// x <- normalise(x + h alpha N(a(x))), N(a) = a / (|a| + 1e-9) (docs/model.md §3)
        /// [default: ode].
        #[arg(long, help_heading = "Model")]
        layer: LayerKind => Fixed,
        /// nGPT's eigen learning rate alpha of --layer ngpt [default: 0.2, simuformer's].
        #[arg(long, value_name = "ALPHA", allow_hyphen_values = true, help_heading = "Model")]
        ngpt_alpha: f64 => Fixed,
        /// Integrator: euler, heun (RK2), rk4, or adaptive bosh3, dopri5, tsit5, or ros23 (stiff,
        /// f64 reference field, `run` only) (with --rtol, --atol; docs/adaptive.md)
        /// [default: rk4].
        #[arg(long, help_heading = "Time")]
        integrator: Integrator => Fixed,
        /// Final time T (depth) [default: 10].
        #[arg(long, allow_hyphen_values = true, help_heading = "Time")]
        t_end: f64 => Continued,
        /// Number of steps (layers); h = T / steps [default: 100].
        #[arg(long, help_heading = "Time")]
        steps: usize => Continued,
        // Adaptive stepping (--integrator bosh3, dopri5, tsit5 or ros23; docs/adaptive.md).
        /// Relative tolerance of an adaptive --integrator (error norm: RMS over a system's
        /// components of e / (atol + rtol max(|x|, |x_new|))) [default: 1e-6].
        #[arg(long, help_heading = "Time")]
        rtol: f64 => Fixed,
        /// Absolute tolerance of an adaptive --integrator [default: 1e-9; 1e-7 on f32 backends].
        #[arg(long, help_heading = "Time")]
        atol: f64 => Fixed,
        /// Largest step of an adaptive --integrator [default: none].
        #[arg(long, help_heading = "Time")]
        h_max: f64 => Fixed,
        /// One step size and acceptance for the whole ensemble, set by its hardest system,
        /// instead of one per system (adaptive --integrator) [default: false].
        #[arg(long, num_args = 0, default_missing_value = "true", help_heading = "Time")]
        shared_step: bool => Fixed,
        /// Times of the traj.npy snapshots of an adaptive run, by its dense output (no step
        /// is shortened): T1,T2,... or log:START:END:COUNT (log-spaced) [default: none].
        #[arg(long, value_name = "TIMES", help_heading = "Output")]
        save_times: String => Fixed,
        /// Times of the metrics.csv rows of an adaptive run, like --save-times [default: 0,
        /// the --save-times and T].
        #[arg(long, value_name = "TIMES", help_heading = "Output")]
        metrics_times: String => Fixed,
        /// Initial tokens: uniform (on the sphere), gaussian, vmf:KAPPA[:MU1,MU2,...] (mean
        /// direction e_1 unless given), or file:PATH.npy ([n, d] shared by all systems, or
        /// [batch, n, d]; f32 or f64), or safetensors:FILE:wte (rows of a checkpoint's token
        /// embeddings wte.weight for the ids of --tokens; docs/model.md §6) [default: uniform].
        #[arg(long, help_heading = "Tokens")]
        init: String => Fixed,
        /// The prompt's token ids, with --init safetensors:FILE:TENSOR (15496,995,...): n is
        /// their number.
        #[arg(long, value_name = "ID,ID,...", help_heading = "Tokens")]
        tokens: String => Fixed,
        /// Random seed of the initial tokens [default: 0].
        #[arg(long, help_heading = "Tokens")]
        seed: u64 => Fixed,
        /// Backend: auto (a hardware GPU if present, else cpu), gpu, cpu or reference (f64)
        /// [default: auto].
        #[arg(long)]
        backend: BackendChoice => Continued,
        /// Save a snapshot every K steps to traj.npy (and its times to traj_t.npy); 0 = none
        /// [default: 0].
        #[arg(long, value_name = "K", help_heading = "Output")]
        save_every: usize => Fixed,
        /// Write a metrics.csv row every M steps; 0 writes only the first and last (each row
        /// costs one O(n^2) pass) [default: about 100 rows per run].
        #[arg(long, value_name = "M", help_heading = "Output")]
        metrics_every: usize => Fixed,
        /// Put a checkpoint of the run (state, step, snapshots and metrics so far) on disk every
        /// K steps, 0 = none: a run killed by SIGKILL or a power cut continues from it with
        /// --resume [default: about every 10 minutes of work].
        #[arg(long, value_name = "K", help_heading = "Output")]
        checkpoint_every: usize => Continued,
        /// Run even when an input file (--init, --qkv or --mlp files) differs from the one the
        /// --config run.toml recorded (by SHA-256) (a flag only, never read from TOML).
        #[serde(skip)]
        #[arg(long, num_args = 0, default_missing_value = "true")]
        allow_changed_inputs: bool => Flag,
    }
    recorded {
        /// The rule's gamma values, written into run.toml next to the resolved beta; a
        /// run.toml read back uses `beta` and ignores this.
        #[serde(skip_serializing)]
        #[arg(skip)]
        gamma: Vec<f64>,
        /// Written by attnflow into run.toml; ignored when read back.
        #[serde(skip_serializing)]
        #[arg(skip)]
        provenance: toml::Table,
        /// Written by attnflow into a checkpoint's record (see `run::Checkpoint`); ignored here.
        #[serde(skip_serializing)]
        #[arg(skip)]
        checkpoint: toml::Table,
        /// Written by attnflow into run.toml: the size and SHA-256 of each file the run wrote
        /// (see `run::Outputs`), checked by --resume; ignored here.
        #[serde(skip_serializing)]
        #[arg(skip)]
        outputs: toml::Table,
        /// Written by attnflow into run.toml: an adaptive run's step statistics; ignored here.
        #[serde(skip_serializing)]
        #[arg(skip)]
        adaptive: toml::Table,
        /// The SHA-256 of every input file, as a run.toml records them: a replay refuses a file
        /// that changed since (unless `allow_changed_inputs`).
        #[serde(skip_serializing)]
        #[arg(skip)]
        inputs: std::collections::BTreeMap<String, String>,
    }
}

/// An option value by its name (the names flags and TOML keys use): `"usa"`, `"log"`, ... For
/// callers that hold options as text (the Python bindings).
pub fn parse_name<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
        .map_err(|e| crate::error::input(e.to_string()))
}

/// Options from a command line's flags (without the subcommand), parsed by the CLI's own
/// parser: every name, default and check is the CLI's. For bindings that take options as
/// keyword arguments; clap's error becomes one line.
pub fn from_flags<T: Args + clap::FromArgMatches>(flags: &[String]) -> Result<T> {
    let cmd = T::augment_args(clap::Command::new("attnflow").no_binary_name(true));
    let matches = cmd.try_get_matches_from(flags).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("").trim();
        crate::error::input(first.strip_prefix("error: ").unwrap_or(first).to_string())
    })?;
    T::from_arg_matches(&matches).map_err(|e| crate::error::input(e.to_string()))
}

impl ConfigLayer {
    /// The names of the options a user gives (the TOML keys, `_` for `-`): not the fields
    /// attnflow writes into a record (`provenance`, `inputs`, ...).
    pub fn option_names() -> impl Iterator<Item = &'static str> {
        Self::OPTIONS.iter().map(|(name, _)| *name)
    }

    /// The options with a role `keep` accepts.
    pub fn options_where(keep: fn(OptionRole) -> bool) -> Vec<&'static str> {
        Self::OPTIONS
            .iter()
            .filter(|(_, role)| keep(*role))
            .map(|(name, _)| *name)
            .collect()
    }

    /// The options `--resume` refuses (clap's argument ids, which are the field names).
    pub fn refused_on_resume() -> Vec<&'static str> {
        Self::options_where(|r| !r.resumable())
    }

    /// The keyword arguments of Python's `attnflow.run` besides `x0`, `out`, `force` and
    /// `progress`.
    pub fn python_keywords() -> Vec<&'static str> {
        Self::options_where(OptionRole::python_keyword)
    }

    /// The role of the option `name` (a TOML key), if it is one.
    pub fn role(name: &str) -> Option<OptionRole> {
        Self::OPTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, role)| *role)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let read_error =
            |e: std::io::Error| file_error(path, format!("cannot read the config: {e}"));
        std::fs::metadata(path).map_err(read_error)?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut crate::output::open_input(path)?, &mut text)
            .map_err(read_error)?;
        toml::from_str(&text).map_err(|e| file_error(path, format!("invalid config: {e}")))
    }
}

/// `--backend`, for every command that computes.
#[derive(Args, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendOpt {
    /// Backend: auto (a hardware GPU if present, else cpu), gpu, cpu or reference (f64).
    #[arg(
        id = "backend",
        long = "backend",
        value_name = "BACKEND",
        default_value = "auto"
    )]
    #[serde(rename = "backend")]
    pub choice: BackendChoice,
}

impl Default for BackendOpt {
    fn default() -> Self {
        BackendOpt {
            choice: BackendChoice::Auto,
        }
    }
}

/// The attention layer of `attend` and `cfm`: independent draws, their seed, the temperature
/// and its rule, SA or USA.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerOpts {
    /// Independent draws of keys (context) and queries, evaluated as one batch.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Random seed; draw s uses stream s of it, queries an independent derived seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Inverse temperature (gamma under --beta-rule log or selective).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub beta: f64,
    /// Temperature rule over the number n of keys (context tokens): const, log (gamma log n)
    /// or selective (gamma n^(2/(d-1))).
    #[arg(long, default_value = "const")]
    pub beta_rule: BetaRule,
    /// Attention: sa (softmax) or usa (unnormalised: weights exp(s) / n).
    #[arg(long, default_value = "sa")]
    pub model: Attention,
}

impl Default for LayerOpts {
    fn default() -> Self {
        LayerOpts {
            seeds: 1,
            seed: 0,
            beta: 1.0,
            beta_rule: BetaRule::Const,
            model: Attention::Sa,
        }
    }
}

/// `--out DIR` and `--force`.
#[derive(Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputOpts {
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite attnflow's files in an existing, non-empty output folder.
    #[arg(long)]
    #[serde(default)]
    pub force: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The field names a `Deserialize` struct reads (serde's own list), captured by a
    /// deserializer that stops at `deserialize_struct`.
    pub(crate) fn struct_fields<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
        struct Fields(std::cell::Cell<&'static [&'static str]>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> serde::Deserializer<'de> for &Fields {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0.set(fields);
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let fields = Fields(std::cell::Cell::new(&[]));
        let _ = T::deserialize(&fields);
        let mut names = fields.0.get().to_vec();
        names.sort();
        names
    }

    fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
        v.sort();
        v
    }

    /// The one list is clap's: every flag of `attnflow run`'s options is in it, and nothing
    /// else.
    #[test]
    fn the_option_list_is_the_flags() {
        let cmd = ConfigLayer::augment_args(clap::Command::new("run"));
        let mut ids: Vec<String> = cmd
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        ids.sort();
        let mut listed: Vec<String> = ConfigLayer::option_names().map(String::from).collect();
        listed.sort();
        assert_eq!(ids, listed);
        for arg in cmd.get_arguments() {
            assert_eq!(
                arg.get_long().map(|l| l.replace('-', "_")).as_deref(),
                Some(arg.get_id().as_str()),
                "the flag of {} is its key with - for _",
                arg.get_id()
            );
        }
    }

    /// The TOML keys of a config file are the recorded options and the record's own fields;
    /// a command-line flag (`allow_changed_inputs`) is no key.
    #[test]
    fn the_toml_keys_are_the_recorded_options() {
        let mut keys = ConfigLayer::options_where(|r| r.recorded() || r == OptionRole::Out);
        keys.extend(ConfigLayer::RECORD_FIELDS);
        assert_eq!(struct_fields::<ConfigLayer>(), sorted(keys));
    }

    /// Resume's two sets partition the options; Python's keywords are the recorded options,
    /// never a record's internal fields.
    #[test]
    fn resume_and_python_sets_come_from_the_roles() {
        let refused = ConfigLayer::refused_on_resume();
        let applied = ConfigLayer::options_where(OptionRole::resumable);
        assert_eq!(refused.len() + applied.len(), ConfigLayer::OPTIONS.len());
        assert_eq!(
            sorted(applied),
            vec![
                "allow_changed_inputs",
                "backend",
                "checkpoint_every",
                "steps",
                "t_end"
            ]
        );
        for name in [
            "layer",
            "ngpt_alpha",
            "alibi_excludes_self",
            "out",
            "beta",
            "qkv",
        ] {
            assert!(refused.contains(&name), "{name}");
        }
        let python = ConfigLayer::python_keywords();
        for internal in ConfigLayer::RECORD_FIELDS
            .iter()
            .chain(&["out", "allow_changed_inputs"])
        {
            assert!(!python.contains(internal), "{internal}");
        }
        assert_eq!(python.len(), ConfigLayer::OPTIONS.len() - 2);
    }
}
