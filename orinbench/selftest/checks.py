"""The self-test's checks, one function per capability, in the order they run.

Each check takes the :class:`~.context.Context` and returns ``(note, evidence)`` when the capability
works: a one-line summary and the numbers seen. It raises :class:`~.rows.Skip` when the capability
cannot be tried here (a missing dependency, no Jetson, no DLA), :class:`~.rows.CheckFailed` when it
ran and gave a wrong answer; any other exception is a failure too (``run.py`` keeps its traceback).
A :class:`~orinbench.errors.DependencyMissingError` from deep inside (TensorRT, pycuda, NVML not
installed) is turned into a skip with the package to install, by ``run.py``.

Checks call the library, never the CLI: the same functions ``build``, ``bench``, ``calibrate``,
``system check`` and ``--power`` call.
"""

from __future__ import annotations

import math
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, _lazy
from ..errors import DependencyMissingError, OrinbenchError, PowerSourceError
from .context import Context
from .rows import CheckFailed, Skip

Outcome = tuple[str, dict[str, Any]]
CheckFn = Callable[[Context], Outcome]

#: the zoo model every check uses: the single-file sample BEV model, tiny size (milliseconds)
SAMPLE = "sample-bev"
SAMPLE_SIZE = "tiny"
#: the DLA core the DLA variants are built for (Orin AGX/NX have cores 0 and 1)
DLA_CORE = 0

# INA3221 resolution (TI datasheet SBOS576: shunt-voltage LSB 40 uV, bus-voltage LSB 8 mV). The
# power a rail reports is bus V x shunt current, so one LSB of each moves it by
# V x (40 uV / R_shunt) + I x 8 mV. Jetson Orin modules' monitored rails sit on the 5 V module input
# side; the shunt value is not exposed in sysfs on every JetPack, so 5 mOhm is assumed (the value on
# NVIDIA's Orin carrier and module designs we know of): 8 mA per current LSB, 40 mW per rail at 5 V.
INA3221_SHUNT_LSB_V = 40e-6
INA3221_BUS_LSB_V = 8e-3
ASSUMED_SHUNT_OHM = 0.005
ASSUMED_BUS_V = 5.0
#: the rails that measure the whole module input (their total is that one rail)
_INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
#: where a check's fix names JetPack packages
FIX_TENSORRT = (
    "on a Jetson: sudo apt install nvidia-tensorrt python3-libnvinfer (JetPack), and use the "
    "system Python or a venv made with --system-site-packages"
)
FIX_PYCUDA = (
    "pip install 'orinbench[jetson]' (builds pycuda; export PATH=/usr/local/cuda/bin:$PATH)"
)
FIX_JTOP = "sudo pip3 install -U jetson-stats, then sudo systemctl restart jtop.service"
FIX_NVML = "pip install nvidia-ml-py (on a machine with an NVIDIA driver)"
FIX_ORT = "pip install 'orinbench[ort]' (on Jetson: NVIDIA's onnxruntime-gpu wheel for JetPack)"


#: fingerprint keys a Jetson must yield (results are compared only when they are equal)
JETSON_FINGERPRINT = ("module", "module_part", "module_name", "l4t", "jetpack")


@dataclass(frozen=True)
class Check:
    """One row of the self-test: its id, title, the function and the rows it needs first."""

    id: str
    title: str
    fn: CheckFn
    needs: tuple[str, ...] = ()
    #: rows that run first when this one is selected, but whose failure does not skip it
    after: tuple[str, ...] = ()


