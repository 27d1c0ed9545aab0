//! `int8` passes the conformance suite per tensor and per channel, on the sequential `cnn` and on a
//! residual ResNet-20; its fixed-point parameters (requantizers and residual adds) are TFLite's, and
//! bad configs are errors naming the key.

mod common;
use common::config::error_of;

use std::collections::BTreeMap;

use qbench_engine::{AddAlign, DType, Op, Requant, WeightKind};
use qbench_methods::error::Result;
use qbench_methods::method::act_range::{ActivationCalibration, Calibration};
use qbench_methods::method::calibrate::{self, TapKind, TensorStats, tap_key};
use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::conformance;
use qbench_methods::method::fixed_point::{
    OutQuant, QuantWeights, Scheme, build, quantize_weights,
};
use qbench_methods::method::fold::{FoldedModel, MacGeometry, MacModule, Module};
use qbench_methods::method::int8::{Int8, Int8Options};
use qbench_methods::method::qat::Finetune;
use qbench_methods::method::{QuantMethod, registry};
use qbench_methods::model::arch::Layer;
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
        activations: ActivationCalibration {
            calibration: Calibration::Percentile,
            ..ActivationCalibration::default()
        },
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

fn mac(name: &str, weight: Vec<f64>, relu: bool) -> MacModule {
    MacModule {
        name: name.into(),
        geometry: MacGeometry::Dense {
            in_features: 2,
            out_features: 2,
        },
        weight,
        bias: vec![0.0, 0.0],
        bn_scale: None,
        relu,
        pool: None,
        input_zero_point: 0,
    }
}

/// 8-bit per-tensor weights and one given output quantization for every activation.
struct Fixed(OutQuant);

impl Scheme for Fixed {
    fn method(&self) -> &str {
        "test"
    }
    fn weights(&self, m: &MacModule, _logits: bool) -> Result<QuantWeights> {
        let (weights, scales) = quantize_weights(&m.weight, m.out_channels(), 8, false);
        Ok(QuantWeights {
            weights,
            scales,
            kind: WeightKind::Int { bits: 8 },
            path: "int8".into(),
        })
    }
    fn activation(&self, _: &str, _: &TensorStats, _: bool) -> Result<OutQuant> {
        Ok(self.0)
    }
}

/// The requantizer of a layer with a known real multiplier `S_in S_w / S_out` holds TFLite's
/// `QuantizeMultiplier` of it (values from TFLite's quantization_util tests and by hand).
#[test]
fn fixed_point_parameters_equal_tflite_for_known_multipliers() {
    let model = FoldedModel {
        input: [2, 1, 1],
        num_classes: 2,
        modules: vec![
            Module::Flatten,
            Module::Mac(mac("m", vec![1.0, -0.5, 0.25, 0.125], true)),
            Module::Mac(mac("logits", vec![1.0, 0.0, 0.0, 1.0], false)),
        ],
        notes: vec![],
    };
    let cal = calibrate::Calibration {
        stats: BTreeMap::from([(tap_key("m", TapKind::PreActivation), TensorStats::new(2))]),
        images: 0,
    };
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
        let out = OutQuant {
            scale: (1.0 / 127.0) / real,
            zero_point: 3,
            dtype: DType::Unsigned { bits: 8 },
        };
        let net = build(&model, &cal, &Fixed(out)).unwrap();
        let node = |name: &str| {
            let node = net.graph.nodes.iter().find(|n| n.name == name);
            &node.unwrap_or_else(|| panic!("no node {name}")).op
        };
        let Op::Dense(layer) = node("m") else {
            panic!("dense layer expected");
        };
        assert_eq!(layer.weights, vec![127, -64, 32, 16]);
        let Op::Requant(rq) = node("m.requant") else {
            panic!("requantizer expected");
        };
        let Requant::FixedPoint {
            multiplier,
            shift,
            min,
            max,
            ..
        } = &rq.requant
        else {
            panic!("fixed point expected");
        };
        assert_eq!((multiplier[0], shift[0]), (m0, e), "multiplier {real}");
        assert_eq!((*min, *max), (3, 255), "the ReLU clamps at the zero point");
        assert!((net.logit_scale - out.scale / 127.0).abs() < 1e-15);
    }
}

