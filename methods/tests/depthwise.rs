//! Depthwise-separable convolution end to end: the `mobilenet_small` float model trains, and every
//! method lowers it to a graph with depthwise convolutions (`Conv2d`, or BNN's `BinaryConv2d`)
//! that passes the conformance suite.

mod common;

use std::sync::OnceLock;

use qbench_engine::{Op, QGraph};
use qbench_methods::method::QuantInput;
use qbench_methods::method::config::MethodConfig;
use qbench_methods::method::conformance::check;
use qbench_methods::model::arch::Architecture;
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, TrainConfig, train};

struct Trained {
    arch: Architecture,
    params: Params,
    float_accuracy: f64,
}

/// `mobilenet_small` trained for one epoch on the shared fixture's images.
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let f = common::fixture();
        let arch = zoo::build("mobilenet_small", [1, 28, 28], f.data.num_classes)
            .expect("mobilenet_small exists");
        let config = TrainConfig {
            epochs: 1,
            batch_size: 64,
            seed: 5,
            ..TrainConfig::default()
        };
        let t = train(
            &arch,
            &f.data,
            &f.train_idx,
            &f.val_idx,
            &config,
            None,
            &mut Quiet,
        )
        .expect("trains");
        let all: Vec<usize> = (0..f.test.len()).collect();
        let float_accuracy =
            qbench_methods::train::accuracy(&arch, &mut t.params.clone(), &f.test, &all, 500)
                .expect("evaluates");
        Trained {
            arch,
            params: t.params,
            float_accuracy,
        }
    })
}

/// The 3x3 depthwise convolutions of a graph (DJQ's per-op ablation adds 1x1 ones for its batch
/// norms, which are not counted).
fn depthwise_convs(graph: &QGraph) -> usize {
    let depthwise = |k: usize, groups: usize, c: usize, o: usize| {
        k == 3 && groups > 1 && groups == c && groups == o
    };
    graph
        .nodes
        .iter()
        .filter(|n| match &n.op {
            Op::Conv2d(c) => depthwise(c.kernel_h, c.groups, c.in_channels, c.out_channels),
            Op::BinaryConv2d(c) => depthwise(c.kernel_h, c.groups, c.in_channels, c.out_channels),
            _ => false,
        })
        .count()
}

/// Quantizes the trained model with `yaml`, checks conformance and returns the integer accuracy.
fn conforms(yaml: &str) -> f64 {
    let f = common::fixture();
    let t = trained();
    let input = QuantInput {
        arch: &t.arch,
        params: &t.params,
        ..f.input()
    };
    let config = MethodConfig::from_yaml(yaml, "test.yaml").expect("parses");
    let method = config.method();
    let report = check(method, &input, &f.test).expect("runs");
    eprintln!(
        "{yaml}: float {:.4} int {:.4} agreement {:.4}",
        t.float_accuracy, report.int_accuracy, report.agreement
    );
    assert!(report.failures.is_empty(), "{yaml}: {:?}", report.failures);
    let q = method.quantize(&input, &mut Quiet).expect("quantizes");
    assert_eq!(
        depthwise_convs(&q.graph),
        3,
        "{yaml}: three depthwise layers"
    );
    report.int_accuracy
}

#[test]
fn float_mobilenet_small_learns() {
    let t = trained();
    assert!(
        t.float_accuracy > 0.5,
        "float accuracy {}",
        t.float_accuracy
    );
}

#[test]
fn int8_per_channel_runs_depthwise_layers_near_float_accuracy() {
    let yaml = "{method: int8, per_channel: true}";
    let acc = conforms(yaml);
    assert!(
        acc > trained().float_accuracy - 0.05,
        "{yaml}: {acc} vs float {}",
        trained().float_accuracy
    );
}

#[test]
fn djq_unified_and_per_op_conform() {
    conforms("{method: djq, weight_bits: 8, activation_bits: 8}");
    conforms("{method: djq, weight_bits: 8, activation_bits: 8, unified: false}");
}

#[test]
fn linear_and_tnt_conform() {
    conforms("{method: linear, bits: 8}");
    conforms("{method: tnt, granularity: per_kernel}");
}

#[test]
fn qnn_and_bnn_conform() {
    conforms("{method: qnn, weight_bits: 2, activation_bits: 2, train: {images: 500}}");
    // Binary activations: the depthwise layers run on the engine's grouped xnor convolution.
    conforms("{method: bnn, train: {images: 500}}");
}
