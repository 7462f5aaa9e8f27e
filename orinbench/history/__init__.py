"""The run history: a local SQLite store of every run, queries, trends and step changes."""

from __future__ import annotations

from .store import (
    HistoryRecoveredError,
    HistoryRow,
    HistoryStore,
    append_to_history,
    default_history_path,
)
from .trend import SeriesKey, StepChange, find_step_changes

__all__ = [
    "HistoryRecoveredError",
    "HistoryRow",
    "HistoryStore",
    "SeriesKey",
    "StepChange",
    "append_to_history",
    "default_history_path",
    "find_step_changes",
]
