# ruff: noqa: E501 - messages are TensorRT's own, kept on one line so that they can be grepped
"""The TensorRT double's classes, for the version selected in ``_version``.

Only what orinbench uses is modelled, with the semantics of the real bindings where orinbench
relies on them (return values, None on failure, messages in the log, version differences).
Members that a version lacks are removed from the classes at import (``_gated``); classes use
``__slots__`` so that assigning a property that does not exist (``config.max_workspace_size`` on
10.x) raises AttributeError as the real bindings do.
"""

from __future__ import annotations

import enum
import json
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _plan, _testing
from ._version import CURRENT, TAG, VERSION, has

# --------------------------------------------------------------------------------------------
# helpers


def _gated(gates: dict[str, tuple[str | None, str | None]]) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        for name, (since, until) in gates.items():
            if name not in cls.__dict__:
                raise AssertionError(f"gate for unknown member {cls.__name__}.{name}")
            if not has(since, until):
                delattr(cls, name)
        return cls

    return deco


def _enum(name: str, members: Sequence[str | tuple[str, str | None, str | None]]) -> Any:
    values = []
    for i, m in enumerate(members):
        member, since, until = (m, None, None) if isinstance(m, str) else m
        if has(since, until):
            values.append((member, i))
    return enum.IntEnum(name, values)


class Dims(tuple):  # type: ignore[type-arg]
    """trt.Dims: iterable and indexable like the real one."""

    __slots__ = ()


def _dims(values: Sequence[int]) -> Dims:
    return Dims(int(v) for v in values)


def _require_init(obj: Any, what: str) -> None:
    if not getattr(obj, "_trt_init", False):
        raise TypeError(
            f"{type(obj).__name__}.__init__() must be called when overriding __init__ ({what})"
        )


# --------------------------------------------------------------------------------------------
# enums

DataType = _enum(
    "DataType",
    ["FLOAT", "HALF", ("BF16", "10.0", None), "INT8", "INT32", ("INT64", "10.0", None), "BOOL",
     "UINT8", ("FP8", "8.6", None), ("INT4", "10.0", None)],
)  # fmt: skip
TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
TensorLocation = _enum("TensorLocation", ["DEVICE", "HOST"])
MemoryPoolType = _enum(
    "MemoryPoolType",
    ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM",
     ("TACTIC_DRAM", "8.6", None)],
)  # fmt: skip
BuilderFlag = _enum(
    "BuilderFlag",
    [("FP16", None, "11.0"), ("INT8", None, "11.0"), "DEBUG", "GPU_FALLBACK",
     ("STRICT_TYPES", None, "10.0"), "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
     "SAFETY_SCOPE", ("OBEY_PRECISION_CONSTRAINTS", None, "11.0"),
     ("PREFER_PRECISION_CONSTRAINTS", None, "11.0"), "DIRECT_IO",
     ("VERSION_COMPATIBLE", "8.6", None), ("BF16", "10.0", "11.0")],
)  # fmt: skip
NetworkDefinitionCreationFlag = _enum(
    "NetworkDefinitionCreationFlag",
    [("EXPLICIT_BATCH", None, "11.0"), ("EXPLICIT_PRECISION", None, "10.0"),
     ("STRONGLY_TYPED", "10.0", None)],
)  # fmt: skip
DeviceType = _enum("DeviceType", ["GPU", "DLA"])
ProfilingVerbosity = _enum(
    "ProfilingVerbosity",
    ["LAYER_NAMES_ONLY", "DETAILED", "NONE", ("DEFAULT", None, "10.0"), ("VERBOSE", None, "10.0")],
)
LayerInformationFormat = _enum("LayerInformationFormat", ["ONELINE", "JSON"])
CalibrationAlgoType = _enum(
    "CalibrationAlgoType",
    ["LEGACY_CALIBRATION", "ENTROPY_CALIBRATION", "ENTROPY_CALIBRATION_2", "MINMAX_CALIBRATION"],
)
ErrorCode = _enum(
    "ErrorCode",
    ["SUCCESS", "INTERNAL_ERROR", "MEM_ALLOC_FAILED", "MODEL_DESERIALIZE_FAILED", "INVALID_VALUE",
     "INVALID_GRAPH", "INVALID_NODE", "UNSUPPORTED_GRAPH", "UNSUPPORTED_NODE"],
)  # fmt: skip

