"""Soak statistics: per-window figures, drift, throttle events, time to thermal steady state.

Pure functions over window figures and conditions samples (no clock, no device), so the
definitions below can be tested on scripted data. docs/soak.md gives them with examples.

Definitions
-----------
* **Window**: the soak runs in back-to-back windows of ``window_s`` seconds. Per window:
  P50/P99 host latency (linear percentiles of that window's samples), FPS, mean power
  (time-weighted, as in ``power.mean_w``), the GPU clock (median of the window's readings) and its
  lowest reading, the mean temperature of each thermal zone, and ``temp_c``: the hottest zone's
  mean.
* **Drift** of a figure: ``100 * (last - first) / first`` in percent, first and last window.
  Positive P99 drift means the last window was slower. None with a single window or a figure
  that was not measured.
* **Throttle events** (:func:`throttle_events`), counted over the whole soak on the GPU/thermal
  readings taken every conditions period:

  - ``gpu-clock-drop``: the GPU clock falls below ``(1 - CLOCK_REL_TOL)`` (1 %) of the highest
    clock seen so far; one event per onset (the clock must recover above that level before
    another drop counts);
  - ``clock-cap``: the GPU clock cap (devfreq ``max_freq``) is lowered;
  - ``over-current``: the over-current event counters rise; each counted event is one event;
  - ``trip-point``: a thermal zone reaches its lowest passive/hot trip point (from below);
  - ``cooling``: a (non-fan) thermal cooling device becomes active;
  - ``throttle-reason``: an NVML throttle reason appears.

* **Thermal steady state** (:func:`steady_state_time`): with ``T_k`` the window temperatures and
  ``T_last`` the last one, the steady state begins at the start of the first window ``k`` after
  which every window stays within ``STEADY_TOL_C`` (1.0 °C) of ``T_last``:
  ``|T_j - T_last| <= tol`` for all ``j >= k``. It must hold for at least two windows (``k`` at
  most the second-to-last), otherwise the temperature was still moving at the end and the
  steady state was not reached (None). ``steady_state_s`` is that window's start, in seconds
  from the start of the first window (0 when the device was steady from the beginning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..telemetry.conditions import CLOCK_REL_TOL, ConditionsSample

#: temperature band of the thermal steady state (°C)
STEADY_TOL_C = 1.0
#: windows a steady state must last, at the end of the soak (the band holds from k to the end)
STEADY_MIN_WINDOWS = 2


@dataclass(frozen=True)
class SoakWindow:
    """The figures of one soak window. ``t_s`` is its start, from the start of the first one."""

    index: int
    t_s: float
    duration_s: float
    iterations: int
    p50_ms: float
    p99_ms: float
    fps: float
    power_w: float | None = None
    gpu_clock_mhz: float | None = None
    gpu_clock_min_mhz: float | None = None
    temp_c: float | None = None
    temps_c: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``Result.extra['soak']['windows']`` (read by the reports)."""
        return {
            "index": self.index,
            "t_s": round(self.t_s, 4),
            "duration_s": round(self.duration_s, 4),
            "iterations": self.iterations,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "fps": self.fps,
            "power_w": self.power_w,
            "gpu_clock_mhz": self.gpu_clock_mhz,
            "gpu_clock_min_mhz": self.gpu_clock_min_mhz,
            "temp_c": self.temp_c,
            "temps_c": dict(self.temps_c),
        }


@dataclass(frozen=True)
class ThrottleEvent:
    """One throttling sign, ``t_s`` seconds after the soak began."""

    t_s: float
    kind: str
    detail: str
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_s": round(self.t_s, 3),
            "kind": self.kind,
            "detail": self.detail,
            "count": self.count,
        }


def drift_pct(first: float | None, last: float | None) -> float | None:
    """``100 * (last - first) / first``; None when either is missing or ``first`` is 0."""
    if first is None or last is None or first == 0:
        return None
    return 100.0 * (last - first) / first


