//! The folder layout of KITTI's object benchmark and its image-level splits.
//!
//! ```text
//! <root>/training/image_2/000000.png   left colour camera image
//! <root>/training/label_2/000000.txt   its objects, one label line each
//! ```
//!
//! An image is named by its id, the file stem: six decimal digits. KITTI's labelled set has
//! 7481 training images (its test images have no public labels), so validation comes from a
//! split of them: either seeded ([`split_ids`]) or the common `train.txt` / `val.txt` lists
//! (3712 / 3769 ids, from the 3DOP and MV3D papers), read by [`read_split_file`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{DatasetError, Result};
use crate::split::train_val_split;

/// The labelled split's folder under the dataset root.
pub const TRAINING_DIR: &str = "training";
/// The images' folder under a split folder.
pub const IMAGE_DIR: &str = "image_2";
/// The label files' folder under a split folder.
pub const LABEL_DIR: &str = "label_2";

/// The image file of `id` under the split folder `split_dir` (e.g. `<root>/training`).
pub fn image_path(split_dir: &Path, id: &str) -> PathBuf {
    split_dir.join(IMAGE_DIR).join(format!("{id}.png"))
}

/// The label file of `id` under the split folder `split_dir` (e.g. `<root>/training`).
pub fn label_path(split_dir: &Path, id: &str) -> PathBuf {
    split_dir.join(LABEL_DIR).join(format!("{id}.txt"))
}

