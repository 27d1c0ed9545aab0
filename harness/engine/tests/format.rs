//! The `qbench-graph` file: round trips, hashes, atomic save, and rejection of malformed, truncated or
//! inconsistent files that these tests write and corrupt themselves.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{random_case, small_cnn};
use qbench_engine::format::METADATA_KEY;
use qbench_engine::*;
use qbench_io::sha256_hex;
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::{Value, json};

type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

/// Decodes a graph file, lets `edit` change the header JSON and the tensors, and re-encodes it.
fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut Value, &mut Tensors)) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut header: Value =
        serde_json::from_str(&meta.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
    let mut tensors: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut header, &mut tensors);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = HashMap::from([(METADATA_KEY.to_string(), header.to_string())]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn err(bytes: &[u8]) -> String {
    QGraph::from_bytes(bytes)
        .expect_err("a corrupted file must be rejected")
        .to_string()
}

fn node_index(header: &Value, name: &str) -> usize {
    header["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|n| n["name"] == name)
        .unwrap()
}

/// A graph with every array kind: conv, dense, binary layers, all four requantizers.
fn rich_graph() -> QGraph {
    let mut b = GraphBuilder::new(&[2, 4, 4]);
    let c = b
        .conv2d(
            "conv",
            0,
            Conv2d {
                in_channels: 2,
                out_channels: 3,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                pad: 1,
                groups: 1,
                weight_kind: WeightKind::Int { bits: 4 },
                input_zero_point: 3,
                weights: (0..54).map(|i| (i % 16 - 8) as i8).collect(),
                bias: Some(vec![1, -2, 3]),
            },
        )
        .unwrap();
    let fp = b
        .requant(
            "fp",
            c,
            DType::Signed { bits: 8 },
            Requant::FixedPoint {
                multiplier: vec![1 << 30, 3 << 29, 1 << 30],
                shift: vec![-4, -5, -6],
                zero_point: 0,
                min: -128,
                max: 127,
            },
        )
        .unwrap();
    let c2 = b
        .conv2d(
            "conv2",
            fp,
            Conv2d {
                in_channels: 3,
                out_channels: 3,
                kernel_h: 1,
                kernel_w: 1,
                stride: 1,
                pad: 0,
                groups: 3,
                weight_kind: WeightKind::Ternary,
                input_zero_point: 0,
                weights: vec![1, 0, -1],
                bias: None,
            },
        )
        .unwrap();
    let mt = b
        .requant(
            "mt",
            c2,
            DType::Unsigned { bits: 2 },
            Requant::MultiThreshold {
                thresholds: vec![-5, 0, 5, -1, 1, 2, 0, 0, 0],
                flip: vec![false, true, false],
            },
        )
        .unwrap();
    let sh = b
        .requant(
            "sh",
            c2,
            DType::Unsigned { bits: 8 },
            Requant::Shift {
                shift: vec![2],
                zero_point: 0,
                min: 0,
                max: 255,
            },
        )
        .unwrap();
    let add = b
        .add(
            "add",
            mt,
            sh,
            Add {
                zero_point_a: 0,
                zero_point_b: 0,
                align: AddAlign::PowerOfTwo {
                    shift_a: 3,
                    shift_b: 0,
                },
            },
        )
        .unwrap();
    let t = b
        .requant(
            "sign",
            add,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![4, 5, 6],
                flip: vec![false, true, false],
            },
        )
        .unwrap();
    let bc = b
        .binary_conv2d(
            "bconv",
            t,
            BinaryConv2d {
                in_channels: 3,
                out_channels: 2,
                kernel_h: 2,
                kernel_w: 2,
                stride: 2,
                pad: 0,
                groups: 1,
                weights: (0..24).map(|i| if i % 3 == 0 { 1 } else { -1 }).collect(),
                bias: Some(vec![0, 7]),
            },
        )
        .unwrap();
    let t2 = b
        .requant(
            "sign2",
            bc,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![0],
                flip: vec![false],
            },
        )
        .unwrap();
    let f = b.flatten("flat", t2).unwrap();
    let d = b
        .binary_dense(
            "fc",
            f,
            BinaryDense {
                in_features: 8,
                out_features: 3,
                weights: (0..24).map(|i| if i % 2 == 0 { 1 } else { -1 }).collect(),
                bias: None,
            },
        )
        .unwrap();
    b.finish(d).unwrap()
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let g = rich_graph();
    let bytes = g.to_bytes().unwrap();
    assert_eq!(QGraph::from_bytes(&bytes).unwrap(), g);
    assert_eq!(g.to_bytes().unwrap(), bytes, "same graph, same bytes");
    for seed in 0..100 {
        let case = random_case(seed);
        let back = QGraph::from_bytes(&case.graph.to_bytes().unwrap()).unwrap();
        assert_eq!(back, case.graph, "seed {seed}");
    }
}

