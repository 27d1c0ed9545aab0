//! `onnx`: a model quantized elsewhere, read from an ONNX file, so a method written in PyTorch
//! (Brevitas, torch.ao, onnxruntime's `quantize_static`) sits in the same tables, figures and
//! hardware flow as the built-in ones.
//!
//! ```yaml
//! - {method: onnx, path: models/brevitas_w4a4.onnx, label: Brevitas W4A4}
//! ```
//!
//! - The file is read, hashed and lowered to the engine's graph when the config is parsed
//!   (`qbench_onnx::import`: QDQ, QOperator, QONNX, or qbench's own export), so a missing file,
//!   a changed file or an unsupported node stops a run before any work. Its sha256 becomes part
//!   of the options (given, it must match), so the cell's identity is the file's content.
//! - `quantize` only checks that the graph fits the dataset (input shape, classes): the model's
//!   quantization was done by the tool that wrote it, on whatever data it chose. It has no float
//!   baseline here ([`MethodReport::own_model`] names the file).
//! - Fake-quant forward: [`IntMirror`], the exact mirror of the imported graph (logit bound 0),
//!   with logits in the graph's integer units (a logit scale of 1).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use qbench_engine::{Op, QGraph, WeightKind, count_ops};
use serde::{Deserialize, Serialize};

use super::config::Validate;
use super::intnet::IntMirror;
use super::{LayerReport, MethodReport, QuantInput, QuantMethod, Quantized};
use crate::error::{MethodError, Result};
use crate::train::TrainObserver;

/// `onnx`'s options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxOptions {
    /// The ONNX file, relative to the spec's (or config file's) folder.
    pub path: PathBuf,
    /// The file's sha256 [default: computed when the config is parsed; given, it must match].
    #[serde(default)]
    pub sha256: Option<String>,
    /// The row's label in tables and figures [default: `ONNX <file stem>`].
    #[serde(default)]
    pub label: Option<String>,
}

impl Validate for OnnxOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        if self.path.as_os_str().is_empty() {
            return Err(("path".into(), "must name an ONNX file".into()));
        }
        if let Some(h) = &self.sha256
            && !qbench_io::is_sha256_hex(h)
        {
            return Err((
                "sha256".into(),
                format!("`{h}` is not a sha256 (64 lowercase hex digits)"),
            ));
        }
        if self.label.as_ref().is_some_and(|l| l.trim().is_empty()) {
            return Err(("label".into(), "must not be empty".into()));
        }
        Ok(())
    }
}

/// The `onnx` method: an imported graph (see the module docs).
pub struct OnnxModel {
    options: OnnxOptions,
    graph: Arc<QGraph>,
}

impl OnnxModel {
    /// Reads, hashes and imports the file `options.path` names (relative to `base`); the
    /// returned method's options carry the file's sha256. Errors name the key.
    pub fn open(
        mut options: OnnxOptions,
        base: &Path,
    ) -> std::result::Result<Self, (String, String)> {
        let path = base.join(&options.path);
        let bytes = std::fs::read(&path)
            .map_err(|e| ("path".to_string(), format!("{}: {e}", path.display())))?;
        let sha256 = qbench_io::sha256_hex(&bytes);
        match &options.sha256 {
            Some(want) if *want != sha256 => {
                return Err((
                    "sha256".into(),
                    format!(
                        "{} has sha256 {sha256}, not {want}: the file changed",
                        path.display()
                    ),
                ));
            }
            _ => options.sha256 = Some(sha256),
        }
        let graph = qbench_onnx::from_bytes(&bytes)
            .and_then(|model| qbench_onnx::import(&model))
            .map_err(|e| ("path".to_string(), format!("{}: {e}", path.display())))?;
        Ok(OnnxModel {
            options,
            graph: Arc::new(graph),
        })
    }

    /// The options with the file's sha256 filled in (what the config records).
    pub fn options(&self) -> &OnnxOptions {
        &self.options
    }

    fn file_name(&self) -> String {
        self.options
            .path
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
    }
}

