//! What the fixed-step and the adaptive runs share of their lifecycle: what a resume
//! continues from ([`Resume`]), a checkpoint's record ([`Checkpoint`]) and run.toml's
//! `[outputs]` table, and the writing of both. A leaf of `jobs` (`jobs::run` re-exports its
//! public items).

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{BackendChoice, RunConfig};
use crate::error::{Error, Result, file_error};
use crate::output::{Output, Provenance};

/// What continues an earlier run: its state after `step` steps (exact: final.npy, or a
/// checkpoint's state) and the folder holding its metrics.csv, traj.npy and traj_t.npy (an
/// output folder, or a checkpoint folder with `checkpoint` telling how much of them to keep).
#[derive(Clone, Debug)]
pub struct Resume {
    pub step: usize,
    pub state: Vec<f64>,
    pub dir: PathBuf,
    pub checkpoint: Option<Checkpoint>,
}

impl Resume {
    /// The metrics.csv of the run resumed, up to what its checkpoint covers (rows written
    /// after the checkpoint, up to a kill, are not its); the whole file without a checkpoint.
    pub fn earlier_metrics(&self) -> Result<String> {
        let earlier = self.dir.join("metrics.csv");
        let mut text = std::fs::read_to_string(&earlier)
            .map_err(|e| file_error(&earlier, format!("cannot read: {e}")))?;
        if let Some(c) = &self.checkpoint {
            let keep = usize::try_from(c.metrics_bytes).unwrap_or(usize::MAX);
            if keep > text.len() || !text.is_char_boundary(keep) {
                return Err(file_error(
                    &earlier,
                    format!("is shorter than the {keep} bytes its checkpoint recorded"),
                ));
            }
            text.truncate(keep);
        }
        Ok(text)
    }
}

/// What a checkpoint records beside the run's configuration and provenance (in the `[checkpoint]`
/// table of `.checkpoint.toml`): the step, the file of the state, and how much of metrics.csv
/// and traj.npy (written on since) belongs to it, each with its size and SHA-256 (`sha256:HEX`)
/// so that a resume refuses files changed or cut since.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub step: usize,
    pub state: String,
    pub state_bytes: u64,
    pub state_sha256: String,
    pub metrics_bytes: u64,
    /// Of the first `metrics_bytes` bytes.
    pub metrics_sha256: String,
    pub frames: usize,
    /// Of traj.npy's first `frames` snapshots (the bytes after its header).
    pub traj_bytes: u64,
    pub traj_sha256: String,
    pub times: Vec<f64>,
}

/// A file's size and `sha256:HEX`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Digest {
    pub bytes: u64,
    pub sha256: String,
}

/// What a run.toml records of the files a run wrote (its `[outputs]` table): the step they
/// hold and each file's size and SHA-256, which `--resume` checks before it continues.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Outputs {
    pub step: usize,
    pub files: std::collections::BTreeMap<String, Digest>,
}

/// What a run's records (run.toml, a checkpoint's) say of it: the configuration, with the
/// backend that ran, and the facts of the provenance.
pub(super) struct RunRecord<'a> {
    pub config: RunConfig,
    requested: BackendChoice,
    started: u64,
    command: &'a str,
    resumed_from: Option<usize>,
    pub device: String,
}

impl<'a> RunRecord<'a> {
    /// The record of a run of `config` on backend `kind` (`device`), started now.
    pub fn new(
        config: &RunConfig,
        kind: BackendChoice,
        command: &'a str,
        resumed_from: Option<usize>,
        device: String,
    ) -> Self {
        let mut config = config.clone();
        let requested = config.backend;
        config.backend = kind;
        RunRecord {
            config,
            requested,
            started: crate::output::unix_now(),
            command,
            resumed_from,
            device,
        }
    }

    /// The record's text up to its `[outputs]`, `[checkpoint]` or `[adaptive]` tables.
    pub fn text(
        &self,
        status: String,
        steps_done: usize,
        t_done: f64,
        elapsed_s: f64,
    ) -> Result<String> {
        let provenance = Provenance {
            status,
            steps_done: Some(steps_done),
            t_done: Some(t_done),
            resumed_from_step: self.resumed_from,
            ..Provenance::finished(
                self.requested.name(),
                self.device.clone(),
                self.started,
                elapsed_s,
                self.command,
            )
        };
        crate::output::record_toml(&self.config, &provenance)
    }
}

/// Minutes of work between two checkpoints when `checkpoint_every` is not set.
pub const CHECKPOINT_INTERVAL_S: f64 = 600.0;

/// The `[checkpoint]` table of a checkpoint's record.
pub(super) fn checkpoint_table(checkpoint: &Checkpoint) -> Result<String> {
    #[derive(Serialize)]
    struct Table<'a> {
        checkpoint: &'a Checkpoint,
    }
    toml::to_string(&Table { checkpoint })
        .map_err(|e| Error::Input(format!("cannot serialise a checkpoint: {e}")))
}

/// Makes a checkpoint whose files (`files`, in the staging folder) are written: everything
/// on disk, then its record `text` renamed into place last, so that a kill at any moment
/// leaves the previous checkpoint or this one; then the previous checkpoint's files go.
pub(super) fn commit_checkpoint(out: &Output, files: &[&str], text: String) -> Result<()> {
    let record = out.path(crate::output::CHECKPOINT_RECORD);
    let tmp = out.path(".checkpoint.toml.tmp");
    let sync = |p: &Path| File::open(p).and_then(|f| f.sync_all());
    files
        .iter()
        .try_for_each(|f| sync(&out.path(f)))
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| sync(&tmp))
        .and_then(|()| std::fs::rename(&tmp, &record))
        .and_then(|()| sync(out.staging()))
        .map_err(|e| file_error(&record, format!("cannot write a checkpoint: {e}")))?;
    for name in checkpoint_files(out.staging()) {
        if !files.contains(&name.as_str()) && name != crate::output::CHECKPOINT_RECORD {
            let _ = std::fs::remove_file(out.staging().join(name));
        }
    }
    Ok(())
}

/// The `[outputs]` table of run.toml: the step the files hold and the size and SHA-256 of
/// each of `names` the staging folder holds (what a resume checks).
pub(super) fn outputs_table(out: &Output, step: usize, names: &[&str]) -> Result<String> {
    let mut files = std::collections::BTreeMap::new();
    for name in names {
        let p = out.path(name);
        if let Ok(m) = std::fs::metadata(&p) {
            let digest = Digest {
                bytes: m.len(),
                sha256: crate::output::sha256_file(&p)?,
            };
            files.insert(name.to_string(), digest);
        }
    }
    #[derive(Serialize)]
    struct OutputsTable {
        outputs: Outputs,
    }
    toml::to_string(&OutputsTable {
        outputs: Outputs { step, files },
    })
    .map_err(|e| Error::Input(format!("cannot serialise the outputs: {e}")))
}

/// Commits a run's output folder, whose run.toml is written: the checkpoint's files go (they
/// are not results); the files committed.
pub(super) fn commit_outputs(out: Output) -> Result<Vec<PathBuf>> {
    for name in checkpoint_files(out.staging()) {
        let _ = std::fs::remove_file(out.staging().join(name));
    }
    let dir = out.dir().to_path_buf();
    Ok(out.commit()?.iter().map(|f| dir.join(f)).collect())
}

/// The checkpoint files in a staging folder (`.checkpoint*`).
pub(super) fn checkpoint_files(staging: &Path) -> Vec<String> {
    std::fs::read_dir(staging)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".checkpoint"))
                .collect()
        })
        .unwrap_or_default()
}
