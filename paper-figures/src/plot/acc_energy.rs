//! Accuracy (integer engine) against energy per inference, log energy axis, Pareto front marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::scatter::{self, Dot, Frame, Marker};
use super::{DrawResult, Figure, de};
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
    metric: crate::input::Metric,
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
            metric: input.metric,
            skipped: skipped.clone(),
        };
        (Some(fig), skipped)
    }
}

impl AccuracyVsEnergy {
    /// A point as drawn: filled and larger on the front, hollow when dominated.
    fn dot<'p>(&self, p: &'p Point) -> Dot<'p> {
        Dot {
            at: (p.energy_nj, p.accuracy),
            label: &p.label,
            marker: if p.on_front {
                Marker::Disc(11)
            } else {
                Marker::Ring(8)
            },
            colour: super::family_colour(&self.families, &p.family),
        }
    }
}

impl Figure for AccuracyVsEnergy {
    fn stem(&self) -> &'static str {
        "accuracy_vs_energy"
    }

    fn title(&self) -> String {
        format!(
            "{} ({}, integer engine) vs energy per inference; Pareto front marked",
            self.metric.short(),
            self.dataset
        )
    }

    fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::with_footer(root, &self.skipped)?;
        let coords: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|p| (p.energy_nj, p.accuracy))
            .collect();
        let caption = format!(
            "{} vs energy per inference ({})",
            self.metric.short(),
            self.dataset
        );
        let frame = Frame {
            caption: &caption,
            x_desc: "Energy per inference (nJ, log scale)",
            y_desc: self.metric.axis(),
        };
        let mut chart = scatter::chart(&area, &frame, &coords)?;

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

        let dot = |p| self.dot(p);
        for family in &self.families {
            let dots: Vec<Dot> = self
                .points
                .iter()
                .filter(|p| &p.family == family)
                .map(dot)
                .collect();
            if !dots.is_empty() {
                let c = super::family_colour(&self.families, family);
                scatter::draw_series(&mut chart, family, &dots, Marker::Disc(8), c)?;
            }
        }
        // Labels of the front first: they get the spots right beside their points.
        let mut labelled: Vec<&Point> = self.points.iter().collect();
        labelled.sort_by_key(|p| !p.on_front);
        let dots: Vec<Dot> = labelled.into_iter().map(dot).collect();
        scatter::draw_labels(&mut chart, &dots)?;
        // Legend-only entries explaining the marker fill.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label("on the front (filled)")
            .legend(|(x, y)| Marker::Disc(8).element((x + 11, y), BLACK));
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(de)?
            .label("dominated (hollow)")
            .legend(|(x, y)| Marker::Ring(8).element((x + 11, y), BLACK));
        super::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}
