"""Power sampling beside the measured window, and the numbers made from it.

A power source (:class:`PowerSource`) is started right before the measured window and stopped right
after it; it samples in a background thread or process, so the timed loop never waits on it. What it
returns is a :class:`PowerTrace`: timestamped samples (watts per rail and in total) and the sample
period really achieved. :func:`summarize_power` turns a trace into the result's ``power`` section.

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

Timestamps are ``time.monotonic()`` (CLOCK_MONOTONIC, shared by all processes on Linux), relative to
the moment sampling started, just before ``start()`` returns.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from ..errors import PowerSourceError, UsageError
from ..results.schema import QualityWarning
from ._sampler import PeriodicSampler, SamplerStopped

#: rails that measure the whole module input; when present they are the total, not a summand
INPUT_RAILS: tuple[str, ...] = ("VDD_IN", "POM_5V_IN")
#: fewer power samples than this inside the window give a "power-sampling" quality warning
MIN_WINDOW_SAMPLES = 5
#: an achieved period this many times the requested one gives a "power-sampling" warning
SLOW_PERIOD_FACTOR = 2.0


@dataclass(frozen=True)
class PowerSample:
    """One reading: seconds since ``start()``, total watts, and watts per rail."""

    t_s: float
    total_w: float
    rails: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PowerTrace:
    """The samples of one start()/stop() window.

    ``samples`` may hold one sample just before 0 and one just after ``duration_s`` (the edges).
    ``period_s_achieved`` is the median interval between samples (None with fewer than two).
    ``total_of`` says what ``total_w`` measures (e.g. the VDD_IN rail, or a sum of rails).
    ``energy_counter_j`` is the energy the hardware counter reported between start() and stop(),
    where the source has one (NVML), else None.
    """

    source: str
    samples: tuple[PowerSample, ...]
    period_s_requested: float
    period_s_achieved: float | None
    duration_s: float = 0.0
    total_of: str = ""
    notes: tuple[str, ...] = ()
    energy_counter_j: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "period_s_requested": self.period_s_requested,
            "period_s_achieved": self.period_s_achieved,
            "duration_s": self.duration_s,
            "total_of": self.total_of,
            "notes": list(self.notes),
            "energy_counter_j": self.energy_counter_j,
            "samples": [
                {"t_s": s.t_s, "total_w": s.total_w, "rails": dict(s.rails)} for s in self.samples
            ],
        }


def achieved_period(times: Sequence[float]) -> float | None:
    """Median interval between consecutive sample times, or None with fewer than two samples."""
    if len(times) < 2:
        return None
    diffs = np.diff(np.sort(np.asarray(times, dtype=np.float64)))
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else None


def total_from_rails(rails: Mapping[str, float]) -> tuple[float, str]:
    """The total power of a set of rails and a phrase saying what it is.

    On Orin NX and Orin Nano the ``VDD_IN`` rail measures the module input, so it *is* the total
    (the other rails are parts of it). On AGX Orin no rail measures the input, so the total is the
    sum of the rails. Neither includes the carrier board.
    """
    for name in INPUT_RAILS:
        if name in rails:
            return float(rails[name]), f"{name} rail (module input; carrier board not included)"
    names = "+".join(sorted(rails))
    return float(sum(rails.values())), f"sum of rails {names} (module; carrier board not included)"


class PowerSource(abc.ABC):
    """Samples power between :meth:`start` and :meth:`stop` without blocking the caller.

    A source can be started and stopped several times (idle measurement, then the run). Use it as a
    context manager or call :meth:`close` to release what it holds (processes, NVML).
    """

    name: ClassVar[str] = "power"

    def __init__(self, *, period_s: float) -> None:
        if not period_s > 0:
            raise UsageError(
                f"power sample period must be > 0 seconds, not {period_s}",
                fix="pass e.g. --power-period 0.05",
            )
        self.period_s = float(period_s)

    @abc.abstractmethod
    def start(self) -> None:
        """Begin sampling; returns once sampling runs (the window starts when this returns)."""

    @abc.abstractmethod
    def stop(self) -> PowerTrace:
        """End sampling and return the trace; raises PowerSourceError if sampling broke off."""

    def describe(self) -> str:
        """One line about what this source reads, for the 'power: ...' note."""
        return f"every {self.period_s:g} s"

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release anything held between windows."""

    def __enter__(self) -> PowerSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PollingPowerSource(PowerSource):
    """A source read by a background thread every ``period_s`` (sysfs files, NVML calls).

    It reads once synchronously in :meth:`start` (so that a broken source fails before the window,
    and so that there is a sample at t = 0) and once in :meth:`stop` (a sample at the end); see
    :class:`~orinbench.telemetry._sampler.PeriodicSampler` for the schedule.
    """

    #: what the total measures; set by subclasses
    total_of: str = ""

    def __init__(self, *, period_s: float) -> None:
        super().__init__(period_s=period_s)
        self._sampler: PeriodicSampler[tuple[float, dict[str, float]]] | None = None
        self._counter0: float | None = None

    # -- hooks ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def read(self) -> tuple[float, dict[str, float]]:
        """One reading: (total watts, watts per rail). Raise OSError/PowerSourceError on failure."""

    def _open(self) -> None:
        """Acquire what reading needs (called by start)."""

    def _release(self) -> None:
        """Release what _open acquired (called by stop, also after a failure)."""

    def _energy_counter_j(self) -> float | None:
        """A hardware energy counter in joules, where the source has one."""
        return None

    def _notes(self) -> tuple[str, ...]:
        return ()

    def _failed(self, what: str, exc: BaseException) -> PowerSourceError:
        if isinstance(exc, PowerSourceError):
            return exc
        return PowerSourceError(
            what,
            why=str(exc) or type(exc).__name__,
            fix="check the sensor, or choose another --power source",
        )

    # -- sampling ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._sampler is not None:
            raise PowerSourceError(
                f"{self.name} power source is already started",
                fix="call stop() before starting it again",
            )
        self._open()
        sampler = PeriodicSampler(self.read, period_s=self.period_s, name=f"power-{self.name}")
        try:
            self._counter0 = self._energy_counter_j()
            sampler.start()
        except Exception as exc:
            self._release()
            raise self._failed(
                f"{self.name} power source failed on its first reading", exc
            ) from exc
        self._sampler = sampler

    def stop(self) -> PowerTrace:
        sampler, self._sampler = self._sampler, None
        if sampler is None:
            raise PowerSourceError(
                f"{self.name} power source was not started", fix="call start() first"
            )
        try:
            readings = sampler.stop()
            counter1 = self._energy_counter_j()
        except SamplerStopped as exc:
            raise self._failed(
                f"{self.name} power sampling stopped {exc.at_s:.2f} s into the window", exc.cause
            ) from exc.cause
        except Exception as exc:
            raise self._failed(f"{self.name} power source failed on its last reading", exc) from exc
        finally:
            self._release()
        t0 = sampler.t0
        samples = tuple(
            PowerSample(t_s=t - t0, total_w=total, rails=rails) for t, (total, rails) in readings
        )
        energy = None
        if self._counter0 is not None and counter1 is not None:
            energy = counter1 - self._counter0
        return PowerTrace(
            source=self.name,
            samples=samples,
            period_s_requested=self.period_s,
            period_s_achieved=achieved_period([s.t_s for s in samples]),
            duration_s=sampler.t_stop - t0,
            total_of=self.total_of,
            notes=self._notes(),
            energy_counter_j=energy,
        )