#[test]
fn save_is_atomic_and_returns_the_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.qgraph");
    let g = small_cnn(3, 4, 8);
    let sha = g.save(&path).unwrap();
    assert_eq!(sha, sha256_hex(&std::fs::read(&path).unwrap()));
    assert_eq!(sha.len(), 64);
    let (back, sha2) = QGraph::load(&path).unwrap();
    assert_eq!(back, g);
    assert_eq!(sha, sha2);
    // Overwrite in place; no temporary file is left behind.
    let sha3 = rich_graph().save(&path).unwrap();
    assert_ne!(sha, sha3);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert!(matches!(
        QGraph::load(dir.path().join("missing")),
        Err(EngineError::Io(_))
    ));
}

#[test]
fn truncated_and_junk_files_are_rejected() {
    let bytes = rich_graph().to_bytes().unwrap();
    for len in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let e = err(&bytes[..len]);
        assert!(e.contains("graph file"), "{e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    err(&longer);
    err(b"definitely not a safetensors file");
}

#[test]
fn unknown_format_or_version_is_rejected() {
    let bytes = rich_graph().to_bytes().unwrap();
    let e = err(&rewrite(&bytes, |h, _| h["format"] = json!("onnx")));
    assert!(e.contains("unknown format"), "{e}");
    let e = err(&rewrite(&bytes, |h, _| h["version"] = json!(2)));
    assert!(e.contains("unsupported version"), "{e}");
    let e = err(&rewrite(&bytes, |h, _| {
        h.as_object_mut().unwrap().remove("version");
    }));
    assert!(e.contains("unsupported version"), "{e}");
    let e = err(&rewrite(&bytes, |h, _| {
        h["nodes"][1]["op"]["op"] = json!("softmax")
    }));
    assert!(
        e.starts_with("node 1 (conv): op: unknown variant `softmax`"),
        "{e}"
    );
    // A plain safetensors file without our header.
    let plain = safetensors::serialize(Vec::<(String, TensorView<'_>)>::new(), None).unwrap();
    assert!(err(&plain).contains("header"));
}

#[test]
fn missing_extra_and_duplicate_tensors_are_rejected() {
    let bytes = rich_graph().to_bytes().unwrap();
    let e = err(&rewrite(&bytes, |_, t| {
        t.remove("conv/weight");
    }));
    assert!(
        e.contains("conv") && e.contains("weight") && e.contains("missing"),
        "{e}"
    );
    let e = err(&rewrite(&bytes, |_, t| {
        t.insert("stray/weight".into(), (Dtype::I8, vec![1], vec![0]));
    }));
    assert!(
        e.contains("stray/weight") && e.contains("not declared"),
        "{e}"
    );
    // Bias present in the file but not declared by the node.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv");
        h["nodes"][i]["tensors"] = json!(["weight"]);
    }));
    assert!(e.contains("conv/bias"), "{e}");
    // A required tensor not declared.
    let e = err(&rewrite(&bytes, |h, t| {
        let i = node_index(h, "fp");
        h["nodes"][i]["tensors"] = json!(["shift"]);
        t.remove("fp/multiplier");
    }));
    assert!(e.contains("(fp)") && e.contains("multiplier"), "{e}");
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv");
        h["nodes"][i]["tensors"] = json!(["weight", "weight", "bias"]);
    }));
    assert!(e.contains("declared twice"), "{e}");
    let e = err(&rewrite(&bytes, |h, t| {
        let i = node_index(h, "conv");
        h["nodes"][i]["tensors"] = json!(["weight", "bias", "gamma"]);
        t.insert("conv/gamma".into(), (Dtype::I32, vec![3], vec![0; 12]));
    }));
    assert!(
        e.contains("gamma") && e.contains("unknown tensor slot"),
        "{e}"
    );
}

