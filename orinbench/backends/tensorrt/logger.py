"""TensorRT's log: one process-wide ``ILogger`` that hands every message to per-session sinks.

TensorRT 8.x keeps ONE logger pointer per process: a Builder or Runtime created while another
one is alive keeps using the first one's logger ("TensorRT maintains only a single logger pointer
at any given time, so the existing value ... will be used instead", NVIDIA/TensorRT#1475). A new
``ILogger`` per build or runner therefore received nothing whenever two TensorRT objects lived at
once (pipeline stages, a build while a runner is open), and the second session's errors were lost.
So the process has exactly one ``ILogger`` (:func:`process_ilogger`, made lazily, on first use, so
that this module imports without TensorRT), and each session (a build, an engine load, a
calibration, a runner) is a :class:`TrtLog` *sink* attached to it for its duration
(:func:`log_session`; ``with`` closes it, and a session that is never closed is dropped when it is
collected). Every attached session receives every message, so nested and concurrent sessions all
see what TensorRT says: TensorRT 8.x does not say which object a message comes from.

Lifetime: the pybind11 bindings keep a logger alive only as long as the Builder/Runtime it was
passed to (``keep_alive<1, 2>``), while TensorRT 8.x may go on using the pointer for later objects.
The process logger is held by this module until the interpreter exits, so it can never be
collected while TensorRT uses it.

This was checked against orinbench's TensorRT double (tests/trt_double, which models the 8.x
single-logger rule) and the upstream headers and issues, never on a real TensorRT.

TensorRT calls ``log`` from its own threads while the GIL is released around a build; the callback
only appends to lists and, for warnings and errors, calls each session's ``on_message``.

The log file is written once, at the end, atomically (``orinbench._io``), so a crash never leaves
half a log next to an engine; it is written for failed builds too, since that is when it matters.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._io import atomic_write_text

#: TensorRT severities, most severe first (the values of trt.ILogger.Severity)
SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")
_SHORT = {"INTERNAL_ERROR": "F", "ERROR": "E", "WARNING": "W", "INFO": "I", "VERBOSE": "V"}


@dataclass(frozen=True)
class LogRecord:
    severity: str
    message: str
    t: float  # seconds since the logger was made

    def line(self) -> str:
        return f"[{self.t:9.3f}s] [{_SHORT.get(self.severity, '?')}] {self.message}"


class TrtLog:
    """The records of one TensorRT session (a build, a load, a calibration or a runner).

    Made attached to the process logger (see the module docstring); ``ilogger`` is the process
    ``ILogger`` to pass to ``trt.Builder`` / ``trt.Runtime`` / ``trt.OnnxParser``. :meth:`close`
    (or leaving a ``with`` block) detaches it; the records stay readable.
    """

    def __init__(
        self,
        trt: Any,
        *,
        min_severity: str = "INFO",
        on_message: Callable[[LogRecord], None] | None = None,
    ) -> None:
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {SEVERITIES}")
        self._records: list[LogRecord] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._limit = SEVERITIES.index(min_severity)
        self._on_message = on_message
        self.ilogger = process_ilogger(trt)
        _DISPATCH.attach(self)

    @property
    def attached(self) -> bool:
        return _DISPATCH.has(self)

    def close(self) -> None:
        """Stop receiving TensorRT's messages (idempotent)."""
        _DISPATCH.detach(self)

    def __enter__(self) -> TrtLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add(self, severity: str, message: str) -> None:
        if severity in SEVERITIES and SEVERITIES.index(severity) > self._limit:
            return
        rec = LogRecord(severity, str(message).rstrip(), time.monotonic() - self._t0)
        with self._lock:
            self._records.append(rec)
        if self._on_message is not None and severity in ("INTERNAL_ERROR", "ERROR", "WARNING"):
            self._on_message(rec)

    @property
    def records(self) -> list[LogRecord]:
        with self._lock:
            return list(self._records)

    def errors(self) -> list[str]:
        return [r.message for r in self.records if r.severity in ("INTERNAL_ERROR", "ERROR")]

    def warnings(self) -> list[str]:
        return [r.message for r in self.records if r.severity == "WARNING"]

    def mark(self) -> int:
        """Position to pass to :meth:`errors_since` (errors of one call only)."""
        with self._lock:
            return len(self._records)

    def errors_since(self, mark: int) -> list[str]:
        with self._lock:
            recs = self._records[mark:]
        return [r.message for r in recs if r.severity in ("INTERNAL_ERROR", "ERROR")]

    def text(self, header: str = "") -> str:
        lines = [header] if header else []
        lines.extend(r.line() for r in self.records)
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike[str], *, header: str = "") -> Path:
        return atomic_write_text(path, self.text(header))


def _severity_name(trt: Any, severity: Any) -> str:
    for name in SEVERITIES:
        if severity == getattr(trt.ILogger.Severity, name):
            return name
    return "INFO"


class _Dispatch:
    """The sessions attached to the process logger. Held weakly: a session nobody closed stops
    receiving messages when it is collected, instead of living as long as the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: list[weakref.ref[TrtLog]] = []

    def attach(self, sink: TrtLog) -> None:
        with self._lock:
            self._prune()
            if not any(r() is sink for r in self._sinks):
                self._sinks.append(weakref.ref(sink))

    def detach(self, sink: TrtLog) -> None:
        with self._lock:
            self._sinks = [r for r in self._sinks if r() is not None and r() is not sink]

    def has(self, sink: TrtLog) -> bool:
        with self._lock:
            return any(r() is sink for r in self._sinks)

    def sinks(self) -> list[TrtLog]:
        with self._lock:
            self._prune()
            live = [r() for r in self._sinks]
        return [s for s in live if s is not None]

    def _prune(self) -> None:
        self._sinks = [r for r in self._sinks if r() is not None]

    def deliver(self, severity: str, message: str) -> None:
        for sink in self.sinks():
            sink._add(severity, message)


_DISPATCH = _Dispatch()
#: (tensorrt module, its ILogger): one per imported TensorRT module (tests import the double
#: several times; a real process has one). Never emptied, so that no ILogger that TensorRT was
#: given can be collected before the interpreter exits.
_ILOGGERS: list[tuple[Any, Any]] = []
_ILOGGERS_LOCK = threading.Lock()


def process_ilogger(trt: Any) -> Any:
    """The one ``trt.ILogger`` of this process for the module ``trt`` (made on first use)."""
    with _ILOGGERS_LOCK:
        for module, ilogger in _ILOGGERS:
            if module is trt:
                return ilogger

        class _ProcessLogger(trt.ILogger):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                # pybind11 requires the base __init__ when overriding it; TensorRT rejects the
                # logger otherwise ("__init__ must be called").
                trt.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                _DISPATCH.deliver(_severity_name(trt, severity), msg)

        ilogger = _ProcessLogger()
        _ILOGGERS.append((trt, ilogger))
        return ilogger


def log_session(
    trt: Any,
    *,
    min_severity: str = "INFO",
    on_message: Callable[[LogRecord], None] | None = None,
) -> TrtLog:
    """A session attached to the process logger: use ``with log_session(trt) as log:``, or keep
    it and :meth:`TrtLog.close` it (a runner does, at exit). ``log.ilogger`` is what to pass to
    ``trt.Builder`` / ``trt.Runtime``; ``min_severity`` filters what this session keeps."""
    return TrtLog(trt, min_severity=min_severity, on_message=on_message)


#: the former name, kept for callers outside the package
make_logger = log_session
