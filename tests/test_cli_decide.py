"""``orinbench decide`` through the real CLI: ONNX Runtime for real, TensorRT against the double."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.calib.cache import make_cache, network_activation_tensors, write_cache
from orinbench.model.load import load_model
from orinbench.zoo.sample_bev import export_sample_bev

trt_env = fx.trt_env
RunCli = Callable[..., tuple[int, str, str]]
REPO = Path(__file__).resolve().parents[1]
CALIB = str(REPO / "calib" / "sample_bev_tiny")
FAST = ("--iterations", "20", "--warmup", "0.05", "--power", "none", "--no-history")


@pytest.fixture
def bev(tmp_path: Path) -> Path:
    return export_sample_bev(tmp_path / "bev.onnx", "tiny")


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_decide_prints_the_table_and_writes_the_chosen_result(
    bev: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "decision.json"
    code, stdout, stderr = run_cli(
        "decide",
        str(bev),
        "--calib-data",
        CALIB,
        "--variants",
        "fp32,fp16",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0, stderr
    header = stdout.splitlines()[0].split()
    assert header[:4] == ["variant", "device", "P50", "ms"]
    assert " is chosen: it meets the targets with the lowest P99 latency" in stdout
    assert "decide: benchmark FP16" in stderr
    data = json.loads(out.read_text())
    section = data["extra"]["decide"]
    assert [r["variant"] for r in section["rows"]] == ["FP32", "FP16"]
    chosen = [r for r in section["rows"] if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["variant"] == section["chosen"]
    assert data["config"]["extra"]["variant"] == chosen[0]["precision"]
    assert data["accuracy"]["loss_pct"] == chosen[0]["accuracy_loss_pct"]
    assert (tmp_path / "w" / "bev.fp16.onnx").is_file()
    code, md, _ = run_cli("report", str(out))
    assert code == 0 and "Precision decision" in md and section["summary"] in md


def test_no_variant_meeting_the_targets_exits_1(bev: Path, tmp_path: Path, run_cli: RunCli) -> None:
    targets = tmp_path / "t.toml"
    targets.write_text('[targets]\n"latency.p99_ms" = "< 0.000001"\n')
    out = tmp_path / "r.json"
    code, stdout, _ = run_cli(
        "decide",
        str(bev),
        "--holdout",
        CALIB,
        "--variants",
        "fp32,fp16",
        "--targets",
        str(targets),
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(out),
        "--max-samples",
        "2",
        *FAST,
    )
    assert code == 1
    assert "No variant meets the targets." in stdout
    assert "FP16 misses latency.p99_ms" in stdout
    assert json.loads(out.read_text())["extra"]["decide"]["chosen"] is None


def _relu_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--repeat", "0"), "--repeat must be >= 1"),
        (("--dla",), "--dla needs --backend tensorrt"),
        (("--calib-cache", "CACHE"), "--calib-cache needs --backend tensorrt"),
        (("--variants", "fp8"), "unknown variant 'fp8'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    bev: Path, tmp_path: Path, run_cli: RunCli, extra: tuple[str, ...], expected: str
) -> None:
    cache = write_cache(tmp_path / "c.cache", make_cache("10.3.0", "entropy2", {"images": 0.1}))
    args = [a if a != "CACHE" else str(cache) for a in extra]
    data = [] if "--calib-cache" in extra else ["--calib-data", CALIB]
    out, work = tmp_path / "r.json", tmp_path / "w"
    code, stdout, stderr = run_cli(
        "decide", str(bev), *data, *args, "--workdir", str(work), "--out", str(out), *FAST
    )
    assert code == 2
    assert expected in _one_line(stderr)
    assert stdout == "" and not out.exists() and not work.exists()


def test_a_model_that_cannot_be_quantized_is_exit_2(tmp_path: Path, run_cli: RunCli) -> None:
    model = _relu_model(tmp_path / "relu.onnx")
    data = tmp_path / "d"
    data.mkdir()
    np.savez(data / "0.npz", x=np.ones((1, 4), np.float32))
    code, _, stderr = run_cli(
        "decide", str(model), "--calib-data", str(data), "--workdir", str(tmp_path / "w"), *FAST
    )
    assert code == 2 and "cannot be quantized" in _one_line(stderr)
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_tensorrt_decide_with_a_foreign_cache_and_dla_checks(
    trt_env: TrtEnv, bev: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    n = len(network_activation_tensors(load_model(bev)))
    foreign = write_cache(
        tmp_path / "foreign.cache",
        make_cache("8.6.1", "entropy2", {f"t{i}": 0.02 for i in range(n)}),
    )
    code, _, stderr = run_cli(
        "decide",
        str(bev),
        "--backend",
        "tensorrt",
        "--calib-cache",
        str(foreign),
        "--holdout",
        CALIB,
        "--workdir",
        str(tmp_path / "w"),
        *FAST,
    )
    line = _one_line(stderr)
    assert code == 2 and f"0 of {n} network tensors matched" in line
    assert "TensorRT 8.6.1 and this is TensorRT 10.3.0" in line
    trt_env.testing.config.dla_cores = 0
    code, _, stderr = run_cli(
        "decide",
        str(bev),
        "--backend",
        "tensorrt",
        "--dla",
        "--calib-data",
        CALIB,
        "--workdir",
        str(tmp_path / "w"),
        *FAST,
    )
    assert code == 2 and "this device has no DLA" in _one_line(stderr)
    assert not (tmp_path / "w").exists()
    trt_env.testing.config.dla_cores = 2
    code, stdout, stderr = run_cli(
        "decide",
        str(bev),
        "--backend",
        "tensorrt",
        "--variants",
        "fp16,dla-fp16",
        "--dla",
        "--holdout",
        CALIB,
        "--max-samples",
        "2",
        "--workdir",
        str(tmp_path / "w"),
        *FAST,
    )
    assert code == 0, stderr
    assert "DLA FP16" in stdout and "GPU:" in stdout
