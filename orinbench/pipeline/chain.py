"""What a runner must offer so that one stage's outputs feed the next stage on the device.

A pipeline never moves an intermediate tensor through the host when the backend can avoid it: the
producer's output buffer is bound, by address, as the consumer's input. Two small protocols carry
that, beside the :class:`~orinbench.backends.base.Runner` protocol:

:class:`ChainRunner` (implemented by the runner of each backend)
    ``output_device_buffer(name)`` -> :class:`DeviceTensor`: where output ``name`` lives. It is
    called after ``load_inputs`` and at least one completed iteration (enqueue + synchronize); the
    buffer stays at that address, and every later enqueue writes it, until the next
    ``load_inputs`` or ``bind_input_device``.

    ``bind_input_device(name, tensor)``: read input ``name`` from ``tensor`` (an address in the
    runner's device memory) instead of the host array given to ``load_inputs``. From then on
    ``stage_inputs()`` does not copy that input. The tensor's memory is the caller's; the runner
    keeps a reference to ``tensor`` (its ``owner``) while bound.

    ``device_memory()`` -> :class:`DeviceMemory` for the memory the runner's tensors live in.

:class:`DeviceMemory`
    Allocation and synchronous host<->device copies, used only around ``custom`` stages written
    for the host (numpy) when the backend's memory is not host-accessible.

ONNX Runtime implements both in :mod:`orinbench.pipeline.ort_chain`; the TensorRT runner
implements them in ``orinbench/backends/tensorrt/runner.py`` (docs/pipelines.md lists the
contract it follows).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..backends.base import Runner

#: device names of memory the CPU can read and write in place (no copy needed for numpy)
HOST_DEVICES = frozenset({"cpu"})


@dataclass(frozen=True)
class DeviceTensor:
    """A tensor in a runner's memory: its address, concrete shape and numpy dtype name.

    ``device`` is ``"cpu"`` for host memory, ``"cuda"`` for CUDA device memory. ``owner`` is what
    keeps the memory alive (a numpy array, a pycuda allocation, an OrtValue); hold the tensor and
    the memory stays valid.
    """

    name: str
    ptr: int
    shape: tuple[int, ...]
    dtype: str
    device: str = "cpu"
    device_id: int = 0
    owner: Any = field(default=None, compare=False, repr=False)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def host_accessible(self) -> bool:
        return self.device in HOST_DEVICES

    @classmethod
    def from_array(cls, name: str, arr: np.ndarray) -> DeviceTensor:
        """Wrap a C-contiguous host array (no copy); the tensor keeps the array alive."""
        if not arr.flags.c_contiguous:
            raise ValueError(f"tensor {name!r} must be C-contiguous to be bound by address")
        return cls(
            name=name,
            ptr=int(arr.ctypes.data),
            shape=tuple(int(d) for d in arr.shape),
            dtype=arr.dtype.name,
            device="cpu",
            owner=arr,
        )


@runtime_checkable
class DeviceMemory(Protocol):
    """Allocation and synchronous copies in one runner's memory space."""

    #: True when tensors in this memory can be read as numpy arrays without a copy
    host_accessible: bool

    def allocate(self, name: str, shape: Sequence[int], dtype: str) -> DeviceTensor: ...

    def host_array(self, shape: Sequence[int], dtype: str) -> np.ndarray:
        """A host array fit for fast copies from/to this memory (page-locked for CUDA)."""

    def copy_to_host(self, src: DeviceTensor, dst: np.ndarray) -> None:
        """Copy ``src`` into the host array ``dst`` (same shape and dtype); returns when done."""

    def copy_from_host(self, src: np.ndarray, dst: DeviceTensor) -> None:
        """Copy the host array ``src`` into ``dst`` (same shape and dtype); returns when done."""


@runtime_checkable
class ChainRunner(Runner, Protocol):
    """A :class:`~orinbench.backends.base.Runner` whose outputs can feed another's inputs."""

    def output_device_buffer(self, name: str) -> DeviceTensor: ...

    def bind_input_device(self, name: str, tensor: DeviceTensor) -> None: ...

    def device_memory(self) -> DeviceMemory: ...


def host_view(tensor: DeviceTensor) -> np.ndarray | None:
    """A numpy view of ``tensor`` without copying, or None when its memory is not host memory."""
    if not tensor.host_accessible:
        return None
    owner = tensor.owner
    if (
        isinstance(owner, np.ndarray)
        and int(owner.ctypes.data) == tensor.ptr
        and tuple(owner.shape) == tensor.shape
        and owner.dtype.name == tensor.dtype
    ):
        return owner
    # Memory owned by something else (an OrtValue, a mapped buffer): view it by address. The
    # tensor's owner keeps it alive as long as the caller holds the tensor.
    buf = (ctypes.c_char * tensor.nbytes).from_address(tensor.ptr)
    return np.frombuffer(memoryview(buf), dtype=np.dtype(tensor.dtype)).reshape(tensor.shape)


