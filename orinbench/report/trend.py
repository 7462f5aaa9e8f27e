"""The history trend drawn: one metric over runs, with its step changes marked.

Rendering lives here, above ``history/`` (which stores runs and finds step changes) so that the
import graph runs one way: report -> history, never back.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from ..history.store import HistoryRow
from ..history.trend import DEFAULT_METRIC, StepChange, find_step_changes, group_series
from .plots import Plot, TrendLine, parse_time, trend


def trend_plot(
    rows: Sequence[HistoryRow],
    metric: str = DEFAULT_METRIC,
    *,
    steps: Sequence[StepChange] | None = None,
    title: str | None = None,
) -> Plot:
    """The trend of ``metric`` as a PNG plot (needs matplotlib: the ``report`` extra)."""
    groups = group_series(rows, metric)
    if not groups:
        have = sorted({m for r in rows for m in r.metrics})
        hint = ", ".join(have[:8]) + (" ..." if len(have) > 8 else "")
        raise UsageError(
            f"no run in the selection has the metric '{metric}'",
            fix=f"choose one of: {hint}" if have else "record runs first (orinbench bench ...)",
        )
    if steps is None:
        steps = find_step_changes(rows, metric)
    lines = []
    for key, group in sorted(groups.items()):
        idx = {r.run_id: i for i, r in enumerate(group)}
        lines.append(
            TrendLine(
                label=key.label,
                times=[parse_time(r.created_utc) or parse_time(r.recorded_utc) for r in group],
                values=[float(r.metric(metric) or 0.0) for r in group],
                run_ids=[r.run_id for r in group],
                steps=sorted(idx[s.run_id] for s in steps if s.series == key and s.run_id in idx),
            )
        )
    return trend(lines, metric=metric, key="trend", title=title or f"{metric} over runs")
