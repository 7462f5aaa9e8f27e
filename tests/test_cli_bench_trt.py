"""`orinbench bench` on the TensorRT backend, against the strict TensorRT double and fake CUDA.

Only the double runs here: these tests prove the wiring (build-then-bench, sidecar precision,
CUDA-event GPU time, layer profile, multi-stream throughput), not TensorRT's real behaviour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.results import load_result

trt_env = fx.trt_env
FAST = ("--warmup", "0", "--power", "none", "--no-history", "-q")


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_bench_onnx_builds_then_times_with_cuda_events(trt_env: TrtEnv, tmp_path: Path, run_cli):
    trt_env.testing.config.inference_ms = 3.5  # the simulated GPU time of one inference
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.fp16.engine"
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(
        "bench",
        str(onnx_path),
        "--backend",
        "tensorrt",
        "--precision",
        "fp16",
        "--engine-out",
        str(engine),
        "--iterations",
        "40",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0, err
    assert engine.is_file()
    r = load_result(out)
    assert r.environment.backend == "tensorrt"
    assert r.environment.backend_version.startswith(trt_env.version)
    assert r.config.precision == "fp16"
    assert set(r.samples) == {"latency", "enqueue", "gpu_compute"}
    gpu = np.array(r.samples["gpu_compute"])
    host = np.array(r.samples["latency"])
    assert len(gpu) == 40
    # the events measure the double's simulated inference time, copies excluded (the fake GPU
    # clock is simulated, the host clock is real: the two are not comparable here)
    np.testing.assert_allclose(gpu, 3.5)
    assert (host > 0).all()
    assert r.stats["gpu_compute"]["p50_ms"] == pytest.approx(3.5)
    assert r.config.extra["build"]["settings"]["precision"] == "fp16"
    assert r.config.extra["engine"]["sha256"]
    assert r.model.path == str(onnx_path)
    assert "GPU compute (CUDA events)" in stdout


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_bench_engine_reads_precision_from_the_sidecar(trt_env: TrtEnv, tmp_path: Path, run_cli):
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    code, _, err = run_cli("build", str(onnx_path), "--precision", "fp16", "--out", str(engine))
    assert code == 0, err
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "bench",
        str(engine),
        "--iterations",
        "20",
        "--out",
        str(out),
        "--no-transfers",
        "--profile-layers",
        "--profile-iterations",
        "5",
        "--streams",
        "2",
        *FAST,
    )
    assert code == 0, err
    r = load_result(out)
    assert r.config.precision == "fp16"
    assert r.config.extra["transfers"] is False
    assert r.model.path == str(onnx_path)  # the sidecar names the ONNX it came from
    layers = r.extra["layers"]
    assert layers and isinstance(layers, dict)
    assert r.extra["throughput_streams"]["streams"] == 2
    assert r.extra["throughput_streams"]["fps"] > 0

    code, _, err = run_cli("bench", str(engine), "--precision", "int8", "--iterations", "5", *FAST)
    assert code == 2
    assert "built as fp16" in err and "Traceback" not in err


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_truncated_engine_is_one_line(trt_env: TrtEnv, tmp_path: Path, run_cli):
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    assert run_cli("build", str(onnx_path), "--out", str(engine))[0] == 0
    data = engine.read_bytes()
    engine.write_bytes(data[: len(data) // 2])
    out = tmp_path / "r.json"
    code, _, err = run_cli("bench", str(engine), "--iterations", "5", "--out", str(out), *FAST)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("orinbench: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_demo_on_tensorrt_builds_fp16_and_gates(trt_env: TrtEnv, tmp_path: Path, run_cli):
    code, stdout, err = run_cli(
        "demo",
        "--backend",
        "tensorrt",
        "--size",
        "tiny",
        "--workdir",
        str(tmp_path),
        "--iterations",
        "10",
        *FAST,
    )
    assert code == 0, err
    r = load_result(tmp_path / "result.json")
    assert r.environment.backend == "tensorrt" and r.config.precision == "fp16"
    assert (tmp_path / "sample-bev-tiny.fp16.engine").is_file() or list(tmp_path.glob("*.engine"))
    assert "gate PASS" in stdout
