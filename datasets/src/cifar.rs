//! CIFAR-10 and CIFAR-100 "binary version" batch files.
//!
//! A batch is a sequence of fixed-size records: for CIFAR-10 one label byte
//! then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32
//! row-major, i.e. already CHW); for CIFAR-100 a coarse label byte (0..20), a
//! fine label byte (0..100), then the same 3072 pixel bytes.

use std::path::Path;

use crate::error::{DatasetError, Result};
use crate::set::{ImageSet, Normalization};

/// Pixel bytes of one CIFAR image: 3 x 32 x 32.
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Record size of a CIFAR-10 batch: 1 label byte + 3072 pixels.
pub const CIFAR10_RECORD: usize = 1 + CIFAR_IMAGE_BYTES;
/// Record size of a CIFAR-100 batch: coarse + fine label bytes + 3072 pixels.
pub const CIFAR100_RECORD: usize = 2 + CIFAR_IMAGE_BYTES;

/// Which CIFAR-100 label to use as the class: the 100 fine classes (the usual
/// benchmark) or the 20 coarse superclasses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cifar100Label {
    /// The 100 fine classes.
    #[default]
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// Record layout: label bytes before the pixels, and the class count of each.
struct Layout {
    /// (number of classes, name) of each label byte, in record order.
    labels: &'static [(usize, &'static str)],
    /// Which label byte is the class.
    use_label: usize,
    normalization: Normalization,
}

/// Loads and concatenates CIFAR-10 batch files (`data_batch_1.bin` ..
/// `data_batch_5.bin` for training, `test_batch.bin` for test) in the order
/// given, as a 3x32x32 RGB [`ImageSet`] with 10 classes and CIFAR-10
/// normalisation.
///
/// Each file must be a non-empty whole number of 3073-byte records and every
/// label below 10.
pub fn load_cifar10<P: AsRef<Path>>(paths: &[P]) -> Result<ImageSet> {
    load(
        paths,
        Layout {
            labels: &[(10, "label")],
            use_label: 0,
            normalization: Normalization::cifar10(),
        },
    )
}

/// Loads and concatenates CIFAR-100 batch files (`train.bin`, `test.bin`) as
/// a 3x32x32 RGB [`ImageSet`] labelled by `label` (100 fine or 20 coarse
/// classes), with CIFAR-100 normalisation.
///
/// Each file must be a non-empty whole number of 3074-byte records; both the
/// coarse (< 20) and fine (< 100) label of every record are checked.
pub fn load_cifar100<P: AsRef<Path>>(paths: &[P], label: Cifar100Label) -> Result<ImageSet> {
    load(
        paths,
        Layout {
            labels: &[(20, "coarse label"), (100, "fine label")],
            use_label: match label {
                Cifar100Label::Coarse => 0,
                Cifar100Label::Fine => 1,
            },
            normalization: Normalization::cifar100(),
        },
    )
}

