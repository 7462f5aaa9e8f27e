"""``orinbench zoo list`` and ``orinbench zoo export``: the real commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnx

Run = Callable[..., tuple[int, str, str]]


def test_zoo_list(run_cli: Run) -> None:
    code, out, _ = run_cli("zoo", "list")
    assert code == 0
    for name in ("sample-bev", "bevfusion-camera", "bevdet", "petrv2"):
        assert name in out
    assert "camera_backbone, vtransform, fuser, head_bbox, head_map" in out
    code, out, _ = run_cli("zoo", "list", "--json")
    assert [e["name"] for e in json.loads(out)] == [
        "sample-bev", "bevfusion-camera", "bevdet", "petrv2",
    ]  # fmt: skip


def test_zoo_export_writes_one_file_per_stage(run_cli: Run, tmp_path: Path) -> None:
    code, out, err = run_cli("zoo", "export", "petrv2", "--size", "tiny", "--out", str(tmp_path))
    assert code == 0, err
    backbone = tmp_path / "petrv2-tiny.backbone.onnx"
    decoder = tmp_path / "petrv2-tiny.decoder.onnx"
    assert f"backbone  {backbone}" in out and f"decoder   {decoder}" in out
    assert onnx.load(str(decoder)).graph.input[0].name == "img_feats"
    code, out, _ = run_cli("zoo", "export", "sample-bev", "--out", str(tmp_path), "--json")
    assert code == 0
    assert json.loads(out) == {"model": str(tmp_path / "sample-bev-tiny.onnx")}


def test_zoo_errors_exit_2(run_cli: Run, tmp_path: Path) -> None:
    for argv in (
        ("zoo", "export", "bevformer", "--out", str(tmp_path)),
        ("zoo", "export", "bevdet", "--size", "huge"),
        ("zoo",),
    ):
        code, _, err = run_cli(*argv)
        assert code == 2, argv
        assert "Traceback" not in err and err.startswith("orinbench: error:"), err
    assert not list(tmp_path.iterdir())
