//! Shared fixtures: real graphs of every built-in method (quantizing small zoo models with
//! `qbench_methods`), test images, and the project's Python environment.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use qbench_datasets::{ImageSet, Normalization, Split};
use qbench_engine::QGraph;
use qbench_methods::method::QuantInput;
use qbench_methods::method::config::MethodConfig;
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::Quiet;

/// Every built-in method's config, quick to run (one short pass for the trained ones).
pub const METHODS: &[(&str, &str)] = &[
    ("int8", "method: int8\n"),
    ("djq", "method: djq\n"),
    ("tnt", "method: tnt\n"),
    ("linear", "method: linear\n"),
    (
        "bnn",
        "method: bnn\nmodel: float\ntrain: {epochs: 1, images: 256}\n",
    ),
    (
        "qnn",
        "method: qnn\nmodel: float\ntrain: {epochs: 1, images: 256}\n",
    ),
];

/// Pseudo-random u8 images.
pub fn random_images(n: usize, len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..n * len)
        .map(|_| {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 24) as u8
        })
        .collect()
}

/// Fashion-MNIST's first test images when installed, else random 28x28 images with 10 classes.
pub fn fashion(n: usize) -> ImageSet {
    if let Ok(set) = qbench_datasets::load("fashion-mnist", Split::Test) {
        let n = n.min(set.len());
        return ImageSet {
            images: set.images[..n * set.image_len()].to_vec(),
            labels: set.labels[..n].to_vec(),
            normalization: set.normalization.clone(),
            boxes: Vec::new(),
            ..set
        };
    }
    ImageSet {
        images: random_images(n, 784, 5),
        labels: (0..n).map(|i| (i % 10) as u16).collect(),
        channels: 1,
        height: 28,
        width: 28,
        num_classes: 10,
        normalization: Normalization::identity(1),
        boxes: Vec::new(),
    }
}

/// The graph `yaml` makes of the zoo model `model` (untrained, seed 1) over `data`.
pub fn quantize(model: &str, yaml: &str, data: &ImageSet) -> QGraph {
    let shape = [data.channels, data.height, data.width];
    let arch = zoo::build(model, shape, data.num_classes).expect("zoo model");
    let params = Params::init(&arch, 1).expect("initializes");
    let idx: Vec<usize> = (0..data.len()).collect();
    let input = QuantInput {
        arch: &arch,
        params: &params,
        data,
        train_idx: &idx,
        calib_idx: &idx[..64.min(idx.len())],
        val_idx: &idx,
        seed: 0,
    };
    let config = MethodConfig::from_yaml(yaml, "test.yaml").expect("config");
    config
        .method()
        .quantize(&input, &mut Quiet)
        .unwrap_or_else(|e| panic!("{model} {yaml}: {e}"))
        .graph
}

/// `(label, graph, images)` for every method on the `cnn` and for int8 and DJQ on ResNet-20
/// (residual adds, global pooling), built once per test binary.
pub fn graphs() -> &'static Vec<(String, QGraph, Vec<u8>)> {
    static G: OnceLock<Vec<(String, QGraph, Vec<u8>)>> = OnceLock::new();
    G.get_or_init(|| {
        let data = fashion(512);
        let mut out = Vec::new();
        for (name, yaml) in METHODS {
            let g = quantize("cnn", yaml, &data);
            out.push((format!("cnn/{name}"), g, data.images[..64 * 784].to_vec()));
        }
        let rgb = ImageSet {
            images: random_images(32, 3 * 32 * 32, 9),
            labels: (0..32).map(|i| (i % 10) as u16).collect(),
            channels: 3,
            height: 32,
            width: 32,
            num_classes: 10,
            normalization: Normalization::cifar10(),
            boxes: Vec::new(),
        };
        for name in ["int8", "djq"] {
            let yaml = METHODS
                .iter()
                .find(|m| m.0 == name)
                .map(|m| m.1)
                .unwrap_or_default();
            let g = quantize("resnet20", yaml, &rgb);
            out.push((
                format!("resnet20/{name}"),
                g,
                rgb.images[..8 * 3072].to_vec(),
            ));
        }
        out
    })
}

/// The project's Python interpreter; panics naming `.ci/python-env` when there is none.
pub fn python() -> PathBuf {
    match qbench_onnx::python::interpreter() {
        Ok(p) if p.exists() || std::env::var_os("QBENCH_PYTHON").is_some() => p,
        Ok(p) => panic!("{} does not exist: run .ci/python-env", p.display()),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `tests/py/<script>` with `args`; panics with its output on failure; returns stdout.
pub fn run_py(script: &str, args: &[&Path]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("py")
        .join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
