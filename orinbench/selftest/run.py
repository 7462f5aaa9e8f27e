"""Run the self-test's checks in order and collect one row each; never let one check stop the rest.

A check that raises :class:`~.rows.Skip` is ``skipped`` with its reason and fix; one whose
prerequisite row did not pass is ``skipped`` naming that row; a missing optional runtime
(:class:`~orinbench.errors.DependencyMissingError`) is ``skipped`` with the package to install; any
other exception is ``fail`` with a one-line message, and its traceback is kept as evidence.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import DependencyMissingError, OrinbenchError, UsageError
from .checks import Check, all_checks, environment_summary, select_checks
from .context import Context, SelftestOptions
from .rows import FAIL, PASS, SKIPPED, CheckFailed, Row, SelftestReport, Skip

#: called before each check (``id``, ``title``) and after it (the finished :class:`Row`)
RowCallback = Callable[[Row], None]
StartCallback = Callable[[Check], None]
#: evidence strings longer than this are cut (a traceback or a log tail stays readable)
MAX_TEXT = 20_000


def json_safe(value: Any, depth: int = 0) -> Any:
    """Evidence as JSON: paths and numpy values as plain values, non-finite floats as None,
    anything else unknown as its repr (evidence must never break writing selftest.json)."""
    if depth > 12:
        return repr(value)[:200]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "\n... (cut)"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, depth + 1) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return json_safe(item(), depth + 1)
        except (TypeError, ValueError):
            pass
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return json_safe(to_dict(), depth + 1)
        except Exception:  # evidence is best effort
            pass
    return repr(value)[:2000]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_check(check: Check, ctx: Context) -> Row:
    """Run one check; whatever it raises becomes a row (KeyboardInterrupt still stops)."""
    for need in check.needs:
        prior = ctx.rows.get(need)
        if prior is None or prior.status != PASS:
            if prior is None:
                reason = f"needs {need}, which did not run"
            elif prior.status == SKIPPED and prior.reason.startswith("needs "):
                reason = f"needs {need}, which {prior.reason}"  # the chain down to its root
            else:
                reason = f"needs {need}, which was {prior.status}: {prior.reason}"
            # no fix here: the row at the root of the chain carries it
            return Row(id=check.id, title=check.title, status=SKIPPED, reason=reason)
    started = time.perf_counter()
    status, reason, fix = PASS, "", ""
    evidence: dict[str, Any] = {}
    try:
        reason, evidence = check.fn(ctx)
    except Skip as exc:
        status, reason, fix, evidence = SKIPPED, exc.reason, exc.fix, exc.evidence
    except CheckFailed as exc:
        status, reason, fix, evidence = FAIL, exc.reason, exc.fix, exc.evidence
    except DependencyMissingError as exc:
        status, reason, fix = SKIPPED, f"{exc.what}: {exc.why}" if exc.why else exc.what, exc.fix
    except OrinbenchError as exc:
        status, reason, fix = FAIL, _one_line(exc), exc.fix or ""
        evidence = {"traceback": traceback.format_exc()}
    except Exception as exc:  # a check's bug or a runtime's failure: a row, never a crash
        status, reason = FAIL, _one_line(exc)
        evidence = {"traceback": traceback.format_exc()}
    return Row(
        id=check.id,
        title=check.title,
        status=status,
        reason=reason,
        fix=fix or "",
        duration_s=time.perf_counter() - started,
        evidence=json_safe(evidence),
    )


def run_selftest(
    *,
    out_dir: str | os.PathLike[str],
    options: SelftestOptions | None = None,
    checks: Sequence[Check] | None = None,
    on_start: StartCallback | None = None,
    on_row: RowCallback | None = None,
) -> SelftestReport:
    """Run every check (or ``options.only``) with ``out_dir``/work as the work folder.

    ``checks`` replaces the built-in list (tests). The model, engines, build logs and calibration
    data stay under ``out_dir``/work, so that a bug report can carry them.
    """
    opts = options if options is not None else SelftestOptions()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", fix="pass a folder for the self-test's output")
    selected = select_checks(checks if checks is not None else all_checks(), opts.only)
    ctx = Context(opts, out / "work")
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    started_utc = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    rows: list[Row] = []
    for check in selected:
        if on_start is not None:
            on_start(check)
        row = run_check(check, ctx)
        ctx.rows[row.id] = row
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return SelftestReport(
        rows=tuple(rows),
        orinbench_version=__version__,
        started_utc=started_utc,
        duration_s=time.perf_counter() - t0,
        environment=json_safe(environment_summary()),
        options=json_safe(opts.to_dict()),
    )


def exit_code(report: SelftestReport) -> int:
    """0 when nothing that ran failed, 1 when a row failed (skipped rows do not count)."""
    return 0 if report.ok else 1
