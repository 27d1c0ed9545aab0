//! Accuracy (integer engine) against energy per inference, log energy axis, Pareto front marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, CAPTION_PX, DrawResult, Figure, POINT_PX, TICK_PX, de, font::FAMILY};
use crate::input::FigureInput;
use crate::pareto;

/// One plotted method.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Method label.
    pub label: String,
    /// Method family (colour).
    pub family: String,
    /// Energy per inference, nJ.
    pub energy_nj: f64,
    /// Integer-engine accuracy, %.
    pub accuracy: f64,
    /// Whether the point is on the Pareto front.
    pub on_front: bool,
}

/// The accuracy-vs-energy figure.
#[derive(Debug, Clone)]
pub struct AccuracyVsEnergy {
    /// Plotted points.
    pub points: Vec<Point>,
    families: Vec<String>,
    dataset: String,
    skipped: Vec<String>,
}

impl AccuracyVsEnergy {
    /// Builds the figure; `None` when no method has an energy estimate.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let skipped: Vec<String> = input
            .methods
            .iter()
            .filter(|m| m.energy_per_inference_nj.is_none())
            .map(|m| format!("{} (no energy estimate)", m.label))
            .collect();
        let mut points: Vec<Point> = input
            .methods
            .iter()
            .filter_map(|m| {
                Some(Point {
                    label: m.label.clone(),
                    family: m.method.clone(),
                    energy_nj: m.energy_per_inference_nj.filter(|e| *e > 0.0)?,
                    accuracy: m.accuracy_mean,
                    on_front: false,
                })
            })
            .collect();
        if points.is_empty() {
            return (None, skipped);
        }
        let coords: Vec<(f64, f64)> = points.iter().map(|p| (p.energy_nj, p.accuracy)).collect();
        for i in pareto::front(&coords) {
            points[i].on_front = true;
        }
        let fig = Self {
            points,
            families: super::families(input),
            dataset: input.dataset.clone(),
            skipped: skipped.clone(),
        };
        (Some(fig), skipped)
    }
}

impl Figure for AccuracyVsEnergy {
    fn stem(&self) -> &'static str {
        "accuracy_vs_energy"
    }

    fn title(&self) -> String {
        format!(
            "Accuracy ({}, integer engine) vs energy per inference; Pareto front marked",
            self.dataset
        )
    }

    fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::with_footer(root, &self.skipped)?;
        let (x0, x1) = super::log_range(self.points.iter().map(|p| p.energy_nj));
        let (y0, y1) = super::linear_range(self.points.iter().map(|p| p.accuracy), 0.15);
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("Accuracy vs energy per inference ({})", self.dataset),
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
            .x_desc("Energy per inference (nJ, log scale)")
            .y_desc("Top-1 accuracy (%)")
            .axis_desc_style((FAMILY, AXIS_PX))
            .label_style((FAMILY, TICK_PX))
            .x_label_formatter(&super::log_tick)
            .draw()
            .map_err(de)?;

        let mut front: Vec<&Point> = self.points.iter().filter(|p| p.on_front).collect();
        front.sort_by(|a, b| a.energy_nj.total_cmp(&b.energy_nj));
        let mut stairs = Vec::new();
        for (i, p) in front.iter().enumerate() {
            if i > 0 {
                stairs.push((p.energy_nj, front[i - 1].accuracy));
            }
            stairs.push((p.energy_nj, p.accuracy));
        }
        chart
            .draw_series(LineSeries::new(stairs, BLACK.stroke_width(3)))
            .map_err(de)?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 22, y)], BLACK.stroke_width(3)));

        for family in &self.families {
            let c = super::family_colour(&self.families, family);
            let pts: Vec<&Point> = self.points.iter().filter(|p| &p.family == family).collect();
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(pts.iter().map(|p| {
                    let style = if p.on_front {
                        c.filled()
                    } else {
                        c.stroke_width(3)
                    };
                    EmptyElement::at((p.energy_nj, p.accuracy))
                        + Circle::new((0, 0), if p.on_front { 11 } else { 8 }, style)
                        + Text::new(p.label.clone(), (12, -26), (FAMILY, POINT_PX).into_font())
                }))
                .map_err(de)?
                .label(family.clone())
                .legend(move |(x, y)| Circle::new((x + 11, y), 8, c.filled()));
        }
        // Legend-only entries explaining the marker fill.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label("on the front (filled)")
            .legend(|(x, y)| Circle::new((x + 11, y), 8, BLACK.filled()));
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label("dominated (hollow)")
            .legend(|(x, y)| Circle::new((x + 11, y), 8, BLACK.stroke_width(3)));
        chart
            .configure_series_labels()
            .label_font((FAMILY, TICK_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(de)?;
        Ok(())
    }
}
