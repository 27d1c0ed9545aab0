//! ImageNet-style folders of JPEG/PNG files.
//!
//! Two layouts are read:
//! - **class folders** ([`load_class_folders`]): `root/<class>/<image>`; the
//!   class index is the position of the folder name in byte-wise sorted
//!   order (as torchvision's `ImageFolder` does for ASCII names such as
//!   ImageNet's WordNet ids);
//! - **a flat folder plus a labels file** ([`load_labelled_folder`]): the
//!   labels file has one line per image, `<file name> <label>`, where the
//!   file name is relative to the folder and the label is the class index;
//!   the last whitespace on the line separates them, blank lines and lines
//!   starting with `#` are ignored.
//!
//! Every image is decoded (format guessed from its content), converted to
//! RGB, resized so that its shorter side is [`FolderOptions::resize_shorter`]
//! with a triangle (bilinear, antialiased when downscaling) filter, centre
//! cropped to [`FolderOptions::crop`] squared, and stored as u8 CHW. This is
//! the standard torchvision evaluation pipeline `Resize(256)`,
//! `CenterCrop(224)`; the ImageNet mean/std is carried in
//! [`ImageSet::normalization`], not applied to the bytes. Images are decoded
//! in parallel with rayon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;

use crate::error::{DatasetError, Result};
use crate::set::{ImageSet, Normalization};

/// How folder images are brought to a fixed size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderOptions {
    /// The shorter side of every image is resized to this many pixels
    /// (default 256); the longer side keeps the aspect ratio (truncated, as
    /// torchvision does).
    pub resize_shorter: u32,
    /// Side of the square centre crop taken after resizing (default 224);
    /// must not exceed `resize_shorter`.
    pub crop: u32,
    /// If set, the number of classes the caller expects: a class-folder root
    /// with a different number of class folders is an error.
    pub expected_classes: Option<usize>,
    /// If set, load only the first `k` images of each class (in sorted file
    /// order for class folders, in labels-file order for a flat folder): a
    /// deterministic, balanced subset, e.g. for calibration, when the whole
    /// set does not fit in memory. `None` (the default) loads everything.
    pub max_per_class: Option<usize>,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            resize_shorter: 256,
            crop: 224,
            expected_classes: None,
            max_per_class: None,
        }
    }
}

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn check_options(path: &Path, opts: &FolderOptions) -> Result<()> {
    if opts.crop == 0 || opts.crop > opts.resize_shorter {
        return Err(DatasetError::Unexpected {
            path: path.to_path_buf(),
            what: "resize/crop options",
            expected: "0 < crop <= resize_shorter".into(),
            found: format!(
                "crop {} with resize_shorter {}",
                opts.crop, opts.resize_shorter
            ),
        });
    }
    Ok(())
}

fn utf8_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| DatasetError::Unexpected {
            path: path.to_path_buf(),
            what: "file name",
            expected: "valid UTF-8".into(),
            found: path.display().to_string(),
        })
}

