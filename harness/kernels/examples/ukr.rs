use std::time::Instant;
fn run(groups: usize, npanels_a: usize, npanels_b: usize, ldc_mode: bool, acc: bool) {
    let a = vec![1i16; groups * 8 * npanels_a];
    let b = vec![2i16; groups * 32 * npanels_b];
    let mut c = vec![0i32; 64 * npanels_a * npanels_b];
    let mut best = 0.0f64;
    for _ in 0..100 {
        let t = Instant::now();
        for pb in 0..npanels_b {
            for pa in 0..npanels_a {
                let (off, ldc) = if ldc_mode { (pa * 4 * npanels_b * 16 + pb * 16, npanels_b * 16) } else { ((pa * npanels_b + pb) * 64, 16) };
                qbench_kernels::gemm::bench_ukr(groups, &a[pa * groups * 8..], &b[pb * groups * 32..], &mut c[off..], ldc, acc);
            }
        }
        let s = t.elapsed().as_secs_f64();
        best = best.max((npanels_a * npanels_b * groups * 2 * 64) as f64 / s / 1e9);
    }
    println!("groups {groups} A panels {npanels_a} B panels {npanels_b} ldc {ldc_mode} acc {acc}: {:.2} GMAC/s", best);
}
fn main() {
    run(256, 32, 64, false, false);
    run(256, 32, 64, true, false);
    run(256, 32, 64, true, true);
    run(256, 32, 64, false, true);
}
