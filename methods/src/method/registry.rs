//! Method names to implementations: the one place a new method is registered.

use super::config::{MethodConfig, RawMethodConfig};
use crate::error::{MethodError, Result};

/// The strong baseline's config (TFLite's int8), the default wherever one method stands for all
/// (e.g. `qbench bench resnet18`).
pub const BASELINE_CONFIG: &str = "{method: int8}";

/// Every registered method name with a one-line description (for `--help` and errors).
pub const METHODS: &[(&str, &str)] = &[
    (
        "linear",
        "per-tensor symmetric linear k-bit post-training quantization (worked example)",
    ),
    (
        "int8",
        "TFLite/gemmlowp integer-only int8 (Jacob et al. 2018): u8 activations, i8 weights, fixed-point requantization",
    ),
    (
        "djq",
        "DJQ dataflow-based joint quantization: power-of-two scales, unified conv+BN+ReLU modules with one shift requantizer",
    ),
    (
        "tnt",
        "TNT non-retraining ternary weights (Zhang et al. 2019): cosine-similarity ternarization, u8 activations, fixed-point requantization",
    ),
    (
        "bnn",
        "BNN binarized network (Courbariaux, Hubara et al. 2016): +-1 weights and activations, xnor-popcount layers, BN+sign as integer thresholds",
    ),
    (
        "qnn",
        "QNN quantized network (Hubara et al. 2016): k-bit weights and activations trained with STE, BN+quantization as multi-thresholds",
    ),
    (
        "onnx",
        "a model quantized elsewhere (PyTorch, Brevitas, onnxruntime), imported from the ONNX file `path` (QDQ, QOperator or QONNX)",
    ),
];

/// Parses the config `raw` names: its options typed as that method's options struct, validated,
/// and the method built from them, once (see [`MethodConfig`]). Errors name `raw.source`, the
/// method and the key.
pub fn parse(raw: &RawMethodConfig) -> Result<MethodConfig> {
    use super::onnx::{OnnxModel, OnnxOptions};
    use super::{bnn::Bnn, djq::Djq, int8::Int8, linear::Linear, qnn::Qnn, tnt::Tnt};
    match raw.method.as_str() {
        "linear" => MethodConfig::typed(raw, Linear::new),
        "int8" => MethodConfig::typed(raw, Int8::new),
        "djq" => MethodConfig::typed(raw, |o| Ok(Djq::new(o))),
        "tnt" => MethodConfig::typed(raw, Tnt::new),
        "bnn" => MethodConfig::typed(raw, Bnn::new),
        "qnn" => MethodConfig::typed(raw, Qnn::new),
        "onnx" => {
            // The file is read, hashed and imported now; its hash joins the recorded options.
            let model = OnnxModel::open(raw.typed::<OnnxOptions>()?, &raw.base).map_err(
                |(key, message)| {
                    MethodError::Config(format!(
                        "{} (method onnx): key `{key}`: {message}",
                        raw.source
                    ))
                },
            )?;
            MethodConfig::built(raw, model.options().clone(), |_| Ok(model))
        }
        other => {
            let known: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
            Err(MethodError::Config(format!(
                "{}: unknown method `{other}`; known methods: {}",
                raw.source,
                known.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::linear::LinearOptions;

    /// Every registered name parses with its defaults alone (and its required keys), and its canonical options are a
    /// config of their own that parses back to the same value (what a record stores can be read
    /// as a config again).
    #[test]
    fn every_method_parses_with_defaults_and_its_options_round_trip() {
        // `onnx` has one required key, the file it imports.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.onnx");
        let graph = {
            let mut b = qbench_engine::GraphBuilder::new(&[2]);
            let d = b
                .dense(
                    "d",
                    0,
                    qbench_engine::Dense {
                        in_features: 2,
                        out_features: 2,
                        weight_kind: qbench_engine::WeightKind::Int { bits: 8 },
                        input_zero_point: 0,
                        weights: vec![1, 2, 3, 4],
                        bias: None,
                    },
                )
                .unwrap();
            b.finish(d).unwrap()
        };
        let provenance = qbench_onnx::Provenance { source: None };
        qbench_onnx::export_file(&graph, "0", &provenance, &file).unwrap();
        for (name, _) in METHODS {
            let required = match *name {
                "onnx" => format!("path: {}\n", file.display()),
                _ => String::new(),
            };
            let config = MethodConfig::from_yaml(&format!("method: {name}\n{required}"), "t.yaml")
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(config.name(), *name);
            let serde_json::Value::Object(options) = config.options() else {
                panic!("{name}: options {} are not a mapping", config.options());
            };
            assert!(!options.is_empty(), "{name}: no options recorded");
            let mut value = serde_yaml_ng::to_value(config.options()).unwrap();
            value
                .as_mapping_mut()
                .unwrap()
                .insert("method".into(), (*name).into());
            let again = MethodConfig::from_value(value, "again").unwrap();
            assert_eq!(again, config, "{name}");
            assert_eq!(again.method().label(), config.method().label(), "{name}");
        }
    }

    #[test]
    fn a_default_written_out_is_the_same_config_and_a_changed_option_is_not() {
        let default_bits = LinearOptions::default().bits;
        let implicit = MethodConfig::from_yaml("method: linear\n", "a.yaml").unwrap();
        let explicit =
            MethodConfig::from_yaml(&format!("method: linear\nbits: {default_bits}\n"), "b.yaml")
                .unwrap();
        assert_eq!(implicit, explicit);
        assert_eq!(implicit.options()["bits"], default_bits);
        let other = if default_bits == 4 { 8 } else { 4 };
        let changed =
            MethodConfig::from_yaml(&format!("method: linear\nbits: {other}\n"), "c.yaml").unwrap();
        assert_ne!(implicit, changed);
        assert_eq!(changed.options()["bits"], other);
        assert_eq!(changed.method().label(), format!("linear W{other}A{other}"));
    }

    #[test]
    fn the_baseline_config_is_a_registered_method() {
        let config = MethodConfig::from_yaml(BASELINE_CONFIG, "baseline").unwrap();
        assert!(METHODS.iter().any(|(name, _)| *name == config.name()));
    }

    #[test]
    fn the_shipped_configs_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                MethodConfig::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n > 0, "no configs in {}", dir.display());
    }

    #[test]
    fn errors_name_the_source_the_method_and_the_key() {
        let e = MethodConfig::from_yaml("method: linear\nbits: eight\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml") && e.contains("bits"), "{e}");
        let e = MethodConfig::from_yaml("method: linear\nbits: 9\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml (method linear): key `bits`"), "{e}");
        let e = MethodConfig::from_yaml("method: nope\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.yaml") && e.contains("unknown method `nope`"),
            "{e}"
        );
    }
}
