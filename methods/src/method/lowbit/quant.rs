//! The quantizers of BNN and QNN: what a weight or an activation becomes, both as the integer the
//! engine stores and as the straight-through fake quantizer candle trains with.
//!
//! - Weights, `bits == 1` ([`WeightQuant::Binary`]): `sign(w)` with `sign(0) = +1`; the latent
//!   real weight is clipped to `[-1, 1]` after every update and the gradient passes where
//!   `|w| <= 1` (BNN's hardtanh estimator).
//! - Weights, `bits >= 2` ([`WeightQuant::Linear`]): symmetric narrow-range linear quantization
//!   `q = clamp(round(w / s), -n, n)` with `n = 2^(bits-1) - 1` and `s = max |w| / n` per output
//!   channel (the following batch norm absorbs the per-channel scale; the score layer uses one
//!   scale so its scores share a unit); identity straight-through gradient.
//! - Activations ([`ActQuant::Sign`]): `sign(y)`, `sign(0) = +1`, values -1/+1; gradient where
//!   `|y| <= 1`.
//! - Activations ([`ActQuant::Levels`]): `q = round(clamp(y, 0, 1) (2^k - 1))`, the real value
//!   `q / (2^k - 1)`; rounding half up (`f64::round` on non-negative values); gradient where
//!   `0 <= y <= 1`.

use candle_core::{D, Tensor};

use crate::error::Result;
use crate::method::fake_quant;

/// How a layer's weights are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightQuant {
    /// +-1 (BNN).
    Binary,
    /// Symmetric narrow-range linear k-bit, `bits` in 2..=8.
    Linear {
        /// Bit width.
        bits: u8,
    },
}

/// How a hidden layer's batch-normalised output is quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActQuant {
    /// +-1 (BNN).
    Sign,
    /// Unsigned k-bit levels of `[0, 1]`, `bits` in 1..=8.
    Levels {
        /// Bit width.
        bits: u8,
    },
}

impl WeightQuant {
    /// Largest integer magnitude (`1` for binary).
    pub fn max_int(self) -> i32 {
        match self {
            WeightQuant::Binary => 1,
            WeightQuant::Linear { bits } => (1 << (bits - 1)) - 1,
        }
    }

    /// Bits one weight takes.
    pub fn bits(self) -> u8 {
        match self {
            WeightQuant::Binary => 1,
            WeightQuant::Linear { bits } => bits,
        }
    }

    /// Integer weights and their real scale per row of a row-major `[rows, fan_in]` matrix
    /// (`per_row == false`: one scale for all rows, repeated). Binary weights have scale 1.
    pub fn quantize(self, w: &[f64], rows: usize, per_row: bool) -> (Vec<i8>, Vec<f64>) {
        let fan_in = w.len() / rows.max(1);
        match self {
            WeightQuant::Binary => (
                w.iter().map(|&x| if x >= 0.0 { 1 } else { -1 }).collect(),
                vec![1.0; rows],
            ),
            WeightQuant::Linear { .. } => {
                let n = f64::from(self.max_int());
                let scale_of = |ws: &[f64]| {
                    let m = ws.iter().fold(0.0f64, |a, x| a.max(x.abs()));
                    if m > 0.0 { m / n } else { 1.0 }
                };
                let scales: Vec<f64> = if per_row {
                    w.chunks(fan_in.max(1)).map(scale_of).collect()
                } else {
                    vec![scale_of(w); rows]
                };
                let q = w
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| (x / scales[i / fan_in.max(1)]).round().clamp(-n, n) as i8)
                    .collect();
                (q, scales)
            }
        }
    }

    /// The straight-through fake quantizer of a weight tensor whose dim 0 is the output channel.
    pub fn ste(self, w: &Tensor, per_row: bool) -> Result<Tensor> {
        match self {
            WeightQuant::Binary => fake_quant::sign(w),
            WeightQuant::Linear { .. } => {
                let n = f64::from(self.max_int());
                let a = w.detach().abs()?;
                let max = if per_row {
                    let mut m = a.flatten_from(1)?.max_keepdim(D::Minus1)?;
                    for _ in 2..w.rank() {
                        m = m.unsqueeze(D::Minus1)?;
                    }
                    m
                } else {
                    let mut m = a.flatten_all()?.max_keepdim(0)?;
                    for _ in 1..w.rank() {
                        m = m.unsqueeze(0)?;
                    }
                    m
                };
                // A zero row keeps scale 1 (all its weights quantize to 0), as in `quantize`.
                let zero = max.eq(0.0)?.to_dtype(max.dtype())?;
                let scale = ((max + zero)? / n)?;
                let q = w
                    .detach()
                    .broadcast_div(&scale)?
                    .round()?
                    .clamp(-n, n)?
                    .broadcast_mul(&scale)?;
                Ok((w + (q - w)?.detach())?)
            }
        }
    }
}

impl ActQuant {
    /// The largest level (`2^k - 1`), or 1 for sign.
    pub fn levels(self) -> i32 {
        match self {
            ActQuant::Sign => 1,
            ActQuant::Levels { bits } => (1 << bits) - 1,
        }
    }

    /// Real value of one integer unit of the activation (1 for sign, `1 / (2^k - 1)` for levels).
    pub fn unit(self) -> f64 {
        1.0 / f64::from(self.levels())
    }

    /// Smallest and largest integer the activation takes.
    pub fn int_range(self) -> (i32, i32) {
        match self {
            ActQuant::Sign => (-1, 1),
            ActQuant::Levels { .. } => (0, self.levels()),
        }
    }

    /// The integer activation of a real batch-normalised value `y`: the definition both the
    /// fake-quant forward and the threshold folding use.
    pub fn of_real(self, y: f64) -> i32 {
        match self {
            ActQuant::Sign => {
                if y >= 0.0 {
                    1
                } else {
                    -1
                }
            }
            // NaN compares false everywhere and clamps to NaN; `as i32` maps it to 0.
            ActQuant::Levels { .. } => {
                (y.clamp(0.0, 1.0) * f64::from(self.levels())).round() as i32
            }
        }
    }

    /// The straight-through fake quantizer in real units (see the module docs).
    pub fn ste(self, y: &Tensor) -> Result<Tensor> {
        match self {
            ActQuant::Sign => fake_quant::sign(y),
            ActQuant::Levels { .. } => fake_quant::levels(y, self.levels()),
        }
    }
}
