//! Stacked bars: one bar per named item, one coloured segment per kind (shared by the per-layer
//! and the per-method energy figures).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{AXIS_PX, CAPTION_PX, DrawResult, POINT_PX, TICK_PX, de, font::FAMILY};

/// One bar: its name and the value of each kind it has.
pub type Bar = (String, std::collections::BTreeMap<String, f64>);

/// What a stacked-bar figure shows.
pub struct Stacked<'a> {
    /// Caption.
    pub caption: String,
    /// Description of the x axis.
    pub x_desc: &'a str,
    /// Description of the y axis.
    pub y_desc: &'a str,
    /// The bars, left to right.
    pub bars: &'a [Bar],
    /// The kinds, bottom to top (legend order).
    pub kinds: &'a [String],
    /// Whether bar names are written vertically (long names).
    pub vertical_names: bool,
}

/// Draws `s` on `root`.
pub fn draw<DB: DrawingBackend>(s: &Stacked<'_>, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let top = s
        .bars
        .iter()
        .map(|(_, k)| k.values().sum::<f64>())
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let names: Vec<&String> = s.bars.iter().map(|(n, _)| n).collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    let x_area = if s.vertical_names {
        (longest * POINT_PX * 11 / 20 + 50).min(420)
    } else {
        80
    };
    let mut chart = ChartBuilder::on(root)
        .caption(&s.caption, (FAMILY, CAPTION_PX))
        .margin(20)
        .x_label_area_size(x_area)
        .y_label_area_size(110)
        .build_cartesian_2d((0..s.bars.len().max(1) - 1).into_segmented(), 0.0..top)
        .map_err(de)?;
    let tick_font = if s.vertical_names {
        (FAMILY, POINT_PX)
            .into_font()
            .transform(FontTransform::Rotate270)
            .into_text_style(root)
            .pos(Pos::new(HPos::Right, VPos::Center))
    } else {
        (FAMILY, TICK_PX).into_font().into_text_style(root)
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(s.bars.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).map(|s| s.to_string()).unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_style(tick_font)
        .y_label_style((FAMILY, TICK_PX))
        .x_desc(s.x_desc)
        .y_desc(s.y_desc)
        .axis_desc_style((FAMILY, AXIS_PX))
        .draw()
        .map_err(de)?;
    for (k, kind) in s.kinds.iter().enumerate() {
        let c = super::colour(k);
        let bars = s.bars.iter().enumerate().filter_map(|(i, (_, e))| {
            let v = *e.get(kind)?;
            let below: f64 = s.kinds[..k].iter().filter_map(|p| e.get(p)).sum();
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i), below),
                    (SegmentValue::Exact(i + 1), below + v),
                ],
                c.filled(),
            );
            r.set_margin(0, 0, 6, 6);
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
