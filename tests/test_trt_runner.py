"""The TensorRT runner, timing and loading, against the TensorRT double and the fake CUDA layer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.fake_cuda import FakeCuda
from trt_double.pytest_fixtures import TrtEnv, import_double

from orinbench.backends.base import Runner
from orinbench.backends.tensorrt import (
    BuildOptions,
    TensorRTRunner,
    build_engine,
    describe_engine,
    measure_throughput,
    open_tensorrt_runner,
    parse_shapes,
    profile_layers,
)
from orinbench.backends.tensorrt.sidecar import sidecar_path
from orinbench.backends.tensorrt.throughput import enqueue_bound_warning
from orinbench.bench.harness import StopRule, Warmup, measure
from orinbench.errors import (
    BackendError,
    EngineCompatibilityError,
    InputFileError,
    ShapeError,
    UsageError,
)

trt_env = fx.trt_env

ALL = ["8.5", "8.6", "10.3", "11.4"]


def _x(batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 16, 16)).astype(np.float32)


def _reference(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(onnx_path)).run(None, {"x": x})[0]


def _engine(tmp_path: Path, **opts: object) -> tuple[Path, Path]:
    onnx_path = models.conv_model(tmp_path / "conv.onnx", dynamic_batch="shapes" in opts)
    report = build_engine(onnx_path, tmp_path / "conv.engine", BuildOptions(**opts))  # type: ignore[arg-type]
    return onnx_path, report.engine_path


@pytest.mark.parametrize("trt_env", ALL, indirect=True)
def test_outputs_match_onnxruntime(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path)
    x = _x()
    with TensorRTRunner(engine) as runner:
        assert isinstance(runner, Runner)
        assert runner.backend == "tensorrt" and runner.backend_version == trt_env.trt.__version__
        assert [s.name for s in runner.inputs] == ["x"] and runner.outputs[0].shape == (1, 4, 1, 1)
        out = runner.infer({"x": x})
        np.testing.assert_allclose(out["y"], _reference(onnx_path, x), rtol=1e-5)
        # a second feed: outputs change with the inputs (buffers are really used)
        x2 = _x(seed=1)
        np.testing.assert_allclose(
            runner.infer({"x": x2})["y"], _reference(onnx_path, x2), rtol=1e-5
        )
    assert trt_env.cuda.pageable_copies == 0  # page-locked host buffers only


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_harness_gets_gpu_time_without_copies_and_enqueue_time(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    trt_env.testing.config.inference_ms = 2.5
    _, engine = _engine(tmp_path)
    trt_env.cuda.bandwidth = 0.001  # slow copies (3 KiB in ~3 ms): they must not count as GPU time
    with TensorRTRunner(engine) as runner:
        runner.load_inputs({"x": _x()})
        m = measure(runner, warmup=Warmup(seconds=0, iterations=3), stop=StopRule(iterations=25))
    assert m.gpu_compute_ms is not None
    np.testing.assert_allclose(m.gpu_compute_ms, 2.5)
    assert m.iterations == 25 and np.all(m.enqueue_ms > 0) and np.all(m.latency_ms > 0)
    assert trt_env.cuda.ran["htod"] == 28 and trt_env.cuda.ran["dtoh"] == 28


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_no_transfers_skips_the_copies(trt_env: TrtEnv, tmp_path: Path) -> None:
    _, engine = _engine(tmp_path)
    with TensorRTRunner(engine) as runner:
        runner.load_inputs({"x": _x()})
        measure(
            runner,
            warmup=Warmup(seconds=0, iterations=2),
            stop=StopRule(iterations=10),
            transfers=False,
        )
    assert trt_env.cuda.ran["htod"] == 0 and trt_env.cuda.ran["trt"] == 12


@pytest.mark.parametrize("trt_env", ["8.6", "11.4"], indirect=True)
def test_cuda_graph_captures_once_and_replays(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path)
    x = _x()
    with TensorRTRunner(engine, cuda_graph=True) as runner:
        out = runner.infer({"x": x})
        assert runner.cuda_graph_active and runner.notes == []
        calls = trt_env.testing.calls["execute_async_v3"]
        m = measure(runner, warmup=Warmup(seconds=0, iterations=1), stop=StopRule(iterations=20))
        # replays do not call TensorRT at all
        assert trt_env.testing.calls["execute_async_v3"] == calls
        np.testing.assert_allclose(runner.outputs_host()["y"], _reference(onnx_path, x), rtol=1e-5)
    np.testing.assert_allclose(out["y"], _reference(onnx_path, x), rtol=1e-5)
    assert trt_env.cuda.ran["graph:trt"] == 22  # infer + warm-up + 20
    np.testing.assert_allclose(m.gpu_compute_ms, trt_env.testing.config.inference_ms)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_cuda_graph_falls_back_when_capture_is_impossible(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path)
    trt_env.cuda.capture_unsupported = True
    x = _x()
    with TensorRTRunner(engine, cuda_graph=True) as runner:
        out = runner.infer({"x": x})
        assert not runner.cuda_graph_active
        assert any("without --cuda-graph" in n for n in runner.notes)
    np.testing.assert_allclose(out["y"], _reference(onnx_path, x), rtol=1e-5)
    assert trt_env.cuda.graph_launches == 0


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_spin_wait_polls_the_event(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path)
    x = _x()
    with TensorRTRunner(engine, spin_wait=True) as runner:
        out = runner.infer({"x": x})
    assert trt_env.cuda.ran["query"] >= 1
    np.testing.assert_allclose(out["y"], _reference(onnx_path, x), rtol=1e-5)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_zero_copy_uses_mapped_memory_and_no_copies(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path)
    x = _x()
    with TensorRTRunner(engine, zero_copy=True) as runner:
        runner.load_inputs({"x": x})
        m = measure(runner, warmup=Warmup(seconds=0, iterations=1), stop=StopRule(iterations=5))
        out = runner.outputs_host()
        assert runner.notes == []  # integrated GPU: the normal case on Jetson
    assert trt_env.cuda.ran["htod"] == 0 and trt_env.cuda.ran["dtoh"] == 0
    assert m.iterations == 5
    np.testing.assert_allclose(out["y"], _reference(onnx_path, x), rtol=1e-5)
    assert {a.kind for a in trt_env.cuda.allocs} == {"mapped"}


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_zero_copy_needs_mappable_memory(trt_env: TrtEnv, tmp_path: Path) -> None:
    _, engine = _engine(tmp_path)
    trt_env.cuda.can_map = False
    with pytest.raises(UsageError, match="zero-copy"), TensorRTRunner(engine, zero_copy=True):
        pass
    trt_env.cuda.can_map, trt_env.cuda.integrated = True, False
    with TensorRTRunner(engine, zero_copy=True) as runner:
        assert "PCIe" in runner.notes[0]


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_dynamic_shapes_inside_and_outside_the_profile(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path, shapes=parse_shapes(["x:1x3x16x16/2x3x16x16/4x3x16x16"]))
    with TensorRTRunner(engine) as runner:
        assert runner.inputs[0].shape == ("?", 3, 16, 16)
        assert runner.default_shapes() == {"x": (2, 3, 16, 16)}
        for batch in (4, 1, 3):
            x = _x(batch, seed=batch)
            out = runner.infer({"x": x})
            assert out["y"].shape == (batch, 4, 1, 1)
            np.testing.assert_allclose(out["y"], _reference(onnx_path, x), rtol=1e-5)
        with pytest.raises(ShapeError, match="outside the engine's range"):
            runner.load_inputs({"x": _x(5)})
        with pytest.raises(ShapeError, match="dtype"):
            runner.load_inputs({"x": _x(1).astype(np.float64)})
        with pytest.raises(ShapeError, match="unknown"):
            runner.load_inputs({"x": _x(1), "z": _x(1)})


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_streams_throughput_uses_every_lane(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path)
    x = _x()
    with TensorRTRunner(engine, streams=3) as runner:
        runner.load_inputs({"x": x})
        res = measure_throughput(runner, duration_s=0.05, warmup_s=0.01)
        assert res.streams == 3 and res.inferences >= 3 and res.fps > 0
        handles = {lane.stream.handle for lane in runner._lanes}
        assert len(handles) == 3
        for i in range(3):  # every lane computed the right outputs in its own buffers
            lane = runner._lanes[i]
            np.testing.assert_allclose(
                lane.bindings["y"].host_view(), _reference(onnx_path, x), rtol=1e-5
            )
    assert sum(1 for s in trt_env.cuda.streams.values() if s.clock_ms > 0) == 3


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_profile_layers_from_a_separate_profiled_run(trt_env: TrtEnv, tmp_path: Path) -> None:
    trt_env.testing.config.inference_ms = 6.0
    _, engine = _engine(tmp_path)
    with TensorRTRunner(engine) as runner:
        runner.load_inputs({"x": _x()})
        calls = trt_env.testing.calls["execute_async_v3"]
        prof = profile_layers(runner, iterations=4)
        assert trt_env.testing.calls["execute_async_v3"] == calls + 4
        assert runner._lanes[0].context.profiler is None  # the timed context is untouched
    names = [layer["name"] for layer in prof["layers"]]
    assert names[0] == "conv" and set(names) == {"conv", "relu", "gap"}
    assert prof["total_ms"]["mean"] == pytest.approx(6.0)
    assert sum(layer["share"] for layer in prof["layers"]) == pytest.approx(1.0)
    assert prof["layers"][0]["share"] == pytest.approx(4 / 6)  # the double weighs a conv 4x


def test_enqueue_bound_warning_threshold() -> None:
    gpu = np.full(100, 1.0)
    assert enqueue_bound_warning(np.full(100, 0.8), gpu) is None
    w = enqueue_bound_warning(np.full(100, 0.81), gpu)
    assert w is not None and w.code == "enqueue-bound" and "--cuda-graph" in w.message
    assert enqueue_bound_warning(np.full(10, 5.0), None) is None


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_protocol_misuse_is_an_error(trt_env: TrtEnv, tmp_path: Path) -> None:
    _, engine = _engine(tmp_path)
    runner = TensorRTRunner(engine)
    with pytest.raises(BackendError, match="not open"):
        runner.load_inputs({"x": _x()})
    with runner, pytest.raises(BackendError, match="no inputs loaded"):
        runner.enqueue()
    with pytest.raises(UsageError):
        TensorRTRunner(engine, streams=0)


# -- loading engines that cannot load here -----------------------------------------------------


def _swap_double(monkeypatch: pytest.MonkeyPatch, env: TrtEnv, version: str) -> TrtEnv:
    trt = import_double(version, monkeypatch)
    trt._testing.reset()
    trt._testing.set_cuda(env.cuda)
    return TrtEnv(trt=trt, cuda=env.cuda, version=version)


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_engine_from_another_tensorrt_version(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, engine = _engine(tmp_path, precision="fp16")
    _swap_double(monkeypatch, trt_env, "10.3")
    with pytest.raises(EngineCompatibilityError) as err, TensorRTRunner(engine):
        pass
    msg = str(err.value)
    assert "built by TensorRT 8.6.1, this is TensorRT 10.3.0" in msg
    assert "orinbench build" in msg and "--precision fp16" in msg and "\n" not in msg
    # without the sidecar, TensorRT's own message is translated
    sidecar_path(engine).unlink()
    with (
        pytest.raises(EngineCompatibilityError, match="another TensorRT version than this one"),
        TensorRTRunner(engine),
    ):
        pass


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_engine_from_another_patch_release_without_sidecar(trt_env: TrtEnv, tmp_path: Path) -> None:
    from tensorrt import _plan

    _, engine = _engine(tmp_path)
    header, onnx_bytes = _plan.load(engine.read_bytes())
    header["trt_version"] = "10.3.1"  # same serialization tag, other release
    engine.write_bytes(_plan.dump(header, onnx_bytes))
    sidecar_path(engine).unlink()
    expected = re.escape("built by TensorRT 10.3.1, this is TensorRT 10.3.0")
    with pytest.raises(EngineCompatibilityError, match=expected), TensorRTRunner(engine):
        pass


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_engine_from_another_gpu(trt_env: TrtEnv, tmp_path: Path) -> None:
    _, engine = _engine(tmp_path)
    trt_env.testing.config.compute_capability = "9.0"
    trt_env.cuda.compute_capability, trt_env.cuda.name = (9, 0), "NVIDIA H100"
    with pytest.raises(EngineCompatibilityError) as err, TensorRTRunner(engine):
        pass
    assert "'Orin (nvgpu)' (compute capability 8.7)" in str(err.value)
    assert "'NVIDIA H100' (compute capability 9.0)" in str(err.value)
    sidecar_path(engine).unlink()
    expected = re.escape("compute capability 8.7, this GPU 'NVIDIA H100' has 9.0")
    with pytest.raises(EngineCompatibilityError, match=expected), TensorRTRunner(engine):
        pass
    assert trt_env.cuda.depth == 0


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_truncated_garbage_and_empty_engines(trt_env: TrtEnv, tmp_path: Path) -> None:
    _, engine = _engine(tmp_path)
    data = engine.read_bytes()
    engine.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated or was replaced"), TensorRTRunner(engine):
        pass
    sidecar_path(engine).unlink()
    with pytest.raises(InputFileError, match="truncated or corrupt"), TensorRTRunner(engine):
        pass
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(InputFileError, match="not a TensorRT engine"), TensorRTRunner(engine):
        pass
    engine.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"), TensorRTRunner(engine):
        pass
    with pytest.raises(InputFileError, match="not found"), TensorRTRunner(tmp_path / "none.engine"):
        pass


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_plugin_engines_load_their_plugins(trt_env: TrtEnv, tmp_path: Path) -> None:
    from trt_double.pytest_fixtures import write_fake_plugin

    onnx_path = models.plugin_model(tmp_path / "bev.onnx")
    lib = write_fake_plugin(tmp_path / "libbevpool.so", "BEVPoolV2")
    engine = build_engine(
        onnx_path, tmp_path / "bev.engine", BuildOptions(plugins=(lib,))
    ).engine_path
    trt_env.testing.plugins.clear()  # a new process: nothing registered
    with TensorRTRunner(engine) as runner:  # the sidecar names the library
        assert runner.outputs[0].name == "y"
    trt_env.testing.plugins.clear()
    sidecar_path(engine).unlink()
    with (
        pytest.raises(InputFileError, match=r"plugin that is not loaded.*--plugins"),
        TensorRTRunner(engine),
    ):
        pass
    with TensorRTRunner(engine, plugins=[lib]):
        pass


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_dla_engines_set_the_runtime_dla_core(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, engine = _engine(tmp_path, precision="fp16", dla_core=1)
    with TensorRTRunner(engine) as runner:
        assert runner._runtime.DLA_core == 1
        np.testing.assert_allclose(
            runner.infer({"x": _x()})["y"], _reference(onnx_path, _x()), rtol=1e-5
        )


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_open_tensorrt_runner_builds_onnx_first(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    runner = open_tensorrt_runner(onnx_path, precision="fp16", cuda_graph=True)
    assert runner.build_report is not None and not runner.build_report.skipped
    assert runner.engine_path == Path("engines/conv.fp16.engine")
    with runner:
        assert runner.infer({"x": _x()})["y"].shape == (1, 4, 1, 1)
    again = open_tensorrt_runner(onnx_path, precision="fp16")
    assert again.build_report.skipped
    desc = describe_engine(runner.engine_path)
    assert desc["build"]["settings"]["precision"] == "fp16"
    assert desc["engine"]["size_bytes"] == runner.engine_path.stat().st_size
    json.dumps(desc)  # goes into the result JSON
    direct = open_tensorrt_runner(runner.engine_path)
    assert direct.build_report is None and direct.engine_path == runner.engine_path


def test_fake_cuda_is_strict() -> None:
    from trt_double.fake_cuda import FakeCudaError

    cuda = FakeCuda()
    with pytest.raises(FakeCudaError, match="without a current context"):
        cuda.stream()
    cuda.open(0)
    s = cuda.stream()
    a, b = cuda.event(timing=True, blocking=False), cuda.event(timing=True, blocking=False)
    cuda.record(a, s)
    cuda.record(b, s)
    with pytest.raises(FakeCudaError, match="not completed"):
        cuda.elapsed_ms(a, b)
    cuda.event_synchronize(b)
    assert cuda.elapsed_ms(a, b) == 0.0
    buf = cuda.device_alloc(16)
    with pytest.raises(FakeCudaError, match="invalid device address"):
        cuda.htod_async(cuda.device_ptr(buf) + 8, np.zeros(4, np.float32), s)
    cuda.begin_capture(s)
    with pytest.raises(FakeCudaError, match="capturing"):
        cuda.stream_synchronize(s)
    cuda.abort_capture(s)
    cuda.free(buf)
    with pytest.raises(FakeCudaError, match="double free"):
        cuda.free(buf)
    cuda.close()
    with pytest.raises(FakeCudaError, match="underflow"):
        cuda.close()


def test_fake_cuda_has_every_method_of_the_cuda_api() -> None:
    from orinbench.backends.tensorrt.cuda import CudaApi, PyCudaLayer

    api = {n for n in dir(CudaApi) if not n.startswith("_")}
    assert api <= set(dir(FakeCuda)) and api <= set(dir(PyCudaLayer))
    assert isinstance(FakeCuda(), CudaApi)
