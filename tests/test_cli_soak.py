"""``orinbench soak`` through the real CLI: a short ONNX Runtime soak, targets on soak metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from orinbench.zoo.sample_bev import export_sample_bev

RunCli = Callable[..., tuple[int, str, str]]


def test_short_real_soak_writes_windows_and_gates_on_soak_metrics(
    tmp_path: Path, run_cli: RunCli
) -> None:
    model = export_sample_bev(tmp_path / "bev.onnx", "tiny")
    out = tmp_path / "soak.json"
    code, stdout, stderr = run_cli(
        "soak",
        str(model),
        "--seconds",
        "0.9",
        "--window-s",
        "0.3",
        "--warmup",
        "0.1",
        "--power",
        "none",
        "--out",
        str(out),
        "--no-history",
    )
    assert code == 0, stderr
    assert "P99 drift" in stdout and "throttle events" in stdout
    assert stderr.count("soak: window") == 3
    data = json.loads(out.read_text())
    soak = data["extra"]["soak"]
    assert soak["window_count"] == 3
    assert [w["index"] for w in soak["windows"]] == [0, 1, 2]
    assert all(w["iterations"] > 0 and w["p99_ms"] >= w["p50_ms"] > 0 for w in soak["windows"])
    assert isinstance(soak["p99_drift_pct"], float)
    assert data["config"]["stop"] == {
        "kind": "soak",
        "duration_s": 0.9,
        "window_s": 0.3,
        "windows": 3,
    }

    ok = tmp_path / "ok.toml"
    ok.write_text('[targets]\n"soak.p99_drift_pct" = "< 100000"\n')
    code, stdout, stderr = run_cli("gate", str(out), "--targets", str(ok), "--no-history")
    assert code == 0, stdout + stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[targets]\n"soak.p99_drift_pct" = "< -100000"\n')
    code, stdout, _ = run_cli("gate", str(out), "--targets", str(bad), "--no-history")
    assert code == 1 and "soak.p99_drift_pct" in stdout


def test_soak_shorter_than_a_window_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, run_cli: RunCli, conv_model: Path
) -> None:
    out = tmp_path / "r.json"
    code, stdout, stderr = run_cli(
        "soak",
        str(conv_model),
        "--seconds",
        "5",
        "--window-s",
        "10",
        "--power",
        "none",
        "--out",
        str(out),
        "--no-history",
    )
    assert code == 2
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "shorter than one window" in lines[0], stderr
    assert "Traceback" not in stderr and not out.exists() and stdout == ""


def test_soak_needs_a_length(run_cli: RunCli, conv_model: Path) -> None:
    code, _, stderr = run_cli("soak", str(conv_model), "--power", "none")
    assert code == 2 and "--minutes" in stderr


def test_soak_without_clock_or_thermal_readings_cannot_pass_a_throttle_target(
    tmp_path: Path, run_cli: RunCli, conv_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as on a machine without Jetson sysfs or NVML: no conditions monitor can read anything
    monkeypatch.setattr("orinbench.telemetry.conditions._nvml_usable", lambda: False)
    monkeypatch.setattr("orinbench.telemetry.conditions.is_jetson", lambda root="/": False)
    out = tmp_path / "soak.json"
    code, stdout, stderr = run_cli(
        "soak", str(conv_model), "--seconds", "0.4", "--window-s", "0.2", "--warmup", "0",
        "--power", "none", "--out", str(out), "--no-history",
    )  # fmt: skip
    assert code == 0, stderr
    assert "throttle events    not monitored" in stdout
    data = json.loads(out.read_text())
    assert data["extra"].get("conditions") is None
    assert data["extra"]["soak"]["throttle_events"] is None
    targets = tmp_path / "t.toml"
    targets.write_text('[targets]\n"soak.throttle_events" = "<= 0"\n')
    code, stdout, stderr = run_cli("gate", str(out), "--targets", str(targets), "--no-history")
    assert code == 2, stdout + stderr
    row = next(ln for ln in stdout.splitlines() if ln.startswith("soak.throttle_events"))
    assert "ERROR" in row and "pass" not in row
