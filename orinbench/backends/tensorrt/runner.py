"""The TensorRT runner: engine, execution contexts, buffers and streams, for the harness to time.

It uses the name-based tensor API only (``num_io_tensors``, ``get_tensor_name``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``), which TensorRT 8.5, 8.6, 10.x
and 11.x all have. CUDA goes through :mod:`.cuda` (pycuda, or a fake in tests).

One *lane* is an execution context with its own stream, buffers and completion event; the runner
protocol (``stage_inputs`` / ``enqueue`` / ``fetch_outputs`` / ``synchronize``) drives lane 0.
With ``streams=N`` the runner makes N lanes for :func:`~.throughput.measure_throughput`.

Memory: inputs and outputs have page-locked host buffers and device buffers, copied with
asynchronous H2D/D2H copies on the lane's stream. With ``zero_copy`` (Jetson, where CPU and GPU
share DRAM) the host buffers are mapped page-locked memory and TensorRT reads and writes them in
place: there are no copies and ``stage_inputs`` / ``fetch_outputs`` do nothing. Shape tensors
(``TensorLocation.HOST``) always live in host memory.

``cuda_graph``: after the inputs are loaded, each lane runs ``execute_async_v3`` once (TensorRT
does deferred work on the first call that must not be captured), then captures one call into a
CUDA graph that ``enqueue`` replays. An engine whose enqueue cannot be captured falls back to
plain enqueue, and ``notes`` says so.

Optimization profiles: before TensorRT 9, every execution context of a dynamic-shape engine that
is in use at the same time needs its own optimization profile (8.5: only the first context gets
profile 0 implicitly; 8.6: only while no other context holds it). The runner selects profile *i*
for lane *i* and profile N for the ``--profile-layers`` context
(``set_optimization_profile_async``), so such an engine needs ``streams`` (+1 with
``profiling``) identical profiles: ``orinbench build --contexts N`` makes them, and ``bench``
on an ONNX model asks for them itself. An engine with too few is refused at open with the
command that rebuilds it. From TensorRT 9 every context uses profile 0. Every
``set_input_shape`` is checked: a refusal names the input, the shape and the profile's
min/opt/max.

Shape tensors (inputs TensorRT reads on the host to infer shapes, ``TensorLocation.HOST``) get their
addresses before the output shapes are read: until then TensorRT reports those as -1.

These rules were checked against the TensorRT test double (tests/trt_double, which enforces them
per version) and the upstream headers, never on a real TensorRT.

``spin_wait``: ``synchronize`` polls the completion event instead of blocking on it (trtexec's
``--useSpinWait``): lower wake-up latency, one CPU core busy.

Pipelines chain runners on the device (:class:`orinbench.pipeline.chain.ChainRunner`):
``output_device_buffer`` tells where lane 0 writes an output, ``bind_input_device`` makes lane 0
read an input from another runner's memory (its H2D copy is then skipped, and a CUDA graph is
captured again), ``device_memory`` allocates in the same CUDA context. Every runner opens the
device's primary context, so several can be open at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import _lazy
from ...errors import BackendError, EngineCompatibilityError, ShapeError, UsageError
from ...results.schema import TensorSpec
from ..base import check_feed
from . import compat
from .cuda import CudaApi, DeviceInfo, EventTimer, default_layer
from .engine import deserialize, engine_io, profile_shapes, rebuild_command
from .logger import TrtLog, log_session
from .sidecar import read_sidecar

if TYPE_CHECKING:  # the pipeline package is imported on use, not with the backend
    from ...pipeline.chain import CudaApiMemory, DeviceTensor


@dataclass
class _Binding:
    name: str
    is_input: bool
    on_host: bool
    dtype: np.dtype[Any]
    capacity: int = 0  # elements
    host: np.ndarray | None = None
    device: Any = None
    device_ptr: int = 0
    shape: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    def host_view(self) -> np.ndarray:
        assert self.host is not None
        return self.host[: self.size].reshape(self.shape)


@dataclass
class _Lane:
    context: Any
    stream: Any
    done: Any
    bindings: dict[str, _Binding] = field(default_factory=dict)
    graph: Any = None
    executed: bool = False
    #: the optimization profile the context uses
    profile: int = 0
    #: inputs read from another runner's device memory (bind_input_device): no H2D copy
    external: dict[str, DeviceTensor] = field(default_factory=dict)


class TensorRTRunner:
    """Runs a TensorRT engine. Use as a context manager; see the module docstring."""

    backend = "tensorrt"

    def __init__(
        self,
        engine_path: str | os.PathLike[str],
        *,
        plugins: Sequence[str | os.PathLike[str]] = (),
        zero_copy: bool = False,
        cuda_graph: bool = False,
        spin_wait: bool = False,
        streams: int = 1,
        profiling: bool = False,
        device: int = 0,
        cuda: CudaApi | None = None,
    ) -> None:
        """``profiling``: a ``--profile-layers`` context will be made (see the module docstring:
        before TensorRT 9 it needs an optimization profile of its own, checked at open)."""
        if streams < 1:
            raise UsageError("--streams must be >= 1", fix="e.g. --streams 2")
        self.engine_path = Path(engine_path)
        self._plugins = tuple(plugins)
        self.zero_copy = zero_copy
        self.cuda_graph = cuda_graph
        self.spin_wait = spin_wait
        self.streams = int(streams)
        self.profiling = bool(profiling)
        self.device = int(device)
        self._cuda: CudaApi = cuda if cuda is not None else default_layer()
        self._trt: Any = None
        self._log: TrtLog | None = None
        self._runtime: Any = None
        self._engine: Any = None
        self._lanes: list[_Lane] = []
        #: each context selects its own optimization profile (dynamic engine, TensorRT < 9)
        self._own_profiles = False
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._opened = False
        self._loaded = False
        self.sidecar: dict[str, Any] | None = None
        self.device_info: DeviceInfo | None = None
        #: things the result should mention (CUDA graph fallback, zero-copy on a discrete GPU)
        self.notes: list[str] = []
        #: set by open_tensorrt_runner when it built the engine from ONNX
        self.build_report: Any = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> TensorRTRunner:
        trt = _lazy.tensorrt()
        compat.features(trt)  # refuses TensorRT older than 8.5
        self._trt = trt
        self.sidecar = read_sidecar(self.engine_path)
        plugins = list(self._plugins)
        if not plugins and self.sidecar:
            plugins = [p["path"] for p in (self.sidecar.get("settings") or {}).get("plugins", [])]
        compat.load_plugin_libraries(plugins)
        self.device_info = self._cuda.open(self.device)
        self._opened = True
        try:
            self._open_engine(trt)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _open_engine(self, trt: Any) -> None:
        assert self.device_info is not None
        if self.zero_copy:
            if not self.device_info.can_map_host_memory:
                raise UsageError(
                    f"--zero-copy is not possible on {self.device_info.name}",
                    why="the GPU cannot map host memory",
                    fix="drop --zero-copy",
                )
            if not self.device_info.integrated:
                self.notes.append(
                    f"zero-copy on a discrete GPU ({self.device_info.name}) reads host memory "
                    "over PCIe: expect it to be slower than copies"
                )
        # a session on the process logger for the runner's lifetime (closed in __exit__)
        self._log = log_session(trt, min_severity="WARNING")
        self._runtime = trt.Runtime(self._log.ilogger)
        dla = (self.sidecar or {}).get("settings", {}).get("dla_core")
        if dla is not None:
            self._runtime.DLA_core = int(dla)
        self._engine = deserialize(
            trt,
            self._runtime,
            self._log,
            self.engine_path,
            sidecar=self.sidecar,
            device=self.device_info,
        )
        self._inputs, self._outputs = engine_io(trt, self._engine)
        dynamic = any(
            not spec.is_static or compat.tensor_location_is_host(trt, self._engine, spec.name)
            for spec in self._inputs
        )
        self._own_profiles = dynamic and compat.features(trt).profile_per_context
        if self._own_profiles:
            self._check_profile_count(trt, profiling=self.profiling)
        for index in range(self.streams):
            self._lanes.append(self._new_lane(trt, index))

    def _check_profile_count(self, trt: Any, *, profiling: bool) -> None:
        """Refuse an engine with fewer optimization profiles than contexts in use (TRT < 9)."""
        needed = self.streams + (1 if profiling else 0)
        have = int(self._engine.num_optimization_profiles)
        if have >= needed:
            return
        users = f"{self.streams} stream(s)" + (" + 1 for --profile-layers" if profiling else "")
        settings = (self.sidecar or {}).get("settings") or {}
        raise EngineCompatibilityError(
            f"{self.engine_path} has {have} optimization profile(s); TensorRT {trt.__version__} "
            f"needs one per execution context in use: {needed} ({users})",
            why="before TensorRT 9 each concurrent execution context of a dynamic-shape engine "
            "must select its own optimization profile",
            fix="rebuild it with one profile per context: "
            + rebuild_command(self.sidecar, self.engine_path, contexts=needed)
            + ("" if settings.get("shapes") else " (add the engine's --shapes)")
            + ", or use fewer --streams / no --profile-layers",
        )

    def _select_profile(self, context: Any, index: int, stream: Any, what: str) -> None:
        """Give ``context`` optimization profile ``index`` where each context needs its own."""
        if not self._own_profiles:
            return
        if not context.set_optimization_profile_async(index, self._cuda.stream_handle(stream)):
            raise BackendError(
                f"TensorRT refused optimization profile {index} for the {what}",
                why=self._last_error("set_optimization_profile_async returned False"),
                fix="rebuild the engine with one optimization profile per context "
                "(orinbench build --contexts N)",
            )

    def _new_lane(self, trt: Any, index: int) -> _Lane:
        context = self._engine.create_execution_context()
        if context is None:
            raise BackendError(
                "TensorRT could not create an execution context",
                why=self._last_error("out of GPU memory?"),
                fix="free GPU memory or use fewer --streams",
            )
        # Engines are built with DETAILED profiling verbosity for the inspector; DETAILED NVTX
        # ranges slow enqueue down, so timing runs use layer names only.
        context.nvtx_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
        lane = _Lane(
            context=context,
            stream=self._cuda.stream(),
            done=self._cuda.event(timing=False, blocking=not self.spin_wait),
            profile=index if self._own_profiles else 0,
        )
        self._select_profile(
            context, lane.profile, lane.stream, f"execution context of stream {index}"
        )
        for i in range(int(self._engine.num_io_tensors)):
            name = str(self._engine.get_tensor_name(i))
            lane.bindings[name] = _Binding(
                name=name,
                is_input=compat.is_input(trt, self._engine, name),
                on_host=compat.tensor_location_is_host(trt, self._engine, name),
                dtype=compat.numpy_dtype(trt, self._engine.get_tensor_dtype(name)),
            )
        return lane

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cuda = self._cuda
        for lane in self._lanes:
            if self._opened:
                try:
                    cuda.stream_synchronize(lane.stream)
                except Exception:  # a failed enqueue may have left the stream in error
                    pass
            if lane.graph is not None:
                cuda.free_graph(lane.graph)
                lane.graph = None
            for b in lane.bindings.values():
                if b.device is not None:
                    cuda.free(b.device)
                if b.host is not None:
                    cuda.free(b.host)
                b.device = b.host = None
            lane.external = {}
            lane.context = None
        self._lanes = []
        self._engine = None
        self._runtime = None
        self._loaded = False
        if self._log is not None:
            self._log.close()  # the records stay readable; TensorRT's messages stop coming
        if self._opened:
            self._opened = False
            cuda.close()

    # -- description ---------------------------------------------------------------------------
    @property
    def backend_version(self) -> str:
        trt = self._trt if self._trt is not None else _lazy.tensorrt()
        return str(trt.__version__)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def cuda_graph_active(self) -> bool:
        return bool(self._lanes) and all(lane.graph is not None for lane in self._lanes)

    def profile_shapes(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """(min, opt, max) of every input in optimization profile 0."""
        self._require_open()
        return {s.name: profile_shapes(self._engine, s.name) for s in self._inputs}

    def default_shapes(self) -> dict[str, tuple[int, ...]]:
        """Concrete input shapes to use when the user gives none: the profile's opt shapes."""
        return {name: rng[1] for name, rng in self.profile_shapes().items()}

    # -- buffers -------------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._engine is None:
            raise BackendError(
                "the TensorRT runner is not open", fix="use it inside a 'with' block"
            )

    def _last_error(self, default: str) -> str:
        errors = self._log.errors() if self._log is not None else []
        return errors[-1] if errors else default

    def _ensure(self, b: _Binding, shape: tuple[int, ...]) -> bool:
        """Size ``b`` for ``shape``; True when its addresses changed."""
        b.shape = shape
        need = max(b.size, 1)
        if b.host is not None and b.capacity >= need:
            return False
        cuda = self._cuda
        if b.device is not None:
            cuda.free(b.device)
            b.device = None
        if b.host is not None:
            cuda.free(b.host)
            b.host = None
        mapped = self.zero_copy and not b.on_host
        b.host = cuda.host_alloc((need,), b.dtype, mapped=mapped)
        b.capacity = need
        if b.on_host:
            b.device_ptr = cuda.host_ptr(b.host)
        elif mapped:
            b.device_ptr = cuda.mapped_device_ptr(b.host)
        else:
            b.device = cuda.device_alloc(need * b.dtype.itemsize)
            b.device_ptr = cuda.device_ptr(b.device)
        return True

    def _check_feed(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = check_feed(self._inputs, feed, what="engine")
        ranges = self.profile_shapes()
        out: dict[str, np.ndarray] = {}
        for spec in self._inputs:
            arr = arrays[spec.name]
            lo, _, hi = ranges[spec.name]
            shape = tuple(int(d) for d in arr.shape)
            if len(shape) != len(lo) or not all(
                a <= d <= c for a, d, c in zip(lo, shape, hi, strict=True)
            ):
                raise ShapeError(
                    f"input '{spec.name}' has shape {'x'.join(map(str, shape))}, outside the "
                    f"engine's range {'x'.join(map(str, lo))} .. {'x'.join(map(str, hi))}",
                    fix="pass a shape inside the range, or rebuild with wider --shapes",
                )
            out[spec.name] = arr
        return out

    def load_inputs(self, feed: Mapping[str, np.ndarray]) -> None:
        """Set shapes, (re)allocate buffers, copy ``feed`` into the host buffers of every lane."""
        self._require_open()
        arrays = self._check_feed(feed)
        for lane in self._lanes:
            self._load_lane(lane, arrays)
        self._loaded = True
        if self.cuda_graph:
            for lane in self._lanes:
                self._capture(lane)

    def _load_lane(self, lane: _Lane, arrays: Mapping[str, np.ndarray]) -> None:
        context = lane.context
        if lane.graph is not None:
            # The graph holds the old addresses and shapes.
            self._cuda.free_graph(lane.graph)
            lane.graph = None
        # Inputs bound to another runner's memory go back to this runner's own buffers.
        changed = bool(lane.external)
        lane.external = {}
        for name, arr in arrays.items():
            self._set_input_shape(context, name, tuple(int(d) for d in arr.shape), lane.profile)
            b = lane.bindings[name]
            changed |= self._ensure(b, tuple(arr.shape))
            np.copyto(b.host_view(), arr)
            if b.on_host:
                # A shape tensor: TensorRT reads its value at this host address to infer the
                # output shapes, which stay -1 until the address is set (8.5 NvInferRuntime.h).
                self._set_address(context, b.name, b.device_ptr)
        for b in lane.bindings.values():
            if b.is_input:
                continue
            shape = tuple(int(d) for d in context.get_tensor_shape(b.name))
            if any(d < 0 for d in shape):
                raise BackendError(
                    f"output '{b.name}' has a data-dependent shape {shape}",
                    why="outputs whose size depends on the data need an output allocator",
                    fix="export the model with fixed-size outputs (pad detections to a maximum)",
                )
            changed |= self._ensure(b, shape)
        if changed:
            for b in lane.bindings.values():
                self._set_address(context, b.name, b.device_ptr)
        missing = list(context.infer_shapes())
        if missing:
            raise ShapeError(
                f"TensorRT needs the shapes or values of {', '.join(map(str, missing))}",
                fix="pass every input",
            )

    def _set_input_shape(
        self, context: Any, name: str, shape: tuple[int, ...], profile: int
    ) -> None:
        if context.set_input_shape(name, shape):
            return
        lo, opt, hi = profile_shapes(self._engine, name, profile)

        def text(dims: tuple[int, ...]) -> str:
            return "x".join(map(str, dims))

        raise ShapeError(
            f"TensorRT refused shape {text(shape)} for input '{name}' (optimization profile "
            f"{profile}: min {text(lo)}, opt {text(opt)}, max {text(hi)})",
            why=self._last_error("set_input_shape returned False"),
            fix="pass a shape inside the profile's range, or rebuild with wider --shapes",
        )

    def _set_address(self, context: Any, name: str, ptr: int) -> None:
        if not context.set_tensor_address(name, ptr):
            raise BackendError(
                f"TensorRT refused the buffer of '{name}'",
                why=self._last_error("set_tensor_address returned False"),
                fix="report this as a bug",
            )

    def _capture(self, lane: _Lane) -> None:
        cuda = self._cuda
        self._stage(lane)
        self._enqueue_plain(lane)
        self._fetch(lane)
        cuda.stream_synchronize(lane.stream)
        cuda.begin_capture(lane.stream)
        try:
            ok = bool(lane.context.execute_async_v3(cuda.stream_handle(lane.stream)))
        except Exception:
            ok = False
        if ok:
            try:
                lane.graph = cuda.end_capture(lane.stream)
            except BackendError as exc:
                cuda.clear_last_error()
                self.notes.append(f"CUDA graph capture failed ({exc}); enqueue is not captured")
                lane.graph = None
        else:
            cuda.abort_capture(lane.stream)
            # As trtexec does after a failed capture (sampleInference.cpp: cudaGetLastError "to
            # clean up any CUDA error"): the call TensorRT made while capturing left an error in
            # the CUDA runtime, and TensorRT's next enqueue would report it as its own failure.
            cuda.clear_last_error()
            self.notes.append(
                "the engine has operations that CUDA graph capture does not allow; "
                "running without --cuda-graph"
            )

    # -- one iteration, phase by phase (the harness times them) --------------------------------
    def _stage(self, lane: _Lane) -> None:
        if self.zero_copy:
            return
        for b in lane.bindings.values():
            if b.is_input and not b.on_host and b.name not in lane.external:
                self._cuda.htod_async(b.device_ptr, b.host_view(), lane.stream)

    def _enqueue_plain(self, lane: _Lane) -> None:
        mark = self._log.mark() if self._log is not None else 0
        if not lane.context.execute_async_v3(self._cuda.stream_handle(lane.stream)):
            errors = self._log.errors_since(mark) if self._log is not None else []
            raise BackendError(
                "TensorRT failed to enqueue the inference",
                why=errors[-1] if errors else "execute_async_v3 returned False",
                fix="check the input shapes; run with a fresh engine build",
            )
        lane.executed = True

    def _enqueue(self, lane: _Lane) -> None:
        if lane.graph is not None:
            self._cuda.launch_graph(lane.graph, lane.stream)
        else:
            self._enqueue_plain(lane)

    def _fetch(self, lane: _Lane) -> None:
        if self.zero_copy:
            return
        for b in lane.bindings.values():
            if not b.is_input and not b.on_host:
                self._cuda.dtoh_async(b.host_view(), b.device_ptr, lane.stream)

    def _wait(self, lane: _Lane) -> None:
        cuda = self._cuda
        cuda.record(lane.done, lane.stream)
        if self.spin_wait:
            while not cuda.event_query(lane.done):
                pass
        else:
            cuda.event_synchronize(lane.done)

    def _require_loaded(self) -> _Lane:
        if not self._loaded:
            raise BackendError("no inputs loaded", fix="call load_inputs(feed) first")
        return self._lanes[0]

    def stage_inputs(self) -> None:
        self._stage(self._require_loaded())

    def enqueue(self) -> None:
        self._enqueue(self._require_loaded())

    def fetch_outputs(self) -> None:
        self._fetch(self._require_loaded())

    def synchronize(self) -> None:
        self._wait(self._require_loaded())

    def device_timer(self) -> EventTimer:
        self._require_open()
        return EventTimer(self._cuda, self._lanes[0].stream)

    def outputs_host(self) -> dict[str, np.ndarray]:
        lane = self._require_loaded()
        return {b.name: b.host_view().copy() for b in lane.bindings.values() if not b.is_input}

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.load_inputs(feed)
        lane = self._lanes[0]
        self._stage(lane)
        self._enqueue(lane)
        self._fetch(lane)
        self._wait(lane)
        return self.outputs_host()

    # -- used by throughput and profiling ------------------------------------------------------
    @property
    def lane_count(self) -> int:
        return len(self._lanes)

    def submit(self, index: int, *, transfers: bool = True) -> None:
        """Queue one full inference on lane ``index`` (copies, enqueue), without waiting."""
        lane = self._require_loaded() if index == 0 else self._lanes[index]
        if transfers:
            self._stage(lane)
        self._enqueue(lane)
        if transfers:
            self._fetch(lane)
        self._cuda.record(lane.done, lane.stream)

    def wait(self, index: int) -> None:
        """Wait for the last :meth:`submit` on lane ``index``."""
        lane = self._lanes[index]
        if self.spin_wait:
            while not self._cuda.event_query(lane.done):
                pass
        else:
            self._cuda.event_synchronize(lane.done)

    def profiling_context(self, profiler: Any) -> tuple[Any, Any]:
        """A new execution context bound to lane 0's buffers, with ``profiler`` attached.

        Returns (context, stream handle). A separate context keeps the timed lane untouched.
        """
        lane = self._require_loaded()
        index = len(self._lanes) if self._own_profiles else 0
        if self._own_profiles:  # refused here when the runner was opened without profiling=True
            self._check_profile_count(self._trt, profiling=True)
        context = self._engine.create_execution_context()
        if context is None:
            raise BackendError(
                "TensorRT could not create a profiling context", fix="free GPU memory"
            )
        self._select_profile(context, index, lane.stream, "profiling context")
        context.profiler = profiler
        # inputs first: a shape tensor's address must be set before the outputs' shapes exist
        for b in sorted(lane.bindings.values(), key=lambda x: not x.is_input):
            if b.is_input:
                self._set_input_shape(context, b.name, b.shape, index)
            bound = lane.external.get(b.name)
            self._set_address(context, b.name, bound.ptr if bound is not None else b.device_ptr)
        return context, self._cuda.stream_handle(lane.stream)

    def sync_lane0(self) -> None:
        self._cuda.stream_synchronize(self._lanes[0].stream)

    # -- chaining stages on the device (orinbench.pipeline.chain.ChainRunner) -----------------
    def _device_binding(self, lane: _Lane, name: str, *, want_input: bool) -> _Binding:
        kind = "input" if want_input else "output"
        b = lane.bindings.get(name)
        if b is None or b.is_input != want_input:
            names = sorted(n for n, x in lane.bindings.items() if x.is_input == want_input)
            raise ShapeError(
                f"the engine has no {kind} '{name}'",
                why=f"its {kind}s are {', '.join(names) or 'none'}",
                fix=f"use one of the engine's {kind} names",
            )
        if b.on_host:
            raise ShapeError(
                f"{kind} '{name}' is a shape tensor in host memory, not a device tensor",
                fix="feed it from the host (load_inputs) instead of binding it on the device",
            )
        return b

    def output_device_buffer(self, name: str) -> DeviceTensor:
        """Where lane 0 writes output ``name``: valid, and written by every enqueue, until the
        next :meth:`load_inputs` (call it after one completed run)."""
        from ...pipeline.chain import DeviceTensor

        b = self._device_binding(self._require_loaded(), name, want_input=False)
        return DeviceTensor(name, b.device_ptr, b.shape, b.dtype.name, "cuda", self.device, owner=b)

    def bind_input_device(self, name: str, tensor: DeviceTensor) -> None:
        """Read input ``name`` of lane 0 from ``tensor`` (device memory of this CUDA context) from
        now on; :meth:`stage_inputs` no longer copies it. Lasts until the next
        :meth:`load_inputs`, whose shape and dtype ``tensor`` must have."""
        lane = self._require_loaded()
        b = self._device_binding(lane, name, want_input=True)
        if tensor.device != "cuda" or tensor.device_id != self.device:
            raise ShapeError(
                f"input '{name}' cannot read {tensor.device}:{tensor.device_id} memory",
                why=f"TensorRT reads inputs from the memory of CUDA device {self.device}",
                fix="copy the tensor into this runner's device_memory() first",
            )
        if tuple(tensor.shape) != b.shape or tensor.dtype != b.dtype.name:
            raise ShapeError(
                f"input '{name}' is {b.dtype.name} {'x'.join(map(str, b.shape))}, the tensor "
                f"'{tensor.name}' bound to it is {tensor.dtype} {'x'.join(map(str, tensor.shape))}",
                fix="load inputs of the tensor's shape first, or bind a matching tensor",
            )
        if not lane.context.set_tensor_address(name, int(tensor.ptr)):
            raise BackendError(
                f"TensorRT refused the address of '{tensor.name}' for input '{name}'",
                why=self._last_error("set_tensor_address returned False"),
                fix="bind memory allocated by CUDA (256-byte aligned)",
            )
        lane.external[name] = tensor  # keeps the tensor's owner, and so its memory, alive
        if lane.graph is not None:
            # The graph replays the old address; capture it again with the new one.
            self._cuda.free_graph(lane.graph)
            lane.graph = None
            self._capture(lane)

    def device_memory(self) -> CudaApiMemory:
        """Allocations and synchronous copies in this runner's CUDA context, on lane 0's stream.
        Close it before the runner exits."""
        from ...pipeline.chain import CudaApiMemory

        self._require_open()
        return CudaApiMemory(self._cuda, self._lanes[0].stream, device_id=self.device)
