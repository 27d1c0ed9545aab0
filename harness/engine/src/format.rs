//! The `qbench-graph` file format (version 1): one safetensors file.
//!
//! - The safetensors `__metadata__` holds one key, `qbench`, whose value is a JSON document
//!   `{"format": "qbench-graph", "version": 1, "nodes": [...]}`. Each node is
//!   `{"name", "inputs": [ids], "op": {"op": "<kind>", ...scalar parameters}, "output": {"dtype":
//!   {...}, "shape": [...]}, "tensors": [slot names]}`, in topological order; the serde form of
//!   [`crate::node::Node`] plus the list of its tensors.
//! - Array parameters are tensors named `<node name>/<slot>` (node names may not contain `/`):
//!
//! | op | slot | dtype | shape |
//! | --- | --- | --- | --- |
//! | conv2d | `weight` | I8 | `[O, C/groups, kh, kw]` |
//! | dense | `weight` | I8 | `[O, F]` |
//! | binary_conv2d | `weight` (+-1) | I8 | `[O, C/groups, kh, kw]` |
//! | binary_dense | `weight` (+-1) | I8 | `[O, F]` |
//! | the four above | `bias` (optional) | I32 | `[O]` |
//! | requant shift | `shift` | U8 | `[sets]` |
//! | requant fixed_point | `multiplier`, `shift` | I32 | `[sets]` |
//! | requant threshold | `thresholds` I32, `flip` U8 (0/1) | | `[sets]` |
//! | requant multi_threshold | `thresholds` I32 `[sets, 2^k-1]`, `flip` U8 `[sets]` | | |
//!
//! `sets` is 1 (per tensor) or the channel count. Loading checks everything [`QGraph::validate`]
//! checks, plus: the format name and version, the header JSON (no unknown field at any depth; an
//! error names the node and its field), that every declared tensor exists with
//! the right dtype and shape, that no undeclared tensor exists, and that flags are 0 or 1.
//! Saving is deterministic (same graph, same bytes, same sha256).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use qbench_io::{IoError, sha256_hex, write_atomic};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, View};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::graph::QGraph;
use crate::node::{Node, NodeId, Op};
use crate::requant::Requant;
use crate::types::TensorType;

/// The format name in the header.
pub const FORMAT_NAME: &str = "qbench-graph";
/// The format version this engine reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// The `__metadata__` key holding the JSON header.
pub const METADATA_KEY: &str = "qbench";

/// The header as written. Read back as [`RawHeader`], whose nodes are parsed one at a time by
/// [`NodeHeader::parse`] so that an error names the node.
#[derive(Serialize)]
struct Header {
    format: String,
    version: u64,
    nodes: Vec<NodeHeader>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    /// Checked before parsing (the messages are more specific).
    #[serde(rename = "format")]
    _format: String,
    #[serde(rename = "version")]
    _version: u64,
    nodes: Vec<serde_json::Value>,
}

/// One node of the header. Every struct and enum of the header denies unknown fields (an
/// unknown key anywhere in a node is an error); none uses `serde(flatten)`, which would silently
/// disable that.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeHeader {
    name: String,
    inputs: Vec<NodeId>,
    op: Op,
    output: TensorType,
    tensors: Vec<String>,
}

