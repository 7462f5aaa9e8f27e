"""DLA builds (issue 14, defect 7): the double's DLA rules, and orinbench building as trtexec does.

The double's DLA rules (``tensorrt._core._Build._place_on_dla``) come from upstream sources and
public logs, not from a real DLA: a layer runs on the DLA only in FP16 or INT8 and only for op
types the DLA supports; with GPU_FALLBACK the others move to the GPU with TensorRT's warning, and
without it the build fails. orinbench sets the flags trtexec sets for ``--useDLACore``
(sampleEngines.cpp 8.5.3-10.x) and records how many layers fell back in the sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import BuildOptions, build_engine
from orinbench.backends.tensorrt.logger import make_logger
from orinbench.decide.variants import Variant
from orinbench.errors import UsageError

trt_env = fx.trt_env
FLAG_VERSIONS = ["8.5", "8.6", "10.3"]
SWITCH = "Unsupported on DLA. Switching this layer's device type to GPU."


def mixed_model(path: Path) -> Path:
    """x -> Conv -> Softmax -> Transpose -> Transpose -> y: only the Conv can run on the DLA."""
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Softmax", ["c"], ["s"], axis=1, name="softmax"),
        helper.make_node("Transpose", ["s"], ["t"], perm=[0, 1, 3, 2], name="t1"),
        helper.make_node("Transpose", ["t"], ["y"], perm=[0, 1, 3, 2], name="t2"),
    ]
    graph = helper.make_graph(nodes, "mixed", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _double_build(trt: Any, onnx_path: Path, *flags: str) -> tuple[Any, list[tuple[str, str]]]:
    """Build ``onnx_path`` for DLA core 0 with the TensorRT API directly (no orinbench)."""
    log = make_logger(trt, min_severity="VERBOSE")
    builder = trt.Builder(log.ilogger)
    explicit = (
        0
        if trt.__version__.startswith("1")
        else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(explicit)
    parser = trt.OnnxParser(network, log.ilogger)
    assert parser.parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = 0
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    plan = builder.build_serialized_network(network, config)
    return plan, [(r.severity, r.message) for r in log.records]


def _inspect(trt: Any, plan: Any) -> list[dict[str, Any]]:
    log = make_logger(trt, min_severity="ERROR")
    runtime = trt.Runtime(log.ilogger)
    runtime.DLA_core = 0
    engine = runtime.deserialize_cuda_engine(bytes(plan))
    info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    return json.loads(info)["Layers"]


# -- the double's DLA rules ------------------------------------------------------------------------
@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_double_fp32_layers_fail_on_the_dla_without_gpu_fallback(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    plan, log = _double_build(trt_env.trt, models.conv_model(tmp_path / "conv.onnx"))
    assert plan is None
    errors = [m for s, m in log if s == "ERROR"]
    assert errors == [
        "2: [network.cpp::validate] Error Code 2: Internal Error (Default DLA is enabled but "
        "layer conv is not supported on DLA and falling back to GPU is not enabled.)"
    ]


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_double_fp32_layers_switch_to_the_gpu_with_fallback(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    plan, log = _double_build(
        trt_env.trt, models.conv_model(tmp_path / "conv.onnx"), "GPU_FALLBACK"
    )
    assert plan is not None
    warnings = [m for s, m in log if s == "WARNING"]
    # every layer: the DLA supports the ops, but not in FP32
    assert warnings == [
        f"Layer 'conv' (CONVOLUTION): {SWITCH}",
        f"Layer 'relu' (ACTIVATION): {SWITCH}",
        f"Layer 'gap' (GLOBALAVERAGEPOOL): {SWITCH}",
    ]
    layers = _inspect(trt_env.trt, plan)
    assert [x["Name"] for x in layers] == ["conv", "relu", "gap"]
    assert all("FP32" in x["Outputs"][0]["Format/Datatype"] for x in layers)


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_double_fp16_runs_supported_ops_on_the_dla_and_the_rest_on_the_gpu(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = mixed_model(tmp_path / "mixed.onnx")
    # without GPU fallback the unsupported Softmax stops the build
    plan, log = _double_build(trt_env.trt, onnx_path, "FP16")
    assert plan is None and any("layer softmax is not supported on DLA" in m for _, m in log)
    plan, log = _double_build(trt_env.trt, onnx_path, "FP16", "GPU_FALLBACK")
    assert plan is not None
    assert [m for s, m in log if s == "WARNING"] == [
        f"Layer 'softmax' (SOFTMAX): {SWITCH}",
        f"Layer 't1' (SHUFFLE): {SWITCH}",
        f"Layer 't2' (SHUFFLE): {SWITCH}",
    ]
    messages = [m for _, m in log]
    assert "[DlaLayer] {ForeignNode[conv...conv]}" in messages
    assert "[GpuLayer] SOFTMAX: softmax" in messages
    names = [x["Name"] for x in _inspect(trt_env.trt, plan)]
    assert names == ["{ForeignNode[conv...conv]}", "softmax", "t1", "t2"]


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_double_direct_io_without_allowed_formats_changes_nothing(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    # DIRECT_IO forbids reformats only next to I/O tensors whose allowed_formats were set; the
    # FP32 network I/O of an FP16 DLA engine is still reformatted, and the build succeeds.
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    plan, log = _double_build(trt_env.trt, onnx_path, "FP16", "DIRECT_IO")
    assert plan is not None and not [m for s, m in log if s in ("ERROR", "WARNING")]
    assert [x["Name"] for x in _inspect(trt_env.trt, plan)] == ["{ForeignNode[conv...gap]}"]


# -- orinbench's DLA builds ----------------------------------------------------------------------
def test_fp32_on_the_dla_is_refused_before_anything_is_built() -> None:
    with pytest.raises(UsageError) as exc:
        BuildOptions(precision="fp32", dla_core=0, gpu_fallback=True)
    assert exc.value.exit_code == 2
    assert "--precision fp32 cannot run on the DLA" in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_cli_refuses_fp32_dla_with_one_line_and_exit_2(
    trt_env: TrtEnv, tmp_path: Path, run_cli
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    # fp32 is the default precision
    code, _, err = run_cli("build", str(onnx_path), "--out", str(engine), "--dla-core", "0")
    lines = [ln for ln in err.splitlines() if ln.startswith("orinbench: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "fp32 cannot run on the DLA" in lines[0] and "--precision fp16" in lines[0]
    assert trt_env.testing.calls["build_serialized_network"] == 0 and not engine.exists()


def _spy_flags(trt_env: TrtEnv, monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    trt = trt_env.trt
    seen: dict[str, bool] = {}
    original = trt.Builder.build_serialized_network

    def spy(self: Any, network: Any, config: Any) -> Any:
        for name in ("FP16", "INT8", "GPU_FALLBACK", "DIRECT_IO", "PREFER_PRECISION_CONSTRAINTS"):
            seen[name] = bool(config.get_flag(getattr(trt.BuilderFlag, name)))
        return original(self, network, config)

    monkeypatch.setattr(trt.Builder, "build_serialized_network", spy)
    return seen


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_dla_builds_set_the_flags_trtexec_sets(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    seen = _spy_flags(trt_env, monkeypatch)
    report = build_engine(
        onnx_path, tmp_path / "fp16.engine", BuildOptions(precision="fp16", dla_core=0)
    )
    # no fallback: DIRECT_IO ("Reformatting runs on GPU, so avoid I/O reformatting")
    assert seen == {
        "FP16": True,
        "INT8": False,
        "GPU_FALLBACK": False,
        "DIRECT_IO": True,
        "PREFER_PRECISION_CONSTRAINTS": True,
    }
    assert report.sidecar["dla"]["fallback_layers"] == 0
    assert report.sidecar["dla"]["engine_layers"] == {"DLA": 1}
    cache = models.calib_cache(tmp_path / "calib.cache")
    report = build_engine(
        onnx_path,
        tmp_path / "int8.engine",
        BuildOptions(precision="int8", calib_cache=cache, dla_core=1, gpu_fallback=True),
    )
    # INT8: no FP16 forced (trtexec forces FP16 only when INT8 is off)
    assert seen == {
        "FP16": False,
        "INT8": True,
        "GPU_FALLBACK": True,
        "DIRECT_IO": False,
        "PREFER_PRECISION_CONSTRAINTS": True,
    }
    assert report.sidecar["dla"] == {
        "core": 1,
        "gpu_fallback": True,
        "network_layers": 3,
        "fallback_layers": 0,
        "fallback_examples": [],
        "engine_layers": {"DLA": 1},
        "mostly_gpu": False,
        "source": "build log (layers switched to the GPU) and engine inspector (devices)",
    }
    assert report.sidecar["layers"]["precision"] == {"INT8": 1}


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_dla_build_reports_its_gpu_fallback_in_sidecar_and_warnings(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = mixed_model(tmp_path / "mixed.onnx")
    seen: list[str] = []
    report = build_engine(
        onnx_path,
        tmp_path / "m.engine",
        BuildOptions(precision="fp16", dla_core=0, gpu_fallback=True),
        on_warning=seen.append,
    )
    dla = report.sidecar["dla"]
    assert dla["fallback_layers"] == 3 and dla["network_layers"] == 4
    assert dla["fallback_examples"] == ["softmax", "t1", "t2"]
    assert dla["engine_layers"] == {"GPU": 3, "DLA": 1} and dla["mostly_gpu"] is True
    (summary,) = [w for w in seen if w.startswith("DLA core 0:")]
    assert summary.startswith("DLA core 0: 3 of 4 network layers fell back to the GPU")
    assert "not DLA figures" in summary and summary in report.warnings
    # a DLA variant of that engine is not presented as a DLA number
    v = Variant("dla-fp16", "tensorrt", report.engine_path, dla_core=0, build=report.sidecar)
    assert v.label == "DLA FP16 (mostly GPU: 3 of 4 layers fell back)"
    assert v.device == "GPU (DLA fallback)"
    # the same from the engine's sidecar, as for engines kept by --repeat
    assert Variant("dla-fp16", "tensorrt", report.engine_path, dla_core=0).mostly_gpu


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_dla_variant_mostly_on_the_dla_keeps_its_label(trt_env: TrtEnv, tmp_path: Path) -> None:
    report = build_engine(
        models.conv_model(tmp_path / "conv.onnx"),
        tmp_path / "c.engine",
        BuildOptions(precision="fp16", dla_core=0, gpu_fallback=True),
    )
    v = Variant("dla-fp16", "tensorrt", report.engine_path, dla_core=0, build=report.sidecar)
    assert v.label == "DLA FP16" and v.device == "DLA+GPU" and not v.mostly_gpu
    assert Variant("fp16", "tensorrt", report.engine_path).dla_placement is None


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_cli_build_prints_the_dla_fallback(trt_env: TrtEnv, tmp_path: Path, run_cli) -> None:
    onnx_path = mixed_model(tmp_path / "mixed.onnx")
    code, out, err = run_cli(
        "build", str(onnx_path), "--out", str(tmp_path / "m.engine"), "--precision", "fp16",
        "--dla-core", "0", "--gpu-fallback",
    )  # fmt: skip
    assert code == 0, err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("dla:")]
    assert "DLA core 0: 3 of 4 network layers fell back to the GPU" in line
    assert "engine layers DLA 1, GPU 3" in line and "not DLA figures" in line
    assert "warning: DLA core 0: 3 of 4" in err


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_a_dla_build_without_fallback_names_the_layer_and_suggests_fallback(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    from orinbench.errors import BuildError

    engine = tmp_path / "m.engine"
    with pytest.raises(BuildError) as exc:
        build_engine(
            mixed_model(tmp_path / "mixed.onnx"),
            engine,
            BuildOptions(precision="fp16", dla_core=0),
        )
    msg = str(exc.value)
    assert "layer softmax is not supported on DLA" in msg and "--gpu-fallback" in msg
    assert "\n" not in msg and not engine.exists()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_cli_build_repeat_prints_the_dla_fallback_of_the_kept_engine(
    trt_env: TrtEnv, tmp_path: Path, run_cli
) -> None:
    onnx_path = mixed_model(tmp_path / "mixed.onnx")
    code, out, err = run_cli(
        "build", str(onnx_path), "--out", str(tmp_path / "m.engine"), "--precision", "fp16",
        "--dla-core", "0", "--gpu-fallback", "--repeat", "1", "--repeat-iterations", "5",
        "--repeat-warmup", "0",
    )  # fmt: skip
    assert code == 0, err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("dla:")]
    assert "3 of 4 network layers fell back to the GPU" in line
