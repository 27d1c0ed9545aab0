//! DJQ: conformance at W8A8 and W4A4 (unified and per-op), fewer quantization operations when
//! unified, fine-tuning, config errors naming the key.

use std::sync::OnceLock;

use qbench_datasets::{ImageSet, Split};
use qbench_methods::method::QuantInput;
use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::conformance::check;
use qbench_methods::method::djq::{Djq, DjqOptions, FinetuneOptions};
use qbench_methods::method::{QuantMethod, registry};
use qbench_methods::model::arch::Architecture;
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, TrainConfig, train};

struct Fixture {
    data: ImageSet,
    test: ImageSet,
    arch: Architecture,
    params: Params,
    train_idx: Vec<usize>,
    calib_idx: Vec<usize>,
    val_idx: Vec<usize>,
}

impl Fixture {
    fn input(&self) -> QuantInput<'_> {
        QuantInput {
            arch: &self.arch,
            params: &self.params,
            data: &self.data,
            train_idx: &self.train_idx,
            calib_idx: &self.calib_idx,
            val_idx: &self.val_idx,
            seed: 0,
        }
    }
}

fn head(set: &ImageSet, n: usize) -> ImageSet {
    let n = n.min(set.len());
    ImageSet {
        images: set.images[..n * set.image_len()].to_vec(),
        labels: set.labels[..n].to_vec(),
        normalization: set.normalization.clone(),
        ..*set
    }
}

/// Synthetic 28x28 images of 4 classes (a bright quadrant with noise), if the dataset is absent.
fn synthetic(n: usize, seed: u32) -> ImageSet {
    let mut images = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    let mut state = seed;
    for i in 0..n {
        let label = (i % 4) as u16;
        for y in 0..28 {
            for x in 0..28 {
                state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                let noise = (state >> 25) as u8;
                let q = usize::from(y >= 14) * 2 + usize::from(x >= 14);
                images.push(if q == usize::from(label) {
                    120 + noise
                } else {
                    noise
                });
            }
        }
        labels.push(label);
    }
    ImageSet {
        images,
        labels,
        channels: 1,
        height: 28,
        width: 28,
        num_classes: 4,
        normalization: qbench_datasets::Normalization::identity(1),
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (data, test) = match (
            qbench_datasets::load("fashion-mnist", Split::Train),
            qbench_datasets::load("fashion-mnist", Split::Test),
        ) {
            (Ok(train), Ok(test)) => (head(&train, 3000), head(&test, 2000)),
            _ => {
                eprintln!("fashion-mnist not found: using a synthetic set");
                (synthetic(2000, 1), synthetic(1000, 2))
            }
        };
        let arch = zoo::build("cnn", [1, 28, 28], data.num_classes).expect("cnn exists");
        let train_idx: Vec<usize> = (0..data.len() - 500).collect();
        let val_idx: Vec<usize> = (data.len() - 500..data.len()).collect();
        let config = TrainConfig {
            epochs: 1,
            batch_size: 64,
            seed: 5,
            ..TrainConfig::default()
        };
        let trained = train(
            &arch, &data, &train_idx, &val_idx, &config, None, &mut Quiet,
        )
        .expect("trains");
        Fixture {
            calib_idx: train_idx[..512].to_vec(),
            data,
            test,
            arch,
            params: trained.params,
            train_idx,
            val_idx,
        }
    })
}

fn djq(bits: u8, unified: bool) -> Djq {
    Djq::new(DjqOptions {
        weight_bits: bits,
        activation_bits: bits,
        unified,
        ..DjqOptions::default()
    })
}

fn conforms(method: &Djq) -> f64 {
    let f = fixture();
    let report = check(method, &f.input(), &f.test).expect("runs");
    eprintln!(
        "{}: int {:.4} fake {:.4} agreement {:.4} max error {}",
        report.label,
        report.int_accuracy,
        report.fake_accuracy,
        report.agreement,
        report.max_logit_error
    );
    assert!(
        report.failures.is_empty(),
        "{}: {:?}",
        report.label,
        report.failures
    );
    report.int_accuracy
}

#[test]
fn w8a8_unified_conforms() {
    let acc = conforms(&djq(8, true));
    assert!(acc > 0.6, "W8A8 accuracy {acc}");
}

#[test]
fn w4a4_unified_conforms() {
    conforms(&djq(4, true));
}

#[test]
fn w4a4_per_op_conforms() {
    conforms(&djq(4, false));
}

#[test]
fn per_channel_percentile_conforms() {
    let mut o = DjqOptions {
        weight_bits: 4,
        activation_bits: 6,
        per_channel: true,
        ..DjqOptions::default()
    };
    o.calibration.kind = qbench_methods::method::djq::CalibrationKind::Percentile;
    conforms(&Djq::new(o));
}

