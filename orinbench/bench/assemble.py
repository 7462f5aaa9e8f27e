"""Turn a harness :class:`~orinbench.bench.harness.Measurement` into a result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .. import __version__
from ..results.schema import (
    ENQUEUE,
    GPU_COMPUTE,
    HOST_LATENCY,
    Environment,
    ModelRef,
    QualityWarning,
    Result,
    RunConfig,
)
from .harness import Measurement
from .stats import quality_warnings, summarize

#: trtexec's check: when the host needs more than this fraction of the GPU compute time to enqueue,
#: the GPU idles between inferences and throughput is bound by the host, not by the engine.
ENQUEUE_BOUND_FRACTION = 0.8


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _series(m: Measurement) -> dict[str, np.ndarray]:
    out = {HOST_LATENCY: m.latency_ms, ENQUEUE: m.enqueue_ms}
    if m.gpu_compute_ms is not None:
        out[GPU_COMPUTE] = m.gpu_compute_ms
    return out


def enqueue_bound_warning(
    enqueue_ms: np.ndarray, gpu_compute_ms: np.ndarray | None
) -> QualityWarning | None:
    """``median(enqueue) > ENQUEUE_BOUND_FRACTION * median(gpu compute)`` -> a warning."""
    if gpu_compute_ms is None or len(enqueue_ms) == 0 or len(gpu_compute_ms) == 0:
        return None
    enq = float(np.median(enqueue_ms))
    gpu = float(np.median(gpu_compute_ms))
    if enq <= ENQUEUE_BOUND_FRACTION * gpu:
        return None
    return QualityWarning(
        code="enqueue-bound",
        message=f"throughput may be bound by enqueue time (median {enq:.3f} ms) rather than GPU "
        f"compute (median {gpu:.3f} ms): the GPU may be under-used; --cuda-graph may help",
    )


def assemble_result(
    m: Measurement,
    *,
    environment: Environment,
    model: ModelRef,
    config: RunConfig,
    confidence: float = 0.95,
    warnings: Iterable[QualityWarning] = (),
    power: Mapping[str, Any] | None = None,
    stages: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Result:
    series = _series(m)
    stats = {k: summarize(v, confidence=confidence).to_dict() for k, v in series.items()}
    found = list(quality_warnings(m.latency_ms))
    eb = enqueue_bound_warning(m.enqueue_ms, m.gpu_compute_ms)
    if eb is not None:
        found.append(eb)
    found.extend(warnings)
    throughput = {
        "fps": m.fps,
        "iterations": m.iterations,
        "wall_s": m.wall_s,
        "warmup_iterations": m.warmup_iterations,
        "warmup_s": m.warmup_s,
    }
    return Result(
        tool_version=__version__,
        created_utc=utc_now(),
        environment=environment,
        model=model,
        config=config,
        samples={k: tuple(float(x) for x in v) for k, v in series.items()},
        stats=stats,
        throughput=throughput,
        stop_reason=m.stop_reason,
        stopped_by=m.stopped_by,
        warnings=tuple(found),
        power=power,
        stages=stages,
        extra=dict(extra or {}),
    )
