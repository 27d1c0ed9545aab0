//! Training is deterministic, learns, and resumes bit for bit from its checkpoint.

use qbench_datasets::{ImageSet, Normalization};
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, TrainConfig, TrainObserver, accuracy, checkpoint_path, train};

/// 400 8x8 images of two easily separated classes: bright top half or bright bottom half, with noise.
fn toy_set() -> ImageSet {
    let (n, h, w) = (400, 8, 8);
    let mut images = Vec::with_capacity(n * h * w);
    let mut labels = Vec::with_capacity(n);
    let mut state = 12345u32;
    for i in 0..n {
        let label = (i % 2) as u16;
        for y in 0..h {
            for _ in 0..w {
                state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                let noise = (state >> 26) as u8; // 0..63
                let bright = (y < h / 2) == (label == 0);
                images.push(if bright { 180 + noise } else { noise });
            }
        }
        labels.push(label);
    }
    ImageSet {
        images,
        labels,
        channels: 1,
        height: h,
        width: w,
        num_classes: 2,
        normalization: Normalization::identity(1),
        boxes: Vec::new(),
    }
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        seed: 7,
        ..TrainConfig::default()
    }
}

fn weights_bytes(params: &Params) -> Vec<(String, Vec<f32>)> {
    params
        .tensors()
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn same_seed_gives_the_same_weights_and_the_model_learns() {
    let set = toy_set();
    let arch = zoo::build("cnn", [1, 8, 8], 2).unwrap();
    let idx: Vec<usize> = (0..320).collect();
    let val: Vec<usize> = (320..400).collect();
    let a = train(&arch, &set, &idx, &val, &config(2), None, &mut Quiet).unwrap();
    let b = train(&arch, &set, &idx, &val, &config(2), None, &mut Quiet).unwrap();
    assert_eq!(weights_bytes(&a.params), weights_bytes(&b.params));
    assert!(
        a.val_accuracy.unwrap() > 0.95,
        "validation accuracy {:?}",
        a.val_accuracy
    );
    let mut params = a.params;
    assert!(accuracy(&arch, &mut params, &set, &val, 16).unwrap() > 0.95);
}

#[test]
fn another_seed_gives_other_weights() {
    let set = toy_set();
    let arch = zoo::build("cnn", [1, 8, 8], 2).unwrap();
    let idx: Vec<usize> = (0..320).collect();
    let a = train(&arch, &set, &idx, &[], &config(1), None, &mut Quiet).unwrap();
    let other = TrainConfig {
        seed: 8,
        ..config(1)
    };
    let b = train(&arch, &set, &idx, &[], &other, None, &mut Quiet).unwrap();
    let (wa, wb) = (weights_bytes(&a.params), weights_bytes(&b.params));
    assert_eq!(wa.len(), wb.len());
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        if name.ends_with(".weight") {
            assert_ne!(x, y, "{name} is the same for seeds 7 and 8");
        }
    }
}

/// Stops training after the first epoch's checkpoint, as Ctrl-C would.
struct StopAfterFirstEpoch {
    done: bool,
}
impl TrainObserver for StopAfterFirstEpoch {
    fn epoch_end(&mut self, _: usize, _: Option<f64>) {
        self.done = true;
    }
    fn should_stop(&self) -> bool {
        self.done
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let set = toy_set();
    let arch = zoo::build("mlp", [1, 8, 8], 2).unwrap();
    let idx: Vec<usize> = (0..320).collect();
    let dir = tempfile::tempdir().unwrap();
    let straight = train(&arch, &set, &idx, &[], &config(3), None, &mut Quiet).unwrap();

    let stopped = train(
        &arch,
        &set,
        &idx,
        &[],
        &config(3),
        Some(dir.path()),
        &mut StopAfterFirstEpoch { done: false },
    );
    assert!(matches!(
        stopped,
        Err(qbench_methods::MethodError::Interrupted)
    ));
    assert!(checkpoint_path(dir.path()).exists());
    let resumed = train(
        &arch,
        &set,
        &idx,
        &[],
        &config(3),
        Some(dir.path()),
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(resumed.epochs_run, 2);
    assert_eq!(
        weights_bytes(&straight.params),
        weights_bytes(&resumed.params)
    );
}

#[test]
fn a_checkpoint_from_another_configuration_is_refused() {
    let set = toy_set();
    let arch = zoo::build("mlp", [1, 8, 8], 2).unwrap();
    let idx: Vec<usize> = (0..320).collect();
    let dir = tempfile::tempdir().unwrap();
    train(
        &arch,
        &set,
        &idx,
        &[],
        &config(1),
        Some(dir.path()),
        &mut Quiet,
    )
    .unwrap();
    let mut other = config(1);
    other.seed = 8;
    let err = train(&arch, &set, &idx, &[], &other, Some(dir.path()), &mut Quiet)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("another model or configuration"),
        "{err}"
    );
}

#[test]
fn saved_weights_round_trip_and_a_wrong_file_is_rejected() {
    let arch = zoo::build("cnn", [1, 8, 8], 2).unwrap();
    let params = Params::init(&arch, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let sha = params.save(&path).unwrap();
    assert_eq!(sha, qbench_io::sha256_file(&path).unwrap());
    let mut loaded = Params::init(&arch, 2).unwrap();
    assert_eq!(loaded.load(&path).unwrap(), sha);
    assert_eq!(weights_bytes(&loaded), weights_bytes(&params));

    let other = zoo::build("mlp", [1, 8, 8], 2).unwrap();
    let err = Params::init(&other, 0).unwrap().load(&path).unwrap_err();
    assert!(err.to_string().contains("the model expects"), "{err}");
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let err = loaded.load(&path).unwrap_err();
    assert!(err.to_string().contains("m.safetensors"), "{err}");
}
