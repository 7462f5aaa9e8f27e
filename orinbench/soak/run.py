"""The soak run: the benchmark protocol repeated in back-to-back windows for minutes.

After the normal warm-up, the power source and the conditions monitor are started once and sample
continuously until the last window ends (starting a jtop or tegrastats client per window would
leave the device idle for a fraction of a second each time, and a soak is about not idling). Each
window is one measured window of the harness (:func:`orinbench.bench.harness.measure`, stop rule
"duration = window_s") with no warm-up beyond the one untimed iteration the harness always runs
first; its end is stamped on the telemetry's clock (``time.monotonic``) as the harness returns, so
each window's power (integrated over exactly its span, as ``power.mean_w``) and its clock and
temperature readings are cut from the continuous traces by time. The samplers stamp their traces
from their own start, a few milliseconds apart: the alignment is that good.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._io import require_file
from ..backends.base import Runner
from ..bench.assemble import assemble_result
from ..bench.harness import Clock, Measurement, StopRule, Warmup, measure
from ..bench.run import PowerSummarizer, make_feed, open_runner, runner_runtime
from ..errors import UsageError
from ..model.feeds import feed_warnings
from ..results.schema import ModelRef, QualityWarning, Result, RunConfig
from ..telemetry.conditions import ConditionsMonitor, ConditionsSample, ConditionsTrace
from ..telemetry.conditions import conditions_warnings as _conditions_warnings
from ..telemetry.host import host_environment
from ..telemetry.power import PowerSample, PowerSource, PowerTrace, summarize_power
from ..telemetry.window import TelemetryWindow
from .windows import (
    STEADY_TOL_C,
    SoakWindow,
    summarize_soak,
    throttle_events,
    throttle_monitored,
)

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


def _shift_power(trace: PowerTrace, by: float, *, duration_s: float) -> PowerTrace:
    # replace() keeps every other field (the sensor's resolution, the repeats dropped, ...)
    return replace(
        trace,
        samples=tuple(PowerSample(s.t_s - by, s.total_w, s.rails) for s in trace.samples),
        duration_s=duration_s,
    )


def _shift_conditions(trace: ConditionsTrace, by: float) -> ConditionsTrace:
    samples = tuple(
        ConditionsSample(
            t_s=s.t_s - by, gpu_freq_mhz=s.gpu_freq_mhz, gpu_max_freq_mhz=s.gpu_max_freq_mhz,
            emc_freq_mhz=s.emc_freq_mhz, temperatures_c=s.temperatures_c, oc_events=s.oc_events,
            cooling=s.cooling, throttle_reasons=s.throttle_reasons,
        )
        for s in trace.samples
    )  # fmt: skip
    return ConditionsTrace(
        trace.source, samples, trace.period_s, trace.duration_s - by, trace.trip_points_c
    )


def _window_samples(trace: ConditionsTrace, a: float, b: float) -> ConditionsTrace:
    """The readings inside [a, b]; the last one before b when the window holds none."""
    inside = tuple(s for s in trace.samples if a <= s.t_s <= b)
    if not inside:
        before = [s for s in trace.samples if s.t_s <= b]
        inside = (before[-1],) if before else ()
    return ConditionsTrace(trace.source, inside, trace.period_s, b - a, trace.trip_points_c)


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
    monotonic: Callable[[], float] = time.monotonic,
    steady_tol_c: float = STEADY_TOL_C,
    on_window: WindowCallback | None = None,
) -> SoakRun:
    """Soak an entered runner for ``seconds`` in windows of ``window_s`` (see the module doc).

    ``seconds`` is rounded down to whole windows; less than one window is a UsageError (exit 2).
    ``power`` and ``conditions`` (either may be None: that figure is then not measured) sample
    continuously from the end of the warm-up to the end of the last window; each window's power
    and conditions are cut from those traces by time. ``clock`` is the harness clock and
    ``monotonic`` the time base of the telemetry traces (``time.monotonic``, as the samplers
    stamp their readings); tests pass fake ones. ``on_window`` receives each window's latency
    figures as it ends (power and conditions are filled in when the soak ends).
    """
    n = window_count(seconds, window_s)
    if not steady_tol_c > 0:
        raise UsageError(f"--steady-tol must be > 0 °C, not {steady_tol_c:g}", fix="e.g. 1.0")
    runner.load_inputs(feed)
    # the warm-up, alone, so that telemetry starts on a warm device right before window 0
    warm = measure(
        runner,
        warmup=warmup if warmup is not None else Warmup(),
        stop=StopRule(iterations=1),
        transfers=transfers,
        clock=clock,
    )
    stop = StopRule(duration_s=window_s, max_seconds=window_s * _CAP_FACTOR)
    later = Warmup(seconds=0.0, iterations=0)
    measurements: list[Measurement] = []
    bounds: list[tuple[float, float]] = []
    tw = TelemetryWindow(power, conditions) if (power, conditions) != (None, None) else None
    power_trace: PowerTrace | None = None
    cond_trace: ConditionsTrace | None = None
    if tw is not None:
        tw.start()
    origin = monotonic()
    try:
        for i in range(n):
            m = measure(runner, warmup=later, stop=stop, transfers=transfers, clock=clock)
            end = monotonic() - origin
            measurements.append(m)
            bounds.append((end - m.wall_s, end))
            if on_window is not None:
                on_window(_latency_window(i, m, bounds[0][0], bounds[-1]), n)
    finally:
        if tw is not None:
            power_trace = tw.stop()
            cond_trace = tw.conditions_trace
    t0 = bounds[0][0]
    span = bounds[-1][1] - t0
    merged_power = (
        _shift_power(power_trace, t0, duration_s=span) if power_trace is not None else None
    )
    merged_cond = (
        _shift_conditions(cond_trace, t0) if cond_trace is not None and cond_trace.samples else None
    )
    windows: list[SoakWindow] = []
    for i, (m, (a, b)) in enumerate(zip(measurements, bounds, strict=True)):
        w = _latency_window(i, m, t0, (a, b))
        power_w = None
        if merged_power is not None and m.wall_s > 0:
            part = _shift_power(merged_power, a - t0, duration_s=m.wall_s)
            power_w = float(
                summarize_power(part, inferences=m.iterations, window_s=m.wall_s)["mean_w"]
            )
        clock_mhz = clock_min = None
        temps: dict[str, float] = {}
        if merged_cond is not None:
            clock_mhz, clock_min, temps = _window_conditions(
                _window_samples(merged_cond, a - t0, b - t0)
            )
        windows.append(
            replace(
                w,
                power_w=power_w,
                gpu_clock_mhz=clock_mhz,
                gpu_clock_min_mhz=clock_min,
                temp_c=max(temps.values()) if temps else None,
                temps_c=temps,
            )
        )
    # no clock or thermal readings (no Jetson sysfs, no NVML): throttling was not monitored, and
    # "0 events" would be a claim without evidence that a "<= 0" target passes on
    events = (
        throttle_events(merged_cond.samples, trip_points_c=merged_cond.trip_points_c)
        if merged_cond is not None
        and throttle_monitored(merged_cond.samples, trip_points_c=merged_cond.trip_points_c)
        else None
    )
    summary = summarize_soak(windows, window_s=window_s, events=events, steady_tol_c=steady_tol_c)
    gpu = [m.gpu_compute_ms for m in measurements]
    combined = Measurement(
        latency_ms=np.concatenate([m.latency_ms for m in measurements]),
        enqueue_ms=np.concatenate([m.enqueue_ms for m in measurements]),
        gpu_compute_ms=None
        if any(g is None for g in gpu)
        else np.concatenate([g for g in gpu if g is not None]),
        warmup_iterations=warm.warmup_iterations,
        warmup_s=warm.warmup_s,
        wall_s=float(sum(m.wall_s for m in measurements)),
        stop_reason=f"soaked {n} window(s) of {window_s:g} s",
        power_trace=None,
    )
    return SoakRun(
        measurement=combined,
        windows=tuple(windows),
        summary=summary,
        power_trace=merged_power,
        conditions_trace=merged_cond,
        span_s=span,
    )


def _latency_window(i: int, m: Measurement, t0: float, ab: tuple[float, float]) -> SoakWindow:
    return SoakWindow(
        index=i,
        t_s=ab[0] - t0,
        duration_s=m.wall_s,
        iterations=m.iterations,
        p50_ms=float(np.percentile(m.latency_ms, 50)),
        p99_ms=float(np.percentile(m.latency_ms, 99)),
        fps=m.fps,
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
    precision: str | None = None,
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
    ``precision`` None records, on ONNX Runtime, the model's own precision
    (:func:`orinbench.model.identity.model_precision`); on TensorRT the precision the engine's
    sidecar says it was built with, ``unknown`` without one (as ``bench`` records it).
    """
    from ..model.identity import artifact_sha256

    n = window_count(seconds, window_s)  # bad durations fail before anything is opened
    path = require_file(model_path, what="model or engine file")
    if backend == "onnxruntime":
        from ..model.identity import model_precision
        from ..model.load import load_model

        onnx_model = load_model(path)
        if precision is None:
            # ONNX Runtime runs the model as exported: a Q/DQ model is an int8 result
            precision = model_precision(onnx_model)
        del onnx_model
    warmup = warmup if warmup is not None else Warmup()
    runner = open_runner(backend, path, options=runner_options)
    with runner:
        if precision is None:
            precision = _engine_precision(runner) if backend == "tensorrt" else "fp32"
        feed, resolved = make_feed(runner.inputs, shapes=shapes, npz=inputs_npz, seed=seed)
        model = ModelRef(
            name=Path(path).stem,
            path=str(path),
            sha256=artifact_sha256(path),
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
        runtime = runner_runtime(runner)
    power_section = None
    if run.power_trace is not None and run.span_s > 0:
        summarize = power_summary if power_summary is not None else summarize_power
        power_section = dict(
            summarize(run.power_trace, inferences=run.measurement.iterations, window_s=run.span_s)
        )
    # NaN/Inf in the data (a user's --inputs file): soaked all the same, but said so
    warnings: list[QualityWarning] = list(
        feed_warnings(feed, source=f"npz:{inputs_npz}" if inputs_npz else "random")
    )
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
        runtime=runtime,
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


def _engine_precision(runner: Any) -> str:
    """The precision a TensorRT engine was built with, from its sidecar; ``unknown`` without."""
    from ..backends.tensorrt.sidecar import read_sidecar

    engine = getattr(runner, "engine_path", None)
    sidecar = read_sidecar(engine) if engine is not None else None
    return str(((sidecar or {}).get("settings") or {}).get("precision") or "unknown")
