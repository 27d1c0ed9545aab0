//! Loading a split of a registered dataset, checked against its registry entry.

use std::path::Path;

use crate::cifar::{Cifar100Label, load_cifar10, load_cifar100};
use crate::error::{DatasetError, Result};
use crate::folder::{FolderOptions, load_class_folders, load_labelled_folder};
use crate::idx::load_idx_pair;
use crate::registry::{DatasetEntry, Format, Registry, Split, locate};
use crate::set::ImageSet;
use crate::verify::{FileCheck, verify_in};

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

/// [`load`] after checking the dataset's files: locates the folder once,
/// hashes every registered file there ([`verify_in`]) and fails on the first
/// that is missing or matches no known sha256 (see
/// [`FileCheck::require_usable`]), then loads `split` from that folder.
/// Returns the set and the checks (whose hashes identify the data).
pub fn load_verified<'a>(
    dataset: impl Into<DatasetRef<'a>>,
    split: Split,
) -> Result<(ImageSet, Vec<FileCheck>)> {
    let entry = match dataset.into() {
        DatasetRef::Name(name) => Registry::embedded().get(name)?,
        DatasetRef::Entry(e) => e,
    };
    let dir = locate(entry)?;
    let checks = verify_in(entry, &dir)?;
    for check in &checks {
        check.require_usable()?;
    }
    Ok((load_from(entry, &dir, split)?, checks))
}

