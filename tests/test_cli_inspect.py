"""``orinbench inspect``: the real command, its table, JSON and errors."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from orinbench.zoo import export_sample_bev

Run = Callable[..., tuple[int, str, str]]


def test_table_shows_io_params_and_flops(run_cli: Run, conv_model: Path) -> None:
    code, out, err = run_cli("inspect", str(conv_model))
    assert code == 0, err
    assert "x  " in out and "float32  1x3x16x16" in out
    assert "y  " in out and "1x4x1x1" in out
    conv_flops = 2 * 4 * 16 * 16 * 3 * 3 * 3
    relu_and_pool = 2 * 4 * 16 * 16  # one FLOP per element each
    assert f"FLOPs      {(conv_flops + relu_and_pool) / 1e3:.2f} k" in out
    assert re.search(rf"\n  Conv +{conv_flops / 1e3:.2f} k", out)
    assert "ops        Conv 1, GlobalAveragePool 1, Relu 1" in out


def test_json_output(run_cli: Run, conv_model: Path) -> None:
    code, out, _ = run_cli("inspect", str(conv_model), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["inputs"] == [{"name": "x", "dtype": "float32", "shape": [1, 3, 16, 16]}]
    assert data["weight_count"] == 4 * 3 * 3 * 3 + 4
    assert len(data["sha256"]) == 64


def test_dynamic_model_asks_for_a_shape_then_counts(run_cli: Run, dynamic_conv_model: Path) -> None:
    code, out, _ = run_cli("inspect", str(dynamic_conv_model))
    assert code == 0
    assert "not counted (shape unknown)" in out
    assert "--shape x:<batch>x3x16x16" in out
    code, out, _ = run_cli("inspect", str(dynamic_conv_model), "--shape", "x:2x3x16x16", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["flops"]["unresolved"] == []
    assert data["flops"]["by_op"]["Conv"] == 2 * 2 * 4 * 16 * 16 * 3 * 3 * 3


def test_bad_inputs_exit_2_with_one_line(run_cli: Run, tmp_path: Path, conv_model: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    cases = [
        ("inspect", str(tmp_path / "missing.onnx")),
        ("inspect", str(text)),
        ("inspect", str(conv_model), "--shape", "x=1x3"),
        ("inspect", str(conv_model), "--shape", "z:1x3x16x16"),
    ]
    for argv in cases:
        code, out, err = run_cli(*argv)
        assert code == 2, argv
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("orinbench: error:"), (argv, err)
        assert "Traceback" not in err and out == ""


def test_inspect_subprocess_on_the_sample_model(orinbench_exe: list[str], tmp_path: Path) -> None:
    path = export_sample_bev(tmp_path / "sample.onnx", "tiny")
    proc = subprocess.run([*orinbench_exe, "inspect", str(path)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "images" in proc.stdout and "1x6x3x64x176" in proc.stdout
    assert "heatmap" in proc.stdout and "map_seg" in proc.stdout
