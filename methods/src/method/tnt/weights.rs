//! One layer's ternarization at a [`Granularity`] and the integer weights it lowers to.
//!
//! A ternary layer runs on the engine's ternary path only when every requantizer channel (every
//! output channel, or the whole layer for the logits layer, whose i32 outputs must share one unit)
//! has a single weight magnitude: then the weights are the codes `t` and that magnitude folds into
//! the channel's requantizer. Otherwise (scales that vary inside a channel: per-kernel slices, or
//! `alpha+ != alpha-`) the layer is lowered on the int8 path with 8-bit weights carrying the scaled
//! ternary values, `q = round(alpha t / s)` with `s = max alpha / 127` per channel: the ternary
//! pattern is kept exactly, the scales to 8 bits (the relative error is reported).

use qbench_engine::WeightKind;

use super::options::{Granularity, Scales};
use super::ternarize::ternarize;
use crate::method::fold::MacGeometry;

/// A layer's ternary weights in real units.
#[derive(Clone, Debug, PartialEq)]
pub struct TernaryLayer {
    /// Codes `t` in `{-1, 0, +1}`, in the layout of the float weights.
    pub codes: Vec<i8>,
    /// Real value of every weight: `alpha+`, `-alpha-` or 0 (or `alpha t` with one scale).
    pub values: Vec<f64>,
    /// Number of weights that share one ternarization.
    pub group: usize,
}

/// Ternarizes the weights of a layer of geometry `kind` at `granularity` with `scales` (the
/// ternarizer works on the f32 values the float model trained).
pub fn ternarize_layer(
    weight: &[f32],
    kind: MacGeometry,
    granularity: Granularity,
    scales: Scales,
) -> TernaryLayer {
    let group = match (granularity, kind) {
        (Granularity::PerKernel, MacGeometry::Conv(c)) => c.kernel * c.kernel,
        (Granularity::PerChannel, _) => weight.len() / kind.out_channels().max(1),
        (Granularity::PerKernel, MacGeometry::Dense { .. }) | (Granularity::PerLayer, _) => {
            weight.len()
        }
    }
    .max(1);
    let mut codes = Vec::with_capacity(weight.len());
    let mut values = Vec::with_capacity(weight.len());
    for chunk in weight.chunks(group) {
        let t = ternarize(chunk);
        values.extend(t.codes.iter().map(|&c| match (scales, c) {
            (_, 0) => 0.0,
            (Scales::Symmetric, c) => t.alpha * f64::from(c),
            (Scales::Asymmetric, 1) => t.alpha_pos,
            (Scales::Asymmetric, _) => -t.alpha_neg,
        }));
        codes.extend(t.codes);
    }
    TernaryLayer {
        codes,
        values,
        group,
    }
}

/// The engine weights of a ternarized layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// Integer weights, same layout: the codes (ternary path) or `round(value / scale)` (int8).
    pub weights: Vec<i8>,
    /// Real value of one weight unit: one per output channel, or one for the layer.
    pub scales: Vec<f64>,
    /// `Ternary` or `Int { bits: 8 }`.
    pub kind: WeightKind,
    /// Largest `|q s - value| / |value|` over the nonzero weights (0 on the ternary path).
    pub max_scale_error: f64,
}

impl LayerWeights {
    /// The engine path the layer runs on, as reported: `ternary` or `int8`.
    pub fn path(&self) -> &'static str {
        match self.kind {
            WeightKind::Ternary => "ternary",
            _ => "int8",
        }
    }
}

