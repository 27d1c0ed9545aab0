//! The detection path through the `qbench` binary: `qbench data generate` writes a small
//! KITTI-format set, `qbench run` trains the detector on it, quantizes it and scores every cell
//! with the KITTI evaluation, and a malformed label file stops the run naming file and line.

mod common;

use std::path::Path;
use std::process::Output;

use common::{fashion_mnist_present, ok, qbench};

const SPEC: &str = "\
name: det
dataset: kitti-synth
seeds: [0]
models:
  - {model: detnet, epochs: 1, batch_size: 8}
methods:
  - {method: int8}
  - {method: djq, weight_bits: 8, activation_bits: 8}
  - {method: djq, weight_bits: 8, activation_bits: 8, unified: false}
hardware: {enabled: false}
";

/// Generates 60 images under `data/kitti-synth` (`data` must exist: `QBENCH_DATA` names it).
fn generate(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    ok(qbench()
        .env("QBENCH_DATA", data)
        .args(["data", "generate", "kitti-synth", "--images", "60"])
        .output()
        .unwrap());
}

fn run(data: &Path, dir: &Path) -> Output {
    let spec = dir.join("det.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    qbench()
        .env("QBENCH_DATA", data)
        .arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(dir.join("results"))
        .output()
        .unwrap()
}

#[test]
fn a_generated_set_runs_through_every_cell_with_kitti_scores() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&data);
    let labels = data.join("kitti-synth/training/label_2");
    assert_eq!(std::fs::read_dir(&labels).unwrap().count(), 60);
    // Generating again leaves the set alone.
    let again = ok(qbench()
        .env("QBENCH_DATA", &data)
        .args(["data", "generate", "kitti-synth"])
        .output()
        .unwrap());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already"));

    let out = ok(run(&data, tmp.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| mAP (int) |"), "{stdout}");
    assert!(
        stdout.contains("KITTI AP per class and difficulty"),
        "{stdout}"
    );
    assert!(stdout.contains("Car Moderate"), "{stdout}");

    let runs = tmp.path().join("results/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut ops = Vec::new();
    for entry in std::fs::read_dir(run_dir.join("cells")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let r = &v["result"];
        let cells = r["detection"]["cells"]
            .as_array()
            .expect("a KITTI evaluation");
        assert_eq!(cells.len(), 3, "three classes");
        // The headline figure is the mean over classes (with ground truth) of AP R40 at
        // Moderate, the evaluation's own second column.
        let moderate: Vec<f64> = cells
            .iter()
            .filter_map(|c| c[1]["ap_r40"].as_f64())
            .collect();
        assert!(!moderate.is_empty(), "{path:?}: no class with ground truth");
        let mean = moderate.iter().sum::<f64>() / moderate.len() as f64;
        let headline = r["int_accuracy"].as_f64().unwrap();
        assert!((headline - mean).abs() < 1e-12, "{headline} vs {mean}");
        assert!((0.0..=1.0).contains(&headline));
        ops.push((
            r["report"]["label"].as_str().unwrap().to_string(),
            r["quant_ops"].as_u64().unwrap(),
        ));
    }
    ops.sort();
    let of = |label: &str| {
        ops.iter()
            .find(|(l, _)| l == label)
            .map(|(_, n)| *n)
            .unwrap()
    };
    assert!(
        2 * of("DJQ W8A8 unified") <= of("DJQ W8A8 per-op"),
        "unified modules should halve the detector's quantization operations: {ops:?}"
    );
}

#[test]
fn a_malformed_label_stops_the_run_naming_file_and_line() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&data);
    let label = data.join("kitti-synth/training/label_2/000007.txt");
    let mut text = std::fs::read_to_string(&label).unwrap();
    text.push_str("Car 0.00 0 1.00 50.00 40.00 20.00 80.00 1.5 1.6 3.9 1 1 10 0.1\n");
    let line = text.lines().count();
    std::fs::write(&label, text).unwrap();
    let out = run(&data, tmp.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("000007.txt") && stderr.contains(&format!(":{line}")),
        "{stderr}"
    );
}

#[test]
fn the_common_split_lists_are_used_when_present_and_checked() {
    if !fashion_mnist_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&data);
    let sets = data.join("kitti-synth/ImageSets");
    std::fs::create_dir_all(&sets).unwrap();
    let ids: Vec<String> = (0..60).map(|i| format!("{i:06}")).collect();
    std::fs::write(sets.join("train.txt"), ids[..40].join("\n")).unwrap();
    std::fs::write(sets.join("val.txt"), ids[40..].join("\n")).unwrap();
    let out = ok(run(&data, tmp.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("40 training and 20 evaluation images (the split lists"),
        "{stderr}"
    );
    // An id the folder does not hold is an error naming the list and its line.
    std::fs::write(sets.join("val.txt"), format!("{}\n999999\n", ids[40])).unwrap();
    let out = run(&data, tmp.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("val.txt:2: unknown image id 999999"),
        "{stderr}"
    );
}
