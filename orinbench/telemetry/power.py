"""The numbers made from a power trace: the result's ``power`` section and its quality warnings.

A power source (:class:`PowerSource`, defined with :class:`PowerTrace` in :mod:`.powertrace`) is
started right before the measured window and stopped right after it; it samples in a background
thread or process, so the timed loop never waits on it. What it returns is a :class:`PowerTrace`:
timestamped samples (watts per rail and in total) and the sample period really achieved.
:func:`summarize_power` turns a trace into the result's ``power`` section and
:func:`power_warnings` says when that section is too coarse to trust. This module also re-exports
the source types and :func:`open_power_source` so that callers need one import.

How energy is computed (the window edges)
------------------------------------------
The power curve is taken as the straight-line interpolation between consecutive samples, held
constant before the first sample and after the last one. Energy is the exact integral of that curve
over the measured window ``[0, window_s]`` (trapezoidal rule on the samples inside the window plus
the two interpolated edge values). Sources keep one sample taken at (or just before) ``start()`` and
one at (or just after) ``stop()``, so both edges are interpolated between real readings rather than
extrapolated. ``mean_w`` is that energy divided by ``window_s`` (a time-weighted mean, unbiased by
irregular sampling); ``p95_w`` and ``peak_w`` come from the samples inside the window (linear
interpolation between order statistics for P95).

The INA3221 monitors of an Orin refresh only every ~0.43 s (see :mod:`.powertrace`): a window of
fewer than :data:`MIN_WINDOW_CONVERSIONS` refreshes holds too few real values for its energy, P95
and peak to mean much, and is warned about.

Timestamps are ``time.monotonic()`` (CLOCK_MONOTONIC, shared by all processes on Linux), relative to
the moment sampling started, just before ``start()`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import PowerSourceError, UsageError
from ..results.schema import QualityWarning
from .powertrace import (
    INPUT_RAILS,
    PollingPowerSource,
    PowerSample,
    PowerSource,
    PowerTrace,
    achieved_period,
    drop_repeats,
    measure_idle,
    total_from_rails,
)
from .select import open_power_source

__all__ = [
    "INPUT_RAILS",
    "MIN_WINDOW_CONVERSIONS",
    "MIN_WINDOW_SAMPLES",
    "SLOW_PERIOD_FACTOR",
    "PollingPowerSource",
    "PowerSample",
    "PowerSource",
    "PowerTrace",
    "achieved_period",
    "drop_repeats",
    "measure_idle",
    "open_power_source",
    "power_warnings",
    "summarize_power",
    "total_from_rails",
]

#: fewer power samples than this inside the window give a "power-sampling" quality warning
MIN_WINDOW_SAMPLES = 5
#: a window shorter than this many sensor refreshes gives a "power-sampling" quality warning
MIN_WINDOW_CONVERSIONS = 5
#: an achieved period this many times the expected one gives a "power-sampling" warning
SLOW_PERIOD_FACTOR = 2.0


# -- summary -------------------------------------------------------------------------------------
def _series(trace: PowerTrace, rail: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, de-duplicated (time, watts) of the total (rail None) or one rail."""
    pairs = [
        (s.t_s, s.total_w if rail is None else s.rails[rail])
        for s in trace.samples
        if rail is None or rail in s.rails
    ]
    if not pairs:
        return np.empty(0), np.empty(0)
    arr = np.asarray(sorted(pairs, key=lambda p: p[0]), dtype=np.float64)
    t, w = arr[:, 0], arr[:, 1]
    # equal timestamps would make the interpolation ill-defined: keep the last reading of each
    keep = np.append(np.diff(t) > 0, True)
    return t[keep], w[keep]


def _integrate(t: np.ndarray, w: np.ndarray, a: float, b: float) -> float:
    """Integral over [a, b] of the linear interpolation of (t, w), held flat beyond its ends."""
    inner = t[(t > a) & (t < b)]
    grid = np.concatenate(([a], inner, [b]))
    values = np.interp(grid, t, w)
    return float(np.sum((values[1:] + values[:-1]) * 0.5 * np.diff(grid)))


def _stats(t: np.ndarray, w: np.ndarray, window_s: float) -> dict[str, float]:
    energy = _integrate(t, w, 0.0, window_s)
    inside = w[(t >= 0.0) & (t <= window_s)]
    if inside.size == 0:  # window shorter than one period: the interpolated edges are all we have
        inside = np.interp([0.0, window_s], t, w)
    return {
        "mean_w": energy / window_s,
        "p95_w": float(np.percentile(inside, 95)),
        "peak_w": float(np.max(inside)),
        "energy_j": energy,
    }


def _mean_over(trace: PowerTrace) -> float:
    t, w = _series(trace, None)
    if t.size == 0:
        raise PowerSourceError(
            f"no idle power samples from {trace.source}",
            fix="lengthen --idle-seconds or lower --power-period",
        )
    span = trace.duration_s
    if not span > 0:
        # an idle mean over no time is undefined; a plain sample mean would hide a broken idle run
        raise PowerSourceError(
            f"the idle power trace from {trace.source} lasted {span:g} s",
            fix="measure idle for a positive time (--idle-seconds 5)",
        )
    return _integrate(t, w, 0.0, span) / span


def _r(x: float, nd: int = 4) -> float:
    return float(round(x, nd))


