//! A generated detection set in KITTI's own format (`kitti-synth`), for running the whole
//! detection path on a machine without the KITTI download.
//!
//! Each image is 8-bit grayscale, [`SYNTH_HEIGHT`] x [`SYNTH_WIDTH`] (128 x 384, KITTI's aspect
//! ratio about 1:3), written as `training/image_2/NNNNNN.png` with its
//! `training/label_2/NNNNNN.txt` of full 15-field label lines. Everything is drawn from ChaCha8
//! seeded with `(seed, image index)`, so a given source set, seed and count give the same bytes
//! on every run, whatever the number of threads.
//!
//! **Content.** A textured background (a bilinear value-noise field, a vertical gradient and
//! per-pixel noise, at most [`MAX_BACKGROUND`]) and 1 to 6 Fashion-MNIST items, each cropped to
//! its tight box and resized so that its box is 18 to 90 pixels high (20 % below 25, 35 % from
//! 25 to 39, 45 % from 40 to 90, so that every KITTI difficulty level occurs). Items map to
//! KITTI types by their Fashion-MNIST class:
//!
//! | type             | Fashion-MNIST classes                        | drawn            |
//! |------------------|----------------------------------------------|------------------|
//! | `Car`            | 8 Bag                                        | as is            |
//! | `Van`            | 8 Bag                                        | 1.5 x taller     |
//! | `Pedestrian`     | 1 Trouser, 3 Dress                           | as is            |
//! | `Person_sitting` | 1 Trouser, 3 Dress                           | 1.6 x wider      |
//! | `Cyclist`        | 5 Sandal, 7 Sneaker, 9 Ankle boot            | as is            |
//! | `Misc`           | 0 T-shirt, 2 Pullover, 4 Coat, 6 Shirt       | as is            |
//!
//! Wide bags, tall garments and footwear are the three evaluated classes; the tops, which look
//! like dresses and bags, are `Misc` distractors (false positives for every class). `Van` and
//! `Person_sitting` are the evaluated classes' items at another aspect ratio, so the
//! evaluation's neighbouring-class rule (a Van neither counts nor penalises for Car) is
//! exercised. Types are drawn with probabilities Car 34 %, Pedestrian 25 %, Cyclist 20 %,
//! Misc 10 %, Van 6 %, Person_sitting 5 %.
//!
//! **Geometry and fields.** Objects are placed on a ground plane (box bottom about
//! `50 + 0.8 * height` rows, so small objects are far and higher up) and pasted from far to
//! near: a pixel of an item at least [`ITEM_THRESHOLD`] replaces the image, a fainter one is
//! max-blended. The 2D box is the tight box of those pixels (edges on pixel boundaries: a box
//! covering only row 0 is 0..1), clipped to the image. One object in five is cut by the left or
//! right border: `truncated` is the fraction of its box area outside the image (5 % to 60 % of
//! its width). `occluded` comes from the pixels of the object that later (nearer) objects
//! cover: 0 below 10 %, 1 below 40 %, 2 otherwise; a placement covering an earlier object by
//! more than 80 % is tried again elsewhere (up to 8 times, else the object is left out). About a
//! third of the images get a `DontCare` region (a blurred, noisy small item where no object is)
//! with KITTI's `DontCare -1 -1 -10 l t r b -1 -1 -1 -1000 -1000 -1000 -10` line. The 3D fields,
//! unused by 2D evaluation, are finite and plausible: per-type dimensions (height, width,
//! length in metres, e.g. a Car 1.5 1.6 3.9), a location from the box through a pinhole camera
//! with focal length [`FOCAL_PX`] (KITTI's 721 px scaled to 128 rows), `rotation_y` one of
//! -1.5, -1, ..., 1.5, and `alpha = rotation_y` (the viewing-ray correction is not modelled).
//!
//! **Source split.** The generator draws from one given source set: the caller passes
//! Fashion-MNIST's training images for the whole generated set, whose train/validation split is
//! then made by image ([`crate::kitti::split_ids`]); items may recur across the two parts, as
//! a car model recurs across KITTI's drives.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{DatasetError, Result};
use crate::kitti::layout::{IMAGE_DIR, LABEL_DIR, TRAINING_DIR, image_path, label_path};
use crate::kitti::object::{EVAL_CLASSES, ObjectType};
use crate::set::ImageSet;
use crate::split::below;

