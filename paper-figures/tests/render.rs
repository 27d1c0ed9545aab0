//! Renders a run with missing values into a temporary folder and checks every output format.

mod common;

use std::path::Path;

use qbench_figures::{FigureInput, HwRole, claims, render};

fn rendered_input() -> FigureInput {
    let mut input = common::input();
    input.claims = claims::reproduce(&claims::shipped().unwrap(), &input);
    input
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_output_is_written_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let input = rendered_input();
    let out = render(&input, dir.path()).expect("render");

    // Tables: Markdown has every label and n/a footnotes for the missing energy and area.
    let md = read(&dir.path().join("methods.md"));
    for m in &input.methods {
        let escaped = m.label.replace('|', "\\|");
        assert!(md.contains(&escaped), "methods.md lacks {}", m.label);
    }
    assert!(md.contains("n/a[^a]") && md.contains("[^a]: n/a:"), "{md}");
    assert!(md.contains("90.13 ± 0.25"), "accuracy with std: {md}");
    let hw_md = read(&dir.path().join("hw_units.md"));
    for u in &input.hw_units {
        assert!(hw_md.contains(&u.unit));
    }

    // LaTeX: booktabs rules and escaped specials, no raw ones from the label.
    let tex = read(&dir.path().join("methods.tex"));
    for rule in ["\\toprule", "\\midrule", "\\bottomrule"] {
        assert!(tex.contains(rule), "methods.tex lacks {rule}");
    }
    assert!(tex.contains(r"int8\_W8A8 \& 50\% calib"), "{tex}");
    assert!(!tex.contains("int8_W8A8"));
    assert!(tex.contains(r"n/a\textsuperscript{a}"));

    // CSV: values round-trip exactly; missing values are empty fields.
    let mut csv = csv::Reader::from_path(dir.path().join("methods.csv")).unwrap();
    let headers = csv.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), input.methods.len());
    for (rec, m) in records.iter().zip(&input.methods) {
        assert_eq!(rec[col("label")], m.label);
        assert_eq!(
            rec[col("accuracy_mean_pct")].parse::<f64>().unwrap(),
            m.accuracy_mean
        );
        assert_eq!(rec[col("quant_ops")].parse::<u64>().unwrap(), m.quant_ops);
        match m.energy_per_inference_nj {
            Some(e) => assert_eq!(
                rec[col("energy_per_inference_nj")].parse::<f64>().unwrap(),
                e
            ),
            None => assert_eq!(&rec[col("energy_per_inference_nj")], ""),
        }
        assert_eq!(&rec[col("variant")], m.variant.as_deref().unwrap_or(""));
        for category in qbench_figures::ENERGY_CATEGORIES {
            let expected = m
                .energy_breakdown_nj
                .get(category)
                .map_or(String::new(), |v| v.to_string());
            assert_eq!(&rec[col(&format!("energy_{category}_nj"))], expected);
        }
    }

    // Figures: every one drawn (the input has per-layer energy), PNG decodes at 1200x800 with
    // ink on it, SVG parses and carries the axis labels with units.
    let stems: Vec<&str> = out.figures.iter().map(|f| f.stem.as_str()).collect();
    assert_eq!(
        stems,
        [
            "accuracy_vs_energy",
            "energy_breakdown",
            "quant_op_area_energy",
            "accuracy_vs_bits",
            "accuracy_vs_quant_ops",
            "layer_energy"
        ]
    );
    assert!(out.not_drawn.is_empty());
    for f in &out.figures {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&f.files.png).unwrap(),
        ));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (1200, 800), "{}", f.stem);
        let dark = buf.chunks(3).filter(|p| p.iter().all(|&c| c < 100)).count();
        assert!(
            dark > 2_000,
            "{}: only {dark} dark pixels, text/axes missing",
            f.stem
        );

        let svg = read(&f.files.svg);
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", f.stem));
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        let has = |s: &str| texts.iter().any(|t| t.contains(s));
        let expected: &[&str] = match f.stem.as_str() {
            "accuracy_vs_energy" => &[
                "Energy per inference (nJ, log scale)",
                "Top-1 accuracy (%)",
                "Pareto front",
                "DJQ W4A4 unified",
            ],
            "energy_breakdown" => &[
                "Energy per inference (nJ)",
                "DJQ W4A4 unified",
                "compute",
                "requantization",
                "memory",
            ],
            "quant_op_area_energy" => &[
                "Area (µm²)",
                "Energy per op (pJ)",
                "shift_const",
                "vectorless",
            ],
            "accuracy_vs_bits" => &[
                "Weight bit width (bits)",
                "Top-1 accuracy (%)",
                "djq",
                "tnt",
            ],
            "accuracy_vs_quant_ops" => &[
                "Quantization operations per inference (count, log scale)",
                "djq, unified",
                "djq, per-op",
            ],
            "layer_energy" => &["Energy per inference (nJ)", "conv2", "requant", "memory"],
            other => panic!("unexpected figure {other}"),
        };
        for e in expected {
            assert!(has(e), "{}.svg lacks {e:?}", f.stem);
        }
    }
    // Skipped values are named on the figure and in the index.
    let figure = |stem: &str| out.figures.iter().find(|f| f.stem == stem).unwrap();
    let energy_fig = figure("accuracy_vs_energy");
    assert_eq!(energy_fig.skipped, ["BNN W1A1 (no energy estimate)"]);
    assert!(read(&energy_fig.files.svg).contains("Not shown: BNN W1A1"));
    let breakdown_fig = figure("energy_breakdown");
    assert_eq!(breakdown_fig.skipped, ["BNN W1A1: no energy breakdown"]);
    let ops_fig = figure("accuracy_vs_quant_ops");
    assert!(ops_fig.skipped[0].starts_with("TNT W2A8"));

    // Claims: the hardware ratio is the units' ratio; dataset differences are marked.
    let claims_md = read(&out.claims);
    let djq_area = claims_md
        .lines()
        .find(|l| l.contains("`djq-area`"))
        .unwrap();
    assert!(djq_area.contains("15.0x"), "{djq_area}");
    let djq_energy = claims_md
        .lines()
        .find(|l| l.contains("`djq-energy`"))
        .unwrap();
    assert!(djq_energy.contains("9.0x"), "{djq_energy}");
    let tnt = claims_md
        .lines()
        .find(|l| l.contains("`tnt-lenet-mnist`"))
        .unwrap();
    assert!(
        tnt.contains("88.50 -> 87.00 % (TNT W2A8)") && tnt.contains("dataset differs"),
        "{tnt}"
    );
    let bnn_cifar = claims_md
        .lines()
        .find(|l| l.contains("`bnn-cifar10`"))
        .unwrap();
    assert!(
        bnn_cifar.contains("n/a[^na]"),
        "no bnn-vgg row: {bnn_cifar}"
    );

    // Index: links every file and carries the provenance.
    let index = read(&out.index);
    for name in [
        "methods.md",
        "methods.tex",
        "methods.csv",
        "methods.parquet",
        "hw_units.md",
        "hw_units.tex",
        "hw_units.csv",
        "hw_units.parquet",
        "claims.md",
    ] {
        assert!(index.contains(&format!("({name})")), "index lacks {name}");
    }
    for f in &out.figures {
        assert!(
            index.contains(&format!("({}.png)", f.stem))
                && index.contains(&format!("({}.svg)", f.stem))
        );
    }
    assert!(index.contains("abc123") && index.contains("deadbeef"));
}

