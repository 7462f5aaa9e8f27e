"""Per-layer precision of a built engine, from TensorRT's engine inspector.

Engines are built with ``ProfilingVerbosity.DETAILED`` so that the inspector's JSON names each
layer's type and its outputs' ``"Format/Datatype"`` (e.g. ``"Row major linear FP16 format"``).
A layer counts in the precision of its first output. Before TensorRT 10 the inspector lists the
layers once per optimization profile (names suffixed ``[profile N]``); only profile 0 is counted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

#: keywords of "Format/Datatype" strings, most specific first
_PRECISIONS: tuple[tuple[str, str], ...] = (
    ("FP8", "FP8"),
    ("BF16", "BF16"),
    ("BFLOAT16", "BF16"),
    ("FP16", "FP16"),
    ("HALF", "FP16"),
    ("INT8", "INT8"),
    ("INT4", "INT4"),
    ("FP32", "FP32"),
    ("FLOAT", "FP32"),
    ("INT32", "INT32"),
    ("INT64", "INT64"),
    ("BOOL", "BOOL"),
    ("UINT8", "UINT8"),
)
_PROFILE_SUFFIX = re.compile(r"\s*\[profile (\d+)\]\s*$")


def precision_of(format_text: str) -> str:
    upper = format_text.upper()
    for key, name in _PRECISIONS:
        if key in upper:
            return name
    return "unknown"


def layer_precision_summary(trt: Any, engine: Any) -> dict[str, Any] | None:
    """``{"count", "precision": {name: layers}, "types": {layer type: layers}, "source"}``.

    None when the engine was not built with detailed profiling verbosity (then the inspector
    only lists names) or the inspector fails.
    """
    try:
        inspector = engine.create_engine_inspector()
        text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        info = json.loads(text)
    except Exception:  # an inspector failure must never fail a build
        return None
    layers = info.get("Layers") if isinstance(info, dict) else None
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        return None
    precision: Counter[str] = Counter()
    types: Counter[str] = Counter()
    count = 0
    for layer in layers:
        m = _PROFILE_SUFFIX.search(str(layer.get("Name", "")))
        if m and m.group(1) != "0":
            continue
        count += 1
        outputs = layer.get("Outputs") or []
        fmt = str(outputs[0].get("Format/Datatype", "")) if outputs else ""
        precision[precision_of(fmt) if fmt else "unknown"] += 1
        types[str(layer.get("LayerType", "unknown"))] += 1
    return {
        "count": count,
        "precision": dict(precision.most_common()),
        "types": dict(types.most_common()),
        "source": "engine inspector (outputs' Format/Datatype)",
    }
