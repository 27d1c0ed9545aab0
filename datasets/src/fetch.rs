//! Downloading a registered dataset, verifying it, and unpacking archives.
//!
//! Each file is streamed into a temporary file in the destination folder
//! while being hashed; only when its SHA-256 matches the registry is it
//! renamed (atomically) to its final name, so a failed or interrupted
//! download never leaves a partial file behind. Archives (`unpack: tar.gz`)
//! are then extracted into a temporary folder beside them and moved into
//! place. Without network, the error gives the manual steps.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use qbench_io::{AtomicFile, Sha256};

use crate::error::{DatasetError, Result};
use crate::registry::{DATA_ENV, DataFile, DatasetEntry, Unpack};
use crate::verify::{FileCheck, FileStatus, check_file, matches};

/// Why one download attempt failed: a remote problem (try the next mirror)
/// or a local one (stop).
enum AttemptError {
    Remote(String),
    Local(DatasetError),
}

/// Downloads every registered file of `entry` into `dest_dir` (created if
/// needed), verifies each against the registry's SHA-256, and extracts
/// archives. Files already present with a known-good hash are kept.
///
/// `progress(downloaded, total)` is called as bytes arrive: `downloaded`
/// counts bytes of all files so far, `total` is the sum of the registered
/// sizes when every file has one.
///
/// Returns the check of each file. Fails, leaving no partial file, when a
/// file cannot be had from any of its addresses or does not match its
/// checksum; the error then says how to install the dataset by hand (URLs,
/// destination, expected SHA-256). Local-only datasets (ImageNet) fail
/// with their installation hint.
pub fn fetch(
    entry: &DatasetEntry,
    dest_dir: &Path,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Vec<FileCheck>> {
    if entry.files.is_empty() || entry.files.iter().any(|f| f.url.is_none()) {
        return Err(DatasetError::Fetch {
            dataset: entry.name.clone(),
            reason: "it has no download address in the registry (local copy only)".into(),
            manual: format!("To install it: {}", entry.install_hint()),
        });
    }
    if let Some(zip) = entry.files.iter().find(|f| f.unpack == Some(Unpack::Zip)) {
        return Err(DatasetError::Fetch {
            dataset: entry.name.clone(),
            reason: format!(
                "{} is a zip archive, which qbench does not extract; install it by hand",
                zip.name
            ),
            manual: manual_steps(entry, dest_dir),
        });
    }
    std::fs::create_dir_all(dest_dir)
        .map_err(|e| DatasetError::io(dest_dir, "create directory", e))?;
    let total: Option<u64> = entry.files.iter().map(|f| f.size).sum();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("qbench-datasets/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut done = 0u64;
    let mut checks = Vec::with_capacity(entry.files.len());
    for file in &entry.files {
        let target = dest_dir.join(&file.name);
        let existing = if target.is_file() {
            Some(check_file(file, &target)?)
        } else {
            None
        };
        let (check, fresh) = match existing {
            Some(c) if c.is_ok() => {
                done += std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
                progress(done, total);
                (c, false)
            }
            _ => (
                download(&agent, entry, file, dest_dir, &mut done, total, progress)?,
                true,
            ),
        };
        if file.unpack == Some(Unpack::TarGz) && (fresh || !entry.is_present_in(dest_dir)) {
            extract_tar_gz(&target, dest_dir)?;
        }
        checks.push(check);
    }
    Ok(checks)
}

/// Tries `file`'s URL then its mirrors; on success the file is in place.
fn download(
    agent: &ureq::Agent,
    entry: &DatasetEntry,
    file: &DataFile,
    dest_dir: &Path,
    done: &mut u64,
    total: Option<u64>,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<FileCheck> {
    let target = dest_dir.join(&file.name);
    let mut reasons = Vec::new();
    for url in file.urls() {
        let start = *done;
        match attempt(agent, url, file, &target, done, total, progress) {
            Ok((tmp, status)) => {
                tmp.commit()?;
                return Ok(FileCheck {
                    role: file.role.clone(),
                    path: target,
                    status,
                });
            }
            Err(AttemptError::Local(e)) => return Err(e),
            Err(AttemptError::Remote(reason)) => {
                *done = start;
                reasons.push(format!("{url}: {reason}"));
            }
        }
    }
    Err(DatasetError::Fetch {
        dataset: entry.name.clone(),
        reason: format!("could not download {}: {}", file.name, reasons.join("; ")),
        manual: manual_steps(entry, dest_dir),
    })
}

/// One download from `url` into a temporary file beside `target`, hashed on
/// the way. The temporary file is deleted when dropped unless committed.
fn attempt(
    agent: &ureq::Agent,
    url: &str,
    file: &DataFile,
    target: &Path,
    done: &mut u64,
    total: Option<u64>,
    progress: &dyn Fn(u64, Option<u64>),
) -> std::result::Result<(AtomicFile, FileStatus), AttemptError> {
    let remote = |m: String| AttemptError::Remote(m);
    let mut response = agent.get(url).call().map_err(|e| remote(e.to_string()))?;
    let announced = response.body().content_length();
    if let (Some(a), Some(s)) = (announced, file.size)
        && a != s
    {
        return Err(remote(format!("server announces {a} bytes, expected {s}")));
    }
    let mut tmp = AtomicFile::create(target).map_err(|e| AttemptError::Local(e.into()))?;
    let local =
        |tmp: &AtomicFile, e| AttemptError::Local(DatasetError::io(tmp.temp_path(), "write", e));
    let mut reader = response.body_mut().as_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(remote(format!(
                    "download interrupted after {received} bytes: {e}"
                )));
            }
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| local(&tmp, e))?;
        received += n as u64;
        *done += n as u64;
        progress(*done, total);
    }
    if let Some(s) = file.size
        && received != s
    {
        return Err(remote(format!("received {received} bytes, expected {s}")));
    }
    let sha256 = hasher.finish();
    let status = if let Some(matched) = matches(file, &sha256) {
        FileStatus::Ok { sha256, matched }
    } else if file.sha256.is_none() && file.also_accepted.is_empty() {
        FileStatus::NoPublishedChecksum { sha256 }
    } else {
        let expected = file
            .sha256
            .clone()
            .or_else(|| file.also_accepted.first().map(|c| c.sha256.clone()))
            .unwrap_or_default();
        return Err(remote(format!(
            "sha256 mismatch: expected {expected}, received {sha256}"
        )));
    };
    Ok((tmp, status))
}

