"""``orinbench build``: the real command against the TensorRT double (in-process, subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from trt_double import models
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import DOUBLE_DIR, TrtEnv, write_fake_plugin

REPO = Path(__file__).resolve().parents[1]
trt_env = fx.trt_env


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("orinbench: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_build_then_up_to_date_then_force(trt_env: TrtEnv, tmp_path: Path, run_cli) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "engines" / "conv.engine"
    code, out, err = run_cli("build", str(onnx_path), "--precision", "fp16", "--out", str(engine))
    assert code == 0, err
    assert f"built {engine}" in out and "[builder-flags]" in out and "TensorRT 10.3.0" in out
    assert "layers: 3 (FP16 3)" in out
    assert engine.is_file() and Path(str(engine) + ".json").is_file()
    assert Path(str(engine) + ".log").is_file()

    code, out, _ = run_cli("build", str(onnx_path), "--precision", "fp16", "--out", str(engine))
    assert code == 0 and out.strip() == f"{engine}: up to date (use --force to rebuild)"
    builds = trt_env.testing.calls["build_serialized_network"]
    code, out, _ = run_cli(
        "build", str(onnx_path), "--precision", "fp16", "--out", str(engine), "--force", "--json"
    )
    assert code == 0 and trt_env.testing.calls["build_serialized_network"] == builds + 1
    sidecar = json.loads(out)
    assert (
        sidecar["settings"]["precision"] == "fp16"
        and sidecar["format"] == "orinbench-engine-sidecar"
    )


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_every_option_reaches_the_sidecar(trt_env: TrtEnv, tmp_path: Path, run_cli) -> None:
    onnx_path = models.conv_model(tmp_path / "dyn.onnx", dynamic_batch=True)
    cache = models.calib_cache(tmp_path / "calib.cache")
    engine = tmp_path / "e.engine"
    code, _, err = run_cli(
        "build", str(onnx_path), "--out", str(engine), "--precision", "best",
        "--calib-cache", str(cache), "--workspace", "256", "--timing-cache",
        str(tmp_path / "t.cache"), "--shapes", "x:1x3x16x16/2x3x16x16/4x3x16x16",
        "--dla-core", "0", "--gpu-fallback", "--opt-level", "4", "--sparsity",
    )  # fmt: skip
    assert code == 0, err
    settings = json.loads(Path(str(engine) + ".json").read_text())["settings"]
    assert settings["precision"] == "best" and settings["workspace_mib"] == 256
    assert settings["shapes"]["x"]["opt"] == [2, 3, 16, 16]
    assert settings["dla_core"] == 0 and settings["gpu_fallback"] is True
    assert settings["opt_level"] == 4 and settings["sparsity"] is True
    assert (tmp_path / "t.cache").is_file()


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_parser_errors_one_line_per_node_and_exit_2(
    trt_env: TrtEnv, tmp_path: Path, run_cli
) -> None:
    onnx_path = models.plugin_model(tmp_path / "bev.onnx")
    engine = tmp_path / "bev.engine"
    code, _, err = run_cli("build", str(onnx_path), "--out", str(engine))
    assert code == 2
    assert "  node 'bev_pool' (BEVPoolV2): " in err
    assert "cannot parse" in _one_error_line(err) and "--plugins" in err
    assert not engine.exists() and not Path(str(engine) + ".json").exists()
    lib = write_fake_plugin(tmp_path / "libbev.so", "BEVPoolV2")
    code, _, err = run_cli("build", str(onnx_path), "--out", str(engine), "--plugins", str(lib))
    assert code == 0, err


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("not-onnx", "is not a readable ONNX model"),
        ("missing-plugin", "plugin library not found"),
        ("int8-no-calibration", "needs INT8 calibration"),
        ("missing-model", "not found"),
        ("bad-shapes", "has rank 2, the input has rank 4"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    trt_env: TrtEnv, tmp_path: Path, run_cli, case: str, expect: str
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "out" / "e.engine"
    args = ["build", str(onnx_path), "--out", str(engine)]
    if case == "not-onnx":
        (tmp_path / "notes.onnx").write_text("just text")
        args[1] = str(tmp_path / "notes.onnx")
    elif case == "missing-plugin":
        args += ["--plugins", str(tmp_path / "libmissing.so")]
    elif case == "int8-no-calibration":
        args += ["--precision", "int8"]
    elif case == "missing-model":
        args[1] = str(tmp_path / "nope.onnx")
    elif case == "bad-shapes":
        args += ["--shapes", "x:1x3"]
    code, _, err = run_cli(*args)
    assert code == 2
    assert expect in _one_error_line(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_calibration_sources_are_alternatives(trt_env: TrtEnv, tmp_path: Path, run_cli) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    code, _, err = run_cli(
        "build", str(onnx_path), "--calib-cache", "a", "--calib-data", "b", "--precision", "int8"
    )
    assert code == 2 and "not allowed with argument" in err


_BLOCK_TRT = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorrt", "pycuda"):
                raise ImportError(f"blocked for the test: {name}")
            return None
    sys.meta_path.insert(0, Block())
    from orinbench.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_without_tensorrt_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    argv = ["build", str(onnx_path), "--out", str(tmp_path / "e.engine")]
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCK_TRT, *argv],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "TensorRT is not installed" in line and "python3-libnvinfer" in line
    assert not (tmp_path / "e.engine").exists()


@pytest.mark.parametrize("version", ["8.6", "11.4"])
def test_subprocess_build_with_the_double_first_on_the_path(tmp_path: Path, version: str) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(DOUBLE_DIR), str(REPO)]),
        "ORINBENCH_TRT_DOUBLE": version,
    }
    no_pycuda = _BLOCK_TRT.replace('("tensorrt", "pycuda")', '("pycuda",)')
    proc = subprocess.run(
        [sys.executable, "-c", no_pycuda, "build", str(onnx_path), "--precision", "fp16", "-q"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / "engines" / "conv.fp16.engine.json").read_text())
    assert sidecar["versions"]["tensorrt"] == {"8.6": "8.6.1", "11.4": "11.4.0.106"}[version]
    assert sidecar["precision_path"] == ("strongly-typed" if version == "11.4" else "builder-flags")
    # no pycuda in this environment: the GPU is not known, and the sidecar says so
    assert sidecar["gpu"] is None and "cuda_driver" not in sidecar["versions"]
