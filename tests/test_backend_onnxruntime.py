"""The ONNX Runtime runner runs models for real (CPU) and implements the runner protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from orinbench.backends.base import Runner
from orinbench.backends.onnxruntime import OnnxRuntimeRunner
from orinbench.bench.harness import StopRule, Warmup, measure
from orinbench.errors import BackendError, ModelError, ShapeError


def _reference(model_path: Path, x: np.ndarray) -> np.ndarray:
    m = onnx.load(model_path)
    w = onnx.numpy_helper.to_array(m.graph.initializer[0])
    # conv 3x3 pad 1, relu, global average pool, by hand
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return np.maximum(out, 0).mean(axis=(2, 3), keepdims=True)


def test_runner_is_a_runner_and_computes_the_model(conv_model: Path) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    with OnnxRuntimeRunner(conv_model) as r:
        assert isinstance(r, Runner)
        assert [t.name for t in r.inputs] == ["x"]
        assert r.outputs[0].shape == (1, 4, 1, 1)
        y = r.infer({"x": x})["y"]
    np.testing.assert_allclose(y, _reference(conv_model, x), rtol=1e-4, atol=1e-5)


def test_outputs_follow_new_inputs(conv_model: Path) -> None:
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(2))
    with OnnxRuntimeRunner(conv_model) as r:
        ya = r.infer({"x": a})["y"]
        yb = r.infer({"x": b})["y"]
    assert not np.allclose(ya, yb)


def test_harness_drives_the_runner(conv_model: Path) -> None:
    x = np.zeros((1, 3, 16, 16), np.float32)
    with OnnxRuntimeRunner(conv_model) as r:
        r.load_inputs({"x": x})
        m = measure(r, warmup=Warmup(seconds=0, iterations=2), stop=StopRule(iterations=20))
    assert m.iterations == 20
    assert (m.latency_ms > 0).all()
    assert (m.latency_ms >= m.enqueue_ms).all()
    assert m.gpu_compute_ms is None


def test_dynamic_batch_accepts_any_batch(dynamic_conv_model: Path) -> None:
    x = np.ones((3, 3, 16, 16), np.float32)
    with OnnxRuntimeRunner(dynamic_conv_model) as r:
        assert r.inputs[0].shape[0] == "batch"
        assert r.infer({"x": x})["y"].shape == (3, 4, 1, 1)


@pytest.mark.parametrize(
    ("feed", "match"),
    [
        ({"x": np.zeros((1, 3, 8, 8), np.float32)}, "shape 1x3x8x8"),
        ({"x": np.zeros((1, 3, 16, 16), np.float64)}, "dtype float64"),
        ({"z": np.zeros((1, 3, 16, 16), np.float32)}, "unknown"),
        ({}, "missing"),
    ],
)
def test_bad_feeds_are_shape_errors(conv_model: Path, feed: dict, match: str) -> None:
    with OnnxRuntimeRunner(conv_model) as r, pytest.raises(ShapeError, match=match):
        r.load_inputs(feed)


def test_a_graph_ort_rejects_is_a_model_error(tmp_path: Path) -> None:
    bad = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("NoSuchOp", ["x"], ["y"])],
            "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    p = tmp_path / "bad.onnx"
    onnx.save(bad, p)
    with pytest.raises(ModelError, match="cannot load"), OnnxRuntimeRunner(p):
        pass


def test_unavailable_provider_is_a_backend_error(conv_model: Path) -> None:
    with (
        pytest.raises(BackendError, match="TensorrtExecutionProvider"),
        OnnxRuntimeRunner(conv_model, providers=["TensorrtExecutionProvider"]),
    ):
        pass


def test_using_a_closed_runner_is_an_error(conv_model: Path) -> None:
    r = OnnxRuntimeRunner(conv_model)
    with pytest.raises(BackendError, match="with"):
        r.load_inputs({})
