//! Paper-ready tables and figures from one qbench run.
//!
//! The input is plain data ([`FigureInput`]): this crate does not depend on the methods, engine
//! or hardware crates (only on the bottom layer `qbench-io` for atomic writes and sha256) and never derives a number beyond formatting, the Pareto front and the
//! claims' ratios. [`render`] writes, atomically, into one folder:
//!
//! - tables `methods.{md,tex,csv,parquet}` and `hw_units.{md,tex,csv,parquet}`;
//! - `claims.md`: published numbers beside this run's ([`claims`]);
//! - figures, each as PNG and SVG: `accuracy_vs_energy`, `energy_breakdown`, `quant_op_area_energy`,
//!   `accuracy_vs_bits`, `accuracy_vs_quant_ops`, `layer_energy`;
//! - `index.md` linking everything with the run's provenance.
//!
//! A missing value (`None`) renders as `n/a` with a footnote; figures leave it out and say so.

pub mod claims;
pub mod error;
pub mod input;
pub mod pareto;
pub mod plot;
pub mod report;
pub mod table;

use std::path::{Path, PathBuf};

use qbench_io::{sha256_hex, write_atomic};

pub use error::{Error, Result};
pub use input::{
    Claim, ENERGY_CATEGORIES, FigureInput, HwRole, HwUnitRow, LayerEnergy, MethodRow, Metric,
};

use plot::{Figure, PlotFiles};
use table::Table;

/// The four files of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFiles {
    /// Table name (file stem).
    pub name: String,
    /// Caption.
    pub caption: String,
    /// Input fields the table is built from.
    pub built_from: String,
    /// Markdown file.
    pub markdown: PathBuf,
    /// LaTeX (booktabs) file.
    pub latex: PathBuf,
    /// CSV file.
    pub csv: PathBuf,
    /// Parquet file.
    pub parquet: PathBuf,
}

/// One drawn figure.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureFiles {
    /// File stem.
    pub stem: String,
    /// One-line description.
    pub title: String,
    /// Input fields the figure is built from.
    pub built_from: String,
    /// The PNG and SVG files.
    pub files: PlotFiles,
    /// Rows or values left out, with reasons.
    pub skipped: Vec<String>,
}

/// Everything [`render`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Tables.
    pub tables: Vec<TableFiles>,
    /// `claims.md`.
    pub claims: PathBuf,
    /// Drawn figures.
    pub figures: Vec<FigureFiles>,
    /// Figures not drawn (stem, reasons), e.g. no per-layer energy in the run.
    pub not_drawn: Vec<(String, Vec<String>)>,
    /// `index.md`.
    pub index: PathBuf,
    /// Font file used by the plots.
    pub font: PathBuf,
}

/// Renders every table, figure, the claims report and the index of `input` into `out_dir`
/// (created if needed). Existing files of the same names are replaced atomically.
pub fn render(input: &FigureInput, out_dir: &Path) -> Result<Rendered> {
    input.validate()?;
    let font = plot::font::ensure_registered()?;
    let tables = vec![
        write_table(
            &table::methods_table(input),
            "methods[]: all fields",
            out_dir,
        )?,
        write_table(&table::hw_table(input), "hw_units[]: all fields", out_dir)?,
    ];
    let claims = out_dir.join("claims.md");
    write_atomic(&claims, report::claims_markdown(input).as_bytes())?;

    let mut rendered = Rendered {
        out_dir: out_dir.to_path_buf(),
        tables,
        claims,
        figures: Vec::new(),
        not_drawn: Vec::new(),
        index: out_dir.join("index.md"),
        font,
    };
    figure(
        &mut rendered,
        "accuracy_vs_energy",
        "methods[].accuracy_mean, energy_per_inference_nj, method",
        plot::acc_energy::AccuracyVsEnergy::new(input),
    )?;
    figure(
        &mut rendered,
        "energy_breakdown",
        "methods[].energy_breakdown_nj (compute, requantization, memory)",
        plot::energy_breakdown::EnergyBreakdown::new(input),
    )?;
    figure(
        &mut rendered,
        "quant_op_area_energy",
        "hw_units[] with role requantizer: area_um2, energy_per_op_pj_sim, energy_per_op_pj_vectorless",
        plot::hw_units::QuantOpCost::new(input),
    )?;
    figure(
        &mut rendered,
        "accuracy_vs_bits",
        "methods[].weight_bits, accuracy_mean, accuracy_std, method",
        plot::acc_bits::AccuracyVsBits::new(input),
    )?;
    figure(
        &mut rendered,
        "accuracy_vs_quant_ops",
        "methods[].quant_ops, accuracy_mean, variant, method",
        plot::acc_ops::AccuracyVsQuantOps::new(input),
    )?;
    figure(
        &mut rendered,
        "layer_energy",
        "layer_energy",
        plot::layer_energy::LayerEnergyBars::new(input),
    )?;

    let json = serde_json::to_vec(input).map_err(|e| Error::Encode {
        what: "figure input (for its sha256)".to_string(),
        reason: e.to_string(),
    })?;
    let index = report::index_markdown(input, &sha256_hex(&json), &rendered);
    write_atomic(&rendered.index, index.as_bytes())?;
    Ok(rendered)
}

fn write_table(table: &Table, built_from: &str, out_dir: &Path) -> Result<TableFiles> {
    let path = |ext: &str| out_dir.join(format!("{}.{ext}", table.name));
    let files = TableFiles {
        name: table.name.clone(),
        caption: table.caption.clone(),
        built_from: built_from.to_string(),
        markdown: path("md"),
        latex: path("tex"),
        csv: path("csv"),
        parquet: path("parquet"),
    };
    write_atomic(&files.markdown, table::markdown::render(table).as_bytes())?;
    write_atomic(&files.latex, table::latex::render(table).as_bytes())?;
    write_atomic(&files.csv, &table::csv::render(table)?)?;
    write_atomic(&files.parquet, &table::parquet::render(table)?)?;
    Ok(files)
}

fn figure<F: Figure>(
    rendered: &mut Rendered,
    stem: &str,
    built_from: &str,
    (fig, notes): (Option<F>, Vec<String>),
) -> Result<()> {
    match fig {
        Some(fig) => {
            let files = plot::write(&fig, &rendered.out_dir)?;
            rendered.figures.push(FigureFiles {
                stem: fig.stem().to_string(),
                title: fig.title(),
                built_from: built_from.to_string(),
                files,
                skipped: notes,
            });
        }
        None => rendered.not_drawn.push((stem.to_string(), notes)),
    }
    Ok(())
}
