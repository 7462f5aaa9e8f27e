"""The demo: the bundled sample BEV model, benchmarked on the best backend here, against targets.

The targets are the deployment plan's: P99 latency under 80 ms and more than 12 FPS, and, where
power is measured, a mean power under 60 W.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _lazy
from .gate.targets import Targets, parse_targets

DEMO_TARGETS: dict[str, str] = {"latency.p99_ms": "< 80", "throughput.fps": "> 12"}
DEMO_POWER_TARGET: tuple[str, str] = ("power.mean_w", "< 60")


def demo_targets(*, with_power: bool) -> Targets:
    """The demo's targets; the power target only where a power source measured the run."""
    items = dict(DEMO_TARGETS)
    if with_power:
        items[DEMO_POWER_TARGET[0]] = DEMO_POWER_TARGET[1]
    text = "[targets]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in items.items())
    return parse_targets(text, source="demo targets")


def best_backend() -> str:
    """TensorRT where it and pycuda import (a Jetson or a TensorRT container), else ONNX Runtime."""
    if _lazy.is_available("tensorrt") and _lazy.is_available("pycuda"):
        return "tensorrt"
    return "onnxruntime"


def default_size(backend: str) -> str:
    # The full model (BEVFusion's 1x6x3x256x704 input) takes seconds per frame on a CPU; the demo
    # on ONNX Runtime uses the tiny size so that a newcomer sees a result within a minute.
    return "full" if backend == "tensorrt" else "tiny"


def prepare_demo_model(out_dir: str | os.PathLike[str], *, size: str, seed: int = 0) -> Path:
    """Write the sample model to ``out_dir`` unless an identical file is already there."""
    from ._io import atomic_write_bytes
    from .model.load import verify_written_model
    from .zoo.sample_bev import build_sample_bev

    path = Path(out_dir) / f"sample-bev-{size}.onnx"
    model = build_sample_bev(size, seed=seed)
    data = model.SerializeToString()
    if not (path.is_file() and path.read_bytes() == data):
        verify_written_model(model, what=f"the demo model {path.name}")
        atomic_write_bytes(path, data)
    return path
