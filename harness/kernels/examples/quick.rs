use qbench_kernels::*;
use std::time::Instant;
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}
fn main() {
    let (m, n, k) = (1024, 1024, 1024);
    let a: Vec<u8> = (0..m * k).map(|i| (i * 7 % 251) as u8).collect();
    let b: Vec<i8> = (0..n * k).map(|i| (i * 13 % 251) as i8).collect();
    let mut c = vec![0i32; m * n];
    let pk = PackedWeightsI8::new_for(Int8Isa::Avx2, &b, n, k);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        let mut bw = f64::MAX; let mut bc = f64::MAX;
        for _ in 0..50 {
            let t = Instant::now(); let c0 = cpu_ns();
            gemm_u8i8_packed(&a, &pk, &mut c, m);
            let w = t.elapsed().as_secs_f64(); let cc = (cpu_ns() - c0) as f64 * 1e-9;
            bw = bw.min(w); bc = bc.min(cc);
        }
        println!("wall {:.2} GMAC/s, cpu {:.2} GMAC/s", (m*n*k) as f64 / bw / 1e9, (m*n*k) as f64 / bc / 1e9);
    });
}
