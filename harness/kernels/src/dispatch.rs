//! Run-time CPU feature detection, cached once per process.
//!
//! The public kernels ask [`int8_isa`] and [`binary_isa`] which instruction set to use. Both
//! results come from `is_x86_feature_detected!` the first time and are cached in a `OnceLock`.
//! Tests and benchmarks may call the per-ISA entry points directly (see `gemm::gemm_u8i8_with`
//! and `binary::binary_gemm_with`), which refuse an ISA the CPU lacks.

use std::sync::OnceLock;

/// Instruction set used by the int8 (u8 x i8 -> i32) kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Int8Isa {
    /// Portable Rust on the same packed layout as AVX2 (i16 pairs); any CPU.
    Scalar,
    /// AVX2: operands widened to i16, `vpmaddwd` + `vpaddd` (exact for 8-bit operands).
    Avx2,
    /// AVX-512 VNNI: `vpdpbusd` (u8 x i8 quads into i32, no intermediate saturation).
    Avx512Vnni,
}

/// Instruction set used by the binary (xnor-popcount) kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryIsa {
    /// `u64::count_ones` (the `popcnt` instruction where the target has it).
    Scalar,
    /// AVX2 nibble-lookup popcount (`vpshufb`) with byte accumulation and `vpsadbw`.
    Avx2,
    /// AVX-512 `vpopcntq` (AVX512_VPOPCNTDQ).
    Avx512Vpopcnt,
}

impl Int8Isa {
    /// Whether this CPU can run the ISA.
    pub fn available(self) -> bool {
        match self {
            Int8Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every ISA this CPU can run, best last.
    pub fn all_available() -> Vec<Int8Isa> {
        [Int8Isa::Scalar, Int8Isa::Avx2, Int8Isa::Avx512Vnni]
            .into_iter()
            .filter(|i| i.available())
            .collect()
    }
}

impl BinaryIsa {
    /// Whether this CPU can run the ISA.
    pub fn available(self) -> bool {
        match self {
            BinaryIsa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            BinaryIsa::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            BinaryIsa::Avx512Vpopcnt => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vpopcntdq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every ISA this CPU can run, best last.
    pub fn all_available() -> Vec<BinaryIsa> {
        [BinaryIsa::Scalar, BinaryIsa::Avx2, BinaryIsa::Avx512Vpopcnt]
            .into_iter()
            .filter(|i| i.available())
            .collect()
    }
}

/// The int8 ISA the public kernels use on this CPU (best available, detected once).
pub fn int8_isa() -> Int8Isa {
    static ISA: OnceLock<Int8Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        *Int8Isa::all_available()
            .last()
            .expect("scalar is always available")
    })
}

/// The binary ISA the public kernels use on this CPU (best available, detected once).
pub fn binary_isa() -> BinaryIsa {
    static ISA: OnceLock<BinaryIsa> = OnceLock::new();
    *ISA.get_or_init(|| {
        *BinaryIsa::all_available()
            .last()
            .expect("scalar is always available")
    })
}