_NP = {
    "FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
    "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8,
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# logging


class ILogger:
    __slots__ = ("__dict__", "_trt_init")
    Severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

    def __init__(self) -> None:
        self._trt_init = True

    def log(self, severity: Any, msg: str) -> None:
        raise RuntimeError('Tried to call pure virtual function "ILogger::log"')


for _m in ILogger.Severity:
    setattr(ILogger, _m.name, _m)


class Logger(ILogger):
    __slots__ = ("_messages", "min_severity")

    def __init__(self, min_severity: Any = ILogger.Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity
        self._messages: list[tuple[Any, str]] = []

    def log(self, severity: Any, msg: str) -> None:
        if int(severity) <= int(self.min_severity):
            self._messages.append((severity, msg))


Logger.Severity = ILogger.Severity
for _m in ILogger.Severity:
    setattr(Logger, _m.name, _m)


def _log(logger: ILogger, severity: str, msg: str) -> None:
    try:
        logger.log(getattr(ILogger.Severity, severity), msg)
    except Exception as exc:  # the real trampoline prints and carries on
        _testing.calls["logger_exception"] += 1
        _testing.calls[f"logger_exception:{type(exc).__name__}"] += 1


def _check_logger(logger: Any) -> ILogger:
    if not isinstance(logger, ILogger):
        raise TypeError(
            f"incompatible function arguments: logger must be tensorrt.ILogger, not {type(logger).__name__}"
        )
    _require_init(logger, "ILogger")
    return logger


#: TensorRT 8.x keeps ONE logger pointer per process (NVIDIA/TensorRT#1475, 8.0.1 to 8.6): a
#: Builder or Runtime made while another one is alive keeps using the logger that one was given,
#: and the new logger gets nothing. The double tracks the live owners (weakly: an object that is
#: collected no longer holds the pointer) and the pointer. From 9/10 every object uses its own
#: logger (the double's reading; the audit marks 10.x as uncertain).
_LOGGER_OWNERS: weakref.WeakSet[Any] = weakref.WeakSet()
_GLOBAL_LOGGER: list[ILogger] = []

#: TensorRT's own warning, logged to the logger it keeps (NVIDIA/TensorRT#1475)
LOGGER_DIFFERS = (
    "The logger passed into {api} differs from one already provided for an existing builder, "
    "runtime, or refitter. TensorRT maintains only a single logger pointer at any given time, so "
    "the existing value, which can be retrieved with getLogger(), will be used instead. In order "
    "to use a new logger, first destroy all existing builder, runner or refitter objects."
)


def _adopt_logger(owner: Any, logger: Any, api: str) -> ILogger:
    """The logger ``owner`` (a new Builder or Runtime) really uses."""
    logger = _check_logger(logger)
    if CURRENT >= (9, 0):
        return logger
    if len(_LOGGER_OWNERS) == 0:
        _GLOBAL_LOGGER[:] = [logger]
    elif _GLOBAL_LOGGER and _GLOBAL_LOGGER[0] is not logger:
        kept = _GLOBAL_LOGGER[0]
        _testing.calls["logger_ignored"] += 1
        _log(kept, "WARNING", LOGGER_DIFFERS.format(api=api))
        logger = kept
    _LOGGER_OWNERS.add(owner)
    return logger


def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
    _check_logger(logger)
    if not isinstance(namespace, str):
        raise TypeError("namespace must be a str")
    _testing.calls["init_libnvinfer_plugins"] += 1
    return True


# --------------------------------------------------------------------------------------------
# interfaces users subclass


class IProfiler:
    __slots__ = ("__dict__", "_trt_init")

    def __init__(self) -> None:
        self._trt_init = True

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        raise RuntimeError('Tried to call pure virtual function "IProfiler::report_layer_time"')


class IProgressMonitor:
    __slots__ = ("__dict__", "_trt_init")

    def __init__(self) -> None:
        self._trt_init = True

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        raise RuntimeError("pure virtual")

    def step_complete(self, phase_name: str, step: int) -> bool:
        raise RuntimeError("pure virtual")

    def phase_finish(self, phase_name: str) -> None:
        raise RuntimeError("pure virtual")


class IInt8Calibrator:
    __slots__ = ("__dict__", "_trt_init")
    _ALGO = "ENTROPY_CALIBRATION_2"

    def __init__(self) -> None:
        self._trt_init = True

    def get_algorithm(self) -> Any:
        return getattr(CalibrationAlgoType, self._ALGO)


class IInt8EntropyCalibrator2(IInt8Calibrator):
    __slots__ = ()
    _ALGO = "ENTROPY_CALIBRATION_2"


class IInt8EntropyCalibrator(IInt8Calibrator):
    __slots__ = ()
    _ALGO = "ENTROPY_CALIBRATION"


class IInt8MinMaxCalibrator(IInt8Calibrator):
    __slots__ = ()
    _ALGO = "MINMAX_CALIBRATION"


class IInt8LegacyCalibrator(IInt8Calibrator):
    __slots__ = ()
    _ALGO = "LEGACY_CALIBRATION"


_CACHE_ALGOS = {
    "ENTROPY_CALIBRATION_2": "EntropyCalibration2",
    "ENTROPY_CALIBRATION": "EntropyCalibration",
    "MINMAX_CALIBRATION": "MinMaxCalibration",
    "LEGACY_CALIBRATION": "LegacyCalibration",
}


#: ops whose outputs the double's calibration writes no scale for (evidence in _calibrate;
#: Reshape by analogy with Flatten, an assumption)
UNSCALED_OPS = frozenset({"Identity", "Flatten", "Reshape", "Softmax"})

#: TensorRT's warning for a network tensor without a calibration scale (8.x and 10.x wording,
#: e.g. NVIDIA/TensorRT#3131, #3659)
MISSING_SCALE = (
    "Missing scale and zero-point for tensor {}, expect fall back to non-int8 implementation for "
    "any layer consuming or producing given tensor"
)


def _cache_release(code: str) -> tuple[int, int] | None:
    """major.minor of a cache header's version code (8601 -> (8, 6), 100300 -> (10, 3)); None
    for placeholders such as 8XXX."""
    if not code.isdigit():
        return None
    n = int(code)
    if n >= 100000:
        return n // 10000, (n // 100) % 100
    return n // 1000, (n // 100) % 10


def _version_code() -> str:
    major, minor, patch = (int(x) for x in VERSION.split(".")[:3])
    return (
        str(major * 10000 + minor * 100 + patch)
        if major >= 10
        else str(major * 1000 + minor * 100 + patch)
    )


# --------------------------------------------------------------------------------------------
# network and parser


class IHostMemory(bytes):
    """Serialized data; supports the buffer protocol like the real IHostMemory."""

    __slots__ = ()

    @property
    def nbytes(self) -> int:
        return len(self)

    @property
    def dtype(self) -> Any:
        return DataType.UINT8


class ITensor:
    __slots__ = ("_dtype", "_name", "_shape")

    def __init__(self, name: str, shape: Sequence[int], dtype: Any) -> None:
        self._name, self._shape, self._dtype = name, _dims(shape), dtype

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> Dims:
        return self._shape

    @property
    def dtype(self) -> Any:
        return self._dtype


class INetworkDefinition:
    __slots__ = ("_flags", "_inputs", "_name", "_nodes", "_onnx", "_outputs", "_parsed", "_types")

    def __init__(self, flags: int) -> None:
        self._flags = int(flags)
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._nodes: list[Any] = []
        self._onnx = b""
        self._types: dict[str, int] = {}
        self._parsed = False
        self._name = "Unnamed Network 0"

    def _flag(self, name: str) -> bool:
        member = getattr(NetworkDefinitionCreationFlag, name, None)
        return member is not None and bool(self._flags & (1 << int(member)))

    @property
    def _strongly_typed(self) -> bool:
        return CURRENT >= (11, 0) or self._flag("STRONGLY_TYPED")

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    @property
    def num_layers(self) -> int:
        return len(self._nodes)

    @property
    def name(self) -> str:
        return self._name

    def get_input(self, index: int) -> ITensor | None:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def get_output(self, index: int) -> ITensor | None:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None


@_gated({"node_name": ("10.0", None), "node_operator": ("10.0", None)})
class ParserError:
    __slots__ = ("_code", "_desc", "_node", "_node_name", "_op")

    def __init__(self, code: Any, desc: str, node: int, node_name: str = "", op: str = "") -> None:
        self._code, self._desc, self._node, self._node_name, self._op = (
            code,
            desc,
            node,
            node_name,
            op,
        )

    def code(self) -> Any:
        return self._code

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._op

    def file(self) -> str:
        return "ModelImporter.cpp"

    def line(self) -> int:
        return 0

    def func(self) -> str:
        return "importNode"

    def __str__(self) -> str:
        return f"In node {self._node}: {self._code.name}: {self._desc}"


#: standard ONNX ops the double's parser does not import (TensorRT does not support them either)
_UNSUPPORTED = frozenset(
    {"Unique", "StringNormalizer", "TfIdfVectorizer", "SequenceAt", "SequenceConstruct",
     "SequenceInsert", "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement",
     "OptionalHasElement"}
)  # fmt: skip
_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8", 3: "INT8"}


@_gated({"supports_model": (None, "11.0")})
class OnnxParser:
    __slots__ = ("_errors", "_logger", "_network")

    def __init__(self, network: INetworkDefinition, logger: Any) -> None:
        if not isinstance(network, INetworkDefinition):
            raise TypeError("network must be an INetworkDefinition")
        self._network = network
        self._logger = _check_logger(logger)
        self._errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError | None:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors = []

    def supports_model(self, model: bytes, path: str | None = None) -> Any:
        raise NotImplementedError("the double does not model supports_model")

    def parse_from_file(self, model: str) -> bool:
        if not isinstance(model, str):
            raise TypeError("parse_from_file(model: str)")
        _testing.calls["parse_from_file"] += 1
        try:
            with open(model, "rb") as fh:
                data = fh.read()
        except OSError:
            return self._fail(
                ErrorCode.MODEL_DESERIALIZE_FAILED, f"Failed to open file: {model}", -1
            )
        return self.parse(data, model)

    def _fail(self, code: Any, desc: str, node: int, name: str = "", op: str = "") -> bool:
        self._errors.append(ParserError(code, desc, node, name, op))
        where = (
            f"In node {node} with name: {name} and operator: {op}"
            if CURRENT >= (10, 0)
            else f"In node {node}"
        )
        _log(self._logger, "ERROR", f"ModelImporter.cpp:0: {where}: {code.name}: {desc}")
        return False

    def parse(self, model: bytes, path: str | None = None) -> bool:
        import onnx

        net = self._network
        if CURRENT < (10, 0) and not net._flag("EXPLICIT_BATCH"):
            return self._fail(
                ErrorCode.INVALID_VALUE,
                "The ONNX parser only supports networks with an explicit batch dimension",
                -1,
            )
        try:
            proto = onnx.ModelProto()
            proto.ParseFromString(bytes(model))
            if not proto.HasField("graph"):
                raise ValueError("no graph")
        except Exception:
            return self._fail(ErrorCode.MODEL_DESERIALIZE_FAILED, "Failed to parse ONNX model", -1)
        graph = proto.graph
        failed = False
        for index, node in enumerate(graph.node):
            op = node.op_type
            standard = (
                node.domain in ("", "ai.onnx") and onnx.defs.has(op) and op not in _UNSUPPORTED
            )
            if standard or op in _testing.plugins:
                continue
            failed = True
            self._fail(
                ErrorCode.UNSUPPORTED_NODE if CURRENT < (10, 0) else ErrorCode.INVALID_NODE,
                'Assertion failed: creator && "Plugin not found, are the plugin name, version, and '
                'namespace correct?"',
                index,
                node.name,
                op,
            )
            if CURRENT < (10, 0):
                break  # 8.x stops at the first node it cannot import
        if failed:
            return False
        inits = {i.name for i in graph.initializer}
        types: dict[str, int] = {}
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            types[vi.name] = vi.type.tensor_type.elem_type
        for vi in graph.input:
            if vi.name in inits:
                continue
            t = vi.type.tensor_type
            trt_type = _ONNX_TO_TRT.get(t.elem_type)
            if trt_type is None:
                return self._fail(
                    ErrorCode.UNSUPPORTED_GRAPH, f"unsupported input type {t.elem_type}", -1
                )
            if trt_type == "INT64" and CURRENT < (10, 0):
                _log(
                    self._logger,
                    "WARNING",
                    "onnx2trt_utils.cpp:377: Your ONNX model has been generated "
                    "with INT64 weights, while TensorRT does not natively support INT64. Attempting "
                    "to cast down to INT32.",
                )
                trt_type = "INT32"
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            net._inputs.append(ITensor(vi.name, dims, getattr(DataType, trt_type)))
        for vi in graph.output:
            t = vi.type.tensor_type
            trt_type = _ONNX_TO_TRT.get(t.elem_type, "FLOAT")
            if trt_type == "INT64" and CURRENT < (10, 0):
                trt_type = "INT32"
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            net._outputs.append(ITensor(vi.name, dims, getattr(DataType, trt_type)))
        net._nodes = list(graph.node)
        net._onnx = bytes(model)
        net._types = types
        net._name = graph.name or net._name
        net._parsed = True
        _log(
            self._logger,
            "INFO",
            f"----------------------------------------------------------------\n"
            f"Input filename:   {path}\nONNX IR version:  {proto.ir_version}",
        )
        return True


# --------------------------------------------------------------------------------------------
# builder


class IOptimizationProfile:
    __slots__ = ("_shapes", "_valid")

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[Dims, Dims, Dims]] = {}
        self._valid = True

    def set_shape(
        self, input: str, min: Sequence[int], opt: Sequence[int], max: Sequence[int]
    ) -> None:
        lo, mid, hi = _dims(min), _dims(opt), _dims(max)
        if not (len(lo) == len(mid) == len(hi)) or not all(
            a <= b <= c for a, b, c in zip(lo, mid, hi, strict=True)
        ):
            self._valid = False
            return
        self._shapes[str(input)] = (lo, mid, hi)

    def get_shape(self, input: str) -> list[Dims]:
        return list(self._shapes[input])

    def __bool__(self) -> bool:
        return self._valid


class ITimingCache:
    __slots__ = ("_entries", "_origin")

    def __init__(self, entries: set[str], origin: tuple[str, str]) -> None:
        self._entries = set(entries)
        self._origin = origin

    def serialize(self) -> IHostMemory:
        body = {"trt": self._origin[0], "cc": self._origin[1], "entries": sorted(self._entries)}
        return IHostMemory(b"TRTDTC1\n" + json.dumps(body).encode())

    def reset(self) -> bool:
        self._entries.clear()
        return True


_CONFIG_GATES: dict[str, tuple[str | None, str | None]] = {
    "max_workspace_size": (None, "10.0"),
    "int8_calibrator": (None, "11.0"),
    "set_calibration_profile": (None, "11.0"),
    "get_calibration_profile": (None, "11.0"),
    "builder_optimization_level": ("8.6", None),
    "progress_monitor": ("10.0", None),
}


@_gated(_CONFIG_GATES)
class IBuilderConfig:
    __slots__ = (
        "_calib_profile",
        "_calibrator",
        "_device_type",
        "_dla_core",
        "_flags",
        "_monitor",
        "_opt_level",
        "_pools",
        "_profiles",
        "_timing_cache",
        "_verbosity",
        "_workspace",
    )  # fmt: skip

    def __init__(self) -> None:
        self._pools: dict[int, int] = {}
        self._flags = 0
        self._calibrator: Any = None
        self._calib_profile: IOptimizationProfile | None = None
        self._device_type = DeviceType.GPU
        self._dla_core = -1
        self._verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self._opt_level = 3
        self._monitor: Any = None
        self._profiles: list[IOptimizationProfile] = []
        self._timing_cache: ITimingCache | None = None
        self._workspace = 0

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        if not isinstance(pool, MemoryPoolType):
            raise TypeError("pool must be a MemoryPoolType")
        if int(pool_size) < 0:
            raise TypeError("pool_size must be >= 0")
        self._pools[int(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool: Any) -> int:
        return self._pools.get(int(pool), 1 << 40)

    @property
    def max_workspace_size(self) -> int:
        return self._workspace

    @max_workspace_size.setter
    def max_workspace_size(self, value: int) -> None:
        self._workspace = int(value)

    def set_flag(self, flag: Any) -> None:
        if not isinstance(flag, BuilderFlag):
            raise TypeError("flag must be a BuilderFlag")
        self._flags |= 1 << int(flag)

    def clear_flag(self, flag: Any) -> None:
        self._flags &= ~(1 << int(flag))

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))

    def _has(self, name: str) -> bool:
        member = getattr(BuilderFlag, name, None)
        return member is not None and self.get_flag(member)

    @property
    def flags(self) -> int:
        return self._flags

    @property
    def int8_calibrator(self) -> Any:
        return self._calibrator

    @int8_calibrator.setter
    def int8_calibrator(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, IInt8Calibrator):
                raise TypeError("int8_calibrator must be an IInt8Calibrator")
            _require_init(value, "IInt8Calibrator")
        self._calibrator = value

    def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
        if not isinstance(profile, IOptimizationProfile):
            raise TypeError("profile must be an IOptimizationProfile")
        if not profile:
            return False
        self._calib_profile = profile
        return True

    def get_calibration_profile(self) -> IOptimizationProfile | None:
        return self._calib_profile

    @property
    def default_device_type(self) -> Any:
        return self._device_type

    @default_device_type.setter
    def default_device_type(self, value: Any) -> None:
        if not isinstance(value, DeviceType):
            raise TypeError("default_device_type must be a DeviceType")
        self._device_type = value

    @property
    def DLA_core(self) -> int:
        return self._dla_core

    @DLA_core.setter
    def DLA_core(self, value: int) -> None:
        self._dla_core = int(value)

    @property
    def profiling_verbosity(self) -> Any:
        return self._verbosity

    @profiling_verbosity.setter
    def profiling_verbosity(self, value: Any) -> None:
        if not isinstance(value, ProfilingVerbosity):
            raise TypeError("profiling_verbosity must be a ProfilingVerbosity")
        self._verbosity = value

    @property
    def builder_optimization_level(self) -> int:
        return self._opt_level

    @builder_optimization_level.setter
    def builder_optimization_level(self, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError("builder_optimization_level must be an int")
        self._opt_level = value

    @property
    def progress_monitor(self) -> Any:
        return self._monitor

    @progress_monitor.setter
    def progress_monitor(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, IProgressMonitor):
                raise TypeError("progress_monitor must be an IProgressMonitor")
            _require_init(value, "IProgressMonitor")
        self._monitor = value

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not isinstance(profile, IOptimizationProfile):
            raise TypeError("profile must be an IOptimizationProfile")
        if not profile:
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache | None:
        data = bytes(serialized_timing_cache)
        if not data:
            return ITimingCache(set(), (VERSION, _testing.config.compute_capability))
        if not data.startswith(b"TRTDTC1\n"):
            return None
        body = json.loads(data[8:])
        return ITimingCache(set(body["entries"]), (body["trt"], body["cc"]))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not isinstance(cache, ITimingCache):
            raise TypeError("cache must be an ITimingCache")
        here = (VERSION, _testing.config.compute_capability)
        if cache._origin != here and not ignore_mismatch:
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self._timing_cache


_BUILDER_GATES: dict[str, tuple[str | None, str | None]] = {
    "build_engine": (None, "10.0"),
    "platform_has_fast_fp16": (None, "11.0"),
    "platform_has_fast_int8": (None, "11.0"),
}


@_gated(_BUILDER_GATES)
class Builder:
    __slots__ = ("__weakref__", "_logger")

    def __init__(self, logger: Any) -> None:
        self._logger = _adopt_logger(self, logger, "createInferBuilder")

    @property
    def logger(self) -> ILogger:
        return self._logger

    @property
    def num_DLA_cores(self) -> int:
        return _testing.config.dla_cores

    @property
    def platform_has_fast_fp16(self) -> bool:
        return True

    @property
    def platform_has_fast_int8(self) -> bool:
        return True

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(int(flags))

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_engine(self, network: Any, config: Any) -> Any:
        raise NotImplementedError("the double does not model the deprecated build_engine")

    def build_serialized_network(self, network: Any, config: Any) -> IHostMemory | None:
        if not isinstance(network, INetworkDefinition) or not isinstance(config, IBuilderConfig):
            raise TypeError(
                "build_serialized_network(network: INetworkDefinition, config: IBuilderConfig)"
            )
        _testing.calls["build_serialized_network"] += 1
        return _Build(self._logger, network, config).run()


class _Cancelled(Exception):
    pass


class _BuildFailed(Exception):
    """A build error found while placing layers (the message is TensorRT's)."""


#: op types the simulated DLA runs, in FP16 or INT8 only (the rest, and FP32 layers, cannot run
#: on the DLA: they fall back to the GPU with GPU_FALLBACK, else the build fails)
DLA_OPS = frozenset({
    "Conv", "ConvTranspose", "Relu", "Sigmoid", "Tanh", "Clip", "MaxPool", "AveragePool",
    "GlobalAveragePool", "BatchNormalization", "Add", "Mul", "Sub", "Concat", "Resize",
})  # fmt: skip
#: TensorRT layer-type names printed in DLA log lines
TRT_LAYER_TYPE = {
    "Conv": "CONVOLUTION", "Relu": "ACTIVATION", "Sigmoid": "ACTIVATION", "Reshape": "SHUFFLE",
    "Transpose": "SHUFFLE", "Identity": "IDENTITY", "Gather": "GATHER", "ReduceSum": "REDUCE",
    "Softmax": "SOFTMAX", "Split": "SLICE", "Concat": "CONCATENATION", "Add": "ELEMENTWISE",
    "Mul": "ELEMENTWISE", "MaxPool": "POOLING", "Resize": "RESIZE", "Flatten": "SHUFFLE",
    "MatMul": "MATRIX_MULTIPLY", "Gemm": "MATRIX_MULTIPLY",
}  # fmt: skip


class _Build:
    """One build_serialized_network call."""

    def __init__(
        self, logger: ILogger, network: INetworkDefinition, config: IBuilderConfig
    ) -> None:
        self.logger, self.net, self.config = logger, network, config
        #: tensors with a calibration scale taken from a cache; None: every tensor has one
        #: (calibrated from batches, or no implicit calibration)
        self.scales: set[str] | None = None

    def network_tensors(self) -> list[str]:
        """The tensors implicit calibration gives a scale: the inputs and every layer output."""
        names = [t.name for t in self.net._inputs]
        for n in self.net._nodes:
            if n.op_type != "Constant":
                names += [o for o in n.output if o]
        return names

    def error(self, msg: str) -> None:
        _log(self.logger, "ERROR", msg)

    def run(self) -> IHostMemory | None:
        net, config = self.net, self.config
        if not net._parsed or not net._inputs:
            self.error(
                "4: [network.cpp::validate::2789] Error Code 4: Internal Error (Network must have at least one output)"
            )
            return None
        profile = self._profile()
        if profile is False:
            return None
        strongly = net._strongly_typed
        if strongly and (config._has("FP16") or config._has("INT8") or config._has("BF16")):
            self.error(
                "3: [builderConfig.cpp::setFlag] Error Code 3: API Usage Error (Parameter check failed, "
                "condition: !strongly typed. Precision flags cannot be set for a strongly typed network.)"
            )
            return None
        if config._opt_level not in range(6):
            self.error(
                f"3: Error Code 3: API Usage Error (builder optimization level {config._opt_level} is not in [0, 5])"
            )
            return None
        has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in net._nodes)
        int8 = False
        if config._has("INT8"):
            if has_qdq:
                if config._calibrator is not None:
                    _log(
                        self.logger,
                        "WARNING",
                        "Calibrator won't be used in explicit precision mode. "
                        "Use quantization aware training to generate network with Quantize/Dequantize nodes.",
                    )
                int8 = True
            elif config._calibrator is not None:
                ok = self._calibrate(config._calibrator)
                if not ok:
                    return None
                int8 = True
            else:
                _log(
                    self.logger,
                    "WARNING",
                    "Calibrator is not being used. Users must provide dynamic "
                    "range for all tensors that are not Int32 or Bool.",
                )
        elif has_qdq and not strongly:
            self.error(
                "4: [network.cpp::validate::3115] Error Code 4: Internal Error (Int8 precision has "
                "been set for a layer or layer output, but int8 is not configured in the builder)"
            )
            return None
        if config._device_type == DeviceType.DLA and not (
            0 <= config._dla_core < _testing.config.dla_cores
        ):
            self.error(
                f"1: [dlaUtils.cpp] Error Code 1: Cuda Runtime (DLA core {config._dla_core} is not available)"
            )
            return None
        try:
            layers = self._layers(strongly, fp16=config._has("FP16"), int8=int8, has_qdq=has_qdq)
        except _BuildFailed as exc:
            self.error(str(exc))
            return None
        try:
            self._progress(len(layers))
        except _Cancelled:
            self.error(
                "2: [engineBuilder.cpp] Error Code 2: Internal Error (Build was cancelled by the "
                "progress monitor.)"
            )
            return None
        if config._timing_cache is not None:
            before = len(config._timing_cache._entries)
            for layer in layers:
                config._timing_cache._entries.add(f"{layer['type']}:{layer['precision']}")
            _log(
                self.logger,
                "INFO",
                f"Timing cache: {before} entries loaded, "
                f"{len(config._timing_cache._entries) - before} added",
            )
        header = {
            "trt_version": VERSION,
            "tag": TAG,
            "compute_capability": _testing.config.compute_capability,
            "device_name": _testing.config.device_name,
            "plugins": sorted({n.op_type for n in net._nodes if n.op_type in _testing.plugins}),
            "io": [self._io(t, "INPUT") for t in net._inputs]
            + [self._io(t, "OUTPUT") for t in net._outputs],
            "profiles": [{k: [list(d) for d in v] for k, v in p.items()} for p in profile]
            if profile
            else [],
            "layers": layers,
            "verbosity": config._verbosity.name,
            "strongly_typed": strongly,
            "dla_core": config._dla_core if config._device_type == DeviceType.DLA else None,
            "inference_ms": self._inference_ms(),
        }
        _testing.built_inference_ms.append(header["inference_ms"])
        _log(self.logger, "INFO", f"Engine generation completed: {len(layers)} layers")
        return IHostMemory(_plan.dump(header, net._onnx))

    def _inference_ms(self) -> float:
        """The simulated time of one inference of this engine: ``_testing.config.inference_ms``,
        or, with ``tactic_jitter`` > 0, a time that depends on the tactics the build picks, as on
        a GPU. A build without timings to reuse times kernels itself and picks differently each
        time (deterministically, from the number of builds so far: ``1 + jitter * k / 10`` with
        ``k = 37 * build % 11``); a build whose timing cache holds the picks of an earlier build
        reuses them, so builds sharing a timing cache are equally fast."""
        base = float(_testing.config.inference_ms)
        jitter = float(_testing.config.tactic_jitter)
        if not jitter:
            return base
        cache = self.config._timing_cache
        picks = sorted(e for e in cache._entries if e.startswith("tactics:")) if cache else []
        if picks:
            build = int(picks[0].split(":")[1])
        else:
            build = _testing.calls["build_serialized_network"]
            if cache is not None:
                cache._entries.add(f"tactics:{build}")
        return base * (1.0 + jitter * ((37 * build) % 11) / 10.0)

    def _io(self, t: ITensor, mode: str) -> dict[str, Any]:
        return {
            "name": t.name,
            "mode": mode,
            "dtype": t.dtype.name,
            "shape": list(t.shape),
            "location": "DEVICE",
        }

    def _profile(self) -> list[dict[str, tuple[Dims, Dims, Dims]]] | bool | None:
        """Every optimization profile, validated (the engine keeps them all, in order)."""
        profiles = self.config._profiles
        out: list[dict[str, tuple[Dims, Dims, Dims]]] = []
        for index in range(len(profiles)):
            one = self._one_profile(index)
            if one is False:
                return False
            if one is None:
                return None
            out.append(one)  # type: ignore[arg-type]
        if not profiles:
            return self._one_profile(0)  # type: ignore[return-value]
        return out

    def _one_profile(self, index: int) -> dict[str, tuple[Dims, Dims, Dims]] | bool | None:
        dynamic = [t for t in self.net._inputs if any(d < 0 for d in t.shape)]
        profiles = self.config._profiles
        if not profiles:
            if dynamic:
                self.error(
                    "4: [network.cpp::validate::3100] Error Code 4: Internal Error (Network has "
                    "dynamic or shape inputs, but no optimization profile has been defined.)"
                )
                return False
            return None
        shapes = profiles[index]._shapes
        for t in self.net._inputs:
            rng = shapes.get(t.name)
            if rng is None:
                if any(d < 0 for d in t.shape):
                    self.error(
                        f"4: [network.cpp::validate] Error Code 4: Internal Error ({t.name}: dynamic "
                        f"input is missing dimensions in profile {index}.)"
                    )
                    return False
                continue
            if len(rng[0]) != len(t.shape) or any(
                d >= 0 and not (lo == hi == d)
                for d, lo, hi in zip(t.shape, rng[0], rng[2], strict=True)
            ):
                self.error(
                    f"4: [network.cpp::validate] Error Code 4: Internal Error ({t.name}: profile "
                    "does not match the network's static dimensions.)"
                )
                return False
        return dict(shapes)

    def _calibrate(self, calibrator: IInt8Calibrator) -> bool:
        _require_init(calibrator, "IInt8Calibrator")
        algo = _CACHE_ALGOS[calibrator.get_algorithm().name]
        cache = calibrator.read_calibration_cache()
        if cache:
            text = bytes(cache).decode("utf-8", "replace")
            m = re.match(r"TRT-(\w+)-(\w+)", text)
            release = _cache_release(m.group(1)) if m else None
            if (
                m
                and m.group(2) == algo
                and release not in (None, CURRENT[:2])
                and not _testing.config.accept_other_release_caches
            ):
                # A cache of another release is skipped without a word ("trt will skip the file
                # if it is incompatible", NVIDIA/TensorRT#1378) and TensorRT calibrates from the
                # calibrator's batches instead; a calibrator that only reads a cache has none.
                _testing.calls["calibration_cache_skipped"] += 1
            elif m and m.group(2) == algo:
                self._scales_from_cache(text)
                _testing.calls["calibration_from_cache"] += 1
                return True
            else:
                _log(
                    self.logger,
                    "WARNING",
                    "The calibration cache header does not match the calibrator; recalibrating.",
                )
        shapes = self._calibration_shapes()
        if shapes is None:
            return False
        batch = calibrator.get_batch_size()
        names = [t.name for t in self.net._inputs]
        batches = 0
        while batches < 10_000:
            pointers = calibrator.get_batch(names)
            if pointers is None:
                break
            if len(pointers) != len(names) or not all(isinstance(p, int) for p in pointers):
                self.error("Calibration batch must be a list of one device pointer (int) per input")
                return False
            rt = _testing.cuda
            for t, ptr in zip(self.net._inputs, pointers, strict=True):
                nbytes = int(np.prod(shapes[t.name])) * np.dtype(_NP[t.dtype.name]).itemsize * batch
                if rt is not None and not rt.check_range(ptr, nbytes, device_accessible=True):
                    self.error(
                        f"1: Cuda Runtime (an illegal memory access was encountered) reading calibration input {t.name}"
                    )
                    return False
            batches += 1
        if batches == 0:
            self.error(
                "2: [calibrator.cpp] Error Code 2: Internal Error (Calibration failure occurred with "
                "no scaling factors detected.)"
            )
            return False
        _testing.calls["calibration_batches"] += batches
        lines = [f"TRT-{_version_code()}-{algo}"]
        # TensorRT writes no scale for some layers' outputs ("for identity layer there is not
        # scale", NVIDIA/TensorRT#2430; reusing a cache it calibrated itself still logs "Missing
        # scale and zero-point" for Flatten and Softmax outputs, #3131, #3659)
        scaled = [
            n.output[0] for n in self.net._nodes if n.output and n.op_type not in UNSCALED_OPS
        ]
        for name in names + scaled:
            lines.append(f"{name}: 3c010a14")
        # The calibrating build quantizes with exactly the scales it writes, so an engine rebuilt
        # from this cache has the same INT8 layers as the calibrated one.
        self.scales = set(names + scaled)
        calibrator.write_calibration_cache(IHostMemory(("\n".join(lines) + "\n").encode()))
        return True

    def _scales_from_cache(self, text: str) -> None:
        """Take the scales of a cache of this release. Each network tensor without one is logged
        (WARNING) and the layers reading or writing it stay out of INT8 (see ``_layers``);
        ``_testing.config.ignore_calibration_cache`` drops every scale."""
        scales: set[str] = set()
        for line in [] if _testing.config.ignore_calibration_cache else text.splitlines()[1:]:
            name, sep, value = line.rpartition(":")
            value = value.strip()
            if not sep or not re.fullmatch(r"[0-9a-fA-F]{1,8}", value):
                continue
            scale = float(np.frombuffer(bytes.fromhex(value.zfill(8)), dtype=">f4")[0])
            if np.isfinite(scale) and scale > 0:  # TensorRT cannot quantize with other scales
                scales.add(name.strip())
        self.scales = scales
        for t in dict.fromkeys(self.network_tensors()):
            if t not in scales:
                _log(self.logger, "WARNING", MISSING_SCALE.format(t))

    def _calibration_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The input shapes TensorRT calibrates with: static dims as they are, dynamic inputs at
        the kOPT dims of the calibration profile, or of optimization profile 0 when none is set
        (so a batch-1 calibrator feeding an engine optimized for batch 4 is read out of bounds)."""
        config = self.config
        source = config._calib_profile
        if source is None and config._profiles:
            source = config._profiles[0]
        out: dict[str, tuple[int, ...]] = {}
        for t in self.net._inputs:
            if all(d >= 0 for d in t.shape):
                out[t.name] = tuple(t.shape)
                continue
            rng = source._shapes.get(t.name) if source is not None else None
            if (
                rng is None
                or len(rng[1]) != len(t.shape)
                or any(d >= 0 and o != d for d, o in zip(t.shape, rng[1], strict=True))
            ):
                self.error(
                    f"4: [network.cpp::validate] Error Code 4: Internal Error ({t.name}: the "
                    "calibration profile does not give dimensions for this dynamic input.)"
                )
                return None
            out[t.name] = tuple(int(d) for d in rng[1])
        _testing.calibration_shapes.clear()
        _testing.calibration_shapes.update(out)
        return out

    def _layers(
        self, strongly: bool, *, fp16: bool, int8: bool, has_qdq: bool
    ) -> list[dict[str, Any]]:
        types = self.net._types
        dla = self.config._device_type == DeviceType.DLA
        dq_outputs = {
            o for n in self.net._nodes if n.op_type == "DequantizeLinear" for o in n.output
        }
        layers = []
        for n in self.net._nodes:
            if n.op_type in ("Constant", "QuantizeLinear", "DequantizeLinear"):
                continue
            out_type = types.get(n.output[0]) if n.output else None
            if strongly:
                precision = (
                    "INT8"
                    if any(i in dq_outputs for i in n.input)
                    else ("FP16" if out_type == 10 else ("INT32" if out_type in (6, 7) else "FP32"))
                )
            elif (
                int8
                and (
                    n.op_type in ("Conv", "MatMul", "Gemm", "ConvTranspose")
                    # on the DLA every layer it runs is INT8 when INT8 is enabled and scaled
                    or (dla and n.op_type in DLA_OPS)
                )
                and (not has_qdq or any(i in dq_outputs for i in n.input))
                and (has_qdq or self._scaled(n))
            ):
                precision = "INT8"
            elif fp16 and out_type in (1, 10, None):
                precision = "FP16"
            else:
                precision = "INT32" if out_type in (6, 7) else "FP32"
            weight = 4.0 if n.op_type in ("Conv", "MatMul", "Gemm", "ConvTranspose") else 1.0
            layers.append(
                {
                    "name": n.name or f"{n.op_type}_{len(layers)}",
                    "type": n.op_type,
                    "precision": precision,
                    "weight": weight,
                    "outputs": list(n.output),
                }
            )
        return self._place_on_dla(layers) if dla else layers

    def _place_on_dla(self, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Real DLA placement rules (8.5/8.6/10.x): a layer runs on the DLA only when the DLA
        supports its op and it runs in FP16 or INT8 ("DLA only supports FP16 and Int8 precision
        type", onnx/tensorflow-onnx#1632). Any other layer falls back to the GPU with GPU_FALLBACK,
        logged as "Layer 'X' (TYPE): Unsupported on DLA. Switching this layer's device type to
        GPU." (ultralytics#18012, NVIDIA-AI-IOT/jetson_dla_tutorial#3; the double uses this
        wording for the precision case too, which was not checked against a real log); without
        GPU_FALLBACK the build fails ("Default DLA is enabled but layer X is not supported on DLA
        and falling back to GPU is not enabled", NVIDIA/TensorRT#2318 wording family). Consecutive
        DLA layers become one {ForeignNode[first...last]} engine layer, and the log lists the
        layers on each device ([DlaLayer] / [GpuLayer] lines). DIRECT_IO only forbids reformats
        next to network I/O tensors whose allowed_formats were set ("Require that no reformats be
        inserted between a layer and a network I/O tensor for which ITensor.allowed_formats was
        set", pyCoreDoc.h); the double models no allowed_formats, so the flag changes nothing.
        PREFER_PRECISION_CONSTRAINTS matters only for per-layer precisions, which the double
        does not model either."""
        fallback = self.config._has("GPU_FALLBACK")
        nodes = {(n.name or f"{n.op_type}_{i}"): n for i, n in enumerate(self.net._nodes)}
        placed: list[tuple[bool, dict[str, Any]]] = []
        for layer in layers:
            node = nodes.get(layer["name"])
            op = node.op_type if node is not None else layer["type"]
            on_dla = op in DLA_OPS and layer["precision"] in ("FP16", "INT8")
            if not on_dla:
                if not fallback:
                    raise _BuildFailed(
                        "2: [network.cpp::validate] Error Code 2: Internal Error (Default DLA is "
                        f"enabled but layer {layer['name']} is not supported on DLA and falling back "
                        "to GPU is not enabled.)"
                    )
                _log(
                    self.logger,
                    "WARNING",
                    f"Layer '{layer['name']}' ({TRT_LAYER_TYPE.get(op, op.upper())}): Unsupported on "
                    "DLA. Switching this layer's device type to GPU.",
                )
            placed.append((on_dla, layer))
        fused: list[dict[str, Any]] = []
        dla_names: list[str] = []
        gpu_lines: list[str] = []
        group: list[dict[str, Any]] = []

        def flush() -> None:
            if not group:
                return
            name = f"{{ForeignNode[{group[0]['name']}...{group[-1]['name']}]}}"
            dla_names.append(name)
            fused.append(
                {
                    "name": name,
                    "type": "ForeignNode",
                    "precision": group[-1]["precision"],
                    "weight": sum(x["weight"] for x in group) * 0.8,
                    "outputs": group[-1]["outputs"],
                    "device": "DLA",
                }
            )
            group.clear()

        for on_dla, layer in placed:
            if on_dla:
                group.append(layer)
                continue
            flush()
            fused.append({**layer, "device": "GPU"})
            node = nodes.get(layer["name"])
            op = node.op_type if node is not None else layer["type"]
            gpu_lines.append(f"[GpuLayer] {TRT_LAYER_TYPE.get(op, op.upper())}: {layer['name']}")
        flush()
        _log(self.logger, "INFO", "---------- Layers Running on DLA ----------")
        for name in dla_names:
            _log(self.logger, "INFO", f"[DlaLayer] {name}")
        _log(self.logger, "INFO", "---------- Layers Running on GPU ----------")
        for line in gpu_lines:
            _log(self.logger, "INFO", line)
        return fused

    def _scaled(self, node: Any) -> bool:
        """Whether every network tensor a node reads or writes has a calibration scale."""
        if self.scales is None:
            return True
        network = set(self.network_tensors())
        return all(t in self.scales for t in [*node.input, *node.output] if t in network)

    def _progress(self, steps: int) -> None:
        monitor = self.config._monitor
        if monitor is None:
            return
        top = "Building engine"
        monitor.phase_start(top, None, 3)
        for i, phase in enumerate(("Analyzing network", "Selecting tactics", "Serializing")):
            sub_steps = steps if phase == "Selecting tactics" else 1
            monitor.phase_start(phase, top, sub_steps)
            for s in range(sub_steps):
                if not monitor.step_complete(phase, s):
                    monitor.phase_finish(phase)
                    monitor.phase_finish(top)
                    raise _Cancelled
            monitor.phase_finish(phase)
            if not monitor.step_complete(top, i):
                monitor.phase_finish(top)
                raise _Cancelled
        monitor.phase_finish(top)


