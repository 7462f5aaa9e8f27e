"""Upgrade steps between result schema versions: one pure function per step, dict in, dict out.

A file of an older version is upgraded step by step on load; a newer one is refused, since this
orinbench cannot know what the newer fields mean.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .schema import SCHEMA_VERSION


def _v0_to_v1(d: dict[str, Any]) -> dict[str, Any]:
    """v0 (pre-release): ``latencies_ms`` at top level, ``stats`` flat, no ``quality`` section."""
    out = copy.deepcopy(d)
    lat = out.pop("latencies_ms", None)
    out.setdefault("samples", {})
    if lat is not None:
        out["samples"]["latency"] = lat
    stats = out.get("stats") or {}
    if stats and "latency" not in stats:
        out["stats"] = {"latency": stats}
    out.setdefault("quality", {"stop_reason": out.pop("stop_reason", ""), "warnings": []})
    out.setdefault("throughput", {"fps": out.pop("fps", None)})
    out.setdefault("power", None)
    out.setdefault("stages", None)
    out.setdefault("accuracy", None)
    out.setdefault("extra", {})
    env = out.setdefault("environment", {})
    if isinstance(env.get("backend"), str):
        env["backend"] = {"name": env["backend"], "version": env.pop("backend_version", "")}
    env.setdefault("device", None)
    out["schema_version"] = 1
    return out


def _v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    """v1 did not record ONNX Runtime's providers and thread count (``config.runtime``).

    They are unknown (``null``) for an ONNX Runtime result, never guessed: the gate then refuses
    to compare it with a result that knows them. A TensorRT result has none: ``{}``.
    """
    out = copy.deepcopy(d)
    config = out.setdefault("config", {})
    backend = config.get("backend") or (out.get("environment") or {}).get("backend", {})
    if isinstance(backend, dict):
        backend = backend.get("name", "")
    config["runtime"] = None if backend == "onnxruntime" or not backend else {}
    config.setdefault("shapes", {})
    out["schema_version"] = 2
    return out


#: STEPS[v] upgrades a version-v dict to version v+1
STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1, 1: _v1_to_v2}


def upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """Bring ``d`` to SCHEMA_VERSION. The caller has already refused newer versions."""
    v = int(d.get("schema_version", 0))
    while v < SCHEMA_VERSION:
        d = STEPS[v](d)
        v = int(d["schema_version"])
    return d
