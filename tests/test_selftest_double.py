"""``orinbench selftest`` against the TensorRT double, the fake CUDA layer, a fake Jetson tree (Orin
NX 16GB), a fake tegrastats, an NVML double and a jtop stand-in: every row runs, none is skipped.

What is real here: the self-test's own logic (order, prerequisites, evidence, cross-check maths,
JSON/HTML), orinbench's build/bench/calibration/telemetry code it calls, the sysfs source reading
the fake tree and the tegrastats source running a fake binary. What is not: TensorRT and CUDA (the
double), NVML (a double), jtop (a sysfs reader named jtop: jetson-stats' server needs root and a
private /fake_sys, tests/test_telemetry_jtop.py covers the real client).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import _trt_double_ext
import pytest
from _nvml_double import FakeNvml
from trt_double import pytest_fixtures as fx
from trt_double.pytest_fixtures import TrtEnv

from orinbench import _lazy
from orinbench.backends.tensorrt.cache_usage import MIN_FRACTION
from orinbench.selftest import (
    FAIL,
    PASS,
    SKIPPED,
    SelftestOptions,
    all_checks,
    exit_code,
    read_selftest,
    run_selftest,
    write_selftest,
)
from orinbench.telemetry.sources.sysfs import SysfsPowerSource

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from telemetry_fakes import FakeBoard  # noqa: E402

trt_env = fx.trt_env
TEGRA_PREFIX = (
    "11-20-2024 14:03:11 RAM 3222/15656MB (lfb 1902x4MB) CPU [3%@729,1%@729] EMC_FREQ 0%@3199 "
    "GR3D_FREQ 0%@[305] cpu@46.281C gpu@44.312C tj@46.281C"
)


def tegra_line(board: FakeBoard, extra_mw: dict[str, int] | None = None) -> str:
    """A tegrastats line of the board's rails: each 1000 mW as FakeBoard sets them (5000 mV x
    200 mA), plus ``extra_mw`` (a tegrastats that disagrees with the INA3221 files)."""
    rails = {r: 1000 + (extra_mw or {}).get(r, 0) for r in board.rails}
    return TEGRA_PREFIX + "".join(f" {r} {mw}mW/{mw}mW" for r, mw in rails.items()) + "\n"


class JtopStandIn(SysfsPowerSource):
    """jtop reads the same INA3221 files: a sysfs reader under jtop's name (see module doc)."""

    name = "jtop"


@pytest.fixture
def fake_jetson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """(board, options, tegrastats lines file): a tuned fake Jetson (Orin NX unless the test
    parametrizes the board kind), a tegrastats printing its rails, NVML and jtop stand-ins."""
    board = FakeBoard(tmp_path / "board", getattr(request, "param", "orin-nx-16gb"))
    lines = tmp_path / "tegrastats.txt"
    lines.write_text(tegra_line(board))
    exe = tmp_path / "bin" / "tegrastats"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIXTURES / "fake_tegrastats.py"}" "$@"\n')
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_TEGRASTATS_FILE", str(lines))
    nvml = FakeNvml()
    monkeypatch.setattr(_lazy, "pynvml", lambda: nvml)
    real_available = _lazy.is_available
    monkeypatch.setattr(
        _lazy, "is_available", lambda m: True if m == "pynvml" else real_available(m)
    )
    root = str(board.root)
    options = SelftestOptions(
        quick=True,
        root=root,
        tegrastats_bin=str(exe),
        power_factories={"jtop": lambda period: JtopStandIn(period_s=period, root=root)},
    )
    return board, options, lines


