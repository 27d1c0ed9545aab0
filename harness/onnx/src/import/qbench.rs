//! Import of qbench's own export (`qbench.format` = [`FORMAT`](crate::export::FORMAT)): each
//! group of ONNX nodes (see [`crate::emit`]) is read back into its engine node from the group's
//! attributes and constants, and then checked by emitting that engine node again: the group's
//! nodes and constants must be exactly what the export writes for it, so a model edited into
//! anything else is rejected instead of misread. A round trip gives a byte-identical graph file.

use std::collections::{HashMap, HashSet};

use qbench_engine::{
    Add, AddAlign, BinaryConv2d, BinaryDense, Conv2d, DType, Dense, GraphBuilder, Node, NodeId, Op,
    Pool, QGraph, Requant, RequantNode, TensorType,
};

use super::{Ctx, input_shape};
use crate::emit::Emitter;
use crate::error::{OnnxError, Result};
use crate::export::{Hint, emit_node};
use crate::proto::{GraphProto, NodeProto, TensorProto};
use crate::tensor;

/// One engine node's ONNX nodes.
struct Group<'a> {
    /// Position of its first node in the graph.
    start: usize,
    nodes: &'a [NodeProto],
    hint: Hint,
}

impl Group<'_> {
    /// The engine node's name: the group's last ONNX node's name.
    fn name(&self) -> &str {
        self.nodes.last().map_or("", |n| n.name.as_str())
    }
}

/// Lowers a model written by [`crate::export()`].
pub fn import(graph: &GraphProto) -> Result<QGraph> {
    let shape = input_shape(graph)?;
    let inits: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let groups = split(graph)?;
    let mut b = GraphBuilder::new(&shape);
    let mut values: HashMap<String, NodeId> = HashMap::from([("input".to_string(), 0)]);
    let mut used_inits: HashSet<String> = HashSet::new();
    let mut logits = None;
    for g in &groups {
        let ctx = Ctx {
            position: g.start,
            node: &g.nodes[0],
        };
        let produced: HashSet<&str> = g
            .nodes
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str))
            .collect();
        let mut inputs: Vec<&str> = Vec::new();
        for n in g.nodes {
            for i in &n.input {
                let i = i.as_str();
                if !produced.contains(i) && !inits.contains_key(i) && !inputs.contains(&i) {
                    inputs.push(i);
                }
            }
        }
        let ids: Vec<NodeId> = inputs
            .iter()
            .map(|i| {
                values
                    .get(*i)
                    .copied()
                    .ok_or_else(|| ctx.err("input", format!("value `{i}` is not produced earlier")))
            })
            .collect::<Result<_>>()?;
        let consts = Consts {
            group: g.name(),
            inits: &inits,
            ctx: &ctx,
        };
        let op = read_op(g, &consts)?;
        let name = g.name().to_string();
        if matches!(op, Op::Output) {
            let (&[x], &[v]) = (ids.as_slice(), inputs.as_slice()) else {
                return Err(ctx.err("input", "the output takes one input".into()));
            };
            logits = Some((x, v.to_string(), g));
            continue;
        }
        let id = b.push(name.clone(), op.clone(), &ids)?;
        let node = Node {
            name: name.clone(),
            inputs: ids.clone(),
            op,
            output: b.ty(id).clone(),
        };
        verify(g, &b, &node, &ids, &inputs, &inits, &mut used_inits)?;
        values.insert(name, id);
    }
    let Some((x, value, g)) = logits else {
        return Err(OnnxError::Model("no output group (`logits`)".into()));
    };
    let graph_out = b.finish(x)?;
    // The output group is checked like the others, against the finished graph's output node.
    let out_node = &graph_out.nodes[graph_out.nodes.len() - 1];
    let t = graph_out.nodes[x].output.clone();
    let mut e = Emitter::default();
    emit_node(&mut e, out_node, &[&t], &[value.as_str()])?;
    compare_nodes(g, e.group_nodes())?;
    let extra: Vec<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !used_inits.contains(*n))
        .collect();
    if let Some(n) = extra.first() {
        return Err(OnnxError::Model(format!(
            "constant `{n}` is read by no node qbench wrote"
        )));
    }
    Ok(graph_out)
}

