//! `tnt`: the cosine-similarity ternarizer against brute force, its scales, conformance at every
//! granularity (on the sequential `cnn` and a residual ResNet-20), per-layer paths that match the
//! graph, and config errors that name the key.

mod common;
use common::config::error_of;

use qbench_datasets::ImageSet;
use qbench_engine::{Op, WeightKind, count_ops};
use qbench_methods::method::QuantInput;
use qbench_methods::method::act_range::{ActivationCalibration, Calibration};
use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::conformance::ConformanceReport;
use qbench_methods::method::int8::Int8Options;
use qbench_methods::method::qat::Finetune;
use qbench_methods::method::tnt::ternarize::{cosine, ternarize};
use qbench_methods::method::tnt::{Granularity, Scales, Tnt, TntOptions};
use qbench_methods::method::{QuantMethod, conformance, registry};
use qbench_methods::train::Quiet;

/// A small seeded generator (xorshift64*), so the vectors are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random vectors of length 1..=8: continuous values, values from a small set (many magnitude
/// ties, signs mixed) and zeros.
fn vectors(count: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let levels = [0.0f32, 0.25, -0.25, 0.5, -0.5, 1.0, -1.0];
    (0..count)
        .map(|i| {
            let n = 1 + (i % 8);
            (0..n)
                .map(|_| match i % 3 {
                    0 => (rng.below(2001) as f32 - 1000.0) / 997.0,
                    1 => levels[rng.below(levels.len() as u64) as usize],
                    _ if rng.below(3) == 0 => 0.0,
                    _ => (rng.below(21) as f32 - 10.0) / 8.0,
                })
                .collect()
        })
        .collect()
}

/// The best cosine similarity over all 3^N ternary vectors.
fn brute_force_best(w: &[f32]) -> f64 {
    let n = w.len() as u32;
    let mut best = 0.0f64;
    let mut t = vec![0i8; w.len()];
    for code in 0..3u32.pow(n) {
        let mut c = code;
        for x in t.iter_mut() {
            *x = (c % 3) as i8 - 1;
            c /= 3;
        }
        best = best.max(cosine(w, &t));
    }
    best
}

#[test]
fn ternarizer_maximises_cosine_similarity_like_brute_force() {
    for w in vectors(600) {
        let t = ternarize(&w);
        let best = brute_force_best(&w);
        let got = cosine(&w, &t.codes);
        assert!(
            got >= best - 1e-12,
            "{w:?}: {:?} has cos {got}, best {best}",
            t.codes
        );
        // Zeros are never coded nonzero; a nonzero vector gets at least one nonzero code.
        assert!(w.iter().zip(&t.codes).all(|(&x, &c)| x != 0.0 || c == 0));
        assert_eq!(t.nonzeros() == 0, w.iter().all(|&x| x == 0.0), "{w:?}");
        // Signs follow the weights.
        assert!(
            w.iter()
                .zip(&t.codes)
                .all(|(&x, &c)| f64::from(c) * f64::from(x) >= 0.0)
        );
    }
}

#[test]
fn scales_are_the_means_of_the_selected_weights_and_least_squares_optimal() {
    for w in vectors(300) {
        let t = ternarize(&w);
        let pick = |sign: i8| -> Vec<f64> {
            w.iter()
                .zip(&t.codes)
                .filter(|&(_, &c)| c == sign)
                .map(|(&x, _)| f64::from(x).abs())
                .collect()
        };
        let (pos, neg) = (pick(1), pick(-1));
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        assert!((t.alpha_pos - mean(&pos)).abs() < 1e-12, "{w:?}");
        assert!((t.alpha_neg - mean(&neg)).abs() < 1e-12, "{w:?}");
        let all: Vec<f64> = pos.iter().chain(&neg).copied().collect();
        assert!((t.alpha - mean(&all)).abs() < 1e-12, "{w:?}");
        // Squared error of the approximation with scales (a+, a-): moving either scale raises it.
        let err = |ap: f64, an: f64| -> f64 {
            w.iter()
                .zip(&t.codes)
                .map(|(&x, &c)| {
                    let r = match c {
                        1 => ap,
                        -1 => -an,
                        _ => 0.0,
                    };
                    (f64::from(x) - r).powi(2)
                })
                .sum()
        };
        let e = err(t.alpha_pos, t.alpha_neg);
        for d in [-1e-3, 1e-3] {
            if !pos.is_empty() {
                assert!(err(t.alpha_pos + d, t.alpha_neg) > e, "{w:?}");
            }
            if !neg.is_empty() {
                assert!(err(t.alpha_pos, t.alpha_neg + d) > e, "{w:?}");
            }
        }
    }
}

