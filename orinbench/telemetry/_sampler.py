"""A background thread that calls a read function every ``period_s`` seconds.

Reads are scheduled on absolute deadlines from the start, so the period does not drift; a late
read skips the deadlines it missed instead of bursting. The first read happens synchronously in
:meth:`start` (a broken sensor fails before the measured window, and there is a reading at t = 0)
and the last in :meth:`stop` (a reading at the end). An exception in the thread stops sampling and
is re-raised by :meth:`stop`, so a run never passes silently with half its readings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SamplerStopped(Exception):
    """Sampling broke off during the window; ``cause`` is what the read raised, ``at_s`` when."""

    def __init__(self, cause: BaseException, at_s: float) -> None:
        self.cause = cause
        self.at_s = at_s
        super().__init__(f"{cause} (after {at_s:.2f} s)")


class PeriodicSampler(Generic[T]):
    """Calls ``read()`` every ``period_s`` in a daemon thread; stamps with ``time.monotonic()``."""

    def __init__(self, read: Callable[[], T], *, period_s: float, name: str = "sampler") -> None:
        self._read = read
        self.period_s = float(period_s)
        self.name = name
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._readings: list[tuple[float, T]] = []
        self._error: BaseException | None = None
        self.t0 = 0.0
        self.t_stop = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def readings(self) -> list[tuple[float, T]]:
        """The readings so far (after a failed :meth:`stop`: those before the failure)."""
        return list(self._readings)

    def _take(self) -> None:
        value = self._read()
        self._readings.append((time.monotonic(), value))

    def _loop(self) -> None:
        k = 1
        while True:
            wait = self.t0 + k * self.period_s - time.monotonic()
            if self._stop_event.wait(wait if wait > 0 else 0):
                return
            try:
                self._take()
            except Exception as exc:  # re-raised by stop()
                self._error = exc
                return
            k = max(k + 1, int((time.monotonic() - self.t0) / self.period_s) + 1)

    def start(self) -> None:
        """Read once now (exceptions propagate), then keep reading in the background."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} sampler already started")
        self._readings = []
        self._error = None
        self._stop_event = threading.Event()
        self.t0 = time.monotonic()
        self._take()
        self._thread = threading.Thread(
            target=self._loop, name=f"orinbench-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, *, final_read: bool = True) -> list[tuple[float, T]]:
        """Stop the thread, read once more, return ``[(monotonic time, value), ...]``.

        Raises :class:`SamplerStopped` if a background read failed.
        """
        if self._thread is None:
            raise RuntimeError(f"{self.name} sampler was not started")
        self.t_stop = time.monotonic()
        self._stop_event.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            at = (self._readings[-1][0] - self.t0) if self._readings else 0.0
            raise SamplerStopped(self._error, at)
        if final_read:
            self._take()
        return list(self._readings)
