#!/usr/bin/env python3
"""Quantizes a float ONNX model whose input is the raw pixels p (0..255) with
onnxruntime.quantization.quantize_static, in QDQ and in QOperator format (uint8 activations,
int8 weights in 7 bits (reduce_range; see qdq_cnn.py), per tensor, MinMax calibration).

    quantize_float.py FLOAT.onnx CALIBRATION.npy OUT_DIR    # writes OUT_DIR/qdq.onnx, qop.onnx
"""

import os
import sys

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)


class Reader(CalibrationDataReader):
    def __init__(self, x):
        self.batches = iter([{"input": x[i : i + 32]} for i in range(0, len(x), 32)])

    def get_next(self):
        return next(self.batches, None)


def main():
    fp, calib, out = sys.argv[1], sys.argv[2], sys.argv[3]
    x = np.load(calib).astype(np.float32)  # raw pixels: the input quantizer gets scale 1
    for name, fmt in [("qdq.onnx", QuantFormat.QDQ), ("qop.onnx", QuantFormat.QOperator)]:
        quantize_static(
            fp,
            os.path.join(out, name),
            Reader(x),
            quant_format=fmt,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=False,
            reduce_range=True,
        )
    print("wrote", out)


if __name__ == "__main__":
    main()
