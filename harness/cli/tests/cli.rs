//! The `qbench` binary end to end, as a user runs it.

mod common;

use common::{fashion_mnist_present, qbench};

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["data", "--help"],
        &["data", "fetch", "--help"],
        &["train", "--help"],
        &["reproduce", "--help"],
        &["run", "--help"],
        &["runs", "--help"],
        &["runs", "diff", "--help"],
        &["verify", "--help"],
        &["aggregate", "--help"],
    ] {
        let out = qbench().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn unknown_names_are_clear_errors() {
    let out = qbench()
        .args(["data", "verify", "nosuch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuch") && err.contains("fashion-mnist"),
        "{err}"
    );

    if fashion_mnist_present() {
        let dir = tempfile::tempdir().unwrap();
        let out = qbench()
            .args(["train", "--model", "nosuch", "--results"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("unknown model `nosuch`") && err.contains("lenet5"),
            "{err}"
        );
    }
}

#[test]
fn a_corrupted_dataset_is_reported_with_its_file() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::write(dir.join(name), b"\x1f\x8b broken").unwrap();
    }
    let out = qbench()
        .args(["data", "verify", "fashion-mnist"])
        .env("QBENCH_DATA", data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("train-images-idx3-ubyte.gz"), "{text}");
    let results = tempfile::tempdir().unwrap();
    let out = qbench()
        .args(["train", "--results"])
        .arg(results.path())
        .env("QBENCH_DATA", data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not verify") && err.contains("train-images-idx3-ubyte.gz"),
        "{err}"
    );
}

#[test]
fn quick_reproduce_runs_the_paper_spec_and_then_reuses_every_cell() {
    if !fashion_mnist_present() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let run = || {
        qbench()
            .args(["reproduce", "--quick", "--results"])
            .arg(results.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<_> = std::fs::read_dir(results.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_dir = &runs[0];
    assert!(
        run_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("paper-quick-")
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap())
            .unwrap();
    let float = manifest["models"][0]["test_accuracy"].as_f64().unwrap();
    assert!(float > 0.75 && float <= 1.0, "quick float accuracy {float}");
    assert_eq!(manifest["dataset"]["name"], "fashion-mnist");
    assert_eq!(manifest["git"]["revision"].as_str().unwrap().len(), 40);
    let summary = run_dir.join("tables/summary.json");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    // Every quick-suite method ran through the integer engine and agrees with its fake-quant forward.
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len(), manifest["cells"].as_array().unwrap().len());
    assert!(rows.len() >= 3, "{rows:?}");
    for row in &rows {
        let agreement = row["agreement"].as_f64().unwrap();
        assert!(agreement >= 0.995, "{} agreement {agreement}", row["label"]);
        assert!(row["quant_ops"].as_u64().unwrap() > 0);
    }
    assert!(rows.iter().any(|r| r["method"] == "int8"), "{rows:?}");

    // The hardware flow ran on the quick units, and the figures were drawn from the run.
    let hw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("hw/table.json")).unwrap())
            .unwrap();
    assert_eq!(hw["rows"].as_array().unwrap().len(), 4, "{hw}");
    // Every costed cell's energy names its own graph as the source of every unit's activity, and
    // its total includes the memory stores.
    let mut costed = 0;
    for entry in std::fs::read_dir(run_dir.join("cells")).unwrap() {
        let cell: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let path = run_dir.join(format!(
            "hw/energy-{}.json",
            cell["cell_id"].as_str().unwrap()
        ));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        costed += 1;
        let energy: serde_json::Value = serde_json::from_str(&text).unwrap();
        let own = &cell["result"]["graph_sha256"];
        assert_eq!(&energy["graph_sha256"], own);
        let kinds = energy["by_kind"].as_array().unwrap();
        let mut memory_pj = 0.0;
        for k in kinds {
            if k["category"] == "memory" {
                assert_eq!(k["activity"]["kind"], "memory_model", "{k}");
                memory_pj += k["simulated_pj"].as_f64().unwrap();
            } else {
                assert_eq!(k["activity"]["kind"], "graph", "{k}");
                assert_eq!(&k["activity"]["graph_sha256"], own, "{k}");
                assert!(k["activity"]["ops"].as_u64().unwrap() > 0, "{k}");
            }
        }
        let stores: Vec<&str> = kinds
            .iter()
            .filter(|k| k["category"] == "memory")
            .map(|k| k["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            stores,
            [
                "memory:weights",
                "memory:activations_read",
                "memory:activations_write"
            ]
        );
        let total = energy["total_simulated_pj"].as_f64().unwrap();
        let sum: f64 = kinds
            .iter()
            .map(|k| k["simulated_pj"].as_f64().unwrap())
            .sum();
        assert!(
            memory_pj > 0.0 && (total - sum).abs() <= 1e-6 * total,
            "{total} vs {sum}"
        );
    }
    assert!(costed > 0, "no cell was costed");
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("figures/input.json")).unwrap())
            .unwrap();
    for m in input["methods"].as_array().unwrap() {
        let energy = &m["energy_per_inference_nj"];
        match m["method"].as_str().unwrap() {
            // DJQ needs only shifts and MACs: costed. int8 and TNT need the fixed-point unit,
            // which the quick flow does not build: n/a, never a guess.
            "djq" => assert!(energy.as_f64().unwrap() > 0.0, "{m}"),
            _ => assert!(energy.is_null(), "{m}"),
        }
    }
    let index = std::fs::read_to_string(run_dir.join("figures/index.md")).unwrap();
    for figure in [
        "accuracy_vs_quant_ops.png",
        "accuracy_vs_energy.svg",
        "methods.tex",
    ] {
        assert!(index.contains(figure), "{figure} missing from the index");
        assert!(run_dir.join("figures").join(figure).exists(), "{figure}");
    }

    // Nothing changed: every cell comes from the store, with the same numbers.
    let again = run();
    assert!(again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("0 computed now, 0 from the method cache"),
        "{err}"
    );
    let rows2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(serde_json::Value::Array(rows), rows2);
}
