#!/usr/bin/env python3
"""Compare qbench's int8 kernels with onnxruntime on the same shapes, side by side.

Builds tiny int8 ONNX models for the shapes of `qbench bench kernels` (MatMulInteger for the
1024^3 GEMM; ConvInteger and QLinearConv for the two 3x3 convolutions), times them with 1 and 2
intra-op threads (best of many runs, weights as constant initializers), gets qbench's numbers
from the kernels crate's benchmark (JSON), and prints GMAC/s and the ratio qbench / onnxruntime.

    pip install onnxruntime onnx numpy
    python3 harness/engine/benches/onnxruntime_compare.py            # builds and runs qbench too
    python3 harness/engine/benches/onnxruntime_compare.py --qbench-json report.json

ConvInteger computes exactly what qbench's conv2d_u8i8 computes (u8 x i8 -> i32); QLinearConv
also requantizes to u8, so it does a little more work per output. The binary convolution has
no onnxruntime counterpart and is not compared.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def gemm_model(m, n, k, rng):
    b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(b, "B")],
    )
    feeds = {"A": rng.integers(0, 256, size=(m, k), dtype=np.uint8)}
    return graph, feeds, m * n * k


def conv_model(kind, batch, cin, hw, cout, rng):
    w = rng.integers(-128, 128, size=(cout, cin, 3, 3), dtype=np.int8)
    x = rng.integers(0, 256, size=(batch, cin, hw, hw), dtype=np.uint8)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    inits = [numpy_helper.from_array(w, "W")]
    if kind == "ConvInteger":
        inits.append(numpy_helper.from_array(np.array(3, dtype=np.uint8), "xzp"))
        node = helper.make_node("ConvInteger", ["X", "W", "xzp"], ["Y"], **attrs)
        out_type = TensorProto.INT32
    else:
        for name, val in [
            ("xs", np.array(0.02, dtype=np.float32)),
            ("xzp", np.array(3, dtype=np.uint8)),
            ("ws", np.array(0.01, dtype=np.float32)),
            ("wzp", np.array(0, dtype=np.int8)),
            ("ys", np.array(0.5, dtype=np.float32)),
            ("yzp", np.array(128, dtype=np.uint8)),
        ]:
            inits.append(numpy_helper.from_array(val, name))
        node = helper.make_node(
            "QLinearConv", ["X", "xs", "xzp", "W", "ws", "wzp", "ys", "yzp"], ["Y"], **attrs
        )
        out_type = TensorProto.UINT8
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("X", TensorProto.UINT8, list(x.shape))],
        [helper.make_tensor_value_info("Y", out_type, [batch, cout, hw, hw])],
        inits,
    )
    return graph, {"X": x}, batch * cout * hw * hw * cin * 9


def time_model(graph, feeds, threads, budget):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    sess.run(None, feeds)
    best, best_cpu, runs, start = float("inf"), float("inf"), 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < budget:
        t, c = time.perf_counter(), time.process_time()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
        runs += 1
    # Process CPU time: with one intra-op thread, the time ORT ran when not preempted.
    return best, best_cpu


def ort_saturates():
    """True if onnxruntime's MatMulInteger (u8 x i8) differs from exact arithmetic on extremes.

    On AVX2 CPUs without VNNI, onnxruntime's u8 x s8 kernels use vpmaddubsw, whose i16 pair sums
    saturate; qbench's kernels are exact, so they are compared with a faster but inexact path.
    """
    m, n, k = 4, 16, 64
    a = np.full((m, k), 255, np.uint8)
    b = np.full((k, n), -128, np.int8)
    graph, _, _ = gemm_model(m, n, k, np.random.default_rng(0))
    graph.initializer[0].CopyFrom(numpy_helper.from_array(b, "B"))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"A": a})[0]
    want = a.astype(np.int64) @ b.astype(np.int64)
    return not np.array_equal(got.astype(np.int64), want), int(got[0, 0]), int(want[0, 0])


def qbench_report(path):
    if path:
        with open(path) as f:
            return json.load(f)
    out = os.path.join(tempfile.mkdtemp(), "qbench_kernels.json")
    cmd = [
        "cargo", "run", "--release", "-q", "-p", "qbench-kernels",
        "--example", "bench_kernels", "--", "--json", out,
    ]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=REPO, check=True, stdout=sys.stderr)
    with open(out) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qbench-json", help="qbench report (bench_kernels --json); default: run it")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per onnxruntime case")
    args = ap.parse_args()

    rep = qbench_report(args.qbench_json)
    qb = {c["name"]: {r["threads"]: r["ops_per_sec"] for r in c["results"]} for c in rep["cases"]}
    qb_cpu = {
        c["name"]: {r["threads"]: r.get("cpu_ops_per_sec") for r in c["results"]} for c in rep["cases"]
    }

    rng = np.random.default_rng(0)
    shapes = [
        ("gemm u8i8 M=N=K=1024", "MatMulInteger", lambda kind: gemm_model(1024, 1024, 1024, rng)),
        ("conv3x3 64->64 56x56 N=1", "ConvInteger", lambda kind: conv_model(kind, 1, 64, 56, 64, rng)),
        ("conv3x3 64->64 56x56 N=1", "QLinearConv", lambda kind: conv_model(kind, 1, 64, 56, 64, rng)),
        ("conv3x3 32->64 14x14 N=64", "ConvInteger", lambda kind: conv_model(kind, 64, 32, 14, 64, rng)),
        ("conv3x3 32->64 14x14 N=64", "QLinearConv", lambda kind: conv_model(kind, 64, 32, 14, 64, rng)),
    ]
    print(f"onnxruntime {ort.__version__}, load average {os.getloadavg()}")
    sat, got, want = ort_saturates()
    print(
        f"onnxruntime MatMulInteger exact on 255 x -128 (K=64)? {'no' if sat else 'yes'} "
        f"(got {got}, exact {want}); qbench is exact by construction"
    )
    print("GMAC/s from the fastest wall-clock run; for 1 thread also from CPU time (not preempted).")
    print(
        f"{'case':<26} {'onnx op':<13} {'thr':>3} {'qbench':>8} {'ORT':>8} {'q/ORT':>7}"
        f" {'qb cpu':>8} {'ORT cpu':>8} {'q/ORT':>7}"
    )
    rows = []
    for name, kind, build in shapes:
        graph, feeds, macs = build(kind)
        for threads in (1, 2):
            try:
                secs, cpu_secs = time_model(graph, feeds, threads, args.budget)
            except Exception as e:  # an op/type combination this onnxruntime lacks
                print(f"{name:<26} {kind:<13} {threads:>3}  onnxruntime failed: {e}")
                continue
            ort_rate = macs / secs / 1e9
            q = qb.get(name, {}).get(threads)
            q_rate = q / 1e9 if q else float("nan")
            line = f"{name:<26} {kind:<13} {threads:>3} {q_rate:>8.2f} {ort_rate:>8.2f} {q_rate / ort_rate:>6.2f}x"
            row = dict(case=name, op=kind, threads=threads, qbench_gmacs=q_rate, ort_gmacs=ort_rate)
            qc = qb_cpu.get(name, {}).get(threads)
            if threads == 1 and qc and cpu_secs > 0:
                ort_cpu = macs / cpu_secs / 1e9
                line += f" {qc / 1e9:>8.2f} {ort_cpu:>8.2f} {qc / 1e9 / ort_cpu:>6.2f}x"
                row.update(qbench_cpu_gmacs=qc / 1e9, ort_cpu_gmacs=ort_cpu)
            print(line)
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
