"""Per-layer precision of a built engine, from TensorRT's engine inspector.

Engines are built with ``ProfilingVerbosity.DETAILED`` so that the inspector's JSON names each
layer's type and its outputs' ``"Format/Datatype"`` (e.g. ``"Row major linear FP16 format"``).
A layer counts in the precision of its first output.

Optimization profiles: before TensorRT 10 the engine holds one copy of its layers per optimization
profile, and the inspector lists them all, the copies of profile N >= 1 with `` [profile N]``
appended to their names (profile 0's are unsuffixed; TREx ``parser.py`` filters them so, and
Polygraphy's ``util.py`` walks ``num_layers // num_optimization_profiles`` layers per profile).
From TensorRT 10 "layer information is not specified per profile" (Polygraphy): every layer is
listed once. :func:`profile0_layers` keeps profile 0's layers, which is right for both. This was
checked against the TensorRT double (8.5/8.6/10.3 modelled as above) and those upstream sources,
never against a real engine.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

#: keywords of "Format/Datatype" strings, most specific first: "UINT8" before "INT8", which it
#: contains ("Row major linear UInt8 format", "Channel major UInt8 format": TREx activations.py)
_PRECISIONS: tuple[tuple[str, str], ...] = (
    ("UINT8", "UINT8"),
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
)
#: the suffix TensorRT < 10 gives the layer copies of optimization profile N >= 1
_PROFILE_SUFFIX = re.compile(r"\[profile +(\d+)\]")


def profile_of(name: str) -> int:
    """The optimization profile a layer (or binding) name belongs to: N for a name carrying
    ``[profile N]``, else 0."""
    m = _PROFILE_SUFFIX.search(name)
    return int(m.group(1)) if m else 0


def profile0_layers(layers: Iterable[Any]) -> list[Any]:
    """The inspector layers of optimization profile 0 (all of them from TensorRT 10). Entries
    are dicts (DETAILED verbosity) or bare names (LAYER_NAMES_ONLY)."""
    out = []
    for layer in layers:
        name = layer.get("Name", "") if isinstance(layer, Mapping) else layer
        if profile_of(str(name)) == 0:
            out.append(layer)
    return out


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
    for layer in profile0_layers(layers):
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