#[test]
fn bad_configs_name_the_key() {
    for (yaml, key) in [
        ("method: int8\nper_chanel: true\n", "per_chanel"),
        ("method: int8\nper_channel: 3\n", "per_channel"),
        ("method: int8\ncalibration: median\n", "median"),
        ("method: int8\npercentile: high\n", "percentile"),
        (
            "method: int8\ncalibration_batch: [1]\n",
            "calibration_batch",
        ),
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
        registry::parse(&ok).expect("valid").method().label(),
        "int8 W8A8 per-channel QAT2"
    );
}

/// `int8` on the untrained ResNet-20 fixture: conformance, TFLite ADD parameters on every
/// residual block, and logits close to the float model's.
fn residual_conforms(per_channel: bool) {
    let r = common::resnet20();
    let method = Int8::new(Int8Options {
        per_channel,
        ..Int8Options::default()
    })
    .unwrap();
    let report = conformance::check(&method, &r.input(), &r.data).expect("runs");
    eprintln!(
        "{}: agreement {} max logit error {} (bound {})",
        report.label, report.agreement, report.max_logit_error, report.logit_bound
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let q = method.quantize(&r.input(), &mut Quiet).unwrap();
    let mut adds = 0;
    for (i, node) in q.graph.nodes.iter().enumerate() {
        let Op::Add(add) = &node.op else { continue };
        let AddAlign::FixedPoint {
            left_shift,
            multiplier_a,
            shift_a,
            multiplier_b,
            shift_b,
        } = add.align
        else {
            panic!("{} is not TFLite's ADD", node.name);
        };
        assert_eq!(left_shift, 20);
        // The input with the larger scale has real multiplier 1/2 = 2^30 * 2^-31.
        let halves = [(multiplier_a, shift_a), (multiplier_b, shift_b)];
        assert!(halves.contains(&(1 << 30, 0)), "{}: {halves:?}", node.name);
        assert!(shift_a <= 0 && shift_b <= 0);
        let next = &q.graph.nodes[i + 1];
        let Op::Requant(rq) = &next.op else {
            panic!("{} is not followed by its requantizer", node.name);
        };
        let Requant::FixedPoint {
            zero_point,
            min,
            max,
            ..
        } = &rq.requant
        else {
            panic!("{} is not fixed point", next.name);
        };
        assert_eq!((*min, *max), (*zero_point, 255), "the ReLU is the clamp");
        adds += 1;
    }
    assert_eq!(adds, 9, "ResNet-20 has nine residual blocks");
    // The dequantized integer logits follow the float model's.
    let n = r.idx.len();
    let fake = q.fake_quant.logits(&r.data.images, n).unwrap();
    let (x, _) = qbench_methods::data::batch(&r.data, &r.idx).unwrap();
    let float = qbench_methods::model::forward::forward(
        &r.arch,
        &mut r.params.clone(),
        &x,
        qbench_methods::model::forward::Mode::Eval,
    )
    .unwrap()
    .flatten_all()
    .unwrap()
    .to_vec1::<f32>()
    .unwrap();
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|a| a * a).sum::<f64>().sqrt();
    let err = norm(&mut fake.iter().zip(&float).map(|(a, &b)| a - f64::from(b)))
        / norm(&mut float.iter().map(|&b| f64::from(b)));
    eprintln!("{}: relative L2 error of the logits {err:.4}", report.label);
    assert!(err < 0.1, "relative logit error {err}");
}

#[test]
fn int8_resnet20_per_tensor_conforms() {
    residual_conforms(false);
}

#[test]
fn int8_resnet20_per_channel_conforms() {
    residual_conforms(true);
}

/// What no fixed-point lowering supports gives an error naming it instead of a panic: here a
/// model whose last layer is followed by a ReLU, so it has no logits layer.
#[test]
fn unsupported_layers_are_errors_naming_the_layer() {
    let f = common::fixture();
    let mut arch = f.arch.clone();
    arch.layers.push(Layer::Relu);
    let input = qbench_methods::method::QuantInput {
        arch: &arch,
        ..f.input()
    };
    let err = match Int8::new(Int8Options::default())
        .unwrap()
        .quantize(&input, &mut Quiet)
    {
        Ok(_) => panic!("a ReLU after the logits was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("the last layer must be a plain conv or dense layer"),
        "{err}"
    );
}
