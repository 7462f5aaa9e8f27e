"""``decide --backend tensorrt`` against the TensorRT double (its own calibration-cache behaviour,
with tests/_trt_double_ext.py's DLA placement and reformat layers): engines, layers per precision
and device, DLA fallback, caches TensorRT would ignore, repeated builds."""

from __future__ import annotations

import json
from pathlib import Path

import _trt_double_ext
import onnx
import pytest
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt.sidecar import log_path, read_sidecar, sidecar_path
from orinbench.bench.harness import StopRule, Warmup
from orinbench.calib.cache import NO_SCALE_OPS, make_cache, network_activation_tensors, write_cache
from orinbench.decide import decide_model
from orinbench.errors import CalibrationError, UsageError
from orinbench.model.load import load_model
from orinbench.zoo.sample_bev import export_sample_bev

trt_env = fx.trt_env
REPO = Path(__file__).resolve().parents[1]
CALIB = REPO / "calib" / "sample_bev_tiny"
FAST = {"warmup": Warmup(seconds=0.0), "stop": StopRule(iterations=15), "max_samples": 4}


@pytest.fixture
def bev(tmp_path: Path) -> Path:
    return export_sample_bev(tmp_path / "bev.onnx", "tiny")


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_gpu_variants_are_built_reused_and_described(
    trt_env: TrtEnv, bev: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trt_double_ext.install(monkeypatch)
    work = tmp_path / "work"
    out = decide_model(bev, backend="tensorrt", calib_data=CALIB, workdir=work, **FAST)  # type: ignore[arg-type]
    rows = {r.name: r for r in out.decision.rows}
    assert list(rows) == ["fp32", "fp16", "int8"]
    for name, r in rows.items():
        engine = work / f"bev.{name}.engine"
        assert engine.is_file() and r.size_bytes == engine.stat().st_size
        assert read_sidecar(engine)["settings"]["precision"] == name  # type: ignore[index]
        assert r.device == "GPU" and r.layers_device == {"GPU": sum(r.layers_precision.values())}  # type: ignore[union-attr]
        assert out.results[name].config.extra["engine"]["path"] == str(engine)
    assert set(rows["fp32"].layers_precision) == {"FP32"}  # type: ignore[arg-type]
    assert rows["fp32"].reformat_layers == 0
    assert rows["fp16"].layers_precision["FP16"] > 80  # type: ignore[index]
    assert rows["fp16"].reformat_layers == 2  # FP32 input in, FP32 output out
    # the double's INT8 engine: 29 of its 31 convolutions in INT8; the two that read or write a
    # Reshape/Softmax output stay out, as TensorRT writes no scale for those tensors
    assert rows["int8"].layers_precision["INT8"] == 29  # type: ignore[index]
    assert (work / "bev.int8.engine.calib").is_file()  # the cache TensorRT computed, kept
    # the double runs engines in FP32 through ONNX Runtime: no accuracy loss
    assert all(r.accuracy_loss_pct == pytest.approx(0.0, abs=1e-6) for r in rows.values())
    assert out.decision.chosen is not None
    builds = trt_env.testing.calls["build_serialized_network"]
    again = decide_model(bev, backend="tensorrt", calib_data=CALIB, workdir=work, **FAST)  # type: ignore[arg-type]
    assert trt_env.testing.calls["build_serialized_network"] == builds  # reused by the sidecar
    assert [r.name for r in again.decision.rows] == ["fp32", "fp16", "int8"]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_dla_variants_report_fallback_layers(
    trt_env: TrtEnv, bev: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trt_double_ext.install(monkeypatch)
    model = load_model(bev)
    not_on_dla = sum(1 for n in model.graph.node if n.op_type not in _trt_double_ext.dla_ops())
    out = decide_model(
        bev,
        backend="tensorrt",
        variants=["fp16", "dla-fp16"],
        dla=True,
        holdout=CALIB,
        workdir=tmp_path / "w",
        **FAST,
    )  # type: ignore[arg-type]
    dla = out.decision.row("dla-fp16")
    assert dla.device == "DLA+GPU" and dla.label == "DLA FP16"
    assert dla.network_layers == len(model.graph.node)
    assert dla.dla_fallback_layers == not_on_dla > 0
    assert dla.layers_device is not None and dla.layers_device["DLA"] >= 1
    assert dla.reformat_layers is not None and dla.reformat_layers > 2
    sentence = f"DLA FP16 falls back to the GPU on {not_on_dla} of {len(model.graph.node)} layers"
    assert sentence in out.decision.observations
    gpu = out.decision.row("fp16")
    assert gpu.dla_fallback_layers is None and gpu.layers_device == {
        "GPU": gpu.layers_device["GPU"]
    }  # type: ignore[index]
    sc = read_sidecar(tmp_path / "w" / "bev.dla-fp16.engine")
    assert sc["settings"]["dla_core"] == 0 and sc["settings"]["gpu_fallback"] is True  # type: ignore[index]
    # the row's counts are the sidecar's dla entry (TensorRT's network layers, the inspector)
    assert (dla.dla_fallback_layers, dla.network_layers) == (
        sc["dla"]["fallback_layers"],  # type: ignore[index]
        sc["dla"]["network_layers"],  # type: ignore[index]
    )
    assert dla.dla_mostly_gpu is False and sc["dla"]["mostly_gpu"] is False  # type: ignore[index]


def test_dla_placement_prefers_the_sidecar_and_falls_back_to_the_log(tmp_path: Path) -> None:
    from orinbench.backends.tensorrt.sidecar import FORMAT, log_path, write_sidecar
    from orinbench.decide.run import _dla_placement

    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            [
                onnx.helper.make_node("Relu", ["x"], ["y"], name="r0"),
                onnx.helper.make_node("Relu", ["y"], ["z"], name="r1"),
            ],
            "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1])],
        )
    )
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    log_path(engine).write_text(
        "[W] Layer 'r0' (ACTIVATION): Unsupported on DLA. Switching this layer's device type "
        "to GPU.\n"
    )
    # no sidecar: the build log and the ONNX node count; "mostly on the GPU" unknown
    assert _dla_placement(engine, model) == (1, 2, None)
    head = {"format": FORMAT, "format_version": 1}
    write_sidecar(engine, {**head, "settings": {}})  # an older sidecar without the dla entry
    assert _dla_placement(engine, model) == (1, 2, None)
    dla = {"fallback_layers": 7, "network_layers": 9, "mostly_gpu": True}
    write_sidecar(engine, {**head, "dla": dla})
    assert _dla_placement(engine, model) == (7, 9, True)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_dla_on_a_device_without_dla_is_refused_before_building(
    trt_env: TrtEnv, bev: Path, tmp_path: Path
) -> None:
    trt_env.testing.config.dla_cores = 0
    with pytest.raises(UsageError, match="this device has no DLA") as exc:
        decide_model(
            bev, backend="tensorrt", dla=True, calib_data=CALIB, workdir=tmp_path / "w", **FAST
        )  # type: ignore[arg-type]
    assert exc.value.exit_code == 2 and "num_DLA_cores" in str(exc.value)
    assert not (tmp_path / "w").exists()
    assert trt_env.testing.calls["build_serialized_network"] == 0


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_cache_from_another_network_stops_decide_before_building(
    trt_env: TrtEnv, bev: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trt_double_ext.install(monkeypatch)
    tensors = network_activation_tensors(load_model(bev))
    renamed = write_cache(
        tmp_path / "other.cache",
        make_cache(
            trt_env.trt.__version__, "entropy2", {f"/other{i}": 0.02 for i in range(len(tensors))}
        ),
    )
    with pytest.raises(CalibrationError) as exc:
        decide_model(
            bev,
            backend="tensorrt",
            calib_cache=renamed,
            holdout=CALIB,
            workdir=tmp_path / "w",
            **FAST,
        )  # type: ignore[arg-type]
    assert f"0 of {len(tensors)} network tensors matched" in str(exc.value)
    assert not (tmp_path / "w").exists()
    assert trt_env.testing.calls["build_serialized_network"] == 0

    # a cache with a scale for every float tensor, also those orinbench does not count
    # (outputs TensorRT may leave unscaled, NO_SCALE_OPS): the double then runs 31 layers in INT8
    model = load_model(bev)
    extra = [o for n in model.graph.node if n.op_type in NO_SCALE_OPS for o in n.output if o]
    good = write_cache(
        tmp_path / "bev.cache",
        make_cache(trt_env.trt.__version__, "entropy2", dict.fromkeys(tensors + extra, 0.02)),
    )
    out = decide_model(
        bev,
        backend="tensorrt",
        variants=["int8"],
        calib_cache=good,
        holdout=CALIB,
        workdir=tmp_path / "w",
        **FAST,
    )  # type: ignore[arg-type]
    assert out.decision.row("int8").layers_precision["INT8"] == 31  # type: ignore[index]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_cache_tensorrt_ignored_during_the_build_drops_the_engine(
    trt_env: TrtEnv, bev: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trt_double_ext.install(monkeypatch, ignore_caches=True)
    tensors = network_activation_tensors(load_model(bev))
    cache = write_cache(
        tmp_path / "bev.cache",
        make_cache(trt_env.trt.__version__, "entropy2", dict.fromkeys(tensors, 0.02)),
    )
    work = tmp_path / "w"
    with pytest.raises(CalibrationError) as exc:
        decide_model(
            bev,
            backend="tensorrt",
            variants=["int8"],
            calib_cache=cache,
            holdout=CALIB,
            workdir=work,
            **FAST,
        )  # type: ignore[arg-type]
    msg = str(exc.value)
    assert f"0 of {len(tensors)} network tensors matched" in msg and "ignored" in msg
    engine = work / "bev.int8.engine"
    assert not engine.exists() and not sidecar_path(engine).exists()
    assert "Missing scale and zero-point" in log_path(engine).read_text()  # kept to read


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_repeat_builds_with_and_without_a_timing_cache_keeps_the_fastest(
    trt_env: TrtEnv, bev: Path, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    out = decide_model(
        bev, backend="tensorrt", variants=["fp16"], holdout=CALIB, repeat=2, workdir=work, **FAST
    )  # type: ignore[arg-type]
    rep = out.result.extra["decide"]["repeat"]["FP16"]
    assert [b["mode"] for b in rep["builds"]] == ["shared-cache", "no-cache"] * 2
    assert set(rep["spread"]) == {"shared-cache", "no-cache", "all"}
    engine = work / "bev.fp16.engine"
    assert rep["kept"] == str(engine)
    sc = read_sidecar(engine)
    assert sc is not None and sc["repeat"]["kept"] == "fastest of 4 builds"
    assert sc["engine"]["file"] == "bev.fp16.engine"
    assert out.results["fp16"].model.path == str(engine)
    assert sorted(p.name for p in work.iterdir()) == [
        "bev.fp16.engine",
        "bev.fp16.engine.json",
        "bev.fp16.engine.log",
    ]
    json.dumps(out.result.to_dict(), allow_nan=False)
