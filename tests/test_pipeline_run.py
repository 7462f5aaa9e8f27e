"""Recipes run for real with ONNX Runtime: correct outputs, per-stage results, sums that add up."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from _pipeline_models import CHAIN_RECIPE, binary, chain_dir, matmul, save, unary, write
from onnx import helper, numpy_helper

from orinbench.bench.harness import StopRule, Warmup
from orinbench.errors import RecipeError, UsageError
from orinbench.pipeline.run import open_pipeline, run_recipe

pytest.importorskip("onnxruntime")

FAST = {"warmup": Warmup(seconds=0, iterations=2), "stop": StopRule(iterations=40)}

STEP = textwrap.dedent(
    """
    import numpy as np

    CALLS = []

    def negate(inputs, *, scale=1.0):
        CALLS.append(1)
        return {"neg": -scale * inputs["t"]}

    def fresh(inputs):
        # a new array every frame: consumers must follow it to its new address
        CALLS.append(1)
        return {"s": inputs["t"] + len(CALLS)}

    def wrong_shape(inputs):
        return {"s": np.zeros((1, 5), np.float32)}

    def shrinking(inputs):
        CALLS.append(1)
        n = 4 if len(CALLS) < 3 else 3
        return {"s": np.zeros((1, n), np.float32)}

    def boom(inputs):
        raise ValueError("no luck")

    def not_a_dict(inputs):
        return [1, 2]
    """
)

CUSTOM = """
[[stages]]
name = "a"
onnx = "a.onnx"

[[stages]]
name = "step"
callable = "steps.py:{fn}"
inputs = {{ t = "a.y" }}
outputs = ["{out}"]
{args}

[[stages]]
name = "c"
onnx = "c.onnx"
inputs = {{ p = "step.{out}", q = "a.y" }}
"""


def _custom_dir(tmp_path: Path, fn: str, *, out: str = "s", args: str = "") -> Path:
    save(unary("x", "y", op="Mul", const=2.0), tmp_path / "a.onnx")
    save(binary("p", "q", "w"), tmp_path / "c.onnx")
    (tmp_path / "steps.py").write_text(STEP, encoding="utf-8")
    return write(tmp_path, CUSTOM.format(fn=fn, out=out, args=args))


def test_the_chain_computes_what_the_stages_compute_one_by_one(tmp_path: Path) -> None:
    recipe = write(chain_dir(tmp_path), CHAIN_RECIPE)
    with open_pipeline(recipe, backend="onnxruntime", seed=3) as opened:
        x = opened.frame["x"]
        np.testing.assert_allclose(opened.infer()["w"], (2 * x + 1) + x, rtol=1e-6)
        # on ONNX Runtime the frame inputs are bound by address: data written in place flows
        opened.frame["x"][:] = 5.0
        np.testing.assert_allclose(opened.infer()["w"], np.full((1, 4), 16.0))
        np.testing.assert_allclose(opened.infer({"x": x * 0 + 1})["w"], np.full((1, 4), 4.0))
        with pytest.raises(UsageError, match="frame input 'x' must be float32"):
            opened.infer({"x": np.zeros((1, 5), np.float32)})
        assert opened.backend == "onnxruntime"
        assert opened.pipeline.input_shapes == {
            "a": {"x": (1, 4)},
            "b": {"y": (1, 4)},
            "c": {"z": (1, 4), "x": (1, 4)},
        }


def test_a_custom_stage_between_engines(tmp_path: Path) -> None:
    recipe = _custom_dir(tmp_path, "negate", out="neg", args="args = { scale = 3.0 }")
    with open_pipeline(recipe, backend="onnxruntime") as opened:
        x = opened.frame["x"]
        np.testing.assert_allclose(opened.infer()["w"], -3.0 * (2 * x) + 2 * x, rtol=1e-6)


def test_a_custom_output_that_moves_is_followed_by_its_consumers(tmp_path: Path) -> None:
    recipe = _custom_dir(tmp_path, "fresh")
    with open_pipeline(recipe, backend="onnxruntime") as opened:
        x = opened.frame["x"]
        # setup called it once (+1); each frame adds one more
        np.testing.assert_allclose(opened.infer()["w"], (2 * x + 2) + 2 * x, rtol=1e-6)
        np.testing.assert_allclose(opened.infer()["w"], (2 * x + 3) + 2 * x, rtol=1e-6)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        ("wrong_shape", ["stage 'c'", "input 'p'", "1x5", "'step.s'"]),
        ("boom", ["stage 'step'", "failed", "ValueError: no luck"]),
        ("not_a_dict", ["stage 'step'", "returned list"]),
        ("nope", ["stage 'step'", "has no function 'nope'"]),
    ],
)
def test_custom_stage_problems_name_the_stage(tmp_path: Path, fn: str, expected: list[str]) -> None:
    recipe = _custom_dir(tmp_path, fn)
    with pytest.raises(RecipeError) as info, open_pipeline(recipe, backend="onnxruntime"):
        pass
    msg = str(info.value)
    assert "\n" not in msg
    for part in expected:
        assert part in msg, (part, msg)


def test_a_custom_output_may_not_change_shape_between_frames(tmp_path: Path) -> None:
    recipe = _custom_dir(tmp_path, "shrinking")
    with (
        pytest.raises(RecipeError, match="changed from float32 1x4 to float32 1x3"),
        open_pipeline(recipe, backend="onnxruntime") as opened,
    ):
        for _ in range(3):
            opened.infer()


def test_a_callable_named_by_module(tmp_path: Path) -> None:
    save(unary("x", "y", shape=(1, 3, 4, 5)), tmp_path / "a.onnx")
    text = """
