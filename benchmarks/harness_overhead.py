"""Harness overhead: orinbench's timing loop against a bare ONNX Runtime loop, same model, one run.

    python benchmarks/harness_overhead.py [--iterations 3000] [--rounds 5]

Prints the median per-iteration time of
  (a) a bare ``session.run(None, feed)`` loop timed with perf_counter_ns,
  (b) a bare ``session.run_with_iobinding`` loop (the call orinbench's ORT runner makes),
  (c) orinbench's harness (``measure``) over ``OnnxRuntimeRunner``,
interleaved over several rounds so that drift hits all three alike, and the ratios c/a and c/b and
the absolute overhead c-b in microseconds. Target: c/a <= 1.02 and c-b < 20 us.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from orinbench.backends.onnxruntime import OnnxRuntimeRunner
from orinbench.bench.harness import StopRule, Warmup, measure


def tiny_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1])
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    g = helper.make_graph(nodes, "tiny", [x], [y], initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def bare_run(session, feed, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        session.run(None, feed)
        out.append(clock() - t0)
    return out


def bare_binding(session, binding, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        session.run_with_iobinding(binding)
        out.append(clock() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "tiny.onnx"
        tiny_model(path)
        feed = {"x": np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)}
        with OnnxRuntimeRunner(path, intra_op_threads=a.threads) as runner:
            runner.load_inputs(feed)
            session = runner._session  # the same session for all three loops
            binding = session.io_binding()
            binding.bind_cpu_input("x", feed["x"])
            binding.bind_output("y")
            bare_run(session, feed, 500)
            a_med, b_med, c_med = [], [], []
            for _ in range(a.rounds):
                a_med.append(statistics.median(bare_run(session, feed, a.iterations)))
                b_med.append(statistics.median(bare_binding(session, binding, a.iterations)))
                m = measure(
                    runner,
                    warmup=Warmup(seconds=0, iterations=100),
                    stop=StopRule(iterations=a.iterations),
                )
                c_med.append(float(np.median(m.latency_ms)) * 1e6)
    am, bm, cm = (statistics.median(v) / 1e3 for v in (a_med, b_med, c_med))
    print(
        f"model: Conv3x3(3->8)+Relu+GAP on 1x3x32x32, ORT {runner.backend_version}, "
        f"{a.threads} thread(s), {a.rounds} rounds x {a.iterations} iterations"
    )
    print(f"(a) bare session.run            median {am:8.2f} us/iter")
    print(f"(b) bare run_with_iobinding     median {bm:8.2f} us/iter")
    print(f"(c) orinbench measure()         median {cm:8.2f} us/iter")
    print(f"ratio c/a = {cm / am:.3f}   (target <= 1.02)")
    print(f"ratio c/b = {cm / bm:.3f}")
    print(f"overhead c-b = {cm - bm:+.2f} us/iter (target < 20 us)")
    ok = cm / am <= 1.02 and (cm - bm) < 20
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
