"""Calibration-cache checks of INT8 builds, against the TensorRT double (8.5, 8.6, 10.3).

The double handles caches as TensorRT does (natively, ``tests/trt_double/tensorrt/_core.py``): a
cache of another release is skipped, each network tensor without a scale is logged ("Missing
scale and zero-point for tensor X ...") and its layers stay out of INT8, and the engine builds.
``build_engine`` checks a ``--calib-cache`` before the build (names, release) and after it (the
engine's layers, the build log). To see what TensorRT itself does with a cache, some tests hand
the builder a calibrator that only reads the cache (``calibrator=``), which bypasses those checks;
:func:`verify_engine_cache` then judges the engine after the fact.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import BuildOptions, build_engine
from orinbench.backends.tensorrt.build import _make_cache_calibrator
from orinbench.backends.tensorrt.cache_usage import (
    APPLIED,
    engine_inspector_layers,
    verify_engine_cache,
)
from orinbench.backends.tensorrt.sidecar import log_path, read_sidecar, sidecar_path
from orinbench.calib.cache import make_cache, network_activation_tensors, write_cache
from orinbench.errors import CalibrationError
from orinbench.model.load import load_model

trt_env = fx.trt_env
FLAG_VERSIONS = ["8.5", "8.6", "10.3"]


def _setup(tmp_path: Path) -> tuple[Path, list[str]]:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    return onnx_path, network_activation_tensors(load_model(onnx_path))


def _int8(onnx_path: Path, engine: Path, cache: Path) -> Path:
    build_engine(onnx_path, engine, BuildOptions(precision="int8", calib_cache=cache))
    return engine


def _as_tensorrt_would(trt_env: TrtEnv, onnx_path: Path, engine: Path, cache: Path) -> Path:
    """Build with a calibrator that only hands TensorRT the cache: no orinbench checks."""
    calibrator = _make_cache_calibrator(trt_env.trt, cache.read_bytes(), "entropy2")
    build_engine(
        onnx_path,
        engine,
        BuildOptions(precision="int8"),
        calibrator=calibrator,
        calibration_id="cache-only",
    )
    return engine


def _nothing_written(engine: Path) -> None:
    assert not engine.exists() and not sidecar_path(engine).exists()


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_a_matching_cache_is_applied_and_the_sidecar_says_so(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path, tensors = _setup(tmp_path)
    assert tensors == ["x", "c", "r", "y"]
    cache = write_cache(
        tmp_path / "conv.cache",
        make_cache(trt_env.trt.__version__, "entropy2", dict.fromkeys(tensors, 0.02)),
    )
    engine = _int8(onnx_path, tmp_path / "conv.engine", cache)
    recorded = read_sidecar(engine)["calibration"]["cache_usage"]  # type: ignore[index]
    assert recorded["verdict"] == APPLIED
    assert (recorded["matched"], recorded["expected"], recorded["int8_layers"]) == (4, 4, 1)
    usage = verify_engine_cache(engine, cache_path=cache, onnx_path=onnx_path)
    assert usage.verdict == APPLIED and usage.matched == 4 and usage.int8_layers == 1
    assert "Missing scale" not in log_path(engine).read_text()
    assert trt_env.testing.calls["calibration_from_cache"] == 1


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_renamed_tensors_stop_the_build_before_it_starts(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, tensors = _setup(tmp_path)
    cache = write_cache(
        tmp_path / "old.cache",
        make_cache(trt_env.trt.__version__, "entropy2", {f"/old/{t}": 0.02 for t in tensors}),
    )
    engine = tmp_path / "conv.engine"
    with pytest.raises(CalibrationError) as exc:
        _int8(onnx_path, engine, cache)
    msg = str(exc.value)
    assert "was ignored by TensorRT" in msg and "0 of 4 network tensors matched" in msg
    assert "another network, or renamed tensors" in msg and exc.value.exit_code == 2
    assert trt_env.testing.calls["build_serialized_network"] == 0
    _nothing_written(engine)
    assert not log_path(engine).exists()  # nothing was built, so there is no build log


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_what_tensorrt_does_with_renamed_tensors_and_the_check_after_the_fact(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path, tensors = _setup(tmp_path)
    cache = write_cache(
        tmp_path / "old.cache",
        make_cache(trt_env.trt.__version__, "entropy2", {f"/old/{t}": 0.02 for t in tensors}),
    )
    engine = _as_tensorrt_would(trt_env, onnx_path, tmp_path / "conv.engine", cache)
    # what TensorRT does: the build succeeds, the log warns per tensor, no layer is INT8
    assert engine.is_file()
    assert log_path(engine).read_text().count("Missing scale and zero-point for tensor") == 4
    layers = engine_inspector_layers(engine)
    assert layers is not None and layers
    assert not any("INT8" in str(x) for x in layers)
    with pytest.raises(CalibrationError) as exc:
        verify_engine_cache(engine, cache_path=cache, onnx_path=onnx_path)
    msg = str(exc.value)
    assert "was ignored by TensorRT" in msg and "0 of 4 network tensors matched" in msg
    assert "no INT8 layer" in msg and exc.value.exit_code == 2


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_partly_matching_cache_is_partial(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path, _ = _setup(tmp_path)
    # the convolution's input and output are there, the rest of the network is not
    cache = write_cache(
        tmp_path / "part.cache",
        make_cache(trt_env.trt.__version__, "entropy2", {"x": 0.02, "c": 0.03}),
    )
    with pytest.raises(CalibrationError, match=r"only partly applied .* 2 of 4 network tensors"):
        _int8(onnx_path, tmp_path / "conv.engine", cache)
    assert trt_env.testing.calls["build_serialized_network"] == 0
    # TensorRT builds it: the convolution (both tensors scaled) in INT8, two tensors missing
    engine = _as_tensorrt_would(trt_env, onnx_path, tmp_path / "conv.engine", cache)
    assert log_path(engine).read_text().count("Missing scale and zero-point") == 2
    with pytest.raises(CalibrationError, match=r"only partly applied .* 2 of 4 network tensors"):
        verify_engine_cache(engine, cache_path=cache, onnx_path=onnx_path)


@pytest.mark.parametrize("trt_env", ["8.5", "8.6", "10.3"], indirect=True)
def test_a_cache_of_another_release_that_tensorrt_skips_is_a_calibration_error(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    """Defects 10 and 12: the release alone no longer refuses the cache before the build; when
    TensorRT skips it (the double does by default) and asks the cache-only calibrator for data,
    the build fails as a CalibrationError that says the cache was not used."""
    onnx_path, tensors = _setup(tmp_path)
    other = "8.5.2" if trt_env.version != "8.5" else "8.6.1"
    cache = write_cache(
        tmp_path / "other.cache", make_cache(other, "entropy2", dict.fromkeys(tensors, 0.02))
    )
    engine = tmp_path / "conv.engine"
    seen: list[str] = []
    with pytest.raises(CalibrationError) as exc:
        build_engine(
            onnx_path,
            engine,
            BuildOptions(precision="int8", calib_cache=cache),
            on_warning=seen.append,
        )
    msg = str(exc.value)
    assert f"did not use the calibration cache {cache}" in msg
    assert "4 of 4 network tensors match it by name" in msg
    assert f"written by TensorRT {other} and this is TensorRT {trt_env.trt.__version__}" in msg
    assert exc.value.exit_code == 2 and "\n" not in msg
    # TensorRT saw the cache (the build ran) and skipped it
    assert trt_env.testing.calls["build_serialized_network"] == 1
    assert trt_env.testing.calls["calibration_cache_skipped"] == 1
    assert any(f"comes from TensorRT {other}" in w for w in seen)
    _nothing_written(engine)
    # a cache-only calibrator handed in directly: the same CalibrationError, not a BuildError
    with pytest.raises(CalibrationError, match="did not use the calibration cache"):
        _as_tensorrt_would(trt_env, onnx_path, engine, cache)
    assert trt_env.testing.calls["calibration_cache_skipped"] == 2
    _nothing_written(engine)


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_cache_of_another_release_that_tensorrt_accepts_builds_with_a_warning(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    """Defect 10: if TensorRT accepts a cache of another major.minor (not public either way),
    orinbench builds with it and checks it after the build, instead of refusing it at once."""
    trt_env.testing.config.accept_other_release_caches = True
    onnx_path, tensors = _setup(tmp_path)
    other = "8.5.2"
    cache = write_cache(
        tmp_path / "other.cache", make_cache(other, "entropy2", dict.fromkeys(tensors, 0.02))
    )
    seen: list[str] = []
    report = build_engine(
        onnx_path,
        tmp_path / "conv.engine",
        BuildOptions(precision="int8", calib_cache=cache),
        on_warning=seen.append,
    )
    assert trt_env.testing.calls["calibration_from_cache"] == 1
    usage = report.sidecar["calibration"]["cache_usage"]
    assert usage["verdict"] == APPLIED and usage["matched"] == 4
    assert any(f"written by TensorRT {other}" in n for n in usage["notes"])
    assert any(f"comes from TensorRT {other}" in w for w in seen)
    assert report.sidecar["layers"]["precision"]["INT8"] == 1


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_cache_tensorrt_dropped_during_the_build_fails_it_and_writes_nothing(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path, tensors = _setup(tmp_path)
    cache = write_cache(
        tmp_path / "conv.cache",
        make_cache(trt_env.trt.__version__, "entropy2", dict.fromkeys(tensors, 0.02)),
    )
    # the check before the build passes (names and release fit); TensorRT then takes no scale
    trt_env.testing.config.ignore_calibration_cache = True
    engine = tmp_path / "conv.engine"
    seen: list[str] = []
    with pytest.raises(CalibrationError) as exc:
        build_engine(
            onnx_path,
            engine,
            BuildOptions(precision="int8", calib_cache=cache),
            on_warning=seen.append,
        )
    msg = str(exc.value)
    assert f"ignored by TensorRT {trt_env.trt.__version__}" in msg
    assert "0 of 4 network tensors matched" in msg and "no INT8 layer (of 3)" in msg
    assert trt_env.testing.calls["build_serialized_network"] == 1  # it failed after the build
    _nothing_written(engine)
    assert log_path(engine).read_text().count("Missing scale and zero-point") == 4  # kept to read
    assert sum("Missing scale" in w for w in seen) == 4
