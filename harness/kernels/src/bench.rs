//! `qbench bench kernels`: the kernels on the target shapes, 1 and 2 threads, against the
//! measured machine peaks.
//!
//! The CLI calls `let report = bench::run(&BenchConfig::default());`, prints `report` (its
//! `Display` is the table) and, for `--json PATH`, writes `report.to_json()` to `PATH`; the example
//! `cargo run --release -p qbench-kernels --example bench_kernels -- --json PATH` does the same,
//! and `harness/engine/benches/onnxruntime_compare.py` reads that JSON.
//!
//! Every case runs for a fixed time budget and keeps the fastest run (wall clock), which on a
//! shared machine is the run least disturbed by other processes. Alongside, on Linux, it reports
//! a CPU-time rate: work divided by the thread CPU time of the busiest worker
//! (`CLOCK_THREAD_CPUTIME_ID`), which excludes time the threads spent preempted.

use crate::peak::{self, Peaks};
use crate::{ConvGeometry, PackedConvWeights, PackedDepthwiseWeights, PackedWeightsI8, binary};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Time spent per case and thread count.
    pub budget_per_case: Duration,
    /// Time spent per peak loop.
    pub peak_budget: Duration,
    /// Thread counts to run (each gets a local rayon pool).
    pub threads: Vec<usize>,
}

impl Default for BenchConfig {
    /// About 30 s in total: 3 s per case and thread count, 0.4 s per peak loop, 1 and 2 threads.
    fn default() -> Self {
        BenchConfig {
            budget_per_case: Duration::from_millis(3000),
            peak_budget: Duration::from_millis(400),
            threads: vec![1, 2],
        }
    }
}

/// One thread count's result for a case.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadResult {
    /// Threads in the pool.
    pub threads: usize,
    /// Fastest run, seconds of wall time.
    pub best_secs: f64,
    /// Operations (MACs or bit-MACs) per second of the fastest run.
    pub ops_per_sec: f64,
    /// Operations per second of busiest-worker CPU time (fastest run), if measurable.
    pub cpu_ops_per_sec: Option<f64>,
    /// Runs timed.
    pub runs: usize,
}

/// Which peak a case is compared with.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum Kind {
    /// u8 x i8 MACs against the int8 peak.
    Int8,
    /// Bit-MACs against the xor+popcount peak.
    Binary,
}

/// A benchmarked shape.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Short name of the shape.
    pub name: String,
    /// Int8 or binary.
    pub kind: Kind,
    /// Operations per call (MACs, or bit-MACs for binary).
    pub ops: u64,
    /// The ISA the kernel ran on.
    pub isa: String,
    /// One entry per thread count.
    pub results: Vec<ThreadResult>,
    /// Single-thread wall rate / peak.
    pub ratio_to_peak: f64,
    /// Single-thread CPU-time rate / peak (the rate when not preempted), if measurable.
    pub cpu_ratio_to_peak: Option<f64>,
    /// Wall rate with the most threads / single-thread wall rate.
    pub speedup: f64,
    /// The same ratio from CPU-time rates (busiest worker), if measurable.
    pub cpu_speedup: Option<f64>,
}

/// Everything `qbench bench kernels` prints.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Machine peaks measured on the benchmark thread, before and after the cases (the better of
    /// the two per loop).
    pub peaks: Peaks,
    /// Results per shape.
    pub cases: Vec<CaseResult>,
    /// `/proc/loadavg` at the start (other load on the machine skews wall times).
    pub loadavg: Option<String>,
}

