//! The dataset registry: what each dataset is, how to read it, where its files
//! come from with their SHA-256, and where it is found locally.
//!
//! The built-in registry is `datasets/registry.yaml`, embedded in the binary;
//! users can parse their own file with the same schema (documented at the top
//! of that file) and [`Registry::merge`] it over the built-in one.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use qbench_io::is_sha256_hex;
use serde::Deserialize;

use crate::error::{DatasetError, Result};

/// The dataset used when none is named: Fashion-MNIST, installable offline
/// with `apt-get install dataset-fashion-mnist`.
pub const DEFAULT_DATASET: &str = "fashion-mnist";

/// Environment variable naming the root folder where datasets live, one
/// sub-folder per dataset name (`$QBENCH_DATA/<name>/`).
pub const DATA_ENV: &str = "QBENCH_DATA";

const EMBEDDED_YAML: &str = include_str!("../registry.yaml");
const EMBEDDED_NAME: &str = "embedded registry.yaml";

/// How a dataset's files are laid out and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// IDX image and label files, raw or gzipped (MNIST-like).
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-100 binary batches, fine labels.
    Cifar100,
    /// JPEG/PNG files in class folders, or a flat folder with a labels file.
    ImagenetFolder,
    /// KITTI's object benchmark layout: a split folder (`dir`, e.g. `training`) holding
    /// `image_2/NNNNNN.png` and `label_2/NNNNNN.txt`; the images are letterboxed to
    /// `image_shape` and carry the Car/Pedestrian/Cyclist boxes (see [`crate::kitti`]).
    Kitti,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Idx => "idx",
            Format::Cifar10 => "cifar10",
            Format::Cifar100 => "cifar100",
            Format::ImagenetFolder => "imagenet-folder",
            Format::Kitti => "kitti",
        })
    }
}

/// Which part of a dataset to load. For ImageNet, `Test` is the ILSVRC-2012
/// validation set (the test labels are not public).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The held-out evaluation split.
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = String;

    /// Parses `train` or `test` (also `val`/`validation` for `Test`, as
    /// ImageNet calls it).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "train" => Ok(Split::Train),
            "test" | "val" | "validation" => Ok(Split::Test),
            _ => Err(format!("unknown split `{s}`: expected `train` or `test`")),
        }
    }
}

/// Archive formats that [`crate::fetch`] extracts after download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Unpack {
    /// A gzipped tar archive.
    #[serde(rename = "tar.gz")]
    TarGz,
    /// A zip archive, unpacked by hand: qbench does not extract zip files, so [`crate::fetch`]
    /// refuses such a dataset and gives the manual steps (download, `unzip`).
    #[serde(rename = "zip")]
    Zip,
}

/// Another known-good copy of a file, e.g. a distribution's repackaging,
/// accepted by verification alongside the published checksum.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownCopy {
    /// SHA-256 of that copy (64 lowercase hex digits).
    pub sha256: String,
    /// Its size in bytes, if known.
    #[serde(default)]
    pub size: Option<u64>,
    /// Where that copy comes from.
    pub source: String,
}

/// One file of a dataset: where to download it and what its hash must be.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// What the file is: `train-images`, `train-labels`, `test-images`,
    /// `test-labels`, `archive`, ...
    pub role: String,
    /// File name inside the dataset folder.
    pub name: String,
    /// Canonical download address; `None` for local-only files.
    #[serde(default)]
    pub url: Option<String>,
    /// Other addresses serving the same bytes, tried in order after `url`.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Published SHA-256 (64 lowercase hex digits); `None` when no published
    /// checksum is known (never guessed).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes, if known.
    #[serde(default)]
    pub size: Option<u64>,
    /// Other known-good copies, e.g. the Debian package's recompressed files.
    #[serde(default)]
    pub also_accepted: Vec<KnownCopy>,
    /// Set for archives extracted into the dataset folder after download.
    #[serde(default)]
    pub unpack: Option<Unpack>,
}

impl DataFile {
    /// Every address the file can be downloaded from: `url` then `mirrors`.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.url
            .iter()
            .chain(self.mirrors.iter())
            .map(String::as_str)
    }
}

