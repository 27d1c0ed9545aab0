//! `.build-*` work folders of the flow: one per unit measurement, marked in use by a lock.
//!
//! A folder is created beside the cache entry it will become, holds the scripts, netlists and
//! logs of one measurement, and is renamed into place when it succeeds or kept for inspection when
//! it fails. While a process works in it, the folder's `.lock` file holds an advisory lock, which
//! the kernel releases when the process ends in any way (kill -9 included). Creating a folder
//! first removes the stale ones of its parent: those whose lock is free, and those without a lock
//! file (a kept failure, or a folder from an older qbench) untouched for [`STALE_UNLOCKED`].

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use qbench_io::IoError;

use crate::error::Result;

/// Prefix of the work folders.
const PREFIX: &str = ".build-";
/// Name of the lock file inside a work folder.
const LOCK: &str = ".lock";
/// Age after which a work folder without a lock file counts as stale.
pub const STALE_UNLOCKED: Duration = Duration::from_secs(10 * 60);

/// A work folder in use; removed when dropped unless kept.
pub struct WorkDir {
    dir: tempfile::TempDir,
    /// Holds the folder's lock while this process uses it.
    _lock: File,
}

impl WorkDir {
    /// A fresh work folder in `parent` (created if needed), after removing the stale ones there.
    ///
    /// # Errors
    /// [`crate::error::HwError::Io`] when `parent` or the folder cannot be created.
    pub fn create(parent: &Path) -> Result<WorkDir> {
        std::fs::create_dir_all(parent)
            .map_err(|e| IoError::new("create the folder", parent, e))?;
        remove_stale(parent);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(parent)
            .map_err(|e| IoError::new("create a work folder in", parent, e))?;
        let lock_path = dir.path().join(LOCK);
        let lock = File::create(&lock_path).map_err(|e| IoError::new("create", &lock_path, e))?;
        lock.lock()
            .map_err(|e| IoError::new("lock", &lock_path, e))?;
        Ok(WorkDir { dir, _lock: lock })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the folder (without its lock file) and returns its path: to rename it into the
    /// cache, or to leave a failed measurement's files for inspection.
    pub fn keep(self) -> PathBuf {
        let _ = std::fs::remove_file(self.dir.path().join(LOCK));
        self.dir.keep()
    }
}

/// Removes the stale work folders of `parent`; folders another process still uses are left.
/// Failures are ignored: a folder that cannot be removed now is tried again next time.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_work = entry.file_name().to_string_lossy().starts_with(PREFIX)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if is_work && is_stale(&path) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn is_stale(dir: &Path) -> bool {
    match File::open(dir.join(LOCK)) {
        // Taking the lock proves no process holds it; it is released when `f` drops.
        Ok(f) => match f.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => false,
        },
        Err(_) => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_UNLOCKED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_folders_go_and_folders_in_use_stay() {
        let parent = tempfile::tempdir().unwrap();
        // A folder left by a process that ended: its lock file is not locked.
        let dead = parent.path().join(".build-dead");
        std::fs::create_dir(&dead).unwrap();
        File::create(dead.join(LOCK)).unwrap();
        // A folder another process is working in (here: this one, through a second handle).
        let live = WorkDir::create(parent.path()).unwrap();
        // A fresh folder without a lock file (being created right now) and an unrelated one.
        let fresh = parent.path().join(".build-fresh");
        std::fs::create_dir(&fresh).unwrap();
        let other = parent.path().join("entry");
        std::fs::create_dir(&other).unwrap();

        let next = WorkDir::create(parent.path()).unwrap();
        assert!(!dead.exists(), "a folder whose lock is free is removed");
        assert!(live.path().exists(), "a locked folder stays");
        assert!(fresh.exists() && other.exists());
        // Kept folders lose their lock file and are stale once old enough.
        let kept = live.keep();
        assert!(kept.exists() && !kept.join(LOCK).exists());
        drop(next);
    }
}
