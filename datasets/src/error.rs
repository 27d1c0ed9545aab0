//! The one error type of this crate.
//!
//! Every variant names the file (or dataset) it is about and says what is
//! wrong in terms a person can act on: the byte offset, what was expected and
//! what was found, the line number of a bad line, the paths that were tried.

use std::path::PathBuf;

/// Shorthand for results whose error is [`DatasetError`].
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, locating, verifying or
/// downloading a dataset.
///
/// Readers never panic on bad input and never return a silently shorter
/// dataset: any inconsistency in a file is one of these variants.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// An operating-system error while opening, reading, writing or listing a path (the
    /// message names the path, what was being done and the reason).
    #[error(transparent)]
    Io(#[from] qbench_io::IoError),

    /// A gzip stream could not be decompressed (truncated or corrupt).
    #[error(
        "{path}: gzip data is corrupt or truncated after {decompressed} decompressed bytes: {source}"
    )]
    Gzip {
        /// The gzipped file.
        path: PathBuf,
        /// How many bytes were decompressed before the failure.
        decompressed: u64,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// The file starts with the wrong magic number.
    #[error(
        "{path}: bad magic number at byte 0: expected {expected:#010x} ({what}), found {found:#010x}"
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number that was expected.
        expected: u32,
        /// The magic number that was read.
        found: u32,
        /// What kind of file the expected magic stands for.
        what: &'static str,
    },

    /// A header field holds an impossible or unexpected value.
    #[error("{path}: bad header at byte {offset}: {message}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// Byte offset of the field (in the decompressed data for gzipped files).
        offset: u64,
        /// What is wrong, with expected and found values.
        message: String,
    },

    /// The file is shorter than its header (or format) promises.
    #[error("{path}: truncated: expected {expected} bytes{detail}, found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Length implied by the header (decompressed length for gzipped files).
        expected: u64,
        /// Actual length.
        found: u64,
        /// Extra context, e.g. " (16-byte header + 60000 x 28 x 28 pixels)".
        detail: String,
    },

    /// A compressed file inflates to more than its header promises (or, for
    /// an archive, than a documented bound): reading stopped there, so a small
    /// file cannot claim unbounded memory or disk.
    #[error(
        "{path}: decompresses to more than the {expected} bytes allowed{detail}; stopped reading there"
    )]
    Oversized {
        /// The compressed file.
        path: PathBuf,
        /// Length implied by the header (or the bound), in decompressed bytes.
        expected: u64,
        /// How `expected` was computed, e.g. " (16-byte header + ...)".
        detail: String,
    },

    /// The file is longer than its header promises.
    #[error(
        "{path}: {extra} trailing bytes after byte {expected}: header promises {expected} bytes{detail}, found {found}"
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Length implied by the header.
        expected: u64,
        /// Actual length.
        found: u64,
        /// `found - expected`.
        extra: u64,
        /// Extra context about how `expected` was computed.
        detail: String,
    },

    /// A fixed-size-record file (CIFAR) whose length is not a whole number of records.
    #[error(
        "{path}: {len} bytes is not a whole number of {record_size}-byte records ({whole} whole records and a partial record of {partial} bytes at byte {partial_offset})"
    )]
    PartialRecord {
        /// The file.
        path: PathBuf,
        /// File length.
        len: u64,
        /// Size of one record.
        record_size: u64,
        /// Number of complete records.
        whole: u64,
        /// Bytes in the trailing partial record.
        partial: u64,
        /// Where the partial record starts.
        partial_offset: u64,
    },

    /// A label is not below the number of classes.
    #[error(
        "{path}: label {label} at byte {offset} (record {index}) is out of range: expected 0..{num_classes}"
    )]
    LabelOutOfRange {
        /// The file holding the label.
        path: PathBuf,
        /// Byte offset of the label (decompressed data for gzipped files).
        offset: u64,
        /// Index of the image or record whose label it is.
        index: u64,
        /// The label that was read.
        label: u64,
        /// The number of classes labels must stay below.
        num_classes: usize,
    },

    /// An image file and its label file disagree on the number of items.
    #[error("{images}: {image_count} images, but {labels}: {label_count} labels")]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// Images it holds.
        image_count: u64,
        /// The labels file.
        labels: PathBuf,
        /// Labels it holds.
        label_count: u64,
    },

    /// Loaded data does not have the shape, class count or size the caller
    /// (usually the registry) expects.
    #[error("{path}: {what}: expected {expected}, found {found}")]
    Unexpected {
        /// The file or directory that was read.
        path: PathBuf,
        /// What was compared, e.g. "image shape (C x H x W)".
        what: &'static str,
        /// The expected value.
        expected: String,
        /// The value found.
        found: String,
    },

    /// A bad line in a text labels file.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The labels file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it and what was expected.
        message: String,
    },

    /// A directory that must exist (a class folder, an image folder) does not.
    #[error("{path}: {message}")]
    MissingPath {
        /// The path that is missing.
        path: PathBuf,
        /// Why it was needed.
        message: String,
    },

    /// An image file could not be decoded.
    #[error("{path}: cannot decode image: {message}")]
    BadImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },

    /// The registry YAML could not be parsed.
    #[error("{source_name}: {message}")]
    RegistryParse {
        /// Where the YAML came from: a path, or "embedded registry.yaml".
        source_name: String,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column of the problem, when known.
        column: Option<usize>,
        /// The parser's message (names the unknown or missing field and its location).
        message: String,
    },

    /// The registry parsed but an entry is inconsistent.
    #[error("{source_name}: dataset `{dataset}`: field `{field}`: {message}")]
    RegistryInvalid {
        /// Where the YAML came from.
        source_name: String,
        /// The entry's name (or its position if it has none).
        dataset: String,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },

    /// A dataset name that the registry does not know.
    #[error("unknown dataset `{name}`; known datasets: {}", known.join(", "))]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// Every name the registry knows.
        known: Vec<String>,
    },

    /// A registered dataset is not present in any of the places looked at.
    #[error("dataset `{name}` not found; looked in: {}; to install it: {hint}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The dataset.
        name: String,
        /// The directories that were tried, in order.
        tried: Vec<PathBuf>,
        /// How to install it.
        hint: String,
    },

    /// A dataset file (on disk or downloaded) does not have the published checksum.
    #[error("{path}: sha256 mismatch: expected {expected}, found {found}")]
    ChecksumMismatch {
        /// The file (or URL) whose content was hashed.
        path: PathBuf,
        /// The published sha256.
        expected: String,
        /// The sha256 of what was received.
        found: String,
    },

    /// A dataset folder the user pointed at (`$QBENCH_DATA/<name>` or the
    /// `$QBENCH_DATA` root itself) exists but cannot be used; it is never
    /// silently passed over for another copy.
    #[error(
        "dataset `{dataset}`: {path} ({origin}) cannot be used: {problem}; fix or remove it{hint}"
    )]
    BadFolder {
        /// The dataset.
        dataset: String,
        /// The folder.
        path: PathBuf,
        /// How the user named it, e.g. "$QBENCH_DATA/fashion-mnist".
        origin: String,
        /// What is wrong: the missing or unreadable files, or the OS's reason.
        problem: String,
        /// How to complete it, with a leading separator, or empty.
        hint: String,
    },

    /// A dataset could not be downloaded; `manual` says how to install it by hand.
    #[error("cannot fetch dataset `{dataset}`: {reason}\n{manual}")]
    Fetch {
        /// The dataset.
        dataset: String,
        /// What went wrong (network error, HTTP status, checksum).
        reason: String,
        /// Step-by-step manual installation instructions: URLs, destination, sha256.
        manual: String,
    },

    /// A dataset or split that exists in the registry but cannot be served as asked.
    #[error("dataset `{dataset}`: {message}")]
    Unsupported {
        /// The dataset.
        dataset: String,
        /// What is not possible and why.
        message: String,
    },

    /// A bad line in a KITTI label (or result) file: the field and what is wrong with it.
    #[error("{path}:{line}: field `{field}`: {reason}")]
    BadLabel {
        /// The label file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field's name in the KITTI format (`type`, `truncated`, ..., `score`), or
        /// `fields` when the line does not have 15 or 16 of them.
        field: &'static str,
        /// What is wrong, with the text found and what was expected.
        reason: String,
    },
}

impl DatasetError {
    /// Builds a [`DatasetError::Io`]: `action` (e.g. "open") failed on `path`.
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        DatasetError::Io(qbench_io::IoError::new(action, path, source))
    }
}
