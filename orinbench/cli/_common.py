"""Arguments and steps shared by the measuring commands (bench, demo, run, soak, decide)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._io import finite_or_null
from ..bench.harness import StopRule, Warmup, parse_until_ci
from ..errors import UsageError
from ..results.io import save_result
from ..results.schema import Result

POWER_CHOICES = ("auto", "jtop", "sysfs", "tegrastats", "nvml", "none")


def add_measure_args(p: argparse.ArgumentParser, *, duration: float = 10.0) -> None:
    g = p.add_argument_group("measurement protocol")
    g.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="warm-up time before measuring (default 1.0)",
    )
    g.add_argument(
        "--warmup-iterations",
        type=int,
        default=None,
        metavar="N",
        help="warm-up at least N iterations (with --warmup: whichever is later)",
    )
    g.add_argument(
        "--warmup-until-stable",
        action="store_true",
        help="continue warm-up until the median settles (bounded by 30 s)",
    )
    stop = g.add_mutually_exclusive_group()
    stop.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"measure for this long (default {duration:g} s)",
    )
    stop.add_argument(
        "--iterations", type=int, default=None, metavar="N", help="measure exactly N iterations"
    )
    stop.add_argument(
        "--until-ci",
        default=None,
        metavar="[pQ:]FRACTION",
        help="measure until the 95%% CI half-width of a percentile is at most FRACTION of it: "
        "0.01 or 1%% for the median, p99:2%% for the P99 (bounded by --max-seconds)",
    )
    g.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="upper bound on the measured window for --until-ci (default 600) and the budget of "
        "bench --until-decided (default 60)",
    )
    g.add_argument("--seed", type=seed_arg, default=0, help="seed for generated inputs (default 0)")
    p.set_defaults(_default_duration=duration)
    add_telemetry_args(p)


def add_telemetry_args(p: argparse.ArgumentParser, *, idle: bool = True) -> None:
    """--power and friends; ``idle=False`` leaves out --idle-seconds (defaults it to 0)."""
    t = p.add_argument_group("telemetry")
    t.add_argument(
        "--power",
        choices=POWER_CHOICES,
        default="auto",
        help="power source sampled during the measured window (default auto)",
    )
    t.add_argument(
        "--power-period",
        type=float,
        default=None,
        metavar="SECONDS",
        help="power sampling period (default: the source's own, e.g. sysfs 0.05, jtop 0.1)",
    )
    if idle:
        t.add_argument(
            "--idle-seconds",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="measure idle power for this long before the run (default 0: skip)",
        )
    else:
        p.set_defaults(idle_seconds=0.0)
    t.add_argument(
        "--require-tuned",
        action="store_true",
        help="refuse to run (exit 4) unless clocks are locked (jetson_clocks)",
    )
    t.add_argument(
        "--expect-power-mode",
        default=None,
        metavar="NAME|ID",
        help="with --require-tuned: the nvpmodel mode the device must be in",
    )


#: ``--shape``'s help, the same for every command that runs a model (README "Model inputs")
SHAPE_HELP = (
    "size of an input with dynamic dimensions, e.g. images:1x6x3x256x704; k:scalar for a "
    "rank-0 input (repeatable; every dimension at least 1)"
)


def seed_arg(text: str) -> int:
    """argparse type of every --seed: a whole number >= 0 (numpy's generators refuse negative
    seeds, but only deep inside the run, as a traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}")
    return value


