"""``orinbench history``: list recorded runs, flag step changes, plot the trend of a metric."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ExitCode, UsageError
from ..history.store import DEFAULT_LOCK_TIMEOUT_S
from ..history.trend import DEFAULT_METRIC
from ..history.view import view_history
from ..report.trend_file import write_trend
from ._outputs import check_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="list past runs, flag step changes, plot a metric's trend",
        description="List the runs that bench, demo, run and gate recorded in the local history "
        "(SQLite), oldest first, filtered by device, model, precision, backend or command. Runs "
        "where a step change of --metric began are flagged (one series per device, model, "
        "precision and backend). --plot draws the trend of a metric to a PNG or HTML file.",
        epilog="The database: --history PATH, else $ORINBENCH_HISTORY, else "
        "$XDG_DATA_HOME/orinbench/history.db (~/.local/share/orinbench/history.db). A locked or "
        "corrupt database exits 2; a corrupt one is moved aside (history.db.corrupt-<UTC>) and "
        "its readable runs are copied into a new one.",
    )
    f = p.add_argument_group("filters")
    f.add_argument("--device", default=None, help="device name contains this (case-insensitive)")
    f.add_argument("--model", default=None, help="model name contains this (case-insensitive)")
    f.add_argument("--precision", default=None, help="fp32, fp16, int8, best ...")
    f.add_argument("--backend", default=None, help="tensorrt or onnxruntime")
    f.add_argument(
        "--command",
        dest="run_command",
        default=None,
        metavar="COMMAND",
        help="only runs recorded by this command (bench, demo, run, gate)",
    )
    f.add_argument("--limit", type=int, default=None, metavar="N", help="the N most recent runs")
    p.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help=f"metric shown and checked for step changes (default {DEFAULT_METRIC})",
    )
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.add_argument(
        "--plot",
        default=None,
        metavar="METRIC",
        help="draw the trend of METRIC (needs --out; matplotlib: the report extra)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="trend.png|trend.html",
        help="where --plot writes (PNG, or a self-contained HTML page)",
    )
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="PATH",
        help="history database (default ~/.local/share/orinbench/history.db)",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT_S,
        metavar="SECONDS",
        help=f"wait this long for a locked database (default {DEFAULT_LOCK_TIMEOUT_S:g})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.out is not None and args.plot is None:
        raise UsageError("--out is only used with --plot", fix="add --plot METRIC, or drop --out")
    if args.plot is not None and args.out is None:
        raise UsageError(
            "--plot needs an output file", fix="add --out trend.png or --out trend.html"
        )
    if args.limit is not None and args.limit < 1:
        raise UsageError(
            f"--limit {args.limit} is not a positive number", fix="pass --limit 1 or more"
        )
    check_outputs(args, ("out",))
    metric = args.plot or args.metric
    view = view_history(
        args.history,
        device=args.device,
        model=args.model,
        precision=args.precision,
        backend=args.backend,
        command=args.run_command,
        limit=args.limit,
        metric=metric,
        timeout_s=args.lock_timeout,
    )
    if args.plot is not None:
        if not view.rows:
            raise UsageError(
                f"nothing to plot: {view.to_text()}", fix="relax the filters or record runs first"
            )
        path = write_trend(args.out, view.rows, metric, steps=view.steps)
        print(f"trend of {metric} ({len(view.rows)} runs) written to {path}")
        for s in view.steps:
            print(s.describe())
        return int(ExitCode.OK)
    if args.json:
        print(json.dumps(view.to_dict(), indent=2))
    else:
        print(view.to_text())
    return int(ExitCode.OK)
