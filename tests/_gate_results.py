"""Synthetic results for the gate, baseline and CLI tests (seeded, no hardware)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from orinbench.bench.stats import summarize
from orinbench.results.schema import Environment, ModelRef, Result, RunConfig

JETSON = {
    "module": "Jetson AGX Orin 64GB",
    "module_part": "P3701-0005",
    "jetpack": "6.0",
    "l4t": "36.3.0",
    "tensorrt": "8.6.2",
    "power_mode": "MAXN",
}


def latency_samples(
    n: int, *, median_ms: float = 20.0, sigma: float = 0.05, seed: int = 0
) -> np.ndarray:
    """Log-normal latencies: a right-skewed shape like real inference times."""
    rng = np.random.default_rng(seed)
    return median_ms * np.exp(sigma * rng.standard_normal(n))


def make_result(
    samples_ms: Any = None,
    *,
    n: int = 2000,
    median_ms: float = 20.0,
    seed: int = 0,
    device: Mapping[str, Any] | None = JETSON,
    backend: str = "tensorrt",
    precision: str = "fp16",
    model_name: str = "bevfusion-tiny",
    sha256: str = "ab" * 32,
    power: Mapping[str, Any] | None = None,
    keep_samples: bool = True,
) -> Result:
    """A Result whose stats, fps and samples come from seeded synthetic latencies."""
    lat = (
        np.asarray(samples_ms, dtype=float)
        if samples_ms is not None
        else latency_samples(n, median_ms=median_ms, seed=seed)
    )
    return Result(
        tool_version="0.1.0",
        created_utc="2025-01-01T00:00:00.000000Z",
        environment=Environment(
            host="h",
            cpu="c",
            os="linux",
            python="3.11",
            backend=backend,
            backend_version="8.6.2",
            device=dict(device) if device is not None else None,
        ),
        model=ModelRef(path="m.onnx", sha256=sha256, inputs=(), outputs=(), name=model_name),
        config=RunConfig(backend=backend, precision=precision),
        samples={"latency": tuple(float(x) for x in lat)} if keep_samples else {},
        stats={"latency": summarize(lat).to_dict()},
        throughput={"fps": 1000.0 / float(np.mean(lat)), "iterations": int(lat.size)},
        power=dict(power) if power is not None else None,
    )