/// Loads `split` of `entry` from the dataset folder `dir`, with the reader
/// of its format, and checks the result against the entry: image shape,
/// number of classes and, when registered, the number of images.
///
/// A [`Format::Kitti`] split is every image of its folder, letterboxed to the entry's
/// `image_shape`, with its Car/Pedestrian/Cyclist boxes in [`ImageSet::boxes`]; to keep the
/// objects of every type and the letterboxes (for evaluation), use [`crate::kitti::load`].
pub fn load_from(entry: &DatasetEntry, dir: &Path, split: Split) -> Result<ImageSet> {
    let files = entry
        .split(split)
        .ok_or_else(|| DatasetError::Unsupported {
            dataset: entry.name.clone(),
            message: format!("the registry defines no {split} split"),
        })?;
    for p in entry.split_paths(split) {
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
                max_per_class: None,
            };
            let root = path_of(&files.dir);
            match &files.labels {
                Some(l) => load_labelled_folder(&root, dir.join(l), entry.num_classes, &opts)?,
                None => load_class_folders(&root, &opts)?,
            }
        }
        Format::Kitti => {
            let split_dir = path_of(&files.dir);
            let ids = crate::kitti::image_ids_in(&split_dir)?;
            crate::kitti::load_split_dir(&split_dir, &ids, entry.image_shape, &|_| {})?.images
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    const YAML: &str = "\
datasets:
  - name: tiny-idx
    description: d
    format: idx
    num_classes: 3
    image_shape: [1, 1, 2]
    licence: none
    splits:
      train: {images: i, labels: l, count: 3}
  - name: tiny-folder
    description: d
    format: imagenet-folder
    num_classes: 2
    image_shape: [3, 4, 4]
    resize_shorter: 6
    licence: none
    splits:
      train: {dir: train}
      test: {dir: val, labels: val.txt, count: 2}
";

    fn write_idx(dir: &Path, count: u32, labels: &[u8]) {
        let mut i = vec![0, 0, 8, 3];
        for d in [count, 1, 2] {
            i.extend_from_slice(&d.to_be_bytes());
        }
        i.extend((0..count * 2).map(|v| v as u8));
        std::fs::write(dir.join("i"), i).unwrap();
        let mut l = vec![0, 0, 8, 1];
        l.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        l.extend_from_slice(labels);
        std::fs::write(dir.join("l"), l).unwrap();
    }

    #[test]
    fn registered_count_and_shape_are_enforced() {
        let reg = Registry::from_yaml_str(YAML).unwrap();
        let entry = reg.get("tiny-idx").unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), 3, &[0, 1, 2]);
        let set = load_from(entry, dir.path(), Split::Train).unwrap();
        assert_eq!(set.labels, vec![0, 1, 2]);

        // A consistent but shorter pair of files is not silently accepted.
        write_idx(dir.path(), 2, &[0, 1]);
        let e = load_from(entry, dir.path(), Split::Train).unwrap_err();
        assert!(
            e.to_string().contains("number of images: expected 3"),
            "{e}"
        );

        let mut wrong_shape = entry.clone();
        wrong_shape.image_shape = [1, 2, 1];
        write_idx(dir.path(), 3, &[0, 1, 2]);
        let e = load_from(&wrong_shape, dir.path(), Split::Train).unwrap_err();
        assert!(e.to_string().contains("image shape"), "{e}");

        let e = load_from(entry, dir.path(), Split::Test).unwrap_err();
        assert!(matches!(e, DatasetError::Unsupported { .. }), "{e}");
        std::fs::remove_file(dir.path().join("l")).unwrap();
        let e = load_from(entry, dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(&e, DatasetError::MissingPath { path, .. } if path.ends_with("l")),
            "{e}"
        );
        assert!(e.to_string().contains("qbench data verify tiny-idx"), "{e}");
    }

    #[test]
    fn load_verified_rejects_a_flipped_pixel() {
        let reg = Registry::from_yaml_str(YAML).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), 3, &[0, 1, 2]);
        let mut entry = reg.get("tiny-idx").unwrap().clone();
        entry.system_dirs = vec![dir.path().to_path_buf()];
        for (role, name) in [("train-images", "i"), ("train-labels", "l")] {
            let sha = qbench_io::sha256_file(dir.path().join(name)).unwrap();
            let yaml = format!("{{role: {role}, name: {name}, sha256: {sha}}}");
            entry.files.push(serde_yaml_ng::from_str(&yaml).unwrap());
        }
        let (set, checks) = load_verified(&entry, Split::Train).unwrap();
        assert_eq!((set.len(), checks.len()), (3, 2));
        assert!(checks.iter().all(|c| c.is_ok()));
        // One pixel flipped: the reader alone accepts it, the checksum does not.
        let path = dir.path().join("i");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[16] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(load_from(&entry, dir.path(), Split::Train).is_ok());
        let e = load_verified(&entry, Split::Train).unwrap_err();
        assert!(
            matches!(&e, DatasetError::ChecksumMismatch { path: p, .. } if *p == path),
            "{e}"
        );
    }

    #[test]
    fn folder_entry_loads_both_layouts() {
        let reg = Registry::from_yaml_str(YAML).unwrap();
        let entry = reg.get("tiny-folder").unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (class, v) in [("a", 10u8), ("b", 20u8)] {
            let d = dir.path().join("train").join(class);
            std::fs::create_dir_all(&d).unwrap();
            RgbImage::from_pixel(7, 9, Rgb([v, v, v]))
                .save(d.join("1.png"))
                .unwrap();
        }
        let val = dir.path().join("val");
        std::fs::create_dir_all(&val).unwrap();
        RgbImage::from_pixel(9, 7, Rgb([30, 30, 30]))
            .save(val.join("x.png"))
            .unwrap();
        RgbImage::from_pixel(6, 6, Rgb([40, 40, 40]))
            .save(val.join("y.png"))
            .unwrap();
        std::fs::write(dir.path().join("val.txt"), "x.png 1\ny.png 0\n").unwrap();

        let train = load_from(entry, dir.path(), Split::Train).unwrap();
        assert_eq!((train.len(), train.height, train.width), (2, 4, 4));
        assert_eq!(train.labels, vec![0, 1]);
        assert!(train.image(1).iter().all(|&p| p == 20));
        let test = load_from(entry, dir.path(), Split::Test).unwrap();
        assert_eq!(test.labels, vec![1, 0]);
        assert!(test.image(0).iter().all(|&p| p == 30));

        // A third class folder contradicts num_classes.
        std::fs::create_dir_all(dir.path().join("train").join("c")).unwrap();
        let e = load_from(entry, dir.path(), Split::Train).unwrap_err();
        assert!(
            e.to_string()
                .contains("number of class folders: expected 2, found 3"),
            "{e}"
        );
    }

    #[test]
    fn unknown_name_is_an_error() {
        let e = load("no-such-set", Split::Train).unwrap_err();
        assert!(matches!(e, DatasetError::UnknownDataset { .. }), "{e}");
    }
}
