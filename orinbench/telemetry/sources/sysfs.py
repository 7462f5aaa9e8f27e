"""Power from the INA3221 monitors' hwmon files, read directly (no service, fast sampling).

On JetPack 5 and later each INA3221 appears as a hwmon device with, per channel ``N`` in 1..3,
``inN_label`` (the rail name), ``inN_input`` (bus voltage, mV) and ``currN_input`` (current, mA).
Rails of AGX Orin: VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0 (first monitor) and VDDQ_VDD2_1V8AO (second;
its other channels are labelled NC, not connected). Rails of Orin NX and Orin Nano: VDD_IN,
VDD_CPU_GPU_CV, VDD_SOC. Channel 7 is the driver's "sum of shunt voltages", not a rail.

The monitors are found under ``/sys/bus/i2c/devices/*/hwmon/hwmon*`` (the i2c client's ``name``
is ``ina3221``) and under ``/sys/class/hwmon/hwmon*`` (the hwmon ``name`` is ``ina3221``); the two
views of one device are merged by their real path.

Each monitor's hwmon folder also has ``update_interval`` (ms between refreshes of the values) and
``samples`` (conversions averaged per value). NVIDIA's L4T ``nvpower.sh`` sets them to 430 ms and
512 on Orin (tegra234), so the values change only about every 0.43 s whatever the polling period.
They are read once when the source opens (:func:`ina3221_timing`); repeated readings of one refresh
are then dropped and the resolution recorded (see :mod:`orinbench.telemetry.powertrace`). Verified
only on fake sysfs trees with those files, never on a real Orin.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import PowerSourceError
from .._fs import list_dir, read_int, read_text, under
from ..powertrace import PollingPowerSource, PowerTrace, sensor_notes, total_from_rails

_LABEL_RE = re.compile(r"^in([1-6])_label$")
#: channel numbers of the driver's summation channels (not rails)
_SUM_CHANNELS = (7,)


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: its label and the files to read."""

    name: str
    volt_path: Path
    curr_path: Path
    alarm_paths: tuple[Path, ...] = ()


def _hwmon_dirs(root: str | os.PathLike[str]) -> list[Path]:
    found: dict[str, Path] = {}
    i2c = under(root, "/sys/bus/i2c/devices")
    for dev in list_dir(i2c):
        name = (read_text(i2c / dev / "name") or "").lower()
        if "ina3221" not in name:
            continue
        for hw in list_dir(i2c / dev / "hwmon"):
            path = i2c / dev / "hwmon" / hw
            found.setdefault(os.path.realpath(path), path)
    cls = under(root, "/sys/class/hwmon")
    for hw in list_dir(cls):
        path = cls / hw
        if "ina3221" in (read_text(path / "name") or "").lower():
            found.setdefault(os.path.realpath(path), path)
    return [found[k] for k in sorted(found)]


def _is_not_connected(label: str) -> bool:
    return label.upper() == "NC" or label.upper().startswith("NC ")


def find_ina3221_rails(root: str | os.PathLike[str] = "/") -> dict[str, Rail]:
    """All connected INA3221 rails under ``root``, by label (empty if there are none)."""
    rails: dict[str, Rail] = {}
    for hw in _hwmon_dirs(root):
        for item in list_dir(hw):
            m = _LABEL_RE.match(item)
            if not m:
                continue
            ch = int(m.group(1))
            label = read_text(hw / item) or ""
            if not label or ch in _SUM_CHANNELS or _is_not_connected(label):
                continue
            if label.lower().startswith("sum of"):
                continue
            if read_int(hw / f"in{ch}_enable") == 0:
                continue
            volt, curr = hw / f"in{ch}_input", hw / f"curr{ch}_input"
            if not (volt.is_file() and curr.is_file()):
                continue
            alarms = tuple(
                p for p in (hw / f"curr{ch}_crit_alarm", hw / f"curr{ch}_max_alarm") if p.is_file()
            )
            name = label if label not in rails else f"{label}@{hw.name}"
            rails[name] = Rail(name=name, volt_path=volt, curr_path=curr, alarm_paths=alarms)
    return rails


def ina3221_timing(dirs: Sequence[Path]) -> tuple[float | None, int | None]:
    """(refresh interval in seconds, samples averaged) of the INA3221 monitors in ``dirs``.

    With several monitors the slowest refresh and the largest averaging count are returned: the
    readings as a whole resolve nothing finer. Either is None when any monitor lacks the file (an
    older driver): unknown, never guessed.
    """
    updates = [read_int(hw / "update_interval") for hw in dirs]
    counts = [read_int(hw / "samples") for hw in dirs]
    update = None
    if updates and all(u is not None and u > 0 for u in updates):
        update = max(u for u in updates if u is not None) / 1000.0
    samples = None
    if counts and all(c is not None for c in counts):
        samples = max(c for c in counts if c is not None)
    return update, samples


def find_ina3221_timing(root: str | os.PathLike[str] = "/") -> tuple[float | None, int | None]:
    """:func:`ina3221_timing` of every INA3221 monitor under ``root`` (for tegrastats and jtop,
    which read the same chips through another program)."""
    return ina3221_timing(_hwmon_dirs(root))


def read_rails_w(rails: dict[str, Rail]) -> dict[str, float]:
    """Watts per rail (mV x mA / 1e6). Raises OSError when a file cannot be read."""
    out: dict[str, float] = {}
    for name, rail in rails.items():
        mv = read_int(rail.volt_path)
        ma = read_int(rail.curr_path)
        if mv is None or ma is None:
            missing = rail.volt_path if mv is None else rail.curr_path
            raise OSError(f"cannot read {missing}")
        out[name] = mv * ma / 1e6
    return out


class SysfsPowerSource(PollingPowerSource):
    """INA3221 rails read from sysfs by a background thread. ``root`` locates the sysfs tree."""

    name = "sysfs"

    def __init__(self, *, period_s: float = 0.05, root: str | os.PathLike[str] = "/") -> None:
        super().__init__(period_s=period_s)
        self.root = str(root)
        self.rails = find_ina3221_rails(root)
        if not self.rails:
            raise PowerSourceError(
                "sysfs power source is unavailable",
                why=f"no INA3221 rails under {under(root, '/sys/bus/i2c/devices')} or "
                f"{under(root, '/sys/class/hwmon')} (not a Jetson, or the ina3221 driver is not "
                "loaded)",
                fix="run on a Jetson with JetPack 5 or later, or choose --power jtop, tegrastats, "
                "nvml or none",
            )
        _, self.total_of = total_from_rails(dict.fromkeys(self.rails, 0.0))
        dirs = {rail.volt_path.parent for rail in self.rails.values()}
        self.sensor_update_s, self.sensor_samples = ina3221_timing(sorted(dirs))

    def read(self) -> tuple[float, dict[str, float]]:
        rails = read_rails_w(self.rails)
        total, _ = total_from_rails(rails)
        return total, rails

    def stop(self) -> PowerTrace:
        trace = super().stop()
        notes = sensor_notes(self.sensor_update_s, self.sensor_samples, trace.repeats_dropped)
        return replace(trace, notes=(*trace.notes, *notes))

    def describe(self) -> str:
        refresh = (
            f" (the sensor refreshes every {self.sensor_update_s:g} s)"
            if self.sensor_update_s is not None
            else ""
        )
        return (
            f"INA3221 rails {', '.join(self.rails)} every {self.period_s:g} s{refresh}; total = "
            f"{self.total_of}"
        )
