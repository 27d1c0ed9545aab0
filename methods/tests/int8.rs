//! `int8` passes the conformance suite per tensor and per channel, its fixed-point parameters are
//! TFLite's, and bad configs are errors naming the key.

mod common;

use qbench_engine::{Op, Requant};
use qbench_methods::method::affine::{AffineModule, ModuleKind};
use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::conformance;
use qbench_methods::method::int8::{Finetune, Int8, Int8Options};
use qbench_methods::method::intnet::{OutQuant, quantize_module, quantize_weights};
use qbench_methods::method::{QuantMethod, registry};
use qbench_methods::train::Quiet;

fn conforms(options: Int8Options) {
    let f = common::fixture();
    let method = Int8::new(options).expect("valid options");
    let report = conformance::check(&method, &f.input(), &f.test).expect("runs");
    eprintln!("{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.int_accuracy > 0.5, "{report:?}");
}

#[test]
fn int8_per_tensor_conforms() {
    conforms(Int8Options::default());
}

#[test]
fn int8_per_channel_conforms() {
    conforms(Int8Options {
        per_channel: true,
        calibration: qbench_methods::method::int8::Calibration::Percentile,
        ..Int8Options::default()
    });
}

#[test]
fn int8_with_finetuning_quantizes_and_stays_accurate() {
    let f = common::fixture();
    let method = Int8::new(Int8Options {
        finetune: Finetune {
            epochs: 1,
            lr: 1e-4,
            batch_size: 64,
        },
        ..Int8Options::default()
    })
    .expect("valid");
    let q = method.quantize(&f.input(), &mut Quiet).expect("quantizes");
    assert_eq!(q.report.finetune_epochs, 1);
    let r = conformance::compare(&q, &f.test, "qat").expect("runs");
    assert!(r.failures.is_empty() && r.int_accuracy > 0.5, "{r:?}");
}

/// Every requantizer of the graph carries TFLite's `QuantizeMultiplier` output: M0 in
/// [2^30, 2^31), shift in -31..=30, clamp `[zero point, 255]` after a ReLU.
#[test]
fn graph_requantizers_are_tflite_fixed_point() {
    let f = common::fixture();
    let q = Int8::new(Int8Options::default())
        .unwrap()
        .quantize(&f.input(), &mut Quiet)
        .unwrap();
    let mut seen = 0;
    for node in &q.graph.nodes {
        if let Op::Requant(r) = &node.op {
            let Requant::FixedPoint {
                multiplier,
                shift,
                zero_point,
                min,
                max,
            } = &r.requant
            else {
                panic!("{} is not fixed point", node.name);
            };
            assert!(multiplier.iter().all(|&m| m >= 1 << 30), "{multiplier:?}");
            assert!(shift.iter().all(|s| (-31..=30).contains(s)));
            assert_eq!((*min, *max), (*zero_point, 255));
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "the cnn has two requantized modules");
}

fn module() -> AffineModule {
    AffineModule {
        name: "m".into(),
        kind: ModuleKind::Dense {
            in_features: 2,
            out_features: 2,
        },
        flatten_before: false,
        weight: vec![1.0, -0.5, 0.25, 0.125],
        bias: vec![0.0, 0.0],
        relu: true,
        pools: vec![],
        acc_shape: vec![2],
    }
}

/// The requantizer of a module with a known real multiplier `S_in S_w / S_out` holds TFLite's
/// `QuantizeMultiplier` of it (values from TFLite's quantization_util tests and by hand).
#[test]
fn fixed_point_parameters_equal_tflite_for_known_multipliers() {
    let m = module();
    // (real multiplier, TFLite M0, TFLite shift)
    let cases = [
        (0.5, 1 << 30, 0),
        (0.25, 1 << 30, -1),
        (0.75, 1_610_612_736, 0),
        (1.0 / 255.0, 1_077_952_576, -7),
        (2.0, 1 << 30, 2),
    ];
    for (real, m0, e) in cases {
        // in_scale 1, w_scale 1 / 127 (max |w| = 1), so S_out = (1/127) / real.
        let w = quantize_weights(&m.weight, 2, 8, false);
        assert_eq!(w.0, vec![127, -64, 32, 16]);
        let out = OutQuant {
            scale: (1.0 / 127.0) / real,
            zero_point: 3,
            bits: 8,
        };
        let (layer, _) = quantize_module(&m, 1.0, 0, w, 8, Some(out)).unwrap();
        let Some((
            Requant::FixedPoint {
                multiplier, shift, ..
            },
            _,
        )) = layer.requant
        else {
            panic!("fixed point expected");
        };
        assert_eq!((multiplier[0], shift[0]), (m0, e), "multiplier {real}");
    }
}

fn error_of(yaml: &str) -> String {
    let raw = RawMethodConfig::from_yaml(yaml, "test.yaml").expect("parses");
    match registry::build(&raw) {
        Ok(_) => panic!("{yaml} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configs_name_the_key() {
    for (yaml, key) in [
        ("method: int8\nper_chanel: true\n", "per_chanel"),
        ("method: int8\nper_channel: 3\n", "per_channel"),
        ("method: int8\ncalibration: median\n", "median"),
        ("method: int8\nema_decay: 1.5\n", "`ema_decay`"),
        ("method: int8\npercentile: 10\n", "`percentile`"),
        (
            "method: int8\ncalibration_images: 0\n",
            "`calibration_images`",
        ),
        (
            "method: int8\nfinetune: {epochs: 1, lr: 0}\n",
            "`finetune.lr`",
        ),
        ("method: int8\nfinetune: {epochs: 1, rate: 1}\n", "rate"),
        (
            "method: int8\nfinetune: {batch_size: 1}\n",
            "`finetune.batch_size`",
        ),
    ] {
        let e = error_of(yaml);
        assert!(e.contains(key), "{yaml}: {e}");
    }
    let ok = RawMethodConfig::from_yaml(
        "method: int8\nper_channel: true\nfinetune: {epochs: 2}\n",
        "ok.yaml",
    )
    .unwrap();
    assert_eq!(
        registry::build(&ok).expect("valid").label(),
        "int8 W8A8 per-channel QAT2"
    );
}

/// Residual models are not supported yet: an error names the layer instead of a panic.
#[test]
fn unsupported_layers_are_errors_naming_the_layer() {
    let f = common::fixture();
    let arch = qbench_methods::model::zoo::build("resnet20", [1, 28, 28], 10).unwrap();
    let params = qbench_methods::model::params::Params::init(&arch, 0).unwrap();
    let input = qbench_methods::method::QuantInput {
        arch: &arch,
        params: &params,
        ..f.input()
    };
    let err = match Int8::new(Int8Options::default())
        .unwrap()
        .quantize(&input, &mut Quiet)
    {
        Ok(_) => panic!("resnet20 was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("residual block"), "{err}");
}
