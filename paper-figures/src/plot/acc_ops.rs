//! Accuracy against quantization operations per inference (log scale): the paper's hypothesis
//! that fewer quantization operations lose less. Unified (circle) and per-operation (triangle)
//! variants of the same configuration are joined by a grey line.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, CAPTION_PX, DrawResult, Figure, POINT_PX, TICK_PX, de, font::FAMILY};
use crate::input::{FigureInput, MethodRow};

/// The accuracy-vs-quantization-operations figure.
#[derive(Debug, Clone)]
pub struct AccuracyVsQuantOps {
    rows: Vec<MethodRow>,
    families: Vec<String>,
    dataset: String,
    skipped: Vec<String>,
}

impl AccuracyVsQuantOps {
    /// Builds the figure; rows with zero quantization operations cannot sit on a log axis.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let skipped: Vec<String> = input
            .methods
            .iter()
            .filter(|m| m.quant_ops == 0)
            .map(|m| format!("{} (0 quantization operations, log axis)", m.label))
            .collect();
        let rows: Vec<MethodRow> = input
            .methods
            .iter()
            .filter(|m| m.quant_ops > 0)
            .cloned()
            .collect();
        if rows.is_empty() {
            return (None, skipped);
        }
        let fig = Self {
            rows,
            families: super::families(input),
            dataset: input.dataset.clone(),
            skipped: skipped.clone(),
        };
        (Some(fig), skipped)
    }

    /// Pairs of (unified, per-operation) rows of the same family, model, bit widths and tuning.
    pub fn pairs(&self) -> Vec<(&MethodRow, &MethodRow)> {
        let same = |a: &MethodRow, b: &MethodRow| {
            a.method == b.method
                && a.model == b.model
                && a.weight_bits == b.weight_bits
                && a.activation_bits == b.activation_bits
                && a.finetuned == b.finetuned
        };
        let mut out = Vec::new();
        for u in self.rows.iter().filter(|r| r.unified == Some(true)) {
            for n in self.rows.iter().filter(|r| r.unified == Some(false)) {
                if same(u, n) {
                    out.push((u, n));
                }
            }
        }
        out
    }
}

impl Figure for AccuracyVsQuantOps {
    fn stem(&self) -> &'static str {
        "accuracy_vs_quant_ops"
    }

    fn title(&self) -> String {
        format!(
            "Accuracy ({}, integer engine) vs quantization operations per inference (log scale); \
             circle = unified modules, triangle = quantize after every op, cross = not applicable",
            self.dataset
        )
    }

    fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::with_footer(root, &self.skipped)?;
        let (x0, x1) = super::log_range(self.rows.iter().map(|r| r.quant_ops as f64));
        let (y0, y1) = super::linear_range(self.rows.iter().map(|r| r.accuracy_mean), 0.15);
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("Accuracy vs quantization operations ({})", self.dataset),
                (FAMILY, CAPTION_PX),
            )
            .margin(20)
            .x_label_area_size(80)
            .y_label_area_size(100)
            .build_cartesian_2d(
                (x0..x1)
                    .log_scale()
                    .with_key_points(super::log_ticks(x0, x1)),
                y0.max(0.0)..y1.min(100.0),
            )
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("Quantization operations per inference (count, log scale)")
            .y_desc("Top-1 accuracy (%)")
            .axis_desc_style((FAMILY, AXIS_PX))
            .label_style((FAMILY, TICK_PX))
            .x_label_formatter(&super::log_tick)
            .draw()
            .map_err(de)?;
        for (u, n) in self.pairs() {
            chart
                .draw_series(LineSeries::new(
                    [
                        (u.quant_ops as f64, u.accuracy_mean),
                        (n.quant_ops as f64, n.accuracy_mean),
                    ],
                    BLACK.mix(0.4).stroke_width(2),
                ))
                .map_err(de)?;
        }
        for family in &self.families {
            let c = super::family_colour(&self.families, family);
            for unified in [Some(true), Some(false), None] {
                let rows: Vec<&MethodRow> = self
                    .rows
                    .iter()
                    .filter(|r| &r.method == family && r.unified == unified)
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                let name = match unified {
                    Some(true) => format!("{family}, unified"),
                    Some(false) => format!("{family}, per-op"),
                    None => family.clone(),
                };
                // One arm per marker shape: plotters elements are concrete types.
                macro_rules! group {
                    ($shape:expr) => {
                        chart
                            .draw_series(rows.iter().map(|r| {
                                EmptyElement::at((r.quant_ops as f64, r.accuracy_mean))
                                    + $shape((0, 0))
                                    + Text::new(
                                        r.label.clone(),
                                        (12, -26),
                                        (FAMILY, POINT_PX).into_font(),
                                    )
                            }))
                            .map_err(de)?
                            .label(name)
                            .legend(move |(x, y)| $shape((x + 11, y)))
                    };
                }
                match unified {
                    Some(true) => group!(|p| Circle::new(p, 9, c.filled())),
                    Some(false) => group!(|p| TriangleMarker::new(p, 11, c.stroke_width(3))),
                    None => group!(|p| Cross::new(p, 8, c.stroke_width(3))),
                };
            }
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, TICK_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()
            .map_err(de)?;
        Ok(())
    }
}
