"""The variants ``decide`` compares, and how each is made.

ONNX Runtime: ``fp32`` is the model itself, ``fp16`` its FP16 conversion
(:func:`orinbench.precision.fp16.convert_to_fp16`, inputs/outputs and sensitive ops kept FP32),
``int8`` its Q/DQ quantization with the calibration data
(:func:`orinbench.precision.qdq.quantize_qdq`). TensorRT: engines built with
:func:`orinbench.backends.tensorrt.build_engine` at ``fp32``, ``fp16`` and ``int8`` (calibration
data or cache), and with ``--dla`` ``dla-fp16`` / ``dla-int8`` (DLA core 0, GPU fallback), all
sharing one timing cache; an engine whose sidecar matches is reused, not rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

ORT_VARIANTS: tuple[str, ...] = ("fp32", "fp16", "int8")
GPU_VARIANTS: tuple[str, ...] = ("fp32", "fp16", "int8")
DLA_VARIANTS: tuple[str, ...] = ("dla-fp16", "dla-int8")
LABELS: dict[str, str] = {
    "fp32": "FP32",
    "fp16": "FP16",
    "int8": "INT8",
    "dla-fp16": "DLA FP16",
    "dla-int8": "DLA INT8",
}
#: the DLA core DLA variants are built for (Orin AGX/NX have cores 0 and 1)
DLA_CORE = 0


@dataclass(frozen=True)
class Variant:
    """One candidate: how it runs and the file that is benchmarked (ONNX model or engine)."""

    name: str
    backend: str
    artifact: Path
    dla_core: int | None = None
    build: Any = None

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    @property
    def precision(self) -> str:
        return self.name.removeprefix("dla-")

    @property
    def device(self) -> str:
        if self.backend == "onnxruntime":
            return "CPU"
        return "DLA+GPU" if self.dla_core is not None else "GPU"

    @property
    def size_bytes(self) -> int:
        return self.artifact.stat().st_size


def resolve_variants(
    requested: Sequence[str] | None, *, backend: str, dla: bool
) -> tuple[str, ...]:
    """The variant names to compare, checked against the backend and ``--dla``."""
    allowed = ORT_VARIANTS if backend == "onnxruntime" else GPU_VARIANTS + DLA_VARIANTS
    if requested is None:
        names = ORT_VARIANTS if backend == "onnxruntime" else GPU_VARIANTS
        if dla:
            names = names + DLA_VARIANTS
        return names
    names = tuple(dict.fromkeys(n.strip().lower() for n in requested if n.strip()))
    if not names:
        raise UsageError("--variants names no variant", fix="e.g. --variants fp32,fp16,int8")
    for n in names:
        if n not in allowed:
            raise UsageError(
                f"unknown variant '{n}' for the {backend} backend",
                fix=f"choose from {', '.join(allowed)}",
            )
        if n.startswith("dla-") and not dla:
            raise UsageError(f"variant '{n}' needs --dla", fix="add --dla (TensorRT on a Jetson)")
    return names


def onnx_variant_path(workdir: Path, stem: str, name: str) -> Path:
    return workdir / f"{stem}.{name}.onnx"


def engine_variant_path(workdir: Path, stem: str, name: str) -> Path:
    return workdir / f"{stem}.{name}.engine"


def dla_core_count(trt: Any) -> int:
    """DLA cores TensorRT sees (``builder.num_DLA_cores``); 0 where there are none."""
    from ..backends.tensorrt.logger import make_logger

    log = make_logger(trt, min_severity="ERROR")
    builder = trt.Builder(log.ilogger)
    return int(builder.num_DLA_cores)
