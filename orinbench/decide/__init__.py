"""Which engine to ship, and can its number be trusted (``orinbench decide``).

* :mod:`.variants` — the FP32 / FP16 / INT8 (and DLA) variants and how each is made.
* :mod:`.logic` — the decision rule, the accuracy-loss definition, the reasons in sentences.
* :mod:`.table` — the decision table as text.
* :mod:`.repeat` — reproducibility: N builds with and without a shared timing cache, the spread
  of median and P99, builds that differ beyond the run-to-run noise, the fastest kept.
* :mod:`.run` — :func:`decide_model`, the core of the command.
"""

from __future__ import annotations

from .logic import (
    DEFAULT_MAX_LOSS_PCT,
    LOSS_DEFINITION,
    Decision,
    VariantRow,
    decide,
    effective_targets,
    target_failures,
)
from .repeat import (
    ALPHA,
    NOISE_FLOOR,
    BuildFinding,
    BuildRequest,
    RepeatReport,
    RepeatSample,
    Spread,
    analyze_repeats,
    check_repeat,
    mark_kept,
    repeat_builds,
    repeat_runs,
)
from .run import DecideOutcome, decide_model
from .table import format_table
from .variants import LABELS, Variant, resolve_variants

__all__ = [
    "ALPHA",
    "DEFAULT_MAX_LOSS_PCT",
    "LABELS",
    "LOSS_DEFINITION",
    "NOISE_FLOOR",
    "BuildFinding",
    "BuildRequest",
    "DecideOutcome",
    "Decision",
    "RepeatReport",
    "RepeatSample",
    "Spread",
    "Variant",
    "VariantRow",
    "analyze_repeats",
    "check_repeat",
    "decide",
    "decide_model",
    "effective_targets",
    "format_table",
    "mark_kept",
    "repeat_builds",
    "repeat_runs",
    "resolve_variants",
    "target_failures",
]
