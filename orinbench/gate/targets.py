"""Targets files: absolute limits on metrics, and per-metric tolerances against a baseline.

The format (docs/gate.md)::

    # targets.toml
    [targets]
    "latency.p99_ms" = "< 80"
    "throughput.fps" = "> 12"
    "power.mean_w"   = "< 60"

    [tolerance]                 # optional: how far a metric may move against the baseline
    "latency.p99_ms" = "5%"

Metric names are the dotted names of :meth:`orinbench.results.schema.Result.metrics`. Quote them:
an unquoted dotted key is a nested table in TOML, which this parser flattens back to the dotted
name inside ``[targets]`` and ``[tolerance]``. Target entries may also sit at the top level, before
any table. Any other table is an error, as is a bad operator, a non-numeric threshold or a
tolerance that is not a percentage; each error names the key and its line.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._io import require_file
from ..errors import TargetsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: comparison operators a target may use
OPERATORS: tuple[str, ...] = ("<=", ">=", "==", "<", ">")
#: sections a targets file may hold
SECTIONS: tuple[str, ...] = ("targets", "tolerance")
#: ``==`` compares with this relative tolerance (floats are rarely exactly equal)
EQ_REL_TOL = 1e-9

_TARGET_RE = re.compile(r"^\s*(<=|>=|==|=<|=>|!=|<>|<|>|=)?\s*(.*?)\s*$")
_TOL_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*%\s*$")


@dataclass(frozen=True)
class Target:
    """``metric op threshold``, e.g. ``latency.p99_ms < 80``. ``line`` is 1-based, 0 if unknown."""

    metric: str
    op: str
    threshold: float
    line: int = 0

    def check(self, value: float) -> bool:
        """Whether ``value`` meets the target."""
        if self.op == "<":
            return value < self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        if self.op == ">=":
            return value >= self.threshold
        return math.isclose(value, self.threshold, rel_tol=EQ_REL_TOL, abs_tol=1e-12)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Targets:
    """A parsed targets file. ``tolerances`` maps a metric to a fraction (``"5%"`` -> 0.05)."""

    targets: tuple[Target, ...] = ()
    tolerances: Mapping[str, float] = field(default_factory=dict)
    source: str = "<string>"


def parse_tolerance(text: Any, *, key: str = "tolerance", source: str = "", line: int = 0) -> float:
    """``"5%"`` -> 0.05. Anything but a non-negative percentage string raises TargetsError."""
    where = _where(source, line)
    if not isinstance(text, str):
        raise TargetsError(
            f"{where}tolerance of '{key}' is {text!r}, not a percentage string",
            fix=f'write it as "{key}" = "5%"',
        )
    m = _TOL_RE.match(text)
    if not m:
        raise TargetsError(
            f"{where}tolerance of '{key}' is {text!r}, not a percentage",
            fix='write a non-negative percentage such as "5%"',
        )
    value = float(m.group(1)) / 100.0
    # the pattern refuses "inf%", but a number too large for a float ("1e400%") reads as inf
    if not math.isfinite(value):
        raise TargetsError(
            f"{where}tolerance of '{key}' is {text!r}, not a finite percentage",
            fix='write a non-negative percentage such as "5%"',
        )
    return value


def parse_target(metric: str, text: Any, *, source: str = "", line: int = 0) -> Target:
    """``("latency.p99_ms", "< 80")`` -> Target. Raises TargetsError naming the key and line."""
    where = _where(source, line)
    if not isinstance(text, str):
        raise TargetsError(
            f"{where}target '{metric}' is {text!r}, not a comparison string",
            fix=f'write it as "{metric}" = "< {text}" (operators: {", ".join(OPERATORS)})',
        )
    m = _TARGET_RE.match(text)
    op, num = (m.group(1), m.group(2)) if m else (None, text)
    if op not in OPERATORS:
        found = f"operator '{op}'" if op else "no operator"
        raise TargetsError(
            f"{where}target '{metric}' = {text!r} has {found}",
            fix=f'use one of {", ".join(OPERATORS)}, e.g. "< 80"',
        )
    try:
        threshold = float(num)
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise TargetsError(
            f"{where}target '{metric}' = {text!r} has a non-numeric threshold {num!r}",
            fix='give a finite number after the operator, e.g. "< 80" (no units)',
        )
    return Target(metric=metric, op=op, threshold=threshold, line=line)


def parse_targets(text: str, *, source: str = "<string>") -> Targets:
    """Parse the TOML text of a targets file. See the module docstring for the format."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetsError(
            f"{source} is not valid TOML", why=str(exc), fix='write entries as "metric" = "< 80"'
        ) from exc

    # name -> (value, section it came from, for the line number in errors)
    raw_targets: dict[str, tuple[Any, str | None]] = {}
    raw_tols: dict[str, tuple[Any, str | None]] = {}
    for key, value in doc.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise TargetsError(
                    f"{_where(source, _line_of(text, key))}'{key}' must be a table",
                    fix=f"write it as a [{key}] section",
                )
            out = raw_targets if key == "targets" else raw_tols
            _flatten_into(value, "", out, key, source, text)
        elif isinstance(value, dict):
            raise TargetsError(
                f"{_where(source, _line_of(text, key, table=True))}unknown section [{key}]",
                why=f"a targets file holds only {' and '.join(f'[{s}]' for s in SECTIONS)}",
                fix=f'quote dotted metric names ("{key}.p99_ms" = "< 80") or rename the section',
            )
        else:
            _put(raw_targets, key, value, None, source, text)

    targets = tuple(
        parse_target(k, v, source=source, line=_line_of(text, k, section=sec))
        for k, (v, sec) in raw_targets.items()
    )
    tols = {
        k: parse_tolerance(v, key=k, source=source, line=_line_of(text, k, section=sec))
        for k, (v, sec) in raw_tols.items()
    }
    return Targets(targets=targets, tolerances=tols, source=source)