/// The files one split is read from, relative to the dataset folder. Which
/// fields are used depends on the [`Format`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SplitFiles {
    /// IDX images file.
    #[serde(default)]
    pub images: Option<String>,
    /// IDX labels file, or (imagenet-folder) a `<file name> <label>` file
    /// for a flat `dir`.
    #[serde(default)]
    pub labels: Option<String>,
    /// CIFAR batch files, concatenated in this order.
    #[serde(default)]
    pub batches: Vec<String>,
    /// imagenet-folder: the folder of class folders (or of images, with `labels`).
    #[serde(default)]
    pub dir: Option<String>,
    /// Number of images the split must hold, if known.
    #[serde(default)]
    pub count: Option<usize>,
}

impl SplitFiles {
    /// Every path this split reads, relative to the dataset folder.
    pub fn paths(&self) -> Vec<&str> {
        self.images
            .iter()
            .chain(self.labels.iter())
            .chain(self.batches.iter())
            .chain(self.dir.iter())
            .map(String::as_str)
            .collect()
    }
}

/// The splits a dataset provides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Splits {
    /// The training split, if any.
    #[serde(default)]
    pub train: Option<SplitFiles>,
    /// The evaluation split, if any.
    #[serde(default)]
    pub test: Option<SplitFiles>,
}

/// One dataset of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    /// Short name, used on the command line and as the folder name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// How the files are read.
    pub format: Format,
    /// Number of classes.
    pub num_classes: usize,
    /// `[channels, height, width]` of the images as loaded.
    pub image_shape: [usize; 3],
    /// Terms of use as stated by the authors.
    pub licence: String,
    /// Where the dataset is described.
    #[serde(default)]
    pub homepage: Option<String>,
    /// Folders where a system package installs it, searched after `$QBENCH_DATA/<name>`.
    #[serde(default)]
    pub system_dirs: Vec<PathBuf>,
    /// How to install it when it is not found; defaults to `qbench data fetch NAME`.
    #[serde(default)]
    pub install_hint: Option<String>,
    /// imagenet-folder: shorter side before the centre crop (default 256).
    #[serde(default)]
    pub resize_shorter: Option<u32>,
    /// Files to download and verify.
    #[serde(default)]
    pub files: Vec<DataFile>,
    /// Where each split is read from.
    pub splits: Splits,
}

impl DatasetEntry {
    /// The files of `split`, if the dataset has that split.
    pub fn split(&self, split: Split) -> Option<&SplitFiles> {
        match split {
            Split::Train => self.splits.train.as_ref(),
            Split::Test => self.splits.test.as_ref(),
        }
    }

    /// How to install the dataset, for error messages.
    pub fn install_hint(&self) -> String {
        self.install_hint
            .clone()
            .unwrap_or_else(|| format!("qbench data fetch {}", self.name))
    }

    /// Every path `split` needs, relative to the dataset folder: its [`SplitFiles::paths`],
    /// except for [`Format::Kitti`], whose split folder must hold `image_2` and `label_2`
    /// (whether each image has its label is checked by [`crate::verify_in`] and when loading,
    /// which list the folders: a listing, not a stat, per file). Empty without that split.
    pub fn split_paths(&self, split: Split) -> Vec<String> {
        let Some(files) = self.split(split) else {
            return Vec::new();
        };
        match self.format {
            Format::Kitti => files
                .dir
                .iter()
                .flat_map(|d| {
                    [crate::kitti::IMAGE_DIR, crate::kitti::LABEL_DIR].map(|s| format!("{d}/{s}"))
                })
                .collect(),
            _ => files.paths().into_iter().map(str::to_owned).collect(),
        }
    }