impl NodeHeader {
    /// The fields of a node, in the order they are written.
    const FIELDS: [&'static str; 5] = ["name", "inputs", "op", "output", "tensors"];

    /// Parses node `index` of the header field by field, so an error names the node (its index,
    /// and its name when that much is readable) and the field at fault; inside a field, serde's
    /// message names the unknown or malformed key.
    fn parse(index: usize, value: serde_json::Value) -> Result<NodeHeader> {
        let name = value
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("?")
            .to_string();
        let err = |field: &str, msg: String| EngineError::node(index, &name, field, msg);
        let serde_json::Value::Object(mut fields) = value else {
            return Err(err("node", "not a JSON object".into()));
        };
        if let Some(unknown) = fields.keys().find(|k| !Self::FIELDS.contains(&k.as_str())) {
            return Err(err(
                unknown,
                format!(
                    "unknown field `{unknown}`, expected one of {}",
                    Self::FIELDS.map(|f| format!("`{f}`")).join(", ")
                ),
            ));
        }
        fn take<T: serde::de::DeserializeOwned>(
            fields: &mut serde_json::Map<String, serde_json::Value>,
            field: &str,
        ) -> std::result::Result<T, String> {
            let v = fields
                .remove(field)
                .ok_or_else(|| format!("missing field `{field}`"))?;
            serde_json::from_value(v).map_err(|e| e.to_string())
        }
        Ok(NodeHeader {
            name: take(&mut fields, "name").map_err(|m| err("name", m))?,
            inputs: take(&mut fields, "inputs").map_err(|m| err("inputs", m))?,
            op: take(&mut fields, "op").map_err(|m| err("op", m))?,
            output: take(&mut fields, "output").map_err(|m| err("output", m))?,
            tensors: take(&mut fields, "tensors").map_err(|m| err("tensors", m))?,
        })
    }
}

/// One array parameter as raw little-endian bytes.
struct Array {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Array {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn a_i8(v: &[i8], shape: Vec<usize>) -> Array {
    Array {
        dtype: Dtype::I8,
        shape,
        bytes: v.iter().map(|&x| x as u8).collect(),
    }
}

fn a_u8(v: Vec<u8>, shape: Vec<usize>) -> Array {
    Array {
        dtype: Dtype::U8,
        shape,
        bytes: v,
    }
}

fn a_i32(v: &[i32], shape: Vec<usize>) -> Array {
    Array {
        dtype: Dtype::I32,
        shape,
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn flags(v: &[bool]) -> Vec<u8> {
    v.iter().map(|&b| u8::from(b)).collect()
}

/// The arrays of a node, by slot, with their file shapes.
fn arrays(op: &Op) -> Vec<(&'static str, Array)> {
    let mut out = Vec::new();
    let bias = |b: &Option<Vec<i32>>, out: &mut Vec<(&'static str, Array)>| {
        if let Some(b) = b {
            out.push(("bias", a_i32(b, vec![b.len()])));
        }
    };
    match op {
        Op::Conv2d(c) => {
            let shape = vec![
                c.out_channels,
                c.in_channels / c.groups.max(1),
                c.kernel_h,
                c.kernel_w,
            ];
            out.push(("weight", a_i8(&c.weights, shape)));
            bias(&c.bias, &mut out);
        }
        Op::Dense(d) => {
            out.push((
                "weight",
                a_i8(&d.weights, vec![d.out_features, d.in_features]),
            ));
            bias(&d.bias, &mut out);
        }
        Op::BinaryConv2d(c) => {
            let shape = vec![
                c.out_channels,
                c.in_channels / c.groups.max(1),
                c.kernel_h,
                c.kernel_w,
            ];
            out.push(("weight", a_i8(&c.weights, shape)));
            bias(&c.bias, &mut out);
        }
        Op::BinaryDense(d) => {
            out.push((
                "weight",
                a_i8(&d.weights, vec![d.out_features, d.in_features]),
            ));
            bias(&d.bias, &mut out);
        }
        Op::Requant(r) => match &r.requant {
            Requant::Shift { shift, .. } => {
                out.push(("shift", a_u8(shift.clone(), vec![shift.len()])));
            }
            Requant::FixedPoint {
                multiplier, shift, ..
            } => {
                out.push(("multiplier", a_i32(multiplier, vec![multiplier.len()])));
                out.push(("shift", a_i32(shift, vec![shift.len()])));
            }
            Requant::Threshold { thresholds, flip } => {
                out.push(("thresholds", a_i32(thresholds, vec![thresholds.len()])));
                out.push(("flip", a_u8(flags(flip), vec![flip.len()])));
            }
            Requant::MultiThreshold { thresholds, flip } => {
                let sets = flip.len().max(1);
                let shape = vec![flip.len(), thresholds.len() / sets];
                out.push(("thresholds", a_i32(thresholds, shape)));
                out.push(("flip", a_u8(flags(flip), vec![flip.len()])));
            }
        },
        _ => {}
    }
    out
}

impl QGraph {
    /// Serializes the graph to the bytes of a `qbench-graph` file (validating it first).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut tensors: Vec<(String, Array)> = Vec::new();
        for node in &self.nodes {
            let arrs = arrays(&node.op);
            nodes.push(NodeHeader {
                name: node.name.clone(),
                inputs: node.inputs.clone(),
                op: node.op.clone(),
                output: node.output.clone(),
                tensors: arrs.iter().map(|(s, _)| s.to_string()).collect(),
            });
            tensors.extend(
                arrs.into_iter()
                    .map(|(slot, a)| (format!("{}/{slot}", node.name), a)),
            );
        }
        let header = Header {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            nodes,
        };
        let json = serde_json::to_string(&header)
            .map_err(|e| EngineError::Format(format!("cannot encode header: {e}")))?;
        let meta = HashMap::from([(METADATA_KEY.to_string(), json)]);
        safetensors::serialize(tensors.iter().map(|(n, a)| (n.as_str(), a)), Some(meta))
            .map_err(|e| EngineError::Format(format!("cannot serialize tensors: {e}")))
    }

    /// Parses and validates the bytes of a `qbench-graph` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<QGraph> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| EngineError::Format(format!("not a valid safetensors file: {e}")))?;
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| EngineError::Format(format!("not a valid safetensors file: {e}")))?;
        let json = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                EngineError::Format(format!("no `{METADATA_KEY}` header in __metadata__"))
            })?;
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| EngineError::Format(format!("header is not JSON: {e}")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT_NAME) => {}
            other => {
                return Err(EngineError::Format(format!(
                    "unknown format {other:?}, expected {FORMAT_NAME:?}"
                )));
            }
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(FORMAT_VERSION) => {}
            other => {
                return Err(EngineError::Format(format!(
                    "unsupported version {:?}, this engine reads version {FORMAT_VERSION}",
                    value
                        .get("version")
                        .map(|v| v.to_string())
                        .or(other.map(|v| v.to_string()))
                )));
            }
        }
        let raw: RawHeader = serde_json::from_value(value)
            .map_err(|e| EngineError::Format(format!("malformed header: {e}")))?;
        let header_nodes = raw
            .nodes
            .into_iter()
            .enumerate()
            .map(|(index, v)| NodeHeader::parse(index, v))
            .collect::<Result<Vec<_>>>()?;

