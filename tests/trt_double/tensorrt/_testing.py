"""Test-only controls of the TensorRT double (not part of TensorRT's API).

``config``: the GPU the double runs on, its DLA cores, how long an inference of a freshly built
engine takes on the simulated GPU (``inference_ms``; with ``tactic_jitter`` > 0 it varies between
builds that time their own tactics, see ``_Build._inference_ms``), and
``ignore_calibration_cache``: the builder reads an INT8 calibration cache but takes no scale from
it, logging every network tensor as missing one (what TensorRT does with a cache it drops without
saying so; the engine builds, with no INT8 layer); ``accept_other_release_caches``: the builder
takes the scales of a cache written by another TensorRT major.minor instead of skipping it (by
default the double skips such a cache, "trt will skip the file if it is incompatible",
NVIDIA/TensorRT#1378; which releases real TensorRT accepts is not public, so tests cover both).
``cuda``: the CUDA runtime the double reads and
writes memory and queues work through (the tests' FakeCuda registers itself); without one,
``execute_async_v3`` refuses to run. ``plugins``: op types whose plugin creators are "registered"
(what a dlopen of a plugin library does for real). ``calls``: a count of API calls, for tests to
assert on. ``calibration_shapes``: the input shapes the last implicit calibration read its batches
with. ``built_inference_ms``: the simulated inference time of each engine built, in build order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Config:
    device_name: str = "Orin (nvgpu)"
    compute_capability: str = "8.7"
    dla_cores: int = 2
    inference_ms: float = 2.0
    tactic_jitter: float = 0.0
    ignore_calibration_cache: bool = False
    accept_other_release_caches: bool = False


class CudaRuntime(Protocol):
    def check_range(self, ptr: int, nbytes: int, *, device_accessible: bool) -> bool: ...
    def read(self, ptr: int, nbytes: int) -> bytes: ...
    def write(self, ptr: int, data: bytes) -> None: ...
    def enqueue(
        self, stream: int, fn: Callable[[], None], *, duration_ms: float, label: str
    ) -> bool:
        """Queue work; False when the runtime refuses it (its error becomes the last error)."""

    def take_last_error(self) -> str | None:
        """cudaGetLastError: the calling thread's last runtime error, cleared by reading it."""

    def is_capturing(self, stream: int) -> bool: ...
    def synchronize(self, stream: int) -> None: ...
    def valid_stream(self, stream: int) -> bool: ...


config = Config()
cuda: CudaRuntime | None = None
plugins: set[str] = set()
calls: Counter[str] = Counter()
calibration_shapes: dict[str, tuple[int, ...]] = {}
built_inference_ms: list[float] = []


def register_plugin_ops(ops: Iterable[str]) -> None:
    plugins.update(ops)


def reset() -> None:
    global cuda, config
    config = Config()
    cuda = None
    plugins.clear()
    calls.clear()
    calibration_shapes.clear()
    built_inference_ms.clear()


def set_cuda(runtime: Any) -> None:
    global cuda
    cuda = runtime