#[test]
fn figures_without_data_are_reported_not_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = common::input();
    input.layer_energy = None;
    input.hw_units.retain(|u| u.role != HwRole::Requantizer);
    for m in &mut input.methods {
        m.energy_per_inference_nj = None;
    }
    let out = render(&input, dir.path()).unwrap();
    let not_drawn: Vec<&str> = out.not_drawn.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        not_drawn,
        ["accuracy_vs_energy", "quant_op_area_energy", "layer_energy"]
    );
    assert!(!dir.path().join("layer_energy.png").exists());
    let index = read(&out.index);
    assert!(
        index.contains("`layer_energy`: no per-layer energy in this run"),
        "{index}"
    );
    assert!(read(&out.claims).contains("No claims were given"));
}

#[test]
fn invalid_input_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = common::input();
    input.methods[2].area_um2 = Some(f64::NAN);
    let err = render(&input, dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("methods[2] (int8_W8A8 & 50% calib).area_um2"),
        "{err}"
    );
    input.methods[2].area_um2 = None;
    input.methods[1].label = input.methods[0].label.clone();
    let err = render(&input, dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("methods[1]") && err.contains("duplicate label"),
        "{err}"
    );
}

#[test]
fn json_input_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = rendered_input();
    let path = dir.path().join("input.json");
    std::fs::write(&path, serde_json::to_string_pretty(&input).unwrap()).unwrap();
    assert_eq!(FigureInput::from_json_file(&path).unwrap(), input);
    std::fs::write(&path, "{\"run_id\": 3}").unwrap();
    let err = FigureInput::from_json_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("input.json") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn a_single_unit_and_a_single_layer_draw() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = common::input();
    input.hw_units.truncate(1);
    if let Some(le) = input.layer_energy.as_mut() {
        le.layers.truncate(1);
    }
    let out = render(&input, dir.path()).unwrap();
    assert!(out.not_drawn.is_empty(), "{:?}", out.not_drawn);
    let svg = read(&dir.path().join("layer_energy.svg"));
    assert!(svg.contains("conv1") && !svg.contains("conv2"));
}