/// Entries of `dir` except hidden ones (names starting with '.'), sorted by name.
fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, "list directory", e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DatasetError::io(dir, "list directory", e))?;
        let path = entry.path();
        let name = utf8_name(&path)?;
        if !name.starts_with('.') {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The class folder names under `root`, sorted: index `i` of the result is
/// the name of class `i` in [`load_class_folders`]. Hidden entries and plain
/// files directly under `root` are ignored.
pub fn class_folder_names(root: impl AsRef<Path>) -> Result<Vec<String>> {
    let root = root.as_ref();
    let mut names = Vec::new();
    for (name, path) in list_dir(root)? {
        let meta = std::fs::metadata(&path).map_err(|e| DatasetError::io(&path, "stat", e))?;
        if meta.is_dir() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Loads `root/<class>/<image>` as an RGB [`ImageSet`] of `crop x crop`
/// images with ImageNet normalisation; class `i` is the `i`-th folder name
/// in sorted order (see [`class_folder_names`]).
///
/// Errors: `root` missing; no class folder, or not
/// [`FolderOptions::expected_classes`] of them; an empty class folder; a
/// non-hidden file that is not `.jpg`/`.jpeg`/`.png` or a nested folder in a
/// class folder; any image that cannot be decoded (the error names it).
pub fn load_class_folders(root: impl AsRef<Path>, opts: &FolderOptions) -> Result<ImageSet> {
    let root = root.as_ref();
    check_options(root, opts)?;
    if !root.is_dir() {
        return Err(DatasetError::MissingPath {
            path: root.to_path_buf(),
            message: "image root folder does not exist or is not a directory".into(),
        });
    }
    let classes = class_folder_names(root)?;
    if classes.is_empty() {
        return Err(DatasetError::MissingPath {
            path: root.to_path_buf(),
            message: "no class folders found (expected root/<class>/<image files>)".into(),
        });
    }
    if let Some(expected) = opts.expected_classes
        && expected != classes.len()
    {
        return Err(DatasetError::Unexpected {
            path: root.to_path_buf(),
            what: "number of class folders",
            expected: expected.to_string(),
            found: format!(
                "{} ({} .. {})",
                classes.len(),
                classes[0],
                classes[classes.len() - 1]
            ),
        });
    }
    let num_classes = classes.len();
    if num_classes > usize::from(u16::MAX) + 1 {
        return Err(DatasetError::Unexpected {
            path: root.to_path_buf(),
            what: "number of class folders",
            expected: "at most 65536".into(),
            found: num_classes.to_string(),
        });
    }
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        let mut count = 0usize;
        for (name, path) in list_dir(&dir)? {
            let meta = std::fs::metadata(&path).map_err(|e| DatasetError::io(&path, "stat", e))?;
            if meta.is_dir() {
                return Err(DatasetError::Unexpected {
                    path,
                    what: "entry in a class folder",
                    expected: "image files only".into(),
                    found: "a folder".into(),
                });
            }
            check_extension(&path, &name)?;
            if opts.max_per_class.is_none_or(|k| count < k) {
                files.push(path);
                labels.push(label as u16);
            }
            count += 1;
        }
        if count == 0 {
            return Err(DatasetError::MissingPath {
                path: dir,
                message: format!("class folder `{class}` (class {label}) holds no image"),
            });
        }
    }
    decode_all(files, labels, num_classes, opts)
}

fn check_extension(path: &Path, name: &str) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext {
        Some(e) if IMAGE_EXTENSIONS.contains(&e.as_str()) => Ok(()),
        _ => Err(DatasetError::Unexpected {
            path: path.to_path_buf(),
            what: "image file extension",
            expected: ".jpg, .jpeg or .png (any case)".into(),
            found: format!("`{name}`"),
        }),
    }
}

/// Loads the images listed in `labels_file` from the flat folder
/// `images_dir` as an RGB [`ImageSet`] of `crop x crop` images with
/// `num_classes` classes and ImageNet normalisation, in the order of the
/// labels file.
///
/// Labels file format: one `<file name> <label>` per line (the last run of
/// whitespace separates them), file names relative to `images_dir`, labels
/// decimal class indices below `num_classes`; blank lines and `#` comments
/// are skipped. A malformed line, a label out of range or a file listed
/// twice is an error naming the line number; a listed file that is missing
/// or cannot be decoded is an error naming the file.
pub fn load_labelled_folder(
    images_dir: impl AsRef<Path>,
    labels_file: impl AsRef<Path>,
    num_classes: usize,
    opts: &FolderOptions,
) -> Result<ImageSet> {
    let (dir, labels_file) = (images_dir.as_ref(), labels_file.as_ref());
    check_options(dir, opts)?;
    if !dir.is_dir() {
        return Err(DatasetError::MissingPath {
            path: dir.to_path_buf(),
            message: "image folder does not exist or is not a directory".into(),
        });
    }
    let entries = parse_labels_file(labels_file, num_classes)?;
    let mut files = Vec::with_capacity(entries.len());
    let mut labels = Vec::with_capacity(entries.len());
    let mut per_class = vec![0usize; num_classes];
    for (line, name, label) in entries {
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(DatasetError::MissingPath {
                path,
                message: format!(
                    "image listed on line {line} of {} does not exist",
                    labels_file.display()
                ),
            });
        }
        let taken = &mut per_class[usize::from(label)];
        if opts.max_per_class.is_none_or(|k| *taken < k) {
            files.push(path);
            labels.push(label);
            *taken += 1;
        }
    }
    decode_all(files, labels, num_classes, opts)
}

