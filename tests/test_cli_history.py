"""``orinbench history`` end to end: listing, filters, JSON, plots, locked and corrupt databases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from _report_synth import make_result

from orinbench.history.store import HistoryStore

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.db"
    with HistoryStore(path) as store:
        for i in range(14):
            store.append(
                make_result(
                    seed=i,
                    median_ms=20.0 if i < 7 else 23.0,
                    created_utc=f"2025-03-{i + 1:02d}T09:00:00Z",
                ),
                command="bench",
            )
        store.append(make_result(seed=40, precision="int8", median_ms=12.0), command="demo")
        store.append(
            make_result(seed=41, model="pointpillars", module="NVIDIA Jetson Orin Nano 8GB"),
            command="run",
        )
    return path


def test_lists_runs_and_flags_the_step(run_cli: Run, db: Path) -> None:
    code, out, err = run_cli("history", "--history", str(db))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "created", "(UTC)"]
    body = [ln for ln in lines[2:] if ln.split() and ln.split()[0].isdigit() and "run(s)" not in ln]
    assert len(body) == 16
    flagged = [ln for ln in body if "<- step" in ln]
    assert len(flagged) == 1 and flagged[0].split()[0] == "8"  # run 8 began the 20 -> 23 ms step
    assert "16 run(s)" in out and "step change in latency.p99_ms at run 8" in out


def test_filters(run_cli: Run, db: Path) -> None:
    code, out, _ = run_cli("history", "--history", str(db), "--precision", "int8", "--json")
    assert code == 0
    runs = json.loads(out)["runs"]
    assert [r["precision"] for r in runs] == ["int8"] and runs[0]["command"] == "demo"
    code, out, _ = run_cli("history", "--history", str(db), "--device", "nano", "--json")
    assert [r["model"] for r in json.loads(out)["runs"]] == ["pointpillars"]
    code, out, _ = run_cli(
        "history", "--history", str(db), "--model", "bevfusion", "--limit", "3", "--json"
    )
    assert [r["id"] for r in json.loads(out)["runs"]] == [13, 14, 15]
    code, out, _ = run_cli("history", "--history", str(db), "--command", "run", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [16]


def test_json_marks_the_step_change(run_cli: Run, db: Path) -> None:
    code, out, _ = run_cli("history", "--history", str(db), "--json", "--metric", "latency.p50_ms")
    assert code == 0
    data = json.loads(out)
    assert data["metric"] == "latency.p50_ms"
    flagged = [r["id"] for r in data["runs"] if r["step_change"]]
    assert flagged == [8]
    assert data["step_changes"][0]["delta_pct"] > 10.0


def test_plot_png_and_html(run_cli: Run, db: Path, tmp_path: Path) -> None:
    png = tmp_path / "trend.png"
    code, out, err = run_cli(
        "history", "--history", str(db), "--plot", "throughput.fps", "--out", str(png)
    )
    assert code == 0, err
    assert png.read_bytes().startswith(b"\x89PNG") and "written to" in out
    page = tmp_path / "trend.html"
    code, _, err = run_cli(
        "history",
        "--history",
        str(db),
        "--model",
        "bevfusion",
        "--precision",
        "fp16",
        "--plot",
        "latency.p99_ms",
        "--out",
        str(page),
    )
    assert code == 0, err
    assert "data:image/png;base64," in page.read_text() and "run 8" in page.read_text()


def test_usage_errors_exit_2(run_cli: Run, db: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("history", "--history", str(db), "--plot", "latency.p99_ms")
    assert code == 2 and "--out" in err
    code, _, err = run_cli(
        "history", "--history", str(db), "--plot", "nope.metric", "--out", str(tmp_path / "t.png")
    )
    assert code == 2 and "no run in the selection has the metric 'nope.metric'" in err
    code, _, err = run_cli("history", "--history", str(db), "--limit", "0")
    assert code == 2
    code, _, err = run_cli(
        "history",
        "--history",
        str(db),
        "--plot",
        "latency.p99_ms",
        "--out",
        str(tmp_path / "t.gif"),
    )
    assert code == 2 and "trend.png or trend.html" in err
    assert "Traceback" not in err


def test_missing_database_is_not_an_error(run_cli: Run, tmp_path: Path) -> None:
    code, out, _ = run_cli("history", "--history", str(tmp_path / "none.db"))
    assert code == 0 and "no history yet" in out
    assert not (tmp_path / "none.db").exists()


def test_default_path_from_environment(
    run_cli: Run, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORINBENCH_HISTORY", str(db))
    code, out, _ = run_cli("history", "--json")
    assert code == 0 and len(json.loads(out)["runs"]) == 16


def test_locked_database_exits_2(run_cli: Run, db: Path) -> None:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = run_cli("history", "--history", str(db), "--lock-timeout", "0.1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    assert err.count("\n") == 1 and "is locked" in err and "Fix:" in err


def test_corrupt_database_exits_2_then_keeps_its_runs(run_cli: Run, db: Path) -> None:
    data = bytearray(db.read_bytes())
    page = 4096
    mid = len(data) // page // 2
    data[mid * page : (mid + 1) * page] = b"\xff" * page
    db.write_bytes(bytes(data))
    code, _, err = run_cli("history", "--history", str(db))
    assert code == 2
    assert "was corrupt" in err and ".corrupt-" in err and "recovered" in err
    backups = list(db.parent.glob("history.db.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == bytes(data)
    code, out, _ = run_cli("history", "--history", str(db), "--json")
    assert code == 0
    recovered = int(err.split("recovered ")[1].split(" ")[0])
    assert len(json.loads(out)["runs"]) == recovered > 0
