//! Print the measured machine peaks: `cargo run --release -p qbench-kernels --example peaks`.
fn main() {
    let p = qbench_kernels::peak::measure(std::time::Duration::from_millis(200));
    for x in &p.all {
        println!("{:>8.2} G/s  {}", x.ops_per_sec / 1e9, x.label);
    }
}
