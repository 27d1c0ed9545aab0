#!/usr/bin/env python3
"""Runs an ONNX model on a .npy of uint8 images and writes its logits as raw little-endian int32.

    run_model.py MODEL.onnx IMAGES.npy OUT.i32 [--threads T] [--batch B] [--time]

A float-input model gets the pixels as p / 255 (as p when its input quantizer has scale 1). A model with QONNX custom ops (domain qonnx.custom_op.general) runs in qonnx's executor
(qonnx.core.onnx_exec.execute_onnx, the reference for QONNX), with the batch dimension fixed to B
(the last batch padded); any other model runs in onnxruntime's CPU provider. The model's single
input takes the images; its first output is written, converted to int32 when it is integral
(a float output is rounded only if every value is an integer, else written as float32 bits with
--float). With --time, prints `images_per_second=X` on stdout.
"""

import argparse
import sys
import time

import numpy as np
import onnx

QONNX_DOMAIN = "qonnx.custom_op.general"


def pixel_divisor(model):
    """A float model takes the pixels p as p / 255, unless the node quantizing its input has
    scale 1 (then as p): the rule qbench's importer applies."""
    inits = {t.name: t for t in model.graph.initializer}
    iname = next(i.name for i in model.graph.input if i.name not in inits)
    for n in model.graph.node:
        if iname in n.input and n.op_type in ("Quant", "IntQuant", "QuantizeLinear") and len(n.input) > 1:
            t = inits.get(n.input[1])
            if t is not None and np.allclose(onnx.numpy_helper.to_array(t), 1.0):
                return 1.0
    return 255.0


def run_qonnx(model, x, batch):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    # Exporters that list initializers among the inputs (Brevitas) give them scalar shapes.
    inits = {t.name for t in model.graph.initializer}
    data = [vi for vi in model.graph.input if vi.name not in inits]
    for vi in data + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_value = batch
    # Shapes recorded at export (batch 1) are inferred again for this batch.
    del model.graph.value_info[:]
    if data[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
        x = x.astype(np.float32) / np.float32(pixel_divisor(model))
    w = ModelWrapper(model).transform(InferShapes())
    iname = data[0].name
    oname = w.graph.output[0].name
    outs = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        n = len(xb)
        if n < batch:
            xb = np.concatenate([xb, np.zeros((batch - n,) + xb.shape[1:], xb.dtype)])
        outs.append(execute_onnx(w, {iname: xb})[oname][:n])
    return np.concatenate(outs)


def run_ort(path, x, batch, threads, timed):
    divisor = pixel_divisor(onnx.load(path))
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    iname = s.get_inputs()[0].name
    oname = s.get_outputs()[0].name
    if s.get_inputs()[0].type == "tensor(float)":
        x = x.astype(np.float32) / np.float32(divisor)
    outs = [s.run([oname], {iname: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    if timed:
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            s.run([oname], {iname: x[i : i + batch]})
        dt = time.perf_counter() - t0
        print(f"images_per_second={len(x) / dt:.3f}")
    return np.concatenate(outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--float", action="store_true", help="write float32 outputs unrounded")
    a = ap.parse_args()
    x = np.load(a.images)
    model = onnx.load(a.model)
    if any(n.domain in (QONNX_DOMAIN, "onnx.brevitas") for n in model.graph.node):
        y = run_qonnx(model, x, a.batch)
    else:
        y = run_ort(a.model, x, a.batch, a.threads, a.time)
    y = y.reshape(len(x), -1)
    if a.float:
        y.astype("<f4").tofile(a.out)
        return
    if y.dtype.kind == "f":
        if not np.all(np.round(y) == y):
            sys.exit("the output is not integral; use --float")
        y = np.round(y)
    y.astype("<i4").tofile(a.out)


if __name__ == "__main__":
    main()
