//! KITTI's official 2D object evaluation (the devkit's `cpp/evaluate_object.cpp`, image-plane
//! boxes), re-implemented rule for rule.
//!
//! For each class of [`EVAL_CLASSES`] (minimum IoU [`MIN_OVERLAP`]: 0.7 Car, 0.5 Pedestrian and
//! Cyclist) and each [`Difficulty`]:
//!
//! - A ground truth of the class fails the difficulty when its occlusion or truncation exceeds the
//!   level's maximum or its box height is `<=` the minimum (40, 25, 25 px; `<=` as in recent
//!   copies of the devkit and in its Python port, some older copies have `<`). Such a ground
//!   truth, and one of the neighbouring class (Van for Car, Person_sitting for Pedestrian), is
//!   *ignored*: not a miss, and a detection matched to it is neither a true nor a false
//!   positive. Other types play no part.
//! - A detection whose box height, truncated to an integer as the devkit's `int32_t` does, is
//!   below the minimum is ignored (never a false positive, of whatever class: the devkit lets such
//!   a box absorb a ground truth of any class, and so does this module).
//! - An unmatched detection that lies in a `DontCare` region, intersection over the
//!   *detection's* area (`boxoverlap(det, dc, 0)`) above the class's minimum overlap, is ignored.
//! - Score thresholds: per image, each ground truth (in label order) takes the highest-score
//!   unassigned detection with IoU above the minimum (strictly); the scores of the true positives
//!   so found, sorted, are sampled at 41 recall steps (`getThresholds`). At each threshold the
//!   matching is redone among detections scoring at least that much, each ground truth taking
//!   the unassigned valid detection of greatest IoU (an ignored one only when no valid one
//!   overlaps enough); unmatched valid detections are false positives, so a second detection on
//!   a matched ground truth is one. Precision per threshold, then its running maximum from the
//!   right, gives a 41-entry curve (zeros past the last threshold).
//! - AP|R40 is the mean of entries 1..=40 (recall 1/40..1, the official metric since 2019);
//!   AP|R11 the mean of entries 0, 4, ..., 40 (recall 0, 0.1, ..., 1, the earlier metric), as
//!   the devkit's Python port and the benchmark server compute them.
//!
//! Choices where the devkit has none: a cell without one non-ignored ground truth has AP `None`
//! (the devkit prints 0 for it, or nothing for a class never detected); a class with ground
//! truth but no detection has AP 0 (the devkit skips a class no detection names). Boxes and
//! scores are `f32`, overlaps and heights computed in `f64`; truncation is compared in `f32`,
//! which for the two-decimal values of KITTI's files agrees with the devkit's `double`s (0.15 is
//! within Easy). A box height within float rounding of a bound (173.33 to 213.33) may fall on
//! the other side than in the devkit, which subtracts the `double`s of the file's text.

use std::fmt;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::object::{EVAL_CLASSES, Object, ObjectType};

/// Minimum IoU for a match, per class of [`EVAL_CLASSES`] (Car, Pedestrian, Cyclist); also the
/// minimum share of a detection's area inside a `DontCare` region for it to be ignored.
pub const MIN_OVERLAP: [f64; 3] = [0.7, 0.5, 0.5];

/// Points of the sampled precision curve: recall 0, 1/40, ..., 1.
pub const N_SAMPLE_PTS: usize = 41;

/// The devkit's "no detection" score: a detection must score above it to be matched.
const NO_DETECTION: f64 = -10_000_000.0;

/// One detection in one image, as a detector's post-processing gives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Index into [`EVAL_CLASSES`] (0 Car, 1 Pedestrian, 2 Cyclist); any other index is of no
    /// evaluated class.
    pub class: usize,
    /// Box in image pixels: left, top, right, bottom.
    pub bbox: [f32; 4],
    /// Confidence, higher is more confident.
    pub score: f32,
}

impl Detection {
    /// The detection a result-file object describes: `None` when its type is not one of
    /// [`EVAL_CLASSES`] or it has no score.
    pub fn from_object(o: &Object) -> Option<Detection> {
        let class = EVAL_CLASSES.iter().position(|&t| t == o.kind)?;
        Some(Detection {
            class,
            bbox: o.bbox,
            score: o.score?,
        })
    }
}

/// KITTI's difficulty levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Difficulty {
    /// Box height > 40 px, fully visible, truncation <= 0.15.
    Easy,
    /// Box height > 25 px, at most partly occluded, truncation <= 0.30.
    Moderate,
    /// Box height > 25 px, at most largely occluded, truncation <= 0.50.
    Hard,
}

impl Difficulty {
    /// The three levels, in the order of [`Evaluation::cells`]' inner index.
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Moderate, Difficulty::Hard];

    /// The level's name: `Easy`, `Moderate`, `Hard`.
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "Easy",
            Difficulty::Moderate => "Moderate",
            Difficulty::Hard => "Hard",
        }
    }

    /// Minimum box height in pixels (`MIN_HEIGHT`): a ground truth at or below it is ignored, a
    /// detection whose integer height is below it too.
    pub fn min_height(self) -> f64 {
        [40.0, 25.0, 25.0][self as usize]
    }

    /// Largest occlusion level a counted ground truth may have (`MAX_OCCLUSION`).
    pub fn max_occlusion(self) -> i8 {
        [0, 1, 2][self as usize]
    }

    /// Largest truncation a counted ground truth may have (`MAX_TRUNCATION`).
    pub fn max_truncation(self) -> f32 {
        [0.15, 0.30, 0.50][self as usize]
    }
}

/// The result for one class at one difficulty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// AP over 40 recall points (1/40..1), in 0..=1; `None` without ground truth.
    pub ap_r40: Option<f64>,
    /// AP over 11 recall points (0, 0.1, ..., 1), in 0..=1; `None` without ground truth.
    pub ap_r11: Option<f64>,
    /// Ground truths that count (the recall denominator).
    pub ground_truths: usize,
    /// Ground truths of the class or its neighbour that this difficulty ignores.
    pub ignored_ground_truths: usize,
    /// Detections of the class that count at this difficulty (tall enough).
    pub detections: usize,
    /// The devkit's interpolated precision at its 41 score thresholds (recall about i/40);
    /// empty without ground truth.
    pub precision: Vec<f64>,
}

/// KITTI 2D AP for every class and difficulty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Number of images evaluated.
    pub images: usize,
    /// `cells[class][difficulty]`: class indexes [`EVAL_CLASSES`], difficulty
    /// [`Difficulty::ALL`].
    pub cells: [[CellResult; 3]; 3],
}