    /// True when `dir` holds every path of at least one split (see [`Self::split_paths`]).
    pub fn is_present_in(&self, dir: &Path) -> bool {
        [Split::Train, Split::Test]
            .into_iter()
            .filter(|&s| self.split(s).is_some())
            .any(|s| self.split_paths(s).iter().all(|p| dir.join(p).exists()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    datasets: Vec<DatasetEntry>,
}

/// A set of dataset entries, looked up by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    entries: Vec<DatasetEntry>,
}

impl Registry {
    /// The built-in registry (`datasets/registry.yaml`, embedded at compile
    /// time), parsed once.
    ///
    /// # Panics
    /// Never in a released build: the crate's tests parse the embedded file.
    pub fn embedded() -> &'static Registry {
        static EMBEDDED: OnceLock<Registry> = OnceLock::new();
        EMBEDDED.get_or_init(|| match Registry::parse(EMBEDDED_YAML, EMBEDDED_NAME) {
            Ok(r) => r,
            Err(e) => panic!("the embedded registry.yaml is invalid: {e}"),
        })
    }

    /// Parses a registry from YAML text (schema at the top of
    /// `datasets/registry.yaml`). Unknown fields, missing fields and
    /// inconsistent entries are errors naming the line or the field.
    pub fn from_yaml_str(yaml: &str) -> Result<Registry> {
        Registry::parse(yaml, "registry YAML")
    }

    /// Reads and parses a registry file; errors name the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Registry> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, "read", e))?;
        Registry::parse(&text, &path.display().to_string())
    }

    fn parse(yaml: &str, source_name: &str) -> Result<Registry> {
        let file: RegistryFile = serde_yaml_ng::from_str(yaml).map_err(|e| {
            let loc = e.location();
            DatasetError::RegistryParse {
                source_name: source_name.to_owned(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                message: e.to_string(),
            }
        })?;
        for (i, entry) in file.datasets.iter().enumerate() {
            validate(entry, i, source_name)?;
            if let Some(first) = file.datasets[..i].iter().position(|e| e.name == entry.name) {
                return Err(invalid(
                    source_name,
                    &entry.name,
                    "name",
                    format!("duplicate name (also entry {})", first + 1),
                ));
            }
        }
        Ok(Registry {
            entries: file.datasets,
        })
    }

    /// Adds the entries of `other`; an entry with the same name as an
    /// existing one replaces it (so a user file can override a built-in entry).
    pub fn merge(&mut self, other: Registry) {
        for entry in other.entries {
            match self.entries.iter_mut().find(|e| e.name == entry.name) {
                Some(slot) => *slot = entry,
                None => self.entries.push(entry),
            }
        }
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[DatasetEntry] {
        &self.entries
    }

    /// All dataset names, in file order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The entry called `name`; an unknown name is an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&DatasetEntry> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| DatasetError::UnknownDataset {
                name: name.to_owned(),
                known: self.names().into_iter().map(str::to_owned).collect(),
            })
    }
}

fn invalid(source: &str, dataset: &str, field: &str, message: String) -> DatasetError {
    DatasetError::RegistryInvalid {
        source_name: source.to_owned(),
        dataset: dataset.to_owned(),
        field: field.to_owned(),
        message,
    }
}

