//! OpenSTA: the critical path, the fastest clock a unit meets, and its power and energy per
//! operation at a configured clock.
//!
//! Two `sta` processes per unit, because this OpenSTA cannot unset an activity setting within a
//! session (see `shared/reference/eda-notes.md`):
//! - [`timing_and_vectorless`] (`rtl/scripts/sta_timing.tcl`): the worst setup path at the
//!   configured period, and power with a *vectorless* activity that OpenSTA propagates from the
//!   data inputs through the cells' logic functions;
//! - [`simulated_power`] (`rtl/scripts/sta_power_sim.tcl`): power with every pin's activity taken
//!   from gate-level simulation (`sta::set_power_pin_activity`: this version has neither
//!   `read_vcd` nor `read_saif`, and its `set_power_activity -pins` is broken).
//!
//! Every unit registers its inputs and outputs, so the worst path is register to register and its
//! delay does not depend on the period: the fastest clock met is `period - worst slack`, exact
//! from one timing run. Energy per operation is `total power x period` (one operation per clock).
//!
//! This OpenSTA (a 2019 snapshot) sums rise and fall internal energies where current OpenSTA
//! averages them, and counts clock-pin energy twice: absolute energies are high; ratios between
//! units are robust.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qbench_io::IoError;
use serde::{Deserialize, Serialize};

use crate::error::{HwError, Result};
use crate::tools::Tool;

/// The Tcl script for timing and vectorless power (its text is part of the flow's cache key).
pub const TIMING_SCRIPT: &str = include_str!("../scripts/sta_timing.tcl");
/// The Tcl script for power with simulated per-pin activity (part of the cache key).
pub const POWER_SIM_SCRIPT: &str = include_str!("../scripts/sta_power_sim.tcl");

/// The gate-level design OpenSTA reads.
#[derive(Clone, Copy, Debug)]
pub struct Design<'a> {
    /// Liberty library the netlist was mapped to.
    pub liberty: &'a Path,
    /// Structural Verilog netlist (Yosys `write_verilog -noattr`).
    pub netlist: &'a Path,
    /// Top module name.
    pub top: &'a str,
    /// Clock port name.
    pub clock_port: &'a str,
}

/// Worst setup path of a unit at a given clock period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// The clock period timing was checked at, ns.
    pub clock_period_ns: f64,
    /// Data arrival time of the worst path (clock-to-Q plus logic), ns: the critical path.
    pub critical_path_ns: f64,
    /// Setup time of the worst path's endpoint, ns.
    pub setup_ns: f64,
    /// Worst setup slack at `clock_period_ns`, ns (negative: the clock is not met).
    pub worst_slack_ns: f64,
    /// Shortest period the unit meets (`clock_period_ns - worst_slack_ns`), ns.
    pub min_period_ns: f64,
    /// Fastest clock met, MHz (`1000 / min_period_ns`).
    pub fmax_mhz: f64,
    /// Start pin of the worst path.
    pub startpoint: String,
    /// End pin of the worst path.
    pub endpoint: String,
}

impl Timing {
    /// Whether the unit meets `clock_period_ns`.
    pub fn meets_clock(&self) -> bool {
        self.worst_slack_ns >= 0.0
    }
}

/// Where switching activity came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivitySource {
    /// Per-pin toggle counts from simulating the gate-level netlist on a vector set.
    Simulated {
        /// sha256 of the vector set.
        vector_set_sha256: String,
        /// Clock cycles simulated.
        cycles: u64,
        /// Netlist pins that received a simulated activity.
        pins_annotated: u64,
    },
    /// OpenSTA's propagation from a fixed activity on every data input (labelled vectorless).
    Vectorless {
        /// Toggles per clock cycle on every data input.
        input_toggles_per_cycle: f64,
        /// Fraction of time every data input is high.
        input_duty: f64,
    },
}

impl ActivitySource {
    /// One-line label for tables and reports.
    pub fn label(&self) -> String {
        match self {
            ActivitySource::Simulated {
                vector_set_sha256,
                cycles,
                ..
            } => format!(
                "simulated: gate-level toggles over {cycles} cycles of vector set {}",
                &vector_set_sha256[..vector_set_sha256.len().min(12)]
            ),
            ActivitySource::Vectorless {
                input_toggles_per_cycle,
                input_duty,
            } => format!(
                "vectorless: inputs {input_toggles_per_cycle} toggles/cycle, duty {input_duty}, propagated by OpenSTA"
            ),
        }
    }
}