# --------------------------------------------------------------------------------------------
# runtime


class Runtime:
    __slots__ = ("__weakref__", "_dla_core", "_logger")

    def __init__(self, logger: Any) -> None:
        self._logger = _adopt_logger(self, logger, "createInferRuntime")
        self._dla_core = -1

    @property
    def logger(self) -> ILogger:
        return self._logger

    @property
    def DLA_core(self) -> int:
        return self._dla_core

    @DLA_core.setter
    def DLA_core(self, value: int) -> None:
        self._dla_core = int(value)

    @property
    def num_DLA_cores(self) -> int:
        return _testing.config.dla_cores

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        _testing.calls["deserialize_cuda_engine"] += 1
        data = bytes(memoryview(serialized_engine))
        failed = "4: [runtime.cpp::deserializeCudaEngine::65] Error Code 4: Internal Error (Engine deserialization failed.)"
        try:
            header, onnx_bytes = _plan.load(data)
        except _plan.PlanError as exc:
            _log(self._logger, "ERROR", str(exc))
            _log(self._logger, "ERROR", failed)
            return None
        if header["tag"] != TAG:
            _log(
                self._logger,
                "ERROR",
                "1: [stdArchiveReader.cpp::StdArchiveReader::42] Error Code 1: Serialization "
                "(Serialization assertion stdVersionRead == kSERIALIZATION_VERSION failed.Version tag does not "
                f"match. Note: Current Version: {TAG}, Serialized Engine Version: {header['tag']})",
            )
            _log(self._logger, "ERROR", failed)
            return None
        if header["trt_version"] != VERSION:
            _log(
                self._logger,
                "ERROR",
                "6: The engine plan file is not compatible with this version of TensorRT, "
                f"expecting library version {VERSION} got {header['trt_version']}, please rebuild.",
            )
            _log(self._logger, "ERROR", failed)
            return None
        if header["compute_capability"] != _testing.config.compute_capability:
            _log(
                self._logger,
                "ERROR",
                "6: The engine plan file is generated on an incompatible device, "
                f"expecting compute {_testing.config.compute_capability} got compute "
                f"{header['compute_capability']}, please rebuild.",
            )
            _log(self._logger, "ERROR", failed)
            return None
        for op in header["plugins"]:
            if op not in _testing.plugins:
                _log(
                    self._logger,
                    "ERROR",
                    "1: [pluginV2Runner.cpp::load::303] Error Code 1: Serialization "
                    "(Serialization assertion creator failed.Cannot deserialize plugin since corresponding "
                    f"IPluginCreator not found in Plugin Registry) [{op}]",
                )
                _log(self._logger, "ERROR", failed)
                return None
        if header["dla_core"] is not None and self._dla_core < 0:
            _log(
                self._logger,
                "ERROR",
                "1: [runtime.cpp] Error Code 1: DLA engine deserialization needs "
                "IRuntime::setDLACore",
            )
            _log(self._logger, "ERROR", failed)
            return None
        return ICudaEngine(self._logger, header, onnx_bytes, runtime=self)