def load_targets(path: str | os.PathLike[str]) -> Targets:
    """Read and parse a targets file (TOML, UTF-8)."""
    p = require_file(path, what="targets file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TargetsError(f"{p} is not a UTF-8 text file", fix="save it as UTF-8 TOML") from exc
    return parse_targets(text, source=str(p))


def _where(source: str, line: int) -> str:
    if not source:
        return ""
    return f"{source}:{line}: " if line else f"{source}: "


def _flatten_into(
    table: Mapping[str, Any],
    prefix: str,
    out: dict[str, tuple[Any, str | None]],
    section: str | None,
    source: str,
    text: str,
) -> None:
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten_into(v, f"{name}.", out, section, source, text)
        else:
            _put(out, name, v, section, source, text)


def _put(
    out: dict[str, tuple[Any, str | None]],
    name: str,
    value: Any,
    section: str | None,
    source: str,
    text: str,
) -> None:
    if name in out:
        raise TargetsError(
            f"{_where(source, _line_of(text, name, section=section))}'{name}' is given twice",
            fix="keep one entry per metric (top level and [targets] mean the same)",
        )
    out[name] = (value, section)


def _line_of(text: str, key: str, *, table: bool = False, section: str | None = None) -> int:
    """Best-effort 1-based line of ``key`` in ``text`` (tomllib does not report key positions).

    With ``section`` only the lines of that ``[section]`` are searched.
    """
    lines = text.splitlines()
    lo, hi = 0, len(lines)
    if section is not None:
        header = re.compile(rf"^\s*\[\s*{re.escape(section)}\s*\]")
        any_header = re.compile(r"^\s*\[")
        for i, line in enumerate(lines):
            if header.match(line):
                lo = i + 1
                hi = next((j for j in range(lo, len(lines)) if any_header.match(lines[j])), hi)
                break
    last = key.rsplit(".", 1)[-1]
    if table:
        pats = [rf"^\s*\[\s*{re.escape(key)}\s*[\].]", rf"^\s*{re.escape(key)}\s*\."]
    else:
        pats = [
            rf"""^\s*(["']){re.escape(key)}\1\s*=""",
            rf"^\s*{re.escape(key)}\s*=",
            rf"""(^|[.\s])(["']?){re.escape(last)}\2\s*=""",
        ]
    for pat in pats:
        rx = re.compile(pat)
        for i in range(lo, hi):
            if rx.search(lines[i]):
                return i + 1
    return 0


__all__ = [
    "OPERATORS",
    "SECTIONS",
    "Target",
    "Targets",
    "load_targets",
    "parse_target",
    "parse_targets",
    "parse_tolerance",
]
