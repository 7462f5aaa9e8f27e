"""What makes two results of one model comparable beyond the environment: the run's own settings.

Two keys, each stored in ``config`` (schema v2):

* ``shapes``: the concrete input shapes, batch included. A 160x160 run is a different workload
  from a 320x320 one; no tolerance makes their latencies comparable, and no flag overrides it.
* ``runtime``: ONNX Runtime's execution providers and intra-op thread count
  (:func:`~orinbench.results.schema.runtime_settings`). A different thread count is a different
  setup, like a different power mode: it can be compared on purpose (``--allow-env-mismatch``).

Unknown is never equal to known. A value one side does not know (``config.shapes`` empty, as in
results of some pre-release tools; ``config.runtime`` null, as in every ONNX Runtime result
upgraded from schema v1) differs from a value the other side knows; two unknowns are equal,
since there is nothing to tell them apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .schema import Result

#: the comparability keys of the run, in the order they are reported
RUN_KEYS: tuple[str, ...] = ("shapes", "runtime.providers", "runtime.intra_op_threads")
#: the keys that no flag may override: a different workload, not a different setup
WORKLOAD_KEYS: frozenset[str] = frozenset({"shapes"})
#: the value shown for an unknown key
UNKNOWN = "unknown"
_TAG_MAX = 64


def format_shapes(shapes: Mapping[str, Sequence[int]] | None) -> str:
    """``x:1x3x320x320`` (inputs in name order, ``,`` between them), or ``unknown``."""
    if not shapes:
        return UNKNOWN
    return ",".join(
        f"{name}:{'x'.join(str(d) for d in dims)}" for name, dims in sorted(shapes.items())
    )


def shape_tag(shapes: Mapping[str, Sequence[int]] | None) -> str | None:
    """A short, path-safe label of the input shapes, or None when they are unknown.

    One input: ``1x3x320x320``; several: ``img-1x6x3x256x704_pts-1x40000x5``. A label longer
    than 64 characters keeps its start and ends in 8 hex digits of a hash of the whole.
    """
    if not shapes:
        return None
    if len(shapes) == 1:
        text = "x".join(str(d) for d in next(iter(shapes.values())))
    else:
        text = "_".join(
            f"{name}-{'x'.join(str(d) for d in dims)}" for name, dims in sorted(shapes.items())
        )
    text = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "shapes"
    if len(text) > _TAG_MAX:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        text = f"{text[: _TAG_MAX - 9]}-{digest}"
    return text


def run_values(result: Result) -> dict[str, Any]:
    """The :data:`RUN_KEYS` of ``result``; None where the result does not know the value."""
    cfg = result.config
    shapes = {k: [int(d) for d in v] for k, v in cfg.shapes.items()} if cfg.shapes else None
    rt = cfg.runtime
    if rt is None:
        providers = threads = None
    else:
        # a backend without such settings stores {}: "not applicable", equal on both sides
        providers = list(rt.get("providers", [])) if "providers" in rt else "n/a"
        threads = rt.get("intra_op_threads", "n/a")
    return {"shapes": shapes, "runtime.providers": providers, "runtime.intra_op_threads": threads}


def _show(key: str, value: Any) -> str:
    if value is None:
        return UNKNOWN
    if key == "shapes":
        return format_shapes(value)
    if key == "runtime.providers" and isinstance(value, list):
        return ",".join(value) or "none"
    if key == "runtime.intra_op_threads" and value == 0:
        return "0 (ONNX Runtime's choice)"
    return str(value)


@dataclass(frozen=True)
class RunDifference:
    key: str
    result: str
    baseline: str

    @property
    def workload(self) -> bool:
        return self.key in WORKLOAD_KEYS

    def describe(self) -> str:
        name = {
            "shapes": "input shapes",
            "runtime.providers": "ONNX Runtime providers",
            "runtime.intra_op_threads": "ONNX Runtime intra-op threads",
        }[self.key]
        return f"{name}: result {self.result} vs baseline {self.baseline}"


def run_differences(result: Result, baseline: Result) -> list[RunDifference]:
    """Each run key on which ``result`` and ``baseline`` differ (unknown differs from known)."""
    a, b = run_values(result), run_values(baseline)
    return [
        RunDifference(key, _show(key, a[key]), _show(key, b[key]))
        for key in RUN_KEYS
        if a[key] != b[key]
    ]