/// A relative path that stays inside the dataset folder.
fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn validate(e: &DatasetEntry, index: usize, src: &str) -> Result<()> {
    let ds = if e.name.is_empty() {
        format!("#{}", index + 1)
    } else {
        e.name.clone()
    };
    let bad = |field: &str, message: String| Err(invalid(src, &ds, field, message));
    if e.name.is_empty()
        || !e
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        || e.name.starts_with('.')
    {
        return bad(
            "name",
            format!(
                "`{}` must be non-empty lowercase letters, digits, '-', '_' or '.' (it is a folder name)",
                e.name
            ),
        );
    }
    if e.num_classes == 0 || e.num_classes > usize::from(u16::MAX) + 1 {
        return bad(
            "num_classes",
            format!("{} is not in 1..=65536", e.num_classes),
        );
    }
    if e.image_shape.contains(&0) {
        return bad(
            "image_shape",
            format!("{:?} has a zero dimension", e.image_shape),
        );
    }
    // Format-specific shape, class count and split fields.
    let fixed_shape = match e.format {
        Format::Idx => None,
        Format::Cifar10 | Format::Cifar100 => Some([3, 32, 32]),
        Format::ImagenetFolder | Format::Kitti => None,
    };
    if let Some(shape) = fixed_shape
        && e.image_shape != shape
    {
        return bad(
            "image_shape",
            format!(
                "format {} yields {shape:?}, found {:?}",
                e.format, e.image_shape
            ),
        );
    }
    match e.format {
        Format::Idx if e.image_shape[0] != 1 => {
            return bad(
                "image_shape",
                format!("IDX images have 1 channel, found {:?}", e.image_shape),
            );
        }
        Format::Idx if e.num_classes > 256 => {
            return bad(
                "num_classes",
                format!(
                    "IDX labels are bytes: at most 256 classes, found {}",
                    e.num_classes
                ),
            );
        }
        Format::Cifar10 if e.num_classes != 10 => {
            return bad(
                "num_classes",
                format!("cifar10 has 10 classes, found {}", e.num_classes),
            );
        }
        Format::Cifar100 if e.num_classes != 100 => {
            return bad(
                "num_classes",
                format!(
                    "cifar100 (fine labels) has 100 classes, found {}",
                    e.num_classes
                ),
            );
        }
        Format::ImagenetFolder => {
            if e.image_shape[0] != 3 || e.image_shape[1] != e.image_shape[2] {
                return bad(
                    "image_shape",
                    format!(
                        "imagenet-folder yields [3, crop, crop], found {:?}",
                        e.image_shape
                    ),
                );
            }
            let s = e.resize_shorter.unwrap_or(256) as usize;
            if s < e.image_shape[1] {
                return bad(
                    "resize_shorter",
                    format!("{s} is smaller than the crop {}", e.image_shape[1]),
                );
            }
        }
        Format::Kitti if e.num_classes != 3 => {
            return bad(
                "num_classes",
                format!(
                    "kitti evaluates 3 classes (Car, Pedestrian, Cyclist), found {}",
                    e.num_classes
                ),
            );
        }
        Format::Kitti if !matches!(e.image_shape[0], 1 | 3) => {
            return bad(
                "image_shape",
                format!(
                    "kitti images are letterboxed to 1 or 3 channels, found {:?}",
                    e.image_shape
                ),
            );
        }
        _ => {}
    }
    if e.resize_shorter.is_some() && e.format != Format::ImagenetFolder {
        return bad(
            "resize_shorter",
            "only used by format imagenet-folder".into(),
        );
    }
    if e.splits.train.is_none() && e.splits.test.is_none() {
        return bad("splits", "needs a train or a test split".into());
    }
    for (name, split) in [("train", &e.splits.train), ("test", &e.splits.test)] {
        let Some(s) = split else { continue };
        let field = format!("splits.{name}");
        let ok = match e.format {
            Format::Idx => {
                s.images.is_some() && s.labels.is_some() && s.batches.is_empty() && s.dir.is_none()
            }
            Format::Cifar10 | Format::Cifar100 => {
                !s.batches.is_empty() && s.images.is_none() && s.labels.is_none() && s.dir.is_none()
            }
            Format::ImagenetFolder => s.dir.is_some() && s.images.is_none() && s.batches.is_empty(),
            Format::Kitti => {
                s.dir.is_some() && s.images.is_none() && s.labels.is_none() && s.batches.is_empty()
            }
        };
        if !ok {
            let want = match e.format {
                Format::Idx => "`images` and `labels`",
                Format::Cifar10 | Format::Cifar100 => "`batches` (a non-empty list)",
                Format::ImagenetFolder => "`dir`, optionally `labels`",
                Format::Kitti => "`dir` (the folder of image_2 and label_2)",
            };
            return bad(&field, format!("format {} needs exactly {want}", e.format));
        }
        if let Some(p) = s.paths().into_iter().find(|p| !is_safe_relative(p)) {
            return bad(
                &field,
                format!("`{p}` must be a relative path inside the dataset folder"),
            );
        }
        if s.count == Some(0) {
            return bad(&format!("{field}.count"), "must be at least 1".into());
        }
    }
    for (i, f) in e.files.iter().enumerate() {
        let field = format!("files[{i}]");
        if !is_safe_relative(&f.name) || f.name.contains('/') {
            return bad(
                &format!("{field}.name"),
                format!("`{}` must be a plain file name", f.name),
            );
        }
        if let Some(h) = &f.sha256
            && !is_sha256_hex(h)
        {
            return bad(
                &format!("{field}.sha256"),
                format!("`{h}` is not 64 lowercase hex digits"),
            );
        }
        for (k, c) in f.also_accepted.iter().enumerate() {
            if !is_sha256_hex(&c.sha256) {
                return bad(
                    &format!("{field}.also_accepted[{k}].sha256"),
                    format!("`{}` is not 64 lowercase hex digits", c.sha256),
                );
            }
        }
        if let Some(u) = f
            .urls()
            .find(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return bad(
                &format!("{field}.url"),
                format!("`{u}` is not an http(s) address"),
            );
        }
        if f.url.is_none() && !f.mirrors.is_empty() {
            return bad(
                &format!("{field}.mirrors"),
                "mirrors without a `url`".into(),
            );
        }
        if let Some(j) = e.files[..i].iter().position(|g| g.name == f.name) {
            return bad(
                &format!("{field}.name"),
                format!("`{}` is also files[{j}]", f.name),
            );
        }
    }
    Ok(())
}