def _thread_count(text: str) -> int:
    """argparse type of --ort-threads: a whole number >= 1 (ONNX Runtime reads 0 as 'default'
    and rejects negative counts only when the session starts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{value} threads is not a thread count: pass 1 or more, or leave it out"
        )
    return value


def add_model_input_args(
    p: argparse.ArgumentParser,
    *,
    npz: bool = True,
    ort: bool = True,
    threads_alias: bool = False,
    inputs_help: str = "load inputs from a .npz (keys = input names) instead of generating them",
    per: str = "",
) -> None:
    """The model-input options, defined once for every command that runs a model.

    ``--shape`` always; ``--inputs FILE.npz`` where the command generates its inputs (``npz``);
    ``--ort-providers`` / ``--ort-threads`` where ONNX Runtime runs the model (``ort``).
    ``threads_alias`` keeps the older ``--threads N`` of accuracy, sensitivity and decide working
    (hidden; it sets the same value).
    """
    g = p.add_argument_group("model inputs")
    g.add_argument("--shape", action="append", default=None, metavar="NAME:DxDxD", help=SHAPE_HELP)
    if npz:
        g.add_argument("--inputs", type=Path, default=None, metavar="FILE.npz", help=inputs_help)
    if ort:
        add_ort_args(p, per=per)
        if threads_alias:
            p.add_argument(
                "--threads", dest="ort_threads", type=_thread_count, help=argparse.SUPPRESS
            )


def add_ort_args(p: argparse.ArgumentParser, *, per: str = "") -> None:
    ort = p.add_argument_group("onnxruntime")
    ort.add_argument(
        "--ort-providers",
        default=None,
        metavar="P1,P2",
        help="execution providers (default CPUExecutionProvider)",
    )
    ort.add_argument(
        "--ort-threads",
        type=_thread_count,
        default=None,
        metavar="N",
        help=f"intra-op threads{per}, at least 1 (default: ONNX Runtime's choice)",
    )


def ort_options(args: argparse.Namespace) -> dict[str, Any]:
    """OnnxRuntimeRunner keyword arguments from --ort-providers / --ort-threads."""
    opts: dict[str, Any] = {}
    providers = getattr(args, "ort_providers", None)
    if providers is not None:
        names = [s.strip() for s in providers.split(",") if s.strip()]
        if not names:
            raise UsageError(
                f"--ort-providers {providers!r} names no provider",
                fix="pass e.g. --ort-providers CUDAExecutionProvider,CPUExecutionProvider",
            )
        from ..backends.onnxruntime import check_providers

        check_providers(names)  # before anything is probed, made or written
        opts["providers"] = names
    if getattr(args, "ort_threads", None) is not None:
        opts["intra_op_threads"] = args.ort_threads
    return opts


def add_output_args(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="RESULT.json",
        help="write the result JSON here (atomically)",
    )
    o.add_argument("--json", action="store_true", help="print the result JSON instead of a table")
    o.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="PATH",
        help="history database (default ~/.local/share/orinbench/history.db)",
    )
    o.add_argument("--no-history", action="store_true", help="do not append to the history")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def protocol_from_args(args: argparse.Namespace) -> tuple[Warmup, StopRule]:
    warmup = Warmup(
        seconds=args.warmup,
        iterations=args.warmup_iterations,
        until_stable=args.warmup_until_stable,
    )
    if args.iterations is not None:
        stop = StopRule(iterations=args.iterations)
    elif args.until_ci is not None:
        q, frac = parse_until_ci(str(args.until_ci))
        stop = StopRule(
            ci_rel_halfwidth=frac,
            ci_percentile=q,
            max_seconds=args.max_seconds if args.max_seconds is not None else 600.0,
        )
    else:
        stop = StopRule(
            duration_s=args.duration if args.duration is not None else args._default_duration
        )
    return warmup, stop


def parse_shapes(values: list[str] | None) -> dict[str, tuple[int, ...]]:
    """The ``--shape`` values as name -> dims (``()`` for ``NAME:scalar``)."""
    from ..model.shapes import parse_shape_arg

    shapes: dict[str, tuple[int, ...]] = {}
    for v in values or ():
        name, shape = parse_shape_arg(v)
        if name in shapes:
            raise UsageError(f"--shape given twice for input '{name}'", fix="give it once")
        shapes[name] = tuple(shape)
    return shapes


class Telemetry:
    """The power source, conditions monitor and device fingerprint of one measuring command.

    ``window`` is what the harness starts before and stops after the measured window: the power
    source and the clock/temperature monitor together.
    """

    def __init__(self, args: argparse.Namespace, *, stderr: Any = None) -> None:
        from ..telemetry.conditions import ConditionsMonitor, require_tuned
        from ..telemetry.device import device_fingerprint
        from ..telemetry.power import measure_idle, open_power_source
        from ..telemetry.window import TelemetryWindow

        err = stderr if stderr is not None else sys.stderr
        idle_s = float(args.idle_seconds)
        # `> 0` alone let NaN skip the idle measurement without a word, and inf never end
        if not (idle_s >= 0 and math.isfinite(idle_s)):
            raise UsageError(
                f"--idle-seconds must be a finite number >= 0, not {idle_s:g}",
                fix="pass e.g. --idle-seconds 5, or 0 to skip the idle measurement",
            )
        self.device: Mapping[str, Any] | None = device_fingerprint()
        if getattr(args, "require_tuned", False):
            require_tuned(expect_power_mode=getattr(args, "expect_power_mode", None))
        self.source, note = open_power_source(args.power, period_s=args.power_period)
        self.source_name = getattr(self.source, "name", "none") if self.source else "none"
        quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
        if not quiet and args.power != "none":
            print(f"power: {note}", file=err)
        self.idle = None
        if self.source is not None and args.idle_seconds > 0:
            self.idle = measure_idle(self.source, args.idle_seconds)
        monitor = ConditionsMonitor()
        self.window = TelemetryWindow(self.source, monitor if monitor.available else None)

    def summarize(self, trace: Any, *, inferences: int, window_s: float) -> Mapping[str, Any]:
        from ..telemetry.power import summarize_power

        return summarize_power(trace, inferences=inferences, window_s=window_s, idle=self.idle)

    def bench_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``bench_runner`` / ``bench_model``."""
        return {
            "power": self.window,
            "power_summary": self.summarize,
            "power_source": self.source_name,
            "device": self.device,
        }

    def finalize(self, result: Result) -> Result:
        """Add the clock/temperature and power-sampling findings to a finished result."""
        from ..telemetry.conditions import conditions_warnings
        from ..telemetry.power import power_warnings

        warnings = list(result.warnings)
        extra = dict(result.extra)
        trace = self.window.conditions_trace
        if trace is not None:
            warnings.extend(conditions_warnings(trace))
            extra["conditions"] = trace.to_dict()
        if result.power is not None:
            warnings.extend(power_warnings(result.power))
        return result.with_(warnings=tuple(warnings), extra=extra)


def finish_result(result: Result, args: argparse.Namespace, *, command: str) -> None:
    """Write ``--out``, append to the history, print the result (JSON or table)."""
    from ._format import format_result

    if args.out is not None:
        save_result(result, args.out)
    if not args.no_history:
        from ..history.store import append_to_history

        note = append_to_history(result, command=command, path=args.history)
        if note:
            print(f"history: {note}", file=sys.stderr)
    if args.json:
        import json

        print(json.dumps(finite_or_null(result.to_dict()), indent=2, allow_nan=False))
    else:
        print(format_result(result))
        if args.out is not None:
            print(f"\nresult written to {args.out}")