/// Parses a labels file into (line number, file name, label) triples.
pub(crate) fn parse_labels_file(
    path: &Path,
    num_classes: usize,
) -> Result<Vec<(usize, String, u16)>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, "read", e))?;
    let bad = |line: usize, message: String| DatasetError::BadLine {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, label)) = line.rsplit_once(char::is_whitespace) else {
            return Err(bad(
                line_no,
                format!("expected `<file name> <label>`, found `{line}`"),
            ));
        };
        let name = name.trim_end();
        let label_value: usize = label.parse().map_err(|_| {
            bad(
                line_no,
                format!(
                    "label `{label}` is not a non-negative integer (expected `<file name> <label>`)"
                ),
            )
        })?;
        if label_value >= num_classes {
            return Err(bad(
                line_no,
                format!("label {label_value} is out of range: expected 0..{num_classes}"),
            ));
        }
        let label_value = u16::try_from(label_value).map_err(|_| {
            bad(
                line_no,
                format!("label {label_value} does not fit in 16 bits"),
            )
        })?;
        if let Some(first) = seen.insert(name.to_owned(), line_no) {
            return Err(bad(
                line_no,
                format!("`{name}` is already listed on line {first}"),
            ));
        }
        out.push((line_no, name.to_owned(), label_value));
    }
    if out.is_empty() {
        return Err(bad(
            text.lines().count().max(1),
            "no `<file name> <label>` line found".into(),
        ));
    }
    Ok(out)
}

/// Decodes every file in parallel into one NCHW buffer; the first failing
/// file in list order is reported.
fn decode_all(
    files: Vec<PathBuf>,
    labels: Vec<u16>,
    num_classes: usize,
    opts: &FolderOptions,
) -> Result<ImageSet> {
    let c = opts.crop as usize;
    let per_image = 3 * c * c;
    let first = files.first().cloned().unwrap_or_default();
    let too_big = || DatasetError::Unexpected {
        path: first.parent().unwrap_or(&first).to_path_buf(),
        what: "memory for the decoded images",
        expected: "an allocation that succeeds (use FolderOptions::max_per_class to load a subset)"
            .into(),
        found: format!(
            "{} images x 3 x {c} x {c} bytes = {:.1} GiB",
            files.len(),
            (files.len() as f64) * (per_image as f64) / f64::from(1u32 << 30)
        ),
    };
    let total = files.len().checked_mul(per_image).ok_or_else(too_big)?;
    let mut images = Vec::new();
    images.try_reserve_exact(total).map_err(|_| too_big())?;
    images.resize(total, 0u8);
    let results: Vec<Result<()>> = images
        .par_chunks_mut(per_image)
        .zip(files.par_iter())
        .map(|(out, path)| preprocess_into(path, opts, out))
        .collect();
    results.into_iter().collect::<Result<()>>()?;
    Ok(ImageSet {
        images,
        labels,
        channels: 3,
        height: c,
        width: c,
        num_classes,
        normalization: Normalization::imagenet(),
        boxes: Vec::new(),
    })
}

