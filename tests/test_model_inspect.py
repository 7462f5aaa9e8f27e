"""inspect_model: IO specs, parameters, op census and FLOPs of hand-built graphs.

Every expected FLOP count is written out from the layer's dimensions (2 FLOPs per
multiply-accumulate), not taken from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_conv_model
from onnx import TensorProto, helper, numpy_helper

from orinbench.errors import ShapeError
from orinbench.model.inspect import inspect_model


def _model(
    nodes: list[onnx.NodeProto],
    inputs: Sequence[tuple[str, int, Sequence[int | str | None]]],
    outputs: Sequence[str],
    inits: Sequence[tuple[str, np.ndarray]] = (),
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits],
    )
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="test", producer_version="9"
    )
    model.ir_version = 8
    return model


def _w(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


F = TensorProto.FLOAT


def test_grouped_and_depthwise_conv() -> None:
    n, cin, h, w, cout, k, groups = 1, 8, 16, 16, 16, 3, 4
    ho, wo = 8, 8  # stride 2, pad 1
    model = _model(
        [
            helper.make_node("Conv", ["x", "w"], ["y"], group=groups, strides=[2, 2],
                             pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="grouped"),
            helper.make_node("Conv", ["y", "dw"], ["z"], group=cout, pads=[1, 1, 1, 1],
                             kernel_shape=[3, 3], name="depthwise"),
        ],
        [("x", F, (n, cin, h, w))],
        ["z"],
        [("w", _w(cout, cin // groups, k, k)), ("dw", _w(cout, 1, k, k))],
    )  # fmt: skip
    grouped = 2 * n * cout * ho * wo * (cin // groups) * k * k
    depthwise = 2 * n * cout * ho * wo * 1 * k * k
    info = inspect_model(model)
    assert info.flops.by_op == {"Conv": grouped + depthwise}
    assert info.flops.total == grouped + depthwise
    assert info.flops.complete


def test_conv_transpose_matmul_gemm_einsum() -> None:
    model = _model(
        [
            helper.make_node("ConvTranspose", ["x", "wt"], ["up"], strides=[2, 2],
                             kernel_shape=[2, 2]),
            helper.make_node("MatMul", ["a", "b"], ["ab"]),
            helper.make_node("Gemm", ["g", "gb"], ["gy"], transA=1),
            helper.make_node("Einsum", ["e1", "e2"], ["ey"], equation="bij,bjk->bik"),
        ],
        [("x", F, (1, 4, 5, 5)), ("a", F, (2, 3, 5, 7)), ("g", F, (7, 5)),
         ("e1", F, (2, 3, 4)), ("e2", F, (2, 4, 5))],
        ["up", "ab", "gy", "ey"],
        [("wt", _w(4, 3, 2, 2)), ("b", _w(7, 4)), ("gb", _w(7, 4))],
    )  # fmt: skip
    info = inspect_model(model)
    assert info.flops.by_op["ConvTranspose"] == 2 * (1 * 4 * 5 * 5) * (3 * 2 * 2)
    assert info.flops.by_op["MatMul"] == 2 * (2 * 3 * 5) * 7 * 4
    assert info.flops.by_op["Gemm"] == 2 * 5 * 7 * 4
    assert info.flops.by_op["Einsum"] == 2 * 2 * 3 * 4 * 5


def test_microsoft_attention_is_counted() -> None:
    b, s, hidden, heads = 1, 10, 16, 2
    model = _model(
        [helper.make_node("Attention", ["x", "w", "bias"], ["y"], domain="com.microsoft",
                          num_heads=heads)],
        [("x", F, (b, s, hidden))],
        ["y"],
        [("w", _w(hidden, 3 * hidden)), ("bias", _w(3 * hidden))],
        extra_opsets=[("com.microsoft", 1)],
    )  # fmt: skip
    info = inspect_model(model)
    qkv = b * s * hidden * 3 * hidden
    scores_and_context = 2 * b * s * s * hidden
    assert info.flops.by_op == {"com.microsoft.Attention": 2 * (qkv + scores_and_context)}
    assert info.op_census == {"com.microsoft.Attention": 1}
    assert info.opsets == {"ai.onnx": 17, "com.microsoft": 1}


def test_cheap_ops_movement_and_uncounted_ops() -> None:
    shape = (1, 4, 8, 8)
    elems = int(np.prod(shape))
    model = _model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Softmax", ["r"], ["s"], axis=1),
            helper.make_node("MaxPool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Reshape", ["p", "flat"], ["f"]),
            helper.make_node("TopK", ["f", "k"], ["tv", "ti"]),
            helper.make_node("Resize", ["x", "", "scales"], ["near"], mode="nearest"),
            helper.make_node("Resize", ["x", "", "scales"], ["lin"], mode="linear"),
        ],
        [("x", F, shape)],
        ["tv", "near", "lin"],
        [("flat", np.array([1, -1], np.int64)), ("k", np.array([3], np.int64)),
         ("scales", np.array([1, 1, 2, 2], np.float32))],
    )  # fmt: skip
    info = inspect_model(model)
    assert info.flops.by_op["Relu"] == elems
    assert info.flops.by_op["Softmax"] == 3 * elems
    assert info.flops.by_op["MaxPool"] == (elems // 4) * 4
    assert info.flops.uncounted_ops == ("Resize", "TopK")
    assert info.flops.data_movement_ops == ("Reshape", "Resize")
    assert not info.flops.complete


def test_dynamic_batch_is_unresolved_until_a_shape_is_given() -> None:
    model = make_conv_model(dynamic_batch=True, channels=4, size=16)
    info = inspect_model(model)
    assert info.inputs[0].shape == ("batch", 3, 16, 16)
    assert info.flops.total == 0 or "Conv" not in info.flops.by_op
    reasons = [u.reason for u in info.flops.unresolved if u.op_type == "Conv"]
    assert reasons and "unknown" in reasons[0]
    assert info.shapes == {}

    counted = inspect_model(model, shapes={"x": (2, 3, 16, 16)})
    conv = 2 * 2 * 4 * 16 * 16 * 3 * 3 * 3  # N=2, Cout=4, 16x16 out, Cin=3, 3x3
    assert counted.flops.by_op["Conv"] == conv
    assert not counted.flops.unresolved
    assert counted.shapes == {"x": (2, 3, 16, 16)}


def test_shape_computed_in_the_graph_is_propagated() -> None:
    # Reshape's target comes from Shape -> Gather -> Concat: counting the MatMul after it needs
    # ONNX data propagation with the user's batch substituted.
    model = _model(
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Concat", ["n", "c24"], ["target"], axis=0),
            helper.make_node("Reshape", ["x", "target"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["y"]),
        ],
        [("x", F, ("n", 4, 6))],
        ["y"],
        [("zero", np.array([0], np.int64)), ("c24", np.array([24], np.int64)), ("w", _w(24, 5))],
    )
    info = inspect_model(model, shapes={"x": (3, 4, 6)})
    assert info.flops.by_op["MatMul"] == 2 * 3 * 24 * 5


def test_bad_shape_override_is_a_shape_error() -> None:
    model = make_conv_model(dynamic_batch=True)
    with pytest.raises(ShapeError, match="'y'"):
        inspect_model(model, shapes={"y": (1, 3)})
    with pytest.raises(ShapeError, match="rank"):
        inspect_model(model, shapes={"x": (1, 3, 16)})


def test_io_params_and_metadata() -> None:
    const = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(_w(5), "cv"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", None, 5])
    model = _model(
        [const, helper.make_node("Add", ["x16", "c"], ["y"]),
         helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT)],
        [],
        ["y"],
        [("idx", np.zeros(10, np.int64)), ("w", _w(2, 3))],
    )  # fmt: skip
    model.graph.input.append(x)
    info = inspect_model(model)
    assert info.inputs[0].name == "x"
    assert info.inputs[0].dtype == "float16"
    assert info.inputs[0].shape == ("batch", "?", 5)
    assert info.param_count == 10 + 6 + 5
    assert info.param_bytes == 10 * 8 + 6 * 4 + 5 * 4
    assert info.weight_count == 6 + 5
    assert info.producer == "test 9"
    assert info.ir_version == 8 and info.opset == 17
    assert info.node_count == 3
    assert info.op_census == {"Add": 1, "Cast": 1, "Constant": 1}
    json.dumps(info.to_dict())  # must be JSON-ready


def test_inspect_a_path_with_external_data(tmp_path: Path) -> None:
    model = make_conv_model(channels=8)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, size_threshold=0,
                    location="m.bin")  # fmt: skip
    info = inspect_model(path)
    assert info.path == str(path)
    assert info.weight_count == 8 * 3 * 3 * 3 + 8
    assert info.flops.by_op["Conv"] == 2 * 8 * 16 * 16 * 3 * 3 * 3
