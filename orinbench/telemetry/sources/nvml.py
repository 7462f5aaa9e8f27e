"""Power of a discrete NVIDIA GPU through NVML (nvidia-ml-py), and its total-energy counter.

Two readings exist. ``nvmlDeviceGetPowerUsage`` is, on many recent GPUs (Ampere and later), an
average over the last second, which smears the edges of a short window. The field
``NVML_FI_DEV_POWER_INSTANT`` (driver 535+) is the instantaneous reading; ``reading="auto"`` uses it
where the driver supports it. ``nvmlDeviceGetTotalEnergyConsumption`` (Volta and later) is read at
start and stop, so a trace carries the hardware's own energy figure to compare the integral with.
"""

from __future__ import annotations

from typing import Any

from ... import _lazy
from ...errors import DependencyMissingError, PowerSourceError
from ..powertrace import PollingPowerSource

READINGS = ("auto", "instant", "average")
_FIX = "run on a machine with an NVIDIA GPU and driver, or choose --power none"


def _nvml() -> Any:
    try:
        return _lazy.pynvml()
    except DependencyMissingError as exc:
        raise PowerSourceError(
            "NVML power source is unavailable",
            why="nvidia-ml-py is not installed",
            fix="pip install 'orinbench[nvml]'",
        ) from exc


def nvml_error(exc: BaseException) -> PowerSourceError:
    """A one-line PowerSourceError for an NVML failure (no GPU, no driver, no permission)."""
    return PowerSourceError("NVML power source is unavailable", why=f"NVML: {exc}", fix=_FIX)


def _field_value(nv: Any, value: Any) -> float:
    kind = int(value.valueType)
    if kind == nv.NVML_VALUE_TYPE_DOUBLE:
        return float(value.value.dVal)
    if kind == nv.NVML_VALUE_TYPE_UNSIGNED_LONG:
        return float(value.value.ulVal)
    if kind == nv.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
        return float(value.value.ullVal)
    if kind == nv.NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return float(value.value.sllVal)
    if kind == nv.NVML_VALUE_TYPE_SIGNED_INT:
        return float(value.value.siVal)
    return float(value.value.uiVal)


class NvmlPowerSource(PollingPowerSource):
    """GPU board power of device ``index`` read through NVML by a background thread."""

    name = "nvml"

    def __init__(self, *, period_s: float = 0.02, index: int = 0, reading: str = "auto") -> None:
        super().__init__(period_s=period_s)
        if reading not in READINGS:
            raise PowerSourceError(
                f"unknown NVML reading '{reading}'", fix=f"choose one of {', '.join(READINGS)}"
            )
        self.index = index
        self.requested_reading = reading
        self._nv = _nvml()
        self._handle: Any = None
        self.reading = reading
        self.gpu_name = ""
        self.has_energy_counter = False
        # open once now, so that an unusable NVML fails here (before the run) with a clear line
        self._open()
        try:
            self.gpu_name = self._text(self._nv.nvmlDeviceGetName(self._handle))
            self.reading = self._pick_reading(reading)
            self.has_energy_counter = self._energy_counter_j() is not None
        finally:
            self._release()
        self.total_of = f"GPU board power of GPU {index} ({self.gpu_name}) via NVML"

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def _open(self) -> None:
        nv = self._nv
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise nvml_error(exc) from exc
        try:
            count = nv.nvmlDeviceGetCount()
            if self.index >= count:
                raise PowerSourceError(
                    "NVML power source is unavailable",
                    why=f"GPU index {self.index} requested but NVML sees {count} GPU(s)",
                    fix=_FIX,
                )
            self._handle = nv.nvmlDeviceGetHandleByIndex(self.index)
        except nv.NVMLError as exc:
            nv.nvmlShutdown()
            raise nvml_error(exc) from exc
        except PowerSourceError:
            nv.nvmlShutdown()
            raise

    def _release(self) -> None:
        self._handle = None
        try:
            self._nv.nvmlShutdown()
        except self._nv.NVMLError:
            pass

    def _instant_w(self) -> float | None:
        nv = self._nv
        try:
            values = nv.nvmlDeviceGetFieldValues(self._handle, [nv.NVML_FI_DEV_POWER_INSTANT])
        except (nv.NVMLError, AttributeError):
            return None
        v = values[0]
        if int(v.nvmlReturn) != nv.NVML_SUCCESS:
            return None
        mw = _field_value(nv, v)
        return mw / 1000.0 if mw > 0 else None

    def _pick_reading(self, reading: str) -> str:
        if reading == "average":
            return "average"
        if self._instant_w() is not None:
            return "instant"
        if reading == "instant":
            raise PowerSourceError(
                "NVML instantaneous power is not supported by this GPU or driver",
                why="field NVML_FI_DEV_POWER_INSTANT returned no value",
                fix="use the NVML source's 'average' reading (nvmlDeviceGetPowerUsage)",
            )
        return "average"

    def read(self) -> tuple[float, dict[str, float]]:
        nv = self._nv
        w: float | None = None
        if self.reading == "instant":
            w = self._instant_w()
            if w is None:
                raise OSError("NVML_FI_DEV_POWER_INSTANT stopped returning values")
        else:
            try:
                w = nv.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            except nv.NVMLError as exc:
                raise OSError(f"nvmlDeviceGetPowerUsage: {exc}") from exc
        return w, {"GPU": w}

    def _energy_counter_j(self) -> float | None:
        nv = self._nv
        try:
            return float(nv.nvmlDeviceGetTotalEnergyConsumption(self._handle)) / 1000.0
        except nv.NVMLError:
            return None

    def _notes(self) -> tuple[str, ...]:
        if self.reading == "instant":
            return ("NVML instantaneous power (NVML_FI_DEV_POWER_INSTANT)",)
        return ("nvmlDeviceGetPowerUsage (a 1 s average on many recent GPUs)",)

    def describe(self) -> str:
        return (
            f"NVML GPU {self.index} ({self.gpu_name}), {self.reading} power every "
            f"{self.period_s:g} s"
        )
