//! Method scatter plots on a log x axis (accuracy against energy, against quantization
//! operations): the chart frame, the marker shapes, and the points with their labels, placed
//! together by [`super::labels`] so that no two labels overlap.

use plotters::coord::Shift;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DynElement;
use plotters::prelude::*;

use super::labels::{self, PixelBox, Placement, Request};
use super::{AXIS_PX, CAPTION_PX, DrawResult, POINT_PX, TICK_PX, de, font::FAMILY};

/// A chart with a logarithmic x axis (1-2-5 ticks) and a linear y axis.
pub type LogXChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<WithKeyPoints<LogCoord<f64>>, RangedCoordf64>>;

/// The texts framing a scatter chart.
pub struct Frame<'s> {
    /// Caption above the chart.
    pub caption: &'s str,
    /// x-axis description, with unit.
    pub x_desc: &'s str,
    /// y-axis description, with unit.
    pub y_desc: &'s str,
}

/// Builds the chart and its mesh on `area`, the axes spanning the given points (positive x only)
/// and y clamped to 0..100 (accuracies in percent).
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame,
    points: &[(f64, f64)],
) -> std::result::Result<LogXChart<'a, DB>, String> {
    let (x0, x1) = super::log_range(points.iter().map(|p| p.0));
    let (y0, y1) = super::linear_range(points.iter().map(|p| p.1), 0.15);
    let mut chart = ChartBuilder::on(area)
        .caption(frame.caption, (FAMILY, CAPTION_PX))
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
        .x_desc(frame.x_desc)
        .y_desc(frame.y_desc)
        .axis_desc_style((FAMILY, AXIS_PX))
        .label_style((FAMILY, TICK_PX))
        .x_label_formatter(&super::log_tick)
        .draw()
        .map_err(de)?;
    Ok(chart)
}

/// A marker shape with its radius in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Disc(i32),
    /// Hollow circle.
    Ring(i32),
    /// Hollow triangle.
    Triangle(i32),
    /// Diagonal cross.
    Cross(i32),
}

impl Marker {
    /// Half the marker's extent: labels keep clear of this box.
    pub fn radius(self) -> i32 {
        match self {
            Self::Disc(r) | Self::Ring(r) | Self::Triangle(r) | Self::Cross(r) => r,
        }
    }

    /// The marker centred on the pixel `at`.
    pub fn element<DB: DrawingBackend>(
        self,
        at: (i32, i32),
        colour: RGBColor,
    ) -> DynElement<'static, DB, (i32, i32)> {
        let line = colour.stroke_width(3);
        match self {
            Self::Disc(r) => Circle::new(at, r, colour.filled()).into_dyn(),
            Self::Ring(r) => Circle::new(at, r, line).into_dyn(),
            Self::Triangle(r) => TriangleMarker::new(at, r, line).into_dyn(),
            Self::Cross(r) => Cross::new(at, r, line).into_dyn(),
        }
    }
}

/// One labelled point.
#[derive(Debug, Clone, Copy)]
pub struct Dot<'l> {
    /// Data coordinates.
    pub at: (f64, f64),
    /// Text written next to it.
    pub label: &'l str,
    /// Shape.
    pub marker: Marker,
    /// Colour (the method family's).
    pub colour: RGBColor,
}

/// Draws the markers of `dots` as one legend entry `name`, shown with the `legend` marker.
pub fn draw_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut LogXChart<'a, DB>,
    name: &str,
    dots: &[Dot],
    legend: Marker,
    colour: RGBColor,
) -> DrawResult {
    chart
        .draw_series(
            dots.iter()
                .map(|d| EmptyElement::at(d.at) + d.marker.element((0, 0), d.colour)),
        )
        .map_err(de)?
        .label(name)
        .legend(move |(x, y)| legend.element((x + 11, y), colour));
    Ok(())
}

/// Writes the labels of all `dots`, placed together so that none overlaps another or a marker;
/// a label moved away from its point gets a thin leader line, one with no free room is left out.
pub fn draw_labels<DB: DrawingBackend>(chart: &mut LogXChart<'_, DB>, dots: &[Dot]) -> DrawResult {
    let area = chart.plotting_area();
    let font = (FAMILY, POINT_PX).into_font();
    let style = TextStyle::from(font.clone());
    let mut requests = Vec::with_capacity(dots.len());
    for d in dots {
        let (w, h) = area.estimate_text_size(d.label, &style).map_err(de)?;
        requests.push(Request {
            anchor: chart.backend_coord(&d.at),
            size: (w as i32, h as i32),
        });
    }
    let (xs, ys) = area.get_pixel_range();
    let bounds = PixelBox {
        x: xs.start,
        y: ys.start,
        w: xs.end - xs.start,
        h: ys.end - ys.start,
    };
    let radius = dots.iter().map(|d| d.marker.radius()).max().unwrap_or(0);
    let placed = labels::place(&requests, radius, bounds);
    for ((d, r), p) in dots.iter().zip(&requests).zip(placed) {
        let Some(b) = p.text_box() else { continue };
        let (ax, ay) = r.anchor;
        if let Placement::Leader(_) = p {
            let (ex, ey) = b.nearest(r.anchor);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(d.at)
                        + PathElement::new([(0, 0), (ex - ax, ey - ay)], d.colour.stroke_width(1)),
                ))
                .map_err(de)?;
        }
        chart
            .draw_series(std::iter::once(
                EmptyElement::at(d.at)
                    + Text::new(d.label.to_string(), (b.x - ax, b.y - ay), font.clone()),
            ))
            .map_err(de)?;
    }
    Ok(())
}
