//! Atomic file writes: a reader sees the old file or the new one, never half of one.
//!
//! The bytes go to a temporary file in the target's folder (`.<name>.XXXXXX.tmp`), which is
//! flushed to disk, given mode 0644 and renamed over the target. A write that fails or is
//! abandoned removes its temporary file and leaves the target as it was.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::IoError;

/// Writes `bytes` (text or binary) to `path` atomically, creating its folder if needed; the file has mode 0644.
///
/// # Errors
/// [`IoError`] naming `path` (or its folder) when the folder cannot be created or the file
/// cannot be written or moved into place.
pub fn write_atomic(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<(), IoError> {
    let path = path.as_ref();
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes.as_ref())
        .map_err(|e| IoError::new("write", path, e))?;
    file.commit()
}

/// A file being written atomically, for content that arrives in pieces (a download): write to
/// it, then [`AtomicFile::commit`] it into place. Dropped without a commit, it leaves nothing
/// behind.
#[derive(Debug)]
pub struct AtomicFile {
    /// The target.
    path: PathBuf,
    /// The temporary file beside it.
    tmp: NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `path`: creates its folder if needed and the temporary file beside it.
    ///
    /// # Errors
    /// [`IoError`] naming the folder when it cannot be created or written to.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, IoError> {
        let path = path.as_ref();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| IoError::new("create the folder", dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| IoError::new("create a temporary file in", dir, e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The temporary file written until the commit (for error messages about a write).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Flushes the file to disk, gives it mode 0644 and renames it over the target.
    ///
    /// # Errors
    /// [`IoError`] naming the target when the file cannot be flushed or moved into place; the
    /// temporary file is removed and the target left as it was.
    pub fn commit(self) -> Result<(), IoError> {
        let AtomicFile { path, tmp } = self;
        let file = tmp.as_file();
        let flushed = set_mode(file).and_then(|()| file.sync_all());
        flushed.map_err(|e| IoError::new("write", &path, e))?;
        tmp.persist(&path)
            .map_err(|e| IoError::new("move into place", &path, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// Mode 0644 (the temporary file is created 0600): results and caches are readable by the
/// group and others, like any file the user writes.
#[cfg(unix)]
fn set_mode(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

/// Other systems keep the temporary file's permissions.
#[cfg(not(unix))]
fn set_mode(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_content_creates_the_folder_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(names(&dir.path().join("a/b")), ["out.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_mode_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{mode:o}");
    }

    #[test]
    fn an_abandoned_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_atomic(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"half of the n").unwrap();
        assert!(file.temp_path().exists());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    #[test]
    fn a_failed_rename_leaves_the_target_and_no_temporary_file() {
        // The target is a non-empty folder: the rename fails after the bytes are written.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"kept").unwrap();
        let e = write_atomic(&target, b"new").unwrap_err();
        assert_eq!(e.action, "move into place");
        assert_eq!(e.path, target);
        assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"kept");
        assert_eq!(names(dir.path()), ["taken"]);
    }

    #[test]
    fn errors_name_the_path_and_the_reason_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"").unwrap();
        // Its "folder" is a file, so the folder cannot be created.
        let e = write_atomic(file.join("out.json"), b"x").unwrap_err();
        let msg = e.to_string();
        let shown = file.display().to_string();
        assert!(
            msg.starts_with(&format!("cannot create the folder {shown}: ")),
            "{msg}"
        );
        assert_eq!(msg.matches(&shown).count(), 1, "{msg}");
        assert_eq!(msg.matches("(os error").count(), 1, "{msg}");
        assert!(std::error::Error::source(&e).is_none());
    }
}
