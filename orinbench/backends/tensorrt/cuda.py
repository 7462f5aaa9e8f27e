"""The CUDA layer of the TensorRT backend: pycuda for memory, streams and events, in one module.

Everything the runner needs from CUDA goes through :class:`CudaApi`; :class:`PyCudaLayer` is the
implementation on pycuda (imported through ``orinbench._lazy``), and tests pass a fake with the
same methods (``TensorRTRunner(..., cuda=fake)``), so that no other module touches pycuda.

pycuda has no stream-capture API, so CUDA graphs (``--cuda-graph``) call six functions of the CUDA
driver (``libcuda``) through ctypes, on the stream handles pycuda created. They live here too.
After a failed capture, CUDA's *runtime* last error is cleared (``cudaGetLastError``, as trtexec
does): see :class:`_RuntimeLastError`.

Streams, events and graphs are opaque objects owned by the layer: callers only pass them back.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ... import _lazy
from ...errors import BackendError

#: cuStreamBeginCapture mode: only this thread's CUDA calls are forbidden while capturing (as
#: trtexec captures), so a power-sampling thread that touches CUDA cannot break the capture.
_CAPTURE_MODE_THREAD_LOCAL = 1
#: CU_STREAM_NON_BLOCKING: the stream does not synchronise with the legacy default stream, which
#: TensorRT asks for ("using default stream may lead to performance issues").
_STREAM_NON_BLOCKING = 1


@dataclass(frozen=True)
class DeviceInfo:
    """What the sidecar and the compatibility check need to know about a GPU."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    integrated: bool
    can_map_host_memory: bool
    total_memory_bytes: int

    @property
    def cc_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "compute_capability": self.cc_text,
            "integrated": self.integrated,
            "total_memory_bytes": self.total_memory_bytes,
        }


