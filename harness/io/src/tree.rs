//! The hash of a set of source trees: every file under them, paths (relative to the root) and
//! contents, in sorted order. Build scripts key caches by it (`rtl/build.rs`,
//! `harness/cli/build.rs`), so a change to any file that computes a cached figure changes the
//! key: nothing hand-bumped can be forgotten.

use std::path::{Path, PathBuf};

use crate::Sha256;

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
    let mut hex = hash.finish();
    hex.truncate(16);
    hex
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_hash_follows_paths_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("src/a.rs"), "a").unwrap();
        std::fs::write(root.join("src/deep/b.rs"), "b").unwrap();
        std::fs::write(root.join("Cargo.lock"), "lock").unwrap();
        let sources = ["src", "Cargo.lock", "missing"];
        let mut seen = Vec::new();
        let before = tree_hash(root, &sources, |p| seen.push(p.to_path_buf()));
        assert_eq!(seen, sources.map(|s| root.join(s)));
        assert_eq!(before.len(), 16);
        assert!(before.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(tree_hash(root, &sources, |_| {}), before);

        std::fs::write(root.join("src/deep/b.rs"), "b2").unwrap();
        let edited = tree_hash(root, &sources, |_| {});
        assert_ne!(edited, before);
        std::fs::rename(root.join("src/deep/b.rs"), root.join("src/deep/c.rs")).unwrap();
        assert_ne!(tree_hash(root, &sources, |_| {}), edited);
        assert_ne!(
            tree_hash(root, &["src"], |_| {}),
            tree_hash(root, &sources, |_| {})
        );
    }
}
