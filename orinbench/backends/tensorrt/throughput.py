"""Throughput with several streams (``--streams N``), and trtexec's enqueue-bound warning.

Latency is measured on one stream by the harness. Throughput with N streams keeps N inferences in
flight: one thread submits to N lanes (execution context + stream + buffers each) round robin,
waits for a lane's previous inference only when it is that lane's turn again, and counts
completions. Enqueue is asynchronous, so one thread keeps N streams busy unless the enqueue itself
is the bottleneck, which is what the enqueue-bound warning detects. FPS is completions divided by
the time from the first submission to the last completion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ...bench.assemble import ENQUEUE_BOUND_FRACTION, enqueue_bound_warning
from ...errors import UsageError
from .runner import TensorRTRunner

# the enqueue-bound rule lives with the other quality warnings; re-exported for the backend
__all__ = [
    "ENQUEUE_BOUND_FRACTION",
    "ThroughputResult",
    "enqueue_bound_warning",
    "measure_throughput",
]


@dataclass(frozen=True)
class ThroughputResult:
    streams: int
    inferences: int
    wall_s: float
    fps: float
    transfers: bool
    cuda_graph: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_throughput(
    runner: TensorRTRunner,
    *,
    duration_s: float = 10.0,
    warmup_s: float = 1.0,
    transfers: bool = True,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> ThroughputResult:
    """Aggregate FPS of all of ``runner``'s lanes (inputs must be loaded)."""
    if duration_s <= 0:
        raise UsageError("the throughput duration must be > 0 s", fix="e.g. --duration 10")
    lanes = runner.lane_count
    for phase_s, counting in ((warmup_s, False), (duration_s, True)):
        if phase_s <= 0:
            continue
        done = 0
        start = clock()
        for i in range(lanes):
            runner.submit(i, transfers=transfers)
        end_ns = start + int(phase_s * 1e9)
        i = 0
        while clock() < end_ns:
            runner.wait(i)
            done += 1
            runner.submit(i, transfers=transfers)
            i = (i + 1) % lanes
        for k in range(lanes):
            runner.wait((i + k) % lanes)
            done += 1
        wall = (clock() - start) / 1e9
        if counting:
            return ThroughputResult(
                streams=lanes,
                inferences=done,
                wall_s=wall,
                fps=done / wall if wall > 0 else 0.0,
                transfers=transfers,
                cuda_graph=runner.cuda_graph_active,
            )
    raise AssertionError("unreachable")  # pragma: no cover