/// True for a KITTI image id: six ASCII digits.
pub fn is_id(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The ids of the labelled images under `<root>/training`, sorted. See [`image_ids_in`].
pub fn image_ids(root: &Path) -> Result<Vec<String>> {
    image_ids_in(&root.join(TRAINING_DIR))
}

/// The ids of the images under the split folder `split_dir`, sorted: every
/// `image_2/NNNNNN.png` must have its `label_2/NNNNNN.txt` and every label file its image, else
/// the error names the file without a partner. Hidden entries are skipped; any other entry
/// that is not `<six digits>.png` (in `image_2`) or `<six digits>.txt` (in `label_2`) is an
/// error naming it. Two folder listings, however many images.
pub fn image_ids_in(split_dir: &Path) -> Result<Vec<String>> {
    let images = list_ids(&split_dir.join(IMAGE_DIR), "png")?;
    let labels = list_ids(&split_dir.join(LABEL_DIR), "txt")?;
    if let Some(id) = images.iter().find(|id| labels.binary_search(id).is_err()) {
        return Err(DatasetError::MissingPath {
            path: label_path(split_dir, id),
            message: format!(
                "image {} has no label file",
                image_path(split_dir, id).display()
            ),
        });
    }
    if let Some(id) = labels.iter().find(|id| images.binary_search(id).is_err()) {
        return Err(DatasetError::MissingPath {
            path: image_path(split_dir, id),
            message: format!(
                "label file {} has no image",
                label_path(split_dir, id).display()
            ),
        });
    }
    if images.is_empty() {
        return Err(DatasetError::MissingPath {
            path: split_dir.join(IMAGE_DIR),
            message: "holds no image (expected NNNNNN.png files)".into(),
        });
    }
    Ok(images)
}

/// The sorted ids of the `<id>.<ext>` files in `dir`.
fn list_ids(dir: &Path, ext: &str) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Err(DatasetError::MissingPath {
            path: dir.to_path_buf(),
            message: "KITTI folder missing (expected training/image_2 and training/label_2)".into(),
        });
    }
    let rd = std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, "list directory", e))?;
    let mut ids = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DatasetError::io(dir, "list directory", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        match name.strip_suffix(&format!(".{ext}")) {
            Some(id) if is_id(id) => ids.push(id.to_owned()),
            _ => {
                return Err(DatasetError::Unexpected {
                    path: entry.path(),
                    what: "file in a KITTI folder",
                    expected: format!("NNNNNN.{ext} (six digits)"),
                    found: format!("`{name}`"),
                });
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Splits `ids` by image into (train, validation), each in the order of `ids`: the validation
/// part holds `round(len * val_fraction)` ids chosen by [`crate::shuffled_indices`] with
/// `seed` (through [`train_val_split`]), the same on every machine.
///
/// # Panics
/// If `val_fraction` is not in `[0, 1]` (a caller bug, as for [`train_val_split`]).
pub fn split_ids(ids: &[String], val_fraction: f64, seed: u64) -> (Vec<String>, Vec<String>) {
    let (train, val) = train_val_split(ids.len(), val_fraction, seed);
    let pick = |idx: Vec<usize>| idx.into_iter().map(|i| ids[i].clone()).collect();
    (pick(train), pick(val))
}

/// Reads a split list such as the common `train.txt` / `val.txt` (3712 / 3769 ids): one
/// six-digit id per line, in file order; surrounding whitespace and blank lines are ignored.
/// A malformed line, an id not among `known` (e.g. [`image_ids`]) or an id listed twice is an
/// error naming the file and line; so is a file without any id.
pub fn read_split_file(path: &Path, known: &[String]) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, "read", e))?;
    let bad = |line: usize, message: String| DatasetError::BadLine {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut known_sorted: Vec<&str> = known.iter().map(String::as_str).collect();
    known_sorted.sort_unstable();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut ids = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let id = raw.trim();
        if id.is_empty() {
            continue;
        }
        if !is_id(id) {
            return Err(bad(
                i + 1,
                format!("`{id}` is not an image id (six digits)"),
            ));
        }
        if known_sorted.binary_search(&id).is_err() {
            return Err(bad(
                i + 1,
                format!(
                    "unknown image id {id}: not among the {} images of the dataset",
                    known.len()
                ),
            ));
        }
        if let Some(first) = seen.insert(id, i + 1) {
            return Err(bad(
                i + 1,
                format!("id {id} is already listed on line {first}"),
            ));
        }
        ids.push(id.to_owned());
    }
    if ids.is_empty() {
        return Err(bad(text.lines().count().max(1), "no image id found".into()));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(split: &Path, ids_png: &[&str], ids_txt: &[&str]) {
        std::fs::create_dir_all(split.join(IMAGE_DIR)).unwrap();
        std::fs::create_dir_all(split.join(LABEL_DIR)).unwrap();
        for id in ids_png {
            std::fs::write(image_path(split, id), b"").unwrap();
        }
        for id in ids_txt {
            std::fs::write(label_path(split, id), b"").unwrap();
        }
    }

    #[test]
    fn ids_are_sorted_and_paired() {
        let root = tempfile::tempdir().unwrap();
        let split = root.path().join(TRAINING_DIR);
        touch(
            &split,
            &["000002", "000000", "000001"],
            &["000001", "000000", "000002"],
        );
        std::fs::write(split.join(IMAGE_DIR).join(".hidden"), b"").unwrap();
        assert_eq!(
            image_ids(root.path()).unwrap(),
            vec!["000000", "000001", "000002"]
        );
    }

    #[test]
    fn missing_label_or_image_is_named() {
        let root = tempfile::tempdir().unwrap();
        let split = root.path().join(TRAINING_DIR);
        touch(&split, &["000000", "000001"], &["000000"]);
        let e = image_ids(root.path()).unwrap_err();
        assert!(
            matches!(&e, DatasetError::MissingPath { path, .. } if path.ends_with("label_2/000001.txt")),
            "{e}"
        );
        assert!(
            e.to_string().contains("image_2/000001.png has no label"),
            "{e}"
        );
        touch(&split, &[], &["000001", "000007"]);
        let e = image_ids(root.path()).unwrap_err();
        assert!(
            matches!(&e, DatasetError::MissingPath { path, .. } if path.ends_with("image_2/000007.png")),
            "{e}"
        );
        assert!(
            e.to_string().contains("label_2/000007.txt has no image"),
            "{e}"
        );
    }

    #[test]
    fn stray_files_and_missing_folders_are_errors() {
        let root = tempfile::tempdir().unwrap();
        let e = image_ids(root.path()).unwrap_err();
        assert!(e.to_string().contains("image_2"), "{e}");
        let split = root.path().join(TRAINING_DIR);
        touch(&split, &["000000"], &["000000"]);
        std::fs::write(split.join(IMAGE_DIR).join("000001.jpg"), b"").unwrap();
        let e = image_ids(root.path()).unwrap_err();
        assert!(e.to_string().contains("000001.jpg"), "{e}");
        std::fs::remove_file(split.join(IMAGE_DIR).join("000001.jpg")).unwrap();
        std::fs::write(split.join(LABEL_DIR).join("12.txt"), b"").unwrap();
        let e = image_ids(root.path()).unwrap_err();
        assert!(e.to_string().contains("12.txt"), "{e}");
    }

    #[test]
    fn seeded_split_is_by_image_and_deterministic() {
        let ids: Vec<String> = (0..100).map(|i| format!("{i:06}")).collect();
        let (train, val) = split_ids(&ids, 0.25, 3);
        assert_eq!((train.len(), val.len()), (75, 25));
        assert_eq!((train.clone(), val.clone()), split_ids(&ids, 0.25, 3));
        assert_ne!(val, split_ids(&ids, 0.25, 4).1);
        assert!(val.iter().all(|v| !train.contains(v)));
        assert!(train.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn split_file_with_unknown_id_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let known: Vec<String> = (0..10).map(|i| format!("{i:06}")).collect();
        let path = dir.path().join("val.txt");
        std::fs::write(&path, "000003\n000001\r\n\n").unwrap();
        assert_eq!(
            read_split_file(&path, &known).unwrap(),
            vec!["000003", "000001"]
        );
        for (content, line, needle) in [
            ("000003\n000011\n", 2, "unknown image id 000011"),
            ("000003\n3\n", 2, "not an image id"),
            ("000003\n\n000003\n", 3, "already listed on line 1"),
            ("\n", 1, "no image id"),
        ] {
            std::fs::write(&path, content).unwrap();
            let e = read_split_file(&path, &known).unwrap_err();
            assert!(
                matches!(&e, DatasetError::BadLine { line: l, .. } if *l == line),
                "{content:?}: {e}"
            );
            let msg = e.to_string();
            assert!(msg.contains(&format!("val.txt:{line}:")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
    }
}
