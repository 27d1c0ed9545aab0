//! The result store: one folder per run of a spec, holding the spec, its manifest, one record per
//! finished cell, and the tables and figures made from them.
//!
//! ```text
//! results/runs/<name>-<hash>/
//!   spec.yaml        the spec as run
//!   manifest.json    git revision, machine, tools, dataset and weight hashes, Liberty hash
//!   cells/<id>.json  one record per finished cell (written atomically, never rewritten)
//!   hw/              the hardware flow's unit table
//!   tables/ figures/ made by `qbench aggregate` (and at the end of `qbench run`)
//! ```
//!
//! The folder name hashes the spec text and the budget, so rerunning an unchanged spec resumes the
//! same run, while an edited spec gets a new folder (its unchanged cells still come from the
//! content-addressed caches under `results/models` and `results/methods`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use qbench_io::{sha256_file, sha256_hex};
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use super::spec::ExperimentSpec;
use crate::method_run::MethodResult;
use crate::results;

/// Everything known about one finished cell (a float model quantized by one method config with
/// one seed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellRecord {
    /// Content address: sha256 (first 16 hex digits) of everything that determines the result.
    pub cell_id: String,
    /// Float model architecture.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Seed of the float model and of the method.
    pub seed: u64,
    /// Method name.
    pub method: String,
    /// The method's options as parsed: every option, defaults filled in (records written before
    /// this hold only the keys the spec wrote).
    pub options: serde_json::Value,
    /// Index of the spec's `methods` entry this cell expands.
    pub spec_entry: usize,
    /// The float model it was quantized from.
    pub float: FloatSummary,
    /// The measured result.
    pub result: MethodResult,
}

/// The float model behind a cell.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FloatSummary {
    /// sha256 of its weights file.
    pub weights_sha256: String,
    /// sha256 over the dataset files it was trained on.
    pub dataset_sha256: String,
    /// Float test accuracy.
    pub test_accuracy: f64,
    /// Float validation accuracy.
    pub val_accuracy: f64,
}

/// A run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The folder's name, used as the run's id on the command line.
    pub id: String,
    /// The folder.
    pub dir: PathBuf,
}

