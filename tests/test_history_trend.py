"""Step changes over the history and the trend plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from _report_synth import make_result

from orinbench.errors import UsageError
from orinbench.history.store import HistoryRow, HistoryStore
from orinbench.history.trend import (
    find_step_changes,
    group_series,
    result_series_key,
    series_key,
)
from orinbench.history.view import view_history
from orinbench.report.trend_file import write_trend
from orinbench.results.schema import Result, runtime_settings


def _history(db: Path, medians: list[float], **kw: object) -> list[HistoryRow]:
    with HistoryStore(db) as store:
        for i, m in enumerate(medians):
            store.append(
                make_result(
                    seed=i, median_ms=m, created_utc=f"2025-02-{i + 1:02d}T08:00:00Z", **kw
                ),  # type: ignore[arg-type]
                command="bench",
            )
        return store.query()


def test_step_change_flags_the_run_where_it_began(tmp_path: Path) -> None:
    rows = _history(tmp_path / "h.db", [20.0] * 10 + [23.0] * 8)
    steps = find_step_changes(rows, "latency.p99_ms")
    assert len(steps) == 1
    s = steps[0]
    assert s.run_id == rows[10].run_id and s.index == 10
    assert s.after > s.before and 10.0 < s.delta_pct < 20.0  # 20 -> 23 ms medians is +15 %
    assert f"run {s.run_id}" in s.describe()


def test_noise_alone_flags_nothing(tmp_path: Path) -> None:
    rows = _history(tmp_path / "h.db", [20.0] * 16)
    assert find_step_changes(rows, "latency.p99_ms") == []


def test_series_are_not_mixed(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with HistoryStore(db) as store:
        # alternating FP16 and INT8 runs: very different levels, but each series is flat
        for i in range(16):
            prec, med = ("fp16", 20.0) if i % 2 == 0 else ("int8", 12.0)
            store.append(make_result(seed=i, precision=prec, median_ms=med), command="bench")
        rows = store.query()
    assert find_step_changes(rows, "latency.p99_ms") == []


def test_view_marks_steps_and_respects_filters(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _history(db, [20.0] * 8 + [24.0] * 8)
    view = view_history(db)
    assert len(view.rows) == 16 and len(view.steps) == 1
    step_id = view.steps[0].run_id
    line = next(ln for ln in view.to_text().splitlines() if ln.lstrip().startswith(f"{step_id} "))
    assert "step +" in line
    assert view.to_dict()["runs"][8]["step_change"]["run_id"] == step_id
    assert view_history(db, precision="int8").rows == ()
    missing = view_history(tmp_path / "none.db")
    assert not missing.exists and "no history yet" in missing.to_text()
    assert not (tmp_path / "none.db").exists()  # listing never creates a database


def test_write_trend_png_and_html(tmp_path: Path) -> None:
    rows = _history(tmp_path / "h.db", [20.0] * 8 + [24.0] * 8)
    png = write_trend(tmp_path / "t.png", rows, "latency.p99_ms")
    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 200 and float(np.std(img[..., :3])) > 0.05
    page = write_trend(tmp_path / "t.html", rows, "latency.p99_ms").read_text()
    assert 'data-plot="trend"' in page and "data:image/png;base64," in page
    assert "step change in latency.p99_ms" in page


def test_write_trend_errors(tmp_path: Path) -> None:
    rows = _history(tmp_path / "h.db", [20.0] * 4)
    with pytest.raises(UsageError, match="suffix"):
        write_trend(tmp_path / "t.jpg", rows, "latency.p99_ms")
    with pytest.raises(UsageError, match="no run in the selection has the metric"):
        write_trend(tmp_path / "t.png", rows, "latency.p77_ms")
    assert not (tmp_path / "t.png").exists()


def _ort(
    result: Result, threads: int | None, shapes: dict[str, tuple[int, ...]] | None = None
) -> Result:
    """``result`` as an ONNX Runtime run on ``threads`` intra-op threads (None: unknown)."""
    runtime = (
        runtime_settings("onnxruntime", intra_op_threads=threads) if threads is not None else None
    )
    cfg = replace(
        result.config,
        backend="onnxruntime",
        runtime=runtime,
        shapes=shapes if shapes is not None else {"images": (1, 6, 3, 256, 704)},
    )
    env = replace(result.environment, backend="onnxruntime")
    return result.with_(config=cfg, environment=env)


def _ort_history(db: Path, runs: list[tuple[int | None, float]]) -> list[HistoryRow]:
    with HistoryStore(db) as store:
        for i, (threads, median) in enumerate(runs):
            r = make_result(seed=i, median_ms=median, created_utc=f"2025-03-{i + 1:02d}T08:00:00Z")
            store.append(_ort(r, threads), command="bench")
        return store.query()


def test_a_thread_count_change_is_a_new_series_not_a_step(tmp_path: Path) -> None:
    # FINDINGS-g 2: 4 runs on 1 thread then 4 on 2 threads; the gate refuses to compare them
    db = tmp_path / "h.db"
    rows = _ort_history(db, [(1, 4.0)] * 4 + [(2, 2.0)] * 4)
    groups = group_series(rows, "latency.p50_ms")
    assert sorted(len(g) for g in groups.values()) == [4, 4]
    assert {k.threads for k in groups} == {"1", "2"}
    assert all("threads" in k.label and "CPUExecutionProvider" in k.label for k in groups)
    assert find_step_changes(rows, "latency.p50_ms") == []
    assert "no step change in latency.p50_ms" in view_history(db, metric="latency.p50_ms").to_text()


def test_same_runtime_settings_stay_one_series(tmp_path: Path) -> None:
    rows = _ort_history(tmp_path / "h.db", [(2, 20.0)] * 8 + [(2, 24.0)] * 8)
    assert len(group_series(rows, "latency.p99_ms")) == 1
    steps = find_step_changes(rows, "latency.p99_ms")
    assert len(steps) == 1 and steps[0].run_id == rows[8].run_id
    assert "threads 2" in steps[0].describe()


def test_unknown_runtime_does_not_join_a_known_one(tmp_path: Path) -> None:
    # an ONNX Runtime result upgraded from schema v1 has runtime null: unknown, as in the gate
    rows = _ort_history(tmp_path / "h.db", [(None, 4.0)] * 4 + [(1, 2.0)] * 4)
    groups = group_series(rows, "latency.p50_ms")
    assert sorted((k.threads, len(g)) for k, g in groups.items()) == [("1", 4), ("unknown", 4)]
    assert any("providers unknown" in k.label for k in groups)
    assert find_step_changes(rows, "latency.p50_ms") == []


def test_result_key_matches_its_history_row(tmp_path: Path) -> None:
    # report --trend picks the rows whose series_key equals the result's own key
    results = [_ort(make_result(seed=1), t) for t in (1, 2, None)] + [make_result(seed=2)]
    with HistoryStore(tmp_path / "h.db") as store:
        for r in results:
            store.append(r, command="bench")
        rows = store.query()
    assert [series_key(row) for row in rows] == [result_series_key(r) for r in results]
    assert len({result_series_key(r) for r in results}) == 4


def _v1_row(summary: dict[str, object], run_id: int = 1) -> HistoryRow:
    return HistoryRow(
        run_id=run_id,
        recorded_utc="2024-01-01T00:00:00Z",
        created_utc="2024-01-01T00:00:00Z",
        command="bench",
        device="dev",
        model="m",
        model_sha256="0" * 64,
        precision="fp32",
        backend=str((summary.get("config") or {}).get("backend", "")),  # type: ignore[union-attr]
        host="h",
        tool_version="0.0.1",
        source_path=None,
        metrics={"latency.p50_ms": 1.0},
        summary=summary,
    )


def test_rows_recorded_in_schema_v1_read_as_the_gate_reads_them() -> None:
    # an older orinbench stored v1 results (no config.runtime) in the history: the key is computed
    # on read from the upgraded result, so no migration of the database is needed
    trt = make_result(seed=3)
    v2 = trt.with_(config=replace(trt.config, runtime={})).to_dict()
    v1_config = {k: v for k, v in v2["config"].items() if k != "runtime"}
    v1 = {**v2, "schema_version": 1, "config": v1_config}
    # TensorRT has no such settings: a v1 and a v2 run are one series
    assert series_key(_v1_row(v1)) == series_key(_v1_row(v2))
    assert series_key(_v1_row(v1)).label.count("threads") == 0
    # ONNX Runtime v1: the settings are unknown, a series of their own
    ort_v1 = series_key(_v1_row({**v1, "config": {**v1_config, "backend": "onnxruntime"}}))
    assert (ort_v1.providers, ort_v1.threads) == ("unknown", "unknown")
    unreadable = series_key(_v1_row({"config": {"backend": "onnxruntime"}}))
    assert (unreadable.shapes, unreadable.providers, unreadable.threads) == ("unknown",) * 3
