"""Release gating: targets, baseline comparison, verdicts (core library; it never prints)."""

from __future__ import annotations

from .baseline import baseline_key, baseline_path, find_baseline, record_baseline
from .compare import (
    COMPARABILITY_KEYS,
    DEFAULT_BASELINE_METRICS,
    check_comparable,
    compare,
    default_tolerance,
    direction,
    environment_differences,
)
from .evaluate import check_targets, gate
from .targets import Target, Targets, load_targets, parse_targets
from .verdict import GateReport, MetricVerdict, ReportWarning

__all__ = [
    "COMPARABILITY_KEYS",
    "DEFAULT_BASELINE_METRICS",
    "GateReport",
    "MetricVerdict",
    "ReportWarning",
    "Target",
    "Targets",
    "baseline_key",
    "baseline_path",
    "check_comparable",
    "check_targets",
    "compare",
    "default_tolerance",
    "direction",
    "environment_differences",
    "find_baseline",
    "gate",
    "load_targets",
    "parse_targets",
    "record_baseline",
]
