//! Runtime tensors: a batch of one node's output in the storage the fast executor uses, with
//! conversion to and from logical values so traces of both executors compare directly.
//!
//! Storage by dtype: unsigned -> `u8`, signed -> `i8`, i32 -> `i32`, all NCHW (or N x F); binary ->
//! `u64` words packed along channels per pixel, `[N][H*W][words(C)]` (a vector `[F]` is treated as
//! `C = F` with one pixel), bit 1 = +1, and the unused bits of each pixel's last word are 0.

use qbench_kernels::words_for_bits;

use crate::types::{DType, TensorType};

/// The storage of a batch of values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorData {
    /// Unsigned narrow values.
    U8(Vec<u8>),
    /// Signed narrow values.
    I8(Vec<i8>),
    /// Packed +-1 values.
    Bits(Vec<u64>),
    /// Accumulators.
    I32(Vec<i32>),
}

/// A batch of one node's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// Per-image type.
    pub ty: TensorType,
    /// Number of images.
    pub batch: usize,
    /// The values, in the storage described in the module doc.
    pub data: TensorData,
}

/// Words one pixel of a binary tensor with `channels` channels occupies.
pub fn binary_words(channels: usize) -> usize {
    words_for_bits(channels)
}

impl Tensor {
    /// Builds a tensor from logical values (NCHW order, binary as -1/+1). Values must fit the dtype;
    /// narrow values are truncated to their storage type otherwise.
    pub fn from_values(ty: &TensorType, batch: usize, values: &[i32]) -> Tensor {
        let data = match ty.dtype {
            DType::Unsigned { .. } => TensorData::U8(values.iter().map(|&v| v as u8).collect()),
            DType::Signed { .. } => TensorData::I8(values.iter().map(|&v| v as i8).collect()),
            DType::I32 => TensorData::I32(values.to_vec()),
            DType::Binary => {
                let (c, s) = (ty.channels(), ty.spatial());
                let words = binary_words(c);
                let mut bits = vec![0u64; batch * s * words];
                for n in 0..batch {
                    for ch in 0..c {
                        for p in 0..s {
                            if values[(n * c + ch) * s + p] > 0 {
                                bits[(n * s + p) * words + ch / 64] |= 1u64 << (ch % 64);
                            }
                        }
                    }
                }
                TensorData::Bits(bits)
            }
        };
        Tensor {
            ty: ty.clone(),
            batch,
            data,
        }
    }

    /// The logical values, NCHW order, binary unpacked to -1/+1.
    pub fn values(&self) -> Vec<i32> {
        match &self.data {
            TensorData::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            TensorData::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            TensorData::I32(v) => v.clone(),
            TensorData::Bits(bits) => {
                let (c, s) = (self.ty.channels(), self.ty.spatial());
                let words = binary_words(c);
                let mut out = vec![0i32; self.batch * c * s];
                for n in 0..self.batch {
                    for ch in 0..c {
                        for p in 0..s {
                            let bit = bits[(n * s + p) * words + ch / 64] >> (ch % 64) & 1;
                            out[(n * c + ch) * s + p] = if bit == 1 { 1 } else { -1 };
                        }
                    }
                }
                out
            }
        }
    }
}
