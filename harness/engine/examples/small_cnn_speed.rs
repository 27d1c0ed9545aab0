//! Prints how long `evaluate` takes on the small CNN over 10,000 random 28x28 images (a quick check of
//! the speed target without criterion).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-engine cargo run --release -p qbench-engine --example small_cnn_speed`

#[path = "../tests/common/mod.rs"]
mod common;

use qbench_engine::evaluate;
use rand::Rng;

fn main() {
    let graph = common::small_cnn(42, 32, 64);
    let mut r = common::rng(1);
    let n = 10_000;
    let images: Vec<u8> = (0..n * 784).map(|_| r.random()).collect();
    let labels: Vec<u16> = (0..n).map(|_| r.random_range(0..10)).collect();
    for _ in 0..3 {
        let report = evaluate(&graph, &images, &labels, 256, |_| {}).unwrap();
        println!(
            "{} images in {:.3} s = {:.0} images/s ({} MACs/image, {} threads)",
            report.images,
            report.seconds,
            report.images_per_second,
            report.counts.total_macs,
            rayon::current_num_threads()
        );
    }
}