#[test]
fn finetuning_runs_and_conforms() {
    let f = fixture();
    let o = DjqOptions {
        weight_bits: 3,
        activation_bits: 3,
        finetune: FinetuneOptions {
            epochs: 1,
            lr: 1e-4,
            batch_size: 128,
        },
        ..DjqOptions::default()
    };
    let small: Vec<usize> = f.train_idx[..640].to_vec();
    let input = QuantInput {
        train_idx: &small,
        ..f.input()
    };
    let q = Djq::new(o)
        .quantize(&input, &mut Quiet)
        .expect("fine-tunes");
    assert_eq!(q.report.finetune_epochs, 1);
    let report = qbench_methods::method::conformance::compare(&q, &f.test, "ft").expect("runs");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[test]
fn unified_uses_at_least_half_the_quantization_ops() {
    let f = fixture();
    let unified = djq(4, true).quantize(&f.input(), &mut Quiet).unwrap();
    let per_op = djq(4, false).quantize(&f.input(), &mut Quiet).unwrap();
    let (u, p) = (
        unified.report.total_quant_ops(),
        per_op.report.total_quant_ops(),
    );
    // cnn: 16x28x28 + 32x14x14 requantizers unified.
    assert_eq!(u, 16 * 28 * 28 + 32 * 14 * 14);
    assert!(2 * u <= p, "unified {u}, per-op {p}");
    assert_eq!(
        unified.report.quant_ops,
        qbench_engine::count_ops(&unified.graph).requant_by_kind
    );
}

#[test]
fn registry_builds_djq_and_bad_configs_name_the_key() {
    let ok = RawMethodConfig::from_yaml(
        "method: djq\nweight_bits: 4\nactivation_bits: 4\ncalibration: {kind: percentile, percentile: 99.9}\nfinetune: {epochs: 0}\n",
        "<inline>",
    )
    .unwrap();
    let m = registry::build(&ok).expect("valid config");
    assert_eq!(m.label(), "DJQ W4A4 unified");
    for (yaml, key) in [
        ("method: djq\nweight_bits: 9\n", "weight_bits"),
        ("method: djq\nactivation_bits: 1\n", "activation_bits"),
        ("method: djq\nwieght_bits: 4\n", "wieght_bits"),
        (
            "method: djq\ncalibration: {percentile: 30}\n",
            "calibration.percentile",
        ),
        ("method: djq\ncalibration: {kind: mean}\n", "mean"),
        ("method: djq\nfinetune: {lr: -1}\n", "finetune.lr"),
        ("method: djq\nfinetune: {batchsize: 3}\n", "batchsize"),
    ] {
        let raw = RawMethodConfig::from_yaml(yaml, "<inline>").unwrap();
        let err = registry::build(&raw).err().expect("rejected").to_string();
        assert!(err.contains(key), "{yaml}: {err}");
    }
}

/// Residual blocks, global pooling and a non-zero-mean first layer (input zero point) on an
/// untrained ResNet-20 over random 32x32 RGB images: the graph and the fake-quant agree exactly.
#[test]
fn resnet20_residual_blocks_lower_exactly() {
    let n = 48;
    let mut state = 7u32;
    let images: Vec<u8> = (0..n * 3 * 32 * 32)
        .map(|_| {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 24) as u8
        })
        .collect();
    let data = ImageSet {
        images,
        labels: (0..n).map(|i| (i % 10) as u16).collect(),
        channels: 3,
        height: 32,
        width: 32,
        num_classes: 10,
        normalization: qbench_datasets::Normalization::cifar10(),
    };
    let arch = zoo::build("resnet20", [3, 32, 32], 10).unwrap();
    let params = Params::init(&arch, 1).unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let input = QuantInput {
        arch: &arch,
        params: &params,
        data: &data,
        train_idx: &idx,
        calib_idx: &idx[..16],
        val_idx: &idx,
        seed: 0,
    };
    let mut ops = Vec::new();
    for unified in [true, false] {
        let q = djq(6, unified)
            .quantize(&input, &mut Quiet)
            .expect("lowers");
        let report =
            qbench_methods::method::conformance::compare(&q, &data, "resnet20").expect("runs");
        assert!(
            report.failures.is_empty(),
            "{unified}: {:?}",
            report.failures
        );
        assert_eq!(
            q.report.quant_ops,
            qbench_engine::count_ops(&q.graph).requant_by_kind
        );
        assert!(
            !q.report.notes.is_empty(),
            "the padding approximation is noted"
        );
        ops.push(q.report.total_quant_ops());
    }
    assert!(2 * ops[0] <= ops[1], "unified {} per-op {}", ops[0], ops[1]);
}
