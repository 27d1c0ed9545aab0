//! Detection datasets and their scores: a KITTI-format folder read into the harness's `Data`
//! (training part with boxes, evaluation part with every labelled object and its letterbox),
//! the generated default set (`kitti-synth`), and the one way every detector output is scored:
//! decoded by `qbench_methods::decode`, mapped back to the source image, and judged by the
//! official KITTI evaluation (`qbench_datasets::kitti::eval`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use qbench_datasets::kitti::{self, KittiSet, Letterbox, Object, eval};
use qbench_datasets::{DatasetEntry, DatasetError, ImageSet, Split, locate};
use qbench_engine::QGraph;
use qbench_engine::exec::fast::FastExecutor;
use qbench_io::sha256_hex;
use qbench_methods::decode::{Decode, Detection};
use qbench_methods::model::arch::{Architecture, DetectorGrid};
use qbench_methods::model::forward::{Mode, forward};
use qbench_methods::model::params::Params;
use rayon::prelude::*;

use crate::{progress, results};

/// Name of the generated detection set that runs without a download.
pub const SYNTH_NAME: &str = "kitti-synth";
/// Images of the generated set.
pub const SYNTH_IMAGES: usize = 4000;
/// Seed of the generated set.
pub const SYNTH_SEED: u64 = 0;
/// Share of a KITTI folder's labelled images held out for evaluation (KITTI's test labels are
/// not public; the common 3712/3769 split holds out about half, this one a quarter, so the
/// generated set trains on 3000 images and evaluates on 1000).
pub const EVAL_FRACTION: f64 = 0.25;
/// Seed of the evaluation hold-out: fixed, so every seed and method is scored on one set.
pub const EVAL_SPLIT_SEED: u64 = 0;

/// What a detection score needs beyond the evaluation images: each image's labelled objects
/// (source pixels) and how it was letterboxed into the model input.
#[derive(Clone, Debug)]
pub struct Truth {
    /// Every labelled object per evaluation image, in source coordinates.
    pub objects: Vec<Vec<Object>>,
    /// Each evaluation image's letterbox.
    pub letterbox: Vec<Letterbox>,
}

/// A detection dataset split for the harness: training images (with boxes), evaluation images,
/// their truth, and the sha256 identifying the files.
pub struct Loaded {
    /// Training part.
    pub train: ImageSet,
    /// Evaluation part.
    pub test: ImageSet,
    /// The evaluation part's truth.
    pub truth: Truth,
    /// sha256 over every image and label file's sha256, in id order.
    pub sha256: String,
}

/// Where the generated set lives: `$QBENCH_DATA/kitti-synth` when `QBENCH_DATA` is set, else
/// `data/kitti-synth` in the command's results folder.
pub fn synth_dir(entry: &DatasetEntry) -> PathBuf {
    qbench_datasets::data_dir_for(entry)
        .unwrap_or_else(|| results::chosen_root().join("data").join(&entry.name))
}