        // Names first: tensors are found by node name, so they must be unique and '/'-free.
        let mut names = BTreeSet::new();
        for (index, nh) in header_nodes.iter().enumerate() {
            if nh.name.is_empty() || nh.name.contains('/') || !names.insert(nh.name.as_str()) {
                return Err(EngineError::node(
                    index,
                    &nh.name,
                    "name",
                    "empty, duplicate or containing '/'",
                ));
            }
        }
        let mut used = BTreeSet::new();
        let mut nodes = Vec::with_capacity(header_nodes.len());
        for (index, nh) in header_nodes.into_iter().enumerate() {
            let mut node = Node {
                name: nh.name,
                inputs: nh.inputs,
                op: nh.op,
                output: nh.output,
            };
            let err = |field: &str, msg: String| EngineError::node(index, &node.name, field, msg);
            let expected = required_slots(&node.op);
            let mut declared = BTreeSet::new();
            for slot in &nh.tensors {
                if !declared.insert(slot.as_str()) {
                    return Err(err(slot, "tensor declared twice".into()));
                }
            }
            for slot in &expected {
                if !declared.contains(slot) {
                    return Err(err(slot, "required tensor not declared".into()));
                }
            }
            for slot in &nh.tensors {
                let name = format!("{}/{slot}", node.name);
                let view = st.tensor(&name).map_err(|_| {
                    err(
                        slot,
                        format!("declared tensor `{name}` missing from the file"),
                    )
                })?;
                load_slot(&mut node.op, slot, &view).map_err(|m| err(slot, m))?;
                used.insert(name);
            }
            nodes.push(node);
        }
        let mut extra: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| !used.contains(*n))
            .collect();
        extra.sort();
        if let Some(name) = extra.first() {
            return Err(EngineError::Format(format!(
                "tensor `{name}` is not declared by any node"
            )));
        }
        let graph = QGraph { nodes };
        graph.validate()?;
        Ok(graph)
    }

    /// Writes the graph atomically (`qbench_io::write_atomic`: temporary file in the same
    /// directory, then rename) and returns the sha256 of the bytes written, as lowercase hex.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<String> {
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes)?;
        Ok(sha256_hex(&bytes))
    }

    /// Reads and validates a graph file; returns the graph and the sha256 of its bytes.
    pub fn load(path: impl AsRef<Path>) -> Result<(QGraph, String)> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| IoError::new("read", path, e))?;
        let graph = QGraph::from_bytes(&bytes)?;
        Ok((graph, sha256_hex(&bytes)))
    }
}

/// Slots a node must have: those of its kind except `bias` (array fields are still empty here).
fn required_slots(op: &Op) -> Vec<&'static str> {
    arrays(op)
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| *s != "bias")
        .collect()
}

