"""The version layer (compat.py) and the strictness of the TensorRT double it is tested against."""

from __future__ import annotations

from pathlib import Path

import pytest
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench.backends.tensorrt import compat
from orinbench.backends.tensorrt.logger import make_logger
from orinbench.errors import DependencyMissingError

trt_env = fx.trt_env


def test_version_parsing_and_ordering() -> None:
    v = compat.TrtVersion.parse("10.3.0.30")
    assert (v.major, v.minor, v.patch, v.build) == (10, 3, 0, 30) and str(v) == "10.3.0.30"
    assert v.at_least("10.3") and v.at_least("8.6.1") and not v.at_least("10.4")
    assert compat.TrtVersion.parse("8.6") < compat.TrtVersion.parse("8.6.1")


@pytest.mark.parametrize(
    ("trt_env", "expected"),
    [
        ("8.5", dict(explicit_batch_flag=True, optimization_level=False, progress_monitor=False)),
        ("8.6", dict(explicit_batch_flag=True, optimization_level=True, parser_node_names=False)),
        ("10.3", dict(strongly_typed_flag=True, implicit_int8=True, parser_node_names=True,
                      layers_per_profile=False)),
        ("11.4", dict(always_strongly_typed=True, precision_flags=False, implicit_int8=False,
                      strongly_typed_flag=False, explicit_batch_flag=False)),
    ],
    indirect=["trt_env"],
)  # fmt: skip
def test_features_follow_the_version(trt_env: TrtEnv, expected: dict[str, bool]) -> None:
    feats = compat.features(trt_env.trt)
    for key, value in expected.items():
        assert getattr(feats, key) is value, key


@pytest.mark.parametrize("trt_env", ["8.5", "10.3", "11.4"], indirect=True)
def test_network_flags_are_valid_for_each_version(trt_env: TrtEnv) -> None:
    trt = trt_env.trt
    feats = compat.features(trt)
    plain = compat.network_flags(trt, feats, strongly_typed=False)
    strong = compat.network_flags(trt, feats, strongly_typed=True)
    if trt_env.version == "8.5":
        assert plain == 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) == strong
    elif trt_env.version == "10.3":
        assert plain == 0 and strong == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    else:  # 11: always strongly typed, and the deprecated flag is not passed
        assert plain == strong == 0


def test_tensorrt_older_than_8_5_is_refused() -> None:
    class Old:
        __version__ = "8.4.3.1"

    with pytest.raises(DependencyMissingError, match="too old"):
        compat.features(Old())


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_numpy_dtypes(trt_env: TrtEnv) -> None:
    import numpy as np

    trt = trt_env.trt
    assert compat.numpy_dtype(trt, trt.DataType.HALF) == np.float16
    assert compat.numpy_dtype(trt, trt.DataType.INT64) == np.int64
    with pytest.raises(Exception, match="no numpy equivalent"):
        compat.numpy_dtype(trt, trt.DataType.BF16)


@pytest.mark.parametrize("trt_env", ["8.6", "10.3", "11.4"], indirect=True)
def test_the_double_is_strict(trt_env: TrtEnv) -> None:
    trt = trt_env.trt
    with pytest.raises(AttributeError, match="test double of TensorRT"):
        trt.execute_async_v4  # noqa: B018 - a typo must not pass
    config = trt.Builder(make_logger(trt).ilogger).create_builder_config()
    with pytest.raises(AttributeError):
        config.max_workspace_sise = 1  # a typo of a property
    if trt_env.version == "8.6":
        config.max_workspace_size = 1 << 20  # exists (deprecated) in 8.x
        assert not hasattr(trt, "IProgressMonitor") and hasattr(trt.Builder, "build_engine")
        assert not hasattr(config, "progress_monitor")
    else:
        with pytest.raises(AttributeError):
            config.max_workspace_size = 1 << 20  # gone in 10.0
        assert not hasattr(trt.Builder, "build_engine") and hasattr(config, "progress_monitor")
    if trt_env.version == "11.4":
        assert not hasattr(trt.BuilderFlag, "FP16") and not hasattr(config, "int8_calibrator")
        assert not hasattr(trt, "IInt8EntropyCalibrator2")
    else:
        assert hasattr(trt.BuilderFlag, "FP16")


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_interfaces_need_their_base_init(trt_env: TrtEnv) -> None:
    trt = trt_env.trt

    class Forgetful(trt.ILogger):
        def __init__(self) -> None:  # no trt.ILogger.__init__(self)
            pass

        def log(self, severity: object, msg: str) -> None:
            pass

    with pytest.raises(TypeError, match="__init__"):
        trt.Builder(Forgetful())


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_the_double_needs_a_cuda_runtime_to_execute(trt_env: TrtEnv, tmp_path: Path) -> None:
    from trt_double import models

    from orinbench.backends.tensorrt import build_engine

    report = build_engine(models.conv_model(tmp_path / "c.onnx"), tmp_path / "c.engine")
    trt = trt_env.trt
    log = make_logger(trt)
    engine = trt.Runtime(log.ilogger).deserialize_cuda_engine(report.engine_path.read_bytes())
    context = engine.create_execution_context()
    trt_env.testing.set_cuda(None)
    with pytest.raises(RuntimeError, match="no CUDA runtime"):
        context.execute_async_v3(0x1000)
    trt_env.testing.set_cuda(trt_env.cuda)
    assert context.execute_async_v3(0x1234) is False  # not a stream
    assert "invalid resource handle" in log.errors()[-1]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_logger_keeps_records_and_writes_the_log_atomically(
    trt_env: TrtEnv, tmp_path: Path
) -> None:
    trt = trt_env.trt
    seen: list[str] = []
    log = make_logger(trt, min_severity="INFO", on_message=lambda r: seen.append(r.severity))
    for sev in ("VERBOSE", "INFO", "WARNING", "ERROR"):
        log.ilogger.log(getattr(trt.ILogger.Severity, sev), f"{sev.lower()} message")
    assert [r.severity for r in log.records] == ["INFO", "WARNING", "ERROR"]
    assert seen == ["WARNING", "ERROR"] and log.errors() == ["error message"]
    path = log.write(tmp_path / "x.log", header="# header")
    text = path.read_text().splitlines()
    assert text[0] == "# header" and text[1].endswith("[I] info message") and len(text) == 4
