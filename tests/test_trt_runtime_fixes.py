"""The TensorRT runtime fixes of issue 14 (audit defects 1, 8, 9, 14), through orinbench.

Each test here failed on the code before the fix (checked by running it against main, a4f9fa9,
with this branch's double). They run against the TensorRT double and the fake CUDA layer only;
the double enforces the rules as read in the upstream headers, never checked on a real TensorRT.
"""

from __future__ import annotations

import gc
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from test_trt_double_runtime_rules import shape_tensor_plan
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import (
    BuildOptions,
    ShapeRange,
    TensorRTRunner,
    build_engine,
    measure_throughput,
    open_tensorrt_runner,
    profile_layers,
)
from orinbench.backends.tensorrt import cuda as cuda_mod
from orinbench.backends.tensorrt.logger import TrtLog, log_session, process_ilogger
from orinbench.bench.harness import StopRule, Warmup, measure
from orinbench.errors import EngineCompatibilityError, InputFileError, ShapeError
from orinbench.results import load_result

trt_env = fx.trt_env
FAST = ("--warmup", "0", "--power", "none", "--no-history", "-q")
DYN = {"x": ShapeRange((1, 3, 16, 16), (2, 3, 16, 16), (4, 3, 16, 16))}


def _x(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 16, 16)).astype(np.float32)


def _ref(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(onnx_path)).run(None, {"x": x})[0]


def _dynamic_engine(tmp_path: Path, **opts: Any) -> tuple[Path, Path]:
    onnx_path = models.conv_model(tmp_path / "conv.onnx", dynamic_batch=True)
    report = build_engine(onnx_path, tmp_path / "conv.engine", BuildOptions(shapes=DYN, **opts))
    return onnx_path, report.engine_path


# -- defect 1: one optimization profile per concurrent context before TensorRT 9 -------------


