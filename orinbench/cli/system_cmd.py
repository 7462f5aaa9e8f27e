"""``orinbench system check``: is this device ready to benchmark? Exit 0 ready, 4 not ready."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ExitCode


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "system",
        help="check the device's state before benchmarking",
        description="Inspect the device: module, JetPack, power mode, clocks, temperatures.",
    )
    ssub = p.add_subparsers(dest="system_command", metavar="SUBCOMMAND", parser_class=type(p))
    c = ssub.add_parser(
        "check",
        help="exit 0 when ready to benchmark (clocks locked, expected power mode), 4 when not",
        description="Print the device's state and whether it is ready to benchmark: a Jetson whose "
        "clocks are locked by jetson_clocks (GPU and CPU minimum = maximum, EMC pinned where "
        "debugfs is readable), whose power mode is known (and is --expect-power-mode when given), "
        "and which is not at a thermal throttling trip point. Exit 0 when ready, 4 when not.",
    )
    c.add_argument(
        "--expect-power-mode",
        metavar="NAME",
        default=None,
        help="the nvpmodel mode required, by name (e.g. MAXN, 15W) or by id",
    )
    c.add_argument("--json", action="store_true", help="print the state as JSON")
    c.add_argument(
        "--root",
        default="/",
        metavar="PATH",
        help="read sysfs, the device tree and /etc under PATH instead of / "
        "(a mounted image, or a test tree)",
    )
    c.set_defaults(handler=run_check)
    p.set_defaults(handler=_needs_subcommand, _system_parser=p)


def _needs_subcommand(args: argparse.Namespace) -> int:
    args._system_parser.print_help(sys.stderr)
    return ExitCode.USAGE


def _fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "unknown"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:g}{unit}"
    return f"{x}{unit}"


def format_check(check: Any) -> str:
    """The human-readable state printed by ``system check``."""
    module = check.module or "unknown"
    if check.module_name:
        module += f" ({check.module_name})"
    mode = _fmt(check.power_mode)
    if check.power_mode_id is not None:
        mode += f" (id {check.power_mode_id})"
    if check.expected_power_mode:
        mode += f", expected {check.expected_power_mode}"
    clocks = ", ".join(
        f"{k.removesuffix('_locked').upper()} {_fmt(v)}" for k, v in check.clocks.items()
    )
    temps = ", ".join(f"{k} {v:g} °C" for k, v in sorted(check.temperatures_c.items()))
    lines = [
        f"device         {module}" if check.is_jetson else "device         not a Jetson",
        f"L4T / JetPack  {_fmt(check.l4t)} / {_fmt(check.jetpack)}",
        f"power mode     {mode}",
        f"jetson_clocks  {_fmt(check.jetson_clocks)} (locked: {clocks})",
        f"GPU clock      {_fmt(check.gpu_freq_mhz, ' MHz')} (min {_fmt(check.gpu_min_freq_mhz)}, "
        f"max {_fmt(check.gpu_max_freq_mhz)})",
        f"EMC clock      {_fmt(check.emc_freq_mhz, ' MHz')}",
        f"temperatures   {temps or 'unknown'}",
    ]
    if check.ready:
        lines.append("ready          yes")
    else:
        lines.append("ready          NO")
        lines += [f"  - {r}" for r in check.reasons]
        if check.fixes:
            lines.append("to fix         " + "; ".join(check.fixes))
    return "\n".join(lines)


def run_check(args: argparse.Namespace) -> int:
    from ..telemetry.conditions import system_check

    check = system_check(args.root, expect_power_mode=args.expect_power_mode)
    if args.json:
        print(json.dumps(check.to_dict(), indent=2))
    else:
        print(format_check(check))
    if not check.ready:
        print(f"orinbench: not ready to benchmark: {'; '.join(check.reasons)}", file=sys.stderr)
        return ExitCode.NOT_READY
    return ExitCode.OK
