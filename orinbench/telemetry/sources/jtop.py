"""Power through jtop (jetson-stats 4.x and 7.x), its client isolated in a child process.

Facts from jetson-stats' source that shape this module:

* ``jetson.power`` in 4.2+ and 7.x is ``{"rail": {name: {"power": mW, "avg": mW, "online": ...}},
  "tot": {"power": mW, "avg": mW, "name"?: rail}}``. ``tot`` is the VDD_IN rail (taken out of
  ``rail``) on Orin NX / Orin Nano and the sum of the rails on AGX Orin; neither includes the
  carrier board. In 4.0/4.1 it is a tuple ``(total, rails)`` of ``{"cur": mW, "avg": mW}``.
* ``avg`` is a running ``(new + old) / 2`` — an exponential filter, not a time average — so the
  raw ``power`` readings are integrated here instead.
* The first client connected sets the service's sampling interval; a later client gets the
  existing one. The achieved period is therefore measured from the samples and reported.
* ``jetson.ok()`` returning False means the service sent nothing for three intervals: sampling
  stopped. That is an error, never the normal end of a run.
* ``import jtop`` in 7.x calls ``multiprocessing.set_start_method("fork", force=True)``, which is
  unsafe in a process that has initialised CUDA. So jtop is never imported here: the client runs in
  a separate interpreter (``python -m orinbench.telemetry.sources.jtop_client``, started with
  fork+exec, which is safe after CUDA) and streams samples as JSON lines.

jetson-stats is AGPL-3.0 and stays an optional extra: only the child process imports it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ... import _lazy
from ...errors import PowerSourceError
from ..power import PowerSample, PowerSource, PowerTrace, achieved_period
from ._process import stop_process

#: where jtop.service listens (jtop.service.JTOP_PIPE in jetson-stats)
DEFAULT_JTOP_SOCKET = "/run/jtop.sock"
WORKER_MODULE = "orinbench.telemetry.sources.jtop_client"
#: how long connecting to the service may take (the child imports jtop, then connects)
CONNECT_TIMEOUT_S = 20.0
_STDERR_TAIL = 20


def parse_jtop_power(power: Any) -> tuple[float, dict[str, float], str | None]:
    """(total watts, watts per online rail, name of the rail that is the total or None).

    Accepts ``jetson.power`` of jetson-stats 4.2+/7.x (a dict) and of 4.0/4.1 (a tuple). When the
    total is a rail (VDD_IN), that rail is put back among the rails so that every source reports
    the same set.
    """
    if isinstance(power, tuple) and len(power) == 2:
        total, rails_in = power
        key = "cur"
    elif isinstance(power, Mapping):
        total, rails_in = power.get("tot") or {}, power.get("rail") or {}
        key = "power"
    else:
        raise ValueError(f"unexpected jtop power structure: {type(power).__name__}")
    rails: dict[str, float] = {}
    for name, values in dict(rails_in).items():
        if not isinstance(values, Mapping) or values.get("online", True) is False:
            continue
        if key in values:
            rails[str(name)] = float(values[key]) / 1000.0
    if not isinstance(total, Mapping) or key not in total:
        raise ValueError("jtop reported no total power (no INA3221 rails on this board?)")
    total_w = float(total[key]) / 1000.0
    total_name = total.get("name")
    if total_name:
        rails[str(total_name)] = total_w
    return total_w, rails, (str(total_name) if total_name else None)


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


class JtopPowerSource(PowerSource):
    """Power samples from jtop.service, read by a jtop client in a child process.

    ``socket_path`` overrides the service socket (default ``/run/jtop.sock``), for a service started
    elsewhere (tests run one on a private socket).
    """

    name = "jtop"

    def __init__(
        self,
        *,
        period_s: float = 0.1,
        socket_path: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(period_s=period_s)
        self.socket_path = socket_path
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
        self._total_name: str | None = None
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
                    if msg.get("total_name"):
                        self._total_name = str(msg["total_name"])
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
                fix="start the service (sudo systemctl restart jtop.service) or choose "
                "--power sysfs",
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
                fix="check jtop.service (journalctl -u jtop.service), or choose --power sysfs",
            )
        return self._trace(raw, t_stop)

    def _trace(self, raw: list[tuple[float, float, dict[str, float]]], t_stop: float) -> PowerTrace:
        t0 = self._t0
        before = [r for r in raw if r[0] < t0]
        inside = [r for r in raw if t0 <= r[0] < t_stop]
        after = [r for r in raw if r[0] >= t_stop]
        kept = before[-1:] + inside + after[:1]
        samples = tuple(PowerSample(t_s=t - t0, total_w=w, rails=r) for t, w, r in kept)
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
        if self._total_name:
            total_of = (
                f"{self._total_name} rail via jtop (module input; carrier board not included)"
            )
        else:
            total_of = "jtop total: sum of the rails (module; carrier board not included)"
        return PowerTrace(
            source=self.name,
            samples=samples,
            period_s_requested=self.period_s,
            period_s_achieved=achieved_period([t for t, _, _ in raw]),
            duration_s=t_stop - t0,
            total_of=total_of,
            notes=tuple(notes),
        )

    def close(self) -> None:
        self._shutdown()

    def describe(self) -> str:
        sock = self.socket_path or DEFAULT_JTOP_SOCKET
        return f"jtop.service at {sock}, requested interval {self.period_s:g} s"