/// Power of a unit at a clock, and the energy of one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Power {
    /// Clock period, ns.
    pub clock_period_ns: f64,
    /// Internal (cell) power, W.
    pub internal_w: f64,
    /// Switching (net) power, W.
    pub switching_w: f64,
    /// Leakage power, W.
    pub leakage_w: f64,
    /// Total power, W.
    pub total_w: f64,
    /// Energy per operation: `total_w x period`, pJ.
    pub energy_per_op_pj: f64,
    /// Where the switching activity came from.
    pub activity: ActivitySource,
}

impl Power {
    fn new(watts: [f64; 4], clock_period_ns: f64, activity: ActivitySource) -> Power {
        let [internal_w, switching_w, leakage_w, total_w] = watts;
        Power {
            clock_period_ns,
            internal_w,
            switching_w,
            leakage_w,
            total_w,
            // W x ns = nJ; x 1000 = pJ.
            energy_per_op_pj: total_w * clock_period_ns * 1e3,
            activity,
        }
    }
}

/// Activity of one net (or pin), as OpenSTA takes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetActivity {
    /// Transitions (rises plus falls) per clock cycle.
    pub toggles_per_cycle: f64,
    /// Fraction of time the net is high.
    pub duty: f64,
}

/// Checks timing at `clock_period_ns` and computes vectorless power, `input` toggles per cycle
/// with duty `duty` on every data input. Writes the script and log into `workdir`.
///
/// # Errors
/// [`HwError::ToolFailed`] when `sta` reports an error or exits abnormally (quoting its output);
/// [`HwError::Parse`] when its output lacks or garbles an expected result line.
pub fn timing_and_vectorless(
    sta: &Tool,
    design: &Design<'_>,
    clock_period_ns: f64,
    input: f64,
    duty: f64,
    workdir: &Path,
) -> Result<(Timing, Power)> {
    let mut script = settings(design, clock_period_ns);
    writeln!(script, "set qb_in_activity {}", tcl_number(input)).ok();
    writeln!(script, "set qb_in_duty {}", tcl_number(duty)).ok();
    script.push_str(TIMING_SCRIPT);
    let out = run(sta, &script, workdir, "sta_timing")?;
    let log = workdir.join("sta_timing.log");
    let timing = parse_timing(&out, clock_period_ns, &log)?;
    let watts = parse_power(&out, &log)?;
    let source = ActivitySource::Vectorless {
        input_toggles_per_cycle: input,
        input_duty: duty,
    };
    Ok((timing, Power::new(watts, clock_period_ns, source)))
}

/// Computes power at `clock_period_ns` with per-net activity from gate-level simulation.
///
/// `activity` is keyed by net name (or `instance/PIN`) as OpenSTA names the netlist's objects;
/// every pin of a net gets the net's activity, except the clock net's (OpenSTA derives those from
/// the clock). A non-clock pin without an activity is an error: a silently default activity would
/// make the figure meaningless.
///
/// # Errors
/// As [`timing_and_vectorless`], and [`HwError::Parse`] naming the first pins that got no activity.
pub fn simulated_power(
    sta: &Tool,
    design: &Design<'_>,
    clock_period_ns: f64,
    activity: &BTreeMap<String, NetActivity>,
    vector_set_sha256: &str,
    cycles: u64,
    workdir: &Path,
) -> Result<Power> {
    let mut script = settings(design, clock_period_ns);
    script.push_str("array set qb_activity {\n");
    for (name, a) in activity {
        writeln!(
            script,
            "  {} {{{} {}}}",
            tcl_word(name)?,
            tcl_number(a.toggles_per_cycle),
            tcl_number(a.duty)
        )
        .ok();
    }
    script.push_str("}\n");
    script.push_str(POWER_SIM_SCRIPT);
    let out = run(sta, &script, workdir, "sta_power_sim")?;
    let log = workdir.join("sta_power_sim.log");
    let missing = fields(&out, "missing", &log)?;
    let n_missing: u64 = number(&missing, 0, "missing", &log)?;
    if n_missing > 0 {
        return Err(HwError::Parse {
            what: "simulated activity".into(),
            path: log,
            detail: format!(
                "{n_missing} netlist pins have no simulated activity (first: {}); the activity \
                 names must be the netlist's net names",
                missing[1..].join(" ")
            ),
        });
    }
    let annotated = fields(&out, "annotated", &log)?;
    let pins_annotated: u64 = number(&annotated, 2, "annotated", &log)?;
    let watts = parse_power(&out, &log)?;
    let source = ActivitySource::Simulated {
        vector_set_sha256: vector_set_sha256.to_string(),
        cycles,
        pins_annotated,
    };
    Ok(Power::new(watts, clock_period_ns, source))
}

