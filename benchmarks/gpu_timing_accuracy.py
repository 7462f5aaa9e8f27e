"""How exactly does orinbench's harness time GPU work? A spin kernel of known duration, measured.

Runs on a machine with an NVIDIA GPU, pycuda and nvcc (not in CI). A one-thread kernel spins on the
GPU's ``%globaltimer`` (nanoseconds, independent of clock boosting) for a requested time and
writes down how long it really spun and how many ``clock64`` cycles that took. A Runner-protocol
object whose ``enqueue`` launches that kernel is driven by ``orinbench.bench.harness.measure`` —
the same harness, the same CUDA layer (``orinbench.backends.tensorrt.cuda``: pycuda streams,
events, page-locked buffers and the CUDA-graph path) as a TensorRT engine — once launching the
kernel directly and once replaying it from a CUDA graph. Printed for each duration:

* requested: the spin time asked for;
* kernel: what the kernel measured on ``%globaltimer`` (median over the iterations);
* gpu (events): the harness's GPU compute time from CUDA events (median), and its error against
  the kernel's own measure;
* host: the harness's end-to-end latency (median), with a 4 KiB H2D and a 16 B D2H copy;
* overhead: host - gpu, the cost of launch, copies and synchronisation per inference;
* enqueue: the host time of the launch call itself;
* SM clock: clock64 cycles / kernel time.

    python benchmarks/gpu_timing_accuracy.py [--durations-ms 0 0.05 0.2 1 5] [--iterations 300]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from orinbench import _lazy
from orinbench.backends.tensorrt.cuda import EventTimer, PyCudaLayer
from orinbench.bench.harness import StopRule, Warmup, measure
from orinbench.errors import OrinbenchError

KERNEL = r"""
extern "C" __global__ void spin(unsigned long long ns, unsigned long long *out)
{
    unsigned long long t0, t1;
    long long c0 = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
    } while (t1 - t0 < ns);
    long long c1 = clock64();
    out[0] = t1 - t0;
    out[1] = (unsigned long long)(c1 - c0);
}
"""
INPUT_BYTES = 4096


class SpinRunner:
    """The runner protocol over the spin kernel (what the harness sees of a TensorRT engine)."""

    backend = "spin-kernel"

    def __init__(self, layer: PyCudaLayer, function: Any, ns: int, *, graph: bool) -> None:
        self.layer = layer
        self.function = function
        self.ns = int(ns)
        self.stream = layer.stream()
        self.done = layer.event(timing=False, blocking=True)
        self.host_in = layer.host_alloc((INPUT_BYTES,), np.dtype(np.uint8), mapped=False)
        self.host_in[:] = 1
        self.host_out = layer.host_alloc((2,), np.dtype(np.uint64), mapped=False)
        self.dev_in = layer.device_alloc(INPUT_BYTES)
        self.dev_out = layer.device_alloc(16)
        self.kernel_ns: list[int] = []
        self.cycles: list[int] = []
        self.graph = None
        if graph:
            self._launch()  # first launch outside the capture (module load, lazy init)
            layer.stream_synchronize(self.stream)
            layer.begin_capture(self.stream)
            self._launch()
            self.graph = layer.end_capture(self.stream)

    def _launch(self) -> None:
        self.function.prepared_async_call(
            (1, 1), (1, 1, 1), self.stream, np.uint64(self.ns), self.layer.device_ptr(self.dev_out)
        )

    def stage_inputs(self) -> None:
        self.layer.htod_async(self.layer.device_ptr(self.dev_in), self.host_in, self.stream)

    def enqueue(self) -> None:
        if self.graph is not None:
            self.layer.launch_graph(self.graph, self.stream)
        else:
            self._launch()

    def fetch_outputs(self) -> None:
        self.layer.dtoh_async(self.host_out, self.layer.device_ptr(self.dev_out), self.stream)

    def synchronize(self) -> None:
        self.layer.record(self.done, self.stream)
        self.layer.event_synchronize(self.done)
        self.kernel_ns.append(int(self.host_out[0]))
        self.cycles.append(int(self.host_out[1]))

    def device_timer(self) -> EventTimer:
        return EventTimer(self.layer, self.stream)

    def close(self) -> None:
        self.layer.stream_synchronize(self.stream)
        if self.graph is not None:
            self.layer.free_graph(self.graph)
        for buf in (self.dev_in, self.dev_out, self.host_in, self.host_out):
            self.layer.free(buf)


def run_case(layer: PyCudaLayer, function: Any, ms: float, *, graph: bool, iterations: int) -> dict:
    runner = SpinRunner(layer, function, round(ms * 1e6), graph=graph)
    try:
        m = measure(
            runner, warmup=Warmup(seconds=0.2, iterations=10), stop=StopRule(iterations=iterations)
        )
    finally:
        runner.close()
    n = m.iterations
    kernel_ms = np.asarray(runner.kernel_ns[-n:], dtype=np.float64) / 1e6
    cycles = np.asarray(runner.cycles[-n:], dtype=np.float64)
    assert m.gpu_compute_ms is not None
    gpu = float(np.median(m.gpu_compute_ms))
    host = float(np.median(m.latency_ms))
    kern = float(np.median(kernel_ms))
    return {
        "requested_ms": ms,
        "cuda_graph": graph,
        "iterations": n,
        "kernel_ms": kern,
        "gpu_event_ms": gpu,
        "gpu_event_p99_ms": float(np.percentile(m.gpu_compute_ms, 99)),
        "event_minus_kernel_us": (gpu - kern) * 1e3,
        "host_ms": host,
        "host_p99_ms": float(np.percentile(m.latency_ms, 99)),
        "overhead_us": (host - gpu) * 1e3,
        "enqueue_us": float(np.median(m.enqueue_ms)) * 1e3,
        "sm_clock_mhz": (
            float(np.median(cycles / np.maximum(kernel_ms, 1e-9))) / 1e3 if kern > 0 else None
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations-ms", type=float, nargs="+", default=[0.0, 0.05, 0.2, 1.0, 5.0])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    layer = PyCudaLayer()
    try:
        info = layer.open(args.device)
    except OrinbenchError as exc:
        print(f"gpu_timing_accuracy: {exc}", file=sys.stderr)
        return 2
    rows = []
    module: Any = None
    try:
        compiler = _lazy.require("pycuda.compiler")
        module = compiler.SourceModule(KERNEL, no_extern_c=True)
        function = module.get_function("spin")
        function.prepare("QP")
        versions = layer.versions()
        print(
            f"device: {info.name} (compute capability {info.cc_text}), CUDA driver "
            f"{versions['cuda_driver']}, pycuda built with {versions['cuda_pycuda_built_with']}"
        )
        print(
            f"{'requested':>10} {'graph':>5} {'kernel':>9} {'gpu(ev)':>9} {'ev-kern':>8} "
            f"{'host':>9} {'overhead':>9} {'enqueue':>8} {'SM clock':>9}"
        )
        print(
            f"{'ms':>10} {'':>5} {'ms':>9} {'ms':>9} {'us':>8} {'ms':>9} {'us':>9} {'us':>8} "
            f"{'MHz':>9}"
        )
        for ms in args.durations_ms:
            iterations = max(30, min(args.iterations, int(2000 / max(ms, 0.01))))
            for graph in (False, True):
                r = run_case(layer, function, ms, graph=graph, iterations=iterations)
                rows.append(r)
                clock = f"{r['sm_clock_mhz']:9.0f}" if r["sm_clock_mhz"] else f"{'-':>9}"
                print(
                    f"{ms:10.3f} {'yes' if graph else 'no':>5} {r['kernel_ms']:9.4f} "
                    f"{r['gpu_event_ms']:9.4f} {r['event_minus_kernel_us']:8.2f} "
                    f"{r['host_ms']:9.4f} "
                    f"{r['overhead_us']:9.1f} {r['enqueue_us']:8.1f} {clock}"
                )
    finally:
        # unload the module while its context is still current
        function = module = None
        layer.close()
    if args.json is not None:
        from orinbench._io import atomic_write_json

        atomic_write_json(args.json, {"device": info.to_dict(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