fn load<P: AsRef<Path>>(paths: &[P], layout: Layout) -> Result<ImageSet> {
    let nlabels = layout.labels.len();
    let record = nlabels + CIFAR_IMAGE_BYTES;
    let num_classes = layout.labels[layout.use_label].0;
    if paths.is_empty() {
        return Err(DatasetError::Unexpected {
            path: "(no path given)".into(),
            what: "CIFAR batch files",
            expected: "at least one".into(),
            found: "none".into(),
        });
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| DatasetError::io(path, "read", e))?;
        let len = data.len() as u64;
        let rec = record as u64;
        if data.is_empty() {
            return Err(DatasetError::Truncated {
                path: path.to_path_buf(),
                expected: rec,
                found: 0,
                detail: " at least (one record)".into(),
            });
        }
        if !len.is_multiple_of(rec) {
            return Err(DatasetError::PartialRecord {
                path: path.to_path_buf(),
                len,
                record_size: rec,
                whole: len / rec,
                partial: len % rec,
                partial_offset: len / rec * rec,
            });
        }
        images.reserve(data.len() / record * CIFAR_IMAGE_BYTES);
        labels.reserve(data.len() / record);
        for (i, r) in data.chunks_exact(record).enumerate() {
            for (k, &(classes, _name)) in layout.labels.iter().enumerate() {
                if usize::from(r[k]) >= classes {
                    return Err(DatasetError::LabelOutOfRange {
                        path: path.to_path_buf(),
                        offset: (i * record + k) as u64,
                        index: i as u64,
                        label: u64::from(r[k]),
                        num_classes: classes,
                    });
                }
            }
            labels.push(u16::from(r[layout.use_label]));
            images.extend_from_slice(&r[nlabels..]);
        }
    }
    Ok(ImageSet {
        images,
        labels,
        channels: 3,
        height: 32,
        width: 32,
        num_classes,
        normalization: layout.normalization,
        boxes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn record(labels: &[u8], seed: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..CIFAR_IMAGE_BYTES).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
        r
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn cifar10_round_trip_over_two_batches() {
        let dir = tempfile::tempdir().unwrap();
        let a = [record(&[3], 1), record(&[9], 2)].concat();
        let b = record(&[0], 3);
        let pa = write(dir.path(), "data_batch_1.bin", &a);
        let pb = write(dir.path(), "data_batch_2.bin", &b);
        let set = load_cifar10(&[pa, pb]).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.labels, vec![3, 9, 0]);
        assert_eq!(
            (set.channels, set.height, set.width, set.num_classes),
            (3, 32, 32, 10)
        );
        assert_eq!(set.image(1), &record(&[9], 2)[1..]);
        assert_eq!(set.image(2), &b[1..]);
        assert_eq!(set.normalization, Normalization::cifar10());
        assert!(set.check().is_ok());
    }

    #[test]
    fn cifar100_fine_and_coarse() {
        let dir = tempfile::tempdir().unwrap();
        let data = [record(&[19, 99], 5), record(&[0, 42], 6)].concat();
        let p = write(dir.path(), "train.bin", &data);
        let fine = load_cifar100(&[&p], Cifar100Label::Fine).unwrap();
        assert_eq!((fine.labels.clone(), fine.num_classes), (vec![99, 42], 100));
        assert_eq!(fine.image(0), &record(&[19, 99], 5)[2..]);
        let coarse = load_cifar100(&[&p], Cifar100Label::Coarse).unwrap();
        assert_eq!((coarse.labels, coarse.num_classes), (vec![19, 0], 20));
        assert_eq!(coarse.images, fine.images);
    }

    #[test]
    fn partial_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = [record(&[1], 0), record(&[2], 0)].concat();
        data.truncate(CIFAR10_RECORD + 100);
        let p = write(dir.path(), "test_batch.bin", &data);
        let e = load_cifar10(&[&p]).unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::PartialRecord {
                    whole: 1,
                    partial: 100,
                    partial_offset: 3073,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("test_batch.bin"), "{e}");
    }

    #[test]
    fn empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "test_batch.bin", &[]);
        let e = load_cifar10(&[&p]).unwrap_err();
        assert!(matches!(e, DatasetError::Truncated { found: 0, .. }), "{e}");
        assert!(load_cifar10::<&Path>(&[]).is_err());
    }

    #[test]
    fn label_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "b.bin",
            &[record(&[1], 0), record(&[10], 0)].concat(),
        );
        let e = load_cifar10(&[&p]).unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::LabelOutOfRange {
                    offset: 3073,
                    index: 1,
                    label: 10,
                    num_classes: 10,
                    ..
                }
            ),
            "{e}"
        );
        // CIFAR-100: a bad coarse label is caught even when fine labels are used.
        let p = write(dir.path(), "c.bin", &record(&[20, 5], 0));
        let e = load_cifar100(&[&p], Cifar100Label::Fine).unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::LabelOutOfRange {
                    offset: 0,
                    label: 20,
                    num_classes: 20,
                    ..
                }
            ),
            "{e}"
        );
        let p = write(dir.path(), "d.bin", &record(&[2, 100], 0));
        let e = load_cifar100(&[&p], Cifar100Label::Coarse).unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::LabelOutOfRange {
                    offset: 1,
                    label: 100,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn cifar100_file_read_as_cifar10_is_rejected() {
        // 3074-byte records are not a multiple of 3073 unless 3073 of them.
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "train.bin",
            &[record(&[1, 2], 0), record(&[1, 2], 0)].concat(),
        );
        assert!(matches!(
            load_cifar10(&[&p]).unwrap_err(),
            DatasetError::PartialRecord { .. }
        ));
    }
}
