//! Export: a [`QGraph`] as an ONNX model whose integers are the engine's.
//!
//! Every engine node becomes a small group of ONNX nodes (see [`crate::emit`]) that computes the
//! engine's exact integers:
//!
//! - `conv2d` / `dense`: `ConvInteger` / `MatMulInteger` with the input zero point (padding reads
//!   it, as the engine's does) and uint8 weights `w + 128` with zero point 128 (see
//!   [`WEIGHT_OFFSET`]), then `Add` of the int32 bias.
//! - requantizers `shift` and `fixed_point` in int64 integer ops, bit-exact: floor division as
//!   `Div(v - Mod(v, d), d)` (ONNX's integer `Mod` takes the divisor's sign, its `Div`
//!   truncates), gemmlowp's `SaturatingRoundingDoublingHighMul` as `floor((x M + 2^30) / 2^31)`
//!   (its nudge and truncation are exactly that), `RoundingDivideByPOT` as `sign(y) (|y| + h) /
//!   2^e`, then `Add` of the zero point, `Clip` and `Cast` to uint8 or int8.
//! - `add`: int32 `Sub`/`Mul`/`Add`, which wrap as the engine's do; the fixed-point alignment is
//!   the same int64 pattern as the requantizer.
//! - pools: `MaxPool` (uint8/int8 directly, int32 through double, exact), average pools as exact
//!   integer sums (`ConvInteger` with a ones kernel, `ReduceSum` for the global pool) and the
//!   engine's `floor((sum + n/2) / n)`.
//! - BNN/QNN parts in QONNX form: +-1 activations are float tensors, `binary_conv2d` /
//!   `binary_dense` float `Conv` / `MatMul` of +-1 values (exact below 2^24), `threshold` and
//!   `multi_threshold` QONNX `MultiThreshold` (domain `qonnx.custom_op.general`) after a
//!   per-channel `Mul` by -1 for flipped channels (`acc <= t` is `-acc >= -t`).
//!
//! The model's input is `input` (uint8 `[N, C, H, W]` or `[N, F]`), its output `logits`: the
//! engine's i32 logits as int32 `[N, classes]`. A model without QONNX nodes runs in onnxruntime;
//! one with them in `qonnx.core.onnx_exec`.

use serde::{Deserialize, Serialize};

use qbench_engine::{AddAlign, DType, Node, Op, QGraph, Requant, TensorType, WeightKind};

use crate::emit::{Emitter, float, int, ints, string};
use crate::error::{OnnxError, Result};
use crate::proto::{
    Dimension, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto, data_type,
};
use crate::tensor::{f32_tensor, i8_tensor, i32_tensor, i64_tensor, u8_tensor};

/// The QONNX custom-op domain.
pub const QONNX_DOMAIN: &str = "qonnx.custom_op.general";
/// The default-domain opset qbench writes.
pub const OPSET: i64 = 17;
/// The `qbench.format` metadata value of an exported model.
pub const FORMAT: &str = "qbench-onnx/1";

/// What an ONNX graph cannot say about an engine node (its first ONNX node's doc string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    /// The engine op name (`conv2d`, `requant`, ...).
    pub op: String,
    /// The output dtype of a requantizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<DType>,
    /// The weight kind of a conv or dense layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kind: Option<WeightKind>,
}

/// Provenance written into the model's metadata.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// The graph file the model was exported from (its file name), if any.
    pub source: Option<String>,
}

/// The ONNX element type holding an engine dtype.
pub fn onnx_type(d: DType) -> i32 {
    match d {
        DType::Unsigned { .. } => data_type::UINT8,
        DType::Signed { .. } => data_type::INT8,
        DType::Binary => data_type::FLOAT,
        DType::I32 => data_type::INT32,
    }
}

/// Exports `graph` (see the module docs); `sha256` is the graph file's hash, written with the
/// provenance into the model's `metadata_props`.
pub fn export(graph: &QGraph, sha256: &str, provenance: &Provenance) -> Result<ModelProto> {
    export_form(graph, sha256, provenance, Form::Exact)
}

