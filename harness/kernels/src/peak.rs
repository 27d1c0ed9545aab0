//! Measured machine peaks: short tight inline-asm loops on the calling core.
//!
//! Each loop keeps enough independent accumulators to saturate the execution ports and runs a
//! fixed instruction sequence; the rate is MACs (or bit-MACs) per second of wall time, best of
//! a few repetitions. Call from a thread that stays on one core (the benchmark runs it on the
//! thread it measures the kernels from).
//!
//! MAC counting: a 256-bit `vpmaddwd` multiplies 16 i16 pairs = 16 MACs; a 256-bit
//! `vpmaddubsw` does 32 u8 x i8 products = 32 MACs; a 512-bit `vpdpbusd` does 64 MACs. A binary
//! MAC is one bit through xor + popcount.

use serde::Serialize;
use std::time::{Duration, Instant};

/// One measured peak.
#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    /// Which instruction sequence was timed.
    pub label: String,
    /// Operations per second (MAC/s for int8, bit-MAC/s for binary).
    pub ops_per_sec: f64,
}

/// Peaks measured on this machine.
#[derive(Clone, Debug, Serialize)]
pub struct Peaks {
    /// Peak of the instruction sequence the exact int8 kernel uses on this CPU
    /// (`vpmaddwd`+`vpaddd` on AVX2, `vpdpbusd` on AVX-512 VNNI); the denominator of int8 ratios.
    pub int8: Peak,
    /// Peak of the fastest xor+popcount sequence available; the denominator of binary ratios.
    pub binary: Peak,
    /// Every loop that was timed, labelled (including the ones not used as denominators).
    pub all: Vec<Peak>,
}

impl Peaks {
    /// Per loop, the faster of `self` and `other` (two measurements of the same loops).
    pub fn max(&self, other: &Peaks) -> Peaks {
        let best = |p: &Peak| -> Peak {
            match other.all.iter().find(|q| q.label == p.label) {
                Some(q) if q.ops_per_sec > p.ops_per_sec => q.clone(),
                _ => p.clone(),
            }
        };
        Peaks {
            int8: best(&self.int8),
            binary: best(&self.binary),
            all: self.all.iter().map(best).collect(),
        }
    }
}

fn time_best(mut f: impl FnMut(u64), ops_per_iter: f64, budget: Duration) -> f64 {
    // Short windows (~1 ms) repeated for the whole budget, best one kept: on a shared machine
    // most windows then run without being preempted.
    let mut iters = 256u64;
    loop {
        let t = Instant::now();
        f(iters);
        if t.elapsed() >= Duration::from_micros(500) || iters > (1 << 40) {
            break;
        }
        iters *= 2;
    }
    let start = Instant::now();
    let mut best = 0.0f64;
    while start.elapsed() < budget {
        let t = Instant::now();
        f(iters);
        let secs = t.elapsed().as_secs_f64();
        best = best.max(iters as f64 * ops_per_iter / secs);
    }
    best
}

/// Measure all peaks this CPU supports, spending roughly `budget` per loop.
pub fn measure(budget: Duration) -> Peaks {
    let mut all = Vec::new();
    #[allow(unused_mut)]
    let mut int8 = None;
    let scalar_pop = Peak {
        label: "scalar xor+popcnt+add (u64, 8 chains)".into(),
        ops_per_sec: time_best(scalar_popcnt_loop, 8.0 * 64.0, budget),
    };
    all.push(scalar_pop.clone());
    let mut best_bin = scalar_pop;
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            let madd = Peak {
                label: "AVX2 vpmaddwd+vpaddd (exact int8 path, 12 accumulators)".into(),
                ops_per_sec: time_best(|n| unsafe { x86::madd_add(n) }, 12.0 * 16.0, budget),
            };
            all.push(madd.clone());
            int8 = Some(madd);
            all.push(Peak {
                label: "AVX2 vpmaddwd alone (no accumulate, 12 independent)".into(),
                ops_per_sec: time_best(|n| unsafe { x86::madd_only(n) }, 12.0 * 16.0, budget),
            });
            all.push(Peak {
                label: "AVX2 vpaddd alone (12 chains, counted as 16 lanes; reference only)".into(),
                ops_per_sec: time_best(|n| unsafe { x86::add_only(n) }, 12.0 * 16.0, budget),
            });
            all.push(Peak {
                label: "AVX2 vpmaddubsw+vpmaddwd+vpaddd (saturating, not exact in general)".into(),
                ops_per_sec: time_best(|n| unsafe { x86::maddubs(n) }, 8.0 * 32.0, budget),
            });
            let lut = Peak {
                label: "AVX2 vpxor + nibble-LUT vpshufb popcount + vpsadbw".into(),
                ops_per_sec: time_best(
                    |n| unsafe { x86::lut_popcnt(n) },
                    4.0 * 256.0 * 8.0,
                    budget,
                ),
            };
            all.push(lut.clone());
            if lut.ops_per_sec > best_bin.ops_per_sec {
                best_bin = lut;
            }
        }
        if crate::dispatch::Int8Isa::Avx512Vnni.available() {
            let vnni = Peak {
                label: "AVX-512 VNNI vpdpbusd zmm (12 accumulators)".into(),
                ops_per_sec: time_best(|n| unsafe { x86::vnni(n) }, 12.0 * 64.0, budget),
            };
            all.push(vnni.clone());
            int8 = Some(vnni);
        }
        if crate::dispatch::BinaryIsa::Avx512Vpopcnt.available() {
            let vp = Peak {
                label: "AVX-512 vpxorq+vpopcntq+vpaddq zmm (8 chains)".into(),
                ops_per_sec: time_best(|n| unsafe { x86::vpopcnt(n) }, 8.0 * 512.0, budget),
            };
            all.push(vp.clone());
            if vp.ops_per_sec > best_bin.ops_per_sec {
                best_bin = vp;
            }
        }
    }
    let int8 = int8.unwrap_or_else(|| Peak {
        label: "no SIMD int8 path on this CPU (scalar)".into(),
        ops_per_sec: f64::NAN,
    });
    Peaks {
        int8,
        binary: best_bin,
        all,
    }
}

