"""--shape parsing and resolving dynamic input dimensions."""

from __future__ import annotations

import pytest

from orinbench.errors import ShapeError, UsageError
from orinbench.model.shapes import parse_shape_arg, parse_shape_args, resolve_input_shapes
from orinbench.results.schema import TensorSpec

IMAGES = TensorSpec("images", "float32", ("batch", 3, "height", 704))
MASK = TensorSpec("mask", "bool", ("batch", 16))
STATIC = TensorSpec("calib", "float32", (6, 4, 4))


def test_parse_shape_arg() -> None:
    assert parse_shape_arg("images:1x3x320x320") == ("images", (1, 3, 320, 320))
    assert parse_shape_arg("input:0:2X3") == ("input:0", (2, 3))  # name with a colon
    assert parse_shape_arg("scalar:") == ("scalar", ())


@pytest.mark.parametrize("text", ["images", ":1x3", "images:1x-3", "images:1x3x", "a:1,3"])
def test_parse_shape_arg_rejects_bad_syntax(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_shape_arg(text)
    assert repr(text) in str(exc.value) and "\n" not in str(exc.value)


def test_parse_shape_args_rejects_a_repeated_name() -> None:
    with pytest.raises(UsageError, match="twice"):
        parse_shape_args(["a:1", "a:2"])


def test_resolve_fills_dynamic_dims_and_keeps_static_ones() -> None:
    got = resolve_input_shapes([IMAGES, STATIC], {"images": (2, 3, 256, 704)})
    assert got == {"images": (2, 3, 256, 704), "calib": (6, 4, 4)}


def test_dim_names_bound_by_one_input_apply_to_others() -> None:
    got = resolve_input_shapes([IMAGES, MASK], {"images": (2, 3, 256, 704)})
    assert got["mask"] == (2, 16)


def test_missing_dynamic_dim_names_input_and_dimension() -> None:
    with pytest.raises(ShapeError) as exc:
        resolve_input_shapes([IMAGES], {})
    msg = str(exc.value)
    assert "'images'" in msg and "'batch'" in msg and "--shape images:" in msg


def test_unnamed_dynamic_dim_is_reported_by_axis() -> None:
    spec = TensorSpec("x", "float32", (1, "?"))
    with pytest.raises(ShapeError, match=r"axis 1"):
        resolve_input_shapes([spec], {})


def test_override_with_wrong_rank() -> None:
    with pytest.raises(ShapeError) as exc:
        resolve_input_shapes([IMAGES], {"images": (1, 3, 256)})
    assert "rank 3" in str(exc.value) and "rank 4" in str(exc.value)


def test_override_that_changes_a_static_dim() -> None:
    with pytest.raises(ShapeError) as exc:
        resolve_input_shapes([IMAGES], {"images": (1, 3, 256, 700)})
    assert "axis 3" in str(exc.value) and "704" in str(exc.value)


def test_override_for_an_unknown_input() -> None:
    with pytest.raises(ShapeError) as exc:
        resolve_input_shapes([STATIC], {"imgs": (1,)})
    assert "'imgs'" in str(exc.value) and "'calib'" in str(exc.value)


def test_unknown_rank_needs_a_shape() -> None:
    spec = TensorSpec("x", "float32", ("...",))
    with pytest.raises(ShapeError, match="unknown rank"):
        resolve_input_shapes([spec], {})
    assert resolve_input_shapes([spec], {"x": (2, 5)}) == {"x": (2, 5)}
