//! What a model is trained for: the one definition of the training targets and the loss that
//! every training loop (float training, DJQ fine-tuning, quantization-aware training, BNN/QNN
//! training) uses, chosen by the architecture's [`Head`].
//!
//! A classifier learns cross-entropy on its logits. A detector ([`Head::Detector`]) learns
//! CenterNet's objective on its maps: a penalty-reduced focal loss on per-class centre heatmaps
//! whose targets are Gaussians around each object's centre cell (peak exactly 1 there), and an
//! L1 loss on the four box channels at the centre cells only, both divided by the number of
//! objects.

use candle_core::{DType, Device, Tensor};
use qbench_datasets::{GtBox, ImageSet};

use crate::error::{MethodError, Result};
use crate::model::arch::{Architecture, BOX_CHANNELS, DetectorGrid, Head};

/// The training objective of one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Cross-entropy on class logits.
    Classify,
    /// CenterNet's focal + L1 loss on a detector's maps.
    Detect(DetectorGrid),
}

/// The targets of one batch, in the form [`Objective::loss`] takes.
pub enum Targets {
    /// Class labels, u32 `[N]`.
    Labels(Tensor),
    /// A detector's dense targets.
    Maps {
        /// Heatmap targets `[N, classes, rows, cols]`: 1 at each object's centre cell, a
        /// Gaussian of the object's size around it.
        heat: Tensor,
        /// 1 at the centre cells, `[N, classes, rows, cols]`.
        centres: Tensor,
        /// 0 at cells whose centre lies in an ignored region ([`GtBox::IGNORE`]) and is no
        /// object's centre cell, else 1: weight of the heatmap's background term, `[N, 1, rows,
        /// cols]`.
        background: Tensor,
        /// Box targets at the centre cells, `[N, 4, rows, cols]` (0 elsewhere).
        boxes: Tensor,
        /// 1 at cells holding a box target, `[N, 1, rows, cols]`.
        box_mask: Tensor,
        /// Objects in the batch.
        objects: usize,
    },
}

/// Smallest Gaussian spread of a heatmap target, in cells: a small object still marks its
/// neighbours as "near", so the focal loss does not push them to confident background.
const MIN_SIGMA_CELLS: f32 = 0.3;
/// TTFNet's ratio between an object's size and its Gaussian's spread (`sigma = ALPHA * size / 6`).
const GAUSSIAN_ALPHA: f32 = 0.54;

impl Objective {
    /// The objective `arch`'s head asks for.
    pub fn of(arch: &Architecture) -> Objective {
        match (arch.head, arch.detector_grid()) {
            (Head::Detector { .. }, Some(grid)) => Objective::Detect(grid),
            _ => Objective::Classify,
        }
    }

    /// The targets of the images at `indices` of `set`. A detector needs a detection set (one
    /// box list per image).
    pub fn targets(&self, set: &ImageSet, indices: &[usize]) -> Result<Targets> {
        match self {
            Objective::Classify => {
                let labels: Vec<u32> = indices.iter().map(|&i| u32::from(set.labels[i])).collect();
                Ok(Targets::Labels(Tensor::from_vec(
                    labels,
                    indices.len(),
                    &Device::Cpu,
                )?))
            }
            Objective::Detect(grid) => {
                if set.boxes.len() != set.len() {
                    return Err(MethodError::Config(format!(
                        "a detector trains on a detection set (object boxes for each image); this \
                         set has boxes for {} of its {} images",
                        set.boxes.len(),
                        set.len()
                    )));
                }
                let per: Vec<&[GtBox]> = indices.iter().map(|&i| set.boxes[i].as_slice()).collect();
                encode(grid, &per)
            }
        }
    }

    /// The batch's mean loss for the model's flat outputs `out` (`[N, outputs]`).
    pub fn loss(&self, out: &Tensor, targets: &Targets) -> Result<Tensor> {
        match (self, targets) {
            (Objective::Classify, Targets::Labels(y)) => {
                Ok(candle_nn::loss::cross_entropy(out, y)?)
            }
            (
                Objective::Detect(grid),
                Targets::Maps {
                    heat,
                    centres,
                    background,
                    boxes,
                    box_mask,
                    objects,
                },
            ) => {
                let n = out.dim(0)?;
                let maps = out.reshape((n, grid.channels(), grid.rows, grid.cols))?;
                let logits = maps.narrow(1, 0, grid.classes)?;
                let pred_boxes = maps.narrow(1, grid.classes, BOX_CHANNELS)?;
                let norm = (*objects).max(1) as f64;
                let focal = focal_loss(&logits, heat, centres, background)?;
                let l1 = (pred_boxes - boxes)?
                    .abs()?
                    .broadcast_mul(box_mask)?
                    .sum_all()?;
                Ok(((focal + l1)? / norm)?)
            }
            _ => Err(MethodError::Config(
                "training targets do not match the model's head".into(),
            )),
        }
    }

    /// What a progress bar counts as right in a batch, out of how many: images whose arg-max is
    /// their label, or objects whose centre cell's heatmap logit for their class is positive.
    pub fn hits(&self, out: &Tensor, targets: &Targets) -> Result<(usize, usize)> {
        match (self, targets) {
            (Objective::Classify, Targets::Labels(y)) => {
                let right = out
                    .argmax(1)?
                    .eq(y)?
                    .to_dtype(DType::U32)?
                    .sum_all()?
                    .to_scalar::<u32>()?;
                Ok((right as usize, y.dim(0)?))
            }
            (
                Objective::Detect(grid),
                Targets::Maps {
                    centres, objects, ..
                },
            ) => {
                let n = out.dim(0)?;
                let logits = out
                    .reshape((n, grid.channels(), grid.rows, grid.cols))?
                    .narrow(1, 0, grid.classes)?;
                let found = logits
                    .gt(0f32)?
                    .to_dtype(DType::F32)?
                    .mul(centres)?
                    .sum_all()?
                    .to_scalar::<f32>()?;
                Ok((found as usize, *objects))
            }
            _ => Err(MethodError::Config(
                "training targets do not match the model's head".into(),
            )),
        }
    }
}