def summarize_power(
    trace: PowerTrace,
    *,
    inferences: int,
    window_s: float,
    idle: PowerTrace | None = None,
) -> dict[str, Any]:
    """The result's ``power`` section from the samples over the measured window.

    ``window_s`` is the measured window (the harness' wall time from the start of the first timed
    iteration to the end of the last), ``inferences`` the number of timed iterations. ``idle`` is a
    trace taken before the run with nothing running; with it the section also holds the idle mean
    and the power and energy above idle. See the module docstring for how the edges are handled.
    """
    if not window_s > 0:
        raise UsageError(
            f"power window must be > 0 s, not {window_s}", fix="measure for a positive duration"
        )
    if inferences < 0:
        raise UsageError(f"inference count must be >= 0, not {inferences}")
    t, w = _series(trace, None)
    if t.size == 0:
        raise PowerSourceError(
            f"no power samples from {trace.source} in the measured window",
            why=f"the window lasted {window_s:.3g} s and the source's period is "
            f"{trace.period_s_requested:g} s",
            fix="lengthen the run (--duration) or lower --power-period",
        )
    total = _stats(t, w, window_s)
    rails: dict[str, dict[str, float]] = {}
    names = sorted({name for s in trace.samples for name in s.rails})
    for name in names:
        rt, rw = _series(trace, name)
        st = _stats(rt, rw, window_s)
        rails[name] = {
            "mean_w": _r(st["mean_w"]),
            "p95_w": _r(st["p95_w"]),
            "peak_w": _r(st["peak_w"]),
        }
    energy_j = total["energy_j"]
    energy: dict[str, Any] = {
        "j": _r(energy_j, 6),
        "mj_per_inference": _r(energy_j * 1000.0 / inferences, 6) if inferences else None,
    }
    if trace.energy_counter_j is not None:
        energy["counter_j"] = _r(trace.energy_counter_j, 6)
    out: dict[str, Any] = {
        "source": trace.source,
        "total_of": trace.total_of,
        "period_s": _r(trace.period_s_achieved, 6) if trace.period_s_achieved else None,
        "period_s_requested": trace.period_s_requested,
        "resolution_s": trace.resolution_s,
        "sensor_samples": trace.sensor_samples,
        "repeats_dropped": trace.repeats_dropped,
        "samples": int(np.count_nonzero((t >= 0.0) & (t <= window_s))),
        "window_s": _r(window_s, 6),
        "mean_w": _r(total["mean_w"]),
        "p95_w": _r(total["p95_w"]),
        "peak_w": _r(total["peak_w"]),
        "rails": rails,
        "energy": energy,
    }
    if idle is not None:
        idle_mean = _mean_over(idle)
        above_j = energy_j - idle_mean * window_s
        out["idle_mean_w"] = _r(idle_mean)
        out["idle_s"] = _r(idle.duration_s, 3)
        out["above_idle_mean_w"] = _r(total["mean_w"] - idle_mean)
        energy["above_idle_j"] = _r(above_j, 6)
        energy["above_idle_mj_per_inference"] = (
            _r(above_j * 1000.0 / inferences, 6) if inferences else None
        )
    if trace.notes:
        out["notes"] = list(trace.notes)
    out["trace"] = {
        "t_s": [_r(s.t_s, 5) for s in trace.samples],
        "total_w": [_r(s.total_w) for s in trace.samples],
        "rails": {
            n: [_r(s.rails[n]) if n in s.rails else None for s in trace.samples] for n in names
        },
    }
    return out


def power_warnings(summary: Mapping[str, Any]) -> list[QualityWarning]:
    """Quality warnings about the power measurement itself (code ``power-sampling``).

    Three findings: fewer than :data:`MIN_WINDOW_SAMPLES` distinct readings inside the window; a
    window shorter than :data:`MIN_WINDOW_CONVERSIONS` sensor refreshes (``resolution_s``); an
    achieved period more than :data:`SLOW_PERIOD_FACTOR` times the expected one, which is the
    slower of the requested period and the sensor's resolution (an INA3221 polled every 0.05 s
    still yields a new value only every ~0.43 s, which is not a fault).
    """
    out: list[QualityWarning] = []
    source = summary.get("source")
    n = int(summary.get("samples") or 0)
    window = float(summary.get("window_s") or 0.0)
    if n < MIN_WINDOW_SAMPLES:
        out.append(
            QualityWarning(
                "power-sampling",
                f"only {n} distinct power readings from {source} in the {window:.3g} s "
                "window: mean power and energy per inference are rough; measure longer or sample "
                "faster",
            )
        )
    res = summary.get("resolution_s")
    if res and window < MIN_WINDOW_CONVERSIONS * res:
        out.append(
            QualityWarning(
                "power-sampling",
                f"the {window:.3g} s window is shorter than {MIN_WINDOW_CONVERSIONS} refreshes of "
                f"the power sensor (one every {res:.3g} s): energy is smeared across the window's "
                f"edges and P95/peak are flattened; measure at least "
                f"{MIN_WINDOW_CONVERSIONS * res:.3g} s",
            )
        )
    achieved = summary.get("period_s")
    requested = summary.get("period_s_requested")
    if achieved and requested:
        expected = max(float(requested), float(res or 0.0))
        if achieved > SLOW_PERIOD_FACTOR * expected:
            out.append(
                QualityWarning(
                    "power-sampling",
                    f"{source} sampled every {achieved:.3g} s although {expected:.3g} s was "
                    "expected (another client may have set the jtop interval, or the sensor is "
                    "slow)",
                )
            )
    return out
