"""``orinbench decide``: make the variants, benchmark each the same way, measure accuracy, decide.

Order of work: every input is checked first (model, variants, data, calibration cache, DLA,
``--repeat``), so that bad input stops before anything is written. Then the variants are made
(:mod:`.variants`), the FP32 reference outputs are computed once on the accuracy data (the
``--holdout`` set, else the calibration data), and each variant is benchmarked with the same
warm-up and stop rule and compared with the reference. With ``repeat`` > 1 each TensorRT variant
is built ``repeat`` times with a shared timing cache and ``repeat`` times without
(:func:`.repeat.repeat_builds`, the fastest engine is kept), and each ONNX Runtime variant is
benchmarked ``repeat`` times, round-robin over the variants (its result is the run with the median
median). The decision is :func:`.logic.decide`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._io import require_file
from ..accuracy.compare import AccuracyReport, compare_with_reference, reference_outputs
from ..bench.harness import PowerWindow, StopRule, Warmup
from ..bench.run import BACKENDS, PowerSummarizer, bench_model
from ..calib.dataset import open_dataset
from ..calib.specs import io_specs
from ..errors import ModelError, UsageError
from ..gate.targets import Targets
from ..model.feeds import check_feed_fits, load_feed_npz
from ..model.load import load_model
from ..model.shapes import resolve_input_shapes, with_shapes
from ..results.schema import HOST_LATENCY, Result
from .logic import (
    DEFAULT_MAX_LOSS_PCT,
    LOSS_DEFINITION,
    Decision,
    VariantRow,
    decide,
    effective_targets,
    target_failures,
)
from .repeat import MODE_RUN, RepeatReport, RepeatSample, analyze_repeats, check_repeat
from .variants import (
    DLA_CORE,
    Variant,
    dla_core_count,
    engine_variant_path,
    onnx_variant_path,
    resolve_variants,
)

Step = Callable[[str], None]
#: a non-finite accuracy loss is stored as this (JSON has no Inf)
_WORST = 1e308


@dataclass(frozen=True)
class DecideOutcome:
    """What :func:`decide_model` produced. ``result`` is the chosen variant's result (the FP32
    one when none is chosen) with the table in ``extra['decide']``."""

    result: Result
    decision: Decision
    results: Mapping[str, Result]
    variants: tuple[Variant, ...]

    @property
    def exit_code(self) -> int:
        """0 when a variant meets the targets, 1 (a target failed) when none does."""
        return 0 if self.decision.chosen else 1


def _has_qdq(model: Any) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _check_inputs(
    src: Path,
    model: Any,
    names: Sequence[str],
    *,
    backend: str,
    calib_data: Path | None,
    calib_cache: Path | None,
    holdout: Path | None,
    max_samples: int | None,
    shapes: Mapping[str, Sequence[int]],
    inputs_npz: Path | None,
) -> Any:
    """Every check that needs no device; returns the validated accuracy dataset."""
    from ..precision.qdq import quantizable_nodes

    if calib_data is not None and calib_cache is not None:
        raise UsageError(
            "--calib-data and --calib-cache are alternatives",
            fix="pass one: data to calibrate with, or a cache to reuse",
        )
    if calib_cache is not None and backend != "tensorrt":
        raise UsageError(
            "--calib-cache needs --backend tensorrt",
            why="a TensorRT calibration cache only feeds TensorRT's INT8 calibrator",
            fix="pass --calib-data DIR for ONNX Runtime's Q/DQ quantization",
        )
    if any(n.endswith("int8") for n in names):
        if backend == "onnxruntime" and calib_data is None:
            raise UsageError(
                "the INT8 variant needs --calib-data",
                why="ONNX Runtime's Q/DQ quantization calibrates on samples",
                fix="pass --calib-data DIR, or --variants fp32,fp16",
            )
        if (
            backend == "tensorrt"
            and calib_data is None
            and calib_cache is None
            and not _has_qdq(model)
        ):
            raise UsageError(
                "the INT8 variants need --calib-data or --calib-cache",
                fix="pass one, or --variants without int8",
            )
        if not _has_qdq(model) and not quantizable_nodes(model):
            raise ModelError(
                f"{src} cannot be quantized",
                why="it has no Conv, ConvTranspose, MatMul or Gemm node, so INT8 would change "
                "nothing",
                fix="leave int8 out: --variants fp32,fp16",
            )
    data = holdout if holdout is not None else calib_data
    if data is None:
        raise UsageError(
            "decide needs samples to measure accuracy on",
            fix="pass --holdout DIR (held-out samples) or --calib-data DIR",
        )
    inputs, _ = io_specs(model)
    # the benchmark's inputs, checked before any variant is made: --inputs, else every dynamic
    # dimension needs --shape (and generated inputs must fit in memory)
    if inputs_npz is not None:
        load_feed_npz(inputs_npz, inputs, shapes)
    else:
        check_feed_fits(inputs, resolve_input_shapes(inputs, shapes))
    # a holdout only measures accuracy, sample by sample: its samples may differ in shape; the
    # calibration data must not (the INT8 variant calibrates on it)
    dataset = open_dataset(
        data,
        inputs=with_shapes(inputs, shapes),
        max_samples=max_samples,
        one_shape=holdout is None,
    )
    if calib_data is not None and holdout is not None:
        open_dataset(calib_data, inputs=with_shapes(inputs, shapes), max_samples=max_samples)
    return dataset


def _precheck_cache(src: Path, model: Any, cache_path: Path, trt: Any) -> None:
    """The static part of the cache check (release, names), before any variant is built.

    build_engine makes the same check, but only when it reaches the INT8 variant; decide runs it
    first so that a foreign cache is refused before minutes of FP32/FP16 builds and benchmarks.
    """
    from ..backends.tensorrt.cache_usage import check_cache_usage, require_cache_applied
    from ..calib.cache import network_activation_tensors, read_cache

    usage = check_cache_usage(
        read_cache(cache_path),
        network_tensors=network_activation_tensors(model),
        trt_version=str(trt.__version__),
    )
    require_cache_applied(usage, cache_path=cache_path, model_path=src)


def _accuracy(report: AccuracyReport) -> dict[str, Any]:
    loss = 100.0 * report.rel_l2_max
    return {
        **report.to_dict(),
        "loss_pct": loss if math.isfinite(loss) else _WORST,
        "loss_definition": LOSS_DEFINITION,
    }


def _median_run(results: Sequence[Result]) -> Result:
    medians = [float(np.median(r.samples[HOST_LATENCY])) for r in results]
    order = sorted(range(len(results)), key=lambda i: medians[i])
    return results[order[(len(order) - 1) // 2]]


def decide_model(
    model_path: str | os.PathLike[str],
    *,
    backend: str = "onnxruntime",
    variants: Sequence[str] | None = None,
    calib_data: str | os.PathLike[str] | None = None,
    calib_cache: str | os.PathLike[str] | None = None,
    holdout: str | os.PathLike[str] | None = None,
    dla: bool = False,
    targets: Targets | None = None,
    max_loss_pct: float | None = DEFAULT_MAX_LOSS_PCT,
    repeat: int = 1,
    workdir: str | os.PathLike[str] | None = None,
    warmup: Warmup | None = None,
    stop: StopRule | None = None,
    seed: int = 0,
    max_samples: int | None = None,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    inputs_npz: str | os.PathLike[str] | None = None,
    power: PowerWindow | None = None,
    power_summary: PowerSummarizer | None = None,
    power_source: str = "none",
    device: Mapping[str, Any] | None = None,
    finalize: Callable[[Result], Result] | None = None,
    telemetry: Callable[[], Mapping[str, Any]] | None = None,
    on_step: Step | None = None,
    cuda: Any = None,
) -> DecideOutcome:
    """Compare the FP32/FP16/INT8 (and DLA) variants of an ONNX model and choose one.

    ``targets`` is a parsed targets file; without an accuracy target in it the default budget
    ``accuracy.loss_pct <= max_loss_pct`` applies (None: no default budget). ``workdir`` holds the
    variants (default ``orinbench-decide/<model stem>``). ``power`` / ``power_summary`` /
    ``finalize`` come from the CLI's telemetry (each benchmark starts and stops the power source
    around its measured window; ``finalize`` adds the conditions warnings right after it).
    ``telemetry``, when given, is called once every input has been checked and returns those
    keywords (``power``, ``power_summary``, ``power_source``, ``device``, ``finalize``), so that
    no power source is opened for input that is refused.
    ``shapes`` (``--shape``) sizes the dynamic input dimensions of the benchmarks (and the
    accuracy samples must have those sizes); ``inputs_npz`` (``--inputs``) benchmarks on that data
    instead of seeded random inputs. ``threads`` and ``providers`` configure ONNX Runtime: the ONNX
    Runtime variants, and (with either backend) the FP32 reference the accuracy is measured against.
    See the module docstring for the order of work and ``.logic`` for the rule.
    """
    check_repeat(repeat)
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}'", fix=f"choose one of {', '.join(BACKENDS)}")
    if dla and backend != "tensorrt":
        raise UsageError(
            "--dla needs --backend tensorrt",
            why="the DLA is reached through TensorRT",
            fix="add --backend tensorrt (on a Jetson with DLA), or drop --dla",
        )
    if providers:
        from ..backends.onnxruntime import check_providers

        check_providers(providers)  # before any variant is written
    shapes = dict(shapes or {})
    npz = Path(inputs_npz) if inputs_npz is not None else None
    if max_loss_pct is not None and not (max_loss_pct >= 0 and math.isfinite(max_loss_pct)):
        raise UsageError(f"--max-loss must be >= 0 percent, not {max_loss_pct}", fix="e.g. 1.0")
    src = require_file(model_path, what="ONNX model")
    if src.suffix.lower() != ".onnx":
        raise UsageError(
            f"decide needs an ONNX model, not {src.name}",
            why="the variants are made from the ONNX model",
            fix="pass MODEL.onnx",
        )
    model = load_model(src, load_external_data=False)
    names = resolve_variants(variants, backend=backend, dla=dla)
    cdata = Path(calib_data) if calib_data is not None else None
    ccache = Path(calib_cache) if calib_cache is not None else None
    if ccache is not None:
        require_file(ccache, what="calibration cache")
    dataset = _check_inputs(
        src,
        model,
        names,
        backend=backend,
        calib_data=cdata,
        calib_cache=ccache,
        holdout=Path(holdout) if holdout is not None else None,
        max_samples=max_samples,
        shapes=shapes,
        inputs_npz=npz,
    )
    trt: Any = None
    if backend == "tensorrt":
        from .. import _lazy

        trt = _lazy.tensorrt()
        if dla and dla_core_count(trt) == 0:
            raise UsageError(
                "--dla: this device has no DLA",
                why="TensorRT reports 0 DLA cores (builder.num_DLA_cores)",
                fix="drop --dla; the DLA exists on Jetson AGX Orin and Orin NX, not on Orin Nano "
                "or discrete GPUs",
            )
        if ccache is not None and any(n.endswith("int8") for n in names):
            _precheck_cache(src, model, ccache, trt)

    if telemetry is not None:
        opened = dict(telemetry())
        power = opened.get("power", power)
        power_summary = opened.get("power_summary", power_summary)
        power_source = str(opened.get("power_source", power_source))
        device = opened.get("device", device)
        finalize = opened.get("finalize", finalize)

    stem = src.stem
    work = Path(workdir) if workdir is not None else Path("orinbench-decide") / stem
    work.mkdir(parents=True, exist_ok=True)

    def step(text: str) -> None:
        if on_step is not None:
            on_step(text)

    warmup = warmup if warmup is not None else Warmup()
    stop = stop if stop is not None else StopRule(duration_s=10.0)

    def bench(path: Path, v: Variant) -> Result:
        extra: dict[str, Any] = {"command": "decide", "variant": v.name}
        if v.backend == "tensorrt":
            from ..backends.tensorrt import describe_engine

            extra.update(describe_engine(path))
        options: dict[str, Any] = {}
        if v.backend == "onnxruntime" and threads:
            options["intra_op_threads"] = threads
        if v.backend == "onnxruntime" and providers:
            options["providers"] = list(providers)
        if v.backend == "tensorrt" and cuda is not None:
            options["cuda"] = cuda
        result = bench_model(
            path,
            backend=v.backend,
            precision=v.precision,
            name=f"{stem}.{v.name}",
            seed=seed,
            shapes=shapes,
            inputs_npz=npz,
            runner_options=options,
            warmup=warmup,
            stop=stop,
            power=power,
            power_summary=power_summary,
            power_source=power_source,
            device=device,
            extra_config=extra,
        )
        return finalize(result) if finalize is not None else result

    made: list[Variant] = []
    results: dict[str, Result] = {}
    repeats: dict[str, RepeatReport] = {}
    if backend == "onnxruntime":
        made = _make_onnx_variants(src, names, work, cdata, step)
        if repeat == 1:
            for v in made:
                step(f"benchmark {v.label}")
                results[v.name] = bench(v.artifact, v)
        else:
            runs: dict[str, list[Result]] = {v.name: [] for v in made}
            for k in range(repeat):
                for v in made:
                    step(f"benchmark {v.label} ({k + 1}/{repeat})")
                    runs[v.name].append(bench(v.artifact, v))
            for v in made:
                repeats[v.name] = analyze_repeats(
                    [
                        RepeatSample(
                            index=i,
                            mode=MODE_RUN,
                            artifact=str(v.artifact),
                            samples=tuple(r.samples[HOST_LATENCY]),
                        )
                        for i, r in enumerate(runs[v.name])
                    ]
                )
                results[v.name] = _median_run(runs[v.name])
    else:
        made, results, repeats = _make_and_bench_engines(
            src, names, work, cdata, ccache, repeat, bench, step, cuda, shapes
        )

    step("accuracy against the FP32 reference")
    ref, specs = reference_outputs(
        src, dataset, max_samples=max_samples, threads=threads, providers=providers
    )
    targets_used = effective_targets(targets, max_loss_pct=max_loss_pct)
    rows: list[VariantRow] = []
    for v in made:
        report = compare_with_reference(
            v.artifact,
            dataset=dataset,
            reference=ref,
            reference_specs=specs,
            threads=threads,
            providers=providers,
            reference_name=str(src),
        )
        r = results[v.name].with_(accuracy=_accuracy(report))
        results[v.name] = r
        failed, acc_failed = target_failures(r, targets_used)
        rows.append(_row(v, r, model, failed, acc_failed, repeats.get(v.name)))

    decision = decide(rows)
    chosen = decision.chosen or ("fp32" if "fp32" in results else made[0].name)
    section = {
        **decision.to_dict(),
        "targets": targets_used.source,
        "target_list": [str(t) for t in targets_used.targets],
        "data": dataset.source,
        "workdir": str(work),
        "artifacts": {v.label: str(v.artifact) for v in made},
    }
    if repeats:
        labels = {v.name: v.label for v in made}
        section["repeat"] = {labels[k]: rep.to_dict() for k, rep in repeats.items()}
    chosen_result = results[chosen]
    final = chosen_result.with_(extra={**dict(chosen_result.extra), "decide": section})
    return DecideOutcome(result=final, decision=decision, results=results, variants=tuple(made))


def _dla_placement(engine: Path, model: Any) -> tuple[int, int, bool | None]:
    """(layers that fell back to the GPU, network layers, mostly on the GPU) of a DLA engine.

    From the sidecar's ``dla`` entry, written by the build from the build log and the engine
    inspector (TensorRT's own network layer count, and whether any layer landed on the DLA at
    all); an engine built before that entry existed falls back to the build log and the ONNX
    node count, and its "mostly on the GPU" is unknown. Checked only against the TensorRT double.
    """
    from ..backends.tensorrt.cache_usage import parse_builder_log
    from ..backends.tensorrt.sidecar import log_path, read_sidecar

    dla = (read_sidecar(engine) or {}).get("dla")
    if isinstance(dla, Mapping) and isinstance(dla.get("fallback_layers"), int):
        return (
            int(dla["fallback_layers"]),
            int(dla.get("network_layers") or len(model.graph.node)),
            bool(dla.get("mostly_gpu")),
        )
    try:
        text = log_path(engine).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return len(parse_builder_log(text).dla_fallback), len(model.graph.node), None


def _row(
    v: Variant,
    r: Result,
    model: Any,
    failed: Sequence[str],
    acc_failed: Sequence[tuple[float, float]],
    rep: RepeatReport | None,
) -> VariantRow:
    metrics = r.metrics()
    layers_precision = layers_device = None
    reformat = fallback = network = mostly_gpu = None
    if v.backend == "tensorrt":
        from ..backends.tensorrt.cache_usage import analyze_layers, engine_inspector_layers

        layers = engine_inspector_layers(v.artifact, dla_core=v.dla_core)
        if layers:
            breakdown = analyze_layers(layers, dla_engine=v.dla_core is not None)
            layers_precision, layers_device = breakdown.precision, breakdown.device
            reformat = breakdown.reformat
        if v.dla_core is not None:
            fallback, network, mostly_gpu = _dla_placement(v.artifact, model)
    return VariantRow(
        name=v.name,
        label=v.label,
        backend=v.backend,
        precision=v.precision,
        device=v.device,
        p50_ms=float(r.stats[HOST_LATENCY]["p50_ms"]),
        p99_ms=float(r.stats[HOST_LATENCY]["p99_ms"]),
        p99_ci=_p99_ci(r),
        fps=float(r.throughput.get("fps", 0.0)),
        size_bytes=v.size_bytes,
        power_w=metrics.get("power.mean_w"),
        energy_mj=metrics.get("energy.mj_per_inference"),
        accuracy_loss_pct=metrics.get("accuracy.loss_pct"),
        layers_precision=layers_precision,
        layers_device=layers_device,
        reformat_layers=reformat,
        dla_fallback_layers=fallback,
        network_layers=network,
        dla_mostly_gpu=mostly_gpu,
        failed_targets=tuple(failed),
        accuracy_failed=tuple(acc_failed),
        repeat=rep.to_dict() if rep is not None else None,
    )


def _p99_ci(r: Result) -> tuple[float, float] | None:
    ci = (r.stats[HOST_LATENCY].get("ci") or {}).get("p99_ms")
    return (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None


def _make_onnx_variants(
    src: Path, names: Sequence[str], work: Path, calib_data: Path | None, step: Step
) -> list[Variant]:
    from ..precision.fp16 import convert_to_fp16
    from ..precision.qdq import quantize_qdq

    out: list[Variant] = []
    for name in names:
        if name == "fp32":
            out.append(Variant("fp32", "onnxruntime", src))
        elif name == "fp16":
            step("make the FP16 model")
            path = convert_to_fp16(src, onnx_variant_path(work, src.stem, "fp16"))
            out.append(Variant("fp16", "onnxruntime", Path(path)))
        elif name == "int8":
            step("make the INT8 (Q/DQ) model")
            assert calib_data is not None  # checked before
            path = quantize_qdq(
                src, data=calib_data, out_path=onnx_variant_path(work, src.stem, "int8")
            )
            out.append(Variant("int8", "onnxruntime", Path(path)))
    return out


def _make_and_bench_engines(
    src: Path,
    names: Sequence[str],
    work: Path,
    calib_data: Path | None,
    calib_cache: Path | None,
    repeat: int,
    bench: Callable[[Path, Variant], Result],
    step: Step,
    cuda: Any,
    shapes: Mapping[str, Sequence[int]],
) -> tuple[list[Variant], dict[str, Result], dict[str, RepeatReport]]:
    from ..backends.tensorrt import BuildOptions, ShapeRange, build_engine
    from .repeat import BuildRequest, repeat_builds

    timing = work / f"{src.stem}.timing.cache"
    made: list[Variant] = []
    results: dict[str, Result] = {}
    repeats: dict[str, RepeatReport] = {}
    for name in names:
        precision = name.removeprefix("dla-")
        dla_core = DLA_CORE if name.startswith("dla-") else None
        int8 = precision == "int8"
        opts = BuildOptions(
            precision=precision,
            timing_cache=timing,
            dla_core=dla_core,
            gpu_fallback=dla_core is not None,
            calib_cache=calib_cache if int8 else None,
            calib_data=calib_data if int8 and calib_cache is None else None,
            # --shape: one fixed-shape profile, the shape the engine is then benchmarked at
            shapes={n: ShapeRange(tuple(d), tuple(d), tuple(d)) for n, d in shapes.items()},
        )
        engine = engine_variant_path(work, src.stem, name)
        v = Variant(name, "tensorrt", engine, dla_core=dla_core)
        if repeat == 1:
            step(f"build {v.label}")
            # build_engine itself refuses an INT8 engine whose cache TensorRT did not apply
            report = build_engine(src, engine, opts, cuda=cuda)
            made.append(replace(v, build=dict(report.sidecar)))
            step(f"benchmark {v.label}")
            results[name] = bench(engine, v)
            continue

        def build_one(req: BuildRequest, opts: BuildOptions = opts, int8: bool = int8) -> Path:
            rep = build_engine(
                src,
                req.engine_path,
                replace(opts, timing_cache=req.timing_cache),
                force=True,
                cuda=cuda,
            )
            return rep.engine_path

        def bench_one(path: Path, v: Variant = v) -> Result:
            return bench(path, v)

        def step_one(text: str, label: str = v.label) -> None:
            step(f"{label}: {text}")

        rep_report, result = repeat_builds(
            n=repeat, build=build_one, bench=bench_one, keep=engine, on_step=step_one
        )
        repeats[name] = rep_report
        results[name] = _relocated(result, engine)
        made.append(v)
    return made, results, repeats


def _relocated(result: Result, engine: Path) -> Result:
    """The kept engine's benchmark result, pointing at the kept engine (it was moved)."""
    from ..backends.tensorrt import describe_engine

    config = replace(result.config, extra={**dict(result.config.extra), **describe_engine(engine)})
    return result.with_(model=replace(result.model, path=str(engine)), config=config)