/// xor + popcount + add over 8 words (8 independent accumulators), `n` times.
fn scalar_popcnt_loop(n: u64) {
    let a: [u64; 8] = std::hint::black_box(std::array::from_fn(|i| {
        (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("popcnt") {
        // SAFETY: popcnt is present; the asm reads only `a`.
        unsafe { x86::scalar_popcnt(n, &a) };
        return;
    }
    let keys: [u64; 8] = std::hint::black_box(std::array::from_fn(|i| !(i as u64) << 7));
    let mut acc = [0u64; 8];
    for _ in 0..n {
        let a = std::hint::black_box(&a);
        for j in 0..8 {
            acc[j] += u64::from((a[j] ^ keys[j]).count_ones());
        }
    }
    std::hint::black_box(acc);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// 8 x (load, `xor` with an immediate key, `popcnt`, `add`) per iteration.
    #[target_feature(enable = "popcnt")]
    pub unsafe fn scalar_popcnt(n: u64, a: &[u64; 8]) {
        let (mut c0, mut c1, mut c2, mut c3) = (0u64, 0u64, 0u64, 0u64);
        let (mut c4, mut c5, mut c6, mut c7) = (0u64, 0u64, 0u64, 0u64);
        unsafe {
            asm!(
                "2:",
                "mov {t0}, [{p}]", "xor {t0}, 0x35a5c3f", "popcnt {t0}, {t0}", "add {c0}, {t0}",
                "mov {t1}, [{p} + 8]", "xor {t1}, -0x1234567", "popcnt {t1}, {t1}", "add {c1}, {t1}",
                "mov {t0}, [{p} + 16]", "xor {t0}, 0x35a5c3f", "popcnt {t0}, {t0}", "add {c2}, {t0}",
                "mov {t1}, [{p} + 24]", "xor {t1}, -0x1234567", "popcnt {t1}, {t1}", "add {c3}, {t1}",
                "mov {t0}, [{p} + 32]", "xor {t0}, 0x35a5c3f", "popcnt {t0}, {t0}", "add {c4}, {t0}",
                "mov {t1}, [{p} + 40]", "xor {t1}, -0x1234567", "popcnt {t1}, {t1}", "add {c5}, {t1}",
                "mov {t0}, [{p} + 48]", "xor {t0}, 0x35a5c3f", "popcnt {t0}, {t0}", "add {c6}, {t0}",
                "mov {t1}, [{p} + 56]", "xor {t1}, -0x1234567", "popcnt {t1}, {t1}", "add {c7}, {t1}",
                "dec {n}",
                "jnz 2b",
                n = inout(reg) n => _,
                p = in(reg) a.as_ptr(),
                t0 = out(reg) _, t1 = out(reg) _,
                c0 = inout(reg) c0, c1 = inout(reg) c1, c2 = inout(reg) c2, c3 = inout(reg) c3,
                c4 = inout(reg) c4, c5 = inout(reg) c5, c6 = inout(reg) c6, c7 = inout(reg) c7,
                options(nostack, readonly),
            );
        }
        std::hint::black_box([c0, c1, c2, c3, c4, c5, c6, c7]);
    }

    /// 12 x (`vpmaddwd` into a temporary, `vpaddd` into an accumulator) per iteration.
    #[target_feature(enable = "avx2")]
    pub unsafe fn madd_add(n: u64) {
        unsafe {
            asm!(
                "vpxor ymm0, ymm0, ymm0", "vpxor ymm1, ymm1, ymm1", "vpxor ymm2, ymm2, ymm2",
                "vpxor ymm3, ymm3, ymm3", "vpxor ymm4, ymm4, ymm4", "vpxor ymm5, ymm5, ymm5",
                "vpxor ymm6, ymm6, ymm6", "vpxor ymm7, ymm7, ymm7", "vpxor ymm8, ymm8, ymm8",
                "vpxor ymm9, ymm9, ymm9", "vpxor ymm10, ymm10, ymm10", "vpxor ymm11, ymm11, ymm11",
                "vpcmpeqw ymm14, ymm14, ymm14", "vpcmpeqw ymm15, ymm15, ymm15",
                "2:",
                "vpmaddwd ymm12, ymm14, ymm15", "vpaddd ymm0, ymm0, ymm12",
                "vpmaddwd ymm13, ymm14, ymm15", "vpaddd ymm1, ymm1, ymm13",
                "vpmaddwd ymm12, ymm14, ymm15", "vpaddd ymm2, ymm2, ymm12",
                "vpmaddwd ymm13, ymm14, ymm15", "vpaddd ymm3, ymm3, ymm13",
                "vpmaddwd ymm12, ymm14, ymm15", "vpaddd ymm4, ymm4, ymm12",
                "vpmaddwd ymm13, ymm14, ymm15", "vpaddd ymm5, ymm5, ymm13",
                "vpmaddwd ymm12, ymm14, ymm15", "vpaddd ymm6, ymm6, ymm12",
                "vpmaddwd ymm13, ymm14, ymm15", "vpaddd ymm7, ymm7, ymm13",
                "vpmaddwd ymm12, ymm14, ymm15", "vpaddd ymm8, ymm8, ymm12",
                "vpmaddwd ymm13, ymm14, ymm15", "vpaddd ymm9, ymm9, ymm13",
                "vpmaddwd ymm12, ymm14, ymm15", "vpaddd ymm10, ymm10, ymm12",
                "vpmaddwd ymm13, ymm14, ymm15", "vpaddd ymm11, ymm11, ymm13",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
                out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
                out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _, out("ymm14") _,
                out("ymm15") _,
                options(nostack, nomem),
            );
        }
    }

    /// 12 independent `vpmaddwd` per iteration (throughput of the multiply alone).
    #[target_feature(enable = "avx2")]
    pub unsafe fn madd_only(n: u64) {
        unsafe {
            asm!(
                "vpcmpeqw ymm14, ymm14, ymm14", "vpcmpeqw ymm15, ymm15, ymm15",
                "2:",
                "vpmaddwd ymm0, ymm14, ymm15", "vpmaddwd ymm1, ymm14, ymm15",
                "vpmaddwd ymm2, ymm14, ymm15", "vpmaddwd ymm3, ymm14, ymm15",
                "vpmaddwd ymm4, ymm14, ymm15", "vpmaddwd ymm5, ymm14, ymm15",
                "vpmaddwd ymm6, ymm14, ymm15", "vpmaddwd ymm7, ymm14, ymm15",
                "vpmaddwd ymm8, ymm14, ymm15", "vpmaddwd ymm9, ymm14, ymm15",
                "vpmaddwd ymm10, ymm14, ymm15", "vpmaddwd ymm11, ymm14, ymm15",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
                out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
                out("ymm10") _, out("ymm11") _, out("ymm14") _, out("ymm15") _,
                options(nostack, nomem),
            );
        }
    }

    /// 12 independent `vpaddd` chains per iteration (counted as 16 lanes each, for comparison with
    /// the `vpmaddwd`+`vpaddd` rate: an exact sequence needs one `vpaddd` per 16 MACs).
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_only(n: u64) {
        unsafe {
            asm!(
                "vpcmpeqw ymm14, ymm14, ymm14",
                "2:",
                "vpaddd ymm0, ymm0, ymm14", "vpaddd ymm1, ymm1, ymm14",
                "vpaddd ymm2, ymm2, ymm14", "vpaddd ymm3, ymm3, ymm14",
                "vpaddd ymm4, ymm4, ymm14", "vpaddd ymm5, ymm5, ymm14",
                "vpaddd ymm6, ymm6, ymm14", "vpaddd ymm7, ymm7, ymm14",
                "vpaddd ymm8, ymm8, ymm14", "vpaddd ymm9, ymm9, ymm14",
                "vpaddd ymm10, ymm10, ymm14", "vpaddd ymm11, ymm11, ymm14",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
                out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
                out("ymm10") _, out("ymm11") _, out("ymm14") _,
                options(nostack, nomem),
            );
        }
    }

    /// 8 x (`vpmaddubsw`, `vpmaddwd` with ones, `vpaddd`) per iteration: 32 MACs each.
    #[target_feature(enable = "avx2")]
    pub unsafe fn maddubs(n: u64) {
        unsafe {
            asm!(
                "vpxor ymm0, ymm0, ymm0", "vpxor ymm1, ymm1, ymm1", "vpxor ymm2, ymm2, ymm2",
                "vpxor ymm3, ymm3, ymm3", "vpxor ymm4, ymm4, ymm4", "vpxor ymm5, ymm5, ymm5",
                "vpxor ymm6, ymm6, ymm6", "vpxor ymm7, ymm7, ymm7",
                "vpcmpeqw ymm13, ymm13, ymm13", "vpsrlw ymm13, ymm13, 15",
                "vpcmpeqw ymm14, ymm14, ymm14", "vpsrlw ymm14, ymm14, 9",
                "vpcmpeqw ymm15, ymm15, ymm15", "vpsrlw ymm15, ymm15, 10",
                "2:",
                "vpmaddubsw ymm8, ymm14, ymm15", "vpmaddwd ymm8, ymm8, ymm13", "vpaddd ymm0, ymm0, ymm8",
                "vpmaddubsw ymm9, ymm14, ymm15", "vpmaddwd ymm9, ymm9, ymm13", "vpaddd ymm1, ymm1, ymm9",
                "vpmaddubsw ymm10, ymm14, ymm15", "vpmaddwd ymm10, ymm10, ymm13", "vpaddd ymm2, ymm2, ymm10",
                "vpmaddubsw ymm11, ymm14, ymm15", "vpmaddwd ymm11, ymm11, ymm13", "vpaddd ymm3, ymm3, ymm11",
                "vpmaddubsw ymm8, ymm14, ymm15", "vpmaddwd ymm8, ymm8, ymm13", "vpaddd ymm4, ymm4, ymm8",
                "vpmaddubsw ymm9, ymm14, ymm15", "vpmaddwd ymm9, ymm9, ymm13", "vpaddd ymm5, ymm5, ymm9",
                "vpmaddubsw ymm10, ymm14, ymm15", "vpmaddwd ymm10, ymm10, ymm13", "vpaddd ymm6, ymm6, ymm10",
                "vpmaddubsw ymm11, ymm14, ymm15", "vpmaddwd ymm11, ymm11, ymm13", "vpaddd ymm7, ymm7, ymm11",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _,
                out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _,
                out("ymm10") _, out("ymm11") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
                options(nostack, nomem),
            );
        }
    }

    /// Nibble-LUT popcount of `x ^ key` over 8 x 256-bit loads, 4 times per iteration, bytes
    /// accumulated with `vpaddb` and folded with `vpsadbw` once per iteration.
    #[target_feature(enable = "avx2")]
    pub unsafe fn lut_popcnt(n: u64) {
        let data: [u64; 32] = std::hint::black_box(std::array::from_fn(|i| {
            (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }));
        let mut p = data.as_ptr();
        let mut out = [0u64; 4];
        unsafe {
            let lut = _mm256_setr_epi8(
                0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                2, 3, 3, 4,
            );
            let low = _mm256_set1_epi8(0x0f);
            let keys: [__m256i; 2] =
                std::hint::black_box([_mm256_set1_epi8(0x35), _mm256_set1_epi8(0x5a)]);
            let mut total = _mm256_setzero_si256();
            for _ in 0..n {
                for _rep in 0..4 {
                    // Opaque pointer: every repetition really loads and counts.
                    asm!("/* {0} */", inout(reg) p, options(nostack, preserves_flags, readonly));
                    let mut b0 = _mm256_setzero_si256();
                    let mut b1 = _mm256_setzero_si256();
                    for j in 0..4 {
                        let x0 = _mm256_xor_si256(
                            _mm256_loadu_si256(p.add(8 * j) as *const __m256i),
                            keys[0],
                        );
                        let x1 = _mm256_xor_si256(
                            _mm256_loadu_si256(p.add(8 * j + 4) as *const __m256i),
                            keys[1],
                        );
                        b0 = _mm256_add_epi8(
                            b0,
                            _mm256_shuffle_epi8(lut, _mm256_and_si256(x0, low)),
                        );
                        b0 = _mm256_add_epi8(
                            b0,
                            _mm256_shuffle_epi8(
                                lut,
                                _mm256_and_si256(_mm256_srli_epi16(x0, 4), low),
                            ),
                        );
                        b1 = _mm256_add_epi8(
                            b1,
                            _mm256_shuffle_epi8(lut, _mm256_and_si256(x1, low)),
                        );
                        b1 = _mm256_add_epi8(
                            b1,
                            _mm256_shuffle_epi8(
                                lut,
                                _mm256_and_si256(_mm256_srli_epi16(x1, 4), low),
                            ),
                        );
                    }
                    let s = _mm256_add_epi64(
                        _mm256_sad_epu8(b0, _mm256_setzero_si256()),
                        _mm256_sad_epu8(b1, _mm256_setzero_si256()),
                    );
                    total = _mm256_add_epi64(total, s);
                }
            }
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, total);
        }
        std::hint::black_box(out);
    }

    /// 12 x `vpdpbusd zmm` per iteration. Not runnable on CPUs without AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn vnni(n: u64) {
        unsafe {
            asm!(
                "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
                "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
                "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7", "vpxord zmm8, zmm8, zmm8",
                "vpxord zmm9, zmm9, zmm9", "vpxord zmm10, zmm10, zmm10", "vpxord zmm11, zmm11, zmm11",
                "vpternlogd zmm14, zmm14, zmm14, 0xff", "vpternlogd zmm15, zmm15, zmm15, 0xff",
                "2:",
                "vpdpbusd zmm0, zmm14, zmm15", "vpdpbusd zmm1, zmm14, zmm15",
                "vpdpbusd zmm2, zmm14, zmm15", "vpdpbusd zmm3, zmm14, zmm15",
                "vpdpbusd zmm4, zmm14, zmm15", "vpdpbusd zmm5, zmm14, zmm15",
                "vpdpbusd zmm6, zmm14, zmm15", "vpdpbusd zmm7, zmm14, zmm15",
                "vpdpbusd zmm8, zmm14, zmm15", "vpdpbusd zmm9, zmm14, zmm15",
                "vpdpbusd zmm10, zmm14, zmm15", "vpdpbusd zmm11, zmm14, zmm15",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
                out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
                out("zmm10") _, out("zmm11") _, out("zmm14") _, out("zmm15") _,
                options(nostack, nomem),
            );
        }
    }

    /// 8 x (`vpxorq`, `vpopcntq`, `vpaddq`) zmm per iteration. Needs AVX512_VPOPCNTDQ.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn vpopcnt(n: u64) {
        unsafe {
            asm!(
                "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
                "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
                "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7",
                "vpternlogd zmm14, zmm14, zmm14, 0xff", "vpternlogd zmm15, zmm15, zmm15, 0x0f",
                "2:",
                "vpxorq zmm8, zmm14, zmm15", "vpopcntq zmm8, zmm8", "vpaddq zmm0, zmm0, zmm8",
                "vpxorq zmm9, zmm14, zmm15", "vpopcntq zmm9, zmm9", "vpaddq zmm1, zmm1, zmm9",
                "vpxorq zmm10, zmm14, zmm15", "vpopcntq zmm10, zmm10", "vpaddq zmm2, zmm2, zmm10",
                "vpxorq zmm11, zmm14, zmm15", "vpopcntq zmm11, zmm11", "vpaddq zmm3, zmm3, zmm11",
                "vpxorq zmm8, zmm14, zmm15", "vpopcntq zmm8, zmm8", "vpaddq zmm4, zmm4, zmm8",
                "vpxorq zmm9, zmm14, zmm15", "vpopcntq zmm9, zmm9", "vpaddq zmm5, zmm5, zmm9",
                "vpxorq zmm10, zmm14, zmm15", "vpopcntq zmm10, zmm10", "vpaddq zmm6, zmm6, zmm10",
                "vpxorq zmm11, zmm14, zmm15", "vpopcntq zmm11, zmm11", "vpaddq zmm7, zmm7, zmm11",
                "dec {n}",
                "jnz 2b",
                "vzeroupper",
                n = inout(reg) n => _,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
                out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _,
                out("zmm10") _, out("zmm11") _, out("zmm14") _, out("zmm15") _,
                options(nostack, nomem),
            );
        }
    }
}
