//! Checking the files of a dataset on disk against the registry's SHA-256.

use std::fmt;
use std::path::{Path, PathBuf};

use qbench_io::sha256_file;

use crate::error::{DatasetError, Result};
use crate::registry::{DataFile, DatasetEntry, Format, Split, Unpack, locate};

/// The outcome of checking one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// The file's SHA-256 matches the published one, or a known-good copy.
    Ok {
        /// The SHA-256 found.
        sha256: String,
        /// What it matched: "published sha256" or the source of an
        /// accepted copy (e.g. the Debian package).
        matched: String,
    },
    /// The file's SHA-256 matches nothing known.
    Mismatch {
        /// The published SHA-256 (or, without one, the accepted copies').
        expected: Vec<String>,
        /// The SHA-256 found.
        found: String,
    },
    /// The file is not there.
    Missing,
    /// No checksum is published for this file, so it cannot be verified.
    NoPublishedChecksum {
        /// The SHA-256 found, to record for provenance.
        sha256: String,
    },
}

/// The check of one registered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file's role in the registry (`train-images`, `archive`, ...).
    pub role: String,
    /// Where it was looked for.
    pub path: PathBuf,
    /// What was found.
    pub status: FileStatus,
}

impl FileCheck {
    /// True when the file is present and matches a known checksum.
    pub fn is_ok(&self) -> bool {
        matches!(self.status, FileStatus::Ok { .. })
    }

    /// `Ok` when the file may be read: it matches a known checksum, or none
    /// is published. A mismatch ([`DatasetError::ChecksumMismatch`]) or a
    /// missing file ([`DatasetError::MissingPath`]) is an error naming it.
    pub fn require_usable(&self) -> Result<()> {
        match &self.status {
            FileStatus::Ok { .. } | FileStatus::NoPublishedChecksum { .. } => Ok(()),
            FileStatus::Mismatch { expected, found } => Err(DatasetError::ChecksumMismatch {
                path: self.path.clone(),
                expected: expected.join(" or "),
                found: found.clone(),
            }),
            FileStatus::Missing => Err(DatasetError::MissingPath {
                path: self.path.clone(),
                message: format!("registered dataset file ({}) is missing", self.role),
            }),
        }
    }

    /// True when the file is missing or matches no known checksum.
    pub fn is_failure(&self) -> bool {
        matches!(
            self.status,
            FileStatus::Mismatch { .. } | FileStatus::Missing
        )
    }
}

impl fmt::Display for FileCheck {
    /// One line a person can read, e.g.
    /// `OK        train-images /data/x.gz (sha256 abc..., matches published sha256)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.status {
            FileStatus::Ok { sha256, matched } => {
                write!(
                    f,
                    "OK        {} {p} (sha256 {sha256}, matches {matched})",
                    self.role
                )
            }
            FileStatus::Mismatch { expected, found } => write!(
                f,
                "MISMATCH  {} {p}: sha256 {found}, expected {}",
                self.role,
                expected.join(" or ")
            ),
            FileStatus::Missing => write!(f, "MISSING   {} {p}", self.role),
            FileStatus::NoPublishedChecksum { sha256 } => write!(
                f,
                "UNCHECKED {} {p}: no published checksum (sha256 {sha256})",
                self.role
            ),
        }
    }
}

/// What `sha256` matches for `file`: `Some(description)` or `None`.
pub(crate) fn matches(file: &DataFile, sha256: &str) -> Option<String> {
    if file.sha256.as_deref() == Some(sha256) {
        return Some("published sha256".into());
    }
    file.also_accepted
        .iter()
        .find(|c| c.sha256 == sha256)
        .map(|c| c.source.clone())
}

/// Checks one file at `path` against the registry.
pub(crate) fn check_file(file: &DataFile, path: &Path) -> Result<FileCheck> {
    let status = if !path.is_file() {
        FileStatus::Missing
    } else {
        let sha256 = sha256_file(path)?;
        if let Some(matched) = matches(file, &sha256) {
            FileStatus::Ok { sha256, matched }
        } else if file.sha256.is_none() && file.also_accepted.is_empty() {
            FileStatus::NoPublishedChecksum { sha256 }
        } else {
            let expected = match &file.sha256 {
                Some(h) => vec![h.clone()],
                None => Vec::new(),
            }
            .into_iter()
            .chain(file.also_accepted.iter().map(|c| c.sha256.clone()))
            .collect();
            FileStatus::Mismatch {
                expected,
                found: sha256,
            }
        }
    };
    Ok(FileCheck {
        role: file.role.clone(),
        path: path.to_path_buf(),
        status,
    })
}

