"""``orinbench build MODEL.onnx``: a TensorRT engine, its sidecar and its build log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..backends.tensorrt.build import PRECISIONS
from ._progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="build a TensorRT engine from an ONNX model",
        description="Build a TensorRT engine (FP32/FP16/INT8) from an ONNX model. Next to the "
        "engine: NAME.engine.json (how it was built: model hash, settings, versions, GPU, "
        "per-layer precision) and NAME.engine.log (TensorRT's log). A build whose inputs match "
        "the sidecar is skipped as up to date.",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="ENGINE",
        help="engine file (default engines/<model>.<precision>.engine)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (default), fp16, int8 (needs calibration or a Q/DQ model), best",
    )
    cal = p.add_mutually_exclusive_group()
    cal.add_argument(
        "--calib-cache",
        type=Path,
        default=None,
        metavar="FILE",
        help="INT8 from an existing TensorRT calibration cache",
    )
    cal.add_argument(
        "--calib-data",
        type=Path,
        default=None,
        metavar="DIR",
        help="calibrate while building, from this calibration set",
    )
    p.add_argument(
        "--calib-batch",
        type=int,
        default=1,
        metavar="N",
        help="calibration batch size with --calib-data (default 1)",
    )
    p.add_argument(
        "--workspace",
        type=int,
        default=None,
        metavar="MiB",
        help="builder workspace limit (default: TensorRT's, the device memory)",
    )
    p.add_argument(
        "--timing-cache",
        type=Path,
        default=None,
        metavar="FILE",
        help="timing cache: created if missing, reused, saved after the build",
    )
    p.add_argument(
        "--shapes",
        action="append",
        default=[],
        metavar="NAME:MIN/OPT/MAX",
        help="optimization profile of a dynamic input, e.g. "
        "images:1x6x3x256x704/1x6x3x256x704/2x6x3x256x704 (repeatable)",
    )
    p.add_argument(
        "--dla-core",
        type=int,
        default=None,
        metavar="N",
        help="build for DLA core N (Orin: 0 or 1)",
    )
    p.add_argument(
        "--gpu-fallback",
        action="store_true",
        help="with --dla-core: run layers DLA cannot on the GPU",
    )
    p.add_argument(
        "--plugins",
        nargs="+",
        type=Path,
        default=[],
        metavar="LIB.so",
        help="plugin libraries, loaded before parsing (e.g. BEV pooling)",
    )
    p.add_argument(
        "--opt-level",
        type=int,
        default=None,
        metavar="0..5",
        help="builder optimization level (TensorRT 8.6+, default 3)",
    )
    p.add_argument(
        "--sparsity",
        action="store_true",
        help="allow 2:4 structured-sparsity kernels for sparse weights",
    )
    p.add_argument(
        "--strongly-typed",
        action="store_true",
        help="TensorRT 10: build strongly typed (FP16 via an FP16 ONNX, INT8 via Q/DQ), "
        "as TensorRT 11 always does",
    )
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose messages in the log")
    p.add_argument("--json", action="store_true", help="print the sidecar JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or warnings")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..backends.tensorrt import BuildOptions, OnnxParseError, build_engine, parse_shapes

    options = BuildOptions(
        precision=args.precision,
        workspace_mib=args.workspace,
        timing_cache=args.timing_cache,
        shapes=parse_shapes(args.shapes),
        dla_core=args.dla_core,
        gpu_fallback=args.gpu_fallback,
        plugins=tuple(args.plugins),
        opt_level=args.opt_level,
        sparsity=args.sparsity,
        strongly_typed=args.strongly_typed,
        calib_cache=args.calib_cache,
        calib_data=args.calib_data,
        calib_batch=args.calib_batch,
        verbose_log=args.verbose,
    )
    chatty = not (args.quiet or args.json)
    bar = Progress("build", enabled=chatty)

    def on_warning(text: str) -> None:
        if chatty:
            bar.close()
            print(f"warning: {text}", file=sys.stderr)

    try:
        report = build_engine(
            args.model,
            args.out,
            options,
            force=args.force,
            on_progress=bar.build,
            on_warning=on_warning,
        )
    except OnnxParseError as exc:
        bar.close()
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        raise
    finally:
        bar.close()
    if args.json:
        print(json.dumps(dict(report.sidecar), indent=2))
        return 0
    if report.skipped:
        print(f"{report.engine_path}: up to date (use --force to rebuild)")
        return 0
    sc = report.sidecar
    layers = sc.get("layers") or {}
    mix = ", ".join(f"{k} {v}" for k, v in (layers.get("precision") or {}).items())
    print(
        f"built {report.engine_path} ({sc['engine']['size_bytes'] / 2**20:.1f} MiB) in "
        f"{sc['build']['seconds']:.1f} s with TensorRT {sc['versions']['tensorrt']} "
        f"[{sc['precision_path']}]"
    )
    if mix:
        print(f"layers: {layers.get('count')} ({mix})")
    print(f"sidecar: {report.sidecar_path}")
    print(f"log:     {report.log_path}")
    return 0
