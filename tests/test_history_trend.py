"""Step changes over the history and the trend plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from _report_synth import make_result

from orinbench.errors import UsageError
from orinbench.history.store import HistoryRow, HistoryStore
from orinbench.history.trend import find_step_changes
from orinbench.history.view import view_history
from orinbench.report.trend_file import write_trend


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
