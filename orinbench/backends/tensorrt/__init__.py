"""The TensorRT backend: build engines from ONNX, run and time them (docs/tensorrt.md).

Importing this package never imports TensorRT or pycuda; they are imported on first use through
``orinbench._lazy``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ... import _lazy
from ..._io import require_file, sha256_file
from .build import (
    PRECISIONS,
    BuildOptions,
    BuildReport,
    OnnxParseError,
    ShapeRange,
    build_engine,
    default_engine_path,
    parse_shapes,
)
from .cuda import CudaApi
from .progress import BuildProgress, ProgressCallback
from .runner import TensorRTRunner
from .sidecar import read_sidecar

ONNX_SUFFIXES = (".onnx",)

__all__ = [
    "PRECISIONS",
    "BuildOptions",
    "BuildProgress",
    "BuildReport",
    "OnnxParseError",
    "ShapeRange",
    "TensorRTRunner",
    "build_engine",
    "default_engine_path",
    "describe_engine",
    "enqueue_bound_warning",
    "measure_throughput",
    "open_tensorrt_runner",
    "parse_shapes",
    "profile_layers",
    "tensorrt_available",
]


def tensorrt_available() -> bool:
    """True when TensorRT can be imported (``orinbench demo`` picks this backend then)."""
    return _lazy.is_available("tensorrt")


def open_tensorrt_runner(
    model_path: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    build_options: BuildOptions | None = None,
    engine_out: str | os.PathLike[str] | None = None,
    force_build: bool = False,
    plugins: Sequence[str | os.PathLike[str]] = (),
    zero_copy: bool = False,
    cuda_graph: bool = False,
    spin_wait: bool = False,
    streams: int = 1,
    profiling: bool = False,
    device: int = 0,
    on_build_progress: ProgressCallback | None = None,
    on_warning: Any = None,
    cuda: CudaApi | None = None,
) -> TensorRTRunner:
    """A (not yet entered) runner for an engine, or for an ONNX model after building it.

    For ``.onnx`` the engine is built first (skipped when up to date) with ``build_options``
    (default: ``precision`` and ``plugins``) into ``engine_out`` (default
    :func:`default_engine_path`); the runner's ``build_report`` tells what happened.
    ``profiling``: a ``--profile-layers`` run will follow (the runner reserves an optimization
    profile for it where TensorRT needs one per context; ``build_options.contexts`` builds it).
    """
    path = require_file(model_path, what="model or engine file")
    report: BuildReport | None = None
    if path.suffix.lower() in ONNX_SUFFIXES:
        opts = build_options or BuildOptions(
            precision=precision,
            plugins=tuple(Path(p) for p in plugins),
            contexts=streams + (1 if profiling else 0),
        )
        report = build_engine(
            path,
            engine_out,
            opts,
            force=force_build,
            on_progress=on_build_progress,
            on_warning=on_warning,
            cuda=cuda,
        )
        engine_path: Path = report.engine_path
    else:
        engine_path = path
    runner = TensorRTRunner(
        engine_path,
        plugins=plugins,
        zero_copy=zero_copy,
        cuda_graph=cuda_graph,
        spin_wait=spin_wait,
        streams=streams,
        profiling=profiling,
        device=device,
        cuda=cuda,
    )
    runner.build_report = report
    return runner


def describe_engine(engine_path: str | os.PathLike[str]) -> dict[str, Any]:
    """What to store in a result's ``config.extra`` about an engine: file hash and its sidecar."""
    path = require_file(engine_path, what="engine file")
    sidecar = read_sidecar(path)
    return {
        "engine": {
            "path": str(path),
            "sha256": sha256_file(path),
            "size_bytes": path.stat().st_size,
        },
        "build": sidecar,
    }


def profile_layers(runner: TensorRTRunner, iterations: int = 50) -> dict[str, Any]:
    """Per-layer times of a separate profiled run (see :mod:`.profiling`)."""
    from .profiling import profile_layers as _profile

    return _profile(runner, iterations)


def measure_throughput(runner: TensorRTRunner, **kwargs: Any) -> Any:
    """Aggregate FPS over the runner's streams (see :mod:`.throughput`)."""
    from .throughput import measure_throughput as _measure

    return _measure(runner, **kwargs)


def enqueue_bound_warning(enqueue_ms: Any, gpu_compute_ms: Any) -> Any:
    """trtexec's enqueue-bound check on harness samples (see :mod:`.throughput`)."""
    from .throughput import enqueue_bound_warning as _warn

    return _warn(enqueue_ms, gpu_compute_ms)
