//! `qbench bench resnet18`: the integer engine's throughput on ResNet-18 at ImageNet size, and
//! what it means for evaluating the 50,000 validation images.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use qbench_datasets::{ImageSet, Normalization};
use qbench_engine::exec::fast::FastExecutor;
use qbench_methods::method::QuantInput;
use qbench_methods::method::config::MethodConfig;
use qbench_methods::model::{params::Params, zoo};
use qbench_methods::train::Quiet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// ImageNet's validation split.
const IMAGENET_VAL_IMAGES: f64 = 50_000.0;
/// Random images used to calibrate the lowering (speed does not depend on them).
const CALIBRATION_IMAGES: usize = 8;

/// Lowers a randomly initialised 224x224 ResNet-18 with `method` and times the engine on batches
/// of `batch` random images at 1 and 2 threads, `seconds` each; prints images/s and the
/// estimated time for 50,000 images. With `onnxruntime`, the exported graph runs in onnxruntime
/// on the same images too, and the ratio is printed per thread count. With `layers`, a per-node
/// profile at one thread follows the engine's rates.
pub fn resnet18(
    batch: usize,
    seconds: f64,
    method: &str,
    onnxruntime: bool,
    layers: bool,
) -> Result<()> {
    let config = MethodConfig::from_yaml(method, "--method")?;
    let arch = zoo::build("resnet18", [3, 224, 224], 1000).context("resnet18 in the zoo")?;
    let params = Params::init(&arch, 0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = CALIBRATION_IMAGES.max(batch);
    let set = ImageSet {
        images: (0..n * 3 * 224 * 224).map(|_| rng.random()).collect(),
        labels: vec![0; n],
        channels: 3,
        height: 224,
        width: 224,
        num_classes: 1000,
        normalization: Normalization::imagenet(),
        boxes: Vec::new(),
    };
    let method = config.method();
    let idx: Vec<usize> = (0..CALIBRATION_IMAGES).collect();
    eprintln!("lowering ResNet-18 (224x224) with {}...", method.label());
    let quantized = method
        .quantize(
            &QuantInput {
                arch: &arch,
                params: &params,
                data: &set,
                train_idx: &idx,
                calib_idx: &idx,
                val_idx: &idx,
                seed: 0,
            },
            &mut Quiet,
        )
        .with_context(|| format!("lowering ResNet-18 with {}", method.label()))?;
    let exec = FastExecutor::new(&quantized.graph)?;
    let input = &set.images[..batch * set.image_len()];
    println!(
        "ResNet-18 224x224, {} graph, integer engine, batches of {batch}",
        method.label()
    );
    let mut engine_rates = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("building the thread pool")?;
        let (images, elapsed, cpu) =
            pool.install(|| -> Result<(usize, Duration, Option<u64>)> {
                exec.run(input, batch)?; // warm-up: buffers, caches
                let (start, cpu0) = (Instant::now(), thread_cpu_ns());
                let mut images = 0;
                while images == 0 || start.elapsed().as_secs_f64() < seconds {
                    exec.run(input, batch)?;
                    images += batch;
                }
                let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
                Ok((images, start.elapsed(), cpu))
            })?;
        let rate = images as f64 / elapsed.as_secs_f64();
        engine_rates.push(rate);
        let total = IMAGENET_VAL_IMAGES / rate;
        // At one thread all work runs on the pool's one thread: its CPU time excludes the time
        // other processes took the core.
        let cpu_rate = match cpu {
            Some(ns) if threads == 1 && ns > 0 => {
                format!(
                    ", {:.2} images per CPU-second",
                    images as f64 / (ns as f64 * 1e-9)
                )
            }
            _ => String::new(),
        };
        println!(
            "{threads} thread{}: {rate:.2} images/s ({images} images in {:.1} s{cpu_rate}); \
             50,000 validation images: {:.0} s ({:.1} min)",
            if threads == 1 { "" } else { "s" },
            elapsed.as_secs_f64(),
            total,
            total / 60.0
        );
    }
    if layers {
        let runs = ((engine_rates[0] * seconds / batch as f64).ceil() as usize).max(1);
        print_layers(&exec, &quantized.graph, input, batch, runs)?;
    }
    if onnxruntime {
        let dir = tempfile::tempdir().context("temporary folder")?;
        // As many images as the engine ran in about `seconds` at one thread, in whole batches.
        let n = batch * ((engine_rates[0] * seconds / batch as f64).ceil() as usize).max(1);
        let images: Vec<u8> = set.images[..batch * set.image_len()].repeat(n / batch);
        for (form, what) in [
            (
                qbench_onnx::Form::QLinear,
                "QLinearConv/QLinearAdd form (onnxruntime's fast path)",
            ),
            (
                qbench_onnx::Form::Exact,
                "exact integer form (ConvInteger, int64 requantizers)",
            ),
        ] {
            let path = dir.path().join("resnet18.onnx");
            let model = qbench_onnx::export_form(
                &quantized.graph,
                "",
                &qbench_onnx::Provenance::default(),
                form,
            )?;
            qbench_io::write_atomic(&path, qbench_onnx::to_bytes(&model))?;
            println!("onnxruntime (CPU provider), {what}, batches of {batch}:");
            for (k, threads) in [1usize, 2].into_iter().enumerate() {
                let run = qbench_onnx::python::run_model(
                    &path,
                    &images,
                    n,
                    &[3, 224, 224],
                    threads,
                    batch,
                    true,
                )?;
                let rate = run
                    .images_per_second
                    .context("onnxruntime printed no rate")?;
                println!(
                    "{threads} thread{}: {rate:.2} images/s ({n} images); engine / onnxruntime = {:.2}",
                    if threads == 1 { "" } else { "s" },
                    engine_rates[k] / rate
                );
            }
        }
    }
    println!("wall-clock rates: other processes on the machine slow them down");
    Ok(())
}