/// How many times its own size a `.tar.gz` may inflate to when extracted.
/// The tar format states no total size, so this is the documented bound:
/// image archives compress far less than 10:1 (CIFAR-10's about 1.1:1),
/// while a gzip bomb inflates about 1000:1; extraction stops, with
/// [`DatasetError::Oversized`], as soon as the bound is passed.
pub(crate) const MAX_UNPACK_RATIO: u64 = 100;

/// A reader that fails once more than `limit` bytes have been read through it.
struct Capped<R> {
    inner: R,
    limit: u64,
    read: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit is allowed to arrive, to tell "exactly at
        // the limit" from "over it".
        let room = (self.limit + 1).saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other("decompressed size limit passed"));
        }
        Ok(n)
    }
}

/// Extracts a `.tar.gz` into `dest_dir`: first into a temporary folder
/// beside it, then each top-level entry is moved into place (replacing an
/// older one of the same name). At most [`MAX_UNPACK_RATIO`] times the
/// archive's size is inflated.
fn extract_tar_gz(archive: &Path, dest_dir: &Path) -> Result<()> {
    let staging = tempfile::Builder::new()
        .prefix(".qbench-extract-")
        .tempdir_in(dest_dir)
        .map_err(|e| DatasetError::io(dest_dir, "create a temporary folder in", e))?;
    let f = File::open(archive).map_err(|e| DatasetError::io(archive, "open", e))?;
    let len = f
        .metadata()
        .map_err(|e| DatasetError::io(archive, "read the metadata of", e))?
        .len();
    let limit = len.saturating_mul(MAX_UNPACK_RATIO).max(1 << 20);
    let mut tar = tar::Archive::new(Capped {
        inner: flate2::read::GzDecoder::new(BufReader::new(f)),
        limit,
        read: 0,
    });
    let unpacked = tar.unpack(staging.path());
    if tar.into_inner().read > limit {
        return Err(DatasetError::Oversized {
            path: archive.to_path_buf(),
            expected: limit,
            detail: format!(
                " ({MAX_UNPACK_RATIO} x the {len}-byte archive, at least 1 MiB: \
                 tar states no total size)"
            ),
        });
    }
    unpacked.map_err(|e| DatasetError::io(archive, "extract", e))?;
    let entries = std::fs::read_dir(staging.path())
        .map_err(|e| DatasetError::io(staging.path(), "list directory", e))?;
    for item in entries {
        let item = item.map_err(|e| DatasetError::io(staging.path(), "list directory", e))?;
        let target = dest_dir.join(item.file_name());
        if let Ok(meta) = std::fs::symlink_metadata(&target) {
            let removed = if meta.is_dir() {
                std::fs::remove_dir_all(&target)
            } else {
                std::fs::remove_file(&target)
            };
            removed.map_err(|e| DatasetError::io(&target, "replace", e))?;
        }
        std::fs::rename(item.path(), &target)
            .map_err(|e| DatasetError::io(&target, "move into place", e))?;
    }
    Ok(())
}