/// Which ONNX form an export writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The engine's exact integers (see the module docs); `qbench import` reads it back.
    Exact,
    /// onnxruntime's fast path: each u8 convolution and its requantizer as one `QLinearConv`
    /// (uint8 weights `w + 128`, the requantizer's real multiplier per channel as the weight scale), each
    /// fixed-point residual add and its requantizer as `com.microsoft.QLinearAdd`; everything else
    /// as in [`Form::Exact`]. onnxruntime rounds those float products half to even, so logits
    /// may differ slightly: a form for speed and for
    /// other consumers, not for the cross-check, and `qbench import` does not read it back.
    QLinear,
}

/// Exports `graph` in `form` (see [`export`]).
pub fn export_form(
    graph: &QGraph,
    sha256: &str,
    provenance: &Provenance,
    form: Form,
) -> Result<ModelProto> {
    let mut e = Emitter::default();
    let mut values: Vec<String> = Vec::with_capacity(graph.nodes.len());
    let mut qonnx = false;
    let mut microsoft = false;
    let fused = if form == Form::QLinear {
        crate::qlinear::fusions(graph)
    } else {
        vec![None; graph.nodes.len()]
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        let inputs: Vec<&str> = node.inputs.iter().map(|&i| values[i].as_str()).collect();
        let types: Vec<&TensorType> = node
            .inputs
            .iter()
            .map(|&i| &graph.nodes[i].output)
            .collect();
        let v = if matches!(node.op, Op::Input) {
            "input".to_string()
        } else if let Some(first) = fused[i] {
            // The second node of a fused pair: emit both as one.
            let head = &graph.nodes[first];
            let head_inputs: Vec<&str> = head.inputs.iter().map(|&k| values[k].as_str()).collect();
            microsoft |= matches!(head.op, Op::Add(_));
            crate::qlinear::emit_pair(&mut e, head, node, &head_inputs)?
        } else if fused.contains(&Some(i)) {
            // The first node of a fused pair: emitted with the second.
            String::new()
        } else {
            emit_node(&mut e, node, &types, &inputs)?
        };
        qonnx |= uses_qonnx(&node.op);
        values.push(v);
    }
    let input_ty = graph.input_type();
    let classes = graph.classes();
    let mut opset_import = vec![OperatorSetIdProto {
        domain: String::new(),
        version: OPSET,
    }];
    if qonnx {
        opset_import.push(OperatorSetIdProto {
            domain: QONNX_DOMAIN.into(),
            version: 1,
        });
    }
    if microsoft {
        opset_import.push(OperatorSetIdProto {
            domain: "com.microsoft".into(),
            version: 1,
        });
    }
    let meta = |k: &str, v: &str| StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let mut metadata_props = vec![
        meta(
            "qbench.format",
            if form == Form::Exact {
                FORMAT
            } else {
                "qbench-onnx-qlinear/1"
            },
        ),
        meta("qbench.graph_sha256", sha256),
        meta("qbench.version", env!("CARGO_PKG_VERSION")),
        meta("qbench.output", "int32 logits: the engine's i32 scores"),
    ];
    if let Some(s) = &provenance.source {
        metadata_props.push(meta("qbench.source", s));
    }
    Ok(ModelProto {
        ir_version: 8,
        opset_import,
        producer_name: "qbench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: "qbench integer graph: every value is the engine's integer".into(),
        graph: Some(GraphProto {
            node: e.nodes,
            name: "qbench".into(),
            initializer: e.inits,
            input: vec![value_info("input", data_type::UINT8, &input_ty.shape)],
            output: vec![value_info("logits", data_type::INT32, &[classes])],
            ..GraphProto::default()
        }),
        metadata_props,
        ..ModelProto::default()
    })
}

fn uses_qonnx(op: &Op) -> bool {
    matches!(
        op,
        Op::Requant(r) if matches!(r.requant, Requant::Threshold { .. } | Requant::MultiThreshold { .. })
    )
}

/// A `[N, ...shape]` value description with symbolic batch `N`.
pub fn value_info(name: &str, elem_type: i32, shape: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    }];
    dim.extend(shape.iter().map(|&d| Dimension {
        dim_value: Some(d as i64),
        dim_param: None,
    }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: String::new(),
    }
}

