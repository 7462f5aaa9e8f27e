"""Stable conditions: GPU clock and temperatures sampled during the run, and ``system check``.

:class:`ConditionsMonitor` has the shape of a power source (``start()`` before the window,
``stop()`` after it, sampling in a background thread). On a Jetson it reads sysfs: the GPU devfreq
clock and its cap, the EMC clock (debugfs, root only), the thermal zones, the over-current event
counters (``oc*_event_cnt``) and the thermal cooling devices. Elsewhere it reads NVML: clocks,
temperature and the clock-event (throttle) reasons. :func:`conditions_warnings` turns a trace into
quality warnings:

* ``clock-change`` — the GPU (or EMC) clock moved by more than ``CLOCK_REL_TOL`` during the run;
  latencies from a moving clock are not comparable (lock them with ``sudo jetson_clocks``).
* ``throttling`` — an over-current event, an active thermal cooling device, a lowered GPU clock
  cap, a temperature at or above a passive trip point, or an NVML throttle reason.

:func:`system_check` says whether the device is ready to benchmark: a Jetson, clocks locked by
jetson_clocks, a known power mode (the expected one, when given), and not throttling now.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotReadyError
from ..results.schema import QualityWarning
from ._fs import list_dir, read_int, read_text, under
from ._sampler import PeriodicSampler, SamplerStopped
from .device import (
    device_fingerprint,
    emc_clock_dir,
    find_gpu_devfreq,
    is_jetson,
    is_real_root,
    nvpmodel_modes,
)

#: a clock that moves by more than this fraction of its highest value is a "clock-change"
CLOCK_REL_TOL = 0.01
#: conditions are sampled this often by default (seconds)
DEFAULT_PERIOD_S = 0.5
#: thermal trip types at which the kernel starts throttling
_THROTTLE_TRIPS = ("passive", "hot")
_OFFLINE_C = -100.0
#: NVML clock-event reasons that mean the clock was held down (names as printed)
_NVML_THROTTLE_BITS: dict[str, int] = {
    "sw-power-cap": 0x04,
    "hw-slowdown": 0x08,
    "sw-thermal-slowdown": 0x20,
    "hw-thermal-slowdown": 0x40,
    "hw-power-brake": 0x80,
}


@dataclass(frozen=True)
class ConditionsSample:
    """One reading of the device's conditions; fields that could not be read are None/empty."""

    t_s: float
    gpu_freq_mhz: float | None = None
    gpu_max_freq_mhz: float | None = None
    emc_freq_mhz: float | None = None
    temperatures_c: Mapping[str, float] = field(default_factory=dict)
    oc_events: int | None = None
    cooling: Mapping[str, int] = field(default_factory=dict)
    throttle_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConditionsTrace:
    """Samples of one start()/stop() window. ``trip_points_c``: zone -> lowest throttling trip."""

    source: str
    samples: tuple[ConditionsSample, ...]
    period_s: float
    duration_s: float = 0.0
    trip_points_c: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON form (series per field) for ``Result.extra['conditions']``."""
        temps = sorted({k for s in self.samples for k in s.temperatures_c})
        return {
            "source": self.source,
            "period_s": self.period_s,
            "duration_s": round(self.duration_s, 4),
            "trip_points_c": dict(self.trip_points_c),
            "t_s": [round(s.t_s, 4) for s in self.samples],
            "gpu_freq_mhz": [s.gpu_freq_mhz for s in self.samples],
            "gpu_max_freq_mhz": [s.gpu_max_freq_mhz for s in self.samples],
            "emc_freq_mhz": [s.emc_freq_mhz for s in self.samples],
            "temperatures_c": {k: [s.temperatures_c.get(k) for s in self.samples] for k in temps},
            "oc_events": [s.oc_events for s in self.samples],
            "throttle_reasons": sorted({r for s in self.samples for r in s.throttle_reasons}),
        }


# -- readers -----------------------------------------------------------------------------------
class _SysfsReader:
    """Reads one ConditionsSample from a Jetson's sysfs; paths are found once, at construction."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.gpu = find_gpu_devfreq(root)
        self.emc = emc_clock_dir(root)
        thermal = under(root, "/sys/class/thermal")
        self.zones: list[tuple[str, Path]] = []
        self.trips: dict[str, float] = {}
        self.cooling: list[tuple[str, Path]] = []
        for item in list_dir(thermal):
            path = thermal / item
            if item.startswith("thermal_zone"):
                name = read_text(path / "type")
                if not name:
                    continue
                key = name.removesuffix("-thermal").removesuffix("_thermal")
                self.zones.append((key, path / "temp"))
                trip = self._lowest_trip(path)
                if trip is not None:
                    self.trips[key] = trip
            elif item.startswith("cooling_device"):
                ctype = read_text(path / "type") or item
                if "fan" not in ctype.lower():  # a spinning fan cools; it does not throttle
                    self.cooling.append(
                        (f"{ctype}#{item.removeprefix('cooling_device')}", path / "cur_state")
                    )
        hwmon = under(root, "/sys/class/hwmon")
        self.oc_files = [
            hwmon / d / f
            for d in list_dir(hwmon)
            for f in list_dir(hwmon / d)
            if re.fullmatch(r"oc\d+_event_cnt", f)
        ]

    @staticmethod
    def _lowest_trip(zone: Path) -> float | None:
        found: list[float] = []
        for item in list_dir(zone):
            m = re.fullmatch(r"trip_point_(\d+)_type", item)
            if not m or (read_text(zone / item) or "") not in _THROTTLE_TRIPS:
                continue
            milli = read_int(zone / f"trip_point_{m.group(1)}_temp")
            if milli is not None and milli > 0:
                found.append(milli / 1000.0)
        return min(found) if found else None

    def __call__(self) -> ConditionsSample:
        def mhz(path: Path) -> float | None:
            hz = read_int(path)
            return round(hz / 1e6, 3) if hz is not None else None

        temps: dict[str, float] = {}
        for key, path in self.zones:
            milli = read_int(path)
            if milli is not None and milli / 1000.0 > _OFFLINE_C:
                temps[key] = round(milli / 1000.0, 3)
        oc = None
        if self.oc_files:
            counts = [read_int(p) for p in self.oc_files]
            oc = sum(c for c in counts if c is not None)
        cooling = {name: v for name, p in self.cooling if (v := read_int(p)) is not None}
        emc = None
        if self.emc is not None:
            emc = mhz(self.emc / "rate")
        return ConditionsSample(
            t_s=0.0,
            gpu_freq_mhz=mhz(self.gpu / "cur_freq") if self.gpu else None,
            gpu_max_freq_mhz=mhz(self.gpu / "max_freq") if self.gpu else None,
            emc_freq_mhz=emc,
            temperatures_c=temps,
            oc_events=oc,
            cooling=cooling,
        )


