"""Assemble a report: results, their gate verdicts, the baseline, and optionally the history trend.

:func:`build_report` works on loaded objects; :func:`report_files` is the whole ``orinbench
report`` flow on file paths (load, gate, render, write atomically). Rendering lives in
``html.py`` (needs matplotlib) and ``markdown.py`` (needs nothing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from .._io import atomic_write_text
from ..errors import IncomparableError, UsageError
from ..gate import GateReport, Targets, find_baseline, gate, load_targets
from ..history.store import (
    HistoryRow,
    HistoryStore,
    default_history_path,
)
from ..history.trend import (
    DEFAULT_METRIC,
    SeriesKey,
    StepChange,
    find_step_changes,
    result_series_key,
    series_key,
)
from ..results.io import load_result
from ..results.schema import Result

#: how many of the most recent matching runs the trend section shows
TREND_RUNS = 200


@dataclass(frozen=True)
class ReportEntry:
    """One result in the report and, when targets or a baseline were given, its verdicts.

    ``gate_error`` holds the message when the gate refused to compare (incomparable environments);
    the report still shows the result, with that message in place of the verdict table.
    """

    name: str
    result: Result
    gate: GateReport | None = None
    gate_error: str | None = None


@dataclass(frozen=True)
class Report:
    """Everything one report page shows. Render with :meth:`to_html` or :meth:`to_markdown`."""

    title: str
    entries: tuple[ReportEntry, ...]
    baseline: Result | None = None
    baseline_name: str | None = None
    targets_source: str | None = None
    trend_rows: tuple[HistoryRow, ...] = ()
    trend_metric: str = DEFAULT_METRIC
    steps: tuple[StepChange, ...] = ()
    trend_requested: bool = False
    generated_utc: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    )
    tool_version: str = __version__

    @property
    def gated(self) -> bool:
        return any(e.gate is not None or e.gate_error for e in self.entries)

    def to_html(self) -> str:
        """A self-contained HTML page (plots as embedded PNGs). Needs matplotlib."""
        from .html import render_html

        return render_html(self)

    def to_markdown(self) -> str:
        """A Markdown summary (no plots) for CI summaries and pull-request comments."""
        from .markdown import render_markdown

        return render_markdown(self)


def build_report(
    results: Sequence[Result],
    *,
    names: Sequence[str] | None = None,
    baseline: Result | None = None,
    baseline_name: str | None = None,
    targets: Targets | None = None,
    tolerances: Mapping[str, float] | None = None,
    allow_env_mismatch: bool = False,
    inconclusive_ok: bool = False,
    history_rows: Sequence[HistoryRow] | None = None,
    trend_metric: str = DEFAULT_METRIC,
    title: str | None = None,
) -> Report:
    """Gate each result (when ``targets`` or ``baseline`` is given) and collect the report.

    ``history_rows`` are filtered to the runs of the first result's device, model, precision and
    backend (the last :data:`TREND_RUNS` of them), and their step changes found.
    """
    if not results:
        raise UsageError("no result to report on", fix="pass at least one RESULT.json")
    if names is not None and len(names) != len(results):
        raise UsageError("names and results differ in length", fix="give one name per result")
    labels = (
        list(names) if names is not None else [_default_name(r, i) for i, r in enumerate(results)]
    )
    entries = []
    for name, res in zip(labels, results, strict=True):
        verdicts: GateReport | None = None
        error: str | None = None
        if targets is not None or baseline is not None:
            try:
                verdicts = gate(
                    res,
                    targets=targets,
                    baseline=baseline,
                    allow_env_mismatch=allow_env_mismatch,
                    tolerances=tolerances,
                    inconclusive_ok=inconclusive_ok,
                )
            except IncomparableError as exc:
                # a page that says why it could not compare helps more than no page at all
                error = str(exc)
        entries.append(ReportEntry(name=name, result=res, gate=verdicts, gate_error=error))
    trend_rows: tuple[HistoryRow, ...] = ()
    steps: tuple[StepChange, ...] = ()
    if history_rows:
        key = _result_series_key(results[0])
        same = [r for r in history_rows if series_key(r) == key]
        trend_rows = tuple(same[-TREND_RUNS:])
        steps = tuple(find_step_changes(trend_rows, trend_metric)) if trend_rows else ()
    return Report(
        title=title or _default_title(results),
        entries=tuple(entries),
        baseline=baseline,
        baseline_name=baseline_name,
        targets_source=targets.source if targets is not None else None,
        trend_rows=trend_rows,
        trend_metric=trend_metric,
        steps=steps,
        trend_requested=history_rows is not None,
    )


def _result_series_key(result: Result) -> SeriesKey:
    return result_series_key(result)


def _default_name(result: Result, i: int) -> str:
    return result.model.name or f"result {i + 1}"


def _default_title(results: Sequence[Result]) -> str:
    models = sorted({r.model.name or Path(r.model.path).stem for r in results})
    return "orinbench report: " + ", ".join(m for m in models if m)


@dataclass(frozen=True)
class ReportOutput:
    """What :func:`report_files` produced: the report and the files it wrote."""

    report: Report
    written: tuple[Path, ...]


def report_files(
    result_paths: Sequence[str | os.PathLike[str]],
    *,
    baseline_path: str | os.PathLike[str] | None = None,
    baseline_dir: str | os.PathLike[str] | None = None,
    targets_path: str | os.PathLike[str] | None = None,
    html: str | os.PathLike[str] | None = None,
    markdown: str | os.PathLike[str] | None = None,
    allow_env_mismatch: bool = False,
    inconclusive_ok: bool = False,
    trend: bool = False,
    history: str | os.PathLike[str] | None = None,
    trend_metric: str = DEFAULT_METRIC,
    title: str | None = None,
) -> ReportOutput:
    """Load the results (and baseline, targets), build the report, write HTML and/or Markdown.

    ``baseline_dir`` looks the baseline up as ``orinbench gate --baseline-dir`` does, by the first
    result's device, software, power mode, backend, precision and model. Every input is read
    before anything is written; each output is written atomically. With ``trend`` (or ``history``
    given) the history database adds a trend section.
    """
    if baseline_path is not None and baseline_dir is not None:
        raise UsageError("both a baseline file and a baseline folder were given", fix="give one")
    paths = [Path(p) for p in result_paths]
    if html is not None:
        _check_writable(Path(html))
    if markdown is not None:
        _check_writable(Path(markdown))
    results = [load_result(p) for p in paths]
    if baseline_dir is not None:
        found = find_baseline(results[0], baseline_dir)
        if found is None:
            raise UsageError(
                f"no baseline for {paths[0]} under {baseline_dir}",
                fix=f"record one with 'orinbench baseline record {paths[0]} --to {baseline_dir}'",
            )
        baseline_path = found
    baseline = load_result(baseline_path) if baseline_path is not None else None
    targets = load_targets(targets_path) if targets_path is not None else None
    rows: list[HistoryRow] | None = None
    if trend or history is not None:
        db = Path(history).expanduser() if history is not None else default_history_path()
        rows = []
        if db.exists():  # no history yet: an empty trend section, and no database created
            with HistoryStore(db) as store:
                rows = store.query()
    names = _unique_names([p.stem for p in paths])
    report = build_report(
        results,
        names=names,
        baseline=baseline,
        baseline_name=Path(baseline_path).name if baseline_path is not None else None,
        targets=targets,
        allow_env_mismatch=allow_env_mismatch,
        inconclusive_ok=inconclusive_ok,
        history_rows=rows,
        trend_metric=trend_metric,
        title=title,
    )
    written: list[Path] = []
    # render everything first: a missing matplotlib must not leave the Markdown half of a pair
    html_text = report.to_html() if html is not None else None
    md_text = report.to_markdown() if markdown is not None else None
    if html is not None and html_text is not None:
        written.append(atomic_write_text(html, html_text))
    if markdown is not None and md_text is not None:
        written.append(atomic_write_text(markdown, md_text))
    return ReportOutput(report=report, written=tuple(written))


def _unique_names(stems: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
        out.append(s if seen[s] == 1 else f"{s} ({seen[s]})")
    return out


def _check_writable(path: Path) -> None:
    """Fail before the (slow) plotting when the output cannot be written at all."""
    from ..errors import InputFileError

    if path.is_dir():
        raise InputFileError(f"cannot write {path}", why="it is a folder", fix="name a file")
    folder = path.parent if str(path.parent) else Path(".")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InputFileError(
            f"cannot write {path}",
            why=f"{probe} is not a writable folder",
            fix="choose a writable path",
        )
