"""Build progress: TensorRT 10's ``IProgressMonitor`` drives a fraction; older versions tick time.

``on_progress(BuildProgress)`` is called a few times a second at most. With a progress monitor the
fraction comes from the outermost phase that has steps, refined by its active sub-phase; without
one (8.5, 8.6) a thread reports the elapsed time while ``build_serialized_network`` runs (the
bindings release the GIL around it, so the thread does run).

The monitor also cancels a build: when the user presses Ctrl-C, Python raises KeyboardInterrupt
inside ``step_complete`` (the only Python code running); it is caught, ``step_complete`` returns
False, which makes TensorRT stop the build, and :meth:`Monitor.raise_if_cancelled` re-raises it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: at most this many callbacks per second
_MIN_INTERVAL_S = 0.2


@dataclass(frozen=True)
class BuildProgress:
    """``fraction`` in [0, 1], or -1 when unknown (then only ``elapsed_s`` is meaningful)."""

    fraction: float
    phase: str
    elapsed_s: float


ProgressCallback = Callable[[BuildProgress], None]


class _Throttle:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._t0 = time.monotonic()
        self._last = -1.0

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def __call__(self, fraction: float, phase: str, *, force: bool = False) -> None:
        if self._callback is None:
            return
        now = self.elapsed()
        if force or now - self._last >= _MIN_INTERVAL_S:
            self._last = now
            self._callback(BuildProgress(fraction=fraction, phase=phase, elapsed_s=now))


class Monitor:
    """Wraps whichever progress source the TensorRT version has; use as a context manager."""

    def __init__(self, trt: Any, *, with_monitor: bool, on_progress: ProgressCallback | None):
        self._emit = _Throttle(on_progress)
        self.cancelled = False
        self.monitor: Any = _make_monitor(trt, self) if with_monitor else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # phase name -> (parent, steps, step done)
        self._phases: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._best = 0.0

    # -- IProgressMonitor callbacks (TensorRT 10+) -----------------------------------------
    def _phase_start(self, name: str, parent: str | None, steps: int) -> None:
        with self._lock:
            self._phases[name] = [parent, max(int(steps), 0), 0]
        try:
            self._report(name)
        except KeyboardInterrupt:  # TensorRT would swallow it: cancel at the next step instead
            self.cancelled = True

    def _step_complete(self, name: str, step: int) -> bool:
        try:
            with self._lock:
                if name in self._phases:
                    self._phases[name][2] = int(step) + 1
            self._report(name)
        except KeyboardInterrupt:
            self.cancelled = True
        return not self.cancelled

    def _phase_finish(self, name: str) -> None:
        with self._lock:
            self._phases.pop(name, None)
        try:
            self._report(name)
        except KeyboardInterrupt:
            self.cancelled = True

    def fraction(self) -> float:
        """Outermost phase with steps, plus the share of its active child phase."""
        with self._lock:
            phases = {k: list(v) for k, v in self._phases.items()}
        roots = [k for k, v in phases.items() if v[0] is None or v[0] not in phases]
        for root in roots:
            _, steps, done = phases[root]
            if steps <= 0:
                continue
            frac = done / steps
            children = [v for v in phases.values() if v[0] == root and v[1] > 0]
            if children and done < steps:
                frac += min(children[0][2] / children[0][1], 1.0) / steps
            return max(0.0, min(frac, 1.0))
        return -1.0

    def _report(self, phase: str) -> None:
        # A bar never moves back: between a sub-phase's end and its parent's step the computed
        # fraction dips for a moment.
        frac = self.fraction()
        if frac >= 0:
            self._best = max(self._best, frac)
            frac = self._best
        self._emit(frac, phase)

    # -- elapsed-time ticker (TensorRT 8.x) ------------------------------------------------
    def _tick(self) -> None:
        while not self._stop.wait(_MIN_INTERVAL_S):
            self._emit(-1.0, "building")

    def __enter__(self) -> Monitor:
        if self.monitor is None and self._emit._callback is not None:
            self._thread = threading.Thread(target=self._tick, name="trt-build-ticker", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._emit(1.0 if not self.cancelled else -1.0, "done", force=True)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise KeyboardInterrupt


def _make_monitor(trt: Any, owner: Monitor) -> Any:
    class _ProgressMonitor(trt.IProgressMonitor):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            owner._phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return owner._step_complete(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            owner._phase_finish(phase_name)

    return _ProgressMonitor()
