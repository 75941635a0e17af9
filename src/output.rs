//! The one owner of output folders. Every command that writes a folder (run, attend, cfm,
//! experiment) writes through an [`Output`]:
//!
//! - **A lock**: an advisory exclusive lock on `DIR/.attnflow.lock`, held for the whole
//!   command; a second command into the same folder fails at once, naming the holder's pid.
//! - **Staging**: files are written into `DIR/.attnflow-staging/` and moved into place by
//!   [`Output::commit`] (fsync, then an atomic rename per file) only when the command succeeds.
//!   A command that fails, is killed or runs out of disk leaves the earlier results byte for
//!   byte as they were; its staging folder is removed (or, after a kill, by the next command).
//! - **Ownership**: each kind of command owns a set of file names. A non-empty folder is
//!   refused without `--force`; with it, a command replaces only files of its own kind (and
//!   removes its own kind's earlier files it did not rewrite, at commit), refuses to replace a
//!   file another kind of command wrote there, and never replaces or deletes a file it reads
//!   as input.
//! - **Checkpoints**: a long run puts checkpoints into its staging folder (hidden files named
//!   `.checkpoint*`, never committed). When a killed run's staging folder holds one, the next
//!   command into the folder keeps it as `DIR/.attnflow-checkpoint/` instead of removing it,
//!   for `attnflow run --resume DIR`; a run's commit removes it (its results supersede it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, file_error};

/// The lock file and the staging folder inside an output folder.
pub const LOCK: &str = ".attnflow.lock";
pub const STAGING: &str = ".attnflow-staging";
/// A killed run's staging folder that held a checkpoint, kept for `--resume`.
pub const CHECKPOINT: &str = ".attnflow-checkpoint";
/// The record of a checkpoint inside a staging (or checkpoint) folder.
pub const CHECKPOINT_RECORD: &str = ".checkpoint.toml";

/// What kind of command writes a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Run,
    Attend,
    Cfm,
    Experiment,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Attend => "attend",
            Kind::Cfm => "cfm",
            Kind::Experiment => "experiment",
        }
    }

    /// The record file that marks a folder as this kind's.
    pub fn record(self) -> &'static str {
        match self {
            Kind::Run => "run.toml",
            Kind::Attend => "attend.toml",
            Kind::Cfm => "cfm.toml",
            Kind::Experiment => "summary.json",
        }
    }

    /// The files this kind may write (an experiment's others are listed in its summary).
    pub fn files(self) -> &'static [&'static str] {
        match self {
            // x0.npy, Q.npy, K.npy, V.npy: the arrays a binding's run was given, kept so that
            // its run.toml replays.
            Kind::Run => &[
                "final.npy",
                "metrics.csv",
                "run.toml",
                "traj.npy",
                "traj_t.npy",
                // An adaptive ensemble stopped between its systems' output times.
                "partial.npy",
                "x0.npy",
                "Q.npy",
                "K.npy",
                "V.npy",
            ],
            Kind::Attend => &["outputs.npy", "stats.csv", "attend.toml"],
            Kind::Cfm => &[
                "final.npy",
                "traj.npy",
                "traj_t.npy",
                "context_final.npy",
                "infinite.npy",
                "distance.npy",
                "distance.csv",
                "cfm.toml",
                "context.npy",
                "queries.npy",
            ],
            Kind::Experiment => &["summary.json"],
        }
    }

    pub const ALL: [Kind; 4] = [Kind::Run, Kind::Attend, Kind::Cfm, Kind::Experiment];

    /// The files of [`Kind::files`] a command writes only when a binding gave it arrays: an
    /// earlier command owns them only where its record names them.
    fn optional_files(self) -> &'static [&'static str] {
        match self {
            Kind::Run => &["partial.npy", "x0.npy", "Q.npy", "K.npy", "V.npy"],
            Kind::Cfm => &["context.npy", "queries.npy"],
            Kind::Attend | Kind::Experiment => &[],
        }
    }
}

