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

from ..errors import ShapeError
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


def check_feed(
    specs: tuple[TensorSpec, ...], feed: Mapping[str, np.ndarray], *, what: str = "model"
) -> dict[str, np.ndarray]:
    """Exactly the inputs of ``specs``, each of the right dtype, as contiguous arrays.

    Shapes are each backend's own business (static dimensions for ONNX Runtime, optimization
    profile ranges for TensorRT); names and dtypes are checked here, once, for all of them.
    """
    names = {s.name for s in specs}
    unknown = sorted(set(feed) - names)
    missing = sorted(names - set(feed))
    if unknown or missing:
        raise ShapeError(
            f"the inputs do not match the {what}",
            why=(f"unknown {unknown} " if unknown else "")
            + (f"missing {missing}" if missing else ""),
            fix=f"provide exactly the {what}'s inputs {sorted(names)}",
        )
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        # np.ascontiguousarray would turn a rank-0 array into shape (1,); np.require keeps it
        arr = np.require(feed[spec.name], requirements="C")
        if str(arr.dtype) != spec.dtype:
            raise ShapeError(
                f"input '{spec.name}' has dtype {arr.dtype}, the {what} expects {spec.dtype}",
                fix="convert the data or regenerate the .npz",
            )
        out[spec.name] = arr
    return out
