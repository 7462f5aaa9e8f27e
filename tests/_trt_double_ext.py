"""More TensorRT behaviour for the double (tests/trt_double), added at run time for some tests.

The double's builder runs every layer on the GPU and adds no reformat layers. Real TensorRT
(8.5, 8.6, 10.x, builder-flags path) does this instead, and :func:`install` makes the double do
it for one test (undone by ``monkeypatch``):

* **DLA** (``default_device_type = DLA`` with GPU fallback): layers of op types the DLA cannot
  run are logged at WARNING as ``Layer 'NAME' (TYPE): Unsupported on DLA. Switching this layer's
  device type to GPU.``; consecutive DLA layers become one ``{ForeignNode[first...last]}`` engine
  layer; the build log lists ``---------- Layers Running on DLA ----------`` with ``[DlaLayer]``
  lines and ``---------- Layers Running on GPU ----------`` with ``[GpuLayer] TYPE: name`` lines.
* **reformat layers**: where an engine's first (last) layer is not FP32, a ``Reformatting
  CopyNode for Input (Output) Tensor 0 to <layer>`` layer (type ``Reformat``) converts the FP32
  network input (output); at each GPU/DLA boundary one more converts between the two.

They stay out of the double itself because they change the layer lists every other TensorRT test
asserts on. What TensorRT does with calibration caches (a cache of another release skipped, a
``Missing scale and zero-point for tensor X ...`` warning per network tensor without a scale and
those tensors' layers kept out of INT8) is native to the double (``tensorrt._core._Build``);
``install(..., ignore_caches=True)`` only sets its ``_testing.config.ignore_calibration_cache``.

The LayerType TensorRT's inspector gives a DLA ForeignNode could not be checked against a real
engine; this double uses ``ForeignNode`` (orinbench recognises DLA nodes by name and build
settings, not by that type).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

#: op types the simulated DLA runs (the rest fall back to the GPU)
DLA_OPS = frozenset({
    "Conv", "ConvTranspose", "Relu", "Sigmoid", "Tanh", "Clip", "MaxPool", "AveragePool",
    "GlobalAveragePool", "BatchNormalization", "Add", "Mul", "Sub", "Concat", "Resize",
})  # fmt: skip
#: TensorRT layer-type names printed in DLA log lines
_TRT_TYPE = {
    "Conv": "CONVOLUTION", "Relu": "ACTIVATION", "Sigmoid": "ACTIVATION", "Reshape": "SHUFFLE",
    "Transpose": "SHUFFLE", "Identity": "IDENTITY", "Gather": "GATHER", "ReduceSum": "REDUCE",
    "Softmax": "SOFTMAX", "Split": "SLICE", "Concat": "CONCATENATION", "Add": "ELEMENTWISE",
    "Mul": "ELEMENTWISE", "MaxPool": "POOLING", "Resize": "RESIZE",
}  # fmt: skip


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
        out = orig_layers(self, strongly, fp16=fp16, int8=int8, has_qdq=has_qdq)
        nodes = {(n.name or f"{n.op_type}_{i}"): n for i, n in enumerate(self.net._nodes)}
        dla = self.config._device_type == core.DeviceType.DLA
        if dla:
            out = _place_on_dla(self, out, nodes)
        return _add_reformats(out)

    def _place_on_dla(self: Any, out: list[dict[str, Any]], nodes: dict[str, Any]) -> list[Any]:
        placed = []
        for layer in out:
            node = nodes.get(layer["name"])
            op = node.op_type if node is not None else layer["type"]
            on_dla = op in DLA_OPS
            if not on_dla:
                core._log(
                    self.logger,
                    "WARNING",
                    f"Layer '{layer['name']}' ({_TRT_TYPE.get(op, op.upper())}): Unsupported on "
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
            gpu_lines.append(f"[GpuLayer] {_TRT_TYPE.get(op, op.upper())}: {layer['name']}")
        flush()
        core._log(self.logger, "INFO", "---------- Layers Running on DLA ----------")
        for name in dla_names:
            core._log(self.logger, "INFO", f"[DlaLayer] {name}")
        core._log(self.logger, "INFO", "---------- Layers Running on GPU ----------")
        for line in gpu_lines:
            core._log(self.logger, "INFO", line)
        return fused

    monkeypatch.setattr(build_cls, "_layers", layers)
    return core


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
