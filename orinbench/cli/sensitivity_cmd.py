"""``orinbench sensitivity MODEL.onnx --data DIR``: which layers hurt INT8 accuracy most."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..accuracy.compare import LOSS_METRICS
from ..accuracy.sensitivity import DEFAULT_BUDGET, DEFAULT_MAX_GROUPS
from ..errors import ExitCode
from ..precision.qdq import DEFAULT_OP_TYPES, METHODS
from ._common import add_model_input_args, ort_options
from ._outputs import check_outputs
from .accuracy_cmd import loss_budget
from .calibrate_cmd import add_data_args, shaped_data
from .quantize_cmd import op_types_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sensitivity",
        help="rank node groups by the INT8 accuracy loss they cause; suggest --exclude",
        description="Quantize one group of nodes at a time (and, separately, all but one group), "
        "measure each variant against the FP32 reference on the data, rank the groups, and "
        "exclude the most harmful ones greedily, each step measured, until the loss meets the "
        "budget. Exit code 1 when no suggestion meets it.",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx (FP32)")
    add_data_args(p)
    p.add_argument(
        "--method",
        choices=tuple(METHODS),
        default="entropy",
        help="calibration method (default entropy)",
    )
    p.add_argument(
        "--budget",
        type=loss_budget,
        default=DEFAULT_BUDGET,
        metavar="LOSS",
        help=f"loss the suggestion must meet (default {DEFAULT_BUDGET})",
    )
    p.add_argument(
        "--metric",
        choices=LOSS_METRICS,
        default="rel_l2",
        help="loss measure (default rel_l2: worst relative L2 error)",
    )
    p.add_argument(
        "--group-depth",
        type=int,
        default=None,
        metavar="N",
        help="group nodes by the first N components of their names (default: node "
        "by node, or coarser to stay within --max-groups)",
    )
    p.add_argument(
        "--max-groups",
        type=int,
        default=DEFAULT_MAX_GROUPS,
        metavar="N",
        help=f"with no --group-depth, at most N groups (default {DEFAULT_MAX_GROUPS})",
    )
    p.add_argument(
        "--mode",
        choices=("both", "only", "float"),
        default="both",
        help="measure each group quantized alone (only), kept in float (float), or both",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="at most N greedy exclusion steps (default: all groups)",
    )
    p.add_argument(
        "--op-types",
        default=",".join(DEFAULT_OP_TYPES),
        metavar="T1,T2",
        help="op types that are quantized",
    )
    p.add_argument(
        "--heatmap",
        action="append",
        default=None,
        metavar="OUTPUT",
        help="heatmap outputs for --metric topk (default: named like 'heatmap')",
    )
    add_model_input_args(p, npz=False, threads_alias=True)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="REPORT.json",
        help="write the report as JSON (atomically)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write_json
    from ..accuracy.sensitivity import analyze_sensitivity

    check_outputs(args, ("out",))
    quiet = args.quiet or args.json
    modes = ("only", "float") if args.mode == "both" else (args.mode,)
    ort = ort_options(args)
    report = analyze_sensitivity(
        args.model,
        data=shaped_data(args, args.model),
        method=args.method,
        budget=args.budget,
        metric=args.metric,
        group_depth=args.group_depth,
        max_groups=args.max_groups,
        op_types=op_types_arg(args.op_types),
        modes=modes,
        max_samples=args.max_samples,
        max_steps=args.max_steps,
        heatmaps=args.heatmap,
        threads=ort.get("intra_op_threads"),
        providers=ort.get("providers"),
        log=None if quiet else (lambda msg: print(msg, file=sys.stderr)),
    )
    if args.out is not None:
        atomic_write_json(args.out, report.to_dict())
    code = 0 if report.met else ExitCode.FAILED
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return code
    width = min(48, max((len(g.group) for g in report.groups), default=5))
    lines = [
        f"model      {report.model} ({report.sample_count} samples, {report.method} calibration)",
        f"all INT8   {report.metric} loss {report.full_loss:.5f} (budget {report.budget:g})",
        "",
        f"{'rank':>4}  {'group':<{width}} {'nodes':>5} {'only INT8':>10} {'kept float':>11} "
        f"{'gain':>9}",
    ]
    for i, g in enumerate(report.groups, start=1):
        only = f"{g.only:.5f}" if g.only is not None else "-"
        kept = f"{g.kept_float:.5f}" if g.kept_float is not None else "-"
        gain = f"{g.gain:+.5f}" if g.gain is not None else "-"
        lines.append(
            f"{i:>4}  {g.group:<{width}} {len(g.nodes):>5} {only:>10} {kept:>11} {gain:>9}"
        )
    lines.append("")
    if not report.suggested_exclude:
        lines.append("suggestion all nodes in INT8 already meet the budget: no --exclude needed")
    else:
        verdict = "meets" if report.met else "does NOT meet"
        lines.append(
            f"suggestion keep {len(report.suggested_exclude)} nodes in float: {report.metric} loss "
            f"{report.suggested_loss:.5f}, {verdict} the budget {report.budget:g}"
        )
        flags = " ".join(f"--exclude {shlex.quote(n)}" for n in report.suggested_exclude)
        lines.append(f"           orinbench quantize {shlex.quote(str(args.model))} ... {flags}")
    if args.out is not None:
        lines.append(f"report     written to {args.out}")
    print("\n".join(lines))
    return code