impl RunDir {
    /// The run folder of `spec` under `results_root` (created if absent).
    pub fn for_spec(results_root: &Path, spec: &ExperimentSpec) -> Result<Self> {
        let hash = sha256_hex(format!("{}\nquick={}", spec.text, spec.quick).as_bytes());
        let quick = if spec.quick { "quick-" } else { "" };
        let id = format!("{}-{quick}{}", spec.name, &hash[..10]);
        let dir = runs_dir(results_root).join(&id);
        std::fs::create_dir_all(dir.join("cells"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let spec_path = dir.join("spec.yaml");
        if !spec_path.exists() {
            results::write_text(&spec_path, &spec.text)?;
        }
        Ok(RunDir { id, dir })
    }

    /// Opens an existing run by id (folder name under `results/runs`) or by path.
    pub fn open(results_root: &Path, run: &str) -> Result<Self> {
        let as_path = PathBuf::from(run);
        let dir = if as_path.join("manifest.json").exists() {
            as_path
        } else {
            runs_dir(results_root).join(run)
        };
        if !dir.join("manifest.json").exists() {
            let known: Vec<String> = list(results_root)?.into_iter().map(|r| r.id).collect();
            bail!(
                "no run `{run}` under {} (runs: {})",
                runs_dir(results_root).display(),
                if known.is_empty() {
                    "none yet; `qbench run SPEC` makes one".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| run.to_string());
        Ok(RunDir { id, dir })
    }

    /// Takes the run's lock (an advisory lock on `<run>/.lock`, which the kernel releases when
    /// this process ends in any way), so that two qbench processes never work on one run at
    /// once. When another process holds it, says so on stderr and waits for it.
    ///
    /// # Errors
    /// When the lock file cannot be created or locked.
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.dir.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| qbench_io::IoError::new("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                eprintln!(
                    "run {} is in use by another qbench ({}); waiting for it to finish \
                     (Ctrl-C to stop waiting)",
                    self.id,
                    match holder.trim() {
                        "" => "pid unknown".to_string(),
                        pid => format!("pid {pid}"),
                    }
                );
                file.lock()
                    .map_err(|e| qbench_io::IoError::new("lock", &path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(qbench_io::IoError::new("lock", &path, e).into());
            }
        }
        use std::io::{Seek, Write};
        // Who holds it, for the message of a process that waits.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(RunLock { _file: file })
    }

    /// The spec text the run was made from.
    pub fn spec_text(&self) -> Result<String> {
        let path = self.dir.join("spec.yaml");
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The spec the run was made from, parsed as it was then: relative paths resolve against
    /// the original spec's folder (the manifest's `spec_dir`), wherever the command runs.
    pub fn spec(&self) -> Result<ExperimentSpec> {
        let manifest = self.manifest()?;
        Ok(ExperimentSpec::from_stored(
            &self.spec_text()?,
            &manifest.spec_source,
            manifest.quick,
            &manifest.spec_dir,
        )?)
    }

    /// Path of a cell's record.
    pub fn cell_path(&self, cell_id: &str) -> PathBuf {
        self.dir.join("cells").join(format!("{cell_id}.json"))
    }

    /// The finished record of `cell_id`: `None` when there is none yet or its graph is gone or
    /// changed (the cell then runs again).
    ///
    /// # Errors
    /// A record that was edited or damaged (its seal does not match), or that is not this cell's,
    /// is an error naming the file: it is never published, nor silently recomputed.
    pub fn finished_cell(&self, cell_id: &str) -> Result<Option<CellRecord>> {
        let path = self.cell_path(cell_id);
        if !path.exists() {
            return Ok(None);
        }
        let record: CellRecord = results::read_sealed(&path)?;
        if record.cell_id != cell_id {
            bail!(
                "{} holds the record of cell {}; delete it to recompute",
                path.display(),
                record.cell_id
            );
        }
        let graph_ok = sha256_file(&record.result.graph_path)
            .ok()
            .is_some_and(|h| h == record.result.graph_sha256);
        Ok(graph_ok.then_some(record))
    }

    /// Writes a cell's record atomically, sealed with the sha256 of its content.
    pub fn write_cell(&self, record: &CellRecord) -> Result<()> {
        results::write_sealed(&self.cell_path(&record.cell_id), record)
    }

    /// The run's cell records, ordered by spec entry then id; a record that is unreadable or
    /// edited (its seal does not match) is an error naming it.
    ///
    /// Only the cells of the run's current grid (the manifest's `cells`) are read: a record left
    /// by an earlier build of the same spec, whose cell id hashed other source code, stays on
    /// disk as history but is not mixed into tables, counts or checks.
    pub fn cells(&self) -> Result<Vec<CellRecord>> {
        let dir = self.dir.join("cells");
        let manifest = match self.dir.join("manifest.json").exists() {
            true => Some(self.manifest()?),
            false => None,
        };
        let paths: Vec<PathBuf> = match manifest.filter(|m| !m.cells.is_empty()) {
            Some(m) => m
                .cells
                .iter()
                .map(|id| self.cell_path(id))
                .filter(|p| p.exists())
                .collect(),
            None => std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
                .with_context(|| format!("reading {}", dir.display()))?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
        };
        let mut records: Vec<CellRecord> = Vec::new();
        for path in paths {
            records.push(results::read_sealed(&path)?);
        }
        records.sort_by(|a, b| {
            (a.spec_entry, &a.model, a.seed, &a.cell_id).cmp(&(
                b.spec_entry,
                &b.model,
                b.seed,
                &b.cell_id,
            ))
        });
        Ok(records)
    }

    /// Writes the manifest atomically, sealed with the sha256 of its content.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        results::write_sealed(&self.dir.join("manifest.json"), manifest)
    }

    /// Reads the manifest; an edited or damaged one is an error naming it.
    pub fn manifest(&self) -> Result<Manifest> {
        results::read_sealed(&self.dir.join("manifest.json"))
    }
}

/// A run's lock, held until dropped (see [`RunDir::lock`]).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Where run folders live.
pub fn runs_dir(results_root: &Path) -> PathBuf {
    results_root.join("runs")
}

/// Every run under `results_root`, oldest first.
pub fn list(results_root: &Path) -> Result<Vec<RunDir>> {
    let dir = runs_dir(results_root);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("manifest.json").exists() {
            let modified = std::fs::metadata(path.join("manifest.json"))
                .and_then(|m| m.modified())
                .ok();
            let id = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            runs.push((modified, RunDir { id, dir: path }));
        }
    }
    runs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}
