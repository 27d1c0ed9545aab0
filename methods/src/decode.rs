//! Detections from a detector's output maps: the one decoding that the float model, the integer
//! engine's outputs and every fake-quant forward go through, so a difference in detections is a
//! difference in maps and never in post-processing.
//!
//! A cell is a candidate for class `k` when its heatmap logit is the largest of its 3x3
//! neighbourhood (CenterNet's peak rule; ties keep every tied cell) and its score
//! `sigmoid(logit)` reaches [`Decode::score_threshold`]. Its box comes from the four box channels
//! (see [`crate::model::arch::Head::Detector`]). Boxes of one class then go through greedy
//! non-maximum suppression, and the best [`Decode::max_detections`] of the image are kept.

/// One detected object: the KITTI evaluation's own type, with its box in the model input's
/// pixel coordinates and `sigmoid` of the heatmap logit as its score.
pub use qbench_datasets::kitti::eval::Detection;

use crate::model::arch::DetectorGrid;

/// Post-processing settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decode {
    /// Lowest score kept.
    pub score_threshold: f32,
    /// Boxes of one class overlapping a better one by more than this IoU are dropped.
    pub nms_iou: f32,
    /// Most detections kept per image.
    pub max_detections: usize,
}

impl Default for Decode {
    /// KITTI-style settings: every box down to score 0.05 (AP integrates over all of them),
    /// NMS at IoU 0.5, at most 100 per image.
    fn default() -> Self {
        Decode {
            score_threshold: 0.05,
            nms_iou: 0.5,
            max_detections: 100,
        }
    }
}

/// Log-size channels are clamped to this range (cells) before `exp`, so an untrained or
/// wrapped output never yields an infinite box.
const LOG_SIZE_RANGE: (f32, f32) = (-4.0, 6.0);

impl Decode {
    /// Detections of one image from its flat maps (`grid.outputs()` real values, C,H,W order).
    ///
    /// # Panics
    /// If `maps` is shorter than `grid.outputs()`.
    pub fn image(&self, grid: &DetectorGrid, maps: &[f32]) -> Vec<Detection> {
        let (rows, cols) = (grid.rows, grid.cols);
        let cells = grid.cells();
        let s = grid.stride as f32;
        let at = |ch: usize, r: usize, c: usize| maps[ch * cells + r * cols + c];
        let logit_threshold = (self.score_threshold / (1.0 - self.score_threshold)).ln();
        let mut out = Vec::new();
        for class in 0..grid.classes {
            let mut candidates = Vec::new();
            for r in 0..rows {
                for c in 0..cols {
                    let v = at(class, r, c);
                    if v < logit_threshold || !is_peak(&at, class, r, c, rows, cols) {
                        continue;
                    }
                    let b = |k: usize| at(grid.classes + k, r, c);
                    let (lo, hi) = LOG_SIZE_RANGE;
                    let cx = (c as f32 + 0.5 + b(0)) * s;
                    let cy = (r as f32 + 0.5 + b(1)) * s;
                    let w = b(2).clamp(lo, hi).exp() * s;
                    let h = b(3).clamp(lo, hi).exp() * s;
                    candidates.push(Detection {
                        class,
                        bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                        score: sigmoid(v),
                    });
                }
            }
            out.extend(nms(candidates, self.nms_iou));
        }
        // Stable: equal scores keep class-then-cell order, so decoding is deterministic.
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(self.max_detections);
        out
    }