/// Writes the generated set of `images` images into `dir` from Fashion-MNIST's training images
/// (Debian's `dataset-fashion-mnist`), unless it is already there. Returns the folder.
pub fn generate_synth(dir: &Path, images: usize) -> Result<PathBuf> {
    if dir.join(kitti::TRAINING_DIR).is_dir() {
        return Ok(dir.to_path_buf());
    }
    let source = qbench_datasets::load(qbench_datasets::DEFAULT_DATASET, Split::Train)
        .context("reading Fashion-MNIST, the source of the generated detection set")?;
    let bar = progress::count_bar("generating kitti-synth", images as u64);
    let summary = kitti::generate(&source, dir, images, SYNTH_SEED, &|n| {
        bar.set_position(n as u64)
    })
    .with_context(|| format!("generating the detection set in {}", dir.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "generated {} images of kitti-synth in {}",
        summary.images,
        dir.display()
    );
    Ok(dir.to_path_buf())
}

/// The folder of a detection dataset: where `locate` finds it, or for the generated set its
/// default place (generated there when absent).
fn folder(entry: &DatasetEntry) -> Result<PathBuf> {
    match locate(entry) {
        Ok(dir) => Ok(dir),
        Err(DatasetError::NotFound { .. }) if entry.name == SYNTH_NAME => {
            generate_synth(&synth_dir(entry), SYNTH_IMAGES)
        }
        Err(e) => Err(e.into()),
    }
}

/// Where the common KITTI split lists are looked for, relative to the dataset folder: the
/// training and the evaluation ids (3,712 and 3,769 of the 7,481 labelled images).
pub const SPLIT_FILES: [(&str, &str); 2] = [
    ("ImageSets/train.txt", "ImageSets/val.txt"),
    ("train.txt", "val.txt"),
];

/// The training and evaluation ids of a KITTI-format folder: the split lists of
/// [`SPLIT_FILES`] when the user put them there, else a fixed quarter held out
/// ([`EVAL_FRACTION`], [`EVAL_SPLIT_SEED`]). Also says which.
fn split(root: &Path, ids: &[String]) -> Result<(Vec<String>, Vec<String>, String)> {
    for (train, val) in SPLIT_FILES {
        let (t, v) = (root.join(train), root.join(val));
        if t.is_file() && v.is_file() {
            let train_ids = kitti::read_split_file(&t, ids)?;
            let val_ids = kitti::read_split_file(&v, ids)?;
            if let Some(id) = val_ids.iter().find(|id| train_ids.contains(id)) {
                bail!(
                    "image {id} is listed in both {} and {}",
                    t.display(),
                    v.display()
                );
            }
            let how = format!("the split lists {} and {}", t.display(), v.display());
            return Ok((train_ids, val_ids, how));
        }
    }
    let (train_ids, test_ids) = kitti::split_ids(ids, EVAL_FRACTION, EVAL_SPLIT_SEED);
    let how = format!("a seeded quarter held out (seed {EVAL_SPLIT_SEED})");
    Ok((train_ids, test_ids, how))
}

/// Reads a KITTI-format dataset: the labelled images of its training folder split into a
/// training and an evaluation part (see [`split`]), each letterboxed to the entry's image
/// shape. The hash covers every file read and the split.
pub fn load(entry: &DatasetEntry) -> Result<Loaded> {
    let root = folder(entry)?;
    let split_dir = root.join(kitti::TRAINING_DIR);
    let ids = kitti::image_ids(&root)?;
    if ids.len() < 2 {
        bail!(
            "{} holds {} labelled image(s); a detection set needs a training and an evaluation part",
            split_dir.display(),
            ids.len()
        );
    }
    let (train_ids, test_ids, how) = split(&root, &ids)?;
    eprintln!(
        "{}: {} training and {} evaluation images ({how})",
        entry.name,
        train_ids.len(),
        test_ids.len()
    );
    let sha256 = sha256_hex(
        format!(
            "{}\ntrain {}\neval {}",
            files_sha256(&split_dir, &ids)?,
            train_ids.join(","),
            test_ids.join(",")
        )
        .as_bytes(),
    );
    let bar = progress::count_bar(&format!("reading {}", entry.name), ids.len() as u64);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let tick = |_: usize| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bar.set_position(n as u64 + 1);
    };
    let train: KittiSet = kitti::load(&root, &train_ids, entry.image_shape, &tick)?;
    let test: KittiSet = kitti::load(&root, &test_ids, entry.image_shape, &tick)?;
    bar.finish_and_clear();
    Ok(Loaded {
        train: train.images,
        test: test.images,
        truth: Truth {
            objects: test.objects,
            letterbox: test.letterbox,
        },
        sha256,
    })
}