_ENGINE_GATES: dict[str, tuple[str | None, str | None]] = {
    "num_bindings": (None, "10.0"),
    "get_binding_index": (None, "10.0"),
    "device_memory_size": (None, "11.0"),
    "device_memory_size_v2": ("10.0", None),
}


@_gated(_ENGINE_GATES)
class ICudaEngine:
    __slots__ = (
        "_contexts",
        "_created",
        "_h",
        "_io",
        "_logger",
        "_onnx",
        "_out_shapes",
        "_runtime",
        "_session",
    )

    def __init__(
        self, logger: ILogger, header: dict[str, Any], onnx_bytes: bytes, *, runtime: Any = None
    ) -> None:
        self._logger, self._h, self._onnx = logger, header, onnx_bytes
        self._io = {t["name"]: t for t in header["io"]}
        self._session: Any = None
        self._out_shapes: dict[tuple[Any, ...], dict[str, tuple[int, ...]]] = {}
        # deserialize_cuda_engine has keep_alive<0,1>: the engine keeps its runtime alive
        self._runtime = runtime
        #: live execution contexts (weakly: a collected context frees its profile)
        self._contexts: weakref.WeakSet[IExecutionContext] = weakref.WeakSet()
        self._created = 0

    @property
    def _dynamic(self) -> bool:
        """Whether the engine has inputs with dynamic shapes (or shape-tensor inputs): the
        engines whose concurrent contexts need one optimization profile each before 9.0."""
        return any(
            t["mode"] == "INPUT" and (any(d < 0 for d in t["shape"]) or t["location"] == "HOST")
            for t in self._h["io"]
        )

    def _profile_holder(self, index: int, other_than: Any) -> Any:
        return next(
            (c for c in list(self._contexts) if c is not other_than and c._profile == index), None
        )

    def _tensor(self, name: str) -> dict[str, Any]:
        if name not in self._io:
            _log(
                self._logger,
                "ERROR",
                f"3: [engine.cpp] Error Code 3: API Usage Error (Parameter check failed, "
                f"condition: tensor name {name} not found)",
            )
            raise KeyError(name)
        return self._io[name]

    @property
    def num_io_tensors(self) -> int:
        return len(self._h["io"])

    def get_tensor_name(self, index: int) -> str | None:
        io = self._h["io"]
        return io[index]["name"] if 0 <= index < len(io) else None

    def get_tensor_mode(self, name: str) -> Any:
        return getattr(TensorIOMode, self._tensor(name)["mode"])

    def get_tensor_shape(self, name: str) -> Dims:
        return _dims(self._tensor(name)["shape"])

    def get_tensor_dtype(self, name: str) -> Any:
        return getattr(DataType, self._tensor(name)["dtype"])

    def get_tensor_location(self, name: str) -> Any:
        return getattr(TensorLocation, self._tensor(name)["location"])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        t = self._tensor(name)
        if t["mode"] != "INPUT":
            raise RuntimeError("get_tensor_profile_shape: not an input")
        profiles = self._h["profiles"]
        if not profiles:
            if profile_index != 0:
                raise IndexError(profile_index)
            return [_dims(t["shape"])] * 3
        rng = profiles[profile_index].get(name)
        if rng is None:
            return [_dims(t["shape"])] * 3
        return [_dims(d) for d in rng]

    @property
    def num_optimization_profiles(self) -> int:
        return max(len(self._h["profiles"]), 1)

    @property
    def num_layers(self) -> int:
        n = len(self._h["layers"])
        return n * self.num_optimization_profiles if CURRENT < (10, 0) else n

    @property
    def name(self) -> str:
        return "double engine"

    @property
    def profiling_verbosity(self) -> Any:
        return getattr(ProfilingVerbosity, self._h["verbosity"])

    @property
    def device_memory_size(self) -> int:
        return 1 << 20

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 20

    @property
    def num_bindings(self) -> int:
        return len(self._h["io"])

    def get_binding_index(self, name: str) -> int:
        return [t["name"] for t in self._h["io"]].index(name)

    def create_execution_context(self) -> IExecutionContext:
        """Profile assignment, per version (NvInferRuntime.h, as read in the audit):

        * 8.5: "The first execution context created will call setOptimizationProfile(0)
          implicitly. For other execution contexts, setOptimizationProfile() must be called with
          unique profile index before calling execute or enqueue." Only the engine's first
          context ever gets a profile; the others have none (-1).
        * 8.6: profile 0 is set implicitly "if there are no other execution contexts assigned to
          optimization profile 0"; otherwise none, with TensorRT's two errors.
        * 9.0 and later: every context gets profile 0.

        Engines without dynamic inputs are not concerned: every context uses profile 0.
        """
        ctx = IExecutionContext(self)
        first = self._created == 0
        self._created += 1
        if not self._dynamic or CURRENT >= (9, 0):
            ctx._profile = 0
        elif CURRENT < (8, 6):
            ctx._profile = 0 if first else -1
        elif self._profile_holder(0, ctx) is None:
            ctx._profile = 0
        else:
            _log(
                self._logger,
                "ERROR",
                "1: Unexpected exception Profile 0 has been chosen by another IExecutionContext. "
                "Use another profileIndex or destroy the IExecutionContext that use this profile.",
            )
            _log(
                self._logger,
                "WARNING",
                "Could not set default profile 0 for execution context. Profile index must be set "
                "explicitly.",
            )
            ctx._profile = -1
        self._contexts.add(ctx)
        return ctx

    def create_engine_inspector(self) -> EngineInspector:
        return EngineInspector(self)

    # -- execution with ONNX Runtime --------------------------------------------------------------
    def _run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import onnxruntime as ort

        if self._h["plugins"]:
            raise NotImplementedError("the double cannot execute plugin ops")
        if self._session is None:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            self._session = ort.InferenceSession(
                self._onnx, sess_options=so, providers=["CPUExecutionProvider"]
            )
        want = {i.name: i.type for i in self._session.get_inputs()}
        cast = {
            k: (v.astype(np.int64) if want.get(k) == "tensor(int64)" else v)
            for k, v in feed.items()
        }
        names = [o.name for o in self._session.get_outputs()]
        values = self._session.run(names, cast)
        return dict(zip(names, values, strict=True))

    def _output_shapes(
        self,
        shapes: dict[str, tuple[int, ...]],
        values: dict[str, np.ndarray] | None = None,
    ) -> dict[str, tuple[int, ...]]:
        """Output shapes for input ``shapes``; ``values`` are the shape-tensor inputs' values
        (output shapes may depend on them, not on the data of the other inputs)."""
        values = values or {}
        key = (
            tuple(sorted(shapes.items())),
            tuple(sorted((n, tuple(v.ravel().tolist())) for n, v in values.items())),
        )
        if key not in self._out_shapes:
            feed = {
                n: values[n] if n in values else np.zeros(s, dtype=_NP[self._io[n]["dtype"]])
                for n, s in shapes.items()
            }
            outs = self._run(feed)
            self._out_shapes[key] = {k: tuple(v.shape) for k, v in outs.items()}
        return self._out_shapes[key]


