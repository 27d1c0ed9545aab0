//! Yosys synthesis of a unit to a Liberty library: gate-level netlist, cell counts and area.
//!
//! The script is the one `eda-notes.md` documents: `synth -flatten`, `dfflibmap` and `abc` to the
//! library, `opt_clean`, `stat -liberty` for the area in the library's units (um^2 for OSU 0.18 um),
//! and `write_verilog -noattr` for a netlist that Icarus (with the cell models) and OpenSTA read.
//! Before `stat`, internal buses are split into scalar nets with generated names (ports keep their
//! bus names), which keeps gate-level simulation fast and gives every net one plain name in Icarus'
//! VCD and in OpenSTA alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qbench_io::{IoError, write_atomic};

use crate::error::{HwError, Result};
use crate::tools;
use crate::units::Unit;

/// A synthesized unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Netlist {
    /// The unit's name.
    pub unit: String,
    /// Gate-level Verilog (`write_verilog -noattr`).
    pub path: PathBuf,
    /// Top module of the netlist.
    pub top: String,
    /// Instances per library cell.
    pub cells: BTreeMap<String, u64>,
    /// All cell instances.
    pub cell_count: u64,
    /// Total cell area from `stat -liberty` (um^2 for OSU 0.18 um).
    pub area_um2: f64,
    /// The Yosys version line that produced it (provenance).
    pub yosys_version: String,
    /// The synthesis log.
    pub log: PathBuf,
}

/// The Yosys script for `unit` (sources read from `source`, netlist written to `netlist`).
pub fn script(unit: &Unit, source: &Path, liberty: &Path, netlist: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "read_verilog -defer {}", quote(source));
    for (k, v) in &unit.params {
        let _ = writeln!(s, "chparam -set {k} {v} {}", unit.top);
    }
    let lib = quote(liberty);
    let _ = writeln!(s, "synth -top {} -flatten", unit.top);
    let _ = writeln!(s, "dfflibmap -liberty {lib}");
    let _ = writeln!(s, "abc -liberty {lib}");
    let _ = writeln!(s, "opt_clean");
    // Internal buses become scalar nets with generated names (`_01234_`); only ports stay buses.
    // Icarus propagates a bus as a whole, so one flip-flop of a 480-bit register re-evaluated every
    // reader of the bus: scalar nets make gate-level simulation an order of magnitude faster.
    let _ = writeln!(s, "splitnets");
    let _ = writeln!(s, "rename -hide w:* x:* %d");
    let _ = writeln!(s, "opt_clean");
    let _ = writeln!(s, "stat -liberty {lib}");
    let _ = writeln!(s, "write_verilog -noattr {}", quote(netlist));
    s
}

