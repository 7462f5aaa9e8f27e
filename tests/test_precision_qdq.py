"""Q/DQ quantization with ONNX Runtime, run for real on the CPU, in TensorRT's form."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinbench.accuracy.compare import evaluate_accuracy
from orinbench.calib.dataset import dataset_from_arrays, write_sample
from orinbench.calib.specs import model_io_specs
from orinbench.errors import CalibrationError, ModelError, UsageError
from orinbench.precision.qdq import (
    quantize_qdq,
    run_quantize,
    split_excludes,
    summarize_qdq,
)

Cli = Callable[..., tuple[int, str, str]]


def make_net(seed: int = 0) -> onnx.ModelProto:
    """x[1,3,16,16] -> stem.conv -> stem.bn -> relu -> head.conv -> Resize x2 -> heatmap
    and relu -> GlobalAveragePool -> Flatten -> cls.fc (Gemm) -> Softmax -> probs."""
    rng = np.random.default_rng(seed)

    def init(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [
        init("w1", 8, 3, 3, 3), init("b1", 8),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_s"),
        init("bn_b", 8), init("bn_m", 8, scale=0.1),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_v"),
        init("w2", 4, 8, 3, 3), init("b2", 4),
        init("wf", 8, 5), init("bf", 5),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="stem.conv"),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"],
                         name="stem.bn"),
        helper.make_node("Relu", ["n1"], ["r1"], name="stem.relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="head.conv"),
        helper.make_node("Resize", ["c2", "", "scales"], ["heatmap"], mode="nearest",
                         name="head.up"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="cls.pool"),
        helper.make_node("Flatten", ["g"], ["f"], name="cls.flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="cls.fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="cls.softmax"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [
            helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, [1, 4, 32, 32]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 5]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def net(tmp_path: Path) -> Path:
    path = tmp_path / "net.onnx"
    onnx.save(make_net(), path)
    return path


def write_data(folder: Path, n: int = 6, *, seed: int = 0, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = (rng.standard_normal((1, 3, 16, 16)) * scale).astype(np.float32)
        write_sample(folder / f"{i:04d}.npz", {"x": x})
    return folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data")


def _inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _producer(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def test_qdq_model_has_the_form_tensorrt_builds(net: Path, data: Path, tmp_path: Path) -> None:
    out = quantize_qdq(net, data=data, out_path=tmp_path / "net.qdq.onnx")
    q = onnx.load(out)
    onnx.checker.check_model(q)
    inits = _inits(q)
    qnodes = [n for n in q.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qnodes
    for n in qnodes:
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8, n.name  # INT8, not UINT8
        assert not zp.any(), n.name  # symmetric: zero point 0 everywhere
    prod = _producer(q)
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    assert {c.name for c in convs} == {"stem.conv", "head.conv"}
    for conv in convs:
        act, weight = prod[conv.input[0]], prod[conv.input[1]]
        assert act.op_type == "DequantizeLinear" and weight.op_type == "DequantizeLinear"
        # per-channel weights: one scale per output channel along axis 0
        out_ch = inits[conv.input[1].replace("_DequantizeLinear_Output", "")].shape[0]
        assert inits[weight.input[1]].shape == (out_ch,)
        assert {a.name: a.i for a in weight.attribute}.get("axis", 1) == 0
        # weights stay float behind a Q/DQ pair; the bias is not quantized
        assert prod[weight.input[0]].op_type == "QuantizeLinear"
        assert conv.input[2] in inits and inits[conv.input[2]].dtype == np.float32
        # no Q/DQ on the conv's output: TensorRT fuses bias/activation itself
        consumers = [n for n in q.graph.node if conv.output[0] in n.input]
        assert all(n.op_type != "QuantizeLinear" for n in consumers)
    gemm = next(n for n in q.graph.node if n.op_type == "Gemm")
    assert prod[gemm.input[0]].op_type == "DequantizeLinear"
    # pre-processing folded BatchNorm into the conv before its weights were quantized
    assert not any(n.op_type == "BatchNormalization" for n in q.graph.node)
    # only the default domain is imported (ORT's optimiser adds a dozen unused ones)
    assert {o.domain or "" for o in q.opset_import} <= {"", "ai.onnx"}


def test_qdq_model_runs_and_stays_close_to_fp32(net: Path, data: Path, tmp_path: Path) -> None:
    out = quantize_qdq(net, data=data, out_path=tmp_path / "q.onnx", method="entropy")
    report = evaluate_accuracy(out, reference=net, data=data)
    assert report.sample_count == 6
    assert report.cosine_min > 0.98
    assert 0 < report.rel_l2_max < 0.2


def test_per_tensor_weights(net: Path, data: Path, tmp_path: Path) -> None:
    q = onnx.load(quantize_qdq(net, data=data, out_path=tmp_path / "q.onnx", per_channel=False))
    prod, inits = _producer(q), _inits(q)
    conv = next(n for n in q.graph.node if n.name == "head.conv")
    assert inits[prod[conv.input[1]].input[1]].shape == ()


def test_exclusion_by_name_glob_and_op_type(net: Path, data: Path, tmp_path: Path) -> None:
    by_name = quantize_qdq(
        net, data=data, out_path=tmp_path / "a.onnx", exclude_nodes=["head.conv"]
    )
    s = summarize_qdq(by_name)
    assert s.float_nodes == ("head.conv",) and set(s.quantized) == {"stem.conv", "cls.fc"}

    by_glob = quantize_qdq(net, data=data, out_path=tmp_path / "b.onnx", exclude_nodes=["cls.*"])
    assert summarize_qdq(by_glob).float_nodes == ("cls.fc",)

    ex = split_excludes(onnx.load(net), ["Conv", "cls.fc"])
    assert ex.op_types == ("Conv",) and ex.nodes == ("cls.fc",)
    by_type = quantize_qdq(net, data=data, out_path=tmp_path / "c.onnx", exclude_op_types=["Conv"])
    s = summarize_qdq(by_type)
    assert set(s.float_nodes) == {"stem.conv", "head.conv"} and s.quantized == ("cls.fc",)


def test_unknown_exclusion_is_an_error_with_suggestions(
    net: Path, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "q.onnx"
    with pytest.raises(UsageError, match=r"'head.cnv' matches no node .* did you mean head\.conv"):
        quantize_qdq(net, data=data, out_path=out, exclude_nodes=["head.cnv"])
    assert not out.exists()


def test_minmax_covers_the_range_percentile_clips_it(tmp_path: Path) -> None:
    # x -> Conv: the input's scale comes straight from the data, which has one huge outlier
    from conftest import make_conv_model

    model = tmp_path / "conv.onnx"
    onnx.save(make_conv_model(channels=4, size=16), model)
    folder = write_data(tmp_path / "d", 4, scale=0.5)
    spike = np.random.default_rng(9).standard_normal((1, 3, 16, 16)).astype(np.float32) * 0.5
    spike[0, 0, 0, 0] = 40.0
    write_sample(folder / "0004.npz", {"x": spike})

    def input_scale(method: str, **kw: object) -> float:
        q = onnx.load(
            quantize_qdq(
                model, data=folder, out_path=tmp_path / f"{method}.onnx", method=method, **kw
            )
        )  # type: ignore[arg-type]
        ql = next(n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
        return float(_inits(q)[ql.input[1]])

    minmax = input_scale("minmax")
    assert minmax == pytest.approx(40.0 / 127, rel=1e-3)  # symmetric: max |x| maps to 127
    assert input_scale("percentile", percentile=99.9) < minmax / 5
    assert input_scale("entropy") < minmax
    # max_samples really limits the data: without the spike (sample 4) the range is small
    assert input_scale("minmax", max_samples=4) < minmax / 5


def test_bad_data_writes_nothing_and_leaves_the_old_output(net: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    write_sample(folder / "0000.npz", {"x": np.zeros((1, 3, 16, 16), np.float64)})
    out = tmp_path / "q.onnx"
    out.write_bytes(b"previous")
    with pytest.raises(CalibrationError, match=r"0000\.npz key 'x' has dtype float64"):
        quantize_qdq(net, data=folder, out_path=out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "net.onnx", "q.onnx"]


def test_unknown_method_and_bad_percentile(net: Path, data: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown calibration method 'kl'"):
        quantize_qdq(net, data=data, out_path=tmp_path / "q.onnx", method="kl")
    with pytest.raises(UsageError, match="percentile 120"):
        quantize_qdq(net, data=data, out_path=tmp_path / "q.onnx", percentile=120)


def test_run_quantize_reports_counts_and_times(net: Path, tmp_path: Path) -> None:
    inputs, _ = model_io_specs(net)
    rng = np.random.default_rng(0)
    ds = dataset_from_arrays(
        [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(3)],
        inputs=inputs,
    )
    run = run_quantize(net, data=ds, out_path=tmp_path / "q.onnx", method="minmax")
    assert run.sample_count == 3 and run.method == "minmax"
    assert run.summary.quantize_nodes == run.summary.dequantize_nodes > 0
    assert run.quantize_s > 0 and run.validate_s >= 0
    assert run.to_dict()["quantized"] == ["stem.conv", "head.conv", "cls.fc"]


def test_unnamed_nodes_get_stable_names_for_exclusion(tmp_path: Path, data: Path) -> None:
    model = make_net()
    for n in model.graph.node:
        n.name = ""
    path = tmp_path / "unnamed.onnx"
    onnx.save(model, path)
    s = summarize_qdq(quantize_qdq(path, data=data, out_path=tmp_path / "a.onnx"))
    names = s.quantized
    assert len(names) == 3 and all(names)
    s2 = summarize_qdq(
        quantize_qdq(path, data=data, out_path=tmp_path / "b.onnx", exclude_nodes=[names[1]])
    )
    assert s2.float_nodes == (names[1],)


def _activation_scales(path: Path) -> dict[str, float]:
    m = onnx.load(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    return {
        n.input[0]: float(inits[n.input[1]])
        for n in m.graph.node
        if n.op_type == "QuantizeLinear" and n.input[1] in inits and inits[n.input[1]].size == 1
    }


@pytest.mark.parametrize("method", ["entropy", "minmax"])
def test_older_onnxruntime_gets_orinbench_ranges_through_overrides(
    net: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # onnxruntime 1.23 (the newest for Python 3.10, JetPack 6's) lacks calibration_cache_path:
    # the same ranges must reach the model through TensorQuantOverrides
    import orinbench.precision.qdq as qdq

    new = quantize_qdq(net, data=data, out_path=tmp_path / "new.onnx", method=method)
    monkeypatch.setattr(qdq, "supports_precomputed_ranges", lambda: False)
    old = quantize_qdq(net, data=data, out_path=tmp_path / "old.onnx", method=method)
    assert summarize_qdq(old).quantized == ("stem.conv", "head.conv", "cls.fc")
    a, b = _activation_scales(new), _activation_scales(old)
    assert a and a.keys() == b.keys()
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-6), k
    assert evaluate_accuracy(old, reference=net, data=data).cosine_min > 0.98


# --- models as exporters write them: external data, IR 3 with weights listed as inputs ---------

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _assert_qdq_around_convs(path: Path) -> None:
    """Every Conv reads its activation and its weight through a DequantizeLinear."""
    q = onnx.load(path)
    prod = _producer(q)
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:
        assert prod[conv.input[0]].op_type == "DequantizeLinear", conv.name
        assert prod[conv.input[1]].op_type == "DequantizeLinear", conv.name
    assert any(n.op_type == "QuantizeLinear" for n in q.graph.node)


def _ort_session(path: Path) -> object:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _save_external(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="m.data",
        size_threshold=128,  # Resize's scales inline: ONNX Runtime needs them at load
    )
    return path


def test_external_data_model_quantizes(run_cli: Cli, data: Path, tmp_path: Path) -> None:
    # torch's dynamo exporter writes .onnx + .onnx.data; ONNX Runtime's pre-processing used to
    # look for the weights file in its own temp folder
    model = _save_external(make_net(), tmp_path / "ext" / "m.onnx")
    assert (tmp_path / "ext" / "m.data").stat().st_size > 0
    before = {p.name: p.read_bytes() for p in model.parent.iterdir()}
    out = tmp_path / "out" / "m.qdq.onnx"
    out.parent.mkdir()
    code, stdout, err = run_cli("quantize", str(model), "--data", str(data), "--out", str(out),
                                "--max-samples", "3")  # fmt: skip
    assert code == 0, stdout + err
    assert "3 of 3 Conv/ConvTranspose/MatMul/Gemm nodes in INT8" in stdout
    # a self-contained output, nothing else written, the input untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.qdq.onnx"]
    assert {p.name: p.read_bytes() for p in model.parent.iterdir()} == before
    _ort_session(out)
    _assert_qdq_around_convs(out)
    report = evaluate_accuracy(out, reference=model, data=data)
    assert report.cosine_min > 0.98 and 0 < report.rel_l2_max < 0.2


def test_external_data_over_the_inline_limit_stays_external(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a model over protobuf's 2 GiB cannot be made self-contained: with the limit lowered, the
    # small model takes that path, and pre-processing keeps (and finds) its external data
    import orinbench.precision.qdq as qdq

    model = _save_external(make_net(), tmp_path / "ext" / "m.onnx")
    monkeypatch.setattr(qdq, "INLINE_LIMIT", 0)
    prepared = qdq.preprocess(model, tmp_path / "prepared.onnx")
    assert (tmp_path / "prepared.onnx.data").stat().st_size > 0
    assert qdq.uses_external_data(onnx.load(prepared, load_external_data=False))
    out = quantize_qdq(model, data=data, out_path=tmp_path / "q.onnx", max_samples=3)
    _ort_session(out)
    _assert_qdq_around_convs(out)
    assert evaluate_accuracy(out, reference=model, data=data).cosine_min > 0.98


def _ir3_net() -> onnx.ModelProto:
    """make_net as IR 3 requires it: every initializer also a graph input."""
    model = make_net()
    model.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in model.graph.initializer
    )
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def test_ir3_weights_listed_as_inputs_are_dropped(run_cli: Cli, data: Path, tmp_path: Path) -> None:
    # BatchNorm folding replaced w1/b1 with new initializers but kept the inputs: the output
    # failed the checker ("in initializer but not in graph input")
    model = tmp_path / "ir3.onnx"
    onnx.save(_ir3_net(), model)
    before = model.read_bytes()
    out = tmp_path / "ir3.qdq.onnx"
    code, stdout, err = run_cli("quantize", str(model), "--data", str(data), "--out", str(out),
                                "--max-samples", "3")  # fmt: skip
    assert code == 0, stdout + err
    assert "removed 11 weight(s) from the graph inputs of a copy of" in stdout
    assert "IR version from 3 to 4" in stdout
    assert model.read_bytes() == before
    assert [i.name for i in _ort_session(out).get_inputs()] == ["x"]  # type: ignore[attr-defined]
    _assert_qdq_around_convs(out)
    assert summarize_qdq(out).quantized == ("stem.conv", "head.conv", "cls.fc")
    report = evaluate_accuracy(out, reference=model, data=data)
    assert report.cosine_min > 0.98 and 0 < report.rel_l2_max < 0.2


@pytest.mark.skipif(
    not (LIGHT / "light_squeezenet.onnx").is_file(), reason="onnx's test data is not installed"
)
def test_onnx_light_squeezenet_quantizes(run_cli: Cli, tmp_path: Path) -> None:
    # IR 3, opset 9, weights listed as inputs and partly made by ConstantOfShape at run time:
    # calibration used to ask the data for the '..._SHAPE' weights
    model = LIGHT / "light_squeezenet.onnx"
    rng = np.random.default_rng(0)
    folder = tmp_path / "sq"
    for i in range(2):
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        write_sample(folder / f"{i:04d}.npz", {"data_0": x})
    out = tmp_path / "sq.qdq.onnx"
    code, stdout, err = run_cli("quantize", str(model), "--data", str(folder), "--out", str(out),
                                "--method", "minmax")  # fmt: skip
    assert code == 0, stdout + err
    assert "26 of 26 Conv/ConvTranspose/MatMul/Gemm nodes in INT8" in stdout
    assert "IR version from 3 to 4" in stdout and "from opset 9 to 13" in stdout
    assert [i.name for i in _ort_session(out).get_inputs()] == ["data_0"]  # type: ignore[attr-defined]
    _assert_qdq_around_convs(out)
    report = evaluate_accuracy(out, reference=model, data=folder)
    assert report.cosine_min > 0.98 and report.rel_l2_max < 0.2

    # sensitivity pre-processes the model itself, without quantize_qdq's copy
    from orinbench.precision.qdq import preprocess

    notes: list[str] = []
    prepared = preprocess(model, tmp_path / "prepared.onnx", on_note=notes.append)
    assert len(notes) == 1 and "weight(s) from the graph inputs" in notes[0]
    assert [i.name for i in _ort_session(prepared).get_inputs()] == ["data_0"]  # type: ignore[attr-defined]


def test_preprocess_failure_names_no_opset_problem_on_a_current_opset(
    net: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.quantization.shape_inference as si

    from orinbench.errors import ModelError
    from orinbench.precision.qdq import preprocess

    def fail(*_a: object, **_k: object) -> None:
        raise ValueError("shape inference failed")

    monkeypatch.setattr(si, "quant_pre_process", fail)
    with pytest.raises(ModelError) as info:
        preprocess(net, tmp_path / "p.onnx")
    text = str(info.value)
    assert "ValueError: shape inference failed" in text and "opset" not in text
    old = make_net()
    old.opset_import[0].version = 11
    onnx.save(old, tmp_path / "op11.onnx")
    with pytest.raises(ModelError, match=r"re-export the model with opset 13 or newer \(it has "):
        preprocess(tmp_path / "op11.onnx", tmp_path / "p.onnx")


def test_unmatched_exclusion_points_to_an_existing_command(
    run_cli: Cli, net: Path, data: Path, tmp_path: Path
) -> None:
    code, stdout, err = run_cli("quantize", str(net), "--data", str(data), "--out",
                                str(tmp_path / "q.onnx"), "--exclude", "zzz*")  # fmt: skip
    assert code == 2
    assert "--nodes" not in err and "'orinbench quantize MODEL ... --json'" in err
    # the pointer works: --json lists the node names
    code, stdout, _ = run_cli("quantize", str(net), "--data", str(data), "--out",
                              str(tmp_path / "q.onnx"), "--json", "--max-samples", "2")  # fmt: skip
    assert code == 0
    assert json.loads(stdout)["quantized"] == ["stem.conv", "head.conv", "cls.fc"]


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_activations_near_float32_limits_point_to_minmax(
    net: Path, tmp_path: Path, method: str
) -> None:
    # found by a new user: 1e30-scale data makes ONNX Runtime's histogram ask for "too many
    # bins" (or its activations overflow); the fix used to say "check that the model runs",
    # which it does, and named a temporary copy instead of the user's model
    data = write_data(tmp_path / "huge", n=2, scale=3e36)
    out = tmp_path / "q.onnx"
    with pytest.raises(ModelError) as info:
        quantize_qdq(net, data=data, out_path=out, method=method)
    msg = str(info.value)
    assert f"could not calibrate {net}:" in msg and "--method minmax" in msg
    assert "check that the model runs" not in msg
    assert not out.exists()
    # the advice holds: min-max calibration quantizes the same data
    quantize_qdq(net, data=data, out_path=out, method="minmax")
    assert out.is_file()