fn options(granularity: Granularity, scales: Scales) -> TntOptions {
    TntOptions {
        granularity,
        scales,
        activations: ActivationCalibration {
            calibration_images: 500,
            ..ActivationCalibration::default()
        },
        ..TntOptions::default()
    }
}

/// Conformance (agreement, logit bound, same seed -> same bytes, file round trip, quant-op
/// counts), then the report's per-layer paths against the graph's weight kinds.
fn conforms(granularity: Granularity, scales: Scales) -> Vec<String> {
    let f = common::fixture();
    let method = Tnt::new(options(granularity, scales)).expect("valid options");
    let (report, paths) = paths_match_the_graph(&method, &f.input(), &f.test);
    eprintln!("{report:?}");
    assert!(report.int_accuracy > 0.5, "{report:?}");
    paths
}

/// Conformance of `method` on `input` over `test`, then each reported layer path against the
/// graph's weight kinds, MAC counts and notes; returns the report and the paths.
fn paths_match_the_graph(
    method: &Tnt,
    input: &QuantInput,
    test: &ImageSet,
) -> (ConformanceReport, Vec<String>) {
    let report = conformance::check(method, input, test).expect("runs");
    eprintln!(
        "{}: agreement {} max logit error {} (bound {})",
        report.label, report.agreement, report.max_logit_error, report.logit_bound
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let q = method.quantize(input, &mut Quiet).expect("quantizes");
    let counts = count_ops(&q.graph);
    let mut paths = Vec::new();
    for layer in &q.report.layers {
        let node = q
            .graph
            .nodes
            .iter()
            .find(|n| n.name == layer.name)
            .unwrap_or_else(|| panic!("no node {}", layer.name));
        let kind = match &node.op {
            Op::Conv2d(c) => c.weight_kind,
            Op::Dense(d) => d.weight_kind,
            other => panic!("{} is {}", layer.name, other.name()),
        };
        let (path, bits) = match kind {
            WeightKind::Ternary => ("ternary", 2),
            WeightKind::Int { bits: 8 } => ("int8", 8),
            other => panic!("{}: unexpected {other:?}", layer.name),
        };
        assert_eq!((layer.path.as_str(), layer.weight_bits), (path, bits));
        let note = format!("{}: {path} path", layer.name);
        assert!(
            q.report.notes.iter().any(|n| n.starts_with(&note)),
            "{note}"
        );
        let row = counts.nodes.iter().find(|n| n.name == layer.name).unwrap();
        let weights = row.mac_kind.as_ref().map(|k| k.weights());
        let expected = if path == "ternary" {
            WeightKind::Ternary
        } else {
            WeightKind::Int { bits: 8 }
        };
        assert_eq!(weights, Some(expected), "{}", layer.name);
        paths.push(layer.path.clone());
    }
    (report, paths)
}

#[test]
fn per_kernel_conforms_on_the_int8_path() {
    // Per-kernel scales vary inside every output channel: all layers carry alpha * t in int8.
    let paths = conforms(Granularity::PerKernel, Scales::Asymmetric);
    assert!(paths.iter().all(|p| p == "int8"), "{paths:?}");
}

#[test]
fn per_channel_conforms() {
    conforms(Granularity::PerChannel, Scales::Asymmetric);
}

#[test]
fn per_channel_symmetric_conforms_with_hidden_layers_on_the_ternary_path() {
    let paths = conforms(Granularity::PerChannel, Scales::Symmetric);
    let (hidden, logits) = paths.split_at(paths.len() - 1);
    assert!(hidden.iter().all(|p| p == "ternary"), "{paths:?}");
    // Per-channel scales cannot share the logits' one unit.
    assert_eq!(logits, ["int8"]);
}

#[test]
fn per_layer_conforms() {
    conforms(Granularity::PerLayer, Scales::Asymmetric);
}

#[test]
fn per_layer_symmetric_runs_every_layer_on_the_ternary_path() {
    let paths = conforms(Granularity::PerLayer, Scales::Symmetric);
    assert!(paths.iter().all(|p| p == "ternary"), "{paths:?}");
}

/// Residual blocks on both engine paths: per-kernel scales put every layer on the int8 path,
/// symmetric per-channel ones put every hidden conv (branches included) on the ternary path.
#[test]
fn resnet20_conforms_on_both_paths() {
    let r = common::resnet20();
    let mut o = options(Granularity::PerKernel, Scales::Asymmetric);
    o.activations.calibration_images = 16;
    let (_, paths) = paths_match_the_graph(&Tnt::new(o.clone()).unwrap(), &r.input(), &r.data);
    assert_eq!(paths.len(), 1 + 9 * 2 + 2 + 1);
    assert!(paths.iter().all(|p| p == "int8"), "{paths:?}");
    o.granularity = Granularity::PerChannel;
    o.scales = Scales::Symmetric;
    let (_, paths) = paths_match_the_graph(&Tnt::new(o).unwrap(), &r.input(), &r.data);
    let (hidden, logits) = paths.split_at(paths.len() - 1);
    assert!(hidden.iter().all(|p| p == "ternary"), "{paths:?}");
    assert_eq!(logits, ["int8"]);
}

#[test]
fn optional_finetuning_trains_through_the_ternarizer_and_conforms() {
    let f = common::fixture();
    let method = Tnt::new(TntOptions {
        finetune: Finetune {
            epochs: 1,
            lr: 1e-4,
            batch_size: 64,
        },
        ..options(Granularity::PerKernel, Scales::Asymmetric)
    })
    .expect("valid");
    let q = method.quantize(&f.input(), &mut Quiet).expect("quantizes");
    assert_eq!(q.report.finetune_epochs, 1);
    assert_eq!(q.report.label, "TNT ternary/A8 per_kernel FT1");
    let r = conformance::compare(&q, &f.test, "tnt-ft").expect("runs");
    assert!(r.failures.is_empty() && r.int_accuracy > 0.5, "{r:?}");
}

#[test]
fn bad_configs_name_the_key() {
    for (yaml, key) in [
        ("method: tnt\ngranularity: per_row\n", "per_row"),
        ("method: tnt\ngranularty: per_layer\n", "granularty"),
        ("method: tnt\nscales: three\n", "three"),
        ("method: tnt\nema_decay: 1\n", "`ema_decay`"),
        ("method: tnt\npercentile: 20\n", "`percentile`"),
        ("method: tnt\nema_decay: slow\n", "ema_decay"),
        (
            "method: tnt\ncalibration_images: 0\n",
            "`calibration_images`",
        ),
        (
            "method: tnt\ncalibration_batch: 5000\n",
            "`calibration_batch`",
        ),
    ] {
        let e = error_of(yaml);
        assert!(e.contains(key) && e.contains("test.yaml"), "{yaml}: {e}");
    }
    let ok = RawMethodConfig::from_yaml(
        "method: tnt\ngranularity: per_layer\nscales: symmetric\n",
        "ok.yaml",
    )
    .unwrap();
    assert_eq!(
        registry::parse(&ok).expect("valid").method().label(),
        "TNT ternary/A8 per_layer symmetric"
    );
}

/// The calibration keys `int8` and `tnt` share are read at the top level of either config and
/// written back there (the report's config).
#[test]
fn shared_calibration_keys_round_trip() {
    let yaml = "method: tnt\ncalibration: percentile\npercentile: 99.5\ncalibration_batch: 7\n\
                scales: symmetric\n";
    let o: TntOptions = RawMethodConfig::from_yaml(yaml, "t.yaml")
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(o.activations.calibration, Calibration::Percentile);
    assert_eq!(o.activations.percentile, 99.5);
    assert_eq!(o.activations.calibration_batch, 7);
    assert_eq!(o.activations.calibration_images, 1000, "default kept");
    assert_eq!(o.scales, Scales::Symmetric);
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["calibration_batch"], 7);
    assert_eq!(json["granularity"], "per_kernel");
    let back: TntOptions = serde_json::from_value(json).unwrap();
    assert_eq!(back, o);
    let i: Int8Options = RawMethodConfig::from_yaml(
        "method: int8\nema_decay: 0.5\nper_channel: true\n",
        "i.yaml",
    )
    .unwrap()
    .typed()
    .unwrap();
    assert_eq!((i.activations.ema_decay, i.per_channel), (0.5, true));
}
