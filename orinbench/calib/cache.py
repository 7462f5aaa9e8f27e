"""TensorRT INT8 calibration caches: read, write, inspect, compare, check against a network.

The format TensorRT writes (``IInt8Calibrator.write_calibration_cache``) is text::

    TRT-8601-EntropyCalibration2
    images: 3c010a14
    /backbone/conv1/Conv_output_0: 3d8f5c29
    ...

The header is ``TRT-<version>-<algorithm>``. ``<version>`` is TensorRT's ``NV_TENSORRT_VERSION``:
``major*1000 + minor*100 + patch`` up to TensorRT 8 (8.5.2 -> ``8502``, 8.6.1 -> ``8601``) and
``major*10000 + minor*100 + patch`` from TensorRT 10 (10.3.0 -> ``100300``). Some tools write a
placeholder such as ``8XXX``; it is accepted and reported as an unknown version. ``<algorithm>`` is
``EntropyCalibration2``, ``EntropyCalibration``, ``MinMaxCalibration`` or ``LegacyCalibration``.

Each following line is ``<tensor name>: <hex>``, where ``<hex>`` is the IEEE-754 float32 bit pattern
of the tensor's *scale*, written big-endian as 8 lowercase hex digits (some writers drop leading
zeros; they are accepted). The tensor's dynamic range is ``scale * 127``.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, require_file
from ..errors import CalibrationError

#: header algorithm names -> the short names orinbench uses (``--algo``)
ALGORITHMS: Mapping[str, str] = {
    "EntropyCalibration2": "entropy2",
    "EntropyCalibration": "entropy",
    "MinMaxCalibration": "minmax",
    "LegacyCalibration": "legacy",
}
ALGORITHM_HEADERS: Mapping[str, str] = {v: k for k, v in ALGORITHMS.items()}
#: INT8 symmetric range: a tensor's dynamic range is scale * INT8_MAX
INT8_MAX = 127.0

_HEADER_RE = re.compile(r"^TRT-(?P<version>[0-9A-Za-z]+)-(?P<algo>[A-Za-z0-9]+)$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{1,8}$")


def encode_version(version: str) -> str:
    """``"8.6.1"`` -> ``"8601"``, ``"10.3.0"`` -> ``"100300"`` (TensorRT's NV_TENSORRT_VERSION)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]]
    if not parts:
        raise CalibrationError(f"'{version}' is not a TensorRT version", fix="pass e.g. 8.6.1")
    major, minor, patch = [*parts, 0, 0][:3]
    if major >= 10:
        return str(major * 10000 + minor * 100 + patch)
    return str(major * 1000 + minor * 100 + patch)


def decode_version(code: str) -> str | None:
    """``"8601"`` -> ``"8.6.1"``, ``"100300"`` -> ``"10.3.0"``; None for placeholders like 8XXX."""
    if not code.isdigit():
        return None
    n = int(code)
    if n >= 100000:  # TensorRT 10 and later: major*10000 + minor*100 + patch
        return f"{n // 10000}.{(n // 100) % 100}.{n % 100}"
    return f"{n // 1000}.{(n // 100) % 10}.{n % 100}"


def same_release(a: str, b: str) -> bool:
    """Whether two TensorRT versions share major.minor (what a calibration cache depends on)."""
    return a.split(".")[:2] == b.split(".")[:2]


def scale_to_hex(scale: float) -> str:
    return struct.pack(">f", float(scale)).hex()


def hex_to_scale(text: str) -> float:
    return float(struct.unpack(">f", bytes.fromhex(text.zfill(8)))[0])


@dataclass(frozen=True)
class CalibrationCache:
    """A parsed calibration cache. ``scales`` keeps the file's order."""

    version_code: str
    algorithm: str
    scales: Mapping[str, float] = field(default_factory=dict)

    @property
    def header(self) -> str:
        return f"TRT-{self.version_code}-{self.algorithm}"

    @property
    def trt_version(self) -> str | None:
        """The TensorRT version that wrote the cache (``"8.6.1"``), None when unknown."""
        return decode_version(self.version_code)

    @property
    def calibrator(self) -> str:
        """Calibrator kind: ``entropy2``, ``entropy``, ``minmax``, ``legacy``, else the raw name."""
        return ALGORITHMS.get(self.algorithm, self.algorithm)

    def dynamic_range(self, name: str) -> float:
        return self.scales[name] * INT8_MAX

    def to_text(self) -> str:
        lines = [self.header] + [f"{k}: {scale_to_hex(v)}" for k, v in self.scales.items()]
        return "\n".join(lines) + "\n"

    def to_bytes(self) -> bytes:
        return self.to_text().encode("utf-8")

    def summary(self) -> dict[str, Any]:
        """What ``orinbench calib inspect`` shows: header, kind, version, count, scale range."""
        values = np.array([v for v in self.scales.values() if math.isfinite(v)], dtype=np.float64)
        positive = values[values > 0]
        rng: dict[str, Any] = {}
        if positive.size:
            usable = {k: v for k, v in self.scales.items() if math.isfinite(v) and v > 0}
            lo_name = min(usable, key=usable.__getitem__)
            hi_name = max(usable, key=usable.__getitem__)
            rng = {
                "min": float(positive.min()),
                "max": float(positive.max()),
                "median": float(np.median(positive)),
                "min_tensor": lo_name,
                "max_tensor": hi_name,
                "dynamic_range_min": float(positive.min() * INT8_MAX),
                "dynamic_range_max": float(positive.max() * INT8_MAX),
            }
        return {
            "header": self.header,
            "calibrator": self.calibrator,
            "algorithm": self.algorithm,
            "trt_version": self.trt_version,
            "version_code": self.version_code,
            "tensor_count": len(self.scales),
            "zero_scales": int(sum(1 for v in self.scales.values() if v == 0)),
            "nonfinite_scales": int(sum(1 for v in self.scales.values() if not math.isfinite(v))),
            "scale": rng,
        }


def make_cache(trt_version: str, algo: str, scales: Mapping[str, float]) -> CalibrationCache:
    """A cache as TensorRT ``trt_version`` would write it with calibrator ``algo`` (short name)."""
    if algo not in ALGORITHM_HEADERS:
        raise CalibrationError(
            f"unknown calibrator '{algo}'", fix=f"use one of {', '.join(ALGORITHM_HEADERS)}"
        )
    # scales are float32 in the file: keep exactly what a reader will see
    as_f32 = {k: float(np.float32(v)) for k, v in scales.items()}
    return CalibrationCache(encode_version(trt_version), ALGORITHM_HEADERS[algo], as_f32)


def parse_cache(data: bytes | str, *, source: str = "<cache>") -> CalibrationCache:
    """Parse cache bytes; a foreign header or a bad line is a one-line :class:`CalibrationError`."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CalibrationError(
                f"{source} is not a TensorRT calibration cache",
                why="it is not text (TensorRT caches are text: a TRT-<version>-<algorithm> line, "
                "then 'tensor: hex' lines)",
                fix="pass the file that TensorRT's calibrator wrote (e.g. calib/NAME.cache)",
            ) from exc
    else:
        text = data
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    m = _HEADER_RE.match(first)
    if not m:
        shown = first if len(first) <= 60 else first[:57] + "..."
        raise CalibrationError(
            f"{source} is not a TensorRT calibration cache",
            why=f"its first line {shown!r} is not a TRT-<version>-<algorithm> header",
            fix="pass the file that TensorRT's calibrator wrote (e.g. calib/NAME.cache)",
        )
    scales: dict[str, float] = {}
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line:
            continue
        name, sep, value = line.rpartition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not _HEX_RE.match(value):
            raise CalibrationError(
                f"{source} line {number} is not 'tensor: hex-scale'",
                why=f"it reads {line[:80]!r}",
                fix="regenerate the cache with 'orinbench calibrate' (was it edited by hand?)",
            )
        if name in scales:
            raise CalibrationError(
                f"{source} line {number}: tensor '{name}' appears twice",
                fix="regenerate the cache; merged caches must hold each tensor once",
            )
        scales[name] = hex_to_scale(value)
    return CalibrationCache(m.group("version"), m.group("algo"), scales)


def read_cache(path: str | os.PathLike[str]) -> CalibrationCache:
    p = require_file(path, what="calibration cache")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"cannot read {p}", why=exc.strerror or str(exc)) from exc
    return parse_cache(data, source=str(p))


def write_cache(path: str | os.PathLike[str], cache: CalibrationCache | bytes) -> Path:
    """Write a cache atomically. Raw bytes (from TensorRT) are checked before they are written."""
    data = cache if isinstance(cache, bytes) else cache.to_bytes()
    if isinstance(cache, bytes):
        parse_cache(cache, source="the cache TensorRT produced")
    return atomic_write_bytes(path, data)


def check_cache(
    cache: CalibrationCache,
    *,
    trt_version: str | None = None,
    network_tensors: Iterable[str] | None = None,
    source: str = "the cache",
) -> list[str]:
    """Warnings about using ``cache`` with TensorRT ``trt_version`` for a network's tensors.

    Returns one message per finding: written by another TensorRT release (TensorRT may ignore it
    and calibrate again, or refuse it), tensors of the network that the cache lacks (their layers
    stay out of INT8), unusable scales.
    """
    found: list[str] = []
    if trt_version is not None:
        own = cache.trt_version
        if own is None:
            found.append(
                f"{source} does not say which TensorRT wrote it (header {cache.header}); "
                f"this is TensorRT {trt_version}"
            )
        elif not same_release(own, trt_version):
            found.append(
                f"{source} comes from TensorRT {own}, this is TensorRT {trt_version}: TensorRT "
                "may ignore it and calibrate again; regenerate it with 'orinbench calibrate'"
            )
    if network_tensors is not None:
        wanted = list(dict.fromkeys(network_tensors))
        missing = [t for t in wanted if t not in cache.scales]
        if missing:
            shown = ", ".join(missing[:5])
            if len(missing) > 5:
                shown += f", ... ({len(missing) - 5} more)"
            found.append(
                f"{source} lacks {len(missing)} of the network's {len(wanted)} tensors ({shown}): "
                "their layers will not run in INT8; calibrate again for this model"
            )
    bad = [k for k, v in cache.scales.items() if not math.isfinite(v) or v < 0]
    if bad:
        found.append(
            f"{source} has {len(bad)} unusable (negative or non-finite) scales, e.g. {bad[0]}"
        )
    return found


@dataclass(frozen=True)
class TensorDrift:
    name: str
    scale_a: float
    scale_b: float

    @property
    def rel_change(self) -> float:
        """(b - a) / a; inf when a is 0 and b is not."""
        if self.scale_a == 0:
            return 0.0 if self.scale_b == 0 else math.inf
        return (self.scale_b - self.scale_a) / self.scale_a

    def to_dict(self) -> dict[str, Any]:
        rel = self.rel_change
        return {
            "tensor": self.name,
            "scale_a": self.scale_a,
            "scale_b": self.scale_b,
            "rel_change": rel if math.isfinite(rel) else None,
        }


@dataclass(frozen=True)
class CacheDiff:
    """Per-tensor scale drift between two caches, largest relative change first."""

    header_a: str
    header_b: str
    drifts: tuple[TensorDrift, ...]
    only_in_a: tuple[str, ...]
    only_in_b: tuple[str, ...]

    @property
    def max_abs_rel_change(self) -> float:
        return max((abs(d.rel_change) for d in self.drifts), default=0.0)

    @property
    def median_abs_rel_change(self) -> float:
        if not self.drifts:
            return 0.0
        vals = [abs(d.rel_change) for d in self.drifts]
        return float(np.median(np.array(vals, dtype=np.float64)))

    def to_dict(self, *, top: int | None = None) -> dict[str, Any]:
        shown = self.drifts if top is None else self.drifts[:top]
        mx = self.max_abs_rel_change
        return {
            "header_a": self.header_a,
            "header_b": self.header_b,
            "common": len(self.drifts),
            "changed": int(sum(1 for d in self.drifts if d.scale_a != d.scale_b)),
            "max_abs_rel_change": mx if math.isfinite(mx) else None,
            "median_abs_rel_change": self.median_abs_rel_change,
            "only_in_a": list(self.only_in_a),
            "only_in_b": list(self.only_in_b),
            "drifts": [d.to_dict() for d in shown],
        }


def diff_caches(a: CalibrationCache, b: CalibrationCache) -> CacheDiff:
    common = [k for k in a.scales if k in b.scales]
    drifts = sorted(
        (TensorDrift(k, a.scales[k], b.scales[k]) for k in common),
        key=lambda d: (-abs(d.rel_change) if not math.isnan(d.rel_change) else 0.0, d.name),
    )
    return CacheDiff(
        header_a=a.header,
        header_b=b.header,
        drifts=tuple(drifts),
        only_in_a=tuple(k for k in a.scales if k not in b.scales),
        only_in_b=tuple(k for k in b.scales if k not in a.scales),
    )


#: ONNX ops whose outputs TensorRT may give no INT8 scale of their own: data movement that keeps
#: its input's range (Reshape/Flatten/Squeeze/Unsqueeze/Transpose, Identity/Dropout), shape and
#: constant producers, casts, and Softmax. Evidence: "not all layers has scale, e.g, for identity
#: layer there is not scale" (NVIDIA/TensorRT#2430); builds on a cache TensorRT calibrated itself
#: still log "Missing scale and zero-point" for ".../Flatten_output_0" and ".../Softmax_output_0"
#: (#3131, #3659). The rest of the list is by analogy (same layer kinds), not observed. Leaving
#: them out of the count means a cache TensorRT wrote for the same network is never "partial"
#: because of them; a cache that has them is not penalised either.
NO_SCALE_OPS = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout", "Shape",
    "Size", "ConstantOfShape", "Cast", "CastLike", "Expand", "Softmax", "LogSoftmax",
})  # fmt: skip


def network_activation_tensors(model: Any) -> list[str]:
    """Names of the float tensors TensorRT calibrates in an ONNX model: the float graph inputs and
    the float outputs of its nodes, without Constant nodes, integer shape arithmetic and the ops
    in :data:`NO_SCALE_OPS` (tensors TensorRT may leave without a scale of their own). This is
    the denominator of the cache coverage check (backends/tensorrt/cache_usage.py); it was
    checked against the TensorRT double and the issues cited above, never a real TensorRT."""
    import onnx

    inferred = model
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort: unknown types fall back to "float"
        inferred = model
    types: dict[str, int] = {}
    for vi in (
        list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
    ):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    floats = {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
    inits = {i.name for i in model.graph.initializer}
    names: list[str] = [
        vi.name for vi in model.graph.input if vi.name not in inits and types.get(vi.name) in floats
    ]
    for node in model.graph.node:
        if node.op_type == "Constant" or node.op_type in NO_SCALE_OPS:
            continue
        for out in node.output:
            if out and types.get(out, onnx.TensorProto.FLOAT) in floats:
                names.append(out)
    return names
