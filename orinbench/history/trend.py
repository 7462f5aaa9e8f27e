"""Trends over the history: one series per device/model/precision/backend and run settings, and
its step changes.

Runs of different devices, models, precisions or backends are never mixed into one series, nor
runs that differ in a key the gate treats as making two runs incomparable
(:data:`~orinbench.results.comparable.RUN_KEYS`: input shapes, ONNX Runtime providers and
intra-op threads): a step between an FP16 and an INT8 run, a 160x160 and a 320x320 run, or a run
on 1 thread and one on 2, is not a regression. As in the gate, unknown differs from known: a run
whose shapes or runtime settings are unknown (an ONNX Runtime result upgraded from schema v1)
forms its own series (``unknown``) rather than joining one whose settings are known.

Within a series, the change-point test of :func:`orinbench.bench.stats.change_points` (binary
segmentation on a standardised CUSUM statistic, noise from the first differences) finds the runs
where a step change of the mean began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bench.stats import CHANGE_POINT_THRESHOLD, change_points
from ..results.comparable import RUN_KEYS, UNKNOWN, run_values
from ..results.comparable import _show as show_run_value
from ..results.schema import Result
from ..results.upgrade import upgrade
from .store import HistoryRow, device_label, model_label

#: the metric shown and checked when none is named
DEFAULT_METRIC = "latency.p99_ms"
#: fewest runs on each side of a step (the change-point test's ``min_size``)
DEFAULT_MIN_RUNS = 3


#: how :func:`~orinbench.results.comparable.run_values` marks settings a backend does not have
_NOT_APPLICABLE = "n/a"


@dataclass(frozen=True, order=True)
class SeriesKey:
    """What must be equal for two runs to belong to one trend."""

    device: str
    model: str
    precision: str
    backend: str
    shapes: str = UNKNOWN
    providers: str = UNKNOWN
    threads: str = UNKNOWN

    @property
    def label(self) -> str:
        parts = [self.model, self.shapes, self.precision, self.backend]
        if (self.providers, self.threads) != (_NOT_APPLICABLE, _NOT_APPLICABLE):
            providers = self.providers if self.providers != UNKNOWN else "providers unknown"
            parts += [providers, f"threads {self.threads}"]
        return " · ".join([*parts, self.device])


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


def _run_key(values: Mapping[str, Any]) -> tuple[str, str, str]:
    """The run keys as shown by the gate; two runs share them exactly when the gate compares them
    (the shown form is one-to-one, and ``unknown`` is not any known value)."""
    shapes, providers, threads = (show_run_value(k, values[k]) for k in RUN_KEYS)
    return shapes, providers, threads


def _row_run_values(row: HistoryRow) -> dict[str, Any]:
    """:func:`run_values` of the result stored in ``row``.

    The row keeps the whole result (raw samples left out) as it was when recorded, possibly in an
    older schema: it is upgraded as a result file would be, so a v1 ONNX Runtime run reads as
    runtime unknown and a v1 TensorRT run as not applicable, exactly as the gate sees them. A row
    whose stored result cannot be read has every key unknown.
    """
    summary = row.summary
    if isinstance(summary, Mapping) and summary:
        try:
            return run_values(Result.from_dict(upgrade(dict(summary))))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return dict.fromkeys(RUN_KEYS)


def series_key(row: HistoryRow) -> SeriesKey:
    return SeriesKey(
        row.device, row.model, row.precision, row.backend, *_run_key(_row_run_values(row))
    )


def result_series_key(result: Result) -> SeriesKey:
    """The series a result would join, as :func:`series_key` gives it for its history row."""
    return SeriesKey(
        device_label(result),
        model_label(result),
        result.config.precision,
        result.environment.backend,
        *_run_key(run_values(result)),
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
