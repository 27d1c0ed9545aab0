//! Loading KITTI object images, letterboxed to a model input, with their objects.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::{DatasetError, Result};
use crate::kitti::label::read_labels;
use crate::kitti::layout::{TRAINING_DIR, image_path, label_path};
use crate::kitti::letterbox::{Letterbox, PAD_VALUE, check_input, read_letterboxed_into};
use crate::kitti::object::{EVAL_CLASSES, Object, ObjectType};
use crate::set::{GtBox, ImageSet, Normalization};

/// The most pixel bytes [`load`] allocates: 4 GiB (KITTI's 7481 training images at
/// `[3, 96, 320]` take 0.69 GB, at `[3, 375, 1242]` 10.5 GB, refused).
pub const MAX_LOAD_BYTES: usize = 4 << 30;

/// KITTI object images and their labels, as a detector consumes and an evaluator scores them.
#[derive(Debug, Clone, PartialEq)]
pub struct KittiSet {
    /// The images letterboxed to the requested `[c, h, w]` (u8 NCHW), labels all 0,
    /// `num_classes` 3 (the [`EVAL_CLASSES`]), identity normalization, and `boxes`: the objects
    /// of the evaluated classes (class index into [`EVAL_CLASSES`]) mapped into input pixels;
    /// `Van`, `Person_sitting`, `DontCare` and the other types are left out, and so is a box
    /// with no area inside the image.
    pub images: ImageSet,
    /// Every object of each image (all types, `DontCare` included), in source pixels, as its
    /// label file lists them: what the evaluation compares detections with.
    pub objects: Vec<Vec<Object>>,
    /// Where each source image sits in the input: maps detections back to source pixels.
    pub letterbox: Vec<Letterbox>,
    /// The image ids, in the order of the images.
    pub ids: Vec<String>,
}

impl KittiSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Loads the images `ids` of `<root>/training` (see [`crate::kitti::image_ids`]), in that
/// order, letterboxed to `input = [c, h, w]` (`c` 1 or 3). See [`load_split_dir`].
pub fn load(
    root: &Path,
    ids: &[String],
    input: [usize; 3],
    progress: &(dyn Fn(usize) + Sync),
) -> Result<KittiSet> {
    load_split_dir(&root.join(TRAINING_DIR), ids, input, progress)
}

/// [`load`] from a split folder holding `image_2` and `label_2`. Decodes in parallel (rayon);
/// the result is in the order of `ids` whatever the threads do, and the first failing image in
/// that order is the one reported. `progress(n)` is called, from worker threads, with the number
/// of images done so far. Fails, before decoding anything, when the pixels would take more than
/// [`MAX_LOAD_BYTES`], when `input` is not `[1 or 3, h > 0, w > 0]`, or when an id's image or
/// label file is missing; then with the file of any image that does not decode or any label
/// line that does not parse.
pub fn load_split_dir(
    split_dir: &Path,
    ids: &[String],
    input: [usize; 3],
    progress: &(dyn Fn(usize) + Sync),
) -> Result<KittiSet> {
    check_input(split_dir, input)?;
    let [c, h, w] = input;
    let per_image = c * h * w;
    let too_big = || DatasetError::Unexpected {
        path: split_dir.to_path_buf(),
        what: "memory for the letterboxed images",
        expected: format!("at most {MAX_LOAD_BYTES} bytes (load fewer ids at a time)"),
        found: format!(
            "{} images x {c} x {h} x {w} bytes = {:.2} GB",
            ids.len(),
            ids.len() as f64 * per_image as f64 / 1e9
        ),
    };
    let total = ids
        .len()
        .checked_mul(per_image)
        .filter(|&t| t <= MAX_LOAD_BYTES)
        .ok_or_else(too_big)?;
    for id in ids {
        for path in [image_path(split_dir, id), label_path(split_dir, id)] {
            if !path.is_file() {
                return Err(DatasetError::MissingPath {
                    path,
                    message: format!("needed for KITTI image {id}"),
                });
            }
        }
    }
    let mut pixels = Vec::new();
    pixels.try_reserve_exact(total).map_err(|_| too_big())?;
    pixels.resize(total, PAD_VALUE);
    let done = AtomicUsize::new(0);
    let per: Vec<Result<(Letterbox, Vec<Object>)>> = pixels
        .par_chunks_mut(per_image.max(1))
        .zip(ids.par_iter())
        .map(|(out, id)| {
            let lb = read_letterboxed_into(&image_path(split_dir, id), input, out)?;
            let objects = read_labels(&label_path(split_dir, id))?;
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok((lb, objects))
        })
        .collect();
    let mut letterbox = Vec::with_capacity(ids.len());
    let mut objects = Vec::with_capacity(ids.len());
    let mut boxes = Vec::with_capacity(ids.len());
    for r in per {
        let (lb, objs) = r?;
        boxes.push(input_boxes(&objs, &lb));
        letterbox.push(lb);
        objects.push(objs);
    }
    let images = ImageSet {
        images: pixels,
        labels: vec![0; ids.len()],
        channels: c,
        height: h,
        width: w,
        num_classes: EVAL_CLASSES.len(),
        normalization: Normalization::identity(c),
        boxes,
    };
    Ok(KittiSet {
        images,
        objects,
        letterbox,
        ids: ids.to_vec(),
    })
}

