"""Wiring a recipe's stages against the models: sources, order, cycles, shapes, missing files."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pipeline_models import CHAIN_RECIPE, binary, chain_dir, save, unary, write
from onnx import TensorProto

from orinbench.errors import RecipeError
from orinbench.pipeline.graph import resolve_graph
from orinbench.pipeline.models import resolve_models, stage_io
from orinbench.pipeline.recipe import Ref, load_recipe


def _graph(path: Path, **kw: object):
    recipe = load_recipe(path)
    paths = resolve_models(recipe)
    return resolve_graph(recipe, stage_io(recipe, paths), **kw)  # type: ignore[arg-type]


def _error(path: Path, **kw: object) -> str:
    with pytest.raises(RecipeError) as info:
        _graph(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_inputs_are_matched_by_name_and_the_frame_inputs_found(tmp_path: Path) -> None:
    g = _graph(write(chain_dir(tmp_path), CHAIN_RECIPE))
    assert g.order == ("a", "b", "c")
    assert g.sources == {
        "a": {"x": Ref(None, "x")},
        "b": {"y": Ref("a", "y")},
        "c": {"z": Ref("b", "z"), "x": Ref(None, "x")},
    }
    assert list(g.frame_inputs) == ["x"] and g.frame_inputs["x"].shape == (1, 4)
    assert g.outputs == {"w": Ref("c", "w")}  # the only output nobody reads
    assert g.consumers(Ref(None, "x")) == [("a", "x"), ("c", "x")]


def test_stages_run_after_what_they_read_whatever_the_written_order(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    text = CHAIN_RECIPE.replace('name = "a"\nonnx = "a.onnx"', 'name = "a2"\nonnx = "a.onnx"')
    # written c, b, a: the run order must still be a, b, c
    reordered = """
[[stages]]
name = "c"
onnx = "c.onnx"
[[stages]]
name = "b"
onnx = "b.onnx"
[[stages]]
name = "a"
onnx = "a.onnx"
"""
    assert _graph(write(tmp_path, reordered)).order == ("a", "b", "c")
    assert _graph(write(tmp_path, text)).order == ("a2", "b", "c")


def test_explicit_wiring_wins_and_outputs_can_be_chosen(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    text = (
        CHAIN_RECIPE.replace(
            'name = "c"\nonnx = "c.onnx"', 'name = "c"\nonnx = "c.onnx"\ninputs = { x = "a.y" }'
        )
        + '\n[outputs]\nfinal = "c.w"\nmid = "b.z"\n'
    )
    g = _graph(write(tmp_path, text))
    assert g.sources["c"] == {"z": Ref("b", "z"), "x": Ref("a", "y")}
    assert g.outputs == {"final": Ref("c", "w"), "mid": Ref("b", "z")}


def test_a_cycle_is_reported_with_its_stages(tmp_path: Path) -> None:
    save(unary("q", "p"), tmp_path / "p.onnx")
    save(unary("p", "q"), tmp_path / "q.onnx")
    save(unary("x", "r"), tmp_path / "r.onnx")
    text = """
