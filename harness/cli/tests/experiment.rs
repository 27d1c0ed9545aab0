//! Experiment specs through the `qbench` binary: a run killed with SIGKILL at two moments resumes
//! to exactly the records of an uninterrupted run; spec errors name the line; the store commands
//! list, show, diff and verify runs.

mod common;

use common::{fashion_mnist_present, qbench};

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A small grid: one float model on 3,000 images, five method cells.
const SPEC: &str = "\
name: resume
dataset: fashion-mnist
seeds: [0]
models:
  - {model: cnn, epochs: 2, train_limit: 3000}
methods:
  - {method: int8}
  - method: djq
    grid: {weight_bits: [8, 4]}
    activation_bits: 8
  - {method: linear, bits: 8}
  - {method: linear, bits: 4}
hardware: {enabled: false}
";

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run_dir(results: &Path) -> Option<PathBuf> {
    let dir = std::fs::read_dir(results.join("runs"))
        .ok()?
        .next()?
        .ok()?
        .path();
    Some(dir)
}

fn records(results: &Path) -> Vec<(String, serde_json::Value)> {
    let dir = run_dir(results).unwrap().join("cells");
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The measured numbers of a record (paths differ between stores; nothing else may).
fn numbers(v: &serde_json::Value) -> serde_json::Value {
    let r = &v["result"];
    serde_json::json!([
        v["cell_id"],
        r["graph_sha256"],
        r["int_accuracy"],
        r["fake_accuracy"],
        r["agreement"],
        r["quant_ops"],
        r["weight_bits"],
        v["float"]["weights_sha256"]
    ])
}

/// Starts `qbench run` and SIGKILLs it once `ready` holds (or it exits by itself).
fn kill_when(args: &[&Path], ready: impl Fn() -> bool) {
    let mut child = qbench()
        .arg("run")
        .args(args)
        .args(["--jobs", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !ready() && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs, nothing gets flushed.
    child.wait().unwrap();
}

#[test]
fn a_run_killed_twice_resumes_to_the_same_records_as_a_clean_run() {
    if !fashion_mnist_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("resume.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let clean = work.path().join("clean");
    let killed = work.path().join("killed");

    let out = ok(qbench()
        .arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(&clean)
        .output()
        .unwrap());
    assert_eq!(counts(&String::from_utf8_lossy(&out.stderr)), (5, 0));
    let expected = records(&clean);
    assert_eq!(expected.len(), 5);

    // Kill 1: while the float model trains (the manifest exists, no cell yet).
    kill_when(&[&spec, Path::new("--results"), &killed], || {
        run_dir(&killed).is_some_and(|d| d.join("manifest.json").exists())
    });
    // Kill 2: as soon as the first cell record lands.
    // Records only: an atomic write's temporary file may be caught mid-write by the kill.
    let is_record = |p: &Path| p.extension().is_some_and(|e| e == "json");
    let cells = |r: &Path| {
        run_dir(r)
            .and_then(|d| std::fs::read_dir(d.join("cells")).ok())
            .map_or(0, |d| {
                d.filter(|e| e.as_ref().is_ok_and(|e| is_record(&e.path())))
                    .count()
            })
    };
    kill_when(&[&spec, Path::new("--results"), &killed], || {
        cells(&killed) >= 1
    });
    let survivors: Vec<(PathBuf, std::time::SystemTime)> =
        std::fs::read_dir(run_dir(&killed).unwrap().join("cells"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let t = std::fs::metadata(&p).unwrap().modified().unwrap();
                (p, t)
            })
            .collect();
    assert!(
        survivors.len() < 5,
        "the second kill came too late to test anything"
    );
    // Every file left behind is a complete record (atomic writes).
    for (p, _) in &survivors {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap())
            .unwrap_or_else(|e| panic!("{} is corrupt: {e}", p.display()));
    }

    let out = ok(qbench()
        .arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(&killed)
        .output()
        .unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    // A cell killed between its method result and its record takes the result from the cache.
    let (computed, cached) = counts(&err);
    assert_eq!(computed + cached, 5 - survivors.len(), "{err}");
    // Finished cells were not recomputed: their records were not rewritten.
    for (p, t) in &survivors {
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *t);
    }
    let resumed = records(&killed);
    assert_eq!(resumed.len(), expected.len());
    for ((na, a), (nb, b)) in expected.iter().zip(&resumed) {
        assert_eq!(na, nb);
        assert_eq!(numbers(a), numbers(b), "{na}");
    }

    // The store commands see both runs and find them identical.
    let (ra, rb) = (run_dir(&clean).unwrap(), run_dir(&killed).unwrap());
    let out = ok(qbench()
        .args(["runs", "diff"])
        .arg(&ra)
        .arg(&rb)
        .output()
        .unwrap());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 cells identical"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A record an earlier build left under another cell id is history, not a sixth cell or a
    // second seed.
    let (first, _) = &resumed[0];
    let mut stale: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rb.join("cells").join(first)).unwrap())
            .unwrap();
    stale["cell_id"] = "0000000000000000".into();
    std::fs::write(
        rb.join("cells").join("0000000000000000.json"),
        stale.to_string(),
    )
    .unwrap();
    ok(qbench()
        .args(["aggregate", "--results"])
        .arg(&killed)
        .arg(rb.file_name().unwrap())
        .output()
        .unwrap());
    let rows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rb.join("tables").join("summary.json")).unwrap(),
    )
    .unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["seeds"].as_array().unwrap().len(), 1, "{row}");
    }
    let out = ok(qbench()
        .args(["runs", "list", "--results"])
        .arg(&killed)
        .output()
        .unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains("5/5"));
    let out = ok(qbench()
        .args(["verify", "--sample", "1", "--results"])
        .arg(&killed)
        .arg(rb.file_name().unwrap())
        .output()
        .unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains("all match"));

    // An edited spec is a new run; its unchanged cells come from the method cache, said so.
    let edited = work.path().join("edited.yaml");
    std::fs::write(&edited, format!("{SPEC}# edited\n")).unwrap();
    let out = ok(qbench()
        .arg("run")
        .arg(&edited)
        .arg("--results")
        .arg(&clean)
        .output()
        .unwrap());
    assert_eq!(counts(&String::from_utf8_lossy(&out.stderr)), (0, 5));
}

/// The cells a `run` quantized now and took from the method cache, from its summary line.
fn counts(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains(" computed now, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let before = |marker: &str| -> usize {
        let head = &line[..line.find(marker).unwrap_or_else(|| panic!("{line}"))];
        let n = head.rsplit(|c: char| !c.is_ascii_digit()).next().unwrap();
        n.parse().unwrap_or_else(|_| panic!("{line}"))
    };
    (before(" computed now"), before(" from the method cache"))
}

#[test]
fn spec_errors_name_the_file_line_and_field() {
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("bad.yaml");
    std::fs::write(&spec, SPEC.replace("bits: [8, 4]", "bits: [8, 40]")).unwrap();
    let out = qbench()
        .arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("line 8") && err.contains("weight_bits"),
        "{err}"
    );
    // Nothing was started for a spec that does not validate.
    assert!(!work.path().join("runs").exists());
}
