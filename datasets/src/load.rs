//! Loading a split of a registered dataset, checked against its registry entry.

use std::path::Path;

use crate::cifar::{Cifar100Label, load_cifar10, load_cifar100};
use crate::error::{DatasetError, Result};
use crate::folder::{FolderOptions, load_class_folders, load_labelled_folder};
use crate::idx::load_idx_pair;
use crate::registry::{DatasetEntry, Format, Registry, Split, locate};
use crate::set::ImageSet;

/// A dataset given by name (looked up in the embedded registry) or by entry
/// (from any registry): what [`load`] accepts.
#[derive(Debug, Clone, Copy)]
pub enum DatasetRef<'a> {
    /// A name of the embedded registry.
    Name(&'a str),
    /// An entry, e.g. from a user registry file.
    Entry(&'a DatasetEntry),
}

impl<'a> From<&'a str> for DatasetRef<'a> {
    fn from(name: &'a str) -> Self {
        DatasetRef::Name(name)
    }
}

impl<'a> From<&'a String> for DatasetRef<'a> {
    fn from(name: &'a String) -> Self {
        DatasetRef::Name(name)
    }
}

impl<'a> From<&'a DatasetEntry> for DatasetRef<'a> {
    fn from(entry: &'a DatasetEntry) -> Self {
        DatasetRef::Entry(entry)
    }
}

/// Loads `split` of a registered dataset from wherever [`locate`] finds it.
///
/// `dataset` is a name of the embedded registry (e.g.
/// [`crate::DEFAULT_DATASET`]) or a [`DatasetEntry`]. See [`load_from`] for
/// what is checked.
pub fn load<'a>(dataset: impl Into<DatasetRef<'a>>, split: Split) -> Result<ImageSet> {
    let entry = match dataset.into() {
        DatasetRef::Name(name) => Registry::embedded().get(name)?,
        DatasetRef::Entry(e) => e,
    };
    let dir = locate(entry)?;
    load_from(entry, &dir, split)
}

/// Loads `split` of `entry` from the dataset folder `dir`, with the reader
/// of its format, and checks the result against the entry: image shape,
/// number of classes and, when registered, the number of images.
pub fn load_from(entry: &DatasetEntry, dir: &Path, split: Split) -> Result<ImageSet> {
    let files = entry
        .split(split)
        .ok_or_else(|| DatasetError::Unsupported {
            dataset: entry.name.clone(),
            message: format!("the registry defines no {split} split"),
        })?;
    for p in files.paths() {
        let path = dir.join(p);
        if !path.exists() {
            return Err(DatasetError::MissingPath {
                path,
                message: format!(
                    "needed for the {split} split of `{}`; check the folder with `qbench data verify {}`",
                    entry.name, entry.name
                ),
            });
        }
    }
    let path_of = |p: &Option<String>| dir.join(p.as_deref().unwrap_or_default());
    let set = match entry.format {
        Format::Idx => load_idx_pair(
            path_of(&files.images),
            path_of(&files.labels),
            entry.num_classes,
        )?,
        Format::Cifar10 => load_cifar10(
            &files
                .batches
                .iter()
                .map(|b| dir.join(b))
                .collect::<Vec<_>>(),
        )?,
        Format::Cifar100 => load_cifar100(
            &files
                .batches
                .iter()
                .map(|b| dir.join(b))
                .collect::<Vec<_>>(),
            Cifar100Label::Fine,
        )?,
        Format::ImagenetFolder => {
            let opts = FolderOptions {
                resize_shorter: entry.resize_shorter.unwrap_or(256),
                crop: u32::try_from(entry.image_shape[1]).unwrap_or(u32::MAX),
                expected_classes: Some(entry.num_classes),
            };
            let root = path_of(&files.dir);
            match &files.labels {
                Some(l) => load_labelled_folder(&root, dir.join(l), entry.num_classes, &opts)?,
                None => load_class_folders(&root, &opts)?,
            }
        }
    };
    let first_path = dir.join(files.paths().first().copied().unwrap_or_default());
    let shape = [set.channels, set.height, set.width];
    if shape != entry.image_shape {
        return Err(DatasetError::Unexpected {
            path: first_path,
            what: "image shape [channels, height, width]",
            expected: format!("{:?} (registry entry `{}`)", entry.image_shape, entry.name),
            found: format!("{shape:?}"),
        });
    }
    if set.num_classes != entry.num_classes {
        return Err(DatasetError::Unexpected {
            path: first_path,
            what: "number of classes",
            expected: format!("{} (registry entry `{}`)", entry.num_classes, entry.name),
            found: set.num_classes.to_string(),
        });
    }
    if let Some(count) = files.count
        && count != set.len()
    {
        return Err(DatasetError::Unexpected {
            path: first_path,
            what: "number of images",
            expected: format!("{count} (registry entry `{}`, {split} split)", entry.name),
            found: set.len().to_string(),
        });
    }
    Ok(set)
}