/// The files a kind's earlier command left in `dir`: none unless the folder holds that kind's
/// record (files of the same names that attnflow did not write are the user's, never ours to
/// delete); else its fixed names, the optional ones its record names, and for an experiment
/// the files its summary lists.
fn owned_files(dir: &Path, kind: Kind) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join(kind.record())) else {
        return Vec::new();
    };
    // A file of the record's name proves nothing: only a record attnflow writes (with its
    // provenance and version) makes the folder's files attnflow's.
    let version = |p: Option<&str>| p.is_some();
    let attnflow_record = match kind {
        Kind::Experiment => version(
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .as_ref()
                .and_then(|v| v.get("provenance"))
                .and_then(|p| p.get("attnflow_version"))
                .and_then(|v| v.as_str()),
        ),
        _ => version(
            toml::from_str::<toml::Table>(&text)
                .ok()
                .as_ref()
                .and_then(|t| t.get("provenance"))
                .and_then(|p| p.get("attnflow_version"))
                .and_then(|v| v.as_str()),
        ),
    };
    if !attnflow_record {
        return Vec::new();
    }
    let mut names: Vec<String> = kind
        .files()
        .iter()
        .filter(|f| !kind.optional_files().contains(f) || text.contains(*f))
        .map(|s| s.to_string())
        .collect();
    if kind == Kind::Experiment
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(files) = v.get("files").and_then(|f| f.as_array())
    {
        for f in files.iter().filter_map(|f| f.as_str()) {
            // Names only: a summary cannot make us touch anything outside the folder.
            if !f.contains('/') && !f.contains('\\') && !f.starts_with('.') {
                names.push(f.to_string());
            }
        }
    }
    names.retain(|n| dir.join(n).is_file());
    names
}

/// Takes the folder's exclusive advisory lock (`DIR/.attnflow.lock`, with this process's pid
/// in it), held until the returned file is dropped: a second attnflow command into (or reading
/// from, for `render`) the same folder fails at once naming the holder.
pub fn lock_folder(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK);
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| file_error(&lock_path, format!("cannot open the lock file: {e}")))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(file_error(
                dir,
                format!(
                    "is in use by another attnflow command{}; wait for it to finish or \
             choose another --out",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    }
                ),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(file_error(&lock_path, format!("cannot lock: {e}")));
        }
    }
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| write!(lock, "{}", std::process::id()))
        .map_err(|e| file_error(&lock_path, format!("cannot write: {e}")))?;
    Ok(lock)
}

/// An output folder, locked, with its staging folder (see the module's documentation).
pub struct Output {
    dir: PathBuf,
    staging: PathBuf,
    kind: Kind,
    force: bool,
    inputs: Vec<PathBuf>,
    lock: Option<File>,
    committed: bool,
    /// The folder did not exist before: a command that fails removes it again.
    created: bool,
}

