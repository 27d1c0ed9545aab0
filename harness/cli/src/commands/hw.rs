//! `qbench hw`: the hardware cost flow. Every method's quantization unit and processing element is
//! synthesized (Yosys), co-simulated against the engine (Icarus, RTL and gate level), timed and
//! measured for power (OpenSTA), and written as a table under `results/hw/`; with `--graph`, also
//! the energy per inference of that graph.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use qbench_datasets::{DEFAULT_DATASET, Split};
use qbench_engine::QGraph;
use qbench_hw::activity::{self, GraphRef};
use qbench_hw::flow::{self, Event, FlowConfig, Step};
use qbench_hw::memory::MemoryModel;
use qbench_hw::{energy, units};

use crate::experiment::hardware::activity_sample;
use crate::{progress, results};

/// Options of `qbench hw`.
#[derive(Args)]
#[command(long_about = "\
Runs the hardware cost flow and writes results/hw/table.{csv,md,json}.

For every unit (or those of --units): Yosys synthesis to the Liberty library (cells, area);
Icarus co-simulation of the RTL and of the gate-level netlist against the engine's own arithmetic
(edge cases and seeded random vectors); gate-level switching activity on the random operands;
OpenSTA critical path, fastest clock met, and power at --clock-mhz, with that simulated activity
(labelled as random operands) and, labelled as such, vectorless. Energy per operation = power x
clock period.

Results are cached per unit under results/hw/cache by the hash of the unit's Verilog, the library,
the tool versions, the clock, the vectors and the flow's own sources: a rerun with nothing changed
takes seconds.

With --graph FILE.qgraph the engine runs that graph on --images seeded test images, and every unit
the graph uses is simulated again on the operations that really reach it (the netlist's outputs
checked against the engine on each): the energy per inference of the graph uses only these
activities, plus memory access energy (the default memory model, see qbench_hw::memory), and is
written beside the table (results/hw/energy-<name>.{md,json}).

Needs the Debian packages yosys, opensta, iverilog and qflow-tech-osu018 (the default library).
Units: shift_var shift_const fixed_point tnt_requant threshold multi_threshold_k2
multi_threshold_k4 mac_int8 mac_int4 mac_int2 xnor_popcount64 ternary_acc (see --list).")]
pub struct HwArgs {
    /// Only these units, comma separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub units: Vec<String>,
    /// Liberty library [default: OSU 0.18 um from qflow-tech-osu018].
    #[arg(long)]
    pub liberty: Option<PathBuf>,
    /// Clock of the power and energy figures, MHz (every unit meets 25 MHz in OSU 0.18 um).
    #[arg(long, default_value_t = flow::DEFAULT_CLOCK_MHZ)]
    pub clock_mhz: f64,
    /// Integer graph whose energy per inference is reported, every unit simulated on that graph's
    /// own operand streams (e.g. results/methods/<method>-<hash>/graph.qgraph).
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Dataset whose test images run through --graph.
    #[arg(long, default_value = DEFAULT_DATASET)]
    pub dataset: String,
    /// Test images run through --graph to capture operand streams (seeded choice, as in a run).
    #[arg(long, default_value_t = crate::experiment::hardware::ACTIVITY_IMAGES)]
    pub images: usize,
    /// Unit operations simulated per unit from --graph's streams.
    #[arg(long, default_value_t = crate::experiment::hardware::ACTIVITY_OPS)]
    pub stream_ops: usize,
    /// Seeded random operations per kind in the vector set.
    #[arg(long, default_value_t = 256)]
    pub random: usize,
    /// Units built at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Print the table (and energy report) as JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// List the units and exit.
    #[arg(long)]
    pub list: bool,
}