@runtime_checkable
class CudaApi(Protocol):
    """What the TensorRT runner uses of CUDA. Pointers are ints; the rest is opaque."""

    def open(self, device: int) -> DeviceInfo:
        """Make ``device`` current (its primary context, which TensorRT uses too).

        Calls nest: several runners (one per pipeline stage) may each open the same layer, and
        each :meth:`close` undoes the latest open that is still in effect."""

    def close(self) -> None:
        """Undo the latest :meth:`open`. Its buffers, streams and events must have been freed."""

    def device_info(self, device: int) -> DeviceInfo: ...

    def versions(self) -> dict[str, str]:
        """``{"cuda_driver": "12.2", "cuda_pycuda_built_with": "12.2"}`` or similar."""

    def stream(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def stream_synchronize(self, stream: Any) -> None: ...

    def event(self, *, timing: bool, blocking: bool) -> Any: ...
    def record(self, event: Any, stream: Any) -> None: ...
    def event_synchronize(self, event: Any) -> None: ...
    def event_query(self, event: Any) -> bool: ...
    def elapsed_ms(self, start: Any, stop: Any) -> float: ...

    def device_alloc(self, nbytes: int) -> Any: ...
    def device_ptr(self, buffer: Any) -> int: ...
    def host_alloc(self, shape: Sequence[int], dtype: np.dtype[Any], *, mapped: bool) -> np.ndarray:
        """Page-locked host array; ``mapped`` also maps it into the device address space."""

    def mapped_device_ptr(self, host: np.ndarray) -> int: ...
    def host_ptr(self, host: np.ndarray) -> int: ...
    def free(self, buffer: Any) -> None: ...

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...
    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None: ...

    def begin_capture(self, stream: Any) -> None: ...
    def end_capture(self, stream: Any) -> Any:
        """End the capture and return an instantiated, launchable graph."""

    def abort_capture(self, stream: Any) -> None:
        """End a capture that failed and drop what was captured (the driver's
        ``cuStreamEndCapture``; the CUDA runtime's last error is left alone)."""

    def clear_last_error(self) -> str | None:
        """``cudaGetLastError``: read and clear the CUDA runtime's last error on this thread (the
        error a call TensorRT made while capturing left behind); its name, or None."""

    def launch_graph(self, graph: Any, stream: Any) -> None: ...
    def free_graph(self, graph: Any) -> None: ...


def _version_text(v: int) -> str:
    """CUDA encodes versions as 1000*major + 10*minor (12020 -> "12.2")."""
    return f"{v // 1000}.{(v % 1000) // 10}"


class _DriverGraphs:
    """cuStreamBeginCapture / cuStreamEndCapture / cuGraphInstantiateWithFlags / cuGraphLaunch.

    ``cuStreamBeginCapture`` is a macro for ``cuStreamBeginCapture_v2`` since CUDA 10.1, and
    ``cuGraphInstantiateWithFlags`` exists since CUDA 11.4 (JetPack 5), so those are the symbols
    looked up. Each call's CUresult is checked and named in the error.
    """

    def __init__(self) -> None:
        name = ctypes.util.find_library("cuda") or "libcuda.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise BackendError(
                "CUDA graphs need the CUDA driver library",
                why=f"loading {name} failed ({exc})",
                fix="run on a machine with the NVIDIA driver, or drop --cuda-graph",
            ) from exc
        vp, u64, c_int = ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_int
        self._begin = self._fn(lib, "cuStreamBeginCapture_v2", [vp, c_int])
        self._end = self._fn(lib, "cuStreamEndCapture", [vp, ctypes.POINTER(vp)])
        self._inst = self._fn(lib, "cuGraphInstantiateWithFlags", [ctypes.POINTER(vp), vp, u64])
        self._launch = self._fn(lib, "cuGraphLaunch", [vp, vp])
        self._exec_destroy = self._fn(lib, "cuGraphExecDestroy", [vp])
        self._destroy = self._fn(lib, "cuGraphDestroy", [vp])

    @staticmethod
    def _fn(lib: ctypes.CDLL, name: str, argtypes: list[Any]) -> Any:
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise BackendError(
                f"the CUDA driver has no {name}",
                why="it is older than CUDA 11.4",
                fix="update the driver (JetPack 5 or newer), or drop --cuda-graph",
            ) from exc
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int
        return fn

    @staticmethod
    def _check(result: int, what: str) -> None:
        if result != 0:
            raise BackendError(
                f"CUDA graph {what} failed", why=f"CUresult {result}", fix="drop --cuda-graph"
            )

    def begin(self, handle: int) -> None:
        self._check(self._begin(ctypes.c_void_p(handle), _CAPTURE_MODE_THREAD_LOCAL), "capture")

    def end(self, handle: int) -> Any:
        graph = ctypes.c_void_p()
        self._check(self._end(ctypes.c_void_p(handle), ctypes.byref(graph)), "capture")
        exec_ = ctypes.c_void_p()
        try:
            self._check(self._inst(ctypes.byref(exec_), graph, 0), "instantiation")
        finally:
            # The executable graph is independent of the graph it was made from.
            self._destroy(graph)
        return exec_

    def abort(self, handle: int) -> None:
        graph = ctypes.c_void_p()
        if self._end(ctypes.c_void_p(handle), ctypes.byref(graph)) == 0 and graph.value:
            self._destroy(graph)

    def launch(self, exec_: Any, handle: int) -> None:
        self._check(self._launch(exec_, ctypes.c_void_p(handle)), "launch")

    def free(self, exec_: Any) -> None:
        self._exec_destroy(exec_)


#: the runtime library as its file appears in /proc/self/maps (libcudart.so.11.0, .so.12, ...)
_CUDART_IN_MAPS = re.compile(r"\s(/\S*/libcudart\.so[.\d]*)\s*$")


def loaded_cudart(maps_text: str) -> str | None:
    """The path of the CUDA runtime library already mapped into this process, if any."""
    for line in maps_text.splitlines():
        m = _CUDART_IN_MAPS.search(line)
        if m:
            return m.group(1)
    return None


