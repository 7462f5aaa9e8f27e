"""Engine inspector parsing (defect 13, per-profile layers) and calibrate's calibration profile
check (defect 15), against the TensorRT double.

Before TensorRT 10 the inspector lists an engine's layers once per optimization profile, the
copies of profile N >= 1 named with " [profile N]" (TREx parser.py, Polygraphy util.py); from 10
each layer once. The double models both; orinbench counts profile 0's layers on either. None of
this ran on a real TensorRT.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import BuildOptions, build_engine, parse_shapes
from orinbench.backends.tensorrt.cache_usage import (
    IGNORED,
    analyze_layers,
    check_cache_usage,
    inspector_layers,
)
from orinbench.backends.tensorrt.inspector import (
    layer_precision_summary,
    precision_of,
    profile0_layers,
    profile_of,
)
from orinbench.backends.tensorrt.logger import make_logger
from orinbench.calib.cache import make_cache
from orinbench.calib.calibrate import calibrate
from orinbench.errors import CalibrationError

trt_env = fx.trt_env
UINT8_FORMATS = ("Row major linear UInt8 format", "Channel major UInt8 format")


# -- defect 13: UInt8 is not INT8 ----------------------------------------------------------------
@pytest.mark.parametrize("fmt", UINT8_FORMATS)
def test_uint8_formats_are_not_int8(fmt: str) -> None:
    assert precision_of(fmt) == "UINT8"


def test_int8_and_other_formats_keep_their_precision() -> None:
    assert precision_of("Channel major INT8 format where channel % 32 == 0") == "INT8"
    assert precision_of("Row major linear Int8 format") == "INT8"
    assert precision_of("Row major linear FP16 format") == "FP16"
    assert precision_of("Row major linear BFloat16 format") == "BF16"
    assert precision_of("Row major linear Int32 format") == "INT32"


def test_a_uint8_engine_does_not_pass_as_an_int8_engine() -> None:
    layers = [
        {"Name": "cast", "Outputs": [{"Format/Datatype": UINT8_FORMATS[0]}]},
        {"Name": "conv", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]},
    ]
    assert analyze_layers(layers).int8 == 0
    cache = make_cache("10.3.0", "entropy2", {"x": 0.02, "c": 0.03})
    usage = check_cache_usage(cache, network_tensors=["x", "c"], layers=layers)
    assert usage.verdict == IGNORED and usage.int8_layers == 0
    assert "no INT8 layer (of 2)" in usage.reasons[0]


# -- per-profile layer lists ---------------------------------------------------------------------
def test_profile_of_reads_the_suffix_anywhere() -> None:
    assert profile_of("conv") == 0
    assert profile_of("conv [profile 2]") == 2
    assert profile_of("Reformatting CopyNode for Input Tensor 0 to conv [profile 1]") == 1
    assert profile0_layers(["a", "a [profile 1]", {"Name": "b [profile 3]"}, {"Name": "b"}]) == [
        "a",
        {"Name": "b"},
    ]


def _two_profile_engine(trt: Any, tmp_path: Path) -> Any:
    """A dynamic-batch conv engine whose plan holds two optimization profiles."""
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    report = build_engine(
        onnx_path,
        tmp_path / "dyn.engine",
        BuildOptions(precision="fp16", shapes=parse_shapes(["x:1x3x16x16/2x3x16x16/4x3x16x16"])),
    )
    plan = importlib.import_module("tensorrt._plan")
    header, onnx_bytes = plan.load(report.engine_path.read_bytes())
    header["profiles"] = header["profiles"] * 2
    log = make_logger(trt, min_severity="ERROR")
    engine = trt.Runtime(log.ilogger).deserialize_cuda_engine(plan.dump(header, onnx_bytes))
    assert engine is not None and engine.num_optimization_profiles == 2
    return engine


@pytest.mark.parametrize("trt_env", ["8.5", "8.6"], indirect=True)
def test_double_before_10_lists_layers_per_profile(trt_env: TrtEnv, tmp_path: Path) -> None:
    trt = trt_env.trt
    engine = _two_profile_engine(trt, tmp_path)
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    names = [x["Name"] for x in info["Layers"]]
    assert names == [
        "conv",
        "relu",
        "gap",
        "conv [profile 1]",
        "relu [profile 1]",
        "gap [profile 1]",
    ]
    assert info["Bindings"] == ["x", "y", "x [profile 1]", "y [profile 1]"]
    assert engine.num_layers == 6
    # Polygraphy's walk: num_layers // num_optimization_profiles layers per profile
    one = json.loads(inspector.get_layer_information(3, trt.LayerInformationFormat.JSON))
    assert one["Name"] == "conv [profile 1]"
    with pytest.raises(IndexError):
        inspector.get_layer_information(6, trt.LayerInformationFormat.JSON)
    # orinbench counts profile 0 only
    summary = layer_precision_summary(trt, engine)
    assert summary is not None and summary["count"] == 3 and summary["precision"] == {"FP16": 3}
    assert [x["Name"] for x in inspector_layers(trt, engine) or []] == ["conv", "relu", "gap"]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_double_from_10_lists_each_layer_once(trt_env: TrtEnv, tmp_path: Path) -> None:
    trt = trt_env.trt
    engine = _two_profile_engine(trt, tmp_path)
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    assert [x["Name"] for x in info["Layers"]] == ["conv", "relu", "gap"]
    assert info["Bindings"] == ["x", "y"] and engine.num_layers == 3
    summary = layer_precision_summary(trt, engine)
    assert summary is not None and summary["count"] == 3
    assert [x["Name"] for x in inspector_layers(trt, engine) or []] == ["conv", "relu", "gap"]


# -- defect 15: calibrate checks set_calibration_profile ------------------------------------------
@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_calibrate_stops_when_tensorrt_refuses_the_calibration_profile(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    data = models.calib_folder(tmp_path / "data", samples=2)
    monkeypatch.setattr(
        trt_env.trt.IBuilderConfig, "set_calibration_profile", lambda self, profile: False
    )
    out = tmp_path / "dyn.cache"
    with pytest.raises(CalibrationError) as exc:
        calibrate(onnx_path, data=data, out=out, batch=1)
    msg = str(exc.value)
    assert "TensorRT refused the calibration profile x:1x3x16x16" in msg and "\n" not in msg
    assert trt_env.testing.calls["build_serialized_network"] == 0 and not out.exists()