/// Lowers `layer` to integer weights with one scale per output channel (`per_channel`) or one for
/// the whole layer; `out_channels` splits the weights into channels. Equal channel scales collapse
/// to one, so a per-layer scale gives a per-tensor requantizer.
pub fn lower_weights(layer: &TernaryLayer, out_channels: usize, per_channel: bool) -> LayerWeights {
    let units = if per_channel { out_channels.max(1) } else { 1 };
    let row = layer.values.len() / units;
    let magnitudes = |u: usize| {
        layer.values[u * row..(u + 1) * row]
            .iter()
            .map(|v| v.abs())
            .filter(|&m| m > 0.0)
    };
    let uniform = (0..units).all(|u| {
        let mut m = magnitudes(u);
        m.next().is_none_or(|first| m.all(|x| x == first))
    });
    let top = |u: usize| magnitudes(u).fold(0.0, f64::max);
    let (weights, mut scales, kind, max_scale_error) = if uniform {
        (
            layer.codes.clone(),
            unit_scales(units, top),
            WeightKind::Ternary,
            0.0,
        )
    } else {
        let scales = unit_scales(units, |u| top(u) / 127.0);
        let mut err = 0.0f64;
        let weights = layer
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let s = scales[i / row];
                let q = (v / s).round().clamp(-127.0, 127.0);
                if v != 0.0 {
                    err = err.max((q * s - v).abs() / v.abs());
                }
                q as i8
            })
            .collect();
        (weights, scales, WeightKind::Int { bits: 8 }, err)
    };
    if scales.iter().all(|&s| s == scales[0]) {
        scales.truncate(1);
    }
    LayerWeights {
        weights,
        scales,
        kind,
        max_scale_error,
    }
}

/// `scale(u)` for every unit; an all-zero unit (scale 0) takes the first nonzero unit's scale,
/// so it neither matters to its outputs nor keeps equal scales from collapsing to one.
fn unit_scales(units: usize, scale: impl Fn(usize) -> f64) -> Vec<f64> {
    let raw: Vec<f64> = (0..units).map(scale).collect();
    let fill = raw.iter().copied().find(|&s| s > 0.0).unwrap_or(1.0);
    raw.into_iter()
        .map(|s| if s > 0.0 { s } else { fill })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONV: MacGeometry = MacGeometry::Conv(crate::model::arch::ConvShape {
        in_channels: 2,
        out_channels: 2,
        kernel: 2,
        stride: 1,
        pad: 0,
        groups: 1,
    });

    fn weights() -> Vec<f32> {
        // Channel 0: slices [1, -1, 0.1, 0] and [0.5, 0.5, -0.5, 0.01]; channel 1 all 0.2.
        vec![
            1.0, -1.0, 0.1, 0.0, 0.5, 0.5, -0.5, 0.01, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2,
        ]
    }

    #[test]
    fn per_kernel_scales_vary_inside_a_channel_so_the_layer_takes_the_int8_path() {
        let t = ternarize_layer(&weights(), CONV, Granularity::PerKernel, Scales::Asymmetric);
        assert_eq!(t.group, 4);
        assert_eq!(&t.codes[..8], &[1, -1, 0, 0, 1, 1, -1, 0]);
        let l = lower_weights(&t, 2, true);
        assert_eq!(l.path(), "int8");
        // Channel 0's largest scale is 1.0 -> 127, the slice of 0.5 -> round(63.5) = 64.
        assert_eq!(&l.weights[..8], &[127, -127, 0, 0, 64, 64, -64, 0]);
        assert_eq!(&l.weights[8..], &[127; 8]);
        assert!(
            (l.max_scale_error - 0.5 / 63.5).abs() < 1e-6,
            "{}",
            l.max_scale_error
        );
    }

    #[test]
    fn symmetric_per_channel_takes_the_ternary_path_with_the_scale_in_the_requantizer() {
        let t = ternarize_layer(&weights(), CONV, Granularity::PerChannel, Scales::Symmetric);
        let l = lower_weights(&t, 2, true);
        assert_eq!((l.path(), l.kind), ("ternary", WeightKind::Ternary));
        assert_eq!(l.weights, t.codes);
        assert_eq!(l.scales.len(), 2);
        assert!((l.scales[1] - 0.2).abs() < 1e-7);
        // The logits layer needs one scale for all channels: 0.2 and channel 0's differ.
        assert_eq!(lower_weights(&t, 2, false).path(), "int8");
    }

    #[test]
    fn a_per_layer_scale_collapses_to_one() {
        let t = ternarize_layer(&weights(), CONV, Granularity::PerLayer, Scales::Symmetric);
        // Channel 1 (all 0.2) falls below the layer's k*: an all-zero channel keeps one scale.
        assert_eq!(&t.codes[8..], &[0; 8]);
        let l = lower_weights(&t, 2, true);
        assert_eq!((l.path(), l.scales.len()), ("ternary", 1));
        assert!((l.scales[0] - 0.7).abs() < 1e-7, "{:?}", l.scales);
    }
}
