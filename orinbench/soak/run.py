"""The soak run: the benchmark protocol repeated in back-to-back windows for minutes.

Each window is one measured window of the harness (:func:`orinbench.bench.harness.measure`,
stop rule "duration = window_s"), with the power source and the conditions monitor started right
before it and stopped right after it, so that every window has its own latency samples, power
trace and clock/temperature readings. The first window follows the normal warm-up; later windows
have no warm-up beyond the one untimed iteration the harness always runs, so the device is never
idle between windows (the gap is that iteration plus the samplers' start and stop reads).

The result is an ordinary :class:`~orinbench.results.schema.Result` over all windows (latency
statistics, FPS, power and energy from the merged power trace, quality warnings, the merged
conditions trace in ``extra['conditions']``) plus ``extra['soak']``
(:func:`.windows.summarize_soak`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import require_file, sha256_file
from ..backends.base import Runner
from ..bench.assemble import assemble_result
from ..bench.harness import Clock, Measurement, StopRule, Warmup, measure
from ..bench.run import PowerSummarizer, make_feed, open_runner
from ..errors import UsageError
from ..results.schema import ModelRef, QualityWarning, Result, RunConfig
from ..telemetry.conditions import ConditionsMonitor, ConditionsSample, ConditionsTrace
from ..telemetry.conditions import conditions_warnings as _conditions_warnings
from ..telemetry.host import host_environment
from ..telemetry.power import PowerSample, PowerSource, PowerTrace, achieved_period, summarize_power
from ..telemetry.window import TelemetryWindow
from .windows import STEADY_TOL_C, SoakWindow, summarize_soak, throttle_events

#: default window length (seconds)
DEFAULT_WINDOW_S = 10.0
#: a window of the harness may overrun by the last iteration; the cap only guards a stuck runner
_CAP_FACTOR = 4.0

#: called after each window with (window, windows planned)
WindowCallback = Callable[[SoakWindow, int], None]


@dataclass(frozen=True)
class SoakRun:
    """What :func:`soak_runner` measured: all windows merged, and each window's figures."""

    measurement: Measurement
    windows: tuple[SoakWindow, ...]
    summary: Mapping[str, Any]
    power_trace: PowerTrace | None
    conditions_trace: ConditionsTrace | None
    span_s: float


def window_count(seconds: float, window_s: float) -> int:
    """Whole windows in a soak of ``seconds``; a soak shorter than one window is a UsageError."""
    if not window_s > 0 or not math.isfinite(window_s):
        raise UsageError(f"--window-s must be > 0 seconds, not {window_s:g}", fix="e.g. 10")
    if not seconds > 0 or not math.isfinite(seconds):
        raise UsageError(
            f"the soak duration must be > 0, not {seconds:g} s",
            fix="pass e.g. --minutes 10 or --seconds 60",
        )
    # a tiny tolerance so that 0.3 s / 0.1 s counts as 3 windows despite binary fractions
    n = math.floor(seconds / window_s + 1e-9)
    if n < 1:
        raise UsageError(
            f"a soak of {seconds:g} s is shorter than one window ({window_s:g} s)",
            fix=f"soak for at least {window_s:g} s, or pass a shorter --window-s",
        )
    return n


def _window_conditions(
    trace: ConditionsTrace | None,
) -> tuple[float | None, float | None, dict[str, float]]:
    if trace is None or not trace.samples:
        return None, None, {}
    clocks = [s.gpu_freq_mhz for s in trace.samples if s.gpu_freq_mhz is not None]
    zones: dict[str, list[float]] = {}
    for s in trace.samples:
        for zone, temp in s.temperatures_c.items():
            zones.setdefault(zone, []).append(temp)
    temps = {z: round(float(np.mean(v)), 3) for z, v in sorted(zones.items())}
    median = float(np.median(clocks)) if clocks else None
    lowest = float(min(clocks)) if clocks else None
    return median, lowest, temps


def _merge_power(traces: Sequence[tuple[float, PowerTrace]]) -> PowerTrace | None:
    if not traces:
        return None
    samples = tuple(
        PowerSample(t_s=offset + s.t_s, total_w=s.total_w, rails=s.rails)
        for offset, tr in traces
        for s in tr.samples
    )
    first = traces[0][1]
    last_offset, last = traces[-1]
    counters = [tr.energy_counter_j for _, tr in traces]
    return PowerTrace(
        source=first.source,
        samples=samples,
        period_s_requested=first.period_s_requested,
        period_s_achieved=achieved_period([s.t_s for s in samples]),
        duration_s=last_offset + last.duration_s,
        total_of=first.total_of,
        notes=first.notes,
        energy_counter_j=None if any(c is None for c in counters)
        else float(sum(c for c in counters if c is not None)),
    )


