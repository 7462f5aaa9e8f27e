"""TensorRT's log: an ``ILogger`` that keeps every message for the log file beside the engine.

The ``trt.ILogger`` subclass is defined inside :func:`make_logger` so that this module imports
without TensorRT. TensorRT calls ``log`` from its own threads while the GIL is released around a
build; the callback only appends to a list and, for warnings and errors, calls ``on_message``.

The log file is written once, at the end, atomically (``orinbench._io``), so a crash never leaves
half a log next to an engine; it is written for failed builds too, since that is when it matters.
"""

from __future__ import annotations

import os
import threading
import time
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
    """The records of one TensorRT session (a build or a runtime) and its ILogger."""

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
        self.ilogger = _make_ilogger(trt, self)

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


def _make_ilogger(trt: Any, sink: TrtLog) -> Any:
    class _Logger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            # pybind11 requires the base __init__ when overriding it; TensorRT rejects the
            # logger otherwise ("__init__ must be called").
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            sink._add(_severity_name(trt, severity), msg)

    return _Logger()


def make_logger(
    trt: Any,
    *,
    min_severity: str = "INFO",
    on_message: Callable[[LogRecord], None] | None = None,
) -> TrtLog:
    """A :class:`TrtLog` whose ``ilogger`` is passed to ``trt.Builder`` / ``trt.Runtime``."""
    return TrtLog(trt, min_severity=min_severity, on_message=on_message)
