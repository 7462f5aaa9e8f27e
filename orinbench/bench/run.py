"""Benchmark one ONNX model or engine: the core function behind ``orinbench bench``.

It resolves the inputs (random from the IO spec, seeded, or a ``.npz``), opens the backend's
runner, lets the harness measure it, and assembles the result. Power sources and the device
fingerprint are passed in by the caller, so this function stays free of probing side effects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .._io import require_file
from ..backends.base import Runner
from ..errors import UsageError
from ..results.schema import (
    ModelRef,
    QualityWarning,
    Result,
    RunConfig,
    TensorSpec,
    runtime_settings,
)
from ..telemetry.host import host_environment
from .assemble import assemble_result
from .harness import Clock, Measurement, PowerWindow, ProgressCallback, StopRule, Warmup, measure

#: a function that turns a power trace into the result's power section
PowerSummarizer = Callable[..., Mapping[str, Any]]


class LookJudge(Protocol):
    """What ``--until-decided`` needs of its judge (``orinbench.gate.sequential``'s gate).

    ``check`` sees a skeleton result (environment, model and config, no samples) before the warm-up,
    so an incomparable baseline is refused before anything is measured; ``look_result`` sees the
    partial result at each look and returns a stop reason once everything is decided.
    """

    def check(self, result: Result) -> None: ...
    def look_result(self, look: int, result: Result, *, elapsed_s: float) -> str | None: ...


BACKENDS = ("onnxruntime", "tensorrt")


def make_feed(
    inputs: Sequence[TensorSpec],
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    npz: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """Inputs for the model: loaded from ``npz`` or generated (seeded) from the IO spec."""
    from ..model.inspect import load_feed_npz, random_feed, resolve_input_shapes

    if npz is not None:
        feed = load_feed_npz(npz, inputs, shapes or {})
        return feed, {k: tuple(v.shape) for k, v in feed.items()}
    resolved = resolve_input_shapes(inputs, shapes or {})
    return random_feed(inputs, resolved, seed=seed), resolved


def open_runner(
    backend: str, model_path: str | os.PathLike[str], *, options: Mapping[str, Any] | None = None
) -> Runner:
    """Construct (not enter) the runner of ``backend`` for ``model_path``."""
    opts = dict(options or {})
    if backend == "onnxruntime":
        from ..backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(model_path, **opts)
    if backend == "tensorrt":
        from ..backends.tensorrt import open_tensorrt_runner

        return open_tensorrt_runner(model_path, **opts)
    raise UsageError(f"unknown backend '{backend}'", fix=f"choose one of {', '.join(BACKENDS)}")


def runner_runtime(runner: Runner) -> dict[str, Any]:
    """``config.runtime`` of an open runner: what the session really uses."""
    return runtime_settings(
        runner.backend,
        providers=getattr(runner, "providers", None),
        intra_op_threads=getattr(runner, "intra_op_threads", None),
    )


def bench_runner(
    runner: Runner,
    *,
    model: ModelRef,
    feed: Mapping[str, Any],
    shapes: Mapping[str, Sequence[int]],
    precision: str = "fp32",
    warmup: Warmup | None = None,
    stop: StopRule | None = None,
    transfers: bool = True,
    power: PowerWindow | None = None,
    power_summary: PowerSummarizer | None = None,
    power_source: str = "none",
    device: Mapping[str, Any] | None = None,
    input_source: str = "random",
    seed: int = 0,
    extra_config: Mapping[str, Any] | None = None,
    warnings: Sequence[QualityWarning] = (),
    on_progress: ProgressCallback | None = None,
    judge: LookJudge | None = None,
    clock: Clock | None = None,
) -> Result:
    """Measure an already entered runner and assemble its result.

    ``judge`` (with ``stop.until_decided``) is asked at each look whether the samples so far
    decide the comparison with its baseline. ``clock`` replaces the harness's clock (tests).
    """
    from ..model.feeds import feed_warnings

    warmup = warmup if warmup is not None else Warmup()
    stop = stop if stop is not None else StopRule(duration_s=10.0)
    # NaN/Inf in the data (a user's --inputs file): measured all the same, but said so
    warnings = (*warnings, *feed_warnings(feed, source=input_source))
    config = RunConfig(
        backend=runner.backend,
        precision=precision,
        warmup=warmup.to_dict(),
        stop=stop.to_dict(),
        shapes={k: tuple(v) for k, v in shapes.items()},
        input_source=input_source,
        seed=seed,
        power_source=power_source,
        extra={"transfers": transfers, **dict(extra_config or {})},
        runtime=runner_runtime(runner),
    )
    env = host_environment(
        backend=runner.backend, backend_version=runner.backend_version, device=device
    )
    on_look = None
    if judge is not None:
        skeleton = Result(
            tool_version="",
            created_utc="",
            environment=env,
            model=model,
            config=config,
            samples={},
            stats={},
            throughput={},
        )
        judge.check(skeleton)

        def on_look(look: int, snap: Measurement) -> str | None:
            partial = assemble_result(snap, environment=env, model=model, config=config)
            return judge.look_result(look, partial, elapsed_s=snap.wall_s)

    runner.load_inputs(feed)
    m = measure(
        runner,
        warmup=warmup,
        stop=stop,
        transfers=transfers,
        power=power,
        on_progress=on_progress,
        on_look=on_look,
        **({"clock": clock} if clock is not None else {}),
    )
    power_section = None
    if m.power_trace is not None and power_summary is not None:
        power_section = power_summary(m.power_trace, inferences=m.iterations, window_s=m.wall_s)
    return assemble_result(
        m, environment=env, model=model, config=config, warnings=warnings, power=power_section
    )


def bench_model(
    model_path: str | os.PathLike[str],
    *,
    backend: str = "onnxruntime",
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs_npz: str | os.PathLike[str] | None = None,
    seed: int = 0,
    precision: str | None = None,
    name: str = "",
    runner_options: Mapping[str, Any] | None = None,
    **bench_kwargs: Any,
) -> Result:
    """Benchmark an ONNX model with ONNX Runtime (or any backend that opens a model path).

    ``precision`` None records the model's own precision on ONNX Runtime (``int8`` for a Q/DQ
    model, ``fp16`` for an FP16 one: :func:`orinbench.model.identity.model_precision`), ``fp32``
    on another backend. ``model.sha256`` covers the model's external data files.
    ``bench_kwargs`` are passed to :func:`bench_runner` (warmup, stop, transfers, power, ...).
    """
    from ..model.identity import artifact_sha256

    path = require_file(model_path, what="model file")
    if backend == "onnxruntime":
        from ..model.identity import model_precision
        from ..model.load import load_model

        # clear errors for non-ONNX or truncated files before ORT sees them
        onnx_model = load_model(path)
        if precision is None:
            precision = model_precision(onnx_model)
        del onnx_model
    if precision is None:
        precision = "fp32"
    runner = open_runner(backend, path, options=runner_options)
    with runner:
        feed, resolved = make_feed(runner.inputs, shapes=shapes, npz=inputs_npz, seed=seed)
        model = ModelRef(
            name=name or Path(path).stem,
            path=str(path),
            sha256=artifact_sha256(path),
            inputs=runner.inputs,
            outputs=runner.outputs,
        )
        return bench_runner(
            runner,
            model=model,
            feed=feed,
            shapes=resolved,
            precision=precision,
            input_source=f"npz:{inputs_npz}" if inputs_npz else "random",
            seed=seed,
            **bench_kwargs,
        )
