"""``orinbench selftest``: every capability tried once here, one row each (docs/first-run.md).

* :mod:`.rows` — :class:`Row`, :class:`SelftestReport` (``selftest.json``, versioned);
* :mod:`.checks` — the checks, one function per capability, and their order;
* :mod:`.run` — running them so that no check stops the others;
* :mod:`.render` — the terminal table and the HTML page; :mod:`.output` — writing both files.
"""

from __future__ import annotations

from .checks import Check, all_checks
from .context import SelftestOptions
from .output import read_selftest, write_selftest
from .rows import FAIL, PASS, SCHEMA_VERSION, SKIPPED, Row, SelftestReport
from .run import exit_code, run_selftest

__all__ = [
    "FAIL",
    "PASS",
    "SCHEMA_VERSION",
    "SKIPPED",
    "Check",
    "Row",
    "SelftestOptions",
    "SelftestReport",
    "all_checks",
    "exit_code",
    "read_selftest",
    "run_selftest",
    "write_selftest",
]
