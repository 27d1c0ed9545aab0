//! Per-layer energy of one model, stacked by operation kind.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, CAPTION_PX, DrawResult, Figure, TICK_PX, de, font::FAMILY};
use crate::input::{FigureInput, LayerEnergy};

/// The stacked per-layer energy figure.
#[derive(Debug, Clone)]
pub struct LayerEnergyBars {
    energy: LayerEnergy,
    kinds: Vec<String>,
}

impl LayerEnergyBars {
    /// Builds the figure; `None` when the run carries no per-layer energy.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let Some(energy) = input.layer_energy.clone().filter(|e| !e.layers.is_empty()) else {
            return (None, vec!["no per-layer energy in this run".to_string()]);
        };
        let kinds: BTreeSet<String> = energy
            .layers
            .iter()
            .flat_map(|(_, k)| k.keys().cloned())
            .collect();
        let fig = Self {
            energy,
            kinds: kinds.into_iter().collect(),
        };
        (Some(fig), Vec::new())
    }
}

impl Figure for LayerEnergyBars {
    fn stem(&self) -> &'static str {
        "layer_energy"
    }

    fn title(&self) -> String {
        format!(
            "Energy per inference by layer and operation kind: {}",
            self.energy.label
        )
    }

    fn skipped(&self) -> &[String] {
        &[]
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let layers = &self.energy.layers;
        let top = layers
            .iter()
            .map(|(_, k)| k.values().sum::<f64>())
            .fold(0.0, f64::max);
        let top = if top > 0.0 { top * 1.1 } else { 1.0 };
        let names: Vec<&String> = layers.iter().map(|(n, _)| n).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Energy per layer: {}", self.energy.label),
                (FAMILY, CAPTION_PX),
            )
            .margin(20)
            .x_label_area_size(80)
            .y_label_area_size(110)
            .build_cartesian_2d((0..layers.len() - 1).into_segmented(), 0.0..top)
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(layers.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => {
                    names.get(*i).map(|s| s.to_string()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .x_desc("Layer")
            .y_desc("Energy per inference (nJ)")
            .axis_desc_style((FAMILY, AXIS_PX))
            .label_style((FAMILY, TICK_PX))
            .draw()
            .map_err(de)?;
        for (k, kind) in self.kinds.iter().enumerate() {
            let c = super::colour(k);
            let bars = layers.iter().enumerate().filter_map(|(i, (_, e))| {
                let v = *e.get(kind)?;
                let below: f64 = self.kinds[..k].iter().filter_map(|p| e.get(p)).sum();
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), below),
                        (SegmentValue::Exact(i + 1), below + v),
                    ],
                    c.filled(),
                );
                r.set_margin(0, 0, 10, 10);
                Some(r)
            });
            chart
                .draw_series(bars)
                .map_err(de)?
                .label(kind.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 24, y + 8)], c.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, TICK_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(de)?;
        Ok(())
    }
}