/// Height of a generated image in pixels.
pub const SYNTH_HEIGHT: u32 = 128;
/// Width of a generated image in pixels.
pub const SYNTH_WIDTH: u32 = 384;
/// The brightest background pixel (items reach 255).
pub const MAX_BACKGROUND: u8 = 110;
/// An item pixel at least this bright belongs to the item (its box, its occlusion mask) and
/// replaces what is below it.
pub const ITEM_THRESHOLD: u8 = 24;
/// Focal length in pixels of the pinhole camera the 3D fields assume.
pub const FOCAL_PX: f32 = 246.0;
/// The most images [`generate`] writes (ids have six digits).
pub const MAX_IMAGES: usize = 1_000_000;

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SynthSummary {
    /// Number of images.
    pub images: usize,
    /// Objects of each type (`DontCare` regions included), indexed like [`ObjectType::ALL`].
    pub per_type: [usize; 9],
    /// Objects of the evaluated classes by the easiest KITTI difficulty level they belong to:
    /// easy, moderate, hard, none (under 25 px high, or more than 50 % truncated).
    pub difficulty: [usize; 4],
    /// Objects of the evaluated classes by box height: at least 40, 25 to 40, under 25 px.
    pub heights: [usize; 3],
    /// Objects (not `DontCare`) with `truncated > 0`.
    pub truncated: usize,
    /// Objects (not `DontCare`) with `occluded` 0, 1 and 2.
    pub occluded: [usize; 3],
}

impl SynthSummary {
    fn add(&mut self, o: &SynthObject) {
        let t = ObjectType::ALL
            .iter()
            .position(|&k| k == o.kind)
            .unwrap_or(0);
        self.per_type[t] += 1;
        if o.kind == ObjectType::DontCare {
            return;
        }
        self.truncated += usize::from(o.truncated > 0.0);
        self.occluded[usize::from(o.occluded.min(2))] += 1;
        if EVAL_CLASSES.contains(&o.kind) {
            self.difficulty[difficulty(o.height(), o.occluded, o.truncated)] += 1;
            let h = o.height();
            self.heights[if h >= 40.0 {
                0
            } else if h >= 25.0 {
                1
            } else {
                2
            }] += 1;
        }
    }
}

/// The easiest KITTI difficulty level (0 easy, 1 moderate, 2 hard) an object of box height `h`
/// belongs to, or 3 for none, with the devkit's thresholds: minimum height 40 / 25 / 25 px,
/// maximum occlusion 0 / 1 / 2, maximum truncation 0.15 / 0.3 / 0.5.
fn difficulty(h: f32, occluded: u8, truncated: f32) -> usize {
    const MIN_H: [f32; 3] = [40.0, 25.0, 25.0];
    const MAX_OCC: [u8; 3] = [0, 1, 2];
    const MAX_TRUNC: [f32; 3] = [0.15, 0.3, 0.5];
    (0..3)
        .find(|&l| h >= MIN_H[l] && occluded <= MAX_OCC[l] && truncated <= MAX_TRUNC[l])
        .unwrap_or(3)
}

/// One object of a generated image, as its label line states it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SynthObject {
    kind: ObjectType,
    /// Rounded to two decimals, as written.
    truncated: f32,
    occluded: u8,
    /// Left, top, right, bottom: whole pixels.
    bbox: [i32; 4],
    rotation_y: f32,
}

impl SynthObject {
    fn height(&self) -> f32 {
        (self.bbox[3] - self.bbox[1]) as f32
    }