impl Evaluation {
    /// The result for `class` (index into [`EVAL_CLASSES`]) at `difficulty`.
    ///
    /// # Panics
    /// If `class` is not below 3.
    pub fn cell(&self, class: usize, difficulty: Difficulty) -> &CellResult {
        &self.cells[class][difficulty as usize]
    }

    /// Mean AP|R40 at `difficulty` over the classes that have ground truth there; `None` when
    /// none has.
    pub fn mean_ap_r40(&self, difficulty: Difficulty) -> Option<f64> {
        mean(self.cells.iter().map(|c| c[difficulty as usize].ap_r40))
    }

    /// Mean AP|R11 at `difficulty` over the classes that have ground truth there; `None` when
    /// none has.
    pub fn mean_ap_r11(&self, difficulty: Difficulty) -> Option<f64> {
        mean(self.cells.iter().map(|c| c[difficulty as usize].ap_r11))
    }

    /// The headline number: mean AP|R40 at Moderate over the classes with Moderate ground truth
    /// (classes without any are left out, not counted as 0), in 0..=1; NaN when no class has any.
    pub fn mean_ap_moderate(&self) -> f64 {
        self.mean_ap_r40(Difficulty::Moderate).unwrap_or(f64::NAN)
    }

    /// A markdown table: a row per class and one for the mean, columns Easy/Moderate/Hard with
    /// AP|R40 in percent and AP|R11 in parentheses, then a note line explaining both and the
    /// ground-truth counts.
    pub fn to_markdown(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2}", 100.0 * v));
        let mut s = String::from("| Class | Easy | Moderate | Hard |\n|---|---:|---:|---:|\n");
        for (c, class) in EVAL_CLASSES.iter().enumerate() {
            s.push_str(&format!("| {} |", class.name()));
            for cell in &self.cells[c] {
                s.push_str(&format!(" {} ({}) |", pct(cell.ap_r40), pct(cell.ap_r11)));
            }
            s.push('\n');
        }
        s.push_str("| Mean |");
        for d in Difficulty::ALL {
            s.push_str(&format!(
                " {} ({}) |",
                pct(self.mean_ap_r40(d)),
                pct(self.mean_ap_r11(d))
            ));
        }
        s.push('\n');
        let counts: Vec<String> = EVAL_CLASSES
            .iter()
            .enumerate()
            .map(|(c, class)| {
                let n: Vec<String> = self.cells[c]
                    .iter()
                    .map(|cell| cell.ground_truths.to_string())
                    .collect();
                format!("{} {}", class.name(), n.join("/"))
            })
            .collect();
        s.push_str(&format!(
            "\nKITTI 2D AP in % over {} images: AP|R40 (40 recall points, official since 2019), \
             in parentheses AP|R11 (11 points, 0 to 1). Mean over the classes with ground truth; \
             n/a: no ground truth. Ground truths (Easy/Moderate/Hard): {}.\n",
            self.images,
            counts.join(", ")
        ));
        s
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_markdown())
    }
}

/// Mean of the present values, `None` when there are none.
fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let present: Vec<f64> = values.flatten().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// Evaluates `detections` against `ground_truth` (label-file objects, `DontCare` included), one
/// entry per image in the same order.
///
/// # Panics
/// If the two slices differ in length (a caller bug: the devkit asserts the same).
pub fn evaluate(ground_truth: &[Vec<Object>], detections: &[Vec<Detection>]) -> Evaluation {
    assert_eq!(
        ground_truth.len(),
        detections.len(),
        "one detection list per ground-truth image"
    );
    let cells: Vec<CellResult> = (0..9)
        .into_par_iter()
        .map(|k| evaluate_cell(k / 3, Difficulty::ALL[k % 3], ground_truth, detections))
        .collect();
    let mut it = cells.into_iter();
    let mut row = || -> [CellResult; 3] {
        std::array::from_fn(|_| it.next().expect("nine cells were computed"))
    };
    let cells = [row(), row(), row()];
    Evaluation {
        images: ground_truth.len(),
        cells,
    }
}

/// A box as the devkit holds it: `f64` left, top, right, bottom.
type Box2 = [f64; 4];

fn to_f64(b: [f32; 4]) -> Box2 {
    b.map(f64::from)
}