#[test]
fn wrong_dtype_or_shape_is_rejected_naming_node_and_field() {
    let bytes = rich_graph().to_bytes().unwrap();
    let e = err(&rewrite(&bytes, |_, t| {
        let w = t.get_mut("conv/weight").unwrap();
        w.0 = Dtype::U8;
    }));
    assert!(e.contains("node 1 (conv): weight: dtype U8"), "{e}");
    let e = err(&rewrite(&bytes, |_, t| {
        let w = t.get_mut("conv/weight").unwrap();
        w.1 = vec![3, 2, 9, 1];
    }));
    assert!(e.contains("(conv): weight: shape [3, 2, 9, 1]"), "{e}");
    let e = err(&rewrite(&bytes, |_, t| {
        let b = t.get_mut("conv/bias").unwrap();
        *b = (Dtype::I32, vec![2], vec![0; 8]);
    }));
    assert!(e.contains("(conv): bias"), "{e}");
    // Per-channel parameters of the wrong count.
    let e = err(&rewrite(&bytes, |_, t| {
        let m = t.get_mut("fp/multiplier").unwrap();
        *m = (Dtype::I32, vec![2], vec![0; 8]);
    }));
    assert!(e.contains("(fp): multiplier"), "{e}");
    // Declared output shape inconsistent with the inputs.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv");
        h["nodes"][i]["output"]["shape"] = json!([3, 4, 5]);
    }));
    assert!(e.contains("(conv): output"), "{e}");
    // A consumer whose channel count disagrees with its producer.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv2");
        h["nodes"][i]["inputs"] = json!([0]);
    }));
    assert!(e.contains("(conv2)"), "{e}");
    // Dtype incompatibility: a binary layer fed by a narrow tensor.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "bconv");
        let j = node_index(h, "sh");
        h["nodes"][i]["inputs"] = json!([j]);
    }));
    assert!(e.contains("(bconv): input"), "{e}");
    // Topological order.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv");
        h["nodes"][i]["inputs"] = json!([5]);
    }));
    assert!(e.contains("(conv): inputs"), "{e}");
}

#[test]
fn out_of_range_values_are_rejected() {
    let bytes = rich_graph().to_bytes().unwrap();
    // Weight outside its declared 4 bits.
    let e = err(&rewrite(&bytes, |_, t| {
        t.get_mut("conv/weight").unwrap().2[5] = 100;
    }));
    assert!(e.contains("(conv): weights: value 100 at index 5"), "{e}");
    // Ternary weight of 2, binary weight of 0.
    let e = err(&rewrite(&bytes, |_, t| {
        t.get_mut("conv2/weight").unwrap().2[0] = 2;
    }));
    assert!(e.contains("(conv2): weights"), "{e}");
    let e = err(&rewrite(&bytes, |_, t| {
        t.get_mut("bconv/weight").unwrap().2[0] = 0;
    }));
    assert!(e.contains("(bconv): weights"), "{e}");
    // Bit widths out of range.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv");
        h["nodes"][i]["op"]["weight_kind"]["bits"] = json!(9);
    }));
    assert!(e.contains("(conv): weight_kind"), "{e}");
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "sh");
        h["nodes"][i]["op"]["out"]["bits"] = json!(0);
        h["nodes"][i]["output"]["dtype"]["bits"] = json!(0);
    }));
    assert!(e.contains("(sh): out"), "{e}");
    // Unsorted thresholds.
    let e = err(&rewrite(&bytes, |_, t| {
        let th = &mut t.get_mut("mt/thresholds").unwrap().2;
        th[0..4].copy_from_slice(&9i32.to_le_bytes());
    }));
    assert!(e.contains("(mt): thresholds: set 0 not sorted"), "{e}");
    // Shift out of range, flag neither 0 nor 1.
    let e = err(&rewrite(&bytes, |_, t| {
        t.get_mut("sh/shift").unwrap().2[0] = 40;
    }));
    assert!(e.contains("(sh): shift: shift 40 outside 0..=31"), "{e}");
    let e = err(&rewrite(&bytes, |_, t| {
        t.get_mut("fp/shift").unwrap().2[0..4].copy_from_slice(&31i32.to_le_bytes());
    }));
    assert!(e.contains("(fp): shift"), "{e}");
    let e = err(&rewrite(&bytes, |_, t| {
        t.get_mut("sign/flip").unwrap().2[1] = 2;
    }));
    assert!(e.contains("(sign): flip: flag 2"), "{e}");
    // Clamp bounds outside the output dtype; zero point outside the input dtype.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "fp");
        h["nodes"][i]["op"]["requant"]["max"] = json!(300);
    }));
    assert!(e.contains("(fp): max"), "{e}");
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv");
        h["nodes"][i]["op"]["input_zero_point"] = json!(-1);
    }));
    assert!(e.contains("(conv): input_zero_point"), "{e}");
    // Structure: duplicate names, no output node.
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv2");
        h["nodes"][i]["name"] = json!("conv");
    }));
    assert!(e.contains("name"), "{e}");
}