class _NvmlReader:
    """Reads one ConditionsSample through NVML (discrete GPU)."""

    def __init__(self, index: int = 0) -> None:
        from .. import _lazy

        self.nv = _lazy.pynvml()
        self.index = index
        self.handle: Any = None

    def open(self) -> None:
        self.nv.nvmlInit()
        self.handle = self.nv.nvmlDeviceGetHandleByIndex(self.index)

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except self.nv.NVMLError:
            pass

    def _get(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(self.handle, *args)
        except self.nv.NVMLError:
            return None

    def __call__(self) -> ConditionsSample:
        nv = self.nv
        clock = self._get(nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_GRAPHICS)
        mem = self._get(nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_MEM)
        temp = self._get(nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU)
        # renamed in NVML 12.2 ("throttle" -> "clocks event"); older bindings have the old name
        fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if fn is None:
            fn = nv.nvmlDeviceGetCurrentClocksThrottleReasons
        bits = self._get(fn) or 0
        reasons = tuple(n for n, b in _NVML_THROTTLE_BITS.items() if int(bits) & b)
        return ConditionsSample(
            t_s=0.0,
            gpu_freq_mhz=float(clock) if clock is not None else None,
            emc_freq_mhz=float(mem) if mem is not None else None,
            temperatures_c={"gpu": float(temp)} if temp is not None else {},
            throttle_reasons=reasons,
        )


def _nvml_usable() -> bool:
    from .. import _lazy

    if not _lazy.is_available("pynvml"):
        return False
    nv = _lazy.pynvml()
    try:
        nv.nvmlInit()
    except Exception:
        return False
    try:
        return int(nv.nvmlDeviceGetCount()) > 0
    except nv.NVMLError:
        return False
    finally:
        try:
            nv.nvmlShutdown()
        except nv.NVMLError:
            pass


class ConditionsMonitor:
    """Samples GPU clock, temperatures and throttling signs between :meth:`start` and :meth:`stop`.

    ``backend``: ``"auto"`` (sysfs on a Jetson, NVML where it works, else nothing), ``"sysfs"``,
    ``"nvml"`` or ``"none"``. With nothing to read, :meth:`stop` returns an empty trace.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] = "/",
        period_s: float = DEFAULT_PERIOD_S,
        backend: str = "auto",
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, not {period_s}")
        self.root = str(root)
        self.period_s = float(period_s)
        if backend == "auto":
            if is_jetson(root):
                backend = "sysfs"
            elif is_real_root(root) and _nvml_usable():
                backend = "nvml"
            else:
                backend = "none"
        if backend not in ("sysfs", "nvml", "none"):
            raise ValueError(f"unknown conditions backend {backend!r}")
        self.backend = backend
        self._sysfs = _SysfsReader(root) if backend == "sysfs" else None
        self._nvml = _NvmlReader() if backend == "nvml" else None
        self._sampler: PeriodicSampler[ConditionsSample] | None = None

    @property
    def available(self) -> bool:
        return self.backend != "none"

    def start(self) -> None:
        """Begin sampling (one reading now, then every ``period_s``)."""
        if self.backend == "none":
            return
        if self._nvml is not None:
            self._nvml.open()
        read = self._sysfs if self._sysfs is not None else self._nvml
        assert read is not None
        self._sampler = PeriodicSampler(read, period_s=self.period_s, name="conditions")
        self._sampler.start()

    def stop(self) -> ConditionsTrace:
        """End sampling; a failed reader ends the trace early instead of failing the run."""
        sampler, self._sampler = self._sampler, None
        trips = dict(self._sysfs.trips) if self._sysfs is not None else {}
        if sampler is None:
            return ConditionsTrace(self.backend, (), self.period_s, 0.0, trips)
        try:
            readings = sampler.stop()
        except SamplerStopped:
            # conditions are advisory: keep what was read before the reader broke
            readings = sampler.readings()
        finally:
            if self._nvml is not None:
                self._nvml.close()
        t0 = sampler.t0
        samples = tuple(
            ConditionsSample(
                t_s=t - t0,
                gpu_freq_mhz=s.gpu_freq_mhz,
                gpu_max_freq_mhz=s.gpu_max_freq_mhz,
                emc_freq_mhz=s.emc_freq_mhz,
                temperatures_c=s.temperatures_c,
                oc_events=s.oc_events,
                cooling=s.cooling,
                throttle_reasons=s.throttle_reasons,
            )
            for t, s in readings
        )
        return ConditionsTrace(self.backend, samples, self.period_s, sampler.t_stop - t0, trips)


# -- warnings ----------------------------------------------------------------------------------
def _clock_change(name: str, values: list[float], tol: float) -> str | None:
    if len(values) < 2:
        return None
    lo, hi = min(values), max(values)
    if hi <= 0 or (hi - lo) <= tol * hi:
        return None
    distinct = len(set(values))
    return f"{name} clock moved between {lo:g} and {hi:g} MHz ({distinct} distinct values)"


def conditions_warnings(
    trace: ConditionsTrace, *, clock_rel_tol: float = CLOCK_REL_TOL
) -> list[QualityWarning]:
    """``clock-change`` and ``throttling`` warnings for the run that ``trace`` covered."""
    s = trace.samples
    out: list[QualityWarning] = []
    changes = [
        msg
        for msg in (
            _clock_change(
                "GPU", [x.gpu_freq_mhz for x in s if x.gpu_freq_mhz is not None], clock_rel_tol
            ),
            _clock_change(
                "EMC", [x.emc_freq_mhz for x in s if x.emc_freq_mhz is not None], clock_rel_tol
            ),
        )
        if msg
    ]
    if changes:
        out.append(
            QualityWarning(
                "clock-change",
                "; ".join(changes) + " during the run: latencies are not comparable "
                "(lock the clocks with 'sudo jetson_clocks')",
            )
        )

    signs: list[str] = []
    oc = [x.oc_events for x in s if x.oc_events is not None]
    if len(oc) >= 2 and oc[-1] > oc[0]:
        signs.append(f"{oc[-1] - oc[0]} over-current throttling event(s)")
    caps = [x.gpu_max_freq_mhz for x in s if x.gpu_max_freq_mhz is not None]
    if caps and min(caps) < caps[0]:
        signs.append(f"GPU clock cap lowered from {caps[0]:g} to {min(caps):g} MHz")
    active = sorted({name for x in s for name, state in x.cooling.items() if state > 0})
    if active:
        signs.append(f"thermal cooling device(s) active: {', '.join(active)}")
    hot: dict[str, float] = {}
    for x in s:
        for zone, temp in x.temperatures_c.items():
            trip = trace.trip_points_c.get(zone)
            if trip is not None and temp >= trip:
                hot[zone] = max(hot.get(zone, temp), temp)
    for zone, temp in sorted(hot.items()):
        trip = trace.trip_points_c[zone]
        signs.append(f"{zone} reached {temp:g} °C (throttling trip {trip:g} °C)")
    reasons = sorted({r for x in s for r in x.throttle_reasons})
    if reasons:
        signs.append(f"GPU clock held down by {', '.join(reasons)}")
    if signs:
        out.append(
            QualityWarning(
                "throttling",
                "throttling during the run: "
                + "; ".join(signs)
                + " (improve cooling, or measure at a lower power mode)",
            )
        )
    return out


# -- system check ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SystemCheck:
    """Whether the device is ready to benchmark, with the state read and the reasons if not."""

    ready: bool
    reasons: tuple[str, ...]
    fixes: tuple[str, ...]
    is_jetson: bool
    module: str | None
    module_name: str | None
    l4t: str | None
    jetpack: str | None
    power_mode: str | None
    power_mode_id: int | None
    expected_power_mode: str | None
    jetson_clocks: bool | None
    clocks: Mapping[str, bool | None]
    gpu_freq_mhz: float | None
    gpu_min_freq_mhz: float | None
    gpu_max_freq_mhz: float | None
    emc_freq_mhz: float | None
    temperatures_c: Mapping[str, float]
    throttling: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "reasons": list(self.reasons),
            "fixes": list(self.fixes),
            "is_jetson": self.is_jetson,
            "module": self.module,
            "module_name": self.module_name,
            "l4t": self.l4t,
            "jetpack": self.jetpack,
            "power_mode": self.power_mode,
            "power_mode_id": self.power_mode_id,
            "expected_power_mode": self.expected_power_mode,
            "jetson_clocks": self.jetson_clocks,
            "clocks": dict(self.clocks),
            "gpu_freq_mhz": self.gpu_freq_mhz,
            "gpu_min_freq_mhz": self.gpu_min_freq_mhz,
            "gpu_max_freq_mhz": self.gpu_max_freq_mhz,
            "emc_freq_mhz": self.emc_freq_mhz,
            "temperatures_c": dict(self.temperatures_c),
            "throttling": list(self.throttling),
        }


def _mode_matches(expected: str, name: str | None, mode_id: int | None) -> bool:
    e = expected.strip()
    if e.isdigit():
        return mode_id is not None and int(e) == mode_id
    return name is not None and name.lower() == e.lower()


def system_check(
    root: str | os.PathLike[str] = "/", *, expect_power_mode: str | None = None
) -> SystemCheck:
    """Read the device's state and say whether it is ready to benchmark.

    Ready means: a Jetson; clocks locked as jetson_clocks leaves them (GPU and CPU min = max, EMC
    pinned where debugfs is readable); the power mode known and, with ``expect_power_mode`` (a name
    such as "MAXN" or a mode id), equal to it; no temperature at a throttling trip point.
    """
    fp = device_fingerprint(root)
    reasons: list[str] = []
    fixes: list[str] = []
    throttling: list[str] = []
    if not fp["is_jetson"]:
        reasons.append("not a Jetson: clock locking and the power mode cannot be checked")
        fixes.append("run 'orinbench system check' on the Jetson that will be benchmarked")
    else:
        clocks = fp["clocks"]
        if fp["jetson_clocks"] is None:
            reasons.append("cannot read the GPU clock settings (no GPU devfreq in sysfs)")
        elif not fp["jetson_clocks"]:
            unlocked = [k.removesuffix("_locked").upper() for k, v in clocks.items() if v is False]
            detail = ""
            if clocks.get("gpu_locked") is False:
                detail = (
                    f" (GPU min {fp['gpu_min_freq_mhz']:g} MHz < max "
                    f"{fp['gpu_max_freq_mhz']:g} MHz)"
                )
            reasons.append(f"clocks not locked: {', '.join(unlocked)}{detail}")
            fixes.append("sudo jetson_clocks")
        if fp["power_mode"] is None and fp["power_mode_id"] is None:
            reasons.append("power mode unknown (nvpmodel not found, no /var/lib/nvpmodel/status)")
            fixes.append("install nvpmodel (Jetson Linux) and set a mode: sudo nvpmodel -m ID")
        elif expect_power_mode and not _mode_matches(
            expect_power_mode, fp["power_mode"], fp["power_mode_id"]
        ):
            reasons.append(
                f"power mode is {fp['power_mode']} (id {fp['power_mode_id']}), expected "
                f"{expect_power_mode}"
            )
            ids = [
                i for i, n in nvpmodel_modes(root).items() if _mode_matches(expect_power_mode, n, i)
            ]
            fixes.append(
                f"sudo nvpmodel -m {ids[0]}"
                if ids
                else f"set the power mode {expect_power_mode} with sudo nvpmodel -m ID"
            )
        trips = _SysfsReader(root).trips
        for zone, temp in sorted(fp["temperatures_c"].items()):
            trip = trips.get(zone)
            if trip is not None and temp >= trip:
                throttling.append(f"{zone} {temp:g} °C at/above its throttling trip {trip:g} °C")
        if throttling:
            reasons.append("throttling now: " + "; ".join(throttling))
            fixes.append("let the device cool down and check its fan")
    return SystemCheck(
        ready=not reasons,
        reasons=tuple(reasons),
        fixes=tuple(fixes),
        is_jetson=bool(fp["is_jetson"]),
        module=fp["module"],
        module_name=fp["module_name"],
        l4t=fp["l4t"],
        jetpack=fp["jetpack"],
        power_mode=fp["power_mode"],
        power_mode_id=fp["power_mode_id"],
        expected_power_mode=expect_power_mode,
        jetson_clocks=fp["jetson_clocks"],
        clocks=dict(fp["clocks"]),
        gpu_freq_mhz=fp["gpu_freq_mhz"],
        gpu_min_freq_mhz=fp["gpu_min_freq_mhz"],
        gpu_max_freq_mhz=fp["gpu_max_freq_mhz"],
        emc_freq_mhz=fp["emc_freq_mhz"],
        temperatures_c=dict(fp["temperatures_c"]),
        throttling=tuple(throttling),
    )


def require_tuned(
    root: str | os.PathLike[str] = "/", *, expect_power_mode: str | None = None
) -> SystemCheck:
    """:func:`system_check`, raising :class:`NotReadyError` (exit 4) when not ready."""
    check = system_check(root, expect_power_mode=expect_power_mode)
    if not check.ready:
        raise NotReadyError(
            "the device is not tuned for benchmarking",
            why="; ".join(check.reasons),
            fix="; ".join(check.fixes) or "see 'orinbench system check'",
        )
    return check