class _RuntimeLastError:
    """``cudaGetLastError`` of the CUDA runtime that TensorRT uses, through ctypes.

    Why: a call TensorRT makes while a stream is capturing and that capture forbids fails with
    an error that the CUDA runtime also keeps as the thread's "last error". orinbench ends the
    capture through the driver (pycuda has no capture API), which has no such state and cannot
    clear it; TensorRT checks the runtime's last error after its launches, so its next enqueue
    may report the stale capture error as its own failure. trtexec calls ``cudaGetLastError()``
    after a failed capture "to clean up any CUDA error" (sampleInference.cpp, 8.5.3).

    The last error lives in the runtime library instance: only the ``libcudart.so`` that
    TensorRT loaded (its libraries link it dynamically) holds it, so that copy is found in
    /proc/self/maps and opened again (dlopen returns the loaded one). When no runtime is mapped,
    TensorRT uses a static runtime that nothing outside it can reach, and nothing is done.
    Verified against the upstream sources and the fake CUDA layer only, never on a device.
    """

    def __init__(self, maps_path: str = "/proc/self/maps") -> None:
        self._maps_path = maps_path
        self._fn: Any = None
        self._name: Any = None
        self._looked = False

    def _load(self) -> None:
        self._looked = True
        try:
            with open(self._maps_path, encoding="utf-8", errors="replace") as fh:
                path = loaded_cudart(fh.read())
        except OSError:
            return
        if path is None:
            return
        try:
            lib = ctypes.CDLL(path)
            fn = lib.cudaGetLastError
            name = lib.cudaGetErrorName
        except (OSError, AttributeError):
            return
        fn.argtypes, fn.restype = [], ctypes.c_int
        name.argtypes, name.restype = [ctypes.c_int], ctypes.c_char_p
        self._fn, self._name = fn, name

    def clear(self) -> str | None:
        if not self._looked:
            self._load()
        if self._fn is None:
            return None
        code = int(self._fn())
        if code == 0:
            return None
        raw = self._name(code)
        return raw.decode(errors="replace") if raw else f"cudaError {code}"