impl BenchReport {
    /// The report as pretty JSON (for scripts such as `onnxruntime_compare.py`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Measured peaks (one core; the better of a run at the start and at the end):"
        )?;
        for p in &self.peaks.all {
            writeln!(f, "  {:>9.2} G/s  {}", p.ops_per_sec / 1e9, p.label)?;
        }
        writeln!(
            f,
            "  int8 peak used: {:.2} GMAC/s ({}); binary peak used: {:.2} GBMAC/s ({})",
            self.peaks.int8.ops_per_sec / 1e9,
            self.peaks.int8.label,
            self.peaks.binary.ops_per_sec / 1e9,
            self.peaks.binary.label
        )?;
        if let Some(l) = &self.loadavg {
            writeln!(f, "  load average at start: {}", l.trim())?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "G(B)MAC/s and %peak are from the fastest wall-clock run; the cpu columns divide the \
             work by the busiest thread's CPU time instead (what the kernel does when not \
             preempted by other load)."
        )?;
        writeln!(
            f,
            "{:<32} {:>5} {:>3} {:>9} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8}",
            "case", "isa", "thr", "G(B)MAC/s", "time ms", "%peak", "cpu", "%peak", "speedup", "cpu"
        )?;
        let opt = |v: Option<f64>, scale: f64, suffix: &str| {
            v.map(|x| {
                let prec = if suffix == "x" { 2 } else { 1 };
                format!("{:.prec$}{suffix}", x * scale)
            })
            .unwrap_or_else(|| "-".into())
        };
        for c in &self.cases {
            for r in &c.results {
                let first = r.threads == c.results[0].threads;
                let (peak_w, peak_c, sp_w, sp_c) = if first {
                    (
                        format!("{:.1}%", 100.0 * c.ratio_to_peak),
                        opt(c.cpu_ratio_to_peak, 100.0, "%"),
                        String::new(),
                        String::new(),
                    )
                } else {
                    let one = &c.results[0];
                    (
                        String::new(),
                        String::new(),
                        format!("{:.2}x", r.ops_per_sec / one.ops_per_sec),
                        opt(
                            r.cpu_ops_per_sec
                                .zip(one.cpu_ops_per_sec)
                                .map(|(a, b)| a / b),
                            1.0,
                            "x",
                        ),
                    )
                };
                writeln!(
                    f,
                    "{:<32} {:>5} {:>3} {:>9.2} {:>8.3} {:>7} {:>7} {:>7} {:>8} {:>8}",
                    if first { c.name.as_str() } else { "" },
                    if first { c.isa.as_str() } else { "" },
                    r.threads,
                    r.ops_per_sec / 1e9,
                    r.best_secs * 1e3,
                    peak_w,
                    opt(r.cpu_ops_per_sec, 1e-9, ""),
                    peak_c,
                    sp_w,
                    sp_c,
                )?;
            }
        }
        Ok(())
    }
}

/// CPU time of the calling thread in seconds (`CLOCK_THREAD_CPUTIME_ID`; Linux only).
pub fn thread_cpu_secs() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: plain syscall writing into `ts`.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// The shapes `qbench bench kernels` runs, with their setup. `run(pool)` does one call.
struct Case {
    name: String,
    kind: Kind,
    ops: u64,
    isa: String,
    run: Box<dyn FnMut() + Send>,
}

/// `n` pseudo-random bytes from a 64-bit LCG seeded with `seed`: the benches' (and tests')
/// deterministic inputs.
pub fn lcg_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn conv_case(name: &str, g: ConvGeometry) -> Case {
    let input = lcg_bytes(g.batch * g.in_channels * g.in_h * g.in_w, 1);
    let w: Vec<i8> = lcg_bytes(
        g.out_channels * g.in_channels / g.groups * g.kernel_h * g.kernel_w,
        2,
    )
    .into_iter()
    .map(|v| v as i8)
    .collect();
    let pw = PackedConvWeights::new(&w, &g);
    let mut out = vec![0i32; g.batch * g.out_channels * g.out_h() * g.out_w()];
    let ops = (g.batch * g.out_channels * g.out_h() * g.out_w()) as u64
        * (g.in_channels / g.groups * g.kernel_h * g.kernel_w) as u64;
    Case {
        name: name.into(),
        kind: Kind::Int8,
        ops,
        isa: format!("{:?}", pw.isa()),
        run: Box::new(move || crate::conv2d_u8i8_packed(&input, &pw, &mut out, &g, 3)),
    }
}

/// A depthwise convolution through the depthwise kernel; ops are the useful MACs
/// (`N * C * out_h * out_w * kh * kw`), no padding of the kernel's weight pairs counted.
fn depthwise_case(name: &str, g: ConvGeometry) -> Case {
    let input = lcg_bytes(g.batch * g.in_channels * g.in_h * g.in_w, 7);
    let w: Vec<i8> = lcg_bytes(g.out_channels * g.kernel_h * g.kernel_w, 8)
        .into_iter()
        .map(|v| v as i8)
        .collect();
    let pw = PackedDepthwiseWeights::new(&w, &g);
    let mut out = vec![0i32; g.batch * g.out_channels * g.out_h() * g.out_w()];
    let ops = (g.batch * g.out_channels * g.out_h() * g.out_w() * g.kernel_h * g.kernel_w) as u64;
    Case {
        name: name.into(),
        kind: Kind::Int8,
        ops,
        isa: format!("{:?}", pw.isa()),
        run: Box::new(move || crate::depthwise_conv2d_u8i8_packed(&input, &pw, &mut out, &g, 3)),
    }
}

