//! A run's manifest: what produced its numbers (code revision, machine, tools, data and weight
//! hashes), so every number in the store can be traced back to its inputs.

use std::collections::BTreeMap;
use std::process::Command;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The provenance of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The run's id (its folder name).
    pub run_id: String,
    /// Where the spec was read from.
    pub spec_source: String,
    /// The folder the spec's relative `registry` and `weights` paths are taken from.
    #[serde(default)]
    pub spec_dir: PathBuf,
    /// sha256 of the spec text.
    pub spec_sha256: String,
    /// Whether the `--quick` budget was applied.
    pub quick: bool,
    /// qbench's version.
    pub qbench_version: String,
    /// The source tree qbench was built from.
    pub git: GitState,
    /// The machine the run executed on.
    pub machine: Machine,
    /// Tool name -> version (rustc, and the EDA tools once the hardware flow ran).
    pub tools: BTreeMap<String, String>,
    /// Dataset name and the sha256 over its files.
    pub dataset: DatasetRef,
    /// Every float model of the run.
    pub models: Vec<ModelRef>,
    /// Liberty file of the hardware flow, when it ran.
    pub liberty: Option<LibertyRef>,
    /// Cell ids the spec expands to (the run is complete when each has a record).
    pub cells: Vec<String>,
    /// Unix seconds when the run (first) started.
    pub started_unix: u64,
    /// Unix seconds when the last cell finished, if all have.
    pub finished_unix: Option<u64>,
}

/// The git state of the source tree the binary was built from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GitState {
    /// Commit hash, or `unknown` outside a git checkout.
    pub revision: String,
    /// True when tracked files differ from the commit.
    pub dirty: bool,
}

/// The machine.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// CPU model name.
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Operating system (from /etc/os-release).
    pub os: String,
}

/// A dataset by name and content hash.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DatasetRef {
    /// Registry name.
    pub name: String,
    /// sha256 over the files' sha256.
    pub sha256: String,
}

/// A float model of the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelRef {
    /// Architecture.
    pub model: String,
    /// Training seed.
    pub seed: u64,
    /// sha256 of the weights.
    pub weights_sha256: String,
    /// Float test accuracy.
    pub test_accuracy: f64,
    /// Float validation accuracy.
    pub val_accuracy: f64,
    /// Images in the test split it was evaluated on (0 in manifests written before it was
    /// recorded).
    #[serde(default)]
    pub test_images: usize,
    /// Its folder in the model cache.
    pub dir: String,
}

/// A Liberty file by path and content hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LibertyRef {
    /// Path as used.
    pub path: String,
    /// sha256 of the file.
    pub sha256: String,
}

/// The revision and dirty flag of the checkout qbench was built from (asked of git at run time,
/// in the crate's source folder), or `unknown` when that is not a git checkout.
pub fn git_state() -> GitState {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(revision) => GitState {
            revision,
            dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
        },
        None => GitState {
            revision: "unknown".into(),
            dirty: false,
        },
    }
}

/// What this machine is.
pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let memory_gib = meminfo_kib("MemTotal").map_or(0.0, |k| k as f64 / (1024.0 * 1024.0));
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let hostname = read("/proc/sys/kernel/hostname").trim().to_string();
    Machine {
        hostname,
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib,
        os,
    }
}

/// A field of /proc/meminfo in KiB.
pub fn meminfo_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The compiler qbench was built with.
pub fn rustc_version() -> &'static str {
    env!("QBENCH_RUSTC_VERSION")
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
