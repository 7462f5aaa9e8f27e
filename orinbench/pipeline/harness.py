"""Timing a pipeline: end to end and per stage, every frame, with the harness's one clock.

The pipeline is handed to :func:`orinbench.bench.harness.measure` as a single runner whose
``enqueue`` runs a whole frame, so warm-up, the stop rule, the power window and the recorded
protocol are exactly those of ``orinbench bench``. The same ``clock`` is given to the frame, which
reads it once before the first stage and once after each stage's ``synchronize``::

    t0 = clock()                             # measure(): frame starts
      b0 = clock()
      stage 1: stage_inputs, [event], q0 = clock(), enqueue, q1 = clock(), [event],
               fetch_outputs (if its outputs leave the pipeline), synchronize
      b1 = clock()                           # stage 1 latency = b1 - b0, enqueue = q1 - q0
      stage 2: ...
      bN = clock()
      device times read from the stages' events (after the last stage)
    t1 = clock()                             # measure(): frame latency = t1 - t0

Stage boundaries are shared (stage k ends at the reading stage k+1 starts from), so per frame

    sum of stage latencies = bN - b0 <= t1 - t0 = frame latency

and the difference, the harness overhead, is what lies outside the stages: one clock reading, the
device-event reads, two calls into the frame. It is stored as its own series (``overhead``).
Per-stage samples are per-frame, aligned with the frame samples (never block means): sample ``i``
of every stage belongs to frame ``i``. Warm-up frames are recorded too and dropped: the measured
window is the last ``iterations`` frames.

The result's ``enqueue`` series is the sum of the stages' enqueue times (the host time spent
launching work), and ``gpu_compute`` the sum of the device times of the stages that have a device
clock (TensorRT engines; not ONNX Runtime on the CPU, not custom stages).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from ..bench.harness import (
    Clock,
    Measurement,
    PowerWindow,
    ProgressCallback,
    StopRule,
    Warmup,
    measure,
)


class TimedStage(Protocol):
    """What the frame needs of a stage (engine and custom stages both have it)."""

    name: str
    #: whether ``fetch_outputs`` runs in the frame (the stage produces a pipeline output)
    fetches: bool

    def stage_inputs(self) -> None: ...
    def enqueue(self) -> None: ...
    def fetch_outputs(self) -> None: ...
    def synchronize(self) -> None: ...
    def device_timer(self) -> Any: ...


@dataclass(frozen=True)
class StageTimes:
    """Per-frame samples of one stage, in ms, aligned with the frame samples."""

    name: str
    latency_ms: np.ndarray
    enqueue_ms: np.ndarray
    gpu_compute_ms: np.ndarray | None = None


@dataclass(frozen=True)
class PipelineMeasurement:
    """The frame's measurement (what ``bench`` would produce) and every stage's samples."""

    frame: Measurement
    stages: tuple[StageTimes, ...]

    @property
    def stage_sum_ms(self) -> np.ndarray:
        """Per frame: the sum of the stage latencies."""
        total = np.zeros_like(self.frame.latency_ms)
        for s in self.stages:
            total = total + s.latency_ms
        return total

    @property
    def overhead_ms(self) -> np.ndarray:
        """Per frame: frame latency minus the sum of the stage latencies (>= 0)."""
        return self.frame.latency_ms - self.stage_sum_ms


class _Frame:
    """The whole pipeline as one runner of the bench harness (see the module docstring)."""

    def __init__(self, stages: Sequence[TimedStage], *, transfers: bool, clock: Clock) -> None:
        self.stages = list(stages)
        self.transfers = transfers
        self.clock = clock
        self.timers = [s.device_timer() for s in self.stages]
        n = len(self.stages)
        self.lat: list[list[int]] = [[] for _ in range(n)]
        self.enq: list[list[int]] = [[] for _ in range(n)]
        self.gpu: list[list[float]] = [[] for _ in range(n)]

    def stage_inputs(self) -> None:
        return None

    def enqueue(self) -> None:
        clock = self.clock
        transfers = self.transfers
        timers = self.timers
        b = clock()
        for i, st in enumerate(self.stages):
            timer = timers[i]
            if transfers:
                st.stage_inputs()
            if timer is not None:
                timer.record_start()
            q0 = clock()
            st.enqueue()
            q1 = clock()
            if timer is not None:
                timer.record_stop()
            if transfers and st.fetches:
                st.fetch_outputs()
            st.synchronize()
            e = clock()
            self.lat[i].append(e - b)
            self.enq[i].append(q1 - q0)
            b = e
        for i, timer in enumerate(timers):
            if timer is not None:
                self.gpu[i].append(float(timer.elapsed_ms()))

    def fetch_outputs(self) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def device_timer(self) -> None:
        # the frame's device time is the sum of the stages' (set after measuring)
        return None


def measure_pipeline(
    stages: Sequence[TimedStage],
    *,
    warmup: Warmup | None = None,
    stop: StopRule | None = None,
    transfers: bool = True,
    clock: Clock = time.perf_counter_ns,
    power: PowerWindow | None = None,
    on_progress: ProgressCallback | None = None,
) -> PipelineMeasurement:
    """Warm up and time frames of ``stages`` (already set up) until ``stop``.

    ``transfers=False`` skips the stages' host->device input copies and device->host output copies
    (trtexec's ``--noDataTransfers``); stage-to-stage data never crosses the host either way.
    """
    frame = _Frame(stages, transfers=transfers, clock=clock)
    m = measure(
        frame,
        warmup=warmup,
        stop=stop,
        transfers=True,  # the frame's own phases are no-ops; `transfers` applies per stage above
        clock=clock,
        power=power,
        on_progress=on_progress,
    )
    n = m.iterations
    times: list[StageTimes] = []
    for i, st in enumerate(frame.stages):
        gpu = (
            np.asarray(frame.gpu[i][-n:], dtype=np.float64) if frame.timers[i] is not None else None
        )
        times.append(
            StageTimes(
                name=st.name,
                latency_ms=np.asarray(frame.lat[i][-n:], dtype=np.float64) / 1e6,
                enqueue_ms=np.asarray(frame.enq[i][-n:], dtype=np.float64) / 1e6,
                gpu_compute_ms=gpu,
            )
        )
    enqueue = np.sum([t.enqueue_ms for t in times], axis=0) if times else m.enqueue_ms
    gpus = [t.gpu_compute_ms for t in times if t.gpu_compute_ms is not None]
    gpu_total = np.sum(gpus, axis=0) if gpus else None
    return PipelineMeasurement(
        frame=replace(
            m, enqueue_ms=np.asarray(enqueue, dtype=np.float64), gpu_compute_ms=gpu_total
        ),
        stages=tuple(times),
    )
