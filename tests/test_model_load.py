"""load_model / model_sha256: every way a model file can be broken gives one clear line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_conv_model
from onnx import TensorProto, helper, numpy_helper

from orinbench.errors import ExitCode, InputFileError, ModelError
from orinbench.model.load import check_model, load_model, model_sha256


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert exc.value.exit_code == ExitCode.USAGE  # type: ignore[attr-defined]
    return msg


def _big_model() -> onnx.ModelProto:
    """A model whose weight is large enough for external data and for a mid-file cut."""
    w = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _save_external(model: onnx.ModelProto, path: Path) -> None:
    onnx.save_model(
        model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0
    )


def test_loads_a_valid_model(conv_model: Path) -> None:
    model = load_model(conv_model)
    assert model.graph.node[0].op_type == "Conv"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as exc:
        load_model(tmp_path / "nope.onnx")
    assert "not found" in _one_line(exc) and "nope.onnx" in str(exc.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is a text file\n" * 20, bytes(np.random.default_rng(1).bytes(4096))],
    ids=["empty", "text", "random"],
)
def test_not_an_onnx_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError) as exc:
        load_model(path)
    msg = _one_line(exc)
    assert str(path) in msg and "ONNX" in msg


def test_truncated_model(tmp_path: Path) -> None:
    data = _big_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as exc:
        load_model(path)
    assert "truncated" in _one_line(exc)


def test_external_data_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    _save_external(_big_model(), path)
    model = load_model(path)
    w = numpy_helper.to_array(model.graph.initializer[0])
    assert w[1, 2] == 66.0


def test_missing_external_data_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    _save_external(_big_model(), path)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelError) as exc:
        load_model(path)
    msg = _one_line(exc)
    assert "weights.bin" in msg and "missing" in msg


def test_truncated_external_data(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    _save_external(_big_model(), path)
    blob = tmp_path / "weights.bin"
    blob.write_bytes(blob.read_bytes()[:100])
    with pytest.raises(ModelError) as exc:
        load_model(path)
    assert "truncated" in _one_line(exc)


def test_checker_failure_is_a_model_error() -> None:
    model = make_conv_model()
    model.graph.node[0].input[1] = "not_a_tensor"
    with pytest.raises(ModelError) as exc:
        check_model(model)
    assert "checker" in _one_line(exc)


def test_sha256_is_the_file_hash(conv_model: Path) -> None:
    assert model_sha256(conv_model) == hashlib.sha256(conv_model.read_bytes()).hexdigest()


def test_sha256_covers_external_data(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    _save_external(_big_model(), path)
    before = model_sha256(path)
    assert before != hashlib.sha256(path.read_bytes()).hexdigest()
    blob = tmp_path / "weights.bin"
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert model_sha256(path) != before
