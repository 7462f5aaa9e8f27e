"""The host part of a result's environment: machine name, CPU, OS and Python.

The device part (Jetson module, JetPack, TensorRT, power mode, clocks) is the telemetry
fingerprint in ``telemetry/device.py``.
"""

from __future__ import annotations

import platform
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results.schema import Environment


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU model as the kernel names it; Arm kernels often lack 'model name' (Orin's do)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Model"):
        for line in text.splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip() == key and v.strip():
                return v.strip()
    return platform.processor() or platform.machine()


def host_environment(
    *, backend: str, backend_version: str, device: Mapping[str, Any] | None = None
) -> Environment:
    return Environment(
        host=socket.gethostname(),
        cpu=cpu_name(),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        python=platform.python_version(),
        backend=backend,
        backend_version=backend_version,
        device=dict(device) if device is not None else None,
    )