#[test]
fn builder_reports_the_node_at_fault() {
    let mut b = GraphBuilder::new(&[1, 4, 4]);
    let e = b
        .conv2d(
            "c",
            0,
            Conv2d {
                in_channels: 2,
                out_channels: 1,
                kernel_h: 1,
                kernel_w: 1,
                stride: 1,
                pad: 0,
                groups: 1,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: 0,
                weights: vec![1, 1],
                bias: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node 1 (c): in_channels: 2 but the input has 1 channels"
    );
    assert!(b.flatten("input", 0).is_err(), "duplicate name");
    assert!(b.flatten("a/b", 0).is_ok(), "builder allows it ...");
    let f = b.ty(1).clone();
    assert_eq!(f.shape, vec![16]);
    assert!(b.finish(1).is_err(), "... but validation reserves '/'");
}

/// Every numeric field of the header replaced by extreme values: always an error or a valid graph,
/// never a panic.
#[test]
fn extreme_header_numbers_never_panic() {
    fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Number(_) => out.push(at),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(i.to_string());
                    paths(x, p, out);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    let mut p = at.clone();
                    p.push(k.clone());
                    paths(x, p, out);
                }
            }
            _ => {}
        }
    }
    fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
        path.iter().fold(v, |v, k| match v {
            Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
            other => &mut other[k.as_str()],
        })
    }
    let bytes = rich_graph().to_bytes().unwrap();
    let st = SafeTensors::read_metadata(&bytes).unwrap().1;
    let header: Value =
        serde_json::from_str(&st.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
    let mut all = Vec::new();
    paths(&header["nodes"], vec!["nodes".into()], &mut all);
    assert!(all.len() > 50);
    let extremes = [
        json!(0),
        json!(1u64 << 40),
        json!(u64::MAX),
        json!(-1),
        json!(i64::MIN),
    ];
    for path in &all {
        for x in &extremes {
            let corrupted = rewrite(&bytes, |h, _| *at(h, path) = x.clone());
            let result = std::panic::catch_unwind(|| QGraph::from_bytes(&corrupted).map(|_| ()));
            assert!(result.is_ok(), "panic with {path:?} = {x}");
        }
    }
}

