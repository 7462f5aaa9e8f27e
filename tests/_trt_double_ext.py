"""More TensorRT behaviour for the double (tests/trt_double), added at run time for issue 9's tests.

The double's builder takes any calibration cache whose algorithm matches and marks every
convolution INT8; its engines never run on the DLA and have no reformat layers. Real TensorRT
(8.5, 8.6, 10.x, builder-flags path) does this instead, and :func:`install` makes the double do
it for one test (undone by ``monkeypatch``):

* **calibration cache of another release** (major.minor of the ``TRT-<code>-`` header): skipped
  ("trt will skip the file if it is incompatible", NVIDIA/TensorRT#1378); the builder then asks
  the calibrator for batches, and a calibrator that only reads a cache has none, so calibration
  fails ("Calibration failure occurred with no scaling factors detected").
* **cache without a scale for some network tensors** (other network, renamed tensors): each is
  logged at WARNING as ``Missing scale and zero-point for tensor X, expect fall back to non-int8
  implementation for any layer consuming or producing given tensor`` (the wording of TensorRT
  8.x/10.x logs, e.g. NVIDIA/TensorRT#3131, #3659), and layers whose tensors lack a scale are
  not INT8 (FP16 with the FP16 flag, else FP32).
* **DLA** (``default_device_type = DLA`` with GPU fallback): layers of op types the DLA cannot
  run are logged at WARNING as ``Layer 'NAME' (TYPE): Unsupported on DLA. Switching this layer's
  device type to GPU.``; consecutive DLA layers become one ``{ForeignNode[first...last]}`` engine
  layer; the build log lists ``---------- Layers Running on DLA ----------`` with ``[DlaLayer]``
  lines and ``---------- Layers Running on GPU ----------`` with ``[GpuLayer] TYPE: name`` lines.
* **reformat layers**: where an engine's first (last) layer is not FP32, a ``Reformatting
  CopyNode for Input (Output) Tensor 0 to <layer>`` layer (type ``Reformat``) converts the FP32
  network input (output); at each GPU/DLA boundary one more converts between the two.

The LayerType TensorRT's inspector gives a DLA ForeignNode could not be checked against a real
engine; this double uses ``ForeignNode`` (orinbench recognises DLA nodes by name and build
settings, not by that type).
"""

from __future__ import annotations

import importlib
import re
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
MISSING = (
    "Missing scale and zero-point for tensor {}, expect fall back to non-int8 implementation "
    "for any layer consuming or producing given tensor"
)


def _release(code: str) -> tuple[int, int] | None:
    if not code.isdigit():
        return None
    n = int(code)
    if n >= 100000:
        return n // 10000, (n // 100) % 100
    return n // 1000, (n // 100) % 10


def install(monkeypatch: pytest.MonkeyPatch, *, ignore_caches: bool = False) -> Any:
    """Patch the imported double (``tensorrt``) with the behaviour in the module docstring.

    ``ignore_caches``: the builder reads no scale from any cache (as when TensorRT silently
    drops a cache it considers incompatible), so every network tensor is "missing".
    """
    core = importlib.import_module("tensorrt._core")
    build_cls = core._Build
    orig_calibrate = build_cls._calibrate
    orig_layers = build_cls._layers
    current = tuple(int(x) for x in core.VERSION.split(".")[:2])

    def network_tensors(self: Any) -> list[str]:
        names = [t.name for t in self.net._inputs]
        for n in self.net._nodes:
            if n.op_type != "Constant":
                names += [o for o in n.output if o]
        return names

    def calibrate(self: Any, calibrator: Any) -> bool:
        self._ext_scales = None
        cache = calibrator.read_calibration_cache()
        text = bytes(cache).decode("utf-8", "replace") if cache else ""
        m = re.match(r"TRT-(\w+)-(\w+)", text)
        algo = core._CACHE_ALGOS[calibrator.get_algorithm().name]
        if m and m.group(2) == algo:
            release = _release(m.group(1))
            if release is not None and release != current:
                # skipped without a word; calibrate from the calibrator's batches instead

                class _NoCache:
                    def __getattr__(self, name: str) -> Any:
                        return getattr(calibrator, name)

                    def read_calibration_cache(self) -> bytes:
                        return b""

                self._ext_skipped = True
                return bool(orig_calibrate(self, _NoCache()))
            scales = {}
            for line in [] if ignore_caches else text.splitlines()[1:]:
                name, sep, _ = line.rpartition(":")
                if sep:
                    scales[name.strip()] = True
            self._ext_scales = scales
            for t in network_tensors(self):
                if t not in scales:
                    core._log(self.logger, "WARNING", MISSING.format(t))
            core._testing.calls["calibration_from_cache"] += 1
            return True
        return bool(orig_calibrate(self, calibrator))

    def layers(self: Any, strongly: bool, *, fp16: bool, int8: bool, has_qdq: bool) -> Any:
        out = orig_layers(self, strongly, fp16=fp16, int8=int8, has_qdq=has_qdq)
        nodes = {(n.name or f"{n.op_type}_{i}"): n for i, n in enumerate(self.net._nodes)}
        scales = getattr(self, "_ext_scales", None)
        if scales is not None:
            for layer in out:
                node = nodes.get(layer["name"])
                if layer["precision"] != "INT8" or node is None:
                    continue
                tensors = [
                    t for t in [*node.input, *node.output] if t and t in set(network_tensors(self))
                ]
                if any(t not in scales for t in tensors):
                    layer["precision"] = "FP16" if fp16 else "FP32"
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

    monkeypatch.setattr(build_cls, "_calibrate", calibrate)
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