/// The devkit's `imageBoxOverlap(a, b, criterion)` for criterion -1 (`over_a == false`: IoU)
/// and 0 (`over_a == true`: intersection over the area of `a`).
fn box_overlap(a: &Box2, b: &Box2, over_a: bool) -> f64 {
    let w = a[2].min(b[2]) - a[0].max(b[0]);
    let h = a[3].min(b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let a_area = (a[2] - a[0]) * (a[3] - a[1]);
    if over_a {
        inter / a_area
    } else {
        let b_area = (b[2] - b[0]) * (b[3] - b[1]);
        inter / (a_area + b_area - inter)
    }
}

/// Whether ground truth of type `kind` is the neighbouring class of evaluated class `class`.
fn is_neighbour(class: usize, kind: ObjectType) -> bool {
    matches!(
        (EVAL_CLASSES[class], kind),
        (ObjectType::Car, ObjectType::Van) | (ObjectType::Pedestrian, ObjectType::PersonSitting)
    )
}

/// One detection taking part in a cell's evaluation.
struct Det {
    score: f64,
    /// Too small for the difficulty (`ignored_det == 1`).
    ignored: bool,
    /// Inside a `DontCare` region by the devkit's criterion.
    in_dont_care: bool,
}

/// One image's ground truths and detections of one class at one difficulty, with the
/// (detection, IoU) pairs above the minimum overlap per ground truth.
struct ImageCell {
    /// Per ground truth of the class or its neighbour, in label order: whether it is ignored.
    gt_ignored: Vec<bool>,
    /// Per ground truth: the detections (indices into `dets`, ascending) overlapping it enough.
    candidates: Vec<Vec<(usize, f64)>>,
    dets: Vec<Det>,
}

/// The devkit's `cleanData` for one image, plus the overlaps its `computeStatistics` needs.
fn clean_image(
    class: usize,
    difficulty: Difficulty,
    gt: &[Object],
    det: &[Detection],
) -> ImageCell {
    let min_overlap = MIN_OVERLAP[class];
    let mut gt_boxes = Vec::new();
    let mut gt_ignored = Vec::new();
    for g in gt {
        let valid = g.kind == EVAL_CLASSES[class];
        if !valid && !is_neighbour(class, g.kind) {
            continue;
        }
        let b = to_f64(g.bbox);
        let fails = g.occluded > difficulty.max_occlusion()
            || g.truncated > difficulty.max_truncation()
            || b[3] - b[1] <= difficulty.min_height();
        gt_boxes.push(b);
        gt_ignored.push(!valid || fails);
    }
    let dont_care: Vec<Box2> = gt
        .iter()
        .filter(|g| g.kind == ObjectType::DontCare)
        .map(|g| to_f64(g.bbox))
        .collect();
    let mut det_boxes = Vec::new();
    let mut dets = Vec::new();
    for d in det {
        let b = to_f64(d.bbox);
        // `int32_t height = fabs(y1 - y2)`: truncated towards zero.
        let small = (b[1] - b[3]).abs().trunc() < difficulty.min_height();
        if !small && d.class != class {
            continue;
        }
        let in_dont_care = dont_care
            .iter()
            .any(|dc| box_overlap(&b, dc, true) > min_overlap);
        det_boxes.push(b);
        dets.push(Det {
            score: f64::from(d.score),
            ignored: small,
            in_dont_care,
        });
    }
    let candidates = gt_boxes
        .iter()
        .map(|g| {
            det_boxes
                .iter()
                .enumerate()
                .filter_map(|(j, d)| {
                    let o = box_overlap(d, g, false);
                    (o > min_overlap).then_some((j, o))
                })
                .collect()
        })
        .collect();
    ImageCell {
        gt_ignored,
        candidates,
        dets,
    }
}

impl ImageCell {
    /// `computeStatistics` without false positives: appends the true positives' scores to `tp`.
    fn true_positive_scores(&self, assigned: &mut Vec<bool>, tp: &mut Vec<f64>) {
        assigned.clear();
        assigned.resize(self.dets.len(), false);
        for (i, cands) in self.candidates.iter().enumerate() {
            let mut best = None;
            let mut best_score = NO_DETECTION;
            for &(j, _) in cands {
                if !assigned[j] && self.dets[j].score > best_score {
                    best = Some(j);
                    best_score = self.dets[j].score;
                }
            }
            if let Some(j) = best {
                assigned[j] = true;
                if !self.gt_ignored[i] && !self.dets[j].ignored {
                    tp.push(best_score);
                }
            }
        }
    }

    /// `computeStatistics` with false positives at score threshold `thresh`: (TP, FP).
    fn statistics(&self, thresh: f64, assigned: &mut Vec<bool>) -> (u64, u64) {
        assigned.clear();
        assigned.resize(self.dets.len(), false);
        let below = |j: usize| self.dets[j].score < thresh;
        let mut tp = 0;
        for (i, cands) in self.candidates.iter().enumerate() {
            let mut chosen = None;
            let mut max_overlap = 0.0;
            let mut chose_ignored = false;
            for &(j, overlap) in cands {
                if assigned[j] || below(j) {
                    continue;
                }
                if !self.dets[j].ignored && (overlap > max_overlap || chose_ignored) {
                    max_overlap = overlap;
                    chosen = Some(j);
                    chose_ignored = false;
                } else if chosen.is_none() && self.dets[j].ignored {
                    chosen = Some(j);
                    chose_ignored = true;
                }
            }
            if let Some(j) = chosen {
                assigned[j] = true;
                if !self.gt_ignored[i] && !self.dets[j].ignored {
                    tp += 1;
                }
            }
        }
        let fp = (0..self.dets.len())
            .filter(|&j| {
                let d = &self.dets[j];
                !(assigned[j] || d.ignored || below(j) || d.in_dont_care)
            })
            .count() as u64;
        (tp, fp)
    }
}

/// The devkit's `getThresholds`: scores of the true positives at 41 evenly spaced recall steps.
fn thresholds(mut scores: Vec<f64>, n_gt: usize) -> Vec<f64> {
    scores.sort_by(|a, b| b.total_cmp(a));
    let n = n_gt as f64;
    let last = scores.len().saturating_sub(1);
    let mut out = Vec::new();
    let mut current_recall = 0.0;
    for (i, &score) in scores.iter().enumerate() {
        let l_recall = (i + 1) as f64 / n;
        let r_recall = if i < last {
            (i + 2) as f64 / n
        } else {
            l_recall
        };
        if (r_recall - current_recall) < (current_recall - l_recall) && i < last {
            continue;
        }
        out.push(score);
        current_recall += 1.0 / (N_SAMPLE_PTS as f64 - 1.0);
    }
    out
}

/// `eval_class` for one class and difficulty, then AP|R40 and AP|R11 from its curve.
fn evaluate_cell(
    class: usize,
    difficulty: Difficulty,
    ground_truth: &[Vec<Object>],
    detections: &[Vec<Detection>],
) -> CellResult {
    let images: Vec<ImageCell> = ground_truth
        .iter()
        .zip(detections)
        .map(|(g, d)| clean_image(class, difficulty, g, d))
        .filter(|im| !im.gt_ignored.is_empty() || im.dets.iter().any(|d| !d.ignored))
        .collect();
    let n_gt = images
        .iter()
        .map(|im| im.gt_ignored.iter().filter(|&&ig| !ig).count())
        .sum::<usize>();
    let ignored_ground_truths = images
        .iter()
        .map(|im| im.gt_ignored.iter().filter(|&&ig| ig).count())
        .sum::<usize>();
    let n_det = images
        .iter()
        .map(|im| im.dets.iter().filter(|d| !d.ignored).count())
        .sum::<usize>();
    let mut result = CellResult {
        ap_r40: None,
        ap_r11: None,
        ground_truths: n_gt,
        ignored_ground_truths,
        detections: n_det,
        precision: Vec::new(),
    };
    if n_gt == 0 {
        return result;
    }
    let mut assigned = Vec::new();
    let mut tp_scores = Vec::new();
    for im in &images {
        im.true_positive_scores(&mut assigned, &mut tp_scores);
    }
    let mut thresh = thresholds(tp_scores, n_gt);
    // Cannot exceed 41 (see `getThresholds`); the devkit would write past its array if it did.
    thresh.truncate(N_SAMPLE_PTS);
    let mut tp = vec![0u64; thresh.len()];
    let mut fp = vec![0u64; thresh.len()];
    for im in &images {
        for (t, &th) in thresh.iter().enumerate() {
            let (a, b) = im.statistics(th, &mut assigned);
            tp[t] += a;
            fp[t] += b;
        }
    }
    let mut precision = vec![0.0; N_SAMPLE_PTS];
    for t in 0..thresh.len() {
        let n = tp[t] + fp[t];
        // 0/0 (every detection above the threshold went to ignored ground truth) is NaN in the
        // devkit; 0 here.
        precision[t] = if n == 0 { 0.0 } else { tp[t] as f64 / n as f64 };
    }
    for t in (0..N_SAMPLE_PTS.saturating_sub(1)).rev() {
        precision[t] = precision[t].max(precision[t + 1]);
    }
    result.ap_r40 = Some(precision[1..].iter().sum::<f64>() / 40.0);
    result.ap_r11 = Some(precision.iter().step_by(4).sum::<f64>() / 11.0);
    result.precision = precision;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAR: usize = 0;
    const PED: usize = 1;

    /// A fully visible, untruncated ground truth.
    fn gt(kind: ObjectType, bbox: [f32; 4]) -> Object {
        Object {
            kind,
            truncated: 0.0,
            occluded: 0,
            alpha: 0.0,
            bbox,
            dimensions: [1.5, 1.6, 3.9],
            location: [0.0, 1.6, 20.0],
            rotation_y: 0.0,
            score: None,
        }
    }

    fn det(class: usize, bbox: [f32; 4], score: f32) -> Detection {
        Detection { class, bbox, score }
    }

    type Scene = (Vec<Vec<Object>>, Vec<Vec<Detection>>);

    /// `n` images holding one object of `kind`, 50 px tall (counted at every difficulty), each
    /// found exactly by a detection of `class` scoring 0.5 + i/1000 (distinct, all in 0.5..0.55).
    fn perfect(kind: ObjectType, class: usize, n: usize) -> Scene {
        let b = [100.0, 100.0, 150.0, 150.0];
        let gts = (0..n).map(|_| vec![gt(kind, b)]).collect();
        let dets = (0..n)
            .map(|i| vec![det(class, b, 0.5 + i as f32 / 1000.0)])
            .collect();
        (gts, dets)
    }

    fn perfect_cars(n: usize) -> Scene {
        perfect(ObjectType::Car, CAR, n)
    }

    /// `scene` plus one image holding `gts` and `dets`.
    fn with_image(mut scene: Scene, gts: Vec<Object>, dets: Vec<Detection>) -> Scene {
        scene.0.push(gts);
        scene.1.push(dets);
        scene
    }

    fn eval(scene: &Scene) -> Evaluation {
        evaluate(&scene.0, &scene.1)
    }

    /// (AP|R40, AP|R11) of a cell that has ground truth.
    fn ap(e: &Evaluation, class: usize, d: Difficulty) -> (f64, f64) {
        let c = e.cell(class, d);
        (
            c.ap_r40.expect("ground truth"),
            c.ap_r11.expect("ground truth"),
        )
    }

    fn assert_ap(e: &Evaluation, class: usize, d: Difficulty, r40: f64, r11: f64) {
        let (a, b) = ap(e, class, d);
        assert!(
            (a - r40).abs() < 1e-12 && (b - r11).abs() < 1e-12,
            "{} {}: AP|R40 {a} (expected {r40}), AP|R11 {b} (expected {r11})\n{e}",
            EVAL_CLASSES[class].name(),
            d.name()
        );
    }

    fn assert_all(e: &Evaluation, class: usize, r40: f64, r11: f64) {
        for d in Difficulty::ALL {
            assert_ap(e, class, d, r40, r11);
        }
    }

    /// With one false positive scoring above all 41 true positives, the threshold of the k-th
    /// best TP (k = 0..40) sees k + 1 TPs and 1 FP: precision (k+1)/(k+2), increasing in k, so
    /// its running maximum from the right is 41/42 at every one of the 41 points.
    const ONE_FP_OVER_41: f64 = 41.0 / 42.0;

    #[test]
    fn perfect_detection_gives_ap_one() {
        // 41 TPs with distinct scores: getThresholds keeps all 41 (recall i/41 is the nearest
        // to step i/40), precision 1 at each: AP 1 with 40 and with 11 points.
        let e = eval(&perfect_cars(41));
        assert_all(&e, CAR, 1.0, 1.0);
        assert_eq!(e.cell(CAR, Difficulty::Moderate).ground_truths, 41);
        assert_eq!(e.cell(CAR, Difficulty::Moderate).detections, 41);
        assert_eq!(e.cell(CAR, Difficulty::Easy).precision, vec![1.0; 41]);
        // No pedestrian or cyclist ground truth: no AP, left out of the mean.
        for class in 1..3 {
            for d in Difficulty::ALL {
                let c = e.cell(class, d);
                assert_eq!((c.ap_r40, c.ap_r11, c.ground_truths), (None, None, 0));
            }
        }
        assert_eq!(e.mean_ap_moderate(), 1.0);
        assert_all(&eval(&perfect_cars(300)), CAR, 1.0, 1.0);
        assert_all(&eval(&perfect(ObjectType::Cyclist, 2, 50)), 2, 1.0, 1.0);
    }

    #[test]
    fn fewer_than_41_ground_truths_cannot_reach_every_recall_point() {
        // 40 TPs give 40 thresholds (recall 1/40..1 at curve indices 0..39) and the devkit
        // leaves index 40 at 0: AP|R40 = 39/40, AP|R11 = 10/11 (indices 0, 4, ..., 36 are 1).
        assert_all(&eval(&perfect_cars(40)), CAR, 39.0 / 40.0, 10.0 / 11.0);
        // One TP: one threshold, precision 1 at index 0 only, which R40 does not sample.
        assert_all(&eval(&perfect_cars(1)), CAR, 0.0, 1.0 / 11.0);
    }

    #[test]
    fn false_positive_above_the_true_positives() {
        let fp = det(CAR, [500.0, 100.0, 560.0, 160.0], 0.99);
        let e = eval(&with_image(perfect_cars(41), vec![], vec![fp]));
        assert_all(&e, CAR, ONE_FP_OVER_41, ONE_FP_OVER_41);
        assert_eq!(e.cell(CAR, Difficulty::Easy).detections, 42);
        // Below every TP's score it is above no threshold and never counts.
        let low = det(CAR, fp.bbox, 0.1);
        assert_all(
            &eval(&with_image(perfect_cars(41), vec![], vec![low])),
            CAR,
            1.0,
            1.0,
        );
    }

    /// 41 images, each a ground truth [0, 0, 100, 100] and a detection [0, 0, 100, h] scoring
    /// 0.5 + i/1000: the detection lies inside the box, so IoU = 100 h / 10000 = h / 100.
    fn overlap_scene(kind: ObjectType, class: usize, h: f32) -> Evaluation {
        let scene: Scene = (
            (0..41)
                .map(|_| vec![gt(kind, [0.0, 0.0, 100.0, 100.0])])
                .collect(),
            (0..41)
                .map(|i| vec![det(class, [0.0, 0.0, 100.0, h], 0.5 + i as f32 / 1000.0)])
                .collect(),
        );
        eval(&scene)
    }

    #[test]
    fn car_needs_iou_above_0_7_and_pedestrian_above_0_5() {
        // IoU 0.71: every detection a TP, AP 1.
        assert_all(&overlap_scene(ObjectType::Car, CAR, 71.0), CAR, 1.0, 1.0);
        // IoU exactly 0.70 or 0.69: the devkit needs overlap > 0.7, so no TP at all: no
        // threshold, an all-zero curve, AP 0 (the class has ground truth, so not `None`).
        assert_all(&overlap_scene(ObjectType::Car, CAR, 70.0), CAR, 0.0, 0.0);
        assert_all(&overlap_scene(ObjectType::Car, CAR, 69.0), CAR, 0.0, 0.0);
        // Pedestrian: IoU 0.51 is a match, 0.50 and 0.49 are not.
        assert_all(
            &overlap_scene(ObjectType::Pedestrian, PED, 51.0),
            PED,
            1.0,
            1.0,
        );
        assert_all(
            &overlap_scene(ObjectType::Pedestrian, PED, 50.0),
            PED,
            0.0,
            0.0,
        );
        assert_all(
            &overlap_scene(ObjectType::Pedestrian, PED, 49.0),
            PED,
            0.0,
            0.0,
        );
        // IoU 0.6 is enough for a pedestrian, not for a car.
        assert_all(
            &overlap_scene(ObjectType::Pedestrian, PED, 60.0),
            PED,
            1.0,
            1.0,
        );
        assert_all(&overlap_scene(ObjectType::Car, CAR, 60.0), CAR, 0.0, 0.0);
    }

    #[test]
    fn neighbouring_class_ground_truth_is_ignored() {
        let b = [0.0, 0.0, 100.0, 100.0];
        // A Car detection (highest score) on a Van: matched to an ignored ground truth, neither
        // TP nor FP, so the 41 perfect cars keep AP 1.
        let e = eval(&with_image(
            perfect_cars(41),
            vec![gt(ObjectType::Van, b)],
            vec![det(CAR, b, 0.99)],
        ));
        assert_all(&e, CAR, 1.0, 1.0);
        assert_eq!(e.cell(CAR, Difficulty::Easy).ignored_ground_truths, 1);
        assert_eq!(e.cell(CAR, Difficulty::Easy).ground_truths, 41);
        // A Truck is no neighbour of Car: the same detection is a false positive.
        let e = eval(&with_image(
            perfect_cars(41),
            vec![gt(ObjectType::Truck, b)],
            vec![det(CAR, b, 0.99)],
        ));
        assert_all(&e, CAR, ONE_FP_OVER_41, ONE_FP_OVER_41);
        // Person_sitting is Pedestrian's neighbour.
        let e = eval(&with_image(
            perfect(ObjectType::Pedestrian, PED, 41),
            vec![gt(ObjectType::PersonSitting, b)],
            vec![det(PED, b, 0.99)],
        ));
        assert_all(&e, PED, 1.0, 1.0);
    }

    #[test]
    fn detection_in_dont_care_region_is_not_a_false_positive() {
        let region = gt(ObjectType::DontCare, [0.0, 0.0, 1000.0, 1000.0]);
        // Wholly inside: intersection / detection area = 1 > 0.7, ignored (its IoU with the
        // region is only 0.01: the devkit's criterion is the detection's area, not IoU).
        let inside = det(CAR, [10.0, 10.0, 110.0, 110.0], 0.99);
        let e = eval(&with_image(perfect_cars(41), vec![region], vec![inside]));
        assert_all(&e, CAR, 1.0, 1.0);
        // Half inside: 50 x 100 / (100 x 100) = 0.5, not above 0.7: a false positive.
        let half = det(CAR, [950.0, 0.0, 1050.0, 100.0], 0.99);
        let e = eval(&with_image(perfect_cars(41), vec![region], vec![half]));
        assert_all(&e, CAR, ONE_FP_OVER_41, ONE_FP_OVER_41);
        // For a pedestrian the bound is 0.5: 60% inside is ignored.
        let ped = det(PED, [940.0, 0.0, 1040.0, 100.0], 0.99);
        let e = eval(&with_image(
            perfect(ObjectType::Pedestrian, PED, 41),
            vec![region],
            vec![ped],
        ));
        assert_all(&e, PED, 1.0, 1.0);
    }

    #[test]
    fn small_ground_truth_counts_in_moderate_but_not_in_easy() {
        // 41 cars 30 px tall, each detected exactly: Easy ignores the ground truth (30 <= 40)
        // and the detection (30 < 40), leaving no ground truth; Moderate and Hard count both.
        let b = [0.0, 0.0, 60.0, 30.0];
        let scene: Scene = (
            (0..41).map(|_| vec![gt(ObjectType::Car, b)]).collect(),
            (0..41)
                .map(|i| vec![det(CAR, b, 0.5 + i as f32 / 1000.0)])
                .collect(),
        );
        let e = eval(&scene);
        let easy = e.cell(CAR, Difficulty::Easy);
        assert_eq!((easy.ap_r40, easy.ground_truths), (None, 0));
        assert_eq!((easy.ignored_ground_truths, easy.detections), (41, 0));
        assert_ap(&e, CAR, Difficulty::Moderate, 1.0, 1.0);
        assert_ap(&e, CAR, Difficulty::Hard, 1.0, 1.0);
        // Exactly 40 px is still too small for Easy (the devkit's `height <= MIN_HEIGHT`), but
        // its 40 px detection is tall enough (40 is not below 40): it goes to the ignored ground
        // truth and is no false positive. 41 px counts.
        let e = eval(&with_image(
            perfect_cars(41),
            vec![
                gt(ObjectType::Car, [300.0, 0.0, 380.0, 40.0]),
                gt(ObjectType::Car, [500.0, 0.0, 580.0, 41.0]),
            ],
            vec![
                det(CAR, [300.0, 0.0, 380.0, 40.0], 0.99),
                det(CAR, [500.0, 0.0, 580.0, 41.0], 0.98),
            ],
        ));
        assert_eq!(e.cell(CAR, Difficulty::Easy).ground_truths, 42);
        assert_eq!(e.cell(CAR, Difficulty::Moderate).ground_truths, 43);
        assert_all(&e, CAR, 1.0, 1.0);
    }

    #[test]
    fn occlusion_and_truncation_limits() {
        // (occluded, truncated) of nine 50 px cars, side by side in one image, each detected
        // exactly; the counted one at Easy scores lowest, so at its threshold every other
        // detection is above it and would be a false positive unless matched to an ignored gt.
        let cases: [(i8, f32); 9] = [
            (0, 0.15), // E M H (0.15 is not above 0.15)
            (0, 0.16), //   M H
            (1, 0.0),  //   M H
            (2, 0.0),  //     H
            (3, 0.0),  //       (occlusion 3, unknown, exceeds every level)
            (0, 0.30), //   M H
            (0, 0.31), //     H
            (0, 0.50), //     H
            (0, 0.51), //
        ];
        let mut gts = Vec::new();
        let mut dets = Vec::new();
        for (i, &(occ, trunc)) in cases.iter().enumerate() {
            let x = 100.0 * i as f32;
            let b = [x, 0.0, x + 50.0, 50.0];
            gts.push(Object {
                occluded: occ,
                truncated: trunc,
                ..gt(ObjectType::Car, b)
            });
            dets.push(det(CAR, b, 0.5 + i as f32 / 100.0));
        }
        let e = evaluate(&[gts], &[dets]);
        let counts: Vec<(usize, usize)> = Difficulty::ALL
            .iter()
            .map(|&d| {
                let c = e.cell(CAR, d);
                (c.ground_truths, c.ignored_ground_truths)
            })
            .collect();
        assert_eq!(counts, [(1, 8), (4, 5), (7, 2)]);
        // Easy: one TP, nothing else counted: precision 1 at the one threshold (index 0).
        assert_eq!(e.cell(CAR, Difficulty::Easy).precision[0], 1.0);
        assert_ap(&e, CAR, Difficulty::Easy, 0.0, 1.0 / 11.0);
        assert_eq!(e.cell(CAR, Difficulty::Hard).precision[..7], [1.0; 7]);
    }

    #[test]
    fn duplicate_detection_is_a_false_positive() {
        // Image 0's car found twice with the same box: first at 0.95 (the TP), then at 0.90.
        // Thresholds: 0.95, then the 40 other TP scores (0.501..0.540). At 0.95: 1 TP, 0 FP.
        // At the k-th (k >= 1): k + 1 TPs and the duplicate, precision (k+1)/(k+2), whose
        // running maximum is 41/42. So index 0 is 1 and indices 1..=40 are 41/42:
        // AP|R40 = 41/42, AP|R11 = (1 + 10 x 41/42) / 11.
        let mut scene = perfect_cars(41);
        let b = scene.1[0][0].bbox;
        scene.1[0] = vec![det(CAR, b, 0.95), det(CAR, b, 0.90)];
        let e = eval(&scene);
        assert_all(&e, CAR, 41.0 / 42.0, (1.0 + 10.0 * 41.0 / 42.0) / 11.0);
    }

    #[test]
    fn score_ties() {
        // All 41 TPs score 0.5: 41 equal thresholds, each admitting every detection.
        let mut scene = perfect_cars(41);
        for d in scene.1.iter_mut().flatten() {
            d.score = 0.5;
        }
        assert_all(&eval(&scene), CAR, 1.0, 1.0);
        // A false positive tied at 0.5 is admitted too (the devkit drops only score < thresh):
        // 41 TPs and 1 FP at every threshold, 41/42.
        let fp = det(CAR, [500.0, 100.0, 560.0, 160.0], 0.5);
        let tied = with_image(scene.clone(), vec![], vec![fp]);
        assert_all(&eval(&tied), CAR, ONE_FP_OVER_41, ONE_FP_OVER_41);
        // Just below the tie it never counts.
        let below = with_image(scene.clone(), vec![], vec![det(CAR, fp.bbox, 0.4999)]);
        assert_all(&eval(&below), CAR, 1.0, 1.0);
        // Two equal-score detections on one car: the first matches, the second is an FP.
        let b = scene.1[0][0].bbox;
        scene.1[0] = vec![det(CAR, b, 0.5), det(CAR, b, 0.5)];
        assert_all(&eval(&scene), CAR, ONE_FP_OVER_41, ONE_FP_OVER_41);
    }

    #[test]
    fn detection_below_min_height_is_ignored() {
        // A lone Car detection 39.5 px tall above every TP: the devkit's integer height is 39,
        // below Easy's 40, so it is ignored there; at Moderate and Hard it is a false positive.
        let short = det(CAR, [500.0, 100.0, 560.0, 139.5], 0.99);
        let e = eval(&with_image(perfect_cars(41), vec![], vec![short]));
        assert_ap(&e, CAR, Difficulty::Easy, 1.0, 1.0);
        assert_ap(
            &e,
            CAR,
            Difficulty::Moderate,
            ONE_FP_OVER_41,
            ONE_FP_OVER_41,
        );
        assert_ap(&e, CAR, Difficulty::Hard, ONE_FP_OVER_41, ONE_FP_OVER_41);
        assert_eq!(e.cell(CAR, Difficulty::Easy).detections, 41);
        // 24.9 px (integer 24) is ignored at every level; exactly 40 px counts at Easy.
        let tiny = det(CAR, [500.0, 100.0, 560.0, 124.9], 0.99);
        assert_all(
            &eval(&with_image(perfect_cars(41), vec![], vec![tiny])),
            CAR,
            1.0,
            1.0,
        );
        let forty = det(CAR, [500.0, 100.0, 560.0, 140.0], 0.99);
        let e = eval(&with_image(perfect_cars(41), vec![], vec![forty]));
        assert_ap(&e, CAR, Difficulty::Easy, ONE_FP_OVER_41, ONE_FP_OVER_41);
    }

    #[test]
    fn empty_images() {
        let e = evaluate(&[], &[]);
        assert_eq!(e.images, 0);
        for class in 0..3 {
            for d in Difficulty::ALL {
                let c = e.cell(class, d);
                assert_eq!((c.ap_r40, c.ap_r11, c.ground_truths), (None, None, 0));
                assert!(c.precision.is_empty());
            }
        }
        assert!(e.mean_ap_moderate().is_nan());
        // Images without objects or detections change nothing.
        let mut scene = perfect_cars(41);
        for _ in 0..10 {
            scene = with_image(scene, vec![], vec![]);
        }
        let e = eval(&scene);
        assert_eq!(e.images, 51);
        assert_all(&e, CAR, 1.0, 1.0);
        // Ground truth without detections: AP 0. Detections without ground truth: no AP.
        let (gts, dets) = perfect_cars(41);
        let none: Vec<Vec<Detection>> = vec![Vec::new(); 41];
        assert_all(&evaluate(&gts, &none), CAR, 0.0, 0.0);
        let nothing: Vec<Vec<Object>> = vec![Vec::new(); 41];
        let e = evaluate(&nothing, &dets);
        assert_eq!(e.cell(CAR, Difficulty::Easy).ap_r40, None);
        assert_eq!(e.cell(CAR, Difficulty::Easy).detections, 41);
    }

    #[test]
    fn mean_averages_only_classes_with_ground_truth() {
        // Cars all found (AP 1), pedestrians all missed (AP 0), no cyclists (left out): 0.5.
        let (mut gts, mut dets) = perfect_cars(41);
        let (ped_gts, _) = perfect(ObjectType::Pedestrian, PED, 41);
        gts.extend(ped_gts);
        dets.extend(vec![Vec::new(); 41]);
        let e = evaluate(&gts, &dets);
        assert_eq!(e.mean_ap_moderate(), 0.5);
        assert_eq!(e.mean_ap_r11(Difficulty::Hard), Some(0.5));
        let md = e.to_markdown();
        assert!(
            md.contains("| Car | 100.00 (100.00) | 100.00 (100.00) | 100.00 (100.00) |"),
            "{md}"
        );
        assert!(md.contains("| Pedestrian | 0.00 (0.00) |"), "{md}");
        assert!(
            md.contains("| Cyclist | n/a (n/a) | n/a (n/a) | n/a (n/a) |"),
            "{md}"
        );
        assert!(md.contains("| Mean | 50.00 (50.00) |"), "{md}");
        assert!(md.contains("AP|R11") && md.contains("Car 41/41/41"), "{md}");
        assert_eq!(e.to_string(), md);
    }

    #[test]
    fn evaluation_serializes_and_reads_back() {
        let e = eval(&with_image(
            perfect_cars(45),
            vec![],
            vec![det(CAR, [0.0, 0.0, 50.0, 60.0], 0.7)],
        ));
        let yaml = serde_yaml_ng::to_string(&e).unwrap();
        let back: Evaluation = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn detection_from_result_object() {
        let o = Object {
            score: Some(0.75),
            ..gt(ObjectType::Cyclist, [1.0, 2.0, 3.0, 4.0])
        };
        assert_eq!(
            Detection::from_object(&o),
            Some(det(2, [1.0, 2.0, 3.0, 4.0], 0.75))
        );
        assert_eq!(Detection::from_object(&Object { score: None, ..o }), None);
        let van = Object {
            kind: ObjectType::Van,
            ..o
        };
        assert_eq!(Detection::from_object(&van), None);
    }

    /// The devkit's `cleanData`, `computeStatistics` and `eval_class` for one class and
    /// difficulty, transcribed loop for loop (every detection against every ground truth, the
    /// `ignored_*` codes -1/0/1, `nstuff`), to check the indexed implementation above.
    fn reference_curve(
        class: usize,
        difficulty: Difficulty,
        gts: &[Vec<Object>],
        dets: &[Vec<Detection>],
    ) -> Option<Vec<f64>> {
        let min_overlap = MIN_OVERLAP[class];
        let mut n_gt = 0;
        let mut cleaned = Vec::new();
        for (g, d) in gts.iter().zip(dets) {
            let mut ignored_gt = Vec::new();
            for o in g {
                let height = f64::from(o.bbox[3]) - f64::from(o.bbox[1]);
                let valid_class = if o.kind == EVAL_CLASSES[class] {
                    1
                } else if (class == PED && o.kind == ObjectType::PersonSitting)
                    || (class == CAR && o.kind == ObjectType::Van)
                {
                    0
                } else {
                    -1
                };
                let ignore = o.occluded > difficulty.max_occlusion()
                    || o.truncated > difficulty.max_truncation()
                    || height <= difficulty.min_height();
                if valid_class == 1 && !ignore {
                    ignored_gt.push(0);
                    n_gt += 1;
                } else if valid_class == 0 || (ignore && valid_class == 1) {
                    ignored_gt.push(1);
                } else {
                    ignored_gt.push(-1);
                }
            }
            let dc: Vec<Box2> = g
                .iter()
                .filter(|o| o.kind == ObjectType::DontCare)
                .map(|o| to_f64(o.bbox))
                .collect();
            let ignored_det: Vec<i32> = d
                .iter()
                .map(|x| {
                    let height = (f64::from(x.bbox[1]) - f64::from(x.bbox[3])).abs() as i32;
                    if f64::from(height) < difficulty.min_height() {
                        1
                    } else if x.class == class {
                        0
                    } else {
                        -1
                    }
                })
                .collect();
            cleaned.push((ignored_gt, dc, ignored_det));
        }
        let stats = |i: usize, compute_fp: bool, thresh: f64| -> (u64, u64, Vec<f64>) {
            let (g, d) = (&gts[i], &dets[i]);
            let (ignored_gt, dc, ignored_det) = &cleaned[i];
            let mut assigned = vec![false; d.len()];
            let ignored_threshold: Vec<bool> = d
                .iter()
                .map(|x| compute_fp && f64::from(x.score) < thresh)
                .collect();
            let (mut tp, mut v) = (0, Vec::new());
            for (gi, o) in g.iter().enumerate() {
                if ignored_gt[gi] == -1 {
                    continue;
                }
                let mut det_idx = usize::MAX;
                let mut valid_detection = NO_DETECTION;
                let mut max_overlap = 0.0;
                let mut assigned_ignored_det = false;
                for j in 0..d.len() {
                    if ignored_det[j] == -1 || assigned[j] || ignored_threshold[j] {
                        continue;
                    }
                    let overlap = box_overlap(&to_f64(d[j].bbox), &to_f64(o.bbox), false);
                    let score = f64::from(d[j].score);
                    if !compute_fp && overlap > min_overlap && score > valid_detection {
                        det_idx = j;
                        valid_detection = score;
                    } else if compute_fp
                        && overlap > min_overlap
                        && (overlap > max_overlap || assigned_ignored_det)
                        && ignored_det[j] == 0
                    {
                        max_overlap = overlap;
                        det_idx = j;
                        valid_detection = 1.0;
                        assigned_ignored_det = false;
                    } else if compute_fp
                        && overlap > min_overlap
                        && valid_detection == NO_DETECTION
                        && ignored_det[j] == 1
                    {
                        det_idx = j;
                        valid_detection = 1.0;
                        assigned_ignored_det = true;
                    }
                }
                if valid_detection == NO_DETECTION {
                    continue; // a miss (FN) when ignored_gt == 0; FN is not needed for AP
                }
                if ignored_gt[gi] == 1 || ignored_det[det_idx] == 1 {
                    assigned[det_idx] = true;
                } else {
                    tp += 1;
                    v.push(f64::from(d[det_idx].score));
                    assigned[det_idx] = true;
                }
            }
            let mut fp = 0;
            if compute_fp {
                for j in 0..d.len() {
                    if !(assigned[j]
                        || ignored_det[j] == -1
                        || ignored_det[j] == 1
                        || ignored_threshold[j])
                    {
                        fp += 1;
                    }
                }
                let mut nstuff = 0;
                for region in dc {
                    for j in 0..d.len() {
                        if assigned[j]
                            || ignored_det[j] == -1
                            || ignored_det[j] == 1
                            || ignored_threshold[j]
                        {
                            continue;
                        }
                        if box_overlap(&to_f64(d[j].bbox), region, true) > min_overlap {
                            assigned[j] = true;
                            nstuff += 1;
                        }
                    }
                }
                fp -= nstuff;
            }
            (tp, fp, v)
        };
        if n_gt == 0 {
            return None;
        }
        let v: Vec<f64> = (0..gts.len())
            .flat_map(|i| stats(i, false, 0.0).2)
            .collect();
        let thresh = thresholds(v, n_gt);
        let mut precision = vec![0.0; N_SAMPLE_PTS];
        for (t, &th) in thresh.iter().enumerate() {
            let (mut tp, mut fp) = (0, 0);
            for i in 0..gts.len() {
                let (a, b, _) = stats(i, true, th);
                tp += a;
                fp += b;
            }
            precision[t] = if tp + fp == 0 {
                0.0
            } else {
                tp as f64 / (tp + fp) as f64
            };
        }
        for t in 0..thresh.len() {
            precision[t] = precision[t..].iter().cloned().fold(0.0, f64::max);
        }
        Some(precision)
    }

    /// Random scenes on a coarse grid, so that equal scores, equal overlaps, overlaps on the
    /// bounds, heights on the bounds, neighbouring classes and DontCare regions are frequent.
    fn random_scene(seed: u64, images: usize, max_gt: u64, max_det: u64, levels: u64) -> Scene {
        use rand::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pick = |n: u64| (rng.next_u64() % n) as usize;
        const HEIGHTS: [f32; 10] = [20.0, 24.9, 25.0, 26.0, 30.0, 39.5, 40.0, 41.0, 50.0, 80.0];
        const TRUNC: [f32; 8] = [0.0, 0.15, 0.16, 0.3, 0.31, 0.5, 0.51, -1.0];
        const KINDS: [ObjectType; 11] = [
            ObjectType::Car,
            ObjectType::Car,
            ObjectType::Car,
            ObjectType::Pedestrian,
            ObjectType::Pedestrian,
            ObjectType::Cyclist,
            ObjectType::Van,
            ObjectType::PersonSitting,
            ObjectType::DontCare,
            ObjectType::Truck,
            ObjectType::Misc,
        ];
        let mut scene: Scene = (Vec::new(), Vec::new());
        for _ in 0..images {
            let mut gts = Vec::new();
            for _ in 0..pick(max_gt + 1) {
                let (x, y) = (10.0 * pick(40) as f32, 10.0 * pick(10) as f32);
                let b = [
                    x,
                    y,
                    x + 10.0 * (3 + pick(10)) as f32,
                    y + HEIGHTS[pick(10)],
                ];
                gts.push(Object {
                    occluded: pick(5) as i8 - 1,
                    truncated: TRUNC[pick(8)],
                    ..gt(KINDS[pick(11)], b)
                });
            }
            let mut dets = Vec::new();
            for _ in 0..pick(max_det + 1) {
                let copied = (!gts.is_empty() && pick(4) > 0).then(|| gts[pick(gts.len() as u64)]);
                let (b, class) = match copied {
                    Some(g) => {
                        let dx = (5 * pick(3) as i32 - 5) as f32 * pick(2) as f32;
                        let dy = (5 * pick(3) as i32 - 5) as f32 * pick(2) as f32;
                        let b = g.bbox;
                        let b = [
                            b[0] + dx,
                            b[1] + dy,
                            b[2] + dx,
                            b[3] + dy + 5.0 * pick(3) as f32 - 5.0,
                        ];
                        let same = EVAL_CLASSES.iter().position(|&t| t == g.kind);
                        (b, same.filter(|_| pick(4) > 0).unwrap_or(pick(4)))
                    }
                    None => {
                        let (x, y) = (10.0 * pick(40) as f32, 10.0 * pick(10) as f32);
                        let b = [
                            x,
                            y,
                            x + 10.0 * (3 + pick(10)) as f32,
                            y + HEIGHTS[pick(10)],
                        ];
                        (b, pick(4))
                    }
                };
                // Copies score higher, as a detector's true positives tend to (ties frequent).
                let score = (pick(levels) + if copied.is_some() { 4 } else { 0 }) as f32 / 10.0;
                dets.push(det(class, b, score));
            }
            scene.0.push(gts);
            scene.1.push(dets);
        }
        scene
    }

    #[test]
    fn matches_a_literal_transcription_of_the_devkit() {
        // Sparse scenes with varied scores, then crowded ones (many detections per object,
        // three score levels) where ties decide the matching.
        for seed in 0..24 {
            let scene = if seed < 12 {
                random_scene(seed, 60, 8, 12, 6)
            } else {
                random_scene(seed, 60, 3, 16, 3)
            };
            let e = eval(&scene);
            for (class, kind) in EVAL_CLASSES.iter().enumerate() {
                for d in Difficulty::ALL {
                    let reference = reference_curve(class, d, &scene.0, &scene.1);
                    let cell = e.cell(class, d);
                    assert_eq!(cell.ap_r40.is_some(), reference.is_some());
                    assert_eq!(
                        cell.precision,
                        reference.unwrap_or_default(),
                        "seed {seed}, {} {}",
                        kind.name(),
                        d.name()
                    );
                }
            }
        }
    }

    /// Run by hand (`-- --ignored --nocapture`): the size of a KITTI validation run.
    #[test]
    #[ignore]
    fn evaluates_4000_images_of_100_detections() {
        let scene = random_scene(7, 4000, 20, 100, 6);
        let start = std::time::Instant::now();
        let e = eval(&scene);
        println!("{:?} for 4000 images\n{e}", start.elapsed());
    }
}
