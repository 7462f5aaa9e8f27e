"""Differences between the TensorRT versions orinbench supports: 8.5, 8.6, 10.x and 11.x.

Every version test of the TensorRT backend is made here, from ``trt.__version__``, so that the
rest of the package asks questions ("does this TensorRT have a progress monitor?") rather than
comparing version numbers. The facts, checked against the bindings' sources and the wheels:

============================  ======  ======  ======  ======
feature                        8.5     8.6     10.x    11.x
============================  ======  ======  ======  ======
name-based tensor API           yes     yes     yes     yes
``EXPLICIT_BATCH`` flag         needed  needed  no-op   gone
``STRONGLY_TYPED`` flag         -       -       yes     always on
FP16 / INT8 builder flags       yes     yes     yes     gone
implicit INT8 (calibrators)     yes     yes     yes     gone
``builder_optimization_level``  -       yes     yes     yes
``IProgressMonitor``            -       -       yes     yes
parser ``node_name()``          -       -       yes     yes
inspector layers per profile    yes     yes     no      no
one profile per context [#]_    yes     yes     no      no
============================  ======  ======  ======  ======

.. [#] dynamic-shape engines only: each execution context in concurrent use needs its own
   optimization profile (the runner selects profile *i* for lane *i*, and the build makes one
   identical profile per context, ``BuildOptions.contexts``). Read in the 8.5/8.6/10.3 headers
   and checked against the test double only, never on a real TensorRT.

:data:`GATED_NAMES` declares, for the API conformance test, which TensorRT names orinbench uses
only in some versions; every other name it uses must exist in all of them.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import require_file
from ...errors import BackendError, DependencyMissingError, InputFileError

#: oldest TensorRT with the name-based tensor API (set_input_shape, execute_async_v3)
MIN_VERSION = (8, 5)

#: TensorRT names orinbench uses only in a range of versions: name -> (first version that has it
#: or None, first version without it or None). Checked by tests/test_api_conformance.py against
#: the real bindings; all other names orinbench uses must exist in every supported version.
GATED_NAMES: dict[str, tuple[str | None, str | None]] = {
    "EXPLICIT_BATCH": (None, "10.0"),
    "STRONGLY_TYPED": ("10.0", None),
    "FP16": (None, "11.0"),
    "PREFER_PRECISION_CONSTRAINTS": (None, "11.0"),
    "int8_calibrator": (None, "11.0"),
    "set_calibration_profile": (None, "11.0"),
    "IInt8EntropyCalibrator2": (None, "11.0"),
    "IInt8EntropyCalibrator": (None, "11.0"),
    "IInt8MinMaxCalibrator": (None, "11.0"),
    "builder_optimization_level": ("8.6", None),
    "IProgressMonitor": ("10.0", None),
    "progress_monitor": ("10.0", None),
    "phase_start": ("10.0", None),
    "step_complete": ("10.0", None),
    "phase_finish": ("10.0", None),
    "get_batch_size": (None, "11.0"),
    "get_batch": (None, "11.0"),
    "read_calibration_cache": (None, "11.0"),
    "write_calibration_cache": (None, "11.0"),
    "node_name": ("10.0", None),
    "node_operator": ("10.0", None),
}

#: TensorRT DataType member -> numpy dtype; members a version lacks are skipped (INT64 is 10.0+).
_DTYPES: tuple[tuple[str, str], ...] = (
    ("FLOAT", "float32"),
    ("HALF", "float16"),
    ("INT8", "int8"),
    ("INT32", "int32"),
    ("INT64", "int64"),
    ("BOOL", "bool"),
    ("UINT8", "uint8"),
)


@dataclass(frozen=True, order=True)
class TrtVersion:
    """A TensorRT version as numbers; ``text`` keeps what ``trt.__version__`` said."""

    major: int
    minor: int
    patch: int = 0
    build: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> TrtVersion:
        m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
        if not m:
            raise BackendError(
                f"cannot read the TensorRT version {text!r}",
                fix="check the TensorRT installation (python3 -c 'import tensorrt')",
            )
        nums = [int(g) if g else 0 for g in m.groups()]
        return cls(nums[0], nums[1], nums[2], nums[3], text.strip())

    def at_least(self, spec: str) -> bool:
        want = TrtVersion.parse(spec)
        return (self.major, self.minor, self.patch) >= (want.major, want.minor, want.patch)

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Features:
    """What the running TensorRT can do (see the module docstring's table)."""

    version: TrtVersion
    explicit_batch_flag: bool
    strongly_typed_flag: bool
    always_strongly_typed: bool
    precision_flags: bool
    implicit_int8: bool
    optimization_level: bool
    progress_monitor: bool
    parser_node_names: bool
    layers_per_profile: bool
    #: before 9.0 every execution context of a dynamic-shape engine in concurrent use needs its
    #: own optimization profile (8.5/8.6 NvInferRuntime.h); from 9.0 all may share profile 0
    profile_per_context: bool = False


def trt_version(trt: Any) -> TrtVersion:
    return TrtVersion.parse(str(trt.__version__))


def features(trt: Any) -> Features:
    """The features of the imported TensorRT module; refuses versions older than 8.5."""
    v = trt_version(trt)
    if (v.major, v.minor) < MIN_VERSION:
        raise DependencyMissingError(
            f"TensorRT {v} is too old",
            why="orinbench needs TensorRT 8.5 or newer (the name-based tensor API)",
            fix="use JetPack 5.1 or newer",
        )
    ten = v.major >= 10
    eleven = v.major >= 11
    return Features(
        version=v,
        explicit_batch_flag=not ten,
        strongly_typed_flag=ten and not eleven,
        always_strongly_typed=eleven,
        precision_flags=not eleven,
        implicit_int8=not eleven,
        optimization_level=v.at_least("8.6"),
        progress_monitor=ten,
        parser_node_names=ten,
        layers_per_profile=not ten,
        profile_per_context=v.major < 9,
    )


def network_flags(trt: Any, feats: Features, *, strongly_typed: bool) -> int:
    """The ``create_network`` flags: explicit batch before 10.0, strongly typed where asked."""
    flags = 0
    if feats.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    # On 11.x every network is strongly typed and the flag is deprecated: pass nothing.
    if strongly_typed and feats.strongly_typed_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def numpy_dtype(trt: Any, dt: Any) -> np.dtype[Any]:
    """numpy dtype of a TensorRT DataType; a type numpy lacks (BF16, FP8, INT4) is an error."""
    for member, np_name in _DTYPES:
        if hasattr(trt.DataType, member) and dt == getattr(trt.DataType, member):
            return np.dtype(np_name)
    raise BackendError(
        f"the engine has a tensor of type {dt}, which has no numpy equivalent",
        fix="keep the engine's inputs and outputs in FP32/FP16/INT8/INT32 (e.g. keep_io_fp32)",
    )


@dataclass(frozen=True)
class ParserIssue:
    """One ONNX parser error: the node (name and op type where known) and TensorRT's text."""

    node_name: str
    op_type: str
    message: str

    def line(self) -> str:
        if self.node_name or self.op_type:
            where = f"node {self.node_name or '?'!r} ({self.op_type or '?'})"
        else:
            where = "model"
        return f"{where}: {self.message}"


def parser_issues(parser: Any, feats: Features, nodes: Sequence[Any]) -> list[ParserIssue]:
    """Every error of ``parser``, with node name and op type.

    TensorRT 10 reports them itself (``node_name()``, ``node_operator()``); 8.x only gives the
    node's index in the graph, which is looked up in ``nodes`` (the ONNX graph's node list).
    """
    issues: list[ParserIssue] = []
    for i in range(int(parser.num_errors)):
        error = parser.get_error(i)
        desc = " ".join(str(error.desc()).split())
        name = op = ""
        if feats.parser_node_names:
            name = str(error.node_name() or "")
            op = str(error.node_operator() or "")
        else:
            index = int(error.node())
            if 0 <= index < len(nodes):
                name = str(nodes[index].name) or f"#{index}"
                op = str(nodes[index].op_type)
        issues.append(ParserIssue(node_name=name, op_type=op, message=desc))
    return issues


#: how plugin libraries are opened; a seam for tests, which cannot dlopen a real plugin library
_dlopen: Callable[[str], Any] = lambda path: ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)  # noqa: E731


