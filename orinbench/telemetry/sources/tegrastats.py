"""Power from ``tegrastats --interval MS``: its power fields parsed line by line.

On JetPack 5 and 6 a power field reads ``NAME CURmW/AVGmW`` (``VDD_IN 5012mW/5012mW``); JetPack 4
printed ``NAME CUR/AVG`` without units. The current value is used; the average is tegrastats' own
running figure, not a time average. Rails labelled ``NC`` (not connected, AGX Orin) are skipped.
Each line is stamped when it is read.

tegrastats reads the same INA3221 monitors as the sysfs source, so a new value appears only every
``update_interval`` (~0.43 s on Orin) whatever ``--interval`` asks for: the interval is read from
sysfs under ``root`` where possible, and repeated readings of one refresh are dropped. Checked
against recorded tegrastats lines and fake sysfs trees only, never on a real Orin.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import PowerSourceError
from .._fs import under
from ..powertrace import (
    PowerSample,
    PowerSource,
    PowerTrace,
    achieved_period,
    drop_repeats,
    resolution,
    sensor_notes,
    total_from_rails,
)
from ._process import stop_process
from .sysfs import find_ina3221_timing

# A name, the current and average values, in mW or (JetPack 4) bare; the look-ahead refuses
# memory figures such as "RAM 2389/30536MB" whose second number runs into a unit.
_POWER_RE = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w/])")
_TEMP_RE = re.compile(r"(?<![\w@])([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_EMC_RE = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GR3D_RE = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
#: offline thermal sensors report -256 C
_OFFLINE_C = -100.0


@dataclass(frozen=True)
class TegrastatsReading:
    """What one tegrastats line says (fields it lacks are None or empty)."""

    rails_mw: dict[str, int] = field(default_factory=dict)
    temperatures_c: dict[str, float] = field(default_factory=dict)
    gpu_load_pct: int | None = None
    gpu_freq_mhz: int | None = None
    emc_load_pct: int | None = None
    emc_freq_mhz: int | None = None


def parse_tegrastats(line: str) -> TegrastatsReading:
    """Parse one tegrastats output line."""
    rails = {name: int(cur) for name, cur, _avg in _POWER_RE.findall(line) if name.upper() != "NC"}
    temps = {name: float(val) for name, val in _TEMP_RE.findall(line) if float(val) > _OFFLINE_C}
    gpu_load = gpu_freq = emc_load = emc_freq = None
    m = _GR3D_RE.search(line)
    if m:
        gpu_load = int(m.group(1))
        if m.group(2):
            freqs = [int(x) for x in m.group(2).split(",") if x]
            gpu_freq = max(freqs) if freqs else None
    m = _EMC_RE.search(line)
    if m:
        emc_load = int(m.group(1))
        emc_freq = int(m.group(2)) if m.group(2) else None
    return TegrastatsReading(
        rails_mw=rails,
        temperatures_c=temps,
        gpu_load_pct=gpu_load,
        gpu_freq_mhz=gpu_freq,
        emc_load_pct=emc_load,
        emc_freq_mhz=emc_freq,
    )


def find_tegrastats(root: str | os.PathLike[str] = "/") -> str | None:
    """The tegrastats executable: on PATH (real root only) or in /usr/bin under ``root``."""
    if str(root) in ("/", ""):
        found = shutil.which("tegrastats")
        if found:
            return found
    for cand in ("/usr/bin/tegrastats", "/usr/sbin/tegrastats"):
        p = under(root, cand)
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


class TegrastatsPowerSource(PowerSource):
    """Runs ``tegrastats --interval MS`` and keeps the power fields of each line."""

    name = "tegrastats"

    def __init__(
        self,
        *,
        period_s: float = 0.1,
        binary: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] = "/",
        first_line_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(period_s=period_s)
        found = str(binary) if binary is not None else find_tegrastats(root)
        if found is None or not Path(found).is_file():
            raise PowerSourceError(
                "tegrastats power source is unavailable",
                why=f"tegrastats not found ({found or 'not on PATH nor in /usr/bin'})",
                fix="run on a Jetson (tegrastats comes with Jetson Linux), or choose --power "
                "sysfs, jtop, nvml or none",
            )
        self.binary = found
        self.first_line_timeout_s = first_line_timeout_s
        self.sensor_update_s, self.sensor_samples = find_ina3221_timing(root)
        self._proc: subprocess.Popen[str] | None = None
        self._finalizer: weakref.finalize | None = None
        self._cond = threading.Condition()
        self._raw: list[tuple[float, dict[str, float]]] = []
        self._bad_lines = 0
        self._eof = False
        self._stderr: collections.deque[str] = collections.deque(maxlen=10)
        self._t0 = 0.0

    @property
    def interval_ms(self) -> int:
        return max(1, round(self.period_s * 1000))

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            t = time.monotonic()
            reading = parse_tegrastats(line)
            with self._cond:
                if reading.rails_mw:
                    self._raw.append((t, {k: v / 1000.0 for k, v in reading.rails_mw.items()}))
                elif line.strip():
                    self._bad_lines += 1
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip():
                self._stderr.append(line.rstrip())

    def _why(self) -> str:
        if self._bad_lines and not self._raw:
            return "tegrastats printed no power fields (run it as root, or use --power sysfs)"
        code = self._proc.poll() if self._proc is not None else None
        tail = " | ".join(self._stderr)
        return f"tegrastats exited (status {code})" + (f": {tail}" if tail else "")

    def start(self) -> None:
        if self._proc is not None:
            raise PowerSourceError(
                "tegrastats power source is already started",
                fix="call stop() before starting it again",
            )
        self._raw, self._bad_lines, self._eof = [], 0, False
        self._stderr.clear()
        try:
            proc = subprocess.Popen(
                [self.binary, "--interval", str(self.interval_ms)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        except OSError as exc:
            raise PowerSourceError(
                f"cannot run {self.binary}", why=str(exc), fix="choose --power sysfs"
            ) from exc
        self._proc = proc
        self._finalizer = weakref.finalize(self, stop_process, proc)
        for target in (self._read_stdout, self._read_stderr):
            threading.Thread(
                target=target,
                args=(proc,),
                daemon=True,
                name=f"orinbench-tegrastats-{target.__name__}",
            ).start()
        deadline = time.monotonic() + max(self.first_line_timeout_s, 3 * self.period_s)
        with self._cond:
            while not (self._raw or self._eof or self._bad_lines >= 3):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ready = bool(self._raw)
        if not ready:
            why = (
                self._why()
                if (self._eof or self._bad_lines)
                else f"no output within {self.first_line_timeout_s:g} s"
            )
            self._shutdown()
            raise PowerSourceError(
                "tegrastats power source is unavailable",
                why=why,
                fix="choose --power sysfs, jtop or none",
            )
        self._t0 = time.monotonic()

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def stop(self) -> PowerTrace:
        if self._proc is None:
            raise PowerSourceError(
                "tegrastats power source was not started", fix="call start() first"
            )
        t_stop = time.monotonic()
        with self._cond:
            failed = self._eof
            deadline = time.monotonic() + min(max(3 * self.period_s, 0.5), 10.0)
            while not failed and not (self._raw and self._raw[-1][0] >= t_stop):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                failed = self._eof
            raw = list(self._raw)
        why = self._why() if failed else ""
        self._shutdown()
        if failed:
            last = (raw[-1][0] - self._t0) if raw else 0.0
            raise PowerSourceError(
                f"tegrastats stopped {max(last, 0.0):.2f} s into the window",
                why=why,
                fix="choose --power sysfs or jtop",
            )
        t0 = self._t0
        kept, dropped = drop_repeats(raw, self.sensor_update_s)
        before = [r for r in kept if r[0] < t0]
        inside = [r for r in kept if t0 <= r[0] < t_stop]
        after = [r for r in kept if r[0] >= t_stop]
        samples = []
        total_of = ""
        for t, rails in before[-1:] + inside + after[:1]:
            total, total_of = total_from_rails(rails)
            samples.append(PowerSample(t_s=t - t0, total_w=total, rails=rails))
        return PowerTrace(
            source=self.name,
            samples=tuple(samples),
            period_s_requested=self.period_s,
            period_s_achieved=achieved_period([t for t, _ in kept]),
            duration_s=t_stop - t0,
            total_of=total_of,
            notes=(
                f"{self.binary} --interval {self.interval_ms}",
                *sensor_notes(self.sensor_update_s, self.sensor_samples, dropped),
            ),
            sensor_update_s=self.sensor_update_s,
            sensor_samples=self.sensor_samples,
            resolution_s=resolution(self.period_s, self.sensor_update_s),
            repeats_dropped=dropped,
        )

    def close(self) -> None:
        self._shutdown()

    def describe(self) -> str:
        return f"{self.binary} --interval {self.interval_ms}"