/// Centre-crop offset as torchvision computes it: `round((size - crop) / 2)`
/// with Python's round-half-to-even.
fn centre_offset(size: u32, crop: u32) -> u32 {
    let d = size - crop;
    let half = d / 2;
    if d % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// Decodes one JPEG/PNG file and returns it resized (shorter side
/// `opts.resize_shorter`), centre-cropped to `opts.crop` squared, as RGB u8
/// CHW (`3 * crop * crop` bytes).
pub fn preprocess_image(path: impl AsRef<Path>, opts: &FolderOptions) -> Result<Vec<u8>> {
    let path = path.as_ref();
    check_options(path, opts)?;
    let c = opts.crop as usize;
    let mut out = vec![0u8; 3 * c * c];
    preprocess_into(path, opts, &mut out)?;
    Ok(out)
}

fn preprocess_into(path: &Path, opts: &FolderOptions, out: &mut [u8]) -> Result<()> {
    let bad = |message: String| DatasetError::BadImage {
        path: path.to_path_buf(),
        message,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| DatasetError::io(path, "open", e))?
        .with_guessed_format()
        .map_err(|e| DatasetError::io(path, "read", e))?;
    let decoded = reader.decode().map_err(|e| bad(e.to_string()))?;
    let rgb = decoded.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(bad(format!("image is {w}x{h}")));
    }
    let s = opts.resize_shorter;
    let (nw, nh) = if w <= h {
        (s, (u64::from(h) * u64::from(s) / u64::from(w)) as u32)
    } else {
        ((u64::from(w) * u64::from(s) / u64::from(h)) as u32, s)
    };
    let resized = if (nw, nh) == (w, h) {
        rgb
    } else {
        image::imageops::resize(&rgb, nw, nh, FilterType::Triangle)
    };
    let crop = opts.crop;
    let (left, top) = (centre_offset(nw, crop), centre_offset(nh, crop));
    let c = crop as usize;
    let plane = c * c;
    for y in 0..crop {
        for x in 0..crop {
            let p = resized.get_pixel(left + x, top + y).0;
            let i = y as usize * c + x as usize;
            out[i] = p[0];
            out[plane + i] = p[1];
            out[2 * plane + i] = p[2];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb, RgbImage};

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb(rgb))
    }

    fn save(img: &RgbImage, path: &Path) {
        let fmt = match path
            .extension()
            .unwrap()
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .as_str()
        {
            "png" => ImageFormat::Png,
            _ => ImageFormat::Jpeg,
        };
        img.save_with_format(path, fmt).unwrap();
    }

    fn small_opts() -> FolderOptions {
        FolderOptions {
            resize_shorter: 8,
            crop: 4,
            ..FolderOptions::default()
        }
    }

    #[test]
    fn centre_offset_matches_python_round() {
        assert_eq!(centre_offset(256, 224), 16);
        assert_eq!(centre_offset(255, 224), 16); // 15.5 -> 16
        assert_eq!(centre_offset(257, 224), 16); // 16.5 -> 16
        assert_eq!(centre_offset(224, 224), 0);
    }

    #[test]
    fn resize_and_centre_crop_keep_the_centre() {
        // 16x32 (w x h) and 32x16 PNGs: a green band across the middle of
        // the long side (source 10..22), red before it, blue after. Resizing
        // the shorter side to 8 gives 8x16 (or 16x8); the 4x4 centre crop
        // covers resized 6..10 along the long side (source 12..20), inside
        // the green band.
        let dir = tempfile::tempdir().unwrap();
        for tall in [true, false] {
            let (w, h) = if tall { (16, 32) } else { (32, 16) };
            let mut img = RgbImage::new(w, h);
            for (x, y, p) in img.enumerate_pixels_mut() {
                let along = if tall { y } else { x };
                *p = if (10..22).contains(&along) {
                    Rgb([0, 255, 0])
                } else if along < 10 {
                    Rgb([255, 0, 0])
                } else {
                    Rgb([0, 0, 255])
                };
            }
            let path = dir.path().join(format!("{tall}.png"));
            save(&img, &path);
            let chw = preprocess_image(&path, &small_opts()).unwrap();
            assert_eq!(chw.len(), 3 * 16);
            assert!(
                chw[..16].iter().all(|&p| p < 10),
                "red plane {:?}",
                &chw[..16]
            );
            assert!(
                chw[16..32].iter().all(|&p| p > 245),
                "green plane {:?}",
                &chw[16..32]
            );
            assert!(
                chw[32..].iter().all(|&p| p < 10),
                "blue plane {:?}",
                &chw[32..]
            );
        }
    }

    fn make_class_tree(root: &Path) {
        for (class, colour, files) in [
            ("n02", [0u8, 0, 200], vec!["x.png"]),
            ("n01", [200u8, 0, 0], vec!["b.JPEG", "a.png"]),
        ] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for f in files {
                save(&solid(10, 12, colour), &root.join(class).join(f));
            }
        }
        std::fs::write(root.join("README.txt"), "root files are ignored").unwrap();
        std::fs::write(root.join("n01").join(".DS_Store"), "hidden").unwrap();
    }

    #[test]
    fn class_folders_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        make_class_tree(dir.path());
        assert_eq!(class_folder_names(dir.path()).unwrap(), vec!["n01", "n02"]);
        let set = load_class_folders(dir.path(), &small_opts()).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.labels, vec![0, 0, 1]);
        assert_eq!(
            (set.channels, set.height, set.width, set.num_classes),
            (3, 4, 4, 2)
        );
        assert_eq!(set.normalization, Normalization::imagenet());
        // a.png (sorted first) is exactly red; x.png exactly blue; b.JPEG roughly red.
        assert!(set.image(0)[..16].iter().all(|&p| p == 200));
        assert!(set.image(0)[16..].iter().all(|&p| p == 0));
        assert!(set.image(1)[..16].iter().all(|&p| p.abs_diff(200) < 8));
        assert!(set.image(2)[32..].iter().all(|&p| p == 200));
        assert!(set.check().is_ok());
    }

    #[test]
    fn class_count_mismatch_and_missing_root() {
        let dir = tempfile::tempdir().unwrap();
        make_class_tree(dir.path());
        let opts = FolderOptions {
            expected_classes: Some(3),
            ..small_opts()
        };
        let e = load_class_folders(dir.path(), &opts).unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::Unexpected {
                    what: "number of class folders",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("expected 3, found 2"), "{e}");
        let e = load_class_folders(dir.path().join("nope"), &small_opts()).unwrap_err();
        assert!(matches!(e, DatasetError::MissingPath { .. }), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = load_class_folders(empty.path(), &small_opts()).unwrap_err();
        assert!(e.to_string().contains("no class folders"), "{e}");
    }

    #[test]
    fn empty_class_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        make_class_tree(dir.path());
        std::fs::create_dir(dir.path().join("n03")).unwrap();
        let e = load_class_folders(dir.path(), &small_opts()).unwrap_err();
        assert!(
            matches!(&e, DatasetError::MissingPath { path, .. } if path.ends_with("n03")),
            "{e}"
        );
    }

    #[test]
    fn unreadable_image_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        make_class_tree(dir.path());
        std::fs::write(
            dir.path().join("n02").join("broken.jpg"),
            b"\xff\xd8\xff\xe0 not really",
        )
        .unwrap();
        let e = load_class_folders(dir.path(), &small_opts()).unwrap_err();
        assert!(
            matches!(&e, DatasetError::BadImage { path, .. } if path.ends_with("n02/broken.jpg")),
            "{e}"
        );
        assert!(e.to_string().contains("broken.jpg"), "{e}");
    }

    #[test]
    fn unsupported_file_in_class_folder() {
        let dir = tempfile::tempdir().unwrap();
        make_class_tree(dir.path());
        std::fs::write(dir.path().join("n01").join("notes.txt"), "x").unwrap();
        let e = load_class_folders(dir.path(), &small_opts()).unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
    }

    #[test]
    fn max_per_class_takes_the_first_files() {
        let dir = tempfile::tempdir().unwrap();
        make_class_tree(dir.path());
        let opts = FolderOptions {
            max_per_class: Some(1),
            ..small_opts()
        };
        let set = load_class_folders(dir.path(), &opts).unwrap();
        assert_eq!(set.labels, vec![0, 1]);
        // n01's first file in sorted order is a.png (exactly red).
        assert!(set.image(0)[..16].iter().all(|&p| p == 200));
        let labels = dir.path().join("l.txt");
        std::fs::write(&labels, "n02/x.png 1\nn01/b.JPEG 0\nn01/a.png 0\n").unwrap();
        let set = load_labelled_folder(dir.path(), &labels, 2, &opts).unwrap();
        assert_eq!(set.labels, vec![1, 0]);
        assert!(set.image(1)[..16].iter().all(|&p| p.abs_diff(200) < 8));
    }

    fn make_flat(dir: &Path) {
        save(&solid(9, 9, [10, 20, 30]), &dir.join("v1.png"));
        save(&solid(12, 9, [40, 50, 60]), &dir.join("v 2.png"));
    }

    #[test]
    fn labelled_folder_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        make_flat(dir.path());
        let labels = dir.path().join("labels.txt");
        std::fs::write(&labels, "# file label\nv 2.png 7\n\nv1.png\t0\n").unwrap();
        let set = load_labelled_folder(dir.path(), &labels, 10, &small_opts()).unwrap();
        assert_eq!(set.labels, vec![7, 0]);
        assert_eq!(set.num_classes, 10);
        assert!(set.image(0)[..16].iter().all(|&p| p == 40));
        assert!(set.image(1)[32..].iter().all(|&p| p == 30));
    }

    fn labels_err(content: &str, num_classes: usize) -> DatasetError {
        let dir = tempfile::tempdir().unwrap();
        make_flat(dir.path());
        let labels = dir.path().join("val_labels.txt");
        std::fs::write(&labels, content).unwrap();
        load_labelled_folder(dir.path(), &labels, num_classes, &small_opts()).unwrap_err()
    }

    #[test]
    fn bad_label_lines_name_their_line() {
        for (content, line, needle) in [
            ("v1.png 0\nv 2.png x\n", 2, "label `x`"),
            ("v1.png 0\n\nlonely\n", 3, "expected `<file name> <label>`"),
            ("v1.png 10\n", 1, "out of range"),
            ("v1.png 1\nv1.png 2\n", 2, "already listed on line 1"),
            ("v1.png -1\n", 1, "non-negative"),
        ] {
            let e = labels_err(content, 10);
            match &e {
                DatasetError::BadLine { line: l, .. } => assert_eq!(*l, line, "{e}"),
                _ => panic!("expected BadLine, got {e}"),
            }
            let msg = e.to_string();
            assert!(msg.contains(&format!("val_labels.txt:{line}:")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
        assert!(
            labels_err("# nothing\n", 10)
                .to_string()
                .contains("no `<file name> <label>` line")
        );
    }

    #[test]
    fn missing_listed_image() {
        let e = labels_err("v1.png 0\nv3.png 1\n", 10);
        assert!(
            matches!(&e, DatasetError::MissingPath { path, .. } if path.ends_with("v3.png")),
            "{e}"
        );
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn bad_options() {
        let e = preprocess_image(
            "/x.png",
            &FolderOptions {
                resize_shorter: 4,
                crop: 8,
                ..FolderOptions::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("crop 8"), "{e}");
    }
}
