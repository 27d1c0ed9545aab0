//! DJQ on Fashion-MNIST with the default `cnn`: integer-engine and fake-quant accuracy, agreement
//! and quantization operations per inference, unified vs per-op, with and without fine-tuning.
//!
//! ```text
//! cargo run --release -p qbench-methods --example djq_table -- [MODEL.safetensors]
//! ```
//!
//! The model defaults to the cached 3-epoch `cnn` of `qbench reproduce`. Choices are made on the
//! validation split (`train_val_split(60000, 0.1, 0)`); test numbers are reported, never tuned on.

use std::path::PathBuf;
use std::time::Instant;

use qbench_datasets::{Split, train_val_split};
use qbench_methods::method::conformance::compare;
use qbench_methods::method::djq::{CalibrationKind, Djq, DjqOptions, FinetuneOptions};
use qbench_methods::method::{QuantInput, QuantMethod};
use qbench_methods::model::{params::Params, zoo};
use qbench_methods::train::{Quiet, accuracy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("/tmp/qb-full/models/cnn-fashion-mnist-5c8adfaa40fe/model.safetensors")
        });
    let data = qbench_datasets::load("fashion-mnist", Split::Train)?;
    let test = qbench_datasets::load("fashion-mnist", Split::Test)?;
    let arch = zoo::build("cnn", [1, 28, 28], 10).ok_or("no cnn")?;
    let mut params = Params::init(&arch, 0)?;
    params.load(&path)?;
    let (train_idx, val_idx) = train_val_split(data.len(), 0.1, 0);
    let calib_idx = train_idx[..2048].to_vec();
    let val = data.subset(&val_idx);
    let all: Vec<usize> = (0..test.len()).collect();
    let float_test = accuracy(&arch, &mut params.clone(), &test, &all, 500)?;
    let float_val = accuracy(&arch, &mut params.clone(), &data, &val_idx, 500)?;
    println!(
        "float cnn: val {:.2}%  test {:.2}%",
        100.0 * float_val,
        100.0 * float_test
    );
    let input = QuantInput {
        arch: &arch,
        params: &params,
        data: &data,
        train_idx: &train_idx,
        calib_idx: &calib_idx,
        val_idx: &val_idx,
        seed: 0,
    };
    println!(
        "| config | calib | lr | val int % | test int % | test fake % | agreement % | max |err| | quant ops/inf | weight bits | time s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    // Min/max calibration everywhere; the 99.99th percentile as the alternative at 4 and 2 bits
    // (choose by the validation column); one epoch of fine-tuning for W4A4 unified.
    // (bits, unified, calibration, fine-tuning epochs, learning rate, per channel)
    let mut configs = Vec::new();
    let only_ft = std::env::var("DJQ_TABLE_ROWS").is_ok_and(|v| v == "ft");
    if !only_ft {
        for bits in [8u8, 4, 2] {
            for unified in [true, false] {
                configs.push((bits, unified, CalibrationKind::Minmax, 0usize, 1e-4, false));
            }
        }
        configs.push((4, true, CalibrationKind::Minmax, 1, 1e-4, false));
        for bits in [4u8, 2] {
            configs.push((bits, true, CalibrationKind::Percentile, 0, 1e-4, false));
        }
    }
    // Fine-tuning variants, to be chosen between by validation accuracy.
    configs.push((4, true, CalibrationKind::Percentile, 1, 1e-3, true));
    configs.push((2, true, CalibrationKind::Percentile, 1, 1e-3, true));
    for (bits, unified, kind, epochs, lr, per_channel) in configs {
        let mut o = DjqOptions {
            weight_bits: bits,
            activation_bits: bits,
            unified,
            per_channel,
            finetune: FinetuneOptions {
                epochs,
                lr,
                batch_size: 64,
            },
            ..DjqOptions::default()
        };
        o.calibration.kind = kind;
        o.calibration.images = 2048;
        let method = Djq::new(o);
        let start = Instant::now();
        let q = method.quantize(&input, &mut Quiet)?;
        let v = compare(&q, &val, "val")?;
        let t = compare(&q, &test, "test")?;
        let wbits = qbench_engine::count_ops(&q.graph).weight_bits;
        println!(
            "| {} | {} | {lr:e} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.0} |",
            method.label(),
            match kind {
                CalibrationKind::Minmax => "minmax",
                CalibrationKind::Percentile => "p99.99",
                CalibrationKind::Mse => "mse",
            },
            100.0 * v.int_accuracy,
            100.0 * t.int_accuracy,
            100.0 * t.fake_accuracy,
            100.0 * t.agreement,
            t.max_logit_error,
            q.report.total_quant_ops(),
            wbits,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
