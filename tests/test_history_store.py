"""The SQLite run history: append, query, paths, locked and corrupt databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _report_synth import make_result
from _unprivileged import assert_cannot_write, run_python

from orinbench.errors import ExitCode, HistoryError
from orinbench.history.store import (
    HistoryRecoveredError,
    HistoryStore,
    append_to_history,
    default_history_path,
    salvage_rows,
)
from orinbench.results.io import load_result, save_result


def _fill(db: Path, n: int, **kw: object) -> None:
    with HistoryStore(db) as store:
        for i in range(n):
            store.append(make_result(seed=i, **kw), command="bench")  # type: ignore[arg-type]


def test_append_and_query_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    r = make_result(seed=3, median_ms=17.0, stages=True)
    with HistoryStore(db) as store:
        run_id = store.append(r, command="bench", source_path="out/r.json")
        row = store.get(run_id)
    assert row.command == "bench"
    assert row.device == "NVIDIA Jetson AGX Orin 64GB"
    assert row.model == "bevfusion_tiny" and row.precision == "fp16" and row.backend == "tensorrt"
    assert row.source_path == "out/r.json"
    assert row.metric("latency.p99_ms") == pytest.approx(r.metrics()["latency.p99_ms"])
    assert row.metric("stages.backbone.latency.p50_ms") == pytest.approx(
        r.metrics()["stages.backbone.latency.p50_ms"]
    )
    # the stored summary drops the bulky raw series but keeps the rest of the result
    assert row.summary["samples"] == {}
    assert "trace" not in row.summary["power"]
    assert row.summary["model"]["name"] == "bevfusion_tiny"


def test_query_filters_and_limit(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with HistoryStore(db) as store:
        for i in range(4):
            store.append(make_result(seed=i), command="bench")
        store.append(make_result(seed=9, precision="int8"), command="demo")
        store.append(make_result(seed=10, module=None, model="pointpillars"), command="run")
        assert store.count() == 6
        assert [r.run_id for r in store.query()] == [1, 2, 3, 4, 5, 6]
        assert [r.run_id for r in store.query(limit=2)] == [5, 6]  # the most recent, oldest first
        assert [r.run_id for r in store.query(precision="INT8")] == [5]
        assert [r.run_id for r in store.query(device="agx orin")] == [1, 2, 3, 4, 5]
        # without a Jetson fingerprint the device is the CPU name
        assert [r.device for r in store.query(model="pillars")] == ["ARMv8 Processor rev 1 (v8l)"]
        assert [r.run_id for r in store.query(command="demo")] == [5]
        assert store.query(device="50%_") == []  # LIKE wildcards in the filter are literal
        with pytest.raises(HistoryError):
            store.query(limit=0)


def test_default_path_honours_env_and_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ORINBENCH_HISTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_history_path() == tmp_path / "xdg" / "orinbench" / "history.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_history_path() == tmp_path / "home" / ".local/share/orinbench/history.db"
    monkeypatch.setenv("ORINBENCH_HISTORY", str(tmp_path / "mine.db"))
    assert default_history_path() == tmp_path / "mine.db"


def test_history_off_skips_implicit_appends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORINBENCH_HISTORY", "off")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert append_to_history(make_result(), command="bench") is None
    assert not (tmp_path / "orinbench").exists()
    # an explicit path still records
    assert append_to_history(make_result(), command="bench", path=tmp_path / "x.db") is None
    with HistoryStore(tmp_path / "x.db") as store:
        assert store.count() == 1


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    before = db.read_bytes()
    with pytest.raises(HistoryError, match="not an orinbench history") as exc, HistoryStore(db):
        pass
    assert exc.value.exit_code == ExitCode.USAGE
    assert db.read_bytes() == before


def test_newer_format_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _fill(db, 1)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE orinbench_meta SET value = '99' WHERE key = 'version'")
    with pytest.raises(HistoryError, match="newer"), HistoryStore(db):
        pass


def test_locked_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _fill(db, 2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="is locked") as exc, HistoryStore(db, timeout_s=0.1):
            pass
        assert exc.value.exit_code == ExitCode.USAGE
        note = append_to_history(make_result(), command="bench", path=db, timeout_s=0.1)
        assert note is not None and "locked" in note and "not recorded" in note
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with HistoryStore(db) as store:
        assert store.count() == 2  # nothing was half-written while locked


def _damage_pages(db: Path, pages: range, page_size: int = 4096) -> None:
    data = bytearray(db.read_bytes())
    for p in pages:
        data[p * page_size : (p + 1) * page_size] = bytes([0xA5]) * page_size
    db.write_bytes(bytes(data))


def test_corrupt_database_is_moved_aside_and_rows_recovered(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    _fill(db, 60)
    n_pages = db.stat().st_size // 4096
    _damage_pages(db, range(n_pages // 2, n_pages // 2 + 1))
    damaged = db.read_bytes()
    with pytest.raises(HistoryRecoveredError) as exc, HistoryStore(db):
        pass
    err = exc.value
    assert err.exit_code == ExitCode.USAGE
    assert err.backup.name.startswith("history.db.corrupt-") and err.backup.exists()
    assert err.backup.read_bytes() == damaged  # the damaged file is kept byte for byte
    assert str(err.backup) in str(err) and f"recovered {err.recovered} run" in str(err)
    assert 0 < err.recovered < 60  # one page of rows is lost, the rest are back
    with HistoryStore(db) as store:
        rows = store.query()
    assert len(rows) == err.recovered
    # recovered rows keep their ids and decode; ids from both sides of the damage survive
    ids = [r.run_id for r in rows]
    assert ids == sorted(ids) and ids[0] == 1 and ids[-1] == 60
    assert all(r.metric("latency.p99_ms") for r in rows)


def test_garbage_after_the_sqlite_header_is_backed_up_and_replaced(tmp_path: Path) -> None:
    # an SQLite file whose every page is destroyed; a file that is not SQLite at all is refused
    # and left as it was (tests/test_outputs_hidden_inputs.py)
    db = tmp_path / "history.db"
    db.write_bytes(b"SQLite format 3\x00" + b"this is not sqlite " * 300)
    note = append_to_history(make_result(), command="gate", path=db)
    assert note is not None
    assert "corrupt" in note and "recovered 0 run(s)" in note and "recorded this run" in note
    backups = list(tmp_path.glob("history.db.corrupt-*"))
    assert len(backups) == 1 and b"this is not sqlite" in backups[0].read_bytes()
    with HistoryStore(db) as store:
        assert [r.command for r in store.query()] == ["gate"]


def test_salvage_reads_a_healthy_file_completely(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _fill(db, 5)
    assert [r[0] for r in salvage_rows(db)] == [1, 2, 3, 4, 5]


def test_history_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="not a file"), HistoryStore(tmp_path):
        pass
    note = append_to_history(make_result(), command="bench", path=tmp_path)
    assert note is not None and "not recorded" in note


_APPEND = """\
import sys
from orinbench.history.store import append_to_history
from orinbench.results.io import load_result
note = append_to_history(load_result(sys.argv[1]), command="bench", path=sys.argv[2])
print(note)
"""


def test_unwritable_folder_gives_a_warning_not_a_crash(tmp_path: Path) -> None:
    # in a subprocess that root's permission override does not reach (CI runs as root)
    result = save_result(make_result(), tmp_path / "r.json")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_cannot_write(ro)
        proc = run_python(["-c", _APPEND, str(result), str(ro / "h.db")])
    finally:
        ro.chmod(0o700)
    assert proc.returncode == 0, proc.stderr
    assert "not recorded" in proc.stdout
    assert list(ro.iterdir()) == []


def test_same_measurement_is_recorded_once(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    r = make_result(seed=1)
    with HistoryStore(db) as store:
        first = store.append(r, command="bench")
        # gate judges the same result later, loaded back from its JSON file
        save_result(r, tmp_path / "r.json")
        again = store.append(load_result(tmp_path / "r.json"), command="gate")
        twice = store.append(r, command="gate")
        other = store.append(make_result(seed=2), command="gate")
        rows = store.query()
        assert first == again == twice and other != first
        assert [row.command for row in rows] == ["bench+gate", "gate"]
        assert rows[0].commands == ("bench", "gate")
        assert [row.run_id for row in store.query(command="gate")] == [first, other]
        assert [row.run_id for row in store.query(command="bench")] == [first]
        assert store.query(command="ben") == []
        with pytest.raises(HistoryError):
            store.append(r, command="a+b")
