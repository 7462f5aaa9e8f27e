"""The history trend written to a file: a PNG, or a self-contained HTML page."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_text
from ..errors import UsageError
from ..history.store import HistoryRow
from ..history.trend import DEFAULT_METRIC, StepChange, find_step_changes
from .html import standalone_plot_page
from .trend import trend_plot


def write_trend(
    path: str | os.PathLike[str],
    rows: Sequence[HistoryRow],
    metric: str = DEFAULT_METRIC,
    *,
    steps: Sequence[StepChange] | None = None,
) -> Path:
    """Write the trend plot to ``path``: ``.png``, or ``.html`` (a self-contained page)."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise UsageError(
            f"cannot tell the format of {target} from its suffix",
            fix="name the output trend.png or trend.html",
        )
    if steps is None:
        steps = find_step_changes(rows, metric)
    plot = trend_plot(rows, metric, steps=steps)
    if suffix == ".png":
        return atomic_write_bytes(target, plot.png)
    notes = [s.describe() for s in steps]
    return atomic_write_text(target, standalone_plot_page(plot, notes=notes))
