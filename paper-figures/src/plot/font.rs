//! The plots' font: DejaVu Sans read once from disk and registered with plotters' pure-Rust
//! (ab_glyph) text renderer, so rendering needs no fontconfig or FreeType, only the font file.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// Family name every plot uses; the registered font answers to it.
pub const FAMILY: &str = "sans-serif";

/// Where Debian's `fonts-dejavu-core` (and a few other distributions) put DejaVu Sans.
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
];

static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Registers the font once per process: `$QBENCH_FONT` if set, else the first DejaVu Sans found.
/// Returns the file used (recorded in the index's provenance).
pub fn ensure_registered() -> Result<PathBuf> {
    REGISTERED
        .get_or_init(register)
        .clone()
        .map_err(|reason| Error::Font { reason })
}

fn register() -> std::result::Result<PathBuf, String> {
    let paths: Vec<PathBuf> = match std::env::var_os("QBENCH_FONT").filter(|v| !v.is_empty()) {
        Some(p) => vec![PathBuf::from(p)],
        None => CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    let Some(path) = paths.iter().find(|p| p.is_file()) else {
        let tried: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!("none of {} exists", tried.join(", ")));
    };
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // plotters keeps registered fonts for the whole process and wants 'static bytes; this runs
    // once per process (OnceLock), so the leak is bounded by one font file.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a TrueType/OpenType font", path.display()))?;
    Ok(path.clone())
}
