//! DJQ: conformance at W8A8 and W4A4 (unified and per-op), fewer quantization operations when
//! unified, fine-tuning, config errors naming the key.

use qbench_methods::method::QuantInput;
use qbench_methods::method::QuantMethod;
use qbench_methods::method::conformance::check;
use qbench_methods::method::djq::{Djq, DjqOptions, FinetuneOptions};
use qbench_methods::train::Quiet;

mod common;
use common::config::{error_of, label_of};
use common::fixture;

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
    // The report names the variant, so tables and figures pair the two without knowing DJQ.
    assert_eq!(unified.report.variant.as_deref(), Some("unified"));
    assert_eq!(per_op.report.variant.as_deref(), Some("per-op"));
    assert_eq!(
        unified.report.quant_ops,
        qbench_engine::count_ops(&unified.graph).requant_by_kind
    );
}

#[test]
fn registry_builds_djq_and_bad_configs_name_the_key() {
    assert_eq!(
        label_of(
            "method: djq\nweight_bits: 4\nactivation_bits: 4\ncalibration: {kind: percentile, percentile: 99.9}\nfinetune: {epochs: 0}\n"
        ),
        "DJQ W4A4 unified"
    );
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
        let err = error_of(yaml);
        assert!(err.contains(key), "{yaml}: {err}");
    }
}

/// Residual blocks, global pooling and a non-zero-mean first layer (input zero point) on an
/// untrained ResNet-20 over random 32x32 RGB images: the graph and the fake-quant agree exactly.
#[test]
fn resnet20_residual_blocks_lower_exactly() {
    let r = common::resnet20();
    let (data, input) = (&r.data, r.input());
    let mut ops = Vec::new();
    for unified in [true, false] {
        let q = djq(6, unified)
            .quantize(&input, &mut Quiet)
            .expect("lowers");
        let report =
            qbench_methods::method::conformance::compare(&q, data, "resnet20").expect("runs");
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
