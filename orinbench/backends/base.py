"""The runner protocol that every backend implements, and the harness drives.

A runner owns its resources (session or engine, execution context, buffers, stream) for the span of
a ``with`` block, and never times itself: the benchmark harness owns the clock. To let the harness
time the phases of one inference separately, as trtexec reports them, an iteration is split into:

    stage_inputs()  host -> device copies of the inputs loaded by ``load_inputs`` (H2D)
    enqueue()       launch the inference (asynchronous on GPU backends)
    fetch_outputs() device -> host copies of the outputs (D2H), still asynchronous
    synchronize()   wait until everything launched has finished

For a synchronous backend such as ONNX Runtime on the CPU, ``enqueue`` does all the work and the
other phases are no-ops. ``device_timer()`` returns a :class:`DeviceTimer` placing events on the
runner's stream (CUDA events for TensorRT) or None when the backend has no device clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from ..results.schema import TensorSpec


@runtime_checkable
class DeviceTimer(Protocol):
    """Events on the runner's stream around the enqueue; ``elapsed_ms`` is read after sync."""

    def record_start(self) -> None: ...
    def record_stop(self) -> None: ...
    def elapsed_ms(self) -> float: ...


@runtime_checkable
class Runner(Protocol):
    #: backend name as stored in results ("onnxruntime", "tensorrt")
    backend: str

    def __enter__(self) -> Runner: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    @property
    def backend_version(self) -> str: ...
    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...
    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    def load_inputs(self, feed: Mapping[str, np.ndarray]) -> None:
        """Set the host-side inputs that the next iterations use (validates names and shapes)."""

    def stage_inputs(self) -> None: ...
    def enqueue(self) -> None: ...
    def fetch_outputs(self) -> None: ...
    def synchronize(self) -> None: ...
    def device_timer(self) -> DeviceTimer | None: ...

    def outputs_host(self) -> dict[str, np.ndarray]:
        """The outputs of the last completed iteration, as host arrays (copies)."""

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Convenience for accuracy checks: one untimed inference, outputs as host arrays."""