/// `-sum(pos * (1-p)^2 * log p + (1-pos) * bg * (1-Y)^4 * p^2 * log(1-p))` with
/// `p = sigmoid(x)`, `log p = -softplus(-x)` and `log(1-p) = -softplus(x)` computed stably.
fn focal_loss(
    logits: &Tensor,
    heat: &Tensor,
    centres: &Tensor,
    background: &Tensor,
) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?;
    let log_p = softplus(&logits.neg()?)?.neg()?;
    let log_not_p = softplus(logits)?.neg()?;
    let one_minus_p = p.affine(-1.0, 1.0)?;
    let pos = (centres * one_minus_p.sqr()?)?.mul(&log_p)?;
    let not_centre = centres.affine(-1.0, 1.0)?.broadcast_mul(background)?;
    let reduce = heat.affine(-1.0, 1.0)?.sqr()?.sqr()?;
    let neg = (not_centre * reduce)?.mul(&p.sqr()?)?.mul(&log_not_p)?;
    Ok((pos + neg)?.sum_all()?.neg()?)
}

/// `log(1 + e^x) = max(x, 0) + log(1 + e^-|x|)`, finite for any x.
fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}

/// The cell holding point `(x, y)` (input pixels), clamped to the grid.
pub fn cell_of(grid: &DetectorGrid, x: f32, y: f32) -> (usize, usize) {
    let s = grid.stride as f32;
    let clamp = |v: f32, n: usize| (v / s).floor().clamp(0.0, (n - 1) as f32) as usize;
    (clamp(y, grid.rows), clamp(x, grid.cols))
}

/// Dense targets of a batch whose images hold `boxes` (input pixels).
fn encode(grid: &DetectorGrid, boxes: &[&[GtBox]]) -> Result<Targets> {
    let (rows, cols, classes) = (grid.rows, grid.cols, grid.classes);
    let cells = rows * cols;
    let n = boxes.len();
    let mut heat = vec![0f32; n * classes * cells];
    let mut centres = vec![0f32; n * classes * cells];
    let mut box_t = vec![0f32; n * BOX_CHANNELS * cells];
    let mut box_mask = vec![0f32; n * cells];
    let mut background = vec![1f32; n * cells];
    let mut objects = 0;
    let s = grid.stride as f32;
    for (img, list) in boxes.iter().enumerate() {
        for b in list.iter().filter(|b| b.is_ignore()) {
            for r in 0..rows {
                let y = (r as f32 + 0.5) * s;
                for c in 0..cols {
                    let x = (c as f32 + 0.5) * s;
                    if (b.x0..b.x1).contains(&x) && (b.y0..b.y1).contains(&y) {
                        background[img * cells + r * cols + c] = 0.0;
                    }
                }
            }
        }
        for b in list.iter().filter(|b| !b.is_ignore()) {
            let class = usize::from(b.class);
            let (w, h) = ((b.x1 - b.x0) / s, (b.y1 - b.y0) / s);
            if class >= classes || w <= 0.0 || h <= 0.0 {
                continue;
            }
            objects += 1;
            let (cx, cy) = ((b.x0 + b.x1) / (2.0 * s), (b.y0 + b.y1) / (2.0 * s));
            let (gy, gx) = cell_of(grid, cx * s, cy * s);
            let (sx, sy) = (
                (GAUSSIAN_ALPHA * w / 6.0).max(MIN_SIGMA_CELLS),
                (GAUSSIAN_ALPHA * h / 6.0).max(MIN_SIGMA_CELLS),
            );
            let plane = (img * classes + class) * cells;
            for r in 0..rows {
                let dy = (r as f32 + 0.5 - cy) / sy;
                for c in 0..cols {
                    let dx = (c as f32 + 0.5 - cx) / sx;
                    let g = (-(dx * dx + dy * dy) / 2.0).exp();
                    let v = &mut heat[plane + r * cols + c];
                    *v = v.max(g);
                }
            }
            heat[plane + gy * cols + gx] = 1.0;
            centres[plane + gy * cols + gx] = 1.0;
            let at = gy * cols + gx;
            let target = [
                cx - (gx as f32 + 0.5),
                cy - (gy as f32 + 0.5),
                w.ln(),
                h.ln(),
            ];
            for (k, t) in target.into_iter().enumerate() {
                box_t[(img * BOX_CHANNELS + k) * cells + at] = t;
            }
            box_mask[img * cells + at] = 1.0;
        }
    }
    let dev = &Device::Cpu;
    Ok(Targets::Maps {
        heat: Tensor::from_vec(heat, (n, classes, rows, cols), dev)?,
        centres: Tensor::from_vec(centres, (n, classes, rows, cols), dev)?,
        background: Tensor::from_vec(background, (n, 1, rows, cols), dev)?,
        boxes: Tensor::from_vec(box_t, (n, BOX_CHANNELS, rows, cols), dev)?,
        box_mask: Tensor::from_vec(box_mask, (n, 1, rows, cols), dev)?,
        objects,
    })
}