#[test]
fn header_matches_the_documented_layout() {
    let bytes = common::small_cnn(1, 2, 2).to_bytes().unwrap();
    let st = SafeTensors::read_metadata(&bytes).unwrap().1;
    let h: Value = serde_json::from_str(&st.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
    assert_eq!(h["format"], "qbench-graph");
    assert_eq!(h["version"], 1);
    let n = &h["nodes"];
    assert_eq!(
        n[0],
        json!({"name": "input", "inputs": [], "op": {"op": "input"},
               "output": {"dtype": {"kind": "unsigned", "bits": 8}, "shape": [1, 28, 28]},
               "tensors": []})
    );
    assert_eq!(n[1]["op"]["op"], "conv2d");
    assert_eq!(n[1]["op"]["weight_kind"], json!({"kind": "int", "bits": 8}));
    assert_eq!(n[1]["output"]["dtype"], json!({"kind": "i32"}));
    assert_eq!(n[1]["tensors"], json!(["weight", "bias"]));
    assert_eq!(
        n[2]["op"],
        json!({"op": "requant", "out": {"kind": "unsigned", "bits": 8},
               "requant": {"kind": "shift", "zero_point": 0, "min": 0, "max": 255}})
    );
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let w = st.tensor("conv1/weight").unwrap();
    assert_eq!((w.dtype(), w.shape()), (Dtype::I8, &[2usize, 1, 3, 3][..]));
    assert_eq!(st.tensor("rq1/shift").unwrap().dtype(), Dtype::U8);
}

/// The ops `rich_graph` lacks: relu, average and global average pools, a fixed-point add, a
/// dense layer over a vector and a grouped binary convolution.
fn misc_graph() -> QGraph {
    let mut b = GraphBuilder::new(&[2, 4, 4]);
    let r = b.relu("relu", 0, 3).unwrap();
    let p = b
        .avg_pool(
            "avg",
            r,
            Pool {
                kernel_h: 2,
                kernel_w: 2,
                stride: 2,
                pad: 0,
            },
        )
        .unwrap();
    let a = b
        .add(
            "add",
            p,
            p,
            Add {
                zero_point_a: 1,
                zero_point_b: 2,
                align: AddAlign::FixedPoint {
                    left_shift: 20,
                    multiplier_a: 1 << 30,
                    shift_a: -1,
                    multiplier_b: 3 << 29,
                    shift_b: 0,
                },
            },
        )
        .unwrap();
    let s = b
        .requant(
            "sign",
            a,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![0],
                flip: vec![false],
            },
        )
        .unwrap();
    let bc = b
        .binary_conv2d(
            "dw",
            s,
            BinaryConv2d {
                in_channels: 2,
                out_channels: 2,
                kernel_h: 1,
                kernel_w: 1,
                stride: 1,
                pad: 0,
                groups: 2,
                weights: vec![1, -1],
                bias: None,
            },
        )
        .unwrap();
    let q = b
        .requant(
            "q",
            bc,
            DType::Signed { bits: 4 },
            Requant::Shift {
                shift: vec![0],
                zero_point: 0,
                min: -8,
                max: 7,
            },
        )
        .unwrap();
    let g = b.global_avg_pool("gap", q).unwrap();
    let d = b
        .dense(
            "fc",
            g,
            Dense {
                in_features: 2,
                out_features: 3,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: -1,
                weights: vec![1, 2, 3, 4, 5, 6],
                bias: Some(vec![0, 1, 2]),
            },
        )
        .unwrap();
    b.finish(d).unwrap()
}

/// Paths (keys and array indices) of every JSON object inside `v`, `v` itself included.
fn object_paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(o) => {
            out.push(at.clone());
            for (k, x) in o {
                let mut p = at.clone();
                p.push(k.clone());
                object_paths(x, p, &mut *out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                object_paths(x, p, &mut *out);
            }
        }
        _ => {}
    }
}

fn value_at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

