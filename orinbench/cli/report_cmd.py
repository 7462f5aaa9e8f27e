"""``orinbench report RESULT.json [MORE.json ...]``: an HTML page and/or a Markdown summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode
from ..history.trend import DEFAULT_METRIC
from ..report.build import report_files
from ._outputs import check_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="HTML report with plots (latency, stages, power, baseline), or Markdown",
        description="Render one or more results as a self-contained HTML page (no network needed "
        "to open it): the verdict table when --targets or --baseline is given, latency "
        "histogram and CDF with P50/P95/P99 marked, the baseline overlaid, per-stage breakdown, "
        "power trace with its mean, soak windows, the precision-decision table, and with "
        "--trend the history of this device/model/precision. Without --html or --markdown the "
        "Markdown summary is printed. The report does not gate: it exits 0 whatever the "
        "verdicts (use 'orinbench gate' for the exit code).",
    )
    p.add_argument(
        "results",
        type=Path,
        nargs="+",
        metavar="RESULT.json",
        help="result files (from bench, run, demo ...)",
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="BASELINE.json",
        help="overlay and compare with this baseline result",
    )
    base.add_argument(
        "--baseline-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="use the baseline recorded under DIR for the first result's device, "
        "software, power mode, backend, precision and model (as 'gate' does)",
    )
    p.add_argument(
        "--targets",
        type=Path,
        default=None,
        metavar="TARGETS.toml",
        help="targets file for the verdict table",
    )
    p.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="OUT.html",
        help="write the HTML report here (needs matplotlib: pip install 'orinbench[report]')",
    )
    p.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="OUT.md",
        help="write the Markdown summary here ('-' prints it)",
    )
    p.add_argument("--title", default=None, help="page title")
    p.add_argument(
        "--allow-env-mismatch",
        action="store_true",
        help="compare with a baseline from another environment (as 'gate' does)",
    )
    p.add_argument(
        "--inconclusive-ok",
        action="store_true",
        help="count inconclusive comparisons as passing in the verdict",
    )
    p.add_argument(
        "--trend",
        action="store_true",
        help="add the history trend of the first result's device, model, precision",
    )
    p.add_argument(
        "--trend-metric",
        default=DEFAULT_METRIC,
        metavar="METRIC",
        help=f"metric of the trend section (default {DEFAULT_METRIC})",
    )
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="PATH",
        help="history database for --trend (implies --trend)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(args, ("html", "markdown"))
    to_stdout = args.markdown == Path("-") or (args.html is None and args.markdown is None)
    out = report_files(
        args.results,
        baseline_path=args.baseline,
        baseline_dir=args.baseline_dir,
        targets_path=args.targets,
        html=args.html,
        markdown=None if to_stdout else args.markdown,
        allow_env_mismatch=args.allow_env_mismatch,
        inconclusive_ok=args.inconclusive_ok,
        trend=args.trend,
        history=args.history,
        trend_metric=args.trend_metric,
        title=args.title,
    )
    if to_stdout:
        print(out.report.to_markdown(), end="")
        for path in out.written:  # stdout holds the Markdown alone
            print(f"report written to {path}", file=sys.stderr)
        return int(ExitCode.OK)
    for entry in out.report.entries:
        if entry.gate is not None:
            print(f"{entry.name}: {entry.gate.summary()}")
        elif entry.gate_error:
            print(f"{entry.name}: not compared: {entry.gate_error}")
    for path in out.written:
        print(f"report written to {path}")
    return int(ExitCode.OK)