def throttle_events(
    samples: Sequence[ConditionsSample],
    *,
    trip_points_c: Mapping[str, float] | None = None,
    clock_rel_tol: float = CLOCK_REL_TOL,
) -> list[ThrottleEvent]:
    """The throttle events in time-ordered conditions ``samples`` (see the module docstring)."""
    trips = dict(trip_points_c or {})
    out: list[ThrottleEvent] = []
    highest: float | None = None
    dropped = False
    prev: ConditionsSample | None = None
    for s in sorted(samples, key=lambda x: x.t_s):
        clock = s.gpu_freq_mhz
        if clock is not None:
            if highest is None or clock > highest:
                highest = clock
            low = clock < (1.0 - clock_rel_tol) * highest
            if low and not dropped:
                out.append(
                    ThrottleEvent(
                        s.t_s,
                        "gpu-clock-drop",
                        f"GPU clock fell to {clock:g} MHz (highest {highest:g})",
                    )
                )
            dropped = low
        if prev is not None:
            a, b = prev.gpu_max_freq_mhz, s.gpu_max_freq_mhz
            if a is not None and b is not None and b < a:
                out.append(
                    ThrottleEvent(
                        s.t_s, "clock-cap", f"GPU clock cap lowered from {a:g} to {b:g} MHz"
                    )
                )
            oa, ob = prev.oc_events, s.oc_events
            if oa is not None and ob is not None and ob > oa:
                out.append(
                    ThrottleEvent(
                        s.t_s, "over-current", f"{ob - oa} over-current event(s)", count=ob - oa
                    )
                )
            for zone, temp in s.temperatures_c.items():
                trip = trips.get(zone)
                before = prev.temperatures_c.get(zone)
                if trip is not None and temp >= trip and (before is None or before < trip):
                    out.append(
                        ThrottleEvent(
                            s.t_s, "trip-point", f"{zone} reached {temp:g} °C (trip {trip:g} °C)"
                        )
                    )
            for name, state in s.cooling.items():
                if state > 0 and prev.cooling.get(name, 0) == 0:
                    out.append(
                        ThrottleEvent(s.t_s, "cooling", f"cooling device {name} became active")
                    )
            for reason in s.throttle_reasons:
                if reason not in prev.throttle_reasons:
                    out.append(
                        ThrottleEvent(s.t_s, "throttle-reason", f"GPU clock held down by {reason}")
                    )
        prev = s
    return out


def steady_state_time(
    windows: Sequence[SoakWindow], *, tol_c: float = STEADY_TOL_C
) -> float | None:
    """Start of the thermal steady state in seconds from the first window, or None.

    See the module docstring: the first window from which every window's temperature stays
    within ``tol_c`` of the last window's, for at least :data:`STEADY_MIN_WINDOWS` windows.
    """
    with_temp = [w for w in windows if w.temp_c is not None]
    if len(with_temp) < STEADY_MIN_WINDOWS:
        return None
    final = with_temp[-1].temp_c
    assert final is not None
    k = len(with_temp) - 1
    while k > 0:
        t = with_temp[k - 1].temp_c
        assert t is not None
        if abs(t - final) > tol_c:
            break
        k -= 1
    if k > len(with_temp) - STEADY_MIN_WINDOWS:
        return None
    return with_temp[k].t_s


def throttle_monitored(
    samples: Sequence[ConditionsSample], *, trip_points_c: Mapping[str, float] | None = None
) -> bool:
    """Whether any of ``samples`` holds a reading :func:`throttle_events` can detect an event in:
    a GPU clock or clock cap, over-current counters, a cooling device, a throttle reason, or the
    temperature of a zone whose trip point is known (a temperature alone shows no throttling)."""
    trips = set(trip_points_c or {})
    return any(
        s.gpu_freq_mhz is not None
        or s.gpu_max_freq_mhz is not None
        or s.oc_events is not None
        or s.cooling
        or s.throttle_reasons
        or trips.intersection(s.temperatures_c)
        for s in samples
    )


def summarize_soak(
    windows: Sequence[SoakWindow],
    *,
    window_s: float,
    events: Sequence[ThrottleEvent] | None = None,
    steady_tol_c: float = STEADY_TOL_C,
) -> dict[str, Any]:
    """``Result.extra['soak']``: the windows, the drifts, throttle events and the steady state.

    Scalar keys become metrics (``soak.p99_drift_pct``, ``soak.throttle_events``,
    ``soak.steady_state_s`` ...); None values (not measured) are left out of the metrics.
    ``events`` None means throttling was not monitored (no clock or thermal readings):
    ``throttle_events`` is then None, not 0, so that a target on it cannot pass on no evidence.
    """
    if not windows:
        raise ValueError("a soak summary needs at least one window")
    first, last = windows[0], windows[-1]
    several = len(windows) > 1
    return {
        "window_s": window_s,
        "window_count": len(windows),
        "duration_s": round(last.t_s + last.duration_s, 4),
        "p50_first_ms": first.p50_ms,
        "p50_last_ms": last.p50_ms,
        "p50_drift_pct": drift_pct(first.p50_ms, last.p50_ms) if several else None,
        "p99_first_ms": first.p99_ms,
        "p99_last_ms": last.p99_ms,
        "p99_drift_pct": drift_pct(first.p99_ms, last.p99_ms) if several else None,
        "power_first_w": first.power_w,
        "power_last_w": last.power_w,
        "power_drift_pct": drift_pct(first.power_w, last.power_w) if several else None,
        "gpu_clock_first_mhz": first.gpu_clock_mhz,
        "gpu_clock_last_mhz": last.gpu_clock_mhz,
        "temp_first_c": first.temp_c,
        "temp_last_c": last.temp_c,
        "throttle_events": None if events is None else int(sum(e.count for e in events)),
        "steady_state_s": steady_state_time(windows, tol_c=steady_tol_c),
        "steady_tol_c": steady_tol_c,
        "events": [e.to_dict() for e in events or ()],
        "windows": [w.to_dict() for w in windows],
    }