/// Quotes a path for a Yosys script.
fn quote(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// Tail of a log file for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Synthesizes `unit` to `liberty` in `workdir` (files `<unit>.synth.ys`, `<unit>.synth.log`,
/// `<unit>.netlist.v`) and reads the cell counts and area from Yosys' `stat`.
///
/// # Errors
/// [`HwError::MissingTool`] without `yosys`, [`HwError::MissingLibrary`] without the library,
/// [`HwError::ToolFailed`] with the log tail when Yosys fails, [`HwError::Parse`] when its report
/// has no area.
pub fn synthesize(unit: &Unit, liberty: &Path, workdir: &Path) -> Result<Netlist> {
    let yosys = tools::require("yosys")?;
    tools::require_file(liberty)?;
    std::fs::create_dir_all(workdir).map_err(|e| IoError::new("create the folder", workdir, e))?;
    let source = workdir.join(format!("{}.rtl.v", unit.name));
    write_atomic(&source, unit.source())?;
    let netlist = workdir.join(format!("{}.netlist.v", unit.name));
    let ys = workdir.join(format!("{}.synth.ys", unit.name));
    let log = workdir.join(format!("{}.synth.log", unit.name));
    write_atomic(&ys, script(unit, &source, liberty, &netlist))?;
    let status = yosys
        .command()
        .arg("-q")
        .arg("-l")
        .arg(&log)
        .arg("-s")
        .arg(&ys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| IoError::new("run", &yosys.path, e))?;
    if !status.success() {
        return Err(HwError::ToolFailed {
            tool: "yosys".into(),
            detail: format!(
                "{status} synthesizing {} (log {}):\n{}",
                unit.name,
                log.display(),
                log_tail(&log, 15)
            ),
        });
    }
    let text = std::fs::read_to_string(&log).map_err(|e| IoError::new("read", &log, e))?;
    let stat = parse_stat(&text, &unit.top).map_err(|detail| HwError::Parse {
        what: "yosys stat report".into(),
        path: log.clone(),
        detail,
    })?;
    Ok(Netlist {
        unit: unit.name.clone(),
        path: netlist,
        top: unit.top.clone(),
        cell_count: stat.cells.values().sum(),
        cells: stat.cells,
        area_um2: stat.area,
        yosys_version: yosys.version,
        log,
    })
}

/// Rebuilds the [`Netlist`] of a previous [`synthesize`] of `unit` in `workdir` from its files
/// (netlist and log), for callers that cache synthesis results by their inputs' hashes.
///
/// # Errors
/// [`HwError::Io`] when a file is missing, [`HwError::Parse`] when the log has no report.
pub fn load(unit: &Unit, workdir: &Path) -> Result<Netlist> {
    let netlist = workdir.join(format!("{}.netlist.v", unit.name));
    let log = workdir.join(format!("{}.synth.log", unit.name));
    if !netlist.is_file() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        return Err(IoError::new("find", netlist, missing).into());
    }
    let text = std::fs::read_to_string(&log).map_err(|e| IoError::new("read", &log, e))?;
    let parse = |detail: String| HwError::Parse {
        what: "yosys stat report".into(),
        path: log.clone(),
        detail,
    };
    let stat = parse_stat(&text, &unit.top).map_err(parse)?;
    let version = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Yosys "))
        .ok_or_else(|| parse("no `Yosys <version>` banner".into()))?
        .to_string();
    Ok(Netlist {
        unit: unit.name.clone(),
        path: netlist,
        top: unit.top.clone(),
        cell_count: stat.cells.values().sum(),
        cells: stat.cells,
        area_um2: stat.area,
        yosys_version: version,
        log,
    })
}

/// Cell counts and area of one `stat -liberty` report.
#[derive(Debug, PartialEq)]
pub struct Stat {
    /// Instances per cell type.
    pub cells: BTreeMap<String, u64>,
    /// `Chip area for module ...`.
    pub area: f64,
}

/// Parses the last `stat` report of `top` in a Yosys log: the cell list under `Number of cells:`
/// and the `Chip area for module '\top':` line.
pub fn parse_stat(log: &str, top: &str) -> std::result::Result<Stat, String> {
    let header = format!("=== {top} ===");
    let start = log
        .rfind(&header)
        .ok_or_else(|| format!("no `{header}` section"))?;
    let section = &log[start..];
    let mut cells = BTreeMap::new();
    let mut in_cells = false;
    let mut area = None;
    for line in section.lines() {
        let t = line.trim();
        if t.starts_with("Number of cells:") {
            in_cells = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("Chip area for module") {
            let v = rest.rsplit(':').next().unwrap_or("").trim();
            area = Some(v.parse::<f64>().map_err(|e| format!("area `{v}`: {e}"))?);
            break;
        }
        if in_cells {
            let mut parts = t.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(name), Some(n), None) => {
                    let n = n
                        .parse::<u64>()
                        .map_err(|e| format!("cell line `{t}`: {e}"))?;
                    cells.insert(name.to_string(), n);
                }
                _ => in_cells = false,
            }
        }
    }
    let area = area.ok_or("no `Chip area` line (was the library given to stat?)")?;
    if cells.is_empty() {
        return Err("no cells listed".into());
    }
    Ok(Stat { cells, area })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "
=== mac ===

   Number of wires:                 10
   Number of cells:                 5
     DFFPOSX1                        3
     NAND2X1                         2

   Chip area for module '\\mac': 123.500000
";

    #[test]
    fn parses_cells_and_area() {
        let s = parse_stat(LOG, "mac").unwrap();
        assert_eq!(s.area, 123.5);
        assert_eq!(s.cells["DFFPOSX1"], 3);
        assert_eq!(s.cells.values().sum::<u64>(), 5);
        assert!(parse_stat(LOG, "other").is_err());
        assert!(parse_stat(&LOG.replace("Chip area", "Chip"), "mac").is_err());
    }
}
