"""``orinbench accuracy CANDIDATE --reference MODEL.onnx --data DIR``: INT8/FP16 vs FP32."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..accuracy.compare import LOSS_METRICS, WORST
from ..accuracy.metrics import DEFAULT_TOPK
from ..errors import ExitCode
from ._common import add_model_input_args, ort_options
from ._outputs import check_outputs
from ._progress import Progress
from .calibrate_cmd import add_data_args, shaped_data


def loss_budget(text: str) -> float:
    """argparse type of --budget: a loss, a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"{text} is not a loss: pass a number >= 0 (e.g. 0.03 for 3 %)"
        )
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "accuracy",
        help="compare a Q/DQ or FP16 ONNX model or a TensorRT engine with the FP32 reference",
        description="Run the FP32 reference (ONNX Runtime) and the candidate on the same samples "
        "and report per output: cosine similarity, max absolute error, relative L2 error and, "
        "for heatmap outputs, top-k peak agreement. --out writes a result whose accuracy.* "
        'metrics the gate can check (e.g. "accuracy.rel_l2.max" = "< 0.03"). Exit code 1 '
        "when --budget is given and not met.",
    )
    p.add_argument("candidate", type=Path, help="MODEL.qdq.onnx, MODEL.fp16.onnx or ENGINE.engine")
    p.add_argument(
        "--reference", type=Path, required=True, metavar="MODEL.onnx", help="the FP32 model"
    )
    add_data_args(p)
    p.add_argument(
        "--heatmap",
        action="append",
        default=None,
        metavar="OUTPUT",
        help="output compared by top-k peak agreement (repeatable; default: outputs "
        "named like 'heatmap')",
    )
    p.add_argument(
        "--topk",
        type=int,
        default=DEFAULT_TOPK,
        metavar="K",
        help=f"heatmap peaks compared (default {DEFAULT_TOPK})",
    )
    p.add_argument(
        "--budget",
        type=loss_budget,
        default=None,
        metavar="LOSS",
        help="fail (exit 1) when the loss exceeds LOSS (e.g. 0.03)",
    )
    p.add_argument(
        "--metric",
        choices=LOSS_METRICS,
        default="rel_l2",
        help="loss checked by --budget: rel_l2 (worst relative L2, default), cosine "
        "(1 - worst cosine), max_abs, topk (1 - worst peak agreement)",
    )
    p.add_argument(
        "--precision",
        default=None,
        help="precision recorded in the result (default: guessed from the model)",
    )
    add_model_input_args(p, npz=False, threads_alias=True)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="RESULT.json",
        help="write an orinbench result with the accuracy section (atomically)",
    )
    p.add_argument("--json", action="store_true", help="print the accuracy section as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(handler=run)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= WORST:
        return "inf"
    return f"{x:.6f}" if abs(x) < 1e4 else f"{x:.4g}"


def run(args: argparse.Namespace) -> int:
    from ..accuracy.compare import accuracy_result, evaluate_accuracy
    from ..results.io import save_result

    check_outputs(args, ("out",))
    ort = ort_options(args)
    data = shaped_data(args, args.reference, one_shape=False)
    progress = Progress("accuracy", enabled=not (args.quiet or args.json))
    report = evaluate_accuracy(
        args.candidate,
        reference=args.reference,
        data=data,
        max_samples=args.max_samples,
        heatmaps=args.heatmap,
        topk=args.topk,
        threads=ort.get("intra_op_threads"),
        providers=ort.get("providers"),
        progress=progress,
    )
    progress.close()
    if args.out is not None:
        save_result(accuracy_result(report, precision=args.precision), args.out)
    # `not loss <= budget`: a NaN loss must fail the budget (`loss > budget` is False for NaN)
    failed = args.budget is not None and not report.loss(args.metric) <= args.budget
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return ExitCode.FAILED if failed else 0
    lines = [
        f"candidate  {report.candidate} ({report.candidate_kind})",
        f"reference  {report.reference} (FP32, onnxruntime)",
        f"data       {report.sample_count} samples from {report.data_source}",
        "",
        f"{'output':<16} {'cosine min':>11} {'max abs':>11} {'rel L2 max':>11} "
        f"{'rel L2 mean':>11} {'top-k min':>10}",
    ]
    for o in report.outputs:
        lines.append(
            f"{o.name:<16} {_num(o.cosine_min):>11} {_num(o.max_abs_max):>11} "
            f"{_num(o.rel_l2_max):>11} {_num(o.rel_l2_mean):>11} {_num(o.topk_min):>10}"
            + (f"  ({o.nonfinite_samples} samples with NaN/Inf)" if o.nonfinite_samples else "")
            + (
                f"  ({o.nonfinite_reference_samples} samples with NaN/Inf in the reference: "
                "counted as the worst case)"
                if o.nonfinite_reference_samples
                else ""
            )
        )
    t = report.timing
    if t.get("total_s"):
        rate = report.sample_count / t["total_s"]
        share = (t.get("validate_s", 0.0) + t.get("load_s", 0.0)) / t["total_s"]
        lines.append("")
        lines.append(
            f"time       {t['total_s']:.2f} s ({rate:.1f} samples/s; data loading and validation "
            f"{share:.0%})"
        )
    if args.budget is not None:
        loss = report.loss(args.metric)
        verdict = "FAILED" if failed else "ok"
        lines.append(f"budget     {args.metric} loss {_num(loss)} vs {args.budget:g}: {verdict}")
    if args.out is not None:
        lines.append(f"result     written to {args.out}")
    print("\n".join(lines))
    return ExitCode.FAILED if failed else 0
