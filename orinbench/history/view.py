"""What ``orinbench history`` shows: the selected runs, one metric, and the step changes in it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import DEFAULT_LOCK_TIMEOUT_S, HistoryRow, HistoryStore, default_history_path
from .trend import DEFAULT_METRIC, StepChange, find_step_changes


@dataclass(frozen=True)
class HistoryView:
    """Runs selected from the history (oldest first) and the step changes of ``metric``.

    ``exists`` is False when there is no database file yet (nothing was ever recorded there).
    """

    path: Path
    exists: bool
    rows: tuple[HistoryRow, ...]
    metric: str
    steps: tuple[StepChange, ...]

    def step_at(self, run_id: int) -> StepChange | None:
        return next((s for s in self.steps if s.run_id == run_id), None)

    def to_dict(self) -> dict[str, Any]:
        runs = []
        for r in self.rows:
            d = r.to_dict()
            step = self.step_at(r.run_id)
            d["step_change"] = step.to_dict() if step is not None else None
            runs.append(d)
        return {
            "path": str(self.path),
            "metric": self.metric,
            "runs": runs,
            "step_changes": [s.to_dict() for s in self.steps],
        }

    def to_text(self) -> str:
        """A terminal table: one line per run, the step changes flagged, a closing summary."""
        if not self.exists:
            return f"no history yet at {self.path} (bench, demo, run and gate append to it)"
        if not self.rows:
            return f"no run in {self.path} matches"
        header = (
            "id",
            "created (UTC)",
            "command",
            "device",
            "model",
            "prec",
            "backend",
            "P50 ms",
            self._metric_title(),
            "FPS",
            "W",
            "",
        )
        table: list[Sequence[str]] = [header]
        for r in self.rows:
            step = self.step_at(r.run_id)
            table.append(
                (
                    str(r.run_id),
                    r.created_utc.replace("T", " ")[:16],
                    r.command,
                    _clip(r.device, 28),
                    _clip(r.model, 24),
                    r.precision,
                    r.backend,
                    _num(r.metric("latency.p50_ms")),
                    _num(r.metric(self.metric)),
                    _num(r.metric("throughput.fps")),
                    _num(r.metric("power.mean_w")),
                    f"<- step {step.delta_pct:+.1f}%" if step is not None else "",
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        right = {0, 7, 8, 9, 10}
        lines = []
        for row in table:
            cells = [
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        lines.insert(1, "  ".join("-" * w for w in widths[:-1]))
        lines.append("")
        lines.append(f"{len(self.rows)} run(s) from {self.path}")
        if self.steps:
            lines += [s.describe() for s in self.steps]
        else:
            lines.append(f"no step change in {self.metric}")
        return "\n".join(lines)

    def _metric_title(self) -> str:
        if self.metric == "latency.p99_ms":
            return "P99 ms"
        return self.metric


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def view_history(
    path: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    model: str | None = None,
    precision: str | None = None,
    backend: str | None = None,
    command: str | None = None,
    limit: int | None = None,
    metric: str = DEFAULT_METRIC,
    timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> HistoryView:
    """Select runs (see :meth:`HistoryStore.query`) and find the step changes of ``metric``.

    A database file that does not exist is reported as empty and is not created.
    """
    p = Path(path).expanduser() if path is not None else default_history_path()
    if not p.exists():
        return HistoryView(path=p, exists=False, rows=(), metric=metric, steps=())
    with HistoryStore(p, timeout_s=timeout_s) as store:
        rows = store.query(
            device=device,
            model=model,
            precision=precision,
            backend=backend,
            command=command,
            limit=limit,
        )
    steps = find_step_changes(rows, metric)
    return HistoryView(path=p, exists=True, rows=tuple(rows), metric=metric, steps=tuple(steps))
