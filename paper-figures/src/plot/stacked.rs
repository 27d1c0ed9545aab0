//! Stacked bars: one bar per named item, one coloured segment per kind (shared by the per-layer
//! and the per-method energy figures). Short names stand under vertical bars; long names (method
//! labels) are written in full to the left of horizontal bars, first item on top.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, CAPTION_PX, DrawResult, TICK_PX, de, font::FAMILY, log_tick};

/// One bar: its name and the value of each kind it has.
pub type Bar = (String, std::collections::BTreeMap<String, f64>);

/// What a stacked-bar figure shows.
pub struct Stacked<'a> {
    /// Caption.
    pub caption: String,
    /// What the bars are (the axis that names them).
    pub names_desc: &'a str,
    /// What the values are (the value axis).
    pub value_desc: &'a str,
    /// The bars, first to last.
    pub bars: &'a [Bar],
    /// The kinds, from the base of a bar outwards (legend order).
    pub kinds: &'a [String],
    /// Horizontal bars with the names to their left (for long names).
    pub horizontal: bool,
}

impl Stacked<'_> {
    /// The longest bar, with room above it for the legend.
    fn value_range(&self) -> f64 {
        let top = self
            .bars
            .iter()
            .map(|(_, k)| k.values().sum::<f64>())
            .fold(0.0, f64::max);
        // Horizontal bars keep the legend's corner free: it sits right of the longest bar.
        let room = if self.horizontal { 1.45 } else { 1.15 };
        if top > 0.0 { top * room } else { 1.0 }
    }

    /// Where segment `k` of bar `i` starts and ends along the value axis (`None`: no segment).
    fn segment(&self, i: usize, k: usize) -> Option<(f64, f64)> {
        let values = &self.bars[i].1;
        let v = *values.get(&self.kinds[k])?;
        let below: f64 = self.kinds[..k].iter().filter_map(|p| values.get(p)).sum();
        Some((below, below + v))
    }
}

/// Draws `s` on `root`.
pub fn draw<DB: DrawingBackend>(s: &Stacked<'_>, root: &DrawingArea<DB, Shift>) -> DrawResult {
    if s.horizontal {
        draw_horizontal(s, root)
    } else {
        draw_vertical(s, root)
    }
}

/// Bar names at the centre of their segment.
fn name_of<'a>(names: &'a [&'a String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(i) => names.get(*i).map(|s| s.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

fn draw_vertical<DB: DrawingBackend>(s: &Stacked<'_>, root: &DrawingArea<DB, Shift>) -> DrawResult {
    let names: Vec<&String> = s.bars.iter().map(|(n, _)| n).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(&s.caption, (FAMILY, CAPTION_PX))
        .margin(20)
        .x_label_area_size(80)
        .y_label_area_size(130)
        .build_cartesian_2d(
            (0..s.bars.len().max(1) - 1).into_segmented(),
            0.0..s.value_range(),
        )
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(s.bars.len())
        .x_label_formatter(&|v| name_of(&names, v))
        .y_label_formatter(&log_tick)
        .label_style((FAMILY, TICK_PX))
        .x_desc(s.names_desc)
        .y_desc(s.value_desc)
        .axis_desc_style((FAMILY, AXIS_PX))
        .draw()
        .map_err(de)?;
    let bar = |i, lo, hi| {
        [
            (SegmentValue::Exact(i), lo),
            (SegmentValue::Exact(i + 1), hi),
        ]
    };
    draw_bars(&mut chart, s, bar, (0, 0, 6, 6))
}

fn draw_horizontal<DB: DrawingBackend>(
    s: &Stacked<'_>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult {
    // First bar on top: segment j of the axis holds bar n - 1 - j.
    let n = s.bars.len().max(1);
    let names: Vec<&String> = s.bars.iter().rev().map(|(name, _)| name).collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    let label_px = TICK_PX.min(560 / n as u32).max(12);
    let mut chart = ChartBuilder::on(root)
        .caption(&s.caption, (FAMILY, CAPTION_PX))
        .margin(20)
        .x_label_area_size(80)
        .y_label_area_size((longest * label_px * 11 / 20 + 20).min(520))
        .build_cartesian_2d(0.0..s.value_range(), (0..n - 1).into_segmented())
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| name_of(&names, v))
        .x_label_formatter(&log_tick)
        .x_labels(6)
        .y_label_style((FAMILY, label_px))
        .x_label_style((FAMILY, TICK_PX))
        .x_desc(s.value_desc)
        .y_desc(s.names_desc)
        .axis_desc_style((FAMILY, AXIS_PX))
        .draw()
        .map_err(de)?;
    let bar = |i: usize, lo, hi| {
        let j = n - 1 - i;
        [
            (lo, SegmentValue::Exact(j)),
            (hi, SegmentValue::Exact(j + 1)),
        ]
    };
    draw_bars(&mut chart, s, bar, (3, 3, 0, 0))
}

/// One series per kind: the segment of kind `k` of bar `i` spans `corners(i, lo, hi)`, inset
/// by `margin` (top, bottom, left, right, pixels); then the kinds' legend in the upper right
/// corner, kept free of bars by [`Stacked::value_range`].
fn draw_bars<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    s: &Stacked<'_>,
    corners: impl Fn(usize, f64, f64) -> [(X::ValueType, Y::ValueType); 2],
    margin: (u32, u32, u32, u32),
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    for (k, kind) in s.kinds.iter().enumerate() {
        let c = super::colour(k);
        let bars = (0..s.bars.len()).filter_map(|i| {
            let (lo, hi) = s.segment(i, k)?;
            let mut r = Rectangle::new(corners(i, lo, hi), c.filled());
            r.set_margin(margin.0, margin.1, margin.2, margin.3);
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
        .map_err(de)
}
