"""Progress display for long steps: a bar on a terminal, plain lines when not a TTY (CI logs).

One class serves the benchmark loop (``progress(done, fraction)``), engine builds
(``progress.build(BuildProgress)``) and calibration; a fraction below 0 means unknown, and then the
elapsed time is shown instead of a bar.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: plain-line mode prints at most this often, so CI logs stay readable
_PLAIN_EVERY_S = 5.0
_BAR_WIDTH = 30


class Progress:
    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._last_plain = -_PLAIN_EVERY_S
        self._drawn = False

    def step(self, fraction: float, detail: str = "") -> None:
        """Show ``fraction`` (in [0, 1], or < 0 when unknown) and a short detail."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._start
        detail = f" {detail}" if detail else ""
        if self.tty:
            if fraction >= 0:
                filled = round(_BAR_WIDTH * min(fraction, 1.0))
                bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
                text = f"\r{self.label} [{bar}] {fraction:4.0%}{detail} {elapsed:5.1f}s"
            else:
                text = f"\r{self.label}{detail} {elapsed:5.1f}s elapsed"
            self.stream.write(text + "\x1b[K")
            self.stream.flush()
            self._drawn = True
            return
        if elapsed - self._last_plain >= _PLAIN_EVERY_S or fraction >= 1.0:
            pct = f" {fraction:.0%}" if fraction >= 0 else ""
            self.stream.write(f"{self.label}:{pct}{detail}, {elapsed:.1f}s\n")
            self.stream.flush()
            self._last_plain = elapsed

    def __call__(self, done: int, fraction: float) -> None:
        """The harness's progress callback: iterations done and the fraction of the run."""
        self.step(fraction, f"{done} it")

    def build(self, progress: object) -> None:
        """TensorRT's build progress (``BuildProgress``: fraction, phase, elapsed_s)."""
        self.step(float(getattr(progress, "fraction", -1.0)), str(getattr(progress, "phase", "")))

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