    /// The object's 15-field label line.
    fn line(&self) -> String {
        let [l, t, r, b] = self.bbox.map(|v| v as f32);
        if self.kind == ObjectType::DontCare {
            return format!(
                "DontCare -1 -1 -10 {l:.2} {t:.2} {r:.2} {b:.2} -1 -1 -1 -1000 -1000 -1000 -10\n"
            );
        }
        let [dh, dw, dl] = dimensions(self.kind);
        let z = (FOCAL_PX * dh / (b - t).max(1.0)).min(120.0);
        let x = ((l + r) / 2.0 - SYNTH_WIDTH as f32 / 2.0) * z / FOCAL_PX;
        let y = (b - SYNTH_HEIGHT as f32 / 2.0) * z / FOCAL_PX;
        format!(
            "{} {:.2} {} {:.2} {l:.2} {t:.2} {r:.2} {b:.2} {dh:.2} {dw:.2} {dl:.2} {x:.2} {y:.2} {z:.2} {:.2}\n",
            self.kind.name(),
            self.truncated,
            self.occluded,
            self.rotation_y,
            self.rotation_y,
        )
    }
}

/// Typical 3D size (height, width, length in metres) of each type.
fn dimensions(kind: ObjectType) -> [f32; 3] {
    match kind {
        ObjectType::Car => [1.5, 1.6, 3.9],
        ObjectType::Van => [2.2, 1.9, 5.0],
        ObjectType::Truck => [3.3, 2.5, 10.0],
        ObjectType::Pedestrian => [1.75, 0.6, 0.8],
        ObjectType::PersonSitting => [1.25, 0.6, 0.8],
        ObjectType::Cyclist => [1.7, 0.6, 1.8],
        ObjectType::Tram => [3.5, 2.6, 16.0],
        ObjectType::Misc | ObjectType::DontCare => [1.5, 1.0, 1.5],
    }
}

/// Types in drawing order with their probability in thousandths, the Fashion-MNIST classes they
/// take items from, and the factors applied to the item's width and height.
const TYPES: [(ObjectType, u32, &[u16], f32, f32); 6] = [
    (ObjectType::Car, 340, &[8], 1.0, 1.0),
    (ObjectType::Pedestrian, 250, &[1, 3], 1.0, 1.0),
    (ObjectType::Cyclist, 200, &[5, 7, 9], 1.0, 1.0),
    (ObjectType::Misc, 100, &[0, 2, 4, 6], 1.0, 1.0),
    (ObjectType::Van, 60, &[8], 1.0, 1.5),
    (ObjectType::PersonSitting, 50, &[1, 3], 1.6, 1.0),
];

/// Fashion-MNIST's class names, for error messages.
const FASHION_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The source images of each Fashion-MNIST class.
struct Pools<'a> {
    source: &'a ImageSet,
    by_class: Vec<Vec<usize>>,
}

impl Pools<'_> {
    fn item(&self, rng: &mut ChaCha8Rng, classes: &[u16]) -> &[u8] {
        let n: usize = classes
            .iter()
            .map(|&c| self.by_class[usize::from(c)].len())
            .sum();
        let mut k = below(rng, n as u64) as usize;
        for &c in classes {
            let pool = &self.by_class[usize::from(c)];
            if k < pool.len() {
                return self.source.image(pool[k]);
            }
            k -= pool.len();
        }
        self.source.image(self.by_class[usize::from(classes[0])][0])
    }
}