def _merge_conditions(traces: Sequence[tuple[float, ConditionsTrace]]) -> ConditionsTrace | None:
    if not traces:
        return None
    samples = tuple(
        ConditionsSample(
            t_s=offset + s.t_s, gpu_freq_mhz=s.gpu_freq_mhz, gpu_max_freq_mhz=s.gpu_max_freq_mhz,
            emc_freq_mhz=s.emc_freq_mhz, temperatures_c=s.temperatures_c, oc_events=s.oc_events,
            cooling=s.cooling, throttle_reasons=s.throttle_reasons,
        )
        for offset, tr in traces
        for s in tr.samples
    )
    first = traces[0][1]
    last_offset, last = traces[-1]
    return ConditionsTrace(
        source=first.source,
        samples=samples,
        period_s=first.period_s,
        duration_s=last_offset + last.duration_s,
        trip_points_c=first.trip_points_c,
    )


def soak_runner(
    runner: Runner,
    *,
    feed: Mapping[str, Any],
    seconds: float,
    window_s: float = DEFAULT_WINDOW_S,
    warmup: Warmup | None = None,
    transfers: bool = True,
    power: PowerSource | None = None,
    conditions: ConditionsMonitor | None = None,
    clock: Clock = time.perf_counter_ns,
    steady_tol_c: float = STEADY_TOL_C,
    on_window: WindowCallback | None = None,
) -> SoakRun:
    """Soak an entered runner for ``seconds`` in windows of ``window_s`` (see the module doc).

    ``seconds`` is rounded down to whole windows; less than one window is a UsageError (exit 2).
    ``power`` and ``conditions`` are started and stopped around every window (either may be None:
    that figure is then not measured). ``clock`` is the harness clock (tests pass a fake one).
    """
    n = window_count(seconds, window_s)
    if not steady_tol_c > 0:
        raise UsageError(f"--steady-tol must be > 0 °C, not {steady_tol_c:g}", fix="e.g. 1.0")
    runner.load_inputs(feed)
    stop = StopRule(duration_s=window_s, max_seconds=window_s * _CAP_FACTOR)
    later = Warmup(seconds=0.0, iterations=0)
    measurements: list[Measurement] = []
    windows: list[SoakWindow] = []
    power_traces: list[tuple[float, PowerTrace]] = []
    cond_traces: list[tuple[float, ConditionsTrace]] = []
    origin: int | None = None
    for i in range(n):
        tw = TelemetryWindow(power, conditions)
        m = measure(
            runner,
            warmup=warmup if i == 0 else later,
            stop=stop,
            transfers=transfers,
            clock=clock,
            power=tw if (power is not None or conditions is not None) else None,
        )
        end = clock()
        start = end - int(m.wall_s * 1e9)
        if origin is None:
            origin = start
        t_s = (start - origin) / 1e9
        measurements.append(m)
        power_w = None
        if isinstance(m.power_trace, PowerTrace) and m.wall_s > 0:
            power_traces.append((t_s, m.power_trace))
            power_w = float(
                summarize_power(m.power_trace, inferences=m.iterations, window_s=m.wall_s)[
                    "mean_w"
                ]
            )
        if tw.conditions_trace is not None:
            cond_traces.append((t_s, tw.conditions_trace))
        clock_mhz, clock_min, temps = _window_conditions(tw.conditions_trace)
        window = SoakWindow(
            index=i,
            t_s=t_s,
            duration_s=m.wall_s,
            iterations=m.iterations,
            p50_ms=float(np.percentile(m.latency_ms, 50)),
            p99_ms=float(np.percentile(m.latency_ms, 99)),
            fps=m.fps,
            power_w=power_w,
            gpu_clock_mhz=clock_mhz,
            gpu_clock_min_mhz=clock_min,
            temp_c=max(temps.values()) if temps else None,
            temps_c=temps,
        )
        windows.append(window)
        if on_window is not None:
            on_window(window, n)

    merged_cond = _merge_conditions(cond_traces)
    events = throttle_events(
        merged_cond.samples if merged_cond is not None else (),
        trip_points_c=merged_cond.trip_points_c if merged_cond is not None else None,
    )
    summary = summarize_soak(windows, window_s=window_s, events=events, steady_tol_c=steady_tol_c)
    gpu = [m.gpu_compute_ms for m in measurements]
    combined = Measurement(
        latency_ms=np.concatenate([m.latency_ms for m in measurements]),
        enqueue_ms=np.concatenate([m.enqueue_ms for m in measurements]),
        gpu_compute_ms=None if any(g is None for g in gpu)
        else np.concatenate([g for g in gpu if g is not None]),
        warmup_iterations=measurements[0].warmup_iterations,
        warmup_s=measurements[0].warmup_s,
        wall_s=float(sum(m.wall_s for m in measurements)),
        stop_reason=f"soaked {n} window(s) of {window_s:g} s",
        power_trace=None,
    )
    span = windows[-1].t_s + windows[-1].duration_s
    return SoakRun(
        measurement=combined,
        windows=tuple(windows),
        summary=summary,
        power_trace=_merge_power(power_traces),
        conditions_trace=merged_cond,
        span_s=span,
    )


