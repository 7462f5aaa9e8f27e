"""``orinbench build --repeat N``: one engine built N times per timing-cache mode, the fastest kept.

TensorRT picks kernels by timing them while it builds, so builds with identical inputs can differ
in speed. :func:`build_repeated` builds the model N times sharing one timing cache and N times
without one (:func:`orinbench.decide.repeat.repeat_builds`: all builds first, then the engines
benchmarked round-robin over the modes), benchmarks every engine with the TensorRT runner under
one protocol (:func:`orinbench.bench.run.bench_model`: host latency per inference, the same
seeded random inputs), reports the spread of the median and P99 across builds and the builds
that differ from their siblings by more than the run-to-run noise (statistics in
``docs/decide.md``), and keeps the fastest engine (lowest median) at ``engine_path`` with its
sidecar and log; the sidecar's ``repeat`` section says it is the fastest of 2N builds.

Every build is forced (no "up to date" skip) with the same :class:`~.build.BuildOptions`; only the
timing cache differs: ``options.timing_cache`` (a fresh temporary file when None) in mode
``shared-cache``, none in ``no-cache``. A build that fails (a calibration cache TensorRT would
ignore, a parser error) stops the repeat and leaves nothing at ``engine_path``.

Written and tested against the TensorRT test double (``tests/trt_double``), whose builds differ
in speed only when a test asks it to (``tactic_jitter``); no real TensorRT was available here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..._io import require_file
from ...bench.harness import StopRule, Warmup
from ...results.schema import Result
from .build import BuildOptions, WarningCallback, build_engine, default_engine_path
from .cuda import CudaApi
from .progress import ProgressCallback
from .sidecar import read_sidecar, write_sidecar

#: default protocol of each engine's benchmark: iterations measured, seconds of warm-up
DEFAULT_ITERATIONS = 200
DEFAULT_WARMUP_S = 1.0


@dataclass(frozen=True)
class RepeatedBuild:
    """What :func:`build_repeated` did: the report, the kept engine and its benchmark."""

    report: Any  # orinbench.decide.repeat.RepeatReport
    engine_path: Path
    sidecar: Mapping[str, Any]
    result: Result
    warmup: Warmup
    stop: StopRule


def build_repeated(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str] | None = None,
    options: BuildOptions | None = None,
    *,
    n: int,
    warmup: Warmup | None = None,
    stop: StopRule | None = None,
    modes: Sequence[str] | None = None,
    on_step: Callable[[str], None] | None = None,
    on_build_progress: ProgressCallback | None = None,
    on_bench_progress: Callable[[int, float], None] | None = None,
    on_warning: WarningCallback | None = None,
    cuda: CudaApi | None = None,
) -> RepeatedBuild:
    """Build ``onnx_path`` ``n`` times per timing-cache mode, benchmark each engine, keep the
    fastest at ``engine_path`` (default :func:`~.build.default_engine_path`).

    ``warmup``/``stop`` are each benchmark's protocol (default: :data:`DEFAULT_WARMUP_S` seconds,
    then :data:`DEFAULT_ITERATIONS` iterations); ``modes`` default to ``("shared-cache",
    "no-cache")``. ``n`` < 1 is a UsageError (exit 2) before anything is built.
    """
    from ...bench.run import bench_model
    from ...decide.repeat import MODE_NONE, MODE_SHARED, BuildRequest, check_repeat, repeat_builds

    check_repeat(n)
    opts = options if options is not None else BuildOptions()
    src = require_file(onnx_path, what="ONNX model")
    keep = Path(engine_path) if engine_path else default_engine_path(src, opts.precision)
    warmup = warmup if warmup is not None else Warmup(seconds=DEFAULT_WARMUP_S)
    stop = stop if stop is not None else StopRule(iterations=DEFAULT_ITERATIONS)
    # dynamic inputs are benchmarked at the optimization profile's opt shape
    shapes = {name: rng.opt for name, rng in opts.shapes.items()}

    def build(req: BuildRequest) -> Path:
        report = build_engine(
            src,
            req.engine_path,
            replace(opts, timing_cache=req.timing_cache),
            force=True,
            on_progress=on_build_progress,
            on_warning=on_warning,
            cuda=cuda,
        )
        return report.engine_path

    def bench(path: Path) -> Result:
        return bench_model(
            path,
            backend="tensorrt",
            shapes=shapes,
            precision=opts.precision,
            name=src.stem,
            runner_options={"plugins": tuple(opts.plugins), "cuda": cuda},
            warmup=warmup,
            stop=stop,
            on_progress=on_bench_progress,
        )

    made_folder = not keep.parent.exists()
    try:
        report, result = repeat_builds(
            n=n,
            build=build,
            bench=bench,
            keep=keep,
            timing_cache=opts.timing_cache,
            modes=tuple(modes) if modes is not None else (MODE_SHARED, MODE_NONE),
            on_step=on_step,
        )
    except BaseException:
        # repeat_builds made the engine's folder for its work folder: a failed repeat leaves none
        if made_folder and keep.parent.is_dir() and not any(keep.parent.iterdir()):
            keep.parent.rmdir()
        raise
    return RepeatedBuild(
        report=report,
        engine_path=keep,
        sidecar=_follow_calibration_cache(keep),
        result=result,
        warmup=warmup,
        stop=stop,
    )


def _follow_calibration_cache(engine_path: Path) -> Mapping[str, Any]:
    """The kept engine's sidecar, its ``calibration.cache_written`` pointing at the calibration
    cache that moved with it (``--calib-data``: written beside the build in the work folder)."""
    sidecar = dict(read_sidecar(engine_path) or {})
    calibration = sidecar.get("calibration")
    if not isinstance(calibration, Mapping):
        return sidecar
    moved = engine_path.with_name(engine_path.name + ".calib")
    written = calibration.get("cache_written")
    if written and written != str(moved) and moved.is_file():
        sidecar["calibration"] = {**calibration, "cache_written": str(moved)}
        write_sidecar(engine_path, sidecar)
    return sidecar