/// Splits the node list at every node whose doc string starts with `qbench:`.
fn split(graph: &GraphProto) -> Result<Vec<Group<'_>>> {
    let mut starts = Vec::new();
    for (i, n) in graph.node.iter().enumerate() {
        if let Some(h) = n.doc_string.strip_prefix("qbench:") {
            let hint: Hint = serde_json::from_str(h).map_err(|e| OnnxError::Node {
                position: i,
                name: n.name.clone(),
                op_type: n.op_type.clone(),
                field: "doc_string".into(),
                message: format!("bad qbench hint: {e}"),
            })?;
            starts.push((i, hint));
        } else if i == 0 {
            return Err(OnnxError::Model(
                "the first node carries no qbench hint: not a model qbench exported".into(),
            ));
        }
    }
    let mut groups = Vec::with_capacity(starts.len());
    for (k, (start, hint)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(graph.node.len(), |s| s.0);
        groups.push(Group {
            start: *start,
            nodes: &graph.node[*start..end],
            hint: hint.clone(),
        });
    }
    Ok(groups)
}

/// The constants `<group>.<role>` of a group.
struct Consts<'a> {
    group: &'a str,
    inits: &'a HashMap<&'a str, &'a TensorProto>,
    ctx: &'a Ctx<'a>,
}

impl Consts<'_> {
    fn get(&self, role: &str) -> Option<&TensorProto> {
        self.inits
            .get(format!("{}.{role}", self.group).as_str())
            .copied()
    }

    fn need(&self, role: &str) -> Result<&TensorProto> {
        self.get(role).ok_or_else(|| {
            self.ctx
                .err(role, format!("constant `{}.{role}` is missing", self.group))
        })
    }

    fn ints(&self, role: &str) -> Result<Vec<i64>> {
        tensor::to_i64(self.need(role)?)
    }

    fn i32s(&self, role: &str) -> Result<Vec<i32>> {
        self.ints(role)?
            .into_iter()
            .map(|v| i32::try_from(v).map_err(|_| self.ctx.err(role, format!("{v} is not an i32"))))
            .collect()
    }

    /// Exported weights: uint8 `w + 128` (see [`crate::export::WEIGHT_OFFSET`]) or, for the
    /// binary layers, float +-1.
    fn i8s(&self, role: &str) -> Result<Vec<i8>> {
        let offset = if self.need(role)?.data_type == crate::proto::data_type::UINT8 {
            128
        } else {
            0
        };
        self.ints(role)?
            .into_iter()
            .map(|v| v - offset)
            .map(|v| i8::try_from(v).map_err(|_| self.ctx.err(role, format!("{v} is not an i8"))))
            .collect()
    }

    fn scalar(&self, role: &str) -> Result<i64> {
        self.one(role, self.ints(role)?)
    }

    /// The single value of the constant `role`.
    fn one<T: Copy>(&self, role: &str, values: Vec<T>) -> Result<T> {
        match values.as_slice() {
            [v] => Ok(*v),
            v => Err(self
                .ctx
                .err(role, format!("{} values where one is expected", v.len()))),
        }
    }

    fn dims(&self, role: &str) -> Result<Vec<usize>> {
        tensor::dims(self.need(role)?)
    }

    /// The exponent of a one-element power-of-two constant.
    fn log2_scalar(&self, role: &str) -> Result<i32> {
        self.one(role, self.log2s(role)?)
    }

    /// Exponents of power-of-two constants.
    fn log2s(&self, role: &str) -> Result<Vec<i32>> {
        self.ints(role)?
            .into_iter()
            .map(|v| {
                let u = v as u64;
                let u = if role.starts_with("scale_") {
                    v as u32 as u64
                } else {
                    u
                };
                if u.is_power_of_two() {
                    Ok(u.trailing_zeros() as i32)
                } else {
                    Err(self.ctx.err(role, format!("{v} is not a power of two")))
                }
            })
            .collect()
    }
}