/// The Tcl settings every script starts with.
fn settings(design: &Design<'_>, clock_period_ns: f64) -> String {
    let mut s = String::new();
    for (var, path) in [
        ("qb_liberty", design.liberty),
        ("qb_netlist", design.netlist),
    ] {
        writeln!(s, "set {var} {{{}}}", path.display()).ok();
    }
    writeln!(s, "set qb_top {{{}}}", design.top).ok();
    writeln!(s, "set qb_clock {{{}}}", design.clock_port).ok();
    writeln!(s, "set qb_period_ns {}", tcl_number(clock_period_ns)).ok();
    s
}

/// A finite number as Tcl reads it.
fn tcl_number(x: f64) -> String {
    format!("{x:e}")
}

/// A name as one Tcl list word (braced); names with braces or backslashes are refused.
fn tcl_word(name: &str) -> Result<String> {
    if name.is_empty() || name.contains(['{', '}', '\\', '\n']) {
        return Err(HwError::Parse {
            what: "activity net name".into(),
            path: PathBuf::new(),
            detail: format!("`{name}` cannot be passed to OpenSTA"),
        });
    }
    Ok(format!("{{{name}}}"))
}

/// Runs `sta` on `script` (saved as `<stem>.tcl` in `workdir`, output in `<stem>.log`) and returns
/// its output; any `Error:` line is a failure quoting the tool's text.
fn run(sta: &Tool, script: &str, workdir: &Path, stem: &str) -> Result<String> {
    std::fs::create_dir_all(workdir).map_err(|e| IoError::new("create the folder", workdir, e))?;
    let tcl = workdir.join(format!("{stem}.tcl"));
    std::fs::write(&tcl, script).map_err(|e| IoError::new("write", &tcl, e))?;
    let out = sta
        .command()
        .args(["-no_init", "-no_splash", "-exit"])
        .arg(&tcl)
        .current_dir(workdir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| IoError::new("run", &sta.path, e))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let log = workdir.join(format!("{stem}.log"));
    std::fs::write(&log, &text).map_err(|e| IoError::new("write", &log, e))?;
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("Error"))
        .collect();
    if !out.status.success() || !errors.is_empty() {
        let quoted = if errors.is_empty() {
            tail(&text, 15)
        } else {
            errors.join("\n")
        };
        return Err(HwError::ToolFailed {
            tool: "sta".into(),
            detail: format!(
                "{} ({}; log {}):\n{quoted}",
                tcl.display(),
                out.status,
                log.display()
            ),
        });
    }
    Ok(text)
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The fields after `QBENCH <key>` on the first such line.
fn fields<'t>(out: &'t str, key: &str, log: &Path) -> Result<Vec<&'t str>> {
    out.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("QBENCH") && w.next() == Some(key)).then(|| w.collect())
        })
        .ok_or_else(|| HwError::Parse {
            what: format!("OpenSTA result `{key}`"),
            path: log.to_path_buf(),
            detail: format!("no `QBENCH {key}` line in the output:\n{}", tail(out, 15)),
        })
}

/// Field `i` of a result line as a number (floats must be finite).
fn number<T: std::str::FromStr + Finite>(f: &[&str], i: usize, key: &str, log: &Path) -> Result<T> {
    f.get(i)
        .and_then(|s| s.parse::<T>().ok())
        .filter(Finite::is_finite)
        .ok_or_else(|| HwError::Parse {
            what: format!("OpenSTA result `{key}`"),
            path: log.to_path_buf(),
            detail: format!(
                "field {i} of `QBENCH {key} {}` is not a finite number",
                f.join(" ")
            ),
        })
}

/// Numbers a result line may hold.
trait Finite {
    fn is_finite(&self) -> bool;
}
impl Finite for f64 {
    fn is_finite(&self) -> bool {
        f64::is_finite(*self)
    }
}
impl Finite for u64 {
    fn is_finite(&self) -> bool {
        true
    }
}

