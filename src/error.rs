//! The library's one error type. Messages say what was wrong and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong in attnflow.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter or an input value that the model cannot take.
    #[error("{0}")]
    Input(String),
    /// A file that could not be read or written, or whose contents are not what was expected.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// The problem does not fit the GPU adapter; the message names the limit.
    #[error("{0}")]
    Limit(String),
    /// No usable GPU, or the GPU reported an error.
    #[error("GPU: {0}")]
    Gpu(String),
    /// The state became NaN or infinite (for instance USA weights exp(beta s) beyond f32).
    #[error("{0}")]
    NonFinite(String),
    /// A stop that was asked for (Ctrl-C), where the job cannot keep a partial result.
    #[error("{0}")]
    Interrupted(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an [`Error::Input`].
pub fn input(msg: impl Into<String>) -> Error {
    Error::Input(msg.into())
}

/// Shorthand for an [`Error::File`].
pub fn file_error(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.into(),
        msg: msg.to_string(),
    }
}