class PyCudaLayer:
    """:class:`CudaApi` on pycuda. ``open`` retains the device's primary context and pushes it;
    opens nest (one retain and push each), so one layer can serve several open runners."""

    def __init__(self) -> None:
        self._cuda: Any = None
        #: one retained primary context per open() not yet closed, latest last
        self._contexts: list[Any] = []
        self._graphs: _DriverGraphs | None = None
        self._last_error = _RuntimeLastError()

    @property
    def _drv(self) -> Any:
        if self._cuda is None:
            cuda = _lazy.pycuda_driver()
            cuda.init()
            self._cuda = cuda
        return self._cuda

    def open(self, device: int) -> DeviceInfo:
        drv = self._drv
        count = drv.Device.count()
        if not 0 <= device < count:
            raise BackendError(
                f"CUDA device {device} does not exist",
                why=f"this machine has {count} CUDA device(s)",
                fix="pass --device 0" if count else "run on a machine with an NVIDIA GPU",
            )
        # TensorRT works in the primary context (the CUDA runtime's); pycuda's make_context
        # would create a second one, and buffers from it would be invalid inside TensorRT.
        # Retaining it again for every open is what lets opens nest: the primary context stays
        # alive until the last runner that uses it has closed.
        context = drv.Device(device).retain_primary_context()
        context.push()
        self._contexts.append(context)
        return self.device_info(device)

    def close(self) -> None:
        if not self._contexts:
            return
        context = self._contexts.pop()
        with contextlib.suppress(Exception):
            self._drv.Context.pop()
        with contextlib.suppress(Exception):
            context.detach()

    def device_info(self, device: int) -> DeviceInfo:
        drv = self._drv
        dev = drv.Device(device)
        attr = drv.device_attribute
        major, minor = dev.compute_capability()
        return DeviceInfo(
            index=device,
            name=str(dev.name()),
            compute_capability=(int(major), int(minor)),
            integrated=bool(dev.get_attribute(attr.INTEGRATED)),
            can_map_host_memory=bool(dev.get_attribute(attr.CAN_MAP_HOST_MEMORY)),
            total_memory_bytes=int(dev.total_memory()),
        )

    def versions(self) -> dict[str, str]:
        drv = self._drv
        built = drv.get_version()
        return {
            "cuda_driver": _version_text(int(drv.get_driver_version())),
            "cuda_pycuda_built_with": ".".join(str(x) for x in built[:2]),
        }

    # -- streams and events ----------------------------------------------------------------
    def stream(self) -> Any:
        return self._drv.Stream(flags=_STREAM_NON_BLOCKING)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def event(self, *, timing: bool, blocking: bool) -> Any:
        flags = self._drv.event_flags
        value = 0
        if not timing:
            value |= int(flags.DISABLE_TIMING)
        if blocking:
            value |= int(flags.BLOCKING_SYNC)
        return self._drv.Event(flags=value)

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_synchronize(self, event: Any) -> None:
        event.synchronize()

    def event_query(self, event: Any) -> bool:
        return bool(event.query())

    def elapsed_ms(self, start: Any, stop: Any) -> float:
        return float(stop.time_since(start))

    # -- memory ----------------------------------------------------------------------------
    def device_alloc(self, nbytes: int) -> Any:
        try:
            return self._drv.mem_alloc(max(int(nbytes), 1))
        except self._drv.MemoryError as exc:
            raise BackendError(
                f"cannot allocate {nbytes} bytes of GPU memory",
                why=str(exc),
                fix="free GPU memory (other processes) or use smaller input shapes",
            ) from exc

    def device_ptr(self, buffer: Any) -> int:
        return int(buffer)

    def host_alloc(self, shape: Sequence[int], dtype: np.dtype[Any], *, mapped: bool) -> np.ndarray:
        flags = int(self._drv.host_alloc_flags.DEVICEMAP) if mapped else 0
        return self._drv.pagelocked_empty(tuple(shape), dtype, mem_flags=flags)

    def mapped_device_ptr(self, host: np.ndarray) -> int:
        base = host.base
        if base is None or not hasattr(base, "get_device_pointer"):
            raise BackendError(
                "internal: the host buffer is not mapped page-locked memory",
                fix="report this as a bug",
            )
        return int(base.get_device_pointer())

    def host_ptr(self, host: np.ndarray) -> int:
        return int(host.ctypes.data)

    def free(self, buffer: Any) -> None:
        if isinstance(buffer, np.ndarray):
            base = buffer.base
            if base is not None and hasattr(base, "free"):
                base.free()
        else:
            buffer.free()

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._drv.memcpy_htod_async(dst, src, stream)

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._drv.memcpy_dtoh_async(dst, src, stream)

    # -- CUDA graphs -----------------------------------------------------------------------
    def _graph_api(self) -> _DriverGraphs:
        if self._graphs is None:
            self._graphs = _DriverGraphs()
        return self._graphs

    def begin_capture(self, stream: Any) -> None:
        self._graph_api().begin(self.stream_handle(stream))

    def end_capture(self, stream: Any) -> Any:
        return self._graph_api().end(self.stream_handle(stream))

    def abort_capture(self, stream: Any) -> None:
        self._graph_api().abort(self.stream_handle(stream))

    def clear_last_error(self) -> str | None:
        return self._last_error.clear()

    def launch_graph(self, graph: Any, stream: Any) -> None:
        self._graph_api().launch(graph, self.stream_handle(stream))

    def free_graph(self, graph: Any) -> None:
        self._graph_api().free(graph)


def default_layer() -> CudaApi:
    """The CUDA layer used when none is passed in: pycuda."""
    return PyCudaLayer()


class EventTimer:
    """:class:`~orinbench.backends.base.DeviceTimer` on two CUDA events on one stream."""

    def __init__(self, cuda: CudaApi, stream: Any) -> None:
        self._cuda = cuda
        self._stream = stream
        self._start = cuda.event(timing=True, blocking=False)
        self._stop = cuda.event(timing=True, blocking=False)

    def record_start(self) -> None:
        self._cuda.record(self._start, self._stream)

    def record_stop(self) -> None:
        self._cuda.record(self._stop, self._stream)

    def elapsed_ms(self) -> float:
        # The harness reads this after the runner synchronised; waiting on the stop event again
        # costs nothing then, and makes the value safe to read at any other time.
        self._cuda.event_synchronize(self._stop)
        return self._cuda.elapsed_ms(self._start, self._stop)