/// Prints each node's share of a one-thread run: milliseconds per image, percent of the total,
/// and GMAC/s for the nodes that multiply-accumulate.
fn print_layers(
    exec: &FastExecutor,
    graph: &qbench_engine::QGraph,
    input: &[u8],
    batch: usize,
    runs: usize,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .context("building the thread pool")?;
    let times = pool.install(|| exec.profile(input, batch, runs))?;
    let counts = qbench_engine::count_ops(graph);
    let total: f64 = times.iter().map(Duration::as_secs_f64).sum();
    let images = (runs * batch) as f64;
    println!("per-node profile, 1 thread, {runs} runs of {batch} images:");
    println!(
        "{:<28} {:<14} {:>9} {:>6} {:>8}",
        "node", "op", "ms/image", "%", "GMAC/s"
    );
    for (row, t) in counts.nodes.iter().zip(&times) {
        let secs = t.as_secs_f64();
        let rate = if row.macs > 0 && secs > 0.0 {
            format!("{:.1}", row.macs as f64 * images / secs / 1e9)
        } else {
            String::new()
        };
        println!(
            "{:<28} {:<14} {:>9.3} {:>6.1} {:>8}",
            row.name,
            row.op,
            1e3 * secs / images,
            100.0 * secs / total.max(f64::MIN_POSITIVE),
            rate
        );
    }
    let by_op = counts.nodes.iter().zip(&times).fold(
        std::collections::BTreeMap::<&str, f64>::new(),
        |mut m, (row, t)| {
            *m.entry(row.op.as_str()).or_default() += t.as_secs_f64();
            m
        },
    );
    for (op, secs) in by_op {
        println!(
            "total {op:<14} {:>9.3} ms/image {:>6.1} %",
            1e3 * secs / images,
            100.0 * secs / total.max(f64::MIN_POSITIVE)
        );
    }
    println!(
        "total {:.3} ms/image, {:.2} GMAC/s over the whole graph",
        1e3 * total / images,
        counts.total_macs as f64 * images / total.max(f64::MIN_POSITIVE) / 1e9
    );
    Ok(())
}

/// CPU time of the calling thread in nanoseconds (Linux `/proc/thread-self/schedstat`), if
/// readable.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
