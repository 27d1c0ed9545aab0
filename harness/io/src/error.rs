//! The one error of this crate: what was being done, to which path, and the OS's reason.

use std::path::PathBuf;

/// An operating-system error on a path: the one form of a file error in qbench, which every
/// crate's error type wraps.
///
/// The message names the path once and carries the OS's reason once (`cannot write
/// results/x.json: No such file or directory (os error 2)`). The reason is part of the message
/// and not a [`std::error::Error::source`], so a caller that prints only the message still
/// shows it, and one that prints the whole chain does not repeat it.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {cause}", path.display())]
pub struct IoError {
    /// What was being done, e.g. "write", "create the folder", "read".
    pub(crate) action: &'static str,
    /// The file or folder concerned.
    pub(crate) path: PathBuf,
    /// The operating system's error.
    pub(crate) cause: std::io::Error,
}

impl IoError {
    /// An error doing `action` (a verb phrase: "read", "create the folder") to `path`.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        IoError {
            action,
            path: path.into(),
            cause,
        }
    }
}
