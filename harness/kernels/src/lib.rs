//! Integer compute kernels for the qbench inference engine.
//!
//! Every kernel here works on plain slices and shapes; it knows nothing of graphs, files, methods or
//! datasets. Each public kernel has a scalar reference in [`mod@reference`] written for clarity, and the
//! fast paths (chosen at run time from the CPU's features) must equal it bit for bit.
//!
//! # API
//! * One-shot kernels with the reference signatures: [`gemm_u8i8`], [`conv2d_u8i8`],
//!   [`depthwise_conv2d_u8i8`] (`groups == in_channels == out_channels`, see [`is_depthwise`]),
//!   [`binary_gemm`], [`binary_conv2d`] (they pack the weights on every call).
//! * Constant weights packed once (at model load): [`PackedWeightsI8`] + [`gemm_u8i8_packed`],
//!   [`PackedConvWeights`] + [`conv2d_u8i8_packed`], [`PackedDepthwiseWeights`] +
//!   [`depthwise_conv2d_u8i8_packed`], [`PackedBinaryWeights`] + [`binary_gemm_packed`],
//!   [`PackedBinaryConvWeights`] + [`binary_conv2d_packed`]. A packing is laid out for the ISA
//!   chosen when it was made.
//! * Explicit ISA (tests, benchmarks): `*_with(isa, ...)` and `Packed*::new_for(isa, ...)`;
//!   they panic if the CPU lacks the ISA.
//! * Dispatch ([`dispatch`]): `is_x86_feature_detected!`, cached. int8: AVX-512 VNNI, else AVX2,
//!   else portable; binary: AVX-512 VPOPCNTDQ, else AVX2, else scalar `popcnt`.
//! * Threads ([`threads`]): kernels run on the calling rayon pool (`ThreadPool::install`),
//!   capped by [`threads::set_max_threads`]; work is split over batch/pixels and output blocks
//!   (depthwise: over (image, channel) planes).
//! * [`peak`] measures the machine's own peak for each instruction sequence; [`mod@bench`] is
//!   `qbench bench kernels`.
//!
//! # Exactness
//! Accumulation is i32 with wrap-around, like the reference's `wrapping_add`; wrapping addition
//! is associative, so the blocked kernels' summation order does not matter. The AVX2 int8 path
//! widens both 8-bit operands to i16 and uses `vpmaddwd` (pair sums of at most `2 * 255 * 128`,
//! exact) + `vpaddd`; it never uses `vpmaddubsw`, whose i16 pair sums saturate for full-range
//! u8 x i8 (`2 * 255 * 127 > 32767`). The AVX-512 VNNI path uses `vpdpbusd`, which sums the four
//! products in 32 bits without saturation; it and the VPOPCNTDQ binary path cannot run on the
//! development machine (AMD Zen 3, AVX2 only) and are untested there: the property tests cover
//! them automatically on CPUs that have them.

pub mod bench;
pub mod binary;
pub mod conv;
pub mod depthwise;
pub mod dispatch;
pub mod gemm;
pub mod peak;
pub mod reference;
pub mod threads;

pub use binary::{
    PackedBinaryConvWeights, PackedBinaryWeights, binary_conv2d_packed, binary_conv2d_with,
    binary_gemm_packed, binary_gemm_with,
};
pub use conv::{
    ConvSink, PackedConvWeights, conv2d_u8i8_packed, conv2d_u8i8_packed_sink, conv2d_u8i8_with,
};
pub use depthwise::{
    PackedDepthwiseWeights, depthwise_conv2d_u8i8, depthwise_conv2d_u8i8_packed,
    depthwise_conv2d_u8i8_with, is_depthwise,
};
pub use dispatch::{BinaryIsa, Int8Isa};
pub use gemm::{PackedWeightsI8, gemm_u8i8_packed, gemm_u8i8_with};

/// Geometry of a 2-D convolution over NCHW tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C (all groups together).
    pub in_channels: usize,
    /// Input height H.
    pub in_h: usize,
    /// Input width W.
    pub in_w: usize,
    /// Output channels O (all groups together).
    pub out_channels: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Stride (same in both directions).
    pub stride: usize,
    /// Zero padding on each side (same in both directions).
    pub pad: usize,
    /// Number of groups; `in_channels` and `out_channels` are multiples of it.
    pub groups: usize,
}

impl ConvGeometry {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.pad - self.kernel_h) / self.stride + 1
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.pad - self.kernel_w) / self.stride + 1
    }
}

pub use reference::words_for_bits;

/// `c = a * b^T` for u8 activations and i8 weights with i32 accumulators; see [`reference::gemm_u8i8`].
///
/// Packs `b` on every call; use [`PackedWeightsI8`] + [`gemm_u8i8_packed`] for constant weights.
pub fn gemm_u8i8(a: &[u8], b: &[i8], c: &mut [i32], m: usize, n: usize, k: usize) {
    gemm_u8i8_with(dispatch::int8_isa(), a, b, c, m, n, k)
}

/// u8 x i8 convolution into i32; see [`reference::conv2d_u8i8`].
///
/// Packs `weights` on every call; use [`PackedConvWeights`] + [`conv2d_u8i8_packed`] for
/// constant weights.
pub fn conv2d_u8i8(input: &[u8], weights: &[i8], out: &mut [i32], g: &ConvGeometry, pad_value: u8) {
    conv2d_u8i8_with(dispatch::int8_isa(), input, weights, out, g, pad_value)
}

/// Binary xnor-popcount matrix product; see [`reference::binary_gemm`].
pub fn binary_gemm(a: &[u64], b: &[u64], c: &mut [i32], m: usize, n: usize, bits: usize) {
    binary_gemm_with(dispatch::binary_isa(), a, b, c, m, n, bits)
}

/// Binary convolution with the documented padding rule; see [`reference::binary_conv2d`].
pub fn binary_conv2d(input: &[u64], weights: &[u64], out: &mut [i32], g: &ConvGeometry) {
    binary_conv2d_with(dispatch::binary_isa(), input, weights, out, g)
}