impl QuantMethod for OnnxModel {
    fn label(&self) -> String {
        self.options.label.clone().unwrap_or_else(|| {
            let stem = self
                .options
                .path
                .file_stem()
                .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
            format!("ONNX {stem}")
        })
    }

    fn quantize(&self, input: &QuantInput, _observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let data = input.data;
        let want = [data.channels, data.height, data.width];
        let have = &self.graph.input_type().shape;
        if have.as_slice() != want {
            return Err(MethodError::Config(format!(
                "method onnx: {} takes images of shape {have:?}; the dataset's are {want:?}",
                self.options.path.display()
            )));
        }
        if data.boxes.is_empty() && self.graph.classes() != data.num_classes {
            return Err(MethodError::Config(format!(
                "method onnx: {} has {} outputs; the dataset has {} classes",
                self.options.path.display(),
                self.graph.classes(),
                data.num_classes
            )));
        }
        let graph = QGraph::clone(&self.graph);
        let report = MethodReport {
            method: "onnx".into(),
            label: self.label(),
            config: serde_json::to_value(&self.options)
                .map_err(|e| MethodError::Config(e.to_string()))?,
            layers: layers(&graph),
            quant_ops: count_ops(&graph).requant_by_kind,
            calibration: "by the tool that wrote the ONNX file".into(),
            finetune_epochs: 0,
            variant: None,
            own_model: Some(self.file_name()),
            notes: vec![format!(
                "imported from {} (sha256 {}); logits in the graph's integer units",
                self.options.path.display(),
                self.options.sha256.as_deref().unwrap_or("?")
            )],
        };
        let fake_quant = Box::new(IntMirror::new(&graph, 1.0)?);
        Ok(Quantized {
            graph,
            fake_quant,
            report,
        })
    }
}

