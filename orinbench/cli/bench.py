"""``orinbench bench MODEL.onnx | ENGINE.engine``: measure latency, throughput and power."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._io import require_file
from ..bench.run import BACKENDS, bench_model
from ..errors import UsageError
from ._common import (
    Telemetry,
    add_measure_args,
    add_model_input_args,
    add_output_args,
    finish_result,
    ort_options,
    parse_shapes,
    protocol_from_args,
)
from ._outputs import check_outputs
from ._progress import Progress

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark an ONNX model or a TensorRT engine",
        description="Benchmark an ONNX model (ONNX Runtime, or TensorRT after building) or a "
        "TensorRT engine: per-iteration latency percentiles with confidence intervals, FPS, "
        "power and energy, quality warnings.",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx or ENGINE.engine")
    p.add_argument(
        "--backend",
        choices=(*BACKENDS, "auto"),
        default="auto",
        help="auto: tensorrt for .engine files, onnxruntime for .onnx (default)",
    )
    p.add_argument(
        "--precision",
        default=None,
        choices=("fp32", "fp16", "int8", "best"),
        help="precision to build with (tensorrt backend on .onnx, default fp32); for an engine it "
        "is read from the sidecar and, when given, must match it",
    )
    add_model_input_args(p)
    trt = p.add_argument_group("tensorrt")
    trt.add_argument(
        "--no-transfers",
        action="store_true",
        help="time without H2D/D2H copies (trtexec --noDataTransfers)",
    )
    trt.add_argument(
        "--cuda-graph",
        action="store_true",
        help="capture execute_async_v3 once and replay it (trtexec --useCudaGraph)",
    )
    trt.add_argument(
        "--spin-wait",
        action="store_true",
        help="busy-wait for completion instead of blocking sync (trtexec --useSpinWait)",
    )
    trt.add_argument(
        "--zero-copy",
        action="store_true",
        help="mapped page-locked host memory instead of copies (Jetson shared memory)",
    )
    trt.add_argument(
        "--plugins",
        nargs="+",
        type=Path,
        default=(),
        metavar="LIB.so",
        help="plugin libraries to load before deserializing",
    )
    trt.add_argument(
        "--profile-layers",
        action="store_true",
        help="after the timed run, a separate IProfiler run for per-layer times",
    )
    trt.add_argument(
        "--streams",
        type=int,
        default=1,
        metavar="N",
        help="after the latency run, a throughput run keeping N inferences in flight",
    )
    trt.add_argument("--device", type=int, default=0, metavar="N", help="CUDA device index")
    trt.add_argument(
        "--engine-out",
        type=Path,
        default=None,
        metavar="X.engine",
        help="for .onnx: where the built engine goes (default beside the model)",
    )
    trt.add_argument("--force-build", action="store_true", help="rebuild even if up to date")
    trt.add_argument("--timing-cache", type=Path, default=None, metavar="FILE")
    trt.add_argument("--calib-cache", type=Path, default=None, metavar="CACHE")
    trt.add_argument("--calib-data", type=Path, default=None, metavar="DIR")
    trt.add_argument(
        "--profile-iterations",
        type=int,
        default=50,
        metavar="N",
        help="iterations of the --profile-layers run (default 50)",
    )
    add_measure_args(p)
    add_output_args(p)
    p.set_defaults(handler=run)


def choose_backend(model: Path, requested: str) -> str:
    """``auto``: TensorRT for engine files, ONNX Runtime for ONNX models."""
    if requested != "auto":
        return requested
    return "tensorrt" if model.suffix.lower() in ENGINE_SUFFIXES else "onnxruntime"


def run(args: argparse.Namespace) -> int:
    # a wrong path is the commonest mistake: say so before probing power sources or TensorRT
    require_file(args.model, what="model file")
    check_outputs(args, ("out", "engine_out", "timing_cache", "calib_cache", "history"))
    backend = choose_backend(args.model, args.backend)
    shapes = parse_shapes(args.shape)
    opts = ort_options(args)
    if opts and backend != "onnxruntime":
        raise UsageError(
            "--ort-providers and --ort-threads apply to ONNX Runtime, not TensorRT",
            fix="drop them, or bench the .onnx with --backend onnxruntime",
        )
    if backend == "tensorrt":
        from ._bench_trt import run_tensorrt

        return run_tensorrt(args)
    if args.precision not in (None, "fp32"):
        raise UsageError(
            f"--precision {args.precision} needs the tensorrt backend",
            why="ONNX Runtime runs the model in the precision it was exported in",
            fix="use --backend tensorrt, or bench an FP16/Q-DQ ONNX made by 'orinbench quantize'",
        )
    warmup, stop = protocol_from_args(args)
    tel = Telemetry(args)
    progress = Progress("bench", enabled=not (args.quiet or args.json))
    try:
        result = bench_model(
            args.model,
            backend=backend,
            shapes=shapes,
            inputs_npz=args.inputs,
            seed=args.seed,
            precision="fp32",
            runner_options=opts,
            warmup=warmup,
            stop=stop,
            on_progress=progress,
            **tel.bench_kwargs(),
        )
    finally:
        progress.close()
    result = tel.finalize(result)
    finish_result(result, args, command="bench")
    return 0