impl Output {
    /// Checks, creates and locks `dir` for a command of `kind` that reads `inputs`, and makes
    /// its staging folder. Call it before the command's work, so that every refusal comes
    /// first.
    pub fn open(dir: &Path, kind: Kind, force: bool, inputs: &[PathBuf]) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            return Err(file_error(
                dir,
                "exists and is not a folder: choose another --out",
            ));
        }
        let created = !dir.exists();
        std::fs::create_dir_all(dir)
            .map_err(|e| file_error(dir, format!("cannot create the output folder: {e}")))?;
        Self::locked(dir, kind, force, inputs, created)
    }

    /// A new folder `prefix-001`, `prefix-002`, ... (the first free number; a folder another
    /// command creates at the same moment is skipped).
    pub fn open_numbered(prefix: &Path, kind: Kind, inputs: &[PathBuf]) -> Result<Self> {
        if let Some(parent) = prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| file_error(parent, format!("cannot create: {e}")))?;
        }
        for i in 1..100_000 {
            let dir = PathBuf::from(format!("{}-{i:03}", prefix.display()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Self::locked(&dir, kind, false, inputs, true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(file_error(
                        &dir,
                        format!("cannot create the output folder: {e}"),
                    ));
                }
            }
        }
        Err(file_error(prefix, "no free numbered output folder"))
    }

    fn locked(
        dir: &Path,
        kind: Kind,
        force: bool,
        inputs: &[PathBuf],
        created: bool,
    ) -> Result<Self> {
        let lock = lock_folder(dir)?;
        let staging = dir.join(STAGING);
        // A staging folder left by a command that was killed: nobody else holds the lock.
        // One with a checkpoint is kept for --resume (it replaces an older checkpoint: the
        // kill came after the command that wrote that one).
        if staging.join(CHECKPOINT_RECORD).is_file() {
            let kept = dir.join(CHECKPOINT);
            if kept.exists() {
                std::fs::remove_dir_all(&kept).map_err(|e| {
                    file_error(&kept, format!("cannot remove an older checkpoint: {e}"))
                })?;
            }
            std::fs::rename(&staging, &kept).map_err(|e| {
                file_error(&kept, format!("cannot keep a killed run's checkpoint: {e}"))
            })?;
        } else if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| {
                file_error(
                    &staging,
                    format!("cannot remove a stale staging folder: {e}"),
                )
            })?;
        }
        let inputs: Vec<PathBuf> = inputs
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        let out = Output {
            dir: dir.to_path_buf(),
            staging,
            kind,
            force,
            inputs,
            lock: Some(lock),
            committed: false,
            created,
        };
        out.check_contents()?;
        std::fs::create_dir(&out.staging).map_err(|e| {
            file_error(
                &out.staging,
                format!("cannot create the staging folder: {e}"),
            )
        })?;
        Ok(out)
    }

    /// The refusals: a non-empty folder without `force`; with it, another kind's files this
    /// command would replace, and input files it would replace or delete.
    fn check_contents(&self) -> Result<()> {
        let entries: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| file_error(&self.dir, format!("cannot read the output folder: {e}")))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != LOCK && n != STAGING)
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        if !self.force {
            if entries.iter().any(|n| n == CHECKPOINT) {
                return Err(file_error(
                    &self.dir,
                    format!(
                        "holds the checkpoint of a run that was killed: continue it with \
                         attnflow run --resume {}, or use --force to replace it, or choose \
                         another --out",
                        shell_command(&[self.dir.display().to_string()])
                    ),
                ));
            }
            return Err(file_error(
                &self.dir,
                "the output folder exists and is not empty; use --force to overwrite it, or \
                 choose another --out",
            ));
        }
        for other in Kind::ALL.into_iter().filter(|k| *k != self.kind) {
            if !self.dir.join(other.record()).is_file() {
                continue;
            }
            let clash: Vec<String> = owned_files(&self.dir, other)
                .into_iter()
                .filter(|f| self.kind.files().contains(&f.as_str()))
                .collect();
            if !clash.is_empty() {
                return Err(file_error(
                    &self.dir,
                    format!(
                        "holds the results of an attnflow {} ({}) whose {} a {} would replace; \
                         choose another --out",
                        other.name(),
                        other.record(),
                        clash.join(", "),
                        self.kind.name()
                    ),
                ));
            }
        }
        let touched: Vec<String> = self
            .kind
            .files()
            .iter()
            .map(|s| s.to_string())
            .chain(owned_files(&self.dir, self.kind))
            .collect();
        for name in touched {
            let path = self.dir.join(&name);
            if let Ok(p) = std::fs::canonicalize(&path)
                && self.inputs.contains(&p)
            {
                return Err(file_error(
                    &path,
                    format!(
                        "is an input of this {} and --force would replace it: choose another --out",
                        self.kind.name()
                    ),
                ));
            }
        }
        // Files of the names this command writes that no attnflow command wrote here (no
        // record names them): the user's, which --force does not replace.
        let ours: Vec<String> = Kind::ALL
            .into_iter()
            .flat_map(|k| owned_files(&self.dir, k))
            .collect();
        let foreign: Vec<&str> = self
            .kind
            .files()
            .iter()
            .copied()
            .filter(|f| {
                !self.kind.optional_files().contains(f)
                    && self.dir.join(f).exists()
                    && !ours.iter().any(|o| o == f)
            })
            .collect();
        // An experiment's file names depend on its parameters and are known only once it
        // ran: its --force replaces a folder of attnflow's results only, so any other file
        // there (one no record names) is refused before the work, not found at the commit.
        let foreign: Vec<String> = if self.kind == Kind::Experiment {
            let mut other: Vec<String> = entries
                .iter()
                .filter(|n| !n.starts_with('.') && self.dir.join(n.as_str()).is_file())
                .filter(|n| !ours.iter().any(|o| o == *n))
                .cloned()
                .collect();
            other.sort();
            other
        } else {
            foreign.into_iter().map(String::from).collect()
        };
        if !foreign.is_empty() {
            return Err(file_error(
                &self.dir,
                format!(
                    "holds {} that no attnflow command wrote here (no {} names {}); --force \
                     replaces only attnflow's own results: move {} or choose another --out",
                    foreign.join(", "),
                    self.kind.record(),
                    if foreign.len() == 1 { "it" } else { "them" },
                    if foreign.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
        Ok(())
    }

    /// Refuses to write the optional file `name` ([`Kind::optional_files`]: the arrays a binding
    /// gave, kept beside the results) over a file of that name that no earlier command of this
    /// kind wrote: it is the user's.
    pub fn claim(&self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        if path.exists() && !owned_files(&self.dir, self.kind).iter().any(|o| o == name) {
            return Err(file_error(
                &path,
                format!(
                    "was not written by an attnflow {} here (no {} names it) and keeping the \
                     given array would replace it: move it or choose another out",
                    self.kind.name(),
                    self.kind.record()
                ),
            ));
        }
        Ok(())
    }

    /// Adds files the command reads, known only after the folder was opened (a resumed run's
    /// configuration comes from the folder): the same refusal as for those given to `open`.
    pub fn add_inputs(&mut self, inputs: &[PathBuf]) -> Result<()> {
        self.inputs
            .extend(inputs.iter().filter_map(|p| std::fs::canonicalize(p).ok()));
        self.check_contents()
    }

    /// The checkpoint a killed run left in this folder (see the module's documentation).
    pub fn checkpoint(&self) -> Option<PathBuf> {
        let kept = self.dir.join(CHECKPOINT);
        kept.join(CHECKPOINT_RECORD).is_file().then_some(kept)
    }

    /// Where to write the file `name` (inside the staging folder).
    pub fn path(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// The staging folder, for code that writes several files itself.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The output folder the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves every staged file into the output folder (each synced to disk, then renamed over
    /// any earlier file of the same name), removes this kind's earlier files that were not
    /// rewritten (with `force`), and returns the names written, sorted.
    pub fn commit(mut self) -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.staging)
            .map_err(|e| file_error(&self.staging, format!("cannot read: {e}")))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in &names {
            let staged = self.staging.join(name);
            if staged.is_file() {
                File::open(&staged)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| file_error(&staged, format!("cannot write to disk: {e}")))?;
            }
        }
        // The last guard before anything is replaced: a staged file may go over only a file
        // this kind of command wrote here (a file made meanwhile, or one whose name the
        // checks before the work could not know, is the user's).
        let owned = owned_files(&self.dir, self.kind);
        let theirs: Vec<&str> = names
            .iter()
            .filter(|n| self.dir.join(n.as_str()).symlink_metadata().is_ok())
            .filter(|n| !owned.contains(n))
            .map(String::as_str)
            .collect();
        if !theirs.is_empty() {
            return Err(file_error(
                &self.dir,
                format!(
                    "holds {} that no attnflow {} wrote here (no {} names {}); nothing was \
                     replaced: move {} or choose another --out",
                    theirs.join(", "),
                    self.kind.name(),
                    self.kind.record(),
                    if theirs.len() == 1 { "it" } else { "them" },
                    if theirs.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
        let stale: Vec<String> = if self.force {
            owned_files(&self.dir, self.kind)
                .into_iter()
                .filter(|f| !names.contains(f))
                .collect()
        } else {
            Vec::new()
        };
        for name in &names {
            let (from, to) = (self.staging.join(name), self.dir.join(name));
            std::fs::rename(&from, &to)
                .map_err(|e| file_error(&to, format!("cannot move into place: {e}")))?;
        }
        for name in stale {
            let path = self.dir.join(&name);
            let is_input = std::fs::canonicalize(&path).is_ok_and(|p| self.inputs.contains(&p));
            if !is_input {
                std::fs::remove_file(&path).map_err(|e| {
                    file_error(&path, format!("cannot remove an earlier result: {e}"))
                })?;
            }
        }
        if self.kind == Kind::Run {
            let _ = std::fs::remove_dir_all(self.dir.join(CHECKPOINT));
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        self.committed = true;
        Ok(names)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
            if self.created {
                // Nothing but the lock: the failed command leaves no folder behind.
                let _ = std::fs::remove_file(self.dir.join(LOCK));
                let _ = std::fs::remove_dir(&self.dir);
            }
        }
        if let Some(lock) = self.lock.take() {
            let _ = lock.unlock();
        }
    }
}

/// Writes `path` atomically: `write` fills a temporary file beside it (same extension, so that
/// encoders that go by it work), which is synced and renamed over `path` only on success.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Input(format!("{} is not a file name", path.display())))?;
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}{ext}",
        name.to_string_lossy(),
        std::process::id()
    ));
    // A folder one may not write fails here, named by the file the user asked for.
    File::create(&tmp).map_err(|e| file_error(path, format!("cannot write: {e}")))?;
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| file_error(&tmp, format!("cannot write to disk: {e}")))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| file_error(path, format!("cannot move into place: {e}")))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Opens a file a command reads: regular files only. A FIFO, a device (`/dev/zero`) or a
/// folder is refused with what it is, before anything is read: a FIFO would block the open
/// and a device never end. The open does not block (`O_NONBLOCK`, checked again on the open
/// file, which a swap after the first check cannot fool).
pub fn open_input(path: &Path) -> Result<File> {
    let refuse = |m: &std::fs::Metadata| -> Result<()> {
        if m.is_file() {
            return Ok(());
        }
        #[cfg(unix)]
        let what = {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            if t.is_fifo() {
                "a FIFO (named pipe)"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else if t.is_dir() {
                "a folder"
            } else {
                "not a regular file"
            }
        };
        #[cfg(not(unix))]
        let what = if m.is_dir() {
            "a folder"
        } else {
            "not a regular file"
        };
        Err(file_error(
            path,
            format!(
                "is {what}: attnflow reads its inputs from regular files only (a pipe or a \
                 device may block or never end); save the data to a file and give that"
            ),
        ))
    };
    let meta =
        std::fs::metadata(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    refuse(&meta)?;
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    refuse(
        &file
            .metadata()
            .map_err(|e| file_error(path, format!("cannot read: {e}")))?,
    )?;
    Ok(file)
}

/// `sha256:HEX` of a file's bytes, for the record of what a command read.
pub fn sha256_file(path: &Path) -> Result<String> {
    sha256_range(path, 0, u64::MAX)
}

/// `sha256:HEX` of at most `len` bytes of a file from byte `start` (what a checkpoint covers
/// of a file written on since).
pub fn sha256_range(path: &Path, start: u64, len: u64) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::SeekFrom;
    let mut file = open_input(path)?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let k = file
            .read(&mut buf[..want])
            .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        left -= k as u64;
    }
    Ok(sha256_hex(hasher))
}

