"""Thermal soak: the benchmark run continuously for minutes, in windows (``orinbench soak``).

* :mod:`.windows` — per-window figures, drift, throttle events and the thermal steady state
  (pure functions; the definitions are in its docstring and docs/soak.md).
* :mod:`.run` — :func:`soak_runner` (an entered runner) and :func:`soak_model` (a model or engine
  file, as ``bench`` opens it), giving a result with ``extra['soak']``.
"""

from __future__ import annotations

from .run import DEFAULT_WINDOW_S, SoakRun, soak_model, soak_runner, window_count
from .windows import (
    STEADY_TOL_C,
    SoakWindow,
    ThrottleEvent,
    drift_pct,
    steady_state_time,
    summarize_soak,
    throttle_events,
    throttle_monitored,
)

__all__ = [
    "DEFAULT_WINDOW_S",
    "STEADY_TOL_C",
    "SoakRun",
    "SoakWindow",
    "ThrottleEvent",
    "drift_pct",
    "soak_model",
    "soak_runner",
    "steady_state_time",
    "summarize_soak",
    "throttle_events",
    "throttle_monitored",
    "window_count",
]