/// The benchmark shapes: int8 GEMM 1024^3, ResNet-18 3x3 64->64 on 56x56, 3x3 32->64 on 14x14 with
/// batch 64, a MobileNet-style 3x3 depthwise convolution over 128 channels of 56x56, and the binary
/// 3x3 64->64 convolution on 56x56.
fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    {
        let (m, n, k) = (1024, 1024, 1024);
        let a = lcg_bytes(m * k, 3);
        let b: Vec<i8> = lcg_bytes(n * k, 4).into_iter().map(|x| x as i8).collect();
        let pb = PackedWeightsI8::new(&b, n, k);
        let mut c = vec![0i32; m * n];
        v.push(Case {
            name: "gemm u8i8 M=N=K=1024".into(),
            kind: Kind::Int8,
            ops: (m * n * k) as u64,
            isa: format!("{:?}", pb.isa()),
            run: Box::new(move || crate::gemm_u8i8_packed(&a, &pb, &mut c, m)),
        });
    }
    let conv = |batch, cin, hw, cout| ConvGeometry {
        batch,
        in_channels: cin,
        in_h: hw,
        in_w: hw,
        out_channels: cout,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    v.push(conv_case("conv3x3 64->64 56x56 N=1", conv(1, 64, 56, 64)));
    v.push(conv_case("conv3x3 32->64 14x14 N=64", conv(64, 32, 14, 64)));
    v.push(depthwise_case(
        "depthwise3x3 128 56x56 N=1",
        ConvGeometry {
            groups: 128,
            ..conv(1, 128, 56, 128)
        },
    ));
    {
        let g = conv(1, 64, 56, 64);
        let words = crate::words_for_bits(g.in_channels);
        let input: Vec<u64> = lcg_bytes(g.batch * g.in_h * g.in_w * words * 8, 5)
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let w: Vec<u64> = lcg_bytes(g.out_channels * 9 * words * 8, 6)
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let pw = binary::PackedBinaryConvWeights::new(&w, &g);
        let mut out = vec![0i32; g.batch * g.out_channels * g.out_h() * g.out_w()];
        let ops = (g.out_channels * g.out_h() * g.out_w() * 9 * g.in_channels) as u64;
        v.push(Case {
            name: "binary conv3x3 64->64 56x56 N=1".into(),
            kind: Kind::Binary,
            ops,
            isa: format!("{:?}", pw.isa()),
            run: Box::new(move || binary::binary_conv2d_packed(&input, &pw, &mut out, &g)),
        });
    }
    v
}

fn measure(case: &mut Case, threads: usize, budget: Duration) -> ThreadResult {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let cpu_of_workers = |pool: &rayon::ThreadPool| -> Option<Vec<f64>> {
        pool.broadcast(|_| thread_cpu_secs()).into_iter().collect()
    };
    let run = &mut case.run;
    pool.install(&mut *run); // warm-up: caches, page faults, thread start
    let start = Instant::now();
    let (mut best, mut best_cpu, mut runs) = (f64::MAX, f64::MAX, 0usize);
    let mut cpu_ok = true;
    while runs < 3 || start.elapsed() < budget {
        let c0 = cpu_of_workers(&pool);
        let t = Instant::now();
        pool.install(&mut *run);
        let wall = t.elapsed().as_secs_f64();
        let c1 = cpu_of_workers(&pool);
        best = best.min(wall);
        match (c0, c1) {
            (Some(c0), Some(c1)) => {
                let busiest = c0.iter().zip(&c1).map(|(a, b)| b - a).fold(0.0, f64::max);
                if busiest > 0.0 {
                    best_cpu = best_cpu.min(busiest);
                }
            }
            _ => cpu_ok = false,
        }
        runs += 1;
    }
    ThreadResult {
        threads,
        best_secs: best,
        ops_per_sec: case.ops as f64 / best,
        cpu_ops_per_sec: (cpu_ok && best_cpu < f64::MAX).then(|| case.ops as f64 / best_cpu),
        runs,
    }
}

/// Run the benchmark (about 30 s with the default config) and return the report.
pub fn run(config: &BenchConfig) -> BenchReport {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok();
    // Peaks are measured on a one-thread pool's worker, the same kind of thread as the cases.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    let first = pool.install(|| peak::measure(config.peak_budget));
    let mut cases_run = Vec::new();
    for mut case in cases() {
        let results: Vec<ThreadResult> = config
            .threads
            .iter()
            .map(|&t| measure(&mut case, t, config.budget_per_case))
            .collect();
        cases_run.push((case, results));
    }
    // Peaks again at the end; each is the better of the two measurements, so a slow moment
    // (other load, a lower clock) never inflates the ratios.
    let peaks = pool
        .install(|| peak::measure(config.peak_budget))
        .max(&first);
    let mut out = Vec::new();
    for (case, results) in cases_run {
        let peak = match case.kind {
            Kind::Int8 => peaks.int8.ops_per_sec,
            Kind::Binary => peaks.binary.ops_per_sec,
        };
        let one = results[0].ops_per_sec;
        let one_cpu = results[0].cpu_ops_per_sec;
        out.push(CaseResult {
            ratio_to_peak: one / peak,
            cpu_ratio_to_peak: one_cpu.map(|c| c / peak),
            speedup: results.last().map_or(1.0, |r| r.ops_per_sec / one),
            cpu_speedup: results
                .last()
                .and_then(|r| r.cpu_ops_per_sec)
                .zip(one_cpu)
                .map(|(a, b)| a / b),
            name: case.name,
            kind: case.kind,
            ops: case.ops,
            isa: case.isa,
            results,
        });
    }
    BenchReport {
        peaks,
        cases: out,
        loadavg,
    }
}