/// Dimensions of a per-channel parameter with `sets` entries broadcasting against `ty` (with
/// batch): `[1]` per tensor, `[C, 1, 1]` on maps, `[C]` on vectors.
fn param_dims(sets: usize, ty: &TensorType) -> Vec<usize> {
    if sets == 1 {
        vec![1]
    } else if ty.is_map() {
        vec![sets, 1, 1]
    } else {
        vec![sets]
    }
}

fn export_err(node: &Node, message: impl Into<String>) -> OnnxError {
    OnnxError::Export {
        node: node.name.clone(),
        message: message.into(),
    }
}

/// Emits the ONNX group of one engine node reading `inputs` (value names) of types `types`;
/// returns the value holding its result.
pub fn emit_node(
    e: &mut Emitter,
    node: &Node,
    types: &[&TensorType],
    inputs: &[&str],
) -> Result<String> {
    e.begin(&node.name);
    let mut hint = Hint {
        op: node.op.name().to_string(),
        out: None,
        weight_kind: None,
    };
    let mut output = None;
    match &node.op {
        Op::Input => return Err(export_err(node, "the input node has no group")),
        Op::Conv2d(c) => {
            hint.weight_kind = Some(c.weight_kind);
            let x_ty = types[0].dtype;
            let w = e.constant(
                "weight",
                u8_tensor(
                    "",
                    &[
                        c.out_channels,
                        c.in_channels / c.groups,
                        c.kernel_h,
                        c.kernel_w,
                    ],
                    &offset_weights(&c.weights),
                ),
            );
            let zp = zero_point_const(e, "x_zero_point", x_ty, c.input_zero_point, node)?;
            let wz = e.constant("w_zero_point", u8_tensor("", &[], &[WEIGHT_OFFSET]));
            let attrs = vec![
                ints("kernel_shape", &[c.kernel_h as i64, c.kernel_w as i64]),
                ints("strides", &[c.stride as i64; 2]),
                ints("pads", &[c.pad as i64; 4]),
                int("group", c.groups as i64),
            ];
            let acc = e.op("ConvInteger", &[inputs[0], &w, &zp, &wz], attrs);
            if let Some(b) = &c.bias {
                let b = e.constant("bias", i32_tensor("", &[c.out_channels, 1, 1], b));
                e.op("Add", &[&acc, &b], vec![]);
            }
        }
        Op::Dense(d) => {
            hint.weight_kind = Some(d.weight_kind);
            let wt = transpose(&d.weights, d.out_features, d.in_features);
            let w = e.constant(
                "weight",
                u8_tensor("", &[d.in_features, d.out_features], &offset_weights(&wt)),
            );
            let zp = zero_point_const(e, "a_zero_point", types[0].dtype, d.input_zero_point, node)?;
            let wz = e.constant("b_zero_point", u8_tensor("", &[], &[WEIGHT_OFFSET]));
            let acc = e.op("MatMulInteger", &[inputs[0], &w, &zp, &wz], vec![]);
            if let Some(b) = &d.bias {
                let b = e.constant("bias", i32_tensor("", &[d.out_features], b));
                e.op("Add", &[&acc, &b], vec![]);
            }
        }
        Op::BinaryConv2d(c) => {
            let wf: Vec<f32> = c.weights.iter().map(|&w| f32::from(w)).collect();
            let w = e.constant(
                "weight",
                f32_tensor(
                    "",
                    &[
                        c.out_channels,
                        c.in_channels / c.groups,
                        c.kernel_h,
                        c.kernel_w,
                    ],
                    &wf,
                ),
            );
            let mut ins = vec![inputs[0].to_string(), w];
            if let Some(b) = &c.bias {
                check_f32_exact(node, b)?;
                let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
                ins.push(e.constant("bias", f32_tensor("", &[c.out_channels], &bf)));
            }
            let attrs = vec![
                ints("kernel_shape", &[c.kernel_h as i64, c.kernel_w as i64]),
                ints("strides", &[c.stride as i64; 2]),
                ints("pads", &[c.pad as i64; 4]),
                int("group", c.groups as i64),
            ];
            let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
            let acc = e.op("Conv", &refs, attrs);
            e.op("Cast", &[&acc], vec![int("to", data_type::INT32.into())]);
        }
        Op::BinaryDense(d) => {
            let wt = transpose(&d.weights, d.out_features, d.in_features);
            let wf: Vec<f32> = wt.iter().map(|&w| f32::from(w)).collect();
            let w = e.constant(
                "weight",
                f32_tensor("", &[d.in_features, d.out_features], &wf),
            );
            let mut acc = e.op("MatMul", &[inputs[0], &w], vec![]);
            if let Some(b) = &d.bias {
                check_f32_exact(node, b)?;
                let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
                let b = e.constant("bias", f32_tensor("", &[d.out_features], &bf));
                acc = e.op("Add", &[&acc, &b], vec![]);
            }
            e.op("Cast", &[&acc], vec![int("to", data_type::INT32.into())]);
        }
        Op::Requant(r) => {
            hint.out = Some(r.out);
            emit_requant(e, node, &r.requant, r.out, types[0], inputs[0])?;
        }
        Op::MaxPool(p) => {
            let attrs = vec![
                ints("kernel_shape", &[p.kernel_h as i64, p.kernel_w as i64]),
                ints("strides", &[p.stride as i64; 2]),
                ints("pads", &[p.pad as i64; 4]),
            ];
            if types[0].dtype == DType::I32 {
                let d = e.op(
                    "Cast",
                    &[inputs[0]],
                    vec![int("to", data_type::DOUBLE.into())],
                );
                let m = e.op("MaxPool", &[&d], attrs);
                e.op("Cast", &[&m], vec![int("to", data_type::INT32.into())]);
            } else {
                e.op("MaxPool", &[inputs[0]], attrs);
            }
        }
        Op::AvgPool(p) => {
            let dt = types[0].dtype;
            if !dt.is_narrow_int() {
                return Err(export_err(
                    node,
                    format!("average pool over {} has no exact ONNX form", dt.label()),
                ));
            }
            let c = types[0].channels();
            let n = p.kernel_h * p.kernel_w;
            let ones = e.constant(
                "ones",
                i8_tensor("", &[c, 1, p.kernel_h, p.kernel_w], &vec![1; c * n]),
            );
            let zp = zero_point_const(e, "x_zero_point", dt, 0, node)?;
            let attrs = vec![
                ints("kernel_shape", &[p.kernel_h as i64, p.kernel_w as i64]),
                ints("strides", &[p.stride as i64; 2]),
                int("group", c as i64),
            ];
            let sum = e.op("ConvInteger", &[inputs[0], &ones, &zp], attrs);
            let s64 = e.op("Cast", &[&sum], vec![int("to", data_type::INT64.into())]);
            let avg = emit_avg_round(e, &s64, n as i64);
            e.op("Cast", &[&avg], vec![int("to", onnx_type(dt).into())]);
        }
        Op::GlobalAvgPool => {
            let dt = types[0].dtype;
            let n = types[0].spatial() as i64;
            let x = e.op(
                "Cast",
                &[inputs[0]],
                vec![int("to", data_type::INT64.into())],
            );
            let axes = e.constant("axes", i64_tensor("", &[2], &[2, 3]));
            let s = e.op("ReduceSum", &[&x, &axes], vec![int("keepdims", 0)]);
            let avg = emit_avg_round(e, &s, n);
            e.op("Cast", &[&avg], vec![int("to", onnx_type(dt).into())]);
        }
        Op::Relu { zero_point } => {
            let dt = types[0].dtype;
            let x = e.op(
                "Cast",
                &[inputs[0]],
                vec![int("to", data_type::INT32.into())],
            );
            let z = e.constant("zero_point", i32_tensor("", &[1], &[*zero_point]));
            let m = e.op("Max", &[&x, &z], vec![]);
            e.op("Cast", &[&m], vec![int("to", onnx_type(dt).into())]);
        }
        Op::Add(a) => {
            let (sa, sb) = match a.align {
                AddAlign::PowerOfTwo { shift_a, shift_b } => {
                    let pa = emit_add_side_pot(e, "a", inputs[0], a.zero_point_a, shift_a);
                    let pb = emit_add_side_pot(e, "b", inputs[1], a.zero_point_b, shift_b);
                    (pa, pb)
                }
                AddAlign::FixedPoint {
                    left_shift,
                    multiplier_a,
                    shift_a,
                    multiplier_b,
                    shift_b,
                } => {
                    let pa = emit_add_side_fp(
                        e,
                        "a",
                        inputs[0],
                        a.zero_point_a,
                        left_shift,
                        multiplier_a,
                        shift_a,
                    );
                    let pb = emit_add_side_fp(
                        e,
                        "b",
                        inputs[1],
                        a.zero_point_b,
                        left_shift,
                        multiplier_b,
                        shift_b,
                    );
                    (pa, pb)
                }
            };
            e.op("Add", &[&sa, &sb], vec![]);
        }
        Op::Flatten => {
            e.op("Flatten", &[inputs[0]], vec![int("axis", 1)]);
        }
        Op::Output => {
            e.op(
                "Cast",
                &[inputs[0]],
                vec![int("to", data_type::INT32.into())],
            );
            output = Some("logits");
        }
    }
    let hint = serde_json::to_string(&hint).map_err(|err| export_err(node, err.to_string()))?;
    Ok(e.end(&hint, output))
}

