"""A strict double of the TensorRT Python API, for tests without TensorRT (tests/trt_double).

Importable as ``tensorrt`` when ``tests/trt_double`` is first on ``sys.path`` (the ``trt_double``
fixture does that, or ``PYTHONPATH`` for a subprocess). ``ORINBENCH_TRT_DOUBLE`` selects the
version: 8.5, 8.6, 10.3 (default) or 11.4. It defines only the part of the API that orinbench
uses, with the differences between those versions, and raises AttributeError for any other name
(module level: ``__getattr__``; classes: ``__slots__``), so that a typo or a name from another
version cannot pass. ``tests/test_api_conformance.py`` checks every name it defines against the
real bindings of 8.6, 10.3 and 11.4.
"""

from __future__ import annotations

from typing import Any

from . import _core, _testing
from ._version import SELECTED, VERSION, has

__version__ = VERSION

#: module-level names -> (first version with it, first version without it)
_MODULE: dict[str, tuple[str | None, str | None]] = {
    "DataType": (None, None),
    "TensorIOMode": (None, None),
    "TensorLocation": (None, None),
    "MemoryPoolType": (None, None),
    "BuilderFlag": (None, None),
    "NetworkDefinitionCreationFlag": (None, None),
    "DeviceType": (None, None),
    "ProfilingVerbosity": (None, None),
    "LayerInformationFormat": (None, None),
    "CalibrationAlgoType": (None, "11.0"),
    "ErrorCode": (None, None),
    "Dims": (None, None),
    "ILogger": (None, None),
    "Logger": (None, None),
    "init_libnvinfer_plugins": (None, None),
    "IProfiler": (None, None),
    "IProgressMonitor": ("10.0", None),
    "IInt8Calibrator": (None, "11.0"),
    "IInt8EntropyCalibrator2": (None, "11.0"),
    "IInt8EntropyCalibrator": (None, "11.0"),
    "IInt8MinMaxCalibrator": (None, "11.0"),
    "IInt8LegacyCalibrator": (None, "11.0"),
    "IHostMemory": (None, None),
    "ITensor": (None, None),
    "INetworkDefinition": (None, None),
    "ParserError": (None, None),
    "OnnxParser": (None, None),
    "IOptimizationProfile": (None, None),
    "ITimingCache": (None, None),
    "IBuilderConfig": (None, None),
    "Builder": (None, None),
    "Runtime": (None, None),
    "ICudaEngine": (None, None),
    "IExecutionContext": (None, None),
    "EngineInspector": (None, None),
    "nptype": (None, None),
    "volume": (None, None),
}

for _name, (_since, _until) in _MODULE.items():
    if has(_since, _until):
        globals()[_name] = getattr(_core, _name)

# the lowercase DataType aliases (trt.float32, ...)
_ALIASES = {
    "float32": "FLOAT", "float16": "HALF", "int8": "INT8", "int32": "INT32", "bool": "BOOL",
    "uint8": "UINT8", "int64": "INT64", "bfloat16": "BF16", "fp8": "FP8", "int4": "INT4",
}  # fmt: skip
for _alias, _member in _ALIASES.items():
    if hasattr(_core.DataType, _member):
        globals()[_alias] = getattr(_core.DataType, _member)

#: every public name this version of the double defines (for the conformance test)
NAMES = sorted(
    [n for n, (s, u) in _MODULE.items() if has(s, u)]
    + [a for a, m in _ALIASES.items() if hasattr(_core.DataType, m)]
)


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"module 'tensorrt' (orinbench's test double of TensorRT {VERSION}, ORINBENCH_TRT_DOUBLE="
        f"{SELECTED}) has no attribute {name!r}"
    )


__all__ = ["_testing", *NAMES]