/// Only the evaluation part of a KITTI-format dataset (the images the hardware step samples).
pub fn load_test(entry: &DatasetEntry) -> Result<ImageSet> {
    let root = folder(entry)?;
    let ids = kitti::image_ids(&root)?;
    let (_, test_ids, _) = split(&root, &ids)?;
    Ok(kitti::load(&root, &test_ids, entry.image_shape, &|_| {})?.images)
}

/// sha256 over `id image-sha256 label-sha256` lines of every labelled image, in id order.
fn files_sha256(split_dir: &Path, ids: &[String]) -> Result<String> {
    let lines: Vec<String> = ids
        .par_iter()
        .map(|id| -> Result<String> {
            let image = qbench_io::sha256_file(kitti::image_path(split_dir, id))?;
            let label = qbench_io::sha256_file(kitti::label_path(split_dir, id))?;
            Ok(format!("{id} {image} {label}"))
        })
        .collect::<Result<_>>()?;
    Ok(sha256_hex(lines.join("\n").as_bytes()))
}

/// Scores per-image detections (input pixels) against `truth`.
pub fn evaluate(detections: &[Vec<Detection>], truth: &Truth) -> eval::Evaluation {
    let mapped: Vec<Vec<Detection>> = detections
        .iter()
        .zip(&truth.letterbox)
        .map(|(dets, lb)| {
            dets.iter()
                .map(|d| Detection {
                    bbox: lb.to_source(d.bbox),
                    ..*d
                })
                .collect()
        })
        .collect();
    eval::evaluate(&truth.objects, &mapped)
}

/// The subset of `truth` for the images at `indices`.
pub fn truth_subset(truth: &Truth, indices: &[usize]) -> Truth {
    Truth {
        objects: indices.iter().map(|&i| truth.objects[i].clone()).collect(),
        letterbox: indices.iter().map(|&i| truth.letterbox[i]).collect(),
    }
}

/// The detector's grid, or an error saying the model is no detector.
pub fn grid(arch: &Architecture) -> Result<DetectorGrid> {
    arch.detector_grid().with_context(|| {
        format!(
            "model `{}` is a classifier; a detection dataset needs a detector such as `detnet`",
            arch.name
        )
    })
}

/// The float model's detections on every image of `set` (evaluation mode).
pub fn float_detections(
    arch: &Architecture,
    params: &mut Params,
    set: &ImageSet,
) -> Result<Vec<Vec<Detection>>> {
    let grid = grid(arch)?;
    let all: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::with_capacity(set.len());
    for chunk in all.chunks(64) {
        let (x, _) = qbench_methods::data::batch(set, chunk)?;
        let maps: Vec<Vec<f32>> = forward(arch, params, &x, Mode::Eval)?.to_vec2()?;
        out.extend(maps.iter().map(|m| Decode::default().image(&grid, m)));
    }
    Ok(out)
}

/// The integer graph's detections on every image of `set`, its maps worth `scale` per unit.
pub fn graph_detections(
    graph: &QGraph,
    grid: &DetectorGrid,
    scale: f64,
    set: &ImageSet,
) -> Result<Vec<Vec<Detection>>> {
    let exec = FastExecutor::new(graph)?;
    let per = set.image_len();
    let mut out = Vec::with_capacity(set.len());
    for start in (0..set.len()).step_by(256) {
        let n = (set.len() - start).min(256);
        let maps = exec.run(&set.images[start * per..(start + n) * per], n)?;
        out.extend((0..n).map(|i| Decode::default().image_int(grid, maps.row(i), scale)));
    }
    Ok(out)
}

/// Detections from real-valued maps, one row of `grid.outputs()` values per image.
pub fn map_detections(grid: &DetectorGrid, maps: &[f64]) -> Vec<Vec<Detection>> {
    maps.chunks(grid.outputs())
        .map(|m| {
            let real: Vec<f32> = m.iter().map(|&v| v as f32).collect();
            Decode::default().image(grid, &real)
        })
        .collect()
}