/// `QBENCH timing arrival required slack setup` (seconds) plus start and end points.
fn parse_timing(out: &str, clock_period_ns: f64, log: &Path) -> Result<Timing> {
    if out.lines().any(|l| l.trim() == "QBENCH no_paths") {
        return Err(HwError::Parse {
            what: "OpenSTA timing".into(),
            path: log.to_path_buf(),
            detail: "no constrained path: is the clock port right and are the I/O registered?"
                .into(),
        });
    }
    let f = fields(out, "timing", log)?;
    let ns = |i| number::<f64>(&f, i, "timing", log).map(|s| s * 1e9);
    let (arrival, slack, setup) = (ns(0)?, ns(2)?, ns(3)?);
    let min_period_ns = clock_period_ns - slack;
    if min_period_ns <= 0.0 {
        return Err(HwError::Parse {
            what: "OpenSTA timing".into(),
            path: log.to_path_buf(),
            detail: format!("slack {slack} ns exceeds the period {clock_period_ns} ns"),
        });
    }
    let point = |key| fields(out, key, log).map(|f| f.join(" "));
    Ok(Timing {
        clock_period_ns,
        critical_path_ns: arrival,
        setup_ns: setup,
        worst_slack_ns: slack,
        min_period_ns,
        fmax_mhz: 1e3 / min_period_ns,
        startpoint: point("startpoint")?,
        endpoint: point("endpoint")?,
    })
}

/// `QBENCH power internal switching leakage total` (watts).
fn parse_power(out: &str, log: &Path) -> Result<[f64; 4]> {
    let f = fields(out, "power", log)?;
    let mut w = [0.0; 4];
    for (i, slot) in w.iter_mut().enumerate() {
        *slot = number(&f, i, "power", log)?;
    }
    if w.iter().any(|&x| x < 0.0) || w[3] <= 0.0 {
        return Err(HwError::Parse {
            what: "OpenSTA power".into(),
            path: log.to_path_buf(),
            detail: format!("implausible power `{}` (W)", f.join(" ")),
        });
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING_OUT: &str = "Warning: something\n\
        QBENCH timing 1.2348135847162212e-9 9.816474744184234e-9 8.581661603557222e-9 1.8352502850760288e-10\n\
        QBENCH startpoint _076_/Q\nQBENCH endpoint _099_/D\n\
        QBENCH power 0.0010077639017254114 0.00015576220175717026 7.060905637956694e-9 0.0011635331902652979\n";

    #[test]
    fn timing_is_converted_to_ns_and_fmax() {
        let t = parse_timing(TIMING_OUT, 10.0, Path::new("t.log")).unwrap();
        assert!((t.critical_path_ns - 1.2348).abs() < 1e-4);
        assert!((t.min_period_ns - (10.0 - 8.58166)).abs() < 1e-4);
        assert!((t.fmax_mhz - 1e3 / t.min_period_ns).abs() < 1e-9);
        assert_eq!(t.endpoint, "_099_/D");
        assert!(t.meets_clock());
    }

    #[test]
    fn power_gives_energy_per_period() {
        let w = parse_power(TIMING_OUT, Path::new("t.log")).unwrap();
        let p = Power::new(
            w,
            10.0,
            ActivitySource::Vectorless {
                input_toggles_per_cycle: 0.5,
                input_duty: 0.5,
            },
        );
        // 1.16 mW x 10 ns = 11.6 pJ.
        assert!(
            (p.energy_per_op_pj - 11.635).abs() < 1e-2,
            "{}",
            p.energy_per_op_pj
        );
    }

    #[test]
    fn garbled_or_missing_lines_are_errors_quoting_the_output() {
        let err = parse_power("QBENCH power 1e-3 nan 0 1e-3\n", Path::new("t.log")).unwrap_err();
        assert!(err.to_string().contains("not a finite number"), "{err}");
        let err = parse_timing("Warning: no clocks\n", 10.0, Path::new("t.log")).unwrap_err();
        assert!(err.to_string().contains("Warning: no clocks"), "{err}");
        let err = parse_timing("QBENCH no_paths\n", 10.0, Path::new("t.log")).unwrap_err();
        assert!(err.to_string().contains("no constrained path"), "{err}");
    }

    #[test]
    fn names_that_tcl_cannot_carry_are_refused() {
        assert_eq!(tcl_word("a[0]").unwrap(), "{a[0]}");
        assert!(tcl_word("a}b").is_err());
    }
}
