//! The hash of a set of source trees: every file under them, paths (relative to the root) and
//! contents, in sorted order. Build scripts key caches by it (`rtl/build.rs`,
//! `harness/cli/build.rs` include this file), so a change to any file that computes a cached
//! figure changes the key: nothing hand-bumped can be forgotten.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The first 16 hex digits of the sha256 over every file under `root.join(source)` for each of
/// `sources` (a file or a folder, recursively); `on_source` is called with each joined path (the
/// build scripts print `cargo:rerun-if-changed` for it). A missing source contributes nothing.
pub fn tree_hash(root: &Path, sources: &[&str], mut on_source: impl FnMut(&Path)) -> String {
    let mut files = Vec::new();
    for source in sources {
        let path = root.join(source);
        on_source(&path);
        collect(&path, &mut files);
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let relative = file.strip_prefix(root).unwrap_or(file);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(std::fs::read(file).unwrap_or_default());
        hash.update([0]);
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `path` (or `path` itself).
fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                collect(&entry.path(), out);
            }
        }
        Err(_) if path.is_file() => out.push(path.to_path_buf()),
        Err(_) => {}
    }
}