/// The zero point of exported integer weights: they are stored as uint8 `w + 128`, so that
/// onnxruntime multiplies u8 x u8. Its u8 x s8 kernels on AVX2 without VNNI add pairs of products
/// in saturating 16-bit arithmetic (`VPMADDUBSW`) and so differ from exact integers wherever
/// two products of an 8-bit activation and an int8 weight exceed 32767 together.
pub const WEIGHT_OFFSET: u8 = 128;

/// Integer weights as uint8 `w + 128`.
pub(crate) fn offset_weights(w: &[i8]) -> Vec<u8> {
    w.iter().map(|&v| (i16::from(v) + 128) as u8).collect()
}

/// Weights `[O][F]` as `[F][O]`.
fn transpose(w: &[i8], rows: usize, cols: usize) -> Vec<i8> {
    let mut t = vec![0i8; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

fn check_f32_exact(node: &Node, v: &[i32]) -> Result<()> {
    match v.iter().find(|x| x.unsigned_abs() > 1 << 24) {
        Some(x) => Err(export_err(
            node,
            format!("bias {x} is not exact as a float"),
        )),
        None => Ok(()),
    }
}

/// A scalar zero point of the input's ONNX type.
pub(crate) fn zero_point_const(
    e: &mut Emitter,
    role: &str,
    dt: DType,
    z: i32,
    node: &Node,
) -> Result<String> {
    match dt {
        DType::Unsigned { .. } => {
            let z = u8::try_from(z).map_err(|_| export_err(node, format!("zero point {z}")))?;
            Ok(e.constant(role, u8_tensor("", &[], &[z])))
        }
        DType::Signed { .. } => {
            let z = i8::try_from(z).map_err(|_| export_err(node, format!("zero point {z}")))?;
            Ok(e.constant(role, i8_tensor("", &[], &[z])))
        }
        other => Err(export_err(
            node,
            format!(
                "a multiply-accumulate layer over {} has no ONNX integer form",
                other.label()
            ),
        )),
    }
}

/// `floor(v / d)` for int64 `v` and positive divisor constant `d` (a value name).
fn floor_div(e: &mut Emitter, v: &str, d: &str) -> String {
    let m = e.op("Mod", &[v, d], vec![]);
    let t = e.op("Sub", &[v, &m], vec![]);
    e.op("Div", &[&t, d], vec![])
}

/// The engine's rounded average `floor((sum + n / 2) / n)` of int64 sums.
fn emit_avg_round(e: &mut Emitter, sum: &str, n: i64) -> String {
    let h = e.constant("half", i64_tensor("", &[1], &[n / 2]));
    let v = e.op("Add", &[sum, &h], vec![]);
    let d = e.constant("count", i64_tensor("", &[1], &[n]));
    floor_div(e, &v, &d)
}

/// `(x - z) << s` in wrapping int32.
fn emit_add_side_pot(e: &mut Emitter, side: &str, x: &str, z: i32, s: u8) -> String {
    let x = e.op("Cast", &[x], vec![int("to", data_type::INT32.into())]);
    let zc = e.constant(&format!("zero_point_{side}"), i32_tensor("", &[1], &[z]));
    let d = e.op("Sub", &[&x, &zc], vec![]);
    let f = e.constant(
        &format!("scale_{side}"),
        i32_tensor("", &[1], &[1i32.wrapping_shl(u32::from(s))]),
    );
    e.op("Mul", &[&d, &f], vec![])
}

/// `mbqm((x - z) << left, M, shift)` as int32.
fn emit_add_side_fp(
    e: &mut Emitter,
    side: &str,
    x: &str,
    z: i32,
    left: u8,
    m: i32,
    shift: i32,
) -> String {
    let x = e.op("Cast", &[x], vec![int("to", data_type::INT32.into())]);
    let zc = e.constant(&format!("zero_point_{side}"), i32_tensor("", &[1], &[z]));
    let d = e.op("Sub", &[&x, &zc], vec![]);
    let f = e.constant(
        &format!("left_{side}"),
        i32_tensor("", &[1], &[1i32 << left]),
    );
    let s = e.op("Mul", &[&d, &f], vec![]);
    let s64 = e.op("Cast", &[&s], vec![int("to", data_type::INT64.into())]);
    let y = emit_mbqm(e, side, &s64, &[m], &[shift], &[1]);
    e.op("Cast", &[&y], vec![int("to", data_type::INT32.into())])
}

/// TFLite's `MultiplyByQuantizedMultiplier` on int64 values holding i32s; returns an int64 value.
fn emit_mbqm(
    e: &mut Emitter,
    tag: &str,
    x: &str,
    m: &[i32],
    shift: &[i32],
    dims: &[usize],
) -> String {
    let mut x = x.to_string();
    if shift.iter().any(|&s| s > 0) {
        let l: Vec<i64> = shift.iter().map(|&s| 1i64 << s.max(0)).collect();
        let lc = e.constant(&format!("left_mul{tag}"), i64_tensor("", dims, &l));
        let p = e.op("Mul", &[&x, &lc], vec![]);
        let w = e.op("Cast", &[&p], vec![int("to", data_type::INT32.into())]);
        x = e.op("Cast", &[&w], vec![int("to", data_type::INT64.into())]);
    }
    let mc = e.constant(
        &format!("multiplier{tag}"),
        i64_tensor(
            "",
            dims,
            &m.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(),
        ),
    );
    let p = e.op("Mul", &[&x, &mc], vec![]);
    let nudge = e.constant(&format!("nudge{tag}"), i64_tensor("", &[1], &[1 << 30]));
    let pn = e.op("Add", &[&p, &nudge], vec![]);
    let q31 = e.constant(&format!("q31{tag}"), i64_tensor("", &[1], &[1 << 31]));
    let y = floor_div(e, &pn, &q31);
    let a = e.op("Abs", &[&y], vec![]);
    let sg = e.op("Sign", &[&y], vec![]);
    let half: Vec<i64> = shift
        .iter()
        .map(|&s| if s < 0 { 1i64 << (-s - 1) } else { 0 })
        .collect();
    let div: Vec<i64> = shift.iter().map(|&s| 1i64 << (-s).max(0)).collect();
    let hc = e.constant(&format!("right_half{tag}"), i64_tensor("", dims, &half));
    let dc = e.constant(&format!("right_div{tag}"), i64_tensor("", dims, &div));
    let ah = e.op("Add", &[&a, &hc], vec![]);
    let ad = e.op("Div", &[&ah, &dc], vec![]);
    e.op("Mul", &[&ad, &sg], vec![])
}

fn emit_offset_clamp(e: &mut Emitter, v: &str, zp: i32, min: i32, max: i32, out: DType) -> String {
    let z = e.constant("zero_point", i64_tensor("", &[1], &[i64::from(zp)]));
    let s = e.op("Add", &[v, &z], vec![]);
    let lo = e.constant("min", i64_tensor("", &[], &[i64::from(min)]));
    let hi = e.constant("max", i64_tensor("", &[], &[i64::from(max)]));
    let c = e.op("Clip", &[&s, &lo, &hi], vec![]);
    e.op("Cast", &[&c], vec![int("to", onnx_type(out).into())])
}

fn emit_requant(
    e: &mut Emitter,
    node: &Node,
    r: &Requant,
    out: DType,
    ty: &TensorType,
    x: &str,
) -> Result<()> {
    let dims = param_dims(r.sets(), ty);
    match r {
        Requant::Shift {
            shift,
            zero_point,
            min,
            max,
        } => {
            let x64 = e.op("Cast", &[x], vec![int("to", data_type::INT64.into())]);
            let round: Vec<i64> = shift
                .iter()
                .map(|&s| if s > 0 { 1i64 << (s - 1) } else { 0 })
                .collect();
            let div: Vec<i64> = shift.iter().map(|&s| 1i64 << s).collect();
            let rc = e.constant("round", i64_tensor("", &dims, &round));
            let v = e.op("Add", &[&x64, &rc], vec![]);
            let dc = e.constant("divisor", i64_tensor("", &dims, &div));
            let q = floor_div(e, &v, &dc);
            emit_offset_clamp(e, &q, *zero_point, *min, *max, out);
        }
        Requant::FixedPoint {
            multiplier,
            shift,
            zero_point,
            min,
            max,
        } => {
            let x64 = e.op("Cast", &[x], vec![int("to", data_type::INT64.into())]);
            let y = emit_mbqm(e, "", &x64, multiplier, shift, &dims);
            emit_offset_clamp(e, &y, *zero_point, *min, *max, out);
        }
        Requant::Threshold { thresholds, flip } => {
            emit_thresholds(e, thresholds, flip, 1, "BIPOLAR", (2.0, -1.0), ty, x);
        }
        Requant::MultiThreshold { thresholds, flip } => {
            let DType::Unsigned { bits } = out else {
                return Err(export_err(
                    node,
                    "a multi-threshold output must be unsigned",
                ));
            };
            let levels = thresholds.len() / flip.len().max(1);
            let m = emit_thresholds(
                e,
                thresholds,
                flip,
                levels,
                &format!("UINT{bits}"),
                (1.0, 0.0),
                ty,
                x,
            );
            e.op("Cast", &[&m], vec![int("to", data_type::UINT8.into())]);
        }
    }
    Ok(())
}

/// QONNX `MultiThreshold` of `x` with the rows of `thresholds` (`levels` per set); flipped sets
/// negate the input and the thresholds (reversed, so they stay non-decreasing).
#[allow(clippy::too_many_arguments)]
fn emit_thresholds(
    e: &mut Emitter,
    thresholds: &[i32],
    flip: &[bool],
    levels: usize,
    out_dtype: &str,
    (scale, bias): (f32, f32),
    ty: &TensorType,
    x: &str,
) -> String {
    let sets = flip.len();
    let dims = param_dims(sets, ty);
    let sign: Vec<f32> = flip.iter().map(|&f| if f { -1.0 } else { 1.0 }).collect();
    let mut t = Vec::with_capacity(thresholds.len());
    for (set, &f) in flip.iter().enumerate() {
        let row = &thresholds[set * levels..(set + 1) * levels];
        if f {
            t.extend(row.iter().rev().map(|&v| -(v as f32)));
        } else {
            t.extend(row.iter().map(|&v| v as f32));
        }
    }
    let xf = e.op("Cast", &[x], vec![int("to", data_type::FLOAT.into())]);
    let sc = e.constant("sign", f32_tensor("", &dims, &sign));
    let xs = e.op("Mul", &[&xf, &sc], vec![]);
    let tc = e.constant("thresholds", f32_tensor("", &[sets, levels], &t));
    e.op_in(
        QONNX_DOMAIN,
        "MultiThreshold",
        &[&xs, &tc],
        vec![
            string("out_dtype", out_dtype),
            float("out_scale", scale),
            float("out_bias", bias),
        ],
    )
}