fn expect(view: &TensorView<'_>, dtype: Dtype, shape: Option<&[usize]>) -> Result<(), String> {
    if view.dtype() != dtype {
        return Err(format!("dtype {:?}, expected {dtype:?}", view.dtype()));
    }
    if let Some(s) = shape
        && view.shape() != s
    {
        return Err(format!(
            "shape {:?} but the parameters give {s:?}",
            view.shape()
        ));
    }
    Ok(())
}

fn read_i8(v: &TensorView<'_>, shape: Option<&[usize]>) -> Result<Vec<i8>, String> {
    expect(v, Dtype::I8, shape)?;
    Ok(v.data().iter().map(|&b| b as i8).collect())
}

fn read_u8(v: &TensorView<'_>, shape: Option<&[usize]>) -> Result<Vec<u8>, String> {
    expect(v, Dtype::U8, shape)?;
    Ok(v.data().to_vec())
}

fn read_i32(v: &TensorView<'_>, shape: Option<&[usize]>) -> Result<Vec<i32>, String> {
    expect(v, Dtype::I32, shape)?;
    Ok(v.data()
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn read_flags(v: &TensorView<'_>) -> Result<Vec<bool>, String> {
    rank1(v)?;
    let raw = read_u8(v, None)?;
    raw.iter()
        .enumerate()
        .map(|(i, &b)| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(format!("flag {b} at index {i} is neither 0 nor 1")),
        })
        .collect()
}

fn rank1(v: &TensorView<'_>) -> Result<(), String> {
    if v.shape().len() != 1 {
        return Err(format!("shape {:?}, expected one dimension", v.shape()));
    }
    Ok(())
}

/// Fills one array slot of `op` from a tensor, checking dtype and shape.
fn load_slot(op: &mut Op, slot: &str, v: &TensorView<'_>) -> Result<(), String> {
    let kind = op.name();
    let unknown = || Err(format!("unknown tensor slot for a {kind} node"));
    match op {
        Op::Conv2d(c) => match slot {
            "weight" => {
                let shape = [
                    c.out_channels,
                    c.in_channels / c.groups.max(1),
                    c.kernel_h,
                    c.kernel_w,
                ];
                c.weights = read_i8(v, Some(&shape))?;
            }
            "bias" => c.bias = Some(read_i32(v, Some(&[c.out_channels]))?),
            _ => return unknown(),
        },
        Op::Dense(d) => match slot {
            "weight" => d.weights = read_i8(v, Some(&[d.out_features, d.in_features]))?,
            "bias" => d.bias = Some(read_i32(v, Some(&[d.out_features]))?),
            _ => return unknown(),
        },
        Op::BinaryConv2d(c) => match slot {
            "weight" => {
                let shape = [
                    c.out_channels,
                    c.in_channels / c.groups.max(1),
                    c.kernel_h,
                    c.kernel_w,
                ];
                c.weights = read_i8(v, Some(&shape))?;
            }
            "bias" => c.bias = Some(read_i32(v, Some(&[c.out_channels]))?),
            _ => return unknown(),
        },
        Op::BinaryDense(d) => match slot {
            "weight" => d.weights = read_i8(v, Some(&[d.out_features, d.in_features]))?,
            "bias" => d.bias = Some(read_i32(v, Some(&[d.out_features]))?),
            _ => return unknown(),
        },
        Op::Requant(r) => match (&mut r.requant, slot) {
            (Requant::Shift { shift, .. }, "shift") => {
                rank1(v)?;
                *shift = read_u8(v, None)?;
            }
            (Requant::FixedPoint { multiplier, .. }, "multiplier") => {
                rank1(v)?;
                *multiplier = read_i32(v, None)?;
            }
            (Requant::FixedPoint { shift, .. }, "shift") => {
                rank1(v)?;
                *shift = read_i32(v, None)?;
            }
            (Requant::Threshold { thresholds, .. }, "thresholds") => {
                rank1(v)?;
                *thresholds = read_i32(v, None)?;
            }
            (Requant::MultiThreshold { thresholds, .. }, "thresholds") => {
                if v.shape().len() != 2 {
                    return Err(format!("shape {:?}, expected [sets, levels]", v.shape()));
                }
                *thresholds = read_i32(v, None)?;
            }
            (Requant::Threshold { flip, .. }, "flip")
            | (Requant::MultiThreshold { flip, .. }, "flip") => *flip = read_flags(v)?,
            _ => return unknown(),
        },
        _ => return unknown(),
    }
    Ok(())
}