def measure_idle(source: PowerSource, seconds: float) -> PowerTrace:
    """Sample ``source`` for ``seconds`` while nothing runs (idle power, before the run)."""
    if not seconds > 0:
        raise UsageError(
            f"idle seconds must be > 0, not {seconds}", fix="pass e.g. --idle-seconds 5"
        )
    source.start()
    try:
        time.sleep(seconds)
    except BaseException:
        source.stop()
        raise
    return source.stop()


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
    if span <= 0:
        return float(np.mean(w))
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
    """Quality warnings about the power measurement itself (code ``power-sampling``)."""
    out: list[QualityWarning] = []
    n = int(summary.get("samples") or 0)
    window = float(summary.get("window_s") or 0.0)
    if n < MIN_WINDOW_SAMPLES:
        out.append(
            QualityWarning(
                "power-sampling",
                f"only {n} power samples from {summary.get('source')} in the {window:.3g} s "
                "window: mean power and energy per inference are rough; measure longer or sample "
                "faster",
            )
        )
    achieved = summary.get("period_s")
    requested = summary.get("period_s_requested")
    if achieved and requested and achieved > SLOW_PERIOD_FACTOR * requested:
        out.append(
            QualityWarning(
                "power-sampling",
                f"{summary.get('source')} sampled every {achieved:.3g} s although {requested:g} s "
                "was requested (another client may have set the jtop interval, or the sensor is "
                "slow)",
            )
        )
    return out


def open_power_source(
    name: str = "auto",
    *,
    period_s: float | None = None,
    root: str = "/",
    jtop_socket: str | None = None,
    tegrastats_bin: str | None = None,
    nvml_index: int = 0,
) -> tuple[PowerSource | None, str]:
    """Open the power source ``name`` (see :func:`orinbench.telemetry.select.open_power_source`)."""
    from .select import open_power_source as _open

    return _open(
        name,
        period_s=period_s,
        root=root,
        jtop_socket=jtop_socket,
        tegrastats_bin=tegrastats_bin,
        nvml_index=nvml_index,
    )
