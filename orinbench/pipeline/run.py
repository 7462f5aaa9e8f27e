"""Run a recipe: the core function behind ``orinbench run``.

resolve the stages' models (exporting zoo models) -> wire and check the graph -> build the
TensorRT engines that are not up to date (``--backend tensorrt``) -> open one runner per stage ->
set the pipeline up on the device -> time frames (:mod:`orinbench.pipeline.harness`) -> FLOPs and
the roofline per stage -> one :class:`~orinbench.results.Result` with the stages inside.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _lazy
from ..bench.assemble import assemble_result
from ..bench.harness import Clock, PowerWindow, ProgressCallback, StopRule, Warmup
from ..bench.stats import summarize
from ..errors import OrinbenchError, RecipeError, UsageError
from ..model.roofline import match_module, roofline
from ..results.schema import (
    ModelRef,
    QualityWarning,
    Result,
    RunConfig,
    TensorSpec,
    runtime_settings,
)
from ..telemetry.host import host_environment
from .chain import CpuMemory
from .custom import CustomStage, load_callable
from .executor import EngineStage, Pipeline, Stage
from .graph import PipelineGraph, resolve_graph
from .harness import PipelineMeasurement, measure_pipeline
from .models import resolve_models, stage_io
from .recipe import Recipe, StageSpec, load_recipe

#: backends a recipe runs on ("auto": TensorRT where it is installed, else ONNX Runtime)
BACKENDS: tuple[str, ...] = ("onnxruntime", "tensorrt")

PowerSummarizer = Callable[..., Mapping[str, Any]]
EventCallback = Callable[[str], None]


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``tensorrt`` when TensorRT is importable, else ``onnxruntime``.

    The chosen runtime is imported here, so a missing one fails before anything else starts.
    """
    if backend == "auto":
        backend = "tensorrt" if _lazy.is_available("tensorrt") else "onnxruntime"
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}'", fix=f"choose one of {', '.join(BACKENDS)}")
    _lazy.require(backend)
    return backend


def _data_shapes(npz: str | os.PathLike[str] | None) -> dict[str, tuple[int, ...]]:
    from ..model.feeds import npz_array_shapes

    return npz_array_shapes(npz) if npz is not None else {}


def frame_feed(
    graph: PipelineGraph, *, seed: int = 0, npz: str | os.PathLike[str] | None = None
) -> dict[str, np.ndarray]:
    """The frame inputs: seeded random data of the graph's frame input specs, or a ``.npz``."""
    from ..model.feeds import load_feed_npz, random_feed

    specs = list(graph.frame_inputs.values())
    shapes = {s.name: tuple(int(d) for d in s.shape) for s in specs}
    if npz is not None:
        return load_feed_npz(npz, specs, shapes)
    return random_feed(specs, shapes, seed=seed)


def _open_engine_runner(
    backend: str,
    spec: StageSpec,
    path: Path,
    options: Mapping[str, Any] | None,
) -> Any:
    if backend == "onnxruntime":
        from .ort_chain import OrtChainRunner

        return OrtChainRunner(path, **dict(options or {}))
    from ..bench.run import open_runner

    opts = dict(options or {})
    if spec.plugins:
        opts.setdefault("plugins", [str(p) for p in spec.plugins])
    return open_runner("tensorrt", path, options=opts)


def _stage_precision(backend: str, spec: StageSpec, path: Path) -> str:
    # ONNX Runtime runs a model in the precision it was exported in (a Q/DQ stage is int8 there);
    # the recipe's precision is a TensorRT build option
    if backend == "tensorrt":
        return spec.precision
    from ..model.identity import guess_precision

    return guess_precision(path)


