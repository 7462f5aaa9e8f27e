"""``orinbench bench MODEL.onnx | ENGINE.engine``: measure latency, throughput and power."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._io import require_file
from ..bench.harness import DEFAULT_BLOCK_S, DEFAULT_DECIDE_BUDGET_S, StopRule
from ..bench.run import BACKENDS, bench_model
from ..errors import UsageError
from ..gate.sequential import SPENDING_FUNCTIONS
from ..results.schema import Result
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
    dec = p.add_argument_group(
        "gating while measuring",
        "--until-decided measures in blocks until every gated metric is decided against the "
        "baseline (regressed, unchanged or improved) or the --max-seconds budget ends; the "
        "repeated looks share the error rate by alpha spending (docs/gate.md). The verdicts go "
        "into the result (extra.gate) and the exit code follows 'orinbench gate'.",
    )
    dec.add_argument(
        "--until-decided",
        action="store_true",
        help="measure until every gated metric is decided against --baseline/--baseline-dir "
        "(budget --max-seconds, default 60)",
    )
    base = dec.add_mutually_exclusive_group()
    base.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="BASELINE.json",
        help="decide against this baseline result",
    )
    base.add_argument(
        "--baseline-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the baseline recorded under DIR for this run's device, software, power mode, "
        "backend, precision and model",
    )
    dec.add_argument(
        "--targets",
        type=Path,
        default=None,
        metavar="TARGETS.toml",
        help="its [tolerance] table sets the tolerances; its targets are checked at the end",
    )
    dec.add_argument(
        "--looks",
        type=int,
        default=None,
        metavar="N",
        help="planned looks, evenly spread over the budget (default: one per 10 s, at least 1)",
    )
    dec.add_argument(
        "--spending",
        choices=SPENDING_FUNCTIONS,
        default="obrien-fleming",
        help="how the error rate is spread over the looks (default obrien-fleming)",
    )
    dec.add_argument("--allow-env-mismatch", action="store_true", help="as in 'orinbench gate'")
    dec.add_argument(
        "--inconclusive-ok",
        action="store_true",
        help="a metric still undecided when the budget ends does not fail (as in gate)",
    )
    add_output_args(p)
    p.set_defaults(handler=run)


def choose_backend(model: Path, requested: str) -> str:
    """``auto``: TensorRT for engine files, ONNX Runtime for ONNX models."""
    if requested != "auto":
        return requested
    return "tensorrt" if model.suffix.lower() in ENGINE_SUFFIXES else "onnxruntime"


class _UntilDecided:
    """The judge of ``bench --until-decided``: finds the baseline, then looks (gate.sequential)."""

    def __init__(self, args: argparse.Namespace, stop: StopRule) -> None:
        from ..gate import load_targets
        from ..gate.sequential import SpendingPlan
        from ..results.io import load_result

        self.args = args
        self.targets = load_targets(args.targets) if args.targets is not None else None
        self.plan = SpendingPlan(looks=stop.looks, spending=args.spending)
        self.baseline: Result | None = None
        self.source = ""
        if args.baseline is not None:
            self.baseline = load_result(args.baseline)
            self.source = str(args.baseline)
        self.gate: Any = None

    def check(self, result: Result) -> None:
        from ..gate import find_baseline
        from ..gate.sequential import SequentialGate

        if self.baseline is None:
            found = find_baseline(result, self.args.baseline_dir)
            if found is None:
                raise UsageError(
                    f"no baseline for this run under {self.args.baseline_dir}",
                    fix="record one first: bench without --until-decided, then "
                    f"'orinbench baseline record RESULT.json --to {self.args.baseline_dir}'",
                )
            from ..results.io import load_result

            self.baseline = load_result(found)
            self.source = str(found)
        self.gate = SequentialGate(
            self.baseline,
            plan=self.plan,
            tolerances=dict(self.targets.tolerances) if self.targets is not None else None,
            allow_env_mismatch=self.args.allow_env_mismatch,
            inconclusive_ok=self.args.inconclusive_ok,
            seed=self.args.seed,
            baseline_source=self.source,
        )
        self.gate.check(result)
        if not (self.args.quiet or self.args.json):
            print(f"until-decided: baseline {self.source}", file=sys.stderr)
            for w in self.gate.short_baseline():
                print(f"warning: {w}", file=sys.stderr)

    def look_result(self, look: int, result: Result, *, elapsed_s: float) -> str | None:
        reason: str | None = self.gate.look_result(look, result, elapsed_s=elapsed_s)
        return reason

    def finish(self, result: Result) -> tuple[Result, Any]:
        """The final report, and the result carrying it in ``extra.gate``."""
        from ..gate import GateReport, check_targets

        report = self.gate.report(result, budget_ended=result.stopped_by == "max-seconds")
        if self.targets is not None and self.targets.targets:
            report = GateReport(
                verdicts=(*check_targets(result, self.targets), *report.verdicts),
                warnings=report.warnings,
                env_warnings=report.env_warnings,
                inconclusive_ok=report.inconclusive_ok,
            )
        return result.with_(extra={**result.extra, "gate": self.gate.record(report)}), report


def _until_decided_stop(args: argparse.Namespace) -> StopRule:
    chosen = [
        flag
        for flag, value in (
            ("--duration", args.duration),
            ("--iterations", args.iterations),
            ("--until-ci", args.until_ci),
        )
        if value is not None
    ]
    if chosen:
        raise UsageError(
            f"--until-decided and {chosen[0]} are two stop rules",
            fix="drop one; --until-decided stops by itself, bounded by --max-seconds",
        )
    if args.baseline is None and args.baseline_dir is None:
        raise UsageError(
            "--until-decided needs a baseline to decide against",
            fix="give --baseline BASELINE.json or --baseline-dir DIR",
        )
    budget = args.max_seconds if args.max_seconds is not None else DEFAULT_DECIDE_BUDGET_S
    if args.looks is not None and args.looks < 1:
        raise UsageError(f"--looks {args.looks} is too few", fix="pass --looks 1 or more")
    looks = args.looks if args.looks is not None else max(1, round(budget / DEFAULT_BLOCK_S))
    return StopRule(until_decided=True, max_seconds=budget, looks=looks)


def run(args: argparse.Namespace) -> int:
    # a wrong path is the commonest mistake: say so before probing power sources or TensorRT
    require_file(args.model, what="model file")
    check_outputs(args, ("out", "engine_out", "timing_cache", "calib_cache", "history"))
    judge: _UntilDecided | None = None
    if args.until_decided:
        stop = _until_decided_stop(args)
        judge = _UntilDecided(args, stop)
    elif args.baseline is not None or args.baseline_dir is not None or args.targets is not None:
        raise UsageError(
            "--baseline, --baseline-dir and --targets belong to --until-decided",
            fix="add --until-decided, or gate the finished result with 'orinbench gate'",
        )
    backend = choose_backend(args.model, args.backend)
    shapes = parse_shapes(args.shape)
    opts = ort_options(args)
    if opts and backend != "onnxruntime":
        raise UsageError(
            "--ort-providers and --ort-threads apply to ONNX Runtime, not TensorRT",
            fix="drop them, or bench the .onnx with --backend onnxruntime",
        )
    if backend == "tensorrt":
        if judge is None:
            from ._bench_trt import run_tensorrt

            return run_tensorrt(args)
        return _run_tensorrt_until_decided(args, judge)
    from ..model.identity import guess_precision

    # ONNX Runtime runs the model in the precision it was exported in: that is what the result
    # (and the baseline key) records; a --precision that says otherwise would be a false label
    precision = guess_precision(args.model)
    if args.precision not in (None, precision):
        raise UsageError(
            f"--precision {args.precision} does not apply to {args.model} on ONNX Runtime",
            why=f"ONNX Runtime runs the model in the precision it was exported in ({precision})",
            fix="drop --precision, use --backend tensorrt, or bench an FP16/Q-DQ ONNX made by "
            "'orinbench quantize'",
        )
    warmup, stop = protocol_from_args(args)
    if judge is not None:
        stop = _until_decided_stop(args)
    tel = Telemetry(args)
    progress = Progress("bench", enabled=not (args.quiet or args.json))
    try:
        result = bench_model(
            args.model,
            backend=backend,
            shapes=shapes,
            inputs_npz=args.inputs,
            seed=args.seed,
            precision=precision,
            runner_options=opts,
            warmup=warmup,
            stop=stop,
            on_progress=progress,
            judge=judge,
            **tel.bench_kwargs(),
        )
    finally:
        progress.close()
    result = tel.finalize(result)
    return _finish(result, args, judge)


def _finish(result: Result, args: argparse.Namespace, judge: _UntilDecided | None) -> int:
    if judge is None:
        finish_result(result, args, command="bench")
        return 0
    result, report = judge.finish(result)
    finish_result(result, args, command="bench")
    if not args.json:
        print(f"\nbaseline: {judge.source}")
        print(report.to_text())
    else:
        print(report.summary(), file=sys.stderr)
    return int(report.exit_code)


def _run_tensorrt_until_decided(args: argparse.Namespace, judge: _UntilDecided) -> int:
    from ._bench_trt import measure_tensorrt

    args.until_decided_judge = judge  # bench_tensorrt hands it to bench_runner
    result = measure_tensorrt(args, stop=_until_decided_stop(args))
    return _finish(result, args, judge)
