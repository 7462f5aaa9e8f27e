"""Seeded random inputs and .npz inputs with validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orinbench.errors import InputFileError, ShapeError
from orinbench.model.feeds import load_feed_npz, random_feed
from orinbench.results.schema import TensorSpec

SPECS = (
    TensorSpec("images", "float32", ("batch", 3, 8, 8)),
    TensorSpec("ids", "int64", (4,)),
    TensorSpec("mask", "bool", (2, 2)),
    TensorSpec("half", "float16", (5,)),
)
SHAPES = {"images": (2, 3, 8, 8)}


def test_random_feed_shapes_dtypes_and_ranges() -> None:
    feed = random_feed(SPECS, SHAPES, seed=3)
    assert list(feed) == ["images", "ids", "mask", "half"]
    assert feed["images"].shape == (2, 3, 8, 8) and feed["images"].dtype == np.float32
    assert 0.05 < float(feed["images"].std()) < 2.0
    assert feed["ids"].dtype == np.int64 and feed["ids"].min() >= 0 and feed["ids"].max() < 16
    assert feed["mask"].dtype == np.bool_
    assert feed["half"].dtype == np.float16


def test_random_feed_is_seeded() -> None:
    a = random_feed(SPECS, SHAPES, seed=1)
    b = random_feed(SPECS, SHAPES, seed=1)
    c = random_feed(SPECS, SHAPES, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["images"], c["images"])


def test_random_feed_needs_a_shape_for_dynamic_inputs() -> None:
    with pytest.raises(ShapeError, match="'images'"):
        random_feed(SPECS, {}, seed=0)


def test_random_feed_refuses_strings() -> None:
    with pytest.raises(ShapeError, match="string"):
        random_feed([TensorSpec("s", "string", (1,))], None, seed=0)


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _good() -> dict[str, np.ndarray]:
    return {
        "images": np.zeros((2, 3, 8, 8), np.float32),
        "ids": np.zeros(4, np.int64),
        "mask": np.zeros((2, 2), bool),
        "half": np.zeros(5, np.float16),
    }


def test_load_feed_npz(tmp_path: Path) -> None:
    path = _save(tmp_path / "in.npz", **_good())
    feed = load_feed_npz(path, SPECS, SHAPES)
    assert feed["images"].shape == (2, 3, 8, 8)
    # without explicit shapes the dynamic dim may take any value
    assert load_feed_npz(path, SPECS)["ids"].dtype == np.int64


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.pop("ids"), "'ids' is missing"),
        (lambda d: d.update(extra=np.zeros(1)), "'extra' is not a model input"),
        (lambda d: d.update(images=np.zeros((2, 3, 8, 8))), "'images' has dtype float64"),
        (lambda d: d.update(mask=np.zeros((2, 3), bool)), "'mask' has shape 2x3"),
        (lambda d: d.update(images=np.zeros((1, 3, 8, 8), np.float32)), "'images' has shape"),
    ],
)
def test_load_feed_npz_errors_name_the_key(tmp_path: Path, change: object, needle: str) -> None:
    arrays = _good()
    change(arrays)  # type: ignore[operator]
    path = _save(tmp_path / "in.npz", **arrays)
    with pytest.raises(InputFileError) as exc:
        load_feed_npz(path, SPECS, SHAPES)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_load_feed_npz_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "in.npz"
    path.write_text("not a zip")
    with pytest.raises(InputFileError, match=r"not a valid \.npz"):
        load_feed_npz(path, SPECS)
