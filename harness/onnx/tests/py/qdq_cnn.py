#!/usr/bin/env python3
"""Builds the float `cnn` of qbench's zoo (conv 1->16, ReLU, max pool, conv 16->32, ReLU, max
pool, dense 1568->10; 28x28 input p/255) with seeded random He-initialised weights as an ONNX
model, and quantizes it with onnxruntime.quantization.quantize_static (QDQ format, uint8
activations, int8 weights in 7 bits (reduce_range), per tensor, MinMax calibration on the first 256 images).

    qdq_cnn.py IMAGES.npy OUT_DIR      # writes OUT_DIR/float.onnx, qdq.onnx, qop.onnx and
                                       # residual_qdq.onnx (see float_residual)

qop.onnx is the same quantization in onnxruntime's QOperator format (QuantizeLinear,
QLinearConv with the ReLU fused, uint8 MaxPool, com.microsoft QGemm, DequantizeLinear).
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)


def float_cnn(rng):
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    inits = [
        numpy_helper.from_array(he((16, 1, 3, 3), 9), "w1"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array(he((32, 16, 3, 3), 144), "w2"),
        numpy_helper.from_array((rng.standard_normal(32) * 0.1).astype(np.float32), "b2"),
        numpy_helper.from_array(he((10, 1568), 1568), "w3"),
        numpy_helper.from_array((rng.standard_normal(10) * 0.1).astype(np.float32), "b3"),
    ]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", **pool),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", **conv),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", **pool),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def float_residual(rng):
    """A residual block: conv 1->16, ReLU; conv 16->16, ReLU; Add of the two; ReLU; max pool;
    flatten; dense 3136->10. QDQ quantization puts the Add between its own Q/DQ pairs."""

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    inits = [
        numpy_helper.from_array(he((16, 1, 3, 3), 9), "w1"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array(he((16, 16, 3, 3), 144) * 0.5, "w2"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b2"),
        numpy_helper.from_array(he((10, 3136), 3136), "w3"),
        numpy_helper.from_array((rng.standard_normal(10) * 0.1).astype(np.float32), "b3"),
    ]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", **conv),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r2", "r1"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["rs"], name="relu3"),
        helper.make_node("MaxPool", ["rs"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class Reader(CalibrationDataReader):
    def __init__(self, x):
        self.batches = iter([{"input": x[i : i + 32]} for i in range(0, len(x), 32)])

    def get_next(self):
        return next(self.batches, None)


def main():
    images, out = sys.argv[1], sys.argv[2]
    x = np.load(images).astype(np.float32) / 255.0
    fp = os.path.join(out, "float.onnx")
    onnx.save(float_cnn(np.random.default_rng(0)), fp)
    for name, fmt in [("qdq.onnx", QuantFormat.QDQ), ("qop.onnx", QuantFormat.QOperator)]:
        quantize(fp, os.path.join(out, name), x, fmt)
    rp = os.path.join(out, "residual_float.onnx")
    onnx.save(float_residual(np.random.default_rng(1)), rp)
    quantize(rp, os.path.join(out, "residual_qdq.onnx"), x, QuantFormat.QDQ)
    print("wrote", os.path.join(out, "qdq.onnx"), "qop.onnx and residual_qdq.onnx")


def quantize(fp, out, x, fmt):
    quantize_static(
        fp,
        out,
        Reader(x[:256]),
        quant_format=fmt,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=False,
        # 7-bit weights: onnxruntime's u8 x s8 kernels on AVX2 without VNNI add pairs of
        # products in saturating 16-bit arithmetic; with |w| <= 64 no pair can saturate, so
        # onnxruntime's integers are exact and only its rounding differs from the engine's.
        reduce_range=True,
    )


if __name__ == "__main__":
    main()
