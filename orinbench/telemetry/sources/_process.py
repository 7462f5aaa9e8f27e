"""Stopping the helper processes that the jtop and tegrastats sources run."""

from __future__ import annotations

import contextlib
import subprocess


def stop_process(proc: subprocess.Popen[str], *, timeout_s: float = 5.0) -> None:
    """Terminate ``proc`` politely, then kill it; never leave a sampler running behind a run."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait(timeout=timeout_s)
