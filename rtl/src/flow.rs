//! The hardware flow: every unit through synthesis, co-simulation (RTL and netlist), gate-level
//! switching activity and OpenSTA, cached per unit by the hash of everything that determines its
//! figures.
//!
//! [`run`] is the entry point (the `qbench hw` command and the experiment runner call it). A unit's
//! cache entry is `<cache_dir>/<unit>/<key>/result.json`, next to the artefacts that produced it
//! (netlist, scripts, logs); `key` is the sha256 of the unit's Verilog, top and parameters, the
//! Liberty file's sha256, the tool versions, the clock, the vectorless setting, the vector set's
//! sha256 and [`flow_version`] (the build-time hash of the flow's sources: Verilog, scripts, this
//! crate and the engine). A rerun with nothing changed reads the rows back without running any flow
//! step (only the tools' version flags, for the key). Entries are built in a temporary directory
//! and renamed into place, so a reader never sees half an entry.
//!
//! A unit's row measures its switching activity on seeded random operands (labelled so).
//! [`stream_energies`] measures a unit's energy per operation on a given operand stream (a graph's
//! own, see [`crate::activity`]): the cached netlist simulated on that stream (its outputs checked
//! against the engine) and OpenSTA's power, cached per (unit, stream) beside the unit's entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use qbench_io::{IoError, sha256_file, sha256_hex, write_atomic};
use serde::Serialize;

use crate::error::{HwError, Result};
use crate::sim;
use crate::sta::{self, Design, NetActivity};
use crate::synth;
use crate::table::{CosimSummary, HwTable, OpenRoad, Provenance, UnitResult};
use crate::tools::{self, Tool};
use crate::units::{Unit, UnitKind};
use crate::vectors::VectorSet;
use crate::workdir::WorkDir;

/// Default clock of the power figures: 25 MHz (40 ns), met by every unit in OSU 0.18 um (the
/// 32-bit fixed-point requantizer's critical path is about 26 ns).
pub const DEFAULT_CLOCK_MHZ: f64 = 25.0;

/// Default vectorless input activity: a uniformly random bit toggles half the cycles.
pub const DEFAULT_VECTORLESS_TOGGLES: f64 = 0.5;

/// The binaries the flow runs (OpenROAD is optional and not listed).
pub const REQUIRED_TOOLS: &[&str] = &["yosys", "iverilog", "vvp", "sta"];

/// Settings of a flow run.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Liberty library to synthesize to and time with.
    pub liberty: PathBuf,
    /// Clock of the power figures, MHz.
    pub clock_mhz: f64,
    /// Vectorless activity: toggles per cycle on every data input.
    pub vectorless_toggles: f64,
    /// Vectorless activity: duty of every data input.
    pub vectorless_duty: f64,
    /// Vectors every unit is co-simulated on (edge cases, random, real streams).
    pub vectors: VectorSet,
    /// Seeded random operations: the switching activity of the unit rows.
    pub random_vectors: VectorSet,
    /// One line saying what the vectors are (provenance).
    pub vector_description: String,
    /// Where per-unit results are cached.
    pub cache_dir: PathBuf,
    /// Units built at once (each runs one tool process at a time).
    pub jobs: usize,
}

impl FlowConfig {
    /// Defaults: the OSU 0.18 um library, [`DEFAULT_CLOCK_MHZ`], vectorless inputs at 0.5 toggles
    /// per cycle with duty 0.5, edge cases plus `random` seeded random operations of each kind
    /// (seed 1), two jobs.
    pub fn new(cache_dir: impl Into<PathBuf>, random: usize) -> FlowConfig {
        let mut vectors = VectorSet::edge_cases();
        let random_vectors = VectorSet::random(1, random);
        vectors.extend(random_vectors.clone());
        FlowConfig {
            liberty: tools::default_liberty(),
            clock_mhz: DEFAULT_CLOCK_MHZ,
            vectorless_toggles: DEFAULT_VECTORLESS_TOGGLES,
            vectorless_duty: 0.5,
            vectors,
            random_vectors,
            vector_description: format!(
                "edge cases + {random} random operations per kind (seed 1)"
            ),
            cache_dir: cache_dir.into(),
            jobs: 2,
        }
    }

    /// Clock period, ns.
    pub fn clock_period_ns(&self) -> f64 {
        1e3 / self.clock_mhz
    }