/// Locates `entry` (see [`locate`]) and hashes each of its registered files,
/// reporting each as OK, mismatch, missing or without published checksum.
/// Entries without registered files (ImageNet) give an empty list.
pub fn verify(entry: &DatasetEntry) -> Result<Vec<FileCheck>> {
    let dir = locate(entry)?;
    verify_in(entry, &dir)
}

/// [`verify`] for the files in `dir` instead of the located folder.
///
/// A [`Format::Kitti`] dataset has thousands of image and label files and no published
/// checksum for them, so, as for ImageNet folders, nothing is hashed per image; instead each
/// split folder's layout is checked ([`crate::kitti::image_ids_in`]: every image has its label
/// and the reverse, the registered count if any), an error naming the first file at fault. Its
/// zip archives are only the download form: those still present are hashed and reported,
/// those deleted after unzipping are left out of the list.
pub fn verify_in(entry: &DatasetEntry, dir: &Path) -> Result<Vec<FileCheck>> {
    if entry.format == Format::Kitti {
        for split in [Split::Train, Split::Test] {
            let Some(files) = entry.split(split) else {
                continue;
            };
            let split_dir = dir.join(files.dir.as_deref().unwrap_or_default());
            let ids = crate::kitti::image_ids_in(&split_dir)?;
            if let Some(count) = files.count
                && count != ids.len()
            {
                return Err(DatasetError::Unexpected {
                    path: split_dir,
                    what: "number of images",
                    expected: format!("{count} (registry entry `{}`, {split} split)", entry.name),
                    found: ids.len().to_string(),
                });
            }
        }
    }
    entry
        .files
        .iter()
        .filter(|f| {
            !(f.unpack == Some(Unpack::Zip)
                && entry.format == Format::Kitti
                && !dir.join(&f.name).exists())
        })
        .map(|f| check_file(f, &dir.join(&f.name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use qbench_io::sha256_hex;

    fn entry(sha_a: &str) -> DatasetEntry {
        let yaml = format!(
            "\
datasets:
  - name: t
    description: d
    format: idx
    num_classes: 2
    image_shape: [1, 1, 1]
    licence: none
    files:
      - {{role: train-images, name: a, sha256: {sha_a}}}
      - {{role: train-labels, name: b}}
      - {{role: test-images, name: c, sha256: {sha_a}, also_accepted: [{{sha256: {}, source: a repack}}]}}
      - {{role: test-labels, name: d, sha256: {sha_a}}}
    splits:
      train: {{images: a, labels: b}}
",
            sha256_hex(b"repacked")
        );
        Registry::from_yaml_str(&yaml).unwrap().entries()[0].clone()
    }

    #[test]
    fn reports_ok_mismatch_missing_and_unchecked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"right").unwrap();
        std::fs::write(dir.path().join("b"), b"anything").unwrap();
        std::fs::write(dir.path().join("c"), b"repacked").unwrap();
        let e = entry(&sha256_hex(b"right"));
        let checks = verify_in(&e, dir.path()).unwrap();
        assert!(checks[0].is_ok());
        assert!(matches!(
            checks[1].status,
            FileStatus::NoPublishedChecksum { .. }
        ));
        assert!(checks[1].to_string().contains("no published checksum"));
        assert!(
            matches!(&checks[2].status, FileStatus::Ok { matched, .. } if matched == "a repack")
        );
        assert_eq!(checks[3].status, FileStatus::Missing);
        assert!(checks[3].is_failure());

        // Corrupt `a`: now a mismatch naming both hashes.
        std::fs::write(dir.path().join("a"), b"wrong").unwrap();
        let checks = verify_in(&e, dir.path()).unwrap();
        match &checks[0].status {
            FileStatus::Mismatch { expected, found } => {
                assert_eq!(expected, &vec![sha256_hex(b"right")]);
                assert_eq!(found, &sha256_hex(b"wrong"));
            }
            s => panic!("expected mismatch, got {s:?}"),
        }
        let e = checks[0].require_usable().unwrap_err();
        assert!(
            matches!(&e, DatasetError::ChecksumMismatch { path, .. } if path.ends_with("a")),
            "{e}"
        );
        assert!(checks[1].require_usable().is_ok() && checks[2].require_usable().is_ok());
        let e = checks[3].require_usable().unwrap_err();
        assert!(matches!(e, DatasetError::MissingPath { .. }), "{e}");
        let line = checks[0].to_string();
        assert!(
            line.starts_with("MISMATCH") && line.contains(&sha256_hex(b"wrong")),
            "{line}"
        );
    }
}
