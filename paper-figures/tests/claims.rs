//! Claims files: errors name the field and line; reproduction follows the match rules.

mod common;

use std::path::Path;

use qbench_figures::claims::{self, parse};

const GOOD: &str = "\
claims:
  - id: a
    source: s
    quantity: q
    published: \"15x\"
    published_dataset: RTL
    match:
      hw_ratio: {field: area_um2, numerator: fixed_point, denominator: shift_const}
";

#[test]
fn a_valid_file_parses() {
    let c = parse(GOOD, Path::new("c.yaml")).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, "a");
}

#[test]
fn a_missing_field_names_claim_and_line() {
    let text = GOOD.replace("    quantity: q\n", "");
    let err = parse(&text, Path::new("c.yaml")).unwrap_err().to_string();
    assert!(err.starts_with("c.yaml:"), "{err}");
    assert!(
        err.contains("claims[0]") && err.contains("quantity") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn an_unknown_rule_names_field_and_line() {
    let text = GOOD.replace("hw_ratio:", "hw_ration:");
    let err = parse(&text, Path::new("c.yaml")).unwrap_err().to_string();
    assert!(
        err.contains("claims[0].match") && err.contains("hw_ration") && err.contains("line 8"),
        "{err}"
    );
    let text = GOOD.replace("area_um2", "volume");
    let err = parse(&text, Path::new("c.yaml")).unwrap_err().to_string();
    assert!(err.contains("volume") && err.contains("line 8"), "{err}");
}

#[test]
fn a_duplicate_id_names_its_line() {
    let text = format!("{GOOD}{}", GOOD.trim_start_matches("claims:\n"));
    let err = parse(&text, Path::new("c.yaml")).unwrap_err().to_string();
    assert!(
        err.contains("claims[1].id") && err.contains("duplicate") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn reproduction_uses_the_best_matching_row_and_marks_datasets() {
    let mut input = common::input();
    let specs = claims::shipped().unwrap();
    let got = claims::reproduce(&specs, &input);
    let by_id = |id: &str| got.iter().find(|c| c.id == id).unwrap();
    // Area ratio 1500 / 100; hardware claims are not about datasets.
    assert_eq!(by_id("djq-area").reproduced.as_deref(), Some("15.0x"));
    assert!(!by_id("djq-area").dataset_differs);
    // BNN MNIST claim: error of the bnn-mlp row, on another dataset.
    let bnn = by_id("bnn-mnist");
    assert_eq!(
        bnn.reproduced.as_deref(),
        Some("15.00 ± 0.75 % error (BNN W1A1)")
    );
    assert!(bnn.dataset_differs);
    // QNN W1A2 filter.
    assert_eq!(
        by_id("qnn-alexnet-w1a2").reproduced.as_deref(),
        Some("80.00 ± 1.00 % (QNN W1A2)")
    );
    // A row on the claim's own dataset is not marked.
    input.dataset = "ImageNet".to_string();
    let got = claims::reproduce(&specs, &input);
    assert!(
        !got.iter()
            .find(|c| c.id == "int8-resnet50-imagenet")
            .unwrap()
            .dataset_differs
    );
    // Missing unit: no number is made up.
    input.hw_units.retain(|u| u.unit != "shift_const");
    let got = claims::reproduce(&specs, &input);
    let area = got.iter().find(|c| c.id == "djq-area").unwrap();
    assert_eq!(area.reproduced, None);
    assert!(area.note.contains("Not in this run"), "{}", area.note);
}