/// The objects of the evaluated classes, in input pixels (boxes ordered so that `x0 <= x1` and
/// `y0 <= y1`), and the regions the evaluation ignores (DontCare, Van, Person_sitting) as
/// [`GtBox::IGNORE`]; a box left with no area once clipped to the image is dropped.
fn input_boxes(objects: &[Object], lb: &Letterbox) -> Vec<GtBox> {
    objects
        .iter()
        .filter_map(|o| {
            let class = match EVAL_CLASSES.iter().position(|&t| t == o.kind) {
                Some(c) => c as u16,
                None if matches!(
                    o.kind,
                    ObjectType::DontCare | ObjectType::Van | ObjectType::PersonSitting
                ) =>
                {
                    GtBox::IGNORE
                }
                None => return None,
            };
            let [a, b, c, d] = lb.to_input(o.bbox);
            let g = GtBox {
                class,
                x0: a.min(c),
                y0: b.min(d),
                x1: a.max(c),
                y1: b.max(d),
            };
            (g.x1 > g.x0 && g.y1 > g.y0).then_some(g)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kitti::layout::{IMAGE_DIR, LABEL_DIR};
    use image::{GrayImage, Luma};

    fn write_pair(split: &Path, id: &str, label: &str) {
        std::fs::create_dir_all(split.join(IMAGE_DIR)).unwrap();
        std::fs::create_dir_all(split.join(LABEL_DIR)).unwrap();
        GrayImage::from_fn(40, 20, |x, _| Luma([if x < 20 { 0 } else { 255 }]))
            .save(image_path(split, id))
            .unwrap();
        std::fs::write(label_path(split, id), label).unwrap();
    }

    const LABEL: &str = "\
Car 0.00 0 1.5 20.00 0.00 40.00 10.00 1.5 1.6 3.9 1.0 1.6 20.0 1.57
Van 0.00 0 1.5 0.00 0.00 10.00 10.00 2.2 1.9 5.0 1.0 1.6 20.0 1.57
DontCare -1 -1 -10 0.00 10.00 5.00 20.00 -1 -1 -1 -1000 -1000 -1000 -10
Cyclist 0.50 2 0.0 30.00 5.00 50.00 20.00 1.7 0.6 1.8 1.0 1.6 20.0 0.0
";

    #[test]
    fn loads_in_order_with_boxes_in_input_pixels() {
        let root = tempfile::tempdir().unwrap();
        let split = root.path().join(TRAINING_DIR);
        write_pair(&split, "000001", LABEL);
        write_pair(&split, "000000", "");
        let ids = vec!["000001".to_owned(), "000000".to_owned()];
        let calls = AtomicUsize::new(0);
        let set = load(root.path(), &ids, [1, 20, 20], &|_| {
            calls.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(calls.into_inner(), 2);
        assert_eq!(set.ids, ids);
        assert_eq!(set.images.len(), 2);
        assert!(set.images.check().is_ok());
        assert_eq!(set.images.num_classes, 3);
        // 40 x 20 into 20 x 20: scale 0.5, content 20 x 10, pad_y 5.
        assert_eq!((set.letterbox[0].scale, set.letterbox[0].pad_y), (0.5, 5.0));
        assert_eq!(set.objects[0].len(), 4);
        assert!(set.objects[1].is_empty() && set.images.boxes[1].is_empty());
        let boxes = &set.images.boxes[0];
        // Car, the Van and the DontCare region as ignored regions, Cyclist.
        assert_eq!(boxes.len(), 4, "{boxes:?}");
        assert!(boxes[1].is_ignore() && boxes[2].is_ignore() && !boxes[3].is_ignore());
        assert_eq!(
            boxes[0],
            GtBox {
                class: 0,
                x0: 10.0,
                y0: 5.0,
                x1: 20.0,
                y1: 10.0
            }
        );
        // The Cyclist's right edge (50) is clipped to the image (40).
        assert_eq!((boxes[3].class, boxes[3].x1, boxes[3].y1), (2, 20.0, 15.0));
        let img = set.images.image(0);
        assert!(img[..100].iter().all(|&p| p == PAD_VALUE));
        assert_eq!(img[6 * 20 + 19], 255);
    }

    #[test]
    fn missing_file_bad_label_and_memory_bound_are_errors() {
        let root = tempfile::tempdir().unwrap();
        let split = root.path().join(TRAINING_DIR);
        write_pair(&split, "000000", LABEL);
        let ids = vec!["000000".to_owned(), "000003".to_owned()];
        let e = load(root.path(), &ids, [1, 8, 8], &|_| {}).unwrap_err();
        assert!(e.to_string().contains("000003.png"), "{e}");
        write_pair(&split, "000003", "Car 0 0 0 1 2 3\n");
        let e = load(root.path(), &ids, [1, 8, 8], &|_| {}).unwrap_err();
        assert!(e.to_string().contains("000003.txt"), "{e}");
        let many = vec!["000000".to_owned(); 1 << 20];
        let e = load(root.path(), &many, [3, 96, 1440], &|_| {}).unwrap_err();
        assert!(e.to_string().contains("memory"), "{e}");
        let e = load(root.path(), &ids, [4, 8, 8], &|_| {}).unwrap_err();
        assert!(e.to_string().contains("[4, 8, 8]"), "{e}");
    }
}
