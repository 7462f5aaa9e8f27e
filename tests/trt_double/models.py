"""Tiny ONNX models and data for the TensorRT backend tests (built with onnx.helper)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.save(model, path)
    return path


def conv_model(path: Path, *, dynamic_batch: bool = False, seed: int = 0) -> Path:
    """x[N,3,16,16] -> Conv -> Relu -> GlobalAveragePool -> y[N,4,1,1]."""
    rng = np.random.default_rng(seed)
    batch: int | str = "batch" if dynamic_batch else 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 1, 1])
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["y"], name="gap"),
    ]
    graph = helper.make_graph(nodes, "conv", [x], [y], initializer=[w])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def plugin_model(path: Path, op: str = "BEVPoolV2") -> Path:
    """x -> Relu (name 'pre') -> <op> (a custom op, name 'bev_pool') -> y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="pre"),
        helper.make_node(op, ["r"], ["y"], name="bev_pool"),
    ]
    graph = helper.make_graph(nodes, "plug", [x], [y])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def int64_input_model(path: Path) -> Path:
    """y = x + float(n), with n an INT64 input (TensorRT 8.x casts it down, with a warning)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Add", ["x", "nf"], ["y"], name="add"),
    ]
    graph = helper.make_graph(nodes, "i64", [x, n], [y])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def qdq_model(path: Path) -> Path:
    """x -> Q -> DQ -> Conv(w) -> y: an explicitly quantized (Q/DQ) model."""
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        helper.make_node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1], name="conv"),
    ]
    graph = helper.make_graph(nodes, "qdq", [x], [y], initializer=inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def calib_folder(path: Path, *, samples: int = 4, shape: tuple[int, ...] = (1, 3, 16, 16)) -> Path:
    """A calibration set: one .npz per sample, key = the input name."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(samples):
        np.savez(path / f"sample_{i:03d}.npz", x=rng.standard_normal(shape).astype(np.float32))
    return path


def _version_code(version: str) -> str:
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    return str(major * (10000 if major >= 10 else 1000) + minor * 100 + patch)


def calib_cache(
    path: Path, *, version_code: str | None = None, algo: str = "EntropyCalibration2"
) -> Path:
    """A TensorRT calibration cache in TensorRT's text format, for the conv model.

    ``version_code`` defaults to that of the TensorRT double imported now (a cache TensorRT
    applies), else 8.6.1's ``8601``.
    """
    if version_code is None:
        trt = sys.modules.get("tensorrt")
        version_code = _version_code(str(trt.__version__)) if trt is not None else "8601"
    lines = [f"TRT-{version_code}-{algo}"] + [f"{t}: 3c010a14" for t in ("x", "c", "r", "y")]
    path.write_text("\n".join(lines) + "\n")
    return path
