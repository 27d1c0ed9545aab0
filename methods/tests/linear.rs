//! `linear` passes the conformance suite at 8 and 4 bits on the sequential `cnn` and on a residual
//! ResNet-20, and bad configs are errors naming the key.

mod common;
use common::config::error_of;

use qbench_engine::DType;
use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::conformance;
use qbench_methods::method::linear::{Linear, LinearOptions};
use qbench_methods::method::{QuantInput, QuantMethod, registry};
use qbench_methods::model::arch::Layer;
use qbench_methods::train::Quiet;

fn conforms(bits: u8) {
    let f = common::fixture();
    let method = Linear::new(LinearOptions {
        bits,
        calibration_images: 500,
    })
    .expect("valid options");
    let report = conformance::check(&method, &f.input(), &f.test).expect("runs");
    eprintln!("{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.int_accuracy > 0.5, "{report:?}");
}

#[test]
fn linear_8_bits_conforms() {
    conforms(8);
}

#[test]
fn linear_4_bits_conforms() {
    conforms(4);
}

/// Residual blocks: signed zero-point-0 branch outputs into TFLite's ADD, exactly mirrored.
#[test]
fn linear_resnet20_conforms_at_8_and_4_bits() {
    let r = common::resnet20();
    for bits in [8, 4] {
        let method = Linear::new(LinearOptions {
            bits,
            calibration_images: 16,
        })
        .unwrap();
        let report = conformance::check(&method, &r.input(), &r.data).expect("runs");
        eprintln!(
            "{}: agreement {} max logit error {} (bound {})",
            report.label, report.agreement, report.max_logit_error, report.logit_bound
        );
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let q = method.quantize(&r.input(), &mut Quiet).unwrap();
        let signed = q
            .graph
            .nodes
            .iter()
            .filter(|n| n.output.dtype == DType::Signed { bits })
            .count();
        // Each of the nine blocks' last conv, plus the two projection shortcuts.
        assert_eq!(signed, 9 + 2, "signed branch outputs");
    }
}

/// A hidden layer without a ReLU outside a residual block is an error naming it.
#[test]
fn a_hidden_layer_without_relu_is_an_error_naming_it() {
    let f = common::fixture();
    let mut arch = f.arch.clone();
    let relu = arch
        .layers
        .iter()
        .position(|l| matches!(l, Layer::Relu))
        .unwrap();
    arch.layers.remove(relu);
    let input = QuantInput {
        arch: &arch,
        ..f.input()
    };
    let err = match Linear::new(LinearOptions::default())
        .unwrap()
        .quantize(&input, &mut Quiet)
    {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("conv1") && err.contains("no ReLU"), "{err}");
}

#[test]
fn bad_configs_name_the_key() {
    let e = error_of("method: linear\nbits: 9\n");
    assert!(e.contains("`bits`") && e.contains("2..=8"), "{e}");
    let e = error_of("method: linear\nbits: 1\n");
    assert!(e.contains("`bits`"), "{e}");
    let e = error_of("method: linear\nbitz: 4\n");
    assert!(e.contains("bitz"), "{e}");
    let e = error_of("method: linear\nbits: eight\n");
    assert!(e.contains("bits"), "{e}");
    let e = error_of("method: linear\ncalibration_images: 0\n");
    assert!(e.contains("`calibration_images`"), "{e}");
    let ok = RawMethodConfig::from_yaml("method: linear\nbits: 4\n", "ok.yaml").unwrap();
    assert_eq!(
        registry::parse(&ok).expect("valid").method().label(),
        "linear W4A4"
    );
}