/// An unknown field in any object of any node (the node itself, its op, requantizer, add
/// alignment, weight kind, output type or dtype) is rejected, and the error names the node
/// (index and name), the node's field and the unknown key. Before issue 15 a `"dilation": 2` on a
/// conv2d, or any extra key inside an op, loaded and ran.
#[test]
fn unknown_fields_anywhere_in_a_node_are_rejected_naming_the_node() {
    for graph in [rich_graph(), misc_graph(), common::small_cnn(1, 2, 2)] {
        let bytes = graph.to_bytes().unwrap();
        let st = SafeTensors::read_metadata(&bytes).unwrap().1;
        let header: Value =
            serde_json::from_str(&st.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
        let mut objects = Vec::new();
        object_paths(&header["nodes"], vec!["nodes".into()], &mut objects);
        assert!(objects.len() > 3 * graph.nodes.len(), "{objects:?}");
        for path in &objects {
            let index: usize = path[1].parse().unwrap();
            let name = &graph.nodes[index].name;
            let corrupted = rewrite(&bytes, |h, _| {
                value_at(h, path)
                    .as_object_mut()
                    .unwrap()
                    .insert("dilation".into(), json!(2));
            });
            let e = match QGraph::from_bytes(&corrupted) {
                Ok(_) => panic!("{path:?}: an unknown field was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(
                e.starts_with(&format!("node {index} ({name}): ")) && e.contains("dilation"),
                "{path:?}: {e}"
            );
            // The node's field that holds the unknown key is named (`op` for everything inside it).
            if let Some(field) = path.get(2) {
                assert!(
                    e.starts_with(&format!("node {index} ({name}): {field}: ")),
                    "{path:?}: {e}"
                );
            }
        }
    }
    // The exact message for the case.
    let bytes = rich_graph().to_bytes().unwrap();
    let e = err(&rewrite(&bytes, |h, _| {
        h["nodes"][1]["op"]["dilation"] = json!(2)
    }));
    assert!(
        e.starts_with("node 1 (conv): op: unknown field `dilation`"),
        "{e}"
    );
    // Top level of the header.
    let e = err(&rewrite(&bytes, |h, _| h["comment"] = json!("x")));
    assert!(e.contains("unknown field `comment`"), "{e}");
}

/// Values the format does not define, each rejected at load time with the node and field named:
/// a negative or unnormalised Q31 multiplier (issue 15: a negative one loaded and gave 10%
/// accuracy), in a requantizer or a fixed-point add; a convolution padded by its kernel size or
/// more. Zero stays a valid multiplier (TFLite's `QuantizeMultiplier(0)`).
#[test]
fn undefined_multipliers_and_paddings_are_rejected_naming_node_and_field() {
    let bytes = rich_graph().to_bytes().unwrap();
    let set_multiplier = |m: i32| {
        rewrite(&bytes, |_, t| {
            t.get_mut("fp/multiplier").unwrap().2[4..8].copy_from_slice(&m.to_le_bytes());
        })
    };
    for m in [-(1 << 30), -1, i32::MIN, 1, (1 << 30) - 1] {
        let e = err(&set_multiplier(m));
        assert!(
            e.starts_with(&format!(
                "node 2 (fp): multiplier: {m} is not a Q31 multiplier"
            )),
            "{e}"
        );
    }
    for m in [0, 1 << 30, i32::MAX] {
        QGraph::from_bytes(&set_multiplier(m)).unwrap();
    }
    let bytes = misc_graph().to_bytes().unwrap();
    for (field, m) in [("multiplier_a", -(1 << 30)), ("multiplier_b", 12345)] {
        let e = err(&rewrite(&bytes, |h, _| {
            let i = node_index(h, "add");
            h["nodes"][i]["op"]["align"][field] = json!(m);
        }));
        assert!(
            e.starts_with(&format!(
                "node 3 (add): {field}: {m} is not a Q31 multiplier"
            )),
            "{e}"
        );
    }
    // Padding: 1x1 kernels with pad 1 (the declared output shape made consistent, so only the
    // padding rule can reject it).
    let bytes = rich_graph().to_bytes().unwrap();
    let e = err(&rewrite(&bytes, |h, _| {
        let i = node_index(h, "conv2");
        h["nodes"][i]["op"]["pad"] = json!(1);
        h["nodes"][i]["output"]["shape"] = json!([3, 6, 6]);
    }));
    assert!(
        e.starts_with("node 3 (conv2): pad: 1 must be below the kernel size 1x1"),
        "{e}"
    );
    let mut b = GraphBuilder::new(&[2, 4, 4]);
    let s = b
        .requant(
            "sign",
            0,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![9],
                flip: vec![false],
            },
        )
        .unwrap();
    let e = b
        .binary_conv2d(
            "bc",
            s,
            BinaryConv2d {
                in_channels: 2,
                out_channels: 2,
                kernel_h: 3,
                kernel_w: 2,
                stride: 1,
                pad: 2,
                groups: 2,
                weights: vec![1; 12],
                bias: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node 2 (bc): pad: 2 must be below the kernel size 3x2"
    );
}

/// Shapes the engine could not allocate are rejected before anything is allocated: more than
/// 2^28 elements in one image's tensor, in one layer's weights, or in a padded input (a huge
/// padding with a huge stride gives a small output from a huge padded input).
#[test]
fn oversized_shapes_are_rejected() {
    let e = GraphBuilder::new(&[(1 << 28) + 1])
        .finish(0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[268435457] has too many elements"), "{e}");
    // Depthwise 128x128 kernels (2^26 weights, within the limit) over a 4096 x 3 x 3 input padded
    // by 127 with stride 255: one output pixel, but a 4096 x 257 x 257 padded input.
    let mut b = GraphBuilder::new(&[1 << 12, 3, 3]);
    let e = b
        .conv2d(
            "c",
            0,
            Conv2d {
                in_channels: 1 << 12,
                out_channels: 1 << 12,
                kernel_h: 128,
                kernel_w: 128,
                stride: 255,
                pad: 127,
                groups: 1 << 12,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: 0,
                weights: vec![],
                bias: None,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("(c): pad: the padded input"), "{e}");
}