def load_plugin_libraries(paths: Sequence[str | os.PathLike[str]]) -> list[Any]:
    """dlopen each plugin library (RTLD_GLOBAL) so that its plugin creators register.

    This is what ``trtexec --plugins`` does, and it works for every TensorRT version and for
    libraries that register with ``REGISTER_TENSORRT_PLUGIN`` (``IPluginRegistry.load_library``
    needs an extra entry point that most BEV plugin libraries lack). Must run before the ONNX
    parser sees a custom op and before an engine that uses the plugin is deserialized.
    """
    handles = []
    for raw in paths:
        path = Path(raw)
        try:
            require_file(path, what="plugin library")
        except InputFileError as exc:
            raise InputFileError(
                f"plugin library not found: {path}",
                fix="check the --plugins path (build the plugin for this JetPack first)",
            ) from exc
        try:
            handles.append(_dlopen(str(path.resolve())))
        except OSError as exc:
            raise InputFileError(
                f"cannot load plugin library {path}",
                why=" ".join(str(exc).split()) or type(exc).__name__,
                fix="pass a shared library built for this TensorRT and CUDA (check with ldd)",
            ) from exc
    return handles


def tensor_location_is_host(trt: Any, engine: Any, name: str) -> bool:
    """Shape tensors (inputs whose values set shapes) live on the host, not the device."""
    return bool(engine.get_tensor_location(name) == trt.TensorLocation.HOST)


def is_input(trt: Any, engine: Any, name: str) -> bool:
    return bool(engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT)