/// One report row per conv or dense layer of `graph`: its engine path (binary for xnor-popcount
/// layers, ternary for ternary weights, int8 otherwise, as the built-in methods report it), weight
/// bits, and the bits of the requantizer that reads it (32 where none does: the logits).
fn layers(graph: &QGraph) -> Vec<LayerReport> {
    let output_bits = |i: usize| {
        graph
            .nodes
            .iter()
            .find(|n| n.inputs.contains(&i))
            .and_then(|n| match &n.op {
                Op::Requant(r) => Some(r.out.storage_bits() as u8),
                _ => None,
            })
            .unwrap_or(32)
    };
    let kind = |k: WeightKind| match k {
        WeightKind::Int { bits } => ("int8", bits),
        WeightKind::Binary => ("int8", 1),
        WeightKind::Ternary => ("ternary", 2),
    };
    graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let (path, weight_bits) = match &n.op {
                Op::Conv2d(c) => kind(c.weight_kind),
                Op::Dense(d) => kind(d.weight_kind),
                Op::BinaryConv2d(_) | Op::BinaryDense(_) => ("binary", 1),
                _ => return None,
            };
            Some(LayerReport {
                name: n.name.clone(),
                path: path.into(),
                weight_bits,
                output_bits: output_bits(i),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::config::MethodConfig;
    use crate::model::{params::Params, zoo};
    use crate::train::Quiet;
    use qbench_datasets::{ImageSet, Normalization};
    use qbench_engine::{Dense, GraphBuilder};

    /// A graph over 1x4x4 images: flatten, one 16 -> 3 dense layer with weights `i % 5 - 2`.
    fn tiny_graph() -> QGraph {
        let mut b = GraphBuilder::new(&[1, 4, 4]);
        let f = b.flatten("f", 0).unwrap();
        let d = b
            .dense(
                "d",
                f,
                Dense {
                    in_features: 16,
                    out_features: 3,
                    weight_kind: WeightKind::Int { bits: 8 },
                    input_zero_point: 0,
                    weights: (0..48).map(|i| (i % 5) as i8 - 2).collect(),
                    bias: Some(vec![1, -2, 3]),
                },
            )
            .unwrap();
        b.finish(d).unwrap()
    }

    /// Writes the tiny graph as `dir/models/tiny.onnx`.
    fn write_model(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir.join("models")).unwrap();
        let path = dir.join("models/tiny.onnx");
        let provenance = qbench_onnx::Provenance { source: None };
        qbench_onnx::export_file(&tiny_graph(), "0", &provenance, &path).unwrap();
        path
    }

    fn parse(yaml: &str, base: &Path) -> crate::error::Result<MethodConfig> {
        MethodConfig::from_value_in(serde_yaml_ng::from_str(yaml).unwrap(), "spec.yaml", base)
    }

    #[test]
    fn a_relative_path_is_read_from_the_base_and_its_hash_joins_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_model(dir.path());
        let config = parse("{method: onnx, path: models/tiny.onnx}", dir.path()).unwrap();
        let sha = qbench_io::sha256_file(&file).unwrap();
        assert_eq!(config.options()["sha256"], sha.as_str());
        assert_eq!(config.options()["path"], "models/tiny.onnx");
        assert_eq!(config.method().label(), "ONNX tiny");
        // The recorded options parse again to the same config.
        let again = parse(
            &format!("{{method: onnx, path: models/tiny.onnx, sha256: {sha}}}"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(again, config);
        let named = parse(
            "{method: onnx, path: models/tiny.onnx, label: Mine}",
            dir.path(),
        )
        .unwrap();
        assert_eq!(named.method().label(), "Mine");
    }

    #[test]
    fn a_missing_file_a_changed_file_and_a_bad_model_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = |yaml: &str| parse(yaml, dir.path()).unwrap_err().to_string();
        let e = err("{method: onnx, path: models/none.onnx}");
        assert!(
            e.contains("spec.yaml (method onnx): key `path`") && e.contains("none.onnx"),
            "{e}"
        );
        write_model(dir.path());
        let e = err(&format!(
            "{{method: onnx, path: models/tiny.onnx, sha256: {}}}",
            "0".repeat(64)
        ));
        assert!(
            e.contains("key `sha256`") && e.contains("the file changed"),
            "{e}"
        );
        std::fs::write(dir.path().join("models/junk.onnx"), b"\x08\x01\x12").unwrap();
        let e = err("{method: onnx, path: models/junk.onnx}");
        assert!(e.contains("key `path`") && e.contains("junk.onnx"), "{e}");
        let e = err("{method: onnx, path: models/tiny.onnx, sha256: ABC}");
        assert!(e.contains("key `sha256`"), "{e}");
    }

    #[test]
    fn quantize_gives_the_imported_graph_and_checks_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path());
        let config = parse("{method: onnx, path: models/tiny.onnx}", dir.path()).unwrap();
        let set = |channels, classes| ImageSet {
            images: (0..4 * 16 * channels)
                .map(|i| (i * 37 % 256) as u8)
                .collect(),
            labels: vec![0; 4],
            channels,
            height: 4,
            width: 4,
            num_classes: classes,
            normalization: Normalization::identity(channels),
            boxes: Vec::new(),
        };
        let run = |data: &ImageSet| {
            let arch = zoo::build("mlp", [data.channels, 4, 4], data.num_classes).unwrap();
            let params = Params::init(&arch, 0).unwrap();
            let idx = [0, 1];
            config.method().quantize(
                &QuantInput {
                    arch: &arch,
                    params: &params,
                    data,
                    train_idx: &idx,
                    calib_idx: &idx,
                    val_idx: &idx,
                    seed: 0,
                },
                &mut Quiet,
            )
        };
        let q = run(&set(1, 3)).unwrap();
        assert_eq!(q.graph, tiny_graph());
        assert_eq!(q.report.own_model.as_deref(), Some("tiny.onnx"));
        assert_eq!(q.report.layers.len(), 1);
        assert_eq!(
            (
                q.report.layers[0].weight_bits,
                q.report.layers[0].output_bits
            ),
            (8, 32)
        );
        let e = run(&set(3, 3)).err().unwrap().to_string();
        assert!(e.contains("[1, 4, 4]") && e.contains("[3, 4, 4]"), "{e}");
        let e = run(&set(1, 10)).err().unwrap().to_string();
        assert!(e.contains("3 outputs") && e.contains("10 classes"), "{e}");
    }
}