/// Generates `count` images into `<out_root>/training/{image_2,label_2}` from the items of
/// `source` (Fashion-MNIST: one channel, labels 0..9; see the module documentation for the
/// class mapping and what is drawn), with `seed`. Files are written with
/// `qbench_io::write_atomic` into a temporary folder inside `out_root`, which replaces
/// `<out_root>/training` only once every file is written: an interrupted run leaves the old set
/// (or none), never half of one. Images are drawn and encoded in parallel (rayon);
/// `progress(n)` is called from worker threads with the number of images written so far.
pub fn generate(
    source: &ImageSet,
    out_root: &Path,
    count: usize,
    seed: u64,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<SynthSummary> {
    let unsupported = |message: String| DatasetError::Unsupported {
        dataset: "kitti-synth".into(),
        message,
    };
    if count == 0 || count > MAX_IMAGES {
        return Err(unsupported(format!(
            "cannot generate {count} images: 1 to {MAX_IMAGES}"
        )));
    }
    if source.channels != 1 || source.height == 0 || source.width == 0 {
        return Err(unsupported(format!(
            "the source set must hold one-channel (Fashion-MNIST) images, found {}x{}x{}",
            source.channels, source.height, source.width
        )));
    }
    if let Err(problem) = source.check() {
        return Err(unsupported(format!(
            "the source set is inconsistent: {problem}"
        )));
    }
    let mut by_class = vec![Vec::new(); FASHION_NAMES.len()];
    for (i, &l) in source.labels.iter().enumerate() {
        if let Some(pool) = by_class.get_mut(usize::from(l)) {
            pool.push(i);
        }
    }
    if let Some(c) = by_class.iter().position(Vec::is_empty) {
        return Err(unsupported(format!(
            "the source set has no image of Fashion-MNIST class {c} ({})",
            FASHION_NAMES[c]
        )));
    }
    let pools = Pools { source, by_class };

    std::fs::create_dir_all(out_root)
        .map_err(|e| DatasetError::io(out_root, "create directory", e))?;
    let staging = tempfile::Builder::new()
        .prefix(".qbench-generate-")
        .tempdir_in(out_root)
        .map_err(|e| DatasetError::io(out_root, "create a temporary folder in", e))?;
    let split = staging.path().join(TRAINING_DIR);
    for sub in [IMAGE_DIR, LABEL_DIR] {
        let d = split.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| DatasetError::io(&d, "create directory", e))?;
    }
    let done = AtomicUsize::new(0);
    let per_image: Vec<Result<Vec<SynthObject>>> = (0..count)
        .into_par_iter()
        .map(|i| {
            let (pixels, objects) = draw(&pools, seed, i as u64);
            let id = format!("{i:06}");
            let png = encode_png(&pixels).map_err(|message| DatasetError::BadImage {
                path: image_path(&split, &id),
                message,
            })?;
            qbench_io::write_atomic(image_path(&split, &id), png)?;
            let text: String = objects.iter().map(SynthObject::line).collect();
            qbench_io::write_atomic(label_path(&split, &id), text)?;
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok(objects)
        })
        .collect();
    let mut summary = SynthSummary {
        images: count,
        ..SynthSummary::default()
    };
    for objects in per_image {
        for o in &objects? {
            summary.add(o);
        }
    }
    let target = out_root.join(TRAINING_DIR);
    if std::fs::symlink_metadata(&target).is_ok() {
        let old = staging.path().join("replaced");
        std::fs::rename(&target, &old).map_err(|e| DatasetError::io(&target, "move aside", e))?;
    }
    std::fs::rename(&split, &target)
        .map_err(|e| DatasetError::io(&target, "move into place", e))?;
    Ok(summary)
}

fn encode_png(pixels: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut png = Vec::with_capacity(pixels.len());
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, PngFilter::Adaptive)
        .write_image(pixels, SYNTH_WIDTH, SYNTH_HEIGHT, ExtendedColorType::L8)
        .map_err(|e| e.to_string())?;
    Ok(png)
}

/// A uniform integer in `lo..=hi` (`lo <= hi`).
fn between(rng: &mut ChaCha8Rng, lo: i32, hi: i32) -> i32 {
    lo + below(rng, (hi - lo) as u64 + 1) as i32
}

/// An item resized for pasting, with the tight box of its pixels >= [`ITEM_THRESHOLD`].
struct Patch {
    img: GrayImage,
    /// Tight box in patch pixels: left, top, right, bottom (exclusive).
    tight: [i32; 4],
}

