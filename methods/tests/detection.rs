//! The detector end to end in the methods crate: `detnet` trains on a small generated detection
//! set with the CenterNet objective, its decoded boxes find the objects, and every method lowers
//! it to a graph that passes the conformance suite and whose decoded boxes still find them.

use std::sync::OnceLock;

use qbench_datasets::{GtBox, ImageSet, Normalization};
use qbench_engine::exec::fast::FastExecutor;
use qbench_methods::decode::{Decode, Detection, iou};
use qbench_methods::method::QuantInput;
use qbench_methods::method::config::MethodConfig;
use qbench_methods::method::conformance::check;
use qbench_methods::model::arch::{Architecture, DetectorGrid};
use qbench_methods::model::forward::{Mode, forward};
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, TrainConfig, train};

const H: usize = 32;
const W: usize = 64;

/// `n` images of 1 to 3 objects on noise: class 0 a filled bright box wider than tall, class 1 a
/// bright outline taller than wide.
fn generated(n: usize, seed: u32) -> ImageSet {
    let mut state = seed.wrapping_mul(2654435761).wrapping_add(1);
    let mut next = move |m: usize| {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 8) as usize % m.max(1)
    };
    let mut images = Vec::with_capacity(n * H * W);
    let mut boxes = Vec::with_capacity(n);
    for _ in 0..n {
        let mut img: Vec<u8> = (0..H * W).map(|_| next(40) as u8).collect();
        let mut list = Vec::new();
        for _ in 0..1 + next(3) {
            let class = next(2) as u16;
            let (bw, bh) = if class == 0 {
                (12 + next(10), 6 + next(5))
            } else {
                (6 + next(4), 12 + next(10))
            };
            let (x0, y0) = (next(W - bw), next(H - bh));
            for y in y0..y0 + bh {
                for x in x0..x0 + bw {
                    let edge = y == y0 || y == y0 + bh - 1 || x == x0 || x == x0 + bw - 1;
                    if class == 0 || edge {
                        img[y * W + x] = 200;
                    }
                }
            }
            list.push(GtBox {
                class,
                x0: x0 as f32,
                y0: y0 as f32,
                x1: (x0 + bw) as f32,
                y1: (y0 + bh) as f32,
            });
        }
        images.extend(img);
        boxes.push(list);
    }
    ImageSet {
        images,
        labels: vec![0; n],
        channels: 1,
        height: H,
        width: W,
        num_classes: 2,
        normalization: Normalization::identity(1),
        boxes,
    }
}

struct Trained {
    train: ImageSet,
    test: ImageSet,
    arch: Architecture,
    params: Params,
    idx: Vec<usize>,
}

fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let train_set = generated(1600, 1);
        let test = generated(200, 2);
        let arch = zoo::build("detnet", [1, H, W], 2).expect("detnet exists");
        let idx: Vec<usize> = (0..train_set.len()).collect();
        let config = TrainConfig {
            epochs: 4,
            batch_size: 32,
            seed: 1,
            ..TrainConfig::default()
        };
        let t = train(&arch, &train_set, &idx, &[], &config, None, &mut Quiet).expect("trains");
        Trained {
            train: train_set,
            test,
            arch,
            params: t.params,
            idx,
        }
    })
}

fn grid() -> DetectorGrid {
    trained().arch.detector_grid().expect("a detector")
}

/// Share of ground-truth boxes matched (same class, IoU >= 0.5) by a detection scoring >= 0.3,
/// each detection matching at most one box.
fn recall(detections: &[Vec<Detection>], truth: &ImageSet) -> f64 {
    let (mut found, mut total) = (0, 0);
    for (dets, gts) in detections.iter().zip(&truth.boxes) {
        let mut used = vec![false; dets.len()];
        for g in gts {
            total += 1;
            let gb = [g.x0, g.y0, g.x1, g.y1];
            if let Some(k) = (0..dets.len()).find(|&k| {
                !used[k]
                    && dets[k].score >= 0.3
                    && dets[k].class == usize::from(g.class)
                    && iou(&dets[k].bbox, &gb) >= 0.5
            }) {
                used[k] = true;
                found += 1;
            }
        }
    }
    found as f64 / total.max(1) as f64
}

fn float_detections() -> Vec<Vec<Detection>> {
    let t = trained();
    let idx: Vec<usize> = (0..t.test.len()).collect();
    let (x, _) = qbench_methods::data::batch(&t.test, &idx).expect("batch");
    let out = forward(&t.arch, &mut t.params.clone(), &x, Mode::Eval).expect("runs");
    let rows: Vec<Vec<f32>> = out.to_vec2().expect("2-D");
    rows.iter()
        .map(|m| Decode::default().image(&grid(), m))
        .collect()
}

#[test]
fn the_float_detector_finds_the_objects() {
    let r = recall(&float_detections(), &trained().test);
    assert!(r > 0.8, "float recall {r}");
}

/// Quantizes with `yaml`, checks conformance, and returns the recall of the integer graph's
/// decoded boxes.
fn conforms(yaml: &str) -> f64 {
    let t = trained();
    let input = QuantInput {
        arch: &t.arch,
        params: &t.params,
        data: &t.train,
        train_idx: &t.idx,
        calib_idx: &t.idx[..256],
        val_idx: &t.idx[..256],
        seed: 0,
    };
    let config = MethodConfig::from_yaml(yaml, "test.yaml").expect("parses");
    let method = config.method();
    let report = check(method, &input, &t.test).expect("runs");
    assert!(report.failures.is_empty(), "{yaml}: {:?}", report.failures);
    let q = method
        .quantize(&input, &mut Quiet)
        .expect("quantizes again");
    let exec = FastExecutor::new(&q.graph).expect("executor");
    let maps = exec.run(&t.test.images, t.test.len()).expect("runs");
    let scale = q.fake_quant.logit_scale();
    let dets: Vec<Vec<Detection>> = (0..maps.batch)
        .map(|i| Decode::default().image_int(&grid(), maps.row(i), scale))
        .collect();
    let r = recall(&dets, &t.test);
    eprintln!("{yaml}: integer recall {r:.3}");
    r
}

#[test]
fn int8_and_djq_w8a8_detect_like_the_float_model() {
    let float = recall(&float_detections(), &trained().test);
    for yaml in [
        "{method: int8}",
        "{method: djq, weight_bits: 8, activation_bits: 8}",
        "{method: djq, weight_bits: 8, activation_bits: 8, unified: false}",
    ] {
        let r = conforms(yaml);
        assert!(r > float - 0.05, "{yaml}: recall {r} vs float {float}");
    }
}

#[test]
fn low_bit_methods_lower_the_detector() {
    for (yaml, least_recall) in [
        (
            "{method: djq, weight_bits: 4, activation_bits: 4, per_channel: true, finetune: {epochs: 1}}",
            0.5,
        ),
        ("{method: tnt, granularity: per_kernel}", 0.5),
        ("{method: linear, bits: 8}", 0.5),
        // Trained for a few hundred steps only: these check the lowering (a 1x1 conv head on
        // k-bit or binary activations, then a flatten), not what longer training reaches.
        (
            "{method: qnn, weight_bits: 2, activation_bits: 2, train: {images: 800}}",
            0.0,
        ),
        ("{method: bnn, train: {images: 800}}", 0.0),
    ] {
        let r = conforms(yaml);
        assert!(r >= least_recall, "{yaml}: recall {r}");
    }
}