/// Step-by-step instructions to install `entry` into `dest_dir` by hand.
pub fn manual_steps(entry: &DatasetEntry, dest_dir: &Path) -> String {
    let name = &entry.name;
    let dest = dest_dir.display();
    let mut s =
        format!("To install `{name}` by hand:\n  1. On a machine with network access, download:\n");
    for f in &entry.files {
        let mut urls = f.urls();
        let first = urls.next().unwrap_or("(no download address)");
        let _ = writeln!(s, "       {first}");
        for m in urls {
            let _ = writeln!(s, "         (or {m})");
        }
        let hash = match &f.sha256 {
            Some(h) => format!("sha256 {h}"),
            None => "no published checksum".into(),
        };
        let size = f.size.map(|n| format!(", {n} bytes")).unwrap_or_default();
        let _ = writeln!(s, "         -> {name}/{} ({hash}{size})", f.name);
    }
    let _ = writeln!(
        s,
        "  2. Put them in {dest}/ (or in ${DATA_ENV}/{name}/ on the machine that runs qbench)."
    );
    let mut step = 3;
    for f in &entry.files {
        let _ = match f.unpack {
            Some(Unpack::TarGz) => writeln!(
                s,
                "  {step}. Unpack it there: tar -xzf {dest}/{0} -C {dest}",
                f.name
            ),
            Some(Unpack::Zip) => writeln!(
                s,
                "  {step}. Unpack it there: unzip -o {dest}/{0} -d {dest} (the archive may then be deleted)",
                f.name
            ),
            None => continue,
        };
        step += 1;
    }
    let _ = writeln!(s, "  {step}. Check them: qbench data verify {name}");
    if let Some(h) = &entry.install_hint {
        let _ = writeln!(s, "  Or: {h}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use std::cell::Cell;

    fn entry_with_url(url: &str) -> DatasetEntry {
        let yaml = format!(
            "\
datasets:
  - name: remote
    description: d
    format: cifar10
    num_classes: 10
    image_shape: [3, 32, 32]
    licence: none
    files:
      - role: archive
        name: data.tar.gz
        url: {url}
        sha256: c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd
        size: 170052171
        unpack: tar.gz
    splits:
      test: {{batches: [b/test_batch.bin]}}
"
        );
        Registry::from_yaml_str(&yaml).unwrap().entries()[0].clone()
    }

    #[test]
    fn unreachable_url_gives_manual_steps_and_leaves_nothing() {
        let dest = tempfile::tempdir().unwrap();
        let entry = entry_with_url("http://127.0.0.1:9/data.tar.gz");
        let calls = Cell::new(0);
        let e = fetch(&entry, dest.path(), &|_, _| calls.set(calls.get() + 1)).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DatasetError::Fetch { .. }), "{msg}");
        assert!(msg.contains("http://127.0.0.1:9/data.tar.gz"), "{msg}");
        assert!(
            msg.contains("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
            "{msg}"
        );
        assert!(msg.contains(&dest.path().display().to_string()), "{msg}");
        assert!(msg.contains("tar -xzf"), "{msg}");
        assert!(msg.contains("qbench data verify remote"), "{msg}");
        let left: Vec<_> = std::fs::read_dir(dest.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_eq!(calls.get(), 0);
    }

    #[test]
    fn local_only_dataset_cannot_be_fetched() {
        let entry = Registry::embedded().get("imagenet").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let msg = fetch(entry, dest.path(), &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("local copy only") && msg.contains("image-net.org"),
            "{msg}"
        );
    }

    #[test]
    fn archive_inflating_past_the_bound_stops_with_a_clear_error() {
        let dest = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::best(),
        ));
        let body = vec![0u8; 4 << 20];
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "b/test_batch.bin", &body[..])
            .unwrap();
        let gz = builder.into_inner().unwrap().finish().unwrap();
        assert!(gz.len() * 100 < 1 << 20, "{} bytes", gz.len());
        let archive = dest.path().join("bomb.tar.gz");
        std::fs::write(&archive, &gz).unwrap();
        let e = extract_tar_gz(&archive, dest.path()).unwrap_err();
        assert!(
            matches!(&e, DatasetError::Oversized { path, expected: 1_048_576, .. } if *path == archive),
            "{e}"
        );
        assert!(e.to_string().contains("bomb.tar.gz"), "{e}");
        let names: Vec<_> = std::fs::read_dir(dest.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("bomb.tar.gz")]);
    }

    #[test]
    fn present_verified_file_is_kept_and_archive_extracted() {
        // A tiny valid archive registered with its real hash: fetch must not
        // touch the network, only extract.
        let dest = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        let body = b"0123456789";
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "b/test_batch.bin", &body[..])
            .unwrap();
        let gz = builder.into_inner().unwrap().finish().unwrap();
        std::fs::write(dest.path().join("data.tar.gz"), &gz).unwrap();
        let mut entry = entry_with_url("http://127.0.0.1:9/data.tar.gz");
        entry.files[0].sha256 = Some(qbench_io::sha256_hex(&gz));
        entry.files[0].size = Some(gz.len() as u64);
        let seen = Cell::new((0, None));
        let checks = fetch(&entry, dest.path(), &|d, t| seen.set((d, t))).unwrap();
        assert!(checks[0].is_ok(), "{}", checks[0]);
        assert_eq!(seen.get(), (gz.len() as u64, Some(gz.len() as u64)));
        assert_eq!(
            std::fs::read(dest.path().join("b/test_batch.bin")).unwrap(),
            body
        );
        // No staging folder left.
        let names: Vec<String> = std::fs::read_dir(dest.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}
