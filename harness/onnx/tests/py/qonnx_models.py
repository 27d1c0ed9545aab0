#!/usr/bin/env python3
"""Builds two QONNX models with onnx.helper, in the shapes Brevitas' export_qonnx (and FINN's
streamlining, for thresholds) writes, with seeded random weights, for 28x28 input p / 255:

- qnn.onnx: input Quant (8-bit unsigned, scale 1/255); Conv with 4-bit per-channel Quant weights
  (signed, narrow) and a 32-bit Quant bias at the accumulator's scale (Brevitas' Int32Bias); Relu; Quant (4-bit unsigned activations, power-of-two scale);
  MaxPool; the same again; Flatten; Gemm with 4-bit per-tensor Quant weights. Float logits.
- qnn_pot.onnx: the same with power-of-two scales and HALF_UP rounding (see qnn_pot).
- qnn_trunc.onnx: qnn_pot with Brevitas' truncated average pools (AveragePool, Mul, Trunc v1,
  FLOOR then CEIL); qnn_trunc_v2.onnx: Trunc v2 (FLOOR), and a truncated global average pool
  (HALF_UP) before the classifier.
- bnn.onnx: input Quant; Conv with BipolarQuant weights; MultiThreshold (BIPOLAR, out_scale 2,
  out_bias -1); MaxPool; Conv with BipolarQuant weights over the +-1 activations; MultiThreshold
  (UINT2); MaxPool; Flatten; Gemm with BipolarQuant weights. Float logits holding integers.

Quant, BipolarQuant, Trunc and MultiThreshold are in the domain qonnx.custom_op.general; qonnx's
executor (qonnx.core.onnx_exec) runs them.

    qonnx_models.py OUT_DIR
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

D = "qonnx.custom_op.general"


class G:
    def __init__(self, version=1):
        self.nodes, self.inits, self.k, self.version = [], [], 0, version

    def c(self, name, a):
        self.inits.append(numpy_helper.from_array(np.asarray(a, dtype=np.float32), name))
        return name

    def op(self, op, ins, domain="", **attrs):
        self.k += 1
        out = f"{op.lower()}{self.k}"
        self.nodes.append(helper.make_node(op, ins, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, signed, narrow, mode="ROUND"):
        self.k += 1
        k = self.k
        ins = [x, self.c(f"s{k}", scale), self.c(f"z{k}", 0.0), self.c(f"b{k}", float(bits))]
        return self.op("Quant", ins, D, signed=int(signed), narrow=int(narrow), rounding_mode=mode)

    def trunc(self, x, size, scale, bits, dropped, mode):
        """Brevitas' truncated average: Mul by the window `size`, then Trunc of `bits`-bit
        activations of `scale` dropping `dropped` bits. v1 keeps the scale (qonnx's executor
        does); v2 states it. Returns the output and its scale."""
        self.k += 1
        k = self.k
        x = self.op("Mul", [x, self.c(f"n{k}", size)])
        ins = [x, self.c(f"ts{k}", scale), self.c(f"tz{k}", 0.0), self.c(f"ti{k}", bits + dropped)]
        out_scale = scale if self.version == 1 else scale * 2.0**dropped
        if self.version == 2:
            ins.append(self.c(f"to{k}", out_scale))
            attrs = dict(signed=0)
        else:
            attrs = {}
        ins.append(self.c(f"tb{k}", float(bits)))
        return self.op("Trunc", ins, D, rounding_mode=mode, **attrs), out_scale

    def model(self, out, name):
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 10])],
            self.inits,
        )
        m = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(D, self.version)]
        )
        m.ir_version = 8
        return m


CONV = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
POOL = dict(kernel_shape=[2, 2], strides=[2, 2])


def bias_quant(g, rng, n, scale):
    """Brevitas' Int32Bias: the bias quantized to 32 bits at the accumulator's scale."""
    g.k += 1
    b = g.c(f"bias{g.k}", rng.standard_normal(n) * 0.05)
    return g.quant(b, np.asarray(scale, np.float32).reshape(-1), 32, True, False)


def weight_quant(g, rng, shape, bits, per_channel=True):
    w = rng.standard_normal(shape).astype(np.float32) * np.sqrt(2.0 / np.prod(shape[1:]))
    qmax = 2 ** (bits - 1) - 1
    axes = tuple(range(1, len(shape)))
    if per_channel:
        s = np.abs(w).max(axis=axes, keepdims=True) / qmax
    else:
        s = np.array(np.abs(w).max() / qmax, dtype=np.float32)
    g.k += 1
    return g.quant(g.c(f"w{g.k}", w), s.astype(np.float32), bits, True, True), s


def qnn(rng):
    g = G()
    x = g.quant("input", 1.0 / 255.0, 8, False, False)
    in_scale = 1.0 / 255.0
    for cin, cout, a_scale in [(1, 16, 2.0**-3), (16, 32, 2.0**-2)]:
        w, ws = weight_quant(g, rng, (cout, cin, 3, 3), 4)
        b = bias_quant(g, rng, cout, in_scale * ws.reshape(-1))
        in_scale = a_scale
        x = g.op("Conv", [x, w, b], **CONV)
        x = g.op("Relu", [x])
        x = g.quant(x, a_scale, 4, False, False)
        x = g.op("MaxPool", [x], **POOL)
    x = g.op("Flatten", [x], axis=1)
    w, ws = weight_quant(g, rng, (10, 1568), 4, per_channel=False)
    x = g.op("Gemm", [x, w, bias_quant(g, rng, 10, in_scale * ws)], transB=1)
    return g.model(x, "qnn")


def qnn_pot(rng, pools=("max", "max"), head=None, version=1):
    """The qnn with power-of-two scales throughout (its input is the pixels p themselves, input
    quantizer scale 1) and HALF_UP rounding of the (post-ReLU, non-negative) activations: the
    engine's shift requantizers round exactly as qonnx does, and qonnx's float32 arithmetic is
    exact on these values. `pools` are the two blocks' pools: "max", or a rounding mode for
    Brevitas' TruncAvgPool2d (AveragePool, Mul by 4, Trunc); `head` a rounding mode for a
    TruncAdaptiveAvgPool2d (GlobalAveragePool, Mul by 49, Trunc) before the classifier."""
    g = G(version)
    x = g.quant("input", 1.0, 8, False, False)
    in_scale = 1.0
    blocks = [(1, 16, 2.0**-10, 2.0**-3), (16, 32, 2.0**-4, 2.0**-2)]
    for (cin, cout, w_scale, a_scale), pool in zip(blocks, pools):
        w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32) * 4 * w_scale
        g.k += 1
        w = g.quant(g.c(f"w{g.k}", w), np.float32(w_scale), 4, True, True, "HALF_UP")
        b = bias_quant(g, rng, cout, np.full(cout, in_scale * w_scale, np.float32))
        x = g.op("Conv", [x, w, b], **CONV)
        x = g.op("Relu", [x])
        x = g.quant(x, a_scale, 4, False, False, "HALF_UP")
        if pool == "max":
            x = g.op("MaxPool", [x], **POOL)
            in_scale = a_scale
        else:
            x = g.op("AveragePool", [x], **POOL)
            x, in_scale = g.trunc(x, 4.0, a_scale, 4, 2, pool)
    features = 1568
    if head is not None:
        x = g.op("GlobalAveragePool", [x])
        x, in_scale = g.trunc(x, 49.0, in_scale, 4, 6, head)
        features = 32
    x = g.op("Flatten", [x], axis=1)
    w_scale = 2.0**-5
    w = rng.standard_normal((10, features)).astype(np.float32) * 4 * w_scale
    g.k += 1
    w = g.quant(g.c(f"w{g.k}", w), np.float32(w_scale), 4, True, True, "HALF_UP")
    x = g.op("Gemm", [x, w, bias_quant(g, rng, 10, in_scale * w_scale)], transB=1)
    return g.model(x, "qnn_pot")


def bnn(rng):
    g = G()
    x = g.quant("input", 1.0 / 255.0, 8, False, False)
    w = g.op("BipolarQuant", [g.c("w1", rng.standard_normal((16, 1, 3, 3))), g.c("ws1", 1.0)], D)
    x = g.op("Conv", [x, w], **CONV)
    t = g.c("t1", rng.standard_normal((16, 1)) * 0.5)
    x = g.op("MultiThreshold", [x, t], D, out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    x = g.op("MaxPool", [x], **POOL)
    w = g.op("BipolarQuant", [g.c("w2", rng.standard_normal((32, 16, 3, 3))), g.c("ws2", 1.0)], D)
    x = g.op("Conv", [x, w], **CONV)
    t = np.sort(rng.standard_normal((32, 3)) * 6.0, axis=1) + 0.5
    x = g.op("MultiThreshold", [x, g.c("t2", t)], D, out_dtype="UINT2")
    x = g.op("MaxPool", [x], **POOL)
    x = g.op("Flatten", [x], axis=1)
    w = g.op("BipolarQuant", [g.c("w3", rng.standard_normal((10, 1568))), g.c("ws3", 1.0)], D)
    x = g.op("Gemm", [x, w], transB=1)
    return g.model(x, "bnn")


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(0)
    models = [
        ("qnn", qnn),
        ("bnn", bnn),
        ("qnn_pot", qnn_pot),
        ("qnn_trunc", lambda r: qnn_pot(r, ("FLOOR", "CEIL"))),
        ("qnn_trunc_v2", lambda r: qnn_pot(r, ("max", "FLOOR"), head="HALF_UP", version=2)),
    ]
    for name, build in models:
        path = os.path.join(out, f"{name}.onnx")
        onnx.save(build(rng), path)
        print("wrote", path)


if __name__ == "__main__":
    main()
