"""The variants ``decide`` compares, and how each is made.

ONNX Runtime: ``fp32`` is the model itself, ``fp16`` its FP16 conversion
(:func:`orinbench.precision.fp16.convert_to_fp16`, inputs/outputs and sensitive ops kept FP32),
``int8`` its Q/DQ quantization with the calibration data
(:func:`orinbench.precision.qdq.quantize_qdq`). TensorRT: engines built with
:func:`orinbench.backends.tensorrt.build_engine` at ``fp32``, ``fp16`` and ``int8`` (calibration
data or cache), and with ``--dla`` ``dla-fp16`` / ``dla-int8`` (DLA core 0, GPU fallback), all
sharing one timing cache; an engine whose sidecar matches is reused, not rebuilt.

A DLA variant whose build moved most network layers to the GPU (the sidecar's ``dla.mostly_gpu``,
from the build log's fallback lines and the engine inspector) is labelled "DLA FP16 (mostly GPU:
N of M layers fell back)" and its device is "GPU (DLA fallback)", so that its timings are never
shown as a plain DLA figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    def dla_placement(self) -> Mapping[str, Any] | None:
        """The sidecar's ``dla`` entry of a DLA engine (how many layers fell back to the GPU),
        from ``build`` or the engine's sidecar; None for GPU/CPU variants or engines without it."""
        if self.dla_core is None or self.backend != "tensorrt":
            return None
        sidecar = self.build if isinstance(self.build, Mapping) else None
        if sidecar is None:
            from ..backends.tensorrt.sidecar import read_sidecar
            from ..errors import InputFileError

            try:
                sidecar = read_sidecar(self.artifact) or {}
            except InputFileError:  # a label never fails; the engine's own checks will
                sidecar = {}
        dla = sidecar.get("dla")
        return dla if isinstance(dla, Mapping) else None

    @property
    def mostly_gpu(self) -> bool:
        """A DLA variant most of whose layers TensorRT moved to the GPU: its numbers are GPU
        numbers, and its label says so."""
        dla = self.dla_placement
        return bool(dla and dla.get("mostly_gpu"))

    @property
    def label(self) -> str:
        base = LABELS.get(self.name, self.name)
        dla = self.dla_placement
        if dla and dla.get("mostly_gpu"):
            return (
                f"{base} (mostly GPU: {dla.get('fallback_layers')} of "
                f"{dla.get('network_layers')} layers fell back)"
            )
        return base

    @property
    def precision(self) -> str:
        return self.name.removeprefix("dla-")

    @property
    def device(self) -> str:
        if self.backend == "onnxruntime":
            return "CPU"
        if self.dla_core is None:
            return "GPU"
        return "GPU (DLA fallback)" if self.mostly_gpu else "DLA+GPU"

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
