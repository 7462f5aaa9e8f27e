"""An NVML double shared by the tests: what orinbench reads of NVML (pynvml's names), for a GPU
of constant power ``watts`` whose energy counter integrates it over wall-clock time.

``instant=False`` makes the instant-power field fail (older drivers), ``counter=False`` makes the
energy counter unsupported; the fingerprint calls (driver, CUDA, clocks, temperature) answer
fixed values.
"""

from __future__ import annotations

import time
import types


class FakeNvml(types.SimpleNamespace):
    class NVMLError(Exception):
        pass

    NVML_SUCCESS = 0
    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_VALUE_TYPE_DOUBLE = 0
    NVML_VALUE_TYPE_UNSIGNED_INT = 1
    NVML_VALUE_TYPE_UNSIGNED_LONG = 2
    NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3
    NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4
    NVML_VALUE_TYPE_SIGNED_INT = 5
    NVML_CLOCK_GRAPHICS = 0
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, watts: float = 60.0, *, instant: bool = True, counter: bool = True) -> None:
        super().__init__()
        self.watts = watts
        self.instant = instant
        self.counter = counter
        self.t0 = time.monotonic()
        self.inits = 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlShutdown(self):
        self.inits -= 1

    def nvmlSystemGetDriverVersion(self):
        return b"550.54"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12040

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return object()

    def nvmlDeviceGetName(self, h):
        return b"Fake GPU"

    def nvmlDeviceGetClockInfo(self, h, kind):
        return 1500

    def nvmlDeviceGetMaxClockInfo(self, h, kind):
        return 1980

    def nvmlDeviceGetTemperature(self, h, kind):
        return 40

    def nvmlDeviceGetPowerUsage(self, h):
        return int(self.watts * 1000)

    def nvmlDeviceGetFieldValues(self, h, ids):
        value = types.SimpleNamespace(uiVal=int(self.watts * 1000))
        ret = 0 if self.instant else 3
        return [types.SimpleNamespace(nvmlReturn=ret, valueType=1, value=value)]

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.counter:
            raise self.NVMLError("Not Supported")
        return int((time.monotonic() - self.t0) * self.watts * 1000)  # mJ
