//! Element types and tensor types of the integer graph.
//!
//! Every tensor is logically an array of integers indexed in C,H,W order (or a flat feature vector)
//! per image; the batch dimension is never part of a graph, so one graph serves any batch size.
//! [`DType`] says which integers a tensor holds and therefore how the executors store it.

use serde::{Deserialize, Serialize};

/// Deserializes the body of a field-less variant of an internally tagged enum (`{"kind":
/// "binary"}`, `{"op": "flatten"}`), rejecting any key besides the tag: serde's own unit variants
/// ignore extra keys even under `deny_unknown_fields`. Use as the variant's `deserialize_with`.
pub(crate) fn no_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    /// An object with no fields.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(d).map(|_| ())
}

/// The integers a tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DType {
    /// Unsigned integers in `0..2^bits`, `bits` in 1..=8; stored one per `u8`.
    Unsigned {
        /// Bit width, 1..=8.
        bits: u8,
    },
    /// Two's-complement integers in `-2^(bits-1)..2^(bits-1)`, `bits` in 2..=8; stored one per `i8`.
    Signed {
        /// Bit width, 2..=8.
        bits: u8,
    },
    /// +-1 values (BNN activations); stored bit-packed in `u64` words along channels, bit 1 = +1.
    #[serde(deserialize_with = "no_fields")]
    Binary,
    /// Raw 32-bit accumulators (conv/dense outputs, residual sums, logits).
    #[serde(deserialize_with = "no_fields")]
    I32,
}

impl DType {
    /// The dtype of raw dataset pixels, the graph input.
    pub const U8: DType = DType::Unsigned { bits: 8 };

    /// Smallest representable value.
    pub fn min_value(self) -> i64 {
        match self {
            DType::Unsigned { .. } => 0,
            DType::Signed { bits } => -(1i64 << (bits - 1)),
            DType::Binary => -1,
            DType::I32 => i64::from(i32::MIN),
        }
    }

    /// Largest representable value.
    pub fn max_value(self) -> i64 {
        match self {
            DType::Unsigned { bits } => (1i64 << bits) - 1,
            DType::Signed { bits } => (1i64 << (bits - 1)) - 1,
            DType::Binary => 1,
            DType::I32 => i64::from(i32::MAX),
        }
    }

    /// Bits one element occupies in an ideal (hardware) memory: the declared width, 1 for binary, 32
    /// for accumulators. Used for memory counts.
    pub fn storage_bits(self) -> u64 {
        match self {
            DType::Unsigned { bits } | DType::Signed { bits } => u64::from(bits),
            DType::Binary => 1,
            DType::I32 => 32,
        }
    }

    /// Whether the bit width is in range (unsigned 1..=8, signed 2..=8).
    pub fn is_valid(self) -> bool {
        match self {
            DType::Unsigned { bits } => (1..=8).contains(&bits),
            DType::Signed { bits } => (2..=8).contains(&bits),
            DType::Binary | DType::I32 => true,
        }
    }

    /// Whether `v` is representable (binary: exactly -1 or +1).
    pub fn contains(self, v: i64) -> bool {
        match self {
            DType::Binary => v == -1 || v == 1,
            _ => v >= self.min_value() && v <= self.max_value(),
        }
    }

    /// Short label such as `u8`, `i4`, `bin`, `i32` (used in counts and messages).
    pub fn label(self) -> String {
        match self {
            DType::Unsigned { bits } => format!("u{bits}"),
            DType::Signed { bits } => format!("i{bits}"),
            DType::Binary => "bin".to_string(),
            DType::I32 => "i32".to_string(),
        }
    }

    /// Whether this is a narrow (<= 8-bit, non-binary) activation that multiply-accumulate layers take.
    pub fn is_narrow_int(self) -> bool {
        matches!(self, DType::Unsigned { .. } | DType::Signed { .. })
    }
}

/// The dtype and per-image shape of a tensor: `[C, H, W]` for feature maps or `[F]` for vectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Per-image shape, `[C, H, W]` or `[F]`.
    pub shape: Vec<usize>,
}

impl TensorType {
    /// Builds a tensor type.
    pub fn new(dtype: DType, shape: &[usize]) -> Self {
        TensorType {
            dtype,
            shape: shape.to_vec(),
        }
    }

    /// Number of elements per image.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of channels: `C` of `[C, H, W]`, or `F` of `[F]` (each feature is its own channel).
    pub fn channels(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Elements per channel: `H * W`, or 1 for vectors.
    pub fn spatial(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Whether this is a `[C, H, W]` feature map.
    pub fn is_map(&self) -> bool {
        self.shape.len() == 3
    }

    /// Whether this is an `[F]` vector.
    pub fn is_vector(&self) -> bool {
        self.shape.len() == 1
    }

    /// Bits one image's tensor occupies (see [`DType::storage_bits`]).
    pub fn bits(&self) -> u64 {
        self.numel() as u64 * self.dtype.storage_bits()
    }
}

/// What a multiply-accumulate layer's integer weights mean. All kinds are stored as `i8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WeightKind {
    /// Two's-complement integers of `bits` bits (2..=8), in `-2^(bits-1)..2^(bits-1)`.
    Int {
        /// Bit width, 2..=8.
        bits: u8,
    },
    /// +-1 weights (e.g. a BNN first layer over u8 pixels); counted as 1-bit.
    #[serde(deserialize_with = "no_fields")]
    Binary,
    /// {-1, 0, +1} weights (TNT); counted as 2-bit ternary. The ternary scales (per channel or per
    /// layer) are not part of the weights: they are folded into the following requantizer.
    #[serde(deserialize_with = "no_fields")]
    Ternary,
}

impl WeightKind {
    /// Whether `w` is an allowed weight value.
    pub fn contains(self, w: i8) -> bool {
        match self {
            WeightKind::Int { bits } => {
                let lo = -(1i16 << (bits - 1));
                let hi = (1i16 << (bits - 1)) - 1;
                (lo..=hi).contains(&i16::from(w))
            }
            WeightKind::Binary => w == 1 || w == -1,
            WeightKind::Ternary => (-1..=1).contains(&w),
        }
    }

    /// Whether the declared width is in range.
    pub fn is_valid(self) -> bool {
        match self {
            WeightKind::Int { bits } => (2..=8).contains(&bits),
            _ => true,
        }
    }

    /// Bits one weight occupies in an ideal memory (binary 1, ternary 2).
    pub fn storage_bits(self) -> u64 {
        match self {
            WeightKind::Int { bits } => u64::from(bits),
            WeightKind::Binary => 1,
            WeightKind::Ternary => 2,
        }
    }

    /// Short label such as `int8`, `bin`, `ter` (used in counts).
    pub fn label(self) -> String {
        match self {
            WeightKind::Int { bits } => format!("int{bits}"),
            WeightKind::Binary => "bin".to_string(),
            WeightKind::Ternary => "ter".to_string(),
        }
    }
}
