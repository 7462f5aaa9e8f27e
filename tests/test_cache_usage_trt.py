"""Calibration-cache checks on engines built by the TensorRT double (8.5, 8.6, 10.3), with the
cache behaviour of real TensorRT added by tests/_trt_double_ext.py."""

from __future__ import annotations

from pathlib import Path

import _trt_double_ext
import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import BuildOptions, build_engine
from orinbench.backends.tensorrt.cache_usage import (
    APPLIED,
    check_cache_usage,
    engine_inspector_layers,
    verify_engine_cache,
)
from orinbench.backends.tensorrt.sidecar import log_path
from orinbench.calib.cache import make_cache, network_activation_tensors, write_cache
from orinbench.errors import BuildError, CalibrationError
from orinbench.model.load import load_model

trt_env = fx.trt_env
FLAG_VERSIONS = ["8.5", "8.6", "10.3"]


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    _trt_double_ext.install(monkeypatch)
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    return onnx_path, network_activation_tensors(load_model(onnx_path))


def _int8(onnx_path: Path, engine: Path, cache: Path) -> Path:
    build_engine(onnx_path, engine, BuildOptions(precision="int8", calib_cache=cache))
    return engine


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_a_matching_cache_is_applied(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path, tensors = _setup(tmp_path, monkeypatch)
    assert tensors == ["x", "c", "r", "y"]
    cache = write_cache(
        tmp_path / "conv.cache",
        make_cache(trt_env.trt.__version__, "entropy2", dict.fromkeys(tensors, 0.02)),
    )
    engine = _int8(onnx_path, tmp_path / "conv.engine", cache)
    usage = verify_engine_cache(engine, cache_path=cache, onnx_path=onnx_path)
    assert usage.verdict == APPLIED and usage.matched == 4 and usage.expected == 4
    # the convolution, and the reformat layer that turns the FP32 input into its INT8 input
    assert usage.int8_layers == 2
    assert "Missing scale" not in log_path(engine).read_text()


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_renamed_tensors_build_silently_and_the_check_fails_it(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path, tensors = _setup(tmp_path, monkeypatch)
    cache = write_cache(
        tmp_path / "old.cache",
        make_cache(trt_env.trt.__version__, "entropy2", {f"/old/{t}": 0.02 for t in tensors}),
    )
    engine = _int8(onnx_path, tmp_path / "conv.engine", cache)
    # what TensorRT does: the build succeeds, the log warns per tensor, no layer is INT8
    assert engine.is_file()
    text = log_path(engine).read_text()
    assert text.count("Missing scale and zero-point for tensor") == 4
    layers = engine_inspector_layers(engine)
    assert layers is not None
    assert not any("Int8" in str(x) or "INT8" in str(x) for x in layers)
    with pytest.raises(CalibrationError) as exc:
        verify_engine_cache(engine, cache_path=cache, onnx_path=onnx_path)
    msg = str(exc.value)
    assert "was ignored by TensorRT" in msg and "0 of 4 network tensors matched" in msg
    assert "no INT8 layer" in msg and exc.value.exit_code == 2


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_partly_matching_cache_is_partial(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path, _ = _setup(tmp_path, monkeypatch)
    # the convolution's tensors are there, the rest of the network is not
    cache = write_cache(
        tmp_path / "part.cache",
        make_cache(trt_env.trt.__version__, "entropy2", {"x": 0.02, "c": 0.03}),
    )
    engine = _int8(onnx_path, tmp_path / "conv.engine", cache)
    with pytest.raises(CalibrationError, match=r"only partly applied .* 2 of 4 network tensors"):
        verify_engine_cache(engine, cache_path=cache, onnx_path=onnx_path)


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_cache_of_another_release_is_skipped(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path, tensors = _setup(tmp_path, monkeypatch)
    other = "8.5.2" if trt_env.version != "8.5" else "8.6.1"
    cache_obj = make_cache(other, "entropy2", dict.fromkeys(tensors, 0.02))
    cache = write_cache(tmp_path / "other.cache", cache_obj)
    # TensorRT skips it and has no batches to calibrate with: the build fails, late and cryptic
    with pytest.raises(BuildError, match="no scaling factors"):
        _int8(onnx_path, tmp_path / "conv.engine", cache)
    assert not (tmp_path / "conv.engine").exists()
    # the check before the build says why, naming both releases
    usage = check_cache_usage(
        cache_obj, network_tensors=tensors, trt_version=trt_env.trt.__version__
    )
    assert usage.verdict == "ignored" and usage.matched == 4
    assert other in usage.reasons[0] and trt_env.trt.__version__ in usage.reasons[0]
