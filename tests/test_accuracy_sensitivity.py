"""``analyze_sensitivity``: every number measured by quantizing and running for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinbench.accuracy.sensitivity import (
    analyze_sensitivity,
    auto_depth,
    group_nodes,
    scope_of,
)
from orinbench.calib.dataset import write_sample
from orinbench.errors import UsageError


def two_branch_model() -> onnx.ModelProto:
    """x -> conv 'easy.conv' -> out_a; x * [1000, 1, 1, 1] -> conv 'hard.conv' -> out_b.

    The input of 'hard.conv' has one channel a thousand times larger than the others, and the
    conv ignores that channel (zero weights). One INT8 scale for the whole tensor, set by the
    large channel, rounds the channels that matter to 0: the 'hard' branch loses almost all of
    its output in INT8, the 'easy' one about 1 %. Sensitive by construction.
    """
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 8, 8])
            for n in ("out_a", "out_b")]  # fmt: skip
    wb = rng.standard_normal((4, 4, 1, 1)).astype(np.float32)
    wb[:, 0] = 0.0
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), "wa"),
        numpy_helper.from_array(wb, "wb"),
        numpy_helper.from_array(np.array([1000, 1, 1, 1], np.float32).reshape(1, 4, 1, 1), "s"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["out_a"], name="easy.conv"),
        helper.make_node("Mul", ["x", "s"], ["p"], name="hard.scale"),
        helper.make_node("Conv", ["p", "wb"], ["out_b"], name="hard.conv"),
    ]
    model = helper.make_model(helper.make_graph(nodes, "two", [x], outs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    return model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "two.onnx"
    onnx.save(two_branch_model(), path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    for i in range(4):
        write_sample(tmp_path / "d" / f"{i}.npz",
                     {"x": rng.standard_normal((1, 4, 8, 8)).astype(np.float32)})  # fmt: skip
    return tmp_path / "d"


def test_the_sensitive_branch_is_found_and_excluded(model: Path, data: Path) -> None:
    messages: list[str] = []
    r = analyze_sensitivity(model, data=data, method="minmax", budget=0.05, log=messages.append)
    assert r.full_loss > 0.5  # all-INT8 misses the budget because of the hard branch
    assert [g.group for g in r.groups] == ["hard.conv", "easy.conv"]
    hard, easy = r.groups
    assert hard.only is not None and easy.only is not None
    assert hard.only > 0.5 and easy.only < 0.05
    assert hard.gain is not None and easy.gain is not None and hard.gain > easy.gain
    assert r.suggested_exclude == ("hard.conv",)
    assert r.met and r.suggested_loss == pytest.approx(easy.only, rel=1e-6)
    d = r.to_dict()
    assert d["budget_met"] and d["search_steps"][0]["group"] == "hard.conv"
    assert any("hard.conv" in m for m in messages)


def test_a_budget_met_by_full_int8_needs_no_exclusion(model: Path, data: Path) -> None:
    r = analyze_sensitivity(model, data=data, method="minmax", budget=10.0, modes=("only",))
    assert r.suggested_exclude == () and r.met and r.steps == ()
    assert all(g.kept_float is None for g in r.groups)


def test_a_budget_no_exclusion_meets_is_reported(model: Path, data: Path) -> None:
    # a negative loss is impossible; zero is met only when everything is float
    r = analyze_sensitivity(model, data=data, method="minmax", budget=0.0, modes=("float",))
    assert set(r.suggested_exclude) == {"hard.conv", "easy.conv"}
    assert r.met and r.suggested_loss == 0.0


def test_argument_errors(model: Path, data: Path) -> None:
    with pytest.raises(UsageError, match="unknown metric"):
        analyze_sensitivity(model, data=data, metric="psnr")
    with pytest.raises(UsageError, match="unknown mode"):
        analyze_sensitivity(model, data=data, modes=("some",))
    with pytest.raises(UsageError, match="no nodes of the quantized op types"):
        analyze_sensitivity(model, data=data, op_types=("Gemm",))


def test_grouping_by_scope() -> None:
    assert scope_of("backbone.layer1.0.conv", 2) == "backbone.layer1"
    assert scope_of("/backbone/layer1/conv/Conv", 1) == "/backbone"
    assert scope_of("conv", 2) == "conv"
    names = [f"backbone.layer{i}.{j}.conv" for i in range(4) for j in range(3)] + ["head.conv"]
    assert list(group_nodes(names, 1)) == ["backbone", "head"]
    assert len(group_nodes(names, None)) == 13
    assert auto_depth(names, max_groups=20) is None
    depth = auto_depth(names, max_groups=5)
    assert depth == 2 and len(group_nodes(names, depth)) == 5
