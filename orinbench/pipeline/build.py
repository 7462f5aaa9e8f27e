"""Building a recipe's ONNX stages into TensorRT engines: where the pipeline meets the builder.

Each ONNX stage is built with its own precision, calibration, plugins and ``build`` options by
:func:`orinbench.backends.tensorrt.build_engine`, which skips a build whose ONNX file, options and
TensorRT match the engine's sidecar (so only stages that are not up to date are rebuilt). Engines
go to ``CACHE/engines/RECIPE[-SIZE]/STAGE.PRECISION.engine``.

Calibration (``precision = "int8"`` or ``"best"``, no Q/DQ nodes in the model): an existing
``calib_cache`` is used as is; otherwise ``calib_data`` is calibrated on while building and the
cache it produces is saved to ``calib_cache`` (when given) for the next build. Delete the cache
to calibrate again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes
from ..errors import OrinbenchError, RecipeError
from ..model.shapes import format_shape
from .graph import PipelineGraph
from .models import StageIO, default_cache_dir
from .recipe import Recipe, StageSpec


def engine_folder(recipe: Recipe, *, size: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "engines" / (f"{recipe.name}-{size}" if recipe.uses_zoo else recipe.name)


def stage_input_shapes(
    recipe: Recipe, stage: StageSpec, graph: PipelineGraph, io: Mapping[str, StageIO]
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for the stage's dynamic inputs: the stage's ``shapes``, else the producer's.

    Raises RecipeError naming the stage and input when neither gives one (a dynamic input fed by a
    custom stage or by a dynamic output).
    """
    out: dict[str, tuple[int, ...]] = {}
    for spec in io[stage.name].inputs:
        if spec.is_static:
            continue
        if spec.name in stage.shapes:
            out[spec.name] = tuple(stage.shapes[spec.name])
            continue
        ref = graph.sources[stage.name][spec.name]
        source = (
            graph.frame_inputs[ref.tensor]
            if ref.stage is None
            else io[ref.stage].output(ref.tensor)
        )
        if source is None or not source.is_static:
            raise RecipeError(
                f"{recipe.source}: stage '{stage.name}': input '{spec.name}' has dynamic "
                f"dimensions {format_shape(spec.shape)} and '{ref}' has no fixed shape",
                fix=f"add shapes = {{ {spec.name} = [...] }} to the stage",
            )
        out[spec.name] = tuple(int(d) for d in source.shape)
    return out


def _options(recipe: Recipe, stage: StageSpec, shapes: Mapping[str, tuple[int, ...]]) -> Any:
    from ..backends.tensorrt import BuildOptions, ShapeRange

    where = f"{recipe.source}: stage '{stage.name}'"
    extra = dict(stage.build)
    for key in ("timing_cache",):
        if key in extra and extra[key] is not None:
            p = Path(str(extra[key]))
            extra[key] = p if p.is_absolute() else recipe.base_dir / p
    calib_cache: Path | None = None
    calib_data: Path | None = None
    if stage.precision in ("int8", "best"):
        if stage.calib_cache is not None and stage.calib_cache.is_file():
            calib_cache = stage.calib_cache
        elif stage.calib_data is not None:
            calib_data = stage.calib_data
        elif stage.calib_cache is not None:
            raise RecipeError(
                f"{where}: key 'calib_cache': calibration cache not found: {stage.calib_cache}",
                fix='add calib_data = "FOLDER" (samples to calibrate on; the cache is written '
                "there after the build), or make the cache with 'orinbench calibrate'",
            )
    try:
        return BuildOptions(
            precision=stage.precision,
            plugins=tuple(stage.plugins),
            shapes={k: ShapeRange(v, v, v) for k, v in shapes.items()},
            calib_cache=calib_cache,
            calib_data=calib_data,
            **extra,
        )
    except OrinbenchError as exc:
        raise RecipeError(f"{where}: key 'build': {exc.what}", why=exc.why, fix=exc.fix) from exc


def build_stage_engines(
    recipe: Recipe,
    models: Mapping[str, Path],
    *,
    graph: PipelineGraph,
    io: Mapping[str, StageIO],
    size: str = "full",
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    on_event: Callable[[str], None] | None = None,
    cuda: Any = None,
) -> dict[str, Path]:
    """Build (or find up to date) the engine of every ONNX stage; stage name -> engine path."""
    from ..backends.tensorrt import build_engine

    folder = engine_folder(recipe, size=size, cache_dir=cache_dir)
    out: dict[str, Path] = {}
    for name in graph.order:
        stage = recipe.stage(name)
        if stage.kind != "onnx":
            continue
        opts = _options(recipe, stage, stage_input_shapes(recipe, stage, graph, io))
        engine = folder / f"{name}.{stage.precision}.engine"

        def warn(text: Any, stage_name: str = name) -> None:
            if on_event is not None:
                on_event(f"stage {stage_name}: TensorRT: {text}")

        try:
            report = build_engine(
                models[name], engine, opts, force=force, on_warning=warn, cuda=cuda
            )
        except OrinbenchError as exc:
            raise RecipeError(
                f"{recipe.source}: stage '{name}': {exc.what}", why=exc.why, fix=exc.fix
            ) from exc
        if on_event is not None:
            on_event(f"stage {name}: engine {engine.name}: {report.reason}")
        produced = Path(str(report.engine_path) + ".calib")
        if opts.calib_data is not None and stage.calib_cache is not None and produced.is_file():
            atomic_write_bytes(stage.calib_cache, produced.read_bytes())
        out[name] = Path(report.engine_path)
    return out
