"""``orinbench gate RESULT.json``: judge a result against targets and/or a baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._io import atomic_write_text
from ..errors import InputFileError, UsageError
from ..gate import find_baseline, gate, load_targets
from ..history.store import append_to_history
from ..results.io import load_result
from ._outputs import check_outputs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gate",
        help="pass/fail a result against targets and a baseline (exit 0/1/2/3)",
        description="Judge a result against absolute targets (a TOML file) and/or a baseline "
        "result: a metric regresses only when it moves beyond its tolerance AND a test on the "
        "raw samples says the move is significant. Exit 0 pass, 1 failed target, regression or "
        "inconclusive comparison, 2 bad input or a metric that cannot be judged, 3 the baseline "
        "comes from a different environment.",
    )
    p.add_argument("result", type=Path, metavar="RESULT.json", help="the result to judge")
    p.add_argument(
        "--targets",
        type=Path,
        default=None,
        metavar="TARGETS.toml",
        help='targets file: "latency.p99_ms" = "< 80", optional [tolerance] table',
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="BASELINE.json",
        help="compare with this baseline result",
    )
    base.add_argument(
        "--baseline-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="compare with the baseline recorded for this result's device, "
        "software, power mode, backend, precision and model under DIR",
    )
    p.add_argument(
        "--allow-env-mismatch",
        action="store_true",
        help="compare even when device, JetPack, TensorRT, power mode, backend or "
        "precision differ (reported as a warning instead of exit 3)",
    )
    p.add_argument(
        "--inconclusive-ok",
        action="store_true",
        help="let inconclusive comparisons pass (by default they exit 1)",
    )
    p.add_argument(
        "--junit", type=Path, default=None, metavar="FILE.xml", help="also write a JUnit XML report"
    )
    p.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="FILE.md",
        help='also write a Markdown report (e.g. "$GITHUB_STEP_SUMMARY")',
    )
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="PATH",
        help="history database (default ~/.local/share/orinbench/history.db)",
    )
    p.add_argument("--no-history", action="store_true", help="do not record this run")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(args, ("junit", "markdown", "history"))
    result = load_result(args.result)
    targets = load_targets(args.targets) if args.targets is not None else None
    baseline = None
    if args.baseline is not None:
        baseline = load_result(args.baseline)
    elif args.baseline_dir is not None:
        found = find_baseline(result, args.baseline_dir)
        if found is None:
            raise UsageError(
                f"no baseline for this result under {args.baseline_dir}",
                fix=f"record one with 'orinbench baseline record {args.result} "
                f"--to {args.baseline_dir}'",
            )
        print(f"baseline: {found}")
        baseline = load_result(found)
    if targets is None and baseline is None:
        raise UsageError(
            "nothing to gate against", fix="give --targets FILE and/or --baseline FILE"
        )
    report = gate(
        result,
        targets=targets,
        baseline=baseline,
        allow_env_mismatch=args.allow_env_mismatch,
        inconclusive_ok=args.inconclusive_ok,
    )
    print(report.to_text())
    if not args.no_history:
        note = append_to_history(result, command="gate", path=args.history, source_path=args.result)
        if note:
            print(f"history: {note}", file=sys.stderr)
    if args.junit is not None:
        _write(args.junit, report.to_junit_xml(), what="JUnit report")
    if args.markdown is not None:
        _write(args.markdown, report.to_markdown(), what="Markdown report")
    return report.exit_code


def _write(path: Path, text: str, *, what: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:  # e.g. the path is a folder: the final rename fails
        raise InputFileError(
            f"cannot write the {what} to {path}",
            why=exc.strerror or str(exc),
            fix="choose a writable file path",
        ) from exc
