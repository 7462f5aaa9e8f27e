"""What every power source shares: samples, traces, the source interface, the total of the rails.

This is the lowest layer of orinbench's power code. The sources (``sources/*``), the source
selection (``select``) and the summaries (``power``) all import it, and it imports none of them,
so the telemetry package has no import cycle (tests/test_architecture.py checks that).

Sensor resolution
-----------------
On Orin every power figure (sysfs, tegrastats, jtop) comes from the INA3221 monitors. NVIDIA's L4T
``nvpower.sh`` sets them to average ``samples`` = 512 conversions and to refresh every
``update_interval`` = 430 ms, so a new value appears only about every 0.43 s, whatever period
orinbench polls at. Readings of the same conversion are repeats, not new information: they are
dropped (:func:`drop_repeats`) so that sample counts and achieved periods count real conversions,
and the trace records the sensor's interval (``sensor_update_s``) and the resulting time
resolution (``resolution_s``). This rests on the nvpower.sh script and the ina3221 driver's
attribute names; it was checked on fake sysfs trees only, never on a real Orin.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..errors import PowerSourceError, UsageError
from ._sampler import PeriodicSampler, SamplerStopped

#: rails that measure the whole module input; when present they are the total, not a summand
INPUT_RAILS: tuple[str, ...] = ("VDD_IN", "POM_5V_IN")


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
    ``period_s_achieved`` is the median interval between the kept samples (None with fewer than
    two); repeated readings of one sensor conversion are not kept (``repeats_dropped`` counts
    them). ``total_of`` says what ``total_w`` measures (e.g. the VDD_IN rail, or a sum of rails).
    ``energy_counter_j`` is the energy the hardware counter reported between start() and stop(),
    where the source has one (NVML), else None. ``sensor_update_s`` and ``sensor_samples`` are the
    INA3221's refresh interval and averaging count where they could be read, else None;
    ``resolution_s`` is the finest time step the readings can resolve (the slower of the source's
    period and the sensor's refresh), None where the sensor's refresh is unknown.
    """

    source: str
    samples: tuple[PowerSample, ...]
    period_s_requested: float
    period_s_achieved: float | None
    duration_s: float = 0.0
    total_of: str = ""
    notes: tuple[str, ...] = ()
    energy_counter_j: float | None = None
    sensor_update_s: float | None = None
    sensor_samples: int | None = None
    resolution_s: float | None = None
    repeats_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "period_s_requested": self.period_s_requested,
            "period_s_achieved": self.period_s_achieved,
            "duration_s": self.duration_s,
            "total_of": self.total_of,
            "notes": list(self.notes),
            "energy_counter_j": self.energy_counter_j,
            "sensor_update_s": self.sensor_update_s,
            "sensor_samples": self.sensor_samples,
            "resolution_s": self.resolution_s,
            "repeats_dropped": self.repeats_dropped,
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


def resolution(period_s: float, sensor_update_s: float | None) -> float | None:
    """The finest time step of a source polled every ``period_s`` on a sensor refreshing every
    ``sensor_update_s`` (None when the sensor's refresh is unknown)."""
    if sensor_update_s is None:
        return None
    return max(float(period_s), float(sensor_update_s))


R = TypeVar("R")


def drop_repeats(
    readings: Sequence[tuple[float, R]], sensor_update_s: float | None
) -> tuple[list[tuple[float, R]], int]:
    """The readings without repeats of one sensor conversion, and how many were dropped.

    A reading equal to the last kept one and less than ``sensor_update_s`` after it cannot be a
    new conversion: it is dropped. Equal readings further apart are kept (the sensor did convert
    again, to the same value), so a steady value stays a flat line rather than becoming a long
    ramp to the next change. With ``sensor_update_s`` None nothing is dropped: without the
    sensor's interval a repeat cannot be told from a steady value.
    """
    if sensor_update_s is None or not readings:
        return list(readings), 0
    kept = [readings[0]]
    for t, value in readings[1:]:
        last_t, last_value = kept[-1]
        if value == last_value and t - last_t < sensor_update_s:
            continue
        kept.append((t, value))
    return kept, len(readings) - len(kept)


def sensor_notes(
    sensor_update_s: float | None, sensor_samples: int | None, repeats_dropped: int
) -> tuple[str, ...]:
    """The trace notes that say what the sensor's resolution was and what was dropped."""
    if sensor_update_s is None:
        return ("INA3221 update_interval unreadable: repeated readings kept, resolution unknown",)
    avg = f", {sensor_samples} samples averaged per value" if sensor_samples else ""
    return (
        f"INA3221 refreshes every {sensor_update_s:g} s{avg} (hwmon update_interval/samples); "
        f"{repeats_dropped} repeated readings of one conversion dropped",
    )


def total_from_rails(rails: Mapping[str, float]) -> tuple[float, str]:
    """The total power of a set of INA3221 rails and a phrase saying what it is.

    On Orin NX and Orin Nano the ``VDD_IN`` rail measures the module input, so it *is* the total
    (the other rails are parts of it). On AGX Orin no rail measures the module input, so the total
    is the sum of the rails. The INA3221 monitors sit on the module: neither figure includes the
    carrier board or its USB-C / DC input. Every source (sysfs, tegrastats, jtop) computes its
    total here, from INA3221 rails only, so the three agree.
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
    :class:`~orinbench.telemetry._sampler.PeriodicSampler` for the schedule. A subclass that knows
    its sensor's refresh interval (:attr:`sensor_update_s`) has repeated readings dropped.
    """

    #: what the total measures; set by subclasses
    total_of: str = ""
    #: the sensor's own refresh interval (s) and averaging count, where known
    sensor_update_s: float | None = None
    sensor_samples: int | None = None

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
        kept, dropped = drop_repeats(readings, self.sensor_update_s)
        samples = tuple(
            PowerSample(t_s=t - t0, total_w=total, rails=rails) for t, (total, rails) in kept
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
            sensor_update_s=self.sensor_update_s,
            sensor_samples=self.sensor_samples,
            resolution_s=resolution(self.period_s, self.sensor_update_s),
            repeats_dropped=dropped,
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