/// Runs the flow and writes and prints the table.
pub fn run(args: HwArgs) -> Result<()> {
    let catalog = units::catalog();
    if args.list {
        for u in &catalog {
            println!("{:<20} {}", u.name, u.description);
        }
        return Ok(());
    }
    let selected = if args.units.is_empty() {
        catalog.clone()
    } else {
        args.units
            .iter()
            .map(|name| {
                catalog
                    .iter()
                    .find(|u| &u.name == name)
                    .cloned()
                    .with_context(|| format!("--units: no unit `{name}` (see `qbench hw --list`)"))
            })
            .collect::<Result<Vec<_>>>()?
    };
    let out_dir = results::root(args.results.as_deref()).join("hw");
    let mut config = FlowConfig::new(out_dir.join("cache"), args.random);
    config.clock_mhz = args.clock_mhz;
    config.jobs = args.jobs;
    if let Some(lib) = &args.liberty {
        config.liberty = lib.clone();
    }
    let graph = match &args.graph {
        None => None,
        Some(path) => {
            let (graph, sha) =
                QGraph::load(path).with_context(|| format!("loading {}", path.display()))?;
            let set = qbench_datasets::load(args.dataset.as_str(), Split::Test)?;
            if set.image_len() != graph.input_len() {
                bail!(
                    "{} takes {}-byte images but {} has {}-byte images",
                    path.display(),
                    graph.input_len(),
                    args.dataset,
                    set.image_len()
                );
            }
            let sample = activity_sample(&set, args.images.max(1));
            Some((path.clone(), graph, sha, sample))
        }
    };

    let started = Instant::now();
    let bar = progress::count_bar("hardware flow", selected.len() as u64);
    let active: Mutex<BTreeMap<String, Step>> = Mutex::new(BTreeMap::new());
    let cached = std::sync::atomic::AtomicUsize::new(0);
    let on_event = |e: Event<'_>| {
        if let Ok(mut a) = active.lock() {
            match e.step {
                Step::Done => {
                    a.remove(e.unit);
                    bar.inc(1);
                }
                Step::Cached => {
                    cached.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                s => {
                    a.insert(e.unit.to_string(), s);
                }
            }
            let msg: Vec<String> = a
                .iter()
                .map(|(u, s)| format!("{u}: {}", s.label()))
                .collect();
            bar.set_message(if msg.is_empty() {
                "hardware flow".to_string()
            } else {
                msg.join(", ")
            });
        }
    };
    let table = flow::run(&config, &selected, &on_event)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    results::write_json(&out_dir.join("table.json"), &table)?;
    results::write_text(&out_dir.join("table.csv"), &table.to_csv()?)?;
    let markdown = table.to_markdown();
    results::write_text(&out_dir.join("table.md"), &markdown)?;

    let energy = match &graph {
        None => None,
        Some((path, graph, sha, (images, count))) => {
            let bar = progress::count_bar("switching activity on the graph's streams", 0);
            let measured = activity::measure(
                &config,
                &table,
                &[GraphRef { graph, sha256: sha }],
                images,
                *count,
                args.stream_ops,
                &|done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                },
            )?;
            bar.finish_and_clear();
            let report = measured
                .into_iter()
                .next()
                .context("no activity measured")?
                .map_err(anyhow::Error::msg)
                .and_then(|a| {
                    Ok(energy::per_inference(
                        graph,
                        sha,
                        &table,
                        &a,
                        &MemoryModel::default(),
                    )?)
                })
                .with_context(|| format!("energy per inference of {}", path.display()))?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "graph".into());
            // A method's graph is `<method dir>/graph.qgraph`: name the report after the method.
            let stem = match (stem.as_str(), path.parent().and_then(|p| p.file_name())) {
                ("graph", Some(dir)) => dir.to_string_lossy().into_owned(),
                _ => stem,
            };
            results::write_json(&out_dir.join(format!("energy-{stem}.json")), &report)?;
            results::write_text(
                &out_dir.join(format!("energy-{stem}.md")),
                &report.to_markdown(),
            )?;
            Some(report)
        }
    };

    if args.json {
        let value = serde_json::json!({ "table": table, "energy_per_inference": energy });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{markdown}");
        if let Some(report) = &energy {
            println!("{}", report.to_markdown());
        }
    }
    eprintln!(
        "{} units ({} from cache) in {seconds:.1} s; written to {}",
        table.rows.len(),
        cached.load(std::sync::atomic::Ordering::Relaxed),
        out_dir.display()
    );
    Ok(())
}
