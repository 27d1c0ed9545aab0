//! Accuracy against quantization operations per inference (log scale): the paper's hypothesis
//! that fewer quantization operations lose less. Unified (circle) and per-operation (triangle)
//! variants of the same configuration are joined by a grey line.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::scatter::{self, Dot, Frame, Marker};
use super::{DrawResult, Figure, de};
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

/// The marker of a row: circle for unified modules, triangle for quantization after every
/// operation, cross where the method has no such choice.
fn marker(unified: Option<bool>) -> Marker {
    match unified {
        Some(true) => Marker::Disc(9),
        Some(false) => Marker::Triangle(11),
        None => Marker::Cross(8),
    }
}

impl AccuracyVsQuantOps {
    /// A row as drawn.
    fn dot<'r>(&self, r: &'r MethodRow) -> Dot<'r> {
        Dot {
            at: (r.quant_ops as f64, r.accuracy_mean),
            label: &r.label,
            marker: marker(r.unified),
            colour: super::family_colour(&self.families, &r.method),
        }
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
        let at = |r: &MethodRow| (r.quant_ops as f64, r.accuracy_mean);
        let coords: Vec<(f64, f64)> = self.rows.iter().map(at).collect();
        let caption = format!("Accuracy vs quantization operations ({})", self.dataset);
        let frame = Frame {
            caption: &caption,
            x_desc: "Quantization operations per inference (count, log scale)",
            y_desc: "Top-1 accuracy (%)",
        };
        let mut chart = scatter::chart(&area, &frame, &coords)?;
        for (u, n) in self.pairs() {
            chart
                .draw_series(LineSeries::new(
                    [at(u), at(n)],
                    BLACK.mix(0.4).stroke_width(2),
                ))
                .map_err(de)?;
        }
        let dot = |r| self.dot(r);
        for family in &self.families {
            let c = super::family_colour(&self.families, family);
            for unified in [Some(true), Some(false), None] {
                let dots: Vec<Dot> = self
                    .rows
                    .iter()
                    .filter(|r| &r.method == family && r.unified == unified)
                    .map(dot)
                    .collect();
                if dots.is_empty() {
                    continue;
                }
                let name = match unified {
                    Some(true) => format!("{family}, unified"),
                    Some(false) => format!("{family}, per-op"),
                    None => family.clone(),
                };
                scatter::draw_series(&mut chart, &name, &dots, marker(unified), c)?;
            }
        }
        let dots: Vec<Dot> = self.rows.iter().map(dot).collect();
        scatter::draw_labels(&mut chart, &dots)?;
        super::draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)
    }
}