    fn check(&self) -> Result<()> {
        let bad = |field: &str, detail: String| {
            Err(HwError::Config {
                field: field.into(),
                detail,
            })
        };
        if !(self.clock_mhz.is_finite() && self.clock_mhz > 0.0 && self.clock_mhz <= 1e4) {
            return bad(
                "clock_mhz",
                format!("{} is not in (0, 10000] MHz", self.clock_mhz),
            );
        }
        if !(0.0..=2.0).contains(&self.vectorless_toggles) {
            return bad(
                "vectorless_toggles",
                format!("{} is not in [0, 2]", self.vectorless_toggles),
            );
        }
        if !(0.0..=1.0).contains(&self.vectorless_duty) {
            return bad(
                "vectorless_duty",
                format!("{} is not in [0, 1]", self.vectorless_duty),
            );
        }
        if self.jobs == 0 {
            return bad("jobs", "must be at least 1".into());
        }
        Ok(())
    }
}

/// A flow step, reported through the progress callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read from the cache: no tool runs.
    Cached,
    /// Yosys synthesis.
    Synthesis,
    /// Icarus simulation of the RTL against the engine.
    CosimRtl,
    /// Icarus simulation of the gate-level netlist against the engine.
    CosimNetlist,
    /// Gate-level simulation for switching activity.
    Activity,
    /// OpenSTA timing and power.
    Sta,
    /// OpenROAD place and route (only with `openroad` on PATH).
    OpenRoad,
    /// The unit is done.
    Done,
}

impl Step {
    /// Short label for progress displays.
    pub fn label(self) -> &'static str {
        match self {
            Step::Cached => "cached",
            Step::Synthesis => "synthesis (yosys)",
            Step::CosimRtl => "RTL co-simulation",
            Step::CosimNetlist => "netlist co-simulation",
            Step::Activity => "switching activity",
            Step::Sta => "timing and power (sta)",
            Step::OpenRoad => "place and route (openroad)",
            Step::Done => "done",
        }
    }
}

/// One progress event: `unit` reached `step`.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The unit.
    pub unit: &'a str,
    /// What it is doing now.
    pub step: Step,
}

/// The tools a run uses, found once.
struct Toolset {
    tools: BTreeMap<String, Tool>,
    openroad: Option<Tool>,
}

