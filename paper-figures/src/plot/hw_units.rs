//! Area and energy per quantization operation of each requantizer unit, two log-scale bar panels.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{AXIS_PX, CAPTION_PX, DrawResult, Figure, POINT_PX, TICK_PX, de, font::FAMILY};
use crate::input::{FigureInput, HwRole, HwUnitRow};

/// The requantizer area/energy figure.
#[derive(Debug, Clone)]
pub struct QuantOpCost {
    units: Vec<HwUnitRow>,
    skipped: Vec<String>,
}

impl QuantOpCost {
    /// Builds the figure from the requantizer units; `None` when there are none.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let units: Vec<HwUnitRow> = input
            .hw_units
            .iter()
            .filter(|u| u.role == HwRole::Requantizer)
            .cloned()
            .collect();
        if units.is_empty() {
            return (None, vec!["no requantizer units in this run".to_string()]);
        }
        let mut skipped = Vec::new();
        for u in &units {
            if u.energy_per_op_pj_sim.is_none() {
                skipped.push(format!("{} simulated energy (not estimated)", u.unit));
            }
            if u.energy_per_op_pj_vectorless.is_none() {
                skipped.push(format!("{} vectorless energy (not estimated)", u.unit));
            }
        }
        let fig = Self {
            units,
            skipped: skipped.clone(),
        };
        (Some(fig), skipped)
    }
}

/// One bar: unit (segment), series (left or right half when there are two) and value.
struct Bar {
    unit: usize,
    series: usize,
    value: f64,
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[String],
    caption: &str,
    y_desc: &str,
    series: &[&str],
    bars: &[Bar],
) -> DrawResult {
    let (y0, y1) = super::log_range(bars.iter().map(|b| b.value));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, AXIS_PX + 2))
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(110)
        .build_cartesian_2d(
            (0..names.len() - 1).into_segmented(),
            (y0..y1)
                .log_scale()
                .with_key_points(super::log_ticks(y0, y1)),
        )
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&super::log_tick)
        .x_desc("Requantizer unit")
        .y_desc(y_desc)
        .axis_desc_style((FAMILY, AXIS_PX))
        .label_style((FAMILY, TICK_PX))
        .draw()
        .map_err(de)?;
    for (s, name) in series.iter().enumerate() {
        let colour = super::colour(s);
        let drawn = chart
            .draw_series(bars.iter().filter(|b| b.series == s).map(|b| {
                let (l, r) = match (series.len(), s) {
                    (1, _) => (SegmentValue::Exact(b.unit), SegmentValue::Exact(b.unit + 1)),
                    (_, 0) => (SegmentValue::Exact(b.unit), SegmentValue::CenterOf(b.unit)),
                    _ => (
                        SegmentValue::CenterOf(b.unit),
                        SegmentValue::Exact(b.unit + 1),
                    ),
                };
                let mut rect = Rectangle::new([(l, y0), (r, b.value)], colour.filled());
                rect.set_margin(0, 0, 6, 6);
                rect
            }))
            .map_err(de)?;
        if series.len() > 1 {
            drawn.label(*name).legend(move |(x, y)| {
                Rectangle::new([(x, y - 8), (x + 24, y + 8)], colour.filled())
            });
        }
    }
    if series.len() > 1 {
        super::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    chart
        .draw_series(bars.iter().map(|b| {
            let x = match (series.len(), b.series) {
                (1, _) | (_, 1) => SegmentValue::CenterOf(b.unit),
                _ => SegmentValue::Exact(b.unit),
            };
            Text::new(
                super::log_tick(&b.value),
                (x, b.value),
                TextStyle::from((FAMILY, POINT_PX).into_font())
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            )
        }))
        .map_err(de)?;
    Ok(())
}

impl Figure for QuantOpCost {
    fn stem(&self) -> &'static str {
        "quant_op_area_energy"
    }

    fn title(&self) -> String {
        "Area and energy per quantization operation of each requantizer unit (log scale)".into()
    }

    fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::with_footer(root, &self.skipped)?;
        let area = area
            .titled(
                "Cost of one quantization operation",
                (FAMILY, CAPTION_PX).into_font(),
            )
            .map_err(de)?;
        let (_, h) = area.dim_in_pixel();
        let (left, right) = area.split_vertically(h / 2);
        let names: Vec<String> = self.units.iter().map(|u| u.unit.clone()).collect();
        let area_bars: Vec<Bar> = self
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| Bar {
                unit: i,
                series: 0,
                value: u.area_um2,
            })
            .collect();
        panel(
            &left,
            &names,
            "Cell area (log scale)",
            "Area (µm²)",
            &["area"],
            &area_bars,
        )?;

        let mut energy_bars = Vec::new();
        for (i, u) in self.units.iter().enumerate() {
            for (series, v) in [u.energy_per_op_pj_sim, u.energy_per_op_pj_vectorless]
                .into_iter()
                .enumerate()
            {
                if let Some(v) = v.filter(|v| *v > 0.0) {
                    energy_bars.push(Bar {
                        unit: i,
                        series,
                        value: v,
                    });
                }
            }
        }
        panel(
            &right,
            &names,
            "Energy per operation (log scale)",
            "Energy per op (pJ)",
            &["simulated activity", "vectorless"],
            &energy_bars,
        )
    }
}
