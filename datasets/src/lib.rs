//! Datasets for qbench: readers, a checksummed registry, download and
//! verification, and seeded splits.
//!
//! The crate knows nothing of models, training or the engine. Every reader
//! returns an [`ImageSet`]: u8 NCHW pixels with u16 labels and the
//! [`Normalization`] a float model applies, so the integer engine reads raw
//! bytes and float models see `(p / 255 - mean) / std`.
//!
//! - Readers: [`load_idx_pair`] (MNIST-like IDX, raw or gzipped),
//!   [`load_cifar10`] / [`load_cifar100`] (binary batches),
//!   [`load_class_folders`] / [`load_labelled_folder`] (ImageNet-style JPEG/PNG).
//!   They validate everything and fail with a [`DatasetError`] naming the file
//!   and what is wrong; they never panic on bad input nor return fewer images
//!   than the files promise.
//! - Registry: [`Registry::embedded`] (from `datasets/registry.yaml`),
//!   [`locate`], [`verify`], [`fetch`], and [`load`] of a [`Split`]. The
//!   default dataset is [`DEFAULT_DATASET`] (Fashion-MNIST, which Debian
//!   ships as `dataset-fashion-mnist`).
//! - Splits: [`shuffled_indices`] and [`train_val_split`], the same on every
//!   machine for a given seed.
//! - Checksums: every file is hashed by `qbench_io::sha256_file`.
//! - Detection: [`kitti`] reads KITTI's object benchmark (folder layout, labels, splits),
//!   letterboxes its images to a model input with their boxes, and generates `kitti-synth`, a
//!   set in the same format drawn from Fashion-MNIST items.

#![warn(missing_docs)]

mod cifar;
mod error;
mod fetch;
mod folder;
mod idx;
pub mod kitti;
mod load;
mod registry;
mod set;
mod split;
mod verify;

pub use cifar::{
    CIFAR_IMAGE_BYTES, CIFAR10_RECORD, CIFAR100_RECORD, Cifar100Label, load_cifar10, load_cifar100,
};
pub use error::{DatasetError, Result};
pub use fetch::{fetch, manual_steps};
pub use folder::{
    FolderOptions, class_folder_names, load_class_folders, load_labelled_folder, preprocess_image,
};
pub use idx::{
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxImages, load_idx_pair, read_idx_images, read_idx_labels,
};
pub use load::{DatasetRef, load, load_from, load_verified};
pub use registry::{
    DATA_ENV, DEFAULT_DATASET, DataFile, DatasetEntry, Format, KnownCopy, Registry, Split,
    SplitFiles, Splits, Unpack, data_dir_for, locate, locate_in,
};
pub use set::{GtBox, ImageSet, Normalization};
pub use split::{shuffled_indices, train_val_split};
pub use verify::{FileCheck, FileStatus, verify, verify_in};
