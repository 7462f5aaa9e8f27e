"""Baselines on disk: layout, refusal to overwrite, replacement that keeps the old file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _gate_results import JETSON, make_result

from orinbench.errors import BaselineExistsError, ExitCode
from orinbench.gate.baseline import baseline_path, find_baseline, record_baseline, slugify
from orinbench.results.io import load_result, save_result


def test_layout_on_jetson(tmp_path: Path) -> None:
    r = make_result(n=50, seed=1)
    path = record_baseline(r, to_dir=tmp_path, allow_imprecise=True)
    rel = path.relative_to(tmp_path).as_posix()
    assert rel == "jetson-agx-orin-64gb/jp6.0-trt8.6.2/maxn/tensorrt-fp16/bevfusion-tiny.json"
    assert load_result(path) == r


def test_layout_off_jetson_and_without_model_name(tmp_path: Path) -> None:
    r = make_result(n=50, device=None, backend="onnxruntime", precision="fp32", model_name="")
    rel = baseline_path(r, tmp_path).relative_to(tmp_path).as_posix()
    assert rel == (
        "unknown-device/jpunknown-trtunknown/unknown-power-mode/onnxruntime-fp32/abababababab.json"
    )


def test_keys_stay_inside_the_folder(tmp_path: Path) -> None:
    evil = {**JETSON, "module": "../../etc", "power_mode": "a/b\\c"}
    path = baseline_path(make_result(n=50, device=evil, model_name="../x"), tmp_path)
    assert tmp_path.resolve() in path.resolve().parents
    assert slugify("  Jetson Orin NX (16GB) ", fallback="x") == "jetson-orin-nx-16gb"
    assert slugify("...", fallback="x") == "x"
    assert slugify(None, fallback="unknown") == "unknown"


def test_refuses_to_overwrite_without_replace(tmp_path: Path) -> None:
    first = record_baseline(make_result(n=50, seed=1), to_dir=tmp_path, allow_imprecise=True)
    before = first.read_bytes()
    with pytest.raises(BaselineExistsError) as info:
        record_baseline(make_result(n=50, seed=2), to_dir=tmp_path, allow_imprecise=True)
    assert info.value.exit_code == ExitCode.USAGE
    assert "--replace" in str(info.value)
    assert first.read_bytes() == before
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]


def test_replace_keeps_the_previous_baseline_timestamped(tmp_path: Path) -> None:
    old, new = make_result(n=50, seed=1), make_result(n=50, seed=2)
    path = record_baseline(old, to_dir=tmp_path, allow_imprecise=True)
    assert record_baseline(new, to_dir=tmp_path, replace=True, allow_imprecise=True) == path
    assert load_result(path) == new
    kept = [p for p in path.parent.iterdir() if p != path]
    assert len(kept) == 1
    assert kept[0].name.startswith("bevfusion-tiny.") and kept[0].name.endswith("Z.json")
    assert load_result(kept[0]) == old
    # a second replacement within the same second keeps both older files
    record_baseline(old, to_dir=tmp_path, replace=True, allow_imprecise=True)
    assert len(list(path.parent.iterdir())) == 3
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_record_from_a_result_file(tmp_path: Path) -> None:
    src = save_result(make_result(n=50, seed=1), tmp_path / "r.json")
    path = record_baseline(src, to_dir=tmp_path / "baselines", allow_imprecise=True)
    assert json.loads(path.read_text()) == json.loads(src.read_text())


def test_find_baseline_uses_the_same_key(tmp_path: Path) -> None:
    r = make_result(n=50, seed=1)
    assert find_baseline(r, tmp_path) is None
    path = record_baseline(r, to_dir=tmp_path, allow_imprecise=True)
    assert find_baseline(make_result(n=60, seed=9), tmp_path) == path
    assert find_baseline(make_result(n=50, precision="int8"), tmp_path) is None
    assert (
        find_baseline(make_result(n=50, device={**JETSON, "power_mode": "15W"}), tmp_path) is None
    )


def test_unwritable_folder_is_a_usage_error_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(Exception) as info:
        record_baseline(make_result(n=50), to_dir=blocker / "baselines", allow_imprecise=True)
    assert getattr(info.value, "exit_code", None) == ExitCode.USAGE
    assert blocker.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]
