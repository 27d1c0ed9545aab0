//! Figures: each module turns a [`FigureInput`] into one [`Figure`], drawn on plotters' bitmap
//! (PNG) and SVG backends from the same code. Values a figure cannot use (`None`) are skipped and
//! named in a footer on the figure and in the figure's notes.

pub mod acc_bits;
pub mod acc_energy;
pub mod acc_ops;
pub mod energy_breakdown;
pub mod font;
pub mod hw_units;
pub mod labels;
pub mod layer_energy;
pub mod scatter;
pub mod stacked;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use qbench_io::write_atomic;

use crate::error::{Error, Result};
use crate::input::FigureInput;

/// Figure size in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (1200, 800);
/// Font sizes in pixels: caption, axis descriptions, tick labels, point labels, footer.
pub const CAPTION_PX: u32 = 34;
/// Axis description size.
pub const AXIS_PX: u32 = 28;
/// Tick label and legend size.
pub const TICK_PX: u32 = 24;
/// Size of labels written next to points and bars.
pub const POINT_PX: u32 = 20;

/// Errors inside drawing code, turned into [`Error::Plot`] with the figure's name.
pub type DrawResult = std::result::Result<(), String>;

/// Converts any plotters error to the message kept in [`Error::Plot`].
pub fn de<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// File stem, e.g. `accuracy_vs_energy`.
    fn stem(&self) -> &'static str;
    /// One-line description for the index.
    fn title(&self) -> String;
    /// Points or rows left out, each with the reason (also drawn as a footer).
    fn skipped(&self) -> &[String];
    /// Draws the figure on a white `root` of [`SIZE`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// The two files written for one figure.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotFiles {
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
}

/// Draws `fig` twice (PNG and SVG) and writes both atomically into `out_dir`.
pub fn write<F: Figure>(fig: &F, out_dir: &Path) -> Result<PlotFiles> {
    font::ensure_registered()?;
    let plot_err = |reason: String| Error::Plot {
        figure: fig.stem().to_string(),
        reason,
    };
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(de(e)))?;
        fig.draw(&root).map_err(plot_err)?;
        root.present().map_err(|e| plot_err(de(e)))?;
    }
    let png_path = out_dir.join(format!("{}.png", fig.stem()));
    write_atomic(&png_path, &encode_png(&rgb, w, h, fig.stem())?)?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(de(e)))?;
        fig.draw(&root).map_err(plot_err)?;
        root.present().map_err(|e| plot_err(de(e)))?;
    }
    let svg_path = out_dir.join(format!("{}.svg", fig.stem()));
    write_atomic(&svg_path, svg.as_bytes())?;
    Ok(PlotFiles {
        png: png_path,
        svg: svg_path,
    })
}

fn encode_png(rgb: &[u8], w: u32, h: u32, stem: &str) -> Result<Vec<u8>> {
    let enc = |e: png::EncodingError| Error::Encode {
        what: format!("{stem}.png"),
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(enc)?;
    writer.write_image_data(rgb).map_err(enc)?;
    writer.finish().map_err(enc)?;
    Ok(out)
}

/// Splits off a footer strip listing what was skipped; returns the area left for the chart.
pub fn with_footer<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    skipped: &[String],
) -> std::result::Result<DrawingArea<DB, Shift>, String> {
    if skipped.is_empty() {
        return Ok(root.clone());
    }
    let line = POINT_PX as i32 + 6;
    let height = SIZE.1 as i32 - line * skipped.len().min(4) as i32 - 12;
    let (chart, footer) = root.split_vertically(height);
    let style = (font::FAMILY, POINT_PX).into_font().color(&BLACK.mix(0.75));
    let mut lines: Vec<String> = skipped.iter().take(3).cloned().collect();
    if skipped.len() > 3 {
        lines.push(format!("... and {} more (see index.md)", skipped.len() - 3));
    }
    for (i, text) in lines.iter().enumerate() {
        footer
            .draw_text(
                &format!("Not shown: {text}"),
                &style,
                (20, 4 + i as i32 * line),
            )
            .map_err(de)?;
    }
    Ok(chart)
}

/// Draws the series legend at `position` in the figures' common style.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .label_font((font::FAMILY, TICK_PX))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(de)
}

/// Tableau 10: distinguishable colours for method families.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour of the `i`-th item of a sorted list (families, operation kinds).
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Method families of a run, sorted: the index of a family is its colour in every figure.
pub fn families(input: &FigureInput) -> Vec<String> {
    let set: BTreeSet<&str> = input.methods.iter().map(|m| m.method.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Colour of a method family in every figure of a run.
pub fn family_colour(families: &[String], family: &str) -> RGBColor {
    colour(families.iter().position(|f| f == family).unwrap_or(0))
}

/// A padded `[lo, hi]` for a linear axis; a single value gets a unit-wide window.
pub fn linear_range(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1.0);
    (lo - pad * span, hi + pad * span)
}

/// A padded `[lo, hi]` for a log axis over positive values (non-positive ones are ignored).
pub fn log_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    (lo / 2.0, hi * 2.0)
}

/// Ticks for a log axis: 1-2-5 multiples of each power of ten inside `[lo, hi]` (plotters' own
/// choice labels only a couple of ticks on short ranges).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut exp = lo.log10().floor() as i32;
    while 10f64.powi(exp) <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(exp);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        exp += 1;
    }
    out
}

/// Tick label for a log axis: plain numbers, two significant digits below 1.
pub fn log_tick(v: &f64) -> String {
    if *v >= 1.0 || *v <= 0.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        let decimals = (1 - v.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_1_2_5_inside_the_range() {
        assert_eq!(log_ticks(15.0, 240.0), vec![20.0, 50.0, 100.0, 200.0]);
        assert_eq!(log_ticks(0.02, 0.9), vec![0.02, 0.05, 0.1, 0.2, 0.5]);
    }

    #[test]
    fn log_tick_labels_are_short() {
        assert_eq!(log_tick(&20000.0), "20000");
        assert_eq!(log_tick(&2.5), "2.5");
        assert_eq!(log_tick(&0.05), "0.05");
        assert_eq!(log_tick(&0.45), "0.45");
        assert_eq!(log_tick(&0.0012), "0.0012");
    }
}
