"""Telemetry: power sources, the device fingerprint, and stable-condition checks.

* :mod:`.power` — :class:`PowerSample`, :class:`PowerTrace`, :class:`PowerSource`,
  :func:`summarize_power` (the result's ``power`` section), :func:`open_power_source`.
* :mod:`.sources` — ``sysfs`` (INA3221 hwmon files), ``jtop`` (jetson-stats, in a child process),
  ``tegrastats``, ``nvml`` (discrete GPUs).
* :mod:`.device` — :func:`device_fingerprint` for ``Environment.device``.
* :mod:`.conditions` — :class:`ConditionsMonitor`, :func:`conditions_warnings`,
  :func:`system_check` (``orinbench system check``), :func:`require_tuned`.
* :mod:`.window` — :class:`TelemetryWindow`: power and conditions around one window.

Nothing here imports jtop, NVML or TensorRT at import time.
"""

from __future__ import annotations

from .conditions import (
    ConditionsMonitor,
    ConditionsTrace,
    SystemCheck,
    conditions_warnings,
    require_tuned,
    system_check,
)
from .device import device_fingerprint, is_jetson
from .power import (
    PowerSample,
    PowerSource,
    PowerTrace,
    measure_idle,
    power_warnings,
    summarize_power,
)
from .select import POWER_SOURCES, open_power_source
from .window import TelemetryWindow

__all__ = [
    "POWER_SOURCES",
    "ConditionsMonitor",
    "ConditionsTrace",
    "PowerSample",
    "PowerSource",
    "PowerTrace",
    "SystemCheck",
    "TelemetryWindow",
    "conditions_warnings",
    "device_fingerprint",
    "is_jetson",
    "measure_idle",
    "open_power_source",
    "power_warnings",
    "require_tuned",
    "summarize_power",
    "system_check",
]
