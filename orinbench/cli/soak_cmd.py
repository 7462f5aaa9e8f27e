"""``orinbench soak ENGINE_OR_MODEL --minutes M``: run continuously, report drift and throttling."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..bench.harness import Warmup
from ..bench.run import BACKENDS
from ..errors import UsageError
from ._common import (
    Telemetry,
    add_model_input_args,
    add_output_args,
    add_telemetry_args,
    finish_result,
    ort_options,
    parse_shapes,
    seed_arg,
)
from ._outputs import check_outputs
from .bench import choose_backend


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "soak",
        help="run a model or engine for minutes: P99/power drift, throttling, thermal steady state",
        description="Run the benchmark continuously in windows (default 10 s) and record per "
        "window P50/P99 latency, mean power, GPU clock and temperatures; report the drift of P99 "
        "and power from the first to the last window, throttle events and the time to thermal "
        "steady state (docs/soak.md). The result holds extra.soak; targets may use soak.* "
        "metrics (e.g. soak.p99_drift_pct) with 'orinbench gate'.",
    )
    p.add_argument("model", type=Path, help="MODEL.onnx or ENGINE.engine")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--minutes", type=float, default=None, metavar="M", help="soak length")
    length.add_argument(
        "--seconds", type=float, default=None, metavar="S", help="soak length in seconds"
    )
    p.add_argument(
        "--window-s",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="window length (default 10); the soak is rounded down to whole windows",
    )
    p.add_argument(
        "--steady-tol",
        type=float,
        default=1.0,
        metavar="DEG_C",
        help="thermal steady state: windows within this many °C of the last (default 1.0)",
    )
    p.add_argument(
        "--backend",
        choices=(*BACKENDS, "auto"),
        default="auto",
        help="auto: tensorrt for .engine files, onnxruntime for .onnx (default)",
    )
    add_model_input_args(p)
    g = p.add_argument_group("measurement protocol")
    g.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="warm-up before the first window (default 1.0)",
    )
    g.add_argument("--seed", type=seed_arg, default=0, help="seed for generated inputs (default 0)")
    add_telemetry_args(p, idle=False)
    add_output_args(p)
    p.set_defaults(handler=run)


def _fmt(v: Any, spec: str, unit: str = "") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:{spec}}{unit}"
    width = spec.split(".")[0].lstrip("+")
    return f"{'-':>{width}}" if width.isdigit() else "-"


def format_soak(soak: dict[str, Any]) -> str:
    """The per-window table and the summary lines printed by ``orinbench soak``."""
    lines = [
        f"{'window':>6} {'t [s]':>8} {'P50 ms':>9} {'P99 ms':>9} {'FPS':>8} {'power W':>8} "
        f"{'GPU MHz':>8} {'temp °C':>8}"
    ]
    for w in soak.get("windows", []):
        lines.append(
            f"{w['index']:>6} {_fmt(w['t_s'], '8.1f')} {_fmt(w['p50_ms'], '9.3f')} "
            f"{_fmt(w['p99_ms'], '9.3f')} {_fmt(w['fps'], '8.1f')} {_fmt(w['power_w'], '8.2f')} "
            f"{_fmt(w['gpu_clock_mhz'], '8.0f')} {_fmt(w['temp_c'], '8.1f')}"
        )
    steady = soak.get("steady_state_s")
    lines += [
        "",
        f"P99 drift          {_fmt(soak.get('p99_drift_pct'), '+.1f', ' %')} "
        f"({_fmt(soak.get('p99_first_ms'), '.3f')} -> {_fmt(soak.get('p99_last_ms'), '.3f')} ms)",
        f"power drift        {_fmt(soak.get('power_drift_pct'), '+.1f', ' %')} "
        f"({_fmt(soak.get('power_first_w'), '.2f')} -> {_fmt(soak.get('power_last_w'), '.2f')} W)",
        "throttle events    "
        + (
            "not monitored (no GPU clock or thermal readings)"
            if soak.get("throttle_events") is None
            else str(soak["throttle_events"])
        ),
        "thermal steady     "
        + (
            f"after {steady:.1f} s (within {soak.get('steady_tol_c'):g} °C of the last window)"
            if isinstance(steady, (int, float))
            else "not reached (or no temperature readings)"
        ),
    ]
    for e in soak.get("events", [])[:10]:
        lines.append(f"  {e['t_s']:8.1f} s  {e['kind']}: {e['detail']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..soak.run import soak_model, window_count

    check_outputs(args, ("out", "history"))
    seconds = float(args.minutes) * 60.0 if args.minutes is not None else float(args.seconds)
    window_count(seconds, args.window_s)  # a soak shorter than one window: exit 2 before probing
    if args.warmup < 0:
        raise UsageError("--warmup must be >= 0 seconds", fix="pass e.g. --warmup 1")
    backend = choose_backend(args.model, args.backend)
    shapes = parse_shapes(args.shape)
    opts = ort_options(args)
    if opts and backend != "onnxruntime":
        raise UsageError(
            "--ort-providers and --ort-threads apply to ONNX Runtime, not TensorRT",
            fix="drop them, or soak the .onnx with --backend onnxruntime",
        )
    tel = Telemetry(args)
    quiet = args.quiet or args.json

    def on_window(w: Any, total: int) -> None:
        # power, clocks and temperatures are cut from the continuous traces at the end
        if not quiet:
            print(
                f"soak: window {w.index + 1}/{total}  P50 {w.p50_ms:.3f} ms  P99 {w.p99_ms:.3f} ms"
                f"  {w.fps:.1f} FPS",
                file=sys.stderr,
            )

    result = soak_model(
        args.model,
        seconds=seconds,
        window_s=args.window_s,
        backend=backend,
        shapes=shapes,
        inputs_npz=args.inputs,
        seed=args.seed,
        runner_options=opts,
        warmup=Warmup(seconds=args.warmup),
        power=tel.source,
        conditions=tel.window.conditions,
        power_summary=tel.summarize,
        power_source=tel.source_name,
        device=tel.device,
        steady_tol_c=args.steady_tol,
        on_window=on_window,
    )
    if result.power is not None:
        from ..telemetry.power import power_warnings

        result = result.with_(warnings=(*result.warnings, *power_warnings(result.power)))
    if not args.json:
        print(format_soak(dict(result.extra["soak"])))
        print()
    finish_result(result, args, command="soak")
    return 0
