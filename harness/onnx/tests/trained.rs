//! The float `cnn` trained on Fashion-MNIST (two epochs over 11,500 images), written as a float
//! ONNX model over raw pixels, quantized by onnxruntime's `quantize_static` (QDQ and QOperator),
//! imported, and run by the engine on the test images against onnxruntime's own predictions.

mod common;

use std::path::Path;

use qbench_datasets::{ImageSet, Split};
use qbench_engine::FastExecutor;
use qbench_engine::exec::argmax;
use qbench_methods::method::fold::{FoldedModel, MacGeometry, Module, fold};
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, TrainConfig, train};
use qbench_onnx::emit::{Emitter, int, ints};
use qbench_onnx::export::value_info;
use qbench_onnx::proto::{GraphProto, ModelProto, OperatorSetIdProto, data_type};
use qbench_onnx::python::{run_model_float, write_npy_u8};
use qbench_onnx::tensor::f32_tensor;
use qbench_onnx::{import, read_model, to_bytes};

/// The folded model as float ONNX over raw pixels p: each layer's folded affine map (the
/// input zero point moved into the bias; padding reads 0), ReLU, max pool, flatten.
fn float_onnx(m: &FoldedModel) -> ModelProto {
    let mut e = Emitter::default();
    let mut x = "input".to_string();
    for (i, module) in m.modules.iter().enumerate() {
        e.begin(&format!("m{i}"));
        match module {
            Module::Mac(mac) => {
                let o = mac.out_channels();
                let fan = mac.geometry.fan_in();
                let w: Vec<f32> = mac.weight.iter().map(|&v| v as f32).collect();
                let b: Vec<f32> = (0..o)
                    .map(|c| {
                        let s: f64 = mac.weight[c * fan..(c + 1) * fan].iter().sum();
                        (mac.bias[c] - f64::from(mac.input_zero_point) * s) as f32
                    })
                    .collect();
                let wn = e.constant("weight", f32_tensor("", &mac.geometry.weight_shape(), &w));
                let bn = e.constant("bias", f32_tensor("", &[o], &b));
                x = match mac.geometry {
                    MacGeometry::Conv(c) => e.op(
                        "Conv",
                        &[&x, &wn, &bn],
                        vec![
                            ints("kernel_shape", &[c.kernel as i64; 2]),
                            ints("strides", &[c.stride as i64; 2]),
                            ints("pads", &[c.pad as i64; 4]),
                            int("group", c.groups as i64),
                        ],
                    ),
                    MacGeometry::Dense { .. } => {
                        e.op("Gemm", &[&x, &wn, &bn], vec![int("transB", 1)])
                    }
                };
                if mac.relu {
                    x = e.op("Relu", &[&x], vec![]);
                }
                if let Some(p) = mac.pool {
                    x = e.op(
                        "MaxPool",
                        &[&x],
                        vec![
                            ints("kernel_shape", &[p.kernel as i64; 2]),
                            ints("strides", &[p.stride as i64; 2]),
                            ints("pads", &[p.pad as i64; 4]),
                        ],
                    );
                }
            }
            Module::Flatten => x = e.op("Flatten", &[&x], vec![int("axis", 1)]),
            other => panic!("the test writes conv, dense, pool and flatten only, not {other:?}"),
        }
    }
    let last = e.nodes.last_mut().expect("nodes");
    last.output = vec!["logits".into()];
    let input = value_info("input", data_type::FLOAT, &m.input);
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: e.nodes,
            name: "cnn".into(),
            initializer: e.inits,
            input: vec![input],
            output: vec![value_info("logits", data_type::FLOAT, &[m.num_classes])],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    }
}

fn head(set: &ImageSet, n: usize) -> ImageSet {
    let n = n.min(set.len());
    ImageSet {
        images: set.images[..n * set.image_len()].to_vec(),
        labels: set.labels[..n].to_vec(),
        normalization: set.normalization.clone(),
        boxes: Vec::new(),
        ..*set
    }
}

fn agreement(path: &Path, test: &ImageSet) -> (f64, f64) {
    let graph = import(&read_model(path).expect("reads")).expect("imports");
    let n = test.len();
    let engine = FastExecutor::new(&graph)
        .expect("prepares")
        .run(&test.images, n)
        .expect("runs");
    let ort = run_model_float(path, &test.images, n, &[1, 28, 28]).expect("onnxruntime runs");
    let classes = graph.classes();
    let same = (0..n)
        .filter(|&i| argmax(engine.row(i)) == argmax(&ort[i * classes..(i + 1) * classes]))
        .count();
    let correct = (0..n)
        .filter(|&i| argmax(engine.row(i)) == usize::from(test.labels[i]))
        .count();
    (same as f64 / n as f64, correct as f64 / n as f64)
}

#[test]
fn a_trained_cnn_quantized_by_onnxruntime_agrees_with_it_in_the_engine() {
    let (Ok(train_set), Ok(test_set)) = (
        qbench_datasets::load("fashion-mnist", Split::Train),
        qbench_datasets::load("fashion-mnist", Split::Test),
    ) else {
        assert!(
            std::env::var_os("QBENCH_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required (QBENCH_REQUIRE_FASHION_MNIST) but not installed"
        );
        eprintln!("SKIPPED: Fashion-MNIST is not installed");
        return;
    };
    let data = head(&train_set, 12_000);
    let test = head(&test_set, 10_000);
    let arch = zoo::build("cnn", [1, 28, 28], 10).expect("cnn");
    let train_idx: Vec<usize> = (0..11_500).collect();
    let val_idx: Vec<usize> = (11_500..12_000).collect();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 64,
        seed: 3,
        ..TrainConfig::default()
    };
    let trained = train(
        &arch, &data, &train_idx, &val_idx, &config, None, &mut Quiet,
    )
    .expect("trains");
    let folded = fold(&arch, &trained.params, &data.normalization).expect("folds");
    let dir = tempfile::tempdir().expect("temp dir");
    let fp = dir.path().join("float.onnx");
    std::fs::write(&fp, to_bytes(&float_onnx(&folded))).expect("writes");
    let calib = dir.path().join("calib.npy");
    write_npy_u8(&calib, &data.images[..512 * 784], 512, &[1, 28, 28]).expect("writes");
    common::run_py("quantize_float.py", &[&fp, &calib, dir.path()]);
    for file in ["qdq.onnx", "qop.onnx"] {
        let (agree, accuracy) = agreement(&dir.path().join(file), &test);
        eprintln!(
            "trained cnn, {file}: {} test images, engine vs onnxruntime agreement {agree:.4}, engine accuracy {accuracy:.4}",
            test.len()
        );
        assert!(agree >= 0.999, "{file}: agreement {agree}");
    }
}
