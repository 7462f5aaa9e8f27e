"""``orinbench inspect MODEL.onnx``: IO, parameters, op census and FLOPs of an ONNX model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..model.inspect import ModelInfo, format_shape, inspect_model, parse_shape_args
from ..model.load import model_sha256
from ..results.schema import TensorSpec

#: op types shown in the FLOP breakdown; the rest are summed into "other"
_TOP_OPS = 6
#: unresolved nodes listed one by one; the rest are counted
_SHOW_UNRESOLVED = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a model's inputs, outputs, parameters, op census and FLOPs",
        description="Inspect an ONNX model with onnx alone (no GPU, no runtime): inputs and "
        "outputs, opset, parameter count, op census and a FLOP estimate (2 FLOPs per "
        "multiply-accumulate). Dynamic input dims can be fixed with --shape so that the FLOPs "
        "of a dynamic model can be counted.",
    )
    p.add_argument("model", type=Path, metavar="MODEL.onnx", help="the ONNX file")
    p.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME:DIMS",
        help="concrete shape of an input with dynamic dims, e.g. images:1x6x3x256x704 "
        "(repeat for several inputs)",
    )
    p.add_argument("--json", action="store_true", help="print the inspection as JSON")
    p.set_defaults(handler=run)


def _si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _io_lines(title: str, specs: tuple[TensorSpec, ...]) -> list[str]:
    lines = [title]
    width = max((len(s.name) for s in specs), default=0)
    for s in specs:
        lines.append(f"  {s.name:<{width}}  {s.dtype:<8} {format_shape(s.shape)}")
    return lines


def format_info(info: ModelInfo, sha256: str) -> str:
    """The terminal table of ``orinbench inspect``."""
    lines = [
        f"model      {info.path}  (sha256 {sha256[:12]})",
        f"graph      {info.graph_name or '-'}  producer {info.producer or '-'}  "
        f"opset {info.opset}  IR {info.ir_version}",
    ]
    extra_opsets = {k: v for k, v in info.opsets.items() if k != "ai.onnx"}
    if extra_opsets:
        lines.append("domains    " + ", ".join(f"{k} {v}" for k, v in extra_opsets.items()))
    lines += _io_lines("inputs", info.inputs)
    lines += _io_lines("outputs", info.outputs)
    lines.append(f"nodes      {info.node_count}")
    lines.append(
        f"params     {_si(info.param_count)} ({_si(info.param_bytes, 'B')}); "
        f"floating-point weights {_si(info.weight_count)}"
    )
    for b in info.branches:
        mark = "" if b.counted else "  (not in the total: the If counts its largest branch)"
        lines.append(
            f"  {b.node}.{b.branch} ({b.op_type})  {_si(b.param_count)} params, "
            f"{_si(b.weight_count)} weights{mark}"
        )
    fl = info.flops
    if not info.flops_known:
        # a partial count of the static part would look like the model's FLOPs: say unknown
        lines.append(
            f"FLOPs      unknown (needs --shape for {', '.join(info.dynamic_inputs)}; "
            f"{len(fl.unresolved)} node(s) depend on dynamic dims)"
        )
    else:
        lines.append(f"FLOPs      {_si(fl.total)} (2 per multiply-accumulate)")
    shown = list(fl.by_op.items())[:_TOP_OPS] if info.flops_known else []
    rest = fl.total - sum(v for _, v in shown)
    for op, value in shown:
        share = value / fl.total if fl.total else 0.0
        lines.append(f"  {op:<22}{_si(value):>12}  {share:6.1%}")
    if rest > 0 and info.flops_known:
        lines.append(f"  {'other':<22}{_si(rest):>12}  {rest / fl.total:6.1%}")
    if fl.uncounted_ops:
        lines.append(f"  not counted (no formula): {', '.join(fl.uncounted_ops)}")
    if fl.unresolved:
        lines.append(f"  not counted (shape unknown): {len(fl.unresolved)} node(s)")
        for u in fl.unresolved[:_SHOW_UNRESOLVED]:
            lines.append(f"    {u.name} ({u.op_type}): {u.reason}")
        if len(fl.unresolved) > _SHOW_UNRESOLVED:
            lines.append(f"    ... and {len(fl.unresolved) - _SHOW_UNRESOLVED} more")
        dynamic = [s.name for s in info.inputs if not s.is_static and s.name not in info.shapes]
        if dynamic:
            lines.append(
                "  fix: give the dynamic inputs a shape, e.g. "
                + " ".join(
                    f"--shape {s.name}:{format_shape(s.shape)}"
                    for s in info.inputs
                    if s.name in dynamic
                )
            )
    census = ", ".join(f"{op} {n}" for op, n in info.op_census.items())
    lines.append(f"ops        {census}")
    lines.extend(f"note       {n}" for n in info.notes)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    shapes = parse_shape_args(args.shape)
    info = inspect_model(args.model, shapes=shapes)
    sha = model_sha256(args.model)
    if args.json:
        print(json.dumps({**info.to_dict(), "sha256": sha}, indent=2))
    else:
        print(format_info(info, sha))
    return 0
