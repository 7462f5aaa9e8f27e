"""Topological sorting of written graphs, counting outer-scope reads of If/Loop bodies."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinbench.model.toposort import outer_reads, sort_topologically


def _if_reading(name: str) -> onnx.NodeProto:
    body = helper.make_graph(
        [helper.make_node("Identity", [name], ["b_out"], name="b_id")],
        "body",
        [],
        [helper.make_tensor_value_info("b_out", TensorProto.FLOAT, [2])],
    )
    return helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body, name="if0")


def _model(nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[numpy_helper.from_array(np.ones(2, np.float32), "one")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_node_an_if_body_reads_is_moved_before_the_if() -> None:
    # the order ONNX Runtime's quantizer can leave: the producer of 'h', which only the If's
    # bodies read, comes after the If
    model = _model([_if_reading("h"), helper.make_node("Add", ["x", "one"], ["h"], name="add")])
    with pytest.raises(onnx.checker.ValidationError, match="topologically sorted"):
        onnx.checker.check_model(model, full_check=True)
    assert sort_topologically(model.graph) is True
    assert [n.name for n in model.graph.node] == ["add", "if0"]
    onnx.checker.check_model(model, full_check=True)


def test_a_sorted_graph_is_left_exactly_as_it_is() -> None:
    nodes = [
        helper.make_node("Add", ["x", "one"], ["a"], name="a"),
        helper.make_node("Add", ["x", "one"], ["h"], name="b"),  # independent of a: stays second
        helper.make_node("Add", ["a", "h"], ["z"], name="c"),
        _if_reading("z"),
    ]
    model = _model(nodes)
    before = model.SerializeToString()
    assert sort_topologically(model.graph) is False
    assert model.SerializeToString() == before


def test_only_what_must_move_moves() -> None:
    # c needs b, which comes last; a is ready from the start and keeps its place
    nodes = [
        helper.make_node("Add", ["x", "one"], ["a"], name="a"),
        helper.make_node("Add", ["b", "a"], ["h"], name="c"),
        _if_reading("h"),
        helper.make_node("Add", ["x", "x"], ["b"], name="b"),
    ]
    model = _model(nodes)
    sort_topologically(model.graph)
    assert [n.name for n in model.graph.node] == ["a", "b", "c", "if0"]
    onnx.checker.check_model(model, full_check=True)


def test_outer_reads_are_what_a_body_does_not_define() -> None:
    assert outer_reads(_if_reading("h").attribute[0].g) == {"h"}
