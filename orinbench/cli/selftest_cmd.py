"""``orinbench selftest``: try every capability once here; write selftest.json and selftest.html.

Exit 0 when nothing that ran failed (skipped rows do not count), 1 when a row failed, 2 for bad
usage (an --out that is a file, an unknown --only id).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "selftest",
        help="first thing to run on a new board: try every capability, one row each",
        description="Build the tiny sample BEV model in FP32, FP16 and INT8 (calibrate, then "
        "rebuild from the cache and check it was applied), DLA variants where the module has a "
        "DLA, bench each engine with and without a CUDA graph, with 2 streams and a layer "
        "profile, open every power source and cross-check their totals, read the fingerprint and "
        "run 'system check'. What cannot run here (no TensorRT, not a Jetson) is skipped with the "
        "reason. Writes selftest.json and selftest.html to --out (docs/first-run.md). Exit 0 when "
        "nothing that ran failed, 1 when a row failed, 2 for bad usage.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("orinbench-selftest"),
        metavar="DIR",
        help="folder for selftest.json, selftest.html and the work files "
        "(default ./orinbench-selftest)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="shorter measuring windows (CI; the numbers are then rough)",
    )
    p.add_argument(
        "--only",
        default=None,
        metavar="ID,...",
        help="run only these rows (ids or prefixes such as 'power'; what they need runs too)",
    )
    p.add_argument(
        "--root",
        default="/",
        metavar="PATH",
        help="read sysfs, the device tree and /etc under PATH (a mounted image or a test tree)",
    )
    p.add_argument("--device", type=int, default=0, metavar="N", help="CUDA device index")
    p.add_argument("--json", action="store_true", help="print selftest.json instead of the table")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..selftest import Check, SelftestOptions, exit_code, run_selftest, write_selftest
    from ..selftest.output import check_out_dir
    from ..selftest.render import format_text

    out = check_out_dir(args.out)  # before minutes of work, not after
    only = tuple(s.strip() for s in (args.only or "").split(",") if s.strip())
    options = SelftestOptions(quick=args.quick, only=only, root=args.root, device=args.device)
    progress = not (args.quiet or args.json)

    def on_start(check: Check) -> None:
        if progress:
            print(f"selftest: {check.id} ...", file=sys.stderr, flush=True)

    report = run_selftest(out_dir=out, options=options, on_start=on_start)
    written = write_selftest(report, out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_text(report))
        print(f"\nwritten {written.json_path} and {written.html_path}")
        print("send both files with a bug report (docs/first-run.md)")
    code = exit_code(report)
    if code != ExitCode.OK:
        failed = ", ".join(r.id for r in report.failed)
        print(f"orinbench: selftest: {len(report.failed)} row(s) failed: {failed}", file=sys.stderr)
    return code
