"""Progress display for long steps: a bar on a terminal, plain lines when not a TTY (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: plain-line mode prints at most this often, so CI logs stay readable
_PLAIN_EVERY_S = 5.0
_BAR_WIDTH = 30


class Progress:
    """Callable as ``(done, fraction)``; fraction < 0 means unknown (elapsed time is shown)."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._last_plain = -_PLAIN_EVERY_S
        self._drawn = False

    def __call__(self, done: int, fraction: float) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._start
        if self.tty:
            if fraction >= 0:
                filled = round(_BAR_WIDTH * fraction)
                bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
                text = f"\r{self.label} [{bar}] {fraction:4.0%} {done} it {elapsed:5.1f}s"
            else:
                text = f"\r{self.label} {done} it {elapsed:5.1f}s"
            self.stream.write(text)
            self.stream.flush()
            self._drawn = True
            return
        if elapsed - self._last_plain >= _PLAIN_EVERY_S or fraction >= 1.0:
            pct = f" {fraction:.0%}" if fraction >= 0 else ""
            self.stream.write(f"{self.label}:{pct} {done} it, {elapsed:.1f}s\n")
            self.stream.flush()
            self._last_plain = elapsed

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
