//! A FigureInput with several methods, missing values and hardware units, shared by the tests.

use std::collections::BTreeMap;

use qbench_figures::{FigureInput, HwRole, HwUnitRow, LayerEnergy, MethodRow};

/// A method row with the given identity and numbers; energy and area optional.
#[allow(clippy::too_many_arguments)]
pub fn row(
    label: &str,
    method: &str,
    model: &str,
    bits: (u32, u32),
    variant: Option<&str>,
    accuracy: (f64, f64),
    quant_ops: u64,
    energy_nj: Option<f64>,
    area_um2: Option<f64>,
) -> MethodRow {
    let breakdown = energy_nj
        .map(|e| {
            BTreeMap::from([
                ("compute".to_string(), 0.7 * e),
                ("requantization".to_string(), 0.1 * e),
                ("memory".to_string(), 0.2 * e),
            ])
        })
        .unwrap_or_default();
    MethodRow {
        label: label.to_string(),
        method: method.to_string(),
        model: model.to_string(),
        weight_bits: bits.0,
        activation_bits: bits.1,
        variant: variant.map(str::to_string),
        finetuned: false,
        seeds: 3,
        float_accuracy: Some(accuracy.0 + 1.5),
        accuracy_mean: accuracy.0,
        accuracy_std: accuracy.1,
        fake_accuracy: accuracy.0 - 0.01,
        agreement: 0.9987,
        quant_ops,
        weight_bits_total: 1_234_567 * u64::from(bits.0),
        energy_per_inference_nj: energy_nj,
        energy_breakdown_nj: breakdown,
        area_um2,
        runtime_agreement: energy_nj.map(|_| 1.0),
        runtime_max_logit_diff: energy_nj.map(|_| 0),
    }
}

fn unit(
    name: &str,
    role: HwRole,
    area: f64,
    sim: Option<f64>,
    vectorless: Option<f64>,
) -> HwUnitRow {
    HwUnitRow {
        unit: name.to_string(),
        role,
        cells: (area / 10.0) as u64,
        area_um2: area,
        critical_path_ns: 1.234,
        energy_per_op_pj_sim: sim,
        energy_per_op_pj_vectorless: vectorless,
        energy_per_op_pj_same_stream: sim.map(|e| 0.9 * e),
    }
}

/// Six methods (one without energy and area, one with 0 quantization ops), four units.
pub fn input() -> FigureInput {
    FigureInput {
        run_id: "test-run_1".to_string(),
        title: "Test run".to_string(),
        dataset: "fashion-mnist".to_string(),
        metric: Default::default(),
        methods: vec![
            row(
                "DJQ W4A4 unified",
                "djq",
                "cnn",
                (4, 4),
                Some("unified"),
                (90.13, 0.25),
                4_000,
                Some(50.0),
                Some(2_000.0),
            ),
            row(
                "DJQ W4A4 per-op",
                "djq",
                "cnn",
                (4, 4),
                Some("per-op"),
                (88.5, 0.5),
                12_000,
                Some(60.0),
                Some(2_000.0),
            ),
            row(
                "int8_W8A8 & 50% calib",
                "int8",
                "cnn",
                (8, 8),
                None,
                (91.0, 0.1),
                4_000,
                Some(120.0),
                Some(9_000.0),
            ),
            row(
                "BNN W1A1",
                "bnn",
                "bnn-mlp",
                (1, 1),
                None,
                (85.0, 0.75),
                3_000,
                None,
                None,
            ),
            row(
                "TNT W2A8",
                "tnt",
                "lenet5",
                (2, 8),
                None,
                (87.0, 0.0),
                0,
                Some(40.0),
                Some(3_000.0),
            ),
            row(
                "QNN W1A2",
                "qnn",
                "cnn",
                (1, 2),
                None,
                (80.0, 1.0),
                3_000,
                Some(30.0),
                None,
            ),
        ],
        hw_units: vec![
            unit(
                "shift_const",
                HwRole::Requantizer,
                100.0,
                Some(0.05),
                Some(0.07),
            ),
            unit("fixed_point", HwRole::Requantizer, 1500.0, Some(0.45), None),
            unit(
                "threshold",
                HwRole::Requantizer,
                300.0,
                Some(0.1),
                Some(0.12),
            ),
            unit("pe_int8", HwRole::ProcessingElement, 5000.0, None, None),
        ],
        layer_energy: Some(LayerEnergy {
            label: "DJQ W4A4 unified".to_string(),
            layers: vec![
                (
                    "conv1".to_string(),
                    BTreeMap::from([("mac".to_string(), 10.0), ("requant".to_string(), 2.0)]),
                ),
                (
                    "conv2".to_string(),
                    BTreeMap::from([("mac".to_string(), 25.0), ("requant".to_string(), 3.0)]),
                ),
                (
                    "fc".to_string(),
                    BTreeMap::from([("mac".to_string(), 8.0), ("memory".to_string(), 2.0)]),
                ),
            ],
        }),
        claims: Vec::new(),
        provenance: BTreeMap::from([
            ("git_rev".to_string(), "abc123".to_string()),
            ("dataset_sha256".to_string(), "deadbeef".to_string()),
        ]),
        energy_note: Some("Energy per inference: each method's own operand streams.".to_string()),
    }
}