[[stages]]
name = "a"
onnx = "a.onnx"
[[stages]]
name = "top"
callable = "orinbench.pipeline.custom_steps:topk_heatmap"
inputs = { heatmap = "a.y" }
outputs = ["topk_scores", "topk_index"]
args = { k = 5 }
"""
    with open_pipeline(write(tmp_path, text), backend="onnxruntime") as opened:
        out = opened.infer()
        heat = 2 * opened.frame["x"][0]
        best = np.sort(heat.reshape(-1))[::-1][:5]
        np.testing.assert_allclose(out["topk_scores"], best, rtol=1e-6)
        cls, row, col = out["topk_index"][0]
        assert heat[cls, row, col] == pytest.approx(best[0])


def test_run_recipe_result_has_every_stage_and_the_gate_metrics(tmp_path: Path) -> None:
    recipe = _custom_dir(tmp_path, "negate", out="neg")
    result = run_recipe(recipe, backend="onnxruntime", **FAST)
    assert list(result.stages or {}) == ["a", "step", "c"]
    metrics = result.metrics()
    for stage in ("a", "step", "c"):
        for p in ("p50_ms", "p95_ms", "p99_ms"):
            assert metrics[f"stages.{stage}.latency.{p}"] > 0
        assert 0 < metrics[f"stages.{stage}.share"] <= 1.0
    a, step, _ = (result.stages or {}).values()
    assert a["kind"] == "onnx" and a["backend"] == "onnxruntime" and a["precision"] == "fp32"
    assert step["kind"] == "custom" and step["backend"] == "python" and step["precision"] is None
    assert len(a["samples"]["latency"]) == 40 == len(result.samples["latency"])
    assert a["model"]["sha256"] and step["model"] == {"callable": "steps.py:negate"}
    assert result.config.backend == "onnxruntime" and result.config.shapes == {"x": (1, 4)}
    assert result.config.extra["pipeline"]["order"] == ["a", "step", "c"]
    assert result.model.name == "recipe" and [t.name for t in result.model.outputs] == ["w"]
    # raw per-stage samples are stored but are not metrics
    assert not any("samples" in k for k in metrics)


def test_per_stage_times_add_up_to_the_frame_within_the_harness_overhead(tmp_path: Path) -> None:
    recipe = _custom_dir(tmp_path, "negate", out="neg")
    result = run_recipe(recipe, backend="onnxruntime", **FAST)
    frame = np.asarray(result.samples["latency"])
    parts = np.sum([st["samples"]["latency"] for st in (result.stages or {}).values()], axis=0)
    overhead = frame - parts
    # frame by frame: the stages never take longer than the frame they belong to...
    assert np.all(overhead >= -1e-9)
    # ...and what lies outside them is the harness's own bookkeeping: a few clock reads and
    # calls, microseconds (bounded generously: this machine is shared while tests run)
    assert float(np.median(overhead)) < 0.2
    assert float(np.median(overhead)) < 0.2 * float(np.median(frame)) + 0.05
    stored = result.extra["pipeline"]["overhead_ms"]
    assert stored["p50_ms"] == pytest.approx(float(np.median(np.maximum(overhead, 0))))


def test_recipe_precisions_are_recorded_and_flagged_on_onnxruntime(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    text = CHAIN_RECIPE.replace(
        'name = "a"\nonnx = "a.onnx"', 'name = "a"\nonnx = "a.onnx"\nprecision = "int8"'
    )
    result = run_recipe(write(tmp_path, text), backend="onnxruntime", **FAST)
    a = (result.stages or {})["a"]
    assert a["precision"] == "fp32" and a["recipe_precision"] == "int8"
    codes = {w.code: w.message for w in result.warnings}
    assert "stage(s) a " in codes["precision-not-applied"]


def test_roofline_of_a_stage_is_its_flops_over_its_median(tmp_path: Path) -> None:
    n = 64
    save(matmul("x", "y", n=n), tmp_path / "mm.onnx")
    result = run_recipe(
        write(tmp_path, '[[stages]]\nname = "mm"\nonnx = "mm.onnx"\n'),
        backend="onnxruntime",
        **FAST,
    )
    st = (result.stages or {})["mm"]
    roof = st["roofline"]
    assert roof["flops"] == 2 * n * n and roof["flops_complete"] is True
    median = st["latency"]["p50_ms"]
    assert roof["achieved_tflops"] == pytest.approx(2 * n * n / (median * 1e-3) / 1e12)
    # no Orin peak applies to ONNX Runtime: the fraction is unknown, not invented
    assert roof["fraction_of_peak"] is None and roof["peak_tflops"] is None
    assert "ONNX Runtime" in roof["note"]


def test_frame_inputs_from_a_npz(tmp_path: Path) -> None:
    recipe = write(chain_dir(tmp_path), CHAIN_RECIPE)
    x = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    np.savez(tmp_path / "frame.npz", x=x)
    with open_pipeline(recipe, backend="onnxruntime", inputs_npz=tmp_path / "frame.npz") as op:
        np.testing.assert_allclose(op.infer()["w"], 3 * x + 1, rtol=1e-6)
    result = run_recipe(recipe, backend="onnxruntime", inputs_npz=tmp_path / "frame.npz", **FAST)
    assert result.config.input_source.startswith("npz:")


def _qdq_unary(inp: str, out: str) -> onnx.ModelProto:
    """``out = dequantize(quantize(inp)) * 2``: a stage exported as explicit INT8 Q/DQ."""
    model = unary(inp, out, op="Mul", const=2.0)
    g = model.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.05, np.float32), "s"),
            numpy_helper.from_array(np.array(128, np.uint8), "zp"),
        ]
    )
    q = helper.make_node("QuantizeLinear", [inp, "s", "zp"], ["q"])
    dq = helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"])
    g.node[0].input[0] = "dq"
    nodes = [q, dq, *g.node]
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def test_a_qdq_stage_on_onnxruntime_is_recorded_as_int8(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    save(_qdq_unary("x", "y"), tmp_path / "a.onnx")
    text = CHAIN_RECIPE.replace(
        'name = "a"\nonnx = "a.onnx"', 'name = "a"\nonnx = "a.onnx"\nprecision = "int8"'
    )
    result = run_recipe(write(tmp_path, text), backend="onnxruntime", **FAST)
    stages = result.stages or {}
    assert stages["a"]["precision"] == "int8" and stages["a"]["recipe_precision"] == "int8"
    assert stages["b"]["precision"] == "fp32"
    assert result.config.precision == "mixed"
    # the Q/DQ stage ran in the recipe's precision: nothing was left unapplied
    assert "precision-not-applied" not in {w.code for w in result.warnings}
