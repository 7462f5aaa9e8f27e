"""Trends over the history: one series per device/model/precision/backend/input shapes, and its
step changes.

Runs of different devices, models, precisions, backends or input shapes are never mixed into one
series: a step between an FP16 and an INT8 run, or between a 160x160 and a 320x320 run, is not
a regression. A run whose shapes are unknown forms its own series (shapes ``unknown``).

Within a series, the change-point test of :func:`orinbench.bench.stats.change_points` (binary
segmentation on a standardised CUSUM statistic, noise from the first differences) finds the runs
where a step change of the mean began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..bench.stats import CHANGE_POINT_THRESHOLD, change_points
from ..results.comparable import UNKNOWN, format_shapes
from ..results.schema import Result
from .store import HistoryRow, device_label, model_label

#: the metric shown and checked when none is named
DEFAULT_METRIC = "latency.p99_ms"
#: fewest runs on each side of a step (the change-point test's ``min_size``)
DEFAULT_MIN_RUNS = 3


@dataclass(frozen=True, order=True)
class SeriesKey:
    """What must be equal for two runs to belong to one trend."""

    device: str
    model: str
    precision: str
    backend: str
    shapes: str = UNKNOWN

    @property
    def label(self) -> str:
        return f"{self.model} · {self.shapes} · {self.precision} · {self.backend} · {self.device}"


@dataclass(frozen=True)
class StepChange:
    """A step change of ``metric`` in one series, beginning at run ``run_id``.

    ``before`` and ``after`` are the means of the segments on each side of the step (each segment
    runs to the neighbouring step or to the end of the series).
    """

    series: SeriesKey
    metric: str
    run_id: int
    index: int
    before: float
    after: float

    @property
    def delta_pct(self) -> float:
        return (self.after - self.before) / self.before * 100.0 if self.before else float("nan")

    def describe(self) -> str:
        return (
            f"step change in {self.metric} at run {self.run_id} ({self.series.label}): "
            f"{self.before:.4g} -> {self.after:.4g} ({self.delta_pct:+.1f}%)"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "metric": self.metric,
            "series": self.series.label,
            "before": self.before,
            "after": self.after,
            "delta_pct": self.delta_pct,
        }


def series_key(row: HistoryRow) -> SeriesKey:
    config = row.summary.get("config") if isinstance(row.summary, Mapping) else None
    shapes = config.get("shapes") if isinstance(config, Mapping) else None
    return SeriesKey(
        row.device,
        row.model,
        row.precision,
        row.backend,
        format_shapes(shapes if isinstance(shapes, Mapping) else None),
    )


def result_series_key(result: Result) -> SeriesKey:
    """The series a result would join, as :func:`series_key` gives it for its history row."""
    return SeriesKey(
        device_label(result),
        model_label(result),
        result.config.precision,
        result.environment.backend,
        format_shapes(result.config.shapes),
    )


def group_series(rows: Sequence[HistoryRow], metric: str) -> dict[SeriesKey, list[HistoryRow]]:
    """Rows that have ``metric``, grouped by :class:`SeriesKey`, each group in the rows' order."""
    out: dict[SeriesKey, list[HistoryRow]] = {}
    for r in rows:
        if r.metric(metric) is not None:
            out.setdefault(series_key(r), []).append(r)
    return out


def find_step_changes(
    rows: Sequence[HistoryRow],
    metric: str = DEFAULT_METRIC,
    *,
    min_runs: int = DEFAULT_MIN_RUNS,
    threshold: float = CHANGE_POINT_THRESHOLD,
) -> list[StepChange]:
    """Every step change of ``metric`` in each series of ``rows`` (which must be oldest first)."""
    found: list[StepChange] = []
    for key, group in sorted(group_series(rows, metric).items()):
        values = np.array([r.metric(metric) for r in group], dtype=float)
        steps = change_points(values, min_size=min_runs, threshold=threshold)
        bounds = [0, *steps, values.size]
        for i, s in enumerate(steps, start=1):
            found.append(
                StepChange(
                    series=key,
                    metric=metric,
                    run_id=group[s].run_id,
                    index=s,
                    before=float(values[bounds[i - 1] : s].mean()),
                    after=float(values[s : bounds[i + 1]].mean()),
                )
            )
    return found