def _manifest_sha256(recipe: Recipe, paths: Mapping[str, Path], size: str) -> str:
    from ..model.load import model_sha256

    lines = [f"recipe {recipe.sha256}", f"size {size}"]
    for stage in recipe.stages:
        if stage.kind == "custom":
            lines.append(
                f"stage {stage.name} callable {stage.callable} args {sorted(stage.args.items())}"
            )
        else:
            lines.append(f"stage {stage.name} onnx {model_sha256(paths[stage.name])}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _module(device: Mapping[str, Any] | None) -> str | None:
    if not device:
        return None
    name = device.get("module_name") or device.get("module")
    memory = device.get("memory_gb") or device.get("ram_gb") or device.get("memory_total_gb")
    mode = device.get("power_mode")
    return match_module(
        str(name) if name else None,
        memory_gb=float(memory) if isinstance(memory, (int, float)) else None,
        power_mode=str(mode) if mode else None,
    )


def _flops(path: Path, shapes: Mapping[str, Sequence[int]]) -> tuple[int | None, bool]:
    from ..model.inspect import inspect_model

    try:
        info = inspect_model(path, shapes=shapes)
    except OrinbenchError:
        return None, False
    return int(info.flops.total), bool(info.flops.complete)


def check_recipe(
    recipe: Recipe | str | os.PathLike[str],
    *,
    size: str = "full",
    cache_dir: str | os.PathLike[str] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs_npz: str | os.PathLike[str] | None = None,
    on_event: EventCallback | None = None,
) -> PipelineGraph:
    """Everything that can be checked without running: keys, models (zoo models are exported),
    wiring, order, shapes and dtypes where the models declare them (or ``inputs_npz`` gives
    them). Returns the graph; raises RecipeError (exit 2) naming the stage otherwise."""
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    paths = resolve_models(rec, size=size, cache_dir=cache_dir, on_event=on_event)
    graph = resolve_graph(
        rec, stage_io(rec, paths), shapes=shapes, data_shapes=_data_shapes(inputs_npz)
    )
    for stage in rec.stages:
        if stage.kind == "custom":
            where = f"{rec.source}: stage '{stage.name}'"
            load_callable(str(stage.callable), base_dir=rec.base_dir, where=where)
    return graph


@dataclass(frozen=True)
class OpenPipeline:
    """A pipeline whose runners are open and whose stages are set up on one frame's data."""

    recipe: Recipe
    backend: str
    backend_version: str
    graph: PipelineGraph
    pipeline: Pipeline
    #: stage -> ONNX file, and stage -> what the runner opened (the engine, for TensorRT)
    models: Mapping[str, Path]
    engines: Mapping[str, Path]
    #: the frame inputs the pipeline is set up with
    frame: Mapping[str, np.ndarray]

    def infer(self, frame: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Run one untimed frame; host copies of the pipeline outputs.

        With ``frame`` (every frame input, same shapes and dtypes) the data is copied into
        :attr:`frame` and loaded into every stage first (backends copy inputs into buffers of their
        own, so writing into :attr:`frame` alone is not enough).
        """
        if frame is not None:
            for name, arr in self.frame.items():
                new = np.asarray(frame[name]) if name in frame else None
                if new is None or new.shape != arr.shape or new.dtype != arr.dtype:
                    raise UsageError(
                        f"frame input '{name}' must be {arr.dtype} {arr.shape}",
                        fix="pass every frame input with the shapes the pipeline was set up with",
                    )
                np.copyto(arr, new)
            self.pipeline.setup(self.frame)
        self.pipeline.run_frame()
        return self.pipeline.outputs_host()


@contextlib.contextmanager
def open_pipeline(
    recipe: Recipe | str | os.PathLike[str],
    *,
    backend: str = "auto",
    size: str = "full",
    cache_dir: str | os.PathLike[str] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs_npz: str | os.PathLike[str] | None = None,
    seed: int = 0,
    runner_options: Mapping[str, Any] | None = None,
    on_event: EventCallback | None = None,
) -> Iterator[OpenPipeline]:
    """Resolve, check, build (TensorRT), open and set up ``recipe``'s pipeline, as a context.

    Everything is released when the block ends. Raises RecipeError naming the stage for any
    problem with the recipe, its models or its wiring.
    """
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    be = resolve_backend(backend)
    paths = resolve_models(rec, size=size, cache_dir=cache_dir, on_event=on_event)
    io = stage_io(rec, paths)
    graph = resolve_graph(rec, io, shapes=shapes, data_shapes=_data_shapes(inputs_npz))
    feed = frame_feed(graph, seed=seed, npz=inputs_npz)

    engine_paths: dict[str, Path] = dict(paths)
    if be == "tensorrt":
        from .build import build_stage_engines

        engine_paths.update(
            build_stage_engines(
                rec,
                paths,
                graph=graph,
                io=io,
                size=size,
                cache_dir=cache_dir,
                on_event=on_event,
            )
        )

    with contextlib.ExitStack() as stack:
        stages: dict[str, Stage] = {}
        runners: list[Any] = []
        for name in graph.order:
            spec = rec.stage(name)
            if spec.kind != "onnx":
                continue
            if on_event is not None:
                on_event(f"stage {name}: opening {engine_paths[name].name} ({be})")
            runner = _open_engine_runner(be, spec, engine_paths[name], runner_options)
            try:
                stack.enter_context(runner)
            except OrinbenchError as exc:
                raise RecipeError(
                    f"{rec.source}: stage '{name}': {exc.what}", why=exc.why, fix=exc.fix
                ) from exc
            stages[name] = EngineStage(name, runner)
            runners.append(runner)
        memory = runners[0].device_memory() if runners else None
        if memory is not None and callable(getattr(memory, "close", None)):
            stack.callback(memory.close)  # unwinds before the runners (and their CUDA context)
        for name in graph.order:
            spec = rec.stage(name)
            if spec.kind == "custom":
                where = f"{rec.source}: stage '{name}'"
                fn = load_callable(str(spec.callable), base_dir=rec.base_dir, where=where)
                stages[name] = CustomStage(
                    spec, fn, memory=memory or CpuMemory(), source=rec.source
                )
        pipeline = Pipeline(graph, stages, source=rec.source)
        if on_event is not None:
            on_event("setting up the pipeline (one untimed frame)")
        pipeline.setup(feed)
        yield OpenPipeline(
            recipe=rec,
            backend=be,
            backend_version=runners[0].backend_version if runners else "n/a",
            graph=graph,
            pipeline=pipeline,
            models=paths,
            engines=engine_paths,
            frame=feed,
        )


def run_recipe(
    recipe: Recipe | str | os.PathLike[str],
    *,
    backend: str = "auto",
    size: str = "full",
    cache_dir: str | os.PathLike[str] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs_npz: str | os.PathLike[str] | None = None,
    seed: int = 0,
    warmup: Warmup | None = None,
    stop: StopRule | None = None,
    transfers: bool = True,
    power: PowerWindow | None = None,
    power_summary: PowerSummarizer | None = None,
    power_source: str = "none",
    device: Mapping[str, Any] | None = None,
    runner_options: Mapping[str, Any] | None = None,
    roofline_stages: bool = True,
    clock: Clock = time.perf_counter_ns,
    on_progress: ProgressCallback | None = None,
    on_event: EventCallback | None = None,
) -> Result:
    """Build (where needed), set up and time the pipeline of ``recipe``; return one Result.

    ``shapes`` pins frame input shapes (``--shape``), ``inputs_npz`` gives real frame data.
    ``runner_options`` go to every engine stage's runner (ONNX Runtime: ``providers``,
    ``intra_op_threads``). The result's ``stages`` section holds, per stage in run order, its
    latency statistics, its share of the frame, its backend and precision, and its roofline.
    """
    warmup = warmup if warmup is not None else Warmup()
    stop = stop if stop is not None else StopRule(duration_s=10.0)
    with open_pipeline(
        recipe,
        backend=backend,
        size=size,
        cache_dir=cache_dir,
        shapes=shapes,
        inputs_npz=inputs_npz,
        seed=seed,
        runner_options=runner_options,
        on_event=on_event,
    ) as opened:
        pm = measure_pipeline(
            opened.pipeline.stages,
            warmup=warmup,
            stop=stop,
            transfers=transfers,
            clock=clock,
            power=power,
            on_progress=on_progress,
        )
    rec, be, graph, pipeline = opened.recipe, opened.backend, opened.graph, opened.pipeline
    paths, engine_paths, backend_version = opened.models, opened.engines, opened.backend_version

    module = _module(device) if be == "tensorrt" else None
    stage_sections = _stage_sections(
        rec,
        be,
        pipeline,
        pm,
        paths=paths,
        engines=engine_paths,
        module=module,
        with_roofline=roofline_stages,
    )
    from ..model.feeds import feed_warnings

    # NaN/Inf in the frame data (a user's --inputs file): measured all the same, but said so
    source = f"npz:{inputs_npz}" if inputs_npz else "random"
    warnings: list[QualityWarning] = list(feed_warnings(opened.frame, source=source))
    ignored = [
        s.name
        for s in rec.stages
        if s.kind == "onnx"
        and be != "tensorrt"
        and s.precision != stage_sections[s.name]["precision"]
    ]
    if ignored:
        warnings.append(
            QualityWarning(
                "precision-not-applied",
                f"ONNX Runtime ran stage(s) {', '.join(ignored)} as exported, not in the recipe's "
                "precision; precisions and calibration apply with --backend tensorrt",
            )
        )
    power_section = None
    m = pm.frame
    if m.power_trace is not None and power_summary is not None:
        power_section = power_summary(m.power_trace, inferences=m.iterations, window_s=m.wall_s)
    precisions = {
        stage_sections[n]["precision"] for n in graph.order if rec.stage(n).kind == "onnx"
    }
    frame_shapes = {k: tuple(int(d) for d in v.shape) for k, v in graph.frame_inputs.items()}
    config = RunConfig(
        backend=be,
        precision=precisions.pop() if len(precisions) == 1 else ("mixed" if precisions else "fp32"),
        warmup=warmup.to_dict(),
        stop=stop.to_dict(),
        shapes=frame_shapes,
        # the options every ONNX Runtime stage was opened with (a pipeline of several sessions)
        runtime=runtime_settings(
            be,
            providers=(runner_options or {}).get("providers"),
            intra_op_threads=(runner_options or {}).get("intra_op_threads"),
        ),
        input_source=f"npz:{inputs_npz}" if inputs_npz else "random",
        seed=seed,
        power_source=power_source,
        extra={
            "transfers": transfers,
            "pipeline": {
                "recipe": rec.source,
                "recipe_sha256": rec.sha256,
                "size": size if rec.uses_zoo else None,
                "order": list(graph.order),
            },
        },
    )
    model = ModelRef(
        name=rec.name,
        path=rec.source,
        sha256=_manifest_sha256(rec, paths, size),
        inputs=tuple(
            TensorSpec(k, v.dtype, tuple(int(d) for d in v.shape))
            for k, v in graph.frame_inputs.items()
        ),
        outputs=tuple(pipeline.output_specs.values()),
    )
    env = host_environment(backend=be, backend_version=backend_version, device=device)
    overhead = pm.overhead_ms
    return assemble_result(
        m,
        environment=env,
        model=model,
        config=config,
        warnings=warnings,
        power=power_section,
        stages=stage_sections,
        extra={
            "pipeline": {
                "overhead_ms": summarize(np.maximum(overhead, 0.0)).to_dict(),
                "stage_sum_p50_ms": float(np.median(pm.stage_sum_ms)),
            }
        },
    )


def _stage_sections(
    rec: Recipe,
    backend: str,
    pipeline: Pipeline,
    pm: PipelineMeasurement,
    *,
    paths: Mapping[str, Path],
    engines: Mapping[str, Path],
    module: str | None,
    with_roofline: bool,
) -> dict[str, dict[str, Any]]:
    from ..model.load import model_sha256

    frame_median = float(np.median(pm.frame.latency_ms))
    out: dict[str, dict[str, Any]] = {}
    for times in pm.stages:
        spec = rec.stage(times.name)
        median = float(np.median(times.latency_ms))
        section: dict[str, Any] = {
            "kind": spec.kind,
            "backend": backend if spec.kind == "onnx" else "python",
            "precision": (
                _stage_precision(backend, spec, paths[times.name]) if spec.kind == "onnx" else None
            ),
            "recipe_precision": spec.precision if spec.kind == "onnx" else None,
            "latency": summarize(times.latency_ms).to_dict(),
            "enqueue": summarize(times.enqueue_ms).to_dict(),
            "share": median / frame_median if frame_median > 0 else None,
            "input_shapes": {
                k: list(v) for k, v in pipeline.input_shapes.get(times.name, {}).items()
            },
        }
        samples: dict[str, list[float]] = {
            "latency": [float(x) for x in times.latency_ms],
            "enqueue": [float(x) for x in times.enqueue_ms],
        }
        if times.gpu_compute_ms is not None:
            section["gpu_compute"] = summarize(times.gpu_compute_ms).to_dict()
            samples["gpu_compute"] = [float(x) for x in times.gpu_compute_ms]
        if spec.kind == "onnx":
            path = paths[times.name]
            section["model"] = {
                "source": spec.source,
                "path": str(path),
                "sha256": model_sha256(path),
            }
            if engines.get(times.name) not in (None, path):
                section["engine"] = {"path": str(engines[times.name])}
            if with_roofline:
                flops, complete = _flops(path, pipeline.input_shapes.get(times.name, {}))
                engine = "dla" if spec.build.get("dla_core") is not None else "gpu"
                r = roofline(
                    flops,
                    median,
                    precision=section["precision"],
                    module=module,
                    engine=engine,
                    sparse=bool(spec.build.get("sparsity", False)),
                    flops_complete=complete,
                )
                section["roofline"] = r.to_dict()
                if backend != "tensorrt":
                    # the Orin peaks are the GPU's: none applies to ONNX Runtime's providers
                    partial = "" if complete else "; FLOPs partly counted: a lower bound"
                    section["roofline"]["note"] = "ONNX Runtime: no device peak applies" + partial
        else:
            section["model"] = {"callable": spec.callable}
        section["samples"] = samples
        out[times.name] = section
    return out
