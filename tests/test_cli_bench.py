"""`orinbench bench` end to end with ONNX Runtime, and its refusals of bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _unprivileged import assert_cannot_write, run_python

from orinbench.results import SCHEMA_VERSION, load_result

FAST = ("--warmup", "0", "--power", "none", "--no-history", "-q")


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("orinbench: error: ")
    return lines[0]


def test_bench_writes_a_complete_result(run_cli, conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, stdout, _ = run_cli(
        "bench", str(conv_model), "--iterations", "60", "--out", str(out), *FAST
    )
    assert code == 0
    r = load_result(out)
    assert len(r.samples["latency"]) == 60
    assert r.stats["latency"]["count"] == 60
    assert (
        r.stats["latency"]["p50_ms"] <= r.stats["latency"]["p99_ms"] <= r.stats["latency"]["max_ms"]
    )
    assert r.throughput["fps"] > 0
    assert r.environment.backend == "onnxruntime"
    assert r.config.stop == {**r.config.stop, "iterations": 60}
    assert r.config.shapes == {"x": (1, 3, 16, 16)}
    assert r.model.sha256 and r.model.inputs[0].name == "x"
    assert r.stop_reason == "reached 60 iterations"
    # 60 samples are too few for a distribution-free P99 CI: the result says so
    assert r.stats["latency"]["ci"]["p99_ms"] is None
    assert any(w.code == "few-samples" for w in r.warnings)
    assert "P99" in stdout and "FPS" in stdout


def test_bench_json_goes_to_stdout(run_cli, conv_model: Path) -> None:
    code, stdout, _ = run_cli("bench", str(conv_model), "--iterations", "10", "--json", *FAST)
    assert code == 0
    assert json.loads(stdout)["schema_version"] == SCHEMA_VERSION


def test_bench_duration_rule(run_cli, conv_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, _, _ = run_cli("bench", str(conv_model), "--duration", "0.3", "--out", str(out), *FAST)
    assert code == 0
    r = load_result(out)
    assert r.throughput["wall_s"] >= 0.3
    assert r.stop_reason == "reached 0.3 s"


def test_every_dynamic_dimension_is_named(run_cli, tmp_path: Path) -> None:
    # found by a new user: N, H and W were dynamic, the message named only N
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])],
    )
    path = tmp_path / "nhw.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    calib = ("calib", "generate", str(path), "--out", str(tmp_path / "gen"), "--count", "1")
    for argv in (("bench", str(path), "--iterations", "5", *FAST), calib):
        code, _, err = run_cli(*argv)
        assert code == 2
        line = _one_line_error(err)
        assert "dimension 'N' (axis 0), dimension 'H' (axis 2), dimension 'W' (axis 3)" in line
        assert "x:<N>x3x<H>x<W> with <N>, <H>, <W> replaced by numbers" in line


def test_dynamic_dimension_needs_a_shape(run_cli, dynamic_conv_model: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("bench", str(dynamic_conv_model), "--iterations", "5", *FAST)
    assert code == 2
    line = _one_line_error(err)
    assert "batch" in line and "--shape" in line
    out = tmp_path / "r.json"
    code, _, _ = run_cli(
        "bench",
        str(dynamic_conv_model),
        "--iterations",
        "5",
        "--shape",
        "x:2x3x16x16",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0
    assert load_result(out).config.shapes == {"x": (2, 3, 16, 16)}


def test_inputs_from_npz(run_cli, conv_model: Path, tmp_path: Path) -> None:
    npz = tmp_path / "in.npz"
    np.savez(npz, x=np.ones((1, 3, 16, 16), np.float32))
    out = tmp_path / "r.json"
    code, _, _ = run_cli(
        "bench",
        str(conv_model),
        "--iterations",
        "5",
        "--inputs",
        str(npz),
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0
    assert load_result(out).config.input_source.startswith("npz:")
    np.savez(npz, x=np.ones((1, 3, 8, 8), np.float32))
    code, _, err = run_cli(
        "bench", str(conv_model), "--iterations", "5", "--inputs", str(npz), *FAST
    )
    assert code == 2
    assert "x" in _one_line_error(err)


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "folder"])
def test_bad_model_files(run_cli, conv_model: Path, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "m.onnx"
    if kind == "text":
        target.write_text("this is not onnx\n")
    elif kind == "truncated":
        data = conv_model.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif kind == "folder":
        target.mkdir()
    out = tmp_path / "r.json"
    code, _, err = run_cli("bench", str(target), "--iterations", "5", "--out", str(out), *FAST)
    assert code == 2
    _one_line_error(err)
    assert not out.exists()


def test_unwritable_out_leaves_nothing(conv_model: Path, tmp_path: Path) -> None:
    # in a subprocess that root's permission override does not reach (CI runs as root)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_cannot_write(locked)
        proc = run_python(
            ["-m", "orinbench", "bench", str(conv_model), "--iterations", "5",
             "--out", str(locked / "r.json"), *FAST]
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        _one_line_error(proc.stderr)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_out_is_a_folder_is_a_clear_error(run_cli, conv_model: Path, tmp_path: Path) -> None:
    target = tmp_path / "dir.json"
    target.mkdir()
    code, _, err = run_cli(
        "bench", str(conv_model), "--iterations", "5", "--out", str(target), *FAST
    )
    assert code == 2
    _one_line_error(err)
    assert list(target.iterdir()) == []


def test_precision_needs_tensorrt(run_cli, conv_model: Path) -> None:
    code, _, err = run_cli("bench", str(conv_model), "--precision", "fp16", *FAST)
    assert code == 2
    assert "tensorrt" in _one_line_error(err)


def test_usage_errors_exit_2(run_cli, conv_model: Path) -> None:
    code, _, err = run_cli("bench", str(conv_model), "--iterations", "0", *FAST)
    assert code == 2
    _one_line_error(err)
    code, _, err = run_cli("bench", str(conv_model), "--duration", "1", "--iterations", "3")
    assert code == 2
    assert "not allowed with" in err


def test_the_installed_command_runs(
    orinbench_exe: list[str], conv_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [*orinbench_exe, "bench", str(conv_model), "--iterations", "20", "--out", str(out), *FAST],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert load_result(out).stats["latency"]["count"] == 20
