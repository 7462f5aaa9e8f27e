"""The model zoo: synthetic BEV models in the shapes of published ones, one ONNX file per stage.

Every model is built with onnx + numpy from a seed (random weights: for timing, not accuracy)
in two sizes: ``tiny`` (runs in milliseconds on a CPU; what tests use) and ``full`` (the
published model's input size, parameter count and FLOPs to within the same order; see
docs/zoo.md). Stages chain by name: every input of a stage is the model input or an output of
an earlier stage with the same name, dtype and shape.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from .._io import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file
from ..errors import InternalError, UsageError
from ..model.inspect import tensor_spec
from ..model.load import verify_written_model
from ..results.schema import TensorSpec

SIZES = ("tiny", "full")
#: bump when a builder changes the graphs it makes, so that cached exports are rebuilt
ZOO_FORMAT = 1


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: its name, what it is, its sizes and its stages in execution order."""

    name: str
    description: str
    sizes: tuple[str, ...]
    stages: tuple[str, ...]
    reference: str
    module: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "sizes": list(self.sizes),
            "stages": list(self.stages),
            "reference": self.reference,
        }


_ENTRIES: tuple[ZooEntry, ...] = (
    ZooEntry(
        name="sample-bev",
        description="6-camera LSS detector with detection and map heads, one file "
        "(orinbench's demo model)",
        sizes=SIZES,
        stages=("model",),
        reference="orinbench (Lift-Splat-Shoot, Philion & Fidler 2020)",
        module="sample_bev",
    ),
    ZooEntry(
        name="bevfusion-camera",
        description="BEVFusion camera branch, split as NVIDIA's CUDA-BEVFusion engines, "
        "ResNet-50, TransFusion and map heads",
        sizes=SIZES,
        stages=("camera_backbone", "vtransform", "fuser", "head_bbox", "head_map"),
        reference="Liu et al. 2022, arXiv 2205.13542; NVIDIA-AI-IOT/Lidar_AI_Solution",
        module="bevfusion_camera",
    ),
    ZooEntry(
        name="bevdet",
        description="BEVDet-R50: ResNet-50, LSS view transform, BEV ResNet + FPN, CenterPoint head",
        sizes=SIZES,
        stages=("backbone", "view_transform", "bev_encoder", "head"),
        reference="Huang et al. 2021, arXiv 2112.11790",
        module="bevdet",
    ),
    ZooEntry(
        name="petrv2",
        description="PETRv2 with VoVNetV2-99: 3D position embedding, 900 queries, "
        "6-layer transformer decoder over 6 views",
        sizes=SIZES,
        stages=("backbone", "decoder"),
        reference="Liu et al. 2022, arXiv 2206.01256",
        module="petrv2",
    ),
)


def list_models() -> list[ZooEntry]:
    """Every zoo model, in a stable order."""
    return list(_ENTRIES)


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; a one-line :class:`UsageError` listing the names otherwise."""
    for entry in _ENTRIES:
        if entry.name == name:
            return entry
    names = ", ".join(e.name for e in _ENTRIES)
    raise UsageError(f"no zoo model named {name!r}", fix=f"choose one of {names}")


def _check_size(entry: ZooEntry, size: str) -> None:
    if size not in entry.sizes:
        raise UsageError(
            f"zoo model {entry.name!r} has no size {size!r}",
            fix=f"choose one of {', '.join(entry.sizes)}",
        )


def build_model(name: str, *, size: str = "tiny", seed: int = 0) -> dict[str, onnx.ModelProto]:
    """Build every stage of zoo model ``name`` in memory: stage name -> model, in order."""
    entry = get_entry(name)
    _check_size(entry, size)
    module = importlib.import_module(f"{__package__}.{entry.module}")
    if entry.module == "sample_bev":
        stages = {"model": module.build_sample_bev(size, seed=seed)}
    else:
        stages = module.build(size, seed=seed)
    if tuple(stages) != entry.stages:
        raise InternalError(f"zoo model {name} built stages {list(stages)}, not {entry.stages}")
    return stages


def _specs(values: Any) -> list[TensorSpec]:
    return [tensor_spec(v) for v in values]


def chain_problems(stages: Mapping[str, onnx.ModelProto]) -> list[str]:
    """What breaks the stage chain: an input that no earlier stage produces with the same dtype
    and shape (the first stage's inputs are the pipeline's inputs). Empty when it chains."""
    problems: list[str] = []
    produced: dict[str, TensorSpec] = {}
    for i, (name, model) in enumerate(stages.items()):
        for spec in _specs(model.graph.input):
            if i == 0:
                continue
            source = produced.get(spec.name)
            if source is None:
                problems.append(f"stage {name}: input {spec.name!r} is not produced before it")
            elif (source.dtype, source.shape) != (spec.dtype, spec.shape):
                problems.append(
                    f"stage {name}: input {spec.name!r} is {spec.dtype}{list(spec.shape)} but "
                    f"the earlier stage makes {source.dtype}{list(source.shape)}"
                )
        for spec in _specs(model.graph.output):
            produced[spec.name] = spec
    return problems


def _base_name(name: str, size: str, seed: int) -> str:
    return f"{name}-{size}" + (f"-seed{seed}" if seed else "")


def _cached(manifest_path: Path, key: Mapping[str, Any], out_dir: Path) -> dict[str, Path] | None:
    """The stage files of a previous export with the same key, if all are still intact."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("key") != dict(key):
        return None
    paths: dict[str, Path] = {}
    for stage, info in manifest.get("stages", {}).items():
        path = out_dir / str(info.get("file", ""))
        if not path.is_file() or sha256_file(path) != info.get("sha256"):
            return None
        paths[stage] = path
    return paths or None


def export_model(
    name: str, *, size: str = "tiny", out_dir: str | os.PathLike[str], seed: int = 0
) -> dict[str, Path]:
    """Write every stage of zoo model ``name`` to ``out_dir``; stage name -> path, in order.

    Files are named ``NAME-SIZE[-seedN].STAGE.onnx`` (``NAME-SIZE[-seedN].onnx`` for a one-stage
    model), with a ``NAME-SIZE[-seedN].json`` manifest of their SHA-256. An export whose
    manifest and files still match is returned without building; a stage file whose content is
    already identical is not rewritten. Every write is atomic.
    """
    from .. import __version__

    entry = get_entry(name)
    _check_size(entry, size)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", fix="pass a folder for the exported models")
    base = _base_name(name, size, seed)
    manifest_path = out / f"{base}.json"
    key = {
        "name": name,
        "size": size,
        "seed": seed,
        "zoo_format": ZOO_FORMAT,
        "orinbench": __version__,
    }
    cached = _cached(manifest_path, key, out)
    if cached is not None and tuple(cached) == entry.stages:
        return cached
    stages = build_model(name, size=size, seed=seed)
    paths: dict[str, Path] = {}
    record: dict[str, Any] = {}
    for stage, model in stages.items():
        data = model.SerializeToString()
        digest = sha256_bytes(data)
        path = out / (f"{base}.onnx" if len(stages) == 1 else f"{base}.{stage}.onnx")
        if not (
            path.is_file() and path.stat().st_size == len(data) and sha256_file(path) == digest
        ):
            # every model orinbench writes must pass the checker and load in ONNX Runtime
            verify_written_model(model, what=f"the zoo model {path.name}")
            atomic_write_bytes(path, data)
        paths[stage] = path
        record[stage] = {"file": path.name, "sha256": digest, "bytes": len(data)}
    atomic_write_json(manifest_path, {"key": key, "stages": record})
    return paths
