"""Shared fixtures: small ONNX models built with onnx.helper, synthetic results."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]

#: the TensorRT double's fixtures (``trt_env``) for every test module; registered here, at the
#: root, so that pytest rewrites their asserts
pytest_plugins = ["trt_double.pytest_fixtures"]


def make_conv_model(
    *, channels: int = 4, size: int = 16, dynamic_batch: bool = False, seed: int = 0
) -> onnx.ModelProto:
    """x[N,3,S,S] -> Conv3x3 -> Relu -> GlobalAveragePool -> y[N,C,1,1]."""
    rng = np.random.default_rng(seed)
    batch: int | str = "batch" if dynamic_batch else 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels, 1, 1])
    w = numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(channels, np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["y"], name="gap"),
    ]
    graph = helper.make_graph(nodes, "conv", [x], [y], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def conv_model(tmp_path: Path) -> Path:
    path = tmp_path / "conv.onnx"
    onnx.save(make_conv_model(), path)
    return path


@pytest.fixture
def dynamic_conv_model(tmp_path: Path) -> Path:
    path = tmp_path / "conv_dyn.onnx"
    onnx.save(make_conv_model(dynamic_batch=True), path)
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the real orinbench CLI in-process: returns (exit code, stdout, stderr)."""
    from orinbench.cli.main import main

    def _run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors and --help
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def orinbench_exe() -> list[str]:
    """The installed command as a subprocess argv prefix (python -m orinbench as a fallback)."""
    return [sys.executable, "-m", "orinbench"]


@pytest.fixture(autouse=True)
def _private_history(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands append to a history database: never the developer's own during tests."""
    monkeypatch.setenv("ORINBENCH_HISTORY", str(tmp_path_factory.mktemp("history") / "history.db"))
