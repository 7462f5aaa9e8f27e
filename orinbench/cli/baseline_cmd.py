"""``orinbench baseline record RESULT.json --to DIR``: store a result as a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ExitCode
from ..gate import load_targets, record_baseline
from ._outputs import check_outputs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "baseline",
        help="record baselines for 'orinbench gate --baseline-dir'",
        description="Manage baseline results, stored by device, software, power mode, "
        "backend+precision and model: DIR/<device>/<software>/<power-mode>/"
        "<backend>-<precision>/<model>.json.",
    )
    actions = p.add_subparsers(dest="baseline_action", metavar="ACTION", required=True)
    rec = actions.add_parser(
        "record",
        help="store RESULT.json as the baseline for its key",
        description="Store a result as the baseline for its device, software, power mode, "
        "backend+precision and model. An existing baseline is kept unless --replace is given; "
        "then the old file is kept beside it with a UTC timestamp in its name. A result whose "
        "gated percentiles are known less precisely than half their tolerance (95 %% interval) "
        "is refused: a gate against it would fail unchanged runs by chance (docs/gate.md).",
    )
    rec.add_argument("result", type=Path, metavar="RESULT.json", help="the result to store")
    rec.add_argument("--to", type=Path, required=True, metavar="DIR", help="baseline folder")
    rec.add_argument(
        "--replace",
        action="store_true",
        help="replace an existing baseline (the old one is kept, timestamped)",
    )
    rec.add_argument(
        "--targets",
        type=Path,
        default=None,
        metavar="TARGETS.toml",
        help="read the tolerances of its [tolerance] table (and the metrics it names) for the "
        "precision check, as 'gate --targets' will use them (default: the default tolerances)",
    )
    rec.add_argument(
        "--allow-imprecise",
        action="store_true",
        help="store the result even if its percentiles are too imprecise for the tolerances",
    )
    rec.set_defaults(handler=run_record)


def run_record(args: argparse.Namespace) -> int:
    check_outputs(args, (), folders=("to",))
    tolerances = dict(load_targets(args.targets).tolerances) if args.targets else None
    path = record_baseline(
        args.result,
        to_dir=args.to,
        replace=args.replace,
        tolerances=tolerances,
        allow_imprecise=args.allow_imprecise,
    )
    print(f"baseline recorded: {path}")
    return int(ExitCode.OK)
