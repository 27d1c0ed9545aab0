//! The `qbench` binary end to end, as a user runs it.

use std::process::Command;

fn qbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qbench"))
}

fn fashion_mnist_present() -> bool {
    let present =
        std::path::Path::new("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
            .exists()
            || std::env::var_os("QBENCH_DATA").is_some();
    if !present {
        assert!(
            std::env::var_os("QBENCH_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required: apt-get install dataset-fashion-mnist"
        );
        eprintln!("SKIPPED: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    }
    present
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["data", "--help"],
        &["data", "fetch", "--help"],
        &["train", "--help"],
        &["reproduce", "--help"],
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
fn quick_reproduce_trains_stores_and_then_reuses_the_float_model() {
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
    let summary = results.path().join("reproduce-quick/summary.json");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let acc = rows[0]["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.75 && acc <= 1.0, "quick float accuracy {acc}");
    assert_eq!(rows[0]["method"], "float");
    // Every quick-suite method ran through the integer engine and agrees with its fake-quant forward.
    let methods = rows.as_array().unwrap();
    assert!(methods.len() >= 3, "{rows}");
    for row in &methods[1..] {
        let agreement = row["agreement"].as_f64().unwrap();
        assert!(
            agreement >= 0.995,
            "{} agreement {agreement}",
            row["method"]
        );
        assert!(row["quant_ops"].as_u64().unwrap() > 0);
    }
    assert!(
        methods
            .iter()
            .any(|r| r["method"].as_str().unwrap().starts_with("int8")),
        "{rows}"
    );

    // Nothing changed: the model comes from the cache with the same weights.
    let again = run();
    assert!(again.status.success());
    let rows2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(rows[0]["weights_sha256"], rows2[0]["weights_sha256"]);
    assert_eq!(rows[0]["test_accuracy"], rows2[0]["test_accuracy"]);
}