/// Where `entry` lives under the data root: `$QBENCH_DATA/<name>`, or `None`
/// when `QBENCH_DATA` is not set. The natural destination for [`crate::fetch`].
pub fn data_dir_for(entry: &DatasetEntry) -> Option<PathBuf> {
    std::env::var_os(DATA_ENV)
        .filter(|v| !v.is_empty())
        .map(|root| PathBuf::from(root).join(&entry.name))
}

/// Finds the folder holding `entry`.
///
/// A folder the user pointed at is used or rejected, never passed over:
/// when `$QBENCH_DATA` is set it must be a readable directory, and when
/// `$QBENCH_DATA/<name>` exists (even as a dangling symlink or a symlink
/// loop) it must hold every file of at least one split, else the error
/// ([`DatasetError::BadFolder`]) names the folder and each missing or
/// unreadable file. Only when it does not exist are the entry's
/// `system_dirs` searched (e.g. Debian's `/usr/share/datasets/fashion-mnist`),
/// the first that holds a whole split winning.
///
/// When none does, the error lists the folders tried and how to install the
/// dataset (for Fashion-MNIST, `apt-get install dataset-fashion-mnist`;
/// otherwise `qbench data fetch NAME` or the entry's own hint).
pub fn locate(entry: &DatasetEntry) -> Result<PathBuf> {
    let root = std::env::var_os(DATA_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    locate_in(entry, root.as_deref())
}

/// [`locate`] with an explicit data root instead of `$QBENCH_DATA` (`None`
/// to search only the system folders).
pub fn locate_in(entry: &DatasetEntry, data_root: Option<&Path>) -> Result<PathBuf> {
    let mut tried = Vec::new();
    if let Some(root) = data_root {
        if let Err(problem) = readable_dir(root) {
            return Err(DatasetError::BadFolder {
                dataset: entry.name.clone(),
                path: root.to_path_buf(),
                origin: format!("${DATA_ENV}"),
                problem,
                hint: format!(", or unset {DATA_ENV}"),
            });
        }
        let dir = root.join(&entry.name);
        if std::fs::symlink_metadata(&dir).is_ok() {
            let origin = format!("${DATA_ENV}/{}", entry.name);
            return match usable_problem(entry, &dir) {
                None => Ok(dir),
                Some(problem) => Err(bad_folder(entry, &dir, origin, problem)),
            };
        }
        tried.push(dir);
    }
    tried.extend(entry.system_dirs.iter().cloned());
    if let Some(dir) = tried.iter().find(|d| entry.is_present_in(d)) {
        return Ok(dir.clone());
    }
    let mut hint = entry.install_hint();
    if data_root.is_none() {
        hint.push_str(&format!(
            " ({DATA_ENV} is not set; set it to look in ${DATA_ENV}/{})",
            entry.name
        ));
    }
    Err(DatasetError::NotFound {
        name: entry.name.clone(),
        tried,
        hint,
    })
}

fn bad_folder(entry: &DatasetEntry, path: &Path, origin: String, problem: String) -> DatasetError {
    let fetchable = entry.files.iter().any(|f| f.url.is_some())
        && !entry.files.iter().any(|f| f.unpack == Some(Unpack::Zip));
    let hint = if !fetchable && entry.install_hint.is_some() {
        format!(", or install it: {}", entry.install_hint())
    } else if fetchable {
        format!(", or complete it with `qbench data fetch {}`", entry.name)
    } else {
        String::new()
    };
    DatasetError::BadFolder {
        dataset: entry.name.clone(),
        path: path.to_path_buf(),
        origin,
        problem,
        hint,
    }
}

/// `Ok` when `dir` (following symlinks) is a directory that can be listed.
fn readable_dir(dir: &Path) -> std::result::Result<(), String> {
    match std::fs::metadata(dir) {
        Err(e) => Err(e.to_string()),
        Ok(m) if !m.is_dir() => Err("not a directory".into()),
        Ok(_) => std::fs::read_dir(dir)
            .map(|_| ())
            .map_err(|e| format!("cannot be listed: {e}")),
    }
}

/// Why the existing folder `dir` cannot serve `entry`, or `None` when it
/// holds every path of at least one split.
fn usable_problem(entry: &DatasetEntry, dir: &Path) -> Option<String> {
    if let Err(problem) = readable_dir(dir) {
        return Some(problem);
    }
    if entry.is_present_in(dir) {
        return None;
    }
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for split in [Split::Train, Split::Test] {
        for p in entry.split_paths(split) {
            if seen.contains(&p) {
                continue;
            }
            seen.push(p.clone());
            let p = p.as_str();
            match std::fs::metadata(dir.join(p)) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let dangling = std::fs::symlink_metadata(dir.join(p)).is_ok();
                    problems.push(if dangling {
                        format!("`{p}` is a dangling symlink")
                    } else {
                        format!("`{p}` is missing")
                    });
                }
                Err(e) => problems.push(format!("`{p}` cannot be read: {e}")),
            }
        }
    }
    Some(format!(
        "no split is complete: {} (expected {})",
        problems.join(", "),
        seen.iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_registry_parses_and_has_the_defaults() {
        let r = Registry::embedded();
        assert_eq!(
            r.names(),
            vec![
                "fashion-mnist",
                "mnist",
                "cifar10",
                "cifar100",
                "imagenet",
                "kitti",
                "kitti-synth"
            ]
        );
        let f = r.get(DEFAULT_DATASET).unwrap();
        assert_eq!(f.format, Format::Idx);
        assert_eq!(f.image_shape, [1, 28, 28]);
        assert_eq!(f.files.len(), 4);
        assert!(
            f.files
                .iter()
                .all(|f| f.sha256.is_some() && f.also_accepted.len() == 1)
        );
        assert_eq!(
            f.system_dirs,
            vec![PathBuf::from("/usr/share/datasets/fashion-mnist")]
        );
        let c = r.get("cifar10").unwrap();
        assert_eq!(c.files[0].unpack, Some(Unpack::TarGz));
        assert_eq!(c.split(Split::Train).unwrap().batches.len(), 5);
        let i = r.get("imagenet").unwrap();
        assert!(i.files.is_empty());
        assert_eq!(i.resize_shorter, Some(256));
    }

    #[test]
    fn unknown_name_lists_known_ones() {
        let e = Registry::embedded().get("svhn").unwrap_err().to_string();
        assert!(e.contains("unknown dataset `svhn`"), "{e}");
        assert!(
            e.contains("fashion-mnist, mnist, cifar10, cifar100, imagenet"),
            "{e}"
        );
    }

    const MINIMAL: &str = "\
datasets:
  - name: tiny
    description: a test set
    format: idx
    num_classes: 3
    image_shape: [1, 2, 2]
    licence: none
    files:
      - role: train-images
        name: i.idx
        sha256: 0000000000000000000000000000000000000000000000000000000000000000
    splits:
      train: {images: i.idx, labels: l.idx}
";

    #[test]
    fn user_yaml_parses_and_merges() {
        let r = Registry::from_yaml_str(MINIMAL).unwrap();
        assert_eq!(r.names(), vec!["tiny"]);
        let mut all = Registry::embedded().clone();
        all.merge(r);
        assert!(all.get("tiny").is_ok() && all.get("mnist").is_ok());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let yaml = MINIMAL.replace(
            "    licence: none\n",
            "    licence: none\n    colour: blue\n",
        );
        let e = Registry::from_yaml_str(&yaml).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown field `colour`"), "{msg}");
        assert!(
            matches!(e, DatasetError::RegistryParse { line: Some(8), .. }),
            "{e:?}"
        );
        assert!(msg.contains("line 8"), "{msg}");
    }

    #[test]
    fn missing_field_and_bad_format_are_named() {
        let yaml = MINIMAL.replace("    num_classes: 3\n", "");
        let msg = Registry::from_yaml_str(&yaml).unwrap_err().to_string();
        assert!(msg.contains("missing field `num_classes`"), "{msg}");
        let yaml = MINIMAL.replace("format: idx", "format: tfrecord");
        let msg = Registry::from_yaml_str(&yaml).unwrap_err().to_string();
        assert!(msg.contains("tfrecord"), "{msg}");
    }

    #[test]
    fn semantic_errors_name_dataset_and_field() {
        for (from, to, field) in [
            ("sha256: 0000", "sha256: ZZ00", "files[0].sha256"),
            ("name: tiny", "name: ../tiny", "name"),
            ("num_classes: 3", "num_classes: 0", "num_classes"),
            (
                "image_shape: [1, 2, 2]",
                "image_shape: [3, 2, 2]",
                "image_shape",
            ),
            (
                "{images: i.idx, labels: l.idx}",
                "{images: /etc/i.idx, labels: l.idx}",
                "splits.train",
            ),
            (
                "{images: i.idx, labels: l.idx}",
                "{images: i.idx}",
                "splits.train",
            ),
            (
                "        name: i.idx\n",
                "        name: i.idx\n        url: ftp://x/i.idx\n",
                "files[0].url",
            ),
        ] {
            let yaml = MINIMAL.replace(from, to);
            assert_ne!(yaml, MINIMAL, "{from}");
            let e = Registry::from_yaml_str(&yaml).unwrap_err();
            assert!(
                matches!(&e, DatasetError::RegistryInvalid { field: f, .. } if f == field),
                "{from} -> {e}"
            );
        }
        let twice = format!("{MINIMAL}{}", MINIMAL.trim_start_matches("datasets:\n"));
        let e = Registry::from_yaml_str(&twice).unwrap_err().to_string();
        assert!(e.contains("duplicate name"), "{e}");
    }

    #[test]
    fn locate_searches_data_root_then_system_dirs() {
        let r = Registry::from_yaml_str(MINIMAL).unwrap();
        let mut entry = r.get("tiny").unwrap().clone();
        let root = tempfile::tempdir().unwrap();
        let sys = tempfile::tempdir().unwrap();
        entry.system_dirs = vec![sys.path().to_path_buf()];
        let e = locate_in(&entry, Some(root.path())).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&root.path().join("tiny").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains(&sys.path().display().to_string()), "{msg}");
        assert!(msg.contains("qbench data fetch tiny"), "{msg}");
        // Only one of the two split files: not present.
        std::fs::write(sys.path().join("i.idx"), b"x").unwrap();
        assert!(
            locate_in(&entry, None)
                .unwrap_err()
                .to_string()
                .contains("QBENCH_DATA is not set")
        );
        std::fs::write(sys.path().join("l.idx"), b"x").unwrap();
        assert_eq!(locate_in(&entry, Some(root.path())).unwrap(), sys.path());
        let mine = root.path().join("tiny");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("i.idx"), b"x").unwrap();
        std::fs::write(mine.join("l.idx"), b"x").unwrap();
        assert_eq!(locate_in(&entry, Some(root.path())).unwrap(), mine);
    }

    /// The `tiny` entry with a system folder that holds a complete copy.
    fn tiny_with_complete_system_copy() -> (DatasetEntry, tempfile::TempDir) {
        let r = Registry::from_yaml_str(MINIMAL).unwrap();
        let mut entry = r.get("tiny").unwrap().clone();
        let sys = tempfile::tempdir().unwrap();
        std::fs::write(sys.path().join("i.idx"), b"x").unwrap();
        std::fs::write(sys.path().join("l.idx"), b"x").unwrap();
        entry.system_dirs = vec![sys.path().to_path_buf()];
        (entry, sys)
    }

    #[test]
    fn incomplete_user_folder_is_rejected_not_skipped() {
        let (entry, _sys) = tiny_with_complete_system_copy();
        let root = tempfile::tempdir().unwrap();
        let mine = root.path().join("tiny");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("i.idx"), b"x").unwrap();
        let e = locate_in(&entry, Some(root.path())).unwrap_err();
        assert!(
            matches!(&e, DatasetError::BadFolder { path, .. } if *path == mine),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&mine.display().to_string()), "{msg}");
        assert!(msg.contains("`l.idx` is missing"), "{msg}");
        assert!(!msg.contains("`i.idx` is missing"), "{msg}");
        assert!(msg.contains("$QBENCH_DATA/tiny"), "{msg}");
        // An empty folder, and a plain file where the folder should be.
        std::fs::remove_file(mine.join("i.idx")).unwrap();
        let msg = locate_in(&entry, Some(root.path()))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`i.idx` is missing, `l.idx` is missing"),
            "{msg}"
        );
        std::fs::remove_dir(&mine).unwrap();
        std::fs::write(&mine, b"").unwrap();
        let msg = locate_in(&entry, Some(root.path()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not a directory"), "{msg}");
    }

    #[test]
    fn symlink_loops_and_dangling_links_are_rejected() {
        let (entry, _sys) = tiny_with_complete_system_copy();
        let root = tempfile::tempdir().unwrap();
        let mine = root.path().join("tiny");
        // The folder itself is a symlink loop.
        std::os::unix::fs::symlink(&mine, &mine).unwrap();
        let e = locate_in(&entry, Some(root.path())).unwrap_err();
        assert!(matches!(e, DatasetError::BadFolder { .. }), "{e}");
        assert!(e.to_string().contains("symbolic links"), "{e}");
        // A dangling folder link.
        std::fs::remove_file(&mine).unwrap();
        std::os::unix::fs::symlink(root.path().join("elsewhere"), &mine).unwrap();
        let e = locate_in(&entry, Some(root.path())).unwrap_err();
        assert!(matches!(e, DatasetError::BadFolder { .. }), "{e}");
        // A real folder whose files loop.
        std::fs::remove_file(&mine).unwrap();
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("i.idx"), b"x").unwrap();
        std::os::unix::fs::symlink(mine.join("l.idx"), mine.join("l.idx")).unwrap();
        let msg = locate_in(&entry, Some(root.path()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`l.idx` cannot be read"), "{msg}");
        assert!(msg.contains("symbolic links"), "{msg}");
    }

    #[test]
    fn unusable_data_root_is_rejected_and_absent_subfolder_falls_back() {
        let (entry, sys) = tiny_with_complete_system_copy();
        let root = tempfile::tempdir().unwrap();
        // `$QBENCH_DATA` holds other datasets but not this one: the system copy serves.
        assert_eq!(locate_in(&entry, Some(root.path())).unwrap(), sys.path());
        let typo = root.path().join("no-such-root");
        let e = locate_in(&entry, Some(&typo)).unwrap_err();
        assert!(
            matches!(&e, DatasetError::BadFolder { path, .. } if *path == typo),
            "{e}"
        );
        assert!(e.to_string().contains("unset QBENCH_DATA"), "{e}");
    }

    #[test]
    fn fashion_mnist_hint_names_the_debian_package() {
        let entry = Registry::embedded().get("fashion-mnist").unwrap().clone();
        let nowhere = tempfile::tempdir().unwrap();
        let mut entry = entry;
        entry.system_dirs = vec![nowhere.path().join("absent")];
        let msg = locate_in(&entry, Some(nowhere.path()))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
    }

    #[test]
    fn split_names_parse() {
        assert_eq!("train".parse::<Split>().unwrap(), Split::Train);
        assert_eq!("val".parse::<Split>().unwrap(), Split::Test);
        assert!("dev".parse::<Split>().is_err());
        assert_eq!(Split::Test.to_string(), "test");
    }
}
