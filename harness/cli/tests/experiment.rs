//! Experiment specs through the `qbench` binary: a run killed with SIGKILL at two moments resumes
//! to exactly the records of an uninterrupted run; spec errors name the line; the store commands
//! list, show, diff and verify runs.

mod common;

use common::{fashion_mnist_present, ok, qbench};

use std::path::{Path, PathBuf};
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
        qbench_io::seal_json(&stale).unwrap(),
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
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("all match"), "{report}");
    // A sample of one still covers every method family (int8, djq, linear) and the float model.
    let ok_lines = report.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok_lines, 4, "{report}");
    assert!(report.contains("ok       float cnn"), "{report}");

    // Tampering: a record or manifest edited by hand is an error naming the file, for
    // `aggregate`, for a rerun and for `verify`; restored, everything works again.
    let record = rb.join("cells").join(first);
    let manifest = rb.join("manifest.json");
    for (path, field) in [
        (&record, "\"int_accuracy\": 0."),
        (&manifest, "\"test_accuracy\": 0."),
    ] {
        let original = std::fs::read_to_string(path).unwrap();
        assert!(original.contains(field), "{field}");
        std::fs::write(path, original.replacen(field, &format!("{field}0"), 1)).unwrap();
        for args in [
            vec!["aggregate".to_string()],
            vec!["verify".to_string(), "--all".to_string()],
        ] {
            let out = qbench()
                .args(&args)
                .arg("--results")
                .arg(&killed)
                .arg(rb.file_name().unwrap())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{args:?} accepted an edited {}",
                path.display()
            );
            assert!(
                err.contains(&path.display().to_string()) && err.contains("edited"),
                "{err}"
            );
        }
        let out = qbench()
            .arg("run")
            .arg(&spec)
            .arg("--results")
            .arg(&killed)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::write(path, original).unwrap();
    }
    ok(qbench()
        .args(["aggregate", "--results"])
        .arg(&killed)
        .arg(rb.file_name().unwrap())
        .output()
        .unwrap());

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

    // While another process holds the run, a second `qbench run` waits (saying so) and does no
    // work; once the lock is free it finds every cell finished.
    let lock = std::fs::File::open(run_dir_of(&clean, "resume", &edited).join(".lock")).unwrap();
    lock.lock().unwrap();
    let mut waiting = qbench()
        .arg("run")
        .arg(&edited)
        .arg("--results")
        .arg(&clean)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(waiting.stderr.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    while !line.contains("is in use by another qbench") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no waiting message"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "it waits for the lock"
    );
    drop(lock);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(waiting.wait().unwrap().success(), "{rest}");
    assert_eq!(counts(&rest), (0, 0), "{rest}");

    // Only a missing Debian package may skip the hardware flow, and then the run says so: in its
    // exit code (3) and in its summary.
    let with_hw = work.path().join("hw.yaml");
    std::fs::write(
        &with_hw,
        SPEC.replace(
            "hardware: {enabled: false}",
            "hardware: {units: [shift_const]}",
        ),
    )
    .unwrap();
    let out = qbench()
        .arg("run")
        .arg(&with_hw)
        .arg("--results")
        .arg(&clean)
        .env("PATH", work.path().join("no-tools"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("yosys") && err.contains("incomplete"), "{err}");
    let summary = std::fs::read_to_string(
        run_dir_of(&clean, "resume", &with_hw)
            .join("tables")
            .join("summary.md"),
    )
    .unwrap();
    assert!(
        summary.contains("Hardware flow not run") && summary.contains("yosys"),
        "{summary}"
    );
}

/// The run folder of the spec file `spec` (named `name`) under `results`: the one whose stored
/// spec is that file's text.
fn run_dir_of(results: &Path, name: &str, spec: &Path) -> PathBuf {
    let text = std::fs::read_to_string(spec).unwrap();
    std::fs::read_dir(results.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| {
            d.file_name().unwrap().to_string_lossy().starts_with(name)
                && std::fs::read_to_string(d.join("spec.yaml")).ok().as_deref() == Some(&text)
        })
        .expect("the run folder")
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

#[test]
fn two_seeds_train_two_models_and_the_spread_is_computed_from_them() {
    if !fashion_mnist_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("seeds.yaml");
    std::fs::write(
        &spec,
        "name: seeds\nseeds: [0, 1]\nmodels:\n  - {model: cnn, epochs: 1, train_limit: 1500}\n\
         methods:\n  - {method: linear, bits: 4}\nhardware: {enabled: false}\n",
    )
    .unwrap();
    // Two jobs: the two float models train at once, one thread each; one job: one after the
    // other on every core. The weights must not depend on it.
    let run_with = |jobs: &str| {
        let results = work.path().join(format!("results-{jobs}"));
        ok(qbench()
            .arg("run")
            .arg(&spec)
            .args(["--jobs", jobs, "--results"])
            .arg(&results)
            .output()
            .unwrap());
        results
    };
    let results = run_with("2");
    let cells = records(&results);
    assert_eq!(cells.len(), 2);
    let weights: Vec<&serde_json::Value> = cells
        .iter()
        .map(|(_, c)| &c["float"]["weights_sha256"])
        .collect();
    assert_ne!(
        weights[0], weights[1],
        "each seed trains its own float model"
    );
    let sequential = records(&run_with("1"));
    let by_seed = |cells: &[(String, serde_json::Value)]| {
        let mut w: Vec<(u64, String)> = cells
            .iter()
            .map(|(_, c)| {
                (
                    c["seed"].as_u64().unwrap(),
                    c["float"]["weights_sha256"].to_string(),
                )
            })
            .collect();
        w.sort();
        w
    };
    assert_eq!(
        by_seed(&cells),
        by_seed(&sequential),
        "parallel training changed the weights"
    );
    let rows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(&results).unwrap().join("tables/summary.json")).unwrap(),
    )
    .unwrap();
    let row = &rows[0];
    let acc: Vec<f64> = row["accuracies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    assert_eq!(row["seeds"], serde_json::json!([0, 1]));
    assert_eq!(acc.len(), 2);
    let mut per_seed: Vec<(u64, f64)> = cells
        .iter()
        .map(|(_, c)| {
            (
                c["seed"].as_u64().unwrap(),
                c["result"]["int_accuracy"].as_f64().unwrap(),
            )
        })
        .collect();
    per_seed.sort_by_key(|p| p.0);
    assert_eq!(acc, per_seed.iter().map(|p| p.1).collect::<Vec<_>>());
    let mean = (acc[0] + acc[1]) / 2.0;
    let std = ((acc[0] - mean).powi(2) + (acc[1] - mean).powi(2)).sqrt(); // n - 1 = 1
    assert!(
        std > 0.0,
        "two seeds of a 1,500-image model give different accuracies: {acc:?}"
    );
    assert!((row["accuracy_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!(
        (row["accuracy_std"].as_f64().unwrap() - std).abs() < 1e-12,
        "{row}"
    );
}
