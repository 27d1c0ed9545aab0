//! Shared test fixtures: a small `cnn` trained briefly on Fashion-MNIST (or, without the dataset,
//! on a synthetic set), and an untrained ResNet-20 over random RGB images for residual lowering.

#![allow(dead_code)]

pub mod config;

use std::sync::OnceLock;

use qbench_datasets::{ImageSet, Normalization, Split};
use qbench_methods::method::QuantInput;
use qbench_methods::model::arch::Architecture;
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, TrainConfig, train};

/// The trained model and its data.
pub struct Fixture {
    /// Training images (the first few thousand of the split).
    pub data: ImageSet,
    /// Test images.
    pub test: ImageSet,
    /// The architecture.
    pub arch: Architecture,
    /// Trained parameters.
    pub params: Params,
    /// Indices of training images.
    pub train_idx: Vec<usize>,
    /// Calibration indices.
    pub calib_idx: Vec<usize>,
    /// Validation indices.
    pub val_idx: Vec<usize>,
}

impl Fixture {
    /// The method input.
    pub fn input(&self) -> QuantInput<'_> {
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
        boxes: Vec::new(),
        ..*set
    }
}

/// Synthetic 28x28 images of 4 classes: a bright quadrant, with noise.
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
        normalization: Normalization::identity(1),
        boxes: Vec::new(),
    }
}

/// Trains once per test binary.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (data, test) = match (
            qbench_datasets::load("fashion-mnist", Split::Train),
            qbench_datasets::load("fashion-mnist", Split::Test),
        ) {
            (Ok(train), Ok(test)) => (head(&train, 4000), head(&test, 2000)),
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
            seed: 3,
            ..TrainConfig::default()
        };
        let trained = train(
            &arch, &data, &train_idx, &val_idx, &config, None, &mut Quiet,
        )
        .expect("trains");
        let calib_idx = train_idx[..500].to_vec();
        Fixture {
            data,
            test,
            arch,
            params: trained.params,
            train_idx,
            calib_idx,
            val_idx,
        }
    })
}

/// An untrained ResNet-20 over random 32x32 RGB images with CIFAR-10's normalization: residual
/// blocks with identity and projection shortcuts, global pooling and a non-zero-mean first layer
/// (input zero point), small enough to check exact lowering in seconds.
pub struct Residual {
    /// The random images (labels cycle through the classes).
    pub data: ImageSet,
    /// ResNet-20.
    pub arch: Architecture,
    /// Its initial parameters (seed 1).
    pub params: Params,
    /// Every image index.
    pub idx: Vec<usize>,
}

impl Residual {
    /// The method input: every image for training and validation, the first 16 for calibration.
    pub fn input(&self) -> QuantInput<'_> {
        QuantInput {
            arch: &self.arch,
            params: &self.params,
            data: &self.data,
            train_idx: &self.idx,
            calib_idx: &self.idx[..16],
            val_idx: &self.idx,
            seed: 0,
        }
    }
}

/// The ResNet-20 fixture, built once per test binary.
pub fn resnet20() -> &'static Residual {
    static R: OnceLock<Residual> = OnceLock::new();
    R.get_or_init(|| {
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
            normalization: Normalization::cifar10(),
            boxes: Vec::new(),
        };
        let arch = zoo::build("resnet20", [3, 32, 32], 10).expect("resnet20 exists");
        let params = Params::init(&arch, 1).expect("initializes");
        Residual {
            data,
            arch,
            params,
            idx: (0..n).collect(),
        }
    })
}
