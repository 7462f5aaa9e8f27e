"""``bench`` on the TensorRT backend: an engine, or an ONNX model built first (and ``demo``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bench.harness import StopRule, Warmup
from ..bench.run import bench_runner, make_feed
from ..errors import UsageError
from ..results.schema import ModelRef, QualityWarning, Result
from ._common import Telemetry, finish_result, parse_shapes, protocol_from_args
from ._progress import Progress


def _warn(message: str) -> None:
    print(f"tensorrt: {message}", file=sys.stderr)


def _engine_precision(sidecar: dict[str, Any] | None, asked: str | None, engine: Path) -> str:
    recorded = ((sidecar or {}).get("settings") or {}).get("precision")
    if asked and recorded and asked != recorded:
        raise UsageError(
            f"--precision {asked} does not match the engine {engine}, built as {recorded}",
            fix=f"drop --precision, or bench an engine built with --precision {asked}",
        )
    return str(asked or recorded or "unknown")


def bench_tensorrt(
    model: Path,
    *,
    args: argparse.Namespace,
    warmup: Warmup,
    stop: StopRule,
    tel: Telemetry,
    on_progress: Callable[[int, float], None] | None,
    precision: str | None,
    engine_out: Path | None = None,
) -> Result:
    """Build (for .onnx) and benchmark with TensorRT; layer profile and multi-stream extras."""
    from ..backends.tensorrt import (
        BuildOptions,
        ShapeRange,
        describe_engine,
        measure_throughput,
        open_tensorrt_runner,
        profile_layers,
    )

    shapes = parse_shapes(getattr(args, "shape", None))
    is_onnx = model.suffix.lower() == ".onnx"
    quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
    options = None
    if is_onnx and shapes:
        # an absurd --shape is refused before TensorRT builds a profile for it (on a Jetson the
        # GPU's buffers come out of the same memory as the generated inputs)
        from ..calib.specs import model_io_specs
        from ..model.feeds import check_feed_fits
        from ..model.shapes import resolve_partial

        inputs, _ = model_io_specs(model)
        partial = resolve_partial(inputs, shapes)
        if all(isinstance(d, int) for dims in partial.values() for d in dims):
            check_feed_fits(inputs, {n: tuple(int(d) for d in v) for n, v in partial.items()})
    if is_onnx:
        options = BuildOptions(
            precision=precision or "fp32",
            plugins=tuple(Path(p) for p in getattr(args, "plugins", ())),
            shapes={n: ShapeRange(s, s, s) for n, s in shapes.items()},
            timing_cache=getattr(args, "timing_cache", None),
            calib_cache=getattr(args, "calib_cache", None),
            calib_data=getattr(args, "calib_data", None),
            # one optimization profile per context running at once (needed before TensorRT 9)
            contexts=getattr(args, "streams", 1)
            + (1 if getattr(args, "profile_layers", False) else 0),
        )
    build_progress = Progress("build", enabled=not quiet)
    try:
        runner = open_tensorrt_runner(
            model,
            precision=precision or "fp32",
            build_options=options,
            engine_out=engine_out or getattr(args, "engine_out", None),
            force_build=getattr(args, "force_build", False),
            plugins=tuple(getattr(args, "plugins", ())),
            zero_copy=getattr(args, "zero_copy", False),
            cuda_graph=getattr(args, "cuda_graph", False),
            spin_wait=getattr(args, "spin_wait", False),
            streams=getattr(args, "streams", 1),
            profiling=getattr(args, "profile_layers", False),
            device=getattr(args, "device", 0),
            on_build_progress=build_progress.build,
            on_warning=_warn,
        )
    finally:
        build_progress.close()
    with runner:
        engine_info = describe_engine(runner.engine_path)
        sidecar = engine_info.get("build")
        used_precision = (
            _engine_precision(sidecar, precision, runner.engine_path)
            if not is_onnx
            else (precision or "fp32")
        )
        feed, resolved = make_feed(
            runner.inputs,
            shapes=shapes or runner.default_shapes(),
            npz=getattr(args, "inputs", None),
            seed=args.seed,
        )
        onnx_ref = (sidecar or {}).get("onnx") or {}
        src = model if is_onnx else Path(onnx_ref.get("path") or runner.engine_path)
        ref = ModelRef(
            name=src.stem,
            path=str(src),
            sha256=str(onnx_ref.get("sha256") or engine_info["engine"]["sha256"]),
            inputs=runner.inputs,
            outputs=runner.outputs,
        )
        extra: dict[str, Any] = {
            **engine_info,
            "cuda_graph": runner.cuda_graph_active,
            "zero_copy": getattr(args, "zero_copy", False),
            "spin_wait": getattr(args, "spin_wait", False),
            "streams": getattr(args, "streams", 1),
        }
        result = bench_runner(
            runner,
            model=ref,
            feed=feed,
            shapes=resolved,
            precision=used_precision,
            warmup=warmup,
            stop=stop,
            transfers=not getattr(args, "no_transfers", False),
            input_source=f"npz:{args.inputs}" if getattr(args, "inputs", None) else "random",
            seed=args.seed,
            extra_config=extra,
            warnings=[QualityWarning("runner", n) for n in runner.notes],
            on_progress=on_progress,
            # bench --until-decided's judge (cli/bench.py), None for every other command
            judge=getattr(args, "until_decided_judge", None),
            **tel.bench_kwargs(),
        )
        more: dict[str, Any] = {}
        if getattr(args, "profile_layers", False):
            more["layers"] = profile_layers(runner, getattr(args, "profile_iterations", 50))
        if getattr(args, "streams", 1) > 1:
            more["throughput_streams"] = measure_throughput(
                runner,
                duration_s=stop.duration_s or 5.0,
                warmup_s=warmup.seconds or 0.0,
                transfers=not getattr(args, "no_transfers", False),
            ).to_dict()
    if more:
        result = result.with_(extra={**result.extra, **more})
    return result


def run_tensorrt(args: argparse.Namespace) -> int:
    result = measure_tensorrt(args)
    finish_result(result, args, command="bench")
    return 0


def measure_tensorrt(args: argparse.Namespace, *, stop: StopRule | None = None) -> Result:
    """Bench ``args.model`` on TensorRT with the CLI's protocol (``stop`` replaces its stop
    rule) and telemetry; the finished result, not yet saved or printed."""
    warmup, default_stop = protocol_from_args(args)
    stop = stop if stop is not None else default_stop
    tel = Telemetry(args)
    progress = Progress("bench", enabled=not (args.quiet or args.json))
    try:
        result = bench_tensorrt(
            args.model,
            args=args,
            warmup=warmup,
            stop=stop,
            tel=tel,
            on_progress=progress,
            precision=args.precision,
        )
    finally:
        progress.close()
    return tel.finalize(result)


def bench_onnx_with_tensorrt(
    model: Path,
    *,
    args: argparse.Namespace,
    warmup: Warmup,
    stop: StopRule,
    tel: Telemetry,
    progress: Callable[[int, float], None] | None,
    precision: str,
) -> Result:
    """The demo's TensorRT path: build the sample model at ``precision`` and bench it."""
    return bench_tensorrt(
        model,
        args=args,
        warmup=warmup,
        stop=stop,
        tel=tel,
        on_progress=progress,
        precision=precision,
        engine_out=model.with_suffix(f".{precision}.engine"),
    )