/// The tight box of the pixels >= [`ITEM_THRESHOLD`] of a `w`-wide image, if any.
fn tight_box(pixels: &[u8], w: usize) -> Option<[i32; 4]> {
    let mut b = [i32::MAX, i32::MAX, i32::MIN, i32::MIN];
    for (i, &p) in pixels.iter().enumerate() {
        if p >= ITEM_THRESHOLD {
            let (x, y) = ((i % w) as i32, (i / w) as i32);
            b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
        }
    }
    (b[0] < b[2]).then_some(b)
}

/// `item` (a source image) cropped to its tight box and resized so that the box is `height`
/// pixels high (times `fy`) and keeps its aspect ratio (times `fx / fy`).
fn make_patch(item: &[u8], w: usize, height: i32, fx: f32, fy: f32) -> Option<Patch> {
    let [x0, y0, x1, y1] = tight_box(item, w)?;
    let (cw, ch) = ((x1 - x0) as u32, (y1 - y0) as u32);
    let crop = GrayImage::from_fn(cw, ch, |x, y| {
        Luma([item[(y0 as usize + y as usize) * w + x0 as usize + x as usize]])
    });
    let s = height as f32 * fy / ch as f32;
    let pw = ((cw as f32 * s * fx / fy).round() as u32).clamp(1, SYNTH_WIDTH / 2);
    let ph = ((height as f32 * fy).round() as u32).clamp(1, SYNTH_HEIGHT - 8);
    let img = image::imageops::resize(&crop, pw, ph, FilterType::Triangle);
    let tight = tight_box(img.as_raw(), pw as usize)?;
    Some(Patch { img, tight })
}

/// One placed object while an image is drawn.
struct Placed {
    kind: ObjectType,
    /// Unclipped tight box in image pixels.
    full: [i32; 4],
    /// Its mask pixels inside the image, and how many of them no later object covers.
    total: usize,
    visible: usize,
    rotation_y: f32,
}

