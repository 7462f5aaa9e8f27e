"""``--profile-layers``: per-layer times from a separate profiling run with a ``trt.IProfiler``.

The timed run is never profiled: attaching a profiler makes every enqueue synchronous and adds an
event pair per layer. After the timed run, a second execution context on the same buffers runs
``iterations`` inferences with the profiler; each layer's time is summarised (mean and median
over the iterations) with its share of the summed layer time, slowest first.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from ...errors import UsageError
from .runner import TensorRTRunner


def _make_profiler(trt: Any, sink: dict[str, list[float]], order: list[str]) -> Any:
    class _Profiler(trt.IProfiler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            if layer_name not in sink:
                order.append(layer_name)
            sink[layer_name].append(float(ms))

    return _Profiler()


def profile_layers(runner: TensorRTRunner, iterations: int = 50) -> dict[str, Any]:
    """Run ``iterations`` profiled inferences on an open runner with loaded inputs.

    Returns ``{"iterations", "total_ms": {"mean", "median"}, "layers": [{"name", "mean_ms",
    "median_ms", "share"}], "note"}``, layers sorted by mean time, slowest first.
    """
    if iterations < 1:
        raise UsageError("profiling needs at least 1 iteration", fix="e.g. 50")
    trt = runner._trt
    times: dict[str, list[float]] = defaultdict(list)
    order: list[str] = []
    profiler = _make_profiler(trt, times, order)
    context, stream = runner.profiling_context(profiler)
    totals: list[float] = []
    for _ in range(iterations):
        before = sum(len(v) for v in times.values())
        before_sum = sum(sum(v) for v in times.values())
        if not context.execute_async_v3(stream):
            raise UsageError(
                "the profiling run failed",
                why=runner._last_error("execute_async_v3 returned False"),
                fix="run without --profile-layers",
            )
        runner.sync_lane0()
        if sum(len(v) for v in times.values()) > before:
            totals.append(sum(sum(v) for v in times.values()) - before_sum)
    del context
    layers = []
    mean_total = statistics.fmean(totals) if totals else 0.0
    for name in order:
        values = times[name]
        mean = statistics.fmean(values)
        layers.append(
            {
                "name": name,
                "mean_ms": mean,
                "median_ms": statistics.median(values),
                "share": mean / mean_total if mean_total > 0 else 0.0,
            }
        )
    layers.sort(key=lambda x: x["mean_ms"], reverse=True)
    return {
        "iterations": iterations,
        "total_ms": {
            "mean": mean_total,
            "median": statistics.median(totals) if totals else 0.0,
        },
        "layers": layers,
        "note": "per-layer times from a separate profiled run (synchronous per layer); their sum "
        "is not the latency of the timed run",
    }
