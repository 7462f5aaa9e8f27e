"""``orinbench build``: the real command against the TensorRT double (in-process, subprocess)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

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


def _spread(out: str, what: str) -> float:
    m = re.search(rf"across {re.escape(what)} the median spreads by ([0-9.]+) %", out)
    assert m, out
    return float(m.group(1))


class _VirtualClock:
    """A host clock that only the fake GPU's work moves: latencies are exact, whatever the load."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_repeat_reports_the_spread_and_keeps_the_fastest_engine(
    trt_env: TrtEnv, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orinbench.bench import run as bench_run

    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "engines" / "conv.engine"
    # the double's builds then differ in speed unless a timing cache gives them the same
    # tactics, and the fake GPU's work takes its simulated time on the harness's clock: a
    # virtual clock, not wall-clock time, so that CPU load cannot change the spreads below
    trt_env.testing.config.tactic_jitter = 1.0
    clock = _VirtualClock()
    trt_env.cuda.realtime = True
    trt_env.cuda.sleep = clock.advance
    real_measure = bench_run.measure
    used: list[int] = []

    def measure_on_the_virtual_clock(*args: Any, **kw: Any) -> Any:
        used.append(1)
        return real_measure(*args, clock=clock, **kw)

    monkeypatch.setattr(bench_run, "measure", measure_on_the_virtual_clock)
    code, out, err = run_cli(
        "build", str(onnx_path), "--precision", "fp16", "--out", str(engine), "--repeat", "2",
        "--repeat-iterations", "40", "--repeat-warmup", "0",
    )  # fmt: skip
    assert code == 0, err
    times = trt_env.testing.built_inference_ms  # build order: shared, shared, none, none
    assert len(times) == 4 and times[0] == times[1] and len(set(times)) == 3
    fastest = times.index(min(times))
    assert "built " in out and "4 times (2 per timing-cache mode)" in out
    assert "40 iterations" in out
    # equal tactics: equal speed up to noise; re-timed tactics: the spread of the double's times
    assert _spread(out, "2 builds (shared-cache)") < 10.0
    assert _spread(out, "2 builds (no-cache)") > 15.0
    assert _spread(out, "all builds") >= _spread(out, "2 builds (no-cache)")
    assert re.search(rf"build {fastest} \(no-cache\) is [0-9.]+ % faster than its siblings", out)
    assert f"fastest: build {fastest} (no-cache)" in out and f"kept as {engine}" in out
    # the kept engine is the fastest build's, moved with its log, and its sidecar says so
    plan = importlib.import_module("tensorrt._plan")
    assert plan.load(engine.read_bytes())[0]["inference_ms"] == min(times)
    sidecar = json.loads(Path(str(engine) + ".json").read_text())
    assert sidecar["repeat"]["kept"] == "fastest of 4 builds"
    assert sidecar["repeat"]["index"] == fastest and sidecar["repeat"]["mode"] == "no-cache"
    assert sidecar["engine"]["file"] == "conv.engine"
    assert sidecar["build"]["log"] == "conv.engine.log"
    assert sorted(p.name for p in engine.parent.iterdir()) == [
        "conv.engine", "conv.engine.json", "conv.engine.log",
    ]  # fmt: skip
    assert "repeat: build 1/2 (shared-cache)" in err  # steps on stderr
    assert len(used) == 4 and clock.ns > 0  # every build was timed on the virtual clock
    # equal tactics, equal times: on the virtual clock the shared-cache builds do not differ at all
    assert _spread(out, "2 builds (shared-cache)") == 0.0


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_repeat_json_and_a_shared_timing_cache_file(
    trt_env: TrtEnv, tmp_path: Path, run_cli
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    engine = tmp_path / "conv.engine"
    timing = tmp_path / "conv.timing"
    code, out, err = run_cli(
        "build", str(onnx_path), "--out", str(engine), "--repeat", "1", "--timing-cache",
        str(timing), "--repeat-duration", "0.05", "--repeat-warmup", "0", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["engine"] == str(engine) and data["repeat"]["kept"] == str(engine)
    assert [b["mode"] for b in data["repeat"]["builds"]] == ["shared-cache", "no-cache"]
    assert data["sidecar"]["repeat"]["kept"] == "fastest of 2 builds"
    assert trt_env.testing.calls["build_serialized_network"] == 2
    assert timing.is_file()  # the user's timing cache is the shared one, and it is kept


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (("--repeat", "0"), "--repeat must be >= 1, not 0"),
        (("--repeat-iterations", "5"), "only apply with --repeat"),
    ],
)
def test_bad_repeat_options_are_one_line_exit_2(
    trt_env: TrtEnv, tmp_path: Path, run_cli, extra: tuple[str, ...], expect: str
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    code, out, err = run_cli("build", str(onnx_path), "--out", str(tmp_path / "o" / "e.engine"),
                             *extra)  # fmt: skip
    assert code == 2 and out == ""
    assert expect in _one_error_line(err)
    assert not (tmp_path / "o").exists()
    assert trt_env.testing.calls["build_serialized_network"] == 0


@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_int8_calibration_caches_are_checked_before_and_after_the_build(
    trt_env: TrtEnv, tmp_path: Path, run_cli
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    good = models.calib_cache(tmp_path / "good.cache")  # this release, the network's tensors
    engine = tmp_path / "out" / "conv.engine"
    args = ["build", str(onnx_path), "--precision", "int8", "--out", str(engine), "--force"]
    code, out, err = run_cli(*args, "--calib-cache", str(good))
    assert code == 0, err
    usage = json.loads(Path(str(engine) + ".json").read_text())["calibration"]["cache_usage"]
    assert (usage["verdict"], usage["matched"], usage["expected"]) == ("applied", 4, 4)
    for p in tmp_path.joinpath("out").iterdir():
        p.unlink()

    other_net = tmp_path / "other.cache"
    other_net.write_text(good.read_text().replace("\nx:", "\n/a:").replace("\nc:", "\n/b:")
                         .replace("\nr:", "\n/c:").replace("\ny:", "\n/d:"))  # fmt: skip
    other_release = models.calib_cache(
        tmp_path / "old.cache", version_code="8502" if trt_env.version != "8.5" else "8601"
    )
    code, out, err = run_cli(*args, "--calib-cache", str(other_net))
    line = _one_error_line(err)
    assert code == 2 and out == "" and "0 of 4 network tensors matched" in line
    assert "was ignored by TensorRT" in line and f"--against {onnx_path}" in line
    assert trt_env.testing.calls["build_serialized_network"] == 1  # no build since the first
    assert list(tmp_path.joinpath("out").iterdir()) == []
    # another release is no reason to refuse before building; TensorRT (the double) skips it
    # and asks for calibration data: a CalibrationError saying the cache was not used
    code, out, err = run_cli(*args, "--calib-cache", str(other_release))
    line = _one_error_line(err)
    assert code == 2 and out == "" and "4 of 4 network tensors match it by name" in line
    assert "did not use the calibration cache" in line
    assert trt_env.testing.calls["build_serialized_network"] == 2
    assert not engine.exists() and not Path(str(engine) + ".json").exists()

    # names and release fit, but TensorRT drops the cache while building: found afterwards
    trt_env.testing.config.ignore_calibration_cache = True
    code, out, err = run_cli(*args, "--calib-cache", str(good))
    line = _one_error_line(err)
    assert code == 2 and "0 of 4 network tensors matched" in line and "no INT8 layer" in line
    assert trt_env.testing.calls["build_serialized_network"] == 3
    assert not engine.exists() and not Path(str(engine) + ".json").exists()
    assert "Missing scale and zero-point" in Path(str(engine) + ".log").read_text()


@pytest.mark.parametrize("trt_env", ["8.6"], indirect=True)
def test_repeat_int8_with_calibration_data_keeps_the_cache_beside_the_kept_engine(
    trt_env: TrtEnv, tmp_path: Path, run_cli
) -> None:
    onnx_path = models.conv_model(tmp_path / "conv.onnx")
    data = models.calib_folder(tmp_path / "calib", samples=2)
    engine = tmp_path / "e" / "conv.int8.engine"
    code, _, err = run_cli(
        "build", str(onnx_path), "--precision", "int8", "--calib-data", str(data), "--out",
        str(engine), "--repeat", "1", "--repeat-iterations", "5", "--repeat-warmup", "0", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert trt_env.testing.calls["calibration_batches"] == 4  # 2 builds x 2 samples
    calib = Path(str(engine) + ".calib")
    sidecar = json.loads(Path(str(engine) + ".json").read_text())
    assert calib.is_file() and sidecar["calibration"]["cache_written"] == str(calib)
    assert sorted(p.name for p in engine.parent.iterdir()) == [
        "conv.int8.engine", "conv.int8.engine.calib", "conv.int8.engine.json",
        "conv.int8.engine.log",
    ]  # fmt: skip
