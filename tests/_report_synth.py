"""Synthetic, seeded results for the report and history tests (no model, no device needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from orinbench.bench.stats import summarize
from orinbench.results.schema import (
    Environment,
    ModelRef,
    QualityWarning,
    Result,
    RunConfig,
    TensorSpec,
)


def make_result(
    *,
    seed: int = 0,
    n: int = 600,
    median_ms: float = 20.0,
    spread: float = 0.08,
    model: str = "bevfusion_tiny",
    precision: str = "fp16",
    module: str | None = "NVIDIA Jetson AGX Orin 64GB",
    backend: str = "tensorrt",
    host: str = "orin-01",
    created_utc: str = "2025-01-15T10:00:00Z",
    power: bool = True,
    stages: bool = False,
    gpu: bool = True,
    extra: Mapping[str, Any] | None = None,
    warnings: tuple[QualityWarning, ...] = (),
) -> Result:
    """A result whose latency is log-normal around ``median_ms``, with optional power and stages."""
    rng = np.random.default_rng(seed)
    lat = median_ms * np.exp(rng.normal(0.0, spread, n))
    samples: dict[str, tuple[float, ...]] = {"latency": tuple(float(x) for x in lat)}
    stats: dict[str, Any] = {"latency": summarize(lat).to_dict()}
    if gpu:
        g = lat * 0.8
        samples["gpu_compute"] = tuple(float(x) for x in g)
        stats["gpu_compute"] = summarize(g).to_dict()
    wall = float(lat.sum()) / 1000.0
    pw: dict[str, Any] | None = None
    if power:
        t = np.arange(0.0, wall, 0.05)
        total = 30.0 + 2.0 * np.sin(t) + rng.normal(0.0, 0.5, t.size)
        mean_w = float(total.mean())
        pw = {
            "source": "jtop",
            "mean_w": mean_w,
            "p95_w": float(np.percentile(total, 95)),
            "peak_w": float(total.max()),
            "rails": {
                "VDD_GPU_SOC": {"mean_w": mean_w * 0.6},
                "VDD_CPU_CV": {"mean_w": mean_w * 0.2},
            },
            "energy": {"j": mean_w * wall, "mj_per_inference": mean_w * wall / n * 1000.0},
            "trace": {"t_s": [float(x) for x in t], "total_w": [float(x) for x in total]},
        }
    st: dict[str, Any] | None = None
    if stages:
        st = {}
        shares = {"preprocess": 0.15, "backbone": 0.6, "bev_pool": 0.15, "head": 0.1}
        for name, share in shares.items():
            s = lat * share * np.exp(rng.normal(0.0, 0.02, n))
            st[name] = {"latency": summarize(s).to_dict(), "share": share}
    env = Environment(
        host=host,
        cpu="ARMv8 Processor rev 1 (v8l)",
        os="Linux 5.15.148-tegra (aarch64)",
        python="3.10.12",
        backend=backend,
        backend_version="10.3.0",
        device={"module": module, "jetpack": "6.1", "power_mode": "MAXN"} if module else None,
    )
    ref = ModelRef(
        path=f"/models/{model}.onnx",
        sha256=f"{seed:064x}",
        inputs=(TensorSpec("images", "float32", (1, 6, 3, 256, 704)),),
        outputs=(TensorSpec("bev", "float32", (1, 10, 200, 200)),),
        name=model,
    )
    cfg = RunConfig(backend=backend, precision=precision, power_source="jtop" if power else "none")
    return Result(
        tool_version="0.1.0",
        created_utc=created_utc,
        environment=env,
        model=ref,
        config=cfg,
        samples=samples,
        stats=stats,
        throughput={"fps": n / wall, "iterations": n, "wall_s": wall, "warmup_iterations": 50},
        stop_reason="duration reached",
        warnings=warnings,
        power=pw,
        stages=st,
        extra=dict(extra or {}),
    )


def soak_extra(*, windows: int = 12, seed: int = 1) -> dict[str, Any]:
    """An ``extra["soak"]`` section: per-window P99, power, GPU clock and temperature."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(windows):
        rows.append(
            {
                "t_s": 60.0 * (i + 1),
                "p99_ms": 24.0 + 0.2 * i + float(rng.normal(0, 0.1)),
                "power_w": 31.0 + float(rng.normal(0, 0.3)),
                "gpu_clock_mhz": 1300.0 if i < windows - 3 else 1100.0,
                "temp_c": 50.0 + 1.5 * i,
            }
        )
    return {"windows": rows, "p99_drift_pct": 9.0}


def decide_extra() -> list[dict[str, Any]]:
    """An ``extra["decide"]`` table: one row per precision."""
    return [
        {"precision": "fp32", "p99_ms": 41.2, "fps": 25.1, "map_drop": 0.0, "verdict": "ok"},
        {"precision": "fp16", "p99_ms": 22.0, "fps": 47.9, "map_drop": 0.1, "verdict": "chosen"},
        {
            "precision": "int8",
            "p99_ms": 14.5,
            "fps": 70.3,
            "map_drop": 2.4,
            "verdict": "over budget",
        },
    ]
