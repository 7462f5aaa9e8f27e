"""A result's model identity: the precision ONNX Runtime runs a model in, and a content hash that
covers external weights, the same in ``bench``, ``soak``, ``run`` and ``inspect``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_conv_model
from onnx import TensorProto, helper, numpy_helper

from orinbench.bench.harness import Warmup
from orinbench.model.identity import artifact_sha256, guess_precision, model_precision
from orinbench.model.load import model_sha256
from orinbench.precision.fp16 import convert_to_fp16
from orinbench.results import load_result
from orinbench.soak import soak_model

RunCli = Callable[..., tuple[int, str, str]]
FAST = ("--iterations", "5", "--warmup", "0", "--power", "none", "--no-history", "-q")


def qdq_conv_model() -> onnx.ModelProto:
    """The conv model with its input quantized and dequantized (explicit INT8 Q/DQ)."""
    model = make_conv_model()
    g = model.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
        ]
    )
    q = helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q")
    dq = helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"], name="dq")
    conv = g.node[0]
    conv.input[0] = "xdq"
    nodes = [q, dq, *g.node]
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def qdq_model(tmp_path: Path) -> Path:
    path = tmp_path / "conv.qdq.onnx"
    onnx.save(qdq_conv_model(), path)
    return path


@pytest.fixture
def fp16_model(tmp_path: Path, conv_model: Path) -> Path:
    path = tmp_path / "conv.fp16.onnx"
    convert_to_fp16(conv_model, path, keep_io_fp32=True)
    return path


def _single_op_model(op: str, domain: str = "") -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 2])
    w = numpy_helper.from_array(np.ones((2, 2), np.uint8), "w")
    node = helper.make_node(op, ["x", "w"], ["y"], domain=domain)
    return helper.make_model(helper.make_graph([node], "g", [x], [y], initializer=[w]))


def test_model_precision_reads_quantized_ops_and_float16_weights(
    conv_model: Path, qdq_model: Path, fp16_model: Path
) -> None:
    assert guess_precision(conv_model) == "fp32"
    assert guess_precision(qdq_model) == "int8"
    assert guess_precision(fp16_model) == "fp16"
    for op in ("MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul"):
        assert model_precision(_single_op_model(op)) == "int8", op
    assert model_precision(_single_op_model("QGemm", "com.microsoft")) == "int8"


def test_a_stray_float16_constant_does_not_make_an_fp32_model_fp16() -> None:
    model = make_conv_model()
    model.graph.initializer.append(
        numpy_helper.from_array(np.array([1.0], np.float16), "stray_half")
    )
    assert model_precision(model) == "fp32"


def test_quantized_ops_in_a_subgraph_count() -> None:
    inner = _single_op_model("MatMulInteger").graph
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 2])
    node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)
    model = helper.make_model(helper.make_graph([node], "outer", [cond], [y]))
    assert model_precision(model) == "int8"


def test_a_weightless_model_is_fp16_when_its_float_inputs_are() -> None:
    def relu(elem: int) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", elem, [2])
        y = helper.make_tensor_value_info("y", elem, [2])
        node = helper.make_node("Relu", ["x"], ["y"])
        return helper.make_model(helper.make_graph([node], "g", [x], [y]))

    assert model_precision(relu(TensorProto.FLOAT16)) == "fp16"
    assert model_precision(relu(TensorProto.FLOAT)) == "fp32"


def test_bench_records_the_precision_the_model_was_exported_in(
    run_cli: RunCli, tmp_path: Path, conv_model: Path, qdq_model: Path, fp16_model: Path
) -> None:
    for model, expected in ((conv_model, "fp32"), (qdq_model, "int8"), (fp16_model, "fp16")):
        out = tmp_path / f"{model.stem}.json"
        code, _, err = run_cli("bench", str(model), "--out", str(out), *FAST)
        assert code == 0, err
        assert load_result(out).config.precision == expected, model.name
    # an explicit --precision that matches is kept; one that does not is refused: it would label
    # an INT8 result fp32 and file it under the FP32 baseline
    out = tmp_path / "explicit.json"
    code, _, err = run_cli("bench", str(qdq_model), "--precision", "int8", "--out", str(out), *FAST)
    assert code == 0, err
    assert load_result(out).config.precision == "int8"
    code, _, err = run_cli("bench", str(qdq_model), "--precision", "fp32", *FAST)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "--precision fp32" in lines[0] and "(int8)" in lines[0]


def test_soak_records_the_model_precision(qdq_model: Path) -> None:
    result = soak_model(qdq_model, seconds=0.2, window_s=0.1, warmup=Warmup(seconds=0.0))
    assert result.config.precision == "int8"
    assert result.model.sha256 == model_sha256(qdq_model)


def _external_model(folder: Path) -> tuple[Path, Path]:
    folder.mkdir()
    path = folder / "ext.onnx"
    onnx.save_model(
        make_conv_model(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="w.data",
        size_threshold=0,
    )
    return path, folder / "w.data"


def _inspect_sha(run_cli: RunCli, model: Path) -> str:
    code, stdout, err = run_cli("inspect", str(model), "--json")
    assert code == 0, err
    return str(json.loads(stdout)["sha256"])


def test_model_sha256_covers_external_weights_in_bench_soak_and_inspect(
    run_cli: RunCli, tmp_path: Path
) -> None:
    model, data = _external_model(tmp_path / "m")
    first = tmp_path / "first.json"
    code, _, err = run_cli("bench", str(model), "--out", str(first), *FAST)
    assert code == 0, err
    sha_before = load_result(first).model.sha256
    assert sha_before == _inspect_sha(run_cli, model)

    # rewrite one float weight in place: the model stays loadable, its .onnx bytes unchanged
    onnx_bytes = model.read_bytes()
    weights = np.memmap(data, dtype=np.float32, mode="r+")
    weights[0] = weights[0] + 1.0
    weights.flush()
    del weights
    assert model.read_bytes() == onnx_bytes

    second = tmp_path / "second.json"
    code, _, err = run_cli("bench", str(model), "--out", str(second), *FAST)
    assert code == 0, err
    sha_after = load_result(second).model.sha256
    assert sha_after != sha_before
    assert sha_after == _inspect_sha(run_cli, model)
    soaked = soak_model(model, seconds=0.2, window_s=0.1, warmup=Warmup(seconds=0.0))
    assert soaked.model.sha256 == sha_after


def test_artifact_sha256_of_an_engine_is_its_file_hash(tmp_path: Path) -> None:
    import hashlib

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not a protobuf")
    assert artifact_sha256(engine) == hashlib.sha256(b"not a protobuf").hexdigest()
