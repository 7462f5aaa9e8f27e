"""Implicit INT8 calibration of dynamic-shape models (the calibration profile) and calibrator
warnings in builds, against the TensorRT double and the fake CUDA layer.

The double calibrates a dynamic input at the opt shape of the calibration profile, or of
optimization profile 0 when none is set, and checks that every pointer the calibrator hands it
holds that many bytes (the fake CUDA layer knows each allocation's size), as TensorRT would read
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import BuildOptions, build_engine, parse_shapes
from orinbench.calib.cache import make_cache
from orinbench.calib.calibrate import calibrate
from orinbench.calib.dataset import open_dataset
from orinbench.calib.specs import model_io_specs
from orinbench.calib.trt_calibrator import make_calibrator
from orinbench.errors import CalibrationError

trt_env = fx.trt_env

#: TensorRT versions with implicit calibration (11.x has none)
CALIBRATING = ["8.5", "8.6", "10.3"]
SHAPES = parse_shapes(["x:1x3x16x16/4x3x16x16/8x3x16x16"])


@pytest.mark.parametrize("trt_env", CALIBRATING, indirect=True)
@pytest.mark.parametrize("batch", [1, 2])
def test_calibrate_a_dynamic_batch_model(trt_env: TrtEnv, tmp_path: Path, batch: int) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    data = models.calib_folder(tmp_path / "data", samples=4)
    run = calibrate(onnx_path, data=data, out=tmp_path / "dyn.cache", batch=batch)
    assert trt_env.testing.calibration_shapes == {"x": (batch, 3, 16, 16)}
    assert run.batches == 4 // batch and run.sample_count == 4
    assert trt_env.testing.calls["calibration_batches"] == 4 // batch
    assert (tmp_path / "dyn.cache").read_text().startswith("TRT-")


@pytest.mark.parametrize("trt_env", CALIBRATING, indirect=True)
@pytest.mark.parametrize("batch", [1, 2])
def test_a_dynamic_int8_build_calibrates_at_the_batches_shape_not_the_opt_shape(
    trt_env: TrtEnv, tmp_path: Path, batch: int
) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    data = models.calib_folder(tmp_path / "data", samples=4)
    opts = BuildOptions(precision="int8", calib_data=data, calib_batch=batch, shapes=SHAPES)
    report = build_engine(onnx_path, tmp_path / "dyn.engine", opts)
    # the engine is optimized for batch 4; calibration read batches of `batch` samples
    assert report.sidecar["settings"]["shapes"]["x"]["opt"] == [4, 3, 16, 16]
    assert trt_env.testing.calibration_shapes == {"x": (batch, 3, 16, 16)}
    assert trt_env.testing.calls["calibration_batches"] == 4 // batch
    assert report.sidecar["calibration"]["source"] == "data"
    assert (tmp_path / "dyn.engine.calib").is_file()
    assert trt_env.cuda.depth == 0


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_calibration_samples_of_another_shape_stop_calibration(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i, n in enumerate([1, 1, 2]):  # the third sample holds two images
        np.savez(data / f"{i}.npz", x=rng.standard_normal((n, 3, 16, 16)).astype(np.float32))
    # refused while the set is validated, before TensorRT starts (issue 12, item 11)
    pattern = r"2\.npz key 'x' has shape 2x3x16x16, but \S*0\.npz has 1x3x16x16"
    with pytest.raises(CalibrationError, match=pattern):
        calibrate(onnx_path, data=data, out=tmp_path / "dyn.cache")
    assert not (tmp_path / "dyn.cache").exists()
    opts = BuildOptions(precision="int8", calib_data=data, shapes=SHAPES)
    with pytest.raises(CalibrationError, match=pattern):
        build_engine(onnx_path, tmp_path / "dyn.engine", opts)
    assert not (tmp_path / "dyn.engine").exists()
    assert trt_env.cuda.depth == 0


def _dynamic_network(trt_env: TrtEnv, onnx_path: Path) -> tuple[Any, Any, Any]:
    trt = trt_env.trt
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = (
        1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        if trt_env.version.startswith("8.")
        else 0
    )
    network = builder.create_network(flags)
    assert trt.OnnxParser(network, logger).parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3, 16, 16), (4, 3, 16, 16), (8, 3, 16, 16))
    config.add_optimization_profile(profile)
    return builder, network, config


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
@pytest.mark.parametrize("with_profile", [False, True])
def test_the_double_reads_calibration_batches_at_the_calibration_profile(
    trt_env: TrtEnv, tmp_path: Path, with_profile: bool
) -> None:
    """Why the build sets a calibration profile: without one, profile 0's opt shape (batch 4) is
    read from the batch-1 buffers the calibrator hands over."""
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    data = models.calib_folder(tmp_path / "data", samples=2)
    inputs, _ = model_io_specs(onnx_path)
    builder, network, config = _dynamic_network(trt_env, onnx_path)
    if with_profile:
        calib = builder.create_optimization_profile()
        calib.set_shape("x", (1, 3, 16, 16), (1, 3, 16, 16), (1, 3, 16, 16))
        assert config.set_calibration_profile(calib) is True
        assert config.get_calibration_profile() is calib
    trt_env.cuda.open(0)
    cal = make_calibrator(
        trt_env.trt,
        dataset=open_dataset(data, inputs=inputs),
        cache_path=tmp_path / "c.cache",
        cuda=trt_env.cuda,
    )
    try:
        config.int8_calibrator = cal
        built = builder.build_serialized_network(network, config)
    finally:
        cal.close()
        trt_env.cuda.close()
    if with_profile:
        assert built is not None and cal.cache_written
        assert trt_env.testing.calibration_shapes == {"x": (1, 3, 16, 16)}
    else:
        assert built is None and not cal.cache_written
        assert trt_env.testing.calibration_shapes == {"x": (4, 3, 16, 16)}


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_set_calibration_profile_refuses_an_invalid_profile(trt_env: TrtEnv) -> None:
    trt = trt_env.trt
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    config = builder.create_builder_config()
    assert config.get_calibration_profile() is None
    bad = builder.create_optimization_profile()
    bad.set_shape("x", (2, 3), (1, 3), (1, 3))  # min > opt
    assert config.set_calibration_profile(bad) is False
    assert config.get_calibration_profile() is None
    with pytest.raises(TypeError):
        config.set_calibration_profile({"x": (1, 3)})


@pytest.mark.parametrize("trt_env", ["11.4"], indirect=True)
def test_tensorrt_11_has_no_calibration_profile(trt_env: TrtEnv) -> None:
    trt = trt_env.trt
    config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
    with pytest.raises(AttributeError):
        config.set_calibration_profile  # noqa: B018 - the attribute itself is what is checked


# -- calibrator warnings reach on_warning ------------------------------------------------------


@pytest.mark.parametrize("trt_env", ["10.3", "8.6"], indirect=True)
def test_a_calibration_cache_from_another_tensorrt_fails_the_build_when_skipped(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    cache = models.calib_cache(tmp_path / "calib.cache", version_code="8601")  # 8.6.1's
    engine = tmp_path / "i8.engine"
    seen: list[str] = []
    opts = BuildOptions(precision="int8", calib_cache=cache)
    if trt_env.version == "8.6":
        report = build_engine(onnx_path, engine, opts, on_warning=seen.append)
        assert seen == [] and report.sidecar["warnings"] == 0
        assert report.sidecar["calibration"]["cache_usage"]["verdict"] == "applied"
        return
    # TensorRT 10.3 (as the double models it) skips it: the build fails as a CalibrationError
    # naming both releases, and nothing is written
    with pytest.raises(CalibrationError) as exc:
        build_engine(onnx_path, engine, opts, on_warning=seen.append)
    msg = str(exc.value)
    assert str(cache) in msg and "4 of 4 network tensors match it by name" in msg
    assert f"TensorRT 8.6.1 and this is TensorRT {trt_env.trt.__version__}" in msg
    assert exc.value.exit_code == 2 and "\n" not in msg
    assert trt_env.testing.calls["calibration_cache_skipped"] == 1
    # no engine and no sidecar; the log of the failed build is kept beside the engine path
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calib.cache",
        "conv.onnx",
        "i8.engine.log",
    ]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_the_warnings_of_a_given_calibrator_reach_on_warning(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    old = tmp_path / "old.cache"
    old.write_text(make_cache("8.5.2", "entropy2", {"x": 0.1, "y": 0.2}).to_text())
    inputs, _ = model_io_specs(onnx_path)
    rng = np.random.default_rng(0)
    cal = make_calibrator(
        trt_env.trt,
        dataset=open_dataset(_samples(tmp_path / "data", rng), inputs=inputs),
        cache_path=old,
        cuda=trt_env.cuda,
    )
    seen: list[str] = []
    trt_env.cuda.open(0)  # a given calibrator copies batches in the caller's CUDA context
    try:
        report = build_engine(
            onnx_path,
            tmp_path / "i8.engine",
            BuildOptions(precision="int8"),
            calibrator=cal,
            calibration_id="old-cache",
            on_warning=seen.append,
        )
    finally:
        cal.close()
        trt_env.cuda.close()
    (w,) = [w for w in seen if "8.5.2" in w]
    assert "comes from TensorRT 8.5.2, this is TensorRT 10.3.0" in w
    assert w in report.warnings
    # TensorRT skipped the old cache, calibrated from the data and wrote a cache of its own
    assert trt_env.testing.calls["calibration_cache_skipped"] == 1
    assert trt_env.testing.calls["calibration_from_cache"] == 0
    assert trt_env.testing.calls["calibration_batches"] == 2
    assert old.read_text().startswith("TRT-100300-EntropyCalibration2\n")


def _samples(folder: Path, rng: np.random.Generator) -> Path:
    folder.mkdir()
    for i in range(2):
        np.savez(folder / f"{i}.npz", x=rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    return folder


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_calibration_reports_progress_per_batch(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    data = models.calib_folder(tmp_path / "data", samples=6)
    seen: list[tuple[int, float]] = []
    calibrate(
        onnx_path,
        data=data,
        out=tmp_path / "c.cache",
        batch=2,
        on_progress=lambda n, f: seen.append((n, f)),
    )
    assert seen == [(1, pytest.approx(1 / 3)), (2, pytest.approx(2 / 3)), (3, 1.0)]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_calibrate_cli_shows_progress_lines(trt_env: TrtEnv, tmp_path: Path, run_cli) -> None:
    onnx_path = models.conv_model(tmp_path / "m.onnx", dynamic_batch=True)
    data = models.calib_folder(tmp_path / "data", samples=4)
    code, _, err = run_cli(
        "calibrate", str(onnx_path), "--data", str(data), "--out", str(tmp_path / "m.cache")
    )
    assert code == 0, err
    assert "calibrate: 100% 4 batches" in err  # not a TTY: plain lines, the last at 100 %
    assert (tmp_path / "m.cache").is_file()
