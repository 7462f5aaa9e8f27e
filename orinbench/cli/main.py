"""The ``orinbench`` command: parse, call the core with keywords, print, map errors to exit codes.

Each command lives in its own module under ``orinbench/cli/`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``handler`` to a function
``(argparse.Namespace) -> int`` returning the exit code. Nothing below ``cli/`` prints or exits.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import ExitCode, OrinbenchError

#: command modules, in the order ``orinbench --help`` lists them
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "inspect_cmd",
    "zoo_cmd",
    "build_cmd",
    "bench",
    "run_cmd",
    "gate_cmd",
    "baseline_cmd",
    "report_cmd",
    "history_cmd",
    "system_cmd",
    "selftest_cmd",
    "calibrate_cmd",
    "calib_cmd",
    "quantize_cmd",
    "accuracy_cmd",
    "sensitivity_cmd",
    "decide_cmd",
    "soak_cmd",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (its default is 2 too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"orinbench: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="orinbench",
        description="Build, calibrate, benchmark and gate BEV models on NVIDIA Jetson Orin.",
        epilog="Exit codes: 0 ok, 1 target failed or regression, 2 bad input or usage, "
        "3 incomparable environments, 4 device not ready, 70 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"orinbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args))
    except OrinbenchError as exc:
        print(f"orinbench: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("orinbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return ExitCode.OK
    except Exception:
        # A bug in orinbench, not a user mistake: show everything needed to report it.
        traceback.print_exc()
        print(
            "orinbench: internal error (a bug); please report it with the traceback above",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
