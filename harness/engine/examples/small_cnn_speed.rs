//! Times `evaluate` on the small CNN (see `benches/small_cnn.rs`) over 10,000 random 28x28 images and
//! prints wall time and the process's CPU time (so a loaded machine can still be judged: with two
//! free cores, wall time approaches CPU time / 2).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-engine cargo run --release -p qbench-engine --example small_cnn_speed`

#[path = "../tests/common/mod.rs"]
mod common;

use qbench_engine::evaluate;
use rand::Rng;

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let graph = common::small_cnn(42, 32, 64);
    let mut r = common::rng(1);
    let n = 10_000;
    let images: Vec<u8> = (0..n * 784).map(|_| r.random()).collect();
    let labels: Vec<u16> = (0..n).map(|_| r.random_range(0..10)).collect();
    for _ in 0..3 {
        let cpu0 = cpu_seconds();
        let report = evaluate(&graph, &images, &labels, 256, |_| {}).unwrap();
        println!(
            "{} images: wall {:.3} s ({:.0} images/s), CPU {:.2} s, {} MACs/image, {} threads",
            report.images,
            report.seconds,
            report.images_per_second,
            cpu_seconds() - cpu0,
            report.counts.total_macs,
            rayon::current_num_threads()
        );
    }
}