    /// Detections of one image from integer maps whose unit is worth `scale`.
    pub fn image_int(&self, grid: &DetectorGrid, maps: &[i32], scale: f64) -> Vec<Detection> {
        let real: Vec<f32> = maps
            .iter()
            .map(|&v| (f64::from(v) * scale) as f32)
            .collect();
        self.image(grid, &real)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn is_peak(
    at: &impl Fn(usize, usize, usize) -> f32,
    ch: usize,
    r: usize,
    c: usize,
    rows: usize,
    cols: usize,
) -> bool {
    let v = at(ch, r, c);
    for rr in r.saturating_sub(1)..(r + 2).min(rows) {
        for cc in c.saturating_sub(1)..(c + 2).min(cols) {
            if at(ch, rr, cc) > v {
                return false;
            }
        }
    }
    true
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |x: &[f32; 4]| (x[2] - x[0]).max(0.0) * (x[3] - x[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Greedy NMS: best score first, dropping boxes that overlap a kept one by more than `threshold`.
fn nms(mut boxes: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for b in boxes {
        if kept.iter().all(|k| iou(&k.bbox, &b.bbox) <= threshold) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> DetectorGrid {
        DetectorGrid {
            classes: 2,
            stride: 8,
            rows: 3,
            cols: 4,
        }
    }

    /// Maps with every heatmap logit at -10 and boxes of log size 0 (one cell).
    fn empty_maps(g: &DetectorGrid) -> Vec<f32> {
        let mut m = vec![0f32; g.outputs()];
        m[..g.classes * g.cells()].fill(-10.0);
        m
    }

    #[test]
    fn a_peak_becomes_its_box_and_its_neighbours_do_not() {
        let g = grid();
        let mut m = empty_maps(&g);
        let cells = g.cells();
        // Class 1 peak at row 1, col 2 (logit 2), a weaker neighbour at col 3 (logit 1).
        m[cells + 4 + 2] = 2.0;
        m[cells + 4 + 3] = 1.0;
        // Its box: offset (+0.25, -0.5) cells, width e^1 cells, height 1 cell.
        let at = |ch: usize| (g.classes + ch) * cells + 4 + 2;
        m[at(0)] = 0.25;
        m[at(1)] = -0.5;
        m[at(2)] = 1.0;
        let d = Decode::default().image(&g, &m);
        assert_eq!(d.len(), 1, "{d:?}");
        let (cx, cy, w) = (
            (2.0 + 0.5 + 0.25) * 8.0,
            (1.0 + 0.5 - 0.5) * 8.0,
            1f32.exp() * 8.0,
        );
        assert_eq!(d[0].class, 1);
        assert!((d[0].score - sigmoid(2.0)).abs() < 1e-6);
        let want = [cx - w / 2.0, cy - 4.0, cx + w / 2.0, cy + 4.0];
        for (a, b) in d[0].bbox.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{:?} vs {want:?}", d[0].bbox);
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_keep_the_best_and_other_classes_stay() {
        let g = grid();
        let mut m = empty_maps(&g);
        let cells = g.cells();
        // Two class-0 peaks two columns apart whose boxes (width e^2 cells) overlap heavily.
        m[0] = 3.0;
        m[2] = 2.0;
        for cell in [0, 2] {
            m[(g.classes + 2) * cells + cell] = 2.0;
        }
        // A class-1 peak at the same cell as the weaker one.
        m[cells + 2] = 1.5;
        let d = Decode::default().image(&g, &m);
        let classes: Vec<usize> = d.iter().map(|x| x.class).collect();
        assert_eq!(classes, vec![0, 1], "{d:?}");
        assert!((d[0].score - sigmoid(3.0)).abs() < 1e-6);
    }

    #[test]
    fn scores_below_the_threshold_and_wild_sizes_are_handled() {
        let g = grid();
        let mut m = empty_maps(&g);
        m[5] = -3.0; // sigmoid 0.047 < 0.05
        assert!(Decode::default().image(&g, &m).is_empty());
        m[5] = 0.0;
        m[(g.classes + 2) * g.cells() + 5] = 1e9;
        let d = Decode::default().image(&g, &m);
        assert!(d[0].bbox.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn integer_maps_decode_as_their_real_values() {
        let g = grid();
        let real = {
            let mut m = empty_maps(&g);
            m[3] = 1.5;
            m
        };
        let ints: Vec<i32> = real.iter().map(|v| (v * 4.0) as i32).collect();
        assert_eq!(
            Decode::default().image_int(&g, &ints, 0.25),
            Decode::default().image(&g, &real)
        );
    }
}