/// Draws image `index`: its pixels (row-major, [`SYNTH_WIDTH`] x [`SYNTH_HEIGHT`]) and its
/// objects, in label-file order.
fn draw(pools: &Pools<'_>, seed: u64, index: u64) -> (Vec<u8>, Vec<SynthObject>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let (w, h) = (SYNTH_WIDTH as i32, SYNTH_HEIGHT as i32);
    let mut px = background(&mut rng);
    // Draw the objects' types, items and sizes, then paste from far (small) to near (large).
    let n = between(&mut rng, 1, 6);
    let mut wanted = Vec::new();
    for _ in 0..n {
        let r = below(&mut rng, 1000) as u32;
        let mut acc = 0;
        let &(kind, _, classes, fx, fy) = TYPES
            .iter()
            .find(|t| {
                acc += t.1;
                r < acc
            })
            .unwrap_or(&TYPES[0]);
        let height = match below(&mut rng, 100) {
            0..20 => between(&mut rng, 18, 24),
            20..55 => between(&mut rng, 25, 39),
            _ => between(&mut rng, 40, 90),
        };
        let item = pools.item(&mut rng, classes);
        let truncate = below(&mut rng, 5) == 0;
        let rotation_y = (between(&mut rng, 0, 6) - 3) as f32 * 0.5;
        wanted.push((height, kind, item, fx, fy, truncate, rotation_y));
    }
    wanted.sort_by_key(|t| t.0);
    let mut owner = vec![0u8; (w * h) as usize];
    let mut placed: Vec<Placed> = Vec::new();
    for (height, kind, item, fx, fy, truncate, rotation_y) in wanted {
        let Some(patch) = make_patch(item, pools.source.width, height, fx, fy) else {
            continue;
        };
        let [tx0, ty0, tx1, ty1] = patch.tight;
        let tw = tx1 - tx0;
        let pw = patch.img.width() as i32;
        for _attempt in 0..8 {
            let x = if truncate {
                let out = (tw * between(&mut rng, 5, 60) + 50) / 100;
                if below(&mut rng, 2) == 0 {
                    -out - tx0
                } else {
                    w + out - tx1
                }
            } else {
                between(&mut rng, -tx0, (w - tx1).max(-tx0))
            };
            let bottom = 50 + height * 4 / 5 + between(&mut rng, -8, 8);
            let y = (bottom - ty1).clamp(-ty0, (h - ty1).max(-ty0));
            // The mask pixels inside the image, and how many of each earlier object's they cover.
            let mut mask = Vec::new();
            let mut lost = vec![0usize; placed.len()];
            for (i, &p) in patch.img.as_raw().iter().enumerate() {
                let (ix, iy) = (x + (i as i32 % pw), y + (i as i32 / pw));
                if p >= ITEM_THRESHOLD && (0..w).contains(&ix) && (0..h).contains(&iy) {
                    let at = (iy * w + ix) as usize;
                    if let Some(o) = usize::from(owner[at]).checked_sub(1) {
                        lost[o] += 1;
                    }
                    mask.push(at);
                }
            }
            let ok = !mask.is_empty()
                && placed
                    .iter()
                    .zip(&lost)
                    .all(|(p, &l)| (p.visible - l) * 5 >= p.total);
            if !ok {
                continue;
            }
            for (p, l) in placed.iter_mut().zip(&lost) {
                p.visible -= l;
            }
            for (i, &p) in patch.img.as_raw().iter().enumerate() {
                let (ix, iy) = (x + (i as i32 % pw), y + (i as i32 / pw));
                if (0..w).contains(&ix) && (0..h).contains(&iy) {
                    let at = (iy * w + ix) as usize;
                    px[at] = if p >= ITEM_THRESHOLD {
                        p
                    } else {
                        px[at].max(p)
                    };
                }
            }
            let id = placed.len() as u8 + 1;
            for &at in &mask {
                owner[at] = id;
            }
            placed.push(Placed {
                kind,
                full: [x + tx0, y + ty0, x + tx1, y + ty1],
                total: mask.len(),
                visible: mask.len(),
                rotation_y,
            });
            break;
        }
    }
    let mut objects: Vec<SynthObject> = placed
        .iter()
        .map(|p| {
            let [x0, y0, x1, y1] = p.full;
            let c = [x0.max(0), y0.max(0), x1.min(w), y1.min(h)];
            let area = |b: [i32; 4]| ((b[2] - b[0]).max(0) * (b[3] - b[1]).max(0)) as f32;
            let truncated = 1.0 - area(c) / area(p.full).max(1.0);
            let covered = 1.0 - p.visible as f32 / p.total.max(1) as f32;
            SynthObject {
                kind: p.kind,
                truncated: (truncated * 100.0).round() / 100.0,
                occluded: if covered < 0.1 {
                    0
                } else if covered < 0.4 {
                    1
                } else {
                    2
                },
                bbox: c,
                rotation_y: p.rotation_y,
            }
        })
        .collect();
    // DontCare regions: a blurred, noisy small item away from every object.
    let regions = match below(&mut rng, 20) {
        0..13 => 0,
        13..19 => 1,
        _ => 2,
    };
    for _ in 0..regions {
        let (rw, rh) = (between(&mut rng, 16, 48), between(&mut rng, 12, 30));
        let item = pools.item(&mut rng, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        for _attempt in 0..8 {
            let (x, y) = (
                between(&mut rng, 0, w - rw),
                between(&mut rng, 25, 70 - rh / 2),
            );
            let b = [x, y, x + rw, y + rh];
            let overlaps = |o: &[i32; 4]| o[0] < b[2] && b[0] < o[2] && o[1] < b[3] && b[1] < o[3];
            if objects.iter().any(|o| overlaps(&o.bbox)) {
                continue;
            }
            blob(&mut px, &mut rng, item, pools.source.width, b);
            objects.push(SynthObject {
                kind: ObjectType::DontCare,
                truncated: -1.0,
                occluded: 0,
                bbox: b,
                rotation_y: -10.0,
            });
            break;
        }
    }
    (px, objects)
}

/// The background: a bilinear value-noise field over a 16-pixel grid, brighter towards the
/// bottom, plus per-pixel noise; at most [`MAX_BACKGROUND`]. Integer arithmetic only.
fn background(rng: &mut ChaCha8Rng) -> Vec<u8> {
    const CELL: usize = 16;
    let (w, h) = (SYNTH_WIDTH as usize, SYNTH_HEIGHT as usize);
    let (gw, gh) = (w / CELL + 1, h / CELL + 1);
    let grid: Vec<i32> = (0..gw * gh).map(|_| 10 + below(rng, 51) as i32).collect();
    let mut px = vec![0u8; w * h];
    let mut noise = [0u8; 8];
    for (i, p) in px.iter_mut().enumerate() {
        if i % 8 == 0 {
            noise = rng.next_u64().to_le_bytes();
        }
        let (x, y) = (i % w, i / w);
        let (cx, cy, fx, fy) = (x / CELL, y / CELL, (x % CELL) as i32, (y % CELL) as i32);
        let g = |gx: usize, gy: usize| grid[gy * gw + gx];
        let top = g(cx, cy) * (16 - fx) + g(cx + 1, cy) * fx;
        let bottom = g(cx, cy + 1) * (16 - fx) + g(cx + 1, cy + 1) * fx;
        let field = (top * (16 - fy) + bottom * fy) / 256;
        let gradient = (y * 40 / h) as i32;
        let grain = ((i32::from(noise[i % 8]) * 21) >> 8) - 10;
        *p = (field + gradient + grain).clamp(0, i32::from(MAX_BACKGROUND)) as u8;
    }
    px
}

/// Paints a blurred item (shrunk to a quarter, then enlarged) with noise into box `b`.
fn blob(px: &mut [u8], rng: &mut ChaCha8Rng, item: &[u8], item_w: usize, b: [i32; 4]) {
    let item_h = item.len() / item_w.max(1);
    let src = GrayImage::from_fn(item_w as u32, item_h as u32, |x, y| {
        Luma([item[y as usize * item_w + x as usize]])
    });
    let (rw, rh) = ((b[2] - b[0]) as u32, (b[3] - b[1]) as u32);
    let small =
        image::imageops::resize(&src, (rw / 4).max(2), (rh / 4).max(2), FilterType::Triangle);
    let blurred = image::imageops::resize(&small, rw, rh, FilterType::Triangle);
    for (x, y, p) in blurred.enumerate_pixels() {
        let at = (b[1] as usize + y as usize) * SYNTH_WIDTH as usize + b[0] as usize + x as usize;
        let grain = below(rng, 40) as u16;
        let v = (u16::from(p.0[0]) * 3 / 4 + grain).min(255) as u8;
        px[at] = px[at].max(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_levels_follow_the_devkit() {
        assert_eq!(difficulty(40.0, 0, 0.15), 0);
        assert_eq!(difficulty(39.0, 0, 0.0), 1);
        assert_eq!(difficulty(60.0, 1, 0.0), 1);
        assert_eq!(difficulty(60.0, 0, 0.3), 1);
        assert_eq!(difficulty(25.0, 2, 0.0), 2);
        assert_eq!(difficulty(60.0, 0, 0.5), 2);
        assert_eq!(difficulty(24.0, 0, 0.0), 3);
        assert_eq!(difficulty(60.0, 0, 0.51), 3);
    }

    #[test]
    fn label_lines_have_fifteen_fields() {
        let o = SynthObject {
            kind: ObjectType::PersonSitting,
            truncated: 0.25,
            occluded: 1,
            bbox: [10, 20, 30, 60],
            rotation_y: -0.5,
        };
        let line = o.line();
        assert!(
            line.starts_with("Person_sitting 0.25 1 -0.50 10.00 20.00 30.00 60.00 1.25 0.60 0.80 "),
            "{line}"
        );
        assert_eq!(line.split_whitespace().count(), 15);
        let d = SynthObject {
            kind: ObjectType::DontCare,
            ..o
        };
        assert_eq!(
            d.line(),
            "DontCare -1 -1 -10 10.00 20.00 30.00 60.00 -1 -1 -1 -1000 -1000 -1000 -10\n"
        );
    }
}
