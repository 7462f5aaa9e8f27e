"""A strict fake of orinbench's CUDA layer (``CudaApi``) and of the CUDA runtime the double uses.

Memory is real host memory (so the TensorRT double can read inputs and write outputs at the
addresses it is given), but it is tracked: a pointer outside any live allocation, a double free or
a leak is caught, and copies from pageable memory are counted (``pageable_copies``). Work is
asynchronous as on a GPU: copies and inferences are queued per stream and run only when something
waits (stream or event synchronize, or an event polled twice), so reading outputs before
synchronising reads stale data.
Each queued operation advances its stream's simulated clock by a known duration (copies by bytes
over ``bandwidth_gbps``, inferences by the engine's ``inference_ms``), and CUDA events read that
clock, so GPU times in tests are exact. Stream capture records operations into a graph that a
launch replays; synchronising a capturing stream is an error, as in CUDA.
CUDA's runtime keeps a "last error" that a failed call sets and ``cudaGetLastError`` reads and
clears: work refused during a capture (``capture_unsupported``) sets it and invalidates the
capture; ending the capture through the driver (``abort_capture``, as orinbench does) leaves it
set, so the TensorRT double's next enqueue fails on it, until ``clear_last_error`` (orinbench's
``cudaGetLastError``, as trtexec calls after a failed capture) or that enqueue reads it.
With ``realtime`` set, running queued work also takes its simulated duration in wall-clock time
(a sleep), so that host latencies follow the engines' inference times (repeat-build tests).
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orinbench.backends.tensorrt.cuda import DeviceInfo


class FakeCudaError(RuntimeError):
    pass


@dataclass
class _Alloc:
    ptr: int
    nbytes: int
    kind: str  # "device" | "pinned" | "mapped"
    raw: np.ndarray
    freed: bool = False


@dataclass
class _Op:
    label: str
    duration_ms: float
    fn: Callable[[], None] | None
    event: Any = None


@dataclass
class _Stream:
    handle: int
    queue: list[_Op] = field(default_factory=list)
    clock_ms: float = 0.0
    capture: list[_Op] | None = None
    capture_invalidated: bool = False


@dataclass
class _Event:
    timing: bool
    blocking: bool
    stream: _Stream | None = None
    done: bool = True
    t_ms: float | None = None
    polls: int = 0


@dataclass
class _Graph:
    ops: list[_Op]
    freed: bool = False


class _DeviceBuffer:
    __slots__ = ("alloc",)

    def __init__(self, alloc: _Alloc) -> None:
        self.alloc = alloc


def _aligned(nbytes: int, align: int) -> tuple[np.ndarray, int]:
    raw = np.empty(nbytes + align, dtype=np.uint8)
    raw.fill(0xCD)  # garbage, like uninitialised GPU memory
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + nbytes], raw.ctypes.data + offset


class FakeCuda:
    """Implements every method of ``orinbench.backends.tensorrt.cuda.CudaApi``, strictly."""

    def __init__(
        self,
        *,
        name: str = "Orin (nvgpu)",
        compute_capability: tuple[int, int] = (8, 7),
        integrated: bool = True,
        can_map_host_memory: bool = True,
        bandwidth_gbps: float = 10.0,
        devices: int = 1,
    ) -> None:
        self.name = name
        self.compute_capability = compute_capability
        self.integrated = integrated
        self.can_map = can_map_host_memory
        self.bandwidth = bandwidth_gbps
        self.devices = devices
        self.depth = 0
        self.allocs: list[_Alloc] = []
        self.streams: dict[int, _Stream] = {}
        self.ran: Counter[str] = Counter()
        self.graph_launches = 0
        self.pageable_copies = 0
        #: how ``realtime`` waits; a test swaps in a virtual clock's ``advance`` so that host
        #: latencies follow the simulated durations exactly, whatever the machine's load
        self.sleep: Callable[[float], None] = time.sleep
        #: make any work queued while a stream captures fail (an engine that cannot be captured)
        self.capture_unsupported = False
        #: sleep for each operation's simulated duration when it runs (see the module docstring)
        self.realtime = False
        #: the CUDA runtime's last error (cudaGetLastError); the fake runs on one thread
        self.last_error: str | None = None
        #: how often clear_last_error found an error to clear
        self.cleared_errors = 0
        self._next_handle = 0x1000

    # -- context -------------------------------------------------------------------------------
    def open(self, device: int) -> DeviceInfo:
        if not 0 <= device < self.devices:
            from orinbench.errors import BackendError

            raise BackendError(f"CUDA device {device} does not exist", fix="pass --device 0")
        self.depth += 1
        return self.device_info(device)

    def close(self) -> None:
        if self.depth <= 0:
            raise FakeCudaError("close() without open(): context stack underflow")
        self.depth -= 1

    def _need_context(self) -> None:
        if self.depth <= 0:
            raise FakeCudaError("CUDA call without a current context (open() was not called)")

    def device_info(self, device: int) -> DeviceInfo:
        return DeviceInfo(
            index=device,
            name=self.name,
            compute_capability=self.compute_capability,
            integrated=self.integrated,
            can_map_host_memory=self.can_map,
            total_memory_bytes=8 << 30,
        )

    def versions(self) -> dict[str, str]:
        return {"cuda_driver": "12.6", "cuda_pycuda_built_with": "12.6"}

    # -- streams -------------------------------------------------------------------------------
    def stream(self) -> _Stream:
        self._need_context()
        s = _Stream(handle=self._next_handle)
        self._next_handle += 0x10
        self.streams[s.handle] = s
        return s

    def _s(self, stream: Any) -> _Stream:
        if not isinstance(stream, _Stream) or self.streams.get(stream.handle) is not stream:
            raise TypeError(f"not a stream of this FakeCuda: {stream!r}")
        return stream

    def stream_handle(self, stream: Any) -> int:
        return self._s(stream).handle

    def _push(self, s: _Stream, op: _Op) -> None:
        if s.capture is not None:
            s.capture.append(op)
        else:
            s.queue.append(op)

    def _run(self, s: _Stream, until: _Op | None = None) -> None:
        if s.capture is not None:
            raise FakeCudaError("operation not permitted when stream is capturing")
        while s.queue:
            op = s.queue.pop(0)
            s.clock_ms += op.duration_ms
            if self.realtime and op.duration_ms > 0:
                self.sleep(op.duration_ms / 1000.0)
            if op.fn is not None:
                op.fn()
            if op.event is not None:
                op.event.t_ms = s.clock_ms
                op.event.done = True
            self.ran[op.label] += 1
            if op is until:
                return

    def stream_synchronize(self, stream: Any) -> None:
        self._run(self._s(stream))

    # -- events --------------------------------------------------------------------------------
    def event(self, *, timing: bool, blocking: bool) -> _Event:
        self._need_context()
        return _Event(timing=bool(timing), blocking=bool(blocking))

    def _e(self, event: Any) -> _Event:
        if not isinstance(event, _Event):
            raise TypeError(f"not an event of this FakeCuda: {event!r}")
        return event

    def record(self, event: Any, stream: Any) -> None:
        e, s = self._e(event), self._s(stream)
        e.stream, e.done, e.t_ms, e.polls = s, False, None, 0
        self._push(s, _Op("event", 0.0, None, event=e))

    def _run_to(self, e: _Event) -> None:
        if e.done or e.stream is None:
            return
        op = next((o for o in e.stream.queue if o.event is e), None)
        if op is None:
            raise FakeCudaError("event recorded into a capture cannot be waited on")
        self._run(e.stream, until=op)

    def event_synchronize(self, event: Any) -> None:
        self._run_to(self._e(event))

    def event_query(self, event: Any) -> bool:
        e = self._e(event)
        if e.done:
            return True
        e.polls += 1
        self.ran["query"] += 1
        if e.polls >= 2:  # "the GPU finished while the host was polling"
            self._run_to(e)
            return True
        return False

    def elapsed_ms(self, start: Any, stop: Any) -> float:
        a, b = self._e(start), self._e(stop)
        if not (a.timing and b.timing):
            raise FakeCudaError("cudaErrorInvalidResourceHandle: event created without timing")
        if not (a.done and b.done) or a.t_ms is None or b.t_ms is None:
            raise FakeCudaError("cudaErrorNotReady: event not completed")
        if a.stream is not b.stream:
            raise FakeCudaError("the fake only times events of one stream")
        return b.t_ms - a.t_ms

    # -- memory --------------------------------------------------------------------------------
    def device_alloc(self, nbytes: int) -> _DeviceBuffer:
        self._need_context()
        raw, ptr = _aligned(max(int(nbytes), 1), 256)
        alloc = _Alloc(ptr, int(nbytes), "device", raw)
        self.allocs.append(alloc)
        return _DeviceBuffer(alloc)

    def device_ptr(self, buffer: Any) -> int:
        if not isinstance(buffer, _DeviceBuffer) or buffer.alloc.freed:
            raise FakeCudaError(f"not a live device buffer: {buffer!r}")
        return buffer.alloc.ptr

    def host_alloc(self, shape: Sequence[int], dtype: Any, *, mapped: bool) -> np.ndarray:
        self._need_context()
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if len(shape) else 1
        if mapped and not self.can_map:
            raise FakeCudaError("cudaErrorMemoryAllocation: this device cannot map host memory")
        raw, ptr = _aligned(max(count * dt.itemsize, 1), 4096)
        alloc = _Alloc(ptr, count * dt.itemsize, "mapped" if mapped else "pinned", raw)
        self.allocs.append(alloc)
        return raw[: count * dt.itemsize].view(dt).reshape(tuple(shape))

    def _find(self, ptr: int, nbytes: int) -> _Alloc | None:
        for a in self.allocs:
            if not a.freed and a.ptr <= ptr and ptr + nbytes <= a.ptr + max(a.nbytes, 1):
                return a
        return None

    def _pinned(self, host: np.ndarray) -> _Alloc:
        if not isinstance(host, np.ndarray):
            raise TypeError("host memory must be a numpy array")
        a = self._find(int(host.ctypes.data), int(host.nbytes))
        if a is None or a.kind == "device":
            raise FakeCudaError("not page-locked host memory of this FakeCuda")
        return a

    def _host_side(self, host: np.ndarray) -> bool:
        """CUDA allows async copies with pageable memory (they are synchronous for the host); they
        are counted, because the runner promises page-locked buffers."""
        if not isinstance(host, np.ndarray) or not host.flags.c_contiguous:
            raise TypeError("host memory must be a C-contiguous numpy array")
        a = self._find(int(host.ctypes.data), int(host.nbytes))
        if a is not None and a.kind == "device":
            raise FakeCudaError("a device buffer passed as host memory")
        if a is None:
            self.pageable_copies += 1
        return a is None

    def mapped_device_ptr(self, host: np.ndarray) -> int:
        a = self._pinned(host)
        if a.kind != "mapped":
            raise FakeCudaError("host memory was not allocated mapped (DEVICEMAP)")
        return int(host.ctypes.data)

    def host_ptr(self, host: np.ndarray) -> int:
        self._pinned(host)
        return int(host.ctypes.data)

    def free(self, buffer: Any) -> None:
        if isinstance(buffer, _DeviceBuffer):
            alloc = buffer.alloc
        elif isinstance(buffer, np.ndarray):
            alloc = self._pinned(buffer)
            if alloc.ptr != int(buffer.ctypes.data):
                raise FakeCudaError("free() of an interior pointer")
        else:
            raise TypeError(f"cannot free {buffer!r}")
        if alloc.freed:
            raise FakeCudaError("double free")
        alloc.freed = True

    def live_allocations(self) -> int:
        return sum(1 for a in self.allocs if not a.freed)

    def _copy_ms(self, nbytes: int) -> float:
        return nbytes / (self.bandwidth * 1e9) * 1e3

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        s = self._s(stream)
        pageable = self._host_side(src)
        n = int(src.nbytes)
        a = self._find(int(dst), n)
        if a is None or a.kind == "pinned":
            raise FakeCudaError(f"htod to an invalid device address {dst:#x} (+{n})")
        if pageable:  # staged at the call, as CUDA does: the caller may reuse src at once
            data = src.tobytes()
            self._push(s, _Op("htod", self._copy_ms(n), lambda: ctypes.memmove(int(dst), data, n)))
            return
        src_ptr = int(src.ctypes.data)
        self._push(s, _Op("htod", self._copy_ms(n), lambda: ctypes.memmove(int(dst), src_ptr, n)))

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        s = self._s(stream)
        pageable = self._host_side(dst)
        n = int(dst.nbytes)
        a = self._find(int(src), n)
        if a is None or a.kind == "pinned":
            raise FakeCudaError(f"dtoh from an invalid device address {src:#x} (+{n})")
        dst_ptr = int(dst.ctypes.data)
        self._push(s, _Op("dtoh", self._copy_ms(n), lambda: ctypes.memmove(dst_ptr, int(src), n)))
        if pageable:  # synchronous for the host, as CUDA does with pageable memory
            self._run(s)

    # -- graphs --------------------------------------------------------------------------------
    def begin_capture(self, stream: Any) -> None:
        s = self._s(stream)
        if s.capture is not None:
            raise FakeCudaError("stream is already capturing")
        if s.queue:
            raise FakeCudaError("the fake captures only on an idle stream (synchronize first)")
        s.capture = []
        s.capture_invalidated = False

    def end_capture(self, stream: Any) -> _Graph:
        s = self._s(stream)
        if s.capture is None:
            raise FakeCudaError("end_capture() without begin_capture()")
        ops, s.capture = s.capture, None
        if s.capture_invalidated:
            from orinbench.errors import BackendError

            raise BackendError(
                "CUDA graph capture failed",
                why="CUresult 901 (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)",
                fix="drop --cuda-graph",
            )
        return _Graph(ops=ops)

    def abort_capture(self, stream: Any) -> None:
        # cuStreamEndCapture through the driver: the runtime's last error is left as it is
        s = self._s(stream)
        s.capture = None
        s.capture_invalidated = False

    def clear_last_error(self) -> str | None:
        """cudaGetLastError: read and clear the runtime's last error."""
        err, self.last_error = self.last_error, None
        if err is not None:
            self.cleared_errors += 1
        return err

    def launch_graph(self, graph: Any, stream: Any) -> None:
        if not isinstance(graph, _Graph) or graph.freed:
            raise FakeCudaError("launch of a freed or foreign graph")
        s = self._s(stream)
        self.graph_launches += 1
        for op in graph.ops:
            self._push(s, _Op(f"graph:{op.label}", op.duration_ms, op.fn, event=op.event))

    def free_graph(self, graph: Any) -> None:
        if not isinstance(graph, _Graph) or graph.freed:
            raise FakeCudaError("double free of a graph")
        graph.freed = True

    # -- what the TensorRT double calls (tensorrt._testing.CudaRuntime) --------------------------
    def check_range(self, ptr: int, nbytes: int, *, device_accessible: bool) -> bool:
        a = self._find(int(ptr), max(int(nbytes), 1))
        if a is None:
            return False
        return a.kind in ("device", "mapped") if device_accessible else a.kind != "device"

    def read(self, ptr: int, nbytes: int) -> bytes:
        if self._find(ptr, max(nbytes, 1)) is None:
            raise FakeCudaError(f"read of unallocated memory {ptr:#x}")
        return ctypes.string_at(ptr, nbytes)

    def write(self, ptr: int, data: bytes) -> None:
        if self._find(ptr, max(len(data), 1)) is None:
            raise FakeCudaError(f"write to unallocated memory {ptr:#x}")
        ctypes.memmove(ptr, data, len(data))

    def enqueue(
        self, stream: int, fn: Callable[[], None], *, duration_ms: float, label: str
    ) -> bool:
        s = self.streams.get(stream)
        if s is None:
            raise FakeCudaError(f"invalid stream handle {stream:#x}")
        if s.capture is not None and self.capture_unsupported:
            # what a real unsupported call does: cudaErrorStreamCaptureUnsupported becomes the
            # last error and the capture is invalidated
            self.last_error = (
                "cudaErrorStreamCaptureUnsupported: operation not permitted when stream is "
                "capturing"
            )
            s.capture_invalidated = True
            return False
        self._push(s, _Op(label, duration_ms, fn))
        return True

    def take_last_error(self) -> str | None:
        err, self.last_error = self.last_error, None
        return err

    def is_capturing(self, stream: int) -> bool:
        s = self.streams.get(stream)
        return s is not None and s.capture is not None

    def synchronize(self, stream: int) -> None:
        self._run(self.streams[stream])

    def valid_stream(self, stream: int) -> bool:
        return stream in self.streams