@pytest.mark.slow
@pytest.mark.parametrize("trt_env", ["8.6", "10.3"], indirect=True)
def test_every_row_runs_and_passes_against_the_double(
    trt_env: TrtEnv, fake_jetson, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trt_double_ext.install(monkeypatch)  # DLA placement and fallback lines in the build log
    _board, options, _ = fake_jetson
    out = tmp_path / "out"
    report = run_selftest(out_dir=out, options=options)
    rows = {r.id: r for r in report.rows}
    assert list(rows) == [c.id for c in all_checks()]
    not_passed = {
        r.id: (r.status, r.reason, r.evidence.get("traceback"))
        for r in report.rows
        if r.status != PASS
    }
    assert not not_passed
    assert exit_code(report) == 0

    ev = {k: r.evidence for k, r in rows.items()}
    assert ev["env.fingerprint"]["fingerprint"]["module_part"] == "p3767-0000"
    assert ev["system.check"]["check"]["ready"] is True
    assert ev["trt.build.fp32"]["layers"]["precision"] == {
        "FP32": ev["trt.build.fp32"]["layers"]["count"]
    }
    assert ev["trt.build.fp16"]["layers"]["precision"]["FP16"] > 0
    # calibrate -> cache -> rebuild from the cache -> the cache was applied, same INT8 layers
    assert Path(ev["trt.build.int8"]["calibration"]["cache_written"]).is_file()
    assert ev["trt.build.int8"]["int8_layers"] > 0
    usage = ev["trt.int8.cache"]["cache_usage"]
    assert usage["verdict"] == "applied" and usage["matched"] > 0
    assert usage["matched"] >= MIN_FRACTION * usage["expected"]
    assert ev["trt.int8.cache"]["int8_layers"] == ev["trt.build.int8"]["int8_layers"]
    # DLA: the sample model's ops the simulated DLA cannot run are counted as GPU fallback
    from orinbench.model.load import load_model

    model = load_model(ev["zoo.sample"]["path"])
    not_on_dla = {n.name for n in model.graph.node if n.op_type not in trt_env.trt._core.DLA_OPS}
    assert ev["trt.dla.fp16"]["fallback_layers"] == len(not_on_dla) > 0
    assert set(ev["trt.dla.fp16"]["fallback"]) <= not_on_dla
    # INT8 alone: a layer that reads or writes a tensor without a calibration scale runs in FP32,
    # which the DLA cannot, so more layers fall back than in the FP16 build
    assert ev["trt.dla.int8"]["fallback_layers"] > ev["trt.dla.fp16"]["fallback_layers"]
    for name in ("trt.dla.fp16", "trt.dla.int8"):
        assert ev[name]["dla_layers"] >= 1
    for engine in ("fp32", "fp16", "int8", "dla-fp16", "dla-int8"):
        plain, graph = ev[f"trt.bench.{engine}"], ev[f"trt.bench.{engine}.graph"]
        assert plain["cuda_graph_active"] is False and graph["cuda_graph_active"] is True
        # the double's simulated GPU time of one inference, read by CUDA events
        assert plain["gpu_compute_p50_ms"] == pytest.approx(2.0)
        assert plain["iterations"] == graph["iterations"] == options.quick_iterations
    assert ev["trt.streams"]["throughput"]["streams"] == 2
    assert ev["trt.profile_layers"]["layer_count"] > 5
    assert ev["cuda.pycuda"]["copied_equal"] and ev["cuda.pycuda"]["graph_replay_equal"]
    assert ev["nvml.device"]["facts"]["gpu"] == "Fake GPU"
    assert ev["power.nvml"]["mean_total_w"] == pytest.approx(60.0)
    for src in ("jtop", "sysfs", "tegrastats"):
        assert ev[f"power.{src}"]["mean_total_w"] == pytest.approx(1.0)
    pairs = ev["power.crosscheck"]["pairs"]
    assert [p["pair"] for p in pairs] == ["sysfs - jtop", "tegrastats - jtop"]
    assert all(abs(p["diff_w"]) <= p["tolerance_w"] for p in pairs)

    written = write_selftest(report, out)
    back = read_selftest(written.json_path)
    assert [(r.id, r.status) for r in back.rows] == [(r.id, r.status) for r in report.rows]
    page = written.html_path.read_text()
    assert page.count('data-status="pass"') == len(rows)
    # build logs stay with the result, for a bug report
    assert any((out / "work" / "engines").glob("*.log"))


@pytest.mark.parametrize(
    ("fake_jetson", "rail", "extra_mw", "resolution_w", "passes"),
    [
        # Orin NX: the total is the VDD_IN rail, one INA3221 step at 1 W = 40 + 1.6 mW
        ("orin-nx-16gb", "VDD_IN", 0, 0.0416, True),
        ("orin-nx-16gb", "VDD_IN", 30, 0.0416, True),
        ("orin-nx-16gb", "VDD_IN", 100, 0.0416, False),
        ("orin-nx-16gb", "VDD_SOC", 300, 0.0416, True),  # not part of the total
        # AGX Orin: the total sums 4 rails (4 W), one step each: 4 x 40 + 0.8 x 8 mW
        ("agx-orin-64gb", "VDD_GPU_SOC", 100, 0.1664, True),
        ("agx-orin-64gb", "VDD_GPU_SOC", 300, 0.1664, False),
    ],
    indirect=["fake_jetson"],
)
def test_crosscheck_tolerance_is_the_ina3221_resolution(
    fake_jetson, rail: str, extra_mw: int, resolution_w: float, passes: bool, tmp_path: Path
) -> None:
    board, options, lines = fake_jetson
    lines.write_text(tegra_line(board, {rail: extra_mw}))  # tegrastats disagrees on one rail
    from dataclasses import replace

    report = run_selftest(out_dir=tmp_path / "out", options=replace(options, only=("power",)))
    rows = {r.id: r for r in report.rows}
    assert list(rows) == [
        "power.jtop",
        "power.sysfs",
        "power.tegrastats",
        "power.nvml",
        "power.crosscheck",
    ]
    assert all(rows[f"power.{n}"].status == PASS for n in ("jtop", "sysfs", "tegrastats", "nvml"))
    cross = rows["power.crosscheck"]
    pairs = {p["pair"]: p for p in cross.evidence["pairs"]}
    assert set(pairs) == {"sysfs - jtop", "tegrastats - jtop"}
    assert pairs["sysfs - jtop"]["diff_w"] == pytest.approx(0.0)
    teg = pairs["tegrastats - jtop"]
    in_total = rail in board.rails and (rail == "VDD_IN" or "VDD_IN" not in board.rails)
    assert teg["diff_w"] == pytest.approx(extra_mw / 1000 if in_total else 0.0)
    assert teg["resolution_w"] == pytest.approx(resolution_w, abs=1e-4)
    assert teg["sampling_w"] == pytest.approx(0.0)  # constant readings: no sampling error
    if passes:
        assert cross.status == PASS, cross.reason
        assert exit_code(report) == 0
    else:
        assert cross.status == FAIL and exit_code(report) == 1
        assert f"tegrastats - jtop = +{extra_mw / 1000:.3f} W" in cross.reason


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_an_ignored_calibration_cache_fails_its_row_only(
    trt_env: TrtEnv, fake_jetson, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _board, options, _ = fake_jetson
    from dataclasses import replace

    report = run_selftest(
        out_dir=tmp_path / "out",
        options=replace(options, only=("trt.build.int8", "trt.int8.cache", "trt.build.fp16")),
        on_start=lambda c: (
            monkeypatch.setattr(trt_env.testing.config, "ignore_calibration_cache", True)
            if c.id == "trt.int8.cache"
            else None
        ),
    )
    rows = {r.id: r for r in report.rows}
    assert rows["trt.build.int8"].status == PASS
    assert rows["trt.build.fp16"].status == PASS
    cache = rows["trt.int8.cache"]
    assert cache.status == FAIL
    assert "CalibrationError" in cache.reason and "ignored" in cache.reason
    assert "Traceback" in cache.evidence["traceback"]
    # the failed build's TensorRT log comes with the row: the tensors it found no scale for
    assert "Missing scale and zero-point for tensor" in cache.evidence["log_tail"]
    assert Path(cache.evidence["log"]).is_file()
    assert exit_code(report) == 1


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_module_without_dla_skips_the_dla_rows_with_the_reason(
    trt_env: TrtEnv, fake_jetson, tmp_path: Path
) -> None:
    trt_env.testing.config.dla_cores = 0
    _board, options, _ = fake_jetson
    from dataclasses import replace

    report = run_selftest(
        out_dir=tmp_path / "out", options=replace(options, only=("trt.bench.dla-fp16",))
    )
    rows = {r.id: r for r in report.rows}
    # a prefix selects the row and its CUDA-graph twin; the build and the model come with them
    assert list(rows) == [
        "zoo.sample",
        "trt.dla.fp16",
        "trt.bench.dla-fp16",
        "trt.bench.dla-fp16.graph",
    ]
    assert rows["trt.dla.fp16"].status == SKIPPED
    assert "no DLA" in rows["trt.dla.fp16"].reason
    assert rows["trt.bench.dla-fp16"].status == SKIPPED
    assert rows["trt.bench.dla-fp16"].reason.startswith("needs trt.dla.fp16")
    assert rows["trt.bench.dla-fp16.graph"].status == SKIPPED
    assert exit_code(report) == 0
    assert json.dumps(report.to_dict())  # serialisable


@pytest.mark.slow
@pytest.mark.parametrize("trt_env", ["11.4"], indirect=True)
def test_strongly_typed_tensorrt_has_no_cache_row_to_run(
    trt_env: TrtEnv, fake_jetson, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorRT 11 removed implicit calibration: INT8 comes from a Q/DQ model made from the same
    data, so the cache row is skipped with that reason and every other TensorRT row passes."""
    _trt_double_ext.install(monkeypatch)
    _board, options, _ = fake_jetson
    from dataclasses import replace

    report = run_selftest(out_dir=tmp_path / "out", options=replace(options, only=("trt",)))
    not_passed = {r.id: r for r in report.rows if r.status != PASS}
    assert list(not_passed) == ["trt.int8.cache"]
    assert not_passed["trt.int8.cache"].status == SKIPPED
    assert "strongly typed" in not_passed["trt.int8.cache"].reason
    rows = {r.id: r for r in report.rows}
    assert rows["trt.build.int8"].evidence["precision_path"] == "strongly-typed"
    assert rows["trt.build.int8"].evidence["int8_layers"] > 0
    assert rows["trt.dla.int8"].evidence["calibration"]["source"] != "cache"
    assert exit_code(report) == 0


@pytest.mark.parametrize("trt_env", ["10.3"], indirect=True)
def test_a_second_run_into_the_same_folder_builds_again(
    trt_env: TrtEnv, fake_jetson, tmp_path: Path
) -> None:
    """An engine found up to date would prove nothing about building: every run rebuilds."""
    _board, options, _ = fake_jetson
    from dataclasses import replace

    opts = replace(options, only=("trt.build",))
    builds = trt_env.testing.calls
    for _ in range(2):
        before = builds["build_serialized_network"]
        report = run_selftest(out_dir=tmp_path / "out", options=opts)
        assert [r.status for r in report.rows] == [PASS] * 4  # zoo.sample and three builds
        assert builds["build_serialized_network"] - before == 3


def test_a_jetson_fingerprint_with_unknowns_fails_its_row(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "board", "orin-nx-16gb")
    board.path("/etc/nv_tegra_release").unlink()  # L4T (and so JetPack) cannot be read
    board.path("/var/lib/dpkg/status").unlink()
    report = run_selftest(
        out_dir=tmp_path / "out",
        options=SelftestOptions(root=str(board.root), only=("env",)),
    )
    (row,) = report.rows
    assert row.status == FAIL
    assert row.reason == "the fingerprint could not read l4t, jetpack on this Jetson"
    assert row.evidence["fingerprint"]["module_part"] == "p3767-0000"
