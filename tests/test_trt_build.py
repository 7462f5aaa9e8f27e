"""Building engines against the TensorRT double (8.5, 8.6, 10.3, 11.4) — no TensorRT needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv, write_fake_plugin

from orinbench._io import sha256_file
from orinbench.backends.tensorrt import (
    BuildOptions,
    OnnxParseError,
    build_engine,
    parse_shapes,
)
from orinbench.backends.tensorrt.sidecar import sidecar_path
from orinbench.errors import (
    CalibrationError,
    InputFileError,
    ModelError,
    ShapeError,
    UsageError,
)

trt_env = fx.trt_env

ALL = ["8.5", "8.6", "10.3", "11.4"]
FLAG_VERSIONS = ["8.5", "8.6", "10.3"]


def _engine_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".engine" in p.name)


@pytest.mark.parametrize("trt_env", ALL, indirect=True)
def test_fp16_build_writes_engine_sidecar_and_log(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "out" / "conv.engine"
    report = build_engine(onnx_path, engine, BuildOptions(precision="fp16", workspace_mib=64))
    assert not report.skipped and engine.is_file()
    sc = json.loads(sidecar_path(engine).read_text())
    assert sc == json.loads(json.dumps(dict(report.sidecar)))
    assert sc["onnx"]["sha256"] == sha256_file(onnx_path)
    assert sc["engine"] == {
        "file": "conv.engine",
        "sha256": sha256_file(engine),
        "size_bytes": engine.stat().st_size,
    }
    assert sc["versions"]["tensorrt"] == trt_env.trt.__version__
    assert sc["gpu"]["compute_capability"] == "8.7" and sc["gpu"]["name"] == "Orin (nvgpu)"
    assert sc["settings"]["precision"] == "fp16" and sc["settings"]["workspace_mib"] == 64
    strongly = trt_env.version == "11.4"
    if strongly:
        # the FP16 model has Casts at its FP32 input and output: the output Cast is FP32
        assert sc["layers"]["precision"] == {"FP16": 4, "FP32": 1}
        assert sc["layers"]["types"]["Cast"] == 2
    else:
        assert sc["layers"]["precision"] == {"FP16": 3}
    assert sc["precision_path"] == ("strongly-typed" if strongly else "builder-flags")
    assert (sc["transform"] or {}).get("kind") == ("fp16" if strongly else None)
    assert sc["io"]["inputs"] == [{"name": "x", "dtype": "float32", "shape": [1, 3, 16, 16]}]
    log = (tmp_path / "out" / "conv.engine.log").read_text()
    assert f"TensorRT {trt_env.trt.__version__}" in log and "Engine generation completed" in log
    assert trt_env.testing.calls["init_libnvinfer_plugins"] == 1


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_up_to_date_skip_and_what_triggers_a_rebuild(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    opts = BuildOptions(precision="fp16")
    first = build_engine(onnx_path, engine, opts)
    assert first.reason == "built (no engine yet)"
    builds = trt_env.testing.calls["build_serialized_network"]
    second = build_engine(onnx_path, engine, opts)
    assert second.skipped and second.reason == "up to date"
    assert trt_env.testing.calls["build_serialized_network"] == builds

    changed = build_engine(onnx_path, engine, BuildOptions(precision="fp16", workspace_mib=32))
    assert not changed.skipped and changed.reason == "built (settings changed)"
    assert build_engine(onnx_path, engine, BuildOptions(precision="fp16", workspace_mib=32)).skipped

    forced = build_engine(
        onnx_path, engine, BuildOptions(precision="fp16", workspace_mib=32), force=True
    )
    assert forced.reason == "built (forced)"

    models.conv_model(onnx_path, seed=5)  # new weights, same file name
    assert build_engine(
        onnx_path, engine, BuildOptions(precision="fp16", workspace_mib=32)
    ).reason == ("built (onnx sha256 changed)")
    engine.write_bytes(engine.read_bytes()[:-1])  # tampered / truncated engine
    assert (
        "differs"
        in build_engine(onnx_path, engine, BuildOptions(precision="fp16", workspace_mib=32)).reason
    )


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_another_gpu_or_tensorrt_is_not_up_to_date(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    build_engine(onnx_path, engine)
    trt_env.cuda.compute_capability = (9, 0)
    trt_env.testing.config.compute_capability = "9.0"
    assert build_engine(onnx_path, engine).reason == "built (gpu changed)"


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_int8_from_a_calibration_cache(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    cache = models.calib_cache(tmp_path / "calib.cache")
    report = build_engine(
        onnx_path, tmp_path / "i8.engine", BuildOptions(precision="int8", calib_cache=cache)
    )
    sc = report.sidecar
    assert sc["calibration"]["source"] == "cache"
    assert sc["calibration"]["sha256"] == sha256_file(cache)
    assert trt_env.testing.calls["calibration_from_cache"] == 1
    assert sc["layers"]["precision"]["INT8"] == 1  # the conv; relu and pooling stay FP32
    assert sc["precision_path"] == "builder-flags"
    # checked against the network and the engine: every tensor has its scale
    usage = sc["calibration"]["cache_usage"]
    assert (usage["verdict"], usage["matched"], usage["expected"]) == ("applied", 4, 4)


@pytest.mark.parametrize("trt_env", FLAG_VERSIONS, indirect=True)
def test_int8_calibrating_from_data_keeps_the_cache_beside_the_engine(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    data = models.calib_folder(tmp_path / "calib", samples=3)
    engine = tmp_path / "i8.engine"
    report = build_engine(onnx_path, engine, BuildOptions(precision="int8", calib_data=data))
    assert trt_env.testing.calls["calibration_batches"] == 3
    cache = engine.with_name("i8.engine.calib")
    assert cache.is_file() and cache.read_text().startswith("TRT-")
    assert report.sidecar["calibration"]["cache_sha256"] == sha256_file(cache)
    assert report.sidecar["calibration"]["source"] == "data"
    assert trt_env.cuda.depth == 0  # the CUDA layer was opened for calibration and closed


@pytest.mark.parametrize("trt_env", ALL, indirect=True)
def test_int8_without_any_calibration_source_is_refused(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    with pytest.raises(UsageError, match="needs INT8 calibration") as err:
        build_engine(onnx_path, tmp_path / "e.engine", BuildOptions(precision="int8"))
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    assert _engine_files(tmp_path) == []
    assert trt_env.testing.calls["build_serialized_network"] == 0


@pytest.mark.parametrize("trt_env", ["11.4"], indirect=True)
def test_tensorrt_11_int8_needs_qdq_not_a_cache(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    cache = models.calib_cache(tmp_path / "calib.cache")
    with pytest.raises(UsageError, match="calibration cache cannot be used"):
        build_engine(
            onnx_path, tmp_path / "e.engine", BuildOptions(precision="int8", calib_cache=cache)
        )
    with pytest.raises(UsageError, match="best"):
        build_engine(
            onnx_path, tmp_path / "e.engine", BuildOptions(precision="best", calib_cache=cache)
        )
    qdq = models.qdq_model(tmp_path / "qdq.onnx")
    report = build_engine(qdq, tmp_path / "q.engine", BuildOptions(precision="int8"))
    assert report.sidecar["calibration"] == {"source": "qdq-model", "sha256": sha256_file(qdq)}
    assert report.sidecar["layers"]["precision"] == {"INT8": 1}
    assert report.sidecar["transform"] is None


@pytest.mark.parametrize("trt_env", ["11.4", "10.3"], indirect=True)
def test_strongly_typed_int8_quantizes_from_calibration_data(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orinbench.precision.qdq as qdq_mod

    calls: list[dict[str, object]] = []

    def fake_quantize(model_path: Path, *, data: Path, out_path: Path) -> Path:
        calls.append({"model": model_path, "data": data})
        return models.qdq_model(Path(out_path))

    monkeypatch.setattr(qdq_mod, "quantize_qdq", fake_quantize)
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    data = models.calib_folder(tmp_path / "calib")
    opts = BuildOptions(precision="int8", calib_data=data, strongly_typed=trt_env.version == "10.3")
    report = build_engine(onnx_path, tmp_path / "q.engine", opts)
    assert calls == [{"model": onnx_path, "data": data}]
    assert report.sidecar["precision_path"] == "strongly-typed"
    assert report.sidecar["transform"]["kind"] == "qdq"
    assert report.sidecar["layers"]["precision"] == {"INT8": 1}
    assert trt_env.testing.calls["calibration_batches"] == 0  # no implicit calibration


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_qdq_models_need_int8_on_the_builder_flags_path(trt_env: TrtEnv, tmp_path: Path) -> None:
    qdq = models.qdq_model(tmp_path / "qdq.onnx")
    with pytest.raises(UsageError, match="Q/DQ nodes"):
        build_engine(qdq, tmp_path / "e.engine", BuildOptions(precision="fp16"))
    report = build_engine(qdq, tmp_path / "e.engine", BuildOptions(precision="int8"))
    assert report.sidecar["calibration"]["source"] == "qdq-model"
    assert report.sidecar["layers"]["precision"] == {"INT8": 1}


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_strongly_typed_on_10_converts_to_fp16_and_sets_no_precision_flag(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    # the double refuses precision flags on a strongly typed network, so success proves none
    # was set; the layer precisions come from the converted model's types
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    report = build_engine(
        onnx_path, tmp_path / "st.engine", BuildOptions(precision="fp16", strongly_typed=True)
    )
    sc = report.sidecar
    assert sc["precision_path"] == "strongly-typed" and sc["transform"]["kind"] == "fp16"
    assert sc["io"]["inputs"][0]["dtype"] == "float32"  # inputs kept FP32
    assert sc["transform"]["onnx_sha256"] != sc["onnx"]["sha256"]


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_strongly_typed_needs_tensorrt_10(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    with pytest.raises(UsageError, match="needs TensorRT 10"):
        build_engine(onnx_path, tmp_path / "e.engine", BuildOptions(strongly_typed=True))


@pytest.mark.parametrize("trt_env", ["8.5", "8.6"], indirect=True)
def test_opt_level_needs_8_6(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    opts = BuildOptions(opt_level=5)
    if trt_env.version == "8.5":
        with pytest.raises(UsageError, match=r"8\.6 or newer"):
            build_engine(onnx_path, tmp_path / "e.engine", opts)
    else:
        assert (
            build_engine(onnx_path, tmp_path / "e.engine", opts).sidecar["settings"]["opt_level"]
            == 5
        )


def test_options_are_validated() -> None:
    with pytest.raises(UsageError):
        BuildOptions(opt_level=6)
    with pytest.raises(UsageError):
        BuildOptions(precision="int8", calib_cache=Path("a"), calib_data=Path("b"))
    with pytest.raises(UsageError, match="no use with --precision fp16"):
        BuildOptions(precision="fp16", calib_cache=Path("a"))
    with pytest.raises(UsageError):
        BuildOptions(gpu_fallback=True)
    with pytest.raises(UsageError):
        BuildOptions(precision="fp8")
    with pytest.raises(UsageError):
        BuildOptions(workspace_mib=0)


def test_parse_shapes() -> None:
    shapes = parse_shapes(["images:1x3x8x8/2x3x8x8/4x3x8x8", "lidar:1x4"])
    assert shapes["images"].min == (1, 3, 8, 8) and shapes["images"].max == (4, 3, 8, 8)
    assert shapes["lidar"].min == shapes["lidar"].opt == shapes["lidar"].max == (1, 4)
    for bad in [
        "images",
        "images:1x3/2x3",
        "images:4x3/2x3/1x3",
        "images:1xAx3",
        "i:1x2/1x2x3/1x2",
    ]:
        with pytest.raises(UsageError):
            parse_shapes([bad])
    with pytest.raises(UsageError, match="twice"):
        parse_shapes(["a:1", "a:2"])


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_dynamic_inputs_need_a_profile_that_fits_the_model(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    with pytest.raises(ShapeError, match="--shapes x:1x3x16x16"):
        build_engine(onnx_path, tmp_path / "e.engine")
    with pytest.raises(ShapeError, match="fixed to 3"):
        build_engine(
            onnx_path,
            tmp_path / "e.engine",
            BuildOptions(shapes=parse_shapes(["x:1x4x16x16/1x4x16x16/2x4x16x16"])),
        )
    with pytest.raises(ShapeError, match="does not have"):
        build_engine(
            onnx_path, tmp_path / "e.engine", BuildOptions(shapes=parse_shapes(["images:1x3"]))
        )
    shapes = parse_shapes(["x:1x3x16x16/2x3x16x16/4x3x16x16"])
    report = build_engine(onnx_path, tmp_path / "e.engine", BuildOptions(shapes=shapes))
    assert report.sidecar["settings"]["shapes"] == {
        "x": {"min": [1, 3, 16, 16], "opt": [2, 3, 16, 16], "max": [4, 3, 16, 16]}
    }
    assert report.sidecar["io"]["inputs"][0]["shape"] == ["?", 3, 16, 16]


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_parser_errors_name_the_node_and_op_one_per_line(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.plugin_model(tmp_path / "bev.onnx")
    engine = tmp_path / "bev.engine"
    with pytest.raises(OnnxParseError) as err:
        build_engine(onnx_path, engine)
    # 8.x reports the node index (looked up in the ONNX graph), 10.x the name and op itself
    assert err.value.lines[0].startswith("node 'bev_pool' (BEVPoolV2): ")
    assert "Plugin not found" in err.value.lines[0]
    assert err.value.exit_code == 2 and "BEVPoolV2" in str(err.value)
    assert not engine.exists() and not sidecar_path(engine).exists()
    log = engine.with_name("bev.engine.log").read_text()
    assert "Plugin not found" in log  # the log is kept for a failed build


@pytest.mark.parametrize("trt_env", ["8.5", "10.3", "11.4"], indirect=True)
def test_plugins_are_loaded_before_parsing_and_recorded(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.plugin_model(tmp_path / "bev.onnx")
    lib = write_fake_plugin(tmp_path / "libbevpool.so", "BEVPoolV2")
    report = build_engine(onnx_path, tmp_path / "bev.engine", BuildOptions(plugins=(lib,)))
    assert report.sidecar["settings"]["plugins"] == [{"path": str(lib), "sha256": sha256_file(lib)}]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_bad_plugin_libraries_are_one_clear_line(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.plugin_model(tmp_path / "bev.onnx")
    with pytest.raises(InputFileError, match="plugin library not found"):
        build_engine(
            onnx_path, tmp_path / "e.engine", BuildOptions(plugins=(tmp_path / "nope.so",))
        )
    bogus = tmp_path / "bogus.so"
    bogus.write_text("not a library")
    with pytest.raises(InputFileError, match="cannot load plugin library") as err:
        build_engine(onnx_path, tmp_path / "e.engine", BuildOptions(plugins=(bogus,)))
    assert "invalid ELF header" in str(err.value)
    assert _engine_files(tmp_path) == []


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_not_an_onnx_file(trt_env: TrtEnv, tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("hello")
    with pytest.raises(ModelError, match="not"):
        build_engine(bad, tmp_path / "e.engine")
    assert _engine_files(tmp_path) == []


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_tensorrt_warnings_reach_the_callback_and_the_log(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.int64_input_model(tmp_path / "i64.onnx")
    seen: list[str] = []
    report = build_engine(onnx_path, tmp_path / "i64.engine", on_warning=seen.append)
    assert any("INT64" in w for w in seen) and report.warnings == tuple(seen)
    # TensorRT 8 has no INT64 tensors: the engine input is INT32
    assert report.sidecar["io"]["inputs"][1] == {"name": "n", "dtype": "int32", "shape": [1, 4]}
    assert "[W]" in (tmp_path / "i64.engine.log").read_text()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_dla_core_and_gpu_fallback(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    with pytest.raises(UsageError, match="has 2 DLA core"):
        build_engine(onnx_path, tmp_path / "e.engine", BuildOptions(precision="fp16", dla_core=2))
    # FP32 cannot run on the DLA: refused before anything is built (tests/test_trt_dla.py)
    with pytest.raises(UsageError, match="fp32 cannot run on the DLA"):
        build_engine(onnx_path, tmp_path / "e.engine", BuildOptions(dla_core=1))
    report = build_engine(
        onnx_path,
        tmp_path / "dla.engine",
        BuildOptions(precision="fp16", dla_core=1, gpu_fallback=True),
    )
    assert (
        report.sidecar["settings"]["dla_core"] == 1 and report.sidecar["settings"]["gpu_fallback"]
    )
    assert report.sidecar["dla"]["fallback_layers"] == 0


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_timing_cache_is_created_reused_and_replaced_when_foreign(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    cache = tmp_path / "caches" / "orin.timing"
    opts = BuildOptions(precision="fp16", timing_cache=cache)
    build_engine(onnx_path, tmp_path / "a.engine", opts)
    first = json.loads(cache.read_bytes()[8:])
    assert len(first["entries"]) == 3
    build_engine(onnx_path, tmp_path / "b.engine", opts)
    assert "3 entries loaded, 0 added" in (tmp_path / "b.engine.log").read_text()
    # a cache from another GPU is not used: a warning, and a fresh cache replaces it
    cache.write_bytes(cache.read_bytes().replace(b'"cc": "8.7"', b'"cc": "7.2"'))
    warnings: list[str] = []
    build_engine(onnx_path, tmp_path / "c.engine", opts, on_warning=warnings.append)
    assert any("another GPU" in w for w in warnings)
    assert json.loads(cache.read_bytes()[8:])["cc"] == "8.7"
    assert not list(cache.parent.glob(".*.tmp"))


@pytest.mark.parametrize("trt_env", ["10.3", "11.4"], indirect=True)
def test_progress_monitor_reports_fractions(trt_env: TrtEnv, tmp_path: Path, monkeypatch) -> None:
    import orinbench.backends.tensorrt.progress as progress

    monkeypatch.setattr(progress, "_MIN_INTERVAL_S", 0.0)
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    seen: list[float] = []
    build_engine(onnx_path, tmp_path / "e.engine", on_progress=lambda p: seen.append(p.fraction))
    fractions = [f for f in seen if f >= 0]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(set(fractions)) >= 4 and any(0 < f < 1 for f in fractions)


@pytest.mark.parametrize("trt_env", ["8.5", "8.6"], indirect=True)
def test_without_a_progress_monitor_elapsed_time_is_reported(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    assert not hasattr(trt_env.trt, "IProgressMonitor")
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    seen: list[tuple[float, float]] = []
    build_engine(
        onnx_path,
        tmp_path / "e.engine",
        on_progress=lambda p: seen.append((p.fraction, p.elapsed_s)),
    )
    assert seen[-1][0] == 1.0 and seen[-1][1] >= 0


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_ctrl_c_during_the_build_cancels_it_and_writes_nothing(
    trt_env: TrtEnv, tmp_path: Path, monkeypatch
) -> None:
    import orinbench.backends.tensorrt.progress as progress

    monkeypatch.setattr(progress, "_MIN_INTERVAL_S", 0.0)
    calls = {"n": 0}

    def interrupt(p: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    with pytest.raises(KeyboardInterrupt):
        build_engine(onnx_path, tmp_path / "e.engine", on_progress=interrupt)
    assert not (tmp_path / "e.engine").exists() and not (tmp_path / "e.engine.json").exists()
    assert "cancelled" in (tmp_path / "e.engine.log").read_text()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_corrupt_calibration_cache_is_one_line(trt_env: TrtEnv, tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    bad = tmp_path / "bad.cache"
    bad.write_text("garbage\n")
    with pytest.raises(CalibrationError) as err:
        build_engine(
            onnx_path, tmp_path / "e.engine", BuildOptions(precision="int8", calib_cache=bad)
        )
    assert "\n" not in str(err.value) and _engine_files(tmp_path) == []


def test_l4t_version_parsing(tmp_path: Path) -> None:
    from orinbench.backends.tensorrt.sidecar import l4t_version

    f = tmp_path / "nv_tegra_release"
    f.write_text("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64\n")
    assert l4t_version(f) == "36.4.0"
    f.write_text("# R35 (release), REVISION: 3.1, GCID: 1\n")
    assert l4t_version(f) == "35.3.1"
    assert l4t_version(tmp_path / "missing") is None


def test_engine_outputs_numbers_are_not_needed_for_build(tmp_path: Path) -> None:
    # the ONNX graph helper itself must give ORT-runnable models (used by the runner tests)
    import onnxruntime as ort

    path = models.qdq_model(tmp_path / "q.onnx")
    out = ort.InferenceSession(str(path)).run(None, {"x": np.zeros((1, 3, 8, 8), np.float32)})
    assert out[0].shape == (1, 4, 8, 8)