class CpuMemory:
    """Host memory: numpy arrays, bound by address. Copies are plain ``np.copyto``."""

    host_accessible = True

    def allocate(self, name: str, shape: Sequence[int], dtype: str) -> DeviceTensor:
        return DeviceTensor.from_array(name, np.zeros(tuple(shape), dtype=np.dtype(dtype)))

    def host_array(self, shape: Sequence[int], dtype: str) -> np.ndarray:
        return np.empty(tuple(shape), dtype=np.dtype(dtype))

    def copy_to_host(self, src: DeviceTensor, dst: np.ndarray) -> None:
        view = host_view(src)
        assert view is not None  # CpuMemory only ever holds host tensors
        np.copyto(dst, view)

    def copy_from_host(self, src: np.ndarray, dst: DeviceTensor) -> None:
        view = host_view(dst)
        assert view is not None
        np.copyto(view, src)


def is_chain_runner(runner: object) -> bool:
    """True when ``runner`` has the three chaining methods (a structural check)."""
    return all(
        callable(getattr(runner, m, None))
        for m in ("output_device_buffer", "bind_input_device", "device_memory")
    )


class _Allocation:
    """One device allocation of a :class:`CudaApiMemory`; freed by the memory's ``close``."""

    __slots__ = ("buffer", "nbytes")

    def __init__(self, buffer: Any, nbytes: int) -> None:
        self.buffer = buffer
        self.nbytes = nbytes


class CudaApiMemory:
    """:class:`DeviceMemory` on the TensorRT backend's CUDA layer (``backends/tensorrt/cuda.py``).

    ``cuda`` needs ``device_alloc``, ``device_ptr``, ``host_alloc``, ``free``, ``htod_async``,
    ``dtoh_async`` and ``stream_synchronize``; copies go on ``stream`` and wait for it, so they
    are synchronous to the caller. Allocations live until :meth:`close` (call it before the CUDA
    context goes).
    """

    host_accessible = False

    def __init__(self, cuda: Any, stream: Any, *, device_id: int = 0) -> None:
        self.cuda = cuda
        self.stream = stream
        self.device_id = device_id
        self._allocations: list[_Allocation] = []

    def allocate(self, name: str, shape: Sequence[int], dtype: str) -> DeviceTensor:
        shape_t = tuple(int(d) for d in shape)
        nbytes = int(np.prod(shape_t, dtype=np.int64)) * np.dtype(dtype).itemsize
        alloc = _Allocation(self.cuda.device_alloc(max(nbytes, 1)), nbytes)
        self._allocations.append(alloc)
        return DeviceTensor(
            name=name,
            ptr=int(self.cuda.device_ptr(alloc.buffer)),
            shape=shape_t,
            dtype=np.dtype(dtype).name,
            device="cuda",
            device_id=self.device_id,
            owner=alloc,
        )

    def host_array(self, shape: Sequence[int], dtype: str) -> np.ndarray:
        """Page-locked host memory (asynchronous copies need it), freed by :meth:`close`."""
        arr = self.cuda.host_alloc(tuple(int(d) for d in shape), np.dtype(dtype), mapped=False)
        self._allocations.append(_Allocation(arr, int(arr.nbytes)))
        return arr  # type: ignore[no-any-return]

    def copy_to_host(self, src: DeviceTensor, dst: np.ndarray) -> None:
        _check_same(src, dst)
        self.cuda.dtoh_async(dst, src.ptr, self.stream)
        self.cuda.stream_synchronize(self.stream)

    def copy_from_host(self, src: np.ndarray, dst: DeviceTensor) -> None:
        arr = np.require(src, requirements="C")  # keeps rank 0 (ascontiguousarray: shape (1,))
        _check_same(dst, arr)
        self.cuda.htod_async(dst.ptr, arr, self.stream)
        self.cuda.stream_synchronize(self.stream)

    def close(self) -> None:
        """Free every allocation made here."""
        while self._allocations:
            self.cuda.free(self._allocations.pop().buffer)


def _check_same(t: DeviceTensor, arr: np.ndarray) -> None:
    if tuple(arr.shape) != t.shape or arr.dtype.name != t.dtype:
        raise ValueError(
            f"tensor {t.name!r} is {t.dtype} {t.shape}, the host array {arr.dtype} {arr.shape}"
        )