_CONTEXT_GATES: dict[str, tuple[str | None, str | None]] = {}


@_gated(_CONTEXT_GATES)
class IExecutionContext:
    __slots__ = (
        "__weakref__",
        "_addresses",
        "_emits",
        "_engine",
        "_executed",
        "_name",
        "_nvtx",
        "_profile",
        "_profiler",
        "_shapes",
    )

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._profile = 0  # set by ICudaEngine.create_execution_context
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}
        self._profiler: Any = None
        self._emits = True
        self._nvtx = engine.profiling_verbosity
        self._executed = False
        self._name = ""

    @property
    def engine(self) -> ICudaEngine:
        return self._engine

    def _error(self, msg: str) -> bool:
        _log(self._engine._logger, "ERROR", msg)
        return False

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        eng = self._engine
        t = eng._tensor(name)
        if t["mode"] != "INPUT":
            return self._error(
                f"3: [executionContext.cpp::setInputShape] Error Code 3: API Usage Error "
                f"(Parameter check failed, condition: {name} is not an input)"
            )
        dims = tuple(int(d) for d in shape)
        if self._profile < 0:
            return self._error(
                "3: [executionContext.cpp::setInputShape::2037] Error Code 3: API Usage Error "
                "(Parameter check failed at: runtime/api/executionContext.cpp::setInputShape::2037, "
                "condition: mOptimizationProfile >= 0 && mOptimizationProfile < "
                "mEngine.getNbOptimizationProfiles())"
            )
        lo, _, hi = eng.get_tensor_profile_shape(name, self._profile)
        if len(dims) != len(lo) or not all(
            a <= d <= c for a, d, c in zip(lo, dims, hi, strict=True)
        ):
            return self._error(
                f"3: [executionContext.cpp::setInputShape] Error Code 3: API Usage Error "
                f"(Parameter check failed, condition: engineDims.d[i] == dims.d[i]. Static "
                f"dimension mismatch or out of the optimization profile for tensor {name})"
            )
        self._shapes[name] = dims
        return True

    @property
    def active_optimization_profile(self) -> int:
        return self._profile

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        """Select a profile. Before 9.0 a dynamic engine's profile may be held by one live
        context only; switching forgets the input shapes set for the old profile."""
        if not isinstance(profile_index, int) or not isinstance(stream_handle, int):
            raise TypeError(
                "set_optimization_profile_async(profile_index: int, stream_handle: int)"
            )
        eng = self._engine
        rt = _testing.cuda
        if stream_handle != 0 and rt is not None and not rt.valid_stream(stream_handle):
            return self._error(
                "1: [executionContext.cpp] Error Code 1: Cuda Runtime (invalid resource handle)"
            )
        if not 0 <= profile_index < eng.num_optimization_profiles:
            return self._error(
                "3: [executionContext.cpp::setOptimizationProfileInternal::1328] Error Code 3: "
                "API Usage Error (Parameter check failed at: runtime/api/executionContext.cpp::"
                "setOptimizationProfileInternal::1328, condition: profileIndex >= 0 && "
                "profileIndex < mEngine.getNbOptimizationProfiles())"
            )
        if profile_index == self._profile:
            return True
        if eng._dynamic and CURRENT < (9, 0) and eng._profile_holder(profile_index, self):
            return self._error(
                f"1: Unexpected exception Profile {profile_index} has been chosen by another "
                "IExecutionContext. Use another profileIndex or destroy the IExecutionContext "
                "that use this profile."
            )
        self._profile = profile_index
        self._shapes.clear()
        return True

    def _input_shapes(self) -> dict[str, tuple[int, ...]] | None:
        out = {}
        for t in self._engine._h["io"]:
            if t["mode"] != "INPUT":
                continue
            if t["name"] in self._shapes:
                out[t["name"]] = self._shapes[t["name"]]
            elif all(d >= 0 for d in t["shape"]):
                out[t["name"]] = tuple(t["shape"])
            else:
                return None
        return out

    def _shape_values(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
        """The values of the shape-tensor inputs (isShapeInferenceIO: TensorLocation.HOST), read
        at their host addresses; None while an address is not set (TRT 8.5 NvInferRuntime.h:
        output dimensions are -1 if "setTensorAddress() has NOT been called for some input
        tensor(s) with isShapeInferenceIO() = true")."""
        rt = _testing.cuda
        out: dict[str, np.ndarray] = {}
        for t in self._engine._h["io"]:
            if t["mode"] != "INPUT" or t["location"] != "HOST":
                continue
            ptr = self._addresses.get(t["name"], 0)
            if not ptr or rt is None:
                return None
            dt = np.dtype(_NP[t["dtype"]])
            shape = shapes[t["name"]]
            raw = rt.read(ptr, int(np.prod(shape)) * dt.itemsize)
            out[t["name"]] = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        return out

    def get_tensor_shape(self, name: str) -> Dims:
        t = self._engine._tensor(name)
        if t["mode"] == "INPUT":
            return _dims(self._shapes.get(name, t["shape"]))
        shapes = self._input_shapes()
        values = self._shape_values(shapes) if shapes is not None else None
        if shapes is None or values is None:
            return _dims(t["shape"])
        return _dims(self._engine._output_shapes(shapes, values)[name])

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._engine._tensor(name)
        if not isinstance(memory, int):
            raise TypeError("set_tensor_address(name: str, memory: int)")
        if memory % 256 != 0:
            return self._error(
                f"3: API Usage Error (Parameter check failed, condition: address of {name} "
                "is not aligned to 256 bytes)"
            )
        self._addresses[name] = memory
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def infer_shapes(self) -> list[str]:
        return [
            t["name"]
            for t in self._engine._h["io"]
            if t["mode"] == "INPUT"
            and (
                (any(d < 0 for d in t["shape"]) and t["name"] not in self._shapes)
                or (t["location"] == "HOST" and not self._addresses.get(t["name"]))
            )
        ]

    @property
    def profiler(self) -> Any:
        return self._profiler

    @profiler.setter
    def profiler(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, IProfiler):
                raise TypeError("profiler must be an IProfiler")
            _require_init(value, "IProfiler")
        self._profiler = value

    @property
    def enqueue_emits_profile(self) -> bool:
        return self._emits

    @enqueue_emits_profile.setter
    def enqueue_emits_profile(self, value: bool) -> None:
        self._emits = bool(value)

    @property
    def nvtx_verbosity(self) -> Any:
        return self._nvtx

    @nvtx_verbosity.setter
    def nvtx_verbosity(self, value: Any) -> None:
        if not isinstance(value, ProfilingVerbosity):
            raise TypeError("nvtx_verbosity must be a ProfilingVerbosity")
        if int(value) > int(self._engine.profiling_verbosity) and value != ProfilingVerbosity.NONE:
            _log(
                self._engine._logger,
                "WARNING",
                "NVTX verbosity cannot be raised above the build verbosity",
            )
            return
        self._nvtx = value

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not isinstance(stream_handle, int):
            raise TypeError("execute_async_v3(stream_handle: int)")
        rt = _testing.cuda
        if rt is None:
            raise RuntimeError(
                "TensorRT double: no CUDA runtime registered (tests register FakeCuda)"
            )
        eng = self._engine
        _testing.calls["execute_async_v3"] += 1
        if stream_handle == 0:
            _log(
                eng._logger,
                "WARNING",
                "Using default stream in enqueueV3() may lead to performance issues "
                "due to additional calls to cudaStreamSynchronize() by TensorRT to ensure correct "
                "synchronization. Please use non-default stream instead.",
            )
        elif not rt.valid_stream(stream_handle):
            return self._error(
                "1: [executionContext.cpp] Error Code 1: Cuda Runtime (invalid resource handle)"
            )
        shapes = self._input_shapes()
        if shapes is None:
            return self._error(
                "3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter "
                "check failed, condition: inputShapesSpecified. Not all shapes are specified.)"
            )
        if rt.is_capturing(stream_handle) and not self._executed:
            return self._error(
                "1: [executionContext.cpp] Error Code 1: Cuda Runtime (operation not permitted when "
                "stream is capturing): the first enqueue must not be captured"
            )
        values = self._shape_values(shapes)
        if values is None:
            return self._error(
                "3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter "
                "check failed, condition: allInputShapesSpecified(). Not all shape-tensor values "
                "are specified.)"
            )
        out_shapes = eng._output_shapes(shapes, values)
        plan: list[tuple[dict[str, Any], int, tuple[int, ...]]] = []
        for t in eng._h["io"]:
            ptr = self._addresses.get(t["name"], 0)
            if not ptr:
                return self._error(
                    "3: [executionContext.cpp::enqueueV3] Error Code 3: API Usage Error (Parameter "
                    f"check failed, condition: mContext.profileObliviousBindings.at(...). Address is "
                    f"not set for input tensor {t['name']}. Call setInputTensorAddress or "
                    "setTensorAddress before enqueue/execute.)"
                )
            shape = shapes[t["name"]] if t["mode"] == "INPUT" else out_shapes[t["name"]]
            nbytes = int(np.prod(shape)) * np.dtype(_NP[t["dtype"]]).itemsize
            if not rt.check_range(ptr, nbytes, device_accessible=t["location"] == "DEVICE"):
                return self._error(
                    "1: [executionContext.cpp] Error Code 1: Cuda Runtime (an illegal memory access "
                    f"was encountered: tensor {t['name']})"
                )
            plan.append((t, ptr, shape))

        def work() -> None:
            feed = {}
            for t, ptr, shape in plan:
                if t["mode"] == "INPUT":
                    dt = np.dtype(_NP[t["dtype"]])
                    raw = rt.read(ptr, int(np.prod(shape)) * dt.itemsize)
                    feed[t["name"]] = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
            outs = eng._run(feed)
            for t, ptr, _shape in plan:
                if t["mode"] == "OUTPUT":
                    value = np.ascontiguousarray(outs[t["name"]].astype(_NP[t["dtype"]]))
                    rt.write(ptr, value.tobytes())

        # TensorRT checks CUDA's last error after its launches (cudaGetLastError), so an error
        # left by an earlier failed call on this thread (a failed stream capture that nobody
        # cleared, defect 14 of the audit) fails this enqueue, and reading it clears it.
        stale = rt.take_last_error()
        if stale is not None:
            return self._error(f"1: [executionContext.cpp] Error Code 1: Cuda Runtime ({stale})")
        if not rt.enqueue(
            stream_handle, work, duration_ms=float(eng._h["inference_ms"]), label="trt"
        ):
            # the runtime refused the work (e.g. an operation that stream capture forbids); its
            # error stays CUDA's last error until someone reads it
            return self._error(
                "1: [executionContext.cpp] Error Code 1: Cuda Runtime (operation not permitted "
                "when stream is capturing)"
            )
        self._executed = True
        if self._profiler is not None and self._emits:
            rt.synchronize(stream_handle)
            total_w = sum(layer["weight"] for layer in eng._h["layers"]) or 1.0
            for layer in eng._h["layers"]:
                self._profiler.report_layer_time(
                    layer["name"], eng._h["inference_ms"] * layer["weight"] / total_w
                )
        return True

    def report_to_profiler(self) -> bool:
        return self._profiler is not None


class EngineInspector:
    __slots__ = ("_context", "_engine")

    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._context: Any = None

    @property
    def execution_context(self) -> Any:
        return self._context

    @execution_context.setter
    def execution_context(self, value: Any) -> None:
        self._context = value

    def _layer(self, layer: dict[str, Any]) -> Any:
        if self._engine._h["verbosity"] != "DETAILED":
            return layer["name"]
        fmt = {
            "FP32": "Row major linear FP32",
            "FP16": "Row major linear FP16 format",
            "INT8": "Channel major INT8 format where channel % 32 == 0",
            "INT32": "Row major linear Int32",
        }
        return {
            "Name": layer["name"],
            "LayerType": "CaskConvolution" if layer["type"] == "Conv" else layer["type"],
            "Inputs": [],
            "Outputs": [
                {
                    "Name": o,
                    "Location": "Device",
                    "Dimensions": [],
                    "Format/Datatype": fmt[layer["precision"]],
                }
                for o in layer["outputs"]
            ],
            "TacticValue": "0x0000000000000000",
        }

    def _listed(self) -> list[dict[str, Any]]:
        """The layers as the inspector lists them. Before TensorRT 10 an engine holds one copy of
        its layers per optimization profile, and the copies of profile N >= 1 carry " [profile N]"
        in their names and tensor names (TREx parser.py; Polygraphy util.py walks
        num_layers // num_optimization_profiles layers per profile). From 10 "layer information
        is not specified per profile" (Polygraphy util.py): each layer is listed once."""
        layers = self._engine._h["layers"]
        copies = self._engine.num_optimization_profiles if CURRENT < (10, 0) else 1
        out = list(layers)
        for p in range(1, copies):
            tag = f" [profile {p}]"
            out += [
                {**x, "name": x["name"] + tag, "outputs": [o + tag for o in x["outputs"]]}
                for x in layers
            ]
        return out

    def get_layer_information(self, layer_index: int, format: Any) -> str:
        listed = self._listed()
        if not 0 <= layer_index < len(listed):
            raise IndexError(f"layer index {layer_index} out of range [0, {len(listed)})")
        layer = self._layer(listed[layer_index])
        return json.dumps(layer) if format == LayerInformationFormat.JSON else str(layer)

    def get_engine_information(self, format: Any) -> str:
        listed = self._listed()
        if format != LayerInformationFormat.JSON:
            return "\n".join(str(x["name"]) for x in listed)
        bindings = [t["name"] for t in self._engine._h["io"]]
        if CURRENT < (10, 0):
            bindings += [
                f"{b} [profile {p}]"
                for p in range(1, self._engine.num_optimization_profiles)
                for b in bindings
            ]
        return json.dumps({"Layers": [self._layer(x) for x in listed], "Bindings": bindings})


def nptype(trt_type: Any) -> Any:
    return _NP[trt_type.name]


def volume(iterable: Any) -> int:
    v = 1
    for x in iterable:
        v *= x
    return v