[[stages]]
name = "first"
onnx = "r.onnx"
[[stages]]
name = "make_p"
onnx = "p.onnx"
[[stages]]
name = "make_q"
onnx = "q.onnx"
"""
    msg = _error(write(tmp_path, text))
    assert "cycle" in msg
    assert "make_p -> make_q -> make_p" in msg or "make_q -> make_p -> make_q" in msg


def test_a_stage_reading_its_own_output_is_a_cycle(tmp_path: Path) -> None:
    save(unary("x", "y"), tmp_path / "a.onnx")
    text = '[[stages]]\nname = "a"\nonnx = "a.onnx"\ninputs = { x = "a.y" }\n'
    msg = _error(write(tmp_path, text))
    assert "stage 'a'" in msg and "cycle: a -> a" in msg


def test_an_output_that_no_stage_produces(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    text = CHAIN_RECIPE.replace(
        'name = "b"\nonnx = "b.onnx"', 'name = "b"\nonnx = "b.onnx"\ninputs = { y = "a.yy" }'
    )
    msg = _error(write(tmp_path, text))
    assert "stage 'b'" in msg and "inputs.y" in msg and "produces no output 'yy'" in msg
    assert "its outputs are y" in msg


def test_an_output_table_entry_that_no_stage_produces(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    msg = _error(write(tmp_path, CHAIN_RECIPE + '\n[outputs]\nout = "c.nope"\n'))
    assert "[outputs]" in msg and "'out'" in msg and "no output 'nope'" in msg


def test_a_wiring_key_that_is_not_a_model_input(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    text = CHAIN_RECIPE.replace(
        'name = "b"\nonnx = "b.onnx"', 'name = "b"\nonnx = "b.onnx"\ninputs = { yy = "a.y" }'
    )
    msg = _error(write(tmp_path, text))
    assert "stage 'b'" in msg and "inputs.yy" in msg and "no input 'yy'" in msg


def test_a_shape_mismatch_between_stages_names_both(tmp_path: Path) -> None:
    save(unary("x", "y", shape=(1, 4)), tmp_path / "a.onnx")
    save(unary("y", "z", shape=(1, 5)), tmp_path / "b.onnx")
    text = '[[stages]]\nname = "a"\nonnx = "a.onnx"\n[[stages]]\nname = "b"\nonnx = "b.onnx"\n'
    msg = _error(write(tmp_path, text))
    assert "stage 'b'" in msg and "input 'y'" in msg and "1x5" in msg and "'a.y'" in msg
    assert "1x4" in msg


def test_a_dynamic_dim_matches_a_static_one(tmp_path: Path) -> None:
    save(unary("x", "y", shape=(1, 4)), tmp_path / "a.onnx")
    save(unary("y", "z", shape=("n", 4)), tmp_path / "b.onnx")
    text = '[[stages]]\nname = "a"\nonnx = "a.onnx"\n[[stages]]\nname = "b"\nonnx = "b.onnx"\n'
    assert _graph(write(tmp_path, text)).order == ("a", "b")


def test_a_dtype_mismatch_between_stages(tmp_path: Path) -> None:
    save(unary("x", "y"), tmp_path / "a.onnx")
    save(unary("y", "z", dtype=TensorProto.DOUBLE), tmp_path / "b.onnx")
    text = '[[stages]]\nname = "a"\nonnx = "a.onnx"\n[[stages]]\nname = "b"\nonnx = "b.onnx"\n'
    msg = _error(write(tmp_path, text))
    assert "stage 'b'" in msg and "float64" in msg and "float32" in msg


def test_a_missing_onnx_file_names_the_stage(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    (tmp_path / "b.onnx").unlink()
    msg = _error(write(tmp_path, CHAIN_RECIPE))
    assert "stage 'b'" in msg and "key 'onnx'" in msg and "not found" in msg and "b.onnx" in msg


def test_a_file_that_is_not_onnx_names_the_stage(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    (tmp_path / "b.onnx").write_text("not a model")
    msg = _error(write(tmp_path, CHAIN_RECIPE))
    assert "stage 'b'" in msg and "b.onnx" in msg


def test_two_producers_of_one_name_must_be_wired_explicitly(tmp_path: Path) -> None:
    save(unary("x", "y"), tmp_path / "a.onnx")
    save(unary("x", "y", op="Add"), tmp_path / "a2.onnx")
    save(unary("y", "z"), tmp_path / "b.onnx")
    text = (
        '[[stages]]\nname = "a"\nonnx = "a.onnx"\n[[stages]]\nname = "a2"\nonnx = "a2.onnx"\n'
        '[[stages]]\nname = "b"\nonnx = "b.onnx"\n'
    )
    msg = _error(write(tmp_path, text))
    assert "stage 'b'" in msg and "several stages (a, a2)" in msg and 'y = "a.y"' in msg


def test_a_dynamic_frame_input_needs_a_shape(tmp_path: Path) -> None:
    save(unary("x", "y", shape=("n", 4)), tmp_path / "a.onnx")
    path = write(tmp_path, '[[stages]]\nname = "a"\nonnx = "a.onnx"\n')
    msg = _error(path)
    assert "frame input 'x'" in msg and "stage 'a'" in msg and "--shape x:" in msg
    assert _graph(path, shapes={"x": (3, 4)}).frame_inputs["x"].shape == (3, 4)
    pinned = write(
        tmp_path, '[inputs]\nx = { shape = [2, 4] }\n[[stages]]\nname = "a"\nonnx = "a.onnx"\n'
    )
    assert _graph(pinned).frame_inputs["x"].shape == (2, 4)


def test_a_pinned_frame_input_must_fit_its_readers(tmp_path: Path) -> None:
    chain_dir(tmp_path)
    msg = _error(write(tmp_path, "[inputs]\nx = { shape = [1, 5] }\n" + CHAIN_RECIPE))
    assert "stage 'a'" in msg and "frame input 'x'" in msg
    msg = _error(write(tmp_path, "[inputs]\nunused = { shape = [1] }\n" + CHAIN_RECIPE))
    assert "'unused' is not read by any stage" in msg
    msg = _error(write(tmp_path, CHAIN_RECIPE), shapes={"nope": (1,)})
    assert "--shape names 'nope'" in msg


def test_custom_stage_outputs_feed_engines_by_name(tmp_path: Path) -> None:
    save(unary("x", "y"), tmp_path / "a.onnx")
    save(binary("s", "y", "w"), tmp_path / "c.onnx")
    text = """
[[stages]]
name = "a"
onnx = "a.onnx"
[[stages]]
name = "step"
callable = "steps.py:f"
inputs = { t = "a.y" }
outputs = ["s"]
[[stages]]
name = "c"
onnx = "c.onnx"
"""
    g = _graph(write(tmp_path, text))
    assert g.order == ("a", "step", "c")
    assert g.sources["c"] == {"s": Ref("step", "s"), "y": Ref("a", "y")}


def test_frame_inputs_read_only_by_custom_stages_need_a_declared_shape(tmp_path: Path) -> None:
    text = """
[[stages]]
name = "step"
callable = "steps.py:f"
inputs = { t = "input.points" }
outputs = ["s"]
"""
    msg = _error(write(tmp_path, text))
    assert "frame input 'points' (read by stage 'step') has no declared shape" in msg
    pinned = write(tmp_path, '[inputs]\npoints = { shape = [100, 4], dtype = "float32" }\n' + text)
    assert _graph(pinned).frame_inputs["points"].shape == (100, 4)


def test_two_readers_of_a_frame_input_must_agree_on_its_dtype(tmp_path: Path) -> None:
    save(unary("x", "y"), tmp_path / "a.onnx")
    save(unary("x", "z", dtype=TensorProto.DOUBLE), tmp_path / "b.onnx")
    text = '[[stages]]\nname = "a"\nonnx = "a.onnx"\n[[stages]]\nname = "b"\nonnx = "b.onnx"\n'
    msg = _error(write(tmp_path, text))
    assert "stage 'b'" in msg and "frame input 'x' is float32 (as stage 'a' reads it)" in msg
