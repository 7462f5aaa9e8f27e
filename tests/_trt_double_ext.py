"""More TensorRT behaviour for the double (tests/trt_double), added at run time for some tests.

The double's builder adds no reformat layers. Real TensorRT (8.5, 8.6, 10.x, builder-flags path)
does, and :func:`install` makes the double do it for one test (undone by ``monkeypatch``):

* **reformat layers**: where an engine's first (last) layer is not FP32, a ``Reformatting
  CopyNode for Input (Output) Tensor 0 to <layer>`` layer (type ``Reformat``) converts the FP32
  network input (output); at each GPU/DLA boundary one more converts between the two.

They stay out of the double itself because they change the layer lists every other TensorRT test
asserts on. DLA placement (layers the DLA cannot run, or not in FP16/INT8, fall back to the GPU
with TensorRT's warning; consecutive DLA layers fused into ``{ForeignNode[first...last]}``;
``[DlaLayer]``/``[GpuLayer]`` log lines) is native to the double
(``tensorrt._core._Build._place_on_dla``). What TensorRT does with calibration caches (a cache
of another release skipped, a ``Missing scale and zero-point for tensor X ...`` warning per
network tensor without a scale and those tensors' layers kept out of INT8) is native to the
double too (``tensorrt._core._Build``); ``install(..., ignore_caches=True)`` only sets its
``_testing.config.ignore_calibration_cache``.

The LayerType TensorRT's inspector gives a DLA ForeignNode could not be checked against a real
engine; this double uses ``ForeignNode`` (orinbench recognises DLA nodes by name and build
settings, not by that type).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest


def install(monkeypatch: pytest.MonkeyPatch, *, ignore_caches: bool = False) -> Any:
    """Patch the imported double (``tensorrt``) with the behaviour in the module docstring.

    ``ignore_caches``: the builder reads no scale from any cache (as when TensorRT silently
    drops a cache it considers incompatible), so every network tensor is "missing".
    """
    core = importlib.import_module("tensorrt._core")
    build_cls = core._Build
    orig_layers = build_cls._layers
    if ignore_caches:
        monkeypatch.setattr(core._testing.config, "ignore_calibration_cache", True)

    def layers(self: Any, strongly: bool, *, fp16: bool, int8: bool, has_qdq: bool) -> Any:
        # the double places DLA layers itself (tensorrt._core._Build._place_on_dla)
        return _add_reformats(orig_layers(self, strongly, fp16=fp16, int8=int8, has_qdq=has_qdq))

    monkeypatch.setattr(build_cls, "_layers", layers)
    return core


def dla_ops() -> frozenset[str]:
    """The op types the double's DLA runs (from the imported double)."""
    return frozenset(importlib.import_module("tensorrt._core").DLA_OPS)


def _reformat(name: str, precision: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "Reformat",
        "precision": precision,
        "weight": 0.05,
        "outputs": [f"{name}_out"],
    }


def _add_reformats(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not layers:
        return layers
    out: list[dict[str, Any]] = []
    if layers[0]["precision"] != "FP32":
        out.append(
            _reformat(
                f"Reformatting CopyNode for Input Tensor 0 to {layers[0]['name']}",
                layers[0]["precision"],
            )
        )
    prev: dict[str, Any] | None = None
    for layer in layers:
        if prev is not None and prev.get("device", "GPU") != layer.get("device", "GPU"):
            out.append(
                _reformat(
                    f"Reformatting CopyNode for Input Tensor 0 to {layer['name']}",
                    layer["precision"],
                )
            )
        out.append(layer)
        prev = layer
    if layers[-1]["precision"] != "FP32":
        out.append(
            _reformat(f"Reformatting CopyNode for Output Tensor 0 to {layers[-1]['name']}", "FP32")
        )
    return out