/// `sha256:HEX` of what a hasher was fed.
pub fn sha256_hex(hasher: sha2::Sha256) -> String {
    use sha2::Digest;
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A command line as a POSIX shell reads it back: arguments with anything but letters,
/// digits and `_-./:=,+@%` single-quoted (a single quote inside as '\'').
pub fn shell_command<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| {
            let a = a.as_ref();
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
            if plain {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_has_one_writer_and_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o");
        let first = Output::open(&out, Kind::Run, false, &[]).unwrap();
        let e = Output::open(&out, Kind::Run, true, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        std::fs::write(first.path("final.npy"), b"new").unwrap();
        std::fs::write(
            first.path("run.toml"),
            b"[provenance]\nattnflow_version = \"0.1.0\"\n",
        )
        .unwrap();
        assert!(!out.join("final.npy").exists(), "visible before the commit");
        assert_eq!(first.commit().unwrap(), ["final.npy", "run.toml"]);
        assert_eq!(std::fs::read(out.join("final.npy")).unwrap(), b"new");
        // A failed command (dropped without commit) leaves the folder as it was.
        {
            let second = Output::open(&out, Kind::Run, true, &[]).unwrap();
            std::fs::write(second.path("final.npy"), b"half").unwrap();
        }
        assert_eq!(std::fs::read(out.join("final.npy")).unwrap(), b"new");
        assert!(!out.join(STAGING).exists());
        // Files of a run's names without the run.toml that marks them as a run's are the
        // user's: --force refuses to replace them, and a run may not keep an array over them.
        let user = dir.path().join("user");
        std::fs::create_dir(&user).unwrap();
        std::fs::write(user.join("traj.npy"), b"mine").unwrap();
        let e = Output::open(&user, Kind::Run, true, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("traj.npy that no attnflow command wrote"), "{e}");
        std::fs::remove_file(user.join("traj.npy")).unwrap();
        std::fs::write(user.join("x0.npy"), b"mine").unwrap();
        let o = Output::open(&user, Kind::Run, true, &[]).unwrap();
        let e = o.claim("x0.npy").unwrap_err().to_string();
        assert!(e.contains("was not written by an attnflow run"), "{e}");
        drop(o);
        assert_eq!(std::fs::read(user.join("x0.npy")).unwrap(), b"mine");
        // Was: any file named run.toml made the folder attnflow's, and --force replaced a
        // user's run.toml ("MY TOML") and final.npy. Only a record with attnflow's provenance
        // does.
        std::fs::remove_file(user.join("x0.npy")).unwrap();
        std::fs::write(user.join("run.toml"), b"MY TOML").unwrap();
        std::fs::write(user.join("final.npy"), b"mine").unwrap();
        let e = Output::open(&user, Kind::Run, true, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("final.npy, run.toml that no attnflow command wrote"),
            "{e}"
        );
        assert_eq!(std::fs::read(user.join("run.toml")).unwrap(), b"MY TOML");
        // A folder the failed command created is gone again.
        let fresh = dir.path().join("fresh");
        drop(Output::open(&fresh, Kind::Attend, false, &[]).unwrap());
        assert!(!fresh.exists());
    }

    #[test]
    fn commands_are_quoted_for_the_shell() {
        assert_eq!(
            shell_command(&[
                "attnflow",
                "run",
                "--out",
                "a b",
                "--init",
                "file:x's.npy",
                ""
            ]),
            "attnflow run --out 'a b' --init 'file:x'\\''s.npy' ''"
        );
    }
}

/// When, where and how a job ran: the `[provenance]` table of run.toml, attend.toml and
/// cfm.toml, and the `provenance` object of an experiment's summary.json (one form for
/// every command). The rest of each record is the job's resolved options: what reproduces it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    pub attnflow_version: String,
    /// The backend asked for (auto, gpu, cpu, reference).
    pub requested_backend: String,
    /// The backend and device that ran, e.g. "cpu (2 threads, AVX2+FMA)".
    pub device: String,
    /// "finished", or why it stopped ("interrupted at step K of L").
    pub status: String,
    /// Steps done and the time reached (jobs that step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_done: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_done: Option<f64>,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    /// The command line, shell-quoted ([`shell_command`]), or the library call that ran it.
    pub command: String,
    /// The step a resumed run continued from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from_step: Option<usize>,
}

impl Provenance {
    /// A finished job started at `started` (see [`unix_now`]) that took `elapsed_s`.
    pub fn finished(
        requested_backend: &str,
        device: String,
        started_unix_s: u64,
        elapsed_s: f64,
        command: &str,
    ) -> Self {
        Provenance {
            attnflow_version: env!("CARGO_PKG_VERSION").to_string(),
            requested_backend: requested_backend.to_string(),
            device,
            status: "finished".to_string(),
            steps_done: None,
            t_done: None,
            started_unix_s,
            elapsed_s,
            command: command.to_string(),
            resumed_from_step: None,
        }
    }
}

/// Seconds since the Unix epoch (0 when the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A job's record file: its resolved options (flattened) and its provenance, as TOML.
pub fn record_toml<T: serde::Serialize>(options: &T, provenance: &Provenance) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Record<'a, T> {
        #[serde(flatten)]
        options: &'a T,
        provenance: &'a Provenance,
    }
    toml::to_string(&Record {
        options,
        provenance,
    })
    .map_err(|e| Error::Input(format!("cannot write the record: {e}")))
}
