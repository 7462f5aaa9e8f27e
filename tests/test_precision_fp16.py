"""FP16 conversion with the onnx library: what becomes FP16, what stays FP32, and that it runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_precision_qdq import make_net, write_data

from orinbench.accuracy.compare import evaluate_accuracy
from orinbench.errors import ModelError
from orinbench.precision.fp16 import DEFAULT_KEEP_OPS, convert_model_to_fp16, convert_to_fp16

F16, F32 = TensorProto.FLOAT16, TensorProto.FLOAT


def _types(model: onnx.ModelProto) -> dict[str, int]:
    g = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in [*g.input, *g.value_info, *g.output]}
    types.update({i.name: i.data_type for i in g.initializer})
    return types


def _node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


@pytest.fixture
def net(tmp_path: Path) -> Path:
    path = tmp_path / "net.onnx"
    onnx.save(make_net(), path)
    return path


def test_weights_and_compute_fp16_sensitive_ops_and_io_fp32(net: Path, tmp_path: Path) -> None:
    out = convert_to_fp16(net, tmp_path / "net.fp16.onnx")
    m = onnx.load(out)
    onnx.checker.check_model(m)
    types = _types(m)
    # drop-in: inputs and outputs keep float32
    assert [i.type.tensor_type.elem_type for i in m.graph.input] == [F32]
    assert [o.type.tensor_type.elem_type for o in m.graph.output] == [F32, F32]
    # convolution and Gemm weights are stored as float16, and the convs compute in FP16
    for name in ("w1", "w2", "wf", "b1", "bn_s"):
        assert types[name] == F16, name
    for node in ("stem.conv", "head.conv", "cls.fc"):
        assert types[_node(m, node).output[0]] == F16, node
    # Softmax (default keep list) computes in float32 behind a Cast
    softmax = _node(m, "cls.softmax")
    assert types[softmax.input[0]] == F32 and types[softmax.output[0]] == F32
    # Resize runs in FP16 but its scales input stays float32, as the op requires
    resize = _node(m, "head.up")
    assert types[resize.input[0]] == F16 and types[resize.input[2]] == F32


def test_fp16_model_runs_and_matches_fp32_closely(net: Path, tmp_path: Path) -> None:
    out = convert_to_fp16(net, tmp_path / "net.fp16.onnx")
    data = write_data(tmp_path / "data", 3)
    report = evaluate_accuracy(out, reference=net, data=data)
    assert report.cosine_min > 0.9999
    assert 0 < report.rel_l2_max < 5e-3  # FP16 rounding is visible, but small


def test_fp16_inputs_and_outputs_without_keep_io(net: Path, tmp_path: Path) -> None:
    m = onnx.load(convert_to_fp16(net, tmp_path / "io16.onnx", keep_io_fp32=False))
    assert m.graph.input[0].type.tensor_type.elem_type == F16
    outputs = {o.name: o.type.tensor_type.elem_type for o in m.graph.output}
    # heatmap comes from an FP16 node; probs from the Softmax kept in float32
    assert outputs == {"heatmap": F16, "probs": F32}
    data = write_data(tmp_path / "data", 2)
    # accuracy casts the float32 samples to the candidate's float16 input
    assert evaluate_accuracy(tmp_path / "io16.onnx", reference=net, data=data).cosine_min > 0.999


def test_keep_ops_and_keep_nodes(net: Path) -> None:
    model = onnx.load(net)
    all16 = convert_model_to_fp16(model, keep_ops=())
    t = _types(all16)
    assert t[_node(all16, "cls.softmax").input[0]] == F16
    kept = convert_model_to_fp16(model, keep_nodes=["head.conv"])
    t = _types(kept)
    assert t["w2"] == F32 and t[_node(kept, "head.conv").output[0]] == F32
    assert t["w1"] == F16
    assert "Softmax" in DEFAULT_KEEP_OPS and "LayerNormalization" in DEFAULT_KEEP_OPS


def test_output_that_is_also_consumed_inside_the_graph() -> None:
    x = helper.make_tensor_value_info("x", F32, [2, 3])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sig"),
    ]
    outs = [helper.make_tensor_value_info(n, F32, [2, 3]) for n in ("a", "b")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], outs), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    m = convert_model_to_fp16(model)
    t = _types(m)
    assert t["a"] == F32 and t["b"] == F32  # graph outputs keep their names and float32
    assert t[_node(m, "sig").input[0]] == F16  # the consumer reads the FP16 tensor
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    xv = np.array([[-1.0, 0.5, 2.0], [3.0, -2.0, 0.25]], np.float32)
    a, b = sess.run(None, {"x": xv})
    np.testing.assert_allclose(a, np.maximum(xv, 0), rtol=1e-3)
    np.testing.assert_allclose(b, 1 / (1 + np.exp(-np.maximum(xv, 0))), rtol=1e-3)


def test_unknown_ops_stay_fp32_with_casts_around_them() -> None:
    x = helper.make_tensor_value_info("x", F32, [4])
    y = helper.make_tensor_value_info("y", F32, [4])
    w = numpy_helper.from_array(np.full(4, 2.0, np.float32), "w")
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["m"], name="mul"),
        helper.make_node("Hardmax", ["m"], ["h"], name="hardmax", axis=0),  # not in FP16_OPS
        helper.make_node("Add", ["h", "m"], ["y"], name="add"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    m = convert_model_to_fp16(model)
    t = _types(m)
    hardmax = _node(m, "hardmax")
    assert t[hardmax.input[0]] == F32 and t[hardmax.output[0]] == F32
    assert t[_node(m, "mul").output[0]] == F16 and t[_node(m, "add").output[0]] == F16


def test_unreadable_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError):
        convert_to_fp16(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
