//! Accuracy against weight bit width, one series per method family, seed spread as error bars.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, CAPTION_PX, DrawResult, Figure, TICK_PX, de, font::FAMILY};
use crate::input::FigureInput;

/// One configuration: weight bits, accuracy mean and standard deviation.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    bits: u32,
    mean: f64,
    std: f64,
}

/// The accuracy-vs-bit-width figure.
#[derive(Debug, Clone)]
pub struct AccuracyVsBits {
    /// Family -> its configurations.
    series: BTreeMap<String, Vec<Point>>,
    families: Vec<String>,
    dataset: String,
    metric: crate::input::Metric,
}

impl AccuracyVsBits {
    /// Builds the figure; `None` when the run has no methods.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        if input.methods.is_empty() {
            return (None, vec!["no methods in this run".to_string()]);
        }
        let mut series: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for m in &input.methods {
            series.entry(m.method.clone()).or_default().push(Point {
                bits: m.weight_bits,
                mean: m.accuracy_mean,
                std: m.accuracy_std,
            });
        }
        let fig = Self {
            series,
            families: super::families(input),
            dataset: input.dataset.clone(),
            metric: input.metric,
        };
        (Some(fig), Vec::new())
    }
}

impl Figure for AccuracyVsBits {
    fn stem(&self) -> &'static str {
        "accuracy_vs_bits"
    }

    fn title(&self) -> String {
        format!(
            "{} ({}, integer engine) vs weight bit width per method family; \
             line through the best configuration per width, bars = ±1 std over seeds",
            self.metric.short(),
            self.dataset
        )
    }

    fn skipped(&self) -> &[String] {
        &[]
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let all = || self.series.values().flatten();
        let max_bits = all().map(|p| p.bits).max().unwrap_or(8);
        let (y0, y1) =
            super::linear_range(all().flat_map(|p| [p.mean - p.std, p.mean + p.std]), 0.1);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{} vs weight bit width ({})",
                    self.metric.short(),
                    self.dataset
                ),
                (FAMILY, CAPTION_PX),
            )
            .margin(20)
            .x_label_area_size(80)
            .y_label_area_size(100)
            .build_cartesian_2d(0.5f64..(max_bits as f64 + 0.5), y0.max(0.0)..y1.min(100.0))
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("Weight bit width (bits)")
            .y_desc(self.metric.axis())
            .x_labels(max_bits as usize)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style((FAMILY, AXIS_PX))
            .label_style((FAMILY, TICK_PX))
            .draw()
            .map_err(de)?;
        for (family, points) in &self.series {
            let c = super::family_colour(&self.families, family);
            let mut best: BTreeMap<u32, f64> = BTreeMap::new();
            for p in points {
                let e = best.entry(p.bits).or_insert(p.mean);
                *e = e.max(p.mean);
            }
            chart
                .draw_series(LineSeries::new(
                    best.iter().map(|(b, a)| (f64::from(*b), *a)),
                    c.stroke_width(3),
                ))
                .map_err(de)?
                .label(family.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 22, y)], c.stroke_width(3)));
            chart
                .draw_series(points.iter().map(|p| {
                    ErrorBar::new_vertical(
                        f64::from(p.bits),
                        p.mean - p.std,
                        p.mean,
                        p.mean + p.std,
                        c.stroke_width(2),
                        14,
                    )
                }))
                .map_err(de)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new((f64::from(p.bits), p.mean), 8, c.filled())),
                )
                .map_err(de)?;
        }
        super::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}
