"""``orinbench zoo list`` and ``orinbench zoo export NAME``: the synthetic BEV model zoo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..zoo.registry import SIZES, export_model, list_models
from ._common import seed_arg
from ._outputs import check_outputs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "zoo",
        help="list or export the synthetic BEV models (one ONNX file per stage)",
        description="Synthetic BEV models built with onnx + numpy in the shapes of published "
        "ones (random weights: for timing, not accuracy), in a 'tiny' size for quick checks and "
        "a 'full' size with the published input size, parameter count and FLOPs.",
    )
    zsub = p.add_subparsers(dest="zoo_command", metavar="COMMAND", parser_class=type(p))
    lp = zsub.add_parser("list", help="list the zoo models, their sizes and stages")
    lp.add_argument("--json", action="store_true", help="print the list as JSON")
    lp.set_defaults(handler=run_list)
    ep = zsub.add_parser(
        "export",
        help="write a zoo model's stages as ONNX files",
        description="Write one ONNX file per stage (NAME-SIZE.STAGE.onnx) and a manifest "
        "(NAME-SIZE.json) into --out. Files whose content is already there are not rewritten.",
    )
    ep.add_argument("name", metavar="NAME", help="zoo model (see 'orinbench zoo list')")
    ep.add_argument("--size", choices=SIZES, default="tiny", help="model size (default tiny)")
    ep.add_argument(
        "--out",
        type=Path,
        default=Path("orinbench-zoo"),
        metavar="DIR",
        help="output folder (default ./orinbench-zoo)",
    )
    ep.add_argument("--seed", type=seed_arg, default=0, help="weight seed (default 0)")
    ep.add_argument("--json", action="store_true", help="print stage -> path as JSON")
    ep.set_defaults(handler=run_export)
    p.set_defaults(handler=lambda args: _no_subcommand(p))


def _no_subcommand(p: argparse.ArgumentParser) -> int:
    p.error("choose 'list' or 'export'")
    return 2  # pragma: no cover - error() exits


def run_list(args: argparse.Namespace) -> int:
    entries = list_models()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    width = max(len(e.name) for e in entries)
    for e in entries:
        print(f"{e.name:<{width}}  {e.description}")
        print(f"{'':<{width}}  sizes: {', '.join(e.sizes)}; stages: {', '.join(e.stages)}")
        print(f"{'':<{width}}  after: {e.reference}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    check_outputs(args, (), folders=("out",))
    paths = export_model(args.name, size=args.size, out_dir=args.out, seed=args.seed)
    if args.json:
        print(json.dumps({stage: str(path) for stage, path in paths.items()}, indent=2))
        return 0
    width = max(len(s) for s in paths)
    for stage, path in paths.items():
        print(f"{stage:<{width}}  {path}")
    return 0