impl Toolset {
    /// Finds every required tool and the library; all missing ones are reported together with their
    /// Debian packages.
    fn find(liberty: &Path) -> Result<Toolset> {
        let mut tools = BTreeMap::new();
        let mut missing: Vec<(String, String)> = Vec::new();
        match tools::require_file(liberty) {
            // The default library comes from a Debian package: name it with the tools.
            Err(HwError::MissingLibrary { path, package }) => {
                missing.push((path.display().to_string(), package));
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        for name in REQUIRED_TOOLS {
            match tools::require(name) {
                Ok(t) => {
                    tools.insert(name.to_string(), t);
                }
                Err(HwError::MissingTool { tool, package }) => missing.push((tool, package)),
                Err(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            let mut packages: Vec<&str> = missing.iter().map(|(_, p)| p.as_str()).collect();
            packages.sort_unstable();
            packages.dedup();
            return Err(HwError::MissingTools {
                tools: missing
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                packages: packages.join(" "),
            });
        }
        let openroad = tools::find("openroad")
            .is_some()
            .then(|| tools::require("openroad"))
            .transpose()?;
        Ok(Toolset { tools, openroad })
    }

    fn versions(&self) -> BTreeMap<String, String> {
        self.tools
            .iter()
            .map(|(k, t)| (k.clone(), t.version.clone()))
            .collect()
    }

    fn get(&self, name: &str) -> &Tool {
        &self.tools[name]
    }
}

/// Hash of the flow's own sources, computed at build time (`rtl/build.rs`): the units' Verilog,
/// the EDA scripts, this crate and the engine. Part of every cache key, so no edit to any of them
/// can serve a stale cached figure.
pub fn flow_version() -> String {
    env!("QBENCH_HW_SOURCE").to_string()
}

/// The OpenROAD script (run only where `openroad` is on PATH).
pub const OPENROAD_SCRIPT: &str = include_str!("../scripts/openroad_flow.tcl");

/// Everything a unit's cache key covers.
#[derive(Serialize)]
struct KeyInputs<'a> {
    hw_source: &'a str,
    unit: &'a str,
    unit_sha256: String,
    synth_script: String,
    library_sha256: &'a str,
    tools: &'a BTreeMap<String, String>,
    clock_mhz: f64,
    vectorless: (f64, f64),
    vectors_sha256: &'a str,
    openroad: Option<&'a str>,
}

/// The cache key of `unit`'s row: sha256 of the flow's source hash `hw_source` (pass
/// [`flow_version`]), the unit's Verilog, top and parameters, its Yosys script, the library's
/// sha256, the tool versions, the clock, the vectorless setting and the vector set of `config`.
pub fn unit_cache_key(
    unit: &Unit,
    config: &FlowConfig,
    library_sha256: &str,
    tools: &BTreeMap<String, String>,
    openroad: Option<&str>,
    hw_source: &str,
) -> String {
    let placeholder = Path::new("_");
    let vectors_sha256 = config.vectors.sha256();
    let inputs = KeyInputs {
        hw_source,
        unit: &unit.name,
        unit_sha256: unit.sha256(),
        synth_script: synth::script(unit, placeholder, placeholder, placeholder),
        library_sha256,
        tools,
        clock_mhz: config.clock_mhz,
        vectorless: (config.vectorless_toggles, config.vectorless_duty),
        vectors_sha256: &vectors_sha256,
        openroad,
    };
    let json = serde_json::to_vec(&inputs).unwrap_or_default();
    sha256_hex(&json)
}

/// What every unit of a run shares.
struct RunContext<'a> {
    config: &'a FlowConfig,
    tools: Toolset,
    versions: BTreeMap<String, String>,
    library: String,
    library_sha256: String,
    vectors_sha256: String,
}

impl RunContext<'_> {
    fn key(&self, unit: &Unit) -> String {
        unit_cache_key(
            unit,
            self.config,
            &self.library_sha256,
            &self.versions,
            self.tools.openroad.as_ref().map(|t| t.version.as_str()),
            env!("QBENCH_HW_SOURCE"),
        )
    }

    fn provenance(&self, key: &str, activity_sha256: &str, activity_label: &str) -> Provenance {
        Provenance {
            library: self.library.clone(),
            library_sha256: self.library_sha256.clone(),
            tools: self.versions.clone(),
            clock_mhz: self.config.clock_mhz,
            vector_set_sha256: activity_sha256.to_string(),
            vector_set: format!(
                "co-simulation on {} (sha256 {}); activity from the {activity_label}",
                self.config.vector_description,
                &self.vectors_sha256[..12]
            ),
            flow_version: flow_version(),
            cache_key: key.to_string(),
        }
    }
}

/// Runs the flow for `units` (see [`crate::units::catalog`]) and returns their rows in the given
/// order, reading unchanged units from the cache. `progress` is called from worker threads.
///
/// # Errors
/// [`HwError::MissingTools`] naming every missing Debian package; [`HwError::MissingLibrary`];
/// [`HwError::Config`] for out-of-range settings; the first unit's failure otherwise (a
/// co-simulation divergence, a tool failure quoting its output).
pub fn run(
    config: &FlowConfig,
    units: &[Unit],
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<HwTable> {
    config.check()?;
    let tools = Toolset::find(&config.liberty)?;
    let ctx = RunContext {
        config,
        versions: tools.versions(),
        tools,
        library: config
            .liberty
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        library_sha256: sha256_file(&config.liberty)?,
        vectors_sha256: config.vectors.sha256(),
    };
    // Longest first (the fixed-point multipliers take minutes to synthesize), for better packing.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| !matches!(units[i].kind, UnitKind::FixedPoint { .. }));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<UnitResult>>>> =
        Mutex::new((0..units.len()).map(|_| None).collect());
    let workers = config.jobs.min(units.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = order.get(n) else { break };
                    let r = unit_result(&ctx, &units[i], progress);
                    let failed = r.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(r);
                    }
                    if failed {
                        // Stop handing out work: the run fails with this unit's error.
                        next.store(order.len(), Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let mut slots = results.into_inner().unwrap_or_default();
    // The failure that stopped the run, not the units it left unstarted.
    if let Some(i) = slots.iter().position(|s| matches!(s, Some(Err(_))))
        && let Some(Err(e)) = slots.swap_remove(i)
    {
        return Err(e);
    }
    let mut rows = Vec::with_capacity(units.len());
    for (i, slot) in slots.into_iter().enumerate() {
        match slot {
            Some(Ok(row)) => rows.push(row),
            _ => {
                return Err(HwError::Unit {
                    unit: units[i].name.clone(),
                    detail: "not run".into(),
                });
            }
        }
    }
    Ok(HwTable { rows })
}

/// The cached row of `unit`, or a fresh measurement stored atomically in the cache.
fn unit_result(
    ctx: &RunContext<'_>,
    unit: &Unit,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<UnitResult> {
    let key = ctx.key(unit);
    let unit_dir = ctx.config.cache_dir.join(&unit.name);
    let entry = unit_dir.join(&key);
    let result_path = entry.join("result.json");
    if let Ok(text) = std::fs::read_to_string(&result_path) {
        // An unreadable entry (older format, damaged) is simply rebuilt.
        if let Ok(mut row) = serde_json::from_str::<UnitResult>(&text) {
            row.from_cache = true;
            progress(Event {
                unit: &unit.name,
                step: Step::Cached,
            });
            progress(Event {
                unit: &unit.name,
                step: Step::Done,
            });
            return Ok(row);
        }
    }
    let tmp = WorkDir::create(&unit_dir)?;
    let row = match measure(ctx, unit, &key, tmp.path(), progress) {
        Ok(row) => row,
        Err(e) => {
            // Keep the scripts and logs of a failed unit for inspection.
            let kept = tmp.keep();
            return Err(HwError::Unit {
                unit: unit.name.clone(),
                detail: format!("{e} (work files kept in {})", kept.display()),
            });
        }
    };
    let mut json = serde_json::to_string_pretty(&row).map_err(|e| HwError::Parse {
        what: "result row".into(),
        path: result_path.clone(),
        detail: e.to_string(),
    })?;
    json.push('\n');
    let tmp_result = tmp.path().join("result.json");
    std::fs::write(&tmp_result, json).map_err(|e| IoError::new("write", &tmp_result, e))?;
    let built = tmp.keep();
    if std::fs::rename(&built, &entry).is_err() {
        // Another run stored the same entry first (same key, same figures): keep theirs.
        let _ = std::fs::remove_dir_all(&built);
    }
    progress(Event {
        unit: &unit.name,
        step: Step::Done,
    });
    Ok(row)
}

/// Runs every step for `unit` in `workdir`.
fn measure(
    ctx: &RunContext<'_>,
    unit: &Unit,
    key: &str,
    workdir: &Path,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<UnitResult> {
    let step = |s| {
        progress(Event {
            unit: &unit.name,
            step: s,
        })
    };
    let config = ctx.config;
    step(Step::Synthesis);
    let netlist = synth::synthesize(unit, &config.liberty, workdir)?;
    let (activity_set, activity_label) = (&config.random_vectors, "random operands");
    let activity_sha256 = activity_set.sha256();
    let (cosim, activity) = simulate(unit, &netlist, config, activity_set, workdir, &step)?;
    let nets = net_activity(&activity);
    step(Step::Sta);
    let design = design(config, &netlist);
    let period = config.clock_period_ns();
    let sta_tool = ctx.tools.get("sta");
    let (timing, vectorless) = sta::timing_and_vectorless(
        sta_tool,
        &design,
        period,
        config.vectorless_toggles,
        config.vectorless_duty,
        workdir,
    )?;
    let simulated = sta::simulated_power(
        sta_tool,
        &design,
        period,
        &nets,
        &activity_sha256,
        activity.cycles,
        workdir,
    )?;
    let openroad = match &ctx.tools.openroad {
        None => OpenRoad::NotRun {
            reason: "openroad not installed".into(),
        },
        Some(tool) => {
            step(Step::OpenRoad);
            run_openroad(tool, &design, period, workdir)
        }
    };
    Ok(UnitResult {
        unit: unit.name.clone(),
        role: unit.role,
        params: unit.params.clone(),
        cells: netlist.cell_count,
        area_um2: netlist.area_um2,
        cell_counts: netlist.cells.clone(),
        timing,
        simulated,
        vectorless,
        cosim,
        openroad,
        provenance: ctx.provenance(key, &activity_sha256, activity_label),
        from_cache: false,
    })
}

/// Co-simulation of the RTL and the netlist against the engine (a divergence is an error quoting
/// it), then the netlist's switching activity on `activity` vectors.
fn simulate(
    unit: &Unit,
    netlist: &synth::Netlist,
    config: &FlowConfig,
    activity: &VectorSet,
    workdir: &Path,
    step: &dyn Fn(Step),
) -> Result<(CosimSummary, sim::Activity)> {
    let mut executed = [0u64; 2];
    for (i, (level, net)) in [(Step::CosimRtl, None), (Step::CosimNetlist, Some(netlist))]
        .into_iter()
        .enumerate()
    {
        step(level);
        let report = sim::cosim(unit, net, &config.vectors, workdir)?;
        if !report.passed() {
            return Err(HwError::Unit {
                unit: unit.name.clone(),
                detail: format!("co-simulation failed: {report}"),
            });
        }
        executed[i] = report.vectors.values().map(|&n| n as u64).sum();
    }
    step(Step::Activity);
    let act = sim::gate_activity(unit, netlist, activity, workdir)?;
    Ok((
        CosimSummary {
            rtl_vectors: executed[0],
            netlist_vectors: executed[1],
        },
        act,
    ))
}

/// Runs the OpenROAD script; its failure is reported in the row, never as a number.
fn run_openroad(tool: &Tool, design: &Design<'_>, period_ns: f64, workdir: &Path) -> OpenRoad {
    let lef = design.liberty.with_extension("lef");
    let mut script = String::new();
    for (var, value) in [
        ("qb_lef", lef.display().to_string()),
        ("qb_liberty", design.liberty.display().to_string()),
        ("qb_netlist", design.netlist.display().to_string()),
        ("qb_top", design.top.to_string()),
        ("qb_clock", design.clock_port.to_string()),
        ("qb_period_ns", format!("{period_ns}")),
        ("qb_site", "core".to_string()),
        ("qb_utilization", "50".to_string()),
    ] {
        script.push_str(&format!("set {var} {{{value}}}\n"));
    }
    script.push_str(OPENROAD_SCRIPT);
    script.push_str("exit\n");
    let not_run = |reason: String| OpenRoad::NotRun { reason };
    if !lef.is_file() {
        return not_run(format!("no LEF beside the library ({})", lef.display()));
    }
    let tcl = workdir.join("openroad_flow.tcl");
    if let Err(e) = std::fs::write(&tcl, &script) {
        return not_run(format!("writing {}: {e}", tcl.display()));
    }
    let out = match tool
        .command()
        .args(["-no_init", "-exit"])
        .arg(&tcl)
        .current_dir(workdir)
        .output()
    {
        Ok(o) => o,
        Err(e) => return not_run(format!("openroad did not start: {e}")),
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::write(workdir.join("openroad_flow.log"), &text);
    let field = |key: &str, i: usize| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("QBENCH {key} ")))
            .and_then(|rest| rest.split_whitespace().nth(i))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    match (out.status.success(), field("area", 0), field("power", 3)) {
        (true, Some(area_um2), Some(power_w)) => OpenRoad::Ran {
            version: tool.version.clone(),
            area_um2,
            power_w,
        },
        _ => not_run(format!(
            "openroad failed ({}; log openroad_flow.log in the unit's cache entry)",
            out.status
        )),
    }
}

/// One unit's energy per operation measured on one operand stream.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StreamEnergy {
    /// The unit.
    pub unit: String,
    /// sha256 of the operand stream ([`VectorSet::sha256`]).
    pub stream_sha256: String,
    /// Unit operations (clock cycles) simulated, every one checked against the engine.
    pub ops: u64,
    /// Power with the stream's simulated activity, and the energy per operation.
    pub simulated: sta::Power,
    /// Cache key of the unit row whose netlist was simulated.
    pub unit_cache_key: String,
}

/// One (unit, operand stream) measurement to make.
#[derive(Clone, Debug)]
pub struct StreamJob {
    /// The unit (its row must be in the table given to [`stream_energies`]).
    pub unit: Unit,
    /// The operations that reach it.
    pub stream: VectorSet,
}

/// Measures every job's energy per operation: the unit's synthesized netlist (from its row's cache
/// entry) simulated on the job's stream, every output checked against the engine, the per-net
/// activity given to OpenSTA. Results are cached as `<entry>/streams/<stream sha256>.json`, so a
/// rerun, or another cell with the same stream, simulates nothing. Jobs run on `config.jobs`
/// threads; `done` is called after each.
///
/// # Errors
/// [`HwError::Unit`] when a job's unit is not in `table`, its stream holds no operation the unit
/// executes, or the netlist diverges from the engine; missing tools; tool failures.
pub fn stream_energies(
    config: &FlowConfig,
    table: &HwTable,
    jobs: &[StreamJob],
    done: &(dyn Fn() + Sync),
) -> Result<Vec<StreamEnergy>> {
    config.check()?;
    let tools = Toolset::find(&config.liberty)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<StreamEnergy>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..config.jobs.min(jobs.len()).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    let r = stream_energy(config, &tools, table, job);
                    let failed = r.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(r);
                    }
                    done();
                    if failed {
                        next.store(jobs.len(), Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let slots = results.into_inner().unwrap_or_default();
    let mut out = Vec::with_capacity(jobs.len());
    let mut unstarted = None;
    for (slot, job) in slots.into_iter().zip(jobs) {
        match slot {
            Some(Ok(e)) => out.push(e),
            Some(Err(e)) => return Err(e),
            None => unstarted = unstarted.or(Some(job.unit.name.clone())),
        }
    }
    match unstarted {
        Some(unit) => Err(HwError::Unit {
            unit,
            detail: "not run".into(),
        }),
        None => Ok(out),
    }
}

/// One job, from the cache or measured and stored atomically.
fn stream_energy(
    config: &FlowConfig,
    tools: &Toolset,
    table: &HwTable,
    job: &StreamJob,
) -> Result<StreamEnergy> {
    let unit = &job.unit;
    let row = table.row(&unit.name)?;
    let entry = config
        .cache_dir
        .join(&unit.name)
        .join(&row.provenance.cache_key);
    // The simulator runs in a work folder: every path it is given must be absolute.
    let entry = std::path::absolute(&entry).map_err(|e| IoError::new("resolve", &entry, e))?;
    let stream_sha256 = job.stream.sha256();
    let streams = entry.join("streams");
    let cached = streams.join(format!("{stream_sha256}.json"));
    if let Ok(text) = std::fs::read_to_string(&cached)
        && let Ok(e) = serde_json::from_str::<StreamEnergy>(&text)
    {
        return Ok(e);
    }
    let netlist = synth::load(unit, &entry)?;
    let work = WorkDir::create(&streams)?;
    let measured = measure_stream(config, tools, unit, &netlist, &job.stream, work.path());
    let (activity, simulated) = match measured {
        Ok(m) => m,
        Err(e) => {
            // Keep the stimulus, testbench and logs of a failed measurement for inspection.
            let kept = work.keep();
            return Err(HwError::Unit {
                unit: unit.name.clone(),
                detail: format!("{e} (work files kept in {})", kept.display()),
            });
        }
    };
    let result = StreamEnergy {
        unit: unit.name.clone(),
        stream_sha256,
        // The testbench runs one settling clock beyond the stream's operations.
        ops: activity.cycles.saturating_sub(1),
        simulated,
        unit_cache_key: row.provenance.cache_key.clone(),
    };
    let json = serde_json::to_string_pretty(&result).map_err(|e| HwError::Parse {
        what: "stream energy".into(),
        path: cached.clone(),
        detail: e.to_string(),
    })?;
    write_atomic(&cached, json)?;
    Ok(result)
}

/// The netlist's activity on `stream` (outputs checked against the engine) and OpenSTA's power
/// with it.
fn measure_stream(
    config: &FlowConfig,
    tools: &Toolset,
    unit: &Unit,
    netlist: &synth::Netlist,
    stream: &VectorSet,
    workdir: &Path,
) -> Result<(sim::Activity, sta::Power)> {
    let activity = sim::gate_activity(unit, netlist, stream, workdir)?;
    let nets = net_activity(&activity);
    let design = design(config, netlist);
    let simulated = sta::simulated_power(
        tools.get("sta"),
        &design,
        config.clock_period_ns(),
        &nets,
        &stream.sha256(),
        activity.cycles,
        workdir,
    )?;
    Ok((activity, simulated))
}

/// Per-net activity of a simulation in the form OpenSTA is given.
fn net_activity(activity: &sim::Activity) -> BTreeMap<String, NetActivity> {
    activity
        .pins
        .iter()
        .map(|(name, p)| {
            let a = NetActivity {
                toggles_per_cycle: p.toggles_per_cycle,
                duty: p.duty,
            };
            (name.clone(), a)
        })
        .collect()
}

/// The design OpenSTA times and measures: `netlist` on the configured library, clocked by `clk`.
fn design<'a>(config: &'a FlowConfig, netlist: &'a synth::Netlist) -> Design<'a> {
    Design {
        liberty: &config.liberty,
        netlist: &netlist.path,
        top: &netlist.top,
        clock_port: "clk",
    }
}
