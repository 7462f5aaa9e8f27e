"""``orinbench build MODEL.onnx``: a TensorRT engine, its sidecar and its build log.

``--repeat N`` builds N times with a shared timing cache and N times without one, benchmarks each
engine and keeps the fastest (:func:`orinbench.backends.tensorrt.repeat.build_repeated`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..backends.tensorrt.build import PRECISIONS, BuildOptions
from ..backends.tensorrt.repeat import DEFAULT_ITERATIONS, DEFAULT_WARMUP_S
from ..errors import UsageError
from ._outputs import check_outputs
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
        "--contexts",
        type=int,
        default=1,
        metavar="N",
        help="execution contexts that run at once (bench --streams N, +1 for --profile-layers): "
        "before TensorRT 9 a dynamic-shape engine needs one optimization profile each",
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
    rep = p.add_argument_group(
        "repeated builds",
        "TensorRT times kernels while it builds, so identical builds can differ in speed. "
        "--repeat N builds N times sharing one timing cache and N times without one, "
        "benchmarks every engine with the same protocol, prints the spread of the median and "
        "P99 across builds and the builds that differ by more than the run-to-run noise, and "
        "keeps the fastest engine at --out (its sidecar says so).",
    )
    rep.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="build N times per timing-cache mode (shared, none) and keep the fastest",
    )
    per = rep.add_mutually_exclusive_group()
    per.add_argument(
        "--repeat-iterations",
        type=int,
        default=None,
        metavar="N",
        help=f"iterations measured per engine (default {DEFAULT_ITERATIONS})",
    )
    per.add_argument(
        "--repeat-duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="measure each engine for this long instead of a count of iterations",
    )
    rep.add_argument(
        "--repeat-warmup",
        type=float,
        default=DEFAULT_WARMUP_S,
        metavar="SECONDS",
        help=f"warm-up before each engine's measurement (default {DEFAULT_WARMUP_S:g} s)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose messages in the log")
    p.add_argument("--json", action="store_true", help="print the sidecar JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or warnings")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..backends.tensorrt import OnnxParseError, build_engine, parse_shapes

    check_outputs(args, ("out", "timing_cache", "calib_cache"))
    if args.repeat is None and (
        args.repeat_iterations is not None or args.repeat_duration is not None
    ):
        raise UsageError(
            "--repeat-iterations/--repeat-duration only apply with --repeat",
            fix="add --repeat N, or drop them",
        )
    if args.repeat is not None:
        from ..decide.repeat import check_repeat

        check_repeat(args.repeat)  # before anything is parsed, built or written
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
        contexts=args.contexts,
    )
    chatty = not (args.quiet or args.json)
    if args.repeat is not None:
        return _run_repeat(args, options, chatty=chatty)
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
    if sc.get("dla"):
        from ..backends.tensorrt.build import dla_summary

        print(f"dla:     {dla_summary(sc['dla'])}")
    print(f"sidecar: {report.sidecar_path}")
    print(f"log:     {report.log_path}")
    return 0


def _run_repeat(args: argparse.Namespace, options: BuildOptions, *, chatty: bool) -> int:
    from ..backends.tensorrt.repeat import build_repeated
    from ..bench.harness import StopRule, Warmup

    warmup = Warmup(seconds=args.repeat_warmup)
    if args.repeat_duration is not None:
        stop = StopRule(duration_s=args.repeat_duration)
    else:
        iterations = args.repeat_iterations
        stop = StopRule(iterations=DEFAULT_ITERATIONS if iterations is None else iterations)
    bars: list[Progress] = []

    def on_step(text: str) -> None:
        for bar in bars:
            bar.close()
        bars.clear()
        if chatty:
            print(f"repeat: {text}", file=sys.stderr)
        bars.append(Progress("build" if text.startswith("build") else "bench", enabled=chatty))

    def on_build_progress(progress: object) -> None:
        if bars:
            bars[-1].build(progress)

    def on_bench_progress(done: int, fraction: float) -> None:
        if bars:
            bars[-1](done, fraction)

    def on_warning(text: str) -> None:
        if chatty:
            for bar in bars:
                bar.close()
            print(f"warning: {text}", file=sys.stderr)

    try:
        out = build_repeated(
            args.model,
            args.out,
            options,
            n=args.repeat,
            warmup=warmup,
            stop=stop,
            on_step=on_step,
            on_build_progress=on_build_progress,
            on_bench_progress=on_bench_progress,
            on_warning=on_warning,
        )
    finally:
        for bar in bars:
            bar.close()
    report = out.report
    if args.json:
        print(
            json.dumps(
                {
                    "engine": str(out.engine_path),
                    "repeat": report.to_dict(),
                    "sidecar": out.sidecar,
                },
                indent=2,
            )
        )
        return 0
    rule = f"{stop.iterations} iterations" if stop.iterations else f"{stop.duration_s:g} s"
    print(
        f"built {args.model} {len(report.builds)} times ({args.repeat} per timing-cache mode), "
        f"each engine benchmarked for {rule} after {warmup.seconds:g} s of warm-up"
    )
    for sentence in report.sentences():
        print(sentence)
    if not report.flagged:
        print("no build differs from its siblings by more than the run-to-run noise")
    dla = (out.sidecar or {}).get("dla")
    if dla:
        from ..backends.tensorrt.build import dla_summary

        print(f"dla:     {dla_summary(dla)}")
    print(f"sidecar: {out.engine_path}.json")
    return 0
