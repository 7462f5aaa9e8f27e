"""The model file behind each stage (an ONNX path, or a zoo model generated on demand) and its IO.

Zoo references (``model = "zoo:bevfusion-camera/camera_backbone"``) are exported with the
``--size`` the user asked for into a cache folder: ``--cache-dir``, else
``$XDG_CACHE_HOME/orinbench``, else ``~/.cache/orinbench``. The zoo caches by content hash, so a
second run reuses the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError, RecipeError
from ..results.schema import TensorSpec
from .recipe import Recipe, StageSpec

#: zoo sizes
SIZES: tuple[str, ...] = ("tiny", "full")


@dataclass(frozen=True)
class StageIO:
    """A stage's tensors. Custom stages have names only: dtype ``"?"`` and shape ``("...",)``."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/orinbench``, else ``~/.cache/orinbench``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "orinbench"


def resolve_models(
    recipe: Recipe,
    *,
    size: str = "full",
    cache_dir: str | os.PathLike[str] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """The ONNX file of every ONNX stage, exporting zoo models that are not cached yet.

    Raises RecipeError naming the stage for a missing file or an unknown zoo model or stage.
    """
    if size not in SIZES:
        raise RecipeError(f"unknown size '{size}'", fix=f"use one of {', '.join(SIZES)}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    exported: dict[str, Mapping[str, Path]] = {}
    out: dict[str, Path] = {}
    for stage in recipe.stages:
        if stage.kind != "onnx":
            continue
        zoo = stage.zoo
        if zoo is None:
            assert stage.onnx is not None
            out[stage.name] = _existing(stage, stage.onnx, recipe)
            continue
        model, part = zoo
        if model not in exported:
            exported[model] = _export(recipe, stage, model, size, root / "zoo", on_event)
        files = exported[model]
        if part not in files:
            raise RecipeError(
                f"{recipe.source}: stage '{stage.name}': key 'model' names '{part}', which zoo "
                f"model '{model}' does not have",
                fix=f"its stages are {', '.join(files)}",
            )
        out[stage.name] = _existing(stage, Path(files[part]), recipe)
    return out


def _existing(stage: StageSpec, path: Path, recipe: Recipe) -> Path:
    if not path.is_file():
        key = "onnx" if stage.zoo is None else "model"
        raise RecipeError(
            f"{recipe.source}: stage '{stage.name}': key '{key}': ONNX file not found: {path}",
            fix="check the path (relative paths start at the recipe's folder)"
            if stage.zoo is None
            else "delete the zoo cache folder and run again",
        )
    return path


def _export(
    recipe: Recipe,
    stage: StageSpec,
    model: str,
    size: str,
    out_dir: Path,
    on_event: Callable[[str], None] | None,
) -> Mapping[str, Path]:
    from ..zoo import registry

    names = list(registry.list_models())
    known = [getattr(m, "name", m) for m in names]
    if model not in known:
        raise RecipeError(
            f"{recipe.source}: stage '{stage.name}': key 'model' names zoo model '{model}', "
            "which does not exist",
            fix=f"use one of {', '.join(map(str, known))} (orinbench zoo list)",
        )
    if on_event is not None:
        on_event(f"zoo: {model} ({size}) -> {out_dir}")
    return registry.export_model(model, size=size, out_dir=out_dir)


def read_io(path: str | os.PathLike[str]) -> StageIO:
    """Inputs and outputs of an ONNX file, from its graph (weights are not loaded)."""
    from ..model.inspect import tensor_spec
    from ..model.load import load_model

    model = load_model(path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    return StageIO(
        inputs=tuple(tensor_spec(v) for v in model.graph.input if v.name not in inits),
        outputs=tuple(tensor_spec(v) for v in model.graph.output),
    )


def stage_io(recipe: Recipe, paths: Mapping[str, Path]) -> dict[str, StageIO]:
    """IO of every stage: ONNX stages from their files, custom stages from their declaration."""
    out: dict[str, StageIO] = {}
    for stage in recipe.stages:
        if stage.kind == "custom":
            out[stage.name] = StageIO(
                inputs=tuple(TensorSpec(k, "?", ("...",)) for k in stage.inputs),
                outputs=tuple(TensorSpec(k, "?", ("...",)) for k in stage.outputs),
            )
            continue
        try:
            out[stage.name] = read_io(paths[stage.name])
        except InputFileError as exc:  # ModelError included
            raise RecipeError(
                f"{recipe.source}: stage '{stage.name}': {exc.what}", why=exc.why, fix=exc.fix
            ) from exc
    return out
