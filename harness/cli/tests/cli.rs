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
    let mut runs: Vec<_> = std::fs::read_dir(results.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    // The classification suite, then the detection suite on the generated KITTI-format set,
    // which is written into the results folder (no QBENCH_DATA here).
    assert_eq!(runs.len(), 2, "{runs:?}");
    let name = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name(&runs[0]).starts_with("detection-quick-"), "{runs:?}");
    assert!(name(&runs[1]).starts_with("paper-quick-"), "{runs:?}");
    assert!(
        results
            .path()
            .join("data/kitti-synth/training/label_2/000000.txt")
            .exists()
    );
    let detection = std::fs::read_to_string(runs[0].join("tables/summary.md")).unwrap();
    assert!(detection.contains("| mAP (int) |"), "{detection}");
    assert!(detection.contains("KITTI AP per class"), "{detection}");
    let run_dir = &runs[1];
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

/// Debian's Fashion-MNIST folder, when installed (tests that need the real files skip without it).
fn debian_fashion_mnist() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    let present = dir.join("t10k-labels-idx1-ubyte.gz").exists();
    if !present {
        assert!(
            std::env::var_os("QBENCH_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required: apt-get install dataset-fashion-mnist"
        );
        eprintln!("SKIPPED: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    }
    present.then(|| dir.to_path_buf())
}

const FASHION_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// A graph file over 28x28 images: one dense layer with zero weights and bias `k` for class `k`,
/// so it always predicts class 9.
fn tiny_graph(dir: &std::path::Path) -> std::path::PathBuf {
    use qbench_engine::{Dense, GraphBuilder, WeightKind};
    let mut b = GraphBuilder::new(&[784]);
    let d = b
        .dense(
            "d",
            0,
            Dense {
                in_features: 784,
                out_features: 10,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: 0,
                weights: vec![0; 7840],
                bias: Some((0..10).collect()),
            },
        )
        .unwrap();
    let path = dir.join("tiny.qgraph");
    b.finish(d).unwrap().save(&path).unwrap();
    path
}

/// `$QBENCH_DATA/fashion-mnist` holding symlinks to `files` of the Debian copy.
fn data_root_linking(debian: &std::path::Path, files: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fashion-mnist");
    std::fs::create_dir(&dir).unwrap();
    for name in files {
        std::os::unix::fs::symlink(debian.join(name), dir.join(name)).unwrap();
    }
    root
}

#[test]
fn an_incomplete_or_looping_user_dataset_folder_is_an_error_not_skipped() {
    let work = tempfile::tempdir().unwrap();
    let graph = tiny_graph(work.path());
    // Two of the four files (contents do not matter: the folder is rejected before reading).
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fashion-mnist");
    std::fs::create_dir(&dir).unwrap();
    for name in &FASHION_FILES[..1] {
        std::fs::write(dir.join(name), b"x").unwrap();
    }
    std::fs::write(dir.join(FASHION_FILES[2]), b"x").unwrap();
    let verify = qbench()
        .args(["data", "verify"])
        .env("QBENCH_DATA", root.path())
        .output()
        .unwrap();
    let eval = qbench()
        .arg("eval")
        .arg(&graph)
        .env("QBENCH_DATA", root.path())
        .output()
        .unwrap();
    for out in [&verify, &eval] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(
            err.contains("`train-labels-idx1-ubyte.gz` is missing")
                && err.contains("`t10k-labels-idx1-ubyte.gz` is missing"),
            "{err}"
        );
        assert!(!err.contains("/usr/share/datasets"), "{err}");
    }
    // The folder is a symlink to itself.
    std::fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&dir, &dir).unwrap();
    let out = qbench()
        .args(["data", "verify"])
        .env("QBENCH_DATA", root.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("symbolic links"),
        "{err}"
    );
}

#[test]
fn eval_rejects_a_dataset_file_that_fails_its_sha256() {
    let Some(debian) = debian_fashion_mnist() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let graph = tiny_graph(work.path());
    let root = data_root_linking(
        &debian,
        &[FASHION_FILES[0], FASHION_FILES[1], FASHION_FILES[3]],
    );
    // The test images with one pixel flipped, stored raw (the reader accepts raw IDX under a
    // .gz name): a valid file whose sha256 matches nothing registered.
    let images = qbench_datasets::read_idx_images(debian.join(FASHION_FILES[2])).unwrap();
    let mut bytes = qbench_datasets::IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [images.count, images.height, images.width] {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(&images.pixels);
    bytes[16 + 1234] ^= 1;
    let flipped = root.path().join("fashion-mnist").join(FASHION_FILES[2]);
    std::fs::write(&flipped, &bytes).unwrap();
    let out = qbench()
        .arg("eval")
        .arg(&graph)
        .env("QBENCH_DATA", root.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("sha256 mismatch") && err.contains(&flipped.display().to_string()),
        "{err}"
    );
}

#[test]
fn eval_split_val_is_the_part_of_train_that_training_holds_out() {
    let Some(debian) = debian_fashion_mnist() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let graph = tiny_graph(work.path());
    let root = data_root_linking(&debian, &FASHION_FILES);
    let eval = |args: &[&str]| {
        qbench()
            .arg("eval")
            .arg(&graph)
            .args(args)
            .env("QBENCH_DATA", root.path())
            .output()
            .unwrap()
    };
    let out = eval(&["--split", "val", "--val-fraction", "0.05", "--seed", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("fashion-mnist val") && text.contains("(3000 images)"),
        "{text}"
    );
    // The graph always says class 9: its accuracy is the share of 9s among exactly the images
    // `train_val_split` holds out.
    let train = qbench_datasets::load_from(
        qbench_datasets::Registry::embedded()
            .get("fashion-mnist")
            .unwrap(),
        &debian,
        qbench_datasets::Split::Train,
    )
    .unwrap();
    let (_, val) = qbench_datasets::train_val_split(train.len(), 0.05, 3);
    let nines = val.iter().filter(|&&i| train.labels[i] == 9).count();
    let top1 = format!(
        "top-1        {:.2}%",
        100.0 * nines as f64 / val.len() as f64
    );
    assert!(text.contains(&top1), "{top1} in {text}");
    let out = eval(&["--split", "val", "--val-fraction", "0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--val-fraction"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_file_gives_the_os_reason_once_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    for args in [
        vec![
            "run".to_string(),
            missing.join("spec.yaml").display().to_string(),
        ],
        vec![
            "eval".to_string(),
            missing.join("g.qgraph").display().to_string(),
        ],
        vec![
            "quantize".into(),
            "--config".into(),
            missing.join("c.yaml").display().to_string(),
        ],
    ] {
        let out = qbench().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&missing.display().to_string()),
            "{args:?}: {err}"
        );
        assert_eq!(err.matches("os error 2").count(), 1, "{args:?}: {err}");
    }
}
