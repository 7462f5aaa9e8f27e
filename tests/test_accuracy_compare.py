"""``evaluate_accuracy``: reference and candidate run for real in ONNX Runtime, then compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.accuracy.compare import (
    WORST,
    AccuracyReport,
    OutputAccumulator,
    accuracy_result,
    candidate_kind,
    evaluate_accuracy,
    guess_precision,
)
from orinbench.calib.dataset import write_sample
from orinbench.errors import (
    CalibrationError,
    DependencyMissingError,
    ExitCode,
    ModelError,
    UsageError,
)
from orinbench.results.io import load_result, save_result

W = np.array([[1.0, -2.0, 0.5], [0.25, 1.5, -1.0]], np.float32)  # y = x @ W.T
#: the TensorRT double and the fake CUDA layer
trt_env = fx.trt_env


def linear_model(
    scale: float = 1.0,
    *,
    add: float | None = None,
    outputs: tuple[str, ...] = ("y", "heatmap"),
    heat_shape: tuple[int, ...] = (1, 1, 4, 4),
) -> onnx.ModelProto:
    """x[1,3] -> y = x W^T * scale (+ add); h[1,1,4,4] -> heatmap = h * scale (+ add)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    h = helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 1, 4, 4])
    inits = [
        numpy_helper.from_array((W * scale).T.copy(), "wt"),
        numpy_helper.from_array(np.array(scale, np.float32), "s"),
        numpy_helper.from_array(np.array(0.0 if add is None else add, np.float32), "a"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "wt"], ["y0"]),
        helper.make_node("Add", ["y0", "a"], ["y"]),
        helper.make_node("Mul", ["h", "s"], ["h0"]),
        helper.make_node("Add", ["h0", "a"], ["h1"]),
        helper.make_node("Reshape", ["h1", "shape"], ["heatmap"]),
    ]
    inits.append(numpy_helper.from_array(np.array(heat_shape, np.int64), "shape"))
    outs = {
        "y": helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2]),
        "heatmap": helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, list(heat_shape)),
    }
    graph = helper.make_graph(nodes, "lin", [x, h], [outs[o] for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    for i in range(4):
        heat = rng.uniform(0, 1, (1, 1, 4, 4)).astype(np.float32)
        write_sample(
            folder / f"{i}.npz", {"x": rng.standard_normal((1, 3)).astype(np.float32), "h": heat}
        )
    return folder


@pytest.fixture
def ref(tmp_path: Path) -> Path:
    return save(linear_model(), tmp_path / "ref.onnx")


def test_identical_candidate_is_perfect(ref: Path, data: Path, tmp_path: Path) -> None:
    cand = save(linear_model(), tmp_path / "cand.onnx")
    r = evaluate_accuracy(cand, reference=ref, data=data)
    assert r.sample_count == 4 and r.candidate_kind == "onnx"
    assert r.rel_l2_max == 0.0 and r.max_abs_max == 0.0
    assert r.cosine_min == pytest.approx(1.0)
    assert r.topk_min == 1.0  # "heatmap" is compared by peaks, "y" is not
    by_name = {o.name: o for o in r.outputs}
    assert by_name["heatmap"].topk_k == 100 and by_name["y"].topk_mean is None


def test_a_one_percent_gain_error_is_measured_as_one_percent(
    ref: Path, data: Path, tmp_path: Path
) -> None:
    cand = save(linear_model(1.01), tmp_path / "cand.onnx")
    r = evaluate_accuracy(cand, reference=ref, data=data)
    for o in r.outputs:
        assert o.rel_l2_max == pytest.approx(0.01, rel=1e-4)
        assert o.rel_l2_mean == pytest.approx(0.01, rel=1e-4)
        assert o.cosine_min == pytest.approx(1.0)
    d = r.to_dict()
    assert d["rel_l2"]["max"] == pytest.approx(0.01, rel=1e-4)
    assert d["sample_count"] == 4 and set(d["outputs"]) == {"y", "heatmap"}
    assert r.loss("rel_l2") == pytest.approx(0.01, rel=1e-4)
    assert r.loss("cosine") == pytest.approx(0.0, abs=1e-6)
    t = r.timing
    assert t["total_s"] >= t["reference_s"] + t["candidate_s"] > 0


def test_nan_outputs_are_the_worst_and_still_serialisable(
    ref: Path, data: Path, tmp_path: Path
) -> None:
    cand = save(linear_model(add=float("nan")), tmp_path / "cand.onnx")
    r = evaluate_accuracy(cand, reference=ref, data=data)
    o = r.outputs[0]
    assert o.nonfinite_samples == 4 and o.cosine_min == 0.0
    d = r.to_dict()
    assert d["rel_l2"]["max"] == WORST and d["outputs"]["y"]["nonfinite_samples"] == 4
    res = accuracy_result(r)
    path = save_result(res, tmp_path / "r.json")  # JSON without NaN/Inf
    assert load_result(path).metrics()["accuracy.rel_l2.max"] == WORST


def test_result_carries_accuracy_metrics_for_the_gate(
    ref: Path, data: Path, tmp_path: Path
) -> None:
    cand = save(linear_model(1.02), tmp_path / "cand.onnx")
    r = evaluate_accuracy(cand, reference=ref, data=data, max_samples=3)
    res = load_result(save_result(accuracy_result(r), tmp_path / "acc.json"))
    m = res.metrics()
    assert m["accuracy.rel_l2.max"] == pytest.approx(0.02, rel=1e-4)
    assert m["accuracy.outputs.heatmap.topk_agreement.min"] == 1.0
    assert m["accuracy.cosine.min"] == pytest.approx(1.0)
    assert m["accuracy.sample_count"] == 3.0
    assert res.config.precision == "fp32" and res.environment.backend == "onnxruntime"
    assert res.model.path == str(cand) and res.samples == {} and res.stats == {}


def test_output_mismatches_are_model_errors(ref: Path, data: Path, tmp_path: Path) -> None:
    missing = save(linear_model(outputs=("y",)), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="lacks output 'heatmap' of the reference"):
        evaluate_accuracy(missing, reference=ref, data=data)
    other = save(linear_model(heat_shape=(1, 16)), tmp_path / "o.onnx")
    with pytest.raises(ModelError, match=r"output 'heatmap' has shape \(1, 16\) in the candidate"):
        evaluate_accuracy(other, reference=ref, data=data)


def test_heatmap_option_and_bad_arguments(ref: Path, data: Path, tmp_path: Path) -> None:
    cand = save(linear_model(), tmp_path / "cand.onnx")
    r = evaluate_accuracy(cand, reference=ref, data=data, heatmaps=[])
    assert r.topk_min is None
    with pytest.raises(UsageError, match="--heatmap 'hm' is not an output"):
        evaluate_accuracy(cand, reference=ref, data=data, heatmaps=["hm"])
    with pytest.raises(UsageError, match="--topk must be at least 1"):
        evaluate_accuracy(cand, reference=ref, data=data, topk=0)
    with pytest.raises(UsageError, match=r"neither \.onnx nor"):
        candidate_kind(tmp_path / "model.pb")


def test_engine_candidates_need_the_tensorrt_backend(ref: Path, data: Path, tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\x00" * 16)
    assert candidate_kind(engine) == "tensorrt" and guess_precision(engine) == "tensorrt"
    pytest.importorskip("orinbench.backends.tensorrt.runner")
    from orinbench import _lazy

    if _lazy.is_available("tensorrt"):
        pytest.skip("TensorRT is installed: the engine path is tested on the device")
    with pytest.raises(DependencyMissingError):
        evaluate_accuracy(engine, reference=ref, data=data)


def test_bad_data_stops_before_any_inference(ref: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    write_sample(folder / "0.npz", {"x": np.zeros((1, 3), np.float32)})
    with pytest.raises(CalibrationError, match=r"0\.npz lacks input 'h'"):
        evaluate_accuracy(save(linear_model(), tmp_path / "c.onnx"), reference=ref, data=folder)


def test_a_tensorrt_engine_candidate_runs_through_the_tensorrt_backend(
    trt_env: TrtEnv, data: Path, tmp_path: Path
) -> None:
    """Against the TensorRT double: the engine runs the network it was built from."""
    from orinbench.backends.tensorrt import BuildOptions, build_engine

    onnx_path = save(linear_model(1.01), tmp_path / "cand.onnx")
    ref = save(linear_model(), tmp_path / "ref.onnx")
    engine = tmp_path / "cand.engine"
    build_engine(onnx_path, engine, BuildOptions(precision="fp32"))
    r = evaluate_accuracy(engine, reference=ref, data=data)
    assert r.candidate_kind == "tensorrt" and r.sample_count == 4
    assert r.rel_l2_max == pytest.approx(0.01, rel=1e-4)
    res = accuracy_result(r)
    assert res.environment.backend == "tensorrt"
    assert res.environment.backend_version == trt_env.trt.__version__
    assert res.config.precision == "tensorrt"
    assert [t.name for t in res.model.inputs] == ["x", "h"]
    assert res.metrics()["accuracy.rel_l2.max"] == pytest.approx(0.01, rel=1e-4)


def test_a_non_finite_reference_is_the_worst_case(ref: Path, data: Path, tmp_path: Path) -> None:
    # FINDINGS-q 2: the FP32 reference overflowed to inf; the metrics came out NaN and NaN
    # passed every budget. Nothing can be measured against such a reference: worst case.
    bad_ref = save(linear_model(add=float("inf")), tmp_path / "ref_inf.onnx")
    r = evaluate_accuracy(ref, reference=bad_ref, data=data)
    for o in r.outputs:
        assert o.nonfinite_reference_samples == 4 and o.nonfinite_samples == 0
        assert o.cosine_min == 0.0 and o.rel_l2_max == np.inf
    assert r.loss("rel_l2") == np.inf and r.loss("cosine") == 1.0 and r.loss("topk") == 1.0
    d = r.to_dict()
    assert d["rel_l2"]["max"] == WORST and d["cosine"]["min"] == 0.0
    assert d["outputs"]["y"]["nonfinite_reference_samples"] == 4


def test_a_metric_that_is_not_a_number_counts_as_the_worst() -> None:
    # float64 outputs near the top of the range: finite, yet |r| overflows and rel_l2 is inf/inf
    acc = OutputAccumulator("y", heatmap=False, topk=1)
    big = np.array([1e308, 1e308])
    with np.errstate(all="ignore"):
        acc.add(big, -big)
    o = acc.result()
    assert o.rel_l2_max == np.inf and o.max_abs_max == np.inf
    assert not np.isnan(o.cosine_min) and o.nonfinite_reference_samples == 0


@pytest.mark.parametrize("metric", ["rel_l2", "cosine"])
def test_accuracy_budget_fails_on_a_non_finite_reference(
    run_cli: Any, ref: Path, data: Path, tmp_path: Path, metric: str
) -> None:
    bad_ref = save(linear_model(add=float("inf")), tmp_path / "ref_inf.onnx")
    out = tmp_path / "acc.json"
    code, stdout, _ = run_cli("accuracy", str(ref), "--reference", str(bad_ref), "--data",
                              str(data), "--budget", "0.03", "--metric", metric, "-q",
                              "--out", str(out))  # fmt: skip
    assert code == ExitCode.FAILED, stdout
    assert ": FAILED" in stdout and "in the reference: counted as the worst case" in stdout
    metrics = load_result(out).metrics()  # the file agrees with the verdict
    assert metrics["accuracy.rel_l2.max"] == WORST and metrics["accuracy.cosine.min"] == 0.0


def test_accuracy_budget_fails_closed_on_a_nan_loss(
    run_cli: Any, ref: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `loss > budget` is False for NaN: whatever yields a NaN loss must not pass the budget
    monkeypatch.setattr(AccuracyReport, "loss", lambda self, metric="rel_l2": float("nan"))
    args = ("accuracy", str(ref), "--reference", str(ref), "--data", str(data), "-q")
    code, stdout, _ = run_cli(*args, "--budget", "0.03")
    assert code == ExitCode.FAILED and "loss nan vs 0.03: FAILED" in stdout
    code, _, _ = run_cli(*args, "--budget", "0.03", "--json")
    assert code == ExitCode.FAILED