@pytest.mark.parametrize("trt_env", ["8.5", "8.6"], indirect=True)
def test_bench_streams_and_profile_layers_on_a_dynamic_engine(
    trt_env: TrtEnv, tmp_path: Path, run_cli: Any
) -> None:
    """``bench MODEL.onnx --streams 2 --profile-layers`` builds 3 profiles and uses one each.
    Before the fix lane 1 failed: "TensorRT refused shape 2x3x16x16 for input 'x'"."""
    onnx_path = models.conv_model(tmp_path / "conv.onnx", dynamic_batch=True)
    engine, out = tmp_path / "conv.engine", tmp_path / "r.json"
    code, _, err = run_cli(
        "bench",
        str(onnx_path),
        "--backend",
        "tensorrt",
        "--shape",
        "x:2x3x16x16",
        "--engine-out",
        str(engine),
        "--streams",
        "2",
        "--profile-layers",
        "--profile-iterations",
        "3",
        "--duration",
        "0.2",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0, err
    r = load_result(out)
    assert r.extra["throughput_streams"]["streams"] == 2
    assert r.extra["layers"]["iterations"] == 3
    assert r.config.extra["build"]["settings"]["optimization_profiles"] == 3


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_build_contexts_makes_identical_profiles_only_where_needed(
    trt_env: TrtEnv, tmp_path: Path, run_cli: Any
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx", dynamic_batch=True)
    engine = tmp_path / "conv.engine"
    code, _, err = run_cli(
        "build", str(onnx_path), "--shapes", "x:1x3x16x16/2x3x16x16/4x3x16x16",
        "--contexts", "3", "--out", str(engine), "-q",
    )  # fmt: skip
    assert code == 0, err
    sidecar = json.loads((tmp_path / "conv.engine.json").read_text())
    want = 3 if trt_env.version == "8.6" else None
    assert sidecar["settings"].get("optimization_profiles") == want
    with TensorRTRunner(engine, streams=2, profiling=True) as runner:
        assert runner._engine.num_optimization_profiles == (want or 1)
        for i in range(want or 1):  # identical ranges
            assert runner._engine.get_tensor_profile_shape("x", i)[2] == (4, 3, 16, 16)
    code, _, err = run_cli("build", str(onnx_path), "--contexts", "0", "--out", str(engine))
    assert code == 2 and "--contexts must be >= 1" in err


@pytest.mark.parametrize("trt_env", ["8.5", "8.6"], indirect=True)
def test_lanes_and_profiling_context_each_use_their_profile(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path, engine = _dynamic_engine(tmp_path, contexts=3)
    x = _x(3)
    with TensorRTRunner(engine, streams=2, profiling=True) as runner:
        runner.load_inputs({"x": x})
        assert [lane.context.active_optimization_profile for lane in runner._lanes] == [0, 1]
        res = measure_throughput(runner, duration_s=0.02, warmup_s=0.0)
        assert res.inferences >= 2
        for lane in runner._lanes:
            np.testing.assert_allclose(
                lane.bindings["y"].host_view(), _ref(onnx_path, x), rtol=1e-5
            )
        prof = profile_layers(runner, iterations=2)
        assert {layer["name"] for layer in prof["layers"]} == {"conv", "relu", "gap"}


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_an_engine_with_too_few_profiles_is_refused_with_the_rebuild_command(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    _, engine = _dynamic_engine(tmp_path)  # one profile
    with pytest.raises(EngineCompatibilityError) as err, TensorRTRunner(engine, streams=2):
        pass
    msg = str(err.value)
    assert "has 1 optimization profile(s)" in msg and "needs one per execution context" in msg
    assert "--contexts 2" in msg and "--shapes x:1x3x16x16/2x3x16x16/4x3x16x16" in msg
    assert "\n" not in msg
    # --profile-layers on a runner opened without profiling=True: refused the same way
    with TensorRTRunner(engine) as runner:
        runner.load_inputs({"x": _x(2)})
        with pytest.raises(EngineCompatibilityError, match="1 for --profile-layers"):
            profile_layers(runner, iterations=1)
        runner.infer({"x": _x(2)})  # the timed lane is unharmed


@pytest.mark.parametrize("trt_env", ["10.3", "11.4"], indirect=True)
def test_from_tensorrt_9_one_profile_serves_every_context(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _dynamic_engine(tmp_path, contexts=3)
    with TensorRTRunner(engine, streams=2, profiling=True) as runner:
        assert runner._engine.num_optimization_profiles == 1  # no extra profiles built
        out = runner.infer({"x": _x(2)})
        np.testing.assert_allclose(out["y"], _ref(onnx_path, _x(2)), rtol=1e-5)
        measure_throughput(runner, duration_s=0.02, warmup_s=0.0)
        profile_layers(runner, iterations=1)


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_a_refused_input_shape_names_the_profile_range(trt_env: TrtEnv, tmp_path: Path) -> None:
    """The profiling context's set_input_shape was not checked: TensorRT's refusal surfaced as
    "the profiling run failed". Profile 1 of this engine takes batch 1 only."""
    trt = trt_env.trt
    onnx_path = models.conv_model(tmp_path / "conv.onnx", dynamic_batch=True)
    log = trt.Logger()
    builder = trt.Builder(log)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    assert trt.OnnxParser(network, log).parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    for hi in (4, 1):
        p = builder.create_optimization_profile()
        p.set_shape("x", (1, 3, 16, 16), (1, 3, 16, 16), (hi, 3, 16, 16))
        config.add_optimization_profile(p)
    engine = tmp_path / "two.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, config)))
    del builder, network, config
    gc.collect()
    with TensorRTRunner(engine) as runner:  # the runner takes profile 1 for the profiler
        runner.load_inputs({"x": _x(2)})  # lane 0, profile 0: batch 1..4
        with pytest.raises(ShapeError) as err:
            profile_layers(runner, iterations=1)
    msg = str(err.value)
    assert "TensorRT refused shape 2x3x16x16 for input 'x'" in msg
    assert "optimization profile 1: min 1x3x16x16, opt 1x3x16x16, max 1x3x16x16" in msg
    assert "out of the optimization profile" in msg  # TensorRT's own reason


# -- defect 8: shape-tensor addresses before the output shapes -----------------------------


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_shape_tensor_inputs_are_bound_before_output_shapes_are_read(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    engine = shape_tensor_plan(trt_env.trt, tmp_path / "st.engine")
    x = np.arange(8, dtype=np.float32).reshape(1, 8)
    with TensorRTRunner(engine) as runner:
        out = runner.infer({"x": x, "s": np.array([2, 4], dtype=np.int32)})
        np.testing.assert_array_equal(out["y"], x.reshape(2, 4))
        out = runner.infer({"x": x, "s": np.array([4, 2], dtype=np.int32)})
        np.testing.assert_array_equal(out["y"], x.reshape(4, 2))


# -- defect 9: one process-wide logger --------------------------------------------------------


@pytest.mark.parametrize("trt_env", ["8.5", "8.6"], indirect=True)
def test_a_second_runner_reports_its_own_load_failure(trt_env: TrtEnv, tmp_path: Path) -> None:
    """With one ILogger per runner, TensorRT 8.x sent the second runner's errors to the first
    runner's logger, and the failure read "TensorRT gave no reason"."""
    _, engine = _dynamic_engine(tmp_path)
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"this is not a TensorRT engine at all")
    with TensorRTRunner(engine) as first:
        with pytest.raises(InputFileError) as err, TensorRTRunner(bad):
            pass
        assert "not a TensorRT engine" in str(err.value)
        assert "Magic tag does not match" in str(err.value)
        first.infer({"x": _x(1)})


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_a_build_while_a_runner_is_open_keeps_its_log(trt_env: TrtEnv, tmp_path: Path) -> None:
    _, engine = _dynamic_engine(tmp_path)
    with TensorRTRunner(engine):
        other = models.conv_model(tmp_path / "other.onnx")
        report = build_engine(other, tmp_path / "other.engine", BuildOptions())
    assert report.log_path is not None
    text = report.log_path.read_text()
    assert "Engine generation completed" in text
    assert trt_env.testing.calls["logger_ignored"] == 0  # one logger: nothing to ignore


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_sessions_share_one_ilogger_and_each_gets_every_message(trt_env: TrtEnv) -> None:
    trt = trt_env.trt
    seen: list[str] = []
    outer = log_session(trt, min_severity="WARNING", on_message=lambda r: seen.append(r.message))
    with log_session(trt, min_severity="INFO") as inner:
        assert inner.ilogger is outer.ilogger is process_ilogger(trt)
        inner.ilogger.log(trt.ILogger.Severity.WARNING, "w1")
        inner.ilogger.log(trt.ILogger.Severity.INFO, "i1")
    assert not inner.attached and outer.attached
    inner.ilogger.log(trt.ILogger.Severity.ERROR, "e1")
    assert [r.message for r in inner.records] == ["w1", "i1"]  # closed: no e1
    assert [r.message for r in outer.records] == ["w1", "e1"]  # WARNING and up
    assert seen == ["w1", "e1"]
    outer.close()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_session_nobody_closed_stops_receiving_when_collected(trt_env: TrtEnv) -> None:
    import weakref

    trt = trt_env.trt
    ref = weakref.ref(TrtLog(trt))
    gc.collect()
    assert ref() is None
    keep = log_session(trt)
    process_ilogger(trt).log(trt.ILogger.Severity.INFO, "after")
    assert [r.message for r in keep.records] == ["after"]
    keep.close()


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_the_process_logger_outlives_every_session(trt_env: TrtEnv) -> None:
    """TensorRT 8.x may keep using the pointer after the Builder/Runtime that was given it is
    gone; the module keeps the ILogger for the life of the process."""
    import weakref

    trt = trt_env.trt
    ref = weakref.ref(process_ilogger(trt))
    with log_session(trt):
        pass
    gc.collect()
    assert ref() is not None and ref() is process_ilogger(trt)


# -- defect 14: clearing CUDA's last error after a failed capture --------------------------


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_after_a_failed_capture_plain_enqueue_still_works(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = build_engine(onnx_path, tmp_path / "c.engine", BuildOptions()).engine_path
    trt_env.cuda.capture_unsupported = True
    x = _x(1)
    with open_tensorrt_runner(engine, cuda_graph=True) as runner:
        out = runner.infer({"x": x})
        assert not runner.cuda_graph_active
        assert any("without --cuda-graph" in n for n in runner.notes)
        m = measure(runner, warmup=Warmup(seconds=0, iterations=1), stop=StopRule(iterations=5))
        assert m.iterations == 5
    np.testing.assert_allclose(out["y"], _ref(onnx_path, x), rtol=1e-5)
    assert trt_env.cuda.cleared_errors == 1 and trt_env.cuda.last_error is None


def test_the_loaded_cuda_runtime_is_found_in_the_process_maps() -> None:
    maps = (
        "7f00-7f10 r--p 00000000 08:01 123 /usr/lib/aarch64-linux-gnu/libnvinfer.so.8.5.2\n"
        "7f10-7f20 r-xp 00000000 08:01 124 /usr/local/cuda-11.4/lib64/libcudart.so.11.4.298\n"
    )
    assert cuda_mod.loaded_cudart(maps) == "/usr/local/cuda-11.4/lib64/libcudart.so.11.4.298"
    assert cuda_mod.loaded_cudart("7f00-7f10 r--p 0 08:01 1 /usr/lib/libcuda.so.1\n") is None


def test_runtime_last_error_is_read_through_the_loaded_library(tmp_path: Path) -> None:
    """The ctypes path on a stand-in libcudart (built here): the error is read and cleared."""
    src = tmp_path / "cudart.c"
    src.write_text(
        "static int err = 900;\n"
        "int cudaGetLastError(void) { int e = err; err = 0; return e; }\n"
        "const char* cudaGetErrorName(int e) { return e == 900 ? "
        '"cudaErrorStreamCaptureUnsupported" : "cudaSuccess"; }\n'
    )
    lib = tmp_path / "libcudart.so.12"
    try:
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no C compiler to build the stand-in library: {exc}")
    maps = tmp_path / "maps"
    maps.write_text(f"7f10-7f20 r-xp 00000000 08:01 124 {lib}\n")
    errors = cuda_mod._RuntimeLastError(str(maps))
    assert errors.clear() == "cudaErrorStreamCaptureUnsupported"
    assert errors.clear() is None
    none = tmp_path / "maps-without"
    none.write_text("7f00-7f10 r--p 0 08:01 1 /usr/lib/libcuda.so.1\n")
    assert cuda_mod._RuntimeLastError(str(none)).clear() is None  # static runtime: no-op