def soak_model(
    model_path: str | os.PathLike[str],
    *,
    seconds: float,
    window_s: float = DEFAULT_WINDOW_S,
    backend: str = "onnxruntime",
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs_npz: str | os.PathLike[str] | None = None,
    seed: int = 0,
    precision: str = "fp32",
    runner_options: Mapping[str, Any] | None = None,
    warmup: Warmup | None = None,
    transfers: bool = True,
    power: PowerSource | None = None,
    conditions: ConditionsMonitor | None = None,
    power_summary: PowerSummarizer | None = None,
    power_source: str = "none",
    device: Mapping[str, Any] | None = None,
    clock: Clock = time.perf_counter_ns,
    steady_tol_c: float = STEADY_TOL_C,
    on_window: WindowCallback | None = None,
) -> Result:
    """Soak a model or engine (``orinbench soak``); the result carries ``extra['soak']``.

    The runner is opened as ``bench`` opens it (:func:`orinbench.bench.run.open_runner`), so an
    ONNX model runs in ONNX Runtime and an engine (or an ONNX model with ``backend="tensorrt"``,
    built first) in TensorRT. ``power_summary`` turns the merged power trace into the result's
    ``power`` section (default :func:`~orinbench.telemetry.power.summarize_power`).
    """
    n = window_count(seconds, window_s)  # bad durations fail before anything is opened
    path = require_file(model_path, what="model or engine file")
    if backend == "onnxruntime":
        from ..model.load import load_model

        load_model(path)
    warmup = warmup if warmup is not None else Warmup()
    runner = open_runner(backend, path, options=runner_options)
    with runner:
        feed, resolved = make_feed(runner.inputs, shapes=shapes, npz=inputs_npz, seed=seed)
        model = ModelRef(
            name=Path(path).stem,
            path=str(path),
            sha256=sha256_file(path),
            inputs=runner.inputs,
            outputs=runner.outputs,
        )
        run = soak_runner(
            runner,
            feed=feed,
            seconds=seconds,
            window_s=window_s,
            warmup=warmup,
            transfers=transfers,
            power=power,
            conditions=conditions,
            clock=clock,
            steady_tol_c=steady_tol_c,
            on_window=on_window,
        )
        backend_name, backend_version = runner.backend, runner.backend_version
    power_section = None
    if run.power_trace is not None and run.span_s > 0:
        summarize = power_summary if power_summary is not None else summarize_power
        power_section = dict(
            summarize(run.power_trace, inferences=run.measurement.iterations, window_s=run.span_s)
        )
    warnings: list[QualityWarning] = []
    extra: dict[str, Any] = {"soak": dict(run.summary)}
    if run.conditions_trace is not None:
        warnings.extend(_conditions_warnings(run.conditions_trace))
        extra["conditions"] = run.conditions_trace.to_dict()
    config = RunConfig(
        backend=backend_name,
        precision=precision,
        warmup=warmup.to_dict(),
        stop={
            "kind": "soak",
            "duration_s": round(n * window_s, 6),
            "window_s": window_s,
            "windows": n,
        },
        shapes={k: tuple(v) for k, v in resolved.items()},
        input_source=f"npz:{inputs_npz}" if inputs_npz else "random",
        seed=seed,
        power_source=power_source,
        extra={"transfers": transfers, "command": "soak"},
    )
    env = host_environment(backend=backend_name, backend_version=backend_version, device=device)
    return assemble_result(
        run.measurement,
        environment=env,
        model=model,
        config=config,
        warnings=warnings,
        power=power_section,
        extra=extra,
    )
