//! The fixed-point baselines on Fashion-MNIST with the default `cnn`: integer-engine and fake-quant
//! test accuracy, their agreement, quantization operations per inference and weight bits, for
//! `int8` per tensor and per channel and `linear` at 8 and 4 bits.
//!
//! ```text
//! cargo run --release -p qbench-methods --example int8_table -- [model.safetensors]
//! ```
//!
//! The model defaults to `/tmp/qb-full/models/cnn-fashion-mnist-5c8adfaa40fe/model.safetensors`
//! (what `qbench train` caches for the default run); calibration uses the first 1000 images of the
//! training part of `train_val_split(60000, 0.1, 0)`.

use std::path::PathBuf;

use qbench_datasets::{Split, train_val_split};
use qbench_engine::count_ops;
use qbench_methods::method::conformance::compare;
use qbench_methods::method::int8::{Int8, Int8Options};
use qbench_methods::method::linear::{Linear, LinearOptions};
use qbench_methods::method::{QuantInput, QuantMethod};
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{Quiet, accuracy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("/tmp/qb-full/models/cnn-fashion-mnist-5c8adfaa40fe/model.safetensors")
        });
    let train = qbench_datasets::load("fashion-mnist", Split::Train)?;
    let test = qbench_datasets::load("fashion-mnist", Split::Test)?;
    let arch = zoo::build("cnn", [1, 28, 28], 10).ok_or("no cnn")?;
    let mut params = Params::init(&arch, 0)?;
    params.load(&path)?;
    let (train_idx, val_idx) = train_val_split(train.len(), 0.1, 0);
    let calib_idx = train_idx[..1000].to_vec();
    let all: Vec<usize> = (0..test.len()).collect();
    let float = accuracy(&arch, &mut params, &test, &all, 500)?;
    let input = QuantInput {
        arch: &arch,
        params: &params,
        data: &train,
        train_idx: &train_idx,
        calib_idx: &calib_idx,
        val_idx: &val_idx,
        seed: 0,
    };
    let methods: Vec<Box<dyn QuantMethod>> = vec![
        Box::new(Int8::new(Int8Options::default())?),
        Box::new(Int8::new(Int8Options {
            per_channel: true,
            ..Int8Options::default()
        })?),
        Box::new(Linear::new(LinearOptions {
            bits: 8,
            ..LinearOptions::default()
        })?),
        Box::new(Linear::new(LinearOptions {
            bits: 4,
            ..LinearOptions::default()
        })?),
    ];
    println!(
        "model {} (float test accuracy {:.2}%)",
        path.display(),
        100.0 * float
    );
    println!(
        "| method | integer test acc. | fake-quant acc. | agreement | max logit err. | quant ops/inference | weight bits |"
    );
    println!("|---|---|---|---|---|---|---|");
    for m in &methods {
        let q = m.quantize(&input, &mut Quiet)?;
        let r = compare(&q, &test, &m.label())?;
        let counts = count_ops(&q.graph);
        println!(
            "| {} | {:.2}% | {:.2}% | {:.2}% | {} | {} ({}) | {} |",
            m.label(),
            100.0 * r.int_accuracy,
            100.0 * r.fake_accuracy,
            100.0 * r.agreement,
            r.max_logit_error,
            q.report.total_quant_ops(),
            q.report
                .quant_ops
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            counts.weight_bits
        );
    }
    Ok(())
}