# -- environment -------------------------------------------------------------------------------
def _dependency_versions() -> dict[str, str | None]:
    """Version of each optional runtime, None where it is not installed (never imported here
    except through _lazy, and only when present)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for module, dist in (
        ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
        ("tensorrt", ("tensorrt", "tensorrt-cu12", "tensorrt_cu12")),
        ("pycuda", ("pycuda",)),
        ("jtop", ("jetson-stats",)),
        ("pynvml", ("nvidia-ml-py", "pynvml")),
        ("onnx", ("onnx",)),
        ("numpy", ("numpy",)),
    ):
        version = None
        if _lazy.is_available(module):
            version = "installed"
            for d in dist:
                try:
                    version = metadata.version(d)
                    break
                except metadata.PackageNotFoundError:
                    continue
        out[module] = version
    return out


def environment_summary() -> dict[str, Any]:
    """Where the self-test ran (selftest.json's ``environment``)."""
    import socket

    return {
        "orinbench": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "dependencies": _dependency_versions(),
    }


def check_fingerprint(ctx: Context) -> Outcome:
    from ..telemetry.device import device_fingerprint

    fp = device_fingerprint(ctx.options.root)
    evidence = {"fingerprint": fp, "host": environment_summary()}
    if fp["is_jetson"]:
        # results are compared only between equal fingerprints: on a Jetson these must be known
        unknown = [k for k in JETSON_FINGERPRINT if fp.get(k) is None]
        if fp.get("power_mode") is None and fp.get("power_mode_id") is None:
            unknown.append("power_mode")
        if unknown:
            raise CheckFailed(
                f"the fingerprint could not read {', '.join(unknown)} on this Jetson",
                fix="send the result: the evidence shows what was read (an L4T release or module "
                "orinbench does not know yet)",
                evidence=evidence,
            )
    what = (
        f"Jetson {fp.get('module_name') or fp.get('module') or 'unknown module'}, "
        f"L4T {fp.get('l4t')}, JetPack {fp.get('jetpack')}, TensorRT {fp.get('tensorrt')}"
        if fp["is_jetson"]
        else f"not a Jetson; GPU {fp.get('gpu') or 'none seen by NVML'}"
    )
    return what, evidence


def check_system(ctx: Context) -> Outcome:
    from ..telemetry.conditions import system_check

    check = system_check(ctx.options.root)
    evidence = {"check": check.to_dict()}
    if not check.is_jetson:
        raise Skip(
            "not a Jetson: clock locking, the power mode and throttling are checked only there",
            fix="run the self-test on the Jetson that will be benchmarked",
            evidence=evidence,
        )
    if not check.ready:
        raise CheckFailed(
            "not ready to benchmark: " + "; ".join(check.reasons),
            fix="; ".join(check.fixes) or "see 'orinbench system check'",
            evidence=evidence,
        )
    return (
        f"ready: power mode {check.power_mode} (id {check.power_mode_id}), clocks locked",
        evidence,
    )


# -- the model ---------------------------------------------------------------------------------
def check_zoo_sample(ctx: Context) -> Outcome:
    from .._io import sha256_file
    from ..model.inspect import inspect_model
    from ..zoo import export_model

    paths = export_model(SAMPLE, size=SAMPLE_SIZE, out_dir=ctx.workdir / "model")
    path = paths["model"]
    info = inspect_model(path)
    ctx.model = path
    evidence = {
        "path": str(path),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "inputs": [s.to_dict() for s in info.inputs],
        "outputs": [s.to_dict() for s in info.outputs],
        "nodes": info.node_count,
    }
    return f"{SAMPLE} ({SAMPLE_SIZE}) exported and checked", evidence


def _require_model(ctx: Context) -> Path:
    if ctx.model is None:  # pragma: no cover - 'needs' keeps this from happening
        raise CheckFailed("the sample model was not exported")
    return ctx.model


def _bench_stats(result: Any) -> dict[str, Any]:
    from ..results.schema import GPU_COMPUTE, HOST_LATENCY

    out: dict[str, Any] = {
        "iterations": int(
            result.stats[HOST_LATENCY].get("count") or len(result.samples[HOST_LATENCY])
        ),
        "p50_ms": result.stats[HOST_LATENCY].get("p50_ms"),
        "p99_ms": result.stats[HOST_LATENCY].get("p99_ms"),
        "fps": result.throughput.get("fps"),
    }
    if GPU_COMPUTE in result.stats:
        out["gpu_compute_p50_ms"] = result.stats[GPU_COMPUTE].get("p50_ms")
    out["warnings"] = [f"{w.code}: {w.message}" for w in result.warnings]
    return out


def _protocol(ctx: Context) -> tuple[Any, Any]:
    from ..bench.harness import StopRule, Warmup

    o = ctx.options
    # --quick counts iterations: a loaded CI machine then still times enough of them
    stop = StopRule(iterations=o.quick_iterations) if o.quick else StopRule(duration_s=o.bench_s)
    return Warmup(seconds=o.warmup_s), stop


def _check_bench_numbers(stats: Mapping[str, Any], evidence: Mapping[str, Any]) -> None:
    p50 = stats.get("p50_ms")
    if not stats.get("iterations") or not isinstance(p50, (int, float)) or not p50 > 0:
        raise CheckFailed("the benchmark timed no iteration (or a latency of 0)", evidence=evidence)
    if not math.isfinite(float(p50)):
        raise CheckFailed("the benchmark produced a non-finite latency", evidence=evidence)


def check_ort_bench(ctx: Context) -> Outcome:
    from ..bench.run import bench_model

    if not _lazy.is_available("onnxruntime"):
        raise Skip("ONNX Runtime is not installed", fix=FIX_ORT)
    warmup, stop = _protocol(ctx)
    result = bench_model(_require_model(ctx), backend="onnxruntime", warmup=warmup, stop=stop)
    stats = _bench_stats(result)
    evidence = {**stats, "backend_version": result.environment.backend_version}
    _check_bench_numbers(stats, evidence)
    return (
        f"ONNX Runtime {result.environment.backend_version}: P50 {stats['p50_ms']:.3g} ms over "
        f"{stats['iterations']} iterations",
        evidence,
    )


# -- TensorRT ----------------------------------------------------------------------------------
def _tensorrt() -> Any:
    if not _lazy.is_available("tensorrt"):
        raise Skip("TensorRT is not installed (import tensorrt fails)", fix=FIX_TENSORRT)
    return _lazy.tensorrt()


def _engine_path(ctx: Context, name: str) -> Path:
    return ctx.workdir / "engines" / f"{SAMPLE}-{SAMPLE_SIZE}.{name}.engine"


def _log_tail(path: Path | None, lines: int = 25) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _build(ctx: Context, name: str, **options: Any) -> tuple[Any, dict[str, Any]]:
    from ..backends.tensorrt import BuildOptions, build_engine
    from ..backends.tensorrt.sidecar import log_path

    _tensorrt()
    opts = BuildOptions(timing_cache=ctx.workdir / "engines" / "timing.cache", **options)
    engine = _engine_path(ctx, name)
    try:
        # force: a self-test re-run into the same folder must build again, not find it up to date
        report = build_engine(_require_model(ctx), engine, opts, force=True)
    except DependencyMissingError:
        raise  # a skip, not a failure (run.py)
    except OrinbenchError as exc:
        # the build log TensorRT wrote (also for a failed build) is what a bug report needs
        raise CheckFailed(
            f"{type(exc).__name__}: {exc}",
            fix=exc.fix or "",
            evidence={
                "lines": list(getattr(exc, "lines", ())),
                "log": str(log_path(engine)),
                "log_tail": _log_tail(log_path(engine), 60),
                "traceback": traceback.format_exc(),
            },
        ) from exc
    ctx.engines[name] = report.engine_path
    side = report.sidecar
    layers = side.get("layers") or {}
    evidence = {
        "engine": str(report.engine_path),
        "bytes": report.engine_path.stat().st_size,
        "build_s": (side.get("build") or {}).get("seconds"),
        "precision_path": side.get("precision_path"),
        "layers": layers,
        "calibration": side.get("calibration"),
        "tensorrt": (side.get("versions") or {}).get("tensorrt"),
        "warnings": list(report.warnings[:20]),
        "log_tail": _log_tail(report.log_path),
    }
    return report, evidence


def _layer_count(layers: Mapping[str, Any] | None, precision: str) -> int:
    return int(((layers or {}).get("precision") or {}).get(precision, 0))


def make_build_check(precision: str) -> CheckFn:
    def check(ctx: Context) -> Outcome:
        _, evidence = _build(ctx, precision, precision=precision)
        layers = evidence["layers"]
        if precision == "fp16" and layers and not _layer_count(layers, "FP16"):
            raise CheckFailed("the FP16 engine has no FP16 layer", evidence=evidence)
        return f"built in {evidence['build_s']} s: {(layers or {}).get('precision')}", evidence

    return check


def check_build_int8(ctx: Context) -> Outcome:
    """Calibrate (synthetic camera images) while building; TensorRT writes the cache."""
    from ..backends.tensorrt.build import PATH_STRONG
    from ..calib.specs import model_io_specs
    from ..calib.synthetic import write_synthetic_dataset

    _tensorrt()
    inputs, _ = model_io_specs(_require_model(ctx))
    count = ctx.options.calib_samples
    folder = ctx.workdir / f"calib-{count}"
    if folder.is_dir():  # the self-test's own folder from an earlier run: start clean
        shutil.rmtree(folder)
    data = write_synthetic_dataset(folder, inputs=inputs, count=count, seed=0)
    ctx.calib_data = data
    report, evidence = _build(ctx, "int8", precision="int8", calib_data=data)
    calib = report.sidecar.get("calibration") or {}
    written = calib.get("cache_written")
    int8 = _layer_count(evidence["layers"], "INT8")
    evidence.update(calib_samples=ctx.options.calib_samples, int8_layers=int8)
    if evidence["precision_path"] == PATH_STRONG:
        # TensorRT 11 (strongly typed) has no implicit calibration: build_engine made a Q/DQ
        # model from the same data, and there is no cache to write or reuse
        if evidence["layers"] and int8 == 0:
            raise CheckFailed("the Q/DQ INT8 engine has no INT8 layer", evidence=evidence)
        ctx.int8_layers = int8
        return (
            f"strongly typed: INT8 from a Q/DQ model of {ctx.options.calib_samples} samples, "
            f"{int8} INT8 layers (no calibration cache on this path)",
            evidence,
        )
    if not written or not Path(written).is_file():
        raise CheckFailed(
            "calibration wrote no cache beside the engine",
            fix="read the build log (log_tail)",
            evidence=evidence,
        )
    if evidence["layers"] and int8 == 0:
        raise CheckFailed("the calibrated engine has no INT8 layer", evidence=evidence)
    ctx.calib_cache = Path(written)
    ctx.int8_layers = int8
    return f"calibrated on {ctx.options.calib_samples} samples: {int8} INT8 layers", evidence


def check_int8_cache(ctx: Context) -> Outcome:
    """Rebuild from the cache just written and check TensorRT applied it (``cache_usage``)."""
    if ctx.calib_cache is None:
        int8_row = ctx.rows.get("trt.build.int8")
        raise Skip(
            "this TensorRT builds INT8 strongly typed, from Q/DQ nodes: it has no implicit "
            "calibration, so no cache to rebuild from",
            evidence={"int8_build": int8_row.reason if int8_row else None},
        )
    report, evidence = _build(ctx, "int8-from-cache", precision="int8", calib_cache=ctx.calib_cache)
    usage = ((report.sidecar.get("calibration") or {}).get("cache_usage")) or {}
    int8 = _layer_count(evidence["layers"], "INT8")
    evidence.update(
        cache=str(ctx.calib_cache),
        cache_usage=usage,
        int8_layers=int8,
        int8_layers_calibrated=ctx.int8_layers,
    )
    # build_engine refuses an ignored/partly applied cache itself (CalibrationError, a fail row);
    # a missing verdict would mean that check did not run
    if usage.get("verdict") != "applied":
        raise CheckFailed(
            f"the rebuild from the cache has no 'applied' verdict ({usage.get('verdict')!r})",
            evidence=evidence,
        )
    if ctx.int8_layers is not None and evidence["layers"] and int8 != ctx.int8_layers:
        raise CheckFailed(
            f"the engine rebuilt from the cache has {int8} INT8 layers, the calibrated one "
            f"{ctx.int8_layers}",
            fix="the cache did not carry every scale; compare the two build logs",
            evidence=evidence,
        )
    return (
        f"cache applied: {usage.get('matched')}/{usage.get('expected')} tensors, "
        f"{int8} INT8 layers as calibrated",
        evidence,
    )


def _dla_cores() -> int:
    from ..decide.variants import dla_core_count

    return dla_core_count(_tensorrt())


def make_dla_check(precision: str) -> CheckFn:
    def check(ctx: Context) -> Outcome:
        from ..backends.tensorrt.cache_usage import parse_builder_log

        cores = _dla_cores()
        if cores == 0:
            raise Skip(
                "this module has no DLA (TensorRT reports 0 DLA cores; Orin Nano has none)",
                evidence={"dla_cores": 0},
            )
        extra: dict[str, Any] = {}
        if precision == "int8":
            # the cache TensorRT wrote; on the strongly typed path (no cache) the same data
            if ctx.calib_cache is not None:
                extra["calib_cache"] = ctx.calib_cache
            else:
                extra["calib_data"] = ctx.calib_data
        report, evidence = _build(
            ctx,
            f"dla-{precision}",
            precision=precision,
            dla_core=DLA_CORE,
            gpu_fallback=True,
            **extra,
        )
        text = _log_tail(report.log_path, lines=100_000)
        log = parse_builder_log(text)
        evidence.update(
            dla_cores=cores,
            fallback_layers=len(log.dla_fallback),
            fallback=list(log.dla_fallback[:50]),
            dla_layers=len(log.dla_layers),
            gpu_layers=len(log.gpu_layers),
        )
        return (
            f"DLA core {DLA_CORE}: {len(log.dla_fallback)} layer(s) fall back to the GPU, "
            f"{len(log.dla_layers)} DLA node(s)",
            evidence,
        )

    return check


def _bench_engine(ctx: Context, name: str, *, cuda_graph: bool, streams: int = 1) -> Any:
    from ..backends.tensorrt import open_tensorrt_runner

    _tensorrt()
    return open_tensorrt_runner(
        ctx.engine(name), cuda_graph=cuda_graph, streams=streams, device=ctx.options.device
    )


def _measure_engine(ctx: Context, runner: Any, name: str) -> Any:
    from ..bench.run import bench_runner, make_feed
    from ..results.schema import ModelRef

    feed, shapes = make_feed(runner.inputs, shapes=runner.default_shapes(), seed=0)
    warmup, stop = _protocol(ctx)
    ref = ModelRef(
        name=f"{SAMPLE}-{SAMPLE_SIZE}.{name}",
        path=str(ctx.engine(name)),
        sha256="",
        inputs=runner.inputs,
        outputs=runner.outputs,
    )
    return bench_runner(
        runner, model=ref, feed=feed, shapes=shapes, precision=name, warmup=warmup, stop=stop
    )


def make_trt_bench_check(name: str, *, cuda_graph: bool) -> CheckFn:
    def check(ctx: Context) -> Outcome:
        with _bench_engine(ctx, name, cuda_graph=cuda_graph) as runner:
            result = _measure_engine(ctx, runner, name)
            active = runner.cuda_graph_active
            notes = list(runner.notes)
        stats = _bench_stats(result)
        evidence = {**stats, "cuda_graph_requested": cuda_graph, "cuda_graph_active": active}
        evidence["runner_notes"] = notes
        _check_bench_numbers(stats, evidence)
        if "gpu_compute_p50_ms" not in stats:
            raise CheckFailed("no GPU time from CUDA events", evidence=evidence)
        if cuda_graph and not active:
            why = "; ".join(notes) or "the runner did not capture a graph"
            if name.startswith("dla-"):
                # TensorRT may refuse to capture DLA work into a CUDA graph: a limit, not a bug
                raise Skip(f"no CUDA graph for the DLA engine: {why}", evidence=evidence)
            raise CheckFailed(f"CUDA graph requested but not active: {why}", evidence=evidence)
        graph = "CUDA graph" if active else "no CUDA graph"
        return (
            f"{graph}: P50 {stats['p50_ms']:.3g} ms host, {stats['gpu_compute_p50_ms']:.3g} ms GPU",
            evidence,
        )

    return check


def check_streams(ctx: Context) -> Outcome:
    from ..backends.tensorrt import measure_throughput
    from ..bench.run import make_feed

    with _bench_engine(ctx, "fp16", cuda_graph=False, streams=2) as runner:
        feed, _ = make_feed(runner.inputs, shapes=runner.default_shapes(), seed=0)
        runner.load_inputs(feed)
        tp = measure_throughput(
            runner, duration_s=ctx.options.bench_s, warmup_s=ctx.options.warmup_s
        ).to_dict()
    evidence = {"throughput": tp}
    if tp.get("streams") != 2 or not (tp.get("fps") or 0) > 0:
        raise CheckFailed("two streams gave no throughput", evidence=evidence)
    return f"2 streams: {tp['fps']:.4g} FPS", evidence


def check_profile_layers(ctx: Context) -> Outcome:
    from ..backends.tensorrt import profile_layers
    from ..bench.run import make_feed

    with _bench_engine(ctx, "fp16", cuda_graph=False) as runner:
        feed, _ = make_feed(runner.inputs, shapes=runner.default_shapes(), seed=0)
        runner.load_inputs(feed)
        prof = profile_layers(runner, ctx.options.profile_iterations)
    layers = prof.get("layers") or []
    evidence = {
        "iterations": prof.get("iterations"),
        "total_ms": prof.get("total_ms"),
        "layer_count": len(layers),
        "slowest": layers[:10],
        "note": prof.get("note"),
    }
    if not layers:
        raise CheckFailed("the IProfiler run reported no layer", evidence=evidence)
    return f"{len(layers)} layers profiled over {prof.get('iterations')} iterations", evidence


# -- CUDA and NVML -----------------------------------------------------------------------------
def check_pycuda(ctx: Context) -> Outcome:
    """Page-locked copies, events and a captured graph through the runner's CUDA layer."""
    from ..backends.tensorrt import cuda as cuda_mod

    # through the module attribute, so that the tests' fake CUDA layer is the one used
    layer = cuda_mod.default_layer()
    info = layer.open(ctx.options.device)
    buffers: list[Any] = []
    evidence: dict[str, Any] = {"device": info.to_dict()}
    try:
        evidence["versions"] = layer.versions()
        n = (1 << 18) if ctx.options.quick else (1 << 22)  # float32 elements: 1 MiB / 16 MiB
        stream = layer.stream()
        src = layer.host_alloc((n,), np.dtype(np.float32), mapped=False)
        buffers.append(src)
        dst = layer.host_alloc((n,), np.dtype(np.float32), mapped=False)
        buffers.append(dst)
        dev = layer.device_alloc(src.nbytes)
        buffers.append(dev)
        src[:] = np.arange(n, dtype=np.float32)
        dst[:] = 0
        start = layer.event(timing=True, blocking=False)
        stop = layer.event(timing=True, blocking=False)
        layer.record(start, stream)
        layer.htod_async(layer.device_ptr(dev), src, stream)
        layer.dtoh_async(dst, layer.device_ptr(dev), stream)
        layer.record(stop, stream)
        layer.event_synchronize(stop)
        ms = float(layer.elapsed_ms(start, stop))
        copied = bool(np.array_equal(dst, src))
        evidence.update(bytes=int(src.nbytes), round_trip_ms=ms, copied_equal=copied)
        if ms > 0:
            evidence["round_trip_gb_s"] = round(2 * src.nbytes / (ms * 1e6), 3)
        if not copied:
            raise CheckFailed("a page-locked round trip changed the data", evidence=evidence)
        if not ms > 0:
            raise CheckFailed("CUDA events timed the copies as 0 ms", evidence=evidence)
        # the path --cuda-graph takes: capture the copies once, replay, check the data again
        src[:] = -src
        layer.begin_capture(stream)
        try:
            layer.htod_async(layer.device_ptr(dev), src, stream)
            layer.dtoh_async(dst, layer.device_ptr(dev), stream)
        except BaseException:
            layer.abort_capture(stream)
            raise
        graph = layer.end_capture(stream)
        try:
            layer.launch_graph(graph, stream)
            layer.stream_synchronize(stream)
        finally:
            layer.free_graph(graph)
        graph_ok = bool(np.array_equal(dst, src))
        evidence["graph_replay_equal"] = graph_ok
        if not graph_ok:
            raise CheckFailed("the replayed CUDA graph did not copy the data", evidence=evidence)
        # a second open of the same device nests (one runner per pipeline stage)
        layer.open(ctx.options.device)
        layer.close()
        layer.stream_synchronize(stream)
        evidence["nested_open"] = True
    finally:
        for b in reversed(buffers):
            layer.free(b)
        layer.close()
    return (
        f"{info.name}: {evidence['bytes'] >> 20} MiB round trip in {ms:.3g} ms, graph replay ok",
        evidence,
    )


def _jetson_note(ctx: Context) -> str:
    from ..telemetry.device import is_jetson

    # tried all the same: a Jetson with a discrete GPU (or a test double) may have NVML
    return (
        " (expected on a Jetson: Jetson Linux has no NVML)" if is_jetson(ctx.options.root) else ""
    )


def _nvml_usable(ctx: Context) -> None:
    if not _lazy.is_available("pynvml"):
        raise Skip(
            "NVML's Python bindings are not installed" + _jetson_note(ctx),
            fix="" if _jetson_note(ctx) else FIX_NVML,
        )


def check_nvml(ctx: Context) -> Outcome:
    from ..telemetry.device import nvml_facts

    _nvml_usable(ctx)
    facts = nvml_facts(ctx.options.nvml_index)
    if not facts:
        raise Skip(
            "NVML did not initialise (no NVIDIA driver or GPU here)" + _jetson_note(ctx),
            fix="install the NVIDIA driver, or ignore on a machine without an NVIDIA GPU",
        )
    if not facts.get("gpu"):
        raise CheckFailed(f"NVML has no GPU {ctx.options.nvml_index}", evidence={"facts": facts})
    return (
        f"{facts.get('gpu')}, driver {facts.get('driver')}, CUDA driver {facts.get('cuda_driver')}",
        {"facts": facts},
    )


# -- power -------------------------------------------------------------------------------------
JETSON_SOURCES = ("jtop", "sysfs", "tegrastats")
POWER_SOURCES = (*JETSON_SOURCES, "nvml")
FIXES = {
    "jtop": FIX_JTOP,
    "sysfs": "run on a Jetson with JetPack 5 or later (the ina3221 driver)",
    "tegrastats": "tegrastats comes with Jetson Linux (/usr/bin/tegrastats)",
    "nvml": FIX_NVML,
}


def _open_source(ctx: Context, name: str) -> Any:
    from ..telemetry.device import is_jetson
    from ..telemetry.select import DEFAULT_PERIOD_S, open_power_source

    o = ctx.options
    factory = o.power_factories.get(name)
    if factory is not None:
        return factory(DEFAULT_PERIOD_S[name])
    if name in JETSON_SOURCES and not is_jetson(o.root):
        raise Skip(f"not a Jetson: {name} reads the Jetson's INA3221 power monitors")
    if name == "nvml":
        _nvml_usable(ctx)
    try:
        src, _ = open_power_source(
            name,
            root=o.root,
            jtop_socket=o.jtop_socket,
            tegrastats_bin=o.tegrastats_bin,
            nvml_index=o.nvml_index,
        )
    except PowerSourceError as exc:
        note = _jetson_note(ctx) if name == "nvml" else ""
        raise Skip((exc.why or exc.what) + note, fix=exc.fix or FIXES[name]) from exc
    return src


def _trace_evidence(trace: Any) -> dict[str, Any]:
    totals = [s.total_w for s in trace.samples]
    rails: dict[str, list[float]] = {}
    for s in trace.samples:
        for k, v in s.rails.items():
            rails.setdefault(k, []).append(v)
    return {
        "samples": len(totals),
        "period_s_requested": trace.period_s_requested,
        "period_s_achieved": trace.period_s_achieved,
        "duration_s": round(trace.duration_s, 4),
        "total_of": trace.total_of,
        "mean_total_w": round(float(np.mean(totals)), 4) if totals else None,
        "min_total_w": round(min(totals), 4) if totals else None,
        "max_total_w": round(max(totals), 4) if totals else None,
        "rails_mean_w": {k: round(float(np.mean(v)), 4) for k, v in sorted(rails.items())},
        "energy_counter_j": trace.energy_counter_j,
        "notes": list(trace.notes),
    }


def make_power_check(name: str) -> CheckFn:
    def check(ctx: Context) -> Outcome:
        src = _open_source(ctx, name)
        try:
            describe = src.describe()
            src.start()
            time.sleep(ctx.options.power_s)
            trace = src.stop()
        finally:
            src.close()
        evidence = {"source": describe, **_trace_evidence(trace)}
        if evidence["samples"] < 2:
            raise CheckFailed(
                f"{name} gave {evidence['samples']} sample(s) in {ctx.options.power_s:g} s",
                evidence=evidence,
            )
        if not evidence["mean_total_w"] > 0:
            raise CheckFailed(f"{name} reads {evidence['mean_total_w']} W", evidence=evidence)
        if trace.energy_counter_j is not None and trace.duration_s > 0:
            integral = _window_mean(trace, 0.0, trace.duration_s)[0] * trace.duration_s
            evidence["integral_j"] = round(integral, 4)
            if integral > 0 and abs(trace.energy_counter_j - integral) > 0.2 * integral:
                raise CheckFailed(
                    f"the energy counter ({trace.energy_counter_j:.3g} J) and the integral of the "
                    f"readings ({integral:.3g} J) differ by more than 20 %",
                    evidence=evidence,
                )
        ctx.power_ok[name] = float(evidence["mean_total_w"])
        return (
            f"{evidence['samples']} samples, mean {evidence['mean_total_w']:.4g} W "
            f"({trace.total_of or 'total'})",
            evidence,
        )

    return check


def _window_mean(trace: Any, a: float, b: float) -> tuple[float, float, int]:
    """Time-weighted mean total power over ``[a, b]`` (trace time), the standard error of the
    mean of the samples inside, and their number. The curve is the straight line between
    samples, held flat past the ends (as the ``power`` section computes energy)."""
    t = np.array([s.t_s for s in trace.samples], dtype=np.float64)
    w = np.array([s.total_w for s in trace.samples], dtype=np.float64)
    if t.size == 0:
        raise CheckFailed(f"{trace.source} gave no sample")
    order = np.argsort(t, kind="stable")
    t, w = t[order], w[order]
    grid = np.concatenate(([a], t[(t > a) & (t < b)], [b]))
    vals = np.interp(grid, t, w)
    mean = float(np.sum((vals[1:] + vals[:-1]) * np.diff(grid)) / 2 / (b - a))
    inside = w[(t >= a) & (t <= b)]
    se = float(np.std(inside, ddof=1) / math.sqrt(inside.size)) if inside.size > 1 else 0.0
    return mean, se, int(inside.size)


def ina3221_resolution_w(total_w: float, rails: int) -> float:
    """One INA3221 step of a total made of ``rails`` rails at ``total_w`` (see the constants)."""
    current_lsb_a = INA3221_SHUNT_LSB_V / ASSUMED_SHUNT_OHM
    return rails * ASSUMED_BUS_V * current_lsb_a + (total_w / ASSUMED_BUS_V) * INA3221_BUS_LSB_V


def _rails_in_total(trace: Any) -> int:
    names = set(trace.samples[0].rails) if trace.samples else set()
    if names & set(_INPUT_RAILS):
        return 1
    return max(1, len(names))


def check_power_crosscheck(ctx: Context) -> Outcome:
    """jtop, sysfs and tegrastats read the same INA3221 monitors: over one window, their mean
    totals must agree within the monitor's resolution plus the sampling error of the means."""
    names = [n for n in JETSON_SOURCES if n in ctx.power_ok]
    if len(names) < 2:
        have = ", ".join(names) or "none"
        raise Skip(
            f"fewer than two Jetson power sources work here (working: {have}); NVML measures "
            "another quantity (the GPU board) and is not cross-checked",
            fix="on a Jetson, install jetson-stats (jtop) so that at least two sources exist",
        )
    sources: list[tuple[str, Any, float]] = []
    traces: dict[str, Any] = {}
    try:
        for n in names:
            src = _open_source(ctx, n)
            sources.append((n, src, 0.0))
        started: list[tuple[str, Any, float]] = []
        for n, src, _ in sources:
            src.start()
            # a trace's times count from (just before) start() returned: keep that moment to put
            # every trace on one clock
            started.append((n, src, time.monotonic()))
        t0 = time.monotonic()
        time.sleep(2 * ctx.options.power_s)
        t1 = time.monotonic()
        for n, src, origin in started:
            traces[n] = (src.stop(), origin)
    finally:
        for _, src, _ in sources:
            src.close()
    means: dict[str, dict[str, Any]] = {}
    for n, (trace, origin) in traces.items():
        mean, se, count = _window_mean(trace, t0 - origin, t1 - origin)
        means[n] = {
            "mean_w": round(mean, 4),
            "se_w": round(se, 4),
            "samples_in_window": count,
            "rails_in_total": _rails_in_total(trace),
            "total_of": trace.total_of,
        }
    ref = names[0]
    pairs = []
    bad = []
    for n in names[1:]:
        a, b = means[ref], means[n]
        resolution = ina3221_resolution_w(a["mean_w"], a["rails_in_total"])
        sampling = 2 * math.hypot(a["se_w"], b["se_w"])
        tol = resolution + sampling
        diff = b["mean_w"] - a["mean_w"]
        pair = {
            "pair": f"{n} - {ref}",
            "diff_w": round(diff, 4),
            "tolerance_w": round(tol, 4),
            "resolution_w": round(resolution, 4),
            "sampling_w": round(sampling, 4),
        }
        pairs.append(pair)
        if abs(diff) > tol:
            bad.append(pair)
    evidence = {
        "window_s": round(t1 - t0, 3),
        "means": means,
        "pairs": pairs,
        "tolerance": "INA3221 resolution (40 uV shunt LSB / 5 mOhm x 5 V per rail + 8 mV bus LSB "
        "x current) + 2 x the combined standard error of the two means",
    }
    if bad:
        raise CheckFailed(
            "power totals disagree over the same window: "
            + "; ".join(
                f"{p['pair']} = {p['diff_w']:+.3f} W (tolerance {p['tolerance_w']:.3f} W)"
                for p in bad
            ),
            fix="compare the sources' total_of (which rails each sums) and their rails_mean_w rows",
            evidence=evidence,
        )
    return (
        ", ".join(f"{n} {means[n]['mean_w']:.4g} W" for n in names) + " agree",
        evidence,
    )


# -- the list ------------------------------------------------------------------------------------
ENGINES: tuple[str, ...] = ("fp32", "fp16", "int8", "dla-fp16", "dla-int8")
_BUILD_ROW = {
    "fp32": "trt.build.fp32",
    "fp16": "trt.build.fp16",
    "int8": "trt.build.int8",
    "dla-fp16": "trt.dla.fp16",
    "dla-int8": "trt.dla.int8",
}


def all_checks() -> tuple[Check, ...]:
    """Every row of the self-test, in the order they run."""
    checks: list[Check] = [
        Check("env.fingerprint", "device fingerprint (what results record)", check_fingerprint),
        Check("system.check", "orinbench system check (ready to benchmark)", check_system),
        Check("zoo.sample", "export the tiny sample BEV model", check_zoo_sample),
        Check("ort.bench", "ONNX Runtime bench of the sample", check_ort_bench, ("zoo.sample",)),
        Check("trt.build.fp32", "TensorRT build FP32", make_build_check("fp32"), ("zoo.sample",)),
        Check("trt.build.fp16", "TensorRT build FP16", make_build_check("fp16"), ("zoo.sample",)),
        Check(
            "trt.build.int8",
            "TensorRT build INT8, calibrating (writes the cache)",
            check_build_int8,
            ("zoo.sample",),
        ),
        Check(
            "trt.int8.cache",
            "INT8 rebuilt from the cache, cache applied",
            check_int8_cache,
            ("trt.build.int8",),
        ),
        Check(
            "trt.dla.fp16",
            "DLA FP16 build, GPU fallback counted",
            make_dla_check("fp16"),
            ("zoo.sample",),
        ),
        Check(
            "trt.dla.int8",
            "DLA INT8 build from the cache, GPU fallback counted",
            make_dla_check("int8"),
            ("trt.build.int8",),
        ),
    ]
    for engine in ENGINES:
        for graph in (False, True):
            suffix = ".graph" if graph else ""
            checks.append(
                Check(
                    f"trt.bench.{engine}{suffix}",
                    f"bench the {engine} engine "
                    + ("with a CUDA graph" if graph else "(no graph)"),
                    make_trt_bench_check(engine, cuda_graph=graph),
                    (_BUILD_ROW[engine],),
                )
            )
    checks += [
        Check("trt.streams", "bench --streams 2 (FP16 engine)", check_streams, ("trt.build.fp16",)),
        Check(
            "trt.profile_layers",
            "bench --profile-layers (FP16 engine)",
            check_profile_layers,
            ("trt.build.fp16",),
        ),
        Check("cuda.pycuda", "pycuda layer: page-locked copies, events, graph", check_pycuda),
        Check("nvml.device", "NVML: GPU, driver, clocks", check_nvml),
    ]
    for name in POWER_SOURCES:
        checks.append(
            Check(f"power.{name}", f"power source {name}: open and sample", make_power_check(name))
        )
    checks.append(
        Check(
            "power.crosscheck",
            "power totals agree across sources (same window)",
            check_power_crosscheck,
            after=tuple(f"power.{n}" for n in JETSON_SOURCES),
        )
    )
    return tuple(checks)


def select_checks(checks: Sequence[Check], only: Sequence[str]) -> tuple[Check, ...]:
    """The checks named by ``only`` (ids or dotted prefixes such as ``power``), with the rows
    they need, in run order. An unknown name is a :class:`UsageError`."""
    from ..errors import UsageError

    if not only:
        return tuple(checks)
    by_id = {c.id: c for c in checks}
    chosen: set[str] = set()
    for name in only:
        key = name.strip()
        hits = [c.id for c in checks if c.id == key or c.id.startswith(key + ".")]
        if not hits:
            raise UsageError(
                f"--only names no self-test row {key!r}",
                fix="see docs/first-run.md for the row ids (e.g. power, trt.build.int8)",
            )
        chosen.update(hits)
    todo = list(chosen)
    while todo:
        check = by_id[todo.pop()]
        for need in (*check.needs, *check.after):
            if need not in chosen:
                chosen.add(need)
                todo.append(need)
    return tuple(c for c in checks if c.id in chosen)


def is_dependency_error(exc: BaseException) -> bool:
    return isinstance(exc, DependencyMissingError)
