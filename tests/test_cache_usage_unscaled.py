"""Defect 11: a cache TensorRT wrote itself is never "partial" because of tensors it never scales.

TensorRT gives no INT8 scale of their own to some layers' outputs (Identity: NVIDIA/TensorRT#2430;
Flatten and Softmax outputs still logged "Missing scale and zero-point" on a self-calibrated cache:
#3131, #3659). The double's calibration leaves Identity, Flatten, Reshape and Softmax outputs out
of the cache it writes, and orinbench leaves such outputs out of the coverage denominator
(``orinbench.calib.cache.NO_SCALE_OPS``). Checked against the double only, never a real TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import BuildOptions, build_engine
from orinbench.backends.tensorrt.cache_usage import APPLIED, check_cache_usage
from orinbench.backends.tensorrt.sidecar import log_path
from orinbench.calib.cache import network_activation_tensors, read_cache
from orinbench.model.load import load_model

trt_env = fx.trt_env


def unscaled_model(path: Path) -> Path:
    """x -> Conv -> Relu -> Flatten -> Identity -> Softmax -> Reshape -> y."""
    rng = np.random.default_rng(5)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 64])
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([1, 4, 64], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], axis=1, name="flatten"),
        helper.make_node("Identity", ["f"], ["i"], name="identity"),
        helper.make_node("Softmax", ["i"], ["s"], axis=1, name="softmax"),
        helper.make_node("Reshape", ["s", "shape"], ["y"], name="reshape"),
    ]
    graph = helper.make_graph(nodes, "unscaled", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_outputs_tensorrt_never_scales_are_not_counted() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(unscaled_model(Path(tmp) / "m.onnx"))
    assert network_activation_tensors(model) == ["x", "c", "r"]


@pytest.mark.parametrize("trt_env", ["8.5", "8.6", "10.3"], indirect=True)
def test_a_cache_tensorrt_calibrated_itself_is_applied_not_partial(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = unscaled_model(tmp_path / "m.onnx")
    data = models.calib_folder(tmp_path / "data", samples=2, shape=(1, 3, 8, 8))
    first = build_engine(
        onnx_path, tmp_path / "a.engine", BuildOptions(precision="int8", calib_data=data)
    )
    cache_path = Path(first.sidecar["calibration"]["cache_written"])
    cache = read_cache(cache_path)
    # TensorRT's own cache has no scale for the Flatten/Identity/Softmax/Reshape outputs
    assert sorted(cache.scales) == ["c", "r", "x"]
    # reusing it: TensorRT applies it (and logs the unscaled tensors), and orinbench agrees
    report = build_engine(
        onnx_path,
        tmp_path / "b.engine",
        BuildOptions(precision="int8", calib_cache=cache_path),
    )
    usage = report.sidecar["calibration"]["cache_usage"]
    assert usage["verdict"] == APPLIED and usage["matched"] == usage["expected"] == 3
    text = log_path(report.engine_path).read_text()
    assert "Missing scale and zero-point for tensor f," in text
    assert "Missing scale and zero-point for tensor s," in text
    # the same check with every float output counted would have refused it as partial (3 of 7)
    all_outputs = ["x", "c", "r", "f", "i", "s", "y"]
    assert check_cache_usage(cache, network_tensors=all_outputs).verdict == "partial"
