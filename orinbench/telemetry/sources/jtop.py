"""Power through jtop (jetson-stats 4.2+ and 7.x), its client isolated in a child process.

Facts from jetson-stats' source that shape this module:

* ``jetson.power`` in 4.2+ and 7.x is ``{"rail": {name: {"power": mW, "avg": mW, "online": ...}},
  "tot": {"power": mW, "avg": mW, "name"?: rail}}``. ``rail`` holds the INA3221 channels *and*
  every ``/sys/class/power_supply`` entry that has ``voltage_now`` and ``current_now``, named
  after its folder (``ucsi-source-psy-1-00081`` becomes ``1-00081`` up to 7.2.0; 7.2.2 skips UCSI
  folders but keeps the others); those entries may carry ``status``. ``tot`` is the ``VDD_IN`` /
  ``POM_5V_IN`` rail (taken out of ``rail``) where there is one, else the sum of *all* of
  ``rail``, so on an AGX Orin devkit powered over USB-C PD it adds the negotiated USB-PD V x I to
  the module rails (rbonghi/jetson_stats#428 shows that entry on an AGX Orin). orinbench therefore
  ignores ``tot`` except for its name, keeps only INA3221 rails and computes the total with the
  same :func:`~orinbench.telemetry.powertrace.total_from_rails` as sysfs and tegrastats.
* jetson-stats 4.0/4.1 return a tuple ``(total, rails)``: the total is the first rail whose name
  contains "IN" (``VIN SYS 5V0`` on AGX Orin, jetson_stats#344), rail names are rewritten
  (``VDD_``/``POM_``/``VDDQ_`` dropped, ``_`` -> space) and the payload has no ``uptime`` to tell
  new readings from repeats. They are refused with a message naming the upgrade.
* ``avg`` is a running ``(new + old) / 2`` — an exponential filter, not a time average — so the
  raw ``power`` readings are integrated here instead.
* The first client connected sets the service's sampling interval; a later client gets the
  existing one (``jetson.interval`` is the service's, 4.2+). ``jetson.ok()`` waits three times
  the interval *the client asked for*, so a client that asked for less than a slower service
  delivers would time out between two healthy readings: the child reconnects asking for the
  service's interval (see ``jtop_client``).
* ``jetson.ok()`` returning False then means the service sent nothing for three of its intervals:
  sampling stopped. That is an error, never the normal end of a run.
* ``import jtop`` in 7.x calls ``multiprocessing.set_start_method("fork", force=True)``, which is
  unsafe in a process that has initialised CUDA. So jtop is never imported here: the client runs in
  a separate interpreter (``python -m orinbench.telemetry.sources.jtop_client``, started with
  fork+exec, which is safe after CUDA) and streams samples as JSON lines.
* The service reads the same INA3221 monitors as sysfs, which refresh only every ~0.43 s: the
  resolution is max(service interval, sensor refresh) and repeated readings are dropped.

The dict and tuple formats come from jetson-stats' sources (4.0.0 to 7.2.0) and the issues cited;
the client was run against jetson-stats 7.2 on a simulated board, never on a real Orin.

jetson-stats is AGPL-3.0 and stays an optional extra: only the child process imports it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import _lazy
from ...errors import PowerSourceError
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

#: where jtop.service listens (jtop.service.JTOP_PIPE in jetson-stats)
DEFAULT_JTOP_SOCKET = "/run/jtop.sock"
WORKER_MODULE = "orinbench.telemetry.sources.jtop_client"
#: how long connecting to the service may take (the child imports jtop, then connects)
CONNECT_TIMEOUT_S = 20.0
_STDERR_TAIL = 20


#: oldest jetson-stats whose power payload orinbench reads (see the module docstring)
MIN_JETSON_STATS = (4, 2)
UPGRADE_FIX = (
    "upgrade jetson-stats to 4.2 or later (sudo pip3 install -U 'jetson-stats>=4.2', then sudo "
    "systemctl restart jtop.service), or choose --power sysfs"
)
#: how the client says that jetson-stats is too old (the selection then names the upgrade)
TOO_OLD = "orinbench needs jetson-stats >= 4.2"
#: an INA3221 channel label (VDD_IN, VDD_CPU_GPU_CV, VIN_SYS_5V0, POM_5V_IN, ...); power_supply
#: entries are named after their sysfs folder (lower case, digits, dashes: "1-00081")
_INA_LABEL_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class UnsupportedJtopError(ValueError):
    """A jetson-stats whose power payload cannot be read correctly (4.0/4.1)."""


@dataclass(frozen=True)
class JtopPower:
    """One ``jetson.power`` reading: the INA3221 rails in watts and the total made from them.

    ``total_of`` says what the total is (:func:`total_from_rails`); ``dropped`` names the entries
    that are not INA3221 rails (power_supply folders such as USB-C PD) or are offline.
    """

    total_w: float
    rails: dict[str, float]
    total_of: str
    dropped: tuple[str, ...] = ()


def jetson_stats_supported(version: str) -> bool:
    """Whether jetson-stats ``version`` ("4.2.12", "7.2.2", "4.1.5") has the 4.2+ power payload."""
    m = re.match(r"\s*(\d+)\.(\d+)", version or "")
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= MIN_JETSON_STATS


def _is_ina_rail(name: str, values: Mapping[str, Any]) -> bool:
    # a power_supply entry may carry 'status' (INA3221 channels never do) and is named after its
    # folder; an INA3221 channel is named by its upper-case label
    return "status" not in values and bool(_INA_LABEL_RE.match(name))


def parse_jtop_power(power: Any) -> JtopPower:
    """The INA3221 rails of ``jetson.power`` (jetson-stats 4.2+/7.x) and their total.

    jetson-stats' own ``tot`` is not used as a number: where it is a named rail (VDD_IN) that rail
    is put back among the rails; the total is then :func:`total_from_rails` of the INA3221 rails,
    as for sysfs and tegrastats. The 4.0/4.1 tuple raises :class:`UnsupportedJtopError`; a payload
    without any INA3221 rail raises ValueError.
    """
    if isinstance(power, tuple):
        raise UnsupportedJtopError(
            "jetson-stats 4.0/4.1 is not supported for power: its total is the first rail whose "
            "name contains 'IN' (VIN_SYS_5V0 alone on AGX Orin) and it renames the rails"
        )
    if not isinstance(power, Mapping):
        raise ValueError(f"unexpected jtop power structure: {type(power).__name__}")
    rails_in = power.get("rail") or {}
    total = power.get("tot") or {}
    rails: dict[str, float] = {}
    dropped: list[str] = []
    for name, values in dict(rails_in).items():
        if not isinstance(values, Mapping) or "power" not in values:
            continue
        if values.get("online", True) is False or not _is_ina_rail(str(name), values):
            dropped.append(str(name))
            continue
        rails[str(name)] = float(values["power"]) / 1000.0
    total_name = total.get("name") if isinstance(total, Mapping) else None
    if total_name and "power" in total:
        # jetson-stats moved the input rail out of 'rail' into 'tot': put it back
        rails[str(total_name)] = float(total["power"]) / 1000.0
    if not rails:
        raise ValueError("jtop reported no INA3221 rails (no power monitor on this board?)")
    total_w, total_of = total_from_rails(rails)
    return JtopPower(total_w, rails, total_of, tuple(sorted(dropped)))


def _package_parent() -> str:
    return str(Path(__file__).resolve().parents[3])


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # the child must import this very orinbench, installed or not
    parent = _package_parent()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _worker_cmd(interval: float, socket_path: str | None, *, probe: bool) -> list[str]:
    cmd = [sys.executable, "-m", WORKER_MODULE, "--interval", repr(float(interval))]
    if socket_path:
        cmd += ["--socket", socket_path]
    if probe:
        cmd.append("--probe")
    return cmd


def probe_jtop(
    *, socket_path: str | None = None, period_s: float = 0.1, timeout_s: float = CONNECT_TIMEOUT_S
) -> tuple[bool, str]:
    """Whether jtop.service answers: (True, "jetson-stats X, interval Y s") or (False, why)."""
    if not _lazy.is_available("jtop"):
        return False, "jetson-stats is not installed (pip install jetson-stats)"
    sock = socket_path or DEFAULT_JTOP_SOCKET
    if not os.path.exists(sock):
        return False, f"jtop.service is not running (no socket {sock})"
    try:
        proc = subprocess.run(
            _worker_cmd(period_s, socket_path, probe=True),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_worker_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"jtop.service did not answer within {timeout_s:g} s"
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "hello" in msg:
            hello = msg["hello"]
            return True, (
                f"jetson-stats {hello.get('version')}, service interval {hello.get('interval')} s"
            )
        if "error" in msg:
            return False, str(msg["error"])
    tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return False, f"jtop client failed: {tail[0]}"


def fix_for(why: str, default: str) -> str:
    """The fix to print for a jtop failure: the upgrade when jetson-stats is too old."""
    return UPGRADE_FIX if TOO_OLD in why else default


class JtopPowerSource(PowerSource):
    """Power samples from jtop.service, read by a jtop client in a child process.

    ``socket_path`` overrides the service socket (default ``/run/jtop.sock``), for a service started
    elsewhere (tests run one on a private socket). ``root`` locates the sysfs tree whose INA3221
    ``update_interval`` bounds the resolution (the service reads those same monitors).
    """

    name = "jtop"

    def __init__(
        self,
        *,
        period_s: float = 0.1,
        socket_path: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        root: str | os.PathLike[str] = "/",
    ) -> None:
        super().__init__(period_s=period_s)
        self.socket_path = socket_path
        self.sensor_update_s, self.sensor_samples = find_ina3221_timing(root)
        self.connect_timeout_s = connect_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._raw: list[tuple[float, float, dict[str, float]]] = []
        self._hello: dict[str, Any] | None = None
        self._error: str | None = None
        self._eof = False
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._total_of = ""
        self._dropped: set[str] = set()
        self._t0 = 0.0
        self.server_interval_s: float | None = None
        self.version: str | None = None

    # -- child process I/O ---------------------------------------------------------------------
    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if "t" in msg:
                    self._raw.append(
                        (
                            float(msg["t"]),
                            float(msg["total_w"]),
                            {str(k): float(v) for k, v in msg["rails_w"].items()},
                        )
                    )
                    self._total_of = str(msg.get("total_of") or self._total_of)
                    self._dropped.update(str(d) for d in msg.get("dropped") or ())
                elif "hello" in msg:
                    self._hello = dict(msg["hello"])
                elif "error" in msg:
                    self._error = str(msg["error"])
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip():
                self._stderr.append(line.rstrip())

    def _why_failed(self) -> str:
        if self._error:
            return self._error
        code = self._proc.poll() if self._proc is not None else None
        tail = " | ".join(list(self._stderr)[-3:])
        return f"the jtop client exited (status {code})" + (f": {tail}" if tail else "")

    # -- PowerSource ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None:
            raise PowerSourceError(
                "jtop power source is already started", fix="call stop() before starting it again"
            )
        self._raw, self._hello, self._error, self._eof = [], None, None, False
        self._dropped = set()
        self._stderr.clear()
        try:
            proc = subprocess.Popen(
                _worker_cmd(self.period_s, self.socket_path, probe=False),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env=_worker_env(),
            )
        except OSError as exc:
            raise PowerSourceError(
                "cannot start the jtop client process", why=str(exc), fix="choose --power sysfs"
            ) from exc
        self._proc = proc
        self._finalizer = weakref.finalize(self, stop_process, proc)
        for target in (self._read_stdout, self._read_stderr):
            threading.Thread(
                target=target, args=(proc,), daemon=True, name=f"orinbench-jtop-{target.__name__}"
            ).start()
        deadline = time.monotonic() + self.connect_timeout_s
        with self._cond:
            # ready = connected and one sample received, so the window opens on live data
            while not (self._raw or self._error or self._eof):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ready = bool(self._raw) and not self._error
        if not ready:
            why = (
                self._why_failed()
                if (self._error or self._eof)
                else (f"no sample within {self.connect_timeout_s:g} s")
            )
            self._shutdown()
            raise PowerSourceError(
                "jtop power source is unavailable",
                why=why,
                fix=fix_for(
                    why,
                    "start the service (sudo systemctl restart jtop.service) or choose "
                    "--power sysfs",
                ),
            )
        hello = self._hello or {}
        self.server_interval_s = hello.get("interval")
        self.version = hello.get("version")
        self._t0 = time.monotonic()

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the child exits when its stdin closes
        try:
            proc.wait(timeout=max(5.0, 4 * self.period_s))
        except subprocess.TimeoutExpired:
            stop_process(proc)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def stop(self) -> PowerTrace:
        if self._proc is None:
            raise PowerSourceError("jtop power source was not started", fix="call start() first")
        t_stop = time.monotonic()
        interval = float(self.server_interval_s or self.period_s)
        with self._cond:
            failed = self._error is not None or self._eof
            # wait for one sample past the end of the window, so the right edge is interpolated
            deadline = time.monotonic() + min(max(3 * interval, 0.5), 10.0)
            while not failed and not (self._raw and self._raw[-1][0] >= t_stop):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                failed = self._error is not None or self._eof
            raw = list(self._raw)
        why = self._why_failed() if failed else ""
        self._shutdown()
        if failed:
            last = (raw[-1][0] - self._t0) if raw else 0.0
            raise PowerSourceError(
                f"jtop stopped sampling {max(last, 0.0):.2f} s into the window",
                why=why,
                fix=fix_for(
                    why,
                    "check jtop.service (journalctl -u jtop.service), or choose --power sysfs",
                ),
            )
        return self._trace(raw, t_stop)

    def _trace(self, raw: list[tuple[float, float, dict[str, float]]], t_stop: float) -> PowerTrace:
        t0 = self._t0
        readings = [(t, (w, r)) for t, w, r in raw]
        kept, dropped = drop_repeats(readings, self.sensor_update_s)
        before = [k for k in kept if k[0] < t0]
        inside = [k for k in kept if t0 <= k[0] < t_stop]
        after = [k for k in kept if k[0] >= t_stop]
        samples = tuple(
            PowerSample(t_s=t - t0, total_w=w, rails=r)
            for t, (w, r) in before[-1:] + inside + after[:1]
        )
        notes: list[str] = []
        if self.version:
            notes.append(f"jetson-stats {self.version}")
        si = self.server_interval_s
        if si is not None and abs(float(si) - self.period_s) > 1e-3 * self.period_s:
            notes.append(
                f"jtop.service samples every {si} s (set by the first client); "
                f"{self.period_s:g} s was requested"
            )
        notes.append("raw jtop 'power' readings integrated (jtop's 'avg' is not a time average)")
        notes.append("total computed from the INA3221 rails (jtop's own 'tot' is not used)")
        if self._dropped:
            notes.append(
                f"jtop entries that are not INA3221 rails (or are offline) left out: "
                f"{', '.join(sorted(self._dropped))}"
            )
        notes.extend(sensor_notes(self.sensor_update_s, self.sensor_samples, dropped))
        if not self._total_of and samples:
            _, self._total_of = total_from_rails(samples[-1].rails)
        # readings arrive every `si` s (the service's interval, whatever was requested); the sensor
        # refreshes every update_interval
        period = float(si) if si else self.period_s
        return PowerTrace(
            source=self.name,
            samples=samples,
            period_s_requested=self.period_s,
            period_s_achieved=achieved_period([t for t, _ in kept]),
            duration_s=t_stop - t0,
            total_of=f"{self._total_of} via jtop" if self._total_of else "",
            notes=tuple(notes),
            sensor_update_s=self.sensor_update_s,
            sensor_samples=self.sensor_samples,
            resolution_s=resolution(period, self.sensor_update_s),
            repeats_dropped=dropped,
        )

    def close(self) -> None:
        self._shutdown()

    def describe(self) -> str:
        sock = self.socket_path or DEFAULT_JTOP_SOCKET
        return f"jtop.service at {sock}, requested interval {self.period_s:g} s"