/// The first node of `op_type` in the group.
fn find<'a>(g: &'a Group, op_type: &str, ctx: &Ctx) -> Result<&'a NodeProto> {
    g.nodes
        .iter()
        .find(|n| n.op_type == op_type)
        .ok_or_else(|| ctx.err("op_type", format!("the group has no {op_type} node")))
}

fn attr_ints(n: &NodeProto, name: &str) -> Vec<i64> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or_else(Vec::new, |a| a.ints.clone())
}

fn attr_int(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn usize_of(v: Option<&i64>, what: &str, ctx: &Ctx) -> Result<usize> {
    v.and_then(|&v| usize::try_from(v).ok())
        .ok_or_else(|| ctx.err(what, format!("missing or negative {what}")))
}

/// Kernel, stride, pad and groups of a convolution or pool node.
fn window(n: &NodeProto, ctx: &Ctx) -> Result<(usize, usize, usize, usize, usize)> {
    let k = attr_ints(n, "kernel_shape");
    let s = attr_ints(n, "strides");
    let p = attr_ints(n, "pads");
    let kh = usize_of(k.first(), "kernel_shape", ctx)?;
    let kw = usize_of(k.get(1), "kernel_shape", ctx)?;
    let stride = usize_of(s.first(), "strides", ctx)?;
    let pad = if p.is_empty() {
        0
    } else {
        usize_of(p.first(), "pads", ctx)?
    };
    let groups = usize::try_from(attr_int(n, "group").unwrap_or(1))
        .map_err(|_| ctx.err("group", "negative".into()))?;
    Ok((kh, kw, stride, pad, groups))
}

fn transpose_back(w: &[i8], f: usize, o: usize) -> Vec<i8> {
    let mut t = vec![0i8; w.len()];
    for i in 0..f {
        for j in 0..o {
            t[j * f + i] = w[i * o + j];
        }
    }
    t
}

fn read_op(g: &Group, c: &Consts) -> Result<Op> {
    let ctx = c.ctx;
    let bias = |c: &Consts| -> Result<Option<Vec<i32>>> {
        if c.get("bias").is_some() {
            Ok(Some(c.i32s("bias")?))
        } else {
            Ok(None)
        }
    };
    Ok(match g.hint.op.as_str() {
        "conv2d" | "binary_conv2d" => {
            let n = find(
                g,
                if g.hint.op == "conv2d" {
                    "ConvInteger"
                } else {
                    "Conv"
                },
                ctx,
            )?;
            let (kernel_h, kernel_w, stride, pad, groups) = window(n, ctx)?;
            let d = c.dims("weight")?;
            let &[out_channels, per_group, _, _] = d.as_slice() else {
                return Err(ctx.err(
                    "weight",
                    format!("dimensions {d:?} are not [O, C/g, kh, kw]"),
                ));
            };
            let in_channels = per_group
                .checked_mul(groups)
                .ok_or_else(|| ctx.err("group", "too large".into()))?;
            let weights = c.i8s("weight")?;
            if g.hint.op == "conv2d" {
                let weight_kind = g
                    .hint
                    .weight_kind
                    .ok_or_else(|| ctx.err("doc_string", "no weight kind".into()))?;
                Op::Conv2d(Conv2d {
                    in_channels,
                    out_channels,
                    kernel_h,
                    kernel_w,
                    stride,
                    pad,
                    groups,
                    weight_kind,
                    input_zero_point: c.scalar("x_zero_point")? as i32,
                    weights,
                    bias: bias(c)?,
                })
            } else {
                Op::BinaryConv2d(BinaryConv2d {
                    in_channels,
                    out_channels,
                    kernel_h,
                    kernel_w,
                    stride,
                    pad,
                    groups,
                    weights,
                    bias: bias(c)?,
                })
            }
        }
        "dense" | "binary_dense" => {
            let d = c.dims("weight")?;
            let &[f, o] = d.as_slice() else {
                return Err(ctx.err("weight", format!("dimensions {d:?} are not [F, O]")));
            };
            let weights = transpose_back(&c.i8s("weight")?, f, o);
            if g.hint.op == "dense" {
                let weight_kind = g
                    .hint
                    .weight_kind
                    .ok_or_else(|| ctx.err("doc_string", "no weight kind".into()))?;
                Op::Dense(Dense {
                    in_features: f,
                    out_features: o,
                    weight_kind,
                    input_zero_point: c.scalar("a_zero_point")? as i32,
                    weights,
                    bias: bias(c)?,
                })
            } else {
                Op::BinaryDense(BinaryDense {
                    in_features: f,
                    out_features: o,
                    weights,
                    bias: bias(c)?,
                })
            }
        }
        "requant" => {
            let out = g
                .hint
                .out
                .ok_or_else(|| ctx.err("doc_string", "no output dtype".into()))?;
            let clamp = |c: &Consts| -> Result<(i32, i32, i32)> {
                Ok((
                    c.scalar("zero_point")? as i32,
                    c.scalar("min")? as i32,
                    c.scalar("max")? as i32,
                ))
            };
            let requant = if c.get("divisor").is_some() {
                let shift = c
                    .log2s("divisor")?
                    .into_iter()
                    .map(|s| u8::try_from(s).map_err(|_| ctx.err("divisor", "too large".into())))
                    .collect::<Result<_>>()?;
                let (zero_point, min, max) = clamp(c)?;
                Requant::Shift {
                    shift,
                    zero_point,
                    min,
                    max,
                }
            } else if c.get("multiplier").is_some() {
                let multiplier = c.i32s("multiplier")?;
                let right = c.log2s("right_div")?;
                let left = if c.get("left_mul").is_some() {
                    c.log2s("left_mul")?
                } else {
                    vec![0; right.len()]
                };
                let shift = left.iter().zip(&right).map(|(l, r)| l - r).collect();
                let (zero_point, min, max) = clamp(c)?;
                Requant::FixedPoint {
                    multiplier,
                    shift,
                    zero_point,
                    min,
                    max,
                }
            } else {
                let sign = tensor::to_f64(c.need("sign")?)?;
                let flip: Vec<bool> = sign.iter().map(|&s| s < 0.0).collect();
                let t = c.ints("thresholds")?;
                let d = c.dims("thresholds")?;
                let &[sets, levels] = d.as_slice() else {
                    return Err(ctx.err(
                        "thresholds",
                        format!("dimensions {d:?} are not [sets, levels]"),
                    ));
                };
                if sets != flip.len() || levels == 0 {
                    return Err(ctx.err("thresholds", "sets differ from the signs".into()));
                }
                let mut thresholds = Vec::with_capacity(t.len());
                for (set, &f) in flip.iter().enumerate() {
                    let row = &t[set * levels..(set + 1) * levels];
                    let row: Vec<i64> = if f {
                        row.iter().rev().map(|v| -v).collect()
                    } else {
                        row.to_vec()
                    };
                    for v in row {
                        thresholds.push(
                            i32::try_from(v).map_err(|_| ctx.err("thresholds", format!("{v}")))?,
                        );
                    }
                }
                if out == DType::Binary {
                    Requant::Threshold { thresholds, flip }
                } else {
                    Requant::MultiThreshold { thresholds, flip }
                }
            };
            Op::Requant(RequantNode { out, requant })
        }
        "max_pool" => {
            let (kernel_h, kernel_w, stride, pad, _) = window(find(g, "MaxPool", ctx)?, ctx)?;
            Op::MaxPool(Pool {
                kernel_h,
                kernel_w,
                stride,
                pad,
            })
        }
        "avg_pool" => {
            let (kernel_h, kernel_w, stride, pad, _) = window(find(g, "ConvInteger", ctx)?, ctx)?;
            Op::AvgPool(Pool {
                kernel_h,
                kernel_w,
                stride,
                pad,
            })
        }
        "global_avg_pool" => Op::GlobalAvgPool,
        "relu" => Op::Relu {
            zero_point: c.scalar("zero_point")? as i32,
        },
        "add" => {
            let zero_point_a = c.scalar("zero_point_a")? as i32;
            let zero_point_b = c.scalar("zero_point_b")? as i32;
            let align = if c.get("scale_a").is_some() {
                AddAlign::PowerOfTwo {
                    shift_a: c.log2_scalar("scale_a")? as u8,
                    shift_b: c.log2_scalar("scale_b")? as u8,
                }
            } else {
                let side = |s: &str| -> Result<(i32, i32)> {
                    let m = c.scalar(&format!("multiplier{s}"))? as i32;
                    let r = c.log2_scalar(&format!("right_div{s}"))?;
                    let l = if c.get(&format!("left_mul{s}")).is_some() {
                        c.log2_scalar(&format!("left_mul{s}"))?
                    } else {
                        0
                    };
                    Ok((m, l - r))
                };
                let (multiplier_a, shift_a) = side("a")?;
                let (multiplier_b, shift_b) = side("b")?;
                let left = c.log2_scalar("left_a")?;
                AddAlign::FixedPoint {
                    left_shift: u8::try_from(left)
                        .map_err(|_| ctx.err("left_a", "too large".into()))?,
                    multiplier_a,
                    shift_a,
                    multiplier_b,
                    shift_b,
                }
            };
            Op::Add(Add {
                zero_point_a,
                zero_point_b,
                align,
            })
        }
        "flatten" => Op::Flatten,
        "output" => Op::Output,
        other => return Err(ctx.err("doc_string", format!("unknown engine op `{other}`"))),
    })
}

/// Emits the engine node `id` again and requires the group to be exactly that.
fn verify(
    g: &Group,
    b: &GraphBuilder,
    node: &Node,
    ids: &[NodeId],
    inputs: &[&str],
    inits: &HashMap<&str, &TensorProto>,
    used: &mut HashSet<String>,
) -> Result<()> {
    let types: Vec<&TensorType> = ids.iter().map(|&i| b.ty(i)).collect();
    let mut e = Emitter::default();
    emit_node(&mut e, node, &types, inputs)?;
    compare_nodes(g, e.group_nodes())?;
    for t in &e.inits {
        let Some(file) = inits.get(t.name.as_str()) else {
            return Err(group_err(g, format!("constant `{}` is missing", t.name)));
        };
        let same = file.data_type == t.data_type
            && file.dims == t.dims
            && tensor::to_f64(file)? == tensor::to_f64(t)?;
        if !same {
            return Err(group_err(
                g,
                format!(
                    "constant `{}` differs from what qbench writes for this node",
                    t.name
                ),
            ));
        }
        used.insert(t.name.clone());
    }
    Ok(())
}

fn group_err(g: &Group, message: String) -> OnnxError {
    let n = &g.nodes[0];
    OnnxError::Node {
        position: g.start,
        name: g.name().to_string(),
        op_type: n.op_type.clone(),
        field: "group".into(),
        message,
    }
}

fn compare_nodes(g: &Group, want: &[NodeProto]) -> Result<()> {
    if g.nodes.len() != want.len() {
        return Err(group_err(
            g,
            format!(
                "{} nodes where qbench writes {} for this node",
                g.nodes.len(),
                want.len()
            ),
        ));
    }
    for (k, (a, w)) in g.nodes.iter().zip(want).enumerate() {
        if a != w {
            return Err(group_err(
                g,
                format!(
                    "node {} ({}) differs from what qbench writes ({})",
                    g.start + k,
                    a.op_type,
                    w.op_type
                ),
            ));
        }
    }
    Ok(())
}
